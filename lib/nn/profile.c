/*
 * Per-layer profile: the model's forward and backward loops call the hooks below around each
 * layer; with profiling off the model holds no table and the hooks return at once.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnlite/profile.h"
#include "core/internal.h"
#include "core/tensor_impl.h"
#include "nn/layer.h"
#include "nn/model_impl.h"
#include "nn/profile_impl.h"

struct cnnl__profile {
    size_t n;                 /* layers when profiling was switched on */
    cnnl_layer_profile *e;    /* one entry per layer; names are filled in by the getter */
};

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cnnl__profile_start(const cnnl__profile *p)
{
    return p ? seconds() : 0.0;
}

static void copy_shape(const cnnl_tensor *t, int *ndim, int64_t shape[4])
{
    *ndim = t && t->ndim <= 4 ? t->ndim : 0;
    for (int d = 0; d < *ndim; d++)
        shape[d] = t->shape[d];
}

void cnnl__profile_forward(cnnl__profile *p, size_t i, double t0, const cnnl_tensor *in, const cnnl_tensor *out)
{
    if (!p || i >= p->n)
        return;
    cnnl_layer_profile *e = &p->e[i];
    e->forward_seconds += seconds() - t0;
    e->forward_calls++;
    copy_shape(in, &e->in_ndim, e->in_shape);
    copy_shape(out, &e->out_ndim, e->out_shape);
}

void cnnl__profile_backward(cnnl__profile *p, size_t i, double t0)
{
    if (!p || i >= p->n)
        return;
    p->e[i].backward_seconds += seconds() - t0;
    p->e[i].backward_calls++;
}

void cnnl__profile_free(cnnl__profile *p)
{
    if (p)
        free(p->e);
    free(p);
}

CNNL_API cnnl_status cnnl_model_set_profiling(cnnl_model *model, bool on)
{
    if (!model)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_set_profiling: model is NULL");
    cnnl__profile **slot = cnnl__model_profile_slot(model);
    cnnl__profile_free(*slot);
    *slot = NULL;
    if (!on)
        return CNNL_OK;
    size_t n = 0;
    (void)cnnl__model_layers(model, &n);
    cnnl__profile *p = calloc(1, sizeof *p);
    if (p)
        p->e = calloc(n ? n : 1, sizeof *p->e);
    if (!p || !p->e) {
        cnnl__profile_free(p);
        return cnnl__error(CNNL_ENOMEM, "cnnl_model_set_profiling: out of memory for %zu layers", n);
    }
    p->n = n;
    *slot = p;
    return CNNL_OK;
}

CNNL_API size_t cnnl_model_num_layers(const cnnl_model *model)
{
    size_t n = 0;
    if (model)
        (void)cnnl__model_layers(model, &n);
    return n;
}

CNNL_API cnnl_status cnnl_model_layer_profile(const cnnl_model *model, size_t index, cnnl_layer_profile *out)
{
    if (!model || !out)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_layer_profile: %s is NULL", model ? "out" : "model");
    size_t n = 0;
    cnnl_layer *const *layers = cnnl__model_layers(model, &n);
    if (index >= n)
        return cnnl__error(CNNL_ERANGE, "cnnl_model_layer_profile: index %zu; the model has %zu layers", index, n);
    /* the slot is only read here; the cast drops the const of the accessor's signature */
    const cnnl__profile *p = *cnnl__model_profile_slot((cnnl_model *)model);
    memset(out, 0, sizeof *out);
    if (p && index < p->n)
        *out = p->e[index];
    out->name = layers[index]->name;
    out->kind = layers[index]->ops->kind;
    return CNNL_OK;
}
