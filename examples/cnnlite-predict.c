/* cnnlite-predict: classify image files with a saved model; per image the predicted class and
 * the class probabilities, as text or one JSON object per line.
 *
 * Images are classified in batches (--batch). While the model runs on one batch, worker threads
 * decode the next batch's files into a second buffer; results are printed in the order of the
 * files. A file's result does not depend on the batch it is in. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: cnnlite-predict --model FILE [options] IMAGE...\n"
"Classifies each IMAGE (JPEG, PNG, TIFF, DICOM, BMP, GIF, TGA, PSD, PNM, ...) with a model saved by\n"
"cnnlite-train and prints its predicted class and the class probabilities. An image that\n"
"cannot be read is named in a message, the others are still classified, and the exit\n"
"status is 1.\n"
"\n"
"  --model FILE       safetensors model file (required)\n"
"  --json             one JSON object per line: {\"file\": ..., \"class\": ..., \"probs\": [...]}\n"
"                     (bytes of a file name that are not UTF-8 appear as U+FFFD)\n"
"  --threads N        compute threads (default: all processors)\n"
"  --batch N          images per forward pass (default 32); the next batch is decoded by as\n"
"                     many worker threads while the current one is classified\n"
"  --precision P      fp32 (default) or bf16: bfloat16 inputs and weights inside the\n"
"                     convolutions (needs AVX512_BF16 or AMX and the oneDNN engine; an error\n"
"                     otherwise, and a note where it cannot be faster than fp32)\n"
"  --batchnorm, --size N, --channels C, --classes a,b,c,d\n"
"                     architecture and class names, used only when FILE has no metadata\n"
"                     (defaults: no batch norm, 512, 3, glioma,meningioma,notumor,pituitary)\n"
"  --help             show this text\n"
"  --version          show the program's and the library's version\n");
}

#define MAX_CLASSES 256

typedef struct options {
    const char *model;
    bool json, batchnorm, bf16;
    int size, channels, threads, batch;
    char *classes_arg;
    const char *class_names[MAX_CLASSES];
    int num_classes;
    char **images;
    int num_images;
} options;

static int split_classes(options *o, const char *arg)
{
    free(o->classes_arg);
    o->classes_arg = strdup(arg);
    if (o->classes_arg == NULL)
        return -1;
    o->num_classes = 0;
    for (char *p = o->classes_arg, *save = NULL, *tok; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
        if (o->num_classes == MAX_CLASSES) {
            cl_error("--classes: more than %d names", MAX_CLASSES);
            return -1;
        }
        o->class_names[o->num_classes++] = tok;
    }
    if (o->num_classes < 2) {
        cl_error("--classes: give at least two comma-separated names");
        return -1;
    }
    return 0;
}

static int parse(int argc, char **argv, options *o)
{
    static const char *const defaults[4] = {"glioma", "meningioma", "notumor", "pituitary"};
    for (int k = 0; k < 4; k++)
        o->class_names[k] = defaults[k];
    o->num_classes = 4;
    o->size = 512;
    o->channels = 3;
    o->batch = 32;
    o->images = calloc((size_t)argc, sizeof *o->images);
    if (o->images == NULL)
        return -1;
    static const struct option long_options[] = {
        CL_STD_OPTIONS,
        CL_FLAG("json"),
        CL_FLAG("batchnorm"),
        CL_ARG("model"),
        CL_ARG("size"),
        CL_ARG("channels"),
        CL_ARG("threads"),
        CL_ARG("classes"),
        CL_ARG("batch"),
        CL_ARG("precision"),
        CL_END_OPTIONS,
    };
    cl_opt op;
    int r;
    while ((r = cl_next_option(argc, argv, long_options, &op)) > 0) {
        const char *v = op.value;
        if (cl_std_option(&op, usage)) {
            return 1;
        } else if (cl_is(&op, "json")) {
            o->json = true;
        } else if (cl_is(&op, "batchnorm")) {
            o->batchnorm = true;
        } else if (cl_is(&op, "model")) {
            o->model = v;
        } else if (cl_is(&op, "size")) {
            if (!cl_parse_int("size", v, 32, 4096, &o->size))
                return -1;
            if (o->size % 32 != 0) {
                cl_error("--size: %d is not a multiple of 32", o->size);
                return -1;
            }
        } else if (cl_is(&op, "channels")) {
            if (!cl_parse_int("channels", v, 1, 3, &o->channels))
                return -1;
            if (o->channels == 2) {
                cl_error("--channels: must be 1 or 3");
                return -1;
            }
        } else if (cl_is(&op, "threads")) {
            if (!cl_parse_int("threads", v, 1, 1024, &o->threads))
                return -1;
        } else if (cl_is(&op, "batch")) {
            if (!cl_parse_int("batch", v, 1, 4096, &o->batch))
                return -1;
        } else if (cl_is(&op, "classes")) {
            if (split_classes(o, v) != 0)
                return -1;
        } else if (cl_is(&op, "precision")) {
            if (!cl_parse_precision(v, &o->bf16))
                return -1;
        }
    }
    if (r < 0)
        return -1;
    /* the operands, which getopt_long moved after the options */
    while (optind < argc)
        o->images[o->num_images++] = argv[optind++];
    if (o->model == NULL) {
        cl_error("--model FILE is required");
        return -1;
    }
    if (o->num_images == 0) {
        cl_error("no IMAGE given");
        return -1;
    }
    if (o->threads > 0 && cnnl_set_num_threads(o->threads) != CNNL_OK)
        return cl_fail("--threads", CNNL_EINVAL), -1;
    return 0;
}

static void softmax(const float *z, int k, double *p)
{
    double m = z[0], s = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > m)
            m = z[j];
    for (int j = 0; j < k; j++)
        s += p[j] = exp((double)z[j] - m);
    for (int j = 0; j < k; j++)
        p[j] /= s;
}

/* Length of the valid UTF-8 sequence at @p s (1-4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are not valid). */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

/* A JSON string; bytes that are not UTF-8 (file names may hold any bytes) become U+FFFD. */
static void print_json_string(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    putchar('"');
    while (*s) {
        unsigned char c = *s;
        int n = utf8_len(s);
        if (n == 0) {
            fputs("\\ufffd", stdout);
            s++;
        } else if (c == '"' || c == '\\') {
            printf("\\%c", c);
            s++;
        } else if (c < 0x20 || c == 0x7F) {
            printf("\\u%04x", c);
            s++;
        } else {
            fwrite(s, 1, (size_t)n, stdout);
            s += n;
        }
    }
    putchar('"');
}

static void print_result(const options *o, const char *file, const double *p, int k, const char *const *names)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    if (o->json) {
        printf("{\"file\": ");
        print_json_string(file);
        printf(", \"class\": ");
        print_json_string(names[best]);
        printf(", \"probs\": [");
        for (int j = 0; j < k; j++)
            printf("%s%.6g", j ? ", " : "", p[j]);
        printf("]}\n");
    } else {
        printf("%s: %s (%.1f%%)", file, names[best], 100.0 * p[best]);
        for (int j = 0; j < k; j++)
            printf("  %s %.4f", names[j], p[j]);
        putchar('\n');
    }
}

/* One batch of files in decoding or decoded: the images that loaded, packed in file order into
 * x, and for each file of the batch its slot in x or the message naming why it failed. */
typedef struct batch {
    int first, count;   /* files first .. first + count - 1 */
    cnnl_tensor *x;     /* (loaded, C, S, S), or NULL when none loaded */
    cnnl_tensor **one;  /* per file: the decoded (1, C, S, S) image, or NULL */
    char **err;         /* per file: the error message, or NULL */
} batch;

typedef struct decoder {
    const options *o;
    const cnnl_dataset_opts *dopt;
    batch *b;
    int worker, workers;
    pthread_t tid;
    bool started;
} decoder;

/* Worker @p worker of @p workers decodes files worker, worker + workers, ... of the batch. */
static void *decode_part(void *arg)
{
    decoder *d = arg;
    batch *b = d->b;
    for (int k = d->worker; k < b->count; k += d->workers) {
        cnnl_status st = cnnl_image_load(&b->one[k], d->o->images[b->first + k], d->dopt);
        if (st != CNNL_OK) {
            b->one[k] = NULL;
            b->err[k] = strdup(cnnl_last_error()); /* the message names the file */
            if (b->err[k] == NULL)
                b->err[k] = strdup("out of memory");
        }
    }
    return NULL;
}

/* Start decoding batch @p b in the background (the calling thread does no decoding). */
static void decode_start(decoder *d, int workers, const options *o, const cnnl_dataset_opts *dopt, batch *b)
{
    for (int w = 0; w < workers; w++) {
        d[w] = (decoder){o, dopt, b, w, workers, 0, false};
        d[w].started = pthread_create(&d[w].tid, NULL, decode_part, &d[w]) == 0;
        if (!d[w].started) /* no thread: decode this part now */
            decode_part(&d[w]);
    }
}

static void decode_wait(decoder *d, int workers)
{
    for (int w = 0; w < workers; w++)
        if (d[w].started)
            pthread_join(d[w].tid, NULL);
}

/* Pack the loaded images of @p b into b->x (same values as the one-image tensors). */
static cnnl_status pack(batch *b, int channels, int size)
{
    int loaded = 0;
    for (int k = 0; k < b->count; k++)
        loaded += b->one[k] != NULL;
    if (b->x && (loaded == 0 || cnnl_tensor_dim(b->x, 0) != loaded)) {
        cnnl_tensor_free(b->x);
        b->x = NULL;
    }
    if (loaded == 0)
        return CNNL_OK;
    int64_t shape[4] = {loaded, channels, size, size};
    cnnl_status st = b->x ? CNNL_OK : cnnl_tensor_create(&b->x, 4, shape);
    if (st != CNNL_OK)
        return st;
    size_t per = (size_t)channels * (size_t)size * (size_t)size;
    float *dst = cnnl_tensor_data(b->x);
    for (int k = 0; k < b->count; k++)
        if (b->one[k]) {
            memcpy(dst, cnnl_tensor_data_const(b->one[k]), per * sizeof *dst);
            dst += per;
        }
    return CNNL_OK;
}

/* Release the per-file results of @p b (not its packed tensor, reused by the next batch). */
static void batch_clear(batch *b)
{
    for (int k = 0; k < b->count; k++) {
        cnnl_tensor_free(b->one[k]);
        free(b->err[k]);
        b->one[k] = NULL;
        b->err[k] = NULL;
    }
    b->count = 0;
}

/* Classify the decoded batch @p b and print its results in file order; returns the number of
 * files that failed (named in a message each). */
static int classify(const options *o, cnnl_model *model, batch *b, int channels, int size, const char *const *names,
                    int classes, double *p)
{
    int bad = 0;
    cnnl_status st = pack(b, channels, size);
    const cnnl_tensor *y = NULL;
    if (st == CNNL_OK && b->x)
        st = cnnl_model_forward(model, b->x, &y);
    if (st == CNNL_OK && y && (cnnl_tensor_ndim(y) != 2 || cnnl_tensor_dim(y, 1) != classes))
        st = CNNL_ESHAPE;
    int row = 0;
    for (int k = 0; k < b->count; k++) {
        const char *file = o->images[b->first + k];
        if (b->err[k]) {
            cl_error("%s", b->err[k]);
            bad++;
        } else if (st != CNNL_OK) {
            cl_fail(file, st);
            bad++;
        } else {
            softmax(cnnl_tensor_data_const(y) + (size_t)row * (size_t)classes, classes, p);
            print_result(o, file, p, classes, names);
            row++;
        }
    }
    return bad;
}

/* Classify every image, decoding batch i + 1 while batch i runs; returns the failed files. */
static int predict_all(const options *o, cnnl_model *model, const cnnl_dataset_opts *dopt, const char *const *names,
                       int classes, double *p)
{
    int bs = o->batch < o->num_images ? o->batch : o->num_images;
    int workers = cnnl_get_num_threads();
    if (workers > bs)
        workers = bs;
    batch bufs[2];
    memset(bufs, 0, sizeof bufs);
    decoder *dec = calloc((size_t)workers, sizeof *dec);
    bool ok = dec != NULL;
    for (int i = 0; i < 2 && ok; i++) {
        bufs[i].one = calloc((size_t)bs, sizeof *bufs[i].one);
        bufs[i].err = calloc((size_t)bs, sizeof *bufs[i].err);
        ok = bufs[i].one && bufs[i].err;
    }
    int bad = 0;
    if (!ok) {
        cl_error("out of memory");
        bad = o->num_images;
    } else {
        int nb = (o->num_images + bs - 1) / bs;
        bufs[0].first = 0;
        bufs[0].count = bs;
        decode_start(dec, workers, o, dopt, &bufs[0]);
        for (int i = 0; i < nb; i++) {
            batch *cur = &bufs[i % 2], *next = &bufs[(i + 1) % 2];
            decode_wait(dec, workers);
            if (i + 1 < nb) {
                next->first = (i + 1) * bs;
                next->count = o->num_images - next->first < bs ? o->num_images - next->first : bs;
                decode_start(dec, workers, o, dopt, next);
            }
            bad += classify(o, model, cur, dopt->channels, dopt->size, names, classes, p);
            batch_clear(cur);
        }
    }
    for (int i = 0; i < 2; i++) {
        batch_clear(&bufs[i]);
        cnnl_tensor_free(bufs[i].x);
        free(bufs[i].one);
        free(bufs[i].err);
    }
    free(dec);
    return bad;
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-predict", "--model FILE [options] IMAGE...");
    options o;
    memset(&o, 0, sizeof o);
    int r = parse(argc, argv, &o);
    if (r != 0) {
        free(o.images);
        free(o.classes_arg);
        return r > 0 ? 0 : EXIT_USAGE;
    }
    cnnl_model *model = NULL;
    cnnl_model_meta *meta = NULL;
    cnnl_report_opts fallback = cnnl_report_opts_default();
    fallback.batchnorm = o.batchnorm;
    fallback.size = o.size;
    fallback.channels = o.channels;
    fallback.classes = o.num_classes;
    cnnl_report_opts ro = fallback;
    /* images are prepared with the model's geometry and recorded normalization */
    cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
    int rc = cl_load_model(o.model, &fallback, &model, &meta, &ro, &dopt.norm);
    if (rc == 0)
        rc = cl_set_precision(model, o.bf16, "--precision bf16");
    const char *names[MAX_CLASSES];
    if (rc == 0 && ro.classes > MAX_CLASSES) {
        cl_error("%s: %d classes; at most %d supported", o.model, ro.classes, MAX_CLASSES);
        rc = EXIT_FAIL;
    }
    for (int k = 0; rc == 0 && k < ro.classes; k++) {
        const char *m = cnnl_model_meta_class_name(meta, (size_t)k);
        names[k] = m ? m : k < o.num_classes ? o.class_names[k] : "?";
    }
    dopt.size = ro.size;
    dopt.channels = ro.channels;
    if (rc == 0 && dopt.norm.kind == CNNL_NORM_MEAN_STD && dopt.norm.channels != dopt.channels) {
        cl_error("%s: the recorded normalization has %d channels; the model takes %d", o.model,
                 dopt.norm.channels, dopt.channels);
        rc = EXIT_FAIL;
    }
    double *p = rc == 0 ? calloc((size_t)ro.classes, sizeof *p) : NULL;
    if (rc == 0 && p == NULL) {
        cl_error("out of memory");
        rc = EXIT_FAIL;
    }
    if (rc == 0)
        cnnl_model_set_training(model, false);
    int bad = rc == 0 ? predict_all(&o, model, &dopt, names, ro.classes, p) : 0;
    free(p);
    cnnl_model_meta_free(meta);
    cnnl_model_free(model);
    free(o.images);
    free(o.classes_arg);
    return rc != 0 ? rc : bad > 0 ? EXIT_FAIL : 0;
}
