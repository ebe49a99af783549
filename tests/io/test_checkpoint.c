/* Checkpoints: the extra fields round-trip, a resumed run ends bit-identical to an
 * uninterrupted one, and bad checkpoints change nothing. */
#include "io_test_util.h"

#include <math.h>

#include "io/atomic_file.h"
#include "io/io_common.h"
#include "io/safetensors.h"

enum { SIZE = 32, SAMPLES = 12, BATCH = 4, CLASSES = 4 };

typedef struct fixture {
    char *dir;
    char *file;
    cnnl_tensor *data[SAMPLES];
    int32_t labels[SAMPLES];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->dir = tu_tempdir();
    fx->file = path_in(fx->dir, "run.ckpt");
    /* Synthetic images: a class-dependent stripe over noise from a fixed generator. */
    cnnl_rng *rng = NULL;
    assert_ok(cnnl_rng_create(&rng, 99, CNNL_RNG_SYNTHETIC));
    int64_t shape[4] = {1, 3, SIZE, SIZE};
    for (int s = 0; s < SAMPLES; s++) {
        fx->labels[s] = s % CLASSES;
        assert_ok(cnnl_tensor_create(&fx->data[s], 4, shape));
        float *d = cnnl_tensor_data(fx->data[s]);
        for (int i = 0; i < 3 * SIZE * SIZE; i++) {
            int row = (i / SIZE) % SIZE;
            d[i] = 0.3f * cnnl_rng_uniform(rng) + (row / 8 == fx->labels[s] ? 0.7f : 0.0f);
        }
    }
    cnnl_rng_free(rng);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    cnnl__io_fail_after_bytes = -1;
    for (int s = 0; s < SAMPLES; s++)
        cnnl_tensor_free(fx->data[s]);
    free(fx->file);
    tu_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

typedef struct run {
    cnnl_model *model;
    cnnl_optimizer *opt;
    cnnl_rng *shuffle;
    cnnl_tensor *x, *grad;
} run;

static run run_new(bool bn, bool adam, uint64_t seed)
{
    run r = {0};
    cnnl_report_opts o = cnnl_report_opts_default();
    o.size = SIZE;
    o.batchnorm = bn;
    o.dropout = 0.3f;
    o.seed = seed;
    assert_ok(cnnl_report_net_create(&r.model, &o));
    if (adam) {
        assert_ok(cnnl_optimizer_adam(&r.opt, r.model, NULL));
    } else {
        cnnl_sgd_opts so = cnnl_sgd_opts_default();
        so.momentum = 0.9f;
        so.lr = 0.05f;
        assert_ok(cnnl_optimizer_sgd(&r.opt, r.model, &so));
    }
    assert_ok(cnnl_rng_create(&r.shuffle, seed, CNNL_RNG_SHUFFLE));
    int64_t xs[4] = {BATCH, 3, SIZE, SIZE}, gs[2] = {BATCH, CLASSES};
    assert_ok(cnnl_tensor_create(&r.x, 4, xs));
    assert_ok(cnnl_tensor_create(&r.grad, 2, gs));
    return r;
}

static void run_free(run *r)
{
    cnnl_optimizer_free(r->opt);
    cnnl_model_free(r->model);
    cnnl_rng_free(r->shuffle);
    cnnl_tensor_free(r->x);
    cnnl_tensor_free(r->grad);
}

/* @p steps training steps on batches drawn with the run's shuffle generator; dropout on. */
static void train(fixture *fx, run *r, int steps)
{
    size_t per = 3 * SIZE * SIZE;
    assert_ok(cnnl_model_set_training(r->model, true));
    for (int s = 0; s < steps; s++) {
        int32_t labels[BATCH];
        for (int b = 0; b < BATCH; b++) {
            int k = (int)cnnl_rng_below(r->shuffle, SAMPLES);
            memcpy(cnnl_tensor_data(r->x) + (size_t)b * per, cnnl_tensor_data(fx->data[k]), per * sizeof(float));
            labels[b] = fx->labels[k];
        }
        const cnnl_tensor *y = NULL;
        float loss = 0;
        assert_ok(cnnl_optimizer_zero_grad(r->opt));
        assert_ok(cnnl_model_forward(r->model, r->x, &y));
        assert_ok(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, y, labels, BATCH, CNNL_REDUCE_MEAN, &loss, r->grad));
        assert_true(isfinite(loss));
        assert_ok(cnnl_model_backward(r->model, r->grad));
        assert_ok(cnnl_optimizer_step(r->opt));
    }
}

/* Model state followed by optimizer state, as bytes (malloc'd). */
static unsigned char *snapshot(run *r, size_t *n)
{
    size_t total = 0, nm = cnnl_model_state_count(r->model), no = cnnl_optimizer_state_count(r->opt);
    for (int pass = 0; pass < 2; pass++) {
        unsigned char *buf = pass ? malloc(total) : NULL, *q = buf;
        for (size_t i = 0; i < nm + no; i++) {
            cnnl_param_info p;
            if (i < nm)
                assert_ok(cnnl_model_state_at(r->model, i, &p));
            else
                assert_ok(cnnl_optimizer_state_at(r->opt, i - nm, &p));
            size_t b = p.numel * (p.dtype == CNNL_DTYPE_I64 ? 8 : 4);
            if (pass)
                memcpy(q, p.dtype == CNNL_DTYPE_I64 ? (void *)p.data_i64 : (void *)p.data, b);
            q += b;
            total += pass ? 0 : b;
        }
        if (pass) {
            *n = total;
            return buf;
        }
    }
    return NULL;
}

static const float HISTORY[6] = {39.47f, 45.57f, 0.84f, 30.1f, 60.2f, 0.7f};
static const char *const COLUMNS[3] = {"train_loss", "train_acc", "test_loss"};
static const char *const TRAIN_FILES[3] = {"glioma/a.jpg", "notumor/b \"quoted\".jpg", "pituitary/c.jpg"};
static const char *const TEST_FILES[1] = {"meningioma/d.jpg"};

static cnnl_checkpoint *extras(run *r)
{
    cnnl_checkpoint *ck = NULL;
    uint64_t s[4];
    assert_ok(cnnl_checkpoint_create(&ck));
    assert_ok(cnnl_checkpoint_set_epoch(ck, 2));
    assert_ok(cnnl_checkpoint_set_history(ck, 2, 3, HISTORY, COLUMNS));
    assert_ok(cnnl_rng_get_state(r->shuffle, s));
    assert_ok(cnnl_checkpoint_set_rng(ck, "shuffle", s));
    assert_ok(cnnl_checkpoint_set_split(ck, "train", TRAIN_FILES, 3));
    assert_ok(cnnl_checkpoint_set_split(ck, "test", TEST_FILES, 1));
    assert_ok(cnnl_checkpoint_set_string(ck, "seed", "0"));
    assert_ok(cnnl_checkpoint_set_string(ck, "data", "/data/brain tumor"));
    return ck;
}

static void check_extras(const cnnl_checkpoint *ck)
{
    assert_int_equal(cnnl_checkpoint_epoch(ck), 2);
    size_t rows = 0, cols = 0;
    const float *h = NULL;
    assert_ok(cnnl_checkpoint_history(ck, &rows, &cols, &h));
    assert_int_equal(rows, 2);
    assert_int_equal(cols, 3);
    assert_memory_equal(h, HISTORY, sizeof HISTORY);
    for (size_t j = 0; j < 3; j++)
        assert_string_equal(cnnl_checkpoint_history_column(ck, j), COLUMNS[j]);
    assert_null(cnnl_checkpoint_history_column(ck, 3));
    assert_int_equal(cnnl_checkpoint_split_count(ck, "train"), 3);
    assert_int_equal(cnnl_checkpoint_split_count(ck, "test"), 1);
    assert_int_equal(cnnl_checkpoint_split_count(ck, "val"), 0);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(cnnl_checkpoint_split_file(ck, "train", i), TRAIN_FILES[i]);
    assert_string_equal(cnnl_checkpoint_split_file(ck, "test", 0), TEST_FILES[0]);
    assert_null(cnnl_checkpoint_split_file(ck, "test", 1));
    assert_string_equal(cnnl_checkpoint_get_string(ck, "data"), "/data/brain tumor");
    assert_string_equal(cnnl_checkpoint_get_string(ck, "seed"), "0");
    assert_null(cnnl_checkpoint_get_string(ck, "other"));
}

static void resume(fixture *fx, bool bn, bool adam)
{
    const int N = 3, M = 3;
    /* Uninterrupted run, with a checkpoint after N steps. */
    run a = run_new(bn, adam, 3);
    train(fx, &a, N);
    cnnl_checkpoint *ck = extras(&a);
    assert_ok(cnnl_checkpoint_save(fx->file, a.model, a.opt, ck));
    cnnl_checkpoint_free(ck);
    size_t n_mid = 0;
    unsigned char *mid = snapshot(&a, &n_mid);
    train(fx, &a, M);
    size_t na = 0;
    unsigned char *want = snapshot(&a, &na);
    assert_true(memcmp(mid, want, n_mid) != 0);

    /* A second run from other seeds, resumed from the checkpoint. */
    run b = run_new(bn, adam, 77);
    cnnl_checkpoint *back = NULL;
    assert_ok(cnnl_checkpoint_load(fx->file, b.model, b.opt, &back));
    check_extras(back);
    size_t nb = 0;
    unsigned char *got_mid = snapshot(&b, &nb);
    assert_int_equal(nb, n_mid);
    assert_memory_equal(got_mid, mid, n_mid);
    assert_int_equal(cnnl_optimizer_step_count(b.opt), N);
    uint64_t s[4];
    assert_ok(cnnl_checkpoint_get_rng(back, "shuffle", s));
    assert_ok(cnnl_rng_set_state(b.shuffle, s));
    train(fx, &b, M);
    unsigned char *got = snapshot(&b, &nb);
    assert_int_equal(nb, na);
    assert_memory_equal(got, want, na); /* bit for bit */
    assert_int_equal(cnnl_optimizer_step_count(b.opt), N + M);

    /* Without the optimizer state the continuation differs: the comparison above has teeth. */
    run c = run_new(bn, adam, 77);
    assert_ok(cnnl_checkpoint_load(fx->file, c.model, NULL, NULL));
    assert_ok(cnnl_rng_set_state(c.shuffle, s));
    train(fx, &c, M);
    size_t nc = 0;
    unsigned char *other = snapshot(&c, &nc);
    assert_true(memcmp(other, want, na) != 0);

    free(other);
    free(got);
    free(got_mid);
    free(want);
    free(mid);
    cnnl_checkpoint_free(back);
    run_free(&a);
    run_free(&b);
    run_free(&c);
}

static void test_resume_adam_batchnorm(void **state)
{
    resume(*state, true, true);
}

static void test_resume_sgd_momentum(void **state)
{
    resume(*state, false, false);
}

static void test_layout(void **state)
{
    fixture *fx = *state;
    run a = run_new(true, true, 1);
    train(fx, &a, 1);
    assert_ok(cnnl_optimizer_set_lr(a.opt, 3.0e-4f));
    cnnl_checkpoint *ck = extras(&a);
    assert_ok(cnnl_checkpoint_save(fx->file, a.model, a.opt, ck));
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_string_equal(cnnl__st_meta_get(f, "format"), "cnnlite-checkpoint");
    assert_string_equal(cnnl__st_meta_get(f, "arch"), "report_net");
    assert_string_equal(cnnl__st_meta_get(f, "split.test"), "[\"meningioma/d.jpg\"]");
    assert_string_equal(cnnl__st_meta_get(f, "user.seed"), "0");
    assert_true(strtof(cnnl__st_meta_get(f, "optim.lr"), NULL) == 3.0e-4f);
    assert_non_null(cnnl__st_find(f, "model.features.2.num_batches_tracked"));
    assert_non_null(cnnl__st_find(f, "optim.classifier.4.weight.exp_avg_sq"));
    const cnnl__st_tensor *t = cnnl__st_find(f, "rng.shuffle");
    assert_non_null(t);
    uint64_t s[4], w[4];
    memcpy(s, t->data, sizeof s);
    assert_ok(cnnl_rng_get_state(a.shuffle, w));
    assert_memory_equal(s, w, sizeof s);
    t = cnnl__st_find(f, "train.optim_step");
    int64_t step;
    memcpy(&step, t->data, 8);
    assert_int_equal(step, 1);
    cnnl__st_free(f);
    /* The learning rate comes back too. */
    run b = run_new(true, true, 1);
    assert_ok(cnnl_checkpoint_load(fx->file, b.model, b.opt, NULL));
    assert_true(cnnl_optimizer_get_lr(b.opt) == 3.0e-4f);
    /* A checkpoint serves as a model file: the network is rebuilt from it alone. */
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_load(&m, fx->file, NULL, NULL));
    cnnl_param_info pa, pm;
    assert_ok(cnnl_model_state_find(a.model, "features.13.weight", &pa));
    assert_ok(cnnl_model_state_find(m, "features.13.weight", &pm));
    assert_memory_equal(pa.data, pm.data, pa.numel * sizeof(float));
    assert_ok(cnnl_model_state_find(a.model, "features.14.num_batches_tracked", &pa));
    assert_ok(cnnl_model_state_find(m, "features.14.num_batches_tracked", &pm));
    assert_int_equal(*pm.data_i64, 1);
    assert_int_equal(*pa.data_i64, 1);
    cnnl_model_free(m);
    cnnl_checkpoint_free(ck);
    run_free(&a);
    run_free(&b);
}

static void test_bad_checkpoints(void **state)
{
    fixture *fx = *state;
    run a = run_new(true, true, 1);
    train(fx, &a, 1);
    assert_ok(cnnl_checkpoint_save(fx->file, a.model, a.opt, NULL));
    run b = run_new(true, true, 2);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = snapshot(&b, &n0);

    /* A model without batch norm: the names differ. */
    run plain = run_new(false, true, 2);
    assert_status_msg(cnnl_checkpoint_load(fx->file, plain.model, plain.opt, NULL), CNNL_EFORMAT,
                      "missing tensors under \"model.\"");
    /* SGD state where Adam's was saved. */
    run sgd = run_new(true, false, 2);
    assert_status_msg(cnnl_checkpoint_load(fx->file, sgd.model, sgd.opt, NULL), CNNL_EFORMAT,
                      "missing tensors under \"optim.\": features.1.weight.momentum_buffer");
    /* A model file is not a checkpoint. */
    char *model_file = path_in(fx->dir, "m.safetensors");
    assert_ok(cnnl_model_save(a.model, model_file, NULL));
    assert_status_msg(cnnl_checkpoint_load(model_file, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "not a cnnlite checkpoint (metadata \"format\" is \"cnnlite\")");
    /* Truncated. */
    size_t n = 0;
    unsigned char *bytes = tu_read_file(fx->file, &n);
    tu_write_file(model_file, bytes, n - 1);
    assert_status_msg(cnnl_checkpoint_load(model_file, b.model, b.opt, NULL), CNNL_EFORMAT, "out of range");
    unsigned char *after = snapshot(&b, &n1);
    assert_memory_equal(before, after, n0); /* nothing changed */
    assert_int_equal(cnnl_optimizer_step_count(b.opt), 0);

    /* A failed save leaves the previous checkpoint byte-identical. */
    cnnl__io_fail_after_bytes = (long long)n / 2;
    assert_status_msg(cnnl_checkpoint_save(fx->file, b.model, b.opt, NULL), CNNL_EIO, "injected");
    cnnl__io_fail_after_bytes = -1;
    size_t n2 = 0;
    unsigned char *again = tu_read_file(fx->file, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(again, bytes, n);
    char *bad = path_in(model_file, "x.ckpt");
    assert_status_msg(cnnl_checkpoint_save(bad, b.model, b.opt, NULL), CNNL_EIO, "cannot create a temporary file");

    free(bad);
    free(again);
    free(after);
    free(bytes);
    free(before);
    free(model_file);
    run_free(&a);
    run_free(&b);
    run_free(&plain);
    run_free(&sgd);
}

/* Copy of the checkpoint at @p src with the bytes of tensor @p name's element @p index
 * replaced by @p value (@p size bytes), written to @p dst. */
static void patch_tensor(const char *src, const char *dst, const char *name, size_t index, const void *value,
                         size_t size)
{
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(src, &f));
    const cnnl__st_tensor *t = cnnl__st_find(f, name);
    if (!t)
        fail_msg("no tensor %s", name);
    size_t off = (size_t)((const unsigned char *)t->data - f->buf) + index * size;
    cnnl__st_free(f);
    size_t n = 0;
    unsigned char *bytes = tu_read_file(src, &n);
    memcpy(bytes + off, value, size);
    tu_write_file(dst, bytes, n);
    free(bytes);
}

/* Every value read is checked: refused with CNNL_EFORMAT naming the file and the field, and
 * the model and optimizer are left as they were. */
static void test_hostile_values(void **state)
{
    fixture *fx = *state;
    run a = run_new(true, true, 1);
    train(fx, &a, 1);
    cnnl_checkpoint *ck = extras(&a);
    static const char *const cols[12] = {"epoch", "train_loss", "train_loss_mean", "train_accuracy", "test_loss",
                                         "test_accuracy", "seconds", "images_per_second", "learning_rate",
                                         "train_batches", "train_images", "test_images"};
    const float hist[12] = {1, 3.5f, 0.9f, 55, 1.1f, 60, 12.5f, 80, 1e-3f, 4, 12, 3};
    assert_ok(cnnl_checkpoint_set_history(ck, 1, 12, hist, cols));
    assert_ok(cnnl_checkpoint_save(fx->file, a.model, a.opt, ck));
    run b = run_new(true, true, 2);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = snapshot(&b, &n0);
    char *bad = path_in(fx->dir, "bad.ckpt");
    cnnl_checkpoint *back = NULL;
    assert_ok(cnnl_checkpoint_load(fx->file, b.model, b.opt, &back)); /* the original is fine */
    cnnl_checkpoint_free(back);
    run_free(&b);
    b = run_new(true, true, 2);

    const float nan = NAN, huge = 1e30f;
    const double dnan = NAN, dhuge = 1e30, over = 101, frac = 2.5;
    patch_tensor(fx->file, bad, "train.history", 1, &dnan, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "row 0, column \"train_loss\" is nan");
    assert_non_null(strstr(cnnl_last_error(), bad));
    patch_tensor(fx->file, bad, "train.history", 4, &dhuge, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "column \"test_loss\" is 1e+30");
    patch_tensor(fx->file, bad, "train.history", 5, &over, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "column \"test_accuracy\" is 101; must be finite in [0, 100]");
    patch_tensor(fx->file, bad, "train.history", 10, &frac, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "column \"train_images\" is 2.5; must be an integer");

    const int64_t neg = -3, step_max = INT64_MAX;
    patch_tensor(fx->file, bad, "train.epoch", 0, &neg, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT, "\"train.epoch\" is -3");
    patch_tensor(fx->file, bad, "train.optim_step", 0, &step_max, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "\"train.optim_step\" is 9223372036854775807; must be 0..2^53");
    const uint64_t zero[4] = {0, 0, 0, 0};
    patch_tensor(fx->file, bad, "rng.shuffle", 0, zero, sizeof zero);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "generator state \"rng.shuffle\" is all zero");
    patch_tensor(fx->file, bad, "model.classifier.4.weight", 7, &nan, 4);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "tensor \"model.classifier.4.weight\" element 7 is not finite");
    patch_tensor(fx->file, bad, "optim.classifier.4.weight.exp_avg_sq", 0, &huge, 4);
    assert_ok(cnnl_checkpoint_load(bad, b.model, b.opt, NULL)); /* large but finite: a value, not an error */
    run_free(&b);
    b = run_new(true, true, 2);
    const float inf = INFINITY;
    patch_tensor(fx->file, bad, "optim.classifier.4.weight.exp_avg_sq", 0, &inf, 4);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "\"optim.classifier.4.weight.exp_avg_sq\" element 0 is not finite");
    const int64_t neg_count = -1;
    patch_tensor(fx->file, bad, "model.features.2.num_batches_tracked", 0, &neg_count, 8);
    assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT,
                      "\"model.features.2.num_batches_tracked\" element 0 is outside 0..2^53");

    /* Split lists: names that could leave the data folder, empty names, duplicates. */
    static const char *const dotdot[2] = {"glioma/a.jpg", "../../etc/passwd"};
    static const char *const absolute[1] = {"/etc/passwd"};
    static const char *const empty[1] = {""};
    static const char *const twice[2] = {"glioma/a.jpg", "glioma/a.jpg"};
    static const char *const in_train[1] = {"glioma/a.jpg"};
    struct {
        const char *part;
        const char *const *files;
        size_t n;
        const char *why;
    } splits[] = {{"train", dotdot, 2, "metadata \"split.train\": file name 1 has an empty, \".\" or \"..\" component"},
                  {"train", absolute, 1, "file name 0 is an absolute path"},
                  {"test", empty, 1, "metadata \"split.test\": file name 0 is empty"},
                  {"train", twice, 2, "a file name appears twice"},
                  {"test", in_train, 1, "a file is in two split parts"}};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        cnnl_checkpoint *c2 = extras(&a);
        assert_ok(cnnl_checkpoint_set_split(c2, splits[i].part, splits[i].files, splits[i].n));
        assert_ok(cnnl_checkpoint_save(bad, a.model, a.opt, c2));
        cnnl_checkpoint_free(c2);
        assert_status_msg(cnnl_checkpoint_load(bad, b.model, b.opt, NULL), CNNL_EFORMAT, splits[i].why);
    }
    unsigned char *after = snapshot(&b, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0); /* no refused file changed anything */
    free(after);
    free(before);
    free(bad);
    cnnl_checkpoint_free(ck);
    run_free(&a);
    run_free(&b);
}

/* File names that are not UTF-8 are stored so that the header stays valid UTF-8 and the
 * names come back byte for byte. */
static void test_non_utf8_split_names(void **state)
{
    fixture *fx = *state;
    run a = run_new(false, true, 1);
    static const char *const files[4] = {"gli\xe9ma/caf\xe9.jpg", "glioma/ok \xc3\xa9.jpg", "notumor/\xff\xfe\x80.png",
                                         "notumor/ed\xed\xa0\x80.png"}; /* Latin-1, UTF-8, junk, a surrogate */
    cnnl_checkpoint *ck = extras(&a);
    assert_ok(cnnl_checkpoint_set_split(ck, "train", files, 4));
    assert_ok(cnnl_checkpoint_save(fx->file, a.model, a.opt, ck));
    cnnl_checkpoint_free(ck);
    size_t n = 0;
    unsigned char *bytes = tu_read_file(fx->file, &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)bytes[i] << (8 * i);
    for (uint64_t i = 8; i < 8 + hlen; i++) /* the header is plain ASCII here: no raw byte >= 0x80 */
        if (bytes[i] >= 0x80 && !(bytes[i] == 0xc3 && bytes[i + 1] == 0xa9) && !(bytes[i - 1] == 0xc3 && bytes[i] == 0xa9))
            fail_msg("raw byte 0x%02x at %llu of the header", bytes[i], (unsigned long long)i);
    free(bytes);
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_string_equal(cnnl__st_meta_get(f, "split.train"),
                        "[{\"hex\":\"676c69e96d612f636166e92e6a7067\"},\"glioma/ok \xc3\xa9.jpg\","
                        "{\"hex\":\"6e6f74756d6f722ffffe802e706e67\"},{\"hex\":\"6e6f74756d6f722f6564eda0802e706e67\"}]");
    cnnl__st_free(f);
    run b = run_new(false, true, 2);
    cnnl_checkpoint *back = NULL;
    assert_ok(cnnl_checkpoint_load(fx->file, b.model, b.opt, &back));
    assert_int_equal(cnnl_checkpoint_split_count(back, "train"), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(cnnl_checkpoint_split_file(back, "train", i), files[i]);
    cnnl_checkpoint_free(back);
    run_free(&a);
    run_free(&b);
}

/* The history is stored as float64 and comes back exactly; a checkpoint of 0.1.0 (float32
 * history) still loads, its values widened. */
static void test_history_f64(void **state)
{
    fixture *fx = *state;
    run a = run_new(false, true, 1);
    const double exact[4] = {1.0 / 3.0, 12.345678901234567, 0.1, 98.76543210987654};
    static const char *const cols[2] = {"train_loss", "seconds"};
    cnnl_checkpoint *ck = NULL;
    assert_ok(cnnl_checkpoint_create(&ck));
    assert_ok(cnnl_checkpoint_set_history_f64(ck, 2, 2, exact, cols));
    assert_ok(cnnl_checkpoint_save(fx->file, a.model, a.opt, ck));
    cnnl_checkpoint_free(ck);
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_int_equal(cnnl__st_find(f, "train.history")->dtype, CNNL_DTYPE_F64);
    /* The same file as 0.1.0 wrote it: the history as F32. */
    cnnl__st_list l = {0};
    float narrow[4];
    for (int i = 0; i < 4; i++)
        narrow[i] = (float)exact[i];
    for (size_t i = 0; i < f->count; i++) {
        const cnnl__st_tensor *t = &f->tensors[i];
        bool hist = strcmp(t->name, "train.history") == 0;
        assert_ok(cnnl__st_list_tensor(&l, "", t->name, hist ? CNNL_DTYPE_F32 : t->dtype, t->ndim, t->shape,
                                       hist ? (const void *)narrow : t->data));
    }
    for (size_t i = 0; i < f->meta_count; i++)
        assert_ok(cnnl__st_list_meta(&l, f->meta[i].key, f->meta[i].value));
    char *old = path_in(fx->dir, "v010.ckpt");
    assert_ok(cnnl__st_list_write(&l, old));
    cnnl__st_list_free(&l);
    cnnl__st_free(f);

    run b = run_new(false, true, 2);
    size_t rows = 0, cols_n = 0;
    const double *h = NULL;
    const float *h32 = NULL;
    assert_ok(cnnl_checkpoint_load(fx->file, b.model, b.opt, &ck));
    assert_ok(cnnl_checkpoint_history_f64(ck, &rows, &cols_n, &h));
    assert_int_equal(rows, 2);
    assert_int_equal(cols_n, 2);
    assert_memory_equal(h, exact, sizeof exact);
    assert_ok(cnnl_checkpoint_history(ck, &rows, &cols_n, &h32));
    assert_memory_equal(h32, narrow, sizeof narrow);
    cnnl_checkpoint_free(ck);
    assert_ok(cnnl_checkpoint_load(old, b.model, b.opt, &ck));
    assert_ok(cnnl_checkpoint_history_f64(ck, &rows, &cols_n, &h));
    for (int i = 0; i < 4; i++)
        assert_true(h[i] == (double)narrow[i]);
    assert_string_equal(cnnl_checkpoint_history_column(ck, 1), "seconds");
    cnnl_checkpoint_free(ck);
    free(old);
    run_free(&a);
    run_free(&b);
}

static void test_field_arguments(void **state)
{
    (void)state;
    cnnl_checkpoint *ck = NULL;
    uint64_t s[4] = {1, 2, 3, 4};
    assert_ok(cnnl_checkpoint_create(&ck));
    assert_status_msg(cnnl_checkpoint_set_rng(ck, "has space", s), CNNL_EINVAL, "name must be");
    assert_status_msg(cnnl_checkpoint_set_rng(ck, "", s), CNNL_EINVAL, "name must be");
    assert_status_msg(cnnl_checkpoint_set_string(ck, "a/b", "v"), CNNL_EINVAL, "key must be");
    assert_status_msg(cnnl_checkpoint_set_split(ck, "train", NULL, 2), CNNL_EINVAL, "files is NULL");
    assert_status_msg(cnnl_checkpoint_set_history(ck, 2, 0, HISTORY, NULL), CNNL_EINVAL, "cols is 0");
    assert_status_msg(cnnl_checkpoint_set_epoch(ck, -1), CNNL_EINVAL, "negative");
    assert_status_msg(cnnl_checkpoint_get_rng(ck, "x", s), CNNL_ENOTFOUND, "\"x\"");
    /* Setting twice replaces. */
    assert_ok(cnnl_checkpoint_set_string(ck, "k", "one"));
    assert_ok(cnnl_checkpoint_set_string(ck, "k", "two"));
    assert_string_equal(cnnl_checkpoint_get_string(ck, "k"), "two");
    assert_ok(cnnl_checkpoint_set_split(ck, "train", TRAIN_FILES, 3));
    assert_ok(cnnl_checkpoint_set_split(ck, "train", TEST_FILES, 1));
    assert_int_equal(cnnl_checkpoint_split_count(ck, "train"), 1);
    assert_ok(cnnl_checkpoint_set_history(ck, 2, 3, HISTORY, NULL));
    assert_null(cnnl_checkpoint_history_column(ck, 0));
    assert_ok(cnnl_checkpoint_set_history(ck, 0, 0, NULL, NULL));
    size_t rows = 9, cols = 9;
    assert_ok(cnnl_checkpoint_history(ck, &rows, &cols, NULL));
    assert_int_equal(rows, 0);
    assert_int_equal(cols, 0);
    cnnl_checkpoint_free(ck);
    cnnl_checkpoint_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_adam_batchnorm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_sgd_momentum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_checkpoints, setup, teardown),
        cmocka_unit_test(test_field_arguments),
        cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_f64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_split_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
