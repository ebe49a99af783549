/* cnnlite-metrics: evaluate a saved model on the test split that cnnlite-train used (same
 * seed and fraction), or on every image: confusion matrix, one-vs-rest metrics, macro block. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "run.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: cnnlite-metrics --model FILE [--data DIR] [options]\n"
"Evaluates a model saved by cnnlite-train (--save) on the test split that training used with\n"
"the same --seed and --split, and prints the confusion matrix (one row per true class), each\n"
"class's one-vs-rest matrix with accuracy, precision, recall and F1, and the macro averages.\n"
"\n"
"  --model FILE       safetensors model file (required)\n"
"  --data DIR         image folder DIR/<class>/<image> (default: the synthetic set of the\n"
"                     cnnlite-train demo, --count images)\n"
"  --count N          synthetic images (default %d, as the demo)\n"
"  --seed N           seed of the split (default 0)\n"
"  --split F          training fraction of the split (default 0.8)\n"
"  --all              evaluate every image instead of the test split\n"
"  --batch N          evaluation batch size (default 32)\n"
"  --threads N        compute threads (default: all processors)\n"
"  --precision P      fp32 (default) or bf16: bfloat16 inputs and weights inside the\n"
"                     convolutions (needs AVX512_BF16 or AMX and the oneDNN engine; an error\n"
"                     otherwise, and a note where it cannot be faster than fp32)\n"
"  --plot FILE        SVG picture of the confusion matrix\n"
"  --perturb KIND     evaluate on perturbed copies of the images: contrast (factor 0.6\n"
"                     about the mean), gamma (exponent 1.5), blur (Gaussian, sigma 2 pixels\n"
"                     at 512, scaled with the size), noise (Gaussian, sd 0.05 of the range),\n"
"                     224 (stored at 224x224 and scaled back up), rotation (10 degrees);\n"
"                     'all' prints the accuracy under each, beside the clean one\n"
"  --batchnorm, --size N, --channels C, --dropout P\n"
"                     architecture, used only when FILE has no metadata (e.g. from PyTorch)\n"
"  --help             show this text\n"
"  --version          show the program's and the library's version\n",
            DEMO_COUNT);
}

typedef struct options {
    run_config c;
    const char *model, *plot, *perturb;
    bool all;
} options;

/* The perturbations of --perturb: each one transform at a fixed strength. */
static const char *const perturb_kinds[] = {"none", "contrast", "gamma", "blur", "noise", "224", "rotation"};
enum { PERTURB_KINDS = 7 };

static int perturb_index(const char *name)
{
    for (int k = 0; k < PERTURB_KINDS; k++)
        if (strcmp(name, perturb_kinds[k]) == 0)
            return k;
    return -1;
}

static cnnl_augment_opts perturbation(int kind, int size)
{
    cnnl_augment_opts a = cnnl_augment_opts_default();
    a.full_strength = true;
    switch (kind) {
    case 1: a.contrast = 0.4f; break;
    case 2: a.gamma = 0.5f; break;
    case 3: a.blur_p = 1.0f; a.blur_sigma = 2.0f * (float)size / 512.0f; break;
    case 4: a.noise_std = 0.05f; break;
    case 5: a.roundtrip_p = 1.0f; a.roundtrip_min = size > 224 ? 224.0f / (float)size : 1.0f; break;
    case 6: a.rotate_deg = 10.0f; break;
    default: break;
    }
    return a;
}

/* The architecture options of cnnlite-train, without --epochs, --lr and the outputs. */
static const struct option long_options[] = {
    CL_STD_OPTIONS,
    CL_FLAG("all"),
    CL_FLAG("batchnorm"), CL_FLAG("no-batchnorm"), CL_ARG("data"), CL_ARG("count"),
    CL_ARG("difficulty"), CL_ARG("batch"), CL_ARG("size"), CL_ARG("channels"),
    CL_ARG("threads"), CL_ARG("dropout"), CL_ARG("split"), CL_ARG("seed"),
    CL_ARG("precision"),
    CL_ARG("model"),
    CL_ARG("plot"),
    CL_ARG("perturb"),
    CL_END_OPTIONS,
};

static int parse(int argc, char **argv, options *o)
{
    cl_opt op;
    int r;
    while ((r = cl_next_option(argc, argv, long_options, &op)) > 0) {
        if (cl_std_option(&op, usage))
            return 1;
        if (cl_is(&op, "all")) {
            o->all = true;
            continue;
        }
        if ((r = run_common_option(&op, &o->c)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
        if (cl_is(&op, "model"))
            o->model = op.value;
        else if (cl_is(&op, "plot"))
            o->plot = op.value;
        else if (cl_is(&op, "perturb"))
            o->perturb = op.value;
    }
    if (r < 0)
        return -1;
    if (optind < argc) {
        cl_error("unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (o->model == NULL) {
        cl_error("--model FILE is required");
        return -1;
    }
    if (o->c.data != NULL && o->c.set_count) {
        cl_error("--count only applies to the synthetic set (without --data)");
        return -1;
    }
    if (o->c.data == NULL && !o->c.set_count)
        o->c.count = DEMO_COUNT;
    if (o->perturb != NULL && strcmp(o->perturb, "all") != 0 && perturb_index(o->perturb) < 0) {
        cl_error("--perturb: unknown kind '%s' (contrast, gamma, blur, noise, 224, rotation, all, none)",
                 o->perturb);
        return -1;
    }
    if (o->c.threads > 0 && cnnl_set_num_threads(o->c.threads) != CNNL_OK)
        return cl_fail("--threads", CNNL_EINVAL), -1;
    return 0;
}

/* Class names: the model file's, else the dataset's. Both must agree in number. */
static int class_names(const cnnl_model_meta *meta, const cnnl_dataset *ds, int classes,
                       const char ***names)
{
    if (cnnl_dataset_num_classes(ds) != classes) {
        cl_error("the model has %d classes, the data %d", classes, cnnl_dataset_num_classes(ds));
        return EXIT_FAIL;
    }
    *names = calloc((size_t)classes, sizeof **names);
    if (*names == NULL)
        return cl_fail("memory", CNNL_ENOMEM);
    bool from_model = cnnl_model_meta_class_count(meta) == (size_t)classes;
    for (int k = 0; k < classes; k++) {
        (*names)[k] = cnnl_dataset_class_name(ds, k);
        const char *m = from_model ? cnnl_model_meta_class_name(meta, (size_t)k) : NULL;
        if (m != NULL && strcmp(m, (*names)[k]) != 0) {
            cl_error("class %d is '%s' in the model but '%s' in the data", k, m, (*names)[k]);
            free(*names);
            *names = NULL;
            return EXIT_FAIL;
        }
    }
    return 0;
}

/* Accuracy (percent) and confusion of the model on @p idx (n images) under perturbation @p kind. */
static cnnl_status evaluate_one(const options *o, cnnl_model *model, const cnnl_dataset *ds,
                                const size_t *idx, size_t n, int kind, cnnl_confusion *cm,
                                double *accuracy)
{
    cnnl_loader *loader = NULL;
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = o->c.batch;
    lo.seed = o->c.seed; /* the noise's draws */
    lo.augment = perturbation(kind, o->c.size);
    cnnl_status st = cnnl_loader_create(&loader, ds, idx, n, &lo);
    if (st == CNNL_OK)
        st = cnnl_evaluate(model, loader, CNNL_LOSS_CROSS_ENTROPY, cm, NULL, accuracy);
    cnnl_loader_free(loader);
    return st;
}

static int evaluate(const options *o, cnnl_model *model, const cnnl_dataset *ds, const char **names)
{
    cnnl_split *split = NULL;
    cnnl_confusion *cm = NULL;
    cnnl_status st = CNNL_OK;
    const size_t *idx = NULL;
    size_t n = cnnl_dataset_count(ds);
    if (!o->all) {
        cnnl_split_opts so = cnnl_split_opts_default();
        so.seed = o->c.seed;
        so.train_fraction = o->c.split;
        st = cnnl_split_create(&split, ds, &so);
        idx = cnnl_split_indices(split, CNNL_SUBSET_TEST);
        n = cnnl_split_count(split, CNNL_SUBSET_TEST);
    }
    if (st == CNNL_OK)
        st = cnnl_confusion_create(&cm, cnnl_dataset_num_classes(ds));
    bool table = o->perturb != NULL && strcmp(o->perturb, "all") == 0;
    int kind = o->perturb != NULL && !table ? perturb_index(o->perturb) : 0;
    int rc = 0;
    if (st == CNNL_OK && table) {
        fprintf(stderr, "%s: %s on %zu %s images, clean and perturbed\n", cl_prog, o->model, n,
                o->all ? "(all)" : "test-split");
        printf("perturbation  accuracy (%%)  change\n");
        double clean = 0;
        for (int k = 0; k < PERTURB_KINDS && st == CNNL_OK; k++) {
            double acc = 0;
            cnnl_confusion_reset(cm);
            st = evaluate_one(o, model, ds, idx, n, k, cm, &acc);
            if (st != CNNL_OK)
                break;
            if (k == 0) {
                clean = acc;
                printf("%-12s  %12.2f\n", "clean", acc);
            } else {
                printf("%-12s  %12.2f  %+6.2f\n", perturb_kinds[k], acc, acc - clean);
            }
            fflush(stdout);
        }
        if (st != CNNL_OK)
            rc = cl_fail("evaluation", st);
    } else if (st == CNNL_OK) {
        st = evaluate_one(o, model, ds, idx, n, kind, cm, NULL);
        if (st != CNNL_OK) {
            rc = cl_fail("evaluation", st);
        } else {
            fprintf(stderr, "%s: %s on %zu %s images%s%s\n", cl_prog, o->model, n,
                    o->all ? "(all)" : "test-split", kind ? ", perturbed: " : "",
                    kind ? perturb_kinds[kind] : "");
            cl_print_metrics(stdout, cm, names);
            if (o->plot && (st = cnnl_plot_confusion(cm, names, o->plot, "Confusion matrix")) != CNNL_OK)
                rc = cl_fail("--plot", st);
        }
    } else {
        rc = cl_fail("evaluation", st);
    }
    cnnl_confusion_free(cm);
    cnnl_split_free(split);
    return rc;
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-metrics", "--model FILE [--data DIR] [options]");
    options o;
    memset(&o, 0, sizeof o);
    run_config_default(&o.c);
    int r = parse(argc, argv, &o);
    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    if (cl_check_output("plot", o.plot) != 0)
        return EXIT_FAIL;
    cnnl_report_opts fallback = cnnl_report_opts_default();
    fallback.batchnorm = o.c.batchnorm;
    fallback.size = o.c.size;
    fallback.channels = o.c.channels;
    fallback.dropout = (float)o.c.dropout;
    cnnl_model *model = NULL;
    cnnl_model_meta *meta = NULL;
    cnnl_report_opts ro;
    /* the data is loaded at the model's geometry and with its normalization, when recorded */
    int rc = cl_load_model(o.model, &fallback, &model, &meta, &ro, &o.c.norm);
    if (rc != 0)
        return rc;
    if (cl_set_precision(model, o.c.bf16, "--precision bf16") != 0) {
        cnnl_model_meta_free(meta);
        cnnl_model_free(model);
        return EXIT_FAIL;
    }
    o.c.size = ro.size;
    o.c.channels = ro.channels;
    cnnl_dataset *ds = NULL;
    const char **names = NULL;
    rc = run_load_data(&o.c, &ds);
    if (rc == 0)
        rc = class_names(meta, ds, ro.classes, &names);
    if (rc == 0)
        rc = evaluate(&o, model, ds, names);
    free(names);
    cnnl_dataset_free(ds);
    cnnl_model_meta_free(meta);
    cnnl_model_free(model);
    return rc;
}
