/* MaxPool2d and AvgPool2d (floor mode; padding as PyTorch: -inf for max, counted zeros for
 * average, i.e. count_include_pad=True). */
#include <stdio.h>

#include "core/internal.h"
#include "nn/layer.h"
#include "ops/kernels.h"

typedef struct pool {
    struct cnnl_layer base;
    int k, s, pad;
    bool max;
    bool passthrough; /* applied by the convolution before it */
} pool;

static cnnl_status pool_dims(cnnl_layer *l, const cnnl_tensor *x, int *oh, int *ow)
{
    pool *P = (pool *)l;
    if (x->ndim != 4 || x->shape[2] + 2 * P->pad < P->k || x->shape[3] + 2 * P->pad < P->k ||
        x->shape[2] > 1 << 24 || x->shape[3] > 1 << 24) {
        char want[64];
        snprintf(want, sizeof want, "N x C x H x W with H, W + 2*%d >= %d", P->pad, P->k);
        return cnnl__layer_shape_error(l, x, want);
    }
    *oh = (int)((x->shape[2] + 2 * P->pad - P->k) / P->s + 1);
    *ow = (int)((x->shape[3] + 2 * P->pad - P->k) / P->s + 1);
    return CNNL_OK;
}

static cnnl_status pool_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    pool *P = (pool *)l;
    if (P->passthrough) {
        cnnl__layer_pass_output(l, x);
        return CNNL_OK;
    }
    int oh = 0, ow = 0;
    cnnl_status st = pool_dims(l, x, &oh, &ow);
    if (st == CNNL_OK)
        st = cnnl__tensor_ensure4(&l->out_ws, x->shape[0], x->shape[1], oh, ow);
    if (st != CNNL_OK)
        return st;
    size_t planes = (size_t)x->shape[0] * (size_t)x->shape[1];
    int h = (int)x->shape[2], w = (int)x->shape[3];
    l->out = l->out_ws;
    if (P->max)
        cnnl__maxpool_forward(x->data, planes, h, w, P->k, P->s, P->pad, oh, ow, l->out_ws->data);
    else if (!cnnl__avgpool_forward(x->data, planes, h, w, P->k, P->s, P->pad, oh, ow, l->out_ws->data))
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    return CNNL_OK;
}

static cnnl_status pool_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                 bool param_grads)
{
    pool *P = (pool *)l;
    (void)param_grads;
    if (!want_gin)
        return CNNL_OK;
    if (P->passthrough) {
        cnnl__layer_pass_gradient(l, gy);
        return CNNL_OK;
    }
    int oh = 0, ow = 0;
    cnnl_status st = pool_dims(l, x, &oh, &ow);
    if (st == CNNL_OK)
        st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
    if (st != CNNL_OK)
        return st;
    size_t planes = (size_t)x->shape[0] * (size_t)x->shape[1];
    int h = (int)x->shape[2], w = (int)x->shape[3];
    if (P->max)
        cnnl__maxpool_backward(x->data, l->out->data, gy->data, planes, h, w, P->k, P->s, P->pad, oh, ow,
                               l->gin_ws->data);
    else
        cnnl__avgpool_backward(gy->data, planes, h, w, P->k, P->s, P->pad, oh, ow, l->gin_ws->data);
    l->gin = l->gin_ws;
    return CNNL_OK;
}

static const cnnl__layer_ops max_ops = {"MaxPool2d", pool_forward, pool_backward, NULL, NULL};
static const cnnl__layer_ops avg_ops = {"AvgPool2d", pool_forward, pool_backward, NULL, NULL};

bool cnnl__avgpool_covers_input(const cnnl_layer *l, const cnnl_tensor *x)
{
    const pool *P = (const pool *)l;
    return l->ops == &avg_ops && P->pad == 0 && P->k == P->s && x->ndim == 4 && x->numel > 0 &&
           x->shape[2] % P->k == 0 && x->shape[3] % P->k == 0;
}

bool cnnl__maxpool2_make_passthrough(cnnl_layer *l)
{
    pool *P = (pool *)l;
    if (l->ops != &max_ops || P->k != 2 || P->s != 2 || P->pad != 0)
        return false;
    P->passthrough = true;
    return true;
}

cnnl_status cnnl__pool2d_create_ex(cnnl_layer **out, int kernel, int stride, int padding, bool max)
{
    const char *fn = max ? "cnnl_maxpool2d_create" : "cnnl_avgpool2d_create";
    if (!out)
        return cnnl__error(CNNL_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (kernel < 1 || stride < 1 || kernel > 1024 || stride > 1024)
        return cnnl__error(CNNL_EINVAL, "%s: %s is %d; must be in 1..1024", fn, kernel < 1 || kernel > 1024 ? "kernel" : "stride",
                           kernel < 1 || kernel > 1024 ? kernel : stride);
    if (padding < 0 || padding > kernel / 2)
        return cnnl__error(CNNL_EINVAL, "%s: padding is %d; must be in 0..%d (half the kernel %d)", fn, padding,
                           kernel / 2, kernel);
    pool *P = (pool *)cnnl__layer_new(sizeof(pool), max ? &max_ops : &avg_ops);
    if (!P)
        return CNNL_ENOMEM;
    P->k = kernel;
    P->s = stride;
    P->pad = padding;
    P->max = max;
    *out = &P->base;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_maxpool2d_create(cnnl_layer **out, int kernel, int stride)
{
    return cnnl__pool2d_create_ex(out, kernel, stride, 0, true);
}

CNNL_API cnnl_status cnnl_avgpool2d_create(cnnl_layer **out, int kernel, int stride)
{
    return cnnl__pool2d_create_ex(out, kernel, stride, 0, false);
}
