/*
 * cnnlite-bench: speed of the report's network on random data.
 *
 * Training steps are forward, cross-entropy loss, backward and an Adam step; inference is a
 * forward pass in evaluation mode. One warm-up step of each comes first (it sizes the
 * workspaces); then --steps timed steps. The work of a step is counted in multiply-adds of the
 * convolutions and Linear layers (from the model's weights and the shapes of one profiled
 * pass); GFLOP/s are 2 flops per multiply-add, and the fraction is of the float32 peak of the
 * widest vector unit measured in the same process (bench_peak.c). With --json the last line of
 * stdout is
 *   {"train_img_s": X, "infer_img_s": Y, "peak_rss_mb": Z, "train_gflops": A,
 *    "infer_gflops": B, "peak_gflops": P, "train_peak_frac": F, "infer_peak_frac": G,
 *    "bf16_peak_gflops": Q}
 * where Q is the bfloat16 dot-product peak (AVX512_BF16) with N threads, measured with --peak
 * or --precision bf16 on CPUs that have it, else 0. --peak prints the peak at every vector
 * width with 1 and N threads, and the bfloat16 one; --profile prints the forward and backward
 * time of each layer.
 */
#include <cnnlite/cnnlite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_peak.h"
#include "common.h"

typedef struct bench_opts {
    int batch, size, threads, steps;
    bool batchnorm, json, peak, profile, infer_only;
    const char *precision; /* "fp32" (default) or "bf16" */
    bool bf16;             /* --precision bf16 */
    const char *arch;      /* description file, or NULL for the report network */
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
            "  --precision P fp32 (default) or bf16 arithmetic inside convolutions and Linear\n"
            "  --infer-only  time inference only (train_img_s is then 0)\n"
            "  --peak        also print the float32 multiply-add peak at each vector width\n"
            "                and the bfloat16 dot-product peak (CPUs with AVX512_BF16)\n"
            "  --profile     also print the forward and backward time of each layer\n"
            "  --json        end the output with one JSON line\n"
            "  --help        show this text\n"
            "  --version     show the program's and the library's version\n");
}

static const struct option long_options[] = {
    CL_STD_OPTIONS,
    CL_FLAG("batchnorm"),
    CL_FLAG("json"),
    CL_FLAG("infer-only"),
    CL_FLAG("peak"),
    CL_FLAG("profile"),
    CL_ARG("precision"),
    CL_ARG("arch"),
    CL_ARG("batch"),
    CL_ARG("size"),
    CL_ARG("threads"),
    CL_ARG("steps"),
    CL_END_OPTIONS,
};

/* 0: parsed, 1: --help or --version shown, 2: error reported. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.batch = 32, .size = 512, .threads = 0, .steps = 5, .precision = "fp32"};
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
        else if (cl_is(&op, "infer-only"))
            o->infer_only = true;
        else if (cl_is(&op, "peak"))
            o->peak = true;
        else if (cl_is(&op, "profile"))
            o->profile = true;
        else if (cl_is(&op, "precision")) {
            if (!cl_parse_precision(v, &o->bf16))
                return 2;
            o->precision = v;
        }
        else if (cl_is(&op, "batch") && !cl_parse_int("batch", v, 1, 4096, &o->batch))
            return 2;
        else if (cl_is(&op, "size") && !cl_parse_int("size", v, 32, 8192, &o->size))
            return 2;
        else if (cl_is(&op, "threads") && !cl_parse_int("threads", v, 0, 1024, &o->threads))
            return 2;
        else if (cl_is(&op, "steps") && !cl_parse_int("steps", v, 1, 100000, &o->steps))
            return 2;
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
        b->labels[i] = (int32_t)cnnl_rng_below(rng, 4);
    cnnl_rng_free(rng);
    b->batch = o->batch;
    return CNNL_OK;
}

/* Multiply-adds per image of the convolutions and Linear layers, from the weights' shapes and
 * the input shapes of the last profiled forward pass: a forward pass, and a training step
 * (forward, backward data, backward weights; the first layer with weights computes no input
 * gradient). The report network's convolutions keep the size (stride 1, padding k/2). */
static cnnl_status count_macs(cnnl_model *m, double *fwd, double *train)
{
    *fwd = *train = 0.0;
    bool first = true;
    for (size_t i = 0; i < cnnl_model_num_layers(m); i++) {
        cnnl_layer_profile p;
        cnnl_status st = cnnl_model_layer_profile(m, i, &p);
        if (st != CNNL_OK)
            return st;
        bool conv = !strcmp(p.kind, "Conv2d"), lin = !strcmp(p.kind, "Linear");
        if (!conv && !lin)
            continue;
        char wname[256];
        snprintf(wname, sizeof wname, "%s.weight", p.name);
        cnnl_param_info w;
        if ((st = cnnl_model_state_find(m, wname, &w)) != CNNL_OK)
            return st;
        double macs = (double)w.numel;
        if (conv)
            macs *= p.in_ndim == 4 ? (double)p.in_shape[2] * (double)p.in_shape[3] : 0.0;
        *fwd += macs;
        *train += (first ? 2.0 : 3.0) * macs;
        first = false;
    }
    return CNNL_OK;
}

/* --profile: @p steps profiled training steps, then per layer the mean forward and backward
 * milliseconds per batch and their share of the measured step. */
static cnnl_status print_profile(bench *b, int steps)
{
    cnnl_status st = cnnl_model_set_training(b->model, true);
    if (st == CNNL_OK)
        st = cnnl_model_set_profiling(b->model, true);
    double t0 = now();
    for (int i = 0; i < steps && st == CNNL_OK; i++)
        st = train_step(b);
    double total = (now() - t0) / steps;
    if (st != CNNL_OK)
        return st;
    size_t n = cnnl_model_num_layers(b->model);
    double fsum = 0.0, bsum = 0.0;
    printf("\nper-layer profile, training step, mean of %d steps (ms per batch)\n", steps);
    printf("  %-14s %-12s %10s %10s %7s\n", "layer", "kind", "forward", "backward", "share");
    for (size_t i = 0; i < n; i++) {
        cnnl_layer_profile p;
        if ((st = cnnl_model_layer_profile(b->model, i, &p)) != CNNL_OK)
            return st;
        double f = p.forward_seconds / steps, bw = p.backward_seconds / steps;
        fsum += f;
        bsum += bw;
        printf("  %-14s %-12s %10.2f %10.2f %6.1f%%\n", p.name, p.kind, 1e3 * f, 1e3 * bw, 100.0 * (f + bw) / total);
    }
    printf("  %-27s %10.2f %10.2f %6.1f%%\n", "layers", 1e3 * fsum, 1e3 * bsum, 100.0 * (fsum + bsum) / total);
    printf("  %-27s %21.2f %6.1f%%\n", "whole step (loss, Adam, ...)", 1e3 * total, 100.0);
    return cnnl_model_set_profiling(b->model, false);
}

/* The float32 rows, then the bfloat16 row (@p bf16, or NULL without AVX512_BF16) with its
 * ratio to the widest float32 row. */
static void print_peaks(const bench_peak_result *r, int n, const bench_peak_result *bf16, int threads)
{
    printf("\nfloat32 multiply-add peak (GFLOP/s)\n  %-24s %10s %7d threads\n", "vector width", "1 thread", threads);
    for (int i = 0; i < n; i++)
        printf("  %-24s %10.1f %10.1f\n", r[i].name, r[i].gflops_1, r[i].gflops_n);
    if (!bf16) {
        printf("\nbfloat16 dot-product peak: none (no AVX512_BF16)\n");
        return;
    }
    printf("\nbfloat16 dot-product peak (GFLOP/s; VDPBF16PS, 64 flops per instruction)\n");
    printf("  %-24s %10.1f %10.1f\n", bf16->name, bf16->gflops_1, bf16->gflops_n);
    if (n > 0 && r[n - 1].gflops_1 > 0 && r[n - 1].gflops_n > 0)
        printf("  %-24s %9.2fx %9.2fx\n", "ratio to float32", bf16->gflops_1 / r[n - 1].gflops_1,
               bf16->gflops_n / r[n - 1].gflops_n);
}

/* The precision of the arithmetic inside the convolutions: bf16 where the library and CPU
 * run it (an error otherwise), with a note where it cannot be faster (cl_bf16_note()). */
static cnnl_status apply_precision(bench *b, const bench_opts *o)
{
    if (!o->bf16)
        return CNNL_OK;
    cnnl_status st = cnnl_model_set_precision(b->model, CNNL_PRECISION_BF16);
    if (st != CNNL_OK)
        fprintf(stderr, "cnnlite-bench: --precision %s: %s\n", o->precision, cnnl_last_error());
    else
        cl_bf16_note();
    return st;
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
    if (st == CNNL_OK && apply_precision(&b, &o) != CNNL_OK) {
        cnnl_optimizer_free(b.opt);
        cnnl_model_free(b.model);
        cnnl_tensor_free(b.x);
        free(b.labels);
        return 2;
    }
    double train = 0.0, infer = 0.0, fwd_macs = 0.0, train_macs = 0.0;
    /* one untimed step is profiled, for the shapes that the work count needs */
    if (st == CNNL_OK && o.infer_only)
        st = cnnl_model_set_training(b.model, false);
    if (st == CNNL_OK)
        st = cnnl_model_set_profiling(b.model, true);
    if (st == CNNL_OK)
        st = o.infer_only ? infer_step(&b) : train_step(&b);
    if (st == CNNL_OK)
        st = count_macs(b.model, &fwd_macs, &train_macs);
    if (st == CNNL_OK)
        st = cnnl_model_set_profiling(b.model, false);
    if (st == CNNL_OK && !o.infer_only)
        st = time_steps(&b, train_step, o.steps, &train);
    if (st == CNNL_OK)
        st = cnnl_model_set_training(b.model, false);
    if (st == CNNL_OK)
        st = time_steps(&b, infer_step, o.steps, &infer);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;
    int threads = cnnl_get_num_threads();
    bench_peak_result peaks[4];
    int npeaks = st == CNNL_OK ? bench_peak_measure(threads, o.peak, peaks, 4) : 0;
    double peak = npeaks ? peaks[npeaks - 1].gflops_n : 0.0;
    bench_peak_result bf16_peak = {0};
    bool have_bf16 = st == CNNL_OK && (o.peak || o.bf16) && bench_peak_bf16(threads, o.peak, &bf16_peak);
    if (st == CNNL_OK) {
        double tg = train * train_macs * 2e-9, ig = infer * fwd_macs * 2e-9;
        double tf = peak > 0 ? tg / peak : 0.0, inf = peak > 0 ? ig / peak : 0.0;
        printf("libcnnlite %s, %d threads, batch %d, %dx%d, %s, %s, %d steps after 1 warm-up\n", cnnl_version_string(),
               threads, o.batch, (int)cnnl_tensor_dim(b.x, 2), (int)cnnl_tensor_dim(b.x, 3),
               o.arch ? o.arch : o.batchnorm ? "batch norm" : "no batch norm", o.precision, o.steps);
        printf("work per image: forward %.3f GFLOP, training step %.3f GFLOP (convolutions and Linear)\n",
               fwd_macs * 2e-9, train_macs * 2e-9);
        if (!o.infer_only)
            printf("train: %.1f img/s, %.1f GFLOP/s, %.1f%% of peak (forward, cross-entropy, backward, Adam)\n", train,
                   tg, 100.0 * tf);
        printf("infer: %.1f img/s, %.1f GFLOP/s, %.1f%% of peak\n", infer, ig, 100.0 * inf);
        printf("peak: %.1f GFLOP/s float32, %s, %d threads (measured now)\npeak RSS: %.0f MB\n", peak,
               npeaks ? peaks[npeaks - 1].name : "none", threads, rss_mb);
        if (have_bf16)
            printf("bf16 peak: %.1f GFLOP/s bfloat16 dot product, %s, %d threads (%.2fx the float32 peak)\n",
                   bf16_peak.gflops_n, bf16_peak.name, threads, peak > 0 ? bf16_peak.gflops_n / peak : 0.0);
        if (o.peak)
            print_peaks(peaks, npeaks, have_bf16 ? &bf16_peak : NULL, threads);
        if (o.profile)
            st = print_profile(&b, o.steps);
        if (st == CNNL_OK && o.json)
            printf("{\"train_img_s\": %.2f, \"infer_img_s\": %.2f, \"peak_rss_mb\": %.1f, \"train_gflops\": %.2f, "
                   "\"infer_gflops\": %.2f, \"peak_gflops\": %.2f, \"train_peak_frac\": %.4f, "
                   "\"infer_peak_frac\": %.4f, \"bf16_peak_gflops\": %.2f}\n",
                   train, infer, rss_mb, tg, ig, peak, tf, inf, have_bf16 ? bf16_peak.gflops_n : 0.0);
    }
    if (st != CNNL_OK)
        fprintf(stderr, "cnnlite-bench: %s: %s\n", cnnl_status_string(st), cnnl_last_error());
    cnnl_optimizer_free(b.opt);
    cnnl_model_free(b.model);
    cnnl_tensor_free(b.x);
    cnnl_tensor_free(b.grad);
    free(b.labels);
    return st == CNNL_OK ? 0 : 1;
}
