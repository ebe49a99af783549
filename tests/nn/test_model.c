/* The sequential model and the report's network: names, counts, initialisation, determinism. */
#include <math.h>
#include <stdlib.h>

#include "test_util.h"
#include "core/internal.h"
#include "core/tensor_impl.h"
#include "nn/layer.h"
#include "nn/model_impl.h"

static cnnl_model *report(bool bn, int size, uint64_t seed)
{
    cnnl_report_opts o = cnnl_report_opts_default();
    o.batchnorm = bn;
    o.size = size;
    o.seed = seed;
    cnnl_model *m = NULL;
    assert_ok(cnnl_report_net_create(&m, &o));
    return m;
}

static void expect_names(cnnl_model *m, const char *const *names, size_t n)
{
    assert_int_equal(cnnl_model_state_count(m), n);
    for (size_t i = 0; i < n; i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        assert_string_equal(info.name, names[i]);
    }
}

static void test_report_names_counts(void **state)
{
    (void)state;
    cnnl_model *m = report(false, 512, 0);
    assert_int_equal(cnnl_model_num_params(m), 4292388);
    static const char *const plain[] = {
        "features.1.weight", "features.1.bias", "features.4.weight", "features.4.bias",
        "features.7.weight", "features.7.bias", "features.10.weight", "features.10.bias",
        "classifier.1.weight", "classifier.1.bias", "classifier.4.weight", "classifier.4.bias"};
    expect_names(m, plain, sizeof plain / sizeof plain[0]);
    cnnl_param_info info;
    assert_ok(cnnl_model_state_find(m, "classifier.1.weight", &info));
    assert_int_equal(info.ndim, 2);
    assert_int_equal(info.shape[0], 128);
    assert_int_equal(info.shape[1], 32768);
    assert_ok(cnnl_model_state_find(m, "features.10.weight", &info));
    assert_int_equal(info.shape[0], 128);
    assert_int_equal(info.shape[1], 64);
    assert_int_equal(info.shape[2], 3);
    cnnl_report_opts o;
    assert_ok(cnnl_model_report_opts(m, &o));
    assert_int_equal(o.size, 512);
    assert_false(o.batchnorm);
    cnnl_model_free(m);

    m = report(true, 512, 0);
    assert_int_equal(cnnl_model_num_params(m), 4292868);
    assert_int_equal(cnnl_model_state_count(m), 12 + 4 * 5);
    static const char *const bn[] = {
        "features.1.weight", "features.1.bias", "features.2.weight", "features.2.bias",
        "features.2.running_mean", "features.2.running_var", "features.2.num_batches_tracked",
        "features.5.weight", "features.5.bias", "features.6.weight"};
    for (size_t i = 0; i < sizeof bn / sizeof bn[0]; i++) {
        assert_ok(cnnl_model_state_at(m, i, &info));
        assert_string_equal(info.name, bn[i]);
    }
    assert_ok(cnnl_model_state_find(m, "features.14.running_var", &info));
    assert_int_equal(info.numel, 128);
    assert_float_equal(info.data[0], 1.0f, 0);
    assert_ok(cnnl_model_state_find(m, "features.13.weight", &info));
    assert_ok(cnnl_model_state_find(m, "classifier.4.bias", &info));
    assert_int_equal(info.numel, 4);
    cnnl_model_free(m);

    /* Size 64: Linear(128 * 2 * 2, 128). */
    m = report(false, 64, 0);
    assert_int_equal(cnnl_model_num_params(m), 4292388 - 128 * (32768 - 512));
    cnnl_model_free(m);
}

static void test_report_options(void **state)
{
    (void)state;
    cnnl_report_opts o = cnnl_report_opts_default();
    assert_int_equal(o.classes, 4);
    assert_int_equal(o.channels, 3);
    assert_int_equal(o.size, 512);
    assert_false(o.batchnorm);
    assert_float_equal(o.dropout, 0.2f, 0);
    cnnl_model *m = NULL;
    o.size = 100;
    assert_status_msg(cnnl_report_net_create(&m, &o), CNNL_EINVAL, "size is 100; must be a positive multiple of 32");
    assert_null(m);
    o.size = 0;
    assert_status_msg(cnnl_report_net_create(&m, &o), CNNL_EINVAL, "multiple of 32");
    o = cnnl_report_opts_default();
    o.dropout = 1.0f;
    assert_status_msg(cnnl_report_net_create(&m, &o), CNNL_EINVAL, "dropout");
    o = cnnl_report_opts_default();
    o.classes = 0;
    assert_status_msg(cnnl_report_net_create(&m, &o), CNNL_EINVAL, "classes");
    assert_status_msg(cnnl_model_report_opts(NULL, &o), CNNL_EINVAL, "model is NULL");
    assert_ok(cnnl_model_create(&m));
    assert_status_msg(cnnl_model_report_opts(m, &o), CNNL_ENOTFOUND, "cnnl_report_net_create");
    cnnl_model_free(m);
}

/* Initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases. */
static void test_init_distribution(void **state)
{
    (void)state;
    cnnl_model *m = report(false, 64, 5);
    static const struct { const char *name; double fan_in; } p[] = {
        {"features.1.weight", 27}, {"features.4.bias", 144}, {"features.10.weight", 576},
        {"classifier.1.weight", 512}, {"classifier.4.weight", 128}};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_find(m, p[i].name, &info));
        double bound = 1.0 / sqrt(p[i].fan_in), lo = 1e9, hi = -1e9, sum = 0, sq = 0;
        for (size_t j = 0; j < info.numel; j++) {
            double v = info.data[j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
            sq += v * v;
        }
        double n = (double)info.numel, mean = sum / n, var = sq / n - mean * mean;
        assert_true(lo >= -bound && hi <= bound);
        /* Uniform: variance bound^2 / 3; the sample variance's relative standard deviation is
         * sqrt(0.8 / n) (fourth moment 9/5 of the squared second), allowed 4 of them. */
        assert_true(fabs(var / (bound * bound / 3.0) - 1.0) < 4.0 * sqrt(0.8 / n));
        assert_true(fabs(mean) < 4.0 * bound / sqrt(3.0 * n));
        if (info.numel > 1000)
            assert_true(hi > 0.95 * bound && lo < -0.95 * bound);
    }
    cnnl_model_free(m);
}

static int same_state(cnnl_model *a, cnnl_model *b)
{
    size_t n = cnnl_model_state_count(a);
    for (size_t i = 0; i < n; i++) {
        cnnl_param_info x, y;
        assert_ok(cnnl_model_state_at(a, i, &x));
        assert_ok(cnnl_model_state_at(b, i, &y));
        if (x.dtype == CNNL_DTYPE_F32 && memcmp(x.data, y.data, x.numel * sizeof(float)) != 0)
            return 0;
    }
    return 1;
}

static void test_seeds(void **state)
{
    (void)state;
    cnnl_model *a = report(true, 64, 42), *b = report(true, 64, 42), *c = report(true, 64, 43);
    assert_true(same_state(a, b));
    assert_false(same_state(a, c));
    assert_ok(cnnl_model_init(c, 42));
    assert_true(same_state(a, c));
    uint64_t sa[4], sb[4];
    assert_ok(cnnl_model_get_rng_state(a, sa));
    assert_ok(cnnl_model_get_rng_state(b, sb));
    assert_memory_equal(sa, sb, sizeof sa);
    const uint64_t zero[4] = {0, 0, 0, 0};
    assert_status_msg(cnnl_model_set_rng_state(a, zero), CNNL_EINVAL, "all-zero");
    cnnl_model_free(a);
    cnnl_model_free(b);
    cnnl_model_free(c);
}

/* One training-mode forward and backward of the report network at 64x64 with @p threads. */
static void run_step(int threads, bool bn, float **logits, float **grads, size_t *ngrad, float **gin)
{
    assert_ok(cnnl_set_num_threads(threads));
    cnnl_model *m = report(bn, 64, 9);
    int64_t xs[4] = {5, 3, 64, 64};
    cnnl_tensor *x = NULL, *g = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, xs));
    cnnl_rng *rng = NULL;
    assert_ok(cnnl_rng_create(&rng, 3, CNNL_RNG_SYNTHETIC));
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = cnnl_rng_uniform(rng);
    const cnnl_tensor *y = NULL, *gx = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    assert_int_equal(y->shape[0], 5);
    assert_int_equal(y->shape[1], 4);
    int64_t gs[2] = {5, 4};
    assert_ok(cnnl_tensor_create(&g, 2, gs));
    for (size_t i = 0; i < g->numel; i++)
        g->data[i] = cnnl_rng_uniform(rng) - 0.5f;
    assert_ok(cnnl_model_backward(m, g));
    *logits = malloc(20 * sizeof(float));
    memcpy(*logits, y->data, 20 * sizeof(float));
    *ngrad = cnnl_model_num_params(m);
    *grads = malloc(*ngrad * sizeof(float));
    size_t off = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        if (!info.trainable)
            continue;
        memcpy(*grads + off, info.grad, info.numel * sizeof(float));
        off += info.numel;
    }
    assert_ok(cnnl_model_input_grad(m, &gx));
    assert_int_equal(gx->numel, x->numel);
    *gin = malloc(gx->numel * sizeof(float));
    memcpy(*gin, gx->data, gx->numel * sizeof(float));
    cnnl_rng_free(rng);
    cnnl_tensor_free(x);
    cnnl_tensor_free(g);
    cnnl_model_free(m);
}

static void test_bit_identical(void **state)
{
    (void)state;
    for (int bn = 0; bn < 2; bn++) {
        float *l1, *g1, *i1, *l2, *g2, *i2, *l3, *g3, *i3;
        size_t n1, n2, n3;
        run_step(2, bn, &l1, &g1, &n1, &i1);
        run_step(2, bn, &l2, &g2, &n2, &i2);
        run_step(1, bn, &l3, &g3, &n3, &i3);
        assert_int_equal(n1, n2);
        assert_memory_equal(l1, l2, 20 * sizeof(float));
        assert_memory_equal(g1, g2, n1 * sizeof(float));
        assert_memory_equal(i1, i2, 5 * 3 * 64 * 64 * sizeof(float));
        /* Another thread count sums in another order: equal to rounding only. */
        for (size_t i = 0; i < n1; i++)
            assert_float_equal(g1[i], g3[i], 1e-4 + 1e-3 * fabsf(g1[i]));
        double s = 0;
        for (size_t i = 0; i < 5 * 3 * 64 * 64; i++)
            s += fabs(i1[i]);
        assert_true(s > 0);
        free(l1), free(g1), free(i1), free(l2), free(g2), free(i2), free(l3), free(g3), free(i3);
    }
    assert_ok(cnnl_set_num_threads(0));
}

/* Parameter gradients of @p m, concatenated (malloc'd; *@p n floats). */
static float *param_grads(cnnl_model *m, size_t *n)
{
    *n = cnnl_model_num_params(m);
    float *g = malloc(*n * sizeof(float));
    size_t off = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        if (!info.trainable)
            continue;
        memcpy(g + off, info.grad, info.numel * sizeof(float));
        off += info.numel;
    }
    return g;
}

/* Input gradients alternate between two model buffers in cnnl_model_backward(); the pass that
 * keeps one per layer (Grad-CAM's) gives the same bits, dropout's mask (recomputed in backward)
 * included, and a second step allocates nothing. */
static void test_shared_gradients(void **state)
{
    (void)state;
    assert_ok(cnnl_set_num_threads(2));
    int64_t xs[4] = {3, 3, 64, 64}, gs[2] = {3, 4};
    cnnl_tensor *x = NULL, *g = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, xs));
    assert_ok(cnnl_tensor_create(&g, 2, gs));
    cnnl_rng *rng = NULL;
    assert_ok(cnnl_rng_create(&rng, 11, CNNL_RNG_SYNTHETIC));
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = cnnl_rng_uniform(rng) - 0.25f;
    for (size_t i = 0; i < g->numel; i++)
        g->data[i] = cnnl_rng_uniform(rng) - 0.5f;
    cnnl_model *a = report(false, 64, 5), *b = report(false, 64, 5);
    const cnnl_tensor *y = NULL, *ga = NULL, *gb = NULL;
    assert_ok(cnnl_model_forward(a, x, &y));
    assert_ok(cnnl_model_backward(a, g));
    assert_ok(cnnl_model_forward(b, x, &y));
    assert_ok(cnnl__model_backward_keep(b, g));
    size_t na, nb;
    float *pa = param_grads(a, &na), *pb = param_grads(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof(float));
    double s = 0;
    for (size_t i = 0; i < na; i++)
        s += fabs(pa[i]);
    assert_true(s > 0);
    /* The layers below the first convolution follow on request, from the same buffers. */
    assert_ok(cnnl_model_input_grad(a, &ga));
    assert_ok(cnnl_model_input_grad(b, &gb));
    assert_int_equal(ga->numel, x->numel);
    assert_memory_equal(ga->data, gb->data, x->numel * sizeof(float));
    /* A second step reuses every buffer. */
    assert_ok(cnnl_model_forward(a, x, &y));
    cnnl__alloc_fail_after(1L << 40);
    assert_ok(cnnl_model_forward(a, x, &y));
    assert_ok(cnnl_model_backward(a, g));
    long allocs = cnnl__alloc_fault_count();
    cnnl__alloc_fail_after(-1);
    assert_int_equal(allocs, 0);
    /* Shared: no layer owns an input gradient, and two buffers hold them all (views
     * included, now that the buffers have their full size). Kept: every layer that computed
     * one has its own. */
    const float *bufs[2] = {NULL, NULL};
    size_t owners = 0;
    for (size_t i = 0; i < cnnl__model_num_layers(a); i++) {
        const cnnl_layer *la = cnnl__model_layer(a, i), *lb = cnnl__model_layer(b, i);
        assert_null(la->gin_ws);
        if (lb->gin_ws) {
            owners++;
            assert_ptr_equal(lb->gin, lb->gin_ws);
        }
        if (i > 1) { /* computed by backward (layer 1, the first convolution, is the first with weights) */
            const float *d = la->gin->data;
            if (d != bufs[0] && d != bufs[1]) {
                assert_null(bufs[1]);
                bufs[bufs[0] ? 1 : 0] = d;
            }
        }
    }
    assert_non_null(bufs[1]);
    assert_true(owners >= 5); /* conv2..4, dropout, Linear, ... */
    free(pa);
    free(pb);
    cnnl_rng_free(rng);
    cnnl_tensor_free(x);
    cnnl_tensor_free(g);
    cnnl_model_free(a);
    cnnl_model_free(b);
    assert_ok(cnnl_set_num_threads(0));
}

static void test_model_misc(void **state)
{
    (void)state;
    cnnl_model *m = NULL;
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_true(cnnl_model_is_training(m));
    int64_t s[2] = {1, 2};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_zeros(&x, 2, s));
    assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_EINVAL, "no layers");
    const cnnl_tensor *gx = NULL;
    assert_status_msg(cnnl_model_input_grad(m, &gx), CNNL_ESTATE, "no backward");
    assert_ok(cnnl_model_set_training(m, false));
    assert_false(cnnl_model_is_training(m));
    assert_status_msg(cnnl_model_add(m, "x", NULL), CNNL_EINVAL, "layer is NULL");
    assert_int_equal(cnnl_model_num_params(NULL), 0);
    assert_int_equal(cnnl_model_state_count(NULL), 0);
    cnnl_layer *l = NULL;
    assert_ok(cnnl_linear_create(&l, 2, 3, false));
    assert_ok(cnnl_model_add(m, NULL, l));
    cnnl_param_info info;
    assert_ok(cnnl_model_state_find(m, "0.weight", &info));
    assert_int_equal(cnnl_model_num_params(m), 6);
    cnnl_model_free(m);
    cnnl_model_free(NULL);
    cnnl_layer_free(NULL);
    cnnl_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_names_counts),
        cmocka_unit_test(test_report_options),
        cmocka_unit_test(test_init_distribution),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_bit_identical),
        cmocka_unit_test(test_shared_gradients),
        cmocka_unit_test(test_model_misc),
    };
    return cmocka_run_group_tests_name("nn-model", tests, NULL, NULL);
}
