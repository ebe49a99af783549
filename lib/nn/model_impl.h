/* Model internals shared by lib/nn/ (the report builder). */
#ifndef CNNL_NN_MODEL_IMPL_H
#define CNNL_NN_MODEL_IMPL_H

#include "cnnlite/model.h"

/* Record that @p m was built by cnnl_report_net_create() with @p opts. */
void cnnl__model_set_report(cnnl_model *m, const cnnl_report_opts *opts);

/* The layers of @p m (count in *@p n), for the profile (profile.c). */
cnnl_layer *const *cnnl__model_layers(const cnnl_model *m, size_t *n);

/* Where @p m keeps its profile table (NULL while profiling is off). */
struct cnnl__profile **cnnl__model_profile_slot(cnnl_model *m);

#endif
