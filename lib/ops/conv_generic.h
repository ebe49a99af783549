/* Generic convolution (lib/ops/conv_generic.c): the portable path for dilated, grouped and
 * depthwise layers. */
#ifndef CNNL_OPS_CONV_GENERIC_H
#define CNNL_OPS_CONV_GENERIC_H

#include "ops/kernels.h"

/* True when @p g needs the generic convolution (dilation or groups other than 1). */
static inline bool cnnl__conv_is_generic(const cnnl__conv_geom *g)
{
    return g->dil > 1 || g->groups > 1;
}

/* ---- generic convolution (lib/ops/conv_generic.c) ----
 * Any kernel, stride, padding, dilation and groups (weights (oc, c/groups, k, k)); direct
 * loops, parallel over images and output channels. No fused ReLU or pool: g->relu and g->pool
 * must be false (the layer does not fuse them when it runs here). Results do not depend on the
 * thread count. */
/* y = conv(x, wt) + b (b may be NULL). Returns false if an output is not finite. */
bool cnnl__conv_generic_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                                int threads);
/* Floats of weight-gradient partial sums backward needs in @p acc:
 * cnnl__conv_slots(n) * (oc*(c/groups)*k*k + oc). */
size_t cnnl__conv_generic_acc_floats(const cnnl__conv_geom *g);
/* From gy (gradient of y): accumulates gw (+=; NULL to skip) and gb (+=; NULL to skip), writes
 * gx when not NULL. */
void cnnl__conv_generic_backward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *gy,
                                 float *gx, float *gw, float *gb, float *acc, int threads);

#endif
