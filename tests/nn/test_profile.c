/* The per-layer profile: one entry per layer with its name, kind and shapes, non-negative
 * times that add up to no more than the whole passes, counted calls, and argument errors. */
#include <stdlib.h>
#include <time.h>

#include "test_util.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_profile_report_net(void **state)
{
    (void)state;
    cnnl_report_opts o = cnnl_report_opts_default();
    o.size = 64;
    o.batchnorm = true;
    cnnl_model *m = NULL;
    assert_ok(cnnl_report_net_create(&m, &o));
    /* avgpool, 4 x (conv, bn, relu, pool), flatten, dropout, linear, relu, dropout, linear */
    size_t n = cnnl_model_num_layers(m);
    assert_int_equal(n, 1 + 4 * 4 + 1 + 5);

    int64_t shape[4] = {3, 3, 64, 64};
    cnnl_tensor *x = NULL, *g = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, shape));
    float *xd = cnnl_tensor_data(x);
    for (size_t i = 0; i < cnnl_tensor_numel(x); i++)
        xd[i] = (float)(i % 17) / 17.0f;
    int64_t gshape[2] = {3, 4};
    assert_ok(cnnl_tensor_create(&g, 2, gshape));
    float *gd = cnnl_tensor_data(g);
    for (int i = 0; i < 12; i++)
        gd[i] = 0.1f * (float)(i % 5) - 0.2f;

    /* never profiled: named entries with zero totals */
    cnnl_layer_profile p;
    assert_ok(cnnl_model_layer_profile(m, 1, &p));
    assert_string_equal(p.name, "features.1");
    assert_string_equal(p.kind, "Conv2d");
    assert_true(p.forward_seconds == 0.0 && p.forward_calls == 0 && p.in_ndim == 0);

    assert_ok(cnnl_model_set_profiling(m, true));
    const int passes = 2;
    double total = 0.0;
    for (int r = 0; r < passes; r++) {
        const cnnl_tensor *y = NULL;
        double t0 = now();
        assert_ok(cnnl_model_forward(m, x, &y));
        assert_ok(cnnl_model_backward(m, g));
        total += now() - t0;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        assert_ok(cnnl_model_layer_profile(m, i, &p));
        assert_non_null(p.name);
        assert_non_null(p.kind);
        assert_true(p.forward_seconds >= 0.0);
        assert_true(p.backward_seconds >= 0.0);
        assert_int_equal(p.forward_calls, passes);
        /* the first layer has no parameters before it: no backward pass through it */
        assert_int_equal(p.backward_calls, i == 0 ? 0 : passes);
        sum += p.forward_seconds + p.backward_seconds;
    }
    assert_true(sum > 0.0);
    assert_true(sum <= total);

    /* shapes of the last pass: the first conv sees the pooled 32x32 input, 3 channels */
    assert_ok(cnnl_model_layer_profile(m, 1, &p));
    assert_int_equal(p.in_ndim, 4);
    assert_int_equal(p.in_shape[0], 3);
    assert_int_equal(p.in_shape[1], 3);
    assert_int_equal(p.in_shape[2], 32);
    assert_int_equal(p.in_shape[3], 32);
    assert_ok(cnnl_model_layer_profile(m, n - 1, &p));
    assert_string_equal(p.name, "classifier.4");
    assert_string_equal(p.kind, "Linear");
    assert_int_equal(p.out_ndim, 2);
    assert_int_equal(p.out_shape[1], 4);

    /* switching on again clears the totals; off stops counting */
    assert_ok(cnnl_model_set_profiling(m, true));
    assert_ok(cnnl_model_layer_profile(m, 1, &p));
    assert_true(p.forward_seconds == 0.0 && p.forward_calls == 0);
    assert_ok(cnnl_model_set_profiling(m, false));
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    assert_ok(cnnl_model_layer_profile(m, 1, &p));
    assert_int_equal(p.forward_calls, 0);

    assert_status_msg(cnnl_model_layer_profile(m, n, &p), CNNL_ERANGE, "index");
    assert_status_msg(cnnl_model_layer_profile(NULL, 0, &p), CNNL_EINVAL, "model is NULL");
    assert_status_msg(cnnl_model_layer_profile(m, 0, NULL), CNNL_EINVAL, "out is NULL");
    assert_status_msg(cnnl_model_set_profiling(NULL, true), CNNL_EINVAL, "model is NULL");
    assert_int_equal(cnnl_model_num_layers(NULL), 0);
    cnnl_tensor_free(x);
    cnnl_tensor_free(g);
    cnnl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_report_net),
    };
    return cmocka_run_group_tests_name("nn-profile", tests, NULL, NULL);
}
