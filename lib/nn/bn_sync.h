/* Synchronised batch norm: the hook through which BatchNorm2d layers in training mode sum their
 * per-channel statistics over the processes of a data-parallel run. The trainer's distributed
 * part (lib/train/dist.c) owns the hook and gives it to the layers; lib/nn/ knows only this. */
#ifndef CNNL_NN_BN_SYNC_H
#define CNNL_NN_BN_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnlite/model.h"

typedef struct cnnl__bn_sync {
    /* Sum @p count doubles at @p data over all processes, in place, with the same result on
     * every process; every process calls it in the same order with the same count. */
    cnnl_status (*reduce)(void *user, double *data, size_t count);
    void *user;
    bool active; /* set by the owner during training steps; the layers reduce only then */
} cnnl__bn_sync;

/* Whether @p l is a BatchNorm2d layer. */
bool cnnl__is_batchnorm2d(const cnnl_layer *l);
/* Its channel count (0 for another layer). */
int cnnl__batchnorm2d_channels(const cnnl_layer *l);

/* Attach @p sync (borrowed; NULL detaches) to BatchNorm2d layer @p l. The first attach
 * allocates the layer's reduction buffers, so that training steps allocate nothing:
 * CNNL_ENOMEM; CNNL_EINVAL if @p l is not a BatchNorm2d.
 * While sync->active and the layer is training, forward sums over the processes the element
 * count, the per-channel sums of x and then of (x - mean)^2 (two reductions: the single-process
 * two-pass arithmetic, exactly), normalises with the global statistics and updates the running
 * statistics with them; backward sums the per-channel sums of g and g * (x - mean) (one
 * reduction) for the input gradient (parameter gradients keep this process's sums: the
 * gradient reduction adds them up). */
cnnl_status cnnl__batchnorm2d_set_sync(cnnl_layer *l, const cnnl__bn_sync *sync);

/* For a process with no image in a step, in the layers' order: the forward reductions with
 * nothing to add, and the running statistics updated with the global ones as on the other
 * processes; then, in reverse order, the backward reduction with nothing to add. */
cnnl_status cnnl__batchnorm2d_sync_empty_forward(cnnl_layer *l);
cnnl_status cnnl__batchnorm2d_sync_empty_backward(cnnl_layer *l);

#endif
