/* Convolution engines: the oneDNN engine against the portable im2col + BLAS engine on the same
 * inputs (outputs, input and parameter gradients), including batches cut into several chunks,
 * and bit-identical results for repeated runs and for 1 or 2 threads on one engine; matrix products
 * on oneDNN's sgemm against BLAS. Skipped in builds
 * without oneDNN (the other suites cover the portable engine there). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "core/tensor_impl.h"
#include "ops/kernels.h"

#ifdef CNNL_HAVE_DNNL
typedef struct cfg {
    int c, oc, k, stride, pad, h, w;
    bool bias, relu, pool;
} cfg;

static const cfg configs[] = {
    {2, 3, 3, 1, 1, 8, 8, true, true, true},      /* the report's block, tiny */
    {3, 16, 3, 1, 1, 7, 9, true, true, true},     /* odd sizes: the pool drops a row and a column */
    {3, 20, 3, 1, 1, 6, 5, false, true, false},   /* channels not a multiple of the block */
    {17, 5, 5, 2, 2, 11, 10, true, false, false}, /* stride 2, no activation */
    {16, 32, 3, 1, 1, 12, 12, true, true, true},
    {64, 128, 3, 1, 1, 18, 20, true, true, true}, /* Winograd on AVX-512 CPUs, as the report's conv4 */
};

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static float urand(uint64_t *s)
{
    return (float)lcg(s) / (float)(1ULL << 31) * 2.0f - 1.0f;
}

static cnnl_model *make(const cfg *c)
{
    cnnl_model *m = NULL;
    cnnl_layer *l = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_conv2d_create(&l, c->c, c->oc, c->k, c->stride, c->pad, c->bias));
    assert_ok(cnnl_model_add(m, "conv", l));
    if (c->relu) {
        assert_ok(cnnl_activation_create(&l, CNNL_ACT_RELU, 0));
        assert_ok(cnnl_model_add(m, "relu", l));
    }
    if (c->pool) {
        assert_ok(cnnl_maxpool2d_create(&l, 2, 2));
        assert_ok(cnnl_model_add(m, "pool", l));
    }
    assert_ok(cnnl_model_init(m, 21));
    return m;
}

/* Everything one forward and backward pass produces, copied out of the model. */
typedef struct result {
    float *y, *gx, *gw, *gb;
    size_t ny, nx, nw, nb;
} result;

static float *copy(const float *p, size_t n)
{
    float *q = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(q);
    memcpy(q, p, sizeof(float) * n);
    return q;
}

static result run_prec(const cfg *c, int n, bool portable, bool bf16)
{
    if (portable)
        assert_int_equal(setenv("CNNLITE_CONV_ENGINE", "portable", 1), 0);
    else
        assert_int_equal(unsetenv("CNNLITE_CONV_ENGINE"), 0);
    cnnl_model *m = make(c);
    if (bf16)
        assert_ok(cnnl_model_set_precision(m, CNNL_PRECISION_BF16));
    int64_t shape[4] = {n, c->c, c->h, c->w};
    cnnl_tensor *x = NULL, *r = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, shape));
    uint64_t seed = 5;
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = urand(&seed);
    const cnnl_tensor *y = NULL, *gx = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    assert_ok(cnnl_tensor_create(&r, y->ndim, y->shape));
    for (size_t i = 0; i < r->numel; i++)
        r->data[i] = urand(&seed);
    assert_ok(cnnl_model_zero_grad(m));
    assert_ok(cnnl_model_backward(m, r));
    assert_ok(cnnl_model_input_grad(m, &gx));
    cnnl_param_info w, b = {0};
    assert_ok(cnnl_model_state_find(m, "conv.weight", &w));
    if (c->bias)
        assert_ok(cnnl_model_state_find(m, "conv.bias", &b));
    result res = {copy(y->data, y->numel), copy(gx->data, gx->numel), copy(w.grad, w.numel),
                  c->bias ? copy(b.grad, b.numel) : NULL, y->numel, gx->numel, w.numel, c->bias ? b.numel : 0};
    cnnl_tensor_free(x);
    cnnl_tensor_free(r);
    cnnl_model_free(m);
    assert_int_equal(unsetenv("CNNLITE_CONV_ENGINE"), 0);
    return res;
}

static result run(const cfg *c, int n, bool portable)
{
    return run_prec(c, n, portable, false);
}

static void result_free(result *r)
{
    free(r->y);
    free(r->gx);
    free(r->gw);
    free(r->gb);
}

/* max |a-b| / max(|b|) <= tol, and b not all zero (the comparison means something). */
static void close_to(const float *a, const float *b, size_t n, double tol, const char *what)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        diff = d > diff ? d : diff;
        scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    }
    if (!(scale > 0) || diff > tol * scale)
        fail_msg("%s: max difference %g for values up to %g", what, diff, scale);
}

static void norm_close(const float *a, const float *b, size_t n, double tol, const char *what)
{
    double d2 = 0, b2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        d2 += d * d;
        b2 += (double)b[i] * b[i];
    }
    print_message("%s: relative L2 distance %.3g\n", what, sqrt(d2 / b2));
    if (!(b2 > 0) || d2 > tol * tol * b2)
        fail_msg("%s: relative L2 distance %g", what, sqrt(d2 / b2));
}

static void test_engines_agree(void **state)
{
    (void)state;
    size_t saved = cnnl__dnnl_chunk_bytes;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        const cfg *c = &configs[i];
        int oh = (c->h + 2 * c->pad - c->k) / c->stride + 1, ow = (c->w + 2 * c->pad - c->k) / c->stride + 1;
        /* One chunk for the batch, then chunks of at most two images (5 = 1 + 1 + 1 + 1 + 1). */
        size_t chunks[2] = {saved, (size_t)2 * c->oc * oh * ow * sizeof(float)};
        for (int ch = 0; ch < 2; ch++) {
            cnnl__dnnl_chunk_bytes = chunks[ch];
            result a = run(c, 5, false), b = run(c, 5, true);
            assert_int_equal(a.ny, b.ny);
            close_to(a.y, b.y, a.ny, 1e-5, "output");
            close_to(a.gx, b.gx, a.nx, 1e-5, "input gradient");
            close_to(a.gw, b.gw, a.nw, 1e-5, "weight gradient");
            if (c->bias)
                close_to(a.gb, b.gb, a.nb, 1e-5, "bias gradient");
            result_free(&a);
            result_free(&b);
        }
    }
    cnnl__dnnl_chunk_bytes = saved;
}

static void test_engine_reproducible(void **state)
{
    (void)state;
    const cfg *c = &configs[4];
    result a = run(c, 6, false), b = run(c, 6, false);
    assert_memory_equal(a.y, b.y, a.ny * sizeof(float));
    assert_memory_equal(a.gx, b.gx, a.nx * sizeof(float));
    assert_memory_equal(a.gw, b.gw, a.nw * sizeof(float));
    assert_memory_equal(a.gb, b.gb, a.nb * sizeof(float));
    /* Gradients are summed per fixed slice of the batch: one thread gives the same bits. */
    int threads = cnnl_get_num_threads();
    assert_ok(cnnl_set_num_threads(1));
    result c1 = run(c, 6, false);
    assert_ok(cnnl_set_num_threads(threads));
    assert_memory_equal(a.y, c1.y, a.ny * sizeof(float));
    assert_memory_equal(a.gw, c1.gw, a.nw * sizeof(float));
    assert_memory_equal(a.gx, c1.gx, a.nx * sizeof(float));
    result_free(&c1);
    result_free(&a);
    result_free(&b);
}

/* The epilogue's vector kernels (AVX-512, AVX2) against the SSE2/plain loops: the same
 * comparisons on the same values, so the output, the pool positions and every gradient are
 * bit-identical whatever CNNLITE_ISA says. Widths that leave a tail after whole tiles, two
 * channel blocks, and fewer channels than a block. The Winograd forward pass, which runs at
 * the AVX2 level only (tests/nn/test_winograd.c), is kept out. */
static void test_engine_isa_levels(void **state)
{
    (void)state;
    /* oneDNN's kernels at every level: our AVX2 Winograd forward and weight-gradient kernels
     * round differently (their own tests: tests/nn/test_winograd.c, test_wgrad.c). */
    assert_int_equal(setenv("CNNLITE_CONV_ALGO", "direct", 1), 0);
    assert_int_equal(setenv("CNNLITE_CONV_OWN", "0", 1), 0);
    static const cfg isa_cfgs[] = {
        {3, 16, 3, 1, 1, 40, 70, true, true, true},  /* 35 pooled columns: 2x16 + 3, 4x8 + 3 */
        {16, 32, 3, 1, 1, 34, 66, true, true, true}, /* two blocks of 16, odd row dropped */
        {4, 8, 3, 1, 1, 18, 36, false, true, true},  /* one block of 8 */
        {5, 12, 3, 1, 1, 20, 64, true, true, true},  /* 12 channels in a block of 16 */
    };
    for (size_t i = 0; i < sizeof isa_cfgs / sizeof isa_cfgs[0]; i++) {
        const cfg *c = &isa_cfgs[i];
        assert_int_equal(setenv("CNNLITE_ISA", "sse2", 1), 0);
        assert_int_equal(cnnl__simd_level(), CNNL__SIMD_SSE2);
        result ref = run(c, 3, false);
        const char *levels[] = {"avx2", NULL};
        for (int k = 0; k < 2; k++) {
            if (levels[k])
                assert_int_equal(setenv("CNNLITE_ISA", levels[k], 1), 0);
            else
                assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
            result r = run(c, 3, false);
            assert_int_equal(r.ny, ref.ny);
            assert_memory_equal(r.y, ref.y, r.ny * sizeof(float));
            assert_memory_equal(r.gx, ref.gx, r.nx * sizeof(float));
            assert_memory_equal(r.gw, ref.gw, r.nw * sizeof(float));
            if (c->bias)
                assert_memory_equal(r.gb, ref.gb, r.nb * sizeof(float));
            result_free(&r);
        }
        result_free(&ref);
    }
    assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
    assert_int_equal(unsetenv("CNNLITE_CONV_ALGO"), 0);
    assert_int_equal(unsetenv("CNNLITE_CONV_OWN"), 0);
    print_message("vector level of this CPU: %d (0 SSE2, 1 AVX2, 2 AVX-512)\n", cnnl__simd_level());
}

/* bfloat16 convolutions against float32 on the portable engine, at bfloat16's precision (8
 * significant bits: about 4e-3 relative per value, sums of up to a few hundred products); or
 * a clear CNNL_EUNSUPPORTED where the CPU cannot run them. */
static void test_engine_bf16(void **state)
{
    (void)state;
    assert_int_equal(unsetenv("CNNLITE_CONV_ENGINE"), 0);
    cnnl_model *m = make(&configs[0]);
    cnnl_status st = cnnl_model_set_precision(m, CNNL_PRECISION_BF16);
    cnnl_model_free(m);
    if (st != CNNL_OK) {
        assert_int_equal(st, CNNL_EUNSUPPORTED);
        assert_non_null(strstr(cnnl_last_error(), "AVX512_BF16"));
        return;
    }
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        const cfg *c = &configs[i];
        result a = run_prec(c, 3, false, true), b = run(c, 3, true);
        close_to(a.y, b.y, a.ny, 3e-2, "bf16 output");
        /* Rounding may flip a ReLU near 0 or move a pool window's maximum, which routes a
         * gradient elsewhere: gradients are compared value by value where no activation
         * follows, and as a whole (relative L2 distance) where one does, which still fails
         * if gradients were routed to the wrong places. */
        if (!c->relu) {
            close_to(a.gx, b.gx, a.nx, 3e-2, "bf16 input gradient");
            close_to(a.gw, b.gw, a.nw, 3e-2, "bf16 weight gradient");
        } else {
            norm_close(a.gx, b.gx, a.nx, 0.15, "bf16 input gradient");
            norm_close(a.gw, b.gw, a.nw, 0.15, "bf16 weight gradient");
        }
        /* Not float32 in disguise: the bfloat16 outputs differ from float32's. */
        assert_memory_not_equal(a.y, b.y, a.ny * sizeof(float));
        result_free(&a);
        result_free(&b);
    }
    /* The conversions into bfloat16 at the engine's edges give the same bits at every vector
     * level (AVX512_BF16 instructions or plain C). */
    const cfg *c = &configs[4];
    result ref = run_prec(c, 3, false, true);
    assert_int_equal(setenv("CNNLITE_ISA", "avx2", 1), 0);
    result low = run_prec(c, 3, false, true);
    assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
    assert_memory_equal(low.y, ref.y, ref.ny * sizeof(float));
    assert_memory_equal(low.gx, ref.gx, ref.nx * sizeof(float));
    assert_memory_equal(low.gw, ref.gw, ref.nw * sizeof(float));
    result_free(&ref);
    result_free(&low);
    /* The portable engine has no bfloat16: an error, never a silent float32 run. */
    assert_int_equal(setenv("CNNLITE_CONV_ENGINE", "portable", 1), 0);
    m = make(&configs[0]);
    assert_status_msg(cnnl_model_set_precision(m, CNNL_PRECISION_BF16), CNNL_EUNSUPPORTED, "portable");
    assert_status_msg(cnnl_model_set_precision(m, (cnnl_precision)7), CNNL_EINVAL, "unknown precision");
    cnnl_model_free(m);
    assert_int_equal(unsetenv("CNNLITE_CONV_ENGINE"), 0);
}

static uint16_t bits16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

/* float32 to bfloat16: round to nearest even, denormals to signed zero, NaN kept a NaN; the
 * vector path (where the CPU has AVX512_BF16) and plain C agree bit for bit, tails included;
 * the blocked conversion puts every value at its nChw16c place. */
static void test_bf16_conversions(void **state)
{
    (void)state;
    const size_t n = 2400;
    float *x = malloc(n * sizeof *x);
    uint16_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t seed = 3;
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)lcg(&seed) / 2147483648.0f - 1.0f) * 1e3f;
    const float special[] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -(1.0f + 5.0f / 256), 1e-40f, -1e-40f,
                             INFINITY, -INFINITY, NAN, 3.0e38f, 0.0f};
    const uint16_t want[] = {0x3f80, 0x3f82, 0xbf82, 0x0000, 0x8000, 0x7f80, 0xff80, 0, 0x7f62, 0x0000};
    memcpy(x + 40, special, sizeof special);
    for (int level = 0; level < 2; level++) {
        if (level)
            assert_int_equal(setenv("CNNLITE_ISA", "avx2", 1), 0);
        cnnl__bf16_convert(cnnl__simd_level(), x, level ? b : a, n - 3); /* a tail that is not a multiple of 32 */
        assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
    }
    assert_memory_equal(a, b, (n - 3) * sizeof *a);
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        if (isnan(special[i]))
            assert_true((a[40 + i] & 0x7f80) == 0x7f80 && (a[40 + i] & 0x7f));
        else
            assert_int_equal(a[40 + i], want[i]);
    }
    /* Rounded to the nearest: within half a unit of bfloat16's 8 significant bits, and one of
     * the two neighbours of the truncated value. */
    for (size_t i = 0; i < 40; i++) {
        uint32_t u = (uint32_t)a[i] << 16;
        float r;
        memcpy(&r, &u, sizeof r);
        assert_true(fabsf(r - x[i]) <= fabsf(x[i]) * (1.0f / 256));
        assert_true(a[i] == bits16(x[i]) || a[i] == bits16(x[i]) + 1);
    }
    /* Blocked: 2 images x 32 channels x 37 pixels (a tail of 5 after two 16-pixel tiles). */
    const int imgs = 2, ch = 32;
    const size_t hw = 37;
    for (int level = 0; level < 2; level++) {
        if (level)
            assert_int_equal(setenv("CNNLITE_ISA", "avx2", 1), 0);
        cnnl__bf16_to_blocked16(cnnl__simd_level(), x, imgs, ch, hw, level ? b : a);
        assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
    }
    assert_memory_equal(a, b, (size_t)imgs * ch * hw * sizeof *a);
    /* float32: to nChw16c and back, at both levels, every value at its place */
    size_t total = (size_t)imgs * ch * hw;
    float *blk = malloc(total * sizeof *blk), *back = malloc(total * sizeof *back);
    assert_non_null(blk);
    assert_non_null(back);
    for (int level = 0; level < 2; level++) {
        if (level)
            assert_int_equal(setenv("CNNLITE_ISA", "avx2", 1), 0);
        memset(back, 0, total * sizeof *back);
        cnnl__to_blocked16(cnnl__simd_level(), x, imgs, ch, hw, blk);
        cnnl__from_blocked16(cnnl__simd_level(), blk, imgs, ch, hw, back);
        assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
        assert_memory_equal(back, x, total * sizeof *back);
        for (int i = 0; i < imgs; i++)
            for (int c = 0; c < ch; c++)
                for (size_t p = 0; p < hw; p += 7)
                    assert_true(blk[(((size_t)i * ch / 16 + c / 16) * hw + p) * 16 + c % 16] ==
                                x[((size_t)i * ch + c) * hw + p]);
    }
    free(blk);
    free(back);
    uint16_t one;
    for (int i = 0; i < imgs; i++)
        for (int c = 0; c < ch; c++)
            for (size_t p = 0; p < hw; p++) {
                cnnl__bf16_convert(cnnl__simd_level(), &x[((size_t)i * ch + c) * hw + p], &one, 1);
                assert_int_equal(a[(((size_t)i * ch / 16 + c / 16) * hw + p) * 16 + c % 16], one);
            }
    free(x);
    free(a);
    free(b);
}

/* A NaN in the raw output is reported although the fused ReLU would hide it. */
static void test_engine_nonfinite(void **state)
{
    (void)state;
    assert_int_equal(unsetenv("CNNLITE_CONV_ENGINE"), 0);
    cnnl_model *m = make(&configs[1]);
    cnnl_param_info w;
    assert_ok(cnnl_model_state_find(m, "conv.weight", &w));
    w.data[5] = NAN;
    int64_t shape[4] = {2, 3, 7, 9};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, shape));
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = 0.5f;
    const cnnl_tensor *y = NULL;
    assert_status_msg(cnnl_model_forward(m, x, &y), CNNL_ENUMERIC, "layer conv (Conv2d)");
    cnnl_tensor_free(x);
    cnnl_model_free(m);
}

/* Matrix products (Linear, cnnl_tensor_matmul): oneDNN's sgemm against BLAS for the four
 * transpose cases, at sizes that take oneDNN's path, and bit-identical on a repeat. */
static cnnl_tensor *matmul_on(bool portable, const cnnl_tensor *a, bool ta, const cnnl_tensor *b, bool tb)
{
    if (portable)
        assert_int_equal(setenv("CNNLITE_CONV_ENGINE", "portable", 1), 0);
    cnnl_tensor *c = NULL;
    assert_ok(cnnl_tensor_matmul(&c, a, ta, b, tb));
    assert_int_equal(unsetenv("CNNLITE_CONV_ENGINE"), 0);
    return c;
}

static void test_engine_matmul(void **state)
{
    (void)state;
    const int m = 33, n = 130, k = 1000; /* 4.3 M multiply-adds: above oneDNN's threshold */
    uint64_t seed = 9;
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        int64_t sa[2] = {ta ? k : m, ta ? m : k}, sb[2] = {tb ? n : k, tb ? k : n};
        cnnl_tensor *a = NULL, *b = NULL;
        assert_ok(cnnl_tensor_create(&a, 2, sa));
        assert_ok(cnnl_tensor_create(&b, 2, sb));
        for (size_t i = 0; i < a->numel; i++)
            a->data[i] = urand(&seed);
        for (size_t i = 0; i < b->numel; i++)
            b->data[i] = urand(&seed);
        cnnl_tensor *fast = matmul_on(false, a, ta, b, tb), *again = matmul_on(false, a, ta, b, tb);
        cnnl_tensor *ref = matmul_on(true, a, ta, b, tb);
        assert_int_equal(fast->numel, (size_t)m * n);
        close_to(fast->data, ref->data, fast->numel, 1e-5, "matmul, oneDNN vs BLAS");
        assert_memory_equal(fast->data, again->data, sizeof(float) * fast->numel);
        /* one element by hand, in double */
        double want = 0;
        for (int q = 0; q < k; q++)
            want += (double)a->data[ta ? (size_t)q * m + 5 : (size_t)5 * k + q] *
                    b->data[tb ? (size_t)7 * k + q : (size_t)q * n + 7];
        assert_true(fabs(fast->data[(size_t)5 * n + 7] - want) <= 1e-4 * (1 + fabs(want)));
        cnnl_tensor_free(a);
        cnnl_tensor_free(b);
        cnnl_tensor_free(fast);
        cnnl_tensor_free(again);
        cnnl_tensor_free(ref);
    }
}

#endif

int main(void)
{
#ifndef CNNL_HAVE_DNNL
    printf("skip: built without oneDNN (-Ddnnl=disabled)\n");
    return 77;
#else
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engines_agree),
        cmocka_unit_test(test_engine_reproducible),
        cmocka_unit_test(test_engine_nonfinite),
        cmocka_unit_test(test_engine_isa_levels),
        cmocka_unit_test(test_engine_bf16),
        cmocka_unit_test(test_bf16_conversions),
        cmocka_unit_test(test_engine_matmul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
