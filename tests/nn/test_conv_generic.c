/* The generic convolution (lib/ops/conv_generic.c): against the default engine on the shapes
 * both run, bit-identical results for 1 and 2 threads, the ReLU and pool layers after a grouped
 * convolution running unfused, and its errors (groups not dividing the channels, bfloat16). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "core/tensor_impl.h"
#include "nn/layer.h"
#include "ops/conv_generic.h"
#include "ops/kernels.h"

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(*s >> 40) / 16777216.0f * 2.0f - 1.0f;
}

static cnnl_tensor *rand4(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed)
{
    int64_t shape[4] = {n, c, h, w};
    cnnl_tensor *t = NULL;
    assert_ok(cnnl_tensor_create(&t, 4, shape));
    for (size_t i = 0; i < t->numel; i++)
        t->data[i] = urand(&seed);
    return t;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++)
        err = fmax(err, fabs((double)a[i] - b[i]));
    return err / (scale > 0.0 ? scale : 1.0);
}

/* With dilation 1 and one group, the generic kernels called directly give what the layer's
 * own engine (oneDNN or im2col + BLAS) gives: output, input, weight and bias gradients. The
 * batch of 40 has more images than weight-gradient slots (32). */
static void test_matches_engine(void **state)
{
    (void)state;
    static const int cfg[][5] = {/* c, oc, k, stride, pad */ {3, 4, 3, 1, 1}, {2, 5, 5, 2, 2}, {4, 3, 2, 3, 0}};
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        const int *c = cfg[ci];
        const int n = ci == 0 ? 40 : 3, h = 9, w = 7;
        cnnl_layer *l = NULL;
        cnnl_model *m = NULL;
        assert_ok(cnnl_conv2d_create(&l, c[0], c[1], c[2], c[3], c[4], true));
        assert_ok(cnnl_model_create(&m));
        assert_ok(cnnl_model_add(m, "0", l));
        assert_ok(cnnl_model_init(m, 3));
        cnnl_tensor *x = rand4(n, c[0], h, w, 5 + ci);
        const cnnl_tensor *y = NULL, *gx = NULL;
        assert_ok(cnnl_model_forward(m, x, &y));
        cnnl_tensor *gy = rand4(y->shape[0], y->shape[1], y->shape[2], y->shape[3], 9 + ci);
        assert_ok(cnnl_model_zero_grad(m));
        assert_ok(cnnl_model_backward(m, gy));
        assert_ok(cnnl_model_input_grad(m, &gx));
        cnnl_param_info wi, bi;
        assert_ok(cnnl_model_state_find(m, "0.weight", &wi));
        assert_ok(cnnl_model_state_find(m, "0.bias", &bi));

        cnnl__conv_geom g = {.n = n, .c = c[0], .h = h, .w = w, .oc = c[1], .k = c[2], .stride = c[3], .pad = c[4],
                             .oh = (int)y->shape[2], .ow = (int)y->shape[3]};
        float *yg = calloc(y->numel, sizeof(float)), *gxg = calloc(x->numel, sizeof(float));
        float *gw = calloc(wi.numel, sizeof(float)), *gb = calloc(bi.numel, sizeof(float));
        float *acc = calloc(cnnl__conv_generic_acc_floats(&g), sizeof(float));
        assert_true(yg && gxg && gw && gb && acc);
        assert_true(cnnl__conv_generic_forward(&g, x->data, wi.data, bi.data, yg, 2));
        cnnl__conv_generic_backward(&g, x->data, wi.data, gy->data, gxg, gw, gb, acc, 2);
        assert_true(max_rel(yg, y->data, y->numel) <= 1e-5);
        assert_true(max_rel(gxg, gx->data, x->numel) <= 1e-5);
        assert_true(max_rel(gw, wi.grad, wi.numel) <= 1e-5);
        assert_true(max_rel(gb, bi.grad, bi.numel) <= 1e-5);
        free(yg);
        free(gxg);
        free(gw);
        free(gb);
        free(acc);
        cnnl_tensor_free(x);
        cnnl_tensor_free(gy);
        cnnl_model_free(m);
    }
}

typedef struct run {
    float *y, *gx, *gw, *gb;
    size_t ny, nx, nw, nb;
} run;

static float *dup(const float *p, size_t n)
{
    float *q = malloc(sizeof(float) * n);
    assert_non_null(q);
    memcpy(q, p, sizeof(float) * n);
    return q;
}

static run run_threads(const char *json, int64_t n, int threads)
{
    assert_ok(cnnl_set_num_threads(threads));
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_from_json(&m, json, 17));
    int64_t in[3];
    assert_ok(cnnl_model_input_shape(m, in));
    cnnl_tensor *x = rand4(n, in[0], in[1], in[2], 23);
    const cnnl_tensor *y = NULL, *gx = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    cnnl_tensor *gy = rand4(y->shape[0], y->shape[1], y->shape[2], y->shape[3], 29);
    assert_ok(cnnl_model_zero_grad(m));
    assert_ok(cnnl_model_backward(m, gy));
    assert_ok(cnnl_model_input_grad(m, &gx));
    cnnl_param_info wi, bi;
    assert_ok(cnnl_model_state_find(m, "0.weight", &wi));
    assert_ok(cnnl_model_state_find(m, "0.bias", &bi));
    run r = {dup(y->data, y->numel), dup(gx->data, gx->numel), dup(wi.grad, wi.numel), dup(bi.grad, bi.numel),
             y->numel, gx->numel, wi.numel, bi.numel};
    cnnl_tensor_free(x);
    cnnl_tensor_free(gy);
    cnnl_model_free(m);
    return r;
}

static void run_free(run *r)
{
    free(r->y);
    free(r->gx);
    free(r->gw);
    free(r->gb);
}

/* Outputs and every gradient are bit-identical on 1 and 2 threads (batch 37: several images per
 * weight-gradient slot, a slot count that does not divide the batch). */
static void test_thread_count(void **state)
{
    (void)state;
    int saved = cnnl_get_num_threads();
    const char *json = "{\"input\": [4, 9, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 6, "
                       "\"kernel_size\": 3, \"stride\": 2, \"padding\": 2, \"dilation\": 2, \"groups\": 2}]}";
    run a = run_threads(json, 37, 1), b = run_threads(json, 37, 2);
    assert_memory_equal(a.y, b.y, sizeof(float) * a.ny);
    assert_memory_equal(a.gx, b.gx, sizeof(float) * a.nx);
    assert_memory_equal(a.gw, b.gw, sizeof(float) * a.nw);
    assert_memory_equal(a.gb, b.gb, sizeof(float) * a.nb);
    run_free(&a);
    run_free(&b);
    assert_ok(cnnl_set_num_threads(saved));
}

/* A depthwise convolution followed by ReLU and MaxPool2d(2, 2): the generic engine fuses
 * neither, and the output is the pooled ReLU of the convolution computed alone. */
static void test_unfused_relu_pool(void **state)
{
    (void)state;
    const char *conv_only = "{\"input\": [3, 6, 6], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 3, "
                            "\"kernel_size\": 3, \"padding\": 1, \"groups\": 3}]}";
    const char *full = "{\"input\": [3, 6, 6], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 3, "
                       "\"kernel_size\": 3, \"padding\": 1, \"groups\": 3}, {\"type\": \"ReLU\"}, "
                       "{\"type\": \"MaxPool2d\", \"kernel_size\": 2}]}";
    cnnl_model *a = NULL, *b = NULL;
    assert_ok(cnnl_model_from_json(&a, conv_only, 4));
    assert_ok(cnnl_model_from_json(&b, full, 4));
    cnnl_tensor *x = rand4(2, 3, 6, 6, 41);
    const cnnl_tensor *ya = NULL, *yb = NULL;
    assert_ok(cnnl_model_forward(a, x, &ya));
    assert_ok(cnnl_model_forward(b, x, &yb));
    assert_int_equal(yb->shape[2], 3);
    assert_int_equal(yb->shape[3], 3);
    int negatives = 0;
    for (size_t i = 0; i < ya->numel; i++)
        negatives += ya->data[i] < 0.0f;
    assert_true(negatives > 0); /* the ReLU has something to do */
    for (int p = 0; p < 6; p++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                const float *q = ya->data + (size_t)p * 36 + (size_t)(2 * oy) * 6 + 2 * ox;
                float mx = fmaxf(fmaxf(q[0], q[1]), fmaxf(q[6], q[7]));
                assert_float_equal(yb->data[(size_t)p * 9 + (size_t)oy * 3 + ox], fmaxf(mx, 0.0f), 0.0f);
            }
    cnnl_tensor_free(x);
    cnnl_model_free(a);
    cnnl_model_free(b);
}

static void test_errors(void **state)
{
    (void)state;
    cnnl_layer *l = (cnnl_layer *)1;
    assert_status_msg(cnnl__conv2d_create_ex(&l, 4, 6, 3, 1, 1, 1, 4, true), CNNL_EINVAL,
                      "groups 4 does not divide in_channels 4 and out_channels 6");
    assert_null(l);
    assert_status_msg(cnnl__conv2d_create_ex(&l, 4, 4, 3, 1, 1, 0, 1, true), CNNL_EINVAL, "dilation is out of range");
    assert_status_msg(cnnl__pool2d_create_ex(&l, 3, 1, 2, true), CNNL_EINVAL, "padding is 2; must be in 0..1");
    /* bfloat16: refused either for the CPU (set_precision) or, on a CPU with bfloat16, for the
     * grouped layer when it runs. */
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_from_json(&m, "{\"input\": [2, 5, 5], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 2, "
                                       "\"kernel_size\": 3, \"groups\": 2}]}", 0));
    cnnl_status st = cnnl_model_set_precision(m, CNNL_PRECISION_BF16);
    assert_int_equal(st == CNNL_OK || st == CNNL_EUNSUPPORTED, 1);
    if (st == CNNL_OK) {
        cnnl_tensor *x = rand4(1, 2, 5, 5, 1);
        const cnnl_tensor *y = NULL;
        assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_EUNSUPPORTED,
                          "bfloat16 is not supported with dilation 1, groups 2");
        cnnl_tensor_free(x);
    }
    cnnl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_engine),
        cmocka_unit_test(test_thread_count),
        cmocka_unit_test(test_unfused_relu_pool),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
