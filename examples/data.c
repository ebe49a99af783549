/*
 * cnnlite-data: load an image folder (timed) or write the synthetic MRI set as one.
 *
 *   cnnlite-data load <folder> [--size N] [--threads N] [--channels 1|3] [--write DIR]
 *   cnnlite-data synth <folder> [--count N] [--size N] [--seed N] [--difficulty D]
 *   cnnlite-data split <folder> <split-file> [--seed N] [--fraction F] [--stratified]
 */
#include <cnnlite/cnnlite.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cnnlite-data load <folder> [--size N] [--threads N] [--channels 1|3] [--write DIR]\n"
            "       cnnlite-data synth <folder> [--count N] [--size N] [--seed N] [--difficulty D]\n"
            "       cnnlite-data split <folder> <split-file> [--seed N] [--fraction F] [--stratified]\n"
            "Loads an image folder <folder>/<class>/<image> (timed; --write saves the resized images\n"
            "as PNG files), writes the synthetic MRI-like set as such a folder, or writes a\n"
            "train/test split of a folder.\n"
            "\n"
            "  --size N          images resized to N x N (default 512)\n"
            "  --channels C      1 or 3 channels (default 3)\n"
            "  --threads N       threads (default: all processors)\n"
            "  --write DIR       (load) write the resized images under DIR\n"
            "  --count N         (synth) images (default 1311)\n"
            "  --seed N          (synth, split) seed (default 0)\n"
            "  --difficulty D    (synth) difficulty, 0 (easy) .. 1 (default 0.5)\n"
            "  --fraction F      (split) training fraction, 0 < F < 1 (default 0.8)\n"
            "  --stratified      (split) the same fraction of every class\n"
            "  --help            show this text\n"
            "  --version         show the program's and the library's version\n");
}

typedef struct args {
    int size, threads, channels;
    size_t count;
    unsigned long long seed;
    double difficulty, fraction;
    int stratified;
    const char *write_dir;
} args;

static const struct option long_options[] = {
    CL_STD_OPTIONS,
    CL_FLAG("stratified"),
    CL_ARG("size"),
    CL_ARG("threads"),
    CL_ARG("channels"),
    CL_ARG("count"),
    CL_ARG("seed"),
    CL_ARG("difficulty"),
    CL_ARG("fraction"),
    CL_ARG("write"),
    CL_END_OPTIONS,
};

/* Options anywhere among the operands; returns 0, 1 after --help or --version, -1 after a
 * message. The operands are left at argv[optind..]. */
static int parse(int argc, char **argv, args *a)
{
    cl_opt o;
    int r, n;
    uint64_t u;
    while ((r = cl_next_option(argc, argv, long_options, &o)) > 0) {
        const char *v = o.value;
        if (cl_std_option(&o, usage))
            return 1;
        if (cl_is(&o, "stratified")) {
            a->stratified = 1;
        } else if (cl_is(&o, "size")) {
            if (!cl_parse_int("size", v, 1, CNNL_DATA_MAX_DIM, &a->size))
                return -1;
        } else if (cl_is(&o, "threads")) {
            if (!cl_parse_int("threads", v, 1, 1024, &a->threads))
                return -1;
        } else if (cl_is(&o, "channels")) {
            if (!cl_parse_int("channels", v, 1, 3, &a->channels))
                return -1;
            if (a->channels == 2) {
                cl_error("--channels: must be 1 or 3");
                return -1;
            }
        } else if (cl_is(&o, "count")) {
            if (!cl_parse_int("count", v, 1, 100000000, &n))
                return -1;
            a->count = (size_t)n;
        } else if (cl_is(&o, "seed")) {
            if (!cl_parse_u64("seed", v, &u))
                return -1;
            a->seed = u;
        } else if (cl_is(&o, "difficulty")) {
            if (!cl_parse_double("difficulty", v, 0, 1, false, false, &a->difficulty))
                return -1;
        } else if (cl_is(&o, "fraction")) {
            if (!cl_parse_double("fraction", v, 0, 1, true, true, &a->fraction))
                return -1;
        } else if (cl_is(&o, "write")) {
            a->write_dir = v;
        }
    }
    return r < 0 ? -1 : 0;
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
        cl_fail(dir, st);
        return 1;
    }
    printf("%s\nloaded in %.3f s with %d threads\n", cnnl_dataset_summary(ds), t1 - t0, cnnl_get_num_threads());
    /* the resized images as PNG files, e.g. to compare them with another resizer */
    if (a->write_dir && (st = cnnl_dataset_write_folder(ds, a->write_dir)) != CNNL_OK) {
        cl_fail(a->write_dir, st);
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
        cl_fail(dir, st);
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
    const char *what = dir;
    cnnl_status st = cnnl_dataset_load_folder(&ds, dir, &o);
    if (st == CNNL_OK)
        st = cnnl_split_create(&sp, ds, &so);
    if (st == CNNL_OK && (st = cnnl_split_save(sp, ds, file)) != CNNL_OK)
        what = file;
    if (st == CNNL_OK)
        printf("%s\ntrain %zu, test %zu, saved to %s\n", cnnl_dataset_summary(ds),
               cnnl_split_count(sp, CNNL_SUBSET_TRAIN), cnnl_split_count(sp, CNNL_SUBSET_TEST), file);
    else
        cl_fail(what, st);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
    return st == CNNL_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-data", "load|synth <folder> | split <folder> <split-file> [options]");
    args a = {512, 0, 3, 0, 0, 0.5, 0.8, 0, NULL};
    int r = parse(argc, argv, &a);
    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    int operands = argc - optind;
    const char *cmd = operands > 0 ? argv[optind] : "";
    int want = strcmp(cmd, "split") == 0 ? 3 : strcmp(cmd, "load") == 0 || strcmp(cmd, "synth") == 0 ? 2 : 0;
    if (want == 0) {
        if (operands > 0)
            cl_error("unknown command '%s'; choose load, synth or split", cmd);
        else
            cl_error("no command given; choose load, synth or split");
        return cl_usage_error();
    }
    if (operands != want) {
        cl_error("%s takes %s, not %d argument%s", cmd, want == 3 ? "a folder and a split file" : "one folder",
                 operands - 1, operands == 2 ? "" : "s");
        return cl_usage_error();
    }
    if (a.threads > 0 && cnnl_set_num_threads(a.threads) != CNNL_OK)
        return cl_fail("--threads", CNNL_EINVAL), EXIT_USAGE;
    if (strcmp(cmd, "load") == 0)
        return cmd_load(argv[optind + 1], &a);
    if (strcmp(cmd, "synth") == 0)
        return cmd_synth(argv[optind + 1], &a);
    if (cl_check_output(NULL, argv[optind + 2]) != 0)
        return EXIT_FAIL;
    return cmd_split(argv[optind + 1], argv[optind + 2], &a);
}
