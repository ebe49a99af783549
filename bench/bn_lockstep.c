/* bn_lockstep: train the report network (batch norm, dropout 0 by default) with the trainer
 * that cnnlite-train uses, and write everything PyTorch needs to repeat the same run step by
 * step (scripts/bn_lockstep.py): initial weights, the exact input batches of every epoch in
 * the trainer's seeded order, every batch's loss, the state after batches 1 and 10 of the
 * first epoch and after every epoch, and the test split's logits in evaluation and training
 * mode after every epoch.
 *
 *   bn_lockstep --data DIR --out DIR [--size 256] [--seed 0] [--epochs 1] [--batch 32]
 *               [--lr 1e-3] [--dropout 0] [--no-batchnorm] [--threads N]
 *
 * OUT receives (all little-endian):
 *   init.safetensors, state_e<E>.safetensors  model states at the start, after epoch E
 *   state_e1_b<B>.safetensors  after batch B = 1, 10 and the last but one of epoch 1
 *   train_e<E>.u8   the epoch's images in training order, uint8 [n_train, C, H, W]: the
 *                   loader's float batch is v / 255 of these bytes, checked bit for bit
 *   test.u8         the test split in loader order, uint8 [n_test, C, H, W]
 *   logits_e<E>_eval.f32, logits_e<E>_train.f32   float32 [n_test, classes]
 *   manifest.json   sizes, labels, file names, batch checksums, losses, accuracies
 * Uses the public API only. Not installed.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cnnlite/cnnlite.h>

typedef struct options {
    const char *data, *out;
    int size, epochs, batch, threads;
    uint64_t seed;
    double lr, dropout;
    bool batchnorm;
} options;

typedef struct run {
    const options *o;
    cnnl_model *model;
    cnnl_loader *test;
    int classes;
    size_t n_test, n_train, batches;
    double *loss;         /* [epochs * batches] */
    int64_t *correct;     /* [epochs * batches] */
    double *test_acc_eval, *test_acc_train, *test_loss; /* [epochs] */
    float *logits;        /* [n_test * classes] */
    cnnl_tensor *saved;   /* buffers kept while the test split runs in training mode */
} run;

static int fail(const char *what, cnnl_status st)
{
    fprintf(stderr, "bn_lockstep: %s: %s (%s)\n", what, cnnl_last_error(), cnnl_status_string(st));
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: bn_lockstep --data DIR --out DIR [--size 256] [--seed 0] [--epochs 1] "
                    "[--batch 32] [--lr 1e-3] [--dropout 0] [--no-batchnorm] [--threads N]\n");
    return 2;
}

static bool parse_long(const char *s, long lo, long hi, long *v)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static bool parse_double(const char *s, double lo, double hi, double *v)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(x >= lo && x <= hi))
        return false;
    *v = x;
    return true;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.size = 256, .epochs = 1, .batch = 32, .lr = 1e-3, .dropout = 0.0, .batchnorm = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--no-batchnorm") == 0) {
            o->batchnorm = false;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        long n = 0;
        bool ok = true;
        if (strcmp(a, "--data") == 0)
            o->data = v;
        else if (strcmp(a, "--out") == 0)
            o->out = v;
        else if (strcmp(a, "--size") == 0)
            ok = parse_long(v, 32, 4096, &n) && (o->size = (int)n) > 0;
        else if (strcmp(a, "--seed") == 0)
            ok = parse_long(v, 0, 1L << 30, &n) && ((o->seed = (uint64_t)n), true);
        else if (strcmp(a, "--epochs") == 0)
            ok = parse_long(v, 1, 1000, &n) && (o->epochs = (int)n) > 0;
        else if (strcmp(a, "--batch") == 0)
            ok = parse_long(v, 2, 4096, &n) && (o->batch = (int)n) > 0;
        else if (strcmp(a, "--threads") == 0)
            ok = parse_long(v, 1, 1024, &n) && (o->threads = (int)n) > 0;
        else if (strcmp(a, "--lr") == 0)
            ok = parse_double(v, 0.0, 1.0, &o->lr);
        else if (strcmp(a, "--dropout") == 0)
            ok = parse_double(v, 0.0, 0.99, &o->dropout);
        else
            return usage();
        if (!ok) {
            fprintf(stderr, "bn_lockstep: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if (o->data == NULL || o->out == NULL)
        return usage();
    return 0;
}

__attribute__((format(printf, 2, 3))) static char *path_of(const options *o, const char *fmt, ...)
{
    static char buf[4096];
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "%s/%s", o->out, name);
    return buf;
}

/* Bytes of a float batch whose values are v / 255 for bytes v, checked bit for bit. */
static int batch_bytes(const cnnl_tensor *x, uint8_t *dst, const char *what, size_t b)
{
    const float *p = cnnl_tensor_data_const(x);
    size_t n = cnnl_tensor_numel(x);
    for (size_t i = 0; i < n; i++) {
        float r = roundf(p[i] * 255.0f);
        if (!(r >= 0.0f && r <= 255.0f) || (float)(uint8_t)r / 255.0f != p[i]) {
            fprintf(stderr, "bn_lockstep: %s batch %zu: value %zu (%.9g) is not v / 255 of a byte\n", what, b, i,
                    (double)p[i]);
            return 1;
        }
        dst[i] = (uint8_t)r;
    }
    return 0;
}

/* Order-sensitive checksum of a float batch's bits (scripts/bn_lockstep.py recomputes it). */
static uint64_t batch_checksum(const cnnl_tensor *x)
{
    const float *p = cnnl_tensor_data_const(x);
    size_t n = cnnl_tensor_numel(x);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &p[i], sizeof bits);
        s += (uint64_t)bits * (uint64_t)(i % 251 + 1);
    }
    return s;
}

/* Write every batch of loader epoch @p epoch to @p path; record labels, names, checksums. */
static int dump_split(cnnl_loader *ld, const cnnl_dataset *ds, int epoch, const char *path, FILE *man,
                      const char *key)
{
    cnnl_status st = cnnl_loader_start_epoch(ld, epoch);
    if (st != CNNL_OK)
        return fail("loader", st);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "bn_lockstep: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t nb = cnnl_loader_num_batches(ld), count = cnnl_loader_count(ld);
    uint8_t *bytes = NULL;
    int rc = 0;
    fprintf(man, "  \"%s\": {\"count\": %zu, \"file\": \"%s\", \"labels\": [", key, count, strrchr(path, '/') + 1);
    for (size_t b = 0; b < nb && rc == 0; b++) {
        const cnnl_tensor *x = NULL;
        const int32_t *y = NULL;
        if ((st = cnnl_loader_batch(ld, b, &x, &y)) != CNNL_OK) {
            rc = fail("loader batch", st);
            break;
        }
        size_t n = cnnl_tensor_numel(x), m = (size_t)cnnl_tensor_dim(x, 0);
        if (bytes == NULL && (bytes = malloc(n)) == NULL) {
            rc = fail("memory", CNNL_ENOMEM);
            break;
        }
        if ((rc = batch_bytes(x, bytes, key, b)) != 0)
            break;
        if (fwrite(bytes, 1, n, f) != n) {
            fprintf(stderr, "bn_lockstep: %s: write failed\n", path);
            rc = 1;
        }
        for (size_t i = 0; i < m; i++)
            fprintf(man, "%s%d", b + i ? ", " : "", (int)y[i]);
    }
    fprintf(man, "],\n    \"checksums\": [");
    for (size_t b = 0; b < nb && rc == 0; b++) {
        const cnnl_tensor *x = NULL;
        if ((st = cnnl_loader_batch(ld, b, &x, NULL)) != CNNL_OK)
            rc = fail("loader batch", st);
        else
            fprintf(man, "%s\"%016" PRIx64 "\"", b ? ", " : "", batch_checksum(x));
    }
    fprintf(man, "],\n    \"files\": [");
    for (size_t i = 0; i < count && rc == 0; i++) {
        fputs(i ? ", \"" : "\"", man);
        for (const char *s = cnnl_dataset_name(ds, cnnl_loader_index(ld, i)); *s; s++)
            fprintf(man, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
        fputc('"', man);
    }
    fprintf(man, "]},\n");
    free(bytes);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "bn_lockstep: %s: close failed\n", path);
        rc = 1;
    }
    return rc;
}

static int save_state(run *r, const char *path)
{
    cnnl_status st = cnnl_model_save(r->model, path, NULL);
    return st == CNNL_OK ? 0 : fail(path, st);
}

/* The test split's logits with the model in the given mode; returns accuracy in *acc. */
static cnnl_status test_logits(run *r, bool training, double *acc, double *mean_loss)
{
    cnnl_status st = cnnl_model_set_training(r->model, training);
    size_t nb = cnnl_loader_num_batches(r->test), row = 0, correct = 0;
    double loss_sum = 0.0;
    for (size_t b = 0; b < nb && st == CNNL_OK; b++) {
        const cnnl_tensor *x = NULL, *out = NULL;
        const int32_t *y = NULL;
        st = cnnl_loader_batch(r->test, b, &x, &y);
        if (st == CNNL_OK)
            st = cnnl_model_forward(r->model, x, &out);
        if (st != CNNL_OK)
            break;
        size_t n = (size_t)cnnl_tensor_dim(out, 0);
        float l = 0.0f;
        st = cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, out, y, n, CNNL_REDUCE_MEAN, &l, NULL);
        loss_sum += (double)l * (double)n;
        const float *p = cnnl_tensor_data_const(out);
        for (size_t i = 0; i < n; i++, row++) {
            int best = 0;
            for (int k = 0; k < r->classes; k++) {
                r->logits[row * (size_t)r->classes + (size_t)k] = p[i * (size_t)r->classes + (size_t)k];
                if (p[i * (size_t)r->classes + (size_t)k] > p[i * (size_t)r->classes + (size_t)best])
                    best = k;
            }
            correct += best == y[i];
        }
    }
    *acc = row ? 100.0 * (double)correct / (double)row : 0.0;
    *mean_loss = row ? loss_sum / (double)row : 0.0;
    return st;
}

static int write_floats(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(v, sizeof *v, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "bn_lockstep: %s: cannot write\n", path);
        return 1;
    }
    return 0;
}

/* Copy the batch-norm buffers (and the dropout generator) out of or back into the model. */
static cnnl_status swap_buffers(run *r, bool restore, uint64_t rng[4])
{
    size_t n = cnnl_model_state_count(r->model), off = 0;
    cnnl_status st = restore ? cnnl_model_set_rng_state(r->model, rng) : cnnl_model_get_rng_state(r->model, rng);
    for (size_t i = 0; i < n && st == CNNL_OK; i++) {
        cnnl_param_info p;
        if ((st = cnnl_model_state_at(r->model, i, &p)) != CNNL_OK || p.trainable)
            continue;
        float *keep = cnnl_tensor_data(r->saved) + off;
        size_t bytes = p.dtype == CNNL_DTYPE_F32 ? p.numel * sizeof(float) : sizeof(float) * 2;
        void *live = p.dtype == CNNL_DTYPE_F32 ? (void *)p.data : (void *)p.data_i64;
        if (restore)
            memcpy(live, keep, bytes);
        else
            memcpy(keep, live, bytes);
        off += bytes / sizeof(float);
    }
    return st;
}

static int on_batch(cnnl_trainer *t, const cnnl_batch_info *info, void *user)
{
    (void)t;
    run *r = user;
    size_t k = (size_t)(info->epoch - 1) * r->batches + (size_t)info->batch;
    r->loss[k] = info->loss;
    r->correct[k] = info->correct;
    /* After batches 1 and 10, and before the last one (whose forward these weights run). */
    if (info->epoch == 1 && (info->batch == 0 || info->batch == 9 || info->batch + 2 == info->batches))
        return save_state(r, path_of(r->o, "state_e%d_b%d.safetensors", info->epoch, (int)info->batch + 1))
                   ? CNNL_EIO
                   : CNNL_OK;
    return CNNL_OK;
}

static int on_epoch(cnnl_trainer *t, const cnnl_epoch_stats *s, void *user)
{
    (void)t;
    run *r = user;
    int e = s->epoch;
    if (save_state(r, path_of(r->o, "state_e%d.safetensors", e)) != 0)
        return CNNL_EIO;
    bool was = cnnl_model_is_training(r->model);
    uint64_t rng[4];
    double acc = 0, loss = 0;
    cnnl_status st = test_logits(r, false, &acc, &loss);
    r->test_acc_eval[e - 1] = acc;
    r->test_loss[e - 1] = loss;
    if (st == CNNL_OK && write_floats(path_of(r->o, "logits_e%d_eval.f32", e), r->logits,
                                      r->n_test * (size_t)r->classes) != 0)
        return CNNL_EIO;
    /* Training mode updates the running statistics: keep them and put them back. */
    if (st == CNNL_OK)
        st = swap_buffers(r, false, rng);
    if (st == CNNL_OK)
        st = test_logits(r, true, &acc, &loss);
    r->test_acc_train[e - 1] = acc;
    if (st == CNNL_OK)
        st = swap_buffers(r, true, rng);
    if (st == CNNL_OK && write_floats(path_of(r->o, "logits_e%d_train.f32", e), r->logits,
                                      r->n_test * (size_t)r->classes) != 0)
        return CNNL_EIO;
    if (st == CNNL_OK)
        st = cnnl_model_set_training(r->model, was);
    fprintf(stderr, "bn_lockstep: epoch %d: train loss %.6f, test accuracy %.2f (eval mode), %.2f (training mode)\n",
            e, s->train_loss_mean, r->test_acc_eval[e - 1], r->test_acc_train[e - 1]);
    return st;
}

static size_t buffer_floats(cnnl_model *m)
{
    size_t n = cnnl_model_state_count(m), total = 0;
    for (size_t i = 0; i < n; i++) {
        cnnl_param_info p;
        if (cnnl_model_state_at(m, i, &p) == CNNL_OK && !p.trainable)
            total += p.dtype == CNNL_DTYPE_F32 ? p.numel : 2;
    }
    return total ? total : 1;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bn_lockstep: %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    if (o.threads > 0 && cnnl_set_num_threads(o.threads) != CNNL_OK)
        return fail("threads", CNNL_EINVAL);
    cnnl_dataset *ds = NULL;
    cnnl_split *sp = NULL;
    cnnl_loader *train = NULL;
    cnnl_optimizer *opt = NULL;
    cnnl_trainer *tr = NULL;
    FILE *man = NULL;
    run r = {.o = &o};
    cnnl_dataset_opts dopts = cnnl_dataset_opts_default();
    dopts.size = o.size;
    cnnl_status st = cnnl_dataset_load_folder(&ds, o.data, &dopts);
    if (st != CNNL_OK) {
        rc = fail(o.data, st);
        goto done;
    }
    /* As cnnlite-train builds its run (examples/run.c: build()). */
    cnnl_split_opts so = cnnl_split_opts_default();
    so.seed = o.seed;
    if ((st = cnnl_split_create(&sp, ds, &so)) != CNNL_OK) {
        rc = fail("split", st);
        goto done;
    }
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = o.batch;
    lo.seed = o.seed;
    lo.shuffle = true;
    r.n_train = cnnl_split_count(sp, CNNL_SUBSET_TRAIN);
    r.n_test = cnnl_split_count(sp, CNNL_SUBSET_TEST);
    st = cnnl_loader_create(&train, ds, cnnl_split_indices(sp, CNNL_SUBSET_TRAIN), r.n_train, &lo);
    lo.shuffle = false;
    if (st == CNNL_OK)
        st = cnnl_loader_create(&r.test, ds, cnnl_split_indices(sp, CNNL_SUBSET_TEST), r.n_test, &lo);
    if (st != CNNL_OK) {
        rc = fail("loader", st);
        goto done;
    }
    r.classes = cnnl_dataset_num_classes(ds);
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.classes = r.classes;
    ro.size = o.size;
    ro.batchnorm = o.batchnorm;
    ro.dropout = (float)o.dropout;
    ro.seed = o.seed;
    cnnl_adam_opts ao = cnnl_adam_opts_default();
    ao.lr = o.lr;
    if ((st = cnnl_report_net_create(&r.model, &ro)) != CNNL_OK || (st = cnnl_optimizer_adam(&opt, r.model, &ao)) != CNNL_OK) {
        rc = fail("model", st);
        goto done;
    }
    r.batches = cnnl_loader_num_batches(train);
    r.loss = calloc((size_t)o.epochs * r.batches, sizeof *r.loss);
    r.correct = calloc((size_t)o.epochs * r.batches, sizeof *r.correct);
    r.test_acc_eval = calloc((size_t)o.epochs, sizeof(double));
    r.test_acc_train = calloc((size_t)o.epochs, sizeof(double));
    r.test_loss = calloc((size_t)o.epochs, sizeof(double));
    r.logits = calloc(r.n_test * (size_t)r.classes, sizeof *r.logits);
    int64_t bshape[1] = {(int64_t)buffer_floats(r.model)};
    if (!r.loss || !r.correct || !r.test_acc_eval || !r.test_acc_train || !r.test_loss || !r.logits ||
        cnnl_tensor_zeros(&r.saved, 1, bshape) != CNNL_OK) {
        rc = fail("memory", CNNL_ENOMEM);
        goto done;
    }
    if ((rc = save_state(&r, path_of(&o, "init.safetensors"))) != 0)
        goto done;
    const char *mpath = path_of(&o, "manifest.json");
    if ((man = fopen(mpath, "w")) == NULL) {
        fprintf(stderr, "bn_lockstep: %s: %s\n", mpath, strerror(errno));
        rc = 1;
        goto done;
    }
    int ch = 0, sz = 0;
    cnnl_dataset_geometry(ds, &ch, &sz);
    fprintf(man, "{\n  \"root\": \"%s\", \"size\": %d, \"channels\": %d, \"classes\": %d, \"seed\": %" PRIu64
                 ", \"batch\": %d, \"lr\": %.17g, \"dropout\": %.17g, \"batchnorm\": %s, \"epochs\": %d,\n"
                 "  \"threads\": %d, \"n_train\": %zu, \"n_test\": %zu, \"batches\": %zu,\n",
            cnnl_dataset_root(ds), sz, ch, r.classes, o.seed, o.batch, o.lr, o.dropout, o.batchnorm ? "true" : "false",
            o.epochs, cnnl_get_num_threads(), r.n_train, r.n_test, r.batches);
    if ((rc = dump_split(r.test, ds, 0, path_of(&o, "test.u8"), man, "test")) != 0)
        goto done;
    for (int e = 0; e < o.epochs; e++) {
        char key[32];
        snprintf(key, sizeof key, "train_e%d", e + 1);
        if ((rc = dump_split(train, ds, e, path_of(&o, "train_e%d.u8", e + 1), man, key)) != 0)
            goto done;
    }
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = o.epochs;
    to.on_batch = on_batch;
    to.on_epoch = on_epoch;
    to.checkpoint_every = 0;
    to.user = &r;
    if ((st = cnnl_trainer_create(&tr, r.model, opt, &to)) != CNNL_OK ||
        (st = cnnl_trainer_fit(tr, train, r.test)) != CNNL_OK) {
        rc = fail("training", st);
        goto done;
    }
    fprintf(man, "  \"loss\": [");
    for (size_t k = 0; k < (size_t)o.epochs * r.batches; k++)
        fprintf(man, "%s%.9g", k ? ", " : "", r.loss[k]);
    fprintf(man, "],\n  \"correct\": [");
    for (size_t k = 0; k < (size_t)o.epochs * r.batches; k++)
        fprintf(man, "%s%" PRId64, k ? ", " : "", r.correct[k]);
    fprintf(man, "],\n  \"test_accuracy_eval\": [");
    for (int e = 0; e < o.epochs; e++)
        fprintf(man, "%s%.4f", e ? ", " : "", r.test_acc_eval[e]);
    fprintf(man, "],\n  \"test_loss_eval\": [");
    for (int e = 0; e < o.epochs; e++)
        fprintf(man, "%s%.9g", e ? ", " : "", r.test_loss[e]);
    fprintf(man, "],\n  \"test_accuracy_train_mode\": [");
    for (int e = 0; e < o.epochs; e++)
        fprintf(man, "%s%.4f", e ? ", " : "", r.test_acc_train[e]);
    fprintf(man, "]\n}\n");
done:
    if (man != NULL && fclose(man) != 0 && rc == 0)
        rc = 1;
    cnnl_trainer_free(tr);
    cnnl_optimizer_free(opt);
    cnnl_model_free(r.model);
    cnnl_loader_free(train);
    cnnl_loader_free(r.test);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
    cnnl_tensor_free(r.saved);
    free(r.loss);
    free(r.correct);
    free(r.test_acc_eval);
    free(r.test_acc_train);
    free(r.test_loss);
    free(r.logits);
    return rc;
}
