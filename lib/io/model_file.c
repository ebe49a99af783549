/* Model files: a model's state_dict as safetensors, with metadata to predict from the file alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "data/norm.h"
#include "io/io_common.h"
#include "nn/arch_impl.h"
#include "nn/model_impl.h"

struct cnnl_model_meta {
    char **keys, **values;  /* every __metadata__ entry */
    size_t count;
    char **classes;
    size_t num_classes;
    bool has_norm;
    cnnl_normalization norm;
    bool has_opts;
    cnnl_report_opts opts;
};

static const char *const NORM_NAMES[] = {"unit", "symmetric", "mean_std"};

CNNL_API cnnl_save_opts cnnl_save_opts_default(void)
{
    cnnl_save_opts o = {NULL, 0, NULL};
    return o;
}

/* ---- saving ------------------------------------------------------------------------------- */

static char *norm_json(const cnnl_normalization *n)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "kind", NORM_NAMES[n->kind]);
    if (ok && n->kind == CNNL_NORM_MEAN_STD) {
        cJSON *m = cJSON_AddArrayToObject(o, "mean");
        cJSON *s = cJSON_AddArrayToObject(o, "std");
        ok = m && s;
        for (int c = 0; ok && c < n->channels; c++)
            ok = cJSON_AddItemToArray(m, cJSON_CreateNumber((double)n->mean[c])) &&
                 cJSON_AddItemToArray(s, cJSON_CreateNumber((double)n->std[c]));
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

static cnnl_status check_classes(const char *path, cnnl_model *model, const cnnl_save_opts *o)
{
    if (o->num_classes < 0 || (o->num_classes > 0 && !o->class_names))
        return cnnl__error(CNNL_EINVAL, "%s: %d class names but class_names is %s", path, o->num_classes,
                           o->class_names ? "set" : "NULL");
    for (int i = 0; i < o->num_classes; i++)
        if (!o->class_names[i] || !o->class_names[i][0])
            return cnnl__error(CNNL_EINVAL, "%s: class name %d is NULL or empty", path, i);
    cnnl_report_opts r;
    if (o->num_classes > 0 && cnnl_model_report_opts(model, &r) == CNNL_OK && r.classes != o->num_classes)
        return cnnl__error(CNNL_EINVAL, "%s: %d class names for a model with %d classes", path, o->num_classes,
                           r.classes);
    /* A network from a description: as many names as flat outputs (what loading checks). */
    const char *desc = NULL;
    if (o->num_classes > 0 && cnnl_model_to_json(model, &desc) == CNNL_OK) {
        size_t outs = cnnl_model_num_outputs(model);
        if (outs == 0)
            return cnnl__error(CNNL_EINVAL, "%s: %d class names but the network's output is not flat features "
                               "(end it with Flatten and Linear)", path, o->num_classes);
        if (outs != (size_t)o->num_classes)
            return cnnl__error(CNNL_EINVAL, "%s: %d class names but the network has %zu outputs", path,
                               o->num_classes, outs);
    }
    cnnl_clear_error();
    return CNNL_OK;
}

static cnnl_status add_text_meta(cnnl__st_list *l, const char *path, const char *key, char *text)
{
    cnnl_status st = text ? cnnl__st_list_meta(l, key, text) : cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    cJSON_free(text);
    return st;
}

CNNL_API cnnl_status cnnl_model_save(cnnl_model *model, const char *path, const cnnl_save_opts *opts)
{
    if (!model || !path || !*path)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_save: %s is NULL or empty", !model ? "model" : "path");
    cnnl_save_opts o = opts ? *opts : cnnl_save_opts_default();
    cnnl_status st = check_classes(path, model, &o);
    if (st == CNNL_OK && o.norm)
        st = cnnl__norm_check(path, o.norm);
    if (st != CNNL_OK)
        return st;
    cnnl__st_list l = {0};
    cnnl__state_src src = cnnl__model_src(model, "");
    st = cnnl__arch_meta_add(&l, model, "cnnlite");
    if (st == CNNL_OK && o.num_classes > 0)
        st = add_text_meta(&l, path, "class_names",
                           cnnl__json_string_array((const char *const *)o.class_names, (size_t)o.num_classes));
    if (st == CNNL_OK && o.norm)
        st = add_text_meta(&l, path, "normalization", norm_json(o.norm));
    if (st == CNNL_OK)
        st = cnnl__state_collect(&src, &l);
    if (st == CNNL_OK)
        st = cnnl__st_list_write(&l, path);
    cnnl__st_list_free(&l);
    if (st == CNNL_ENOMEM)
        cnnl__error_context(st, "%s", path);
    return st;
}

/* ---- metadata ----------------------------------------------------------------------------- */

CNNL_API void cnnl_model_meta_free(cnnl_model_meta *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    for (size_t i = 0; i < m->num_classes; i++)
        free(m->classes[i]);
    free(m->keys);
    free(m->values);
    free(m->classes);
    free(m);
}

static bool float_array(const cJSON *a, float *out, int *n)
{
    int count = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || count < 1 || count > CNNL_NORM_MAX_CHANNELS)
        return false;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return false;
        out[i++] = (float)it->valuedouble;
    }
    *n = count;
    return true;
}

static cnnl_status parse_norm(const char *path, const char *text, cnnl_normalization *n)
{
    memset(n, 0, sizeof *n);
    cJSON *o = cJSON_Parse(text);
    if (!o && cnnl__json_well_formed(text, strlen(text)))
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory reading the input normalization", path);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    cnnl_status st = CNNL_EFORMAT;
    for (int k = 0; cJSON_IsString(kind) && k < 3; k++)
        if (strcmp(kind->valuestring, NORM_NAMES[k]) == 0) {
            n->kind = (cnnl_norm_kind)k;
            st = CNNL_OK;
        }
    if (st == CNNL_OK && n->kind == CNNL_NORM_MEAN_STD) {
        int nm = 0, ns = 0;
        if (!float_array(cJSON_GetObjectItemCaseSensitive(o, "mean"), n->mean, &nm) ||
            !float_array(cJSON_GetObjectItemCaseSensitive(o, "std"), n->std, &ns) || nm != ns)
            st = CNNL_EFORMAT;
        n->channels = nm;
        for (int c = 0; st == CNNL_OK && c < nm; c++)
            if (!(n->std[c] > 0.0f))
                st = CNNL_EFORMAT;
    }
    cJSON_Delete(o);
    if (st != CNNL_OK)
        return cnnl__error(CNNL_EFORMAT,
                           "%s: metadata \"normalization\" is not {\"kind\": \"unit\"|\"symmetric\"|\"mean_std\", "
                           "\"mean\": [...], \"std\": [...] (> 0)}",
                           path);
    return CNNL_OK;
}

static cnnl_status copy_entries(const cnnl__st_file *f, cnnl_model_meta *m)
{
    m->keys = calloc(f->meta_count ? f->meta_count : 1, sizeof *m->keys);
    m->values = calloc(f->meta_count ? f->meta_count : 1, sizeof *m->values);
    if (!m->keys || !m->values)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->meta_count; i++) {
        m->keys[i] = strdup(f->meta[i].key);
        m->values[i] = strdup(f->meta[i].value);
        m->count++;
        if (!m->keys[i] || !m->values[i])
            return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    }
    return CNNL_OK;
}

/* Everything the metadata says, validated. */
static cnnl_status meta_from_file(const cnnl__st_file *f, cnnl_model_meta **out)
{
    *out = NULL;
    cnnl_model_meta *m = calloc(1, sizeof *m);
    if (!m)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", f->path);
    cnnl_status st = copy_entries(f, m);
    const char *names = cnnl__st_meta_get(f, "class_names");
    const char *norm = cnnl__st_meta_get(f, "normalization");
    if (st == CNNL_OK && names)
        st = cnnl__json_parse_string_array(f->path, "class_names", names, &m->classes, &m->num_classes);
    if (st == CNNL_OK && norm) {
        st = parse_norm(f->path, norm, &m->norm);
        m->has_norm = st == CNNL_OK;
    }
    if (st == CNNL_OK) {
        st = cnnl__arch_meta_parse(f, &m->opts);
        m->has_opts = st == CNNL_OK;
        if (st == CNNL_ENOTFOUND)
            st = CNNL_OK;
    }
    if (st == CNNL_OK && m->has_opts && m->num_classes > 0 && m->num_classes != (size_t)m->opts.classes)
        st = cnnl__error(CNNL_EFORMAT, "%s: metadata lists %zu class names for %d classes", f->path, m->num_classes,
                         m->opts.classes);
    if (st != CNNL_OK) {
        cnnl_model_meta_free(m);
        return st;
    }
    *out = m;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_meta_read(cnnl_model_meta **out, const char *path)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_meta_read: out is NULL");
    *out = NULL;
    if (!path)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_meta_read: path is NULL");
    cnnl__st_file *f = NULL;
    cnnl_status st = cnnl__st_read(path, &f);
    if (st == CNNL_OK)
        st = meta_from_file(f, out);
    cnnl__st_free(f);
    return st;
}

CNNL_API cnnl_status cnnl_model_meta_report_opts(const cnnl_model_meta *m, cnnl_report_opts *opts)
{
    if (!m || !opts)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_meta_report_opts: %s is NULL", m ? "opts" : "meta");
    if (!m->has_opts)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_model_meta_report_opts: the file records no builder options");
    *opts = m->opts;
    return CNNL_OK;
}

CNNL_API size_t cnnl_model_meta_class_count(const cnnl_model_meta *m)
{
    return m ? m->num_classes : 0;
}

CNNL_API const char *cnnl_model_meta_class_name(const cnnl_model_meta *m, size_t index)
{
    return m && index < m->num_classes ? m->classes[index] : NULL;
}

CNNL_API cnnl_status cnnl_model_meta_normalization(const cnnl_model_meta *m, cnnl_normalization *norm)
{
    if (!m || !norm)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_meta_normalization: %s is NULL", m ? "norm" : "meta");
    if (!m->has_norm)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_model_meta_normalization: the file records no normalization");
    *norm = m->norm;
    return CNNL_OK;
}

CNNL_API const char *cnnl_model_meta_get(const cnnl_model_meta *m, const char *key)
{
    for (size_t i = 0; m && key && i < m->count; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
    return NULL;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* A checkpoint holds the model's tensors under "model.": model files may be read from it. */
static const char *model_prefix(const cnnl__st_file *f)
{
    const char *format = cnnl__st_meta_get(f, "format");
    return format && strcmp(format, "cnnlite-checkpoint") == 0 ? "model." : "";
}

static cnnl_status load_into(cnnl_model *model, const cnnl__st_file *f, bool strict)
{
    cnnl__state_src src = cnnl__model_src(model, model_prefix(f));
    cnnl_status st = cnnl__state_check(f, &src, strict);
    return st == CNNL_OK ? cnnl__state_apply(f, &src) : st;
}

CNNL_API cnnl_status cnnl_model_load_weights(cnnl_model *model, const char *path, bool strict)
{
    if (!model || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_load_weights: %s is NULL", model ? "path" : "model");
    cnnl__st_file *f = NULL;
    cnnl_status st = cnnl__st_read(path, &f);
    if (st == CNNL_OK)
        st = load_into(model, f, strict);
    cnnl__st_free(f);
    return st;
}

/* Every tensor the description promises must be in the file with the same shape: checked
 * before the model is built, so that metadata claiming a huge network cannot make the reader
 * allocate it when the file's tensors do not fit. */
static cnnl_status precheck(const cnnl__st_file *f, const cnnl__arch *a)
{
    const char *prefix = model_prefix(f);
    for (size_t i = 0; i < cnnl__arch_state_count(a); i++) {
        const char *name = NULL;
        int ndim = 0;
        const int64_t *shape = NULL;
        cnnl__arch_state_at(a, i, &name, &ndim, &shape);
        char full[512];
        snprintf(full, sizeof full, "%s%s", prefix, name);
        const cnnl__st_tensor *t = cnnl__st_find(f, full);
        if (!t)
            return cnnl__error(CNNL_EFORMAT, "%s: the network in the metadata has a tensor \"%s\" that the file lacks",
                               f->path, full);
        bool same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            same = t->shape[d] == shape[d];
        if (!same) {
            char want[96] = "", got[96] = "";
            size_t u = 0, v = 0;
            for (int d = 0; d < ndim && u < sizeof want; d++)
                u += (size_t)snprintf(want + u, sizeof want - u, "%s%lld", d ? "x" : "", (long long)shape[d]);
            for (int d = 0; d < t->ndim && v < sizeof got; d++)
                v += (size_t)snprintf(got + v, sizeof got - v, "%s%lld", d ? "x" : "", (long long)t->shape[d]);
            return cnnl__error(CNNL_EFORMAT, "%s: tensor \"%s\" has shape [%s] but the network in the metadata needs "
                               "[%s]; the metadata does not describe this file", f->path, full, got, want);
        }
    }
    return CNNL_OK;
}

/* Build the model a validated file describes: its "description", else its report-network
 * options (files of 0.1.0), else @p fallback. */
static cnnl_status model_from_file(const cnnl__st_file *f, cnnl_model_meta *m, const cnnl_report_opts *fallback,
                                   cnnl_model **out)
{
    const char *path = f->path;
    const char *desc = cnnl__st_meta_get(f, "description");
    char text[2048];
    bool report = false;
    if (!desc) {
        if (!m->has_opts) {
            if (!fallback)
                return cnnl__error(CNNL_EFORMAT,
                                   "%s: the file records no network options (no cnnlite metadata); supply them", path);
            m->opts = *fallback;
            m->has_opts = true;
        }
        cnnl_status st = cnnl__report_check(&m->opts);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "%s", path);
        cnnl__report_describe(&m->opts, text, sizeof text);
        desc = text;
        report = true;
    }
    if (m->num_classes > 0 && m->has_opts && m->num_classes != (size_t)m->opts.classes)
        return cnnl__error(CNNL_EFORMAT, "%s: %zu class names in the file but %d classes requested", path,
                           m->num_classes, m->opts.classes);
    char origin[600];
    snprintf(origin, sizeof origin, "%s: metadata \"description\"", path);
    cnnl__arch *a = NULL;
    cnnl_model *model = NULL;
    cnnl_status st = cnnl__arch_parse(desc, strlen(desc), origin, &a);
    if (st == CNNL_OK && m->num_classes > 0) {
        int64_t outs[3];
        int nd = cnnl__arch_output(a, outs);
        if (nd != 1 || outs[0] != (int64_t)m->num_classes)
            st = cnnl__error(CNNL_EFORMAT, "%s: %zu class names but the network has %lld outputs", path,
                             m->num_classes, nd == 1 ? (long long)outs[0] : -1LL);
    }
    if (st == CNNL_OK && !report && m->has_opts) {
        /* Both a description and report-network options (files this version writes for the
         * report network): they must agree, and the model keeps its options. */
        cnnl__report_describe(&m->opts, text, sizeof text);
        cnnl__arch *r = NULL;
        st = cnnl__arch_parse(text, strlen(text), path, &r);
        if (st == CNNL_OK && strcmp(cnnl__arch_json(r), cnnl__arch_json(a)) != 0)
            st = cnnl__error(CNNL_EFORMAT, "%s: the metadata's \"description\" is not the network its report "
                             "options (\"arch\", \"size\", ...) describe", path);
        cnnl__arch_free(r);
        report = st == CNNL_OK;
    }
    if (st == CNNL_OK)
        st = precheck(f, a);
    if (st == CNNL_OK)
        st = cnnl__arch_build(a, &model);
    if (st == CNNL_OK && report)
        cnnl__model_set_report(model, &m->opts);
    if (st == CNNL_OK)
        st = cnnl_model_init(model, report ? m->opts.seed : 0);
    if (st == CNNL_OK)
        st = load_into(model, f, true);
    cnnl__arch_free(a);
    if (st != CNNL_OK) {
        cnnl_model_free(model);
        return st;
    }
    *out = model;
    return CNNL_OK;
}

static cnnl_status load_parsed(cnnl__st_file *f, cnnl_status st, const cnnl_report_opts *fallback, cnnl_model **out,
                               cnnl_model_meta **meta)
{
    cnnl_model_meta *m = NULL;
    cnnl_model *model = NULL;
    if (st == CNNL_OK)
        st = meta_from_file(f, &m);
    if (st == CNNL_OK)
        st = model_from_file(f, m, fallback, &model);
    cnnl__st_free(f);
    if (st != CNNL_OK) {
        cnnl_model_meta_free(m);
        return st;
    }
    *out = model;
    if (meta)
        *meta = m;
    else
        cnnl_model_meta_free(m);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_load(cnnl_model **out, const char *path, const cnnl_report_opts *fallback,
                                     cnnl_model_meta **meta)
{
    if (meta)
        *meta = NULL;
    if (!out || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_load: %s is NULL", out ? "path" : "out");
    *out = NULL;
    cnnl__st_file *f = NULL;
    cnnl_status st = cnnl__st_read(path, &f);
    return load_parsed(f, st, fallback, out, meta);
}

CNNL_API cnnl_status cnnl_model_load_memory(cnnl_model **out, const void *data, size_t size, const char *name,
                                            const cnnl_report_opts *fallback, cnnl_model_meta **meta)
{
    if (meta)
        *meta = NULL;
    if (!out || !data)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_load_memory: %s is NULL", out ? "data" : "out");
    *out = NULL;
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory for a copy of %zu bytes", name ? name : "(memory)", size);
    memcpy(copy, data, size);
    cnnl__st_file *f = NULL;
    cnnl_status st = cnnl__st_parse(name ? name : "(memory)", copy, size, &f);
    return load_parsed(f, st, fallback, out, meta);
}
