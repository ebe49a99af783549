/* The per-layer profile's hooks in the model's forward and backward loops (profile.c). */
#ifndef CNNL_NN_PROFILE_IMPL_H
#define CNNL_NN_PROFILE_IMPL_H

#include <stddef.h>

#include "cnnlite/tensor.h"

typedef struct cnnl__profile cnnl__profile;

/* A clock reading to pass to the matching _forward/_backward call; 0 when @p p is NULL. */
double cnnl__profile_start(const cnnl__profile *p);
/* Add the time since @p t0 to layer @p i's forward total and record its shapes. No-op for NULL. */
void cnnl__profile_forward(cnnl__profile *p, size_t i, double t0, const cnnl_tensor *in, const cnnl_tensor *out);
/* Add the time since @p t0 to layer @p i's backward total. No-op for NULL. */
void cnnl__profile_backward(cnnl__profile *p, size_t i, double t0);
void cnnl__profile_free(cnnl__profile *p);

#endif
