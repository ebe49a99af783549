/* Activation and Dropout layers. */
#include <math.h>
#include <stdio.h>

#include "core/internal.h"
#include "nn/layer.h"
#include "ops/kernels.h"

typedef struct activation {
    struct cnnl_layer base;
    cnnl_activation kind;
    float param;
    bool passthrough; /* a ReLU applied by the layer before it */
} activation;

static const char *act_kind_name(cnnl_activation k)
{
    static const char *names[] = {"ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid", "Softmax"};
    return names[k];
}

/* Softmax works over dimension 1 of (N, C, ...). */
static void softmax_dims(const cnnl_tensor *x, int *n, int *c, size_t *inner)
{
    *n = (int)x->shape[0];
    *c = x->ndim > 1 ? (int)x->shape[1] : 1;
    *inner = x->numel / ((size_t)(*n ? *n : 1) * (size_t)(*c ? *c : 1));
}

static cnnl_status act_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    activation *A = (activation *)l;
    if (A->passthrough) {
        cnnl__layer_pass_output(l, x);
        return CNNL_OK;
    }
    cnnl_status st = cnnl__tensor_ensure(&l->out_ws, x->ndim, x->shape);
    if (st != CNNL_OK)
        return st;
    l->out = l->out_ws;
    bool ok = true;
    if (A->kind == CNNL_ACT_SOFTMAX) {
        if (x->ndim < 2)
            return cnnl__layer_shape_error(l, x, "at least 2 dimensions (N, C, ...)");
        int n, c;
        size_t inner;
        softmax_dims(x, &n, &c, &inner);
        cnnl__softmax_forward(x->data, l->out_ws->data, n, c, inner);
        ok = cnnl__finite(l->out_ws->data, x->numel);
    } else {
        ok = cnnl__act_forward((cnnl__act)A->kind, A->param, x->data, l->out_ws->data, x->numel);
    }
    if (!ok)
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    return CNNL_OK;
}

static cnnl_status act_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                bool param_grads)
{
    activation *A = (activation *)l;
    (void)param_grads;
    if (!want_gin)
        return CNNL_OK;
    if (A->passthrough) {
        cnnl__layer_pass_gradient(l, gy);
        return CNNL_OK;
    }
    cnnl_status st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
    if (st != CNNL_OK)
        return st;
    if (A->kind == CNNL_ACT_SOFTMAX) {
        int n, c;
        size_t inner;
        softmax_dims(x, &n, &c, &inner);
        cnnl__softmax_backward(l->out->data, gy->data, l->gin_ws->data, n, c, inner);
    } else {
        cnnl__act_backward((cnnl__act)A->kind, A->param, x->data, l->out->data, gy->data, l->gin_ws->data,
                           x->numel);
    }
    l->gin = l->gin_ws;
    return CNNL_OK;
}

bool cnnl__relu_make_passthrough(cnnl_layer *l)
{
    if (l->ops->forward != act_forward || ((activation *)l)->kind != CNNL_ACT_RELU)
        return false;
    ((activation *)l)->passthrough = true;
    return true;
}

static const cnnl__layer_ops act_ops[] = {
    {"ReLU", act_forward, act_backward, NULL, NULL},    {"LeakyReLU", act_forward, act_backward, NULL, NULL},
    {"ELU", act_forward, act_backward, NULL, NULL},     {"Tanh", act_forward, act_backward, NULL, NULL},
    {"Sigmoid", act_forward, act_backward, NULL, NULL}, {"Softmax", act_forward, act_backward, NULL, NULL},
};

CNNL_API cnnl_status cnnl_activation_create(cnnl_layer **out, cnnl_activation kind, float param)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_activation_create: out is NULL");
    *out = NULL;
    if ((int)kind < 0 || (int)kind > (int)CNNL_ACT_SOFTMAX)
        return cnnl__error(CNNL_EINVAL, "cnnl_activation_create: unknown activation %d", (int)kind);
    if (!isfinite(param))
        return cnnl__error(CNNL_EINVAL, "cnnl_activation_create: %s parameter is not finite", act_kind_name(kind));
    activation *A = (activation *)cnnl__layer_new(sizeof(activation), &act_ops[kind]);
    if (!A)
        return CNNL_ENOMEM;
    A->kind = kind;
    A->param = param;
    *out = &A->base;
    return CNNL_OK;
}

/* Inverted dropout: each element is multiplied by 0 or 1/(1-p), so evaluation needs no
 * rescaling. Forward keeps one bit per element (kept or dropped) for backward, which multiplies
 * by the same factors: 1/32 of a float mask's memory, the same bits. */
typedef struct dropout {
    struct cnnl_layer base;
    float p;
    cnnl_tensor *mask; /* storage for one bit per element, 32 to a word */
    bool masked;       /* the last forward applied the mask */
} dropout;

/* Whether element @p i is kept under @p key. One draw of the layer's generator per batch keys
 * a counter-based stream: element i's uniform is a SplitMix64 hash of (key, i), so the mask is
 * drawn in parallel and still depends only on the seed and the batch (not on threads); a
 * resumed run restores the generator and gets the same masks. The serial generator took 2.5%
 * of a training step. */
static inline bool dropout_kept(uint64_t key, size_t i, float p)
{
    uint64_t z = key + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f); /* 24 bits: uniform in [0, 1) */
    return !(u < p);
}

/* y = x times the factors of mask @p m (bit i of word i/32 set: @p keep, 1/(1-p); else 0).
 * Branch-free: each byte of the mask picks its 8 factors from a table. */
static void dropout_scale(const float *x, const uint32_t *m, float *y, size_t n, float keep)
{
    float tab[256][8];
    for (int b = 0; b < 256; b++)
        for (int j = 0; j < 8; j++)
            tab[b][j] = (b >> j) & 1 ? keep : 0.0f;
    size_t words = (n + 31) / 32;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(static) if (n >= ((size_t)1 << 16))
    for (size_t w = 0; w < words; w++) {
        size_t i0 = w * 32, len = n - i0 < 32 ? n - i0 : 32;
        uint32_t bits = m[w];
        if (len == 32) {
            for (int q = 0; q < 4; q++) {
                const float *f = tab[(bits >> (8 * q)) & 255u];
                for (int j = 0; j < 8; j++) /* a fixed count: vectorised */
                    y[i0 + 8 * q + j] = x[i0 + 8 * q + j] * f[j];
            }
        } else {
            for (size_t j = 0; j < len; j++)
                y[i0 + j] = x[i0 + j] * tab[(bits >> (j & ~(size_t)7)) & 255u][j & 7];
        }
    }
}

static cnnl_status dropout_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    dropout *D = (dropout *)l;
    D->masked = l->training && D->p > 0.0f;
    if (!D->masked) {
        cnnl__layer_pass_output(l, x);
        return CNNL_OK;
    }
    size_t n = x->numel, words = (n + 31) / 32;
    int64_t ms[1] = {(int64_t)words};
    cnnl_status st = cnnl__tensor_ensure(&l->out_ws, x->ndim, x->shape);
    if (st == CNNL_OK)
        st = cnnl__tensor_ensure(&D->mask, 1, ms);
    if (st != CNNL_OK)
        return st;
    const float p = D->p;
    uint32_t *m = (uint32_t *)(void *)D->mask->data;
    uint64_t key = cnnl__rng_u64(l->rng);
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(static) if (n >= ((size_t)1 << 16))
    for (size_t w = 0; w < words; w++) {
        size_t i0 = w * 32, i1 = i0 + 32 < n ? i0 + 32 : n;
        uint32_t bits = 0;
        for (size_t i = i0; i < i1; i++)
            bits |= (uint32_t)dropout_kept(key, i, p) << (i - i0);
        m[w] = bits;
    }
    dropout_scale(x->data, m, l->out_ws->data, n, 1.0f / (1.0f - p));
    l->out = l->out_ws;
    return CNNL_OK;
}

static cnnl_status dropout_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                                    bool param_grads)
{
    dropout *D = (dropout *)l;
    (void)param_grads;
    if (!want_gin)
        return CNNL_OK;
    if (!D->masked) {
        cnnl__layer_pass_gradient(l, gy);
        return CNNL_OK;
    }
    cnnl_status st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
    if (st != CNNL_OK)
        return st;
    dropout_scale(gy->data, (const uint32_t *)(const void *)D->mask->data, l->gin_ws->data, x->numel,
                  1.0f / (1.0f - D->p));
    l->gin = l->gin_ws;
    return CNNL_OK;
}

static void dropout_destroy(cnnl_layer *l)
{
    cnnl_tensor_free(((dropout *)l)->mask);
}

static const cnnl__layer_ops dropout_ops = {"Dropout", dropout_forward, dropout_backward, dropout_destroy, NULL};

CNNL_API cnnl_status cnnl_dropout_create(cnnl_layer **out, float p)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_dropout_create: out is NULL");
    *out = NULL;
    if (!(p >= 0.0f && p < 1.0f))
        return cnnl__error(CNNL_EINVAL, "cnnl_dropout_create: p is %g; must be in [0, 1)", (double)p);
    dropout *D = (dropout *)cnnl__layer_new(sizeof(dropout), &dropout_ops);
    if (!D)
        return CNNL_ENOMEM;
    D->p = p;
    *out = &D->base;
    return CNNL_OK;
}
