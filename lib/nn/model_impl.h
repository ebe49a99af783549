/* Model internals shared by lib/nn/ (the report builder). */
#ifndef CNNL_NN_MODEL_IMPL_H
#define CNNL_NN_MODEL_IMPL_H

#include "cnnlite/model.h"

/* Record that @p m was built by cnnl_report_net_create() with @p opts. */
void cnnl__model_set_report(cnnl_model *m, const cnnl_report_opts *opts);

#endif
