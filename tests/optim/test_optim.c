/* Optimizers: updates against the torch.optim formulas evaluated in double, non-finite
 * gradients, learning-rate changes, options, state enumeration, thread-count independence. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>

/* A model with two Linear layers: fc.weight (out x in), fc.bias, head.weight, head.bias. */
static cnnl_model *make_model(int in, int hidden)
{
    cnnl_model *m = NULL;
    cnnl_layer *a = NULL, *b = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_linear_create(&a, in, hidden, true));
    assert_ok(cnnl_model_add(m, "fc", a));
    assert_ok(cnnl_linear_create(&b, hidden, 2, true));
    assert_ok(cnnl_model_add(m, "head", b));
    return m;
}

static float pseudo(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static size_t trainable_count(cnnl_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        n += info.trainable ? info.numel : 0;
    }
    return n;
}

/* Fill weights (and gradients, when @p seed_g != 0) with deterministic values. */
static void fill(cnnl_model *m, uint32_t seed_p, uint32_t seed_g)
{
    uint32_t sp = seed_p, sg = seed_g;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        if (!info.trainable)
            continue;
        for (size_t k = 0; k < info.numel; k++) {
            if (seed_p)
                info.data[k] = pseudo(&sp);
            if (seed_g)
                info.grad[k] = 0.5f * pseudo(&sg);
        }
    }
}

/* Copy the trainable values and/or gradients out, in state order. */
static void gather(cnnl_model *m, double *p, double *g)
{
    size_t j = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        if (!info.trainable)
            continue;
        for (size_t k = 0; k < info.numel; k++, j++) {
            if (p)
                p[j] = info.data[k];
            if (g)
                g[j] = info.grad[k];
        }
    }
}

static void assert_params_near(cnnl_model *m, const double *want, size_t n, double tol)
{
    double *got = calloc(n, sizeof *got);
    assert_non_null(got);
    gather(m, got, NULL);
    for (size_t j = 0; j < n; j++)
        if (!(fabs(got[j] - want[j]) <= tol)) {
            print_error("parameter %zu: got %.9g, want %.9g\n", j, got[j], want[j]);
            free(got);
            fail();
        }
    free(got);
}

/* torch.optim.Adam / AdamW (docs' algorithm) in double. */
static void adam_reference(double *p, const double *g, double *m1, double *m2, size_t n, const cnnl_adam_opts *o,
                           double lr, int t)
{
    double b1 = o->beta1, b2 = o->beta2;
    for (size_t j = 0; j < n; j++) {
        double gj = g[j];
        if (o->decoupled)
            p[j] *= 1.0 - lr * o->weight_decay;
        else
            gj += o->weight_decay * p[j];
        m1[j] = b1 * m1[j] + (1.0 - b1) * gj;
        m2[j] = b2 * m2[j] + (1.0 - b2) * gj * gj;
        double mhat = m1[j] / (1.0 - pow(b1, t)), vhat_sqrt = sqrt(m2[j]) / sqrt(1.0 - pow(b2, t));
        p[j] -= lr * mhat / (vhat_sqrt + o->eps);
    }
}

/* Three Adam steps with new gradients each time and a learning-rate change before the
 * third, against the reference; the optimizer's state tensors must match the moments. */
static void run_adam_case(bool decoupled)
{
    cnnl_model *m = make_model(3, 4);
    size_t n = trainable_count(m);
    assert_int_equal(n, 3 * 4 + 4 + 4 * 2 + 2);
    double *p = calloc(n, sizeof *p), *g = calloc(n, sizeof *g), *m1 = calloc(n, sizeof *m1),
           *m2 = calloc(n, sizeof *m2);
    assert_true(p && g && m1 && m2);
    cnnl_adam_opts o = cnnl_adam_opts_default();
    o.lr = 0.01;
    o.beta1 = 0.8;
    o.beta2 = 0.95;
    o.eps = 1e-3; /* large enough to matter */
    o.weight_decay = 0.1;
    o.decoupled = decoupled;
    cnnl_optimizer *opt = NULL;
    assert_ok(cnnl_optimizer_adam(&opt, m, &o));
    fill(m, 5, 0);
    gather(m, p, NULL);
    double lr = 0.01;
    for (int t = 1; t <= 3; t++) {
        fill(m, 0, 100u + (uint32_t)t);
        gather(m, NULL, g);
        if (t == 3) {
            lr = 0.05;
            assert_ok(cnnl_optimizer_set_lr(opt, lr));
        }
        assert_ok(cnnl_optimizer_step(opt));
        assert_int_equal(cnnl_optimizer_step_count(opt), t);
        adam_reference(p, g, m1, m2, n, &o, lr, t);
        assert_params_near(m, p, n, 5e-7);
    }
    /* State tensors: per parameter exp_avg then exp_avg_sq, in parameter order. */
    assert_int_equal(cnnl_optimizer_state_count(opt), 8);
    size_t j = 0;
    for (size_t s = 0; s < 8; s += 2) {
        cnnl_param_info a, b;
        assert_ok(cnnl_optimizer_state_at(opt, s, &a));
        assert_ok(cnnl_optimizer_state_at(opt, s + 1, &b));
        assert_int_equal(a.numel, b.numel);
        assert_null(a.grad);
        assert_false(a.trainable);
        for (size_t k = 0; k < a.numel; k++, j++) {
            assert_true(fabs(a.data[k] - m1[j]) <= 1e-7 * (1.0 + fabs(m1[j])));
            assert_true(fabs(b.data[k] - m2[j]) <= 1e-7 * (1.0 + fabs(m2[j])));
        }
    }
    assert_int_equal(j, n);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
    free(p);
    free(g);
    free(m1);
    free(m2);
}

static void test_adam_matches_formula(void **state)
{
    (void)state;
    run_adam_case(false);
}

static void test_adamw_matches_formula(void **state)
{
    (void)state;
    run_adam_case(true);
}

/* torch.optim.SGD: d = g + wd p; b = d (first step) or mu b + (1 - dampening) d;
 * d = d + mu b (Nesterov) or b; p -= lr d. */
static void sgd_reference(double *p, const double *g, double *buf, size_t n, const cnnl_sgd_opts *o, double lr,
                          bool first)
{
    for (size_t j = 0; j < n; j++) {
        double d = g[j] + o->weight_decay * p[j];
        if (o->momentum != 0.0) {
            buf[j] = first ? d : o->momentum * buf[j] + (1.0 - o->dampening) * d;
            d = o->nesterov ? d + o->momentum * buf[j] : buf[j];
        }
        p[j] -= lr * d;
    }
}

static void run_sgd_case(double momentum, double dampening, double wd, bool nesterov)
{
    cnnl_model *m = make_model(5, 3);
    size_t n = trainable_count(m);
    double *p = calloc(n, sizeof *p), *g = calloc(n, sizeof *g), *buf = calloc(n, sizeof *buf);
    assert_true(p && g && buf);
    cnnl_sgd_opts o = cnnl_sgd_opts_default();
    o.lr = 0.1;
    o.momentum = momentum;
    o.dampening = dampening;
    o.weight_decay = wd;
    o.nesterov = nesterov;
    cnnl_optimizer *opt = NULL;
    assert_ok(cnnl_optimizer_sgd(&opt, m, &o));
    assert_int_equal(cnnl_optimizer_state_count(opt), momentum != 0.0 ? 4 : 0);
    fill(m, 9, 0);
    gather(m, p, NULL);
    double lr = 0.1;
    for (int t = 1; t <= 3; t++) {
        fill(m, 0, 200u + (uint32_t)t);
        gather(m, NULL, g);
        if (t == 2) {
            lr = 0.3;
            assert_ok(cnnl_optimizer_set_lr(opt, lr));
            assert_true(cnnl_optimizer_get_lr(opt) == 0.3);
        }
        assert_ok(cnnl_optimizer_step(opt));
        sgd_reference(p, g, buf, n, &o, lr, t == 1);
        assert_params_near(m, p, n, 5e-7);
    }
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
    free(p);
    free(g);
    free(buf);
}

static void test_sgd_matches_formula(void **state)
{
    (void)state;
    run_sgd_case(0.0, 0.0, 0.0, false);  /* plain */
    run_sgd_case(0.0, 0.0, 0.05, false); /* weight decay only */
    run_sgd_case(0.9, 0.3, 0.05, false); /* momentum, dampening (not on the first step) */
    run_sgd_case(0.9, 0.0, 0.01, true);  /* Nesterov */
}

/* A learning rate set between steps applies to the next step: with plain SGD, the change of
 * a parameter is exactly -lr * g. */
static void test_set_lr_between_steps(void **state)
{
    (void)state;
    cnnl_model *m = make_model(2, 2);
    cnnl_optimizer *opt = NULL;
    assert_ok(cnnl_optimizer_sgd(&opt, m, NULL));
    assert_true(cnnl_optimizer_get_lr(opt) == 0.01); /* the double the caller gave, not a float's value */
    cnnl_param_info w;
    assert_ok(cnnl_model_state_find(m, "fc.weight", &w));
    w.data[0] = 1.0f;
    w.grad[0] = 2.0f;
    assert_ok(cnnl_optimizer_step(opt));
    assert_true(fabsf(w.data[0] - (1.0f - 0.01f * 2.0f)) < 1e-7f);
    assert_ok(cnnl_optimizer_set_lr(opt, 0.25));
    assert_true(cnnl_optimizer_get_lr(opt) == 0.25);
    w.data[0] = 1.0f;
    assert_ok(cnnl_optimizer_step(opt));
    assert_true(fabsf(w.data[0] - 0.5f) < 1e-7f);
    assert_ok(cnnl_optimizer_set_lr(opt, 0.0)); /* zero is allowed: parameters freeze */
    assert_ok(cnnl_optimizer_step(opt));
    assert_true(w.data[0] == 0.5f);
    assert_status_msg(cnnl_optimizer_set_lr(opt, -0.1), CNNL_EINVAL, "learning rate -0.1");
    assert_status_msg(cnnl_optimizer_set_lr(opt, NAN), CNNL_EINVAL, "must be finite");
    assert_status_msg(cnnl_optimizer_set_lr(opt, 1e39), CNNL_EINVAL, "learning rate 1e+39"); /* no float holds it */
    assert_status_msg(cnnl_optimizer_set_lr(NULL, 0.1), CNNL_EINVAL, "optimizer is NULL");
    assert_true(cnnl_optimizer_get_lr(opt) == 0.0); /* unchanged by the failures */
    assert_true(cnnl_optimizer_get_lr(NULL) == 0.0);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
}

/* A NaN or infinite gradient anywhere: ENUMERIC naming the parameter, and neither weights,
 * moments nor the step count change. */
static void test_nonfinite_gradient_changes_nothing(void **state)
{
    (void)state;
    cnnl_model *m = make_model(3, 4);
    cnnl_optimizer *opt = NULL;
    assert_ok(cnnl_optimizer_adam(&opt, m, NULL));
    fill(m, 3, 4);
    assert_ok(cnnl_optimizer_step(opt));
    size_t n = trainable_count(m);
    double *before = calloc(n, sizeof *before), *after = calloc(n, sizeof *after);
    float saved[8][16];
    assert_true(before && after);
    fill(m, 0, 5);
    gather(m, before, NULL);
    for (size_t s = 0; s < cnnl_optimizer_state_count(opt); s++) {
        cnnl_param_info info;
        assert_ok(cnnl_optimizer_state_at(opt, s, &info));
        memcpy(saved[s], info.data, info.numel * sizeof(float));
    }
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        cnnl_param_info hb;
        assert_ok(cnnl_model_state_find(m, "head.bias", &hb));
        hb.grad[1] = bad[b];
        assert_status_msg(cnnl_optimizer_step(opt), CNNL_ENUMERIC, "gradient of head.bias");
        assert_status_msg(cnnl_optimizer_step(opt), CNNL_ENUMERIC, "at element 1");
        hb.grad[1] = 0.25f;
    }
    gather(m, after, NULL);
    assert_memory_equal(before, after, n * sizeof *before);
    for (size_t s = 0; s < cnnl_optimizer_state_count(opt); s++) {
        cnnl_param_info info;
        assert_ok(cnnl_optimizer_state_at(opt, s, &info));
        assert_memory_equal(saved[s], info.data, info.numel * sizeof(float));
    }
    assert_int_equal(cnnl_optimizer_step_count(opt), 1);
    assert_ok(cnnl_optimizer_step(opt)); /* finite again: proceeds */
    assert_int_equal(cnnl_optimizer_step_count(opt), 2);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
    free(before);
    free(after);
}

/* A step count near the limit: huge counts are refused, the last steps stay finite, and the
 * step past the limit is refused without touching the weights. */
static void test_step_count_limit(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        cnnl_model *m = make_model(3, 4);
        cnnl_optimizer *opt = NULL;
        if (kind == 0)
            assert_ok(cnnl_optimizer_adam(&opt, m, NULL));
        else
            assert_ok(cnnl_optimizer_sgd(&opt, m, NULL));
        fill(m, 3, 4);
        assert_status_msg(cnnl_optimizer_set_step_count(opt, INT64_MAX), CNNL_ERANGE, "must be at most");
        assert_status_msg(cnnl_optimizer_set_step_count(opt, CNNL_OPTIMIZER_MAX_STEPS + 1), CNNL_ERANGE,
                          "9007199254740993 steps");
        assert_int_equal(cnnl_optimizer_step_count(opt), 0);
        assert_ok(cnnl_optimizer_set_step_count(opt, CNNL_OPTIMIZER_MAX_STEPS - 1));
        assert_ok(cnnl_optimizer_step(opt));
        assert_true(cnnl_optimizer_step_count(opt) == CNNL_OPTIMIZER_MAX_STEPS);
        size_t n = trainable_count(m);
        double *before = calloc(n, sizeof *before), *after = calloc(n, sizeof *after);
        assert_true(before && after);
        gather(m, before, NULL);
        for (size_t i = 0; i < n; i++)
            assert_true(isfinite(before[i]));
        assert_status_msg(cnnl_optimizer_step(opt), CNNL_ERANGE, "the most an optimizer takes");
        gather(m, after, NULL);
        assert_memory_equal(before, after, n * sizeof *before);
        assert_true(cnnl_optimizer_step_count(opt) == CNNL_OPTIMIZER_MAX_STEPS);
        free(before);
        free(after);
        cnnl_optimizer_free(opt);
        cnnl_model_free(m);
    }
}

static void test_options_are_validated(void **state)
{
    (void)state;
    cnnl_model *m = make_model(2, 2);
    cnnl_optimizer *opt = (cnnl_optimizer *)m; /* must be reset to NULL on failure */
    cnnl_adam_opts a = cnnl_adam_opts_default();
    assert_true(a.lr == 1e-3 && a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8 && a.weight_decay == 0.0);
    a.lr = -1.0;
    assert_status_msg(cnnl_optimizer_adam(&opt, m, &a), CNNL_EINVAL, "learning rate -1");
    assert_null(opt);
    a = cnnl_adam_opts_default();
    a.beta1 = 1.0;
    assert_status_msg(cnnl_optimizer_adam(&opt, m, &a), CNNL_EINVAL, "beta1 1 must be in [0, 1)");
    a = cnnl_adam_opts_default();
    a.beta2 = -0.5;
    assert_status_msg(cnnl_optimizer_adam(&opt, m, &a), CNNL_EINVAL, "beta2 -0.5");
    a = cnnl_adam_opts_default();
    a.eps = NAN;
    assert_status_msg(cnnl_optimizer_adam(&opt, m, &a), CNNL_EINVAL, "eps");
    a = cnnl_adam_opts_default();
    a.weight_decay = -0.01;
    assert_status_msg(cnnl_optimizer_adam(&opt, m, &a), CNNL_EINVAL, "weight decay");
    a = cnnl_adam_opts_default();
    a.eps = 1e300; /* finite as a double, infinite as the float the update uses */
    assert_status_msg(cnnl_optimizer_adam(&opt, m, &a), CNNL_EINVAL, "eps 1e+300");
    assert_status_msg(cnnl_optimizer_adam(&opt, NULL, NULL), CNNL_EINVAL, "model is NULL");
    assert_status_msg(cnnl_optimizer_adam(NULL, m, NULL), CNNL_EINVAL, "out is NULL");

    cnnl_sgd_opts s = cnnl_sgd_opts_default();
    assert_true(s.lr == 0.01 && s.momentum == 0.0 && s.dampening == 0.0 && s.weight_decay == 0.0 && !s.nesterov);
    s.nesterov = true;
    assert_status_msg(cnnl_optimizer_sgd(&opt, m, &s), CNNL_EINVAL, "Nesterov momentum needs momentum > 0");
    s.momentum = 0.9;
    s.dampening = 0.1;
    assert_status_msg(cnnl_optimizer_sgd(&opt, m, &s), CNNL_EINVAL, "dampening 0");
    s = cnnl_sgd_opts_default();
    s.momentum = -0.9;
    assert_status_msg(cnnl_optimizer_sgd(&opt, m, &s), CNNL_EINVAL, "momentum -0.9");
    s = cnnl_sgd_opts_default();
    s.lr = INFINITY;
    assert_status_msg(cnnl_optimizer_sgd(&opt, m, &s), CNNL_EINVAL, "learning rate inf");
    s = cnnl_sgd_opts_default();
    s.dampening = -1e40;
    assert_status_msg(cnnl_optimizer_sgd(&opt, m, &s), CNNL_EINVAL, "dampening -1e+40 must be finite");
    assert_status_msg(cnnl_optimizer_sgd(&opt, NULL, NULL), CNNL_EINVAL, "model is NULL");
    assert_null(opt);

    assert_status_msg(cnnl_optimizer_step(NULL), CNNL_EINVAL, "optimizer is NULL");
    assert_status_msg(cnnl_optimizer_zero_grad(NULL), CNNL_EINVAL, "optimizer is NULL");
    assert_status_msg(cnnl_optimizer_set_step_count(NULL, 1), CNNL_EINVAL, "optimizer is NULL");
    assert_int_equal(cnnl_optimizer_step_count(NULL), 0);
    assert_int_equal(cnnl_optimizer_state_count(NULL), 0);
    cnnl_optimizer_free(NULL);
    cnnl_model_free(m);
}

static void test_state_names_and_counts(void **state)
{
    (void)state;
    cnnl_model *m = make_model(2, 3);
    cnnl_optimizer *adam = NULL, *sgd = NULL, *mom = NULL;
    assert_ok(cnnl_optimizer_adam(&adam, m, NULL));
    assert_ok(cnnl_optimizer_sgd(&sgd, m, NULL));
    cnnl_sgd_opts so = cnnl_sgd_opts_default();
    so.momentum = 0.5;
    assert_ok(cnnl_optimizer_sgd(&mom, m, &so));
    cnnl_param_info info;
    assert_int_equal(cnnl_optimizer_state_count(adam), 8);
    assert_ok(cnnl_optimizer_state_at(adam, 0, &info));
    assert_string_equal(info.name, "fc.weight.exp_avg");
    assert_int_equal(info.ndim, 2);
    assert_int_equal(info.shape[0], 3);
    assert_int_equal(info.shape[1], 2);
    assert_ok(cnnl_optimizer_state_at(adam, 7, &info));
    assert_string_equal(info.name, "head.bias.exp_avg_sq");
    assert_int_equal(info.numel, 2);
    assert_status_msg(cnnl_optimizer_state_at(adam, 8, &info), CNNL_ERANGE, "index 8 is out of range");
    assert_status_msg(cnnl_optimizer_state_at(adam, 0, NULL), CNNL_EINVAL, "info is NULL");
    assert_int_equal(cnnl_optimizer_state_count(sgd), 0);
    assert_status_msg(cnnl_optimizer_state_at(sgd, 0, &info), CNNL_ERANGE, "0 state tensors");
    assert_int_equal(cnnl_optimizer_state_count(mom), 4);
    assert_ok(cnnl_optimizer_state_at(mom, 1, &info));
    assert_string_equal(info.name, "fc.bias.momentum_buffer");

    /* The step count drives Adam's bias correction: restoring it resumes exactly. */
    assert_ok(cnnl_optimizer_set_step_count(adam, 41));
    assert_int_equal(cnnl_optimizer_step_count(adam), 41);
    assert_status_msg(cnnl_optimizer_set_step_count(adam, -1), CNNL_EINVAL, "-1 steps");
    assert_int_equal(cnnl_optimizer_step_count(adam), 41);

    /* zero_grad clears the model's gradients. */
    fill(m, 0, 7);
    assert_ok(cnnl_optimizer_zero_grad(adam));
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        assert_ok(cnnl_model_state_at(m, i, &info));
        for (size_t k = 0; info.grad && k < info.numel; k++)
            assert_true(info.grad[k] == 0.0f);
    }
    cnnl_optimizer_free(adam);
    cnnl_optimizer_free(sgd);
    cnnl_optimizer_free(mom);
    cnnl_model_free(m);
}

/* 1 - beta2 is computed in double from the option as given, which shows in the second
 * moment after one step: v = (1 - beta2) g^2. The default 0.999 gives PyTorch's 0.001; the
 * float 0.999f is another number, whose 1 - beta2 is 1.3e-5 (relative) smaller, and is taken
 * as such. */
static void test_adam_betas_are_taken_as_given(void **state)
{
    (void)state;
    const double beta2[2] = {0.999, (double)0.999f};
    for (int c = 0; c < 2; c++) {
        cnnl_model *m = make_model(2, 2);
        cnnl_optimizer *opt = NULL;
        cnnl_adam_opts o = cnnl_adam_opts_default();
        o.beta2 = beta2[c];
        assert_ok(cnnl_optimizer_adam(&opt, m, &o));
        fill(m, 1, 2);
        assert_ok(cnnl_optimizer_step(opt));
        cnnl_param_info w, v;
        assert_ok(cnnl_model_state_find(m, "fc.weight", &w));
        assert_ok(cnnl_optimizer_state_at(opt, 1, &v));
        assert_string_equal(v.name, "fc.weight.exp_avg_sq");
        for (size_t k = 0; k < v.numel; k++) {
            double g2 = (double)w.grad[k] * w.grad[k], want = (1.0 - beta2[c]) * g2, other = (1.0 - beta2[1 - c]) * g2;
            assert_true(fabs(v.data[k] - want) <= 1e-6 * want);
            assert_true(fabs(v.data[k] - other) > 1e-5 * want);
        }
        cnnl_optimizer_free(opt);
        cnnl_model_free(m);
    }
}

/* A model with no trainable parameter steps without error. */
static void test_model_without_parameters(void **state)
{
    (void)state;
    cnnl_model *m = NULL;
    cnnl_layer *r = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_activation_create(&r, CNNL_ACT_RELU, 0.0f));
    assert_ok(cnnl_model_add(m, "relu", r));
    cnnl_optimizer *opt = NULL;
    assert_ok(cnnl_optimizer_adam(&opt, m, NULL));
    assert_int_equal(cnnl_optimizer_state_count(opt), 0);
    assert_ok(cnnl_optimizer_step(opt));
    assert_int_equal(cnnl_optimizer_step_count(opt), 1);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
}

/* Large enough to be split over threads: one and two threads give bit-identical results. */
static void test_thread_count_does_not_change_results(void **state)
{
    (void)state;
    float *result[2] = {NULL, NULL};
    size_t n = 0;
    for (int run = 0; run < 2; run++) {
        assert_ok(cnnl_set_num_threads(run + 1));
        cnnl_model *m = make_model(400, 300);
        n = trainable_count(m);
        assert_true(n > 100000);
        cnnl_optimizer *opt = NULL;
        cnnl_adam_opts o = cnnl_adam_opts_default();
        o.weight_decay = 0.01;
        assert_ok(cnnl_optimizer_adam(&opt, m, &o));
        fill(m, 11, 12);
        for (int t = 0; t < 3; t++)
            assert_ok(cnnl_optimizer_step(opt));
        result[run] = malloc(n * sizeof(float));
        assert_non_null(result[run]);
        size_t j = 0;
        for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
            cnnl_param_info info;
            assert_ok(cnnl_model_state_at(m, i, &info));
            memcpy(result[run] + j, info.data, info.numel * sizeof(float));
            j += info.numel;
        }
        cnnl_optimizer_free(opt);
        cnnl_model_free(m);
    }
    assert_memory_equal(result[0], result[1], n * sizeof(float));
    free(result[0]);
    free(result[1]);
    assert_ok(cnnl_set_num_threads(0));
}

/* The split finiteness check finds a bad gradient in any thread's range. */
static void test_nonfinite_found_in_parallel_check(void **state)
{
    (void)state;
    assert_ok(cnnl_set_num_threads(2));
    cnnl_model *m = make_model(400, 300);
    cnnl_optimizer *opt = NULL;
    assert_ok(cnnl_optimizer_sgd(&opt, m, NULL));
    fill(m, 1, 2);
    cnnl_param_info w, hb;
    assert_ok(cnnl_model_state_find(m, "fc.weight", &w));
    assert_ok(cnnl_model_state_find(m, "head.bias", &hb));
    float w0 = w.data[0];
    const size_t spots[] = {0, w.numel / 2, w.numel - 1};
    for (int i = 0; i < 3; i++) {
        float keep = w.grad[spots[i]];
        w.grad[spots[i]] = NAN;
        assert_status_msg(cnnl_optimizer_step(opt), CNNL_ENUMERIC, "gradient of fc.weight");
        w.grad[spots[i]] = keep;
    }
    hb.grad[1] = INFINITY; /* the very last element of the concatenated vector */
    assert_status_msg(cnnl_optimizer_step(opt), CNNL_ENUMERIC, "gradient of head.bias");
    assert_true(w.data[0] == w0);
    assert_int_equal(cnnl_optimizer_step_count(opt), 0);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
    assert_ok(cnnl_set_num_threads(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_matches_formula),
        cmocka_unit_test(test_adamw_matches_formula),
        cmocka_unit_test(test_sgd_matches_formula),
        cmocka_unit_test(test_set_lr_between_steps),
        cmocka_unit_test(test_nonfinite_gradient_changes_nothing),
        cmocka_unit_test(test_step_count_limit),
        cmocka_unit_test(test_options_are_validated),
        cmocka_unit_test(test_state_names_and_counts),
        cmocka_unit_test(test_adam_betas_are_taken_as_given),
        cmocka_unit_test(test_model_without_parameters),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_nonfinite_found_in_parallel_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
