/* The AVX2 weight-gradient kernel of 3x3 convolutions (lib/ops/conv_avx2.c): against a
 * double-precision sum on shapes with 1, 2, 3, 4 and 5 blocks of 8 output channels, odd and
 * tiny widths, one row, several images and padded strides of the output gradient; it adds to
 * what the sums held; repeated calls give the same bits; the shapes and settings it declines.
 * Run at the AVX2 level (CNNLITE_ISA=avx2, so AVX-512 machines test it too); skipped on CPUs
 * without AVX2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "ops/kernels.h"

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(*s >> 40) / 16777216.0f * 2.0f - 1.0f;
}

static cnnl__conv_geom geom(int n, int c, int h, int w, int oc)
{
    cnnl__conv_geom g = {.n = n, .c = c, .h = h, .w = w, .oc = oc, .k = 3, .stride = 1, .pad = 1, .oh = h,
                         .ow = w, .dil = 1, .groups = 1};
    return g;
}

static int set_avx2(void **state)
{
    (void)state;
    return setenv("CNNLITE_ISA", "avx2", 1);
}

static bool available(void)
{
    cnnl__conv_geom g = geom(1, 1, 4, 4, 8);
    if (!cnnl__wgrad8_ok(&g)) {
        print_message("no AVX2 here: the kernel is not used, nothing to test\n");
        return false;
    }
    return true;
}

typedef struct shape {
    int n, c, h, w, oc;
    int64_t extra_n, extra_c; /* unused floats after each image / channel block of the gradient */
} shape;

/* Runs the kernel on random data of @p s (twice when @p twice, checking equal bits) and
 * checks every sum against a double-precision one, relative to the sum of |products|. */
static void check(const shape *s, bool twice)
{
    cnnl__conv_geom g = geom(s->n, s->c, s->h, s->w, s->oc);
    assert_true(cnnl__wgrad8_ok(&g));
    int64_t sx = 8, sy = 8 * (int64_t)s->w, sc = sy * s->h + s->extra_c, sn = sc * (s->oc / 8) + s->extra_n;
    size_t nx = (size_t)s->n * s->c * s->h * s->w, nd = (size_t)sn * s->n, taps = (size_t)s->c * 9;
    size_t nw = (size_t)s->oc * taps;
    float *x = malloc(nx * sizeof *x), *dy = malloc(nd * sizeof *dy), *gw = malloc(nw * sizeof *gw);
    float *gb = malloc((size_t)s->oc * sizeof *gb), *gw2 = malloc(nw * sizeof *gw2);
    float *gb2 = malloc((size_t)s->oc * sizeof *gb2);
    float *ws = malloc(cnnl__wgrad8_ws_floats(&g) * sizeof *ws);
    assert_true(x && dy && gw && gb && gw2 && gb2 && ws);
    uint64_t seed = (uint64_t)(s->c * 131 + s->oc * 7 + s->w);
    for (size_t i = 0; i < nx; i++)
        x[i] = urand(&seed);
    for (size_t i = 0; i < nd; i++)
        dy[i] = NAN; /* the padding must not be read */
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->oc; o++)
            for (int y = 0; y < s->h; y++)
                for (int xx = 0; xx < s->w; xx++)
                    dy[n * sn + (o / 8) * sc + y * sy + xx * sx + o % 8] = urand(&seed);
    /* The kernel adds: start from values that are not 0. */
    for (size_t i = 0; i < nw; i++)
        gw[i] = gw2[i] = 0.25f * urand(&seed);
    for (int o = 0; o < s->oc; o++)
        gb[o] = gb2[o] = 0.5f;
    float *w0 = malloc(nw * sizeof *w0);
    assert_non_null(w0);
    memcpy(w0, gw, nw * sizeof *w0);
    cnnl__wgrad8(&g, s->n, x, dy, sn, sc, sy, gw, gb, ws);
    double worst = 0.0;
    for (int o = 0; o < s->oc; o++) {
        double bsum = 0.0, babs = 0.0;
        for (int c = 0; c < s->c; c++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    double sum = 0.0, abs_sum = 0.0;
                    for (int n = 0; n < s->n; n++)
                        for (int y = 0; y < s->h; y++)
                            for (int xx = 0; xx < s->w; xx++) {
                                int iy = y + ky - 1, ix = xx + kx - 1;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                double p = (double)dy[n * sn + (o / 8) * sc + y * sy + xx * sx + o % 8] *
                                           x[(((size_t)n * s->c + c) * s->h + iy) * s->w + ix];
                                sum += p;
                                abs_sum += fabs(p);
                            }
                    size_t i = (size_t)o * taps + (size_t)c * 9 + (size_t)ky * 3 + (size_t)kx;
                    double err = fabs(gw[i] - (w0[i] + sum)) / (abs_sum + 1.0);
                    worst = err > worst ? err : worst;
                }
        for (int n = 0; n < s->n; n++)
            for (int y = 0; y < s->h; y++)
                for (int xx = 0; xx < s->w; xx++) {
                    double v = dy[n * sn + (o / 8) * sc + y * sy + xx * sx + o % 8];
                    bsum += v;
                    babs += fabs(v);
                }
        double err = fabs(gb[o] - (0.5 + bsum)) / (babs + 1.0);
        worst = err > worst ? err : worst;
    }
    print_message("n %d c %d %dx%d oc %d: largest error %.2e of the sum of |products|\n", s->n, s->c, s->h, s->w,
                  s->oc, worst);
    assert_true(worst < 1e-6);
    if (twice) {
        cnnl__wgrad8(&g, s->n, x, dy, sn, sc, sy, gw2, gb2, ws);
        assert_memory_equal(gw, gw2, nw * sizeof *gw);
        assert_memory_equal(gb, gb2, (size_t)s->oc * sizeof *gb);
    }
    free(x), free(dy), free(gw), free(gb), free(gw2), free(gb2), free(ws), free(w0);
}

static void test_matches_double(void **state)
{
    (void)state;
    if (!available())
        return;
    static const shape shapes[] = {
        {2, 3, 9, 10, 16, 0, 0},   /* the first layer's kind: 3 channels, 2 blocks */
        {1, 16, 5, 33, 32, 0, 0},  /* 4 blocks, odd width, rows of more than one band */
        {3, 5, 4, 4, 24, 0, 0},    /* 3 blocks: 2 + 1 */
        {1, 8, 7, 2, 40, 0, 0},    /* 5 blocks: 4 + 1, the narrowest rows */
        {2, 2, 1, 5, 8, 0, 0},     /* one row */
        {2, 4, 6, 130, 8, 24, 8},  /* bands of one row, padded gradient strides */
        {1, 32, 16, 16, 64, 0, 0}, /* the report's third layer, smaller */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check(&shapes[i], i == 1 || i == 5);
}

static void test_declines(void **state)
{
    (void)state;
    if (!available())
        return;
    cnnl__conv_geom g = geom(1, 4, 8, 8, 16);
    assert_true(cnnl__wgrad8_ok(&g));
    g.oc = 12; /* not whole blocks of 8 */
    assert_false(cnnl__wgrad8_ok(&g));
    g = geom(1, 4, 8, 8, 16);
    g.stride = 2, g.oh = g.ow = 4;
    assert_false(cnnl__wgrad8_ok(&g));
    g = geom(1, 4, 8, 8, 16);
    g.k = 5, g.pad = 2;
    assert_false(cnnl__wgrad8_ok(&g));
    g = geom(1, 4, 8, 8, 16);
    g.bf16 = true;
    assert_false(cnnl__wgrad8_ok(&g));
    g = geom(1, 4, 8, 8, 16);
    g.groups = 2;
    assert_false(cnnl__wgrad8_ok(&g));
    g = geom(1, 4, 8, 8, 16);
    assert_int_equal(setenv("CNNLITE_CONV_OWN", "0", 1), 0);
    assert_false(cnnl__wgrad8_ok(&g));
    assert_int_equal(unsetenv("CNNLITE_CONV_OWN"), 0);
    assert_int_equal(setenv("CNNLITE_ISA", "sse2", 1), 0);
    assert_false(cnnl__wgrad8_ok(&g));
    assert_int_equal(setenv("CNNLITE_ISA", "avx2", 1), 0);
    assert_true(cnnl__wgrad8_ok(&g));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_double),
        cmocka_unit_test(test_declines),
    };
    return cmocka_run_group_tests_name("nn-wgrad", tests, set_avx2, NULL);
}
