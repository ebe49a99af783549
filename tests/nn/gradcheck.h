/* Central finite-difference gradient checks on a model, shared by the nn suites. */
#ifndef CNNL_TEST_GRADCHECK_H
#define CNNL_TEST_GRADCHECK_H

#include <math.h>
#include <stdlib.h>

#include "test_util.h"
#include "core/tensor_impl.h"

/*
 * The scalar checked is L = sum_i r_i * y_i with fixed random r, accumulated in double so the
 * only rounding noise left is float32's in the forward pass itself.
 *
 * Tolerances: with step h = 1e-2 the central difference has truncation error O(h^2 f''')
 * (about 1e-4 for these smooth, O(1)-scaled layers) and rounding error about
 * eps32 * |L| * sqrt(terms) / h ~ 1e-7 * 10 * 30 / 1e-2 = 3e-4. A difference is accepted when
 * |analytic - numeric| <= 3e-3 + 2e-2 * max(|analytic|, |numeric|): an order of magnitude above
 * the expected noise, and far below the error of any wrong formula (a missing factor or term
 * changes gradients by O(1) relative). Inputs are drawn away from the kinks of ReLU and of
 * max pooling (see the callers) so that the step never crosses one.
 */
#define GC_STEP 1e-2f
#define GC_ATOL 3e-3
#define GC_RTOL 2e-2

static inline double gc_loss(cnnl_model *m, const cnnl_tensor *x, const float *r)
{
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    double s = 0.0;
    for (size_t i = 0; i < y->numel; i++)
        s += (double)r[i] * y->data[i];
    return s;
}

static inline int gc_close(double a, double n)
{
    double scale = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
    return fabs(a - n) <= GC_ATOL + GC_RTOL * scale;
}

/* Uniform in [lo, hi) from a simple LCG (tests only). */
static inline float gc_rand(uint64_t *s, float lo, float hi)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((*s >> 40) / 16777216.0);
}

/*
 * Check d L / d input and d L / d every trainable parameter of @p m at @p x. @p reseed, when
 * set, is called before every forward so that stochastic layers repeat their mask.
 */
static inline void gc_check(cnnl_model *m, cnnl_tensor *x, void (*reseed)(cnnl_model *))
{
    const cnnl_tensor *y = NULL;
    if (reseed)
        reseed(m);
    assert_ok(cnnl_model_forward(m, x, &y));
    cnnl_tensor *r = NULL;
    int64_t shape[4];
    int nd;
    assert_ok(cnnl_tensor_shape(y, &nd, shape));
    assert_ok(cnnl_tensor_create(&r, nd, shape));
    uint64_t seed = 99;
    for (size_t i = 0; i < r->numel; i++)
        r->data[i] = gc_rand(&seed, -1.0f, 1.0f);
    assert_ok(cnnl_model_zero_grad(m));
    assert_ok(cnnl_model_backward(m, r));
    const cnnl_tensor *gx = NULL;
    assert_ok(cnnl_model_input_grad(m, &gx));
    float *gin = malloc(x->numel * sizeof(float));
    assert_non_null(gin);
    memcpy(gin, gx->data, x->numel * sizeof(float));
    int bad = 0;
    for (size_t i = 0; i < x->numel; i++) {
        float keep = x->data[i];
        x->data[i] = keep + GC_STEP;
        if (reseed)
            reseed(m);
        double lp = gc_loss(m, x, r->data);
        x->data[i] = keep - GC_STEP;
        if (reseed)
            reseed(m);
        double lm = gc_loss(m, x, r->data);
        x->data[i] = keep;
        double num = (lp - lm) / (2.0 * GC_STEP);
        if (!gc_close(gin[i], num) && bad++ < 5)
            print_error("input[%zu]: analytic %g numeric %g\n", i, (double)gin[i], num);
    }
    size_t ns = cnnl_model_state_count(m);
    for (size_t s = 0; s < ns; s++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, s, &info));
        if (!info.trainable)
            continue;
        float *g = malloc(info.numel * sizeof(float));
        assert_non_null(g);
        memcpy(g, info.grad, info.numel * sizeof(float));
        for (size_t i = 0; i < info.numel; i++) {
            float keep = info.data[i];
            info.data[i] = keep + GC_STEP;
            if (reseed)
                reseed(m);
            double lp = gc_loss(m, x, r->data);
            info.data[i] = keep - GC_STEP;
            if (reseed)
                reseed(m);
            double lm = gc_loss(m, x, r->data);
            info.data[i] = keep;
            double num = (lp - lm) / (2.0 * GC_STEP);
            if (!gc_close(g[i], num) && bad++ < 5)
                print_error("%s[%zu]: analytic %g numeric %g\n", info.name, i, (double)g[i], num);
        }
        free(g);
    }
    free(gin);
    cnnl_tensor_free(r);
    assert_int_equal(bad, 0);
}

#endif
