/*
 * Seeded train/test split (PyTorch random_split's rounding for fractions), stratified
 * variant, and saving/loading a split as a list of file names.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng_impl.h"
#include "data/data_impl.h"
#include "io/atomic_file.h"

struct cnnl_split {
    size_t *idx[2];
    size_t n[2];
};

CNNL_API cnnl_split_opts cnnl_split_opts_default(void)
{
    cnnl_split_opts o;
    memset(&o, 0, sizeof o);
    o.train_fraction = 0.8;
    o.seed = 0;
    o.stratified = false;
    return o;
}

/* floor(x), forgiving the rounding error of 1 - f: PyTorch users write [0.8, 0.2], and
 * 10 * 0.2 is 2 while 10 * (1 - 0.8) is 1.9999999999999996. */
static size_t floor_tolerant(double x)
{
    return (size_t)floor(x + 1e-9 * (x > 1.0 ? x : 1.0));
}

/* random_split with fractions: floor(n * f) per subset, then the remainder one at a time
 * from the first subset on (round-robin). */
static size_t train_size(size_t n, double f)
{
    size_t a = floor_tolerant((double)n * f), b = floor_tolerant((double)n * (1.0 - f));
    if (a > n)
        a = n;
    if (b > n - a)
        b = n - a;
    size_t rest = n - a - b;
    for (size_t i = 0; i < rest; i++)
        if (i % 2 == 0)
            a++;
    return a;
}

static void shuffle(size_t *v, size_t n, cnnl_rng *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cnnl__rng_below(rng, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static cnnl_status split_alloc(cnnl_split **out, size_t total)
{
    cnnl_split *sp = calloc(1, sizeof *sp);
    if (!sp)
        return cnnl__error(CNNL_ENOMEM, "split: out of memory");
    for (int s = 0; s < 2; s++)
        if (!(sp->idx[s] = malloc((total ? total : 1) * sizeof(size_t)))) {
            cnnl_split_free(sp);
            return cnnl__error(CNNL_ENOMEM, "split: out of memory");
        }
    *out = sp;
    return CNNL_OK;
}

static void split_sort(cnnl_split *sp)
{
    for (int s = 0; s < 2; s++)
        if (sp->n[s] > 1)
            qsort(sp->idx[s], sp->n[s], sizeof(size_t), cmp_size);
}

/* Permute @p members (dataset indices) and deal them to the subsets. */
static void deal(cnnl_split *sp, size_t *members, size_t n, double f, cnnl_rng *rng)
{
    shuffle(members, n, rng);
    size_t ntrain = train_size(n, f);
    for (size_t i = 0; i < n; i++) {
        int s = i < ntrain ? CNNL_SUBSET_TRAIN : CNNL_SUBSET_TEST;
        sp->idx[s][sp->n[s]++] = members[i];
    }
}

CNNL_API cnnl_status cnnl_split_create(cnnl_split **out, const cnnl_dataset *ds,
                                       const cnnl_split_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !ds)
        return cnnl__error(CNNL_EINVAL, "cnnl_split_create: %s is NULL", out ? "ds" : "out");
    cnnl_split_opts o = opts ? *opts : cnnl_split_opts_default();
    if (!(o.train_fraction > 0.0 && o.train_fraction < 1.0))
        return cnnl__error(CNNL_EINVAL, "cnnl_split_create: train_fraction is %g; must be in (0, 1)",
                           o.train_fraction);
    cnnl_split *sp = NULL;
    cnnl_status st = split_alloc(&sp, ds->count);
    if (st != CNNL_OK)
        return st;
    size_t *members = malloc((ds->count ? ds->count : 1) * sizeof *members);
    if (!members) {
        cnnl_split_free(sp);
        return cnnl__error(CNNL_ENOMEM, "cnnl_split_create: out of memory");
    }
    cnnl_rng rng;
    cnnl__rng_seed(&rng, o.seed, CNNL_RNG_SPLIT);
    int groups = o.stratified ? ds->num_classes : 1;
    for (int g = 0; g < groups; g++) {
        size_t n = 0;
        for (size_t i = 0; i < ds->count; i++)
            if (!o.stratified || ds->labels[i] == g)
                members[n++] = i;
        deal(sp, members, n, o.train_fraction, &rng);
    }
    free(members);
    split_sort(sp);
    *out = sp;
    return CNNL_OK;
}

CNNL_API void cnnl_split_free(cnnl_split *split)
{
    if (!split)
        return;
    free(split->idx[0]);
    free(split->idx[1]);
    free(split);
}

CNNL_API size_t cnnl_split_count(const cnnl_split *split, cnnl_subset which)
{
    if (!split || (which != CNNL_SUBSET_TRAIN && which != CNNL_SUBSET_TEST))
        return 0;
    return split->n[which];
}

CNNL_API const size_t *cnnl_split_indices(const cnnl_split *split, cnnl_subset which)
{
    /* Not NULL for an empty subset: cnnl_loader_create() reads NULL as "every image". */
    if (!split || (which != CNNL_SUBSET_TRAIN && which != CNNL_SUBSET_TEST))
        return NULL;
    return split->idx[which];
}

/* ---- saving ------------------------------------------------------------------------- */

static const char *const subset_word[2] = {"train", "test"};
static const char header_line[] = "# cnnlite split v1: <train|test><TAB><class>/<file>";

typedef struct save_ctx {
    const cnnl_split *sp;
    const cnnl_dataset *ds;
} save_ctx;

static int write_split(FILE *f, void *ctx)
{
    const save_ctx *c = ctx;
    if (fprintf(f, "%s\n", header_line) < 0)
        return 1;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < c->sp->n[s]; i++)
            if (fprintf(f, "%s\t%s\n", subset_word[s], c->ds->names[c->sp->idx[s][i]]) < 0)
                return 1;
    return 0;
}

CNNL_API cnnl_status cnnl_split_save(const cnnl_split *split, const cnnl_dataset *ds,
                                     const char *path)
{
    if (!split || !ds || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_split_save: %s is NULL", !split ? "split" : !ds ? "ds" : "path");
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < split->n[s]; i++) {
            size_t k = split->idx[s][i];
            if (k >= ds->count)
                return cnnl__error(CNNL_EINVAL, "cnnl_split_save: index %zu is outside the dataset (%zu images)", k,
                                   ds->count);
            if (strpbrk(ds->names[k], "\r\n"))
                return cnnl__error(CNNL_EFORMAT, "cnnl_split_save: file name with a line break cannot be saved: %s",
                                   ds->names[k]);
        }
    save_ctx ctx = {split, ds};
    cnnl_status st = cnnl__atomic_write_stream(path, write_split, &ctx);
    return st == CNNL_OK ? st : cnnl__error_context(st, "cnnl_split_save");
}

/* ---- loading ------------------------------------------------------------------------ */

typedef struct name_index {
    const char *name;
    size_t index;
} name_index;

static int cmp_name_index(const void *a, const void *b)
{
    return strcmp(((const name_index *)a)->name, ((const name_index *)b)->name);
}

/* Read the next line into *line (without its newline); false at the end of the file. */
static bool next_line(FILE *f, char **line, size_t *cap, bool *error)
{
    ssize_t len = getline(line, cap, f);
    if (len < 0) {
        *error = ferror(f) != 0;
        return false;
    }
    while (len > 0 && ((*line)[len - 1] == '\n' || (*line)[len - 1] == '\r'))
        (*line)[--len] = '\0';
    return true;
}

typedef struct load_state {
    const cnnl_dataset *ds;
    const char *path;
    name_index *sorted;
    unsigned char *seen;
    cnnl_split *sp;
} load_state;

static cnnl_status parse_line(load_state *ls, char *line, size_t lineno)
{
    if (line[0] == '\0' || line[0] == '#')
        return CNNL_OK;
    char *tab = strchr(line, '\t');
    int s = -1;
    if (tab) {
        *tab = '\0';
        s = strcmp(line, "train") == 0 ? 0 : strcmp(line, "test") == 0 ? 1 : -1;
    }
    if (s < 0)
        return cnnl__error(CNNL_EFORMAT, "cnnl_split_load: %s:%zu: expected \"train<TAB>name\" or \"test<TAB>name\"",
                           ls->path, lineno);
    name_index key = {tab + 1, 0};
    const name_index *hit = bsearch(&key, ls->sorted, ls->ds->count, sizeof key, cmp_name_index);
    if (!hit)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_split_load: %s:%zu: %s is not an image of the dataset (%s)",
                           ls->path, lineno, tab + 1, ls->ds->root ? ls->ds->root : "synthetic");
    if (ls->seen[hit->index])
        return cnnl__error(CNNL_EFORMAT, "cnnl_split_load: %s:%zu: %s is listed twice", ls->path, lineno, tab + 1);
    ls->seen[hit->index] = 1;
    ls->sp->idx[s][ls->sp->n[s]++] = hit->index;
    return CNNL_OK;
}

static cnnl_status parse_file(load_state *ls, FILE *f)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    bool error = false;
    cnnl_status st = CNNL_OK;
    while (st == CNNL_OK && next_line(f, &line, &cap, &error))
        st = parse_line(ls, line, ++lineno);
    free(line);
    if (st == CNNL_OK && error)
        st = cnnl__error(CNNL_EIO, "cnnl_split_load: %s: read error", ls->path);
    return st;
}

CNNL_API cnnl_status cnnl_split_load(cnnl_split **out, const cnnl_dataset *ds, const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !ds || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_split_load: %s is NULL", !out ? "out" : !ds ? "ds" : "path");
    FILE *f = fopen(path, "r");
    if (!f)
        return cnnl__error(CNNL_EIO, "cnnl_split_load: %s: %s", path, strerror(errno));
    load_state ls = {ds, path, NULL, NULL, NULL};
    cnnl_status st = split_alloc(&ls.sp, ds->count);
    ls.sorted = malloc((ds->count ? ds->count : 1) * sizeof *ls.sorted);
    ls.seen = calloc(ds->count ? ds->count : 1, 1);
    if (st == CNNL_OK && (!ls.sorted || !ls.seen))
        st = cnnl__error(CNNL_ENOMEM, "cnnl_split_load: out of memory");
    if (st == CNNL_OK) {
        for (size_t i = 0; i < ds->count; i++)
            ls.sorted[i] = (name_index){ds->names[i], i};
        qsort(ls.sorted, ds->count, sizeof *ls.sorted, cmp_name_index);
        st = parse_file(&ls, f);
    }
    fclose(f);
    if (st == CNNL_OK) {
        size_t unlisted = ds->count - ls.sp->n[0] - ls.sp->n[1];
        if (unlisted)
            cnnl__log(CNNL_LOG_WARNING, "%s: %zu images of the dataset are not listed; they are in neither subset",
                      path, unlisted);
        split_sort(ls.sp);
        *out = ls.sp;
        ls.sp = NULL;
    }
    cnnl_split_free(ls.sp);
    free(ls.sorted);
    free(ls.seen);
    return st;
}
