/* Allocation-failure sweeps: for N = 0, 1, 2, ... the (N+1)-th allocation made by the library
 * fails (lib/core/alloc.c's hook; this program routes the library's malloc, calloc, realloc and
 * strdup through it with the linker's --wrap, and cJSON through cJSON_InitHooks). Until an
 * operation completes without reaching its failure, every run must return CNNL_ENOMEM with a
 * message, hand back no half-made handle and leave the handles it was given usable: the same
 * operation, repeated without the failure, gives the reference result. Leaks are checked by
 * LeakSanitizer in the sanitizer builds. stb_image, OpenBLAS and the OpenMP runtime allocate
 * inside their own shared libraries and are not covered. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "image_write.h"
#include <stb_image_write.h>
#include "test_util.h"
#ifdef CNNL_HAVE_TIFF
#include <tiffio.h>
#endif

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

void *__wrap_malloc(size_t n)
{
    return cnnl__alloc_fault_hit() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size)
{
    return cnnl__alloc_fault_hit() ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n)
{
    return cnnl__alloc_fault_hit() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s)
{
    return cnnl__alloc_fault_hit() ? NULL : __real_strdup(s);
}
static void *json_malloc(size_t n)
{
    return cnnl__alloc_fault_hit() ? NULL : __real_malloc(n);
}

/* The sweeps stop here at the latest; each operation needs far fewer allocations. */
enum { MAX_N = 20000 };

/* Checks a failed run's status and message; prints the sweep's progress. */
static void expect_enomem(const char *what, long n, cnnl_status st)
{
    const char *msg = cnnl_last_error();
    if (st != CNNL_ENOMEM || !msg || !*msg) {
        print_error("%s, allocation %ld failing: got %s \"%s\", want CNNL_ENOMEM with a message\n", what, n + 1,
                    cnnl_status_string(st), msg ? msg : "");
        fail();
    }
}

static void report(const char *what, long failures, long allocations)
{
    printf("%s: %ld injected failures, each CNNL_ENOMEM; %ld allocations when none fails\n", what, failures,
           allocations);
}

/* ---- a training step of the report network (32x32, batch 2, Adam) */

static cnnl_tensor *batch_x;
static const int32_t batch_y[2] = {1, 3};

static void make_net(cnnl_model **m, cnnl_optimizer **o)
{
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    ro.seed = 7;
    cnnl_adam_opts ao = cnnl_adam_opts_default();
    assert_ok(cnnl_report_net_create(m, &ro));
    assert_ok(cnnl_optimizer_adam(o, *m, &ao));
    assert_ok(cnnl_model_set_training(*m, true));
}

static cnnl_status train_step(cnnl_model *m, cnnl_optimizer *o, cnnl_tensor *grad, float *loss)
{
    const cnnl_tensor *out = NULL;
    cnnl_status st = cnnl_model_zero_grad(m);
    if (st == CNNL_OK)
        st = cnnl_model_forward(m, batch_x, &out);
    if (st == CNNL_OK)
        st = cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, out, batch_y, 2, CNNL_REDUCE_MEAN, loss, grad);
    if (st == CNNL_OK)
        st = cnnl_model_backward(m, grad);
    if (st == CNNL_OK)
        st = cnnl_optimizer_step(o);
    return st;
}

/* Sum of |w| over every model parameter: a fingerprint of the weights after a step. */
static double weight_sum(cnnl_model *m)
{
    double s = 0;
    cnnl_param_info info;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        assert_ok(cnnl_model_state_at(m, i, &info));
        for (size_t k = 0; info.data && k < info.numel; k++)
            s += fabs((double)info.data[k]);
    }
    return s;
}

static void test_training_step(void **state)
{
    (void)state;
    int64_t xs[4] = {2, 3, 32, 32}, gs[2] = {2, 4};
    cnnl_tensor *grad = NULL;
    assert_ok(cnnl_tensor_create(&batch_x, 4, xs));
    assert_ok(cnnl_tensor_create(&grad, 2, gs));
    float *xd = cnnl_tensor_data(batch_x);
    for (size_t i = 0; i < cnnl_tensor_numel(batch_x); i++)
        xd[i] = (float)((i * 37) % 101) / 101.0f;

    cnnl_model *m = NULL;
    cnnl_optimizer *o = NULL;
    float ref_loss = 0;
    make_net(&m, &o);
    assert_ok(train_step(m, o, grad, &ref_loss));
    double ref_w = weight_sum(m);
    cnnl_optimizer_free(o);
    cnnl_model_free(m);

    long n;
    for (n = 0; n < MAX_N; n++) {
        make_net(&m, &o);
        float loss = 0;
        uint64_t rng[4];
        assert_ok(cnnl_model_get_rng_state(m, rng));
        cnnl__alloc_fail_after(n);
        cnnl_status st = train_step(m, o, grad, &loss);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        if (seen <= n) { /* no allocation failed: the sweep is complete */
            assert_ok(st);
            assert_true(loss == ref_loss);
            cnnl_optimizer_free(o);
            cnnl_model_free(m);
            break;
        }
        expect_enomem("training step", n, st);
        /* The handles stay usable: the step again, without the failure, gives the reference
         * result (the failed forward pass may have drawn dropout masks: rewind the generator). */
        assert_ok(cnnl_model_set_rng_state(m, rng));
        assert_ok(train_step(m, o, grad, &loss));
        if (loss != ref_loss || weight_sum(m) != ref_w) {
            print_error("training step, allocation %ld failing: the step again gives loss %.9g (want %.9g), "
                        "weights %.9g (want %.9g)\n", n + 1, (double)loss, (double)ref_loss, weight_sum(m), ref_w);
            fail();
        }
        cnnl_optimizer_free(o);
        cnnl_model_free(m);
    }
    assert_true(n > 0 && n < MAX_N);
    report("training step", n, n);
    cnnl_tensor_free(grad);
    cnnl_tensor_free(batch_x);
}

/* ---- loading a model file */

static void test_model_load(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/net.safetensors", dir);
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    ro.batchnorm = true;
    cnnl_model *m = NULL;
    assert_ok(cnnl_report_net_create(&m, &ro));
    static const char *const names[] = {"glioma", "meningioma", "notumor", "pituitary"};
    cnnl_save_opts so = cnnl_save_opts_default();
    so.class_names = names;
    so.num_classes = 4;
    assert_ok(cnnl_model_save(m, path, &so));
    double ref_w = weight_sum(m);
    size_t ref_params = cnnl_model_num_params(m);
    cnnl_model_free(m);

    long n;
    for (n = 0; n < MAX_N; n++) {
        cnnl_model_meta *meta = NULL;
        m = NULL;
        cnnl__alloc_fail_after(n);
        cnnl_status st = cnnl_model_load(&m, path, NULL, &meta);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        if (seen <= n) {
            assert_ok(st);
            assert_int_equal(cnnl_model_num_params(m), ref_params);
            assert_true(weight_sum(m) == ref_w);
            assert_string_equal(cnnl_model_meta_class_name(meta, 3), "pituitary");
            cnnl_model_meta_free(meta);
            cnnl_model_free(m);
            break;
        }
        expect_enomem("model load", n, st);
        assert_null(m);
        assert_null(meta);
    }
    assert_true(n > 0 && n < MAX_N);
    report("model load", n, n);
    tu_rmtree(dir);
    free(dir);
}

/* ---- loading an image folder (8 PNG files in 4 classes, resized) */

static void test_dataset_load(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = 8;
    cnnl_dataset_opts opts = cnnl_dataset_opts_default();
    opts.size = 32;
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_synthetic(&ds, &syn, &opts));
    assert_ok(cnnl_dataset_write_folder(ds, dir));
    cnnl_dataset_free(ds);
    opts.size = 24; /* loaded at another size: the resize is swept too */

    long n;
    for (n = 0; n < MAX_N; n++) {
        ds = NULL;
        tu_log log;
        tu_log_start(&log);
        cnnl__alloc_fail_after(n);
        cnnl_status st = cnnl_dataset_load_folder(&ds, dir, &opts);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        tu_log_stop();
        if (seen <= n) {
            assert_ok(st);
            assert_int_equal(cnnl_dataset_count(ds), 8);
            assert_int_equal(cnnl_dataset_skipped(ds), 0);
            assert_int_equal(cnnl_dataset_num_classes(ds), 4);
            cnnl_dataset_free(ds);
            break;
        }
        /* Out of memory is never a verdict on a file: no image may be skipped for it. */
        if (st == CNNL_OK)
            print_error("dataset load, allocation %ld failing: %zu images, %zu skipped; warnings: %s\n", n + 1,
                        cnnl_dataset_count(ds), cnnl_dataset_skipped(ds), log.text);
        expect_enomem("dataset load", n, st);
        assert_null(ds);
    }
    assert_true(n > 0 && n < MAX_N);
    report("dataset load", n, n);
    tu_rmtree(dir);
    free(dir);
}

/* ---- decoding the formats the library reads itself or through libtiff: DICOM (12 bits in
 * 16), a 16-bit PGM, and with libtiff a 16-bit LZW TIFF and a tiled 8-bit RGB one */

static void sweep_image(const char *what, const uint8_t *bytes, size_t len)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    long n;
    for (n = 0; n < MAX_N; n++) {
        cnnl_tensor *x = NULL;
        cnnl__alloc_fail_after(n);
        cnnl_status st = cnnl_image_load_memory(&x, bytes, len, what, &o);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        if (seen <= n) {
            assert_ok(st);
            assert_int_equal(cnnl_tensor_numel(x), 3 * 8 * 8);
            cnnl_tensor_free(x);
            break;
        }
        expect_enomem(what, n, st);
        assert_null(x);
    }
    assert_true(n > 0 && n < MAX_N);
    report(what, n, n);
}

#ifdef CNNL_HAVE_TIFF
static uint8_t *tiff_bytes(const char *dir, const char *name, int spp, int bps, int compression, int tile, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t v[16 * 16 * 3 * 2];
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (uint8_t)(i * 7 % 16); /* 16-bit values below 4096 */
    tw_tiff_opts o = {spp, bps, 0, spp == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK, false, tile, compression, 0, NULL};
    assert_true(tw_tiff(path, 16, 16, v, &o));
    return tu_read_file(path, n);
}
#endif

static void test_image_formats(void **state)
{
    (void)state;
    uint16_t v[16 * 16];
    for (int i = 0; i < 16 * 16; i++)
        v[i] = (uint16_t)(i * 16);
    size_t n = 0;
    tdcm_opts d = {.samples = 1, .bits = 16, .bits_stored = 12, .nesting = 2};
    uint8_t *dcm = tdcm_write(NULL, 16, 16, v, &d, &n);
    assert_non_null(dcm);
    sweep_image("scan.dcm", dcm, n);
    free(dcm);
    /* baseline JPEG in a DICOM file (a 16 x 16 colour JPEG written by stb_image_write) */
    char *dir0 = tu_tempdir();
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/f.jpg", dir0);
    uint8_t flat[16 * 16 * 3];
    for (size_t i = 0; i < sizeof flat; i++)
        flat[i] = (uint8_t)(i % 3 * 60 + i / 48);
    assert_true(stbi_write_jpg(jpath, 16, 16, 3, flat, 90));
    size_t jn = 0;
    unsigned char *jb = tu_read_file(jpath, &jn);
    tdcm_opts dj = {.photometric = "YBR_FULL_422", .samples = 3, .bits = 8, .bits_stored = 8, .jpeg = jb, .jpeg_len = jn};
    dcm = tdcm_write(NULL, 16, 16, NULL, &dj, &n);
    assert_non_null(dcm);
    sweep_image("jpeg.dcm", dcm, n);
    free(dcm);
    free(jb);
    tu_rmtree(dir0);
    free(dir0);
    uint8_t pgm[14 + 16 * 16 * 2];
    memcpy(pgm, "P5 16 16 4095\n", 14);
    for (int i = 0; i < 16 * 16; i++)
        pgm[14 + 2 * i] = (uint8_t)(v[i] >> 8), pgm[15 + 2 * i] = (uint8_t)v[i];
    sweep_image("scan.pgm", pgm, sizeof pgm);
#ifdef CNNL_HAVE_TIFF
    char *dir = tu_tempdir();
    uint8_t *tif = tiff_bytes(dir, "a.tif", 1, 16, COMPRESSION_LZW, 0, &n);
    sweep_image("scan16.tif", tif, n);
    free(tif);
    tif = tiff_bytes(dir, "b.tif", 3, 8, COMPRESSION_NONE, 16, &n);
    sweep_image("tiled.tif", tif, n);
    free(tif);
    tu_rmtree(dir);
    free(dir);
#endif
}

/* ---- a network from a description (residual blocks, batch norm, adaptive pooling), then a
 * training step of it */

static const char *arch_json =
    "{\"input\": [2, 12, 12], \"layers\": ["
    "{\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 1},"
    "{\"type\": \"Residual\", \"name\": \"block\", \"layers\": ["
    "  {\"type\": \"Conv2d\", \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 1, \"groups\": 2},"
    "  {\"type\": \"BatchNorm2d\"}, {\"type\": \"ReLU\"}]},"
    "{\"type\": \"MaxPool2d\", \"kernel_size\": 2},"
    "{\"type\": \"AdaptiveAvgPool2d\", \"output_size\": 1}, {\"type\": \"Flatten\"},"
    "{\"type\": \"Dropout\", \"p\": 0.25}, {\"type\": \"Linear\", \"out_features\": 2}]}";

static cnnl_status arch_step(const char *json, cnnl_model **out, double *wsum)
{
    int64_t xs[4] = {2, 2, 12, 12}, gs[2] = {2, 2};
    cnnl_tensor *x = NULL, *g = NULL;
    cnnl_model *m = NULL;
    cnnl_optimizer *o = NULL;
    const cnnl_tensor *y = NULL;
    int32_t labels[2] = {0, 1};
    float loss = 0;
    cnnl_adam_opts ao = cnnl_adam_opts_default();
    cnnl_status st = cnnl_tensor_create(&x, 4, xs);
    if (st == CNNL_OK)
        st = cnnl_tensor_create(&g, 2, gs);
    if (st == CNNL_OK) {
        float *d = cnnl_tensor_data(x);
        for (size_t i = 0; i < cnnl_tensor_numel(x); i++)
            d[i] = (float)((i * 29) % 53) / 53.0f - 0.5f;
        st = cnnl_model_from_json(&m, json, 5);
    }
    if (st == CNNL_OK)
        st = cnnl_optimizer_adam(&o, m, &ao);
    if (st == CNNL_OK)
        st = cnnl_model_set_training(m, true);
    if (st == CNNL_OK)
        st = cnnl_model_zero_grad(m);
    if (st == CNNL_OK)
        st = cnnl_model_forward(m, x, &y);
    if (st == CNNL_OK)
        st = cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, y, labels, 2, CNNL_REDUCE_MEAN, &loss, g);
    if (st == CNNL_OK)
        st = cnnl_model_backward(m, g);
    if (st == CNNL_OK)
        st = cnnl_optimizer_step(o);
    if (st == CNNL_OK)
        *wsum = weight_sum(m);
    cnnl_optimizer_free(o);
    cnnl_tensor_free(x);
    cnnl_tensor_free(g);
    if (st == CNNL_OK && out)
        *out = m;
    else
        cnnl_model_free(m);
    return st;
}

static void test_arch_step(void **state)
{
    (void)state;
    double ref = 0, w = 0;
    assert_ok(arch_step(arch_json, NULL, &ref));
    long n;
    for (n = 0; n < MAX_N; n++) {
        cnnl__alloc_fail_after(n);
        cnnl_status st = arch_step(arch_json, NULL, &w);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        if (seen <= n) {
            assert_ok(st);
            assert_true(w == ref);
            break;
        }
        expect_enomem("description and step", n, st);
    }
    assert_true(n > 0 && n < MAX_N);
    report("description and step", n, n);
}

/* ---- Grad-CAM of one image: the model stays usable, the map equals the reference */

static void test_gradcam(void **state)
{
    (void)state;
    cnnl_model *m = NULL;
    cnnl_optimizer *o = NULL;
    make_net(&m, &o);
    cnnl_optimizer_free(o);
    assert_ok(cnnl_model_set_training(m, false));
    int64_t xs[4] = {1, 3, 32, 32};
    cnnl_tensor *img = NULL;
    assert_ok(cnnl_tensor_create(&img, 4, xs));
    float *d = cnnl_tensor_data(img);
    for (size_t i = 0; i < cnnl_tensor_numel(img); i++)
        d[i] = (float)((i * 17) % 89) / 89.0f;
    float ref[32 * 32], heat[32 * 32];
    cnnl_gradcam_info info;
    assert_ok(cnnl_gradcam(m, img, NULL, -1, ref, &info));
    long n;
    for (n = 0; n < MAX_N; n++) {
        cnnl__alloc_fail_after(n);
        cnnl_status st = cnnl_gradcam(m, img, NULL, -1, heat, &info);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        if (seen <= n) {
            assert_ok(st);
            assert_memory_equal(heat, ref, sizeof ref);
            break;
        }
        expect_enomem("Grad-CAM", n, st);
    }
    assert_true(n > 0 && n < MAX_N);
    report("Grad-CAM", n, n);
    cnnl_tensor_free(img);
    cnnl_model_free(m);
}

/* ---- loading a checkpoint into a model and optimizer (documented: unchanged on failure) */

static void test_checkpoint_load(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    int64_t xs[4] = {2, 3, 32, 32}, gs[2] = {2, 4};
    cnnl_tensor *grad = NULL;
    assert_ok(cnnl_tensor_create(&batch_x, 4, xs));
    assert_ok(cnnl_tensor_create(&grad, 2, gs));
    float *xd = cnnl_tensor_data(batch_x);
    for (size_t i = 0; i < cnnl_tensor_numel(batch_x); i++)
        xd[i] = (float)((i * 13) % 97) / 97.0f;
    cnnl_model *m = NULL;
    cnnl_optimizer *o = NULL;
    float loss = 0;
    make_net(&m, &o);
    assert_ok(train_step(m, o, grad, &loss));
    cnnl_checkpoint *ck = NULL;
    assert_ok(cnnl_checkpoint_create(&ck));
    assert_ok(cnnl_checkpoint_set_epoch(ck, 3));
    assert_ok(cnnl_checkpoint_set_string(ck, "data", "/data/mri"));
    assert_ok(cnnl_checkpoint_save(path, m, o, ck));
    cnnl_checkpoint_free(ck);
    double saved_w = weight_sum(m);
    cnnl_optimizer_free(o);
    cnnl_model_free(m);

    long n;
    for (n = 0; n < MAX_N; n++) {
        make_net(&m, &o);
        double fresh_w = weight_sum(m);
        ck = NULL;
        cnnl__alloc_fail_after(n);
        cnnl_status st = cnnl_checkpoint_load(path, m, o, &ck);
        long seen = cnnl__alloc_fault_count();
        cnnl__alloc_fail_after(-1);
        if (seen <= n) {
            assert_ok(st);
            assert_true(weight_sum(m) == saved_w);
            assert_int_equal(cnnl_optimizer_step_count(o), 1);
            assert_int_equal(cnnl_checkpoint_epoch(ck), 3);
            assert_string_equal(cnnl_checkpoint_get_string(ck, "data"), "/data/mri");
            cnnl_checkpoint_free(ck);
            cnnl_optimizer_free(o);
            cnnl_model_free(m);
            break;
        }
        expect_enomem("checkpoint load", n, st);
        assert_null(ck);
        /* Model and optimizer are unchanged, and usable: the load again succeeds. */
        assert_true(weight_sum(m) == fresh_w);
        assert_int_equal(cnnl_optimizer_step_count(o), 0);
        assert_ok(cnnl_checkpoint_load(path, m, o, NULL));
        assert_true(weight_sum(m) == saved_w);
        cnnl_optimizer_free(o);
        cnnl_model_free(m);
    }
    assert_true(n > 0 && n < MAX_N);
    report("checkpoint load", n, n);
    cnnl_tensor_free(grad);
    cnnl_tensor_free(batch_x);
    batch_x = NULL;
    tu_rmtree(dir);
    free(dir);
}

/* ---- the check that tells a malformed JSON text from a parse that ran out of memory */

static void test_json_well_formed(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}", " [ ] ", "{\"a\": [1, -2.5e+3, 0, true, false, null, \"x\\u00e9\\n\"]}\n  ",
        "\"\\ud83d\\ude00\"", "-0.0E-7", "{\"\": {\"\": []}}",
    };
    static const char *const bad[] = {
        "", "{", "{\"a\" 1}", "{\"a\": 1,}", "[1 2]", "01", "1.", "+1", "1e", ".5", "tru", "nul",
        "\"open", "\"\\x\"", "\"\\ud83d\"", "\"\\ude00\"", "\"tab\there\"", "{} {}", "{'a': 1}",
        "[1, 2] x", "\"\\u12G4\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_true(cnnl__json_well_formed(good[i], strlen(good[i])));
        cJSON *j = cJSON_Parse(good[i]); /* cJSON agrees */
        assert_non_null(j);
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cnnl__json_well_formed(bad[i], strlen(bad[i]))) {
            print_error("accepted malformed JSON: %s\n", bad[i]);
            fail();
        }
    /* A length excludes what follows; cJSON's limits: 1000 levels, 63-character numbers. */
    assert_true(cnnl__json_well_formed("[1]garbage", 3));
    char deep[2100];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    assert_true(cnnl__json_well_formed(deep, 2000));
    memset(deep, '[', 1001);
    memset(deep + 1001, ']', 1001);
    assert_false(cnnl__json_well_formed(deep, 2002));
    char num[80];
    memset(num, '7', 64);
    assert_false(cnnl__json_well_formed(num, 64));
    assert_true(cnnl__json_well_formed(num, 63));
}

int main(void)
{
    cnnl_set_num_threads(1); /* one allocation order */
    cnnl_set_log_level(CNNL_LOG_ERROR);
    cJSON_Hooks hooks = {json_malloc, free};
    cJSON_InitHooks(&hooks); /* cJSON's allocations join the sweep */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_well_formed),
        cmocka_unit_test(test_training_step),
        cmocka_unit_test(test_model_load),
        cmocka_unit_test(test_dataset_load),
        cmocka_unit_test(test_image_formats),
        cmocka_unit_test(test_arch_step),
        cmocka_unit_test(test_gradcam),
        cmocka_unit_test(test_checkpoint_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
