/*
 * Architecture descriptions: a JSON file in PyTorch's vocabulary is parsed and checked in
 * full (types, options, value types and ranges, shapes through every layer, bounds on what
 * building will allocate) into a flat plan before anything is built. The plan is the model's
 * layer list: Sequential entries only prefix their children's names; a Residual block becomes
 * a begin marker, its body ("<name>.body.<i>") and an end marker that adds (lib/nn/residual.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "nn/arch_impl.h"
#include "nn/layer.h"
#include "nn/model_impl.h"

enum { MAX_DEPTH = 32, MAX_ENTRIES = 4096, MAX_NAME = 64 };
#define MAX_SAMPLE_FLOATS ((int64_t)1 << 28) /* one sample's activation at any layer: 1 GiB */
#define MAX_STATE_FLOATS ((size_t)1 << 31)   /* every parameter and buffer together: 8 GiB */

typedef enum { E_LAYER, E_BEGIN, E_END } entry_kind;

typedef struct entry {
    entry_kind kind;
    const cnnl__arch_type *type; /* E_LAYER */
    size_t begin;                /* E_END: index of its begin marker */
    char *name;
    double v[CNNL__ARCH_MAX_OPTS];
    cnnl__ashape in, out;
} entry;

typedef struct state_entry {
    char *name;
    int ndim;
    int64_t shape[4];
} state_entry;

struct cnnl__arch {
    entry *e;
    size_t n, cap;
    state_entry *s;
    size_t ns, scap;
    size_t numel;
    cnnl__ashape input;
    char *json;
};

typedef struct parser {
    cnnl__arch *a;
    const char *origin;
} parser;

void cnnl__arch_free(cnnl__arch *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->e[i].name);
    for (size_t i = 0; i < a->ns; i++)
        free(a->s[i].name);
    free(a->e);
    free(a->s);
    free(a->json);
    free(a);
}

const char *cnnl__arch_json(const cnnl__arch *a)
{
    return a->json;
}

size_t cnnl__arch_state_count(const cnnl__arch *a)
{
    return a->ns;
}

void cnnl__arch_state_at(const cnnl__arch *a, size_t i, const char **name, int *ndim, const int64_t **shape)
{
    *name = a->s[i].name;
    *ndim = a->s[i].ndim;
    *shape = a->s[i].shape;
}

int cnnl__arch_output(const cnnl__arch *a, int64_t shape[3])
{
    const cnnl__ashape *o = &a->e[a->n - 1].out;
    memcpy(shape, o->d, sizeof o->d);
    return o->nd;
}

size_t cnnl__arch_state_numel(const cnnl__arch *a)
{
    return a->numel;
}

static char *join(const char *prefix, const char *name)
{
    size_t len = (prefix ? strlen(prefix) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
    return s;
}

static cnnl_status oom(const parser *p)
{
    return cnnl__error(CNNL_ENOMEM, "%s: out of memory", p->origin);
}

static cnnl_status add_entry(parser *p, entry **out)
{
    cnnl__arch *a = p->a;
    if (a->n >= MAX_ENTRIES)
        return cnnl__error(CNNL_EFORMAT, "%s: more than %d layers", p->origin, MAX_ENTRIES);
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        entry *e = realloc(a->e, cap * sizeof *e);
        if (!e)
            return oom(p);
        a->e = e;
        a->cap = cap;
    }
    *out = &a->e[a->n++];
    memset(*out, 0, sizeof **out);
    return CNNL_OK;
}

static cnnl_status add_state(parser *p, const char *layer, const cnnl__arch_state_spec *spec)
{
    cnnl__arch *a = p->a;
    if (a->ns == a->scap) {
        size_t cap = a->scap ? 2 * a->scap : 16;
        state_entry *s = realloc(a->s, cap * sizeof *s);
        if (!s)
            return oom(p);
        a->s = s;
        a->scap = cap;
    }
    state_entry *s = &a->s[a->ns];
    s->name = join(layer, spec->suffix);
    if (!s->name)
        return oom(p);
    s->ndim = spec->ndim;
    size_t numel = 1;
    for (int i = 0; i < 4; i++) {
        s->shape[i] = spec->shape[i];
        if (i < spec->ndim)
            numel *= (size_t)spec->shape[i];
    }
    a->ns++;
    a->numel += numel;
    if (a->numel > MAX_STATE_FLOATS)
        return cnnl__error(CNNL_EFORMAT, "%s: layer %s: the network would hold more than %zu parameters and buffers",
                           p->origin, layer, MAX_STATE_FLOATS);
    return CNNL_OK;
}

static int64_t sample_numel(const cnnl__ashape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->nd; i++)
        n *= s->d[i];
    return n;
}

static void shape_text(const cnnl__ashape *s, char *buf, size_t len)
{
    if (s->nd == 3)
        snprintf(buf, len, "%lldx%lldx%lld", (long long)s->d[0], (long long)s->d[1], (long long)s->d[2]);
    else
        snprintf(buf, len, "%lld features", (long long)s->d[0]);
}

/* Shortest decimal text of a float that reads back to the same float (0.2f -> 0.2). */
static double float_value(float f)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return strtod(buf, NULL);
}

static const char *type_list(void)
{
    return "Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Linear, ReLU, "
           "LeakyReLU, ELU, Tanh, Sigmoid, Softmax, Sequential, Residual";
}

static const cnnl__arch_type *find_type(const char *name)
{
    for (size_t i = 0; i < cnnl__arch_type_count; i++)
        if (strcmp(cnnl__arch_types[i]->name, name) == 0)
            return cnnl__arch_types[i];
    return NULL;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Read the options of a registry type from @p obj into @p v, writing them to @p canon. */
static cnnl_status read_options(parser *p, const char *where, const cnnl__arch_type *t, const cJSON *obj, double *v)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        if (strcmp(it->string, "type") == 0 || strcmp(it->string, "name") == 0)
            continue;
        bool known = false;
        for (int i = 0; t->opts[i].name; i++)
            known = known || strcmp(t->opts[i].name, it->string) == 0;
        if (!known) {
            char list[256] = "";
            size_t used = 0;
            for (int i = 0; t->opts[i].name && used < sizeof list; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", t->opts[i].name);
            return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): unknown option \"%.64s\" (%s%s)", p->origin, where,
                               t->name, it->string, t->opts[0].name ? "options: " : "it takes no options", list);
        }
    }
    for (int i = 0; t->opts[i].name; i++) {
        const cnnl__arch_opt *o = &t->opts[i];
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(obj, o->name);
        if (!val) {
            if (o->required)
                return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): option \"%s\" is required", p->origin, where, t->name,
                                   o->name);
            v[i] = o->def;
            continue;
        }
        const char *want = o->kind == 'b' ? "true or false" : o->kind == 'i' ? "an integer" : "a number";
        bool ok;
        if (o->kind == 'b') {
            ok = cJSON_IsBool(val);
            v[i] = cJSON_IsTrue(val) ? 1.0 : 0.0;
        } else {
            ok = cJSON_IsNumber(val) && isfinite(val->valuedouble) &&
                 (o->kind == 'f' || val->valuedouble == floor(val->valuedouble));
            v[i] = ok ? val->valuedouble : 0.0;
        }
        if (!ok)
            return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): option \"%s\" must be %s", p->origin, where, t->name,
                               o->name, want);
        if (o->kind != 'b' && (v[i] < o->lo || v[i] > o->hi)) {
            if (o->lo == o->hi)
                return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): option \"%s\" is %g; only %g is supported", p->origin,
                                   where, t->name, o->name, v[i], o->lo);
            return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): option \"%s\" is %g; must be in [%g, %g]", p->origin, where,
                               t->name, o->name, v[i], o->lo, o->hi);
        }
    }
    return CNNL_OK;
}

static cnnl_status write_options(parser *p, const cnnl__arch_type *t, const double *v, cJSON *canon)
{
    for (int i = 0; t->opts[i].name; i++) {
        const cnnl__arch_opt *o = &t->opts[i];
        cJSON *item = o->kind == 'b' ? cJSON_CreateBool(v[i] != 0.0)
                      : o->kind == 'f' ? cJSON_CreateNumber(float_value((float)v[i]))
                                       : cJSON_CreateNumber(v[i]);
        if (!item || !cJSON_AddItemToObject(canon, o->name, item)) {
            cJSON_Delete(item);
            return oom(p);
        }
    }
    return CNNL_OK;
}

static cnnl_status only_keys(parser *p, const char *where, const char *type, const cJSON *obj)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
        if (strcmp(it->string, "type") != 0 && strcmp(it->string, "name") != 0 && strcmp(it->string, "layers") != 0)
            return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): unknown option \"%.64s\" (options: name, layers)", p->origin,
                               where, type, it->string);
    return CNNL_OK;
}

static cnnl_status parse_list(parser *p, const cJSON *list, const char *prefix, const char *path, cnnl__ashape *shape,
                              cJSON *canon, int depth);

static cnnl_status parse_layer(parser *p, const cJSON *obj, const char *full, const char *where, cnnl__ashape *shape,
                               cJSON *canon, int depth)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsString(type))
        return cnnl__error(CNNL_EFORMAT, "%s: %s: option \"type\" must be a string (one of %s)", p->origin, where,
                           type_list());
    const char *tn = type->valuestring;
    if (!cJSON_AddStringToObject(canon, "type", tn))
        return oom(p);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (name && !cJSON_AddStringToObject(canon, "name", name->valuestring))
        return oom(p);
    bool seq = strcmp(tn, "Sequential") == 0, res = strcmp(tn, "Residual") == 0;
    if (seq || res) {
        cnnl_status st = only_keys(p, where, tn, obj);
        if (st != CNNL_OK)
            return st;
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(obj, "layers");
        if (!cJSON_IsArray(layers))
            return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): option \"layers\" must be a list of layers", p->origin,
                               where, tn);
        cJSON *sub = cJSON_AddArrayToObject(canon, "layers");
        if (!sub)
            return oom(p);
        char subpath[512];
        if (snprintf(subpath, sizeof subpath, "%s.layers", where) >= (int)sizeof subpath)
            return cnnl__error(CNNL_EFORMAT, "%s: %s: layers are nested too deep", p->origin, where);
        if (seq)
            return parse_list(p, layers, full, subpath, shape, sub, depth + 1);
        entry *e;
        if ((st = add_entry(p, &e)) != CNNL_OK)
            return st;
        size_t begin = p->a->n - 1;
        e->kind = E_BEGIN;
        e->in = e->out = *shape;
        if (!(e->name = strdup(full)))
            return oom(p);
        char *body = join(full, "body");
        if (!body)
            return oom(p);
        cnnl__ashape in = *shape;
        st = parse_list(p, layers, body, subpath, shape, sub, depth + 1);
        free(body);
        if (st != CNNL_OK)
            return st;
        bool same = in.nd == shape->nd;
        for (int i = 0; same && i < in.nd; i++)
            same = in.d[i] == shape->d[i];
        if (!same) {
            char a[64], b[64];
            shape_text(&in, a, sizeof a);
            shape_text(shape, b, sizeof b);
            return cnnl__error(CNNL_EFORMAT, "%s: %s (Residual): option \"layers\" turns the %s input into %s; a "
                               "residual body must keep the shape", p->origin, where, a, b);
        }
        if ((st = add_entry(p, &e)) != CNNL_OK)
            return st;
        e->kind = E_END;
        e->begin = begin;
        e->in = e->out = *shape;
        return (e->name = join(full, "add")) ? CNNL_OK : oom(p);
    }
    const cnnl__arch_type *t = find_type(tn);
    if (!t)
        return cnnl__error(CNNL_EFORMAT, "%s: %s: option \"type\": unknown layer type \"%.64s\" (known: %s)", p->origin,
                           where, tn, type_list());
    double v[CNNL__ARCH_MAX_OPTS] = {0};
    cnnl_status st = read_options(p, where, t, obj, v);
    if (st != CNNL_OK)
        return st;
    cnnl__ashape out = {0, {0, 0, 0}};
    char why[256];
    if (!t->infer(v, shape, &out, why, sizeof why)) {
        char in[64];
        shape_text(shape, in, sizeof in);
        return cnnl__error(CNNL_EFORMAT, "%s: %s (%s), input %s: %s", p->origin, where, t->name, in, why);
    }
    if (sample_numel(&out) > MAX_SAMPLE_FLOATS) {
        char o[64];
        shape_text(&out, o, sizeof o);
        return cnnl__error(CNNL_EFORMAT, "%s: %s (%s): the output %s is larger than %lld values per sample",
                           p->origin, where, t->name, o, (long long)MAX_SAMPLE_FLOATS);
    }
    if ((st = write_options(p, t, v, canon)) != CNNL_OK)
        return st;
    if (t->states) {
        cnnl__arch_state_spec spec[5];
        int ns = t->states(v, shape, spec);
        for (int i = 0; i < ns && st == CNNL_OK; i++)
            st = add_state(p, full, &spec[i]);
        if (st != CNNL_OK)
            return st;
    }
    entry *e;
    if ((st = add_entry(p, &e)) != CNNL_OK)
        return st;
    e->kind = E_LAYER;
    e->type = t;
    memcpy(e->v, v, sizeof v);
    e->in = *shape;
    e->out = out;
    *shape = out;
    return (e->name = strdup(full)) ? CNNL_OK : oom(p);
}

static cnnl_status parse_list(parser *p, const cJSON *list, const char *prefix, const char *path, cnnl__ashape *shape,
                              cJSON *canon, int depth)
{
    if (depth > MAX_DEPTH)
        return cnnl__error(CNNL_EFORMAT, "%s: %s: layers are nested more than %d deep", p->origin, path, MAX_DEPTH);
    int count = cJSON_GetArraySize(list);
    if (count > MAX_ENTRIES)
        return cnnl__error(CNNL_EFORMAT, "%s: %s: more than %d layers", p->origin, path, MAX_ENTRIES);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        char where[512];
        if (snprintf(where, sizeof where, "%s[%d]", path, i) >= (int)sizeof where)
            return cnnl__error(CNNL_EFORMAT, "%s: %s: layers are nested too deep", p->origin, path);
        if (!cJSON_IsObject(item))
            return cnnl__error(CNNL_EFORMAT, "%s: %s: a layer must be an object {\"type\": ...}", p->origin, where);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        if (name && (!cJSON_IsString(name) || !valid_name(name->valuestring)))
            return cnnl__error(CNNL_EFORMAT, "%s: %s: option \"name\" must be 1 to %d letters, digits or '_'",
                               p->origin, where, MAX_NAME);
        const char *own = name ? name->valuestring : idx;
        /* Siblings need distinct names. */
        int j = 0;
        const cJSON *other;
        cJSON_ArrayForEach(other, list) {
            if (j >= i)
                break;
            const cJSON *on = cJSON_IsObject(other) ? cJSON_GetObjectItemCaseSensitive(other, "name") : NULL;
            char oidx[16];
            snprintf(oidx, sizeof oidx, "%d", j);
            if (strcmp(cJSON_IsString(on) ? on->valuestring : oidx, own) == 0)
                return cnnl__error(CNNL_EFORMAT, "%s: %s: option \"name\": \"%s\" is also the name of %s[%d]",
                                   p->origin, where, own, path, j);
            j++;
        }
        char *full = join(prefix, own);
        cJSON *c = cJSON_CreateObject();
        if (!full || !c || !cJSON_AddItemToArray(canon, c)) {
            free(full);
            cJSON_Delete(c);
            return oom(p);
        }
        cnnl_status st = parse_layer(p, item, full, where, shape, c, depth);
        free(full);
        if (st != CNNL_OK)
            return st;
        i++;
    }
    return CNNL_OK;
}

static cnnl_status parse_input(parser *p, const cJSON *root, cJSON *canon)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    static const int64_t hi[3] = {4096, 65536, 65536};
    bool ok = cJSON_IsArray(in) && cJSON_GetArraySize(in) == 3;
    int i = 0;
    const cJSON *it;
    if (ok)
        cJSON_ArrayForEach(it, in) {
            ok = ok && cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) && it->valuedouble >= 1 &&
                 it->valuedouble <= (double)hi[i];
            p->a->input.d[i] = ok ? (int64_t)it->valuedouble : 0;
            i++;
        }
    p->a->input.nd = 3;
    if (!ok)
        return cnnl__error(CNNL_EFORMAT, "%s: option \"input\" must be [channels, height, width] with channels in 1..4096 "
                           "and height, width in 1..65536", p->origin);
    if (sample_numel(&p->a->input) > MAX_SAMPLE_FLOATS)
        return cnnl__error(CNNL_EFORMAT, "%s: option \"input\": %lldx%lldx%lld is larger than %lld values per sample",
                           p->origin, (long long)p->a->input.d[0], (long long)p->a->input.d[1],
                           (long long)p->a->input.d[2], (long long)MAX_SAMPLE_FLOATS);
    cJSON *arr = cJSON_AddArrayToObject(canon, "input");
    for (i = 0; arr && i < 3; i++)
        if (!cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)p->a->input.d[i])))
            arr = NULL;
    return arr ? CNNL_OK : oom(p);
}

cnnl_status cnnl__arch_parse(const char *json, size_t len, const char *origin, cnnl__arch **out)
{
    *out = NULL;
    parser p = {calloc(1, sizeof(cnnl__arch)), origin};
    if (!p.a)
        return oom(&p);
    cJSON *root = cJSON_ParseWithLength(json, len);
    cJSON *canon = cJSON_CreateObject();
    cnnl_status st = CNNL_OK;
    if (!canon || (!root && cnnl__json_well_formed(json, len))) /* cJSON ran out of memory */
        st = oom(&p);
    else if (!cJSON_IsObject(root))
        st = cnnl__error(CNNL_EFORMAT, "%s: not a JSON object {\"input\": [C, H, W], \"layers\": [...]}", origin);
    const cJSON *it;
    if (st == CNNL_OK)
        cJSON_ArrayForEach(it, root)
            if (st == CNNL_OK && strcmp(it->string, "input") != 0 && strcmp(it->string, "layers") != 0)
                st = cnnl__error(CNNL_EFORMAT, "%s: unknown key \"%.64s\" (a description has \"input\" and \"layers\")",
                                 origin, it->string);
    if (st == CNNL_OK)
        st = parse_input(&p, root, canon);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (st == CNNL_OK && (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 1))
        st = cnnl__error(CNNL_EFORMAT, "%s: option \"layers\" must be a non-empty list of layers", origin);
    cJSON *list = st == CNNL_OK ? cJSON_AddArrayToObject(canon, "layers") : NULL;
    if (st == CNNL_OK && !list)
        st = oom(&p);
    cnnl__ashape shape = p.a->input;
    if (st == CNNL_OK)
        st = parse_list(&p, layers, NULL, "layers", &shape, list, 0);
    if (st == CNNL_OK && p.a->n == 0)
        st = cnnl__error(CNNL_EFORMAT, "%s: the description has no layers", origin);
    if (st == CNNL_OK) {
        char *text = cJSON_PrintUnformatted(canon);
        p.a->json = text ? strdup(text) : NULL;
        cJSON_free(text);
        if (!p.a->json)
            st = oom(&p);
    }
    cJSON_Delete(root);
    cJSON_Delete(canon);
    if (st != CNNL_OK) {
        cnnl__arch_free(p.a);
        return st;
    }
    *out = p.a;
    return CNNL_OK;
}

cnnl_status cnnl__arch_build(const cnnl__arch *a, cnnl_model **out)
{
    *out = NULL;
    cnnl_model *m = NULL;
    cnnl_layer **made = calloc(a->n, sizeof *made);
    cnnl_status st = made ? cnnl_model_create(&m) : cnnl__error(CNNL_ENOMEM, "cnnl_model_from_json: out of memory");
    for (size_t i = 0; i < a->n && st == CNNL_OK; i++) {
        const entry *e = &a->e[i];
        cnnl_layer *l = NULL;
        if (e->kind == E_BEGIN)
            st = cnnl__residual_begin_create(&l);
        else if (e->kind == E_END)
            st = cnnl__residual_end_create(&l, made[e->begin]);
        else
            st = e->type->create(e->v, &e->in, &l);
        if (st == CNNL_OK)
            st = cnnl_model_add(m, e->name, l);
        made[i] = l;
    }
    if (st == CNNL_OK) {
        const cnnl__ashape *o = &a->e[a->n - 1].out;
        st = cnnl__model_set_arch(m, a->json, a->input.d, o->nd == 1 ? (size_t)o->d[0] : 0);
    }
    free(made);
    if (st != CNNL_OK) {
        cnnl_model_free(m);
        return st;
    }
    *out = m;
    return CNNL_OK;
}

/* ---- public API ----------------------------------------------------------------------------- */

CNNL_API cnnl_status cnnl_model_from_json(cnnl_model **out, const char *json, uint64_t seed)
{
    if (out)
        *out = NULL;
    if (!out || !json)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_from_json: %s is NULL", out ? "json" : "out");
    cnnl__arch *a = NULL;
    cnnl_model *m = NULL;
    cnnl_status st = cnnl__arch_parse(json, strlen(json), "description", &a);
    if (st == CNNL_OK)
        st = cnnl__arch_build(a, &m);
    if (st == CNNL_OK)
        st = cnnl_model_init(m, seed);
    cnnl__arch_free(a);
    if (st != CNNL_OK) {
        cnnl_model_free(m);
        return st;
    }
    *out = m;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_model_from_json_file(cnnl_model **out, const char *path, uint64_t seed)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_model_from_json_file: %s is NULL", out ? "path" : "out");
    FILE *f = fopen(path, "rb");
    if (!f)
        return cnnl__error(CNNL_EIO, "%s: cannot open: %s", path, strerror(errno));
    enum { LIMIT = 1 << 22 };
    char *buf = malloc(LIMIT + 1);
    size_t len = buf ? fread(buf, 1, LIMIT + 1, f) : 0;
    bool bad = buf && ferror(f);
    fclose(f);
    if (!buf)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    cnnl_status st = CNNL_OK;
    if (bad)
        st = cnnl__error(CNNL_EIO, "%s: read error", path);
    else if (len > LIMIT)
        st = cnnl__error(CNNL_EFORMAT, "%s: larger than %d bytes; not a description", path, LIMIT);
    cnnl__arch *a = NULL;
    cnnl_model *m = NULL;
    if (st == CNNL_OK)
        st = cnnl__arch_parse(buf, len, path, &a);
    free(buf);
    if (st == CNNL_OK && (st = cnnl__arch_build(a, &m)) != CNNL_OK)
        cnnl__error_context(st, "%s", path);
    if (st == CNNL_OK)
        st = cnnl_model_init(m, seed);
    cnnl__arch_free(a);
    if (st != CNNL_OK) {
        cnnl_model_free(m);
        return st;
    }
    *out = m;
    return CNNL_OK;
}
