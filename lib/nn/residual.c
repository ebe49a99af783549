/*
 * Residual blocks and global average pooling.
 *
 * A Residual block lives in the flat layer list of a model as two markers around its body:
 * the begin marker passes its input x through to the body and remembers it; the end marker
 * outputs body(x) + x. Backward: the end marker hands its output gradient g to the body
 * unchanged and to the begin marker as the skip gradient; the begin marker's input gradient
 * is the body's input gradient + g. Layers, names, fusion and the model's loops stay as they
 * are for any nesting.
 */
#include <stdio.h>

#include "core/internal.h"
#include "nn/layer.h"
#include "ops/kernels.h"

typedef struct res_begin {
    struct cnnl_layer base;
    const cnnl_tensor *x;    /* input of the last forward */
    const cnnl_tensor *skip; /* output gradient of the end marker in the last backward */
} res_begin;

typedef struct res_end {
    struct cnnl_layer base;
    res_begin *begin;
} res_end;

static cnnl_status begin_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    res_begin *B = (res_begin *)l;
    B->x = x;
    B->skip = NULL;
    cnnl__layer_pass_output(l, x);
    return CNNL_OK;
}

static cnnl_status begin_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                  bool param_grads)
{
    res_begin *B = (res_begin *)l;
    (void)param_grads;
    if (!want_gin)
        return CNNL_OK;
    if (!B->skip || B->skip->numel != gy->numel)
        return cnnl__error(CNNL_ESTATE, "%s: backward without the gradient of the block's end", cnnl__layer_label(l));
    cnnl_status st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
    if (st != CNNL_OK)
        return st;
    float *g = l->gin_ws->data;
    const float *a = gy->data, *b = B->skip->data;
    for (size_t i = 0; i < gy->numel; i++)
        g[i] = a[i] + b[i];
    l->gin = l->gin_ws;
    return CNNL_OK;
}

static cnnl_status end_forward(cnnl_layer *l, const cnnl_tensor *y)
{
    res_end *E = (res_end *)l;
    const cnnl_tensor *x = E->begin->x;
    bool same = x && x->ndim == y->ndim;
    for (int i = 0; same && i < x->ndim; i++)
        same = x->shape[i] == y->shape[i];
    if (!same) {
        char want[96];
        return cnnl__layer_shape_error(l, y, x ? cnnl__shape_str(x, want, sizeof want) : "the block's input shape");
    }
    cnnl_status st = cnnl__tensor_ensure(&l->out_ws, y->ndim, y->shape);
    if (st != CNNL_OK)
        return st;
    float *o = l->out_ws->data;
    const float *a = y->data, *b = x->data;
    for (size_t i = 0; i < y->numel; i++)
        o[i] = a[i] + b[i];
    l->out = l->out_ws;
    if (!cnnl__finite(o, y->numel))
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    return CNNL_OK;
}

static cnnl_status end_backward(cnnl_layer *l, const cnnl_tensor *y, const cnnl_tensor *gy, bool want_gin,
                                bool param_grads)
{
    res_end *E = (res_end *)l;
    (void)y;
    (void)param_grads;
    E->begin->skip = gy;
    if (want_gin)
        cnnl__layer_pass_gradient(l, gy);
    return CNNL_OK;
}

static const cnnl__layer_ops begin_ops = {"Residual", begin_forward, begin_backward, NULL, NULL};
static const cnnl__layer_ops end_ops = {"Residual", end_forward, end_backward, NULL, NULL};

cnnl_status cnnl__residual_begin_create(cnnl_layer **out)
{
    *out = cnnl__layer_new(sizeof(res_begin), &begin_ops);
    return *out ? CNNL_OK : CNNL_ENOMEM;
}

cnnl_status cnnl__residual_end_create(cnnl_layer **out, cnnl_layer *begin)
{
    *out = NULL;
    if (!begin || begin->ops != &begin_ops)
        return cnnl__error(CNNL_EINVAL, "Residual: the end of a block needs the block's begin marker");
    res_end *E = (res_end *)cnnl__layer_new(sizeof(res_end), &end_ops);
    if (!E)
        return CNNL_ENOMEM;
    E->begin = (res_begin *)begin;
    *out = &E->base;
    return CNNL_OK;
}

bool cnnl__layer_keeps_gout(const cnnl_layer *l)
{
    return l->ops == &end_ops;
}

/* ---- AdaptiveAvgPool2d(1) ------------------------------------------------------------------ */

static cnnl_status gap_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    if (x->ndim != 4 || x->shape[2] < 1 || x->shape[3] < 1)
        return cnnl__layer_shape_error(l, x, "N x C x H x W");
    cnnl_status st = cnnl__tensor_ensure4(&l->out_ws, x->shape[0], x->shape[1], 1, 1);
    if (st != CNNL_OK)
        return st;
    size_t planes = (size_t)x->shape[0] * (size_t)x->shape[1], hw = (size_t)x->shape[2] * (size_t)x->shape[3];
    for (size_t p = 0; p < planes; p++) {
        const float *src = x->data + p * hw;
        double s = 0.0;
        for (size_t i = 0; i < hw; i++)
            s += src[i];
        l->out_ws->data[p] = (float)(s / (double)hw);
    }
    l->out = l->out_ws;
    return CNNL_OK;
}

static cnnl_status gap_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                bool param_grads)
{
    (void)param_grads;
    if (!want_gin)
        return CNNL_OK;
    cnnl_status st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
    if (st != CNNL_OK)
        return st;
    size_t planes = (size_t)x->shape[0] * (size_t)x->shape[1], hw = (size_t)x->shape[2] * (size_t)x->shape[3];
    for (size_t p = 0; p < planes; p++) {
        float g = gy->data[p] / (float)hw;
        float *dst = l->gin_ws->data + p * hw;
        for (size_t i = 0; i < hw; i++)
            dst[i] = g;
    }
    l->gin = l->gin_ws;
    return CNNL_OK;
}

static const cnnl__layer_ops gap_ops = {"AdaptiveAvgPool2d", gap_forward, gap_backward, NULL, NULL};

cnnl_status cnnl__adaptive_avgpool1_create(cnnl_layer **out)
{
    *out = cnnl__layer_new(sizeof(struct cnnl_layer), &gap_ops);
    return *out ? CNNL_OK : CNNL_ENOMEM;
}
