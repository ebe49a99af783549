/*
 * Conv2d. The kernels (lib/ops/conv.c) run one image per thread at a time; this layer keeps
 * their workspaces: one im2col buffer and one weight-gradient accumulator per thread, sized
 * on first use and reused afterwards.
 */
#include <stdio.h>

#include "core/internal.h"
#include "nn/layer.h"
#include "ops/conv_generic.h"
#include "ops/kernels.h"

typedef struct conv {
    struct cnnl_layer base;
    int in_c, out_c, k, stride, pad;
    int dil, groups;  /* other than 1: the generic engine (lib/ops/conv_generic.c), never fused */
    bool bias;
    bool relu;        /* the following ReLU layer is fused into this one */
    bool pool;        /* and the MaxPool2d(2, 2) after it */
    bool bf16;        /* bfloat16 inputs and weights (cnnl_model_set_precision) */
    cnnl_tensor *arg; /* pooled: window position of each maximum, one byte each */
    bool arg_ok;      /* arg belongs to the last forward pass (see conv_forward) */
    cnnl_tensor *col; /* threads x workspace (im2col band, masked gradient band) */
    cnnl_tensor *acc; /* batch slots x (weight + bias) partial gradients */
    cnnl_tensor *wino; /* Winograd workspace (lib/ops/conv_winograd.c) */
#ifdef CNNL_HAVE_DNNL
    cnnl__dnnl_conv *dnnl; /* oneDNN primitives and buffers, made on first use */
#endif
} conv;

static cnnl_status conv_geom(cnnl_layer *l, const cnnl_tensor *x, cnnl__conv_geom *g)
{
    conv *C = (conv *)l;
    char want[96];
    int span = C->dil * (C->k - 1) + 1; /* input extent of one window */
    snprintf(want, sizeof want, "N x %d x H x W with H, W + 2*%d >= %d", C->in_c, C->pad, span);
    if (x->ndim != 4 || x->shape[1] != C->in_c || x->shape[2] + 2 * C->pad < span ||
        x->shape[3] + 2 * C->pad < span || x->shape[2] > 1 << 20 || x->shape[3] > 1 << 20)
        return cnnl__layer_shape_error(l, x, want);
    g->n = (int)x->shape[0];
    g->c = C->in_c;
    g->h = (int)x->shape[2];
    g->w = (int)x->shape[3];
    g->oc = C->out_c;
    g->k = C->k;
    g->stride = C->stride;
    g->pad = C->pad;
    g->oh = (g->h + 2 * g->pad - span) / g->stride + 1;
    g->ow = (g->w + 2 * g->pad - span) / g->stride + 1;
    g->relu = C->relu;
    g->pool = C->pool;
    g->bf16 = C->bf16;
    g->dil = C->dil;
    g->groups = C->groups;
    if (C->pool && (g->oh < 2 || g->ow < 2))
        return cnnl__layer_shape_error(l, x, "an input whose convolution output is at least 2x2 (a 2x2 max pool follows)");
    return CNNL_OK;
}

/* What forward and backward both start with: the geometry of @p x, the thread count, and a
 * workspace per thread (for the portable engine). */
static cnnl_status conv_begin(cnnl_layer *l, const cnnl_tensor *x, cnnl__conv_geom *g, int *threads)
{
    conv *C = (conv *)l;
    cnnl_status st = conv_geom(l, x, g);
    if (st != CNNL_OK)
        return st;
    *threads = cnnl__num_threads();
    if (cnnl__conv_is_generic(g)) {
        if (g->bf16)
            return cnnl__error(CNNL_EUNSUPPORTED, "%s: bfloat16 is not supported with dilation %d, groups %d "
                               "(only the float32 generic convolution runs them)", cnnl__layer_label(l), g->dil,
                               g->groups);
        int64_t shape[1] = {(int64_t)cnnl__conv_generic_acc_floats(g)};
        return cnnl__tensor_ensure(&C->acc, 1, shape);
    }
#ifdef CNNL_HAVE_DNNL
    if (cnnl__dnnl_conv_ok(g))
        return CNNL_OK; /* the oneDNN engine keeps its own workspaces */
#endif
    if (g->bf16)
        return cnnl__error(CNNL_EUNSUPPORTED, "%s: bfloat16 needs the oneDNN convolution engine", cnnl__layer_label(l));
    int64_t shape[2] = {*threads, (int64_t)cnnl__conv_ws_floats(g)};
    return cnnl__tensor_ensure(&C->col, 2, shape);
}

#ifdef CNNL_HAVE_DNNL
/* The forward pass of the oneDNN engine into l->out_ws, with the maxima's positions when
 * @p with_arg: on AVX2 CPUs, where oneDNN has no Winograd kernel, by lib/ops/conv_winograd.c
 * where it applies; by oneDNN otherwise. */
static cnnl_status dnnl_forward(cnnl_layer *l, const cnnl__conv_geom *g, const cnnl_tensor *x, bool with_arg)
{
    conv *C = (conv *)l;
    bool finite = true;
    uint8_t *arg = C->pool && with_arg ? (uint8_t *)C->arg->data : NULL;
    const float *b = C->bias ? l->state[1].data : NULL;
    if (cnnl__winograd_ok(g)) {
        int threads = cnnl__num_threads();
        int64_t ws[1] = {(int64_t)cnnl__winograd_ws_floats(g, threads)};
        cnnl_status st = cnnl__tensor_ensure(&C->wino, 1, ws);
        if (st != CNNL_OK)
            return st;
        finite = cnnl__winograd_forward(g, x->data, l->state[0].data, b, l->out_ws->data, arg, C->wino->data, threads);
    } else {
        cnnl_status st = cnnl__dnnl_conv2d_forward(&C->dnnl, g, x->data, l->state[0].data, b, l->out_ws->data, arg,
                                                   &finite);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "%s", cnnl__layer_label(l));
    }
    if (!finite)
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    C->arg_ok = !C->pool || with_arg;
    return CNNL_OK;
}
#endif

static cnnl_status conv_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    conv *C = (conv *)l;
    cnnl__conv_geom g;
    int threads;
    cnnl_status st = conv_begin(l, x, &g, &threads);
    if (st != CNNL_OK)
        return st;
    int oh = C->pool ? g.oh / 2 : g.oh, ow = C->pool ? g.ow / 2 : g.ow;
    if ((st = cnnl__tensor_ensure4(&l->out_ws, g.n, g.oc, oh, ow)) != CNNL_OK)
        return st;
    if (C->pool) {
        /* One byte per pooled output, stored in a float tensor's storage. */
        int64_t as[1] = {(int64_t)((l->out_ws->numel + 3) / 4)};
        if ((st = cnnl__tensor_ensure(&C->arg, 1, as)) != CNNL_OK)
            return st;
    }
    l->out = l->out_ws;
    C->arg_ok = true;
    if (cnnl__conv_is_generic(&g)) {
        if (!cnnl__conv_generic_forward(&g, x->data, l->state[0].data, C->bias ? l->state[1].data : NULL,
                                        l->out_ws->data, threads))
            return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
        return CNNL_OK;
    }
#ifdef CNNL_HAVE_DNNL
    if (cnnl__dnnl_conv_ok(&g)) {
        /* In evaluation mode the maxima's positions are left out (inference ran 5% faster
         * without them); a backward pass after such a forward pass (Grad-CAM) runs the
         * forward again with them (conv_backward). */
        return dnnl_forward(l, &g, x, l->training);
    }
#endif
    bool ok = cnnl__conv2d_forward(&g, x->data, l->state[0].data, C->bias ? l->state[1].data : NULL,
                                   l->out_ws->data, C->pool ? (uint8_t *)C->arg->data : NULL, C->col->data, threads);
    if (!ok)
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    return CNNL_OK;
}

static cnnl_status conv_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                 bool param_grads)
{
    conv *C = (conv *)l;
    cnnl__conv_geom g;
    int threads;
    cnnl_status st = conv_begin(l, x, &g, &threads);
    if (st != CNNL_OK)
        return st;
    if (cnnl__conv_is_generic(&g)) {
        if (want_gin) {
            if ((st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape)) != CNNL_OK)
                return st;
            l->gin = l->gin_ws;
        }
        cnnl__conv_generic_backward(&g, x->data, l->state[0].data, gy->data, want_gin ? l->gin_ws->data : NULL,
                                    param_grads ? l->state[0].grad : NULL,
                                    param_grads && C->bias ? l->state[1].grad : NULL, C->acc->data, threads);
        return CNNL_OK;
    }
#ifdef CNNL_HAVE_DNNL
    if (cnnl__dnnl_conv_ok(&g)) {
        /* After an evaluation-mode forward: the same outputs again (deterministic), now with
         * the maxima's positions. */
        if (!C->arg_ok && (st = dnnl_forward(l, &g, x, true)) != CNNL_OK)
            return st;
        if (want_gin) {
            if ((st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape)) != CNNL_OK)
                return st;
            l->gin = l->gin_ws;
        }
        st = cnnl__dnnl_conv2d_backward(&C->dnnl, &g, x->data, l->state[0].data, l->out->data,
                                        C->pool ? (const uint8_t *)C->arg->data : NULL, gy->data,
                                        want_gin ? l->gin_ws->data : NULL, param_grads ? l->state[0].grad : NULL,
                                        param_grads && C->bias ? l->state[1].grad : NULL);
        return st == CNNL_OK ? CNNL_OK : cnnl__error_context(st, "%s", cnnl__layer_label(l));
    }
#endif
    int64_t acc_shape[2] = {cnnl__conv_slots(g.n), (int64_t)g.oc * g.c * g.k * g.k + g.oc};
    if ((st = cnnl__tensor_ensure(&C->acc, 2, acc_shape)) != CNNL_OK)
        return st;
    if (want_gin) {
        if ((st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape)) != CNNL_OK)
            return st;
        l->gin = l->gin_ws;
    }
    cnnl__conv2d_backward(&g, x->data, l->state[0].data, l->out->data,
                          C->pool ? (const uint8_t *)C->arg->data : NULL, gy->data, want_gin ? l->gin_ws->data : NULL,
                          param_grads ? l->state[0].grad : NULL, param_grads && C->bias ? l->state[1].grad : NULL,
                          C->col->data, C->acc->data, threads);
    return CNNL_OK;
}

static void conv_destroy(cnnl_layer *l)
{
    conv *C = (conv *)l;
    cnnl_tensor_free(C->col);
    cnnl_tensor_free(C->wino);
    cnnl_tensor_free(C->acc);
    cnnl_tensor_free(C->arg);
#ifdef CNNL_HAVE_DNNL
    cnnl__dnnl_conv_free(C->dnnl);
#endif
}

static bool conv_fuse_next(cnnl_layer *l, cnnl_layer *next)
{
    conv *C = (conv *)l;
    if (C->dil != 1 || C->groups != 1)
        return false; /* the generic engine has no fused epilogue: the ReLU and pool layers run */
    if (!C->relu)
        return C->relu = cnnl__relu_make_passthrough(next);
    if (!C->pool)
        return C->pool = cnnl__maxpool2_make_passthrough(next);
    return false;
}

static const cnnl__layer_ops conv_ops;

cnnl_status cnnl__conv_bf16_check(void)
{
#ifdef CNNL_HAVE_DNNL
    if (!cnnl__dnnl_enabled())
        return cnnl__error(CNNL_EUNSUPPORTED, "bfloat16: needs the oneDNN convolution engine "
                           "(CNNLITE_CONV_ENGINE=portable is set)");
    return cnnl__dnnl_bf16_check();
#else
    return cnnl__error(CNNL_EUNSUPPORTED, "bfloat16: this build has no oneDNN convolution engine (-Ddnnl=disabled)");
#endif
}

void cnnl__conv_set_bf16(cnnl_layer *l, bool on)
{
    if (l && l->ops == &conv_ops)
        ((conv *)l)->bf16 = on;
}

static const cnnl__layer_ops conv_ops = {"Conv2d", conv_forward, conv_backward, conv_destroy, conv_fuse_next};

CNNL_API cnnl_status cnnl_conv2d_create(cnnl_layer **out, int in_channels, int out_channels, int kernel,
                                        int stride, int padding, bool bias)
{
    return cnnl__conv2d_create_ex(out, in_channels, out_channels, kernel, stride, padding, 1, 1, bias);
}

cnnl_status cnnl__conv2d_create_ex(cnnl_layer **out, int in_channels, int out_channels, int kernel, int stride,
                                   int padding, int dilation, int groups, bool bias)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_conv2d_create: out is NULL");
    *out = NULL;
    const char *bad = in_channels < 1 ? "in_channels" : out_channels < 1 ? "out_channels" : kernel < 1 ? "kernel"
                      : stride < 1 ? "stride" : padding < 0 ? "padding" : dilation < 1 ? "dilation"
                      : groups < 1 ? "groups" : NULL;
    if (bad)
        return cnnl__error(CNNL_EINVAL, "cnnl_conv2d_create: %s is out of range (in_channels %d, out_channels %d, "
                           "kernel %d, stride %d, padding %d, dilation %d, groups %d)", bad, in_channels,
                           out_channels, kernel, stride, padding, dilation, groups);
    if (in_channels > 65536 || out_channels > 65536 || kernel > 64 || padding > 64 || dilation > 64)
        return cnnl__error(CNNL_EINVAL, "cnnl_conv2d_create: sizes too large");
    if (in_channels % groups != 0 || out_channels % groups != 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_conv2d_create: groups %d does not divide in_channels %d and "
                           "out_channels %d", groups, in_channels, out_channels);
    conv *C = (conv *)cnnl__layer_new(sizeof(conv), &conv_ops);
    if (!C)
        return CNNL_ENOMEM;
    C->in_c = in_channels;
    C->out_c = out_channels;
    C->k = kernel;
    C->stride = stride;
    C->pad = padding;
    C->dil = dilation;
    C->groups = groups;
    C->bias = bias;
    size_t fan_in = (size_t)(in_channels / groups) * kernel * kernel;
    int64_t ws[4] = {out_channels, in_channels / groups, kernel, kernel}, bs[1] = {out_channels};
    cnnl_status st = cnnl__layer_add_state(&C->base, "weight", 4, ws, CNNL_DTYPE_F32, true, fan_in,
                                           CNNL__INIT_KAIMING);
    if (st == CNNL_OK && bias)
        st = cnnl__layer_add_state(&C->base, "bias", 1, bs, CNNL_DTYPE_F32, true, fan_in, CNNL__INIT_KAIMING);
    if (st != CNNL_OK) {
        cnnl_layer_free(&C->base);
        return st;
    }
    *out = &C->base;
    return CNNL_OK;
}
