/* Losses: hand-computed values and gradients, finite-difference checks, every error case. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>

static cnnl_tensor *tensor2(int64_t rows, int64_t cols, const float *data)
{
    cnnl_tensor *t = NULL;
    int64_t shape[2] = {rows, cols};
    if (data)
        assert_ok(cnnl_tensor_from_data(&t, 2, shape, data));
    else
        assert_ok(cnnl_tensor_zeros(&t, 2, shape));
    return t;
}

static void assert_near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) {
        print_error("got %.9g, want %.9g (tolerance %g)\n", got, want, tol);
        fail();
    }
}

/* ---- hand-computed values ------------------------------------------------------------ */

static void test_cross_entropy_values(void **state)
{
    (void)state;
    /* Row 0: logits (0, 0), class 0: loss log 2, gradient (1/2 - 1, 1/2).
     * Row 1: logits (1, 2, 3)-like in 2 classes: (1, 3), class 1: loss log(e + e^3) - 3. */
    const float x[] = {0.0f, 0.0f, 1.0f, 3.0f};
    const int32_t y[] = {0, 1};
    cnnl_tensor *in = tensor2(2, 2, x), *g = tensor2(2, 2, NULL);
    float loss = -1.0f;
    double l0 = log(2.0), l1 = log(exp(1.0) + exp(3.0)) - 3.0;
    assert_ok(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, y, 2, CNNL_REDUCE_MEAN, &loss, g));
    assert_near(loss, (l0 + l1) / 2.0, 1e-6);
    const float *gd = cnnl_tensor_data(g);
    double p1 = exp(3.0) / (exp(1.0) + exp(3.0)); /* softmax of the true class in row 1 */
    assert_near(gd[0], -0.5 / 2.0, 1e-7);
    assert_near(gd[1], 0.5 / 2.0, 1e-7);
    assert_near(gd[2], (1.0 - p1) / 2.0, 1e-7);
    assert_near(gd[3], (p1 - 1.0) / 2.0, 1e-7);
    assert_ok(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, y, 2, CNNL_REDUCE_SUM, &loss, g));
    assert_near(loss, l0 + l1, 1e-6);
    assert_near(cnnl_tensor_data(g)[3], p1 - 1.0, 1e-7);
    cnnl_tensor_free(in);
    cnnl_tensor_free(g);
}

/* exp(1000) overflows float and double: only a shifted log-sum-exp survives. */
static void test_cross_entropy_is_stable(void **state)
{
    (void)state;
    const float x[] = {1000.0f, 0.0f, -1000.0f, 1000.0f};
    const int32_t y[] = {0, 0};
    cnnl_tensor *in = tensor2(2, 2, x), *g = tensor2(2, 2, NULL);
    float loss = 0.0f;
    assert_ok(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, y, 2, CNNL_REDUCE_SUM, &loss, g));
    assert_near(loss, 2000.0, 1e-3); /* row 0: ~0, row 1: 2000 */
    const float *gd = cnnl_tensor_data(g);
    assert_near(gd[0], 0.0, 1e-7);
    assert_near(gd[1], 0.0, 1e-7);
    assert_near(gd[2], -1.0, 1e-7);
    assert_near(gd[3], 1.0, 1e-7);
    cnnl_tensor_free(in);
    cnnl_tensor_free(g);
}

static void test_hinge_values(void **state)
{
    (void)state;
    /* Row 0, class 3 (x_y = 0.3): terms 1 - 0.3 + x_j = 0.8, 0.9, 1.1, all active: 2.8 / 4.
     * Row 1, class 0 (x_y = 5): every term is negative: loss 0, gradient 0. */
    const float x[] = {0.1f, 0.2f, 0.4f, 0.3f, 5.0f, 0.0f, 0.0f, 3.5f};
    const int32_t y[] = {3, 0};
    cnnl_tensor *in = tensor2(2, 4, x), *g = tensor2(2, 4, NULL);
    float loss = 0.0f;
    assert_ok(cnnl_loss_class(CNNL_LOSS_HINGE, in, y, 2, CNNL_REDUCE_MEAN, &loss, g));
    assert_near(loss, 0.7 / 2.0, 1e-6);
    const float want[] = {0.125f, 0.125f, 0.125f, -0.375f, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        assert_near(cnnl_tensor_data(g)[i], want[i], 1e-7);
    assert_ok(cnnl_loss_class(CNNL_LOSS_HINGE, in, y, 2, CNNL_REDUCE_SUM, &loss, NULL));
    assert_near(loss, 0.7, 1e-6);
    cnnl_tensor_free(in);
    cnnl_tensor_free(g);
}

static void test_mse_values(void **state)
{
    (void)state;
    const float x[] = {1, 2, 3, -1}, t[] = {1, 0, 0, 1};
    cnnl_tensor *in = tensor2(2, 2, x), *tg = tensor2(2, 2, t), *g = tensor2(2, 2, NULL);
    float loss = 0.0f;
    /* (0 + 4 + 9 + 4) / 4 elements; gradient 2 (x - t) / 4. */
    assert_ok(cnnl_loss_dense(CNNL_LOSS_MSE, in, tg, CNNL_REDUCE_MEAN, &loss, g));
    assert_near(loss, 17.0 / 4.0, 1e-6);
    const float want[] = {0.0f, 1.0f, 1.5f, -1.0f};
    for (int i = 0; i < 4; i++)
        assert_near(cnnl_tensor_data(g)[i], want[i], 1e-7);
    assert_ok(cnnl_loss_dense(CNNL_LOSS_MSE, in, tg, CNNL_REDUCE_SUM, &loss, g));
    assert_near(loss, 17.0, 1e-5);
    assert_near(cnnl_tensor_data(g)[2], 6.0, 1e-6);
    cnnl_tensor_free(in);
    cnnl_tensor_free(tg);
    cnnl_tensor_free(g);
}

static void test_kl_values(void **state)
{
    (void)state;
    /* Row 0: target (1/2, 1/2, 0) against log (1/4, 1/4, 1/2): 2 * 1/2 log 2 = log 2; the zero
     * target contributes nothing. Row 1: target equals the prediction: 0. 'batchmean': / 2. */
    const float x[] = {logf(0.25f), logf(0.25f), logf(0.5f), logf(0.2f), logf(0.3f), logf(0.5f)};
    const float t[] = {0.5f, 0.5f, 0.0f, 0.2f, 0.3f, 0.5f};
    cnnl_tensor *in = tensor2(2, 3, x), *tg = tensor2(2, 3, t), *g = tensor2(2, 3, NULL);
    float loss = 0.0f;
    assert_ok(cnnl_loss_dense(CNNL_LOSS_KL_DIV, in, tg, CNNL_REDUCE_MEAN, &loss, g));
    assert_near(loss, log(2.0) / 2.0, 1e-6);
    for (int i = 0; i < 6; i++)
        assert_near(cnnl_tensor_data(g)[i], -t[i] / 2.0, 1e-7);
    assert_ok(cnnl_loss_dense(CNNL_LOSS_KL_DIV, in, tg, CNNL_REDUCE_SUM, &loss, g));
    assert_near(loss, log(2.0), 1e-6);
    assert_near(cnnl_tensor_data(g)[0], -0.5, 1e-7);
    cnnl_tensor_free(in);
    cnnl_tensor_free(tg);
    cnnl_tensor_free(g);
}

static void test_cosine_values(void **state)
{
    (void)state;
    /* Row 0: orthogonal: 1 - 0. Row 1: parallel: 1 - 1. Row 2: opposite: 1 + 1. */
    const float x[] = {1, 0, 1, 1, 3, 4}, y[] = {0, 1, 2, 2, -6, -8};
    cnnl_tensor *in = tensor2(3, 2, x), *tg = tensor2(3, 2, y), *g = tensor2(3, 2, NULL);
    float loss = 0.0f;
    assert_ok(cnnl_loss_dense(CNNL_LOSS_COSINE, in, tg, CNNL_REDUCE_MEAN, &loss, g));
    assert_near(loss, 3.0 / 3.0, 1e-6);
    const float *gd = cnnl_tensor_data(g);
    /* d(1 - cos)/dx = -(y / (|x||y|) - cos x / |x|^2): row 0: -(0, 1) / 3 rows. */
    assert_near(gd[0], 0.0, 1e-7);
    assert_near(gd[1], -1.0 / 3.0, 1e-7);
    /* At cos = +-1 the gradient vanishes (x is a critical point of the angle). */
    for (int i = 2; i < 6; i++)
        assert_near(gd[i], 0.0, 1e-7);
    assert_ok(cnnl_loss_dense(CNNL_LOSS_COSINE, in, tg, CNNL_REDUCE_SUM, &loss, NULL));
    assert_near(loss, 3.0, 1e-6);
    cnnl_tensor_free(in);
    cnnl_tensor_free(tg);
    cnnl_tensor_free(g);
}

/* PyTorch adds 1e-12 to both squared norms: a zero row gives cos 0 (loss 1), not NaN. */
static void test_cosine_zero_row(void **state)
{
    (void)state;
    const float x[] = {0, 0}, y[] = {1, 2};
    cnnl_tensor *in = tensor2(1, 2, x), *tg = tensor2(1, 2, y), *g = tensor2(1, 2, NULL);
    float loss = 0.0f;
    assert_ok(cnnl_loss_dense(CNNL_LOSS_COSINE, in, tg, CNNL_REDUCE_MEAN, &loss, g));
    assert_near(loss, 1.0, 1e-7);
    /* Gradient -y / sqrt((0 + eps)(5 + eps)). */
    double den = sqrt(1e-12 * (5.0 + 1e-12));
    assert_near(cnnl_tensor_data(g)[1], -2.0 / den, 2.0 / den * 1e-6);
    cnnl_tensor_free(in);
    cnnl_tensor_free(tg);
    cnnl_tensor_free(g);
}

/* ---- finite differences ---------------------------------------------------------------- */

/* Deterministic values in [-1, 1). */
static float pseudo(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

typedef struct loss_case {
    cnnl_loss_kind kind;
    cnnl_reduction reduction;
    bool class_targets;
} loss_case;

static float eval_loss(const loss_case *c, cnnl_tensor *in, const int32_t *labels, const cnnl_tensor *target,
                       cnnl_tensor *grad)
{
    float loss = 0.0f;
    int64_t n = cnnl_tensor_dim(in, 0);
    if (c->class_targets)
        assert_ok(cnnl_loss_class(c->kind, in, labels, (size_t)n, c->reduction, &loss, grad));
    else
        assert_ok(cnnl_loss_dense(c->kind, in, target, c->reduction, &loss, grad));
    return loss;
}

/*
 * Central differences (L(x + h) - L(x - h)) / 2h against the analytic gradient.
 * The losses round once from double to float, so each evaluation carries an error of at most
 * 2^-24 |L| (~6e-8 |L|, |L| < 10 here); with h = 1e-2 that is ~6e-5 / 2e-2 = 3e-6 in the
 * quotient. The truncation error h^2/6 |L'''| is ~2e-5 for these smooth losses (|L'''| <~ 1
 * with inputs in [-2, 2]) and zero for the piecewise-linear ones (hinge, KL, and MSE which is
 * quadratic), whose inputs are kept farther than h from every kink. A tolerance of
 * 2e-4 + 1e-3 |g| leaves a factor of ~10 above both.
 */
static void check_gradient(const loss_case *c, int64_t rows, int64_t cols, uint32_t seed)
{
    const double h = 1e-2;
    uint32_t s = seed;
    cnnl_tensor *in = tensor2(rows, cols, NULL), *tg = tensor2(rows, cols, NULL), *g = tensor2(rows, cols, NULL);
    float *x = cnnl_tensor_data(in), *t = cnnl_tensor_data(tg);
    int32_t labels[8];
    for (int64_t i = 0; i < rows * cols; i++) {
        x[i] = 2.0f * pseudo(&s);
        t[i] = pseudo(&s);
    }
    for (int64_t i = 0; i < rows; i++)
        labels[i] = (int32_t)(i % cols);
    if (c->kind == CNNL_LOSS_KL_DIV)
        for (int64_t i = 0; i < rows * cols; i++)
            t[i] = fabsf(t[i]) * (i % 5 == 0 ? 0.0f : 1.0f); /* include zero targets */
    if (c->kind == CNNL_LOSS_HINGE) /* keep every margin term 1 - x_y + x_j away from 0 */
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                float *xy = &x[i * cols + labels[i]], *xj = &x[i * cols + j];
                while (j != labels[i] && fabsf(1.0f - *xy + *xj) < 0.1f)
                    *xj += 0.15f;
            }
    (void)eval_loss(c, in, labels, tg, g);
    const float *gd = cnnl_tensor_data(g);
    for (int64_t i = 0; i < rows * cols; i++) {
        float keep = x[i];
        x[i] = (float)(keep + h);
        double up = eval_loss(c, in, labels, tg, NULL);
        x[i] = (float)(keep - h);
        double down = eval_loss(c, in, labels, tg, NULL);
        x[i] = keep;
        /* The perturbed inputs are rounded to float: divide by the step actually taken. */
        double step = (double)(float)(keep + h) - (double)(float)(keep - h);
        double fd = (up - down) / step;
        if (!(fabs(fd - gd[i]) <= 2e-4 + 1e-3 * fabs(fd))) {
            print_error("loss %d reduction %d element %lld: analytic %.7g, finite difference %.7g\n", (int)c->kind,
                        (int)c->reduction, (long long)i, (double)gd[i], fd);
            fail();
        }
    }
    cnnl_tensor_free(in);
    cnnl_tensor_free(tg);
    cnnl_tensor_free(g);
}

static void test_gradients_by_finite_differences(void **state)
{
    (void)state;
    const cnnl_loss_kind kinds[] = {CNNL_LOSS_CROSS_ENTROPY, CNNL_LOSS_HINGE, CNNL_LOSS_MSE, CNNL_LOSS_KL_DIV,
                                    CNNL_LOSS_COSINE};
    for (int k = 0; k < 5; k++)
        for (int r = 0; r < 2; r++) {
            loss_case c = {kinds[k], r == 0 ? CNNL_REDUCE_MEAN : CNNL_REDUCE_SUM, k < 2};
            check_gradient(&c, 5, 4, 17u + (uint32_t)(10 * k + r));
        }
}

/* ---- errors ---------------------------------------------------------------------------- */

static void test_class_errors(void **state)
{
    (void)state;
    const float x[] = {0.5f, 1.0f, -1.0f, 2.0f, 0.0f, 0.1f};
    const int32_t ok[] = {0, 1, 1}, high[] = {0, 1, 2}, low[] = {-3, 0, 0};
    cnnl_tensor *in = tensor2(3, 2, x), *g_bad = tensor2(2, 2, NULL), *in1d = NULL;
    assert_ok(cnnl_tensor_zeros(&in1d, 1, (const int64_t[]){6}));
    float loss = 42.0f;
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, NULL, ok, 3, CNNL_REDUCE_MEAN, &loss, NULL),
                      CNNL_EINVAL, "input is NULL");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, NULL, 3, CNNL_REDUCE_MEAN, &loss, NULL),
                      CNNL_EINVAL, "labels is NULL");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, ok, 3, CNNL_REDUCE_MEAN, NULL, NULL),
                      CNNL_EINVAL, "loss is NULL");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_MSE, in, ok, 3, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_EINVAL,
                      "does not take class labels");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_HINGE, in, ok, 3, (cnnl_reduction)7, &loss, NULL), CNNL_EINVAL,
                      "unknown reduction 7");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in1d, ok, 3, CNNL_REDUCE_MEAN, &loss, NULL),
                      CNNL_ESHAPE, "expected (N, C)");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, ok, 2, CNNL_REDUCE_MEAN, &loss, NULL),
                      CNNL_ESHAPE, "2 labels for a batch of 3 rows");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_HINGE, in, ok, 3, CNNL_REDUCE_MEAN, &loss, g_bad), CNNL_ESHAPE,
                      "gradient has 4 elements; the input has 6");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, high, 3, CNNL_REDUCE_MEAN, &loss, NULL),
                      CNNL_ERANGE, "label 2 at position 2 is outside [0, 2)");
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_HINGE, in, low, 3, CNNL_REDUCE_SUM, &loss, NULL), CNNL_ERANGE,
                      "label -3 at position 0");
    cnnl_tensor_data(in)[3] = NAN;
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, in, ok, 3, CNNL_REDUCE_MEAN, &loss, NULL),
                      CNNL_ENUMERIC, "non-finite value (nan) at element 3");
    cnnl_tensor_data(in)[3] = -INFINITY;
    assert_status_msg(cnnl_loss_class(CNNL_LOSS_HINGE, in, ok, 3, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ENUMERIC,
                      "element 3");
    assert_true(loss == 42.0f); /* never written on failure */
    cnnl_tensor_free(in);
    cnnl_tensor_free(in1d);
    cnnl_tensor_free(g_bad);
}

static void test_dense_errors(void **state)
{
    (void)state;
    const float x[] = {0.5f, 1.0f, -1.0f, 2.0f, 0.0f, 0.1f};
    cnnl_tensor *a = tensor2(3, 2, x), *b = tensor2(3, 2, x), *wrong = tensor2(2, 3, x), *g_bad = tensor2(1, 2, NULL);
    cnnl_tensor *flat = NULL, *flat2 = NULL;
    assert_ok(cnnl_tensor_from_data(&flat, 1, (const int64_t[]){6}, x));
    assert_ok(cnnl_tensor_from_data(&flat2, 1, (const int64_t[]){6}, x));
    float loss = 42.0f;
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_MSE, a, NULL, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_EINVAL,
                      "target is NULL");
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_CROSS_ENTROPY, a, b, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_EINVAL,
                      "does not take a dense target");
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_MSE, a, b, (cnnl_reduction)-1, &loss, NULL), CNNL_EINVAL,
                      "unknown reduction");
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_MSE, a, wrong, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ESHAPE,
                      "target shape differs");
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_KL_DIV, a, flat, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ESHAPE,
                      "target shape differs");
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_COSINE, flat, flat2, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ESHAPE,
                      "cosine loss needs (N, D)");
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_MSE, a, b, CNNL_REDUCE_MEAN, &loss, g_bad), CNNL_ESHAPE,
                      "gradient has 2 elements");
    /* A negative KL target has no logarithm (PyTorch returns NaN). */
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_KL_DIV, a, b, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ENUMERIC,
                      "KL target -1 at element 2 is negative");
    cnnl_tensor_data(b)[4] = INFINITY;
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_MSE, a, b, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ENUMERIC,
                      "target holds a non-finite value (inf) at element 4");
    cnnl_tensor_data(a)[1] = NAN;
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_COSINE, a, b, CNNL_REDUCE_MEAN, &loss, NULL), CNNL_ENUMERIC,
                      "input holds a non-finite value (nan) at element 1");
    /* Finite inputs whose loss overflows float. */
    cnnl_tensor_data(a)[1] = 3e38f;
    cnnl_tensor_data(b)[4] = 0.0f;
    cnnl_tensor_data(b)[1] = -3e38f;
    assert_status_msg(cnnl_loss_dense(CNNL_LOSS_MSE, a, b, CNNL_REDUCE_SUM, &loss, NULL), CNNL_ENUMERIC,
                      "the loss is not finite");
    assert_true(loss == 42.0f);
    cnnl_tensor_free(a);
    cnnl_tensor_free(b);
    cnnl_tensor_free(wrong);
    cnnl_tensor_free(g_bad);
    cnnl_tensor_free(flat);
    cnnl_tensor_free(flat2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy_values),
        cmocka_unit_test(test_cross_entropy_is_stable),
        cmocka_unit_test(test_hinge_values),
        cmocka_unit_test(test_mse_values),
        cmocka_unit_test(test_kl_values),
        cmocka_unit_test(test_cosine_values),
        cmocka_unit_test(test_cosine_zero_row),
        cmocka_unit_test(test_gradients_by_finite_differences),
        cmocka_unit_test(test_class_errors),
        cmocka_unit_test(test_dense_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
