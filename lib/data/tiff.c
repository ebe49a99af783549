/*
 * TIFF images (microscopes, research tools such as ImageJ, and some scanner exports) through
 * libtiff, read from memory. Two routes:
 * - 8-bit or narrower unsigned samples of any colour model libtiff renders (gray, palette,
 *   RGB, CMYK, YCbCr, JPEG-compressed, tiled or striped): TIFFReadRGBAImageOriented().
 * - 16- and 32-bit samples (unsigned, signed, floating point) of gray or RGB images in
 *   strips: read by scanline in two passes (smallest and largest value, then the bytes), and
 *   scaled by cnnl__scale8() like every wider format of the library: the smallest value, when
 *   negative, becomes 0 and the largest 255 (libtiff's RGBA route would keep the high byte: a
 *   12-bit scan comes out almost black).
 * Files of more than one page (image stacks) are refused, as are tiled files with wider
 * samples. The bytes are read through a read-only mapping. libtiff's messages go to the
 * caller's message through per-handle handlers (never to stderr), and one allocation is
 * limited to 1 GiB.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_impl.h"
#include "data/tiff.h"

bool cnnl__tiff_detect(const uint8_t *d, size_t n)
{
    return n >= 4 && ((d[0] == 'I' && d[1] == 'I' && (d[2] == 42 || d[2] == 43) && d[3] == 0) ||
                      (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && (d[3] == 42 || d[3] == 43)));
}

#ifdef CNNL_HAVE_TIFF
#include <tiffio.h>

typedef struct {
    const uint8_t *d;
    size_t n, pos;
    char *why;
    size_t whylen;
    bool have; /* a message is in why */
    bool oom;
} source;

static tmsize_t src_read(thandle_t h, void *buf, tmsize_t k)
{
    source *s = h;
    if (k <= 0)
        return 0;
    size_t left = s->n - s->pos, m = (size_t)k < left ? (size_t)k : left;
    memcpy(buf, s->d + s->pos, m);
    s->pos += m;
    return (tmsize_t)m;
}

static tmsize_t src_write(thandle_t h, void *buf, tmsize_t k)
{
    (void)h, (void)buf, (void)k;
    return -1;
}

static toff_t src_seek(thandle_t h, toff_t off, int whence)
{
    source *s = h;
    uint64_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->n : 0;
    uint64_t p = base + off; /* a negative relative offset wraps to the right place */
    s->pos = p < s->n ? (size_t)p : s->n;
    return p;
}

static int src_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t src_size(thandle_t h)
{
    return ((source *)h)->n;
}

/* The bytes are offered as a read-only mapping, as TIFFOpen() maps a file: libtiff 4.5.0's
 * unmapped route refuses valid tiled files ("Invalid tile byte count ... Expected 768, got
 * 1024"). In read mode libtiff never writes through a mapping (a file's is PROT_READ). */
static int src_map(thandle_t h, void **base, toff_t *size)
{
    source *s = h;
    *base = (void *)(uintptr_t)s->d;
    *size = s->n;
    return 1;
}

static void src_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h, (void)base, (void)size;
}

static void say(source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(source *s, const char *fmt, ...)
{
    if (s->have)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, s->whylen, fmt, ap);
    va_end(ap);
    s->have = true;
}

/* libtiff's errors: the first one is kept for the caller's message. */
static int on_error(TIFF *t, void *user, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int on_error(TIFF *t, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)t, (void)module;
    source *s = user;
    if (!s->have) {
        char m[200];
        vsnprintf(m, sizeof m, fmt, ap);
        s->oom = strstr(m, "Out of memory") || (strstr(m, "allocat") && !strstr(m, "limit"));
        say(s, "TIFF: %s", m);
    }
    return 1; /* handled: nothing on stderr */
}

static int on_warning(TIFF *t, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)t, (void)user, (void)module, (void)fmt, (void)ap;
    return 1;
}

static TIFF *open_mem(source *s)
{
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o) {
        s->oom = true;
        say(s, "out of memory for a TIFF decoder");
        return NULL;
    }
    TIFFOpenOptionsSetMaxSingleMemAlloc(o, (tmsize_t)1 << 30);
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, s);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, s);
    TIFF *t = TIFFClientOpenExt("image", "r", (thandle_t)s, src_read, src_write, src_seek, src_close, src_size,
                                src_map, src_unmap, o);
    TIFFOpenOptionsFree(o);
    if (!t)
        say(s, "TIFF: not a readable TIFF file");
    return t;
}

typedef struct {
    uint32_t w, h;
    uint16_t spp, bps, fmt, photo, planar;
    int comp;  /* channels of the result: 1 or 3 */
    bool wide; /* the scanline route */
} tinfo;

static bool describe(TIFF *t, source *s, tinfo *i)
{
    memset(i, 0, sizeof *i);
    if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &i->w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &i->h)) {
        say(s, "TIFF: no image width or length");
        return false;
    }
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &i->spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &i->bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &i->fmt);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &i->planar);
    if (!TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &i->photo))
        i->photo = i->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (i->w < 1 || i->h < 1 || i->w > INT_MAX || i->h > INT_MAX) {
        say(s, "TIFF: image size %ux%u", (unsigned)i->w, (unsigned)i->h);
        return false;
    }
    if (!TIFFLastDirectory(t)) {
        say(s, "TIFF: several pages (an image stack); one image per file is supported");
        return false;
    }
    bool gray = i->photo == PHOTOMETRIC_MINISBLACK || i->photo == PHOTOMETRIC_MINISWHITE;
    i->comp = gray ? 1 : 3;
    i->wide = i->bps > 8 || i->fmt != SAMPLEFORMAT_UINT;
    if (!i->wide) {
        char emsg[1024] = "";
        if (!TIFFRGBAImageOK(t, emsg)) {
            say(s, "TIFF: %s", emsg[0] ? emsg : "a sample layout libtiff cannot render");
            return false;
        }
        return true;
    }
    bool fmt_ok = ((i->fmt == SAMPLEFORMAT_UINT || i->fmt == SAMPLEFORMAT_INT) && (i->bps == 16 || i->bps == 32)) ||
                  (i->fmt == SAMPLEFORMAT_IEEEFP && i->bps == 32);
    if (!fmt_ok) {
        say(s, "TIFF: %u-bit samples of format %u are not supported (8, 16 or 32 bits; unsigned, signed or float)",
            (unsigned)i->bps, (unsigned)i->fmt);
        return false;
    }
    if (!(gray && i->spp >= 1) && !(i->photo == PHOTOMETRIC_RGB && i->spp >= 3)) {
        say(s, "TIFF: %u-bit samples with photometric interpretation %u are supported for gray and RGB only",
            (unsigned)i->bps, (unsigned)i->photo);
        return false;
    }
    if (TIFFIsTiled(t)) {
        say(s, "TIFF: tiled images with %u-bit samples are not supported", (unsigned)i->bps);
        return false;
    }
    return true;
}

bool cnnl__tiff_header(const uint8_t *d, size_t n, int *w, int *h, int *comp, bool *oom, char *why, size_t whylen)
{
    source s = {d, n, 0, why, whylen, false, false};
    *oom = false;
    TIFF *t = open_mem(&s);
    if (!t) {
        *oom = s.oom;
        return false;
    }
    tinfo i;
    bool ok = describe(t, &s, &i);
    TIFFClose(t);
    if (ok)
        *w = (int)i.w, *h = (int)i.h, *comp = i.comp;
    *oom = !ok && s.oom;
    return ok;
}

static double sample(const uint8_t *b, size_t k, const tinfo *i)
{
    if (i->bps == 16) {
        uint16_t u;
        memcpy(&u, b + 2 * k, 2);
        return i->fmt == SAMPLEFORMAT_INT ? (double)(int16_t)u : (double)u;
    }
    uint32_t u;
    memcpy(&u, b + 4 * k, 4);
    if (i->fmt == SAMPLEFORMAT_IEEEFP) {
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return i->fmt == SAMPLEFORMAT_INT ? (double)(int32_t)u : (double)u;
}

/* One scanline (plane @p pl when planes are separate) of the scanline route: the first pass
 * (@p out NULL) widens [*lo, *hi] and refuses non-finite samples; the second writes the row's
 * bytes into @p out (w x h x comp, interleaved). */
static bool scan_row(const tinfo *i, source *s, const uint8_t *buf, uint32_t y, int pl, double *lo, double *hi,
                     uint8_t *out)
{
    bool separate = i->planar == PLANARCONFIG_SEPARATE;
    size_t per = separate ? 1 : i->spp, nc = separate ? 1 : (size_t)i->comp;
    for (size_t k = 0; k < (size_t)i->w * nc; k++) {
        size_t x = k / nc, ch = separate ? (size_t)pl : k % nc;
        double v = sample(buf, x * per + k % nc, i);
        if (!out) {
            if (!isfinite(v)) {
                say(s, "TIFF: a sample is NaN or infinite (row %u)", (unsigned)y);
                return false;
            }
            *lo = v < *lo ? v : *lo;
            *hi = v > *hi ? v : *hi;
            continue;
        }
        uint8_t b = cnnl__scale8(v, *lo, *hi - *lo);
        out[((size_t)y * i->w + x) * (size_t)i->comp + ch] = i->photo == PHOTOMETRIC_MINISWHITE ? (uint8_t)(255 - b) : b;
    }
    return true;
}

/* The scanline route into @p out (w x h x comp bytes): two passes over the rows, the range
 * first, then the bytes. */
static bool read_wide(TIFF *t, source *s, const tinfo *i, uint8_t *out)
{
    tmsize_t sl = TIFFScanlineSize(t);
    size_t per = i->planar == PLANARCONFIG_SEPARATE ? 1 : i->spp;
    if (sl <= 0 || (uint64_t)sl < (uint64_t)i->w * per * (i->bps / 8)) {
        say(s, "TIFF: inconsistent scanline size");
        return false;
    }
    uint8_t *buf = malloc((size_t)sl);
    if (!buf) {
        s->oom = true;
        say(s, "out of memory for a %u-pixel scanline", (unsigned)i->w);
        return false;
    }
    int planes = i->planar == PLANARCONFIG_SEPARATE ? i->comp : 1;
    double lo = 0.0, hi = 0.0;
    bool ok = true;
    for (int pass = 0; pass < 2 && ok; pass++)
        for (int pl = 0; pl < planes && ok; pl++)
            for (uint32_t y = 0; y < i->h && ok; y++) {
                if (TIFFReadScanline(t, buf, y, (uint16_t)pl) < 0) {
                    say(s, "TIFF: cannot read row %u", (unsigned)y);
                    ok = false;
                } else {
                    ok = scan_row(i, s, buf, y, pl, &lo, &hi, pass ? out : NULL);
                }
            }
    free(buf);
    return ok;
}

uint8_t *cnnl__tiff_decode(const uint8_t *d, size_t n, bool *oom, char *why, size_t whylen)
{
    source s = {d, n, 0, why, whylen, false, false};
    *oom = false;
    TIFF *t = open_mem(&s);
    if (!t) {
        *oom = s.oom;
        return NULL;
    }
    tinfo i;
    uint8_t *img = NULL;
    if (describe(t, &s, &i)) {
        size_t npix = (size_t)i.w * i.h;
        img = malloc(npix * (size_t)i.comp);
        if (!img) {
            s.oom = true;
            say(&s, "out of memory for %ux%u pixels", (unsigned)i.w, (unsigned)i.h);
        } else if (i.wide) {
            if (!read_wide(t, &s, &i, img)) {
                free(img);
                img = NULL;
            }
        } else {
            uint32_t *r = malloc(npix * sizeof *r);
            bool ok = false;
            if (!r) {
                s.oom = true;
                say(&s, "out of memory for %ux%u pixels", (unsigned)i.w, (unsigned)i.h);
            } else if (!TIFFReadRGBAImageOriented(t, i.w, i.h, r, ORIENTATION_TOPLEFT, 1)) {
                say(&s, "TIFF: cannot decode the image");
            } else {
                for (size_t p = 0; p < npix; p++) {
                    uint8_t rgb[3] = {(uint8_t)TIFFGetR(r[p]), (uint8_t)TIFFGetG(r[p]), (uint8_t)TIFFGetB(r[p])};
                    for (int c = 0; c < i.comp; c++)
                        img[p * (size_t)i.comp + (size_t)c] = rgb[c];
                }
                ok = true;
            }
            free(r);
            if (!ok) {
                free(img);
                img = NULL;
            }
        }
    }
    TIFFClose(t);
    *oom = s.oom && !img;
    return img;
}

#else /* !CNNL_HAVE_TIFF */

bool cnnl__tiff_header(const uint8_t *d, size_t n, int *w, int *h, int *comp, bool *oom, char *why, size_t whylen)
{
    (void)d, (void)n, (void)w, (void)h, (void)comp;
    *oom = false;
    snprintf(why, whylen, "TIFF: not supported by this build (libtiff was not found when it was built)");
    return false;
}

uint8_t *cnnl__tiff_decode(const uint8_t *d, size_t n, bool *oom, char *why, size_t whylen)
{
    (void)d, (void)n;
    *oom = false;
    snprintf(why, whylen, "TIFF: not supported by this build (libtiff was not found when it was built)");
    return NULL;
}

#endif
