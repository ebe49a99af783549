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


/* Distinct values spaced 0.05 apart in random order: every pooling window has a unique
 * maximum that a 1e-2 step cannot overtake. */
static cnnl_tensor *rand_distinct(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed)
{
    cnnl_tensor *t = rand_tensor(4, n, c, h, w, 0, 1, seed);
    for (size_t i = 0; t && i < t->numel; i++)
        t->data[i] = 0.05f * (float)i - 0.025f * (float)t->numel;
    for (size_t i = t ? t->numel : 0; i-- > 1;) {
        size_t j = (size_t)gc_rand(&seed, 0.0f, (float)(i + 1));
        if (j > i)
            j = i;
        float tmp = t->data[i];
        t->data[i] = t->data[j];
        t->data[j] = tmp;
    }
    return t;
}

static void check_single(cnnl_layer *l, cnnl_tensor *x, void (*reseed)(cnnl_model *))
{
    assert_non_null(l);
    assert_non_null(x);
    cnnl_model *m = single(l);
    assert_non_null(m);
    gc_check(m, x, reseed);
    cnnl_model_free(m);
    cnnl_tensor_free(x);
}

static void test_conv_grad(void **state)
{
    (void)state;
    static const int cfg[][4] = {{3, 1, 1, 1}, {3, 2, 0, 0}, {2, 2, 1, 1}, {1, 1, 0, 1}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        cnnl_layer *l = NULL;
        assert_ok(cnnl_conv2d_create(&l, 2, 3, cfg[i][0], cfg[i][1], cfg[i][2], cfg[i][3]));
        check_single(l, rand_tensor(4, 2, 2, 5, 5, -1, 1, 11 + i), NULL);
    }
    /* Rows of >= 32 outputs and few taps take the direct (non-GEMM) kernels; 37 columns also
     * exercise their tail. */
    for (int bias = 0; bias < 2; bias++) {
        cnnl_layer *l = NULL;
        assert_ok(cnnl_conv2d_create(&l, 2, 3, 3, 1, 1, bias));
        check_single(l, rand_tensor(4, 2, 2, 3, 37, -1, 1, 15 + bias), NULL);
    }
}

static void test_conv_values(void **state)
{
    (void)state;
    /* One 3x3 all-ones kernel with padding 1 on a 3x3 ramp: each output sums its neighbourhood. */
    cnnl_layer *l = NULL;
    assert_ok(cnnl_conv2d_create(&l, 1, 1, 3, 1, 1, true));
    cnnl_model *m = single(l);
    cnnl_param_info w, b;
    assert_ok(cnnl_model_state_find(m, "0.weight", &w));
    assert_ok(cnnl_model_state_find(m, "0.bias", &b));
    assert_int_equal(w.ndim, 4);
    for (size_t i = 0; i < 9; i++)
        w.data[i] = 1.0f;
    b.data[0] = 0.5f;
    const float xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t shape[4] = {1, 1, 3, 3};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 4, shape, xv));
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    const float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++)
        assert_float_equal(y->data[i], want[i] + 0.5f, 1e-5);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

static void test_pool_grad(void **state)
{
    (void)state;
    cnnl_layer *l = NULL;
    assert_ok(cnnl_maxpool2d_create(&l, 2, 2));
    check_single(l, rand_distinct(2, 2, 4, 5, 21), NULL);
    assert_ok(cnnl_maxpool2d_create(&l, 3, 2));
    check_single(l, rand_distinct(1, 2, 7, 6, 22), NULL);
    assert_ok(cnnl_avgpool2d_create(&l, 2, 2));
    check_single(l, rand_tensor(4, 2, 2, 4, 5, -1, 1, 23), NULL);
    assert_ok(cnnl_avgpool2d_create(&l, 3, 1));
    check_single(l, rand_tensor(4, 1, 2, 5, 4, -1, 1, 24), NULL);
}

static void test_pool_values(void **state)
{
    (void)state;
    const float xv[16] = {1, 5, 2, 0, 3, 4, 8, 7, -1, -2, 0, 0, -3, -4, 0, 1};
    int64_t shape[4] = {1, 1, 4, 4};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 4, shape, xv));
    cnnl_layer *l = NULL;
    assert_ok(cnnl_maxpool2d_create(&l, 2, 2));
    cnnl_model *m = single(l);
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    const float maxw[4] = {5, 8, -1, 1};
    for (int i = 0; i < 4; i++)
        assert_float_equal(y->data[i], maxw[i], 0);
    cnnl_model_free(m);
    assert_ok(cnnl_avgpool2d_create(&l, 2, 2));
    m = single(l);
    assert_ok(cnnl_model_forward(m, x, &y));
    const float avgw[4] = {13.0f / 4, 17.0f / 4, -10.0f / 4, 1.0f / 4};
    for (int i = 0; i < 4; i++)
        assert_float_equal(y->data[i], avgw[i], 1e-6);
    cnnl_model_free(m);
    cnnl_tensor_free(x);
}

static void test_batchnorm_grad(void **state)
{
    (void)state;
    cnnl_layer *l = NULL;
    assert_ok(cnnl_batchnorm2d_create(&l, 2));
    cnnl_model *m = single(l);
    /* Non-trivial gamma and beta so that their gradients are exercised. */
    cnnl_param_info g, b;
    assert_ok(cnnl_model_state_find(m, "0.weight", &g));
    assert_ok(cnnl_model_state_find(m, "0.bias", &b));
    g.data[0] = 1.5f, g.data[1] = -0.7f, b.data[0] = 0.2f, b.data[1] = -0.3f;
    cnnl_tensor *x = rand_tensor(4, 3, 2, 2, 3, -2, 2, 31);
    gc_check(m, x, NULL); /* training mode: batch statistics */
    assert_ok(cnnl_model_set_training(m, false));
    gc_check(m, x, NULL); /* evaluation: running statistics */
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

static void test_batchnorm_running_stats(void **state)
{
    (void)state;
    cnnl_layer *l = NULL;
    assert_ok(cnnl_batchnorm2d_create(&l, 1));
    cnnl_model *m = single(l);
    /* Channel values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3. */
    const float xv[4] = {1, 2, 3, 6};
    int64_t shape[4] = {2, 1, 1, 2};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 4, shape, xv));
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    double is = 1.0 / sqrt(3.5 + 1e-5);
    for (int i = 0; i < 4; i++)
        assert_float_equal(y->data[i], (xv[i] - 3.0) * is, 1e-5);
    cnnl_param_info rm, rv, nbt;
    assert_ok(cnnl_model_state_find(m, "0.running_mean", &rm));
    assert_ok(cnnl_model_state_find(m, "0.running_var", &rv));
    assert_ok(cnnl_model_state_find(m, "0.num_batches_tracked", &nbt));
    assert_float_equal(rm.data[0], 0.9 * 0 + 0.1 * 3.0, 1e-6);
    assert_float_equal(rv.data[0], 0.9 * 1 + 0.1 * 14.0 / 3.0, 1e-6);
    assert_int_equal(nbt.dtype, CNNL_DTYPE_I64);
    assert_int_equal(nbt.ndim, 0);
    assert_int_equal(nbt.data_i64[0], 1);
    assert_false(rm.trainable);
    assert_null(rm.grad);
    assert_ok(cnnl_model_forward(m, x, &y));
    assert_float_equal(rm.data[0], 0.9 * 0.3 + 0.1 * 3.0, 1e-6);
    assert_float_equal(rv.data[0], 0.9 * (0.9 + 0.1 * 14.0 / 3.0) + 0.1 * 14.0 / 3.0, 1e-5);
    assert_int_equal(nbt.data_i64[0], 2);
    /* Evaluation normalises with the running statistics and leaves them alone. */
    assert_ok(cnnl_model_set_training(m, false));
    float mean = rm.data[0], var = rv.data[0];
    assert_ok(cnnl_model_forward(m, x, &y));
    for (int i = 0; i < 4; i++)
        assert_float_equal(y->data[i], (xv[i] - mean) / sqrt(var + 1e-5), 1e-5);
    assert_float_equal(rm.data[0], mean, 0);
    assert_int_equal(nbt.data_i64[0], 2);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

static void reseed_dropout(cnnl_model *m)
{
    const uint64_t s[4] = {1, 2, 3, 4};
    assert_ok(cnnl_model_set_rng_state(m, s));
}

/* A mask large enough to be drawn by several threads: the same bits with 1 and 2 threads, and
 * the fraction of zeros within 1% of p. */
static void test_dropout_parallel(void **state)
{
    (void)state;
    const int64_t n = 3, f = 70001;
    float *out[2] = {NULL, NULL};
    int threads = cnnl_get_num_threads();
    for (int k = 0; k < 2; k++) {
        assert_ok(cnnl_set_num_threads(k + 1));
        cnnl_model *m = NULL;
        cnnl_layer *d = NULL;
        assert_ok(cnnl_model_create(&m));
        assert_ok(cnnl_dropout_create(&d, 0.3f));
        assert_ok(cnnl_model_add(m, "drop", d));
        assert_ok(cnnl_model_init(m, 9));
        int64_t shape[2] = {n, f};
        cnnl_tensor *x = NULL;
        assert_ok(cnnl_tensor_create(&x, 2, shape));
        for (size_t i = 0; i < x->numel; i++)
            x->data[i] = 1.0f;
        const cnnl_tensor *y = NULL;
        assert_ok(cnnl_model_forward(m, x, &y));
        out[k] = malloc(sizeof(float) * y->numel);
        assert_non_null(out[k]);
        memcpy(out[k], y->data, sizeof(float) * y->numel);
        size_t zeros = 0;
        for (size_t i = 0; i < y->numel; i++) {
            assert_true(y->data[i] == 0.0f || y->data[i] == 1.0f / 0.7f);
            zeros += y->data[i] == 0.0f;
        }
        double frac = (double)zeros / (double)y->numel;
        assert_true(fabs(frac - 0.3) < 0.01);
        /* Backward applies the same factors (the input is 1: the output is the factor), the
         * odd last word of the bit mask included. */
        cnnl_tensor *g = NULL;
        const cnnl_tensor *gx = NULL;
        assert_ok(cnnl_tensor_create(&g, 2, shape));
        for (size_t i = 0; i < g->numel; i++)
            g->data[i] = (float)(i % 101) * 0.01f - 0.5f;
        assert_ok(cnnl_model_backward(m, g));
        assert_ok(cnnl_model_input_grad(m, &gx));
        for (size_t i = 0; i < g->numel; i++)
            assert_true(gx->data[i] == g->data[i] * y->data[i]);
        cnnl_tensor_free(g);
        /* A second batch draws another mask. */
        assert_ok(cnnl_model_forward(m, x, &y));
        assert_true(memcmp(out[k], y->data, sizeof(float) * y->numel) != 0);
        cnnl_tensor_free(x);
        cnnl_model_free(m);
    }
    assert_ok(cnnl_set_num_threads(threads));
    assert_memory_equal(out[0], out[1], sizeof(float) * (size_t)(n * f));
    free(out[0]);
    free(out[1]);
}

static void test_dropout(void **state)
{
    (void)state;
    cnnl_model *m = NULL;
    cnnl_layer *a = NULL, *d = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_linear_create(&a, 4, 50, true));
    assert_ok(cnnl_model_add(m, "fc", a));
    assert_ok(cnnl_dropout_create(&d, 0.4f));
    assert_ok(cnnl_model_add(m, "drop", d));
    assert_ok(cnnl_model_init(m, 3));
    cnnl_tensor *x = rand_tensor(2, 3, 4, 0, 0, -1, 1, 41);
    gc_check(m, x, reseed_dropout); /* a fixed mask through a fixed generator state */
    /* Training: each output is 0 or input / 0.6; about 40% zeros. */
    cnnl_model *plain = NULL;
    cnnl_layer *a2 = NULL;
    assert_ok(cnnl_model_create(&plain));
    assert_ok(cnnl_linear_create(&a2, 4, 50, true));
    assert_ok(cnnl_model_add(plain, "fc", a2));
    assert_ok(cnnl_model_init(plain, 3));
    const cnnl_tensor *y = NULL, *ref = NULL;
    assert_ok(cnnl_model_forward(plain, x, &ref));
    assert_ok(cnnl_model_forward(m, x, &y));
    size_t zeros = 0;
    for (size_t i = 0; i < y->numel; i++) {
        if (y->data[i] == 0.0f)
            zeros++;
        else
            assert_float_equal(y->data[i], ref->data[i] / 0.6f, 1e-5);
    }
    assert_in_range(zeros, 30, 90); /* 150 draws, p = 0.4: mean 60, sd 6 */
    /* Evaluation: identity. */
    assert_ok(cnnl_model_set_training(m, false));
    assert_ok(cnnl_model_forward(m, x, &y));
    for (size_t i = 0; i < y->numel; i++)
        assert_float_equal(y->data[i], ref->data[i], 0);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
    cnnl_model_free(plain);
}

static void test_activation_grads(void **state)
{
    (void)state;
    static const struct { cnnl_activation kind; float param; } acts[] = {
        {CNNL_ACT_RELU, 0}, {CNNL_ACT_LEAKY_RELU, 0.1f}, {CNNL_ACT_ELU, 1.3f},
        {CNNL_ACT_TANH, 0}, {CNNL_ACT_SIGMOID, 0},     {CNNL_ACT_SOFTMAX, 0},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        cnnl_layer *l = NULL;
        assert_ok(cnnl_activation_create(&l, acts[i].kind, acts[i].param));
        check_single(l, rand_away_from_zero(4, 2, 3, 2, 2, 50 + i), NULL);
    }
    cnnl_layer *l = NULL;
    assert_ok(cnnl_activation_create(&l, CNNL_ACT_SOFTMAX, 0));
    check_single(l, rand_tensor(2, 3, 5, 0, 0, -2, 2, 59), NULL);
    assert_ok(cnnl_flatten_create(&l));
    cnnl_model *m = NULL;
    cnnl_layer *fc = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_model_add(m, "flat", l));
    assert_ok(cnnl_linear_create(&fc, 12, 2, true));
    assert_ok(cnnl_model_add(m, "fc", fc));
    assert_ok(cnnl_model_init(m, 1));
    cnnl_tensor *x = rand_tensor(4, 2, 3, 2, 2, -1, 1, 60);
    gc_check(m, x, NULL);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

static void test_activation_values(void **state)
{
    (void)state;
    const float xv[4] = {-2, -0.5f, 0.5f, 2};
    int64_t shape[2] = {1, 4};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 2, shape, xv));
    cnnl_layer *l = NULL;
    for (int k = CNNL_ACT_RELU; k <= CNNL_ACT_SOFTMAX; k++) {
        float p = k == CNNL_ACT_LEAKY_RELU ? 0.01f : 1.0f;
        assert_ok(cnnl_activation_create(&l, (cnnl_activation)k, p));
        cnnl_model *m = single(l);
        const cnnl_tensor *y = NULL;
        assert_ok(cnnl_model_forward(m, x, &y));
        double z = exp(-2) + exp(-0.5) + exp(0.5) + exp(2);
        for (int i = 0; i < 4; i++) {
            double v = xv[i], want = 0;
            switch (k) {
            case CNNL_ACT_RELU: want = v > 0 ? v : 0; break;
            case CNNL_ACT_LEAKY_RELU: want = v > 0 ? v : 0.01 * v; break;
            case CNNL_ACT_ELU: want = v > 0 ? v : exp(v) - 1; break;
            case CNNL_ACT_TANH: want = tanh(v); break;
            case CNNL_ACT_SIGMOID: want = 1 / (1 + exp(-v)); break;
            default: want = exp(v) / z; break;
            }
            assert_float_equal(y->data[i], want, 1e-6);
        }
        cnnl_model_free(m);
    }
    assert_status_msg(cnnl_activation_create(&l, (cnnl_activation)9, 0), CNNL_EINVAL, "unknown activation");
    assert_null(l);
    cnnl_tensor_free(x);
}

/* A first AvgPool2d that covers its input takes over the model's check for NaN and infinity
 * (no separate pass): every position in every plane is still caught, with the model's message;
 * an overflowing sum is the layer's; a pool that leaves elements out keeps the separate check. */
static void test_avgpool_input_check(void **state)
{
    (void)state;
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    /* 40 columns (20 outputs): a 16-output vector tile and a tail on AVX-512 CPUs, two
     * 8-output tiles and a tail on AVX2 */
    const int hs[3] = {6, 7, 4}, ws[3] = {8, 9, 40};
    for (int v = 0; v < 3; v++) {
        bool odd = v == 1;
        cnnl_layer *l = NULL;
        assert_ok(cnnl_avgpool2d_create(&l, 2, 2));
        cnnl_model *m = single(l);
        int h = hs[v], w = ws[v];
        cnnl_tensor *x = rand_tensor(4, 2, 3, h, w, -1, 1, 72);
        const cnnl_tensor *y = NULL;
        size_t pos[4] = {0, (size_t)w - 1, x->numel / 2 + 3, x->numel - 1};
        for (int p = 0; p < 4; p++)
            for (int b = 0; b < 3; b++) {
                float keep = x->data[pos[p]];
                x->data[pos[p]] = bad[b];
                assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_ENUMERIC,
                                  "cnnl_model_forward: the input holds a non-finite value");
                assert_null(y);
                x->data[pos[p]] = keep;
            }
        assert_ok(cnnl_model_forward(m, x, &y));
        assert_int_equal(y->shape[2], h / 2);
        assert_float_equal(y->data[0], (x->data[0] + x->data[1] + x->data[w] + x->data[w + 1]) / 4, 1e-6);
        /* the same bits from the plain loop */
        float *fast = malloc(y->numel * sizeof *fast);
        assert_non_null(fast);
        memcpy(fast, y->data, y->numel * sizeof *fast);
        assert_int_equal(setenv("CNNLITE_ISA", "sse2", 1), 0);
        assert_ok(cnnl_model_forward(m, x, &y));
        assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
        assert_memory_equal(fast, y->data, y->numel * sizeof *fast);
        free(fast);
        if (!odd) {
            /* finite values whose sum overflows: the layer's output, not the input */
            x->data[0] = x->data[1] = 3e38f;
            assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_ENUMERIC, "layer 0 (AvgPool2d): the output is not finite");
        }
        cnnl_tensor_free(x);
        cnnl_model_free(m);
    }
}

/* Linear: each row of a batch gives exactly what it gives alone (output and input gradient),
 * the weight gradient is the same for 1 and 2 threads, at every vector level the
 * CPU has (and 1 or 2 threads), within float rounding of a double-precision product; odd sizes
 * exercise the edge tiles and the tail of the dot products. */
static void test_linear_rows_independent(void **state)
{
    (void)state;
    const char *levels[3] = {"sse2", "avx2", NULL}; /* NULL: the CPU's own */
    const int ins[3] = {1029, 16, 37}, outs[3] = {130, 4, 1}, n = 11;
    for (int s = 0; s < 3; s++) {
        int in = ins[s], out = outs[s];
        cnnl_layer *l = NULL;
        assert_ok(cnnl_linear_create(&l, in, out, true));
        cnnl_model *m = single(l);
        assert_ok(cnnl_model_init(m, 3));
        cnnl_param_info w, b;
        assert_ok(cnnl_model_state_find(m, "0.weight", &w));
        assert_ok(cnnl_model_state_find(m, "0.bias", &b));
        cnnl_tensor *x = rand_tensor(2, n, in, 1, 1, -1, 1, 80 + s), *one = rand_tensor(2, 1, in, 1, 1, 0, 0, 1);
        float *gw1 = NULL;
        for (int li = 0; li < 3; li++) {
            if (levels[li])
                assert_int_equal(setenv("CNNLITE_ISA", levels[li], 1), 0);
            else
                assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
            for (int threads = 1; threads <= 2; threads++) {
                assert_ok(cnnl_set_num_threads(threads));
                const cnnl_tensor *y = NULL;
                assert_ok(cnnl_model_forward(m, x, &y));
                float *batch = malloc(sizeof(float) * (size_t)n * out);
                assert_non_null(batch);
                memcpy(batch, y->data, sizeof(float) * (size_t)n * out);
                for (int i = 0; i < n; i++) {
                    memcpy(one->data, x->data + (size_t)i * in, sizeof(float) * (size_t)in);
                    assert_ok(cnnl_model_forward(m, one, &y));
                    assert_memory_equal(y->data, batch + (size_t)i * out, sizeof(float) * (size_t)out);
                    for (int o = 0; o < out; o++) {
                        double want = b.data[o];
                        for (int k = 0; k < in; k++)
                            want += (double)x->data[(size_t)i * in + k] * w.data[(size_t)o * in + k];
                        assert_true(fabs(batch[(size_t)i * out + o] - want) <= 1e-5 * (1 + fabs(want)));
                    }
                }
                free(batch);
                /* the input gradient, row by row the same */
                cnnl_tensor *gy = rand_tensor(2, n, out, 1, 1, -1, 1, 90 + s), *g1 = rand_tensor(2, 1, out, 1, 1, 0, 0, 1);
                const cnnl_tensor *gx = NULL;
                assert_ok(cnnl_model_forward(m, x, &y));
                assert_ok(cnnl_model_zero_grad(m));
                assert_ok(cnnl_model_backward(m, gy));
                assert_ok(cnnl_model_input_grad(m, &gx));
                /* the weight gradient: the same bits on 1 and 2 threads, close to double */
                if (threads == 1) {
                    free(gw1);
                    gw1 = malloc(sizeof(float) * w.numel);
                    assert_non_null(gw1);
                    memcpy(gw1, w.grad, sizeof(float) * w.numel);
                } else {
                    assert_memory_equal(gw1, w.grad, sizeof(float) * w.numel);
                }
                for (int o = 0; o < out; o += 3)
                    for (int k = 0; k < in; k += 5) {
                        double want = 0;
                        for (int i = 0; i < n; i++)
                            want += (double)gy->data[(size_t)i * out + o] * x->data[(size_t)i * in + k];
                        assert_true(fabs(w.grad[(size_t)o * in + k] - want) <= 1e-5 * (1 + fabs(want)));
                    }
                float *gb = malloc(sizeof(float) * (size_t)n * in);
                assert_non_null(gb);
                memcpy(gb, gx->data, sizeof(float) * (size_t)n * in);
                for (int i = 0; i < n; i++) {
                    memcpy(one->data, x->data + (size_t)i * in, sizeof(float) * (size_t)in);
                    memcpy(g1->data, gy->data + (size_t)i * out, sizeof(float) * (size_t)out);
                    assert_ok(cnnl_model_forward(m, one, &y));
                    assert_ok(cnnl_model_backward(m, g1));
                    assert_ok(cnnl_model_input_grad(m, &gx));
                    assert_memory_equal(gx->data, gb + (size_t)i * in, sizeof(float) * (size_t)in);
                    for (int k = 0; k < in; k += 7) {
                        double want = 0;
                        for (int o = 0; o < out; o++)
                            want += (double)gy->data[(size_t)i * out + o] * w.data[(size_t)o * in + k];
                        assert_true(fabs(gb[(size_t)i * in + k] - want) <= 1e-5 * (1 + fabs(want)));
                    }
                }
                free(gb);
                cnnl_tensor_free(gy);
                cnnl_tensor_free(g1);
            }
        }
        assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
        free(gw1);
        cnnl_tensor_free(x);
        cnnl_tensor_free(one);
        cnnl_model_free(m);
    }
}

static void test_errors(void **state)
{
    (void)state;
    cnnl_layer *l = NULL;
    assert_status_msg(cnnl_conv2d_create(&l, 0, 3, 3, 1, 1, true), CNNL_EINVAL, "in_channels");
    assert_status_msg(cnnl_dropout_create(&l, 1.0f), CNNL_EINVAL, "[0, 1)");
    assert_status_msg(cnnl_linear_create(&l, 3, 0, true), CNNL_EINVAL, "out_features");
    assert_ok(cnnl_conv2d_create(&l, 3, 4, 3, 1, 1, true));
    cnnl_model *m = single(l);
    cnnl_tensor *x = rand_tensor(4, 1, 2, 5, 5, -1, 1, 70);
    const cnnl_tensor *y = NULL;
    assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_ESHAPE, "layer 0 (Conv2d): input shape 1x2x5x5");
    assert_null(y);
    cnnl_tensor_free(x);
    x = rand_tensor(4, 1, 3, 5, 5, -1, 1, 71);
    x->data[7] = NAN;
    assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_ENUMERIC, "non-finite");
    x->data[7] = 0.5f;
    /* A weight that overflows the output is reported with the layer's name. */
    cnnl_param_info w;
    assert_ok(cnnl_model_state_find(m, "0.weight", &w));
    float keep = w.data[0];
    w.data[0] = 3e38f;
    x->data[0] = 1e10f;
    assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_ENUMERIC, "layer 0 (Conv2d)");
    w.data[0] = keep;
    x->data[0] = 0.5f;
    cnnl_tensor *g = NULL;
    assert_status_msg(cnnl_model_backward(m, x), CNNL_ESTATE, "no forward");
    assert_ok(cnnl_model_forward(m, x, &y));
    assert_status_msg(cnnl_model_backward(m, x), CNNL_ESHAPE, "grad_output has shape 1x3x5x5");
    int64_t gs[4] = {1, 4, 5, 5};
    assert_ok(cnnl_tensor_create(&g, 4, gs));
    assert_ok(cnnl_tensor_fill(g, INFINITY));
    assert_status_msg(cnnl_model_backward(m, g), CNNL_ENUMERIC, "non-finite");
    assert_ok(cnnl_tensor_fill(g, 1.0f));
    assert_ok(cnnl_model_backward(m, g));
    cnnl_param_info info;
    assert_status_msg(cnnl_model_state_at(m, 5, &info), CNNL_ERANGE, "index 5");
    assert_status_msg(cnnl_model_state_find(m, "0.nope", &info), CNNL_ENOTFOUND, "0.nope");
    assert_ok(cnnl_linear_create(&l, 2, 2, true));
    assert_status_msg(cnnl_model_add(m, "0", l), CNNL_EINVAL, "exists already");
    cnnl_tensor_free(g);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

/* Conv2d, ReLU, MaxPool2d(2) are fused into the convolution; the same layers separated by
 * identity Dropout(0) layers are not. Both must agree (the fused kernels do the same float
 * operations in the same order, so to rounding of the bias sums only). */
static cnnl_model *head_chain(bool fused, int pool_k, bool bias, bool bn)
{
    cnnl_model *m = NULL;
    cnnl_layer *l = NULL;
    assert_ok(cnnl_model_create(&m));
    if (bn) {
        assert_ok(cnnl_batchnorm2d_create(&l, 2));
        assert_ok(cnnl_model_add(m, "bn", l));
    } else {
        assert_ok(cnnl_conv2d_create(&l, 2, 3, 3, 1, 1, bias));
        assert_ok(cnnl_model_add(m, "conv", l));
    }
    if (!fused) {
        assert_ok(cnnl_dropout_create(&l, 0.0f));
        assert_ok(cnnl_model_add(m, "sep1", l));
    }
    assert_ok(cnnl_activation_create(&l, CNNL_ACT_RELU, 0));
    assert_ok(cnnl_model_add(m, "relu", l));
    if (!fused) {
        assert_ok(cnnl_dropout_create(&l, 0.0f));
        assert_ok(cnnl_model_add(m, "sep2", l));
    }
    if (pool_k) {
        assert_ok(cnnl_maxpool2d_create(&l, pool_k, 2));
        assert_ok(cnnl_model_add(m, "pool", l));
    }
    assert_ok(cnnl_model_init(m, 12));
    if (bn) {
        /* gamma of both signs and a shift, so that the ReLU cuts at different places. */
        cnnl_param_info g, b;
        assert_ok(cnnl_model_state_find(m, "bn.weight", &g));
        assert_ok(cnnl_model_state_find(m, "bn.bias", &b));
        g.data[0] = 1.3f, g.data[1] = -0.8f, b.data[0] = 0.1f, b.data[1] = -0.2f;
    }
    return m;
}

static cnnl_model *conv_chain(bool fused, int pool_k, bool bias)
{
    return head_chain(fused, pool_k, bias, false);
}

static void compare_models(cnnl_model *a, cnnl_model *b, cnnl_tensor *x)
{
    const cnnl_tensor *ya = NULL, *yb = NULL, *ga = NULL, *gb = NULL;
    assert_ok(cnnl_model_forward(a, x, &ya));
    assert_ok(cnnl_model_forward(b, x, &yb));
    assert_int_equal(ya->numel, yb->numel);
    assert_int_equal(ya->ndim, 4);
    for (int d = 0; d < 4; d++)
        assert_int_equal(ya->shape[d], yb->shape[d]);
    for (size_t i = 0; i < ya->numel; i++)
        assert_float_equal(ya->data[i], yb->data[i], 1e-6);
    cnnl_tensor *r = rand_tensor(4, ya->shape[0], ya->shape[1], ya->shape[2], ya->shape[3], -1, 1, 77);
    assert_ok(cnnl_model_zero_grad(a));
    assert_ok(cnnl_model_zero_grad(b));
    assert_ok(cnnl_model_backward(a, r));
    assert_ok(cnnl_model_backward(b, r));
    assert_ok(cnnl_model_input_grad(a, &ga));
    assert_ok(cnnl_model_input_grad(b, &gb));
    double gsum = 0;
    for (size_t i = 0; i < x->numel; i++) {
        assert_float_equal(ga->data[i], gb->data[i], 1e-5);
        gsum += fabs(ga->data[i]);
    }
    assert_true(gsum > 0);
    for (size_t s = 0; s < cnnl_model_state_count(a); s++) {
        cnnl_param_info pa, pb;
        assert_ok(cnnl_model_state_at(a, s, &pa));
        assert_ok(cnnl_model_state_find(b, pa.name, &pb));
        for (size_t i = 0; pa.grad && i < pa.numel; i++)
            assert_float_equal(pa.grad[i], pb.grad[i], 1e-4 * (1 + fabsf(pb.grad[i])));
        for (size_t i = 0; pa.data && i < pa.numel; i++)
            assert_float_equal(pa.data[i], pb.data[i], 1e-6);
    }
    cnnl_tensor_free(r);
}

static void test_fused_conv_relu_pool(void **state)
{
    (void)state;
    /* 6x40 and 5x33 take the direct kernels (2 channels x 3x3 taps, >= 32 columns). */
    static const int sizes[][2] = {{8, 8}, {7, 9}, {5, 4}, {6, 40}, {5, 33}};
    for (int pk = 0; pk <= 3; pk++) {
        if (pk == 1)
            continue; /* 0: no pool, 2: fused pool, 3: pool not fusable (3x3) */
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            cnnl_model *a = conv_chain(true, pk, s != 1), *b = conv_chain(false, pk, s != 1);
            cnnl_tensor *x = rand_tensor(4, 3, 2, sizes[s][0], sizes[s][1], -1, 1, 80 + s);
            compare_models(a, b, x);
            /* Evaluation mode and a second batch size reuse the workspaces. */
            assert_ok(cnnl_model_set_training(a, false));
            assert_ok(cnnl_model_set_training(b, false));
            cnnl_tensor_free(x);
            x = rand_tensor(4, 1, 2, sizes[s][0], sizes[s][1], -1, 1, 90 + s);
            compare_models(a, b, x);
            cnnl_tensor_free(x);
            cnnl_model_free(a);
            cnnl_model_free(b);
        }
    }
    /* A NaN before the fused ReLU is still reported (ReLU would turn it into 0). */
    cnnl_model *a = conv_chain(true, 2, true);
    cnnl_param_info w;
    assert_ok(cnnl_model_state_find(a, "conv.weight", &w));
    w.data[3] = NAN;
    cnnl_tensor *x = rand_tensor(4, 1, 2, 4, 4, -1, 1, 99);
    const cnnl_tensor *y = NULL;
    assert_status_msg(cnnl_model_forward(a, x, &y), CNNL_ENUMERIC, "layer conv (Conv2d)");
    cnnl_tensor_free(x);
    cnnl_model_free(a);
}

/* The same for BatchNorm2d -> ReLU -> MaxPool2d(2), in training and evaluation. */
static void test_fused_bn_relu_pool(void **state)
{
    (void)state;
    static const int sizes[][2] = {{8, 8}, {7, 9}, {2, 3}};
    for (int pk = 0; pk <= 2; pk += 2)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            cnnl_model *a = head_chain(true, pk, true, true), *b = head_chain(false, pk, true, true);
            cnnl_tensor *x = rand_tensor(4, 3, 2, sizes[s][0], sizes[s][1], -1, 1, 110 + s);
            compare_models(a, b, x);
            assert_ok(cnnl_model_set_training(a, false));
            assert_ok(cnnl_model_set_training(b, false));
            compare_models(a, b, x);
            cnnl_param_info ra, rb;
            assert_ok(cnnl_model_state_find(a, "bn.running_var", &ra));
            assert_ok(cnnl_model_state_find(b, "bn.running_var", &rb));
            assert_float_equal(ra.data[1], rb.data[1], 1e-6);
            assert_true(ra.data[1] != 1.0f);
            cnnl_tensor_free(x);
            cnnl_model_free(a);
            cnnl_model_free(b);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_values),
        cmocka_unit_test(test_linear_grad),
        cmocka_unit_test(test_relu_grad),
        cmocka_unit_test(test_conv_values),
        cmocka_unit_test(test_conv_grad),
        cmocka_unit_test(test_pool_values),
        cmocka_unit_test(test_pool_grad),
        cmocka_unit_test(test_batchnorm_grad),
        cmocka_unit_test(test_batchnorm_running_stats),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_dropout_parallel),
        cmocka_unit_test(test_activation_grads),
        cmocka_unit_test(test_activation_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_linear_rows_independent),
        cmocka_unit_test(test_avgpool_input_check),
        cmocka_unit_test(test_fused_conv_relu_pool),
        cmocka_unit_test(test_fused_bn_relu_pool),
    };
    return cmocka_run_group_tests_name("nn-layers", tests, NULL, NULL);
}
