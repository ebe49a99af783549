/* Model internals shared by lib/nn/ (the report builder). */
#ifndef CNNL_NN_MODEL_IMPL_H
#define CNNL_NN_MODEL_IMPL_H

#include <stddef.h>

#include "cnnlite/model.h"

/* Record that @p m was built by cnnl_report_net_create() with @p opts. */
void cnnl__model_set_report(cnnl_model *m, const cnnl_report_opts *opts);

/* Number of layers (pass-throughs of fused layers included) and layer @p i (borrowed), for
 * code that reads layer outputs and gradients after a pass (Grad-CAM). */
size_t cnnl__model_num_layers(const cnnl_model *m);
struct cnnl_layer *cnnl__model_layer(const cnnl_model *m, size_t i);

#endif
