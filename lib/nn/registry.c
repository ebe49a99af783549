/*
 * The layer registry: every type an architecture description may name, its options with
 * PyTorch's defaults, its shape rule, its state tensors and its constructor. A new layer type
 * is its layer file plus one entry here (and a line in cnnl__arch_types).
 */
#include <math.h>
#include <stdio.h>

#include "core/internal.h"
#include "nn/arch_impl.h"
#include "nn/layer.h"

#define NONE NAN
#define BIG 65536.0

static bool need_image(const cnnl__ashape *in, char *why, size_t len)
{
    if (in->nd == 3)
        return true;
    snprintf(why, len, "needs a C x H x W input but gets %lld flat features (is a Flatten misplaced?)",
             (long long)in->d[0]);
    return false;
}

/* Output side of a window of @p k (dilation @p dil) with @p stride and @p pad over @p n. */
static int64_t out_side(int64_t n, int64_t k, int64_t stride, int64_t pad, int64_t dil)
{
    int64_t span = dil * (k - 1) + 1;
    return n + 2 * pad < span ? 0 : (n + 2 * pad - span) / stride + 1;
}

/* ---- Conv2d ---- */
enum { C_OUT, C_K, C_STRIDE, C_PAD, C_DIL, C_GROUPS, C_BIAS };
static const cnnl__arch_opt conv_opts[] = {
    {"out_channels", 'i', true, NONE, 1, BIG},
    {"kernel_size", 'i', true, NONE, 1, 64},
    {"stride", 'i', false, 1, 1, 64},
    {"padding", 'i', false, 0, 0, 64},
    {"dilation", 'i', false, 1, 1, 64},
    {"groups", 'i', false, 1, 1, BIG},
    {"bias", 'b', false, 1, 0, 1},
    {NULL, 0, false, 0, 0, 0}};

static bool conv_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    if (!need_image(in, why, len))
        return false;
    if (in->d[0] > BIG) {
        snprintf(why, len, "has %lld input channels; at most %d", (long long)in->d[0], (int)BIG);
        return false;
    }
    int64_t k = (int64_t)v[C_K], s = (int64_t)v[C_STRIDE], p = (int64_t)v[C_PAD], d = (int64_t)v[C_DIL];
    int64_t groups = (int64_t)v[C_GROUPS];
    if (in->d[0] % groups != 0 || (int64_t)v[C_OUT] % groups != 0) {
        snprintf(why, len, "option \"groups\" %lld must divide in_channels %lld and out_channels %lld",
                 (long long)groups, (long long)in->d[0], (long long)v[C_OUT]);
        return false;
    }
    int64_t oh = out_side(in->d[1], k, s, p, d), ow = out_side(in->d[2], k, s, p, d);
    if (oh < 1 || ow < 1) {
        snprintf(why, len, "option \"kernel_size\" %lld does not fit the %lldx%lld input with padding %lld "
                 "and dilation %lld", (long long)k, (long long)in->d[1], (long long)in->d[2], (long long)p,
                 (long long)d);
        return false;
    }
    *out = (cnnl__ashape){3, {(int64_t)v[C_OUT], oh, ow}};
    return true;
}

static int conv_states(const double *v, const cnnl__ashape *in, cnnl__arch_state_spec *out)
{
    int64_t oc = (int64_t)v[C_OUT], k = (int64_t)v[C_K];
    out[0] = (cnnl__arch_state_spec){"weight", 4, {oc, in->d[0] / (int64_t)v[C_GROUPS], k, k}};
    out[1] = (cnnl__arch_state_spec){"bias", 1, {oc, 0, 0, 0}};
    return v[C_BIAS] != 0.0 ? 2 : 1;
}

static cnnl_status conv_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    return cnnl__conv2d_create_ex(out, (int)in->d[0], (int)v[C_OUT], (int)v[C_K], (int)v[C_STRIDE], (int)v[C_PAD],
                                  (int)v[C_DIL], (int)v[C_GROUPS], v[C_BIAS] != 0.0);
}

static const cnnl__arch_type conv_type = {"Conv2d", conv_opts, conv_infer, conv_states, conv_create};

/* ---- BatchNorm2d ---- */
static const cnnl__arch_opt bn_opts[] = {
    {"eps", 'f', false, 1e-5, 1e-30, 1.0}, {"momentum", 'f', false, 0.1, 0.0, 1.0}, {NULL, 0, false, 0, 0, 0}};

static bool bn_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    (void)v;
    *out = *in;
    return need_image(in, why, len);
}

static int bn_states(const double *v, const cnnl__ashape *in, cnnl__arch_state_spec *out)
{
    (void)v;
    int64_t c = in->d[0];
    out[0] = (cnnl__arch_state_spec){"weight", 1, {c, 0, 0, 0}};
    out[1] = (cnnl__arch_state_spec){"bias", 1, {c, 0, 0, 0}};
    out[2] = (cnnl__arch_state_spec){"running_mean", 1, {c, 0, 0, 0}};
    out[3] = (cnnl__arch_state_spec){"running_var", 1, {c, 0, 0, 0}};
    out[4] = (cnnl__arch_state_spec){"num_batches_tracked", 0, {0, 0, 0, 0}};
    return 5;
}

static cnnl_status bn_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    cnnl_status st = cnnl_batchnorm2d_create(out, (int)in->d[0]);
    if (st == CNNL_OK && (st = cnnl__batchnorm2d_configure(*out, (float)v[0], (float)v[1])) != CNNL_OK) {
        cnnl_layer_free(*out);
        *out = NULL;
    }
    return st;
}

static const cnnl__arch_type bn_type = {"BatchNorm2d", bn_opts, bn_infer, bn_states, bn_create};

/* ---- MaxPool2d, AvgPool2d ----
 * Floor mode only (ceil_mode is not an option). padding as PyTorch: at most half the kernel;
 * MaxPool2d pads with -inf, AvgPool2d counts the padded zeros (count_include_pad=True, the only
 * value supported; divisor_override is not an option). */
enum { P_K, P_STRIDE, P_PAD, P_INCLUDE };
static const cnnl__arch_opt maxpool_opts[] = {
    {"kernel_size", 'i', true, NONE, 1, 1024},
    {"stride", 'i', false, NONE, 1, 1024},
    {"padding", 'i', false, 0, 0, 512},
    {NULL, 0, false, 0, 0, 0}};
static const cnnl__arch_opt avgpool_opts[] = {
    {"kernel_size", 'i', true, NONE, 1, 1024},
    {"stride", 'i', false, NONE, 1, 1024},
    {"padding", 'i', false, 0, 0, 512},
    {"count_include_pad", 'b', false, 1, 1, 1},
    {NULL, 0, false, 0, 0, 0}};

static bool pool_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    if (!need_image(in, why, len))
        return false;
    if (isnan(v[P_STRIDE]))
        v[P_STRIDE] = v[P_K]; /* PyTorch: stride defaults to kernel_size */
    int64_t k = (int64_t)v[P_K], s = (int64_t)v[P_STRIDE], p = (int64_t)v[P_PAD];
    if (p > k / 2) {
        snprintf(why, len, "option \"padding\" %lld is more than half of kernel_size %lld", (long long)p,
                 (long long)k);
        return false;
    }
    int64_t oh = out_side(in->d[1], k, s, p, 1), ow = out_side(in->d[2], k, s, p, 1);
    if (oh < 1 || ow < 1) {
        snprintf(why, len, "option \"kernel_size\" %lld is larger than the %lldx%lld input with padding %lld",
                 (long long)k, (long long)in->d[1], (long long)in->d[2], (long long)p);
        return false;
    }
    *out = (cnnl__ashape){3, {in->d[0], oh, ow}};
    return true;
}

static bool avgpool_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    if (v[P_INCLUDE] == 0.0) {
        snprintf(why, len, "option \"count_include_pad\" false is not supported (only true, PyTorch's default)");
        return false;
    }
    return pool_infer(v, in, out, why, len);
}

static cnnl_status maxpool_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    (void)in;
    return cnnl__pool2d_create_ex(out, (int)v[P_K], (int)v[P_STRIDE], (int)v[P_PAD], true);
}

static cnnl_status avgpool_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    (void)in;
    return cnnl__pool2d_create_ex(out, (int)v[P_K], (int)v[P_STRIDE], (int)v[P_PAD], false);
}

static const cnnl__arch_type maxpool_type = {"MaxPool2d", maxpool_opts, pool_infer, NULL, maxpool_create};
static const cnnl__arch_type avgpool_type = {"AvgPool2d", avgpool_opts, avgpool_infer, NULL, avgpool_create};

/* ---- AdaptiveAvgPool2d(1) ---- */
static const cnnl__arch_opt gap_opts[] = {{"output_size", 'i', true, NONE, 1, 1}, {NULL, 0, false, 0, 0, 0}};

static bool gap_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    (void)v;
    *out = (cnnl__ashape){3, {in->d[0], 1, 1}};
    return need_image(in, why, len);
}

static cnnl_status gap_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    (void)v;
    (void)in;
    return cnnl__adaptive_avgpool1_create(out);
}

static const cnnl__arch_type gap_type = {"AdaptiveAvgPool2d", gap_opts, gap_infer, NULL, gap_create};

/* ---- Flatten ---- */
static const cnnl__arch_opt no_opts[] = {{NULL, 0, false, 0, 0, 0}};

static bool flatten_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    (void)v;
    (void)why;
    (void)len;
    int64_t n = in->d[0];
    for (int i = 1; i < in->nd; i++)
        n *= in->d[i];
    *out = (cnnl__ashape){1, {n, 0, 0}};
    return true;
}

static cnnl_status flatten_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    (void)v;
    (void)in;
    return cnnl_flatten_create(out);
}

static const cnnl__arch_type flatten_type = {"Flatten", no_opts, flatten_infer, NULL, flatten_create};

/* ---- Dropout ---- */
static const cnnl__arch_opt dropout_opts[] = {{"p", 'f', false, 0.5, 0.0, 0.999999}, {NULL, 0, false, 0, 0, 0}};

static bool same_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    (void)v;
    (void)why;
    (void)len;
    *out = *in;
    return true;
}

static cnnl_status dropout_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    (void)in;
    return cnnl_dropout_create(out, (float)v[0]);
}

static const cnnl__arch_type dropout_type = {"Dropout", dropout_opts, same_infer, NULL, dropout_create};

/* ---- Linear ---- */
static const cnnl__arch_opt linear_opts[] = {
    {"out_features", 'i', true, NONE, 1, 1 << 20}, {"bias", 'b', false, 1, 0, 1}, {NULL, 0, false, 0, 0, 0}};

static bool linear_infer(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len)
{
    if (in->nd != 1) {
        snprintf(why, len, "needs flat features but gets a %lldx%lldx%lld input (add a Flatten before it)",
                 (long long)in->d[0], (long long)in->d[1], (long long)in->d[2]);
        return false;
    }
    if ((double)in->d[0] * v[0] > 2147483648.0) {
        snprintf(why, len, "%lld in_features x %lld out_features is more than 2^31 weights", (long long)in->d[0],
                 (long long)v[0]);
        return false;
    }
    *out = (cnnl__ashape){1, {(int64_t)v[0], 0, 0}};
    return true;
}

static int linear_states(const double *v, const cnnl__ashape *in, cnnl__arch_state_spec *out)
{
    out[0] = (cnnl__arch_state_spec){"weight", 2, {(int64_t)v[0], in->d[0], 0, 0}};
    out[1] = (cnnl__arch_state_spec){"bias", 1, {(int64_t)v[0], 0, 0, 0}};
    return v[1] != 0.0 ? 2 : 1;
}

static cnnl_status linear_create(const double *v, const cnnl__ashape *in, cnnl_layer **out)
{
    return cnnl_linear_create(out, (int)in->d[0], (int)v[0], v[1] != 0.0);
}

static const cnnl__arch_type linear_type = {"Linear", linear_opts, linear_infer, linear_states, linear_create};

/* ---- activations ---- */
static const cnnl__arch_opt leaky_opts[] = {{"negative_slope", 'f', false, 0.01, -1e6, 1e6}, {NULL, 0, false, 0, 0, 0}};
static const cnnl__arch_opt elu_opts[] = {{"alpha", 'f', false, 1.0, -1e6, 1e6}, {NULL, 0, false, 0, 0, 0}};
static const cnnl__arch_opt softmax_opts[] = {{"dim", 'i', false, 1, 1, 1}, {NULL, 0, false, 0, 0, 0}};

#define ACT_CREATE(fname, kind, param)                                                                  \
    static cnnl_status fname(const double *v, const cnnl__ashape *in, cnnl_layer **out)                 \
    {                                                                                                   \
        (void)v;                                                                                        \
        (void)in;                                                                                       \
        return cnnl_activation_create(out, kind, param);                                                \
    }
ACT_CREATE(relu_create, CNNL_ACT_RELU, 0.0f)
ACT_CREATE(leaky_create, CNNL_ACT_LEAKY_RELU, (float)v[0])
ACT_CREATE(elu_create, CNNL_ACT_ELU, (float)v[0])
ACT_CREATE(tanh_create, CNNL_ACT_TANH, 0.0f)
ACT_CREATE(sigmoid_create, CNNL_ACT_SIGMOID, 0.0f)
ACT_CREATE(softmax_create, CNNL_ACT_SOFTMAX, 0.0f)

static const cnnl__arch_type relu_type = {"ReLU", no_opts, same_infer, NULL, relu_create};
static const cnnl__arch_type leaky_type = {"LeakyReLU", leaky_opts, same_infer, NULL, leaky_create};
static const cnnl__arch_type elu_type = {"ELU", elu_opts, same_infer, NULL, elu_create};
static const cnnl__arch_type tanh_type = {"Tanh", no_opts, same_infer, NULL, tanh_create};
static const cnnl__arch_type sigmoid_type = {"Sigmoid", no_opts, same_infer, NULL, sigmoid_create};
static const cnnl__arch_type softmax_type = {"Softmax", softmax_opts, same_infer, NULL, softmax_create};

/* Sequential and Residual are containers, handled by the parser (lib/nn/arch.c). */
const cnnl__arch_type *const cnnl__arch_types[] = {
    &conv_type,  &bn_type,      &maxpool_type, &avgpool_type, &gap_type,     &flatten_type, &dropout_type,
    &linear_type, &relu_type,   &leaky_type,   &elu_type,     &tanh_type,    &sigmoid_type, &softmax_type,
};
const size_t cnnl__arch_type_count = sizeof cnnl__arch_types / sizeof cnnl__arch_types[0];
