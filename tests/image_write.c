/* Small image files for the tests and fuzz seeds (see image_write.h). */
#include "image_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CNNL_HAVE_TIFF
#include <tiffio.h>
#endif

typedef struct {
    uint8_t *b;
    size_t n, cap;
    bool ok;
} obuf;

static void put(obuf *o, const void *p, size_t k)
{
    if (!o->ok)
        return;
    if (o->n + k > o->cap) {
        size_t cap = (o->n + k) * 2 + 256;
        uint8_t *b = realloc(o->b, cap);
        if (!b) {
            o->ok = false;
            return;
        }
        o->b = b, o->cap = cap;
    }
    if (k)
        memcpy(o->b + o->n, p, k);
    o->n += k;
}

static bool write_all(const char *path, const obuf *o)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && o->ok && fwrite(o->b, 1, o->n, f) == o->n;
    return f ? fclose(f) == 0 && ok : false;
}

static void le16(obuf *o, uint32_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(o, b, 2);
}

static void le32(obuf *o, uint32_t v)
{
    le16(o, v & 0xFFFF);
    le16(o, v >> 16);
}

/* One element; @p len 0xFFFFFFFF writes an undefined length and no value. */
static void el(obuf *o, bool explicit_vr, uint32_t g, uint32_t e, const char *vr, const void *val, uint32_t len)
{
    le16(o, g);
    le16(o, e);
    if (explicit_vr && g != 0xFFFE) {
        put(o, vr, 2);
        bool lng = !strcmp(vr, "OB") || !strcmp(vr, "OW") || !strcmp(vr, "SQ") || !strcmp(vr, "UN");
        if (lng) {
            le16(o, 0);
            le32(o, len);
        } else {
            le16(o, len);
        }
    } else {
        le32(o, len);
    }
    if (len != 0xFFFFFFFFu)
        put(o, val, len);
}

static void us(obuf *o, bool x, uint32_t e, uint32_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    el(o, x, 0x0028, e, "US", b, 2);
}

/* A string value padded to an even length with @p pad. */
static void str(obuf *o, bool x, uint32_t g, uint32_t e, const char *vr, const char *s, char pad)
{
    char b[80];
    size_t k = strlen(s);
    memcpy(b, s, k);
    if (k % 2)
        b[k++] = pad;
    el(o, x, g, e, vr, b, (uint32_t)k);
}

static void nested(obuf *o, bool x, int depth)
{
    el(o, x, 0x0008, 0x1140, "SQ", NULL, 0xFFFFFFFFu);  /* ReferencedImageSequence */
    el(o, x, 0xFFFE, 0xE000, "", NULL, 0xFFFFFFFFu);    /* item */
    str(o, x, 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.4", '\0');
    if (depth > 1)
        nested(o, x, depth - 1);
    el(o, x, 0xFFFE, 0xE00D, "", NULL, 0);              /* item delimiter */
    el(o, x, 0xFFFE, 0xE0DD, "", NULL, 0);              /* sequence delimiter */
}

uint8_t *tdcm_write(const char *path, int w, int h, const uint16_t *v, const tdcm_opts *op, size_t *n)
{
    obuf o = {NULL, 0, 0, true};
    uint8_t pre[128] = {0};
    put(&o, pre, 128);
    put(&o, "DICM", 4);
    const char *ts = op->transfer      ? op->transfer
                     : op->jpeg        ? "1.2.840.10008.1.2.4.50"
                     : op->implicit_vr ? "1.2.840.10008.1.2"
                                       : "1.2.840.10008.1.2.1";
    /* file meta group: explicit VR, with its group length */
    obuf m = {NULL, 0, 0, true};
    uint8_t ver[2] = {0, 1};
    el(&m, true, 0x0002, 0x0001, "OB", ver, 2);
    str(&m, true, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.4", '\0');
    str(&m, true, 0x0002, 0x0003, "UI", "1.2.3.4.5.6.7", '\0');
    str(&m, true, 0x0002, 0x0010, "UI", ts, '\0');
    uint8_t gl[4] = {(uint8_t)m.n, (uint8_t)(m.n >> 8), (uint8_t)(m.n >> 16), (uint8_t)(m.n >> 24)};
    el(&o, true, 0x0002, 0x0000, "UL", gl, 4);
    put(&o, m.b, m.n);
    free(m.b);
    bool x = !op->implicit_vr;
    str(&o, x, 0x0008, 0x0060, "CS", "MR", ' ');
    if (op->nesting > 0)
        nested(&o, x, op->nesting);
    us(&o, x, 0x0002, (uint32_t)op->samples);
    str(&o, x, 0x0028, 0x0004, "CS", op->photometric ? op->photometric : "MONOCHROME2", ' ');
    if (op->samples == 3)
        us(&o, x, 0x0006, op->planar ? 1 : 0);
    if (op->frames > 0) {
        char f[16];
        snprintf(f, sizeof f, "%d", op->frames);
        str(&o, x, 0x0028, 0x0008, "IS", f, ' ');
    }
    us(&o, x, 0x0010, (uint32_t)h);
    us(&o, x, 0x0011, (uint32_t)w);
    us(&o, x, 0x0100, (uint32_t)op->bits);
    us(&o, x, 0x0101, (uint32_t)op->bits_stored);
    us(&o, x, 0x0102, (uint32_t)op->bits_stored - 1);
    us(&o, x, 0x0103, op->is_signed ? 1 : 0);
    if (op->jpeg) { /* encapsulated: empty offset table, two fragments of even length, delimiter */
        size_t half = op->jpeg_len / 2 & ~(size_t)1, rest = op->jpeg_len - half;
        uint8_t *frag = calloc(rest + 1, 1);
        if (!frag) {
            free(o.b);
            return NULL;
        }
        el(&o, x, 0x7FE0, 0x0010, "OB", NULL, 0xFFFFFFFFu);
        el(&o, x, 0xFFFE, 0xE000, "", NULL, 0);
        el(&o, x, 0xFFFE, 0xE000, "", op->jpeg, (uint32_t)half);
        memcpy(frag, op->jpeg + half, rest);
        el(&o, x, 0xFFFE, 0xE000, "", frag, (uint32_t)(rest + rest % 2));
        el(&o, x, 0xFFFE, 0xE0DD, "", NULL, 0);
        free(frag);
        goto done;
    }
    size_t ns = (size_t)w * (size_t)h * (size_t)op->samples, bytes = ns * (size_t)(op->bits / 8);
    uint8_t *px = calloc(bytes + 1, 1);
    if (!px) {
        free(o.b);
        return NULL;
    }
    for (size_t i = 0; i < ns; i++) {
        if (op->bits == 8) {
            px[i] = (uint8_t)v[i];
        } else {
            px[2 * i] = (uint8_t)v[i];
            px[2 * i + 1] = (uint8_t)(v[i] >> 8);
        }
    }
    px[bytes] = 0;
    uint32_t plen = (uint32_t)(bytes + bytes % 2);
    el(&o, x, 0x7FE0, 0x0010, op->bits == 8 ? "OB" : "OW", px, plen);
    free(px);
done:
    if (!o.ok) {
        free(o.b);
        return NULL;
    }
    o.n -= op->cut < o.n ? op->cut : o.n;
    if (path && !write_all(path, &o)) {
        free(o.b);
        return NULL;
    }
    *n = o.n;
    return o.b;
}

/* ---- PNG and PNM with 16-bit samples ---- */

static uint32_t crc32_of(const uint8_t *p, size_t n, uint32_t c)
{
    c = ~c;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void png_chunk(obuf *o, const char *type, const uint8_t *data, uint32_t n)
{
    uint8_t head[8], tail[4];
    be32(head, n);
    memcpy(head + 4, type, 4);
    uint32_t c = crc32_of(head + 4, 4, 0);
    if (n)
        c = crc32_of(data, n, c);
    be32(tail, c);
    put(o, head, 8);
    put(o, data, n);
    put(o, tail, 4);
}

bool tw_png16(const char *path, int w, int h, int comp, const uint16_t *v)
{
    size_t row = 1 + (size_t)w * (size_t)comp * 2, raw_n = row * (size_t)h;
    if (raw_n >= 65535) /* one stored block */
        return false;
    obuf z = {NULL, 0, 0, true}, o = {NULL, 0, 0, true};
    uint8_t hdr[7] = {0x78, 0x01, 1, (uint8_t)raw_n, (uint8_t)(raw_n >> 8), (uint8_t)~raw_n, (uint8_t)(~raw_n >> 8)};
    put(&z, hdr, 7); /* zlib: deflate, 32 KiB window (0x7801 % 31 == 0); one final stored block */
    uint32_t a = 1, b = 0;
    for (int y = 0; y < h; y++)
        for (int i = -1; i < w * comp; i++) { /* filter byte 0, then big-endian samples */
            uint16_t s = i < 0 ? 0 : v[(size_t)y * (size_t)w * (size_t)comp + (size_t)i];
            uint8_t bytes[2] = {(uint8_t)(s >> 8), (uint8_t)s};
            for (int k = i < 0 ? 1 : 0; k < 2; k++) {
                put(&z, bytes + k, 1);
                a = (a + bytes[k]) % 65521, b = (b + a) % 65521;
            }
        }
    uint8_t adler[4], ihdr[13] = {0};
    be32(adler, b << 16 | a);
    put(&z, adler, 4);
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 16;
    ihdr[9] = comp == 3 ? 2 : 0;
    put(&o, "\x89PNG\r\n\x1a\n", 8);
    png_chunk(&o, "IHDR", ihdr, 13);
    png_chunk(&o, "IDAT", z.b, (uint32_t)z.n);
    png_chunk(&o, "IEND", NULL, 0);
    bool ok = z.ok && write_all(path, &o);
    free(z.b);
    free(o.b);
    return ok;
}

bool tw_pnm16(const char *path, int w, int h, int comp, int maxv, const uint16_t *v, size_t cut)
{
    obuf o = {NULL, 0, 0, true};
    char head[64];
    int k = snprintf(head, sizeof head, "P%c\n%d %d\n%d\n", comp == 3 ? '6' : '5', w, h, maxv);
    put(&o, head, (size_t)k);
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)comp; i++)
        le16(&o, (uint32_t)(v[i] >> 8 | (v[i] & 0xFF) << 8)); /* big endian */
    o.n -= cut < o.n ? cut : o.n;
    bool ok = write_all(path, &o);
    free(o.b);
    return ok;
}

/* ---- TIFF ---- */

#ifdef CNNL_HAVE_TIFF
bool tw_tiff(const char *path, int w, int h, const void *v, const tw_tiff_opts *o)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t)
        return false;
    size_t bytes = (size_t)(o->bps / 8);
    int pages = o->pages ? o->pages : 1, planes = o->planar ? o->spp : 1, per = o->planar ? 1 : o->spp;
    size_t row = (size_t)w * (size_t)per * bytes;
    uint8_t *buf = malloc(row * (size_t)h * (size_t)planes);
    bool ok = buf != NULL;
    /* rearranged into planes when separate */
    for (int pl = 0; ok && pl < planes; pl++)
        for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
            for (int c = 0; c < per; c++)
                memcpy(buf + (((size_t)pl * (size_t)w * (size_t)h + i) * (size_t)per + (size_t)c) * bytes,
                       (const uint8_t *)v + (i * (size_t)o->spp + (size_t)(o->planar ? pl : c)) * bytes, bytes);
    for (int pg = 0; ok && pg < pages; pg++) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)o->spp);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)o->bps);
        TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, (uint16_t)(o->fmt ? o->fmt : SAMPLEFORMAT_UINT));
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)o->photo);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, (uint16_t)(o->planar ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG));
        TIFFSetField(t, TIFFTAG_COMPRESSION, (uint16_t)(o->compression ? o->compression : COMPRESSION_NONE));
        if (o->palette)
            TIFFSetField(t, TIFFTAG_COLORMAP, o->palette, o->palette, o->palette);
        if (o->tile) {
            TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)o->tile);
            TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)o->tile);
            uint8_t *tb = calloc((size_t)TIFFTileSize(t), 1);
            ok = tb != NULL;
            for (int pl = 0; ok && pl < planes; pl++)
                for (int ty = 0; ok && ty < h; ty += o->tile)
                    for (int tx = 0; ok && tx < w; tx += o->tile) {
                        for (int y = 0; y < o->tile && ty + y < h; y++)
                            for (int x = 0; x < o->tile && tx + x < w; x++)
                                memcpy(tb + ((size_t)y * (size_t)o->tile + (size_t)x) * (size_t)per * bytes,
                                       buf + (size_t)pl * row * (size_t)h + (size_t)(ty + y) * row +
                                           (size_t)(tx + x) * (size_t)per * bytes,
                                       (size_t)per * bytes);
                        ok = TIFFWriteTile(t, tb, (uint32_t)tx, (uint32_t)ty, 0, (uint16_t)pl) >= 0;
                    }
            free(tb);
        } else {
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)4);
            for (int pl = 0; ok && pl < planes; pl++)
                for (int y = 0; ok && y < h; y++)
                    ok = TIFFWriteScanline(t, buf + (size_t)pl * row * (size_t)h + (size_t)y * row, (uint32_t)y,
                                           (uint16_t)pl) >= 0;
        }
        ok = ok && TIFFWriteDirectory(t);
    }
    free(buf);
    TIFFClose(t);
    return ok;
}
#endif
