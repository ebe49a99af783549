/*
 * Data-parallel training over a cnnl_comm (see comm.h and docs/scaling.md).
 *
 * The trainable parameters are grouped into buckets of about bucket_bytes, from the last
 * layer to the first (the order backward produces gradients in). The model's gradients-ready
 * hook copies each layer's gradients into its bucket's place in one flat buffer; a bucket
 * whose gradients are all in is summed across processes right away (allreduce_start) while
 * backward goes on with the layers below. After backward the remaining buckets are started,
 * all are waited for in order, and the sums are copied back. Each process scales its loss
 * gradient by its share of the global batch, so the sum is the global batch's mean gradient.
 *
 * Synchronised batch norm (cnnl_trainer_set_sync_bn): the BatchNorm2d layers get a hook
 * (nn/bn_sync.h) that sums their per-channel statistics over the processes during the step,
 * three blocking reductions per layer (two in forward, one in backward). Collectives must come
 * in the same order everywhere, so a process without images in a step replays the layers'
 * reductions with nothing to add (in finish_step, before the buckets), and each reduction
 * carries one more double, the number of such processes: when it is not zero, the processes
 * with images start no bucket during backward but all of them after it, as the empty one does.
 */
#include "train/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nn/bn_sync.h"
#include "nn/layer.h"
#include "nn/model_impl.h"

typedef struct bucket {
    size_t offset, count; /* floats in the flat buffer */
    size_t states;        /* trainable states in it */
    size_t pending;       /* of those, not packed yet in this step */
    void *request;
    bool started;
} bucket;

struct cnnl__dist {
    cnnl_model *model;
    const cnnl_comm *comm;
    size_t nstates;
    long *bucket_of;      /* per state index; -1 when not trainable */
    size_t *offset_of;    /* flat offset per state */
    unsigned char *packed;/* per state, this step */
    bucket *b;
    size_t nb, next;      /* buckets; the next one to start */
    float *flat;
    size_t total;
    /* synchronised batch norm */
    bool sync_bn;
    cnnl__bn_sync bn;     /* the hook the BatchNorm2d layers hold */
    cnnl_layer **bns;     /* the model's BatchNorm2d layers, in order */
    size_t nbn;
    double *red;          /* reduction buffer: the largest layer's 2c doubles + 1 */
    size_t red_cap;
    size_t reductions;    /* batch-norm reductions in this step */
    bool empty;           /* replaying the reductions for a process without images */
    bool defer;           /* some process has no image in this step: buckets start after backward */
};

static bool reduced(const cnnl_param_info *p)
{
    return p->trainable && p->grad != NULL && p->dtype == CNNL_DTYPE_F32;
}

void cnnl__dist_free(cnnl__dist *d)
{
    if (d == NULL)
        return;
    cnnl__model_set_grads_hook(d->model, NULL, NULL);
    for (size_t i = 0; i < d->nbn; i++)
        cnnl__batchnorm2d_set_sync(d->bns[i], NULL);
    free(d->bns);
    cnnl__free(d->red);
    free(d->bucket_of);
    free(d->offset_of);
    free(d->packed);
    free(d->b);
    cnnl__free(d->flat);
    free(d);
}

static cnnl_status start_ready(cnnl__dist *d)
{
    while (d->next < d->nb && d->b[d->next].pending == 0) {
        bucket *k = &d->b[d->next];
        cnnl_status st = d->comm->allreduce_start(d->comm, d->flat + k->offset, k->count, &k->request);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "gradient bucket %zu of %zu", d->next + 1, d->nb);
        k->started = true;
        d->next++;
    }
    return CNNL_OK;
}

static void pack(cnnl__dist *d, size_t i)
{
    if (d->bucket_of[i] < 0 || d->packed[i])
        return;
    cnnl_param_info p;
    cnnl_model_state_at(d->model, i, &p);
    memcpy(d->flat + d->offset_of[i], p.grad, p.numel * sizeof(float));
    d->packed[i] = 1;
    d->b[d->bucket_of[i]].pending--;
}

static cnnl_status grads_ready(void *user, size_t first, size_t end)
{
    cnnl__dist *d = user;
    for (size_t i = first; i < end && i < d->nstates; i++)
        pack(d, i);
    cnnl_status st = d->defer ? CNNL_OK : start_ready(d);
    d->comm->progress(d->comm);
    return st;
}

cnnl_status cnnl__dist_create(cnnl__dist **out, cnnl_model *model, const cnnl_comm *comm,
                              size_t bucket_bytes)
{
    *out = NULL;
    cnnl__dist *d = calloc(1, sizeof *d);
    size_t n = cnnl_model_state_count(model);
    if (d == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_create: out of memory");
    d->model = model;
    d->comm = comm;
    d->nstates = n;
    d->bucket_of = calloc(n ? n : 1, sizeof *d->bucket_of);
    d->offset_of = calloc(n ? n : 1, sizeof *d->offset_of);
    d->packed = calloc(n ? n : 1, 1);
    d->b = calloc(n ? n : 1, sizeof *d->b);
    if (!d->bucket_of || !d->offset_of || !d->packed || !d->b) {
        cnnl__dist_free(d);
        return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_create: out of memory");
    }
    size_t limit = bucket_bytes / sizeof(float);
    if (limit == 0)
        limit = 1;
    /* From the last state to the first: the order backward makes gradients ready in. */
    for (size_t i = n; i-- > 0;) {
        cnnl_param_info p;
        d->bucket_of[i] = -1;
        if (cnnl_model_state_at(model, i, &p) != CNNL_OK || !reduced(&p))
            continue;
        if (d->nb == 0 || d->b[d->nb - 1].count >= limit) {
            d->b[d->nb].offset = d->total;
            d->nb++;
        }
        bucket *k = &d->b[d->nb - 1];
        d->bucket_of[i] = (long)(d->nb - 1);
        d->offset_of[i] = d->total;
        k->count += p.numel;
        k->states++;
        d->total += p.numel;
    }
    d->flat = cnnl__alloc_array(d->total ? d->total : 1, sizeof(float), true);
    if (d->flat == NULL) {
        size_t total = d->total;
        cnnl__dist_free(d);
        return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_create: out of memory for %zu gradients", total);
    }
    cnnl__model_set_grads_hook(model, grads_ready, d);
    *out = d;
    return CNNL_OK;
}

/* The batch-norm layers' reduction: sums over the processes, plus whether any has no image. */
static cnnl_status bn_reduce(void *user, double *data, size_t count)
{
    cnnl__dist *d = user;
    if (count + 1 > d->red_cap)
        return cnnl__error(CNNL_EINVAL, "synchronised batch norm: %zu values; at most %zu", count,
                           d->red_cap - 1);
    memcpy(d->red, data, count * sizeof *data);
    d->red[count] = d->empty ? 1.0 : 0.0;
    cnnl_status st = d->comm->allreduce_sum(d->comm, d->red, count + 1, CNNL_COMM_F64);
    if (st != CNNL_OK)
        return st;
    memcpy(data, d->red, count * sizeof *data);
    if (d->red[count] > 0.0)
        d->defer = true;
    d->reductions++;
    return CNNL_OK;
}

cnnl_status cnnl__dist_set_sync_bn(cnnl__dist *d, bool on)
{
    if (on && d->bns == NULL) {
        size_t n = 0, nbn = 0, widest = 0;
        cnnl_layer *const *layers = cnnl__model_layers(d->model, &n);
        for (size_t i = 0; i < n; i++)
            if (cnnl__is_batchnorm2d(layers[i])) {
                nbn++;
                size_t c = (size_t)cnnl__batchnorm2d_channels(layers[i]);
                widest = c > widest ? c : widest;
            }
        d->bns = calloc(nbn ? nbn : 1, sizeof *d->bns);
        d->red = cnnl__alloc_array(2 * widest + 2, sizeof *d->red, true);
        if (d->bns == NULL || d->red == NULL) {
            free(d->bns);
            cnnl__free(d->red);
            d->bns = NULL;
            d->red = NULL;
            return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_set_sync_bn: out of memory");
        }
        d->red_cap = 2 * widest + 2;
        for (size_t i = 0; i < n; i++)
            if (cnnl__is_batchnorm2d(layers[i]))
                d->bns[d->nbn++] = layers[i];
        d->bn.reduce = bn_reduce;
        d->bn.user = d;
    }
    for (size_t i = 0; i < d->nbn; i++) {
        cnnl_status st = cnnl__batchnorm2d_set_sync(d->bns[i], on ? &d->bn : NULL);
        if (st != CNNL_OK) {
            for (size_t j = 0; j < i; j++)
                cnnl__batchnorm2d_set_sync(d->bns[j], NULL);
            d->sync_bn = false;
            return cnnl__error_context(st, "cnnl_trainer_set_sync_bn");
        }
    }
    d->sync_bn = on;
    return CNNL_OK;
}

/* A process without images in this step: the reductions the others' batch-norm layers make. */
static cnnl_status replay_empty(cnnl__dist *d)
{
    cnnl_status st = CNNL_OK;
    d->empty = true;
    for (size_t i = 0; i < d->nbn && st == CNNL_OK; i++)
        st = cnnl__batchnorm2d_sync_empty_forward(d->bns[i]);
    for (size_t i = d->nbn; i-- > 0 && st == CNNL_OK;)
        st = cnnl__batchnorm2d_sync_empty_backward(d->bns[i]);
    d->empty = false;
    return st;
}

void cnnl__dist_begin_step(cnnl__dist *d)
{
    d->reductions = 0;
    d->defer = false;
    d->bn.active = d->sync_bn;
    memset(d->packed, 0, d->nstates);
    for (size_t k = 0; k < d->nb; k++) {
        d->b[k].pending = d->b[k].states;
        d->b[k].started = false;
        d->b[k].request = NULL;
    }
    d->next = 0;
}

cnnl_status cnnl__dist_finish_step(cnnl__dist *d)
{
    cnnl_status st = CNNL_OK;
    d->bn.active = false;
    if (d->sync_bn && d->nbn > 0 && d->reductions == 0)
        st = replay_empty(d);
    if (st != CNNL_OK)
        return st;
    for (size_t i = d->nstates; i-- > 0;)
        pack(d, i);
    st = start_ready(d);
    /* Every started bucket is waited for, even after a failure, so that no request leaks. */
    for (size_t k = 0; k < d->nb; k++) {
        if (!d->b[k].started)
            continue;
        cnnl_status w = d->comm->allreduce_wait(d->comm, d->b[k].request);
        d->b[k].started = false;
        if (st == CNNL_OK && w != CNNL_OK)
            st = cnnl__error_context(w, "gradient bucket %zu of %zu", k + 1, d->nb);
    }
    if (st != CNNL_OK)
        return st;
    for (size_t i = 0; i < d->nstates; i++) {
        if (d->bucket_of[i] < 0)
            continue;
        cnnl_param_info p;
        cnnl_model_state_at(d->model, i, &p);
        memcpy(p.grad, d->flat + d->offset_of[i], p.numel * sizeof(float));
    }
    return CNNL_OK;
}

cnnl_status cnnl__dist_broadcast_state(cnnl__dist *d, bool buffers_only)
{
    for (size_t i = 0; i < d->nstates; i++) {
        cnnl_param_info p;
        cnnl_status st = cnnl_model_state_at(d->model, i, &p);
        if (st != CNNL_OK)
            return st;
        if (buffers_only && p.trainable)
            continue;
        bool i64 = p.dtype == CNNL_DTYPE_I64;
        void *data = i64 ? (void *)p.data_i64 : (void *)p.data;
        st = d->comm->broadcast(d->comm, data, p.numel * (i64 ? sizeof(int64_t) : sizeof(float)), 0);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "broadcast of %s from rank 0", p.name);
    }
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_params_hash(cnnl_model *model, uint64_t *hash)
{
    if (model == NULL || hash == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_params_hash: %s is NULL", model ? "hash" : "model");
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < cnnl_model_state_count(model); i++) {
        cnnl_param_info p;
        if (cnnl_model_state_at(model, i, &p) != CNNL_OK || !p.trainable || p.data == NULL)
            continue;
        const unsigned char *b = (const unsigned char *)p.data;
        for (size_t j = 0; j < p.numel * sizeof(float); j++)
            h = (h ^ b[j]) * 1099511628211ull;
    }
    *hash = h;
    return CNNL_OK;
}

cnnl_status cnnl__dist_check_weights(cnnl__dist *d, int epoch)
{
    const cnnl_comm *c = d->comm;
    uint64_t mine = 0, root = 0;
    cnnl_model_params_hash(d->model, &mine);
    root = mine;
    cnnl_status st = c->broadcast(c, &root, sizeof root, 0);
    int64_t *differ = calloc((size_t)c->size, sizeof *differ);
    if (differ == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_fit: out of memory");
    differ[c->rank] = root != mine;
    if (st == CNNL_OK)
        st = c->allreduce_sum(c, differ, (size_t)c->size, CNNL_COMM_I64);
    if (st != CNNL_OK) {
        free(differ);
        return cnnl__error_context(st, "cnnl_trainer_fit: weight check after epoch %d", epoch);
    }
    int first = -1, count = 0;
    for (int r = 0; r < c->size; r++)
        if (differ[r]) {
            count++;
            if (first < 0)
                first = r;
        }
    free(differ);
    if (count > 0)
        return cnnl__error(CNNL_ESTATE, "cnnl_trainer_fit: after epoch %d the weights of %d "
                           "process(es), first rank %d, differ from rank 0's (checksum)",
                           epoch, count, first);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_comm_check(const cnnl_comm *c)
{
    if (c == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_comm_check: comm is NULL");
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return cnnl__error(CNNL_EINVAL, "cnnl_comm_check: rank %d of size %d", c->rank, c->size);
    const char *missing = !c->allreduce_sum ? "allreduce_sum" : !c->allreduce_start ? "allreduce_start"
                        : !c->progress ? "progress" : !c->allreduce_wait ? "allreduce_wait"
                        : !c->broadcast ? "broadcast" : !c->barrier ? "barrier"
                        : !c->abort ? "abort" : NULL;
    if (missing)
        return cnnl__error(CNNL_EINVAL, "cnnl_comm_check: the function %s is not set", missing);
    return CNNL_OK;
}
