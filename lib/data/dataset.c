/*
 * Datasets: options, the image-folder loader, queries, float conversion and writing an
 * image folder back out.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "core/internal.h"
#include "data/data_impl.h"
#include "io/atomic_file.h"
#include "data/norm.h"

CNNL_API cnnl_dataset_opts cnnl_dataset_opts_default(void)
{
    cnnl_dataset_opts o;
    memset(&o, 0, sizeof o);
    o.size = 512;
    o.channels = 3;
    o.norm.kind = CNNL_NORM_UNIT;
    for (int c = 0; c < CNNL_NORM_MAX_CHANNELS; c++)
        o.norm.std[c] = 1.0f;
    o.strict = false;
    o.max_dim = CNNL_DATA_MAX_DIM;
    o.max_pixels = CNNL_DATA_MAX_PIXELS;
    return o;
}

cnnl_status cnnl__data_check_opts(const char *who, const cnnl_dataset_opts *opts,
                                  cnnl_dataset_opts *out)
{
    *out = opts ? *opts : cnnl_dataset_opts_default();
    if (out->size < 1 || out->size > CNNL_DATA_MAX_DIM)
        return cnnl__error(CNNL_EINVAL, "%s: size is %d; must be 1..%d", who, out->size, CNNL_DATA_MAX_DIM);
    if (out->channels != 1 && out->channels != 3)
        return cnnl__error(CNNL_EINVAL, "%s: channels is %d; must be 1 or 3", who, out->channels);
    cnnl_status st = cnnl__norm_check(who, &out->norm);
    if (st != CNNL_OK)
        return st;
    if (out->norm.kind == CNNL_NORM_MEAN_STD && out->norm.channels != out->channels)
        return cnnl__error(CNNL_EINVAL, "%s: normalization has %d channels; the images have %d", who,
                           out->norm.channels, out->channels);
    if (out->norm.kind != CNNL_NORM_MEAN_STD)
        out->norm.channels = 0; /* mean and std do not apply */
    if (out->max_dim < 1)
        return cnnl__error(CNNL_EINVAL, "%s: max_dim is %d; must be >= 1", who, out->max_dim);
    if (out->max_pixels < 0)
        return cnnl__error(CNNL_EINVAL, "%s: max_pixels is %lld; must be >= 1 (0: the default)", who,
                           (long long)out->max_pixels);
    if (out->max_pixels == 0)
        out->max_pixels = CNNL_DATA_MAX_PIXELS;
    return CNNL_OK;
}

cnnl_status cnnl__dataset_alloc(cnnl_dataset **out, const cnnl_dataset_opts *o, size_t count,
                                int classes)
{
    *out = NULL;
    cnnl_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return cnnl__error(CNNL_ENOMEM, "dataset: out of memory");
    ds->size = o->size;
    ds->channels = o->channels;
    ds->count = count;
    ds->num_classes = classes;
    ds->norm = o->norm;
    cnnl__norm_lut(&o->norm, ds->lut);
    size_t n = count ? count : 1;
    ds->class_names = calloc((size_t)classes, sizeof *ds->class_names);
    ds->class_counts = calloc((size_t)classes, sizeof *ds->class_counts);
    ds->names = calloc(n, sizeof *ds->names);
    ds->labels = calloc(n, sizeof *ds->labels);
    ds->pixels = calloc(n, sizeof *ds->pixels);
    ds->stored = calloc(n, sizeof *ds->stored);
    if (!ds->class_names || !ds->class_counts || !ds->names || !ds->labels || !ds->pixels || !ds->stored) {
        cnnl_dataset_free(ds);
        return cnnl__error(CNNL_ENOMEM, "dataset: out of memory for %zu images", count);
    }
    *out = ds;
    return CNNL_OK;
}

CNNL_API void cnnl_dataset_free(cnnl_dataset *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->count; i++) {
        if (ds->names)
            free(ds->names[i]);
        if (ds->pixels)
            free(ds->pixels[i]);
    }
    for (int c = 0; c < ds->num_classes && ds->class_names; c++)
        free(ds->class_names[c]);
    free(ds->class_names);
    free(ds->class_counts);
    free(ds->names);
    free(ds->labels);
    free(ds->pixels);
    free(ds->stored);
    free(ds->root);
    free(ds->summary);
    free(ds);
}

cnnl_status cnnl__dataset_finish(cnnl_dataset *ds)
{
    for (int c = 0; c < ds->num_classes; c++)
        ds->class_counts[c] = 0;
    for (size_t i = 0; i < ds->count; i++)
        ds->class_counts[ds->labels[i]]++;
    size_t len = 128;
    for (int c = 0; c < ds->num_classes; c++)
        len += strlen(ds->class_names[c]) + 24;
    ds->summary = malloc(len);
    if (!ds->summary)
        return cnnl__error(CNNL_ENOMEM, "dataset: out of memory");
    size_t pos = (size_t)snprintf(ds->summary, len, "%zu images, %d classes (", ds->count, ds->num_classes);
    for (int c = 0; c < ds->num_classes; c++)
        pos += (size_t)snprintf(ds->summary + pos, len - pos, "%s%s %zu", c ? ", " : "", ds->class_names[c],
                                ds->class_counts[c]);
    snprintf(ds->summary + pos, len - pos, "), %dx%dx%d, %zu skipped", ds->size, ds->size, ds->channels,
             ds->skipped);
    return CNNL_OK;
}

/* ---- folder scanning ---------------------------------------------------------------- */

typedef struct name_list {
    char **items;
    size_t count, cap;
} name_list;

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static bool names_push(name_list *l, const char *s)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return false;
        l->items = items;
        l->cap = cap;
    }
    if (!(l->items[l->count] = strdup(s)))
        return false;
    l->count++;
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* Entries of @p dir except names starting with '.', sorted by byte order. With @p dirs_only,
 * only entries that are folders (following symbolic links). Returns an errno value. */
static int list_dir(const char *dir, bool dirs_only, name_list *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno;
    struct dirent *e;
    int err = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (dirs_only) {
            char *p = join_path(dir, e->d_name);
            if (!p) { /* out of memory must not drop a class folder */
                err = ENOMEM;
                break;
            }
            struct stat st;
            bool is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
            free(p);
            if (!is_dir)
                continue;
        }
        if (!names_push(out, e->d_name)) {
            err = ENOMEM;
            break;
        }
    }
    closedir(d);
    if (out->count)
        qsort(out->items, out->count, sizeof *out->items, cmp_names);
    return err;
}

/* One file to load: its name relative to the root, label, and preparation result. */
typedef struct file_entry {
    char *name;
    int label;
    cnnl__image_result res;
} file_entry;

typedef struct scan {
    const char *root;
    const cnnl_dataset_opts *opts;
    name_list classes;
    bool *class_unreadable;
    file_entry *files;
    size_t nfiles, cap;
    int64_t peak_pixels; /* most pixels decoded at once */
} scan;

static void scan_free(scan *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        free(s->files[i].name);
        free(s->files[i].res.pixels);
        free(s->files[i].res.message);
    }
    free(s->files);
    free(s->class_unreadable);
    names_free(&s->classes);
}

static cnnl_status add_file(scan *s, const char *cls, const char *file, int label)
{
    if (s->nfiles == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        file_entry *f = realloc(s->files, cap * sizeof *f);
        if (!f)
            return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
        s->files = f;
        s->cap = cap;
    }
    file_entry *f = &s->files[s->nfiles];
    memset(f, 0, sizeof *f);
    f->label = label;
    if (!(f->name = join_path(cls, file)))
        return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
    s->nfiles++;
    return CNNL_OK;
}

static cnnl_status find_classes(scan *s)
{
    struct stat st;
    if (stat(s->root, &st) != 0)
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_dataset_load_folder: %s: %s", s->root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cnnl__error(CNNL_ENOTFOUND, "cnnl_dataset_load_folder: %s: not a folder", s->root);
    int err = list_dir(s->root, true, &s->classes);
    if (err)
        return cnnl__error(err == ENOMEM ? CNNL_ENOMEM : CNNL_EIO, "cnnl_dataset_load_folder: %s: %s", s->root,
                           strerror(err));
    if (s->classes.count == 0)
        return cnnl__error(CNNL_EFORMAT, "cnnl_dataset_load_folder: %s: no class folders (expected root/<class>/<image>)",
                           s->root);
    if (s->classes.count > INT_MAX / 2)
        return cnnl__error(CNNL_EFORMAT, "cnnl_dataset_load_folder: %s: too many class folders", s->root);
    s->class_unreadable = calloc(s->classes.count, sizeof *s->class_unreadable);
    if (!s->class_unreadable)
        return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
    return CNNL_OK;
}

static cnnl_status find_files(scan *s)
{
    for (size_t c = 0; c < s->classes.count; c++) {
        char *dir = join_path(s->root, s->classes.items[c]);
        if (!dir)
            return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
        name_list files = {0};
        int err = list_dir(dir, false, &files);
        free(dir);
        if (err == ENOMEM) {
            names_free(&files);
            return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
        }
        s->class_unreadable[c] = err != 0;
        cnnl_status st = CNNL_OK;
        for (size_t i = 0; i < files.count && st == CNNL_OK; i++)
            st = add_file(s, s->classes.items[c], files.items[i], (int)c);
        names_free(&files);
        if (st != CNNL_OK)
            return st;
    }
    return CNNL_OK;
}

static cnnl_status prepare_files(scan *s)
{
    const cnnl_dataset_opts *o = s->opts;
    long n = (long)s->nfiles;
    /* At most max_pixels decoded pixels in memory at once over all threads, as for one image. */
    cnnl__pixel_budget budget;
    cnnl__pixel_budget_init(&budget, o->max_pixels);
    /* Files differ a lot in size, so hand them out one at a time; the result of each file
     * does not depend on which thread prepares it. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(cnnl__num_threads())
    for (long i = 0; i < n; i++) {
        file_entry *f = &s->files[i];
        char *path = join_path(s->root, f->name);
        if (!path) {
            f->res.status = CNNL_ENOMEM;
            continue;
        }
        cnnl__image_prepare(path, o->size, o->channels, o->max_dim, o->max_pixels, &budget, &f->res);
        free(path);
    }
    s->peak_pixels = budget.peak;
    cnnl__pixel_budget_destroy(&budget);
    return CNNL_OK;
}

/* Report bad files and empty classes in file order: warnings, or the first as an error. */
static cnnl_status report_problems(scan *s, size_t *skipped, size_t *good)
{
    size_t *per_class = calloc(s->classes.count, sizeof *per_class);
    if (!per_class)
        return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
    *skipped = *good = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        file_entry *f = &s->files[i];
        if (f->res.status == CNNL_OK) {
            per_class[f->label]++;
            (*good)++;
            continue;
        }
        const char *msg = f->res.message ? f->res.message : "out of memory";
        if (s->opts->strict || f->res.status == CNNL_ENOMEM) {
            free(per_class);
            return cnnl__error(f->res.status, "%s/%s: %s", s->root, f->name, msg);
        }
        cnnl__log(CNNL_LOG_WARNING, "%s/%s: %s; skipped", s->root, f->name, msg);
        (*skipped)++;
    }
    for (size_t c = 0; c < s->classes.count; c++) {
        if (per_class[c])
            continue;
        const char *why = s->class_unreadable[c] ? "cannot be read" : "has no usable images";
        if (s->opts->strict) {
            free(per_class);
            return cnnl__error(CNNL_EFORMAT, "%s/%s: class folder %s", s->root, s->classes.items[c], why);
        }
        cnnl__log(CNNL_LOG_WARNING, "%s/%s: class folder %s; the class is kept with 0 images", s->root,
                  s->classes.items[c], why);
        (*skipped)++;
    }
    free(per_class);
    if (*good == 0)
        return cnnl__error(CNNL_EFORMAT, "cnnl_dataset_load_folder: %s: no usable images", s->root);
    return CNNL_OK;
}

/* Move the prepared images and names from the scan into a new dataset. */
static cnnl_status build_dataset(scan *s, size_t good, size_t skipped, cnnl_dataset **out)
{
    cnnl_dataset *ds = NULL;
    cnnl_status st = cnnl__dataset_alloc(&ds, s->opts, good, (int)s->classes.count);
    if (st != CNNL_OK)
        return st;
    for (size_t c = 0; c < s->classes.count; c++) {
        ds->class_names[c] = s->classes.items[c];
        s->classes.items[c] = NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        file_entry *f = &s->files[i];
        if (f->res.status != CNNL_OK)
            continue;
        ds->names[k] = f->name;
        ds->labels[k] = f->label;
        ds->pixels[k] = f->res.pixels;
        ds->stored[k] = (uint8_t)f->res.channels;
        f->name = NULL;
        f->res.pixels = NULL;
        k++;
    }
    ds->skipped = skipped;
    ds->peak_pixels = s->peak_pixels;
    ds->root = strdup(s->root);
    if (!ds->root) {
        cnnl_dataset_free(ds);
        return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_load_folder: out of memory");
    }
    if ((st = cnnl__dataset_finish(ds)) != CNNL_OK) {
        cnnl_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_dataset_load_folder(cnnl_dataset **out, const char *root,
                                              const cnnl_dataset_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !root)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_load_folder: %s is NULL", out ? "root" : "out");
    cnnl_dataset_opts o;
    cnnl_status st = cnnl__data_check_opts("cnnl_dataset_load_folder", opts, &o);
    if (st != CNNL_OK)
        return st;
    scan s;
    memset(&s, 0, sizeof s);
    s.root = root;
    s.opts = &o;
    size_t good = 0, skipped = 0;
    if ((st = find_classes(&s)) == CNNL_OK && (st = find_files(&s)) == CNNL_OK &&
        (st = prepare_files(&s)) == CNNL_OK && (st = report_problems(&s, &skipped, &good)) == CNNL_OK)
        st = build_dataset(&s, good, skipped, out);
    scan_free(&s);
    return st;
}

/* ---- queries ------------------------------------------------------------------------ */

CNNL_API size_t cnnl_dataset_count(const cnnl_dataset *ds)
{
    return ds ? ds->count : 0;
}

CNNL_API int cnnl_dataset_num_classes(const cnnl_dataset *ds)
{
    return ds ? ds->num_classes : 0;
}

CNNL_API const char *cnnl_dataset_class_name(const cnnl_dataset *ds, int label)
{
    return ds && label >= 0 && label < ds->num_classes ? ds->class_names[label] : NULL;
}

CNNL_API size_t cnnl_dataset_class_count(const cnnl_dataset *ds, int label)
{
    return ds && label >= 0 && label < ds->num_classes ? ds->class_counts[label] : 0;
}

CNNL_API int cnnl_dataset_label(const cnnl_dataset *ds, size_t index)
{
    return ds && index < ds->count ? ds->labels[index] : -1;
}

CNNL_API const char *cnnl_dataset_name(const cnnl_dataset *ds, size_t index)
{
    return ds && index < ds->count ? ds->names[index] : NULL;
}

CNNL_API const char *cnnl_dataset_root(const cnnl_dataset *ds)
{
    return ds ? ds->root : NULL;
}

CNNL_API size_t cnnl_dataset_skipped(const cnnl_dataset *ds)
{
    return ds ? ds->skipped : 0;
}

CNNL_API const char *cnnl_dataset_summary(const cnnl_dataset *ds)
{
    return ds && ds->summary ? ds->summary : "";
}

CNNL_API cnnl_status cnnl_dataset_geometry(const cnnl_dataset *ds, int *channels, int *size)
{
    if (!ds)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_geometry: ds is NULL");
    if (channels)
        *channels = ds->channels;
    if (size)
        *size = ds->size;
    return CNNL_OK;
}

void cnnl__pixels_convert(const uint8_t *src, int stored, int channels, size_t plane,
                          const float lut[3][256], float *out)
{
    for (int c = 0; c < channels; c++) {
        const float *l = lut[c];
        float *dst = out + (size_t)c * plane;
        if (stored == 1)
            for (size_t p = 0; p < plane; p++)
                dst[p] = l[src[p]];
        else
            for (size_t p = 0; p < plane; p++)
                dst[p] = l[src[3 * p + (size_t)c]];
    }
}

void cnnl__dataset_convert(const cnnl_dataset *ds, size_t index, float *out)
{
    size_t plane = (size_t)ds->size * (size_t)ds->size;
    cnnl__pixels_convert(ds->pixels[index], ds->stored[index], ds->channels, plane,
                         (const float(*)[256])ds->lut, out);
}

CNNL_API cnnl_status cnnl_dataset_normalization(const cnnl_dataset *ds, cnnl_normalization *norm)
{
    if (!ds || !norm)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_normalization: %s is NULL", ds ? "norm" : "ds");
    *norm = ds->norm;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_dataset_get(const cnnl_dataset *ds, size_t index, float *out)
{
    if (!ds || !out)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_get: %s is NULL", ds ? "out" : "ds");
    if (index >= ds->count)
        return cnnl__error(CNNL_ERANGE, "cnnl_dataset_get: index %zu; the dataset has %zu images", index,
                           ds->count);
    cnnl__dataset_convert(ds, index, out);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_dataset_pixels(const cnnl_dataset *ds, size_t index,
                                         const uint8_t **pixels, int *channels)
{
    if (!ds || !pixels || !channels)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_pixels: %s is NULL",
                           !ds ? "ds" : !pixels ? "pixels" : "channels");
    if (index >= ds->count)
        return cnnl__error(CNNL_ERANGE, "cnnl_dataset_pixels: index %zu; the dataset has %zu images", index,
                           ds->count);
    *pixels = ds->pixels[index];
    *channels = ds->stored[index];
    return CNNL_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

typedef struct png_job {
    const uint8_t *pixels;
    int size, channels;
    int error;
} png_job;

static void png_sink(void *ctx, void *data, int size)
{
    FILE **fp = ctx;
    if (*fp && fwrite(data, 1, (size_t)size, *fp) != (size_t)size)
        *fp = NULL;
}

static int write_png(FILE *f, void *ctx)
{
    png_job *job = ctx;
    FILE *sink = f;
    int ok = stbi_write_png_to_func(png_sink, &sink, job->size, job->size, job->channels, job->pixels,
                                    job->size * job->channels);
    return !ok || sink == NULL;
}

static cnnl_status make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return CNNL_OK;
        return cnnl__error(CNNL_EIO, "%s: exists and is not a folder", dir);
    }
    return cnnl__error(CNNL_EIO, "%s: cannot create folder: %s", dir, strerror(errno));
}

/* "<dir>/<name>" with the extension of @p name replaced by ".png". */
static char *png_path(const char *dir, const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash + 1 : name, '.');
    size_t stem = dot ? (size_t)(dot - name) : strlen(name);
    size_t len = strlen(dir) + 1 + stem + 5;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%.*s.png", dir, (int)stem, name);
    return p;
}

CNNL_API cnnl_status cnnl_dataset_write_folder(const cnnl_dataset *ds, const char *dir)
{
    if (!ds || !dir)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_write_folder: %s is NULL", ds ? "dir" : "ds");
    cnnl_status st = make_dir(dir);
    for (int c = 0; c < ds->num_classes && st == CNNL_OK; c++) {
        char *sub = join_path(dir, ds->class_names[c]);
        st = sub ? make_dir(sub) : cnnl__error(CNNL_ENOMEM, "cnnl_dataset_write_folder: out of memory");
        free(sub);
    }
    if (st != CNNL_OK)
        return st;
    long n = (long)ds->count;
    long first_bad = n;
    /* Each file is independent; the first failure in file order is reported. */
#pragma omp parallel for schedule(dynamic, 4) num_threads(cnnl__num_threads())
    for (long i = 0; i < n; i++) {
        char *path = png_path(dir, ds->names[i]);
        png_job job = {ds->pixels[i], ds->size, ds->stored[i], 0};
        bool ok = path && cnnl__atomic_write_stream(path, write_png, &job) == CNNL_OK;
        free(path);
        if (!ok) {
#pragma omp critical(cnnl_write_folder)
            if (i < first_bad)
                first_bad = i;
        }
    }
    if (first_bad < n) {
        char *path = png_path(dir, ds->names[first_bad]);
        cnnl_status s = cnnl__error(CNNL_EIO, "cnnl_dataset_write_folder: %s: cannot write", path ? path : dir);
        free(path);
        return s;
    }
    return CNNL_OK;
}
