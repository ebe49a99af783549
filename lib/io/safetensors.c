/* safetensors reader (strict) and writer over lists of named F32/I64 tensors. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

/* The format stores little-endian bytes; this code copies them as they are. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lib/io/safetensors.c supports little-endian hosts only"
#endif

/* Integers in the JSON header are exact in a double up to 2^53. */
#define MAX_JSON_INT 9007199254740992.0

size_t cnnl__st_dtype_size(cnnl_dtype dtype)
{
    return dtype == CNNL_DTYPE_I64 || dtype == CNNL_DTYPE_F64 ? 8 : 4;
}

static const char *dtype_name(cnnl_dtype dtype)
{
    return dtype == CNNL_DTYPE_I64 ? "I64" : dtype == CNNL_DTYPE_F64 ? "F64" : "F32";
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

void cnnl__st_free(cnnl__st_file *f)
{
    if (!f)
        return;
    cJSON_Delete(f->json);
    free(f->tensors);
    free(f->meta);
    free(f->buf);
    free(f->path);
    free(f);
}

const cnnl__st_tensor *cnnl__st_find(const cnnl__st_file *f, const char *name)
{
    for (size_t i = 0; f && name && i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *cnnl__st_meta_get(const cnnl__st_file *f, const char *key)
{
    for (size_t i = 0; f && key && i < f->meta_count; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= MAX_JSON_INT) || (double)(uint64_t)d != d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static cnnl_status parse_metadata(cnnl__st_file *f, const cJSON *obj)
{
    if (f->has_metadata)
        return cnnl__error(CNNL_EFORMAT, "%s: the header has two \"__metadata__\" entries", f->path);
    f->has_metadata = 1;
    if (!cJSON_IsObject(obj))
        return cnnl__error(CNNL_EFORMAT, "%s: \"__metadata__\" is not a JSON object", f->path);
    size_t n = (size_t)cJSON_GetArraySize(obj);
    f->meta = calloc(n ? n : 1, sizeof *f->meta);
    if (!f->meta)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        if (!cJSON_IsString(it))
            return cnnl__error(CNNL_EFORMAT, "%s: metadata entry \"%s\" is not a string", f->path, it->string);
        for (size_t i = 0; i < f->meta_count; i++)
            if (strcmp(f->meta[i].key, it->string) == 0)
                return cnnl__error(CNNL_EFORMAT, "%s: metadata key \"%s\" appears twice", f->path, it->string);
        f->meta[f->meta_count].key = it->string;
        f->meta[f->meta_count].value = it->valuestring;
        f->meta_count++;
    }
    return CNNL_OK;
}

static cnnl_status parse_dtype(const cnnl__st_file *f, const char *name, const cJSON *d, cnnl_dtype *out)
{
    if (!cJSON_IsString(d))
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\": \"dtype\" is missing or not a string", f->path, name);
    if (strcmp(d->valuestring, "F32") == 0)
        *out = CNNL_DTYPE_F32;
    else if (strcmp(d->valuestring, "I64") == 0)
        *out = CNNL_DTYPE_I64;
    else if (strcmp(d->valuestring, "F64") == 0)
        *out = CNNL_DTYPE_F64;
    else
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\" has unsupported dtype \"%.40s\" (supported: F32, F64, I64)",
                           f->path, name, d->valuestring);
    return CNNL_OK;
}

static cnnl_status parse_shape(const cnnl__st_file *f, cnnl__st_tensor *t, const cJSON *s)
{
    if (!cJSON_IsArray(s))
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\": \"shape\" is missing or not an array", f->path, t->name);
    int nd = cJSON_GetArraySize(s);
    if (nd > CNNL__ST_MAX_DIMS)
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\" has %d dimensions; at most %d are supported", f->path,
                           t->name, nd, CNNL__ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    int i = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, s) {
        uint64_t v;
        if (!json_uint(dim, &v))
            return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\": shape entry %d is not a non-negative integer",
                               f->path, t->name, i);
        t->shape[i++] = (int64_t)v;
        if (v > SIZE_MAX || !cnnl__mul_size(numel, (size_t)v, &numel))
            return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\": the element count of its shape overflows", f->path,
                               t->name);
    }
    t->numel = numel;
    if (!cnnl__mul_size(numel, cnnl__st_dtype_size(t->dtype), &t->nbytes))
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\": its byte size overflows", f->path, t->name);
    return CNNL_OK;
}

static cnnl_status parse_offsets(const cnnl__st_file *f, cnnl__st_tensor *t, const cJSON *o, size_t data_size)
{
    uint64_t b, e;
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != 2 || !json_uint(cJSON_GetArrayItem(o, 0), &b) ||
        !json_uint(cJSON_GetArrayItem(o, 1), &e))
        return cnnl__error(CNNL_EFORMAT,
                           "%s: tensor \"%s\": \"data_offsets\" is missing or not two non-negative integers",
                           f->path, t->name);
    if (b > e || e > data_size)
        return cnnl__error(CNNL_EFORMAT,
                           "%s: tensor \"%s\": data_offsets [%llu, %llu] out of range of the %zu-byte data section",
                           f->path, t->name, (unsigned long long)b, (unsigned long long)e, data_size);
    if (e - b != t->nbytes) {
        char sh[128];
        format_shape(sh, sizeof sh, t->ndim, t->shape);
        return cnnl__error(CNNL_EFORMAT,
                           "%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes but shape %s of %s needs %zu",
                           f->path, t->name, (unsigned long long)b, (unsigned long long)e,
                           (unsigned long long)(e - b), sh, dtype_name(t->dtype), t->nbytes);
    }
    t->begin = (size_t)b;
    return CNNL_OK;
}

static cnnl_status parse_entry(cnnl__st_file *f, const cJSON *entry, size_t data_size, const unsigned char *data)
{
    cnnl__st_tensor *t = &f->tensors[f->count];
    memset(t, 0, sizeof *t);
    t->name = entry->string;
    if (!cJSON_IsObject(entry))
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\": its entry is not a JSON object", f->path, t->name);
    cnnl_status st = parse_dtype(f, t->name, cJSON_GetObjectItemCaseSensitive(entry, "dtype"), &t->dtype);
    if (st == CNNL_OK)
        st = parse_shape(f, t, cJSON_GetObjectItemCaseSensitive(entry, "shape"));
    if (st == CNNL_OK)
        st = parse_offsets(f, t, cJSON_GetObjectItemCaseSensitive(entry, "data_offsets"), data_size);
    if (st != CNNL_OK)
        return st;
    t->data = data + t->begin;
    f->count++;
    return CNNL_OK;
}

static int cmp_name(const void *a, const void *b)
{
    const cnnl__st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const cnnl__st_tensor *const *x = a, *const *y = b;
    if ((*x)->begin != (*y)->begin)
        return (*x)->begin < (*y)->begin ? -1 : 1;
    return (*x)->nbytes < (*y)->nbytes ? -1 : (*x)->nbytes > (*y)->nbytes;
}

/* Names are unique, and the tensors tile the data section exactly: sorted by offset, each
 * starts where the previous one ends, the first at 0 and the last at the end. */
static cnnl_status check_layout(const cnnl__st_file *f, size_t data_size)
{
    const cnnl__st_tensor **idx = malloc((f->count ? f->count : 1) * sizeof *idx);
    if (!idx)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->count; i++)
        idx[i] = &f->tensors[i];
    cnnl_status st = CNNL_OK;
    qsort(idx, f->count, sizeof *idx, cmp_name);
    for (size_t i = 1; i < f->count && st == CNNL_OK; i++)
        if (strcmp(idx[i - 1]->name, idx[i]->name) == 0)
            st = cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\" appears twice in the header", f->path, idx[i]->name);
    qsort(idx, f->count, sizeof *idx, cmp_offset);
    size_t expected = 0;
    for (size_t i = 0; i < f->count && st == CNNL_OK; i++) {
        if (idx[i]->begin < expected)
            st = cnnl__error(CNNL_EFORMAT, "%s: the data of tensors \"%s\" and \"%s\" overlap", f->path,
                             idx[i - 1]->name, idx[i]->name);
        else if (idx[i]->begin > expected)
            st = cnnl__error(CNNL_EFORMAT, "%s: %zu unused bytes before the data of tensor \"%s\"", f->path,
                             idx[i]->begin - expected, idx[i]->name);
        expected = idx[i]->begin + idx[i]->nbytes;
    }
    if (st == CNNL_OK && expected != data_size)
        st = cnnl__error(CNNL_EFORMAT, "%s: %zu unused bytes at the end of the data section", f->path,
                         data_size - expected);
    free(idx);
    return st;
}

static cnnl_status parse_header(cnnl__st_file *f, const char *header, size_t hlen, size_t data_size)
{
    if (hlen == 0 || header[0] != '{')
        return cnnl__error(CNNL_EFORMAT, "%s: the JSON header does not start with '{'", f->path);
    const char *end = NULL;
    f->json = cJSON_ParseWithLengthOpts(header, hlen, &end, 0);
    if (!f->json && cnnl__json_well_formed(header, hlen)) /* cJSON ran out of memory */
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory reading the %zu-byte JSON header", f->path, hlen);
    if (!f->json)
        return cnnl__error(CNNL_EFORMAT, "%s: invalid JSON in the header near byte %zu of %zu", f->path,
                           end && end >= header ? (size_t)(end - header) : (size_t)0, hlen);
    for (const char *p = end; p < header + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return cnnl__error(CNNL_EFORMAT, "%s: invalid JSON in the header: extra bytes after byte %zu", f->path,
                               (size_t)(p - header));
    const cJSON *root = f->json;
    if (!cJSON_IsObject(root))
        return cnnl__error(CNNL_EFORMAT, "%s: the JSON header is not an object", f->path);
    size_t n = (size_t)cJSON_GetArraySize(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    const unsigned char *data = (const unsigned char *)header + hlen;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        cnnl_status st = strcmp(it->string, "__metadata__") == 0 ? parse_metadata(f, it)
                                                                 : parse_entry(f, it, data_size, data);
        if (st != CNNL_OK)
            return st;
    }
    return check_layout(f, data_size);
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

cnnl_status cnnl__st_parse(const char *path, unsigned char *buf, size_t size, cnnl__st_file **out)
{
    *out = NULL;
    cnnl__st_file *f = calloc(1, sizeof *f);
    char *p = strdup(path ? path : "(memory)");
    if (!f || !p) {
        free(f);
        free(p);
        free(buf);
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", path ? path : "(memory)");
    }
    f->path = p;
    f->buf = buf;
    f->size = size;
    cnnl_status st = CNNL_OK;
    uint64_t hlen = size >= 8 ? load_le64(buf) : 0;
    if (size < 8)
        st = cnnl__error(CNNL_EFORMAT, "%s: the file has %zu bytes; a safetensors file starts with an 8-byte header length",
                         f->path, size);
    else if (hlen > CNNL__ST_MAX_HEADER)
        st = cnnl__error(CNNL_EFORMAT, "%s: header length %llu exceeds the limit of %llu bytes", f->path,
                         (unsigned long long)hlen, (unsigned long long)CNNL__ST_MAX_HEADER);
    else if (hlen > size - 8)
        st = cnnl__error(CNNL_EFORMAT, "%s: header length %llu is larger than the %zu bytes that follow it (truncated file?)",
                         f->path, (unsigned long long)hlen, size - 8);
    else
        st = parse_header(f, (const char *)buf + 8, (size_t)hlen, size - 8 - (size_t)hlen);
    if (st != CNNL_OK) {
        cnnl__st_free(f);
        return st;
    }
    *out = f;
    return CNNL_OK;
}

static cnnl_status read_fd(const char *path, int fd, unsigned char **buf, size_t *size)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return cnnl__error(CNNL_EIO, "%s: cannot read: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return cnnl__error(CNNL_EIO, "%s: is a folder, not a file", path);
    if (!S_ISREG(sb.st_mode))
        return cnnl__error(CNNL_EIO, "%s: not a regular file", path);
    if ((uint64_t)sb.st_size > SIZE_MAX - 1)
        return cnnl__error(CNNL_EIO, "%s: too large to read", path);
    size_t n = (size_t)sb.st_size, got = 0;
    *buf = malloc(n ? n : 1);
    if (!*buf)
        return cnnl__error(CNNL_ENOMEM, "%s: cannot allocate %zu bytes to read it", path, n);
    while (got < n) {
        ssize_t r = read(fd, *buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return cnnl__error(CNNL_EIO, "%s: read failed: %s", path, strerror(errno));
        if (r == 0)
            return cnnl__error(CNNL_EIO, "%s: the file shrank while being read", path);
        got += (size_t)r;
    }
    *size = n;
    return CNNL_OK;
}

cnnl_status cnnl__st_read(const char *path, cnnl__st_file **out)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl__st_read: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return cnnl__error(CNNL_EINVAL, "cnnl__st_read: the path is empty");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cnnl__error(CNNL_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t size = 0;
    cnnl_status st = read_fd(path, fd, &buf, &size);
    close(fd);
    if (st != CNNL_OK) {
        free(buf);
        return st;
    }
    return cnnl__st_parse(path, buf, size, out);
}

/* ---- writing ---------------------------------------------------------------------------- */

static cnnl_status check_tensor(const char *path, const cnnl__st_tensor *t, size_t *nbytes)
{
    if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0)
        return cnnl__error(CNNL_EINVAL, "%s: a tensor has an empty or reserved name", path);
    if (t->dtype != CNNL_DTYPE_F32 && t->dtype != CNNL_DTYPE_I64 && t->dtype != CNNL_DTYPE_F64)
        return cnnl__error(CNNL_EINVAL, "%s: tensor \"%s\" has an unknown dtype %d", path, t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > CNNL__ST_MAX_DIMS)
        return cnnl__error(CNNL_EINVAL, "%s: tensor \"%s\" has %d dimensions", path, t->name, t->ndim);
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || !cnnl__mul_size(n, (size_t)t->shape[i], &n))
            return cnnl__error(CNNL_EINVAL, "%s: tensor \"%s\" has a bad shape", path, t->name);
    if (!cnnl__mul_size(n, cnnl__st_dtype_size(t->dtype), nbytes))
        return cnnl__error(CNNL_EINVAL, "%s: tensor \"%s\" is too large", path, t->name);
    if (*nbytes > 0 && !t->data)
        return cnnl__error(CNNL_EINVAL, "%s: tensor \"%s\" has no data", path, t->name);
    return CNNL_OK;
}

static cJSON *tensor_json(const cnnl__st_tensor *t, size_t begin, size_t end)
{
    cJSON *e = cJSON_CreateObject();
    cJSON *shape = cJSON_CreateArray();
    cJSON *offs = cJSON_CreateArray();
    int ok = e && shape && offs && cJSON_AddStringToObject(e, "dtype", dtype_name(t->dtype));
    for (int i = 0; ok && i < t->ndim; i++)
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[i]));
    ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)begin)) &&
         cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)end));
    if (ok && cJSON_AddItemToObject(e, "shape", shape)) {
        shape = NULL;
        if (cJSON_AddItemToObject(e, "data_offsets", offs))
            return e;
    }
    cJSON_Delete(shape);
    cJSON_Delete(offs);
    cJSON_Delete(e);
    return NULL;
}

static cJSON *meta_json(const cnnl__st_meta *meta, size_t n)
{
    cJSON *m = cJSON_CreateObject();
    for (size_t i = 0; m && i < n; i++) {
        if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value)) {
            cJSON_Delete(m);
            return NULL;
        }
    }
    return m;
}

/* Builds the header JSON text (caller frees) after validating the list. */
static cnnl_status build_header(const char *path, const cnnl__st_tensor *tensors, size_t count,
                                const cnnl__st_meta *meta, size_t meta_count, char **text)
{
    for (size_t i = 0; i < meta_count; i++)
        if (!meta[i].key || !meta[i].value)
            return cnnl__error(CNNL_EINVAL, "%s: metadata entry %zu has a NULL key or value", path, i);
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    cnnl_status st = CNNL_OK;
    if (meta_count > 0) {
        cJSON *m = meta_json(meta, meta_count);
        if (!m || !cJSON_AddItemToObject(root, "__metadata__", m)) {
            cJSON_Delete(m);
            st = cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
        }
    }
    size_t offset = 0;
    for (size_t i = 0; i < count && st == CNNL_OK; i++) {
        size_t nbytes = 0;
        st = check_tensor(path, &tensors[i], &nbytes);
        for (size_t j = 0; j < i && st == CNNL_OK; j++)
            if (strcmp(tensors[j].name, tensors[i].name) == 0)
                st = cnnl__error(CNNL_EINVAL, "%s: tensor name \"%s\" is used twice", path, tensors[i].name);
        if (st != CNNL_OK)
            break;
        cJSON *e = tensor_json(&tensors[i], offset, offset + nbytes);
        if (!e || !cJSON_AddItemToObject(root, tensors[i].name, e)) {
            cJSON_Delete(e);
            st = cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
        }
        offset += nbytes;
    }
    if (st == CNNL_OK && !(*text = cJSON_PrintUnformatted(root)))
        st = cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    cJSON_Delete(root);
    return st;
}

cnnl_status cnnl__st_write(const char *path, const cnnl__st_tensor *tensors, size_t count,
                           const cnnl__st_meta *meta, size_t meta_count)
{
    if (!path || !*path)
        return cnnl__error(CNNL_EINVAL, "cnnl__st_write: the path is empty");
    if ((count && !tensors) || (meta_count && !meta))
        return cnnl__error(CNNL_EINVAL, "%s: NULL tensor or metadata list", path);
    char *text = NULL;
    cnnl_status st = build_header(path, tensors, count, meta, meta_count, &text);
    if (st != CNNL_OK)
        return st;
    /* Pad the header with spaces so that the data section starts 8-byte aligned. */
    static const char spaces[8] = "       ";
    size_t tlen = strlen(text), pad = (8 - tlen % 8) % 8;
    unsigned char len8[8];
    uint64_t hlen = tlen + pad;
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(hlen >> (8 * i));
    cnnl__io_chunk *chunks = malloc((count + 3) * sizeof *chunks);
    if (!chunks) {
        cJSON_free(text);
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    }
    chunks[0] = (cnnl__io_chunk){len8, 8};
    chunks[1] = (cnnl__io_chunk){text, tlen};
    chunks[2] = (cnnl__io_chunk){spaces, pad};
    for (size_t i = 0; i < count; i++) {
        size_t nbytes = 0;
        check_tensor(path, &tensors[i], &nbytes); /* validated above */
        chunks[3 + i] = (cnnl__io_chunk){tensors[i].data, nbytes};
    }
    st = cnnl__atomic_write(path, chunks, count + 3);
    free(chunks);
    cJSON_free(text);
    return st;
}
