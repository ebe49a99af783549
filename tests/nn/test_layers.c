/* Layers: finite-difference gradient checks, train/eval behaviour, error reporting. */
#include "gradcheck.h"

static cnnl_tensor *rand_tensor(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, float lo, float hi,
                                uint64_t seed)
{
    int64_t shape[4] = {a, b, c, d};
    cnnl_tensor *t = NULL;
    if (cnnl_tensor_create(&t, ndim, shape) != CNNL_OK)
        return NULL;
    for (size_t i = 0; i < t->numel; i++) {
        float v = gc_rand(&seed, lo, hi);
        t->data[i] = v;
    }
    return t;
}

/* Values with |v| >= 0.1 and a random sign: no finite-difference step crosses ReLU's kink. */
static cnnl_tensor *rand_away_from_zero(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, uint64_t seed)
{
    cnnl_tensor *t = rand_tensor(ndim, a, b, c, d, 0.1f, 1.0f, seed);
    for (size_t i = 0; t && i < t->numel; i++)
        if (gc_rand(&seed, 0.0f, 1.0f) < 0.5f)
            t->data[i] = -t->data[i];
    return t;
}

static cnnl_model *single(cnnl_layer *l)
{
    cnnl_model *m = NULL;
    if (cnnl_model_create(&m) != CNNL_OK || cnnl_model_add(m, "0", l) != CNNL_OK)
        return NULL;
    if (cnnl_model_init(m, 7) != CNNL_OK)
        return NULL;
    return m;
}

static void test_linear_grad(void **state)
{
    (void)state;
    for (int bias = 0; bias < 2; bias++) {
        cnnl_layer *l = NULL;
        assert_ok(cnnl_linear_create(&l, 5, 3, bias));
        cnnl_model *m = single(l);
        assert_non_null(m);
        cnnl_tensor *x = rand_tensor(2, 4, 5, 0, 0, -1.0f, 1.0f, 3);
        gc_check(m, x, NULL);
        cnnl_tensor_free(x);
        cnnl_model_free(m);
    }
}

static void test_linear_values(void **state)
{
    (void)state;
    cnnl_layer *l = NULL;
    assert_ok(cnnl_linear_create(&l, 2, 2, true));
    cnnl_model *m = single(l);
    cnnl_param_info w, b;
    assert_ok(cnnl_model_state_find(m, "0.weight", &w));
    assert_ok(cnnl_model_state_find(m, "0.bias", &b));
    const float wv[4] = {1, 2, 3, 4}, bv[2] = {0.5f, -1};
    memcpy(w.data, wv, sizeof wv);
    memcpy(b.data, bv, sizeof bv);
    int64_t shape[2] = {1, 2};
    const float xv[2] = {1, -1};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 2, shape, xv));
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    /* y = x W^T + b = (1-2+0.5, 3-4-1) */
    assert_float_equal(y->data[0], -0.5f, 1e-6);
    assert_float_equal(y->data[1], -2.0f, 1e-6);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

static void test_relu_grad(void **state)
{
    (void)state;
    cnnl_layer *a = NULL, *b = NULL;
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_linear_create(&a, 6, 4, true));
    assert_ok(cnnl_model_add(m, "fc", a));
    assert_ok(cnnl_activation_create(&b, CNNL_ACT_RELU, 0));
    assert_ok(cnnl_model_add(m, "act", b));
    assert_ok(cnnl_model_init(m, 1));
    cnnl_tensor *x = rand_away_from_zero(2, 3, 6, 0, 0, 5);
    gc_check(m, x, NULL);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_values),
        cmocka_unit_test(test_linear_grad),
        cmocka_unit_test(test_relu_grad),
    };
    return cmocka_run_group_tests_name("nn-layers", tests, NULL, NULL);
}
