/* Model internals shared by lib/nn/ (the report builder). */
#ifndef CNNL_NN_MODEL_IMPL_H
#define CNNL_NN_MODEL_IMPL_H

#include "cnnlite/model.h"

/* Record that @p m was built by cnnl_report_net_create() with @p opts. */
void cnnl__model_set_report(cnnl_model *m, const cnnl_report_opts *opts);

/* Called by cnnl_model_backward() as soon as a layer's parameter gradients are final, layers
 * in reverse order: the gradients of state tensors [first, end) (cnnl_model_state_at()
 * indices) are ready. A non-OK return stops backward with that status. */
typedef cnnl_status (*cnnl__grads_ready_fn)(void *user, size_t first, size_t end);

/* Install (or with NULL remove) the gradients-ready hook of @p m. */
void cnnl__model_set_grads_hook(cnnl_model *m, cnnl__grads_ready_fn fn, void *user);

#endif
