/*
 * DICOM Part 10 files (the format scanners and hospital archives write), read far enough to
 * classify a slice: the file meta group, the transfer syntax (explicit or implicit VR little
 * endian: uncompressed pixel data; or baseline JPEG, whose fragments are joined here and
 * decoded by the library's JPEG path in image.c), the image pixel module (rows, columns,
 * samples, bits, signedness, photometric interpretation) and one frame of pixel data. Other
 * compressed transfer syntaxes (lossless and 12-bit JPEG, JPEG-LS, JPEG 2000, RLE, deflate),
 * big endian, multi-frame files and colour models other than RGB are refused with a message
 * that says so.
 *
 * Why our own reader: the image path needs about 300 lines of DICOM, and the libraries that
 * do all of it (GDCM, DCMTK) are large C++ code bases whose inputs we would still have to
 * bound for hostile files. Every read here is checked against the file's length; nesting of
 * sequences is limited; the fuzz target `image` covers it (seeds dicom-*.dcm).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_impl.h"
#include "data/dicom.h"

#define MAX_DEPTH 16 /* nested sequences of undefined length */
#define UNDEFINED 0xFFFFFFFFu

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

typedef struct {
    const uint8_t *d;
    size_t n, pos;
    bool explicit_vr;
    char *why;
    size_t whylen;
} reader;

typedef struct {
    uint32_t group, elem, len;
    char vr[2];
    size_t value; /* offset of the value */
} element;

bool cnnl__dicom_detect(const uint8_t *d, size_t n)
{
    return n >= 132 && memcmp(d + 128, "DICM", 4) == 0;
}

static bool bad(reader *r, const char *msg)
{
    snprintf(r->why, r->whylen, "DICOM: %s", msg);
    return false;
}

/* The VRs whose length is 4 bytes after 2 reserved ones (explicit VR). */
static bool long_vr(const char *vr)
{
    static const char *const l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (vr[0] == l[i][0] && vr[1] == l[i][1])
            return true;
    return false;
}

/* Read one element header at r->pos and move past the header (not the value). */
static bool next(reader *r, element *e)
{
    if (r->n - r->pos < 8)
        return bad(r, "the data ends inside an element header (truncated)");
    const uint8_t *p = r->d + r->pos;
    e->group = rd16(p);
    e->elem = rd16(p + 2);
    e->vr[0] = e->vr[1] = 0;
    if (e->group == 0xFFFE || !r->explicit_vr) { /* items and delimiters have no VR */
        e->len = rd32(p + 4);
        r->pos += 8;
    } else {
        e->vr[0] = (char)p[4], e->vr[1] = (char)p[5];
        if (long_vr(e->vr)) {
            if (r->n - r->pos < 12)
                return bad(r, "the data ends inside an element header (truncated)");
            e->len = rd32(p + 8);
            r->pos += 12;
        } else {
            e->len = rd16(p + 6);
            r->pos += 8;
        }
    }
    e->value = r->pos;
    return true;
}

static bool skip_value(reader *r, const element *e)
{
    if (e->len > r->n - r->pos)
        return bad(r, "an element's value runs past the end of the file (truncated)");
    r->pos += e->len;
    return true;
}

/* Skip the items of a sequence of undefined length, up to its delimiter. */
static bool skip_sequence(reader *r, int depth)
{
    if (depth > MAX_DEPTH)
        return bad(r, "sequences nested too deeply");
    for (;;) {
        element it;
        if (!next(r, &it))
            return false;
        if (it.group == 0xFFFE && it.elem == 0xE0DD) /* sequence delimiter */
            return true;
        if (it.group != 0xFFFE || it.elem != 0xE000)
            return bad(r, "a sequence holds something other than items");
        if (it.len != UNDEFINED) {
            if (!skip_value(r, &it))
                return false;
            continue;
        }
        for (;;) { /* an item of undefined length: elements up to the item delimiter */
            element e;
            if (!next(r, &e))
                return false;
            if (e.group == 0xFFFE && e.elem == 0xE00D)
                break;
            if (e.len == UNDEFINED) {
                if (!skip_sequence(r, depth + 1))
                    return false;
            } else if (!skip_value(r, &e)) {
                return false;
            }
        }
    }
}

/* An unsigned short value (US) of @p e, or -1. */
static long us_value(const reader *r, const element *e)
{
    return e->len == 2 ? (long)rd16(r->d + e->value) : -1;
}

/* A string value without its padding (spaces, NULs), into @p out (at most @p cap - 1 bytes). */
static void str_value(const reader *r, const element *e, char *out, size_t cap)
{
    size_t k = e->len < cap - 1 ? e->len : cap - 1;
    memcpy(out, r->d + e->value, k);
    while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == '\0'))
        k--;
    out[k] = '\0';
    size_t s = 0;
    while (out[s] == ' ')
        s++;
    memmove(out, out + s, k - s + 1);
}

/* The items of encapsulated pixel data from r->pos: the basic offset table (skipped), then
 * the fragments up to the sequence delimiter. Adds their lengths into @p total and, when
 * @p out is not NULL, copies them there one after another. */
static bool fragments(reader *r, uint8_t *out, size_t *total)
{
    *total = 0;
    for (int item = 0;; item++) {
        element e;
        if (!next(r, &e))
            return false;
        if (e.group == 0xFFFE && e.elem == 0xE0DD)
            break;
        if (e.group != 0xFFFE || e.elem != 0xE000 || e.len == UNDEFINED)
            return bad(r, "encapsulated pixel data holds something other than fragments");
        if (e.len > r->n - r->pos)
            return bad(r, "a JPEG fragment runs past the end of the file (truncated)");
        if (item > 0) {
            if (out)
                memcpy(out + *total, r->d + r->pos, e.len);
            *total += e.len;
        }
        r->pos += e.len;
    }
    if (*total == 0)
        return bad(r, "no JPEG data in the pixel data");
    return true;
}

uint8_t *cnnl__dicom_jpeg(const uint8_t *d, size_t n, const cnnl__dicom_info *info)
{
    uint8_t *out = malloc(info->jpeg_bytes);
    if (!out)
        return NULL;
    char why[160];
    size_t total = 0;
    reader r = {d, n, info->pixel_off, true, why, sizeof why};
    if (!fragments(&r, out, &total) || total != info->jpeg_bytes) { /* cnnl__dicom_header() walked them */
        free(out);
        return NULL;
    }
    return out;
}

bool cnnl__dicom_header(const uint8_t *d, size_t n, cnnl__dicom_info *info, char *why, size_t whylen)
{
    reader r = {d, n, 132, true, why, whylen};
    memset(info, 0, sizeof *info);
    if (!cnnl__dicom_detect(d, n))
        return bad(&r, "no DICM marker at byte 128");
    /* file meta group (0002): explicit VR little endian */
    char ts[72] = "";
    for (;;) {
        if (n - r.pos >= 2 && rd16(d + r.pos) != 0x0002)
            break;
        element e;
        if (!next(&r, &e))
            return false;
        if (e.len == UNDEFINED)
            return bad(&r, "an element of the file meta group has an undefined length");
        if (e.len > n - r.pos)
            return bad(&r, "an element's value runs past the end of the file (truncated)");
        if (e.elem == 0x0010)
            str_value(&r, &e, ts, sizeof ts);
        r.pos += e.len;
    }
    if (!strcmp(ts, "1.2.840.10008.1.2"))
        r.explicit_vr = false;
    else if (!strcmp(ts, "1.2.840.10008.1.2.1"))
        r.explicit_vr = true;
    else if (!strcmp(ts, "1.2.840.10008.1.2.4.50"))
        r.explicit_vr = true, info->jpeg = true;
    else if (!ts[0])
        return bad(&r, "no transfer syntax in the file meta group");
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "transfer syntax %s is not supported (uncompressed little endian, "
                 "1.2.840.10008.1.2 and .1.2.1, and baseline JPEG, .1.2.4.50; decompress the file first)", ts);
        return bad(&r, msg);
    }
    uint32_t pixel_len = 0;
    long rows = -1, cols = -1, spp = 1, bits = -1, stored = -1, rep = 0, planar = 0, frames = 1;
    char photo[24] = "";
    for (;;) {
        element e;
        if (!next(&r, &e))
            return r.pos >= n ? bad(&r, "no pixel data") : false;
        if (e.group == 0x7FE0 && e.elem == 0x0010) {
            if (info->jpeg) {
                if (e.len != UNDEFINED)
                    return bad(&r, "JPEG pixel data that is not encapsulated");
                info->pixel_off = e.value;
                if (!fragments(&r, NULL, &info->jpeg_bytes))
                    return false;
                break;
            }
            if (e.len == UNDEFINED)
                return bad(&r, "the pixel data is encapsulated (compressed) under an uncompressed transfer syntax");
            info->pixel_off = e.value;
            pixel_len = e.len;
            break;
        }
        if (e.len == UNDEFINED) {
            if (!skip_sequence(&r, 0))
                return false;
            continue;
        }
        if (e.len > n - r.pos)
            return bad(&r, "an element's value runs past the end of the file (truncated)");
        if (e.group == 0x0028) {
            switch (e.elem) {
            case 0x0002: spp = us_value(&r, &e); break;
            case 0x0004: str_value(&r, &e, photo, sizeof photo); break;
            case 0x0006: planar = us_value(&r, &e); break;
            case 0x0008: {
                char s[16];
                str_value(&r, &e, s, sizeof s);
                frames = strtol(s, NULL, 10);
                break;
            }
            case 0x0010: rows = us_value(&r, &e); break;
            case 0x0011: cols = us_value(&r, &e); break;
            case 0x0100: bits = us_value(&r, &e); break;
            case 0x0101: stored = us_value(&r, &e); break;
            case 0x0103: rep = us_value(&r, &e); break;
            default: break;
            }
        }
        r.pos += e.len;
    }
    char msg[160];
    if (rows < 1 || cols < 1)
        return bad(&r, "no image size (Rows, Columns) before the pixel data");
    if (frames > 1) {
        snprintf(msg, sizeof msg, "%ld frames; one image per file is supported", frames);
        return bad(&r, msg);
    }
    if (bits != 8 && bits != 16) {
        snprintf(msg, sizeof msg, "%ld bits allocated per sample; 8 or 16 are supported", bits);
        return bad(&r, msg);
    }
    if (stored < 0)
        stored = bits;
    if (stored < 1 || stored > bits || (rep != 0 && rep != 1) || (planar != 0 && planar != 1))
        return bad(&r, "inconsistent pixel format (BitsStored, PixelRepresentation or PlanarConfiguration)");
    bool mono1 = !strcmp(photo, "MONOCHROME1"), mono2 = !strcmp(photo, "MONOCHROME2"), rgb = !strcmp(photo, "RGB");
    if (!info->jpeg && !((spp == 1 && (mono1 || mono2)) || (spp == 3 && rgb))) {
        snprintf(msg, sizeof msg, "photometric interpretation '%s' with %ld samples per pixel is not supported "
                 "(MONOCHROME1, MONOCHROME2 or RGB)", photo, spp);
        return bad(&r, msg);
    }
    if (info->jpeg) {
        bool ybr = !strcmp(photo, "YBR_FULL_422") || !strcmp(photo, "YBR_FULL");
        if (bits != 8 || !((spp == 1 && mono2) || (spp == 3 && (rgb || ybr)))) {
            snprintf(msg, sizeof msg, "baseline JPEG with %ld bits allocated and photometric interpretation '%s' is "
                     "not supported (8 bits; MONOCHROME2, RGB or YBR_FULL(_422))", bits, photo);
            return bad(&r, msg);
        }
        info->rows = (int)rows;
        info->cols = (int)cols;
        info->samples = (int)spp;
        info->bits = info->bits_stored = 8;
        return true;
    }
    uint64_t need = (uint64_t)rows * (uint64_t)cols * (uint64_t)spp * (uint64_t)(bits / 8);
    if (need > pixel_len && pixel_len <= n - info->pixel_off) {
        snprintf(msg, sizeof msg, "%ldx%ld pixels need %llu bytes of pixel data; the pixel data element holds %lu",
                 cols, rows, (unsigned long long)need, (unsigned long)pixel_len);
        return bad(&r, msg);
    }
    if (need > n - info->pixel_off) {
        snprintf(msg, sizeof msg, "truncated: %ldx%ld pixels need %llu bytes of pixel data, the file holds %zu",
                 cols, rows, (unsigned long long)need, n - info->pixel_off);
        return bad(&r, msg);
    }
    info->rows = (int)rows;
    info->cols = (int)cols;
    info->samples = (int)spp;
    info->bits = (int)bits;
    info->bits_stored = (int)stored;
    info->is_signed = rep == 1;
    info->inverted = mono1;
    info->planar = planar == 1;
    return true;
}

/* Sample @p i (in file order) as a signed value. */
static int32_t sample(const uint8_t *p, const cnnl__dicom_info *in, size_t i)
{
    uint32_t v = in->bits == 8 ? p[i] : rd16(p + 2 * i);
    uint32_t mask = in->bits_stored >= 32 ? 0xFFFFFFFFu : (1u << in->bits_stored) - 1u;
    v &= mask;
    if (in->is_signed && (v >> (in->bits_stored - 1)) & 1u)
        return (int32_t)v - (int32_t)(mask + 1u);
    return (int32_t)v;
}

uint8_t *cnnl__dicom_decode(const uint8_t *d, const cnnl__dicom_info *in)
{
    size_t ns = (size_t)in->rows * (size_t)in->cols * (size_t)in->samples, npix = ns / (size_t)in->samples;
    const uint8_t *p = d + in->pixel_off;
    uint8_t *out = malloc(ns);
    if (!out)
        return NULL;
    bool keep = in->bits == 8 && !in->is_signed;
    int32_t lo = 0, hi = 0;
    for (size_t i = 0; i < ns && !keep; i++) {
        int32_t v = sample(p, in, i);
        lo = v < lo ? v : lo; /* lo stays 0 unless values are negative */
        hi = v > hi ? v : hi;
    }
    for (size_t i = 0; i < ns; i++) { /* i in the output's interleaved order */
        size_t k = i % (size_t)in->samples, at = in->planar ? k * npix + i / (size_t)in->samples : i;
        int32_t v = sample(p, in, at);
        uint8_t b = keep ? (uint8_t)v : cnnl__scale8(v, lo, (double)hi - lo);
        out[i] = in->inverted ? (uint8_t)(255 - b) : b;
    }
    return out;
}
