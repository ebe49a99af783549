/* Data-parallel training over a cnnl_comm: gradient buckets reduced while backward runs,
 * state broadcast, weight checksums. Used by trainer.c only. Not installed. */
#ifndef CNNL_TRAIN_DIST_H
#define CNNL_TRAIN_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnlite/comm.h"
#include "cnnlite/model.h"

typedef struct cnnl__dist cnnl__dist;

/* Plan buckets of about @p bucket_bytes over the trainable parameters of @p model and install
 * the model's gradients-ready hook. */
cnnl_status cnnl__dist_create(cnnl__dist **out, cnnl_model *model, const cnnl_comm *comm,
                              size_t bucket_bytes);
/* Remove the hook and free. */
void cnnl__dist_free(cnnl__dist *d);

/* Synchronised batch norm on or off (see nn/bn_sync.h); the first call with @p on allocates
 * the reduction buffers. */
cnnl_status cnnl__dist_set_sync_bn(cnnl__dist *d, bool on);

/* Before a step's forward: no bucket started yet, batch-norm synchronisation active if on. */
void cnnl__dist_begin_step(cnnl__dist *d);
/* After backward (or instead of it, for a process without images in this batch: it then makes
 * the batch-norm reductions of the others first): start the buckets not started yet, wait for
 * all, and write the sums back into the gradients. */
cnnl_status cnnl__dist_finish_step(cnnl__dist *d);

/* Copy every state tensor (parameters and buffers) of the model from rank 0 to all. */
cnnl_status cnnl__dist_broadcast_state(cnnl__dist *d, bool buffers_only);

/* Compare the parameters' hash across processes; CNNL_ESTATE if any differs. */
cnnl_status cnnl__dist_check_weights(cnnl__dist *d, int epoch);

#endif
