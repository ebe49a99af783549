/*
 * One image file: read, check the header (declared size against the limits and against what
 * the file can hold), decode (JPEG with libjpeg-turbo, the other formats with stb_image),
 * resize (resize.c); and the public single-image load built on it.
 * Safe to call from several threads at once: each JPEG gets its own TurboJPEG handle, and
 * stb_image keeps its failure reason in a thread-local variable when built by GCC, as
 * Debian's libstb is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <stb_image.h>
#include <turbojpeg.h>

#include "core/internal.h"
#include "data/data_impl.h"
#include "data/dicom.h"
#include "data/norm.h"
#include "data/tiff.h"

/* stb_image reads at most INT_MAX bytes; real images are far below this. */
enum { MAX_FILE_BYTES = 1 << 30 };

const char *cnnl__data_fail_open_suffix;

static void fail(cnnl__image_result *res, cnnl_status status, const char *fmt, ...)
    CNNL_PRINTF(3, 4);

static void fail(cnnl__image_result *res, cnnl_status status, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    res->status = status;
    res->message = strdup(buf);
    free(res->pixels);
    res->pixels = NULL;
}

static bool injected_failure(const char *path)
{
    const char *suffix = cnnl__data_fail_open_suffix;
    if (!suffix)
        return false;
    size_t lp = strlen(path), ls = strlen(suffix);
    return lp >= ls && strcmp(path + lp - ls, suffix) == 0;
}

/* Read a whole regular file. Returns 0, or an errno value (EFBIG for oversize files). */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (injected_failure(path))
        return EACCES;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = EISDIR; /* reported as "not a regular file" */
        close(fd);
        return err;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        close(fd);
        return EFBIG;
    }
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return ENOMEM;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return err;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = size;
    return 0;
}

/* ---- header checks ------------------------------------------------------------------- */

typedef enum img_format {
    FMT_JPEG, FMT_PNG, FMT_BMP, FMT_GIF, FMT_PSD, FMT_PIC, FMT_PNM, FMT_HDR, FMT_TGA, FMT_DICOM, FMT_TIFF
} img_format;

static const char *const format_names[] = {"JPEG", "PNG", "BMP", "GIF", "PSD", "PIC", "PNM", "HDR", "TGA", "DICOM", "TIFF"};

static bool starts_with(const uint8_t *d, size_t n, const char *magic, size_t m)
{
    return n >= m && memcmp(d, magic, m) == 0;
}

/* The format as stb_image would detect it, except that anything starting with 0xFF is JPEG:
 * stb_image skips fill bytes before the start-of-image marker, and its JPEG code never runs;
 * and DICOM and TIFF, which stb_image does not read (lib/data/dicom.c, lib/data/tiff.c). */
static img_format detect_format(const uint8_t *d, size_t n)
{
    if (cnnl__dicom_detect(d, n)) /* its 128-byte preamble may hold anything */
        return FMT_DICOM;
    if (d[0] == 0xFF)
        return FMT_JPEG;
    if (cnnl__tiff_detect(d, n))
        return FMT_TIFF;
    if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8))
        return FMT_PNG;
    if (starts_with(d, n, "BM", 2))
        return FMT_BMP;
    if (starts_with(d, n, "GIF8", 4))
        return FMT_GIF;
    if (starts_with(d, n, "8BPS", 4))
        return FMT_PSD;
    if (starts_with(d, n, "\x53\x80\xF6\x34", 4) && n >= 92 && memcmp(d + 88, "PICT", 4) == 0)
        return FMT_PIC;
    if (starts_with(d, n, "P5", 2) || starts_with(d, n, "P6", 2))
        return FMT_PNM;
    if (starts_with(d, n, "#?RADIANCE\n", 11) || starts_with(d, n, "#?RGBE\n", 7))
        return FMT_HDR;
    return FMT_TGA; /* stb_image tries TGA last; its header has no magic */
}

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

/* PNM: the offset of the pixel data and the bytes per sample, from the header (P5/P6). */
static bool pnm_data_start(const uint8_t *d, size_t n, size_t *start, int *sample_bytes)
{
    size_t i = 2;
    long vals[3];
    for (int k = 0; k < 3; k++) {
        for (;;) { /* whitespace and comments */
            if (i >= n)
                return false;
            if (d[i] == '#') {
                while (i < n && d[i] != '\n' && d[i] != '\r')
                    i++;
            } else if (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r' || d[i] == '\v' || d[i] == '\f') {
                i++;
            } else {
                break;
            }
        }
        long v = 0;
        if (d[i] < '0' || d[i] > '9')
            return false;
        while (i < n && d[i] >= '0' && d[i] <= '9' && v < 1000000000)
            v = v * 10 + (d[i++] - '0');
        vals[k] = v;
    }
    *start = i + 1; /* one whitespace byte ends the header */
    *sample_bytes = vals[2] > 255 ? 2 : 1;
    return true;
}

static bool pnm_is_wide(const uint8_t *d, size_t n)
{
    size_t start;
    int sb;
    return pnm_data_start(d, n, &start, &sb) && sb == 2;
}

/* Check that the file can hold the pixels its header declares: exact byte counts for the
 * uncompressed layouts, the format's largest compression ratio for the others. On failure,
 * writes the reason into @p why and returns false. */
static bool size_plausible(img_format fmt, const uint8_t *d, size_t n, int w, int h, char *why, size_t whylen)
{
    uint64_t pixels = (uint64_t)w * (uint64_t)h;
    uint64_t need = 0, have = 0; /* exact bytes of pixel data, when known */
    uint64_t ratio = 0;          /* else most pixels per byte of file */
    switch (fmt) {
    case FMT_JPEG: {
        /* Huffman coding spends at least one bit per 8x8 block of the full-resolution
         * component (its DC coefficient); arithmetic coding has no such floor. */
        bool arithmetic = false;
        for (size_t i = 2; i + 4 <= n;) {
            if (d[i] != 0xFF) {
                i++;
                continue;
            }
            uint8_t m = d[i + 1];
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                arithmetic = m >= 0xC9;
                break;
            }
            i += (m == 0xD8 || m == 0xFF || (m >= 0xD0 && m <= 0xD7) || m == 0x01) ? 2 : 2 + be16(d + i + 2);
        }
        ratio = arithmetic ? 0 : 512;
        break;
    }
    case FMT_PNG: {
        /* zlib expands at most 1032:1; the raw stream has a filter byte per row. */
        static const int chans[7] = {1, 0, 3, 1, 2, 0, 4};
        int bits = n > 25 ? d[24] : 8, type = n > 25 ? d[25] : 6;
        int ch = type <= 6 && chans[type] ? chans[type] : 4;
        uint64_t raw = (uint64_t)h * (1 + ((uint64_t)w * (uint64_t)(bits * ch) + 7) / 8);
        if (raw / 1032 > n) {
            snprintf(why, whylen, "declares %dx%d pixels (%llu bytes compressed by zlib) in a %zu-byte file, "
                     "beyond zlib's largest ratio (1032:1)", w, h, (unsigned long long)raw, n);
            return false;
        }
        return true;
    }
    case FMT_BMP: {
        if (n < 34)
            return true; /* stb_image refuses it */
        uint32_t hsz = le32(d + 14), offset = le32(d + 10);
        uint32_t bpp = hsz == 12 ? le16(d + 24) : le16(d + 28);
        uint32_t compression = hsz == 12 ? 0 : le32(d + 30);
        if (compression != 0 && compression != 3)
            return true; /* run-length coded BMPs: stb_image refuses them */
        need = ((uint64_t)w * bpp + 31) / 32 * 4 * (uint64_t)h;
        uint64_t start = offset >= 14 + hsz && offset < n ? offset : 14 + (uint64_t)hsz;
        have = n > start ? n - start : 0;
        break;
    }
    case FMT_TGA: {
        if (n < 18)
            return true;
        int type = d[2], bpp = d[16];
        uint64_t start = 18 + (uint64_t)d[0] + (d[1] ? (uint64_t)le16(d + 5) * (uint64_t)((d[7] + 7) / 8) : 0);
        have = n > start ? n - start : 0;
        if (type == 1 || type == 2 || type == 3) {
            need = pixels * (uint64_t)((bpp + 7) / 8);
        } else if (pixels / 128 > have) { /* run-length packets: at most 128 pixels each */
            snprintf(why, whylen, "declares %dx%d pixels with only %llu bytes of run-length data "
                     "(at most 128 pixels per packet); truncated or a decompression bomb", w, h,
                     (unsigned long long)have);
            return false;
        } else {
            return true;
        }
        break;
    }
    case FMT_PNM: {
        size_t start;
        int sb;
        if (!pnm_data_start(d, n, &start, &sb))
            return true;
        need = pixels * (uint64_t)(d[1] == '6' ? 3 : 1) * (uint64_t)sb;
        have = n > start ? n - start : 0;
        break;
    }
    case FMT_PSD: {
        if (n < 26)
            return true;
        uint64_t ch = be16(d + 12), depth = be16(d + 22);
        size_t i = 26;
        for (int k = 0; k < 3 && i + 4 <= n; k++) /* colour mode data, resources, layers */
            i += 4 + (size_t)be32(d + i) > n - i ? n - i : 4 + (size_t)be32(d + i);
        if (i + 2 > n) {
            need = 1;
            have = 0;
            break;
        }
        uint32_t compression = be16(d + i);
        have = n - i - 2;
        if (compression == 0) {
            need = pixels * ch * (depth / 8 ? depth / 8 : 1);
        } else if (pixels * ch / 128 > have) { /* PackBits: at most 128 bytes per 2 */
            snprintf(why, whylen, "declares %dx%d pixels with only %llu bytes of PackBits data; truncated "
                     "or a decompression bomb", w, h, (unsigned long long)have);
            return false;
        } else {
            return true;
        }
        break;
    }
    case FMT_DICOM: /* cnnl__dicom_header() has checked the pixel data's length */
    case FMT_TIFF:  /* libtiff checks its strips and tiles as it reads them */
        return true;
    case FMT_GIF:
        ratio = 4096; /* one 12-bit LZW code stands for at most 4096 pixels */
        break;
    case FMT_PIC:
    case FMT_HDR:
        return true; /* run lengths up to 65535: only the pixel limit applies */
    }
    if (ratio) {
        if (pixels / ratio > n) {
            snprintf(why, whylen, "declares %dx%d pixels in a %zu-byte file, beyond %s's largest compression "
                     "ratio (%llu pixels per byte); a decompression bomb or a truncated file", w, h, n,
                     format_names[fmt], (unsigned long long)ratio);
            return false;
        }
        return true;
    }
    if (need > have) {
        snprintf(why, whylen, "truncated %s: declares %dx%d pixels, %llu bytes of pixel data, but the file "
                 "holds %llu", format_names[fmt], w, h, (unsigned long long)need, (unsigned long long)have);
        return false;
    }
    return true;
}

/* A JPEG whose data stops before the end-of-image marker is truncated; libjpeg would decode
 * the missing part as grey, PIL refuses it. Trailing bytes after the marker are allowed. */
static bool jpeg_truncated(const uint8_t *d, size_t n)
{
    if (n < 4)
        return true;
    for (size_t i = n - 1; i >= 3; i--)
        if (d[i - 1] == 0xFF && d[i] == 0xD9)
            return false;
    return true;
}

/* ---- the budget of pixels being decoded at once ---------------------------------------- */

void cnnl__pixel_budget_init(cnnl__pixel_budget *b, int64_t limit)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->freed, NULL);
    b->limit = limit;
}

void cnnl__pixel_budget_destroy(cnnl__pixel_budget *b)
{
    pthread_cond_destroy(&b->freed);
    pthread_mutex_destroy(&b->lock);
}

/* Wait until @p pixels fit beside the images other threads are decoding (an image alone
 * always fits: each is within the limit). */
static void budget_take(cnnl__pixel_budget *b, int64_t pixels)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    while (b->in_flight > 0 && b->in_flight + pixels > b->limit)
        pthread_cond_wait(&b->freed, &b->lock);
    b->in_flight += pixels;
    if (b->in_flight > b->peak)
        b->peak = b->in_flight;
    pthread_mutex_unlock(&b->lock);
}

static void budget_give(cnnl__pixel_budget *b, int64_t pixels)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->in_flight -= pixels;
    pthread_cond_broadcast(&b->freed);
    pthread_mutex_unlock(&b->lock);
}

/* ---- decoding ------------------------------------------------------------------------ */

/* True when every pixel of an interleaved RGB image has R == G == B. */
static bool rgb_is_gray(const uint8_t *p, size_t pixels)
{
    for (size_t i = 0; i < pixels; i++, p += 3)
        if (p[0] != p[1] || p[0] != p[2])
            return false;
    return true;
}

static void rgb_to_single(uint8_t *p, size_t pixels)
{
    for (size_t i = 0; i < pixels; i++)
        p[i] = p[3 * i];
}

/* RGB to luma in place, with stb_image's weights (as for the other formats). */
static void rgb_to_luma(uint8_t *p, size_t pixels)
{
    for (size_t i = 0; i < pixels; i++)
        p[i] = (uint8_t)((p[3 * i] * 77 + p[3 * i + 1] * 150 + p[3 * i + 2] * 29) >> 8);
}

/* stb_image reads through these callbacks so that a read past the end of the file is seen:
 * stb_image would otherwise decode the missing part as zeros. */
typedef struct mem_reader {
    const uint8_t *data;
    size_t len, pos;
    bool past_end;
    bool endless; /* past the end, give filler bytes instead of an end (see decode_stb) */
} mem_reader;

static int reader_read(void *user, char *out, int size)
{
    mem_reader *r = user;
    size_t left = r->len - r->pos;
    if (size <= 0)
        return 0;
    if (left == 0) {
        r->past_end = true;
        if (!r->endless)
            return 0;
        memset(out, 0x81, (size_t)size);
        return size;
    }
    size_t k = (size_t)size < left ? (size_t)size : left;
    memcpy(out, r->data + r->pos, k);
    r->pos += k;
    return (int)k;
}

static void reader_skip(void *user, int n)
{
    mem_reader *r = user;
    if (n < 0) {
        size_t back = (size_t)-(long)n;
        r->pos = back > r->pos ? 0 : r->pos - back;
    } else if ((size_t)n > r->len - r->pos) {
        r->past_end = true;
        r->pos = r->len;
    } else {
        r->pos += (size_t)n;
    }
}

static int reader_eof(void *user)
{
    const mem_reader *r = user;
    return r->pos >= r->len;
}

static bool is_oom_message(const char *msg)
{
    return msg && (strstr(msg, "outofmem") || strstr(msg, "Out of memory") || strstr(msg, "nsufficient memory") ||
                   strstr(msg, "emory allocation failure"));
}

/* 16-bit samples (PNG, PSD, PNM with maxval above 255) become 8-bit in place, scaled so that
 * the image's largest sample is 255: v * 255 / max, rounded (cnnl__scale8()). stb_image would keep the high
 * byte, which turns the common 12-bit scan stored in 16-bit samples (values up to 4095) into
 * an almost black image; Pillow, as the report's pipeline uses it (convert("RGB")), clips at
 * 255 instead, which turns it white. Scaling by the largest sample is what an image viewer's
 * automatic window does and keeps a full-range image as it was (within one step of v / 257).
 * Returns @p v, now holding @p n bytes. */
static uint8_t *wide_to_8bit(uint16_t *v, size_t n)
{
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++)
        top = v[i] > top ? v[i] : top;
    uint8_t *out = (uint8_t *)v;
    for (size_t i = 0; i < n; i++) /* out[i] lies at or before v[i]: a forward pass is safe */
        out[i] = cnnl__scale8(v[i], 0.0, top);
    return out;
}

/* Decode with stb_image into *img (req channels). */
static void decode_stb(img_format fmt, const uint8_t *data, size_t len, int dw, int dh, int src_channels, int req, uint8_t **img,
                       int *w, int *h, cnnl__image_result *res)
{
    static const stbi_io_callbacks io = {reader_read, reader_skip, reader_eof};
    /* stb_image fills a missing end with zeros; in a Radiance HDR scanline a zero run length
     * never advances, so stb_image would loop forever on a truncated HDR file. There the
     * filler is 0x81 (a run of one), which always advances; the result is refused anyway. */
    mem_reader r = {data, len, 0, false, fmt == FMT_HDR};
    int comp = 0;
    /* stb_image 2.27's PIC decoder converts the channels of a failed decode from a NULL
     * buffer (a crash on any corrupt PIC body) unless 4 channels are asked for, where no
     * conversion is needed: ask for 4 and convert here, as stb_image would. */
    int ask = fmt == FMT_PIC ? 4 : req;
    /* Read here, not by stbi_is_16_bit_*(): in stb_image 2.27 built by GCC, its PSD test skips
     * the reads of height and width (STBI_NOTUSED is sizeof there) and never says 16. */
    bool wide = (fmt == FMT_PNG && len > 24 && data[24] == 16) || (fmt == FMT_PSD && len > 23 && be16(data + 22) == 16);
    if (wide) {
        uint16_t *v = stbi_load_16_from_callbacks(&io, &r, w, h, &comp, req);
        if (v)
            *img = wide_to_8bit(v, (size_t)*w * (size_t)*h * (size_t)req);
    } else {
        *img = stbi_load_from_callbacks(&io, &r, w, h, &comp, ask);
    }
    if (*img && ask != req && !r.past_end) {
        size_t npix = (size_t)*w * (size_t)*h;
        uint8_t *p = *img;
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *q = p + 4 * i;
            if (req == 1) /* stb_image's luma: (77 R + 150 G + 29 B) >> 8 */
                p[i] = (uint8_t)((q[0] * 77 + q[1] * 150 + q[2] * 29) >> 8);
            else
                for (int k = 0; k < req; k++)
                    p[(size_t)req * i + (size_t)k] = q[k];
        }
    }
    if (!*img) {
        /* Some of stb_image's allocation failures leave an older failure reason behind: if
         * memory for the decoded pixels cannot be had now, that was the cause. */
        const char *why = stbi_failure_reason();
        size_t need = (size_t)dw * (size_t)dh * (size_t)(src_channels > req ? src_channels + 1 : req + 1) * (wide ? 2 : 1);
        /* volatile: a compiler may otherwise elide an allocation that is only tested */
        void *volatile probe = is_oom_message(why) ? NULL : malloc(need);
        free(probe);
        if (!probe)
            fail(res, CNNL_ENOMEM, "out of memory while decoding %dx%d pixels", dw, dh);
        else
            fail(res, CNNL_EFORMAT, "corrupt or truncated image (%s)", why ? why : "unknown");
    } else if (r.past_end) {
        stbi_image_free(*img);
        *img = NULL;
        fail(res, CNNL_EFORMAT, "corrupt or truncated image (the data ends before the image does)");
    }
}

/* A binary PNM with 16-bit samples (P5/P6, maximum value above 255), decoded here: stb_image
 * 2.27 copies its big-endian samples without swapping them and converts their channels as if
 * they were bytes. size_plausible() has checked that the file holds every sample. Gray (req 1)
 * from colour takes stb_image's 16-bit luma, (77 R + 150 G + 29 B) >> 8; then wide_to_8bit(). */
static void decode_pnm16(const uint8_t *data, size_t len, int w, int h, int req, uint8_t **img,
                         cnnl__image_result *res)
{
    size_t start = 0, npix = (size_t)w * (size_t)h;
    int sb = 0, ch = data[1] == '6' ? 3 : 1;
    if (!pnm_data_start(data, len, &start, &sb) || sb != 2 || start > len || (len - start) / 2 / (size_t)ch < npix) {
        fail(res, CNNL_EFORMAT, "corrupt or truncated image (the data ends before the image does)");
        return;
    }
    uint16_t *v = malloc(npix * (size_t)req * sizeof *v);
    if (!v) {
        fail(res, CNNL_ENOMEM, "out of memory while decoding %dx%d pixels", w, h);
        return;
    }
    const uint8_t *q = data + start;
    for (size_t i = 0; i < npix; i++, q += 2 * ch) {
        if (ch == req) {
            for (int c = 0; c < ch; c++)
                v[i * (size_t)ch + (size_t)c] = (uint16_t)(q[2 * c] << 8 | q[2 * c + 1]);
        } else { /* ch 3, req 1 */
            uint32_t r = (uint32_t)(q[0] << 8 | q[1]), g = (uint32_t)(q[2] << 8 | q[3]), b = (uint32_t)(q[4] << 8 | q[5]);
            v[i] = (uint16_t)((r * 77 + g * 150 + b * 29) >> 8);
        }
    }
    *img = wide_to_8bit(v, npix * (size_t)req);
}

/* Decode a JPEG with libjpeg-turbo (accurate integer IDCT, fancy upsampling: Pillow's
 * settings) into *img with *req channels (1 for grayscale JPEGs, else 3). */
static void decode_jpeg(tjhandle tj, const uint8_t *data, size_t len, int w, int h, int colorspace,
                        int *req, uint8_t **img, cnnl__image_result *res)
{
    int pf = colorspace == TJCS_GRAY ? TJPF_GRAY : (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) ? TJPF_CMYK : TJPF_RGB;
    size_t npix = (size_t)w * (size_t)h;
    *img = malloc(npix * (size_t)tjPixelSize[pf]);
    if (!*img) {
        fail(res, CNNL_ENOMEM, "out of memory for %dx%d decoded pixels", w, h);
        return;
    }
    if (tjDecompress2(tj, data, (unsigned long)len, *img, w, 0, h, pf, TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS) != 0) {
        const char *why = tjGetErrorStr2(tj);
        bool warning = tjGetErrorCode(tj) == TJERR_WARNING;
        if (!warning || strstr(why, "Premature end")) {
            cnnl_status st = is_oom_message(why) ? CNNL_ENOMEM : CNNL_EFORMAT;
            free(*img);
            *img = NULL;
            fail(res, st, st == CNNL_ENOMEM ? "out of memory while decoding (%s)" : "corrupt or truncated JPEG (%s)", why);
            return;
        }
        /* other warnings (e.g. extraneous bytes between markers): decoded as Pillow does */
    }
    if (pf == TJPF_CMYK) { /* Adobe's inverted CMYK, as Pillow converts it: R = C'K'/255, ... */
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *s = *img + 4 * i;
            unsigned k = s[3];
            for (int c = 0; c < 3; c++) {
                unsigned t = s[c] * k + 128;
                (*img)[3 * i + (size_t)c] = (uint8_t)(((t >> 8) + t) >> 8);
            }
        }
    }
    *req = pf == TJPF_GRAY ? 1 : 3;
}

static void release(uint8_t *img, bool from_stb)
{
    if (from_stb)
        stbi_image_free(img);
    else
        free(img);
}

static void decode_and_resize(const uint8_t *data, size_t len, img_format fmt, tjhandle tj,
                              const cnnl__dicom_info *di, int w, int h, int colorspace, int size, int want_channels,
                              int src_channels, cnnl__image_result *res)
{
    int req = (want_channels == 1 || src_channels <= 2) ? 1 : 3;
    uint8_t *img = NULL;
    bool from_stb = fmt != FMT_JPEG;
    size_t npix = (size_t)w * (size_t)h;
    /* JPEG, DICOM and TIFF decode to the file's channels (1 or 3); colour becomes luma below */
    if (fmt == FMT_JPEG) {
        decode_jpeg(tj, data, len, w, h, colorspace, &req, &img, res);
    } else if (fmt == FMT_DICOM) {
        from_stb = false;
        if ((img = cnnl__dicom_decode(data, di)))
            req = di->samples;
        else
            fail(res, CNNL_ENOMEM, "out of memory while decoding %dx%d pixels", w, h);
    } else if (fmt == FMT_TIFF) {
        from_stb = false;
        bool oom = false;
        char why[256];
        if ((img = cnnl__tiff_decode(data, len, &oom, why, sizeof why)))
            req = src_channels;
        else
            fail(res, oom ? CNNL_ENOMEM : CNNL_EFORMAT, "%s", why);
    } else if (fmt == FMT_PNM && pnm_is_wide(data, len)) {
        from_stb = false;
        decode_pnm16(data, len, w, h, req, &img, res);
    } else {
        int dw = 0, dh = 0;
        decode_stb(fmt, data, len, w, h, src_channels, req, &img, &dw, &dh, res);
        if (img && (dw != w || dh != h)) {
            stbi_image_free(img);
            img = NULL;
            fail(res, CNNL_EFORMAT, "corrupt image (decoded %dx%d, declared %dx%d)", dw, dh, w, h);
        }
    }
    if (!img)
        return;
    if (req == 3 && want_channels == 1) {
        rgb_to_luma(img, npix);
        req = 1;
    }
    if (req == 3 && rgb_is_gray(img, npix)) {
        rgb_to_single(img, npix);
        req = 1;
    }
    size_t bytes = (size_t)size * (size_t)size * (size_t)req;
    res->pixels = malloc(bytes);
    if (!res->pixels) {
        release(img, from_stb);
        fail(res, CNNL_ENOMEM, "out of memory for a %dx%d image", size, size);
        return;
    }
    if (!cnnl__image_resize(img, w, h, req, res->pixels, size, size)) {
        release(img, from_stb);
        fail(res, CNNL_ENOMEM, "out of memory while resizing %dx%d to %dx%d", w, h, size, size);
        return;
    }
    release(img, from_stb);
    res->channels = req;
    res->status = CNNL_OK;
}

/* Read the header: format, declared size and channels; false (res filled) if unusable. */
static bool read_header(const uint8_t *data, size_t len, img_format fmt, tjhandle tj, int *w, int *h,
                        int *comp, int *colorspace, cnnl__image_result *res)
{
    if (fmt == FMT_JPEG) {
        int subsamp = 0;
        if (!tj) {
            fail(res, CNNL_ENOMEM, "out of memory for a JPEG decoder");
            return false;
        }
        if (tjDecompressHeader3(tj, data, (unsigned long)len, w, h, &subsamp, colorspace) != 0) {
            const char *why = tjGetErrorStr2(tj);
            fail(res, is_oom_message(why) ? CNNL_ENOMEM : CNNL_EFORMAT, "not an image or unsupported format (%s)", why);
            return false;
        }
        *comp = *colorspace == TJCS_GRAY ? 1 : 3;
        return true;
    }
    if (fmt == FMT_TIFF) {
        char why[256];
        bool oom = false;
        if (!cnnl__tiff_header(data, len, w, h, comp, &oom, why, sizeof why)) {
            fail(res, oom ? CNNL_ENOMEM : CNNL_EFORMAT, "%s", why);
            return false;
        }
        return true;
    }
    if (len > INT32_MAX || !stbi_info_from_memory(data, (int)len, w, h, comp)) {
        const char *why = stbi_failure_reason();
        fail(res, is_oom_message(why) ? CNNL_ENOMEM : CNNL_EFORMAT, "not an image or unsupported format (%s)",
             why ? why : "unknown");
        return false;
    }
    return true;
}

/* Check, decode and resize encoded bytes (borrowed). */
static void prepare_bytes(const uint8_t *data, size_t len, int size, int want_channels, int max_dim,
                          int64_t max_pixels, cnnl__pixel_budget *budget, cnnl__image_result *res)
{
    if (len == 0) {
        fail(res, CNNL_EFORMAT, "empty file (0 bytes)");
        return;
    }
    img_format fmt = detect_format(data, len);
    /* DICOM: its header read once, here. A file of baseline JPEG has its JPEG stream go through
     * the JPEG path below, which must find the size the DICOM header declares. */
    uint8_t *joined = NULL;
    cnnl__dicom_info di = {0};
    if (fmt == FMT_DICOM) {
        char dwhy[256];
        if (!cnnl__dicom_header(data, len, &di, dwhy, sizeof dwhy)) {
            fail(res, CNNL_EFORMAT, "%s", dwhy);
            return;
        }
        if (di.jpeg) {
            if (!(joined = cnnl__dicom_jpeg(data, len, &di))) {
                fail(res, CNNL_ENOMEM, "out of memory for the JPEG data of a DICOM file");
                return;
            }
            data = joined, len = di.jpeg_bytes, fmt = FMT_JPEG;
        }
    }
    tjhandle tj = fmt == FMT_JPEG ? tjInitDecompress() : NULL;
    int w = 0, h = 0, comp = 0, colorspace = 0;
    char why[320];
    bool header = true;
    if (fmt == FMT_DICOM)
        w = di.cols, h = di.rows, comp = di.samples;
    else
        header = read_header(data, len, fmt, tj, &w, &h, &comp, &colorspace, res);
    if (!header) {
        /* res filled */
    } else if (joined && (w != di.cols || h != di.rows)) {
        fail(res, CNNL_EFORMAT, "DICOM: the JPEG data is %dx%d pixels; the header declares %dx%d", w, h, di.cols,
             di.rows);
    } else if (w < 1 || h < 1 || w > max_dim || h > max_dim) {
        fail(res, CNNL_EFORMAT, "declares %dx%d pixels; the limit is %d per side", w, h, max_dim);
    } else if ((int64_t)w * h > max_pixels) {
        fail(res, CNNL_EFORMAT, "declares %dx%d = %lld pixels; the limit is %lld pixels (max_pixels)", w, h,
             (long long)w * h, (long long)max_pixels);
    } else if (!size_plausible(fmt, data, len, w, h, why, sizeof why)) {
        fail(res, CNNL_EFORMAT, "%s", why);
    } else if (fmt == FMT_JPEG && jpeg_truncated(data, len)) {
        fail(res, CNNL_EFORMAT, "truncated JPEG (no end-of-image marker)");
    } else {
        int64_t pixels = (int64_t)w * h;
        budget_take(budget, pixels);
        decode_and_resize(data, len, fmt, tj, &di, w, h, colorspace, size, want_channels, comp, res);
        budget_give(budget, pixels);
    }
    if (tj)
        tjDestroy(tj);
    free(joined);
}

void cnnl__image_prepare(const char *path, int size, int want_channels, int max_dim, int64_t max_pixels,
                         cnnl__pixel_budget *budget, cnnl__image_result *res)
{
    memset(res, 0, sizeof *res);
    uint8_t *data = NULL;
    size_t len = 0;
    int err = read_file(path, &data, &len);
    if (err == EISDIR) {
        fail(res, CNNL_EFORMAT, "not a regular file");
        return;
    }
    if (err == ELOOP) {
        fail(res, CNNL_EIO, "cannot open: symbolic link loop");
        return;
    }
    if (err == EFBIG) {
        fail(res, CNNL_EFORMAT, "file larger than %d bytes", MAX_FILE_BYTES);
        return;
    }
    if (err) {
        fail(res, err == ENOMEM ? CNNL_ENOMEM : err == ENOENT ? CNNL_ENOTFOUND : CNNL_EIO, "cannot read: %s",
             strerror(err));
        return;
    }
    prepare_bytes(data, len, size, want_channels, max_dim, max_pixels, budget, res);
    free(data);
}

static cnnl_status image_tensor(cnnl_tensor **out, const char *path, const cnnl_dataset_opts *opts,
                                const uint8_t *bytes, size_t len)
{
    const char *fn = bytes ? "cnnl_image_load_memory" : "cnnl_image_load";
    cnnl_dataset_opts o;
    cnnl_status st = cnnl__data_check_opts(fn, opts, &o);
    if (st != CNNL_OK)
        return st;
    cnnl__image_result res;
    if (bytes) {
        memset(&res, 0, sizeof res);
        prepare_bytes(bytes, len, o.size, o.channels, o.max_dim, o.max_pixels, NULL, &res);
    } else {
        cnnl__image_prepare(path, o.size, o.channels, o.max_dim, o.max_pixels, NULL, &res);
    }
    if (res.status != CNNL_OK) {
        st = cnnl__error(res.status, "%s: %s", path, res.message ? res.message : "out of memory");
        free(res.message);
        return st;
    }
    int64_t shape[4] = {1, o.channels, o.size, o.size};
    cnnl_tensor *t = NULL;
    if (cnnl_tensor_create(&t, 4, shape) != CNNL_OK) {
        free(res.pixels);
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory for a %dx%dx%d image", path, o.channels, o.size, o.size);
    }
    float lut[3][256];
    cnnl__norm_lut(&o.norm, lut);
    cnnl__pixels_convert(res.pixels, res.channels, o.channels, (size_t)o.size * (size_t)o.size,
                         (const float(*)[256])lut, cnnl_tensor_data(t));
    free(res.pixels);
    *out = t;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_image_load(cnnl_tensor **out, const char *path, const cnnl_dataset_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_image_load: %s is NULL", out ? "path" : "out");
    return image_tensor(out, path, opts, NULL, 0);
}

CNNL_API cnnl_status cnnl_image_load_memory(cnnl_tensor **out, const void *data, size_t size, const char *name,
                                            const cnnl_dataset_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !data)
        return cnnl__error(CNNL_EINVAL, "cnnl_image_load_memory: %s is NULL", out ? "data" : "out");
    return image_tensor(out, name ? name : "(memory)", opts, (const uint8_t *)data, size);
}
