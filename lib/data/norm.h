/* Input normalization helpers shared by lib/data/ and lib/io/. Not installed. */
#ifndef CNNL_DATA_NORM_H
#define CNNL_DATA_NORM_H

#include "cnnlite/data.h"

/* Check a normalization for a dataset or a model file: a known kind and, for mean/std,
 * 1..CNNL_NORM_MAX_CHANNELS finite entries with std > 0. Errors start with @p who. */
cnnl_status cnnl__norm_check(const char *who, const cnnl_normalization *n);

/* The uint8 -> float table of each of the first three channels under @p n (valid). */
void cnnl__norm_lut(const cnnl_normalization *n, float lut[3][256]);

#endif
