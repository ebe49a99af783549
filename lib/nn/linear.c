/* Linear and Flatten. */
#include <stdio.h>

#include "core/internal.h"
#include "nn/layer.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

typedef struct linear {
    struct cnnl_layer base;
    int in, out;
    bool bias;
    cnnl_tensor *ws; /* the forward kernel's saved accumulators (cnnl__linear_forward_ws) */
} linear;

static cnnl_status linear_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    linear *L = (linear *)l;
    if (x->ndim != 2 || x->shape[1] != L->in) {
        char want[64];
        snprintf(want, sizeof want, "N x %d", L->in);
        return cnnl__layer_shape_error(l, x, want);
    }
    int n = (int)x->shape[0];
    int64_t shape[2] = {n, L->out};
    cnnl_status st = cnnl__tensor_ensure(&l->out_ws, 2, shape);
    if (st != CNNL_OK)
        return st;
    int level = cnnl__simd_level();
    int64_t ws_shape[1] = {(int64_t)cnnl__linear_forward_ws(level, n, L->out)};
    float *ws = NULL;
    if (ws_shape[0] > 0) {
        if ((st = cnnl__tensor_ensure(&L->ws, 1, ws_shape)) != CNNL_OK)
            return st;
        ws = L->ws->data;
    }
    float *y = l->out_ws->data;
    const float *b = L->bias ? l->state[1].data : NULL;
    cnnl__linear_forward(level, x->data, l->state[0].data, b, y, n, L->in, L->out, ws);
    l->out = l->out_ws;
    if (!cnnl__finite(y, l->out_ws->numel))
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    return CNNL_OK;
}

static cnnl_status linear_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                   bool param_grads)
{
    linear *L = (linear *)l;
    int n = (int)x->shape[0];
    if (param_grads) {
        cnnl__linear_backward_weights(cnnl__simd_level(), gy->data, x->data, l->state[0].grad, n, L->in, L->out);
        if (L->bias)
            cnnl__sum_rows_into(gy->data, n, L->out, l->state[1].grad);
    }
    if (want_gin) {
        cnnl_status st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
        if (st != CNNL_OK)
            return st;
        cnnl__linear_backward_data(cnnl__simd_level(), gy->data, l->state[0].data, l->gin_ws->data, n, L->in, L->out);
        l->gin = l->gin_ws;
    }
    return CNNL_OK;
}

static void linear_destroy(cnnl_layer *l)
{
    cnnl_tensor_free(((linear *)l)->ws);
}

static const cnnl__layer_ops linear_ops = {"Linear", linear_forward, linear_backward, linear_destroy, NULL};

CNNL_API cnnl_status cnnl_linear_create(cnnl_layer **out, int in_features, int out_features, bool bias)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_linear_create: out is NULL");
    *out = NULL;
    if (in_features < 1 || out_features < 1)
        return cnnl__error(CNNL_EINVAL, "cnnl_linear_create: %s is %d; must be >= 1",
                           in_features < 1 ? "in_features" : "out_features",
                           in_features < 1 ? in_features : out_features);
    linear *L = (linear *)cnnl__layer_new(sizeof(linear), &linear_ops);
    if (!L)
        return CNNL_ENOMEM;
    L->in = in_features;
    L->out = out_features;
    L->bias = bias;
    int64_t ws[2] = {out_features, in_features}, bs[1] = {out_features};
    cnnl_status st = cnnl__layer_add_state(&L->base, "weight", 2, ws, CNNL_DTYPE_F32, true, (size_t)in_features,
                                           CNNL__INIT_KAIMING);
    if (st == CNNL_OK && bias)
        st = cnnl__layer_add_state(&L->base, "bias", 1, bs, CNNL_DTYPE_F32, true, (size_t)in_features,
                                   CNNL__INIT_KAIMING);
    if (st != CNNL_OK) {
        cnnl_layer_free(&L->base);
        return st;
    }
    *out = &L->base;
    return CNNL_OK;
}

/* Flatten only relabels the shape: output and input gradient are views. */
static cnnl_status flatten_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    if (x->ndim < 2)
        return cnnl__layer_shape_error(l, x, "at least 2 dimensions");
    l->out_view = *x;
    l->out_view.ndim = 2;
    l->out_view.shape[1] = (int64_t)(x->numel / (size_t)(x->shape[0] ? x->shape[0] : 1));
    for (int i = 2; i < CNNL_TENSOR_MAX_DIMS; i++)
        l->out_view.shape[i] = 0;
    l->out_view.capacity = 0;
    l->out = &l->out_view;
    return CNNL_OK;
}

static cnnl_status flatten_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                    bool param_grads)
{
    (void)param_grads;
    if (want_gin) {
        l->gin_view = *gy;
        l->gin_view.ndim = x->ndim;
        for (int i = 0; i < CNNL_TENSOR_MAX_DIMS; i++)
            l->gin_view.shape[i] = x->shape[i];
        l->gin_view.capacity = 0;
        l->gin = &l->gin_view;
    }
    return CNNL_OK;
}

static const cnnl__layer_ops flatten_ops = {"Flatten", flatten_forward, flatten_backward, NULL, NULL};

CNNL_API cnnl_status cnnl_flatten_create(cnnl_layer **out)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_flatten_create: out is NULL");
    *out = cnnl__layer_new(sizeof(struct cnnl_layer), &flatten_ops);
    return *out ? CNNL_OK : CNNL_ENOMEM;
}
