/* One training run of the report's network, shared by cnnlite-train and cnnlite-compare. */
#ifndef CNNLITE_EXAMPLES_RUN_H
#define CNNLITE_EXAMPLES_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cnnlite/cnnlite.h>

#include "common.h"

/* The no-argument demo: small synthetic images and batch normalisation, so that it ends within
 * two minutes on two cores with a clearly learned accuracy. (Without batch norm the report's
 * network, in PyTorch as here, stays near chance on the synthetic set for the first epochs at
 * these sizes.) */
#define DEMO_COUNT 800
#define DEMO_SIZE 128
#define DEMO_EPOCHS 10
#define DEMO_DIFFICULTY 0.5
/* Seed of the synthetic images: fixed, so that runs with different --seed see the same data. */
#define SYNTHETIC_SEED 0

typedef struct run_config {
    const char *data;        /* image folder, or NULL for the synthetic set */
    const char *arch;        /* architecture description file, or NULL for the report network */
    int count;               /* synthetic images */
    double difficulty;       /* synthetic difficulty, 0..1 */
    int epochs, batch, size, channels, threads;
    cnnl_normalization norm; /* input normalization of the images (default: [0, 1]) */
    double lr, dropout, split;
    bool batchnorm;
    uint64_t seed;
    const char *save, *save_best, *checkpoint, *resume, *history, *plot, *confusion_plot;
    bool quiet;
    bool print_epochs;       /* the report's epoch lines and "Best Test Accuracy" */
    bool print_metrics;      /* the metrics block after training */
    bool set_count, set_epochs, set_size, set_batchnorm, set_difficulty; /* given on the command line */
    bool set_dropout, set_channels;
    const cnnl_comm *comm;   /* data-parallel run over several processes, or NULL */
    int memory_budget_mb;    /* decoded images above this are streamed; 0: the library's default */
    bool bf16;               /* --precision bf16: bfloat16 inside the convolutions */
    cnnl_augment_opts augment; /* training images' transforms (--augment and --aug-*) */
    bool augment_preset;       /* --augment: the preset, then any --aug-* on top */
    const char *optimizer;     /* "adam" (default), "adamw" or "sgd" */
    double weight_decay, momentum;
    cnnl_schedule_opts schedule;
    int patience;              /* early stopping, 0 = off */
    double label_smoothing;
    const char *class_weights; /* NULL, "balanced" or a comma-separated list */
    double val;                /* fraction of the training part held out for validation, 0 = none */
    bool sync_bn;              /* --sync-bn: batch-norm statistics over all processes */
} run_config;

typedef struct run_result {
    cnnl_history *history;   /* owned; free with run_result_free() */
    double best_accuracy;    /* percent */
    double final_accuracy;   /* percent, final weights on the test split */
    double macro_f1;         /* final weights */
    double seconds_per_epoch;
    bool interrupted;
} run_result;

void run_config_default(run_config *c);

/* The options shared by cnnlite-train and cnnlite-compare (cnnlite-metrics takes a part), as
 * getopt_long table entries. */
#define RUN_COMMON_OPTIONS                                                                     \
    CL_FLAG("batchnorm"), CL_FLAG("no-batchnorm"), CL_ARG("data"), CL_ARG("arch"), CL_ARG("count"), \
        CL_ARG("difficulty"), CL_ARG("epochs"), CL_ARG("batch"), CL_ARG("size"),               \
        CL_ARG("channels"), CL_ARG("threads"), CL_ARG("lr"), CL_ARG("dropout"), CL_ARG("split"), \
        CL_ARG("seed"), CL_ARG("memory-budget"), CL_ARG("precision")

/* Apply a shared option: 1 if consumed, 0 if not one of them, -1 after a message on a bad
 * value. */
int run_common_option(const cl_opt *o, run_config *c);

/* The training options of cnnlite-train: augmentation, optimizer, schedule, early stopping,
 * loss, validation split. */
#define RUN_TRAINING_OPTIONS                                                                   \
    CL_FLAG("augment"), CL_ARG("aug-flip"), CL_ARG("aug-rotate"), CL_ARG("aug-scale-min"),     \
        CL_ARG("aug-scale-max"), CL_ARG("aug-translate"), CL_ARG("aug-roundtrip"),             \
        CL_ARG("aug-roundtrip-min"), CL_ARG("aug-blur"), CL_ARG("aug-blur-sigma"),             \
        CL_ARG("aug-gamma"), CL_ARG("aug-contrast"), CL_ARG("aug-brightness"),                 \
        CL_ARG("aug-noise"), CL_ARG("optimizer"), CL_ARG("weight-decay"), CL_ARG("momentum"),  \
        CL_ARG("schedule"), CL_ARG("warmup"), CL_ARG("step-size"), CL_ARG("lr-factor"),        \
        CL_ARG("plateau-patience"), CL_ARG("patience"), CL_ARG("label-smoothing"),             \
        CL_ARG("class-weights"), CL_ARG("val"), CL_FLAG("sync-bn")

/* Apply a training option: 1 if consumed, 0 if not one of them, -1 after a message. */
int run_training_option(const cl_opt *o, run_config *c);

/* Apply the demo defaults and check combinations; 0 or -1 after a message. */
int run_config_finish(run_config *c);

/* Check every output file of the run before anything is loaded or trained (cl_check_output()).
 * 0 or EXIT_FAIL. */
int run_check_outputs(const run_config *c);

/* Describe the data and settings on stderr (unless quiet). */
void run_describe(const run_config *c, const cnnl_dataset *ds);

/* Load the image folder or generate the synthetic set; prints the error; 0 or EXIT_FAIL. */
int run_load_data(const run_config *c, cnnl_dataset **ds);

/* One run on @p ds. Returns 0, EXIT_FAIL, or 130 when stopped by Ctrl-C. */
int run_train_on(const run_config *c, const cnnl_dataset *ds, run_result *res, FILE *out);

/* run_load_data + run_describe + run_train_on. */
int run_train(const run_config *c, run_result *res, FILE *out);

void run_result_free(run_result *res);

#endif
