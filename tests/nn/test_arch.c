/* Architecture descriptions: the report network as a file, canonical round trips, every kind of
 * error naming the layer's position and option, and gradient checks through Residual blocks and
 * global average pooling built from descriptions. */
#include <stdlib.h>

#include "gradcheck.h"

static char *source_path(const char *rel)
{
    const char *root = getenv("CNNLITE_SOURCE_ROOT");
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

/* Same state names, shapes and initial values as the builder for the same options and seed. */
static void same_models(cnnl_model *a, cnnl_model *b)
{
    assert_int_equal(cnnl_model_state_count(a), cnnl_model_state_count(b));
    assert_int_equal(cnnl_model_num_params(a), cnnl_model_num_params(b));
    for (size_t i = 0; i < cnnl_model_state_count(a); i++) {
        cnnl_param_info x, y;
        assert_ok(cnnl_model_state_at(a, i, &x));
        assert_ok(cnnl_model_state_at(b, i, &y));
        assert_string_equal(x.name, y.name);
        assert_int_equal(x.ndim, y.ndim);
        for (int d = 0; d < x.ndim; d++)
            assert_int_equal(x.shape[d], y.shape[d]);
        if (x.dtype == CNNL_DTYPE_F32)
            assert_memory_equal(x.data, y.data, x.numel * sizeof(float));
    }
}

static void test_report_files(void **state)
{
    (void)state;
    for (int bn = 0; bn < 2; bn++) {
        cnnl_model *f = NULL, *r = NULL;
        assert_ok(cnnl_model_from_json_file(&f, source_path(bn ? "examples/nets/report-bn.json"
                                                                : "examples/nets/report.json"), 5));
        cnnl_report_opts o = cnnl_report_opts_default();
        o.batchnorm = bn;
        o.seed = 5;
        assert_ok(cnnl_report_net_create(&r, &o));
        same_models(f, r);
        /* Convolutions 448 + 4640 + 18496 + 73856, Linear 32768*128 + 128 and 128*4 + 4. */
        if (!bn)
            assert_int_equal(cnnl_model_num_params(f), 4292388);
        cnnl_param_info info;
        assert_ok(cnnl_model_state_find(f, bn ? "features.14.running_var" : "classifier.4.bias", &info));
        const char *ja = NULL, *jb = NULL;
        assert_ok(cnnl_model_to_json(f, &ja));
        assert_ok(cnnl_model_to_json(r, &jb));
        assert_string_equal(ja, jb);
        int64_t shape[3];
        assert_ok(cnnl_model_input_shape(f, shape));
        assert_int_equal(shape[0], 3);
        assert_int_equal(shape[1], 512);
        assert_int_equal(shape[2], 512);
        cnnl_model_free(f);
        cnnl_model_free(r);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    cnnl_model *a = NULL, *b = NULL;
    assert_ok(cnnl_model_from_json_file(&a, source_path("examples/nets/small.json"), 3));
    const char *ja = NULL, *jb = NULL;
    assert_ok(cnnl_model_to_json(a, &ja));
    /* Defaults are written out. */
    assert_non_null(strstr(ja, "\"dilation\":1"));
    assert_non_null(strstr(ja, "\"momentum\":0.1"));
    assert_ok(cnnl_model_from_json(&b, ja, 3));
    assert_ok(cnnl_model_to_json(b, &jb));
    assert_string_equal(ja, jb);
    same_models(a, b);
    /* PyTorch's names: index, a Residual's body. */
    cnnl_param_info info;
    assert_ok(cnnl_model_state_find(a, "3.body.0.weight", &info));
    assert_int_equal(info.shape[0], 16);
    assert_int_equal(info.shape[1], 16);
    assert_ok(cnnl_model_state_find(a, "3.body.1.running_mean", &info));
    assert_ok(cnnl_model_state_find(a, "10.weight", &info));
    assert_int_equal(info.shape[0], 4);
    assert_int_equal(info.shape[1], 32 * 8 * 8);
    /* A forward pass gives the shapes the description promises. */
    cnnl_tensor *x = NULL;
    int64_t xs[4] = {2, 3, 64, 64};
    assert_ok(cnnl_tensor_create(&x, 4, xs));
    uint64_t seed = 1;
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = gc_rand(&seed, 0.0f, 1.0f);
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(a, x, &y));
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[1], 4);
    cnnl_tensor_free(x);
    cnnl_model_free(a);
    cnnl_model_free(b);
    /* A hand-assembled model has no description. */
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_status_msg(cnnl_model_to_json(m, &ja), CNNL_ENOTFOUND, "assembled");
    cnnl_model_free(m);
}

static void expect_error(const char *json, const char *needle)
{
    cnnl_model *m = (cnnl_model *)1;
    assert_status_msg(cnnl_model_from_json(&m, json, 0), CNNL_EFORMAT, needle);
    assert_null(m);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"ReLU\"}, {\"type\": \"Conv3d\"}]}",
                 "layers[1]: option \"type\": unknown layer type \"Conv3d\"");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel\": 3}]}",
                 "layers[0] (Conv2d): unknown option \"kernel\"");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 4}]}",
                 "layers[0] (Conv2d): option \"kernel_size\" is required");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": \"4\", "
                 "\"kernel_size\": 3}]}",
                 "layers[0] (Conv2d): option \"out_channels\" must be an integer");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 4, "
                 "\"kernel_size\": 3, \"bias\": 1}]}",
                 "option \"bias\" must be true or false");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Dropout\", \"p\": 1.5}]}",
                 "layers[0] (Dropout): option \"p\" is 1.5; must be in [0,");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 4, "
                 "\"kernel_size\": 9}]}",
                 "layers[0] (Conv2d), input 3x8x8: option \"kernel_size\" 9 does not fit");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Linear\", \"out_features\": 2}]}",
                 "layers[0] (Linear), input 3x8x8: needs flat features");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Flatten\"}, {\"type\": \"BatchNorm2d\"}]}",
                 "layers[1] (BatchNorm2d), input 192 features: needs a C x H x W input");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Sequential\", \"layers\": [{\"type\": \"ReLU\"}, "
                 "{\"type\": \"Residual\", \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 5, "
                 "\"kernel_size\": 1}]}]}]}",
                 "layers[0].layers[1] (Residual): option \"layers\" turns the 3x8x8 input into 5x8x8");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"ReLU\", \"name\": \"a\"}, "
                 "{\"type\": \"Tanh\", \"name\": \"a\"}]}",
                 "layers[1]: option \"name\": \"a\" is also the name of layers[0]");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"ReLU\", \"name\": \"a.b\"}]}",
                 "layers[0]: option \"name\" must be");
    expect_error("{\"input\": [3, 8], \"layers\": [{\"type\": \"ReLU\"}]}", "option \"input\" must be");
    expect_error("{\"input\": [3, 8, 8], \"layers\": []}", "option \"layers\" must be a non-empty list");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"ReLU\"}], \"extra\": 1}", "unknown key \"extra\"");
    expect_error("[1, 2", "not a JSON object");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, "
                 "\"groups\": 2}]}",
                 "layers[0] (Conv2d), input 3x8x8: option \"groups\" 2 must divide in_channels 3 and out_channels 4");
    expect_error("{\"input\": [4, 8, 8], \"layers\": [{\"type\": \"ReLU\"}, {\"type\": \"Conv2d\", \"out_channels\": 6, "
                 "\"kernel_size\": 3, \"groups\": 4}]}",
                 "layers[1] (Conv2d), input 4x8x8: option \"groups\" 4 must divide in_channels 4 and out_channels 6");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3, "
                 "\"groups\": 0}]}",
                 "layers[0] (Conv2d): option \"groups\" is 0; must be in [1, 65536]");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3, "
                 "\"dilation\": 4}]}",
                 "layers[0] (Conv2d), input 3x8x8: option \"kernel_size\" 3 does not fit the 8x8 input with padding 0 "
                 "and dilation 4");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"MaxPool2d\", \"kernel_size\": 3, \"padding\": 2}]}",
                 "layers[0] (MaxPool2d), input 3x8x8: option \"padding\" 2 is more than half of kernel_size 3");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"AvgPool2d\", \"kernel_size\": 2, \"padding\": 1, "
                 "\"count_include_pad\": false}]}",
                 "layers[0] (AvgPool2d), input 3x8x8: option \"count_include_pad\" false is not supported");
    expect_error("{\"input\": [3, 8, 8], \"layers\": [{\"type\": \"MaxPool2d\", \"kernel_size\": 2, \"ceil_mode\": true}]}",
                 "layers[0] (MaxPool2d): unknown option \"ceil_mode\"");
    /* Bounds on what would be allocated, checked before anything is. */
    expect_error("{\"input\": [4096, 65536, 65536], \"layers\": [{\"type\": \"ReLU\"}]}", "values per sample");
    expect_error("{\"input\": [1, 1024, 1024], \"layers\": [{\"type\": \"Flatten\"}, {\"type\": \"Linear\", "
                 "\"out_features\": 100000}]}",
                 "layers[1] (Linear), input 1048576 features: 1048576 in_features x 100000 out_features is more "
                 "than 2^31 weights");
    cnnl_model *m = NULL;
    assert_status_msg(cnnl_model_from_json_file(&m, "/nonexistent/net.json", 0), CNNL_EIO, "/nonexistent/net.json");
}

/* A nested description: Residual around Conv/BN/ReLU and around an activation only,
 * AdaptiveAvgPool2d, strided Conv2d and AvgPool2d; gradients by finite differences. BatchNorm
 * runs in evaluation mode with non-trivial running statistics so that the check is smooth. */
static void test_residual_gradients(void **state)
{
    (void)state;
    const char *json =
        "{\"input\": [2, 7, 7], \"layers\": ["
        "{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3, \"stride\": 2, \"padding\": 1},"
        "{\"type\": \"Residual\", \"name\": \"block\", \"layers\": ["
        "  {\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3, \"padding\": 1},"
        "  {\"type\": \"BatchNorm2d\"}, {\"type\": \"Tanh\"}]},"
        "{\"type\": \"Residual\", \"layers\": [{\"type\": \"ELU\"}]},"
        "{\"type\": \"Residual\", \"layers\": []},"
        "{\"type\": \"AvgPool2d\", \"kernel_size\": 2, \"stride\": 1},"
        "{\"type\": \"AdaptiveAvgPool2d\", \"output_size\": 1}, {\"type\": \"Flatten\"},"
        "{\"type\": \"Linear\", \"out_features\": 2}]}";
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_from_json(&m, json, 11));
    cnnl_param_info info;
    assert_ok(cnnl_model_state_find(m, "block.body.1.running_var", &info));
    for (size_t i = 0; i < info.numel; i++)
        info.data[i] = 0.5f + 0.25f * (float)i;
    assert_ok(cnnl_model_set_training(m, false));
    int64_t xs[4] = {2, 2, 7, 7};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, xs));
    uint64_t seed = 4;
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = gc_rand(&seed, -1.0f, 1.0f);
    gc_check(m, x, NULL);
    /* The skip connection is really added: an empty body doubles its input. */
    cnnl_model *d = NULL;
    assert_ok(cnnl_model_from_json(&d, "{\"input\": [1, 1, 2], \"layers\": [{\"type\": \"Residual\", \"layers\": []}, "
                                       "{\"type\": \"Residual\", \"layers\": [{\"type\": \"ReLU\"}]}]}", 0));
    int64_t ds[4] = {1, 1, 1, 2};
    cnnl_tensor *dx = NULL;
    assert_ok(cnnl_tensor_create(&dx, 4, ds));
    dx->data[0] = 1.5f;
    dx->data[1] = -2.0f;
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(d, dx, &y));
    assert_float_equal(y->data[0], 6.0f, 0.0f);  /* 1.5 * 2 = 3, then 3 + relu(3) */
    assert_float_equal(y->data[1], -4.0f, 0.0f); /* -2 * 2 = -4, then -4 + relu(-4) */
    cnnl_tensor_free(dx);
    cnnl_model_free(d);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

/* Finite-difference checks of the options the generic convolution and padded pools add:
 * dilation (with stride), groups with several channels per group, depthwise with a channel
 * multiplier, and max / average pooling with padding, each in a description. Max-pool inputs
 * are spread so that no step of the check changes a window's maximum. */
static void gc_description(const char *json, int64_t n, uint64_t seed, bool distinct)
{
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_from_json(&m, json, 13));
    assert_ok(cnnl_model_set_training(m, false));
    int64_t in[3];
    assert_ok(cnnl_model_input_shape(m, in));
    int64_t xs[4] = {n, in[0], in[1], in[2]};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, xs));
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = gc_rand(&seed, -1.0f, 1.0f);
    if (distinct) /* values 0.1 apart in a random order: |step| 0.01 never reorders two */
        for (size_t i = 0; i < x->numel; i++) {
            size_t j = (size_t)(gc_rand(&seed, 0.0f, 1.0f) * (float)(i + 1));
            float t = (float)i * 0.1f - (float)x->numel * 0.05f;
            x->data[i] = x->data[j < i ? j : i];
            x->data[j < i ? j : i] = t;
        }
    gc_check(m, x, NULL);
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

static void test_generic_gradients(void **state)
{
    (void)state;
    /* dilation 2 with padding; dilation 3 with stride 2, no bias */
    gc_description("{\"input\": [2, 7, 6], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3, "
                   "\"padding\": 2, \"dilation\": 2}]}", 2, 31, false);
    gc_description("{\"input\": [2, 9, 8], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 2, \"kernel_size\": 2, "
                   "\"stride\": 2, \"padding\": 1, \"dilation\": 3, \"bias\": false}]}", 1, 32, false);
    /* groups 2, two input and three output channels per group */
    gc_description("{\"input\": [4, 5, 5], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 6, \"kernel_size\": 3, "
                   "\"padding\": 1, \"groups\": 2}]}", 2, 33, false);
    /* depthwise, then depthwise with a channel multiplier of 2, stride 2 */
    gc_description("{\"input\": [3, 5, 6], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 3, \"kernel_size\": 3, "
                   "\"padding\": 1, \"groups\": 3}]}", 2, 34, false);
    gc_description("{\"input\": [2, 7, 7], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, "
                   "\"stride\": 2, \"padding\": 1, \"groups\": 2}]}", 2, 35, false);
    /* padded pools */
    gc_description("{\"input\": [2, 7, 6], \"layers\": [{\"type\": \"MaxPool2d\", \"kernel_size\": 3, \"stride\": 2, "
                   "\"padding\": 1}]}", 2, 36, true);
    gc_description("{\"input\": [1, 5, 5], \"layers\": [{\"type\": \"MaxPool2d\", \"kernel_size\": 2, \"stride\": 1, "
                   "\"padding\": 1}]}", 2, 37, true);
    gc_description("{\"input\": [2, 7, 6], \"layers\": [{\"type\": \"AvgPool2d\", \"kernel_size\": 3, \"stride\": 2, "
                   "\"padding\": 1}]}", 2, 38, false);
    /* a depthwise convolution followed by ReLU and a 2x2 max pool: not fused, both layers run */
    gc_description("{\"input\": [2, 6, 6], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 2, \"kernel_size\": 3, "
                   "\"padding\": 1, \"groups\": 2}, {\"type\": \"Tanh\"}, {\"type\": \"AvgPool2d\", \"kernel_size\": 2}]}",
                   2, 39, false);
}

/* Padding values: max pooling ignores the padding (an all-negative input keeps negative
 * maxima, as with -inf padding), average pooling divides by k*k including the padded zeros. */
static void test_pool_padding_values(void **state)
{
    (void)state;
    const float xv[4] = {-1, -2, -3, -4};
    int64_t shape[4] = {1, 1, 2, 2};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 4, shape, xv));
    const cnnl_tensor *y = NULL;
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_from_json(&m, "{\"input\": [1, 2, 2], \"layers\": [{\"type\": \"MaxPool2d\", "
                                       "\"kernel_size\": 3, \"stride\": 1, \"padding\": 1}]}", 0));
    assert_ok(cnnl_model_forward(m, x, &y));
    assert_int_equal(cnnl_tensor_numel(y), 4);
    for (int i = 0; i < 4; i++)
        assert_float_equal(y->data[i], -1.0f, 0.0f);
    cnnl_model_free(m);
    assert_ok(cnnl_model_from_json(&m, "{\"input\": [1, 2, 2], \"layers\": [{\"type\": \"AvgPool2d\", "
                                       "\"kernel_size\": 3, \"stride\": 1, \"padding\": 1}]}", 0));
    assert_ok(cnnl_model_forward(m, x, &y));
    for (int i = 0; i < 4; i++)
        assert_float_equal(y->data[i], -10.0f / 9.0f, 1e-6);
    cnnl_model_free(m);
    cnnl_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_files),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_residual_gradients),
        cmocka_unit_test(test_generic_gradients),
        cmocka_unit_test(test_pool_padding_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
