/*
 * Hostile image files: a JPEG Huffman table with more codes than a table can hold, declared
 * sizes beyond the pixel limit or beyond what the file can hold (decompression bombs), a
 * truncated file of every format stb_image reads, out of memory while decoding a valid image,
 * and the bound on the pixels decoded at once over all loading threads.
 */
#include "test_util.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "data/data_impl.h"
#include "fixtures.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* cnnl_image_load of @p path with @p o: @p status and a message naming the file and @p why. */
static void expect_refused(const char *path, const cnnl_dataset_opts *o, cnnl_status status, const char *why)
{
    cnnl_tensor *x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(&x, path, o), status, path);
    if (!strstr(cnnl_last_error(), why)) {
        print_error("\"%s\" lacks \"%s\"\n", cnnl_last_error(), why);
        fail();
    }
    assert_null(x);
}

static cnnl_dataset_opts small_opts(void)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    return o;
}

/* The image loads, and its first value is @p first / 255 (to within a JPEG's error). */
static void expect_loads(const char *path, int first, int tolerance)
{
    cnnl_dataset_opts o = small_opts();
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_image_load(&x, path, &o));
    int v = (int)(cnnl_tensor_data_const(x)[0] * 255.0f + 0.5f);
    if (abs(v - first) > tolerance) {
        print_error("%s: first value %d, want %d\n", path, v, first);
        fail();
    }
    cnnl_tensor_free(x);
}

static uint8_t *gradient(int w, int h, int comp)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * (size_t)comp);
    assert_non_null(p);
    for (int i = 0; i < w * h * comp; i++)
        p[i] = (uint8_t)(i % 200 + 20);
    return p;
}

/* Offset of the first JPEG marker @p m (0xFF m) after the start-of-image marker. */
static size_t jpeg_find(const uint8_t *d, size_t n, uint8_t m)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (d[i] == 0xFF && d[i + 1] == m)
            return i;
    fail_msg("marker %02x not found", m);
    return 0;
}

/* A Huffman table segment declaring 510 codes (a table holds at most 256): stb_image 2.27
 * writes past its tables; libjpeg-turbo refuses it. Inserted after the start-of-image marker. */
static void test_jpeg_dht_overflow(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "dht.jpg");
    uint8_t *px = gradient(16, 16, 1);
    fx_jpg(path, 16, 16, 1, px);
    free(px);
    size_t len;
    uint8_t *d = tu_read_file(path, &len);
    enum { SEG = 2 + 2 + 1 + 16 + 510 };
    uint8_t *out = malloc(len + SEG);
    assert_non_null(out);
    memcpy(out, d, 2);
    uint8_t *s = out + 2;
    s[0] = 0xFF;
    s[1] = 0xC4;
    s[2] = (uint8_t)((SEG - 2) >> 8);
    s[3] = (uint8_t)(SEG - 2);
    s[4] = 0x00; /* DC table 0 */
    memset(s + 5, 0, 16);
    s[5 + 14] = 255; /* 255 codes of 15 bits and 255 of 16: 510 */
    s[5 + 15] = 255;
    for (int i = 0; i < 510; i++)
        s[21 + i] = (uint8_t)i;
    memcpy(out + 2 + SEG, d + 2, len - 2);
    tu_write_file(path, out, len + SEG);
    free(out);
    free(d);
    cnnl_dataset_opts o = small_opts();
    expect_refused(path, &o, CNNL_EFORMAT, "Huffman");
}

/* A 1 KB JPEG whose frame header declares 16000x16000. */
static void test_jpeg_bomb(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "bomb.jpg");
    uint8_t *px = gradient(32, 32, 1);
    fx_jpg(path, 32, 32, 1, px);
    free(px);
    size_t len;
    uint8_t *d = tu_read_file(path, &len);
    assert_true(len < 2048);
    size_t sof = jpeg_find(d, len, 0xC0);
    d[sof + 5] = 16000 >> 8; /* height, then width */
    d[sof + 6] = 16000 & 255;
    d[sof + 7] = 16000 >> 8;
    d[sof + 8] = 16000 & 255;
    tu_write_file(path, d, len);
    free(d);
    cnnl_dataset_opts o = small_opts();
    expect_refused(path, &o, CNNL_EFORMAT, "declares 16000x16000 = 256000000 pixels; the limit is 89478485 pixels");
    o.max_pixels = INT64_MAX;
    expect_refused(path, &o, CNNL_EFORMAT, "beyond JPEG's largest compression ratio");
}

/* A header alone declaring 16384x16384, in TGA and in PPM. */
static void test_header_only_bombs(void **state)
{
    (void)state;
    uint8_t tga[18] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0x40, 24, 0};
    const char *tga_path = fx_path(fx_tmp, "bomb.tga");
    tu_write_file(tga_path, tga, sizeof tga);
    const char *ppm_path = fx_path(fx_tmp, "bomb.ppm");
    const char ppm[] = "P6\n16384 16384\n255\n";
    tu_write_file(ppm_path, ppm, sizeof ppm - 1);
    cnnl_dataset_opts o = small_opts();
    expect_refused(tga_path, &o, CNNL_EFORMAT, "declares 16384x16384 = 268435456 pixels; the limit is 89478485");
    expect_refused(ppm_path, &o, CNNL_EFORMAT, "declares 16384x16384 = 268435456 pixels; the limit is 89478485");
    o.max_pixels = INT64_MAX;
    expect_refused(tga_path, &o, CNNL_EFORMAT, "truncated TGA: declares 16384x16384 pixels, 805306368 bytes of pixel data, but the file holds 0");
    expect_refused(ppm_path, &o, CNNL_EFORMAT, "truncated PNM: declares 16384x16384 pixels, 805306368 bytes of pixel data, but the file holds 0");
}

static void test_max_pixels_option(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "rect.png");
    fx_png_const(path, 40, 30, 77);
    cnnl_dataset_opts o = small_opts();
    o.max_pixels = 1199;
    expect_refused(path, &o, CNNL_EFORMAT, "declares 40x30 = 1200 pixels; the limit is 1199 pixels");
    o.max_pixels = 1200;
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_image_load(&x, path, &o));
    cnnl_tensor_free(x);
    o.max_pixels = 0; /* the default */
    assert_ok(cnnl_image_load(&x, path, &o));
    cnnl_tensor_free(x);
    o.max_pixels = -1;
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EINVAL, "max_pixels is -1");
    assert_int_equal(cnnl_dataset_opts_default().max_pixels, CNNL_DATA_MAX_PIXELS);
}

/* ---- truncation, every format ---- */

static void put_be16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    put_be16(p, v >> 16);
    put_be16(p + 2, v & 0xFFFF);
}

/* An 8-bit RGB PSD without compression. */
static void write_psd(const char *path, int w, int h, const uint8_t *rgb)
{
    size_t n = 26 + 12 + 2 + (size_t)w * (size_t)h * 3;
    uint8_t *d = calloc(1, n);
    assert_non_null(d);
    memcpy(d, "8BPS", 4);
    put_be16(d + 4, 1);
    put_be16(d + 12, 3);
    put_be32(d + 14, (uint32_t)h);
    put_be32(d + 18, (uint32_t)w);
    put_be16(d + 22, 8);
    put_be16(d + 24, 3);  /* RGB; then three empty sections and compression 0 */
    uint8_t *p = d + 40;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++)
            *p++ = rgb[3 * i + c];
    tu_write_file(path, d, n);
    free(d);
}

/* A GIF with a gray palette of 128 entries whose 8-bit LZW codes are all literals (a clear
 * code every 100 pixels keeps the code size at 8 bits). */
static void write_gif(const char *path, int w, int h, const uint8_t *gray)
{
    size_t cap = 13 + 3 * 128 + 10 + 1 + (size_t)w * (size_t)h * 2 + 64;
    uint8_t *d = malloc(cap), *codes = malloc((size_t)w * (size_t)h * 2 + 4);
    assert_non_null(d);
    assert_non_null(codes);
    size_t n = 0, nc = 0;
    memcpy(d, "GIF89a", 6);
    n = 6;
    d[n++] = (uint8_t)w; d[n++] = (uint8_t)(w >> 8);
    d[n++] = (uint8_t)h; d[n++] = (uint8_t)(h >> 8);
    d[n++] = 0x86; /* global colour table of 2^(6+1) = 128 entries */
    d[n++] = 0;
    d[n++] = 0;
    for (int i = 0; i < 128; i++)
        for (int c = 0; c < 3; c++)
            d[n++] = (uint8_t)(2 * i);
    d[n++] = 0x2C;
    memset(d + n, 0, 8);
    d[n + 4] = (uint8_t)w; d[n + 5] = (uint8_t)(w >> 8);
    d[n + 6] = (uint8_t)h; d[n + 7] = (uint8_t)(h >> 8);
    n += 8;
    d[n++] = 0;
    d[n++] = 7; /* minimum code size: codes start at 8 bits */
    for (int i = 0; i < w * h; i++) {
        if (i % 100 == 0)
            codes[nc++] = 128; /* clear */
        codes[nc++] = (uint8_t)(gray[i] / 2);
    }
    codes[nc++] = 129; /* end of information */
    for (size_t i = 0; i < nc; i += 255) {
        size_t k = nc - i < 255 ? nc - i : 255;
        d[n++] = (uint8_t)k;
        memcpy(d + n, codes + i, k);
        n += k;
    }
    d[n++] = 0;
    d[n++] = 0x3B;
    tu_write_file(path, d, n);
    free(codes);
    free(d);
}

static void write_ppm(const char *path, int w, int h, const uint8_t *rgb)
{
    char head[64];
    int k = snprintf(head, sizeof head, "P6\n%d %d\n255\n", w, h);
    size_t n = (size_t)k + (size_t)w * (size_t)h * 3;
    uint8_t *d = malloc(n);
    assert_non_null(d);
    memcpy(d, head, (size_t)k);
    memcpy(d + k, rgb, (size_t)w * (size_t)h * 3);
    tu_write_file(path, d, n);
    free(d);
}

/* Each format: the whole file loads with the right first pixel; its first half is refused
 * as truncated (stb_image alone fills the missing part). */
static void test_truncated_every_format(void **state)
{
    (void)state;
    enum { W = 40, H = 30 };
    uint8_t *rgb = gradient(W, H, 3);
    uint8_t *gray = gradient(W, H, 1);
    for (int i = 0; i < W * H; i++) /* a colour image whose first pixel is (100, 60, 20) */
        rgb[3 * i] = (uint8_t)(rgb[3 * i + 1] + 40);
    rgb[0] = 100, rgb[1] = 60, rgb[2] = 20;
    for (int i = 0; i < W * H; i++)
        gray[i] = (uint8_t)(gray[i] & 0xFE);
    struct {
        const char *name;
        int first; /* first value of the 8x8 result: R of the top-left corner area */
    } cases[] = {{"a.bmp", 0}, {"a.tga", 0}, {"rle.tga", 0}, {"a.ppm", 0}, {"a.psd", 0},
                 {"a.gif", 0}, {"a.png", 0}, {"a.jpg", 0}};
    size_t nc = sizeof cases / sizeof cases[0];
    stbi_write_bmp(fx_path(fx_tmp, "a.bmp"), W, H, 3, rgb);
    stbi_write_tga_with_rle = 0;
    stbi_write_tga(fx_path(fx_tmp, "a.tga"), W, H, 3, rgb);
    stbi_write_tga_with_rle = 1;
    stbi_write_tga(fx_path(fx_tmp, "rle.tga"), W, H, 3, rgb);
    write_ppm(fx_path(fx_tmp, "a.ppm"), W, H, rgb);
    write_psd(fx_path(fx_tmp, "a.psd"), W, H, rgb);
    write_gif(fx_path(fx_tmp, "a.gif"), W, H, gray);
    fx_png(fx_path(fx_tmp, "a.png"), W, H, 3, rgb);
    fx_jpg(fx_path(fx_tmp, "a.jpg"), W, H, 3, rgb);
    /* The reference: the PNG (lossless) through the same resize. */
    cnnl_dataset_opts o = small_opts();
    cnnl_tensor *ref = NULL, *ref_gray = NULL;
    assert_ok(cnnl_image_load(&ref, fx_path(fx_tmp, "a.png"), &o));
    fx_png(fx_path(fx_tmp, "g.png"), W, H, 1, gray);
    assert_ok(cnnl_image_load(&ref_gray, fx_path(fx_tmp, "g.png"), &o));
    for (size_t i = 0; i < nc; i++) {
        const cnnl_tensor *want = strcmp(cases[i].name, "a.gif") == 0 ? ref_gray : ref;
        cases[i].first = (int)(cnnl_tensor_data_const(want)[0] * 255.0f + 0.5f);
        char path[4096];
        snprintf(path, sizeof path, "%s", fx_path(fx_tmp, cases[i].name));
        expect_loads(path, cases[i].first, strstr(path, ".jpg") ? 3 : 0);
        tu_cut_file(path, 1, 2);
        cnnl_tensor *x = (cnnl_tensor *)1;
        cnnl_status st = cnnl_image_load(&x, path, &o);
        if (st != CNNL_EFORMAT || !strstr(cnnl_last_error(), "truncated") || !strstr(cnnl_last_error(), path)) {
            print_error("%s cut in half: %s \"%s\"\n", cases[i].name, cnnl_status_string(st), cnnl_last_error());
            fail();
        }
        assert_null(x);
    }
    /* Radiance HDR (run-length scanlines): stb_image maps it to 8 bits by its own curve, so
     * only the refusal of the cut file is compared. */
    float *hdr = malloc(sizeof(float) * W * H * 3);
    assert_non_null(hdr);
    for (int i = 0; i < W * H * 3; i++)
        hdr[i] = (float)rgb[i] / 255.0f;
    const char *hdr_path = fx_path(fx_tmp, "a.hdr");
    assert_true(stbi_write_hdr(hdr_path, W, H, 3, hdr) != 0);
    free(hdr);
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_image_load(&x, hdr_path, &o));
    cnnl_tensor_free(x);
    tu_cut_file(hdr_path, 1, 2);
    expect_refused(hdr_path, &o, CNNL_EFORMAT, "truncated");
    cnnl_tensor_free(ref);
    cnnl_tensor_free(ref_gray);
    free(rgb);
    free(gray);
}

/* ---- out of memory ---- */

#ifndef UNDER_ASAN
/* In a child process limited to its current address space plus 24 MB, loading a valid
 * 6000x6000 image (36 MB of pixels) fails with CNNL_ENOMEM, not as a bad file. */
static void expect_enomem_in_child(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1)
            _exit(10);
        fclose(f);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (24u << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(11);
        cnnl_dataset_opts o = small_opts();
        cnnl_tensor *x = NULL;
        cnnl_status st = cnnl_image_load(&x, path, &o);
        if (st != CNNL_ENOMEM) {
            fprintf(stderr, "%s: %s \"%s\", want CNNL_ENOMEM\n", path, cnnl_status_string(st), cnnl_last_error());
            _exit(12);
        }
        _exit(strstr(cnnl_last_error(), "out of memory") && strstr(cnnl_last_error(), path) ? 0 : 13);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

static void test_out_of_memory_is_enomem(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    skip(); /* the sanitizer's shadow memory does not fit under an address-space limit */
#else
    enum { S = 6000 };
    uint8_t *p = malloc((size_t)S * S);
    assert_non_null(p);
    for (size_t i = 0; i < (size_t)S * S; i++)
        p[i] = (uint8_t)(i / S);
    fx_png(fx_path(fx_tmp, "big.png"), S, S, 1, p);
    stbi_write_jpg(fx_path(fx_tmp, "big.jpg"), S, S, 1, p, 50);
    free(p);
    expect_enomem_in_child(fx_path(fx_tmp, "big.png"));
    expect_enomem_in_child(fx_path(fx_tmp, "big.jpg"));
#endif
}

/* ---- pixels in flight ---- */

static void test_pixels_in_flight_bounded(void **state)
{
    (void)state;
    fx_mkdir(fx_path(fx_tmp, "c"));
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "c/%d.png", i);
        fx_png_const(fx_path(fx_tmp, name), 300, 300, (uint8_t)(10 * i));
    }
    int saved = cnnl_get_num_threads();
    assert_ok(cnnl_set_num_threads(4));
    cnnl_dataset_opts o = small_opts();
    o.max_pixels = 150000; /* one 300x300 image at a time */
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    assert_int_equal(cnnl_dataset_count(ds), 8);
    assert_int_equal(ds->peak_pixels, 90000);
    cnnl_dataset_free(ds);
    o.max_pixels = 200000; /* two at a time at most */
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    assert_true(ds->peak_pixels >= 90000 && ds->peak_pixels <= 180000);
    cnnl_dataset_free(ds);
    assert_ok(cnnl_set_num_threads(saved));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_out_of_memory_is_enomem, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_jpeg_dht_overflow, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_jpeg_bomb, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_only_bombs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_max_pixels_option, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_every_format, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pixels_in_flight_bounded, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
