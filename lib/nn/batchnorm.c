/* BatchNorm2d: batch statistics in training (running statistics updated with momentum 0.1 and
 * the unbiased variance), running statistics in evaluation. A following ReLU (and 2x2 max
 * pool) can be fused into it, as for Conv2d. With a synchronisation hook (nn/bn_sync.h) the
 * batch statistics are those of the global batch over all processes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "nn/bn_sync.h"
#include "nn/layer.h"
#include "ops/kernels.h"


typedef struct batchnorm {
    struct cnnl_layer base;
    int c;
    float eps, momentum; /* PyTorch's defaults 1e-5 and 0.1 unless a description sets them */
    cnnl_tensor *stats; /* mean, invstd, unbiased var of the last forward: 3 x c */
    bool batch_stats;   /* the last forward normalised with batch statistics */
    cnnl__bn_fuse fuse; /* the ReLU / ReLU + MaxPool2d(2, 2) after it, taken over */
    cnnl_tensor *arg;   /* pooled: window position of each maximum, one byte each */
    const cnnl__bn_sync *sync; /* synchronised statistics, or NULL */
    double *red;        /* sync: 2c + 1 doubles reduced over the processes */
    float *gmean;       /* sync: 2c floats, the global means of g and g * xhat (backward) */
    double count;       /* sync: the global element count of the last forward */
    bool synced;        /* the last forward used global statistics */
} batchnorm;

enum { GAMMA, BETA, RMEAN, RVAR, NBT };

static bool syncing(const batchnorm *B)
{
    return B->sync != NULL && B->sync->active && B->base.training;
}

/* Global statistics: element count and sums of x, then sums of (x - mean)^2, each summed over
 * the processes; @p x NULL for a process without images. Same arithmetic as cnnl__bn_stats. */
static cnnl_status sync_stats(batchnorm *B, const float *x, int n, size_t hw, float *mean, float *invstd,
                              float *var_unbiased)
{
    int c = B->c;
    double *r = B->red;
    if (x != NULL)
        cnnl__bn_channel_sums(x, n, c, hw, r);
    else
        memset(r, 0, (size_t)c * sizeof *r);
    r[c] = (double)n * (double)hw;
    cnnl_status st = B->sync->reduce(B->sync->user, r, (size_t)c + 1);
    if (st != CNNL_OK)
        return cnnl__error_context(st, "%s: synchronised batch statistics", cnnl__layer_label(&B->base));
    double count = r[c];
    if (count < 2.0)
        return cnnl__error(CNNL_ESHAPE, "%s: training needs more than one value per channel over all "
                           "processes (%.0f)", cnnl__layer_label(&B->base), count);
    for (int ch = 0; ch < c; ch++)
        mean[ch] = (float)(r[ch] / count);
    if (x != NULL)
        cnnl__bn_channel_sq_dev(x, n, c, hw, mean, r);
    else
        memset(r, 0, (size_t)c * sizeof *r);
    st = B->sync->reduce(B->sync->user, r, (size_t)c);
    if (st != CNNL_OK)
        return cnnl__error_context(st, "%s: synchronised batch statistics", cnnl__layer_label(&B->base));
    for (int ch = 0; ch < c; ch++) {
        double q = r[ch], var = q / count;
        invstd[ch] = (float)(1.0 / sqrt(var + B->eps));
        var_unbiased[ch] = (float)(count > 1.0 ? q / (count - 1.0) : var);
    }
    B->count = count;
    return CNNL_OK;
}

static void update_running(batchnorm *B, const float *mean, const float *var)
{
    cnnl_layer *l = &B->base;
    float *rm = l->state[RMEAN].data, *rv = l->state[RVAR].data;
    for (int i = 0; i < B->c; i++) {
        rm[i] = (1.0f - B->momentum) * rm[i] + B->momentum * mean[i];
        rv[i] = (1.0f - B->momentum) * rv[i] + B->momentum * var[i];
    }
    l->state[NBT].data_i64[0]++;
}

static cnnl_status bn_forward(cnnl_layer *l, const cnnl_tensor *x)
{
    batchnorm *B = (batchnorm *)l;
    if (x->ndim != 4 || x->shape[1] != B->c) {
        char want[64];
        snprintf(want, sizeof want, "N x %d x H x W", B->c);
        return cnnl__layer_shape_error(l, x, want);
    }
    int n = (int)x->shape[0], c = B->c, h = (int)x->shape[2], w = (int)x->shape[3];
    size_t hw = (size_t)h * (size_t)w;
    bool pool = B->fuse == CNNL__BN_RELU_POOL;
    if (pool && (h < 2 || w < 2))
        return cnnl__layer_shape_error(l, x, "N x C x H x W with H, W >= 2 (a 2x2 max pool follows)");
    bool sync = syncing(B);
    if (l->training && !sync && (size_t)n * hw < 2)
        return cnnl__error(CNNL_ESHAPE, "%s: training needs more than one value per channel (input %lldx%lldx%lldx%lld)",
                           cnnl__layer_label(l), (long long)x->shape[0], (long long)x->shape[1],
                           (long long)x->shape[2], (long long)x->shape[3]);
    int64_t ss[2] = {3, c};
    cnnl_status st = cnnl__tensor_ensure(&B->stats, 2, ss);
    if (st == CNNL_OK)
        st = cnnl__tensor_ensure4(&l->out_ws, n, c, pool ? h / 2 : h, pool ? w / 2 : w);
    if (st == CNNL_OK && pool) {
        int64_t as[1] = {(int64_t)((l->out_ws->numel + 3) / 4)};
        st = cnnl__tensor_ensure(&B->arg, 1, as);
    }
    if (st != CNNL_OK)
        return st;
    float *mean = B->stats->data, *invstd = mean + c, *var = invstd + c;
    B->batch_stats = l->training;
    B->synced = sync;
    if (sync) {
        st = sync_stats(B, x->data, n, hw, mean, invstd, var);
        if (st != CNNL_OK)
            return st;
        update_running(B, mean, var);
    } else if (l->training) {
        cnnl__bn_stats(x->data, n, c, hw, B->eps, mean, invstd, var);
        update_running(B, mean, var);
    } else {
        for (int i = 0; i < c; i++) {
            mean[i] = l->state[RMEAN].data[i];
            invstd[i] = (float)(1.0 / sqrt((double)l->state[RVAR].data[i] + B->eps));
        }
    }
    l->out = l->out_ws;
    if (!cnnl__bn_apply(x->data, n, c, h, w, mean, invstd, l->state[GAMMA].data, l->state[BETA].data, B->fuse,
                        l->out_ws->data, pool ? (uint8_t *)B->arg->data : NULL))
        return cnnl__error(CNNL_ENUMERIC, "%s: the output is not finite", cnnl__layer_label(l));
    return CNNL_OK;
}

static cnnl_status bn_backward(cnnl_layer *l, const cnnl_tensor *x, const cnnl_tensor *gy, bool want_gin,
                               bool param_grads)
{
    batchnorm *B = (batchnorm *)l;
    int n = (int)x->shape[0], c = B->c, h = (int)x->shape[2], w = (int)x->shape[3];
    if (want_gin) {
        cnnl_status st = cnnl__tensor_ensure(&l->gin_ws, x->ndim, x->shape);
        if (st != CNNL_OK)
            return st;
        l->gin = l->gin_ws;
    }
    float *mean = B->stats->data, *invstd = mean + c;
    if (B->batch_stats && B->synced && syncing(B)) {
        /* Parameter gradients from this process's sums; the input gradient from the global ones. */
        const uint8_t *arg = B->fuse == CNNL__BN_RELU_POOL ? (const uint8_t *)B->arg->data : NULL;
        double *sg = B->red, *sgx = B->red + c;
        cnnl__bn_grad_sums(x->data, l->out->data, arg, gy->data, n, c, h, w, mean, B->fuse, sg, sgx);
        if (param_grads)
            for (int ch = 0; ch < c; ch++) {
                l->state[GAMMA].grad[ch] += (float)(sgx[ch] * invstd[ch]);
                l->state[BETA].grad[ch] += (float)sg[ch];
            }
        cnnl_status st = B->sync->reduce(B->sync->user, B->red, 2 * (size_t)c);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "%s: synchronised gradient sums", cnnl__layer_label(l));
        float *mg = B->gmean, *mx = B->gmean + c;
        for (int ch = 0; ch < c; ch++) {
            mg[ch] = (float)(sg[ch] / B->count);
            mx[ch] = (float)(sgx[ch] * invstd[ch] / B->count);
        }
        if (want_gin)
            cnnl__bn_grad_input(x->data, l->out->data, arg, gy->data, n, c, h, w, mean, invstd,
                                l->state[GAMMA].data, mg, mx, B->fuse, l->gin_ws->data);
        return CNNL_OK;
    }
    cnnl__bn_backward(x->data, l->out->data, B->fuse == CNNL__BN_RELU_POOL ? (const uint8_t *)B->arg->data : NULL,
                      gy->data, n, c, h, w, mean, invstd, l->state[GAMMA].data, B->batch_stats, B->fuse,
                      want_gin ? l->gin_ws->data : NULL, param_grads ? l->state[GAMMA].grad : NULL,
                      param_grads ? l->state[BETA].grad : NULL);
    return CNNL_OK;
}

static void bn_destroy(cnnl_layer *l)
{
    cnnl_tensor_free(((batchnorm *)l)->stats);
    cnnl_tensor_free(((batchnorm *)l)->arg);
    cnnl__free(((batchnorm *)l)->red);
    cnnl__free(((batchnorm *)l)->gmean);
}

static bool bn_fuse_next(cnnl_layer *l, cnnl_layer *next)
{
    batchnorm *B = (batchnorm *)l;
    if (B->fuse == CNNL__BN_PLAIN && cnnl__relu_make_passthrough(next)) {
        B->fuse = CNNL__BN_RELU;
        return true;
    }
    if (B->fuse == CNNL__BN_RELU && cnnl__maxpool2_make_passthrough(next)) {
        B->fuse = CNNL__BN_RELU_POOL;
        return true;
    }
    return false;
}

static const cnnl__layer_ops bn_ops = {"BatchNorm2d", bn_forward, bn_backward, bn_destroy, bn_fuse_next};

CNNL_API cnnl_status cnnl_batchnorm2d_create(cnnl_layer **out, int channels)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_batchnorm2d_create: out is NULL");
    *out = NULL;
    if (channels < 1 || channels > (1 << 20))
        return cnnl__error(CNNL_EINVAL, "cnnl_batchnorm2d_create: channels is %d; must be in 1..%d", channels, 1 << 20);
    batchnorm *B = (batchnorm *)cnnl__layer_new(sizeof(batchnorm), &bn_ops);
    if (!B)
        return CNNL_ENOMEM;
    B->c = channels;
    B->eps = 1e-5f;
    B->momentum = 0.1f;
    int64_t cs[1] = {channels};
    cnnl_status st = cnnl__layer_add_state(&B->base, "weight", 1, cs, CNNL_DTYPE_F32, true, 0, CNNL__INIT_ONES);
    if (st == CNNL_OK)
        st = cnnl__layer_add_state(&B->base, "bias", 1, cs, CNNL_DTYPE_F32, true, 0, CNNL__INIT_ZEROS);
    if (st == CNNL_OK)
        st = cnnl__layer_add_state(&B->base, "running_mean", 1, cs, CNNL_DTYPE_F32, false, 0, CNNL__INIT_ZEROS);
    if (st == CNNL_OK)
        st = cnnl__layer_add_state(&B->base, "running_var", 1, cs, CNNL_DTYPE_F32, false, 0, CNNL__INIT_ONES);
    if (st == CNNL_OK)
        st = cnnl__layer_add_state(&B->base, "num_batches_tracked", 0, NULL, CNNL_DTYPE_I64, false, 0,
                                   CNNL__INIT_ZEROS);
    if (st != CNNL_OK) {
        cnnl_layer_free(&B->base);
        return st;
    }
    /* Usable without cnnl_model_init(): weight 1, running variance 1. */
    for (int i = 0; i < channels; i++)
        B->base.state[GAMMA].data[i] = B->base.state[RVAR].data[i] = 1.0f;
    *out = &B->base;
    return CNNL_OK;
}

cnnl_status cnnl__batchnorm2d_configure(cnnl_layer *l, float eps, float momentum)
{
    if (l->ops != &bn_ops || !(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
        return cnnl__error(CNNL_EINVAL, "BatchNorm2d: eps %g must be > 0 and momentum %g in [0, 1]", (double)eps,
                           (double)momentum);
    batchnorm *B = (batchnorm *)l;
    B->eps = eps;
    B->momentum = momentum;
    return CNNL_OK;
}

bool cnnl__is_batchnorm2d(const cnnl_layer *l)
{
    return l != NULL && l->ops == &bn_ops;
}

int cnnl__batchnorm2d_channels(const cnnl_layer *l)
{
    return cnnl__is_batchnorm2d(l) ? ((const batchnorm *)l)->c : 0;
}

cnnl_status cnnl__batchnorm2d_set_sync(cnnl_layer *l, const cnnl__bn_sync *sync)
{
    if (!cnnl__is_batchnorm2d(l))
        return cnnl__error(CNNL_EINVAL, "%s: not a BatchNorm2d layer", l ? cnnl__layer_label(l) : "layer");
    batchnorm *B = (batchnorm *)l;
    if (sync != NULL && B->red == NULL) {
        int64_t ss[2] = {3, B->c};
        B->red = cnnl__alloc_array(2 * (size_t)B->c + 1, sizeof *B->red, true);
        B->gmean = cnnl__alloc_array(2 * (size_t)B->c, sizeof *B->gmean, true);
        cnnl_status st = B->red && B->gmean ? cnnl__tensor_ensure(&B->stats, 2, ss) : CNNL_ENOMEM;
        if (st != CNNL_OK) {
            cnnl__free(B->red);
            cnnl__free(B->gmean);
            B->red = NULL;
            B->gmean = NULL;
            return cnnl__error(CNNL_ENOMEM, "%s: out of memory for synchronised statistics", cnnl__layer_label(l));
        }
    }
    B->sync = sync;
    return CNNL_OK;
}

cnnl_status cnnl__batchnorm2d_sync_empty_forward(cnnl_layer *l)
{
    batchnorm *B = (batchnorm *)l;
    if (!cnnl__is_batchnorm2d(l) || B->sync == NULL)
        return cnnl__error(CNNL_ESTATE, "%s: no synchronisation hook", l ? cnnl__layer_label(l) : "layer");
    float *mean = B->stats->data, *invstd = mean + B->c, *var = invstd + B->c;
    B->batch_stats = B->synced = false; /* nothing here to go back through */
    cnnl_status st = sync_stats(B, NULL, 0, 0, mean, invstd, var);
    if (st == CNNL_OK)
        update_running(B, mean, var);
    return st;
}

cnnl_status cnnl__batchnorm2d_sync_empty_backward(cnnl_layer *l)
{
    batchnorm *B = (batchnorm *)l;
    if (!cnnl__is_batchnorm2d(l) || B->sync == NULL)
        return cnnl__error(CNNL_ESTATE, "%s: no synchronisation hook", l ? cnnl__layer_label(l) : "layer");
    memset(B->red, 0, 2 * (size_t)B->c * sizeof *B->red);
    cnnl_status st = B->sync->reduce(B->sync->user, B->red, 2 * (size_t)B->c);
    return st == CNNL_OK ? st : cnnl__error_context(st, "%s: synchronised gradient sums", cnnl__layer_label(l));
}
