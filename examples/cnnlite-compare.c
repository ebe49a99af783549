/* cnnlite-compare: the report's comparisons (regularization, batch size, epochs, dropout
 * rate), repeated over several seeds, as a table of mean ± sd and one picture of the curves. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "run.h"

#define MAX_CONFIGS 16
#define MAX_SEEDS 16

typedef struct config {
    char label[32];
    const char *arch; /* description file, or NULL for the report network */
    bool batchnorm;
    double dropout;
    int batch, epochs;
} config;

typedef struct study {
    const char *name;
    const char *what;
} study;

static const study studies[] = {
    {"regularization", "none / dropout 0.2 / batch norm (+ dropout 0.2)"},
    {"batch", "batch size 16 / 32 / 64"},
    {"epochs", "15 / 30 / 40 epochs"},
    {"dropout", "dropout rate 0.5 / 0.4 / 0.3 / 0.2"},
};

static void usage(FILE *out)
{
    fprintf(out,
"usage: cnnlite-compare [options]\n"
"Runs the report's comparisons of the CNN, each configuration over several seeds, and prints\n"
"a table of mean ± sd of the best and final test accuracy, the final macro F1 and the time\n"
"per epoch; --plot draws every run's test accuracy and training loss.\n"
"\n"
"  --study NAME       regularization (default), batch, epochs, dropout, or all:\n");
    for (size_t i = 0; i < sizeof studies / sizeof studies[0]; i++)
        fprintf(out, "                       %-15s %s\n", studies[i].name, studies[i].what);
    fprintf(out,
"  --arch FILE        compare networks instead: repeat --arch to train each description\n"
"                     (same input size) under the same settings; no --study then\n"
"  --seeds N          seeds 0..N-1 (default 3, at most %d)\n"
"  --plot FILE        SVG picture comparing the runs' curves\n"
"  --csv FILE         one line per run (config, seed, best, final, macro F1, s/epoch)\n"
"  --data DIR, --count N, --difficulty D, --epochs N, --batch N, --lr X, --dropout P,\n"
"  --batchnorm, --no-batchnorm, --size N, --channels C, --split F, --threads N\n"
"                     as for cnnlite-train; the study overrides the setting it varies\n"
"                     (without --data: the demo's synthetic set, %dx%d, %d epochs)\n"
"  --quiet            no progress on stderr\n"
"  --help             show this text\n"
"  --version          show the program's and the library's version\n",
            MAX_SEEDS, DEMO_SIZE, DEMO_SIZE, DEMO_EPOCHS);
}

static int add(config *cfg, int n, const char *label, bool bn, double p, int batch, int epochs)
{
    if (n >= MAX_CONFIGS)
        return n;
    snprintf(cfg[n].label, sizeof cfg[n].label, "%s", label);
    cfg[n].batchnorm = bn;
    cfg[n].dropout = p;
    cfg[n].batch = batch;
    cfg[n].epochs = epochs;
    return n + 1;
}

static int make_configs(const char *name, const run_config *base, config *cfg)
{
    int n = 0, e = base->epochs, b = base->batch;
    double p = base->dropout;
    bool all = strcmp(name, "all") == 0;
    if (all || strcmp(name, "regularization") == 0) {
        n = add(cfg, n, "none", false, 0.0, b, e);
        n = add(cfg, n, "dropout 0.2", false, 0.2, b, e);
        n = add(cfg, n, "batch norm", true, 0.2, b, e);
    }
    if (all || strcmp(name, "batch") == 0) {
        n = add(cfg, n, "batch 16", base->batchnorm, p, 16, e);
        n = add(cfg, n, "batch 32", base->batchnorm, p, 32, e);
        n = add(cfg, n, "batch 64", base->batchnorm, p, 64, e);
    }
    if (all || strcmp(name, "epochs") == 0) {
        n = add(cfg, n, "15 epochs", base->batchnorm, p, b, 15);
        n = add(cfg, n, "30 epochs", base->batchnorm, p, b, 30);
        n = add(cfg, n, "40 epochs", base->batchnorm, p, b, 40);
    }
    if (all || strcmp(name, "dropout") == 0) {
        const double rates[4] = {0.5, 0.4, 0.3, 0.2};
        for (int i = 0; i < 4; i++) {
            char label[32];
            snprintf(label, sizeof label, "dropout %.1f", rates[i]);
            n = add(cfg, n, label, base->batchnorm, rates[i], b, e);
        }
    }
    return n;
}

static void mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0; /* sample standard deviation */
}

typedef struct options {
    run_config base;
    const char *study, *plot, *csv;
    int seeds;
    const char *archs[MAX_CONFIGS];
    int narchs;
    bool set_study;
} options;

/* One configuration per --arch file, labelled by its name; all must take the same input. */
static int arch_configs(const options *o, config *cfg)
{
    int64_t first[3] = {0, 0, 0};
    for (int k = 0; k < o->narchs; k++) {
        cnnl_model *m = NULL;
        int64_t in[3];
        cnnl_status st = cnnl_model_from_json_file(&m, o->archs[k], 0);
        if (st == CNNL_OK)
            st = cnnl_model_input_shape(m, in);
        cnnl_model_free(m);
        if (st != CNNL_OK)
            return cl_fail("--arch", st), -1;
        if (k == 0)
            memcpy(first, in, sizeof first);
        else if (memcmp(first, in, sizeof first) != 0) {
            cl_error("--arch %s takes %lldx%lldx%lld inputs, %s takes %lldx%lldx%lld: compared networks need the "
                     "same input", o->archs[k], (long long)in[0], (long long)in[1], (long long)in[2], o->archs[0],
                     (long long)first[0], (long long)first[1], (long long)first[2]);
            return -1;
        }
        const char *base = strrchr(o->archs[k], '/');
        add(cfg, k, base ? base + 1 : o->archs[k], o->base.batchnorm, o->base.dropout, o->base.batch,
            o->base.epochs);
        cfg[k].arch = o->archs[k];
    }
    return o->narchs;
}

static const struct option long_options[] = {
    CL_STD_OPTIONS,
    CL_FLAG("quiet"),
    RUN_COMMON_OPTIONS,
    CL_ARG("study"),
    CL_ARG("plot"),
    CL_ARG("csv"),
    CL_ARG("seeds"),
    CL_END_OPTIONS,
};

static int parse(int argc, char **argv, options *o)
{
    cl_opt op;
    int r;
    while ((r = cl_next_option(argc, argv, long_options, &op)) > 0) {
        if (cl_std_option(&op, usage))
            return 1;
        if (cl_is(&op, "quiet")) {
            o->base.quiet = true;
            continue;
        }
        if (cl_is(&op, "arch")) {
            if (o->narchs == MAX_CONFIGS) {
                cl_error("--arch: at most %d networks", MAX_CONFIGS);
                return -1;
            }
            o->archs[o->narchs++] = op.value;
            o->base.arch = o->archs[0]; /* the input geometry of the data */
            continue;
        }
        if ((r = run_common_option(&op, &o->base)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        if (cl_is(&op, "study")) {
            o->study = op.value;
            o->set_study = true;
        } else if (cl_is(&op, "plot")) {
            o->plot = op.value;
        } else if (cl_is(&op, "csv")) {
            o->csv = op.value;
        } else if (cl_is(&op, "seeds")) {
            if (!cl_parse_int("seeds", op.value, 1, MAX_SEEDS, &o->seeds))
                return -1;
        }
    }
    if (r < 0)
        return -1;
    if (optind < argc) {
        cl_error("unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (o->narchs > 0 && o->set_study) {
        cl_error("--study varies the report network's settings; with --arch the networks are compared");
        return -1;
    }
    bool known = strcmp(o->study, "all") == 0;
    for (size_t i = 0; i < sizeof studies / sizeof studies[0]; i++)
        known |= strcmp(o->study, studies[i].name) == 0;
    if (!known) {
        cl_error("--study: unknown study '%s'; choose regularization, batch, epochs, dropout or all",
                 o->study);
        return -1;
    }
    return 0;
}

typedef struct results {
    double best[MAX_SEEDS], final[MAX_SEEDS], f1[MAX_SEEDS], spe[MAX_SEEDS];
} results;

static void print_table(const config *cfg, int n, const results *res, int seeds)
{
    printf("%-14s %5s  %-15s  %-15s  %-15s  %8s\n", "config", "runs", "best acc (%)",
           "final acc (%)", "macro F1", "s/epoch");
    for (int k = 0; k < n; k++) {
        double bm, bs, fm, fs, f1m, f1s, tm, ts;
        mean_sd(res[k].best, seeds, &bm, &bs);
        mean_sd(res[k].final, seeds, &fm, &fs);
        mean_sd(res[k].f1, seeds, &f1m, &f1s);
        mean_sd(res[k].spe, seeds, &tm, &ts);
        printf("%-14s %5d  %6.2f \u00b1 %5.2f   %6.2f \u00b1 %5.2f   %5.3f \u00b1 %5.3f    %8.2f\n",
               cfg[k].label, seeds, bm, bs, fm, fs, f1m, f1s, tm);
    }
}

static int write_csv(const char *path, const config *cfg, int n, const results *res, int seeds)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (f == NULL) {
        cl_error("--csv: %s: out of memory", path);
        return EXIT_FAIL;
    }
    fprintf(f, "config,seed,best_test_accuracy,final_test_accuracy,macro_f1,seconds_per_epoch\n");
    for (int k = 0; k < n; k++)
        for (int s = 0; s < seeds; s++)
            fprintf(f, "%s,%d,%.4f,%.4f,%.6f,%.3f\n", cfg[k].label, s, res[k].best[s],
                    res[k].final[s], res[k].f1[s], res[k].spe[s]);
    int rc = 0;
    if (fclose(f) != 0 || text == NULL) {
        cl_error("--csv: %s: out of memory", path);
        rc = EXIT_FAIL;
    } else {
        cnnl_status st = cnnl_file_write_atomic(path, text, size);
        if (st != CNNL_OK)
            rc = cl_fail(path, st);
    }
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-compare", "[options]");
    options o;
    memset(&o, 0, sizeof o);
    run_config_default(&o.base);
    o.study = "regularization";
    o.seeds = 3;
    int r = parse(argc, argv, &o);
    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    if (run_config_finish(&o.base) != 0)
        return EXIT_USAGE;
    if (cl_check_output("csv", o.csv) != 0 || cl_check_output("plot", o.plot) != 0)
        return EXIT_FAIL;
    config cfg[MAX_CONFIGS];
    memset(cfg, 0, sizeof cfg);
    int n = o.narchs > 0 ? arch_configs(&o, cfg) : make_configs(o.study, &o.base, cfg);
    if (n < 0)
        return EXIT_USAGE;
    cnnl_dataset *ds = NULL;
    int rc = run_load_data(&o.base, &ds);
    if (rc != 0)
        return rc;
    run_describe(&o.base, ds);
    cl_install_stop_handler();
    results *res = calloc((size_t)n, sizeof *res);
    cnnl_history **hist = calloc((size_t)(n * o.seeds), sizeof *hist);
    const char **labels = calloc((size_t)(n * o.seeds), sizeof *labels);
    if (res == NULL || hist == NULL || labels == NULL) {
        cl_error("out of memory");
        rc = EXIT_FAIL;
    }
    int runs = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        for (int s = 0; s < o.seeds && rc == 0; s++) {
            run_config c = o.base;
            c.arch = cfg[k].arch;
            c.batchnorm = cfg[k].batchnorm;
            c.dropout = cfg[k].dropout;
            c.batch = cfg[k].batch;
            c.epochs = cfg[k].epochs;
            c.seed = (uint64_t)s;
            c.print_epochs = false;
            c.print_metrics = false;
            run_result rr;
            rc = run_train_on(&c, ds, &rr, stdout);
            if (rc == 0) {
                res[k].best[s] = rr.best_accuracy;
                res[k].final[s] = rr.final_accuracy;
                res[k].f1[s] = rr.macro_f1;
                res[k].spe[s] = rr.seconds_per_epoch;
                hist[runs] = rr.history;
                labels[runs++] = cfg[k].label;
                if (!o.base.quiet)
                    fprintf(stderr, "%s: %s, seed %d: best %.2f%%, final %.2f%%, macro F1 %.3f, "
                                    "%.1f s/epoch\n", cl_prog, cfg[k].label, s, rr.best_accuracy,
                            rr.final_accuracy, rr.macro_f1, rr.seconds_per_epoch);
            } else {
                run_result_free(&rr);
            }
        }
    }
    if (rc == 0) {
        print_table(cfg, n, res, o.seeds);
        if (o.csv)
            rc = write_csv(o.csv, cfg, n, res, o.seeds);
        if (o.plot) {
            char title[128];
            snprintf(title, sizeof title, "cnnlite-compare: %s (%d seed%s each)", o.narchs ? "networks" : o.study, o.seeds,
                     o.seeds == 1 ? "" : "s");
            cnnl_status st = cnnl_plot_compare((const cnnl_history *const *)hist, labels,
                                               (size_t)runs, o.plot, title);
            if (st != CNNL_OK)
                rc = cl_fail("--plot", st);
        }
    }
    for (int i = 0; i < runs; i++)
        cnnl_history_free(hist[i]);
    free(hist);
    free(labels);
    free(res);
    cnnl_dataset_free(ds);
    return rc;
}
