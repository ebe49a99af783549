/* Writes the seed corpora of the fuzz targets into DIR/<target>/ (see meson.build):
 *   image: every format stb_image reads, small (PNG grey/RGB/RGBA, JPEG grey/RGB, BMP, TGA raw
 *          and RLE, HDR flat and RLE, GIF, PSD raw and RLE, PIC, PPM, PGM);
 *   model: model files of the report network at 32x32 with and without metadata;
 *   checkpoint: checkpoints of the fuzz_checkpoint network (small_model.h).
 * Deterministic: the same build writes the same bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wmissing-prototypes"
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wshadow"
#  pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <stb_image_write.h>

#include "image_write.h"
#ifdef CNNL_HAVE_TIFF
#include <tiffio.h>
#endif

#include "small_model.h"

enum { W = 12, H = 10 };
static char dir[4096];

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s: %s\n", what, cnnl_last_error() ? cnnl_last_error() : strerror(errno));
    exit(1);
}

static const char *out(const char *target, const char *name)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    return path;
}

static void write_bytes(const char *name, const unsigned char *p, size_t n)
{
    const char *path = out("image", name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
}

/* A small picture: a gradient with a bright square, like a tiny scan. */
static void picture(unsigned char *p, int w, int h, int comp)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comp; c++) {
                int v = (x * 255 / (w - 1) + y * 17 + c * 60) & 255;
                if (x > w / 3 && x < 2 * w / 3 && y > h / 3 && y < 2 * h / 3)
                    v = 250 - c * 20;
                p[((size_t)y * w + x) * comp + c] = (unsigned char)(c == 3 ? 200 + x : v);
            }
}

typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put8(buf *b, unsigned v)
{
    b->b[b->n++] = (unsigned char)v;
}
static void put16be(buf *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}
static void put16le(buf *b, unsigned v)
{
    put8(b, v);
    put8(b, v >> 8);
}
static void put32be(buf *b, unsigned v)
{
    put16be(b, v >> 16);
    put16be(b, v & 0xFFFF);
}

static void gif(void)
{
    /* 8x8, 4-colour palette, LZW with a clear code after every two literals so the code
     * width stays 3 bits. */
    buf b = {.n = 0};
    put(&b, "GIF89a", 6);
    put16le(&b, 8);
    put16le(&b, 8);
    put8(&b, 0x81); /* global colour table of 4 entries */
    put8(&b, 0);
    put8(&b, 0);
    static const unsigned char pal[12] = {0, 0, 0, 90, 90, 90, 180, 180, 180, 255, 255, 255};
    put(&b, pal, sizeof pal);
    put8(&b, 0x2C);
    put16le(&b, 0);
    put16le(&b, 0);
    put16le(&b, 8);
    put16le(&b, 8);
    put8(&b, 0);
    put8(&b, 2); /* minimum code size */
    unsigned char data[256];
    size_t nbits = 0;
    memset(data, 0, sizeof data);
#define EMIT(code)                                                                                     \
    do {                                                                                               \
        for (int k_ = 0; k_ < 3; k_++, nbits++)                                                        \
            if (((code) >> k_) & 1)                                                                    \
                data[nbits / 8] |= (unsigned char)(1u << (nbits % 8));                                 \
    } while (0)
    for (int i = 0; i < 64; i++) {
        if (i % 2 == 0)
            EMIT(4u);
        EMIT((unsigned)(((i % 8) + (i / 8)) / 4 % 4));
    }
    EMIT(5u);
#undef EMIT
    size_t nbytes = (nbits + 7) / 8;
    put8(&b, (unsigned)nbytes);
    put(&b, data, nbytes);
    put8(&b, 0);
    put8(&b, 0x3B);
    write_bytes("gif-8x8.gif", b.b, b.n);

    static const unsigned char tiny[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
                                        ",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;";
    write_bytes("gif-1x1.gif", tiny, sizeof tiny - 1);
}

static void psd(bool rle, int depth)
{
    buf b = {.n = 0};
    put(&b, "8BPS", 4);
    put16be(&b, 1);
    put(&b, "\0\0\0\0\0\0", 6);
    put16be(&b, 3);
    put32be(&b, H);
    put32be(&b, W);
    put16be(&b, (unsigned)depth);
    put16be(&b, 3);
    put32be(&b, 0);
    put32be(&b, 0);
    put32be(&b, 0);
    put16be(&b, rle ? 1 : 0);
    unsigned char px[W * H * 3];
    picture(px, W, H, 3);
    if (rle) {
        for (int r = 0; r < 3 * H; r++)
            put16be(&b, 1 + W);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++) {
                put8(&b, W - 1); /* a literal run of W bytes */
                for (int x = 0; x < W; x++)
                    put8(&b, px[(y * W + x) * 3 + c]);
            }
    } else {
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < W * H; i++)
                if (depth == 16)
                    put16be(&b, (unsigned)px[i * 3 + c] * 16);
                else
                    put8(&b, px[i * 3 + c]);
    }
    write_bytes(rle ? "psd-rle.psd" : depth == 16 ? "psd16-raw.psd" : "psd-raw.psd", b.b, b.n);
}

static void pic(void)
{
    /* Softimage PIC: magic, 84 bytes (version, comment), "PICT", size, ratio, fields, pad,
     * one uncompressed RGB packet. */
    buf b = {.n = 0};
    put32be(&b, 0x5380F634);
    for (int i = 0; i < 84; i++)
        put8(&b, 0);
    put(&b, "PICT", 4);
    put16be(&b, W);
    put16be(&b, H);
    put32be(&b, 0x3F800000);
    put16be(&b, 3);
    put16be(&b, 0);
    put8(&b, 0);    /* not chained */
    put8(&b, 8);    /* bits per channel */
    put8(&b, 0);    /* uncompressed */
    put8(&b, 0xE0); /* R, G, B */
    unsigned char px[W * H * 3];
    picture(px, W, H, 3);
    put(&b, px, sizeof px);
    write_bytes("pic-rgb.pic", b.b, b.n);
}

static void pnm(void)
{
    buf b = {.n = 0};
    unsigned char px[W * H * 3];
    picture(px, W, H, 3);
    char head[64];
    int n = snprintf(head, sizeof head, "P6\n# seed\n%d %d\n255\n", W, H);
    put(&b, head, (size_t)n);
    put(&b, px, sizeof px);
    write_bytes("ppm-rgb.ppm", b.b, b.n);
    b.n = 0;
    n = snprintf(head, sizeof head, "P5 %d %d 255\n", W, H);
    put(&b, head, (size_t)n);
    picture(px, W, H, 1);
    put(&b, px, (size_t)W * H);
    write_bytes("pgm-grey.pgm", b.b, b.n);
    /* 16-bit samples: 12-bit values in a PGM, full range in a PPM */
    for (int comp = 1; comp <= 3; comp += 2) {
        uint16_t v[W * H * 3];
        picture(px, W, H, comp);
        for (int i = 0; i < W * H * comp; i++)
            v[i] = (uint16_t)(comp == 3 ? px[i] * 257 : px[i] * 16);
        if (!tw_pnm16(out("image", comp == 3 ? "ppm16-rgb.ppm" : "pgm16-grey.pgm"), W, H, comp, comp == 3 ? 65535 : 4095,
                      v, 0))
            die("pnm16");
    }
}

/* A 16-bit gray PNG (12-bit values), which stb_image_write cannot write. */
static void png16(void)
{
    unsigned char px[W * H];
    uint16_t v[W * H];
    picture(px, W, H, 1);
    for (int i = 0; i < W * H; i++)
        v[i] = (uint16_t)(px[i] * 16);
    if (!tw_png16(out("image", "png16-grey.png"), W, H, 1, v))
        die("png16");
}

typedef struct {
    unsigned char b[4096];
    size_t n;
} jpeg_mem;

static void jpeg_to_mem(void *ctx, void *data, int size)
{
    jpeg_mem *m = ctx;
    if (size > 0 && m->n + (size_t)size <= sizeof m->b) {
        memcpy(m->b + m->n, data, (size_t)size);
        m->n += (size_t)size;
    }
}

/* DICOM: 12-bit gray in explicit VR with a nested sequence, signed gray in implicit VR,
 * planar RGB, baseline JPEG in fragments. */
static void dicom(void)
{
    uint16_t v[W * H * 3];
    unsigned char px[W * H * 3];
    picture(px, W, H, 3);
    for (int i = 0; i < W * H * 3; i++)
        v[i] = (uint16_t)(px[i] * 16);
    const struct {
        const char *name;
        tdcm_opts o;
    } seeds[] = {
        {"dicom-explicit12.dcm", {.samples = 1, .bits = 16, .bits_stored = 12, .nesting = 2}},
        {"dicom-implicit-signed.dcm", {.implicit_vr = true, .samples = 1, .bits = 16, .bits_stored = 12, .is_signed = true}},
        {"dicom-rgb-planar.dcm", {.photometric = "RGB", .samples = 3, .bits = 8, .bits_stored = 8, .planar = true, .frames = 1}},
        {"dicom-jpeg.dcm", {.photometric = "YBR_FULL_422", .samples = 3, .bits = 8, .bits_stored = 8}}, /* stb writes 3 components */
    };
    jpeg_mem jm = {.n = 0};
    unsigned char gray[W * H];
    picture(gray, W, H, 1);
    if (!stbi_write_jpg_to_func(jpeg_to_mem, &jm, W, H, 1, gray, 90))
        die("jpeg");
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        uint16_t v8[W * H * 3];
        for (int i = 0; i < W * H * 3; i++)
            v8[i] = seeds[k].o.bits == 8 ? px[i] : v[i];
        size_t n = 0;
        tdcm_opts o = seeds[k].o;
        if (k == 3)
            o.jpeg = jm.b, o.jpeg_len = jm.n;
        unsigned char *b = tdcm_write(NULL, W, H, v8, &o, &n);
        if (!b)
            die("dicom");
        write_bytes(seeds[k].name, b, n);
        free(b);
    }
}

#ifdef CNNL_HAVE_TIFF
/* TIFF (through libtiff): 12-bit gray with LZW in strips, 8-bit RGB in one tile, float gray. */
static void tiff_seed(const char *name, int spp, int bps, int fmt, int compression, bool tiled)
{
    unsigned char px[W * H * 3];
    picture(px, W, H, spp);
    union {
        uint8_t b8[W * H * 3];
        uint16_t b16[W * H * 3];
        float f[W * H * 3];
    } v;
    for (int i = 0; i < W * H * spp; i++) {
        if (bps == 16)
            v.b16[i] = (uint16_t)(px[i] * 16);
        else if (bps == 32)
            v.f[i] = (float)px[i] / 255.0f * 2.0f - 0.5f;
        else
            v.b8[i] = px[i];
    }
    tw_tiff_opts o = {spp, bps, fmt, spp == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK, false, tiled ? 16 : 0,
                      compression, 0, NULL};
    if (!tw_tiff(out("image", name), W, H, &v, &o))
        die(name);
}
#endif

static void stb_formats(void)
{
    unsigned char px[16 * H * 4];
    float hdr[16 * H * 3];
    for (int comp = 1; comp <= 4; comp++) {
        static const char *const png[] = {"png-grey.png", "png-greyalpha.png", "png-rgb.png", "png-rgba.png"};
        picture(px, W, H, comp);
        if (!stbi_write_png(out("image", png[comp - 1]), W, H, comp, px, W * comp))
            die("png");
    }
    picture(px, W, H, 1);
    if (!stbi_write_jpg(out("image", "jpg-grey.jpg"), W, H, 1, px, 90))
        die("jpg");
    picture(px, W, H, 3);
    if (!stbi_write_jpg(out("image", "jpg-rgb.jpg"), W, H, 3, px, 75))
        die("jpg");
    if (!stbi_write_bmp(out("image", "bmp-rgb.bmp"), W, H, 3, px))
        die("bmp");
    stbi_write_tga_with_rle = 0;
    if (!stbi_write_tga(out("image", "tga-raw.tga"), W, H, 3, px))
        die("tga");
    stbi_write_tga_with_rle = 1;
    picture(px, W, H, 4);
    if (!stbi_write_tga(out("image", "tga-rle-rgba.tga"), W, H, 4, px))
        die("tga");
    if (!stbi_write_bmp(out("image", "bmp-rgba.bmp"), W, H, 4, px))
        die("bmp");
    for (int i = 0; i < 16 * H * 3; i++)
        hdr[i] = (float)(i % 37) / 9.0f;
    if (!stbi_write_hdr(out("image", "hdr-flat.hdr"), 4, H, 3, hdr))
        die("hdr");
    if (!stbi_write_hdr(out("image", "hdr-rle.hdr"), 16, H, 3, hdr))
        die("hdr");
}

static void models(void)
{
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    ro.classes = 4;
    cnnl_model *m = NULL;
    if (cnnl_report_net_create(&m, &ro) != CNNL_OK)
        die("report net");
    static const char *const names[] = {"glioma", "meningioma", "notumor", "pituitary"};
    cnnl_normalization norm = {.kind = CNNL_NORM_MEAN_STD, .channels = 3,
                               .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
    cnnl_save_opts so = cnnl_save_opts_default();
    so.class_names = names;
    so.num_classes = 4;
    so.norm = &norm;
    if (cnnl_model_save(m, out("model", "report32-meta.safetensors"), &so) != CNNL_OK)
        die("model save");
    cnnl_model_free(m);
    ro.batchnorm = true;
    ro.channels = 1;
    ro.classes = 2;
    if (cnnl_report_net_create(&m, &ro) != CNNL_OK)
        die("report net");
    if (cnnl_model_save(m, out("model", "report32-bn-grey.safetensors"), NULL) != CNNL_OK)
        die("model save");
    cnnl_model_free(m);
    /* A small hand-assembled model: the reader's paths without the size of the report network
     * (cnnl_model_load refuses it for want of builder options, cnnl_model_meta_read reads it). */
    if (fuzz_small_model(&m) != CNNL_OK)
        die("small model");
    so.num_classes = 3;
    so.norm = NULL;
    if (cnnl_model_save(m, out("model", "small-hand.safetensors"), &so) != CNNL_OK)
        die("model save");
    cnnl_model_free(m);
}

static void checkpoints(void)
{
    cnnl_model *m = NULL;
    cnnl_optimizer *o = NULL;
    cnnl_adam_opts ao = cnnl_adam_opts_default();
    if (fuzz_small_model(&m) != CNNL_OK || cnnl_optimizer_adam(&o, m, &ao) != CNNL_OK)
        die("model");
    /* One real step so the optimizer state is not all zeros. */
    int64_t shape[4] = {2, 1, 8, 8};
    cnnl_tensor *x = NULL, *gy = NULL;
    const cnnl_tensor *y = NULL;
    int64_t gshape[2] = {2, 3};
    if (cnnl_tensor_create(&x, 4, shape) != CNNL_OK || cnnl_tensor_create(&gy, 2, gshape) != CNNL_OK)
        die("tensor");
    float *xd = cnnl_tensor_data(x);
    for (size_t i = 0; i < cnnl_tensor_numel(x); i++)
        xd[i] = (float)(i % 7) / 7.0f;
    float *gd = cnnl_tensor_data(gy);
    for (size_t i = 0; i < 6; i++)
        gd[i] = (float)i / 6.0f - 0.4f;
    if (cnnl_model_forward(m, x, &y) != CNNL_OK || cnnl_model_backward(m, gy) != CNNL_OK ||
        cnnl_optimizer_step(o) != CNNL_OK)
        die("step");
    cnnl_tensor_free(x);
    cnnl_tensor_free(gy);

    cnnl_checkpoint *ck = NULL;
    if (cnnl_checkpoint_create(&ck) != CNNL_OK)
        die("checkpoint");
    static const char *const cols[] = {"train_loss", "train_acc"};
    const float hist[4] = {1.25f, 0.5f, 0.75f, 0.625f};
    const uint64_t rng[4] = {1, 2, 3, 0xFFFFFFFFFFFFFFFFu};
    static const char *const files[] = {"glioma/a.jpg", "notumor/b.jpg"};
    if (cnnl_checkpoint_set_epoch(ck, 2) != CNNL_OK ||
        cnnl_checkpoint_set_history(ck, 2, 2, hist, cols) != CNNL_OK ||
        cnnl_checkpoint_set_rng(ck, "shuffle", rng) != CNNL_OK ||
        cnnl_checkpoint_set_split(ck, "train", files, 2) != CNNL_OK ||
        cnnl_checkpoint_set_string(ck, "data", "/data/mri") != CNNL_OK)
        die("checkpoint fields");
    if (cnnl_checkpoint_save(out("checkpoint", "adam-full.ckpt"), m, o, ck) != CNNL_OK)
        die("checkpoint save");
    if (cnnl_checkpoint_save(out("checkpoint", "no-optimizer.ckpt"), m, NULL, NULL) != CNNL_OK)
        die("checkpoint save");
    cnnl_checkpoint_free(ck);
    cnnl_optimizer_free(o);
    cnnl_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die(dir);
    stb_formats();
    gif();
    psd(false, 8);
    psd(true, 8);
    psd(false, 16);
    pic();
    pnm();
    png16();
    dicom();
#ifdef CNNL_HAVE_TIFF
    tiff_seed("tiff-gray12-lzw.tif", 1, 16, SAMPLEFORMAT_UINT, COMPRESSION_LZW, false);
    tiff_seed("tiff-rgb8-tiled.tif", 3, 8, SAMPLEFORMAT_UINT, COMPRESSION_NONE, true);
    tiff_seed("tiff-float.tif", 1, 32, SAMPLEFORMAT_IEEEFP, COMPRESSION_NONE, false);
#endif
    models();
    checkpoints();
    return 0;
}
