/* Tensor lists to write, state matching, and architecture metadata (see io_common.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "io/io_common.h"

/* ---- lists to write --------------------------------------------------------------------- */

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

static char *own(cnnl__st_list *l, const char *a, const char *b)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    if (!grow((void **)&l->owned, &l->cap_o, l->no + 1, sizeof *l->owned))
        return NULL;
    char *s = malloc(la + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    if (lb)
        memcpy(s + la, b, lb);
    s[la + lb] = '\0';
    l->owned[l->no++] = s;
    return s;
}

cnnl_status cnnl__st_list_tensor(cnnl__st_list *l, const char *prefix, const char *name, cnnl_dtype dtype,
                                 int ndim, const int64_t *shape, const void *data)
{
    if (ndim < 0 || ndim > CNNL__ST_MAX_DIMS)
        return cnnl__error(CNNL_EINVAL, "tensor \"%s%s\" has %d dimensions", prefix, name, ndim);
    char *full = own(l, prefix, name);
    if (!full || !grow((void **)&l->t, &l->cap_t, l->nt + 1, sizeof *l->t))
        return cnnl__error(CNNL_ENOMEM, "out of memory");
    cnnl__st_tensor *t = &l->t[l->nt++];
    memset(t, 0, sizeof *t);
    t->name = full;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->data = data;
    return CNNL_OK;
}

cnnl_status cnnl__st_list_meta(cnnl__st_list *l, const char *key, const char *value)
{
    char *k = own(l, key, NULL);
    char *v = k ? own(l, value, NULL) : NULL;
    if (!v || !grow((void **)&l->m, &l->cap_m, l->nm + 1, sizeof *l->m))
        return cnnl__error(CNNL_ENOMEM, "out of memory");
    l->m[l->nm].key = k;
    l->m[l->nm].value = v;
    l->nm++;
    return CNNL_OK;
}

cnnl_status cnnl__st_list_write(const cnnl__st_list *l, const char *path)
{
    return cnnl__st_write(path, l->t, l->nt, l->m, l->nm);
}

void cnnl__st_list_free(cnnl__st_list *l)
{
    for (size_t i = 0; i < l->no; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->t);
    free(l->m);
    memset(l, 0, sizeof *l);
}

/* ---- state of models and optimizers ----------------------------------------------------- */

static cnnl_status model_at(void *obj, size_t index, cnnl_param_info *info)
{
    return cnnl_model_state_at(obj, index, info);
}

static cnnl_status optim_at(void *obj, size_t index, cnnl_param_info *info)
{
    return cnnl_optimizer_state_at(obj, index, info);
}

cnnl__state_src cnnl__model_src(cnnl_model *model, const char *prefix)
{
    return (cnnl__state_src){model, cnnl_model_state_count(model), model_at, prefix};
}

cnnl__state_src cnnl__optim_src(cnnl_optimizer *opt, const char *prefix)
{
    return (cnnl__state_src){opt, cnnl_optimizer_state_count(opt), optim_at, prefix};
}

cnnl_status cnnl__state_collect(const cnnl__state_src *src, cnnl__st_list *l)
{
    for (size_t i = 0; i < src->count; i++) {
        cnnl_param_info info;
        cnnl_status st = src->at(src->obj, i, &info);
        if (st == CNNL_OK)
            st = cnnl__st_list_tensor(l, src->prefix, info.name, info.dtype, info.ndim, info.shape,
                                      info.dtype == CNNL_DTYPE_I64 ? (const void *)info.data_i64
                                                                   : (const void *)info.data);
        if (st != CNNL_OK)
            return st;
    }
    return CNNL_OK;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A bounded, comma-separated list of names for messages. */
typedef struct name_list {
    char text[320];
    size_t len;
    size_t count, shown;
} name_list;

static void name_list_add(name_list *nl, const char *name)
{
    nl->count++;
    size_t need = strlen(name) + 2;
    if (nl->len + need + 1 >= sizeof nl->text - 24)
        return;
    nl->len += (size_t)snprintf(nl->text + nl->len, sizeof nl->text - nl->len, "%s%s", nl->shown ? ", " : "", name);
    nl->shown++;
}

static void name_list_end(name_list *nl)
{
    if (nl->count > nl->shown)
        snprintf(nl->text + nl->len, sizeof nl->text - nl->len, "%s... (%zu more)", nl->shown ? ", " : "",
                 nl->count - nl->shown);
}

static void format_dims(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

static cnnl_status check_one(const cnnl__st_file *f, const cnnl__st_tensor *t, const cnnl_param_info *info)
{
    static const char *const dt[] = {"F32", "I64"};
    if (t->dtype != info->dtype)
        return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\" is %s in the file but %s in the model", f->path, t->name,
                           dt[t->dtype], dt[info->dtype]);
    bool same = t->ndim == info->ndim;
    for (int i = 0; same && i < t->ndim; i++)
        same = t->shape[i] == info->shape[i];
    if (!same) {
        char a[96], b[96];
        format_dims(a, sizeof a, t->ndim, t->shape);
        format_dims(b, sizeof b, info->ndim, info->shape);
        return cnnl__error(CNNL_ESHAPE, "%s: tensor \"%s\" has shape %s in the file but %s in the model", f->path,
                           t->name, a, b);
    }
    return CNNL_OK;
}

/* Finds the file tensor for prefix+name without building the joined string. */
static const cnnl__st_tensor *find_prefixed(const cnnl__st_file *f, const char *prefix, const char *name,
                                            size_t *index)
{
    size_t lp = strlen(prefix);
    for (size_t i = 0; i < f->count; i++) {
        const char *n = f->tensors[i].name;
        if (strncmp(n, prefix, lp) == 0 && strcmp(n + lp, name) == 0) {
            *index = i;
            return &f->tensors[i];
        }
    }
    return NULL;
}

/* Names are compared first, so that a file of another architecture is reported as missing and
 * unexpected tensors (strict) rather than by the first shape that happens to differ. */
cnnl_status cnnl__state_check(const cnnl__st_file *f, const cnnl__state_src *src, bool strict)
{
    bool *used = calloc(f->count ? f->count : 1, sizeof *used);
    if (!used)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    name_list missing = {.len = 0}, unexpected = {.len = 0};
    cnnl_status st = CNNL_OK;
    size_t bad = SIZE_MAX; /* first state tensor whose dtype or shape differs */
    for (size_t i = 0; i < src->count && st == CNNL_OK; i++) {
        cnnl_param_info info;
        size_t k = 0;
        if ((st = src->at(src->obj, i, &info)) != CNNL_OK)
            break;
        const cnnl__st_tensor *t = find_prefixed(f, src->prefix, info.name, &k);
        if (!t) {
            name_list_add(&missing, info.name);
            continue;
        }
        used[k] = true;
        if (bad == SIZE_MAX && check_one(f, t, &info) != CNNL_OK)
            bad = i;
    }
    for (size_t k = 0; k < f->count && st == CNNL_OK; k++)
        if (!used[k] && has_prefix(f->tensors[k].name, src->prefix))
            name_list_add(&unexpected, f->tensors[k].name + strlen(src->prefix));
    free(used);
    if (st != CNNL_OK)
        return st;
    name_list_end(&missing);
    name_list_end(&unexpected);
    char where[48] = "";
    if (src->prefix[0])
        snprintf(where, sizeof where, " under \"%.30s\"", src->prefix);
    if (strict && (missing.count || unexpected.count))
        return cnnl__error(CNNL_EFORMAT, "%s: %zu missing tensors%s: %s; %zu unexpected tensors%s: %s", f->path,
                           missing.count, where, missing.count ? missing.text : "none", unexpected.count, where,
                           unexpected.count ? unexpected.text : "none");
    if (src->count > 0 && missing.count == src->count)
        return cnnl__error(CNNL_EFORMAT, "%s: none of the %zu tensors%s the model needs is in the file (%s)", f->path,
                           src->count, where, missing.text);
    if (bad != SIZE_MAX) {
        cnnl_param_info info;
        size_t k = 0;
        src->at(src->obj, bad, &info);
        return check_one(f, find_prefixed(f, src->prefix, info.name, &k), &info);
    }
    if (missing.count || unexpected.count)
        cnnl__log(CNNL_LOG_WARNING,
                  "%s: loading anyway without %zu missing tensors%s (%s) and ignoring %zu unexpected (%s)", f->path,
                  missing.count, where, missing.count ? missing.text : "none", unexpected.count,
                  unexpected.count ? unexpected.text : "none");
    return CNNL_OK;
}

cnnl_status cnnl__state_apply(const cnnl__st_file *f, const cnnl__state_src *src)
{
    for (size_t i = 0; i < src->count; i++) {
        cnnl_param_info info;
        size_t k = 0;
        cnnl_status st = src->at(src->obj, i, &info);
        if (st != CNNL_OK)
            return st;
        const cnnl__st_tensor *t = find_prefixed(f, src->prefix, info.name, &k);
        if (!t)
            continue;
        void *dst = info.dtype == CNNL_DTYPE_I64 ? (void *)info.data_i64 : (void *)info.data;
        if (t->nbytes)
            memcpy(dst, t->data, t->nbytes);
    }
    return CNNL_OK;
}

/* ---- metadata ----------------------------------------------------------------------------- */

bool cnnl__valid_key(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

char *cnnl__json_string_array(const char *const *items, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *s = cJSON_CreateString(items[i]);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

static char *string_item(const cJSON *item, const char **why)
{
    if (!cJSON_IsString(item)) {
        *why = "is not a string";
        return NULL;
    }
    return strdup(item->valuestring);
}

cnnl_status cnnl__json_parse_array(const char *path, const char *key, const char *text, const char *what,
                                   cnnl__json_item_reader read, char ***items, size_t *n)
{
    *items = NULL;
    *n = 0;
    cJSON *arr = cJSON_Parse(text);
    if (!arr && cnnl__json_well_formed(text, strlen(text)))
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory reading metadata \"%s\"", path, key);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"%s\" is not a JSON array of %ss", path, key,
                           read ? what : "string");
    }
    if (!read)
        read = string_item;
    size_t count = (size_t)cJSON_GetArraySize(arr);
    char **out = calloc(count ? count : 1, sizeof *out);
    cnnl_status st = out ? CNNL_OK : cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, arr) {
        if (st != CNNL_OK)
            break;
        const char *why = NULL;
        if (!(out[i] = read(it, &why)))
            st = why ? cnnl__error(CNNL_EFORMAT, "%s: metadata \"%s\": %s %zu %s", path, key, what, i, why)
                     : cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
        i++;
    }
    cJSON_Delete(arr);
    if (st != CNNL_OK) {
        for (size_t j = 0; out && j < count; j++)
            free(out[j]);
        free(out);
        return st;
    }
    *items = out;
    *n = count;
    return CNNL_OK;
}

cnnl_status cnnl__json_parse_string_array(const char *path, const char *key, const char *text, char ***items,
                                          size_t *n)
{
    return cnnl__json_parse_array(path, key, text, "entry", NULL, items, n);
}

cnnl_status cnnl__arch_meta_add(cnnl__st_list *l, cnnl_model *model, const char *format)
{
    cnnl_status st = cnnl__st_list_meta(l, "format", format);
    if (st == CNNL_OK)
        st = cnnl__st_list_meta(l, "format_version", "1");
    const char *json = NULL;
    if (st == CNNL_OK && cnnl_model_to_json(model, &json) == CNNL_OK)
        st = cnnl__st_list_meta(l, "description", json);
    cnnl_report_opts o;
    if (st != CNNL_OK || cnnl_model_report_opts(model, &o) != CNNL_OK) {
        cnnl_clear_error();
        return st;
    }
    char v[5][32];
    snprintf(v[0], sizeof v[0], "%d", o.classes);
    snprintf(v[1], sizeof v[1], "%d", o.channels);
    snprintf(v[2], sizeof v[2], "%d", o.size);
    snprintf(v[3], sizeof v[3], "%.9g", (double)o.dropout);
    snprintf(v[4], sizeof v[4], "%llu", (unsigned long long)o.seed);
    const char *keys[] = {"classes", "channels", "size", "dropout", "seed"};
    st = cnnl__st_list_meta(l, "arch", "report_net");
    for (int i = 0; i < 5 && st == CNNL_OK; i++)
        st = cnnl__st_list_meta(l, keys[i], v[i]);
    if (st == CNNL_OK)
        st = cnnl__st_list_meta(l, "batchnorm", o.batchnorm ? "true" : "false");
    return st;
}

static cnnl_status meta_int(const cnnl__st_file *f, const char *key, long long lo, long long hi, long long *out)
{
    const char *s = cnnl__st_meta_get(f, key);
    if (!s)
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"arch\" is set but \"%s\" is missing", f->path, key);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"%s\" is \"%.40s\"; expected an integer in [%lld, %lld]",
                           f->path, key, s, lo, hi);
    *out = v;
    return CNNL_OK;
}

static cnnl_status meta_seed(const cnnl__st_file *f, uint64_t *out)
{
    const char *s = cnnl__st_meta_get(f, "seed");
    if (!s)
        return CNNL_OK; /* optional: PyTorch-side tools need not record it */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"seed\" is \"%.40s\"; expected an unsigned integer", f->path, s);
    *out = (uint64_t)v;
    return CNNL_OK;
}

static cnnl_status meta_bool_float(const cnnl__st_file *f, cnnl_report_opts *o)
{
    const char *bn = cnnl__st_meta_get(f, "batchnorm");
    if (!bn || (strcmp(bn, "true") != 0 && strcmp(bn, "false") != 0))
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"batchnorm\" is %s%.20s%s; expected \"true\" or \"false\"",
                           f->path, bn ? "\"" : "", bn ? bn : "missing", bn ? "\"" : "");
    o->batchnorm = strcmp(bn, "true") == 0;
    const char *dp = cnnl__st_meta_get(f, "dropout");
    char *end = NULL;
    float p = dp ? strtof(dp, &end) : NAN;
    if (!dp || end == dp || *end || !(p >= 0.0f && p < 1.0f))
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"dropout\" is %.40s; expected a number in [0, 1)", f->path,
                           dp ? dp : "missing");
    o->dropout = p;
    return CNNL_OK;
}

cnnl_status cnnl__arch_meta_parse(const cnnl__st_file *f, cnnl_report_opts *opts)
{
    const char *arch = cnnl__st_meta_get(f, "arch");
    if (!arch)
        return CNNL_ENOTFOUND;
    if (strcmp(arch, "report_net") != 0)
        return cnnl__error(CNNL_EFORMAT, "%s: unknown architecture \"%.40s\" in the metadata", f->path, arch);
    cnnl_report_opts o = cnnl_report_opts_default();
    long long classes = 0, channels = 0, size = 0;
    cnnl_status st = meta_int(f, "classes", 1, 1 << 20, &classes);
    if (st == CNNL_OK)
        st = meta_int(f, "channels", 1, 1 << 16, &channels);
    if (st == CNNL_OK)
        st = meta_int(f, "size", 1, 1 << 16, &size);
    if (st == CNNL_OK)
        st = meta_seed(f, &o.seed);
    if (st == CNNL_OK)
        st = meta_bool_float(f, &o);
    if (st != CNNL_OK)
        return st;
    o.classes = (int)classes;
    o.channels = (int)channels;
    o.size = (int)size;
    *opts = o;
    return CNNL_OK;
}
