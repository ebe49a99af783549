/*
 * cnnlite-data: load an image folder (timed) or write the synthetic MRI set as one.
 *
 *   cnnlite-data load <folder> [--size N] [--threads N] [--channels 1|3] [--write DIR]
 *   cnnlite-data synth <folder> [--count N] [--size N] [--seed N] [--difficulty D]
 *   cnnlite-data split <folder> <split-file> [--seed N] [--fraction F] [--stratified]
 */
#include <cnnlite/cnnlite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: cnnlite-data load <folder> [--size N] [--threads N] [--channels 1|3] [--write DIR]\n"
            "       cnnlite-data synth <folder> [--count N] [--size N] [--seed N] [--difficulty D]\n"
            "       cnnlite-data split <folder> <split-file> [--seed N] [--fraction F] [--stratified]\n");
    return 2;
}

typedef struct args {
    int size, threads, channels;
    size_t count;
    unsigned long long seed;
    double difficulty, fraction;
    int stratified;
    const char *write_dir;
} args;

static int parse(int argc, char **argv, int first, args *a)
{
    for (int i = first; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--stratified") == 0) {
            a->stratified = 1;
            continue;
        }
        if (!v)
            return -1;
        if (strcmp(k, "--size") == 0)
            a->size = atoi(v);
        else if (strcmp(k, "--threads") == 0)
            a->threads = atoi(v);
        else if (strcmp(k, "--channels") == 0)
            a->channels = atoi(v);
        else if (strcmp(k, "--count") == 0)
            a->count = strtoull(v, NULL, 10);
        else if (strcmp(k, "--seed") == 0)
            a->seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "--difficulty") == 0)
            a->difficulty = atof(v);
        else if (strcmp(k, "--fraction") == 0)
            a->fraction = atof(v);
        else if (strcmp(k, "--write") == 0)
            a->write_dir = v;
        else
            return -1;
        i++;
    }
    return 0;
}

static int cmd_load(const char *dir, const args *a)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = a->size;
    o.channels = a->channels;
    cnnl_dataset *ds = NULL;
    double t0 = now();
    cnnl_status st = cnnl_dataset_load_folder(&ds, dir, &o);
    double t1 = now();
    if (st != CNNL_OK) {
        fprintf(stderr, "cnnlite-data: %s\n", cnnl_last_error());
        return 1;
    }
    printf("%s\nloaded in %.3f s with %d threads\n", cnnl_dataset_summary(ds), t1 - t0, cnnl_get_num_threads());
    /* the resized images as PNG files, e.g. to compare them with another resizer */
    if (a->write_dir && cnnl_dataset_write_folder(ds, a->write_dir) != CNNL_OK) {
        fprintf(stderr, "cnnlite-data: %s\n", cnnl_last_error());
        cnnl_dataset_free(ds);
        return 1;
    }
    cnnl_dataset_free(ds);
    return 0;
}

static int cmd_synth(const char *dir, const args *a)
{
    cnnl_synthetic_opts s = cnnl_synthetic_opts_default();
    if (a->count)
        s.count = a->count;
    s.seed = a->seed;
    s.difficulty = (float)a->difficulty;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = a->size;
    cnnl_dataset *ds = NULL;
    double t0 = now();
    cnnl_status st = cnnl_dataset_synthetic(&ds, &s, &o);
    double t1 = now();
    if (st == CNNL_OK)
        st = cnnl_dataset_write_folder(ds, dir);
    if (st != CNNL_OK) {
        fprintf(stderr, "cnnlite-data: %s\n", cnnl_last_error());
        cnnl_dataset_free(ds);
        return 1;
    }
    printf("%s\ngenerated in %.3f s, written to %s in %.3f s\n", cnnl_dataset_summary(ds), t1 - t0, dir,
           now() - t1);
    cnnl_dataset_free(ds);
    return 0;
}

static int cmd_split(const char *dir, const char *file, const args *a)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8; /* only the names matter */
    cnnl_split_opts so = cnnl_split_opts_default();
    so.seed = a->seed;
    so.train_fraction = a->fraction;
    so.stratified = a->stratified != 0;
    cnnl_dataset *ds = NULL;
    cnnl_split *sp = NULL;
    cnnl_status st = cnnl_dataset_load_folder(&ds, dir, &o);
    if (st == CNNL_OK)
        st = cnnl_split_create(&sp, ds, &so);
    if (st == CNNL_OK)
        st = cnnl_split_save(sp, ds, file);
    if (st == CNNL_OK)
        printf("%s\ntrain %zu, test %zu, saved to %s\n", cnnl_dataset_summary(ds),
               cnnl_split_count(sp, CNNL_SUBSET_TRAIN), cnnl_split_count(sp, CNNL_SUBSET_TEST), file);
    else
        fprintf(stderr, "cnnlite-data: %s\n", cnnl_last_error());
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
    return st == CNNL_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    args a = {512, 0, 3, 0, 0, 0.5, 0.8, 0, NULL};
    if (argc < 3)
        return usage();
    int is_split = strcmp(argv[1], "split") == 0;
    if ((is_split && argc < 4) || parse(argc, argv, is_split ? 4 : 3, &a) != 0)
        return usage();
    if (a.threads > 0 && cnnl_set_num_threads(a.threads) != CNNL_OK) {
        fprintf(stderr, "cnnlite-data: %s\n", cnnl_last_error());
        return 2;
    }
    if (strcmp(argv[1], "load") == 0)
        return cmd_load(argv[2], &a);
    if (strcmp(argv[1], "synth") == 0)
        return cmd_synth(argv[2], &a);
    if (is_split)
        return cmd_split(argv[2], argv[3], &a);
    return usage();
}
