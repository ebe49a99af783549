/*
 * Datasets, split and loaders on small image folders the tests write themselves:
 * discovery and order, pixel values and normalisations, resizing, split rounding and
 * stratification, reproducibility, batches, the synthetic generator, and bad input.
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_impl.h"
#include "fixtures.h"

static cnnl_dataset_opts opts_size(int size)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = size;
    return o;
}

static cnnl_dataset *synthetic(size_t count, int size, uint64_t seed)
{
    cnnl_synthetic_opts s = cnnl_synthetic_opts_default();
    s.count = count;
    s.seed = seed;
    cnnl_dataset_opts o = opts_size(size);
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_synthetic(&ds, &s, &o));
    return ds;
}

/* ---- discovery ---------------------------------------------------------------------- */

static void test_class_and_file_order(void **state)
{
    (void)state;
    const char *classes[] = {"zeta", "alpha", "Beta", "mid"};
    const char *files[] = {"b.png", "a.png", "10.png", "9.png"};
    for (int c = 0; c < 4; c++) {
        fx_mkdir(fx_path(fx_tmp, classes[c]));
        for (int f = 0; f <= c; f++)
            fx_png_const(fx_path(fx_path(fx_tmp, classes[c]), files[f]), 4, 4, (uint8_t)(10 * c + f));
    }
    fx_png_const(fx_path(fx_tmp, "not-a-class.png"), 4, 4, 0);
    fx_png_const(fx_path(fx_path(fx_tmp, "alpha"), ".hidden.png"), 4, 4, 0);
    cnnl_dataset_opts o = opts_size(4);
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    /* byte order: upper case before lower case */
    assert_int_equal(cnnl_dataset_num_classes(ds), 4);
    assert_string_equal(cnnl_dataset_class_name(ds, 0), "Beta");
    assert_string_equal(cnnl_dataset_class_name(ds, 1), "alpha");
    assert_string_equal(cnnl_dataset_class_name(ds, 2), "mid");
    assert_string_equal(cnnl_dataset_class_name(ds, 3), "zeta");
    assert_null(cnnl_dataset_class_name(ds, 4));
    assert_int_equal(cnnl_dataset_count(ds), 10);
    assert_int_equal(cnnl_dataset_class_count(ds, 0), 3);
    assert_int_equal(cnnl_dataset_class_count(ds, 3), 1);
    /* Beta holds b, a, 10 -> sorted 10, a, b; alpha holds b, a -> a, b */
    const char *expect[] = {"Beta/10.png", "Beta/a.png", "Beta/b.png", "alpha/a.png", "alpha/b.png",
                            "mid/10.png", "mid/9.png", "mid/a.png", "mid/b.png", "zeta/b.png"};
    const int labels[] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 3};
    for (size_t i = 0; i < 10; i++) {
        assert_string_equal(cnnl_dataset_name(ds, i), expect[i]);
        assert_int_equal(cnnl_dataset_label(ds, i), labels[i]);
    }
    /* the pixel value identifies the file: zeta's only file is b.png = 10*0+0 */
    const uint8_t *px;
    int ch;
    assert_ok(cnnl_dataset_pixels(ds, 9, &px, &ch));
    assert_int_equal(px[0], 0);
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch)); /* Beta/10.png: class 2, file 2 */
    assert_int_equal(px[0], 22);
    assert_int_equal(ch, 1);
    assert_null(cnnl_dataset_name(ds, 10));
    assert_int_equal(cnnl_dataset_label(ds, 10), -1);
    assert_string_equal(cnnl_dataset_root(ds), fx_tmp);
    assert_int_equal(cnnl_dataset_skipped(ds), 0);
    assert_non_null(strstr(cnnl_dataset_summary(ds), "10 images, 4 classes (Beta 3, alpha 2, mid 4, zeta 1)"));
    cnnl_dataset_free(ds);
}

/* ---- pixel values ------------------------------------------------------------------- */

static void load_one(const char *file_name, int size, cnnl_dataset_opts *o, cnnl_dataset **ds)
{
    (void)file_name;
    o->size = size;
    assert_ok(cnnl_dataset_load_folder(ds, fx_tmp, o));
    assert_int_equal(cnnl_dataset_count(*ds), 1);
}

static void test_normalisations(void **state)
{
    (void)state;
    uint8_t gray[16];
    for (int i = 0; i < 16; i++)
        gray[i] = (uint8_t)(i * 17); /* 0 .. 255 */
    fx_mkdir(fx_path(fx_tmp, "c"));
    fx_png(fx_path(fx_tmp, "c/g.png"), 4, 4, 1, gray);
    const float mean[3] = {0.1f, 0.2f, 0.3f}, sd[3] = {0.5f, 0.25f, 2.0f};
    float out[3 * 16];
    for (int norm = 0; norm < 3; norm++) {
        cnnl_dataset_opts o = cnnl_dataset_opts_default();
        o.norm.kind = (cnnl_norm_kind)norm;
        o.norm.channels = 3;
        memcpy(o.norm.mean, mean, sizeof mean);
        memcpy(o.norm.std, sd, sizeof sd);
        cnnl_dataset *ds = NULL;
        load_one("g.png", 4, &o, &ds);
        assert_ok(cnnl_dataset_get(ds, 0, out));
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 16; i++) {
                double v = gray[i], want = norm == 0 ? v / 255.0 : norm == 1 ? v / 127.5 - 1.0
                                                                      : (v / 255.0 - mean[c]) / sd[c];
                assert_float_equal(out[c * 16 + i], want, 1e-5);
            }
        cnnl_dataset_free(ds);
    }
    assert_float_equal(out[0 * 16 + 15], (1.0 - 0.1) / 0.5, 1e-5);
}

static void test_colour_channels(void **state)
{
    (void)state;
    uint8_t rgb[4 * 4 * 3];
    for (int i = 0; i < 16; i++) {
        rgb[3 * i] = (uint8_t)(i * 10);
        rgb[3 * i + 1] = (uint8_t)(200 - i * 5);
        rgb[3 * i + 2] = (uint8_t)(i * 3 + 7);
    }
    fx_mkdir(fx_path(fx_tmp, "c"));
    fx_png(fx_path(fx_tmp, "c/rgb.png"), 4, 4, 3, rgb);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    cnnl_dataset *ds = NULL;
    load_one("rgb.png", 4, &o, &ds);
    const uint8_t *px;
    int ch;
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch));
    assert_int_equal(ch, 3);
    float out[48];
    assert_ok(cnnl_dataset_get(ds, 0, out));
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 16; i++)
            assert_float_equal(out[c * 16 + i], rgb[3 * i + c] / 255.0, 1e-6);
    cnnl_dataset_free(ds);
    /* one channel: stb_image's luma, (77 R + 150 G + 29 B) >> 8 */
    o.channels = 1;
    load_one("rgb.png", 4, &o, &ds);
    assert_ok(cnnl_dataset_get(ds, 0, out));
    for (int i = 0; i < 16; i++) {
        int luma = (77 * rgb[3 * i] + 150 * rgb[3 * i + 1] + 29 * rgb[3 * i + 2]) >> 8;
        assert_float_equal(out[i] * 255.0f, luma, 1e-3);
    }
    cnnl_dataset_free(ds);
}

static void test_gray_replication_and_rgb_gray(void **state)
{
    (void)state;
    uint8_t g[16], rgb[48];
    for (int i = 0; i < 16; i++) {
        g[i] = (uint8_t)(i * 13 + 5);
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = g[i];
    }
    fx_mkdir(fx_path(fx_tmp, "c"));
    fx_png(fx_path(fx_tmp, "c/a-gray.png"), 4, 4, 1, g);
    fx_png(fx_path(fx_tmp, "c/b-rgb-gray.png"), 4, 4, 3, rgb);
    cnnl_dataset_opts o = opts_size(4);
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    for (size_t k = 0; k < 2; k++) {
        const uint8_t *px;
        int ch;
        assert_ok(cnnl_dataset_pixels(ds, k, &px, &ch));
        assert_int_equal(ch, 1); /* a colour file whose channels agree is stored once */
        float out[48];
        assert_ok(cnnl_dataset_get(ds, k, out));
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 16; i++)
                assert_float_equal(out[c * 16 + i], g[i] / 255.0, 1e-6);
    }
    cnnl_dataset_free(ds);
}

/* Triangle filter at an exact factor 2: output j is centred on input 2j+1 (pixel centres at
 * i + 0.5) and covers inputs 2j-1 .. 2j+2 with weights 1/4, 3/4, 3/4, 1/4 (/ 2); at the
 * borders the inputs outside are dropped and the weights renormalised (as Pillow does). */
static double tri2(const double *v, int n, int j)
{
    const double w[4] = {0.25, 0.75, 0.75, 0.25};
    double s = 0, total = 0;
    for (int k = 0; k < 4; k++) {
        int i = 2 * j - 1 + k;
        if (i < 0 || i >= n)
            continue;
        s += w[k] * v[i];
        total += w[k];
    }
    return s / total;
}

static void test_resize_values(void **state)
{
    (void)state;
    enum { N = 16, M = N / 2 };
    uint8_t img[N * N];
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            img[y * N + x] = (uint8_t)((x * x * 7 + y * 3) % 256);
    fx_mkdir(fx_path(fx_tmp, "c"));
    fx_png(fx_path(fx_tmp, "c/i.png"), N, N, 1, img);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    cnnl_dataset *ds = NULL;
    load_one("i.png", M, &o, &ds);
    const uint8_t *px;
    int ch;
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch));
    /* separable: rows first, then columns of the row results */
    double rows[N][M], col[N], maxdiff = 0;
    for (int y = 0; y < N; y++) {
        double row[N];
        for (int x = 0; x < N; x++)
            row[x] = img[y * N + x];
        for (int ox = 0; ox < M; ox++)
            rows[y][ox] = tri2(row, N, ox);
    }
    for (int ox = 0; ox < M; ox++) {
        for (int y = 0; y < N; y++)
            col[y] = rows[y][ox];
        for (int oy = 0; oy < M; oy++) {
            double d = fabs(px[oy * M + ox] - tri2(col, N, oy));
            maxdiff = d > maxdiff ? d : maxdiff;
        }
    }
    assert_true(maxdiff <= 1.0); /* 8-bit intermediate rows and output */
    cnnl_dataset_free(ds);
    /* upsampling a constant image keeps it constant; the same size copies exactly */
    fx_png_const(fx_path(fx_tmp, "c/i.png"), 3, 5, 77);
    load_one("i.png", 11, &o, &ds);
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch));
    for (int i = 0; i < 121; i++)
        assert_int_equal(px[i], 77);
    cnnl_dataset_free(ds);
    fx_png(fx_path(fx_tmp, "c/i.png"), N, N, 1, img);
    load_one("i.png", N, &o, &ds);
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch));
    assert_memory_equal(px, img, sizeof img);
    cnnl_dataset_free(ds);
}

static void test_jpeg_fixture(void **state)
{
    (void)state;
    enum { N = 32 };
    uint8_t img[N * N];
    for (int i = 0; i < N * N; i++)
        img[i] = (uint8_t)(64 + (i % N) * 4);
    fx_mkdir(fx_path(fx_tmp, "c"));
    fx_jpg(fx_path(fx_tmp, "c/j.jpg"), N, N, 1, img);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    cnnl_dataset *ds = NULL;
    load_one("j.jpg", N, &o, &ds);
    const uint8_t *px;
    int ch;
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch));
    assert_int_equal(ch, 1);
    for (int i = 0; i < N * N; i++)
        assert_true(abs((int)px[i] - (int)img[i]) <= 4); /* quality-100 JPEG */
    cnnl_dataset_free(ds);
}

/* ---- split -------------------------------------------------------------------------- */

static void check_partition(const cnnl_split *sp, size_t n)
{
    unsigned char *seen = calloc(n, 1);
    for (int s = 0; s < 2; s++) {
        const size_t *idx = cnnl_split_indices(sp, (cnnl_subset)s);
        for (size_t i = 0; i < cnnl_split_count(sp, (cnnl_subset)s); i++) {
            assert_true(idx[i] < n);
            assert_int_equal(seen[idx[i]], 0);
            seen[idx[i]] = 1;
            if (i)
                assert_true(idx[i - 1] < idx[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

static void split_sizes(size_t n, double f, bool strat, size_t want_train, size_t want_test)
{
    cnnl_dataset *ds = synthetic(n, 4, 1);
    cnnl_split_opts so = cnnl_split_opts_default();
    so.train_fraction = f;
    so.stratified = strat;
    cnnl_split *sp = NULL;
    assert_ok(cnnl_split_create(&sp, ds, &so));
    assert_int_equal(cnnl_split_count(sp, CNNL_SUBSET_TRAIN), want_train);
    assert_int_equal(cnnl_split_count(sp, CNNL_SUBSET_TEST), want_test);
    check_partition(sp, n);
    if (want_test == 0) { /* an empty subset makes an empty selection, not "every image" */
        cnnl_loader *ld = NULL;
        assert_non_null(cnnl_split_indices(sp, CNNL_SUBSET_TEST));
        assert_status_msg(cnnl_loader_create(&ld, ds, cnnl_split_indices(sp, CNNL_SUBSET_TEST), 0, NULL),
                          CNNL_EINVAL, "no images selected");
    }
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
}

static void test_split_rounding(void **state)
{
    (void)state;
    split_sizes(1311, 0.8, false, 1049, 262); /* 1048 + 262 = 1310, the 1 left goes to train */
    split_sizes(10, 0.8, false, 8, 2);        /* 10 * (1 - 0.8) counts as 2, as 10 * 0.2 does */
    split_sizes(7, 0.5, false, 4, 3);
    split_sizes(9, 0.7, false, 7, 2);          /* 6 + 2 = 8, the 1 left goes to train */
    split_sizes(22, 0.8, true, 18, 4);         /* classes 6,6,5,5: 5/1, 5/1, 4/1, 4/1 */
    split_sizes(1311, 0.8, true, 1051, 260);
    split_sizes(1, 0.8, false, 1, 0); /* floor 0 + floor 0, the one left goes to train */   /* classes 328 x 3, 327: 263/65 x 3, 262/65 */
}

static void test_split_stratified_per_class(void **state)
{
    (void)state;
    cnnl_dataset *ds = synthetic(40, 4, 3);
    cnnl_split_opts so = cnnl_split_opts_default();
    so.stratified = true;
    so.seed = 9;
    cnnl_split *sp = NULL;
    assert_ok(cnnl_split_create(&sp, ds, &so));
    int per_class[4] = {0};
    const size_t *test = cnnl_split_indices(sp, CNNL_SUBSET_TEST);
    for (size_t i = 0; i < cnnl_split_count(sp, CNNL_SUBSET_TEST); i++)
        per_class[cnnl_dataset_label(ds, test[i])]++;
    for (int c = 0; c < 4; c++)
        assert_int_equal(per_class[c], 2);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
}

static bool same_split(const cnnl_split *a, const cnnl_split *b)
{
    for (int s = 0; s < 2; s++) {
        size_t n = cnnl_split_count(a, (cnnl_subset)s);
        if (n != cnnl_split_count(b, (cnnl_subset)s))
            return false;
        if (n && memcmp(cnnl_split_indices(a, (cnnl_subset)s), cnnl_split_indices(b, (cnnl_subset)s),
                        n * sizeof(size_t)) != 0)
            return false;
    }
    return true;
}

static void test_split_reproducible(void **state)
{
    (void)state;
    cnnl_dataset *ds = synthetic(100, 4, 1);
    cnnl_split_opts so = cnnl_split_opts_default();
    cnnl_split *a = NULL, *b = NULL, *c = NULL;
    so.seed = 5;
    assert_ok(cnnl_split_create(&a, ds, &so));
    assert_ok(cnnl_split_create(&b, ds, &so));
    so.seed = 6;
    assert_ok(cnnl_split_create(&c, ds, &so));
    assert_true(same_split(a, b));
    assert_false(same_split(a, c));
    cnnl_split_free(a);
    cnnl_split_free(b);
    cnnl_split_free(c);
    so.train_fraction = 0.0;
    assert_status_msg(cnnl_split_create(&a, ds, &so), CNNL_EINVAL, "train_fraction");
    assert_null(a);
    cnnl_dataset_free(ds);
}

static void test_split_save_load(void **state)
{
    (void)state;
    cnnl_dataset *ds = synthetic(50, 4, 2);
    cnnl_split *sp = NULL, *back = NULL;
    cnnl_split_opts so = cnnl_split_opts_default();
    so.seed = 11;
    assert_ok(cnnl_split_create(&sp, ds, &so));
    const char *file = fx_path(fx_tmp, "split.txt");
    assert_ok(cnnl_split_save(sp, ds, file));
    assert_ok(cnnl_split_load(&back, ds, file));
    assert_true(same_split(sp, back));
    cnnl_split_free(back);
    /* only the split file is in the folder: the temporary file was renamed */
    assert_int_equal(access(fx_path(fx_tmp, "split.txt"), R_OK), 0);
    size_t len;
    uint8_t *text = tu_read_file(file, &len);
    text[len] = 0;
    assert_non_null(strstr((char *)text, "test\tglioma/synth_"));
    free(text);

    const char *bad = fx_path(fx_tmp, "bad.txt");
    const char unknown[] = "train\tglioma/synth_000000.png\ntest\tglioma/nope.jpg\n";
    tu_write_file(bad, unknown, sizeof unknown - 1);
    assert_status_msg(cnnl_split_load(&back, ds, bad), CNNL_ENOTFOUND, "glioma/nope.jpg");
    assert_null(back);
    const char twice[] = "train\tglioma/synth_000000.png\ntest\tglioma/synth_000000.png\n";
    tu_write_file(bad, twice, sizeof twice - 1);
    assert_status_msg(cnnl_split_load(&back, ds, bad), CNNL_EFORMAT, ":2: glioma/synth_000000.png is listed twice");
    const char junk[] = "# comment\nvalidation\tglioma/synth_000000.png\n";
    tu_write_file(bad, junk, sizeof junk - 1);
    assert_status_msg(cnnl_split_load(&back, ds, bad), CNNL_EFORMAT, "bad.txt:2");
    assert_status_msg(cnnl_split_load(&back, ds, fx_path(fx_tmp, "missing.txt")), CNNL_EIO, "missing.txt");
    /* a partial list: the rest is in neither subset, reported by one warning */
    const char part[] = "train\tglioma/synth_000000.png\ntest\tmeningioma/synth_000013.png\n";
    tu_write_file(bad, part, sizeof part - 1);
    tu_log log;
    tu_log_start(&log);
    assert_ok(cnnl_split_load(&back, ds, bad));
    tu_log_stop();
    assert_int_equal(log.warnings, 1);
    assert_non_null(strstr(log.text, "48 images"));
    assert_int_equal(cnnl_split_count(back, CNNL_SUBSET_TRAIN), 1);
    assert_int_equal(cnnl_split_indices(back, CNNL_SUBSET_TEST)[0], 13);
    cnnl_split_free(back);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
}

/* ---- loader ------------------------------------------------------------------------- */

static void test_batches(void **state)
{
    (void)state;
    cnnl_dataset *ds = synthetic(10, 8, 4);
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = 4;
    lo.shuffle = true;
    lo.seed = 3;
    const size_t pick[7] = {9, 0, 3, 5, 6, 2, 8};
    cnnl_loader *ld = NULL;
    assert_ok(cnnl_loader_create(&ld, ds, pick, 7, &lo));
    assert_int_equal(cnnl_loader_count(ld), 7);
    assert_int_equal(cnnl_loader_num_batches(ld), 2);
    float ref[3 * 64];
    size_t seen = 0;
    for (size_t b = 0; b < 2; b++) {
        const cnnl_tensor *x;
        const int32_t *y;
        assert_ok(cnnl_loader_batch(ld, b, &x, &y));
        size_t n = b == 0 ? 4 : 3;
        int64_t shape[4];
        int nd;
        assert_ok(cnnl_tensor_shape(x, &nd, shape));
        assert_int_equal(nd, 4);
        assert_int_equal(shape[0], n);
        assert_int_equal(shape[1], 3);
        assert_int_equal(shape[2], 8);
        assert_int_equal(shape[3], 8);
        for (size_t i = 0; i < n; i++, seen++) {
            size_t k = cnnl_loader_index(ld, b * 4 + i);
            assert_int_equal(y[i], cnnl_dataset_label(ds, k));
            assert_ok(cnnl_dataset_get(ds, k, ref));
            assert_memory_equal(cnnl_tensor_data_const(x) + i * 192, ref, sizeof ref);
        }
    }
    assert_int_equal(seen, 7);
    /* the epoch's order is a permutation of the selection */
    int hits[10] = {0};
    for (size_t i = 0; i < 7; i++)
        hits[cnnl_loader_index(ld, i)]++;
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(hits[pick[i]], 1);
    assert_int_equal(cnnl_loader_index(ld, 7), SIZE_MAX);
    const cnnl_tensor *x;
    assert_status_msg(cnnl_loader_batch(ld, 2, &x, NULL), CNNL_ERANGE, "batch 2");
    cnnl_loader_free(ld);

    /* evaluation: the given order, the whole dataset by default */
    assert_ok(cnnl_loader_create(&ld, ds, NULL, 0, NULL));
    assert_int_equal(cnnl_loader_num_batches(ld), 1);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(cnnl_loader_index(ld, i), i);
    cnnl_loader_free(ld);

    lo.batch_size = 0;
    assert_status_msg(cnnl_loader_create(&ld, ds, pick, 7, &lo), CNNL_EINVAL, "batch_size");
    lo.batch_size = 2;
    const size_t out_of_range[2] = {1, 10};
    assert_status_msg(cnnl_loader_create(&ld, ds, out_of_range, 2, &lo), CNNL_ERANGE, "indices[1] is 10");
    assert_null(ld);
    cnnl_dataset_free(ds);
}

static void order_of(cnnl_loader *ld, size_t *out)
{
    for (size_t i = 0; i < cnnl_loader_count(ld); i++)
        out[i] = cnnl_loader_index(ld, i);
}

static void test_shuffle_reproducible(void **state)
{
    (void)state;
    enum { N = 64 };
    cnnl_dataset *ds = synthetic(N, 4, 4);
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.shuffle = true;
    lo.seed = 21;
    cnnl_loader *a = NULL, *b = NULL, *c = NULL;
    assert_ok(cnnl_loader_create(&a, ds, NULL, 0, &lo));
    assert_ok(cnnl_loader_create(&b, ds, NULL, 0, &lo));
    lo.seed = 22;
    assert_ok(cnnl_loader_create(&c, ds, NULL, 0, &lo));
    size_t oa[N], ob[N], oc[N], e1[N];
    order_of(a, oa);
    order_of(b, ob);
    order_of(c, oc);
    assert_memory_equal(oa, ob, sizeof oa);
    assert_memory_not_equal(oa, oc, sizeof oa);
    /* epochs differ; any epoch is reproducible without going through the others */
    for (int e = 1; e <= 3; e++)
        assert_ok(cnnl_loader_start_epoch(a, e));
    order_of(a, e1);
    assert_memory_not_equal(oa, e1, sizeof oa);
    assert_ok(cnnl_loader_start_epoch(b, 3));
    order_of(b, ob);
    assert_memory_equal(e1, ob, sizeof ob);
    assert_ok(cnnl_loader_start_epoch(a, 0));
    order_of(a, ob);
    assert_memory_equal(oa, ob, sizeof oa);
    assert_status_msg(cnnl_loader_start_epoch(a, -1), CNNL_EINVAL, "epoch");
    cnnl_loader_free(a);
    cnnl_loader_free(b);
    cnnl_loader_free(c);
    cnnl_dataset_free(ds);
}

/* ---- synthetic ---------------------------------------------------------------------- */

static void test_synthetic_deterministic(void **state)
{
    (void)state;
    int threads = cnnl_get_num_threads();
    assert_ok(cnnl_set_num_threads(1));
    cnnl_dataset *a = synthetic(12, 48, 7);
    assert_ok(cnnl_set_num_threads(3));
    cnnl_dataset *b = synthetic(12, 48, 7);
    cnnl_dataset *c = synthetic(12, 48, 8);
    assert_ok(cnnl_set_num_threads(threads));
    size_t differ = 0;
    for (size_t i = 0; i < 12; i++) {
        const uint8_t *pa, *pb, *pc;
        int ch;
        assert_ok(cnnl_dataset_pixels(a, i, &pa, &ch));
        assert_ok(cnnl_dataset_pixels(b, i, &pb, &ch));
        assert_ok(cnnl_dataset_pixels(c, i, &pc, &ch));
        assert_memory_equal(pa, pb, 48 * 48);
        differ += memcmp(pa, pc, 48 * 48) != 0;
    }
    assert_int_equal(differ, 12);
    assert_string_equal(cnnl_dataset_class_name(a, 0), "glioma");
    assert_string_equal(cnnl_dataset_class_name(a, 3), "pituitary");
    assert_int_equal(cnnl_dataset_class_count(a, 2), 3);
    cnnl_dataset_free(a);
    cnnl_dataset_free(b);
    cnnl_dataset_free(c);
    cnnl_synthetic_opts s = cnnl_synthetic_opts_default();
    s.difficulty = 1.5f;
    assert_status_msg(cnnl_dataset_synthetic(&a, &s, NULL), CNNL_EINVAL, "difficulty");
    s.difficulty = 0.5f;
    s.count = 0;
    assert_status_msg(cnnl_dataset_synthetic(&a, &s, NULL), CNNL_EINVAL, "count");
}

/* Mean over a class of the brightest 1 % of a window (relative coordinates). */
static double window_peak(const cnnl_dataset *ds, int cls, int size, double x0, double x1, double y0, double y1)
{
    double total = 0;
    int images = 0;
    for (size_t i = 0; i < cnnl_dataset_count(ds); i++) {
        if (cnnl_dataset_label(ds, i) != cls)
            continue;
        const uint8_t *px;
        int ch;
        assert_ok(cnnl_dataset_pixels(ds, i, &px, &ch));
        int hist[256] = {0}, n = 0;
        for (int y = (int)(y0 * size); y < (int)(y1 * size); y++)
            for (int x = (int)(x0 * size); x < (int)(x1 * size); x++, n++)
                hist[px[y * size + x]]++;
        int need = n / 100 + 1, v = 255;
        double s = 0;
        for (int got = 0; v >= 0 && got < need; v--) {
            int take = hist[v] < need - got ? hist[v] : need - got;
            s += (double)take * v;
            got += take;
        }
        total += s / need;
        images++;
    }
    return total / images;
}

static void test_synthetic_classes_differ(void **state)
{
    (void)state;
    cnnl_synthetic_opts s = cnnl_synthetic_opts_default();
    s.count = 80;
    s.difficulty = 0.0f;
    cnnl_dataset_opts o = opts_size(64);
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_synthetic(&ds, &s, &o));
    /* the lower centre (where the sella is) is brighter with a pituitary tumour */
    double pit = window_peak(ds, 3, 64, 0.42, 0.58, 0.68, 0.84);
    double none = window_peak(ds, 2, 64, 0.42, 0.58, 0.68, 0.84);
    assert_true(pit > none + 15.0);
    /* a glioma brightens the brain's interior */
    double gli = window_peak(ds, 0, 64, 0.3, 0.7, 0.3, 0.7);
    double none_c = window_peak(ds, 2, 64, 0.3, 0.7, 0.3, 0.7);
    assert_true(gli > none_c + 15.0);
    /* every image has a dark background corner and a brighter head */
    const uint8_t *px;
    int ch;
    assert_ok(cnnl_dataset_pixels(ds, 0, &px, &ch));
    assert_true(px[0] < 40);
    assert_true(window_peak(ds, 2, 64, 0.0, 1.0, 0.45, 0.55) > 100.0);
    cnnl_dataset_free(ds);
}

static void test_write_folder_round_trip(void **state)
{
    (void)state;
    cnnl_dataset *ds = synthetic(9, 32, 5);
    const char *dir = fx_path(fx_tmp, "out");
    assert_ok(cnnl_dataset_write_folder(ds, dir));
    cnnl_dataset_opts o = opts_size(32);
    cnnl_dataset *back = NULL;
    assert_ok(cnnl_dataset_load_folder(&back, dir, &o));
    assert_int_equal(cnnl_dataset_count(back), 9);
    for (size_t i = 0; i < 9; i++) {
        assert_string_equal(cnnl_dataset_name(back, i), cnnl_dataset_name(ds, i));
        assert_int_equal(cnnl_dataset_label(back, i), cnnl_dataset_label(ds, i));
        const uint8_t *pa, *pb;
        int ca, cb;
        assert_ok(cnnl_dataset_pixels(ds, i, &pa, &ca));
        assert_ok(cnnl_dataset_pixels(back, i, &pb, &cb));
        assert_int_equal(ca, cb);
        assert_memory_equal(pa, pb, 32 * 32);
    }
    cnnl_dataset_free(back);
    tu_write_file(fx_path(fx_tmp, "file"), "x", 1);
    assert_status_msg(cnnl_dataset_write_folder(ds, fx_path(fx_tmp, "file")), CNNL_EIO, "file");
    cnnl_dataset_free(ds);
}

static void test_options_checked(void **state)
{
    (void)state;
    cnnl_dataset *ds = (cnnl_dataset *)1;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 0;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EINVAL, "size is 0");
    assert_null(ds);
    o = cnnl_dataset_opts_default();
    o.channels = 2;
    assert_status_msg(cnnl_dataset_synthetic(&ds, NULL, &o), CNNL_EINVAL, "channels is 2");
    o = cnnl_dataset_opts_default();
    o.norm.kind = CNNL_NORM_MEAN_STD;
    o.norm.channels = 3;
    o.norm.std[1] = 0.0f;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EINVAL, "channel 1 has mean 0 and std 0");
    o.norm.std[1] = 1.0f;
    o.norm.mean[2] = NAN;
    assert_status_msg(cnnl_dataset_synthetic(&ds, NULL, &o), CNNL_EINVAL, "channel 2 has mean nan");
    o.norm.mean[2] = 0.0f;
    o.norm.channels = 1;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EINVAL, "normalization has 1 channels; the images have 3");
    o.norm.channels = 0;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EINVAL, "normalization has 0 channels; expected 1 to 4");
    o.norm.kind = (cnnl_norm_kind)7;
    assert_status_msg(cnnl_dataset_synthetic(&ds, NULL, &o), CNNL_EINVAL, "unknown normalization kind 7");
    assert_status_msg(cnnl_dataset_load_folder(NULL, fx_tmp, NULL), CNNL_EINVAL, "out is NULL");
    assert_status_msg(cnnl_dataset_load_folder(&ds, NULL, NULL), CNNL_EINVAL, "root is NULL");
    assert_int_equal(cnnl_dataset_count(NULL), 0);
    assert_string_equal(cnnl_dataset_summary(NULL), "");
    cnnl_dataset_free(NULL);
    cnnl_split_free(NULL);
    cnnl_loader_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_class_and_file_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_normalisations, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_colour_channels, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_gray_replication_and_rgb_gray, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_resize_values, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_jpeg_fixture, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_split_rounding, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_split_stratified_per_class, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_split_reproducible, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_split_save_load, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batches, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shuffle_reproducible, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_synthetic_deterministic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_synthetic_classes_differ, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_folder_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_options_checked, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
