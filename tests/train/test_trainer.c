/* Trainer: history figures on a tiny deterministic run, reproducibility, callbacks, early
 * stop, stop requests and exact resumption from a checkpoint, best weights. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct fixture {
    cnnl_dataset *ds;
    cnnl_split *split;
    cnnl_loader *train, *test;
    cnnl_model *model;
    cnnl_trainer *trainer;
} fixture;

/* 32 synthetic images of 32x32: 26 for training (batches 8, 8, 8, 2), 6 for testing. */
static void setup(fixture *f, uint64_t seed, const cnnl_train_opts *opts)
{
    memset(f, 0, sizeof *f);
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = 32;
    cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
    dopt.size = 32;
    assert_ok(cnnl_dataset_synthetic(&f->ds, &so, &dopt));
    cnnl_split_opts sp = cnnl_split_opts_default();
    sp.seed = seed;
    assert_ok(cnnl_split_create(&f->split, f->ds, &sp));
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = 8;
    lo.seed = seed;
    lo.shuffle = true;
    assert_ok(cnnl_loader_create(&f->train, f->ds, cnnl_split_indices(f->split, CNNL_SUBSET_TRAIN),
                                 cnnl_split_count(f->split, CNNL_SUBSET_TRAIN), &lo));
    lo.shuffle = false;
    assert_ok(cnnl_loader_create(&f->test, f->ds, cnnl_split_indices(f->split, CNNL_SUBSET_TEST),
                                 cnnl_split_count(f->split, CNNL_SUBSET_TEST), &lo));
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    ro.seed = seed;
    assert_ok(cnnl_report_net_create(&f->model, &ro));
    cnnl_train_opts to = opts ? *opts : cnnl_train_opts_default();
    if (opts == NULL)
        to.epochs = 2;
    to.progress = CNNL_PROGRESS_OFF;
    assert_ok(cnnl_trainer_create(&f->trainer, f->model, NULL, &to));
}

static void teardown(fixture *f)
{
    cnnl_trainer_free(f->trainer);
    cnnl_model_free(f->model);
    cnnl_loader_free(f->train);
    cnnl_loader_free(f->test);
    cnnl_split_free(f->split);
    cnnl_dataset_free(f->ds);
}

/* Every state tensor, concatenated as bytes. */
static unsigned char *weights(cnnl_model *m, size_t *bytes)
{
    size_t total = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(m, i, &p));
        total += p.numel * (p.dtype == CNNL_DTYPE_I64 ? 8 : 4);
    }
    unsigned char *buf = malloc(total), *q = buf;
    assert_non_null(buf);
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(m, i, &p));
        size_t n = p.numel * (p.dtype == CNNL_DTYPE_I64 ? 8 : 4);
        memcpy(q, p.dtype == CNNL_DTYPE_I64 ? (void *)p.data_i64 : (void *)p.data, n);
        q += n;
    }
    *bytes = total;
    return buf;
}

/* What the callbacks saw. */
typedef struct seen {
    double loss_sum[4];
    int64_t correct[4], images[4], batches[4];
    double test_loss[4], test_acc[4];
    int epochs_seen;
    fixture *f;
    int stop_at_batch, stop_after_epoch, fail_at_batch, checkpoints;
    const char *checkpoint_path;
} seen;

/* Independent test figures: forward in evaluation mode, log-softmax by hand. */
static void eval_by_hand(fixture *f, double *loss, double *acc)
{
    cnnl_model_set_training(f->model, false);
    double lsum = 0;
    int64_t correct = 0, n = 0;
    size_t nb = cnnl_loader_num_batches(f->test);
    for (size_t b = 0; b < nb; b++) {
        const cnnl_tensor *x = NULL, *y = NULL;
        const int32_t *lab = NULL;
        assert_ok(cnnl_loader_batch(f->test, b, &x, &lab));
        assert_ok(cnnl_model_forward(f->model, x, &y));
        int64_t rows = cnnl_tensor_dim(y, 0), k = cnnl_tensor_dim(y, 1);
        const float *z = cnnl_tensor_data_const(y);
        double bl = 0;
        for (int64_t i = 0; i < rows; i++) {
            const float *r = z + i * k;
            double m = r[0], s = 0;
            int best = 0;
            for (int j = 1; j < k; j++) {
                if (r[j] > m)
                    m = r[j];
                if (r[j] > r[best])
                    best = j;
            }
            for (int j = 0; j < k; j++)
                s += exp(r[j] - m);
            bl += -(r[lab[i]] - m - log(s));
            correct += best == lab[i];
        }
        lsum += bl / (double)rows;
        n += rows;
    }
    cnnl_model_set_training(f->model, true);
    *loss = lsum / (double)nb;
    *acc = 100.0 * (double)correct / (double)n;
}

static int on_batch(cnnl_trainer *t, const cnnl_batch_info *info, void *user)
{
    (void)t;
    seen *s = user;
    int e = info->epoch - 1;
    s->loss_sum[e] += info->loss;
    s->correct[e] += info->correct;
    s->images[e] += info->images;
    s->batches[e]++;
    if (info->epoch == 1 && info->batch == s->stop_at_batch)
        cnnl_trainer_request_stop();
    if (info->epoch == 1 && info->batch == s->fail_at_batch) {
        return CNNL_ENUMERIC;
    }
    return CNNL_OK;
}

static int on_epoch(cnnl_trainer *t, const cnnl_epoch_stats *st, void *user)
{
    (void)t;
    seen *s = user;
    eval_by_hand(s->f, &s->test_loss[st->epoch - 1], &s->test_acc[st->epoch - 1]);
    s->epochs_seen++;
    return st->epoch == s->stop_after_epoch ? CNNL_TRAIN_STOP : CNNL_OK;
}

static cnnl_train_opts opts_with(seen *s)
{
    cnnl_train_opts o = cnnl_train_opts_default();
    o.epochs = 2;
    o.on_batch = on_batch;
    o.on_epoch = on_epoch;
    o.user = s;
    s->stop_at_batch = -1;
    s->fail_at_batch = -1;
    return o;
}

static void test_history_of_tiny_run(void **state)
{
    (void)state;
    fixture f;
    seen s;
    memset(&s, 0, sizeof s);
    cnnl_train_opts o = opts_with(&s);
    setup(&f, 0, &o);
    s.f = &f;
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    cnnl_history *h = cnnl_trainer_history(f.trainer);
    assert_int_equal(cnnl_history_count(h), 2);
    assert_int_equal(s.epochs_seen, 2);
    for (int e = 0; e < 2; e++) {
        cnnl_epoch_stats st;
        assert_ok(cnnl_history_at(h, (size_t)e, &st));
        assert_int_equal(st.epoch, e + 1);
        assert_int_equal(st.train_batches, 4);
        assert_int_equal(s.batches[e], 4);
        assert_int_equal(st.train_images, 26);
        assert_int_equal(st.test_images, 6);
        /* train loss: the sum of the batch means (the report's figure) */
        assert_true(st.train_loss == s.loss_sum[e]);
        assert_float_equal(st.train_loss_mean, s.loss_sum[e] / 4, 1e-12);
        assert_float_equal(st.train_accuracy, 100.0 * (double)s.correct[e] / 26, 1e-12);
        /* test figures agree with an evaluation by hand right after the epoch */
        assert_float_equal(st.test_loss, s.test_loss[e], 1e-5);
        assert_float_equal(st.test_accuracy, s.test_acc[e], 1e-9);
        assert_true(st.seconds > 0 && st.images_per_second > 0);
        assert_float_equal(st.learning_rate, 1e-3, 1e-9);
    }
    /* four batches of a freshly initialised 4-class network: each mean loss near ln 4 */
    cnnl_epoch_stats first;
    cnnl_history_at(h, 0, &first);
    assert_true(first.train_loss > 4 * 1.2 && first.train_loss < 4 * 1.6);
    assert_false(cnnl_model_is_training(f.model));
    cnnl_train_position p;
    assert_ok(cnnl_trainer_get_position(f.trainer, &p));
    assert_int_equal(p.epoch, 2);
    assert_int_equal(p.batch, 0);
    /* fitting again does nothing: all epochs done */
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    assert_int_equal(cnnl_history_count(h), 2);
    teardown(&f);
}

static void run_once(uint64_t seed, cnnl_history **hist, unsigned char **w, size_t *bytes)
{
    fixture f;
    setup(&f, seed, NULL);
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    assert_ok(cnnl_history_create(hist));
    cnnl_history *h = cnnl_trainer_history(f.trainer);
    for (size_t i = 0; i < cnnl_history_count(h); i++) {
        cnnl_epoch_stats e;
        cnnl_history_at(h, i, &e);
        assert_ok(cnnl_history_append(*hist, &e));
    }
    *w = weights(f.model, bytes);
    teardown(&f);
}

static void test_same_seed_same_run(void **state)
{
    (void)state;
    cnnl_history *h1, *h2, *h3;
    unsigned char *w1, *w2, *w3;
    size_t b1, b2, b3;
    run_once(5, &h1, &w1, &b1);
    run_once(5, &h2, &w2, &b2);
    run_once(6, &h3, &w3, &b3);
    assert_int_equal(b1, b2);
    assert_memory_equal(w1, w2, b1);
    assert_true(memcmp(w1, w3, b1) != 0);
    for (size_t i = 0; i < 2; i++) {
        cnnl_epoch_stats a, b;
        cnnl_history_at(h1, i, &a);
        cnnl_history_at(h2, i, &b);
        assert_true(a.train_loss == b.train_loss);
        assert_true(a.train_accuracy == b.train_accuracy);
        assert_true(a.test_loss == b.test_loss);
        assert_true(a.test_accuracy == b.test_accuracy);
    }
    cnnl_history_free(h1);
    cnnl_history_free(h2);
    cnnl_history_free(h3);
    free(w1);
    free(w2);
    free(w3);
}

static void test_early_stop_and_callback_error(void **state)
{
    (void)state;
    fixture f;
    seen s;
    memset(&s, 0, sizeof s);
    cnnl_train_opts o = opts_with(&s);
    o.epochs = 5;
    s.stop_after_epoch = 1;
    setup(&f, 0, &o);
    s.f = &f;
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    assert_int_equal(cnnl_history_count(cnnl_trainer_history(f.trainer)), 1);
    teardown(&f);

    memset(&s, 0, sizeof s);
    o = opts_with(&s);
    s.fail_at_batch = 1;
    setup(&f, 0, &o);
    s.f = &f;
    assert_status_msg(cnnl_trainer_fit(f.trainer, f.train, f.test), CNNL_ENUMERIC, "batch callback");
    assert_int_equal(cnnl_history_count(cnnl_trainer_history(f.trainer)), 0);
    teardown(&f);
}

/* The checkpoint callback of the interrupted run: model, optimizer, position, history. */
static cnnl_status save_checkpoint(cnnl_trainer *t, void *user)
{
    seen *s = user;
    s->checkpoints++;
    cnnl_checkpoint *ck = NULL;
    cnnl_status st = cnnl_checkpoint_create(&ck);
    cnnl_train_position p;
    cnnl_trainer_get_position(t, &p);
    char pos[200];
    snprintf(pos, sizeof pos, "%d %lld %a %lld %lld", p.epoch, (long long)p.batch, p.loss_sum,
             (long long)p.correct, (long long)p.images);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_set_string(ck, "position", pos);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_save(s->checkpoint_path, s->f->model, cnnl_trainer_optimizer(t), ck);
    cnnl_checkpoint_free(ck);
    return st;
}

static void test_stop_request_and_exact_resume(void **state)
{
    (void)state;
    char path[] = "/tmp/cnnl_ckpt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);

    /* reference: uninterrupted */
    cnnl_history *href;
    unsigned char *wref;
    size_t bytes;
    run_once(0, &href, &wref, &bytes);

    /* interrupted after batch index 2 of epoch 1 (a Ctrl-C handler would call the same) */
    fixture f;
    seen s;
    memset(&s, 0, sizeof s);
    cnnl_train_opts o = opts_with(&s);
    o.on_epoch = NULL;
    o.on_checkpoint = save_checkpoint;
    o.checkpoint_every = 0;
    s.stop_at_batch = 2;
    s.checkpoint_path = path;
    setup(&f, 0, &o);
    s.f = &f;
    assert_status_msg(cnnl_trainer_fit(f.trainer, f.train, f.test), CNNL_EINTERRUPTED, "stopped on request");
    assert_true(cnnl_trainer_stop_requested());
    cnnl_trainer_clear_stop();
    assert_int_equal(s.checkpoints, 1);
    cnnl_train_position p;
    assert_ok(cnnl_trainer_get_position(f.trainer, &p));
    assert_int_equal(p.epoch, 0);
    assert_int_equal(p.batch, 3);
    assert_int_equal(p.images, 24);
    teardown(&f);

    /* a new process: fresh objects, state from the checkpoint, position restored */
    memset(&s, 0, sizeof s);
    o = opts_with(&s);
    o.on_epoch = NULL;
    setup(&f, 0, &o);
    s.f = &f;
    cnnl_checkpoint *ck = NULL;
    assert_ok(cnnl_checkpoint_load(path, f.model, cnnl_trainer_optimizer(f.trainer), &ck));
    cnnl_train_position q = {0};
    long long batch, correct, images;
    assert_int_equal(sscanf(cnnl_checkpoint_get_string(ck, "position"), "%d %lld %la %lld %lld",
                            &q.epoch, &batch, &q.loss_sum, &correct, &images), 5);
    q.batch = batch;
    q.correct = correct;
    q.images = images;
    cnnl_checkpoint_free(ck);
    assert_ok(cnnl_trainer_set_position(f.trainer, &q));
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    size_t b2;
    unsigned char *w = weights(f.model, &b2);
    assert_int_equal(b2, bytes);
    assert_memory_equal(w, wref, bytes);
    /* the resumed epoch's figures include the batches before the interruption */
    cnnl_epoch_stats a, b;
    assert_ok(cnnl_history_at(cnnl_trainer_history(f.trainer), 0, &a));
    assert_ok(cnnl_history_at(href, 0, &b));
    assert_true(a.train_loss == b.train_loss);
    assert_true(a.train_accuracy == b.train_accuracy);
    assert_int_equal(a.train_images, 26);
    free(w);
    free(wref);
    cnnl_history_free(href);
    teardown(&f);
    unlink(path);
}

/* The library's checkpoint API: a run saved after epoch 1 and resumed in fresh objects ends
 * with the uninterrupted run's weights, and its history file starts with the saving run's
 * byte for byte; a checkpoint whose position and history disagree is refused. */
static cnnl_status api_save(cnnl_trainer *t, void *user)
{
    return cnnl_trainer_save_checkpoint(t, (const char *)user, NULL);
}

static void test_checkpoint_api(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    char ckpath[4096], bad[4096], csv_a[4096], csv_b[4096];
    snprintf(ckpath, sizeof ckpath, "%s/run.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    snprintf(csv_a, sizeof csv_a, "%s/a.csv", dir);
    snprintf(csv_b, sizeof csv_b, "%s/b.csv", dir);
    cnnl_history *href;
    unsigned char *wref;
    size_t bytes;
    run_once(0, &href, &wref, &bytes);

    fixture f;
    cnnl_train_opts o = cnnl_train_opts_default();
    o.epochs = 1;
    o.on_checkpoint = api_save;
    o.user = ckpath;
    setup(&f, 0, &o);
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    assert_ok(cnnl_history_save(cnnl_trainer_history(f.trainer), csv_a, CNNL_HISTORY_CSV));
    teardown(&f);

    o = cnnl_train_opts_default();
    o.epochs = 2;
    setup(&f, 0, &o);
    cnnl_checkpoint *ck = NULL;
    assert_ok(cnnl_trainer_load_checkpoint(f.trainer, ckpath, &ck));
    assert_non_null(ck);
    assert_int_equal(cnnl_history_count(cnnl_trainer_history(f.trainer)), 1);
    cnnl_train_position p;
    assert_ok(cnnl_trainer_get_position(f.trainer, &p));
    assert_int_equal(p.epoch, 1);
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    size_t b2 = 0;
    unsigned char *w = weights(f.model, &b2);
    assert_int_equal(b2, bytes);
    assert_memory_equal(w, wref, bytes);
    assert_ok(cnnl_history_save(cnnl_trainer_history(f.trainer), csv_b, CNNL_HISTORY_CSV));
    size_t na = 0, nb = 0;
    unsigned char *a = tu_read_file(csv_a, &na), *b = tu_read_file(csv_b, &nb);
    assert_true(nb > na);
    assert_memory_equal(a, b, na); /* header and epoch 1, to the last digit */
    free(a);
    free(b);

    /* the position says 2 epochs are done, the history holds 1 */
    assert_ok(cnnl_checkpoint_set_string(ck, "position", "2 0 0x0p+0 0 0 0x0p+0"));
    assert_ok(cnnl_checkpoint_save(bad, f.model, cnnl_trainer_optimizer(f.trainer), ck));
    cnnl_checkpoint_free(ck);
    fixture g;
    setup(&g, 0, &o);
    assert_status_msg(cnnl_trainer_load_checkpoint(g.trainer, bad, &ck), CNNL_EFORMAT,
                      "\"train.history\" has 1 rows of 12 columns for 2 completed epochs");
    assert_null(ck);
    assert_int_equal(cnnl_history_count(cnnl_trainer_history(g.trainer)), 0);
    assert_ok(cnnl_trainer_get_position(g.trainer, &p));
    assert_int_equal(p.epoch, 0);
    teardown(&g);
    free(w);
    free(wref);
    cnnl_history_free(href);
    teardown(&f);
    tu_rmtree(dir);
    free(dir);
}

static void test_best_weights(void **state)
{
    (void)state;
    fixture f;
    cnnl_train_opts o = cnnl_train_opts_default();
    o.epochs = 3;
    o.keep_best = true;
    setup(&f, 1, &o);
    assert_status_msg(cnnl_trainer_restore_best(f.trainer), CNNL_ESTATE, "0 epochs evaluated");
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, f.test));
    double best, acc;
    int at;
    assert_ok(cnnl_history_best(cnnl_trainer_history(f.trainer), &best, &at));
    assert_ok(cnnl_trainer_restore_best(f.trainer));
    assert_ok(cnnl_evaluate(f.model, f.test, CNNL_LOSS_CROSS_ENTROPY, NULL, NULL, &acc));
    assert_float_equal(acc, best, 1e-9);
    teardown(&f);
}

static void test_evaluate_confusion(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 0, NULL);
    cnnl_confusion *cm = NULL;
    assert_ok(cnnl_confusion_create(&cm, 4));
    double loss = 0, acc = 0, hl, ha;
    assert_ok(cnnl_evaluate(f.model, f.test, CNNL_LOSS_CROSS_ENTROPY, cm, &loss, &acc));
    cnnl_metrics_summary s;
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_int_equal(s.total, 6);
    assert_float_equal(100.0 * s.accuracy, acc, 1e-9);
    eval_by_hand(&f, &hl, &ha);
    assert_float_equal(loss, hl, 1e-5);
    assert_float_equal(acc, ha, 1e-9);
    cnnl_confusion *wrong = NULL;
    assert_ok(cnnl_confusion_create(&wrong, 3));
    assert_status_msg(cnnl_evaluate(f.model, f.test, CNNL_LOSS_CROSS_ENTROPY, wrong, NULL, NULL),
                      CNNL_ESHAPE, "4 outputs");
    cnnl_confusion_free(wrong);
    cnnl_confusion_free(cm);
    teardown(&f);
}

/* A learning-rate schedule as an epoch callback: halve the rate after every epoch. */
static int halve_lr(cnnl_trainer *t, const cnnl_epoch_stats *st, void *user)
{
    (void)st;
    (void)user;
    cnnl_optimizer *o = cnnl_trainer_optimizer(t);
    return cnnl_optimizer_set_lr(o, cnnl_optimizer_get_lr(o) * 0.5);
}

static void test_lr_schedule(void **state)
{
    (void)state;
    fixture f;
    cnnl_train_opts o = cnnl_train_opts_default();
    o.epochs = 3;
    o.lr = 4e-3;
    o.on_epoch = halve_lr;
    setup(&f, 0, &o);
    assert_ok(cnnl_trainer_fit(f.trainer, f.train, NULL));
    const double want[3] = {4e-3, 2e-3, 1e-3};
    for (size_t i = 0; i < 3; i++) {
        cnnl_epoch_stats e;
        assert_ok(cnnl_history_at(cnnl_trainer_history(f.trainer), i, &e));
        assert_true(e.learning_rate == want[i]); /* halving a double is exact */
        assert_int_equal(e.test_images, 0); /* no test loader */
        assert_true(e.test_accuracy == 0.0);
    }
    assert_true(cnnl_optimizer_get_lr(cnnl_trainer_optimizer(f.trainer)) == 5e-4);

    /* A checkpoint keeps the rate exactly, also one that no float or 9 digits hold. */
    char path[] = "/tmp/cnnl_lr_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    cnnl_optimizer *opt = cnnl_trainer_optimizer(f.trainer), *fresh = NULL;
    const double third = 1.0 / 3.0;
    assert_ok(cnnl_optimizer_set_lr(opt, third));
    assert_ok(cnnl_checkpoint_save(path, f.model, opt, NULL));
    assert_ok(cnnl_optimizer_adam(&fresh, f.model, NULL));
    assert_ok(cnnl_checkpoint_load(path, f.model, fresh, NULL));
    assert_true(cnnl_optimizer_get_lr(fresh) == third);
    cnnl_optimizer_free(fresh);
    unlink(path);
    teardown(&f);
}

static void test_bad_options(void **state)
{
    (void)state;
    cnnl_model *m = NULL;
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    assert_ok(cnnl_report_net_create(&m, &ro));
    cnnl_trainer *t = (cnnl_trainer *)1;
    cnnl_train_opts o = cnnl_train_opts_default();
    o.epochs = 0;
    assert_status_msg(cnnl_trainer_create(&t, m, NULL, &o), CNNL_EINVAL, "epochs is 0");
    assert_null(t);
    o = cnnl_train_opts_default();
    o.loss = CNNL_LOSS_MSE;
    assert_status_msg(cnnl_trainer_create(&t, m, NULL, &o), CNNL_EINVAL, "not a class-index loss");
    o = cnnl_train_opts_default();
    o.lr = -1;
    assert_status_msg(cnnl_trainer_create(&t, m, NULL, &o), CNNL_EINVAL, "lr is -1");
    assert_ok(cnnl_trainer_create(&t, m, NULL, NULL));
    assert_status_msg(cnnl_trainer_fit(t, NULL, NULL), CNNL_EINVAL, "NULL");
    cnnl_train_position p = {0};
    p.correct = 5;
    assert_status_msg(cnnl_trainer_set_position(t, &p), CNNL_EINVAL, "inconsistent");
    cnnl_trainer_free(t);
    cnnl_trainer_free(NULL);
    cnnl_model_free(m);
}

int main(void)
{
    cnnl_set_num_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_of_tiny_run),
        cmocka_unit_test(test_same_seed_same_run),
        cmocka_unit_test(test_early_stop_and_callback_error),
        cmocka_unit_test(test_stop_request_and_exact_resume),
        cmocka_unit_test(test_checkpoint_api),
        cmocka_unit_test(test_best_weights),
        cmocka_unit_test(test_evaluate_confusion),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
