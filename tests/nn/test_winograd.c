/* The Winograd F(4x4, 3x3) forward kernel (lib/ops/conv_winograd.c): against the im2col
 * convolution on shapes with whole and partial vectors of tiles, output channels not a multiple
 * of four, with and without bias, ReLU and pool; bit-identical for 1 and 2 threads; non-finite
 * outputs reported; the shapes and settings it declines. Forced on with
 * CNNLITE_CONV_ALGO=winograd-avx2 so that AVX-512 machines and small channel counts test it too; skipped on CPUs without AVX2. */
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

static float *rand_floats(size_t n, float scale, uint64_t seed)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * urand(&seed);
    return p;
}

static cnnl__conv_geom geom(int n, int c, int h, int w, int oc, bool relu, bool pool)
{
    cnnl__conv_geom g = {.n = n, .c = c, .h = h, .w = w, .oc = oc, .k = 3, .stride = 1, .pad = 1, .oh = h,
                         .ow = w, .relu = relu, .pool = pool, .dil = 1, .groups = 1};
    return g;
}

static size_t out_floats(const cnnl__conv_geom *g)
{
    return (size_t)g->n * g->oc * (g->pool ? (size_t)(g->oh / 2) * (g->ow / 2) : (size_t)g->oh * g->ow);
}

/* Winograd and im2col outputs of @p g; returns the largest difference over the largest |output|. */
static double compare(const cnnl__conv_geom *g, bool bias, uint64_t seed, int threads, float **keep)
{
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->oc * g->c * 9, ny = out_floats(g);
    float *x = rand_floats(nx, 1.0f, seed), *w = rand_floats(nw, 1.0f / sqrtf(9.0f * g->c), seed + 1);
    float *b = bias ? rand_floats((size_t)g->oc, 0.5f, seed + 2) : NULL;
    float *ya = malloc(ny * sizeof(float)), *yb = malloc(ny * sizeof(float));
    float *wsa = malloc(cnnl__winograd_ws_floats(g, threads) * sizeof(float));
    float *wsb = malloc(cnnl__conv_ws_floats(g) * threads * sizeof(float));
    uint8_t *arg = malloc(ny), *arga = malloc(ny);
    assert_true(ya && yb && wsa && wsb && arg && arga);
    assert_true(cnnl__winograd_forward(g, x, w, b, ya, g->pool ? arga : NULL, wsa, threads));
    assert_true(cnnl__conv2d_forward(g, x, w, b, yb, g->pool ? arg : NULL, wsb, threads));
    double diff = 0, mag = 0;
    for (size_t i = 0; i < ny; i++) {
        diff = fmax(diff, fabs((double)ya[i] - yb[i]));
        mag = fmax(mag, fabs((double)yb[i]));
    }
    assert_true(mag > 0.1);
    /* The maxima's positions agree wherever the window's two largest values are further
     * apart than the rounding difference (random inputs: ties within 1e-4 are rare). */
    if (g->pool) {
        size_t differ = 0;
        for (size_t i = 0; i < ny; i++)
            differ += arg[i] != arga[i] && yb[i] > 1e-3 * mag;
        assert_true(differ <= ny / 1000);
        for (size_t i = 0; i < ny; i++)
            assert_true(arga[i] < 4);
    }
    free(x), free(w), free(b), free(yb), free(wsa), free(wsb), free(arg), free(arga);
    if (keep)
        *keep = ya;
    else
        free(ya);
    return diff / mag;
}

static int force_on(void **state)
{
    (void)state;
    return setenv("CNNLITE_CONV_ALGO", "winograd-avx2", 1);
}

static bool available(void)
{
    cnnl__conv_geom g = geom(1, 1, 4, 4, 1, false, false);
    if (!cnnl__winograd_ok(&g)) {
        print_message("no AVX2 here: the Winograd kernel is not used, nothing to test\n");
        return false;
    }
    return true;
}

static void test_matches_im2col(void **state)
{
    (void)state;
    if (!available())
        return;
    /* n, c, h, w, oc: a vector of 8 tiles and less (w 8, 20, 44), rows of tiles that leave a
     * partial unit (h 36), output channels not a multiple of 4 (5, 9), 3 and 64 input channels. */
    static const int shapes[][5] = {{2, 3, 8, 8, 16},  {1, 16, 12, 20, 5}, {2, 5, 36, 44, 9},
                                    {1, 64, 32, 32, 128}, {1, 3, 16, 256, 8}, {3, 32, 4, 4, 7}};
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int mode = 0; mode < 3; mode++) {
            const int *d = shapes[s];
            cnnl__conv_geom g = geom(d[0], d[1], d[2], d[3], d[4], mode > 0, mode == 2);
            assert_true(cnnl__winograd_ok(&g));
            double r = compare(&g, (s + mode) % 2 == 0, 100 + s * 3 + mode, 2, NULL);
            if (r > worst)
                worst = r;
            /* float32 rounding of a 3x3 x c sum is ~1e-7 of the output; Winograd's transforms
             * multiply it by tens. A wrong tap or sign is O(1). */
            if (r > 2e-5)
                fail_msg("shape %zu mode %d: relative difference %.3g", s, mode, r);
        }
    print_message("largest difference from im2col, relative to the largest output: %.3g\n", worst);
}

static void test_thread_count(void **state)
{
    (void)state;
    if (!available())
        return;
    cnnl__conv_geom g = geom(3, 16, 20, 24, 12, true, true);
    float *a = NULL, *b = NULL;
    compare(&g, true, 7, 1, &a);
    compare(&g, true, 7, 2, &b);
    assert_memory_equal(a, b, out_floats(&g) * sizeof(float));
    free(a), free(b);
}

static void test_not_finite(void **state)
{
    (void)state;
    if (!available())
        return;
    for (int kind = 0; kind < 3; kind++) {
        cnnl__conv_geom g = geom(1, 4, 8, 12, 6, kind != 1, kind != 1);
        size_t nx = (size_t)g.c * g.h * g.w, nw = (size_t)g.oc * g.c * 9;
        float *x = rand_floats(nx, 1.0f, 3), *w = rand_floats(nw, 0.2f, 4);
        if (kind == 0)
            x[nx - 1] = NAN; /* the last pixel: a partial vector's last real tile */
        else if (kind == 1)
            w[5] = INFINITY;
        else
            x[2 * g.w + 5] = -INFINITY; /* ReLU and pool would hide it */
        float *y = malloc(out_floats(&g) * sizeof(float)), *ws = malloc(cnnl__winograd_ws_floats(&g, 2) * 4);
        assert_false(cnnl__winograd_forward(&g, x, w, NULL, y, NULL, ws, 2));
        free(x), free(w), free(y), free(ws);
    }
}

static void test_declines(void **state)
{
    (void)state;
    if (!available())
        return;
    cnnl__conv_geom g = geom(1, 4, 8, 8, 4, true, true);
    cnnl__conv_geom s2 = g, odd = g, k5 = g, bf = g, dil = g, poolonly = g;
    s2.stride = 2, s2.oh = s2.ow = 4;
    odd.w = odd.ow = 10;
    k5.k = 5, k5.pad = 2;
    bf.bf16 = true;
    dil.dil = 2, dil.pad = 2;
    poolonly.relu = false;
    assert_false(cnnl__winograd_ok(&s2));
    assert_false(cnnl__winograd_ok(&odd));
    assert_false(cnnl__winograd_ok(&k5));
    assert_false(cnnl__winograd_ok(&bf));
    assert_false(cnnl__winograd_ok(&dil));
    assert_false(cnnl__winograd_ok(&poolonly));
    assert_true(cnnl__winograd_ok(&g));
    assert_int_equal(setenv("CNNLITE_CONV_ALGO", "direct", 1), 0);
    assert_false(cnnl__winograd_ok(&g));
    assert_int_equal(setenv("CNNLITE_CONV_ALGO", "winograd-avx2", 1), 0);
    assert_int_equal(setenv("CNNLITE_CONV_OWN", "0", 1), 0); /* none of our own kernels */
    assert_false(cnnl__winograd_ok(&g));
    assert_int_equal(unsetenv("CNNLITE_CONV_OWN"), 0);
    assert_true(cnnl__winograd_ok(&g));
    assert_int_equal(setenv("CNNLITE_ISA", "sse2", 1), 0);
    assert_false(cnnl__winograd_ok(&g));
    assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
    /* By default it runs only where AVX2 is the widest level, from 8 input channels. */
    assert_int_equal(unsetenv("CNNLITE_CONV_ALGO"), 0);
    assert_false(cnnl__winograd_ok(&g));
    g.c = 8;
    assert_int_equal(cnnl__winograd_ok(&g), cnnl__simd_level() == CNNL__SIMD_AVX2);
    assert_int_equal(setenv("CNNLITE_CONV_ALGO", "winograd-avx2", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_im2col),
        cmocka_unit_test(test_thread_count),
        cmocka_unit_test(test_not_finite),
        cmocka_unit_test(test_declines),
    };
    return cmocka_run_group_tests_name("nn-winograd", tests, force_on, NULL);
}
