/*
 * Data augmentation: each transform's effect checked on images with known values, the draws'
 * ranges, option checks, and reproducibility through the loader (independent of the thread
 * count, the batch size and the path to an epoch).
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/data_impl.h"

enum { S = 32 };

static float img[3 * S * S], ref[3 * S * S];
static float work[4 * 64 * 64];

static cnnl__augment_params identity(void)
{
    cnnl__augment_params p;
    memset(&p, 0, sizeof p);
    p.scale = 1.0f;
    p.roundtrip = S;
    p.gamma = 1.0f;
    p.contrast = 1.0f;
    return p;
}

static void fill(float (*f)(int x, int y))
{
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            img[y * S + x] = f(x, y);
    memcpy(ref, img, sizeof img);
}

static float ramp_xy(int x, int y)
{
    return 0.2f + 0.5f * (float)x / S + 0.25f * (float)y / S;
}

static float pattern(int x, int y)
{
    return (float)((x * 7 + y * 13) % 17) / 16.0f;
}

static float half(int x, int y)
{
    (void)x;
    (void)y;
    return 0.5f;
}

static float checker(int x, int y)
{
    return (x + y) % 2 ? 0.9f : 0.1f;
}

static void apply(const cnnl__augment_params *p)
{
    cnnl_rng rng;
    cnnl__rng_seed(&rng, 1, 99);
    cnnl__augment_apply(img, 1, S, p, &rng, work);
}

static void test_flip(void **state)
{
    (void)state;
    fill(pattern);
    cnnl__augment_params p = identity();
    p.flip = true;
    apply(&p);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            assert_float_equal(img[y * S + x], ref[y * S + (S - 1 - x)], 0.0);
}

static void test_rotation_quarter_turn(void **state)
{
    (void)state;
    fill(pattern);
    cnnl__augment_params p = identity();
    p.angle = 90.0f;
    apply(&p);
    /* 90 degrees about the centre maps the pixel grid onto itself: out(x, y) = in(y, S-1-x) */
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            assert_float_equal(img[y * S + x], ref[(S - 1 - x) * S + y], 1e-4);
    /* a small angle moves values but keeps the centre pixel's neighbourhood close */
    fill(ramp_xy);
    p.angle = 10.0f;
    apply(&p);
    double c = 0.5 * (S - 1), th = 10.0 * M_PI / 180.0;
    int x = 20, y = 12;
    double ix = c + cos(th) * (x - c) + sin(th) * (y - c), iy = c - sin(th) * (x - c) + cos(th) * (y - c);
    assert_float_equal(img[y * S + x], 0.2 + 0.5 * ix / S + 0.25 * iy / S, 1e-5);
}

static void test_scale_and_shift(void **state)
{
    (void)state;
    fill(ramp_xy);
    cnnl__augment_params p = identity();
    p.scale = 2.0f;
    apply(&p);
    /* zoom 2 about the centre: out(x, y) = in(c + (x - c) / 2, c + (y - c) / 2); the ramp is linear */
    double c = 0.5 * (S - 1);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            assert_float_equal(img[y * S + x], 0.2 + 0.5 * (c + (x - c) / 2) / S + 0.25 * (c + (y - c) / 2) / S,
                               1e-5);
    fill(pattern);
    p = identity();
    p.tx = 3.0f;
    p.ty = -2.0f;
    apply(&p);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sx = x - 3, sy = y + 2;
            float want = sx >= 0 && sx < S && sy >= 0 && sy < S ? ref[sy * S + sx] : 0.0f; /* black outside */
            assert_float_equal(img[y * S + x], want, 1e-6);
        }
    /* zooming out leaves a black border */
    fill(half);
    p = identity();
    p.scale = 0.5f;
    apply(&p);
    assert_float_equal(img[0], 0.0f, 0.0);
    assert_float_equal(img[(S / 2) * S + S / 2], 0.5f, 1e-6);
}

static double variance(const float *v, size_t n, double *mean)
{
    double s = 0, q = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    double m = s / (double)n;
    for (size_t i = 0; i < n; i++)
        q += (v[i] - m) * (v[i] - m);
    if (mean)
        *mean = m;
    return q / (double)n;
}

static void test_roundtrip(void **state)
{
    (void)state;
    cnnl__augment_params p = identity();
    p.roundtrip = S / 2;
    fill(half); /* a constant survives exactly */
    apply(&p);
    for (int i = 0; i < S * S; i++)
        assert_float_equal(img[i], 0.5f, 1e-5);
    fill(checker); /* finest detail is lost: 0.1 / 0.9 alternation averages to 0.5 */
    apply(&p);
    double m, v = variance(img, S * S, &m);
    assert_float_equal(m, 0.5, 0.01);
    assert_true(v < 0.01 * variance(ref, S * S, NULL));
    fill(ramp_xy); /* smooth content survives away from the border */
    apply(&p);
    for (int y = 4; y < S - 4; y++)
        for (int x = 4; x < S - 4; x++)
            assert_float_equal(img[y * S + x], ref[y * S + x], 0.01);
}

static void test_blur(void **state)
{
    (void)state;
    cnnl__augment_params p = identity();
    p.blur_sigma = 2.0f;
    fill(half);
    apply(&p);
    for (int i = 0; i < S * S; i++)
        assert_float_equal(img[i], 0.5f, 1e-5);
    memset(img, 0, sizeof img);
    img[16 * S + 16] = 1.0f;
    apply(&p);
    double sum = 0;
    for (int i = 0; i < S * S; i++)
        sum += img[i];
    assert_float_equal(sum, 1.0, 1e-4); /* mass kept */
    /* the peak of a 2-D Gaussian of sigma 2 sampled on the grid: 1 / (2 pi 4) ~ 0.0398 */
    assert_float_equal(img[16 * S + 16], 1.0 / (2 * M_PI * 4.0), 0.002);
    /* symmetric */
    assert_float_equal(img[16 * S + 18], img[16 * S + 14], 1e-7);
    assert_float_equal(img[18 * S + 16], img[16 * S + 18], 1e-7);
}

static void test_intensity(void **state)
{
    (void)state;
    cnnl__augment_params p = identity();
    fill(half);
    img[0] = 0.25f;
    p.gamma = 2.0f;
    apply(&p);
    assert_float_equal(img[0], 0.0625f, 1e-6);
    assert_float_equal(img[1], 0.25f, 1e-6);

    fill(pattern);
    p = identity();
    p.contrast = 0.5f;
    apply(&p);
    double m0, m1, v0 = variance(ref, S * S, &m0), v1 = variance(img, S * S, &m1);
    assert_float_equal(m1, m0, 1e-5);              /* about the mean */
    assert_float_equal(v1, 0.25 * v0, 1e-5 * v0);   /* deviations halved */

    fill(pattern);
    p = identity();
    p.brightness = -0.1f;
    apply(&p);
    for (int i = 0; i < S * S; i++)
        assert_float_equal(img[i], ref[i] - 0.1f > 0 ? ref[i] - 0.1f : 0.0f, 1e-6); /* clipped at 0 */
}

static void test_noise(void **state)
{
    (void)state;
    enum { N = 64 };
    static float big[N * N];
    for (int i = 0; i < N * N; i++)
        big[i] = 0.5f;
    cnnl__augment_params p = identity();
    p.roundtrip = N;
    p.noise_std = 0.05f;
    cnnl_rng rng;
    cnnl__rng_seed(&rng, 7, 1);
    cnnl__augment_apply(big, 1, N, &p, &rng, work);
    double m, v = variance(big, N * N, &m);
    assert_float_equal(m, 0.5, 0.005);
    assert_float_equal(sqrt(v), 0.05, 0.005);
}

static void test_draw_ranges(void **state)
{
    (void)state;
    cnnl_augment_opts a = cnnl_augment_opts_preset(512);
    assert_ok(cnnl__augment_check("t", &a));
    assert_true(cnnl__augment_enabled(&a));
    cnnl_augment_opts off = cnnl_augment_opts_default();
    assert_false(cnnl__augment_enabled(&off));
    cnnl_rng rng;
    cnnl__rng_seed(&rng, 3, 4);
    float amin = 1e9f, amax = -1e9f, gmin = 1e9f, gmax = 0;
    int flips = 0, trips = 0, blurs = 0;
    for (int i = 0; i < 4000; i++) {
        cnnl__augment_params p;
        cnnl__augment_draw(&a, 512, &rng, &p);
        amin = fminf(amin, p.angle);
        amax = fmaxf(amax, p.angle);
        gmin = fminf(gmin, p.gamma);
        gmax = fmaxf(gmax, p.gamma);
        flips += p.flip;
        trips += p.roundtrip < 512;
        blurs += p.blur_sigma > 0;
        assert_true(p.scale >= 0.9f && p.scale <= 1.1f);
        assert_true(fabsf(p.tx) <= 0.05f * 512 && fabsf(p.ty) <= 0.05f * 512);
        assert_true(p.roundtrip >= (int)lroundf(0.4f * 512) && p.roundtrip <= 512);
        assert_true(p.blur_sigma <= a.blur_sigma);
        assert_true(p.contrast >= 0.6f && p.contrast <= 1.4f);
        assert_true(fabsf(p.brightness) <= 0.1f);
        assert_true(p.noise_std >= 0 && p.noise_std <= 0.05f);
    }
    assert_true(amin >= -10.0f && amin < -9.5f && amax <= 10.0f && amax > 9.5f);
    assert_true(gmin >= 1 / 1.5f - 1e-5f && gmin < 0.7f && gmax <= 1.5f + 1e-5f && gmax > 1.45f);
    assert_in_range(flips, 1800, 2200);  /* p = 0.5 */
    assert_in_range(trips, 1050, 1350);  /* p = 0.3 */
    assert_in_range(blurs, 1050, 1350);
    /* full strength: the end of every range */
    a.full_strength = true;
    cnnl__augment_params p;
    cnnl__augment_draw(&a, 512, &rng, &p);
    assert_true(p.flip);
    assert_float_equal(p.angle, 10.0f, 0);
    assert_float_equal(p.scale, 1.1f, 0);
    assert_float_equal(p.tx, 0.0f, 0);
    assert_int_equal(p.roundtrip, 205);
    assert_float_equal(p.gamma, 1.5f, 1e-6);
    assert_float_equal(p.contrast, 0.6f, 1e-6);
    assert_float_equal(p.brightness, 0.1f, 0);
    assert_float_equal(p.noise_std, 0.05f, 0);
}

static void test_options_checked(void **state)
{
    (void)state;
    cnnl_dataset *ds = NULL;
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = 8;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 32;
    assert_ok(cnnl_dataset_synthetic(&ds, &so, &o));
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    cnnl_loader *ld = NULL;
    lo.augment.rotate_deg = -1;
    assert_status_msg(cnnl_loader_create(&ld, ds, NULL, 0, &lo), CNNL_EINVAL, "augment.rotate_deg is -1");
    lo.augment = cnnl_augment_opts_default();
    lo.augment.noise_std = NAN;
    assert_status_msg(cnnl_loader_create(&ld, ds, NULL, 0, &lo), CNNL_EINVAL, "augment.noise_std");
    lo.augment = cnnl_augment_opts_default();
    lo.augment.scale_min = 1.2f;
    lo.augment.scale_max = 1.1f;
    assert_status_msg(cnnl_loader_create(&ld, ds, NULL, 0, &lo), CNNL_EINVAL, "scale_min <= scale_max");
    lo.augment = cnnl_augment_opts_default();
    lo.augment.roundtrip_p = 0.5f;
    assert_status_msg(cnnl_loader_create(&ld, ds, NULL, 0, &lo), CNNL_EINVAL, "roundtrip_min");
    assert_null(ld);
    cnnl_dataset_free(ds);
}

/* All images of epoch @p epoch, indexed by dataset index, through a loader of @p batch. */
static void epoch_images(cnnl_dataset *ds, const cnnl_loader_opts *lo0, int batch, int threads,
                         int epoch, bool via_all_epochs, float *out)
{
    cnnl_loader_opts lo = *lo0;
    lo.batch_size = batch;
    cnnl_set_num_threads(threads);
    cnnl_loader *ld = NULL;
    assert_ok(cnnl_loader_create(&ld, ds, NULL, 0, &lo));
    for (int e = via_all_epochs ? 0 : epoch; e <= epoch; e++) {
        assert_ok(cnnl_loader_start_epoch(ld, e));
        for (size_t b = 0; b < cnnl_loader_num_batches(ld); b++) {
            const cnnl_tensor *x;
            assert_ok(cnnl_loader_batch(ld, b, &x, NULL));
            if (e != epoch)
                continue;
            size_t per = 3 * 32 * 32;
            for (int64_t i = 0; i < cnnl_tensor_dim(x, 0); i++) {
                size_t k = cnnl_loader_index(ld, b * (size_t)batch + (size_t)i);
                memcpy(out + k * per, cnnl_tensor_data_const(x) + (size_t)i * per, per * sizeof(float));
            }
        }
    }
    cnnl_loader_free(ld);
}

static void test_loader_reproducible(void **state)
{
    (void)state;
    enum { N = 12, PER = 3 * 32 * 32 };
    cnnl_dataset *ds = NULL;
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = N;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 32;
    o.norm.kind = CNNL_NORM_SYMMETRIC;
    assert_ok(cnnl_dataset_synthetic(&ds, &so, &o));
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.shuffle = true;
    lo.seed = 5;
    lo.augment = cnnl_augment_opts_preset(32);
    lo.augment.blur_p = 1.0f;
    lo.augment.roundtrip_p = 1.0f;
    int saved = cnnl_get_num_threads();
    static float a[N * PER], b[N * PER], c[N * PER], d[N * PER], plain[N * PER];
    epoch_images(ds, &lo, 4, 1, 2, true, a);
    epoch_images(ds, &lo, 5, 2, 2, false, b);  /* other batch size and threads, straight to epoch 2 */
    assert_memory_equal(a, b, sizeof a);
    epoch_images(ds, &lo, 4, 2, 1, false, c);  /* another epoch differs */
    assert_memory_not_equal(a, c, sizeof a);
    lo.seed = 6;                                /* another seed differs */
    epoch_images(ds, &lo, 4, 2, 2, false, d);
    assert_memory_not_equal(a, d, sizeof a);
    /* augmented values are normalized like plain ones: [-1, 1] */
    for (size_t i = 0; i < N * PER; i++)
        assert_true(a[i] >= -1.0f && a[i] <= 1.0f);
    /* off: exactly the plain conversion */
    lo.augment = cnnl_augment_opts_default();
    epoch_images(ds, &lo, 4, 2, 2, false, d);
    for (size_t k = 0; k < N; k++)
        assert_ok(cnnl_dataset_get(ds, k, plain + k * PER));
    assert_memory_equal(d, plain, sizeof d);
    /* a full-strength flip through the loader mirrors every row of every channel */
    lo.augment.flip_p = 1.0f;
    lo.augment.full_strength = true;
    epoch_images(ds, &lo, 4, 2, 0, false, d);
    for (size_t k = 0; k < N; k++)
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    assert_float_equal(d[k * PER + (size_t)(ch * 1024 + y * 32 + x)],
                                       plain[k * PER + (size_t)(ch * 1024 + y * 32 + 31 - x)], 1e-6);
    cnnl_set_num_threads(saved);
    cnnl_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_rotation_quarter_turn),
        cmocka_unit_test(test_scale_and_shift),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_blur),
        cmocka_unit_test(test_intensity),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_draw_ranges),
        cmocka_unit_test(test_options_checked),
        cmocka_unit_test(test_loader_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
