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

/* Record the canonical description @p json (copied), the input shape C, H, W and the number of
 * flat outputs (0 if the output is not flat) of @p m. */
cnnl_status cnnl__model_set_arch(cnnl_model *m, const char *json, const int64_t input[3], size_t outputs);

/* The report network for @p opts as a description (NUL-terminated, fits 2048 bytes). */
void cnnl__report_describe(const cnnl_report_opts *opts, char *buf, size_t len);

/* Check report-network options; messages name the option (as cnnl_report_net_create()). */
cnnl_status cnnl__report_check(const cnnl_report_opts *opts);
/* The layers of @p m (count in *@p n), for the profile (profile.c). */
cnnl_layer *const *cnnl__model_layers(const cnnl_model *m, size_t *n);

/* Where @p m keeps its profile table (NULL while profiling is off). */
struct cnnl__profile **cnnl__model_profile_slot(cnnl_model *m);

/* Called by cnnl_model_backward() as soon as a layer's parameter gradients are final, layers
 * in reverse order: the gradients of state tensors [first, end) (cnnl_model_state_at()
 * indices) are ready. A non-OK return stops backward with that status. */
typedef cnnl_status (*cnnl__grads_ready_fn)(void *user, size_t first, size_t end);

/* cnnl_model_backward() that leaves every layer's input gradient (struct cnnl_layer's gin)
 * readable after the pass (in each layer's own buffer), for Grad-CAM; cnnl_model_backward()
 * reuses two buffers down the network (see lib/nn/model.c). */
cnnl_status cnnl__model_backward_keep(cnnl_model *m, const cnnl_tensor *grad_output);

/* Install (or with NULL remove) the gradients-ready hook of @p m. */
void cnnl__model_set_grads_hook(cnnl_model *m, cnnl__grads_ready_fn fn, void *user);

#endif
