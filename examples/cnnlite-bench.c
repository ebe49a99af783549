/*
 * cnnlite-bench: speed of the report's network on random data.
 *
 * Training steps are forward, cross-entropy loss, backward and an Adam step; inference is a
 * forward pass in evaluation mode. One warm-up step of each comes first (it sizes the
 * workspaces); then --steps timed steps. With --json the last line of stdout is
 *   {"train_img_s": X, "infer_img_s": Y, "peak_rss_mb": Z}
 */
#include <cnnlite/cnnlite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common.h"

typedef struct bench_opts {
    int batch, size, threads, steps;
    bool batchnorm, json, bf16;
    const char *arch; /* description file, or NULL for the report network */
} bench_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cnnlite-bench [options]\n"
            "Times training steps (forward, cross-entropy, backward, Adam) and inference of the\n"
            "report's network on random data.\n"
            "  --batch N     images per batch (default 32)\n"
            "  --size N      input height and width, a multiple of 32 (default 512)\n"
            "  --threads N   compute threads (default: all processors)\n"
            "  --steps N     timed steps after one warm-up step (default 5)\n"
            "  --batchnorm   use the network with batch normalisation\n"
            "  --arch FILE   time the network of a description instead (its input sets the size)\n"
            "  --precision P fp32 (default) or bf16 (convolutions in bfloat16; needs AVX512_BF16 or AMX)\n"
            "  --json        end the output with one JSON line\n"
            "  --help        show this text\n"
            "  --version     show the program's and the library's version\n");
}

static const struct option long_options[] = {
    CL_STD_OPTIONS,
    CL_FLAG("batchnorm"),
    CL_FLAG("json"),
    CL_ARG("batch"),
    CL_ARG("size"),
    CL_ARG("threads"),
    CL_ARG("steps"),
    CL_ARG("arch"),
    CL_ARG("precision"),
    CL_END_OPTIONS,
};

/* 0: parsed, 1: --help or --version shown, 2: error reported. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.batch = 32, .size = 512, .threads = 0, .steps = 5};
    cl_opt op;
    int r;
    while ((r = cl_next_option(argc, argv, long_options, &op)) > 0) {
        const char *v = op.value;
        if (cl_std_option(&op, usage))
            return 1;
        else if (cl_is(&op, "batchnorm"))
            o->batchnorm = true;
        else if (cl_is(&op, "arch"))
            o->arch = v;
        else if (cl_is(&op, "json"))
            o->json = true;
        else if (cl_is(&op, "batch") && !cl_parse_int("batch", v, 1, 4096, &o->batch))
            return 2;
        else if (cl_is(&op, "size") && !cl_parse_int("size", v, 32, 8192, &o->size))
            return 2;
        else if (cl_is(&op, "threads") && !cl_parse_int("threads", v, 0, 1024, &o->threads))
            return 2;
        else if (cl_is(&op, "steps") && !cl_parse_int("steps", v, 1, 100000, &o->steps))
            return 2;
        else if (cl_is(&op, "precision")) {
            if (strcmp(v, "bf16") != 0 && strcmp(v, "fp32") != 0) {
                cl_error("--precision '%s': must be fp32 or bf16", v);
                return 2;
            }
            o->bf16 = strcmp(v, "bf16") == 0;
        }
    }
    if (r < 0)
        return 2;
    if (optind < argc) {
        cl_error("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (o->size % 32 != 0) {
        cl_error("--size %d is not a multiple of 32", o->size);
        return 2;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bench {
    cnnl_model *model;
    cnnl_optimizer *opt;
    cnnl_tensor *x, *grad;
    int32_t *labels;
    int batch;
} bench;

static cnnl_status train_step(bench *b)
{
    const cnnl_tensor *logits = NULL;
    float loss = 0.0f;
    cnnl_status st = cnnl_optimizer_zero_grad(b->opt);
    if (st == CNNL_OK)
        st = cnnl_model_forward(b->model, b->x, &logits);
    if (st == CNNL_OK && !b->grad) {
        int64_t shape[2] = {cnnl_tensor_dim(logits, 0), cnnl_tensor_dim(logits, 1)};
        st = cnnl_tensor_create(&b->grad, 2, shape);
    }
    if (st == CNNL_OK)
        st = cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, logits, b->labels, (size_t)b->batch, CNNL_REDUCE_MEAN, &loss,
                             b->grad);
    if (st == CNNL_OK)
        st = cnnl_model_backward(b->model, b->grad);
    if (st == CNNL_OK)
        st = cnnl_optimizer_step(b->opt);
    return st;
}

static cnnl_status infer_step(bench *b)
{
    const cnnl_tensor *logits = NULL;
    return cnnl_model_forward(b->model, b->x, &logits);
}

/* Images per second over @p steps calls after one warm-up call. */
static cnnl_status time_steps(bench *b, cnnl_status (*step)(bench *), int steps, double *img_s)
{
    cnnl_status st = step(b);
    double t0 = now();
    for (int i = 0; i < steps && st == CNNL_OK; i++)
        st = step(b);
    *img_s = (double)steps * b->batch / (now() - t0);
    return st;
}

static cnnl_status setup(bench *b, const bench_opts *o)
{
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = o->size;
    ro.batchnorm = o->batchnorm;
    cnnl_status st = o->arch ? cnnl_model_from_json_file(&b->model, o->arch, 0) : cnnl_report_net_create(&b->model, &ro);
    int64_t shape[4] = {o->batch, 3, o->size, o->size};
    if (st == CNNL_OK && o->arch && (st = cnnl_model_input_shape(b->model, shape + 1)) == CNNL_OK &&
        cnnl_model_num_outputs(b->model) == 0)
        st = CNNL_EINVAL; /* cross-entropy needs class outputs */
    if (st == CNNL_OK && o->bf16)
        st = cnnl_model_set_precision(b->model, CNNL_PRECISION_BF16);
    if (st == CNNL_OK) {
        cnnl_adam_opts ao = cnnl_adam_opts_default();
        st = cnnl_optimizer_adam(&b->opt, b->model, &ao);
    }
    if (st == CNNL_OK)
        st = cnnl_tensor_create(&b->x, 4, shape);
    b->labels = calloc((size_t)o->batch, sizeof *b->labels);
    if (st == CNNL_OK && !b->labels)
        return CNNL_ENOMEM;
    if (st != CNNL_OK)
        return st;
    cnnl_rng *rng = NULL;
    if ((st = cnnl_rng_create(&rng, 1, CNNL_RNG_SYNTHETIC)) != CNNL_OK)
        return st;
    float *x = cnnl_tensor_data(b->x);
    for (size_t i = 0; i < cnnl_tensor_numel(b->x); i++)
        x[i] = cnnl_rng_uniform(rng);
    for (int i = 0; i < o->batch; i++)
        b->labels[i] = (int32_t)cnnl_rng_below(rng, cnnl_model_num_outputs(b->model));
    cnnl_rng_free(rng);
    b->batch = o->batch;
    return CNNL_OK;
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-bench", "[options]");
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    cnnl_status st = cnnl_set_num_threads(o.threads);
    bench b = {0};
    if (st == CNNL_OK)
        st = setup(&b, &o);
    double train = 0.0, infer = 0.0;
    if (st == CNNL_OK)
        st = time_steps(&b, train_step, o.steps, &train);
    if (st == CNNL_OK)
        st = cnnl_model_set_training(b.model, false);
    if (st == CNNL_OK)
        st = time_steps(&b, infer_step, o.steps, &infer);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;
    if (st == CNNL_OK) {
        int64_t in[3] = {3, o.size, o.size};
        if (o.arch)
            (void)cnnl_model_input_shape(b.model, in);
        printf("libcnnlite %s, %d threads, batch %d, %lldx%lld, %s, %s, %d steps after 1 warm-up\n",
               cnnl_version_string(), cnnl_get_num_threads(), o.batch, (long long)in[1], (long long)in[2],
               o.arch ? o.arch : o.batchnorm ? "batch norm" : "no batch norm", o.bf16 ? "bf16" : "fp32", o.steps);
        printf("train: %.1f img/s (forward, cross-entropy, backward, Adam)\ninfer: %.1f img/s\npeak RSS: %.0f MB\n",
               train, infer, rss_mb);
        if (o.json)
            printf("{\"train_img_s\": %.2f, \"infer_img_s\": %.2f, \"peak_rss_mb\": %.1f}\n", train, infer, rss_mb);
    } else {
        fprintf(stderr, "cnnlite-bench: %s: %s\n", cnnl_status_string(st), cnnl_last_error());
    }
    cnnl_optimizer_free(b.opt);
    cnnl_model_free(b.model);
    cnnl_tensor_free(b.x);
    cnnl_tensor_free(b.grad);
    free(b.labels);
    return st == CNNL_OK ? 0 : 1;
}
