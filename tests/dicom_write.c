/* Small DICOM files for the tests and fuzz seeds (see dicom_write.h). */
#include "dicom_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (path) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(o.b, 1, o.n, f) != o.n || fclose(f) != 0) {
            free(o.b);
            return NULL;
        }
    }
    *n = o.n;
    return o.b;
}
