/* Model internals shared by lib/nn/ (the report builder). */
#ifndef CNNL_NN_MODEL_IMPL_H
#define CNNL_NN_MODEL_IMPL_H

#include "cnnlite/model.h"

/* Record that @p m was built by cnnl_report_net_create() with @p opts. */
void cnnl__model_set_report(cnnl_model *m, const cnnl_report_opts *opts);

/* Record the canonical description @p json (copied) and the input shape C, H, W of @p m. */
cnnl_status cnnl__model_set_arch(cnnl_model *m, const char *json, const int64_t input[3]);

#endif
