/* Checkpoints: model, optimizer and training state in one safetensors file (layout in io.h). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "io/io_common.h"

#define CHECKPOINT_FORMAT "cnnlite-checkpoint"

typedef struct named_rng {
    char *name;
    uint64_t s[4];
} named_rng;

typedef struct split_part {
    char *part;
    char **files;
    size_t count;
} split_part;

typedef struct kv {
    char *key, *value;
} kv;

struct cnnl_checkpoint {
    int64_t epoch;
    size_t rows, cols;
    double *history;      /* rows x cols, as stored (F64; F32 in files of 0.1.0) */
    float *history_f32;   /* the same values as float, for cnnl_checkpoint_history() */
    char **columns; /* cols names, or NULL */
    named_rng *rngs;
    size_t nrngs;
    split_part *splits;
    size_t nsplits;
    kv *strings;
    size_t nstrings;
};

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

static void clear_history(cnnl_checkpoint *ck)
{
    free(ck->history);
    free(ck->history_f32);
    free_strings(ck->columns, ck->columns ? ck->cols : 0);
    ck->history = NULL;
    ck->history_f32 = NULL;
    ck->columns = NULL;
    ck->rows = ck->cols = 0;
}

CNNL_API cnnl_status cnnl_checkpoint_create(cnnl_checkpoint **out)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_create: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? CNNL_OK : cnnl__error(CNNL_ENOMEM, "cnnl_checkpoint_create: out of memory");
}

CNNL_API void cnnl_checkpoint_free(cnnl_checkpoint *ck)
{
    if (!ck)
        return;
    clear_history(ck);
    for (size_t i = 0; i < ck->nrngs; i++)
        free(ck->rngs[i].name);
    for (size_t i = 0; i < ck->nsplits; i++) {
        free(ck->splits[i].part);
        free_strings(ck->splits[i].files, ck->splits[i].count);
    }
    for (size_t i = 0; i < ck->nstrings; i++) {
        free(ck->strings[i].key);
        free(ck->strings[i].value);
    }
    free(ck->rngs);
    free(ck->splits);
    free(ck->strings);
    free(ck);
}

CNNL_API cnnl_status cnnl_checkpoint_set_epoch(cnnl_checkpoint *ck, int64_t epoch)
{
    if (!ck || epoch < 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_set_epoch: %s", ck ? "epoch is negative" : "ck is NULL");
    ck->epoch = epoch;
    return CNNL_OK;
}

CNNL_API int64_t cnnl_checkpoint_epoch(const cnnl_checkpoint *ck)
{
    return ck ? ck->epoch : 0;
}

static char **copy_strings(const char *const *src, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(src[i]))) {
            free_strings(out, i);
            return NULL;
        }
    return out;
}

/* A double as float, beyond float's range as an infinity (never an undefined conversion). */
static float to_float(double v)
{
    return v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
}

/* Replace the history by rows x cols values given as float (@p f) or double (@p d). */
static cnnl_status put_history(cnnl_checkpoint *ck, const char *who, size_t rows, size_t cols, const float *f,
                               const double *d, const char *const *column_names)
{
    size_t n = 0, bytes = 0;
    if (!ck || (rows > 0 && ((!f && !d) || cols == 0)) || !cnnl__mul_size(rows, cols, &n) ||
        !cnnl__mul_size(n, sizeof(double), &bytes))
        return cnnl__error(CNNL_EINVAL, "%s: %s", who,
                           !ck ? "ck is NULL" : "values is NULL, cols is 0 or the size overflows");
    for (size_t j = 0; column_names && j < cols; j++)
        if (!column_names[j])
            return cnnl__error(CNNL_EINVAL, "%s: column name %zu is NULL", who, j);
    double *h = rows ? malloc(bytes) : NULL;
    float *h32 = rows ? malloc(n * sizeof(float)) : NULL;
    char **names = column_names && cols ? copy_strings(column_names, cols) : NULL;
    if ((rows && (!h || !h32)) || (column_names && cols && !names)) {
        free(h);
        free(h32);
        free_strings(names, names ? cols : 0);
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    }
    for (size_t i = 0; i < n; i++) {
        h[i] = f ? (double)f[i] : d[i];
        h32[i] = f ? f[i] : to_float(d[i]);
    }
    clear_history(ck);
    ck->history = h;
    ck->history_f32 = h32;
    ck->columns = names;
    ck->rows = rows;
    ck->cols = rows || names ? cols : 0;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_checkpoint_set_history(cnnl_checkpoint *ck, size_t rows, size_t cols, const float *values,
                                                 const char *const *column_names)
{
    return put_history(ck, "cnnl_checkpoint_set_history", rows, cols, values, NULL, column_names);
}

CNNL_API cnnl_status cnnl_checkpoint_set_history_f64(cnnl_checkpoint *ck, size_t rows, size_t cols,
                                                     const double *values, const char *const *column_names)
{
    return put_history(ck, "cnnl_checkpoint_set_history_f64", rows, cols, NULL, values ? values : NULL,
                       column_names);
}

CNNL_API cnnl_status cnnl_checkpoint_history(const cnnl_checkpoint *ck, size_t *rows, size_t *cols,
                                             const float **values)
{
    if (!ck || !rows || !cols)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_history: %s is NULL", !ck ? "ck" : !rows ? "rows" : "cols");
    *rows = ck->rows;
    *cols = ck->cols;
    if (values)
        *values = ck->history_f32;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_checkpoint_history_f64(const cnnl_checkpoint *ck, size_t *rows, size_t *cols,
                                                 const double **values)
{
    if (!ck || !rows || !cols)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_history_f64: %s is NULL",
                           !ck ? "ck" : !rows ? "rows" : "cols");
    *rows = ck->rows;
    *cols = ck->cols;
    if (values)
        *values = ck->history;
    return CNNL_OK;
}

CNNL_API const char *cnnl_checkpoint_history_column(const cnnl_checkpoint *ck, size_t col)
{
    return ck && ck->columns && col < ck->cols ? ck->columns[col] : NULL;
}

static named_rng *find_rng(const cnnl_checkpoint *ck, const char *name)
{
    for (size_t i = 0; i < ck->nrngs; i++)
        if (strcmp(ck->rngs[i].name, name) == 0)
            return &ck->rngs[i];
    return NULL;
}

CNNL_API cnnl_status cnnl_checkpoint_set_rng(cnnl_checkpoint *ck, const char *name, const uint64_t state[4])
{
    if (!ck || !state || !cnnl__valid_key(name))
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_set_rng: %s",
                           !ck ? "ck is NULL" : !state ? "state is NULL" : "the name must be 1-64 of [A-Za-z0-9_.-]");
    named_rng *r = find_rng(ck, name);
    if (!r) {
        named_rng *grown = realloc(ck->rngs, (ck->nrngs + 1) * sizeof *grown);
        char *copy = strdup(name);
        if (grown)
            ck->rngs = grown;
        if (!grown || !copy) {
            free(copy);
            return cnnl__error(CNNL_ENOMEM, "cnnl_checkpoint_set_rng: out of memory");
        }
        r = &ck->rngs[ck->nrngs++];
        r->name = copy;
    }
    memcpy(r->s, state, sizeof r->s);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_checkpoint_get_rng(const cnnl_checkpoint *ck, const char *name, uint64_t state[4])
{
    if (!ck || !name || !state)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_get_rng: %s is NULL", !ck ? "ck" : !name ? "name" : "state");
    const named_rng *r = find_rng(ck, name);
    if (!r)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_checkpoint_get_rng: no generator state named \"%s\"", name);
    memcpy(state, r->s, sizeof r->s);
    return CNNL_OK;
}

static split_part *find_split(const cnnl_checkpoint *ck, const char *part)
{
    for (size_t i = 0; ck && part && i < ck->nsplits; i++)
        if (strcmp(ck->splits[i].part, part) == 0)
            return &ck->splits[i];
    return NULL;
}

/* Takes ownership of @p files (count names) in every case. */
static cnnl_status put_split(cnnl_checkpoint *ck, const char *part, char **files, size_t count)
{
    split_part *s = find_split(ck, part);
    if (!s) {
        split_part *grown = realloc(ck->splits, (ck->nsplits + 1) * sizeof *grown);
        char *copy = strdup(part);
        if (grown)
            ck->splits = grown;
        if (!grown || !copy) {
            free(copy);
            free_strings(files, count);
            return cnnl__error(CNNL_ENOMEM, "checkpoint split \"%s\": out of memory", part);
        }
        s = &ck->splits[ck->nsplits++];
        *s = (split_part){copy, NULL, 0};
    }
    free_strings(s->files, s->count);
    s->files = files;
    s->count = count;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_checkpoint_set_split(cnnl_checkpoint *ck, const char *part, const char *const *files,
                                               size_t count)
{
    if (!ck || !cnnl__valid_key(part) || (count && !files))
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_set_split: %s",
                           !ck ? "ck is NULL" : (count && !files) ? "files is NULL"
                                                                  : "the part name must be 1-64 of [A-Za-z0-9_.-]");
    for (size_t i = 0; i < count; i++)
        if (!files[i])
            return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_set_split: file name %zu is NULL", i);
    char **copy = copy_strings(files, count);
    if (!copy)
        return cnnl__error(CNNL_ENOMEM, "cnnl_checkpoint_set_split: out of memory");
    return put_split(ck, part, copy, count);
}

CNNL_API size_t cnnl_checkpoint_split_count(const cnnl_checkpoint *ck, const char *part)
{
    const split_part *s = find_split(ck, part);
    return s ? s->count : 0;
}

CNNL_API const char *cnnl_checkpoint_split_file(const cnnl_checkpoint *ck, const char *part, size_t index)
{
    const split_part *s = find_split(ck, part);
    return s && index < s->count ? s->files[index] : NULL;
}

static kv *find_string(const cnnl_checkpoint *ck, const char *key)
{
    for (size_t i = 0; ck && key && i < ck->nstrings; i++)
        if (strcmp(ck->strings[i].key, key) == 0)
            return &ck->strings[i];
    return NULL;
}

CNNL_API cnnl_status cnnl_checkpoint_set_string(cnnl_checkpoint *ck, const char *key, const char *value)
{
    if (!ck || !value || !cnnl__valid_key(key))
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_set_string: %s",
                           !ck ? "ck is NULL" : !value ? "value is NULL" : "the key must be 1-64 of [A-Za-z0-9_.-]");
    char *v = strdup(value);
    if (!v)
        return cnnl__error(CNNL_ENOMEM, "cnnl_checkpoint_set_string: out of memory");
    kv *e = find_string(ck, key);
    if (!e) {
        kv *grown = realloc(ck->strings, (ck->nstrings + 1) * sizeof *grown);
        char *k = strdup(key);
        if (grown)
            ck->strings = grown;
        if (!grown || !k) {
            free(k);
            free(v);
            return cnnl__error(CNNL_ENOMEM, "cnnl_checkpoint_set_string: out of memory");
        }
        e = &ck->strings[ck->nstrings++];
        *e = (kv){k, NULL};
    }
    free(e->value);
    e->value = v;
    return CNNL_OK;
}

CNNL_API const char *cnnl_checkpoint_get_string(const cnnl_checkpoint *ck, const char *key)
{
    const kv *e = find_string(ck, key);
    return e ? e->value : NULL;
}

/* ---- file names that are not UTF-8 ------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at @p s (1-4), or 0 (overlong forms, surrogates and code
 * points above U+10FFFF are not valid). */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

static bool is_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        int n = utf8_len(s);
        if (!n)
            return false;
        s += n;
    }
    return true;
}

/* A split part as JSON: each name a string when it is UTF-8, else {"hex": "<its bytes>"},
 * so that any file name comes back byte for byte and the header stays UTF-8. */
static char *split_to_json(char *const *files, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *item = NULL;
        if (is_utf8(files[i])) {
            item = cJSON_CreateString(files[i]);
        } else {
            size_t len = strlen(files[i]);
            char *hex = malloc(2 * len + 1);
            item = hex ? cJSON_CreateObject() : NULL;
            if (item) {
                for (size_t k = 0; k < len; k++)
                    snprintf(hex + 2 * k, 3, "%02x", (unsigned char)files[i][k]);
                if (!cJSON_AddStringToObject(item, "hex", hex)) {
                    cJSON_Delete(item);
                    item = NULL;
                }
            }
            free(hex);
        }
        if (!item || !cJSON_AddItemToArray(arr, item)) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One name of a split part: a string, or {"hex": ...}; NULL with *why set if malformed. */
static char *split_name(const cJSON *it, const char **why)
{
    if (cJSON_IsString(it))
        return strdup(it->valuestring);
    const cJSON *h = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "hex") : NULL;
    size_t len = cJSON_IsString(h) ? strlen(h->valuestring) : 1;
    if (!cJSON_IsString(h) || len % 2 || cJSON_GetArraySize(it) != 1) {
        *why = "is neither a string nor {\"hex\": ...}";
        return NULL;
    }
    char *out = malloc(len / 2 + 1);
    if (!out)
        return NULL;
    for (size_t k = 0; k < len / 2; k++) {
        int hi = hex_digit(h->valuestring[2 * k]), lo = hex_digit(h->valuestring[2 * k + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(out);
            *why = "has a bad hex encoding";
            return NULL;
        }
        out[k] = (char)(hi << 4 | lo);
    }
    out[len / 2] = '\0';
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A split part from JSON, every name checked: not empty, relative, without "." or ".."
 * components, and no name twice. */
static cnnl_status split_from_json(const char *path, const char *key, const char *text, char ***items, size_t *n)
{
    size_t count = 0;
    char **out = NULL;
    cnnl_status st = cnnl__json_parse_array(path, key, text, "file name", split_name, &out, &count);
    if (st != CNNL_OK)
        return st;
    for (size_t i = 0; i < count && st == CNNL_OK; i++) {
        const char *name = out[i];
        const char *bad = !*name ? "is empty" : name[0] == '/' ? "is an absolute path" : NULL;
        for (const char *c = name; !bad && *c; c = strchr(c, '/') ? strchr(c, '/') + 1 : c + strlen(c)) {
            size_t k = strcspn(c, "/");
            if ((k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.') || k == 0)
                bad = "has an empty, \".\" or \"..\" component";
        }
        if (bad)
            st = cnnl__error(CNNL_EFORMAT, "%s: metadata \"%s\": file name %zu %s", path, key, i, bad);
    }
    if (st == CNNL_OK && count > 1) {
        char **sorted = malloc(count * sizeof *sorted);
        if (!sorted) {
            st = cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
        } else {
            memcpy(sorted, out, count * sizeof *sorted);
            qsort(sorted, count, sizeof *sorted, cmp_str);
            for (size_t k = 1; k < count && st == CNNL_OK; k++)
                if (strcmp(sorted[k - 1], sorted[k]) == 0)
                    st = cnnl__error(CNNL_EFORMAT, "%s: metadata \"%s\": a file name appears twice", path, key);
            free(sorted);
        }
    }
    if (st != CNNL_OK) {
        free_strings(out, out ? count : 0);
        return st;
    }
    *items = out;
    *n = count;
    return CNNL_OK;
}

/* ---- saving ------------------------------------------------------------------------------- */

/* Scalars and generator words that must live until the file is written. */
typedef struct save_scratch {
    int64_t epoch, step;
    uint64_t model_rng[4];
    char key[96];
} save_scratch;

static cnnl_status add_meta_text(cnnl__st_list *l, const char *key, char *text)
{
    cnnl_status st = text ? cnnl__st_list_meta(l, key, text) : cnnl__error(CNNL_ENOMEM, "out of memory");
    cJSON_free(text);
    return st;
}

static cnnl_status add_optimizer(cnnl__st_list *l, cnnl_optimizer *opt, save_scratch *s)
{
    static const int64_t scalar[1] = {0};
    cnnl__state_src src = cnnl__optim_src(opt, "optim.");
    cnnl_status st = cnnl__state_collect(&src, l);
    s->step = cnnl_optimizer_step_count(opt);
    if (st == CNNL_OK)
        st = cnnl__st_list_tensor(l, "train.", "optim_step", CNNL_DTYPE_I64, 0, scalar, &s->step);
    char lr[32];
    snprintf(lr, sizeof lr, "%.17g", cnnl_optimizer_get_lr(opt));
    return st == CNNL_OK ? cnnl__st_list_meta(l, "optim.lr", lr) : st;
}

static cnnl_status add_fields(cnnl__st_list *l, const cnnl_checkpoint *ck, save_scratch *s)
{
    static const int64_t four[1] = {4};
    int64_t hshape[2] = {(int64_t)ck->rows, (int64_t)ck->cols};
    s->epoch = ck->epoch;
    cnnl_status st = cnnl__st_list_tensor(l, "train.", "epoch", CNNL_DTYPE_I64, 0, four, &s->epoch);
    if (st == CNNL_OK)
        st = cnnl__st_list_tensor(l, "train.", "history", CNNL_DTYPE_F64, 2, hshape, ck->history);
    for (size_t i = 0; i < ck->nrngs && st == CNNL_OK; i++)
        st = cnnl__st_list_tensor(l, "rng.", ck->rngs[i].name, CNNL_DTYPE_I64, 1, four, ck->rngs[i].s);
    if (st == CNNL_OK && ck->columns)
        st = add_meta_text(l, "history.columns", cnnl__json_string_array((const char *const *)ck->columns, ck->cols));
    for (size_t i = 0; i < ck->nsplits && st == CNNL_OK; i++) {
        snprintf(s->key, sizeof s->key, "split.%s", ck->splits[i].part);
        st = add_meta_text(l, s->key, split_to_json(ck->splits[i].files, ck->splits[i].count));
    }
    for (size_t i = 0; i < ck->nstrings && st == CNNL_OK; i++) {
        snprintf(s->key, sizeof s->key, "user.%s", ck->strings[i].key);
        st = cnnl__st_list_meta(l, s->key, ck->strings[i].value);
    }
    return st;
}

CNNL_API cnnl_status cnnl_checkpoint_save(const char *path, cnnl_model *model, cnnl_optimizer *opt,
                                          const cnnl_checkpoint *ck)
{
    if (!path || !*path || !model)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_save: %s is NULL or empty", model ? "path" : "model");
    static const int64_t four[1] = {4};
    cnnl_checkpoint empty = {0};
    save_scratch s = {0};
    cnnl__st_list l = {0};
    cnnl__state_src msrc = cnnl__model_src(model, "model.");
    cnnl_status st = cnnl__arch_meta_add(&l, model, CHECKPOINT_FORMAT);
    if (st == CNNL_OK)
        st = cnnl__state_collect(&msrc, &l);
    if (st == CNNL_OK)
        st = cnnl_model_get_rng_state(model, s.model_rng);
    if (st == CNNL_OK)
        st = cnnl__st_list_tensor(&l, "train.", "model_rng", CNNL_DTYPE_I64, 1, four, s.model_rng);
    if (st == CNNL_OK && opt)
        st = add_optimizer(&l, opt, &s);
    if (st == CNNL_OK)
        st = add_fields(&l, ck ? ck : &empty, &s);
    if (st == CNNL_OK)
        st = cnnl__st_list_write(&l, path);
    else
        cnnl__error_context(st, "%s", path);
    cnnl__st_list_free(&l);
    return st;
}

/* ---- loading ------------------------------------------------------------------------------ */

static cnnl_status need(const cnnl__st_file *f, const char *name, cnnl_dtype dtype, int ndim, const int64_t *shape,
                        const cnnl__st_tensor **out)
{
    const cnnl__st_tensor *t = cnnl__st_find(f, name);
    bool ok = t && t->dtype == dtype && t->ndim == ndim;
    for (int i = 0; ok && shape && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok)
        return cnnl__error(CNNL_EFORMAT, "%s: checkpoint tensor \"%s\" is %s", f->path, name,
                           t ? "not of the expected dtype and shape" : "missing");
    *out = t;
    return CNNL_OK;
}

/* Steps and counts are used in double arithmetic: at most 2^53, where every integer is exact. */
#define MAX_STEP (INT64_C(1) << 53)
/* Largest magnitude of any history value. */
#define MAX_HISTORY_VALUE 1e15

/* Ranges of the history columns the trainer writes (cnnl_history_save() names them). */
static const struct {
    const char *name;
    double lo, hi;
    bool integer;
} history_ranges[] = {
    {"epoch", 1, INT32_MAX, true},          {"train_loss", 0, MAX_HISTORY_VALUE, false},
    {"train_loss_mean", 0, MAX_HISTORY_VALUE, false}, {"train_accuracy", 0, 100, false},
    {"test_loss", 0, MAX_HISTORY_VALUE, false},       {"test_accuracy", 0, 100, false},
    {"seconds", 0, MAX_HISTORY_VALUE, false},         {"images_per_second", 0, MAX_HISTORY_VALUE, false},
    {"learning_rate", 0, FLT_MAX, false},             {"train_batches", 0, (double)MAX_STEP, true},
    {"train_images", 0, (double)MAX_STEP, true},      {"test_images", 0, (double)MAX_STEP, true},
};

/* History value (row, col): finite, within +-1e15, and within its column's range when the
 * column is one of the trainer's. */
static cnnl_status check_history_value(const char *path, const cnnl_checkpoint *ck, size_t row, size_t col)
{
    double v = ck->history[row * ck->cols + col];
    const char *name = ck->columns ? ck->columns[col] : NULL;
    double lo = -MAX_HISTORY_VALUE, hi = MAX_HISTORY_VALUE;
    bool integer = false;
    for (size_t k = 0; name && k < sizeof history_ranges / sizeof history_ranges[0]; k++)
        if (strcmp(name, history_ranges[k].name) == 0) {
            lo = history_ranges[k].lo;
            hi = history_ranges[k].hi;
            integer = history_ranges[k].integer;
        }
    if (isfinite(v) && v >= lo && v <= hi && (!integer || v == floor(v)))
        return CNNL_OK;
    char label[96];
    if (name)
        snprintf(label, sizeof label, "\"%.60s\"", name);
    else
        snprintf(label, sizeof label, "%zu", col);
    return cnnl__error(CNNL_EFORMAT, "%s: \"train.history\" row %zu, column %s is %g; must be %s in [%g, %g]", path,
                       row, label, v, integer ? "an integer" : "finite", lo, hi);
}

/* Every float of the model's and the optimizer's state is finite; every integer (BatchNorm's
 * batch counts) is 0..2^53. */
static cnnl_status check_state_values(const cnnl__st_file *f)
{
    for (size_t i = 0; i < f->count; i++) {
        const cnnl__st_tensor *t = &f->tensors[i];
        if (strncmp(t->name, "model.", 6) != 0 && strncmp(t->name, "optim.", 6) != 0)
            continue;
        for (size_t k = 0; k < t->numel; k++) {
            bool ok;
            if (t->dtype == CNNL_DTYPE_F32) {
                float v;
                memcpy(&v, (const char *)t->data + 4 * k, 4);
                ok = isfinite(v);
            } else {
                int64_t v;
                memcpy(&v, (const char *)t->data + 8 * k, 8);
                ok = v >= 0 && v <= MAX_STEP;
            }
            if (!ok)
                return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\" element %zu is %s", f->path, t->name, k,
                                   t->dtype == CNNL_DTYPE_F32 ? "not finite" : "outside 0..2^53");
        }
    }
    return CNNL_OK;
}

/* No file is in two split parts. */
static cnnl_status check_split_overlap(const char *path, const cnnl_checkpoint *ck)
{
    size_t total = 0;
    for (size_t i = 0; i < ck->nsplits; i++)
        total += ck->splits[i].count;
    if (ck->nsplits < 2 || total < 2)
        return CNNL_OK;
    char **all = malloc(total * sizeof *all);
    if (!all)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    size_t n = 0;
    for (size_t i = 0; i < ck->nsplits; i++)
        for (size_t k = 0; k < ck->splits[i].count; k++)
            all[n++] = ck->splits[i].files[k];
    qsort(all, n, sizeof *all, cmp_str);
    cnnl_status st = CNNL_OK;
    for (size_t k = 1; k < n && st == CNNL_OK; k++)
        if (strcmp(all[k - 1], all[k]) == 0)
            st = cnnl__error(CNNL_EFORMAT, "%s: metadata \"split.*\": a file is in two split parts", path);
    free(all);
    return st;
}

static cnnl_status read_history(const cnnl__st_file *f, cnnl_checkpoint *ck)
{
    /* F64 since format 2; checkpoints of 0.1.0 hold F32 */
    const cnnl__st_tensor *h = cnnl__st_find(f, "train.history");
    cnnl_status st = need(f, "train.history", h && h->dtype == CNNL_DTYPE_F32 ? CNNL_DTYPE_F32 : CNNL_DTYPE_F64, 2,
                          NULL, &h);
    if (st != CNNL_OK)
        return st;
    ck->rows = (size_t)h->shape[0];
    ck->cols = (size_t)h->shape[1];
    if (h->numel) {
        ck->history = malloc(h->numel * sizeof(double));
        ck->history_f32 = malloc(h->numel * sizeof(float));
        if (!ck->history || !ck->history_f32)
            return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
        for (size_t i = 0; i < h->numel; i++) {
            if (h->dtype == CNNL_DTYPE_F32) {
                memcpy(&ck->history_f32[i], (const char *)h->data + 4 * i, 4);
                ck->history[i] = ck->history_f32[i];
            } else {
                memcpy(&ck->history[i], (const char *)h->data + 8 * i, 8);
                ck->history_f32[i] = to_float(ck->history[i]);
            }
        }
    }
    const char *cols = cnnl__st_meta_get(f, "history.columns");
    if (cols) {
        size_t n = 0;
        st = cnnl__json_parse_string_array(f->path, "history.columns", cols, &ck->columns, &n);
        if (st == CNNL_OK && n != ck->cols) {
            free_strings(ck->columns, n);
            ck->columns = NULL;
            st = cnnl__error(CNNL_EFORMAT, "%s: %zu history column names for %zu columns", f->path, n, ck->cols);
        }
    }
    for (size_t i = 0; i < ck->rows && st == CNNL_OK; i++)
        for (size_t j = 0; j < ck->cols && st == CNNL_OK; j++)
            st = check_history_value(f->path, ck, i, j);
    return st;
}

static cnnl_status read_meta_fields(const cnnl__st_file *f, cnnl_checkpoint *ck)
{
    cnnl_status st = CNNL_OK;
    for (size_t i = 0; i < f->meta_count && st == CNNL_OK; i++) {
        const char *k = f->meta[i].key, *v = f->meta[i].value;
        if (strncmp(k, "split.", 6) == 0) {
            char **files = NULL;
            size_t n = 0;
            st = split_from_json(f->path, k, v, &files, &n);
            if (st == CNNL_OK && !cnnl__valid_key(k + 6)) {
                free_strings(files, n);
                st = cnnl__error(CNNL_EFORMAT, "%s: bad split part name in \"%s\"", f->path, k);
            }
            if (st == CNNL_OK)
                st = put_split(ck, k + 6, files, n);
        } else if (strncmp(k, "user.", 5) == 0) {
            st = cnnl_checkpoint_set_string(ck, k + 5, v);
            if (st == CNNL_EINVAL)
                st = cnnl__error(CNNL_EFORMAT, "%s: bad user key \"%s\"", f->path, k);
        }
    }
    return st;
}

static cnnl_status read_tensors(const cnnl__st_file *f, cnnl_checkpoint *ck, uint64_t model_rng[4])
{
    static const int64_t four[1] = {4};
    const cnnl__st_tensor *t = NULL;
    cnnl_status st = need(f, "train.epoch", CNNL_DTYPE_I64, 0, NULL, &t);
    if (st == CNNL_OK) {
        memcpy(&ck->epoch, t->data, 8);
        if (ck->epoch < 0 || ck->epoch > INT32_MAX)
            st = cnnl__error(CNNL_EFORMAT, "%s: \"train.epoch\" is %lld; must be 0..%d", f->path,
                             (long long)ck->epoch, INT32_MAX);
    }
    if (st == CNNL_OK)
        st = need(f, "train.model_rng", CNNL_DTYPE_I64, 1, four, &t);
    if (st == CNNL_OK)
        memcpy(model_rng, t->data, 32);
    if (st == CNNL_OK && (model_rng[0] | model_rng[1] | model_rng[2] | model_rng[3]) == 0)
        st = cnnl__error(CNNL_EFORMAT, "%s: the model's generator state is all zero", f->path);
    for (size_t i = 0; i < f->count && st == CNNL_OK; i++) {
        const cnnl__st_tensor *r = &f->tensors[i];
        if (strncmp(r->name, "rng.", 4) != 0)
            continue;
        uint64_t s[4];
        if (need(f, r->name, CNNL_DTYPE_I64, 1, four, &t) != CNNL_OK)
            return CNNL_EFORMAT;
        memcpy(s, r->data, sizeof s);
        if ((s[0] | s[1] | s[2] | s[3]) == 0)
            return cnnl__error(CNNL_EFORMAT, "%s: generator state \"%s\" is all zero (no xoshiro256** state)",
                               f->path, r->name);
        st = cnnl_checkpoint_set_rng(ck, r->name + 4, s);
        if (st == CNNL_EINVAL)
            st = cnnl__error(CNNL_EFORMAT, "%s: bad generator name \"%s\"", f->path, r->name);
    }
    return st == CNNL_OK ? read_history(f, ck) : st;
}

/* Every tensor belongs to a known group. */
static cnnl_status check_groups(const cnnl__st_file *f)
{
    static const char *const fixed[] = {"train.epoch", "train.history", "train.model_rng", "train.optim_step"};
    for (size_t i = 0; i < f->count; i++) {
        const char *n = f->tensors[i].name;
        bool known = strncmp(n, "model.", 6) == 0 || strncmp(n, "rng.", 4) == 0 || strncmp(n, "optim.", 6) == 0;
        for (int k = 0; k < 4 && !known; k++)
            known = strcmp(n, fixed[k]) == 0;
        if (!known)
            return cnnl__error(CNNL_EFORMAT, "%s: unexpected tensor \"%s\" in a checkpoint", f->path, n);
    }
    return CNNL_OK;
}

typedef struct optim_state {
    int64_t step;
    double lr;
} optim_state;

static cnnl_status read_optim(const cnnl__st_file *f, cnnl_optimizer *opt, optim_state *o)
{
    const cnnl__st_tensor *t = NULL;
    cnnl__state_src src = cnnl__optim_src(opt, "optim.");
    cnnl_status st = cnnl__state_check(f, &src, true);
    if (st == CNNL_OK)
        st = need(f, "train.optim_step", CNNL_DTYPE_I64, 0, NULL, &t);
    if (st != CNNL_OK)
        return st;
    memcpy(&o->step, t->data, 8);
    if (o->step < 0 || o->step > CNNL_OPTIMIZER_MAX_STEPS)
        return cnnl__error(CNNL_EFORMAT, "%s: \"train.optim_step\" is %lld; must be 0..2^53", f->path,
                           (long long)o->step);
    const char *lr = cnnl__st_meta_get(f, "optim.lr");
    char *end = NULL;
    o->lr = lr ? strtod(lr, &end) : NAN;
    if (!lr || end == lr || *end || !(o->lr >= 0.0 && o->lr <= FLT_MAX))
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"optim.lr\" is %s%.40s%s; must be a finite number >= 0",
                           f->path, lr ? "\"" : "", lr ? lr : "missing", lr ? "\"" : "");
    return CNNL_OK;
}

static cnnl_status check_file(const cnnl__st_file *f, cnnl_model *model, cnnl_optimizer *opt, cnnl_checkpoint *ck,
                              uint64_t model_rng[4], optim_state *o)
{
    const char *format = cnnl__st_meta_get(f, "format");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        return cnnl__error(CNNL_EFORMAT, "%s: not a cnnlite checkpoint (metadata \"format\" is %s%.40s%s)", f->path,
                           format ? "\"" : "", format ? format : "missing", format ? "\"" : "");
    cnnl__state_src msrc = cnnl__model_src(model, "model.");
    cnnl_status st = check_groups(f);
    if (st == CNNL_OK)
        st = cnnl__state_check(f, &msrc, true);
    if (st == CNNL_OK && opt)
        st = read_optim(f, opt, o);
    if (st == CNNL_OK)
        st = read_tensors(f, ck, model_rng);
    if (st == CNNL_OK)
        st = read_meta_fields(f, ck);
    if (st == CNNL_OK)
        st = check_split_overlap(f->path, ck);
    if (st == CNNL_OK)
        st = check_state_values(f);
    return st;
}

CNNL_API cnnl_status cnnl_checkpoint_load(const char *path, cnnl_model *model, cnnl_optimizer *opt,
                                          cnnl_checkpoint **out)
{
    if (out)
        *out = NULL;
    if (!path || !model)
        return cnnl__error(CNNL_EINVAL, "cnnl_checkpoint_load: %s is NULL", model ? "path" : "model");
    cnnl__st_file *f = NULL;
    cnnl_checkpoint *ck = NULL;
    uint64_t model_rng[4];
    optim_state o = {0, 0.0f};
    cnnl_status st = cnnl__st_read(path, &f);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_create(&ck);
    if (st == CNNL_OK)
        st = check_file(f, model, opt, ck, model_rng, &o);
    /* Everything is valid: nothing below can fail on the file's account. */
    cnnl__state_src msrc = cnnl__model_src(model, "model.");
    if (st == CNNL_OK)
        st = cnnl__state_apply(f, &msrc);
    if (st == CNNL_OK)
        st = cnnl_model_set_rng_state(model, model_rng);
    if (st == CNNL_OK && opt) {
        cnnl__state_src osrc = cnnl__optim_src(opt, "optim.");
        st = cnnl__state_apply(f, &osrc);
        if (st == CNNL_OK)
            st = cnnl_optimizer_set_step_count(opt, o.step);
        if (st == CNNL_OK)
            st = cnnl_optimizer_set_lr(opt, o.lr);
    }
    cnnl__st_free(f);
    if (st != CNNL_OK || !out) {
        cnnl_checkpoint_free(ck);
        return st;
    }
    *out = ck;
    return CNNL_OK;
}
