/*
 * Single-image load: the values equal the dataset's for the same file under every option
 * combination, the tensor has shape (1, C, H, W), and arguments and files are checked.
 * (Each bad file of the folder loader's cases is also loaded alone in test_bad_input.c.)
 */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_impl.h"
#include "image_write.h"
#ifdef CNNL_HAVE_TIFF
#include <tiffio.h>
#endif
#include "fixtures.h"

/* A gray PNG, a colour PNG, a colour PNG whose channels are equal and a colour JPEG, of odd
 * sizes so that both shrinking and enlarging are exercised. */
static void write_images(void)
{
    enum { W = 37, H = 23 };
    uint8_t gray[W * H], rgb[W * H * 3], rgb_gray[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        gray[i] = (uint8_t)(i * 13 + i / W * 7);
        for (int c = 0; c < 3; c++) {
            rgb[3 * i + c] = (uint8_t)(i * (5 + 3 * c) + c * 40);
            rgb_gray[3 * i + c] = gray[i];
        }
    }
    fx_mkdir(fx_path(fx_tmp, "a"));
    fx_png(fx_path(fx_tmp, "a/gray.png"), W, H, 1, gray);
    fx_png(fx_path(fx_tmp, "a/rgb.png"), W, H, 3, rgb);
    fx_png(fx_path(fx_tmp, "a/rgb_gray.png"), W, H, 3, rgb_gray);
    fx_jpg(fx_path(fx_tmp, "a/photo.jpg"), W, H, 3, rgb);
    fx_png(fx_path(fx_tmp, "a/small.png"), 5, 3, 1, gray);
}

/* Every image of the folder loaded alone equals the dataset's image, bit for bit. */
static void compare_with_dataset(const cnnl_dataset_opts *o)
{
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, o));
    assert_int_equal(cnnl_dataset_count(ds), 5);
    size_t n = (size_t)o->channels * (size_t)o->size * (size_t)o->size;
    float *want = malloc(n * sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < cnnl_dataset_count(ds); i++) {
        assert_ok(cnnl_dataset_get(ds, i, want));
        cnnl_tensor *x = NULL;
        assert_ok(cnnl_image_load(&x, fx_path(fx_tmp, cnnl_dataset_name(ds, i)), o));
        assert_int_equal(cnnl_tensor_ndim(x), 4);
        assert_int_equal(cnnl_tensor_dim(x, 0), 1);
        assert_int_equal(cnnl_tensor_dim(x, 1), o->channels);
        assert_int_equal(cnnl_tensor_dim(x, 2), o->size);
        assert_int_equal(cnnl_tensor_dim(x, 3), o->size);
        if (memcmp(cnnl_tensor_data_const(x), want, n * sizeof *want) != 0) {
            print_error("%s differs from the dataset's (channels %d, size %d, norm %d)\n",
                        cnnl_dataset_name(ds, i), o->channels, o->size, (int)o->norm.kind);
            fail();
        }
        cnnl_tensor_free(x);
    }
    free(want);
    cnnl_dataset_free(ds);
}

static void test_equals_dataset(void **state)
{
    (void)state;
    write_images();
    const int sizes[2] = {16, 48};
    for (int channels = 1; channels <= 3; channels += 2)
        for (int kind = CNNL_NORM_UNIT; kind <= CNNL_NORM_MEAN_STD; kind++)
            for (int s = 0; s < 2; s++) {
                cnnl_dataset_opts o = cnnl_dataset_opts_default();
                o.size = sizes[s];
                o.channels = channels;
                o.norm.kind = (cnnl_norm_kind)kind;
                if (kind == CNNL_NORM_MEAN_STD)
                    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, channels, {0.485f, 0.456f, 0.406f},
                                                  {0.229f, 0.224f, 0.225f}};
                compare_with_dataset(&o);
            }
}

/* Values checked directly: a constant gray image under each normalization. */
static void test_values(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "flat.png");
    fx_png_const(path, 9, 7, 51);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 4;
    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, 3, {0.1f, 0.2f, 0.3f}, {0.5f, 0.25f, 2.0f}};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_image_load(&x, path, &o));
    const float *v = cnnl_tensor_data_const(x);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 16; p++)
            assert_float_equal(v[c * 16 + p], (0.2 - o.norm.mean[c]) / o.norm.std[c], 1e-6);
    cnnl_tensor_free(x);
    o.norm.kind = CNNL_NORM_SYMMETRIC;
    o.channels = 1;
    assert_ok(cnnl_image_load(&x, path, &o));
    assert_int_equal(cnnl_tensor_numel(x), 16);
    for (int p = 0; p < 16; p++)
        assert_float_equal(cnnl_tensor_data_const(x)[p], 51 / 127.5 - 1.0, 1e-6);
    cnnl_tensor_free(x);
    assert_ok(cnnl_image_load(&x, path, NULL)); /* defaults: 3 x 512 x 512 in [0, 1] */
    assert_int_equal(cnnl_tensor_dim(x, 1), 3);
    assert_int_equal(cnnl_tensor_dim(x, 3), 512);
    assert_float_equal(cnnl_tensor_data_const(x)[3 * 512 * 512 - 1], 0.2, 1e-6);
    cnnl_tensor_free(x);
}

/* Encoded bytes in memory give exactly what the file gives; broken bytes name the buffer. */
static void test_memory(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "mem.png");
    fx_png_const(path, 9, 7, 51);
    size_t n = 0;
    unsigned char *bytes = tu_read_file(path, &n);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_tensor *a = NULL, *b = NULL;
    assert_ok(cnnl_image_load(&a, path, &o));
    assert_ok(cnnl_image_load_memory(&b, bytes, n, "scan-in-memory", &o));
    assert_int_equal(cnnl_tensor_numel(a), cnnl_tensor_numel(b));
    assert_memory_equal(cnnl_tensor_data_const(a), cnnl_tensor_data_const(b), cnnl_tensor_numel(a) * sizeof(float));
    cnnl_tensor_free(b);
    b = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load_memory(&b, bytes, 20, "scan-in-memory", &o), CNNL_EFORMAT, "scan-in-memory");
    assert_null(b);
    cnnl_tensor_free(a);
    free(bytes);
}

static void test_arguments_and_files(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "big.png");
    fx_png_const(path, 40, 30, 1);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_tensor *x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(NULL, path, &o), CNNL_EINVAL, "cnnl_image_load: out is NULL");
    assert_status_msg(cnnl_image_load(&x, NULL, &o), CNNL_EINVAL, "cnnl_image_load: path is NULL");
    assert_null(x);
    o.channels = 2;
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EINVAL, "cnnl_image_load: channels is 2");
    o.channels = 1;
    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, 3, {0}, {1, 1, 1}};
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EINVAL, "normalization has 3 channels; the images have 1");
    o.norm = cnnl_dataset_opts_default().norm;
    o.max_dim = 32;
    x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EFORMAT, "big.png: declares 40x30 pixels; the limit is 32");
    assert_null(x);
    o.max_dim = 40;
    assert_ok(cnnl_image_load(&x, path, &o));
    cnnl_tensor_free(x);
    const char *missing = fx_path(fx_tmp, "missing.png");
    assert_status_msg(cnnl_image_load(&x, missing, &o), CNNL_ENOTFOUND, missing);
    assert_non_null(strstr(cnnl_last_error(), "No such file"));
    assert_null(x);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An uncompressed RGB Photoshop file with 16-bit samples (planar: all R, all G, all B). */
static void psd16(const char *path, int w, int h, const uint16_t *v)
{
    uint8_t head[26 + 12 + 2] = {'8', 'B', 'P', 'S', 0, 1}; /* then 6 reserved bytes */
    head[13] = 3;                                            /* channels */
    put32(head + 14, (uint32_t)h);
    put32(head + 18, (uint32_t)w);
    head[23] = 16; /* depth */
    head[25] = 3;  /* RGB; the mode data, resource and layer sections are empty; raw data */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(head, 1, sizeof head, f);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++) {
            uint8_t be[2] = {(uint8_t)(v[3 * i + c] >> 8), (uint8_t)v[3 * i + c]};
            fwrite(be, 1, 2, f);
        }
    assert_int_equal(fclose(f), 0);
}

static cnnl_tensor *load_or_fail(const char *path, const cnnl_dataset_opts *o)
{
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_image_load(&x, path, o));
    return x;
}

static void assert_same_tensor(const cnnl_tensor *a, const cnnl_tensor *b, const char *what)
{
    assert_int_equal(cnnl_tensor_numel(a), cnnl_tensor_numel(b));
    if (memcmp(cnnl_tensor_data_const(a), cnnl_tensor_data_const(b), cnnl_tensor_numel(a) * sizeof(float))) {
        print_error("%s differs from the 8-bit image\n", what);
        fail();
    }
}

/* The file @p name of the test folder, loaded with @p o, equals @p ref bit for bit. */
static void assert_file_equals(const char *name, const cnnl_tensor *ref, const cnnl_dataset_opts *o)
{
    cnnl_tensor *x = load_or_fail(fx_path(fx_tmp, name), o);
    assert_same_tensor(x, ref, name);
    cnnl_tensor_free(x);
}

/* 16-bit samples are scaled by the image's largest one: 12-bit values (v x 16, largest 4080)
 * and full-range ones (v x 257) give exactly the 8-bit image of v, in PNG and PNM, gray and
 * colour, and in an RGB Photoshop file; values kept below 4096 with a largest sample of 1000 are stretched to 255; an
 * all-zero image stays 0; a truncated 16-bit file is refused. */
static void test_wide_samples(void **state)
{
    (void)state;
    enum { W = 16, H = 16, N = W * H };
    uint8_t v8[N * 3];
    uint16_t v12[N * 3], vfull[N * 3], zero[N * 3] = {0};
    for (int i = 0; i < N * 3; i++) {
        v8[i] = (uint8_t)(i * 37 % 256);
        v12[i] = (uint16_t)(v8[i] * 16);
        vfull[i] = (uint16_t)(v8[i] * 257);
    }
    v8[5] = 255, v12[5] = 255 * 16, vfull[5] = 65535;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 16;
    for (int comp = 1; comp <= 3; comp += 2) {
        o.channels = comp;
        fx_png(fx_path(fx_tmp, "ref.png"), W, H, comp, v8);
        cnnl_tensor *ref = load_or_fail(fx_path(fx_tmp, "ref.png"), &o);
        const char *names[4] = {"12.png", "full.png", "12.pnm", "full.pnm"};
        for (int k = 0; k < 4; k++) {
            const uint16_t *v = k % 2 ? vfull : v12;
            if (k < 2)
                assert_true(tw_png16(fx_path(fx_tmp, names[k]), W, H, comp, v));
            else
                assert_true(tw_pnm16(fx_path(fx_tmp, names[k]), W, H, comp, k % 2 ? 65535 : 4095, v, 0));
            assert_file_equals(names[k], ref, &o);
        }
        if (comp == 3) {
            psd16(fx_path(fx_tmp, "12.psd"), W, H, v12);
            assert_file_equals("12.psd", ref, &o);
        }
        cnnl_tensor_free(ref);
    }
    /* largest sample 1000: 500 -> 127.5 rounds to 128, 1 -> 0.255 rounds to 0 */
    uint16_t s[N];
    for (int i = 0; i < N; i++)
        s[i] = i == 0 ? 1000 : i == 1 ? 1 : 500;
    o.channels = 1;
    o.norm.kind = CNNL_NORM_UNIT;
    assert_true(tw_png16(fx_path(fx_tmp, "s.png"), W, H, 1, s));
    cnnl_tensor *x = load_or_fail(fx_path(fx_tmp, "s.png"), &o);
    const float *p = cnnl_tensor_data_const(x);
    assert_float_equal(p[0], 1.0, 1e-6);
    assert_float_equal(p[1], 0.0, 1e-6);
    assert_float_equal(p[2], 128 / 255.0, 1e-6);
    assert_float_equal(p[N - 1], 128 / 255.0, 1e-6);
    cnnl_tensor_free(x);
    assert_true(tw_pnm16(fx_path(fx_tmp, "zero.pnm"), W, H, 1, 4095, zero, 0));
    x = load_or_fail(fx_path(fx_tmp, "zero.pnm"), &o);
    for (int i = 0; i < N; i++)
        assert_float_equal(cnnl_tensor_data_const(x)[i], 0.0, 0.0);
    cnnl_tensor_free(x);
    assert_true(tw_pnm16(fx_path(fx_tmp, "cut.pnm"), W, H, 1, 4095, v12, 3));
    x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(&x, fx_path(fx_tmp, "cut.pnm"), &o), CNNL_EFORMAT, "cut.pnm");
    assert_null(x);
}

/* The 16 x 16 test patterns of the DICOM and TIFF tests: gray (0 and 255 both used) and colour. */
static void patterns(uint8_t g[256], uint8_t rgb[256 * 3])
{
    for (int i = 0; i < 256; i++) {
        g[i] = (uint8_t)(i * 37 % 256);
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = (uint8_t)(i * (5 + 3 * c) + c * 40);
    }
    g[7] = 255, g[9] = 0, rgb[0] = 255;
}

/* A 16 x 16 pattern with @p comp channels written as PNG and loaded at size 16 with
 * @p comp channels (set in @p o): what another format's file of the same pixels must give. */
static cnnl_tensor *png_ref(int comp, const uint8_t *px, cnnl_dataset_opts *o)
{
    *o = cnnl_dataset_opts_default();
    o->size = 16;
    o->channels = comp;
    const char *path = fx_path(fx_tmp, comp == 1 ? "ref-gray.png" : "ref-colour.png");
    fx_png(path, 16, 16, comp, px);
    return load_or_fail(path, o);
}

/* Files @p a and @p b hold the colour pattern @p rgb: loaded with 3 channels they equal its
 * PNG, and with 1 channel the PNG's luma. Leaves @p o at 1 channel. */
static void assert_colour_files(const char *a, const char *b, const uint8_t *rgb, cnnl_dataset_opts *o)
{
    cnnl_tensor *ref = png_ref(3, rgb, o);
    assert_file_equals(a, ref, o);
    assert_file_equals(b, ref, o);
    cnnl_tensor_free(ref);
    o->channels = 1;
    ref = load_or_fail(fx_path(fx_tmp, "ref-colour.png"), o);
    assert_file_equals(a, ref, o);
    assert_file_equals(b, ref, o);
    cnnl_tensor_free(ref);
}

static void dcm(const char *name, int w, int h, const uint16_t *v, const tdcm_opts *o)
{
    size_t n = 0;
    uint8_t *b = tdcm_write(fx_path(fx_tmp, name), w, h, v, o, &n);
    assert_non_null(b);
    free(b);
}

static void dcm_refused(const char *name, int w, int h, const uint16_t *v, const tdcm_opts *o, const char *why)
{
    dcm(name, w, h, v, o);
    cnnl_dataset_opts d = cnnl_dataset_opts_default();
    d.size = 16;
    cnnl_tensor *x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(&x, fx_path(fx_tmp, name), &d), CNNL_EFORMAT, why);
    assert_non_null(strstr(cnnl_last_error(), name));
    assert_null(x);
}

/* DICOM: explicit and implicit VR, 8 and 16 bits (12 stored), signed samples with bits above
 * the stored ones set, MONOCHROME1, interleaved and planar RGB, a nested sequence of undefined
 * length before the pixels: each gives exactly the 8-bit image it encodes; baseline JPEG in
 * fragments gives what the JPEG file gives. Other compressed transfer syntaxes, several frames,
 * other colour models, truncation, a JPEG of another size and runaway nesting are refused with
 * a message naming the file and the reason. */
static void test_dicom(void **state)
{
    (void)state;
    enum { W = 16, H = 16, N = W * H };
    uint16_t g8[N], g12[N], inv[N], sgn[N], rgb[N * 3], planar[N * 3];
    uint8_t ref_g[N], ref_rgb[N * 3];
    patterns(ref_g, ref_rgb);
    for (int i = 0; i < N; i++) {
        g8[i] = ref_g[i];
        g12[i] = (uint16_t)(ref_g[i] * 16);
        inv[i] = (uint16_t)(255 - ref_g[i]);
        sgn[i] = (uint16_t)(int16_t)(ref_g[i] * 16 - 2048); /* two's complement in 16 bits */
        for (int c = 0; c < 3; c++) {
            rgb[3 * i + c] = ref_rgb[3 * i + c];
            planar[c * N + i] = ref_rgb[3 * i + c];
        }
    }
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    cnnl_tensor *ref = png_ref(1, ref_g, &o);
    struct {
        const char *name;
        const uint16_t *v;
        tdcm_opts o;
    } gray[] = {
        {"e8.dcm", g8, {.samples = 1, .bits = 8, .bits_stored = 8}},
        {"e12.dcm", g12, {.samples = 1, .bits = 16, .bits_stored = 12, .nesting = 3}},
        {"i12.dcm", g12, {.implicit_vr = true, .samples = 1, .bits = 16, .bits_stored = 12, .nesting = 2}},
        {"mono1.dcm", inv, {.photometric = "MONOCHROME1", .samples = 1, .bits = 8, .bits_stored = 8, .frames = 1}},
        {"signed.dcm", sgn, {.implicit_vr = true, .samples = 1, .bits = 16, .bits_stored = 12, .is_signed = true}},
    };
    for (size_t k = 0; k < sizeof gray / sizeof gray[0]; k++) {
        dcm(gray[k].name, W, H, gray[k].v, &gray[k].o);
        assert_file_equals(gray[k].name, ref, &o);
    }
    cnnl_tensor_free(ref);
    tdcm_opts co = {.photometric = "RGB", .samples = 3, .bits = 8, .bits_stored = 8};
    dcm("rgb.dcm", W, H, rgb, &co);
    co.planar = true;
    dcm("planar.dcm", W, H, planar, &co);
    assert_colour_files("rgb.dcm", "planar.dcm", ref_rgb, &o);
    /* and through the folder loader: a class folder of DICOM files */
    cnnl_dataset *ds = NULL;
    fx_mkdir(fx_path(fx_tmp, "set"));
    fx_mkdir(fx_path(fx_tmp, "set/a"));
    size_t n = 0;
    free(tdcm_write(fx_path(fx_tmp, "set/a/1.dcm"), W, H, g12, &gray[1].o, &n));
    assert_ok(cnnl_dataset_load_folder(&ds, fx_path(fx_tmp, "set"), &o));
    assert_int_equal(cnnl_dataset_count(ds), 1);
    cnnl_dataset_free(ds);

    /* baseline JPEG in fragments: the same tensor as the JPEG file itself, gray and colour */
    for (int comp = 1; comp <= 3; comp += 2) {
        o.channels = comp;
        fx_jpg(fx_path(fx_tmp, "j.jpg"), W, H, comp, comp == 1 ? ref_g : ref_rgb);
        size_t jn = 0;
        unsigned char *jb = tu_read_file(fx_path(fx_tmp, "j.jpg"), &jn);
        /* stb_image_write writes three components (YCbCr) even for a gray image */
        tdcm_opts jo = {.photometric = "YBR_FULL_422", .samples = 3, .bits = 8, .bits_stored = 8, .jpeg = jb,
                        .jpeg_len = jn};
        dcm("j.dcm", W, H, NULL, &jo);
        cnnl_tensor *a = load_or_fail(fx_path(fx_tmp, "j.jpg"), &o), *b = load_or_fail(fx_path(fx_tmp, "j.dcm"), &o);
        assert_same_tensor(b, a, "j.dcm");
        cnnl_tensor_free(a);
        cnnl_tensor_free(b);
        if (comp == 1) {
            dcm_refused("jsize.dcm", W + 2, H, NULL, &jo, "the JPEG data is 16x16 pixels; the header declares 18x16");
            jo.cut = 20;
            dcm_refused("jcut.dcm", W, H, NULL, &jo, "truncated");
            jo.cut = 0;
            jo.bits = 16;
            dcm_refused("j16.dcm", W, H, NULL, &jo, "baseline JPEG with 16 bits allocated");
        }
        free(jb);
    }
    o.channels = 1;
    tdcm_opts r = {.samples = 1, .bits = 16, .bits_stored = 12};
    r.transfer = "1.2.840.10008.1.2.4.70";
    dcm_refused("lossless.dcm", W, H, g12, &r, "transfer syntax 1.2.840.10008.1.2.4.70 is not supported");
    r.transfer = "1.2.840.10008.1.2.2";
    dcm_refused("big.dcm", W, H, g12, &r, "is not supported");
    r.transfer = NULL;
    r.frames = 2;
    dcm_refused("frames.dcm", W, H, g12, &r, "2 frames; one image per file");
    r.frames = 0;
    r.cut = 5;
    dcm_refused("cut.dcm", W, H, g12, &r, "truncated");
    r.cut = 0;
    r.nesting = 40;
    dcm_refused("deep.dcm", W, H, g12, &r, "nested too deeply");
    r.nesting = 0;
    r.bits = 32;
    dcm_refused("b32.dcm", W, H, g12, &r, "32 bits allocated");
    r.bits = 16;
    r.photometric = "YBR_FULL";
    r.samples = 3;
    dcm_refused("ybr.dcm", W, H, planar, &r, "photometric interpretation 'YBR_FULL'");
}

#ifdef CNNL_HAVE_TIFF
typedef tw_tiff_opts tif_opts;

static void tif(const char *name, int w, int h, const void *v, const tif_opts *o)
{
    assert_true(tw_tiff(fx_path(fx_tmp, name), w, h, v, o));
}

/* TIFF: 8-bit gray in strips, 12-bit gray compressed with LZW, signed 16-bit and float
 * samples, MINISWHITE at 8 and 16 bits, a gray palette, 8-bit RGB in tiles and 16-bit RGB
 * in planes each give exactly the 8-bit image they encode; image stacks, tiled 16-bit files,
 * NaN samples and truncated files are refused with a message naming the file. */
static void test_tiff(void **state)
{
    (void)state;
    enum { W = 16, H = 16, N = W * H };
    uint8_t g[N], rgb[N * 3], inv8[N], rgb8[N * 3];
    uint16_t g12[N], s16[N], inv16[N], rgb16[N * 3], pal[256];
    float gf[N];
    patterns(g, rgb);
    for (int i = 0; i < N; i++) {
        g12[i] = (uint16_t)(g[i] * 16);
        s16[i] = (uint16_t)(int16_t)(g[i] * 16 - 2048);
        inv8[i] = (uint8_t)(255 - g[i]);
        inv16[i] = (uint16_t)(4080 - g[i] * 16);
        gf[i] = (float)g[i] / 255.0f * 3.5f - 1.0f;
        for (int c = 0; c < 3; c++) {
            rgb8[3 * i + c] = rgb[3 * i + c];
            rgb16[3 * i + c] = (uint16_t)(rgb[3 * i + c] * 257);
        }
    }
    for (int i = 0; i < 256; i++)
        pal[i] = (uint16_t)(i * 257);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    cnnl_tensor *ref = png_ref(1, g, &o);
    struct {
        const char *name;
        const void *v;
        tif_opts t;
    } gray[] = {
        {"g8.tif", g, {1, 8, 0, PHOTOMETRIC_MINISBLACK, false, 0, 0, 0, NULL}},
        {"g12lzw.tif", g12, {1, 16, 0, PHOTOMETRIC_MINISBLACK, false, 0, COMPRESSION_LZW, 0, NULL}},
        {"s16.tif", s16, {1, 16, SAMPLEFORMAT_INT, PHOTOMETRIC_MINISBLACK, false, 0, 0, 0, NULL}},
        {"f32.tif", gf, {1, 32, SAMPLEFORMAT_IEEEFP, PHOTOMETRIC_MINISBLACK, false, 0, 0, 0, NULL}},
        {"white8.tif", inv8, {1, 8, 0, PHOTOMETRIC_MINISWHITE, false, 0, 0, 0, NULL}},
        {"white16.tif", inv16, {1, 16, 0, PHOTOMETRIC_MINISWHITE, false, 0, 0, 0, NULL}},
        {"pal.tif", g, {1, 8, 0, PHOTOMETRIC_PALETTE, false, 0, 0, 0, pal}},
    };
    for (size_t k = 0; k < sizeof gray / sizeof gray[0]; k++) {
        tif(gray[k].name, W, H, gray[k].v, &gray[k].t);
        assert_file_equals(gray[k].name, ref, &o);
    }
    cnnl_tensor_free(ref);
    tif_opts tiled = {3, 8, 0, PHOTOMETRIC_RGB, false, 16, 0, 0, NULL};
    tif_opts planes = {3, 16, 0, PHOTOMETRIC_RGB, true, 0, 0, 0, NULL};
    tif("tiled.tif", W, H, rgb8, &tiled);
    tif("planes.tif", W, H, rgb16, &planes);
    assert_colour_files("tiled.tif", "planes.tif", rgb, &o);
    struct {
        const char *name, *why;
        const void *v;
        tif_opts t;
    } bad[] = {
        {"stack.tif", "several pages", g, {1, 8, 0, PHOTOMETRIC_MINISBLACK, false, 0, 0, 2, NULL}},
        {"tiled16.tif", "tiled images with 16-bit samples", g12, {1, 16, 0, PHOTOMETRIC_MINISBLACK, false, 16, 0, 0, NULL}},
        {"nan.tif", "NaN", NULL, {1, 32, SAMPLEFORMAT_IEEEFP, PHOTOMETRIC_MINISBLACK, false, 0, 0, 0, NULL}},
    };
    float nan_img[N];
    memcpy(nan_img, gf, sizeof nan_img);
    nan_img[N / 2] = NAN;
    bad[2].v = nan_img;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tif(bad[k].name, W, H, bad[k].v, &bad[k].t);
        cnnl_tensor *x = (cnnl_tensor *)1;
        assert_status_msg(cnnl_image_load(&x, fx_path(fx_tmp, bad[k].name), &o), CNNL_EFORMAT, bad[k].why);
        assert_non_null(strstr(cnnl_last_error(), bad[k].name));
        assert_null(x);
    }
    /* truncated: the strips of an uncompressed file cut short */
    size_t n = 0;
    unsigned char *bytes = tu_read_file(fx_path(fx_tmp, "g8.tif"), &n);
    cnnl_tensor *x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load_memory(&x, bytes, n / 2, "half.tif", &o), CNNL_EFORMAT, "half.tif");
    assert_null(x);
    free(bytes);
}
#else
/* Without libtiff a TIFF file is refused by name. */
static void test_tiff(void **state)
{
    (void)state;
    static const unsigned char tiff[16] = {'I', 'I', 42, 0, 8, 0, 0, 0, 0, 0};
    cnnl_tensor *x = (cnnl_tensor *)1;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    assert_status_msg(cnnl_image_load_memory(&x, tiff, sizeof tiff, "scan.tif", &o), CNNL_EFORMAT,
                      "TIFF: not supported by this build");
    assert_null(x);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_equals_dataset, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_values, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_arguments_and_files, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_memory, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wide_samples, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_dicom, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tiff, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
