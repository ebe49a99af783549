/* Reader of the parity fixture files (format in gen_fixtures.py). Bounds-checked: a truncated
 * or corrupt file is reported, never read past. */
#include "fixture.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const unsigned char *p, *end;
} reader;

static int take(reader *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    memcpy(dst, r->p, n);
    r->p += n;
    return 0;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)len;
    return buf;
}

static int parse_tensor(reader *r, fx_tensor *t)
{
    uint32_t len, ndim;
    if (take(r, &len, 4) || len > 4096 || (size_t)(r->end - r->p) < len)
        return -1;
    t->name = malloc(len + 1);
    if (!t->name)
        return -1;
    memcpy(t->name, r->p, len);
    t->name[len] = '\0';
    r->p += len;
    if (take(r, &ndim, 4) || ndim > 4)
        return -1;
    t->ndim = (int)ndim;
    t->numel = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (take(r, &t->shape[i], 8) || t->shape[i] < 0 || t->shape[i] > (1 << 26))
            return -1;
        t->numel *= (size_t)t->shape[i];
    }
    if (t->numel > (size_t)(r->end - r->p) / 4)
        return -1;
    t->data = malloc(t->numel * 4 + 4);
    if (!t->data)
        return -1;
    return take(r, t->data, t->numel * 4);
}

fx_file *fx_load(const char *name)
{
    const char *root = getenv("CNNLITE_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/parity/fixtures/%s", root ? root : ".", name);
    size_t size = 0;
    unsigned char *buf = read_all(path, &size);
    if (!buf) {
        fprintf(stderr, "%s: cannot read\n", path);
        return NULL;
    }
    reader r = {buf, buf + size};
    char magic[8];
    uint32_t count = 0;
    fx_file *f = calloc(1, sizeof *f);
    int bad = !f || take(&r, magic, 8) || memcmp(magic, "CNNLFIX1", 8) != 0 || take(&r, &count, 4) ||
              count > 100000;
    if (!bad && !(f->items = calloc(count ? count : 1, sizeof *f->items)))
        bad = 1;
    for (uint32_t i = 0; !bad && i < count; i++) {
        f->count = i + 1;
        bad = parse_tensor(&r, &f->items[i]);
    }
    free(buf);
    if (bad || r.p != r.end) {
        fprintf(stderr, "%s: malformed fixture file\n", path);
        fx_free(f);
        return NULL;
    }
    return f;
}

void fx_free(fx_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->items[i].name);
        free(f->items[i].data);
    }
    free(f->items);
    free(f);
}

const fx_tensor *fx_find(const fx_file *f, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    for (size_t i = 0; f && i < f->count; i++)
        if (strcmp(f->items[i].name, name) == 0)
            return &f->items[i];
    return NULL;
}

double fx_compare(const char *label, const float *got, const float *want, size_t n)
{
    double sq = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        sq += (double)want[i] * want[i];
    double rms = n ? sqrt(sq / (double)n) : 0.0;
    for (size_t i = 0; i < n; i++) {
        double ref = fabs(want[i]) > rms ? fabs(want[i]) : rms;
        double diff = fabs((double)got[i] - (double)want[i]);
        double err = ref > 0.0 ? diff / ref : diff;
        if (!(err <= worst)) /* NaN counts as the worst */
            worst = isnan(err) ? INFINITY : err;
    }
    printf("parity %-44s max rel err %.3g (%zu values)\n", label, worst, n);
    return worst;
}
