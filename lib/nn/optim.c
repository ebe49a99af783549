/*
 * Adam, AdamW and SGD with torch.optim's update rules (single-tensor path of PyTorch 1.13),
 * working through the public model API: the trainable entries of the model's state.
 *
 * The update is element-wise, so the parameters are treated as one concatenated vector that
 * is split evenly over the threads; each thread walks the parameter spans inside its range
 * with a SIMD loop. The result does not depend on the thread count.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#if defined(__SSE2__)
#  include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnlite/optim.h"
#include "core/internal.h"

/* Below this many scalars one thread is faster than waking the others. */
#define PARALLEL_MIN 65536

typedef enum opt_kind { OPT_ADAM, OPT_SGD } opt_kind;

typedef struct opt_param {
    cnnl_param_info info; /* borrowed views of the model's parameter */
    size_t offset;        /* first element in the concatenated vector */
    float *state[2];      /* Adam: exp_avg, exp_avg_sq; SGD: momentum buffer; else NULL */
    char *state_name[2];
} opt_param;

struct cnnl_optimizer {
    opt_kind kind;
    cnnl_model *model;
    cnnl_adam_opts adam;
    cnnl_sgd_opts sgd;
    double lr;
    int64_t steps;
    size_t nparams, total;
    int states_per_param; /* 2 (Adam), 1 (SGD with momentum) or 0 */
    opt_param *params;
};

/* Per-step scalars of the update: computed in double from the options, as PyTorch computes
 * them from Python floats, then rounded to float once, as its float32 tensor ops do. */
typedef struct adam_coef {
    float l2;        /* Adam: grad += l2 * p */
    float decay;     /* AdamW: p *= decay before the update */
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bc2_sqrt;  /* sqrt(1 - beta2^t) */
    float eps;
    float neg_step;  /* -lr / (1 - beta1^t) */
} adam_coef;

typedef struct sgd_coef {
    float wd, momentum, one_minus_dampening, neg_lr;
    bool first, nesterov;
} sgd_coef;

/* ---- options ------------------------------------------------------------------------- */

CNNL_API cnnl_adam_opts cnnl_adam_opts_default(void)
{
    cnnl_adam_opts o = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0,
                        .decoupled = false};
    return o;
}

CNNL_API cnnl_sgd_opts cnnl_sgd_opts_default(void)
{
    cnnl_sgd_opts o = {.lr = 0.01, .momentum = 0.0, .dampening = 0.0, .weight_decay = 0.0, .nesterov = false};
    return o;
}

/* Finite, >= 0 and within float range: every option ends up as a float32 factor. */
static bool nonneg_finite(double v)
{
    return v >= 0.0 && v <= FLT_MAX;
}

static cnnl_status check_adam(const cnnl_adam_opts *o)
{
    static const char who[] = "cnnl_optimizer_adam";
    if (!nonneg_finite(o->lr))
        return cnnl__error(CNNL_EINVAL, "%s: learning rate %g must be finite and >= 0", who, o->lr);
    if (!(o->beta1 >= 0.0 && o->beta1 < 1.0))
        return cnnl__error(CNNL_EINVAL, "%s: beta1 %g must be in [0, 1)", who, o->beta1);
    if (!(o->beta2 >= 0.0 && o->beta2 < 1.0))
        return cnnl__error(CNNL_EINVAL, "%s: beta2 %g must be in [0, 1)", who, o->beta2);
    if (!nonneg_finite(o->eps))
        return cnnl__error(CNNL_EINVAL, "%s: eps %g must be finite and >= 0", who, o->eps);
    if (!nonneg_finite(o->weight_decay))
        return cnnl__error(CNNL_EINVAL, "%s: weight decay %g must be finite and >= 0", who, o->weight_decay);
    return CNNL_OK;
}

static cnnl_status check_sgd(const cnnl_sgd_opts *o)
{
    static const char who[] = "cnnl_optimizer_sgd";
    if (!nonneg_finite(o->lr))
        return cnnl__error(CNNL_EINVAL, "%s: learning rate %g must be finite and >= 0", who, o->lr);
    if (!nonneg_finite(o->momentum))
        return cnnl__error(CNNL_EINVAL, "%s: momentum %g must be finite and >= 0", who, o->momentum);
    if (!(fabs(o->dampening) <= FLT_MAX))
        return cnnl__error(CNNL_EINVAL, "%s: dampening %g must be finite", who, o->dampening);
    if (!nonneg_finite(o->weight_decay))
        return cnnl__error(CNNL_EINVAL, "%s: weight decay %g must be finite and >= 0", who, o->weight_decay);
    if (o->nesterov && (o->momentum <= 0.0 || o->dampening != 0.0))
        return cnnl__error(CNNL_EINVAL, "%s: Nesterov momentum needs momentum > 0 and dampening 0 (got %g and %g)",
                           who, o->momentum, o->dampening);
    return CNNL_OK;
}

/* ---- construction -------------------------------------------------------------------- */

CNNL_API void cnnl_optimizer_free(cnnl_optimizer *opt)
{
    if (!opt)
        return;
    for (size_t i = 0; i < opt->nparams; i++)
        for (int s = 0; s < 2; s++) {
            cnnl__free(opt->params[i].state[s]);
            free(opt->params[i].state_name[s]);
        }
    free(opt->params);
    free(opt);
}

static char *joined_name(const char *param, const char *suffix)
{
    size_t len = strlen(param) + 1 + strlen(suffix) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s.%s", param, suffix);
    return s;
}

/* Allocate the zeroed state tensors of one parameter and their checkpoint names. */
static cnnl_status alloc_states(const char *who, opt_param *p, int count, const char *const suffix[2])
{
    for (int s = 0; s < count; s++) {
        p->state[s] = cnnl__alloc_zero(p->info.numel * sizeof(float));
        p->state_name[s] = joined_name(p->info.name, suffix[s]);
        if (!p->state[s] || !p->state_name[s])
            return cnnl__error(CNNL_ENOMEM, "%s: out of memory for the state of %s (%zu values)", who, p->info.name,
                               p->info.numel);
    }
    return CNNL_OK;
}

/* Collect the model's trainable parameters (in state_dict order) with their state. */
static cnnl_status collect_params(const char *who, cnnl_optimizer *opt, const char *const suffix[2])
{
    size_t count = cnnl_model_state_count(opt->model), n = 0;
    opt->params = calloc(count ? count : 1, sizeof *opt->params);
    if (!opt->params)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    for (size_t i = 0; i < count; i++) {
        cnnl_param_info info;
        cnnl_status st = cnnl_model_state_at(opt->model, i, &info);
        if (st != CNNL_OK)
            return st;
        if (!info.trainable || info.dtype != CNNL_DTYPE_F32 || !info.data || !info.grad)
            continue;
        opt_param *p = &opt->params[n++];
        opt->nparams = n; /* so that free() releases what was allocated so far */
        p->info = info;
        p->offset = opt->total;
        if (!cnnl__add_size(opt->total, info.numel, &opt->total))
            return cnnl__error(CNNL_EINVAL, "%s: parameter count overflows", who);
        if ((st = alloc_states(who, p, opt->states_per_param, suffix)) != CNNL_OK)
            return st;
    }
    return CNNL_OK;
}

static cnnl_status create(cnnl_optimizer **out, cnnl_model *model, cnnl_optimizer *proto, const char *who)
{
    static const char *const adam_suffix[2] = {"exp_avg", "exp_avg_sq"};
    static const char *const sgd_suffix[2] = {"momentum_buffer", NULL};
    cnnl_optimizer *opt = calloc(1, sizeof *opt);
    if (!opt)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    *opt = *proto;
    opt->model = model;
    cnnl_status st = collect_params(who, opt, opt->kind == OPT_ADAM ? adam_suffix : sgd_suffix);
    if (st != CNNL_OK) {
        cnnl_optimizer_free(opt);
        return st;
    }
    *out = opt;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_optimizer_adam(cnnl_optimizer **out, cnnl_model *model, const cnnl_adam_opts *opts)
{
    static const char who[] = "cnnl_optimizer_adam";
    if (!out)
        return cnnl__error(CNNL_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (!model)
        return cnnl__error(CNNL_EINVAL, "%s: model is NULL", who);
    cnnl_optimizer proto = {.kind = OPT_ADAM, .states_per_param = 2};
    proto.adam = opts ? *opts : cnnl_adam_opts_default();
    cnnl_status st = check_adam(&proto.adam);
    if (st != CNNL_OK)
        return st;
    proto.lr = proto.adam.lr;
    return create(out, model, &proto, who);
}

CNNL_API cnnl_status cnnl_optimizer_sgd(cnnl_optimizer **out, cnnl_model *model, const cnnl_sgd_opts *opts)
{
    static const char who[] = "cnnl_optimizer_sgd";
    if (!out)
        return cnnl__error(CNNL_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    if (!model)
        return cnnl__error(CNNL_EINVAL, "%s: model is NULL", who);
    cnnl_optimizer proto = {.kind = OPT_SGD};
    proto.sgd = opts ? *opts : cnnl_sgd_opts_default();
    cnnl_status st = check_sgd(&proto.sgd);
    if (st != CNNL_OK)
        return st;
    proto.lr = proto.sgd.lr;
    proto.states_per_param = proto.sgd.momentum != 0.0 ? 1 : 0;
    return create(out, model, &proto, who);
}

/* ---- update kernels ------------------------------------------------------------------- */

/* PyTorch: p *= 1 - lr wd (AdamW); g += wd p (Adam); m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g g; p += -step * m / (sqrt(v) / sqrt(bc2) + eps), with the same float
 * operations in the same order as its tensor ops. */
static inline float adam_one(float *p, float g, float *m, float *v, const adam_coef *k)
{
    float gi = g + k->l2 * *p;
    float mi = *m * k->beta1 + k->one_minus_beta1 * gi;
    float vi = *v * k->beta2 + k->one_minus_beta2 * gi * gi;
    float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;
    *m = mi;
    *v = vi;
    return *p * k->decay + k->neg_step * mi / denom;
}

/* The compiler cannot vectorise sqrtf without -fno-math-errno, so the x86 path spells the
 * same IEEE operations out in SSE (bit-identical to adam_one: no fused multiply-add). */
static void adam_span(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                      const adam_coef *c)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128 decay = _mm_set1_ps(c->decay), l2 = _mm_set1_ps(c->l2), b1 = _mm_set1_ps(c->beta1),
                 omb1 = _mm_set1_ps(c->one_minus_beta1), b2 = _mm_set1_ps(c->beta2),
                 omb2 = _mm_set1_ps(c->one_minus_beta2), bc2 = _mm_set1_ps(c->bc2_sqrt),
                 eps = _mm_set1_ps(c->eps), neg_step = _mm_set1_ps(c->neg_step);
    for (; i + 4 <= n; i += 4) {
        __m128 p0 = _mm_loadu_ps(p + i);
        __m128 gi = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(l2, p0));
        __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), b1), _mm_mul_ps(omb1, gi));
        __m128 vi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), b2), _mm_mul_ps(_mm_mul_ps(omb2, gi), gi));
        __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), bc2), eps);
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(p + i, _mm_add_ps(_mm_mul_ps(p0, decay), _mm_div_ps(_mm_mul_ps(neg_step, mi), denom)));
    }
#endif
    for (; i < n; i++)
        p[i] = adam_one(&p[i], g[i], &m[i], &v[i], c);
}

/* PyTorch: d = g + wd p; buf = d on the first step, else momentum buf + (1 - dampening) d;
 * d = d + momentum buf (Nesterov) or buf; p += -lr d. */
static void sgd_span(float *restrict p, const float *restrict g, float *restrict buf, size_t n, const sgd_coef *c)
{
    const sgd_coef k = *c;
    if (!buf) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            p[i] = p[i] + k.neg_lr * (g[i] + k.wd * p[i]);
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + k.wd * p[i];
        float b = k.first ? d : buf[i] * k.momentum + k.one_minus_dampening * d;
        buf[i] = b;
        float step = k.nesterov ? d + k.momentum * b : b;
        p[i] = p[i] + k.neg_lr * step;
    }
}

/* Apply the update to the elements [lo, hi) of the concatenated parameter vector. */
static void update_range(const cnnl_optimizer *opt, size_t lo, size_t hi, const adam_coef *ac, const sgd_coef *sc)
{
    for (size_t k = 0; k < opt->nparams && lo < hi; k++) {
        const opt_param *p = &opt->params[k];
        size_t end = p->offset + p->info.numel;
        if (end <= lo)
            continue;
        size_t a = lo - p->offset, b = (hi < end ? hi : end) - p->offset;
        if (opt->kind == OPT_ADAM)
            adam_span(p->info.data + a, p->info.grad + a, p->state[0] + a, p->state[1] + a, b - a, ac);
        else
            sgd_span(p->info.data + a, p->info.grad + a, p->state[0] ? p->state[0] + a : NULL, b - a, sc);
        lo = end;
    }
}

static int threads_for(size_t total)
{
    return total < PARALLEL_MIN ? 1 : cnnl__num_threads();
}

/* Sum of g * 0 over [lo, hi): 0 when every gradient there is finite, NaN otherwise. */
static float nonfinite_probe(const cnnl_optimizer *opt, size_t lo, size_t hi)
{
    float acc = 0.0f;
    for (size_t k = 0; k < opt->nparams && lo < hi; k++) {
        const opt_param *p = &opt->params[k];
        size_t end = p->offset + p->info.numel;
        if (end <= lo)
            continue;
        size_t a = lo - p->offset, b = (hi < end ? hi : end) - p->offset;
        const float *g = p->info.grad;
#pragma omp simd reduction(+ : acc)
        for (size_t i = a; i < b; i++)
            acc += g[i] * 0.0f;
        lo = end;
    }
    return acc;
}

static cnnl_status check_gradients(const cnnl_optimizer *opt)
{
    float acc = 0.0f;
    int nt = threads_for(opt->total);
#pragma omp parallel num_threads(nt) reduction(+ : acc)
    {
        size_t lo, hi;
        cnnl__chunk(opt->total, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        acc += nonfinite_probe(opt, lo, hi);
    }
    if (acc == 0.0f)
        return CNNL_OK;
    for (size_t k = 0; k < opt->nparams; k++) {
        const opt_param *p = &opt->params[k];
        for (size_t i = 0; i < p->info.numel; i++)
            if (!isfinite(p->info.grad[i]))
                return cnnl__error(CNNL_ENUMERIC,
                                   "cnnl_optimizer_step: gradient of %s holds a non-finite value (%g) at element %zu; "
                                   "no parameter was changed",
                                   p->info.name, (double)p->info.grad[i], i);
    }
    return CNNL_OK;
}

static adam_coef adam_coefficients(const cnnl_optimizer *opt, int64_t t)
{
    const cnnl_adam_opts *o = &opt->adam;
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    adam_coef c = {
        .l2 = o->decoupled ? 0.0f : (float)o->weight_decay,
        .decay = o->decoupled ? (float)(1.0 - opt->lr * o->weight_decay) : 1.0f,
        .beta1 = (float)o->beta1,
        .one_minus_beta1 = (float)(1.0 - o->beta1),
        .beta2 = (float)o->beta2,
        .one_minus_beta2 = (float)(1.0 - o->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)o->eps,
        .neg_step = (float)(-opt->lr / bc1),
    };
    return c;
}

static sgd_coef sgd_coefficients(const cnnl_optimizer *opt)
{
    const cnnl_sgd_opts *o = &opt->sgd;
    sgd_coef c = {
        .wd = (float)o->weight_decay,
        .momentum = (float)o->momentum,
        .one_minus_dampening = (float)(1.0 - o->dampening),
        .neg_lr = (float)-opt->lr,
        .first = opt->steps == 0,
        .nesterov = o->nesterov,
    };
    return c;
}

CNNL_API cnnl_status cnnl_optimizer_step(cnnl_optimizer *opt)
{
    if (!opt)
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_step: optimizer is NULL");
    if (opt->steps >= CNNL_OPTIMIZER_MAX_STEPS)
        return cnnl__error(CNNL_ERANGE, "cnnl_optimizer_step: %lld steps taken, the most an optimizer takes",
                           (long long)opt->steps);
    cnnl_status st = check_gradients(opt);
    if (st != CNNL_OK)
        return st;
    adam_coef ac = {0};
    sgd_coef sc = {0};
    if (opt->kind == OPT_ADAM)
        ac = adam_coefficients(opt, opt->steps + 1);
    else
        sc = sgd_coefficients(opt);
    int nt = threads_for(opt->total);
#pragma omp parallel num_threads(nt)
    {
        size_t lo, hi;
        cnnl__chunk(opt->total, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        update_range(opt, lo, hi, &ac, &sc);
    }
    opt->steps++;
    return CNNL_OK;
}

/* ---- accessors ------------------------------------------------------------------------ */

CNNL_API cnnl_status cnnl_optimizer_zero_grad(cnnl_optimizer *opt)
{
    if (!opt)
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_zero_grad: optimizer is NULL");
    return cnnl_model_zero_grad(opt->model);
}

CNNL_API cnnl_status cnnl_optimizer_set_lr(cnnl_optimizer *opt, double lr)
{
    if (!opt)
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_set_lr: optimizer is NULL");
    if (!nonneg_finite(lr))
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_set_lr: learning rate %g must be finite and >= 0", lr);
    opt->lr = lr;
    return CNNL_OK;
}

CNNL_API double cnnl_optimizer_get_lr(const cnnl_optimizer *opt)
{
    return opt ? opt->lr : 0.0;
}

CNNL_API int64_t cnnl_optimizer_step_count(const cnnl_optimizer *opt)
{
    return opt ? opt->steps : 0;
}

CNNL_API size_t cnnl_optimizer_state_count(const cnnl_optimizer *opt)
{
    return opt ? opt->nparams * (size_t)opt->states_per_param : 0;
}

CNNL_API cnnl_status cnnl_optimizer_state_at(cnnl_optimizer *opt, size_t index, cnnl_param_info *info)
{
    if (!opt || !info)
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_state_at: %s is NULL", !opt ? "optimizer" : "info");
    size_t count = cnnl_optimizer_state_count(opt);
    if (index >= count)
        return cnnl__error(CNNL_ERANGE, "cnnl_optimizer_state_at: index %zu is out of range (%zu state tensors)",
                           index, count);
    const opt_param *p = &opt->params[index / (size_t)opt->states_per_param];
    int s = (int)(index % (size_t)opt->states_per_param);
    *info = p->info;
    info->name = p->state_name[s];
    info->data = p->state[s];
    info->grad = NULL;
    info->trainable = false;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_optimizer_set_step_count(cnnl_optimizer *opt, int64_t steps)
{
    if (!opt)
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_set_step_count: optimizer is NULL");
    if (steps < 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_optimizer_set_step_count: %lld steps; must be >= 0", (long long)steps);
    if (steps > CNNL_OPTIMIZER_MAX_STEPS)
        return cnnl__error(CNNL_ERANGE, "cnnl_optimizer_set_step_count: %lld steps; must be at most %lld",
                           (long long)steps, (long long)CNNL_OPTIMIZER_MAX_STEPS);
    opt->steps = steps;
    return CNNL_OK;
}
