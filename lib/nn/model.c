/*
 * The sequential model: owns its layers, runs them forward and backward, and exposes their
 * state under PyTorch's state_dict names.
 *
 * Backward stops at the first layer that has parameters: nothing needs the gradient below
 * it (for the report's network that saves the first convolution's input gradient, the most
 * expensive col2im of the step). cnnl_model_input_grad() computes the rest on request.
 *
 * Input gradients live in two buffers of the model rather than one per layer: a layer's input
 * gradient is read only by the backward of the layer below it (a pass-through layer hands on a
 * view), so each layer writes into the buffer that does not hold its output gradient and the
 * two alternate down the network. Both are sized for the pass's largest gradient and reused by
 * every later pass; pages a pass does not write are not resident, so they cost what they carry
 * (for the report network 32 + 16 MiB instead of 64 MiB at batch 32, 512x512). A Residual
 * block's end marker keeps its output gradient for the begin marker, so models with Residual
 * blocks keep one buffer per layer, as does Grad-CAM, which reads a layer's input gradient
 * after the whole pass (cnnl__model_backward_keep).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nn/layer.h"
#include "nn/model_impl.h"
#include "nn/profile_impl.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

typedef struct state_ref {
    cnnl_layer *layer;
    int index;
    char *name;
} state_ref;

struct cnnl_model {
    cnnl_layer **layers;
    size_t n, cap;
    state_ref *states;
    size_t nstates, states_cap;
    bool training;
    cnnl_rng rng; /* dropout stream */
    const cnnl_tensor *input;
    bool have_forward, have_backward, gin_ready;
    bool has_report;
    cnnl_report_opts report;
    cnnl_layer *fuse_target; /* the last layer, or the one the last layers were fused into */
    char *arch;              /* canonical description, when built from one */
    int64_t input_shape[3];
    size_t outputs;          /* features of the last layer's flat output (0: not flat) */
    cnnl__profile *prof;     /* per-layer times (profile.c), NULL while profiling is off */
    cnnl__grads_ready_fn grads_hook; /* see model_impl.h */
    void *grads_user;
    cnnl_tensor *gbuf[2];    /* the shared input-gradient buffers (see the top of this file) */
    bool keeps_gout;         /* a layer keeps its output gradient past its backward (Residual) */
};

cnnl_layer *const *cnnl__model_layers(const cnnl_model *m, size_t *n)
{
    *n = m->n;
    return m->layers;
}

cnnl__profile **cnnl__model_profile_slot(cnnl_model *m)
{
    return &m->prof;
}

CNNL_API void cnnl_layer_free(cnnl_layer *l)
{
    if (!l)
        return;
    if (l->ops->destroy)
        l->ops->destroy(l);
    for (int i = 0; i < l->nstate; i++) {
        cnnl__free(l->state[i].data);
        cnnl__free(l->state[i].data_i64);
        cnnl__free(l->state[i].grad);
    }
    cnnl_tensor_free(l->out_ws);
    cnnl_tensor_free(l->gin_ws);
    free(l->name);
    free(l);
}

CNNL_API cnnl_status cnnl_model_create(cnnl_model **out)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_create: out is NULL");
    cnnl_model *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return cnnl__error(CNNL_ENOMEM, "cnnl_model_create: out of memory");
    m->training = true;
    cnnl__rng_seed(&m->rng, 0, CNNL_RNG_DROPOUT);
    *out = m;
    return CNNL_OK;
}

CNNL_API void cnnl_model_free(cnnl_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        cnnl_layer_free(m->layers[i]);
    for (size_t i = 0; i < m->nstates; i++)
        free(m->states[i].name);
    free(m->states);
    free(m->layers);
    free(m->arch);
    cnnl__profile_free(m->prof);
    cnnl_tensor_free(m->gbuf[0]);
    cnnl_tensor_free(m->gbuf[1]);
    free(m);
}

static char *join_name(const char *prefix, const char *suffix)
{
    size_t len = strlen(prefix) + strlen(suffix) + 2;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s.%s", prefix, suffix);
    return s;
}

static cnnl_status add_states(cnnl_model *m, cnnl_layer *l)
{
    for (int i = 0; i < l->nstate; i++) {
        if (m->nstates == m->states_cap) {
            size_t cap = m->states_cap ? 2 * m->states_cap : 16;
            state_ref *s = realloc(m->states, cap * sizeof *s);
            if (!s)
                return cnnl__error(CNNL_ENOMEM, "cnnl_model_add: out of memory");
            m->states = s;
            m->states_cap = cap;
        }
        char *name = join_name(l->name, l->state[i].suffix);
        if (!name)
            return cnnl__error(CNNL_ENOMEM, "cnnl_model_add: out of memory");
        m->states[m->nstates++] = (state_ref){l, i, name};
    }
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_add(cnnl_model *m, const char *name, cnnl_layer *l)
{
    if (!m || !l) {
        cnnl_layer_free(l);
        return cnnl__error(CNNL_EINVAL, "cnnl_model_add: %s is NULL", m ? "layer" : "model");
    }
    char idx[32];
    if (!name) {
        snprintf(idx, sizeof idx, "%zu", m->n);
        name = idx;
    }
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->layers[i]->name, name) == 0) {
            cnnl_layer_free(l);
            return cnnl__error(CNNL_EINVAL, "cnnl_model_add: a layer named \"%s\" exists already", name);
        }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        cnnl_layer **ls = realloc(m->layers, cap * sizeof *ls);
        if (!ls) {
            cnnl_layer_free(l);
            return cnnl__error(CNNL_ENOMEM, "cnnl_model_add: out of memory");
        }
        m->layers = ls;
        m->cap = cap;
    }
    l->name = strdup(name);
    if (!l->name) {
        cnnl_layer_free(l);
        return cnnl__error(CNNL_ENOMEM, "cnnl_model_add: out of memory");
    }
    size_t before = m->nstates;
    cnnl_status st = add_states(m, l);
    if (st != CNNL_OK) {
        for (size_t i = before; i < m->nstates; i++)
            free(m->states[i].name);
        m->nstates = before;
        cnnl_layer_free(l);
        return st;
    }
    l->training = m->training;
    l->rng = &m->rng;
    if (cnnl__layer_keeps_gout(l))
        m->keeps_gout = true;
    /* Conv2d followed by ReLU (and MaxPool2d(2)): the convolution applies them band by band
     * while the data is in cache; the fused layers keep their names and places but only pass
     * tensors through. */
    if (m->fuse_target && m->fuse_target->ops->fuse_next(m->fuse_target, l))
        ;
    else
        m->fuse_target = l->ops->fuse_next ? l : NULL;
    m->layers[m->n++] = l;
    m->have_forward = m->have_backward = false;
    return CNNL_OK;
}

static void init_state(cnnl__state *s, cnnl_rng *rng)
{
    if (s->dtype == CNNL_DTYPE_I64) {
        memset(s->data_i64, 0, s->numel * sizeof(int64_t));
        return;
    }
    if (s->grad)
        memset(s->grad, 0, s->numel * sizeof(float));
    switch (s->init) {
    case CNNL__INIT_KAIMING: {
        /* kaiming_uniform_(a = sqrt(5)) gives the same bound as the bias: 1 / sqrt(fan_in). */
        float bound = s->fan_in ? (float)(1.0 / sqrt((double)s->fan_in)) : 0.0f;
        for (size_t i = 0; i < s->numel; i++)
            s->data[i] = (2.0f * cnnl__rng_uniform(rng) - 1.0f) * bound;
        break;
    }
    case CNNL__INIT_ONES:
        for (size_t i = 0; i < s->numel; i++)
            s->data[i] = 1.0f;
        break;
    case CNNL__INIT_ZEROS:
        memset(s->data, 0, s->numel * sizeof(float));
        break;
    }
}

CNNL_API cnnl_status cnnl_model_init(cnnl_model *m, uint64_t seed)
{
    if (!m)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_init: model is NULL");
    cnnl_rng rng;
    cnnl__rng_seed(&rng, seed, CNNL_RNG_INIT);
    for (size_t i = 0; i < m->n; i++)
        for (int j = 0; j < m->layers[i]->nstate; j++)
            init_state(&m->layers[i]->state[j], &rng);
    cnnl__rng_seed(&m->rng, seed, CNNL_RNG_DROPOUT);
    if (m->has_report)
        m->report.seed = seed;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_set_training(cnnl_model *m, bool training)
{
    if (!m)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_set_training: model is NULL");
    m->training = training;
    for (size_t i = 0; i < m->n; i++)
        m->layers[i]->training = training;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_set_precision(cnnl_model *m, cnnl_precision precision)
{
    if (!m)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_set_precision: model is NULL");
    if (precision != CNNL_PRECISION_FP32 && precision != CNNL_PRECISION_BF16)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_set_precision: unknown precision %d", (int)precision);
    bool bf16 = precision == CNNL_PRECISION_BF16;
    if (bf16) {
        cnnl_status st = cnnl__conv_bf16_check();
        if (st != CNNL_OK)
            return st;
    }
    for (size_t i = 0; i < m->n; i++)
        cnnl__conv_set_bf16(m->layers[i], bf16);
    return CNNL_OK;
}

CNNL_API bool cnnl_model_is_training(const cnnl_model *m)
{
    return m ? m->training : false;
}

CNNL_API cnnl_status cnnl_model_forward(cnnl_model *m, const cnnl_tensor *input, const cnnl_tensor **output)
{
    if (output)
        *output = NULL;
    if (!m || !input || !output)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_forward: %s is NULL", !m ? "model" : !input ? "input" : "output");
    if (m->n == 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_forward: the model has no layers");
    m->have_forward = m->have_backward = m->gin_ready = false;
    /* A first average pool that covers the input sees every NaN or infinity in it as a
     * non-finite output, checked as it writes them: no separate pass over the input then. */
    static const char nonfinite[] = "cnnl_model_forward: the input holds a non-finite value (NaN or infinity)";
    bool deferred = cnnl__avgpool_covers_input(m->layers[0], input);
    if (!deferred && !cnnl__finite(input->data, input->numel))
        return cnnl__error(CNNL_ENUMERIC, "%s", nonfinite);
    cnnl_status rs = cnnl__blas_reserve("cnnl_model_forward");
    if (rs != CNNL_OK)
        return rs;
    const cnnl_tensor *cur = input;
    for (size_t i = 0; i < m->n; i++) {
        cnnl_layer *l = m->layers[i];
        double t0 = cnnl__profile_start(m->prof);
        cnnl_status st = l->ops->forward(l, cur);
        if (st == CNNL_ENUMERIC && i == 0 && deferred && !cnnl__finite(input->data, input->numel))
            return cnnl__error(CNNL_ENUMERIC, "%s", nonfinite);
        if (st != CNNL_OK)
            return st;
        cnnl__profile_forward(m->prof, i, t0, cur, l->out);
        cur = l->out;
    }
    m->input = input;
    m->have_forward = true;
    *output = cur;
    return CNNL_OK;
}

size_t cnnl__model_num_layers(const cnnl_model *m)
{
    return m->n;
}

cnnl_layer *cnnl__model_layer(const cnnl_model *m, size_t i)
{
    return i < m->n ? m->layers[i] : NULL;
}

static bool has_params(const cnnl_layer *l)
{
    for (int i = 0; i < l->nstate; i++)
        if (l->state[i].trainable)
            return true;
    return false;
}

static cnnl_status check_grads(const cnnl_layer *l)
{
    for (int i = 0; i < l->nstate; i++) {
        const cnnl__state *s = &l->state[i];
        if (s->grad && !cnnl__finite(s->grad, s->numel))
            return cnnl__error(CNNL_ENUMERIC, "%s: the gradient of %s is not finite", cnnl__layer_label(l), s->suffix);
    }
    return CNNL_OK;
}

static const cnnl_tensor *layer_input(const cnnl_model *m, size_t i)
{
    return i == 0 ? m->input : m->layers[i - 1]->out;
}

static size_t first_param_layer(const cnnl_model *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (has_params(m->layers[i]))
            return i;
    return 0;
}

static bool same_shape(const cnnl_tensor *a, const cnnl_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

void cnnl__model_set_grads_hook(cnnl_model *m, cnnl__grads_ready_fn fn, void *user)
{
    m->grads_hook = fn;
    m->grads_user = user;
}

/* The states of a layer are contiguous in m->states (added together by cnnl_model_add). */
static cnnl_status call_grads_hook(cnnl_model *m, const cnnl_layer *l)
{
    size_t first = 0;
    while (first < m->nstates && m->states[first].layer != l)
        first++;
    size_t end = first;
    while (end < m->nstates && m->states[end].layer == l)
        end++;
    return m->grads_hook(m->grads_user, first, end);
}

/* Layer @p i's backward from @p gout. With @p share, the input gradient goes to the shared
 * buffer that does not hold @p gout (the layer sees it as its own workspace for the call). */
static cnnl_status layer_backward(cnnl_model *m, size_t i, const cnnl_tensor *gout, bool want_gin, bool param_grads,
                                  bool share)
{
    cnnl_layer *l = m->layers[i];
    if (!share || !want_gin)
        return l->ops->backward(l, layer_input(m, i), gout, want_gin, param_grads);
    int k = m->gbuf[0] && gout->data == m->gbuf[0]->data ? 1 : 0;
    cnnl_tensor *own = l->gin_ws;
    l->gin_ws = m->gbuf[k];
    cnnl_status st = l->ops->backward(l, layer_input(m, i), gout, want_gin, param_grads);
    m->gbuf[k] = l->gin_ws; /* created or grown by the layer */
    l->gin_ws = own;
    return st;
}

/* Sizes both shared buffers for the input gradients of layers @p from.. at once (their own
 * inputs' sizes): growing them layer by layer would free smaller buffers, and freeing a block
 * that malloc had mapped for itself raises its threshold for mapping (up to 32 MiB), so that
 * later temporary blocks of other code come from its heap and stay resident after they are
 * freed (11 MB more peak memory in a bfloat16 benchmark). Pages a pass does not write are not
 * resident: the buffer carrying the smaller gradients costs only what they use. */
static cnnl_status reserve_gbufs(cnnl_model *m, size_t from, const cnnl_tensor *grad_output)
{
    size_t need = 0;
    for (size_t i = from; i < m->n; i++) {
        size_t numel = layer_input(m, i)->numel;
        need = numel > need ? numel : need;
    }
    for (int k = 0; k < 2; k++) {
        cnnl_tensor *b = m->gbuf[k];
        if (b && (b->capacity >= need || b->data == grad_output->data))
            continue; /* large enough, or the caller's gradient lives in it */
        int64_t shape[1] = {(int64_t)need};
        cnnl_status st = cnnl__tensor_ensure(&m->gbuf[k], 1, shape);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "cnnl_model_backward");
    }
    return CNNL_OK;
}

static cnnl_status backward(cnnl_model *m, const cnnl_tensor *grad_output, bool share)
{
    if (!m || !grad_output)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_backward: %s is NULL", m ? "grad_output" : "model");
    if (!m->have_forward)
        return cnnl__error(CNNL_ESTATE, "cnnl_model_backward: no forward pass to go back through");
    const cnnl_tensor *out = m->layers[m->n - 1]->out;
    if (!same_shape(out, grad_output)) {
        char a[96], b[96];
        return cnnl__error(CNNL_ESHAPE, "cnnl_model_backward: grad_output has shape %s; the output has %s",
                           cnnl__shape_str(grad_output, a, sizeof a), cnnl__shape_str(out, b, sizeof b));
    }
    if (!cnnl__finite(grad_output->data, grad_output->numel))
        return cnnl__error(CNNL_ENUMERIC, "cnnl_model_backward: grad_output holds a non-finite value");
    m->have_backward = m->gin_ready = false;
    size_t f = first_param_layer(m);
    /* Compute the input gradient right away when it is cheap to know: all layers need it. */
    bool eager = f == m->n - 1 || !has_params(m->layers[f]);
    if (eager)
        f = 0;
    if (share) {
        cnnl_status st = reserve_gbufs(m, eager ? 0 : f + 1, grad_output);
        if (st != CNNL_OK)
            return st;
    }
    const cnnl_tensor *gout = grad_output;
    for (size_t i = m->n; i-- > f;) {
        cnnl_layer *l = m->layers[i];
        bool want_gin = i > f || eager;
        double t0 = cnnl__profile_start(m->prof);
        cnnl_status st = layer_backward(m, i, gout, want_gin, true, share);
        cnnl__profile_backward(m->prof, i, t0);
        if (st == CNNL_OK)
            st = check_grads(l);
        if (st == CNNL_OK && m->grads_hook && has_params(l))
            st = call_grads_hook(m, l);
        if (st != CNNL_OK)
            return st;
        gout = l->gin;
    }
    m->have_backward = true;
    m->gin_ready = eager;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_backward(cnnl_model *m, const cnnl_tensor *grad_output)
{
    return backward(m, grad_output, m && !m->keeps_gout);
}

cnnl_status cnnl__model_backward_keep(cnnl_model *m, const cnnl_tensor *grad_output)
{
    return backward(m, grad_output, false);
}

CNNL_API cnnl_status cnnl_model_input_grad(cnnl_model *m, const cnnl_tensor **grad_input)
{
    if (grad_input)
        *grad_input = NULL;
    if (!m || !grad_input)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_input_grad: %s is NULL", m ? "grad_input" : "model");
    if (!m->have_backward)
        return cnnl__error(CNNL_ESTATE, "cnnl_model_input_grad: no backward pass since the last forward");
    if (!m->gin_ready) {
        size_t f = first_param_layer(m);
        for (size_t i = f + 1; i-- > 0;) {
            cnnl_status st = layer_backward(m, i, m->layers[i + 1]->gin, true, false, !m->keeps_gout);
            if (st != CNNL_OK)
                return st;
        }
        m->gin_ready = true;
    }
    *grad_input = m->layers[0]->gin;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_zero_grad(cnnl_model *m)
{
    if (!m)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_zero_grad: model is NULL");
    for (size_t i = 0; i < m->n; i++)
        for (int j = 0; j < m->layers[i]->nstate; j++) {
            cnnl__state *s = &m->layers[i]->state[j];
            if (s->grad)
                memset(s->grad, 0, s->numel * sizeof(float));
        }
    return CNNL_OK;
}

CNNL_API size_t cnnl_model_num_params(const cnnl_model *m)
{
    size_t total = 0;
    if (!m)
        return 0;
    for (size_t i = 0; i < m->nstates; i++) {
        const cnnl__state *s = &m->states[i].layer->state[m->states[i].index];
        if (s->trainable)
            total += s->numel;
    }
    return total;
}

CNNL_API size_t cnnl_model_state_count(const cnnl_model *m)
{
    return m ? m->nstates : 0;
}

static void fill_info(const state_ref *r, cnnl_param_info *info)
{
    const cnnl__state *s = &r->layer->state[r->index];
    memset(info, 0, sizeof *info);
    info->name = r->name;
    info->ndim = s->ndim;
    for (int i = 0; i < s->ndim; i++)
        info->shape[i] = s->shape[i];
    info->numel = s->numel;
    info->dtype = s->dtype;
    info->data = s->data;
    info->data_i64 = s->data_i64;
    info->grad = s->grad;
    info->trainable = s->trainable;
}

CNNL_API cnnl_status cnnl_model_state_at(cnnl_model *m, size_t index, cnnl_param_info *info)
{
    if (!m || !info)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_state_at: %s is NULL", m ? "info" : "model");
    if (index >= m->nstates)
        return cnnl__error(CNNL_ERANGE, "cnnl_model_state_at: index %zu; the model has %zu state tensors", index,
                           m->nstates);
    fill_info(&m->states[index], info);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_state_find(cnnl_model *m, const char *name, cnnl_param_info *info)
{
    if (!m || !name || !info)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_state_find: %s is NULL", !m ? "model" : !name ? "name" : "info");
    for (size_t i = 0; i < m->nstates; i++)
        if (strcmp(m->states[i].name, name) == 0) {
            fill_info(&m->states[i], info);
            return CNNL_OK;
        }
    return cnnl__error(CNNL_ENOTFOUND, "cnnl_model_state_find: no state tensor named \"%s\"", name);
}

CNNL_API cnnl_status cnnl_model_get_rng_state(const cnnl_model *m, uint64_t state[4])
{
    if (!m || !state)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_get_rng_state: %s is NULL", m ? "state" : "model");
    memcpy(state, m->rng.s, sizeof m->rng.s);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_set_rng_state(cnnl_model *m, const uint64_t state[4])
{
    if (!m || !state)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_set_rng_state: %s is NULL", m ? "state" : "model");
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_set_rng_state: the all-zero state is invalid");
    memcpy(m->rng.s, state, sizeof m->rng.s);
    m->rng.has_spare = false;
    return CNNL_OK;
}

void cnnl__model_set_report(cnnl_model *m, const cnnl_report_opts *opts)
{
    m->has_report = true;
    m->report = *opts;
}

CNNL_API cnnl_status cnnl_model_report_opts(const cnnl_model *m, cnnl_report_opts *opts)
{
    if (!m || !opts)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_report_opts: %s is NULL", m ? "opts" : "model");
    if (!m->has_report)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_model_report_opts: the model was not made by cnnl_report_net_create");
    *opts = m->report;
    return CNNL_OK;
}

cnnl_status cnnl__model_set_arch(cnnl_model *m, const char *json, const int64_t input[3], size_t outputs)
{
    char *copy = strdup(json);
    if (!copy)
        return cnnl__error(CNNL_ENOMEM, "cnnl_model_from_json: out of memory");
    free(m->arch);
    m->arch = copy;
    memcpy(m->input_shape, input, sizeof m->input_shape);
    m->outputs = outputs;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_to_json(const cnnl_model *m, const char **json)
{
    if (json)
        *json = NULL;
    if (!m || !json)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_to_json: %s is NULL", m ? "json" : "model");
    if (!m->arch)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_model_to_json: the model was assembled layer by layer, not from a "
                           "description");
    *json = m->arch;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_input_shape(const cnnl_model *m, int64_t shape[3])
{
    if (!m || !shape)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_input_shape: %s is NULL", m ? "shape" : "model");
    if (!m->arch)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_model_input_shape: the model was assembled layer by layer, not from "
                           "a description");
    memcpy(shape, m->input_shape, sizeof m->input_shape);
    return CNNL_OK;
}

CNNL_API size_t cnnl_model_num_outputs(const cnnl_model *m)
{
    if (m && m->has_report)
        return (size_t)m->report.classes;
    return m && m->arch ? m->outputs : 0;
}
