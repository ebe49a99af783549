/* Several threads, each owning its own dataset, split, loaders, model, optimizer, trainer and
 * files, work at the same time (docs/threads.md): each must get exactly the results the same
 * work gives when run alone, and its own last-error message. Meanwhile the main thread reads
 * and sets the process-wide settings (log level, thread count, stop flag) that the workers
 * read. Built with ThreadSanitizer in CI (clang, LLVM's OpenMP runtime and its Archer tool),
 * where any data race fails the test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "test_util.h"

enum { WORKERS = 3, CONFIGS = 2 };

typedef struct result {
    double train_loss[2], test_acc[2];
    double weights;       /* sum of |w| over the parameters after training */
    float reload_out[4];  /* output of the model re-read from its file, first test image */
    float out[4];         /* output of the trained model on the same image */
    int errors_ok;        /* the thread's last error was its own */
} result;

typedef struct job {
    int config;
    char *dir;
    result res;
    cnnl_status st;
    char message[256];
} job;

static atomic_int logged;
static atomic_int finished;

static void count_log(cnnl_log_level level, const char *message, void *user)
{
    (void)level;
    (void)message;
    (void)user;
    atomic_fetch_add(&logged, 1);
}

static double weight_sum(cnnl_model *m)
{
    double s = 0;
    cnnl_param_info info;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++)
        if (cnnl_model_state_at(m, i, &info) == CNNL_OK)
            for (size_t k = 0; info.data && k < info.numel; k++)
                s += info.data[k] < 0 ? -(double)info.data[k] : (double)info.data[k];
    return s;
}

#define TRY(expr)                                                                                   \
    do {                                                                                            \
        if ((st = (expr)) != CNNL_OK) {                                                             \
            snprintf(j->message, sizeof j->message, "%s: %s", #expr, cnnl_last_error());          \
            goto out;                                                                               \
        }                                                                                           \
    } while (0)

/* The whole life of one training run; j->config picks seeds so that runs differ. */
static cnnl_status work(job *j)
{
    cnnl_status st = CNNL_OK;
    cnnl_dataset *ds = NULL;
    cnnl_split *sp = NULL;
    cnnl_loader *train = NULL, *test = NULL;
    cnnl_model *m = NULL, *m2 = NULL;
    cnnl_optimizer *opt = NULL;
    cnnl_trainer *tr = NULL;
    memset(&j->res, 0, sizeof j->res);

    /* Each thread's last error is its own: provoke one naming this thread's config. */
    char bad[64];
    snprintf(bad, sizeof bad, "/nonexistent/config-%d.safetensors", j->config);
    cnnl_model *none = NULL;
    if (cnnl_model_load(&none, bad, NULL, NULL) != CNNL_OK && strstr(cnnl_last_error(), bad))
        j->res.errors_ok = 1;

    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = 24;
    syn.seed = (uint64_t)j->config;
    cnnl_dataset_opts dopts = cnnl_dataset_opts_default();
    dopts.size = 32;
    TRY(cnnl_dataset_synthetic(&ds, &syn, &dopts));
    /* Through the files too: write the images, read them back as a folder. */
    TRY(cnnl_dataset_write_folder(ds, j->dir));
    cnnl_dataset_free(ds);
    ds = NULL;
    TRY(cnnl_dataset_load_folder(&ds, j->dir, &dopts));
    cnnl_split_opts so = cnnl_split_opts_default();
    so.train_fraction = 0.75;
    so.seed = (uint64_t)j->config + 10;
    TRY(cnnl_split_create(&sp, ds, &so));
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = 6;
    lo.shuffle = true;
    lo.seed = (uint64_t)j->config;
    TRY(cnnl_loader_create(&train, ds, cnnl_split_indices(sp, CNNL_SUBSET_TRAIN),
                           cnnl_split_count(sp, CNNL_SUBSET_TRAIN), &lo));
    lo.shuffle = false;
    TRY(cnnl_loader_create(&test, ds, cnnl_split_indices(sp, CNNL_SUBSET_TEST), cnnl_split_count(sp, CNNL_SUBSET_TEST),
                           &lo));

    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    ro.seed = (uint64_t)j->config;
    ro.batchnorm = j->config % 2 == 1;
    TRY(cnnl_report_net_create(&m, &ro));
    cnnl_adam_opts ao = cnnl_adam_opts_default();
    TRY(cnnl_optimizer_adam(&opt, m, &ao));
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = 2;
    to.progress = CNNL_PROGRESS_OFF;
    TRY(cnnl_trainer_create(&tr, m, opt, &to));
    TRY(cnnl_trainer_fit(tr, train, test));
    cnnl_history *h = cnnl_trainer_history(tr);
    for (size_t e = 0; e < 2; e++) {
        cnnl_epoch_stats es;
        TRY(cnnl_history_at(h, e, &es));
        j->res.train_loss[e] = es.train_loss;
        j->res.test_acc[e] = es.test_accuracy;
    }
    j->res.weights = weight_sum(m);

    /* Save, read back, and classify one image with both models. */
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", j->dir);
    TRY(cnnl_model_save(m, path, NULL));
    TRY(cnnl_model_load(&m2, path, NULL, NULL));
    TRY(cnnl_loader_start_epoch(test, 0));
    const int32_t *labels = NULL;
    const cnnl_tensor *x = NULL;
    TRY(cnnl_loader_batch(test, 0, &x, &labels));
    const cnnl_tensor *y = NULL;
    TRY(cnnl_model_forward(m, x, &y));
    memcpy(j->res.out, cnnl_tensor_data_const(y), sizeof j->res.out);
    TRY(cnnl_model_set_training(m2, false));
    TRY(cnnl_model_forward(m2, x, &y));
    memcpy(j->res.reload_out, cnnl_tensor_data_const(y), sizeof j->res.reload_out);
out:
    cnnl_trainer_free(tr);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m2);
    cnnl_model_free(m);
    cnnl_loader_free(test);
    cnnl_loader_free(train);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
    return st;
}

static void *worker(void *arg)
{
    job *j = arg;
    j->st = work(j);
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void test_threads_work_at_once(void **state)
{
    (void)state;
    job ref[CONFIGS], jobs[WORKERS];
    for (int c = 0; c < CONFIGS; c++) {
        memset(&ref[c], 0, sizeof ref[c]);
        ref[c].config = c;
        ref[c].dir = tu_tempdir();
        ref[c].st = work(&ref[c]);
        if (ref[c].st != CNNL_OK)
            print_error("reference run %d: %s\n", c, ref[c].message);
        assert_int_equal(ref[c].st, CNNL_OK);
        assert_true(ref[c].res.errors_ok);
        assert_memory_equal(ref[c].res.out, ref[c].res.reload_out, sizeof ref[c].res.out);
    }
    /* The two configurations really differ (else the comparison below proves little). */
    assert_true(ref[0].res.weights != ref[1].res.weights);

    pthread_t th[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        memset(&jobs[w], 0, sizeof jobs[w]);
        jobs[w].config = w % CONFIGS;
        jobs[w].dir = tu_tempdir();
        assert_int_equal(pthread_create(&th[w], NULL, worker, &jobs[w]), 0);
    }
    /* The process-wide settings, read and written while the workers run (same values, so the
     * results must not change). */
    long rounds = 0;
    cnnl_log_level level = cnnl_get_log_level();
    int threads = cnnl_get_num_threads();
    while (atomic_load(&finished) < WORKERS) {
        assert_int_equal(cnnl_get_log_level(), level);
        cnnl_set_log_level(level);
        assert_int_equal(cnnl_get_num_threads(), threads);
        assert_int_equal(cnnl_set_num_threads(threads), CNNL_OK);
        assert_false(cnnl_trainer_stop_requested());
        cnnl_set_log_callback(count_log, NULL);
        rounds++;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    assert_true(rounds > 0);
    for (int w = 0; w < WORKERS; w++)
        assert_int_equal(pthread_join(th[w], NULL), 0);

    for (int w = 0; w < WORKERS; w++) {
        const job *j = &jobs[w], *r = &ref[jobs[w].config];
        if (j->st != CNNL_OK)
            print_error("worker %d: %s\n", w, j->message);
        assert_int_equal(j->st, CNNL_OK);
        assert_true(j->res.errors_ok);
        /* Bit for bit what the same work gave alone. */
        assert_memory_equal(j->res.train_loss, r->res.train_loss, sizeof j->res.train_loss);
        assert_memory_equal(j->res.test_acc, r->res.test_acc, sizeof j->res.test_acc);
        assert_true(j->res.weights == r->res.weights);
        assert_memory_equal(j->res.out, r->res.out, sizeof j->res.out);
        assert_memory_equal(j->res.reload_out, r->res.out, sizeof j->res.out);
        tu_rmtree(j->dir);
        free(jobs[w].dir);
    }
    for (int c = 0; c < CONFIGS; c++) {
        tu_rmtree(ref[c].dir);
        free(ref[c].dir);
    }
    cnnl_set_log_callback(NULL, NULL);
}

/* A stop request from another thread ends a run in progress: the stop flag is process-wide
 * and may be set from any thread or from a signal handler. */
typedef struct long_run {
    cnnl_status st;
    atomic_int epochs_done;
    char message[256];
} long_run;

static int on_epoch(cnnl_trainer *t, const cnnl_epoch_stats *stats, void *user)
{
    (void)t;
    (void)stats;
    atomic_fetch_add(&((long_run *)user)->epochs_done, 1);
    return 0;
}

static void *long_worker(void *arg)
{
    long_run *r = arg;
    cnnl_dataset *ds = NULL;
    cnnl_loader *ld = NULL;
    cnnl_model *m = NULL;
    cnnl_trainer *tr = NULL;
    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = 8;
    cnnl_dataset_opts dopts = cnnl_dataset_opts_default();
    dopts.size = 32;
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = 100000;
    to.progress = CNNL_PROGRESS_OFF;
    to.on_epoch = on_epoch;
    to.user = r;
    r->st = cnnl_dataset_synthetic(&ds, &syn, &dopts);
    if (r->st == CNNL_OK)
        r->st = cnnl_loader_create(&ld, ds, NULL, 0, NULL);
    if (r->st == CNNL_OK)
        r->st = cnnl_report_net_create(&m, &ro);
    if (r->st == CNNL_OK)
        r->st = cnnl_trainer_create(&tr, m, NULL, &to);
    if (r->st == CNNL_OK)
        r->st = cnnl_trainer_fit(tr, ld, NULL);
    snprintf(r->message, sizeof r->message, "%s", cnnl_last_error());
    cnnl_trainer_free(tr);
    cnnl_model_free(m);
    cnnl_loader_free(ld);
    cnnl_dataset_free(ds);
    return NULL;
}

static void test_stop_from_another_thread(void **state)
{
    (void)state;
    long_run r;
    memset(&r, 0, sizeof r);
    cnnl_trainer_clear_stop();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, long_worker, &r), 0);
    while (atomic_load(&r.epochs_done) < 1) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cnnl_trainer_request_stop();
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(cnnl_trainer_stop_requested());
    cnnl_trainer_clear_stop();
    assert_false(cnnl_trainer_stop_requested());
    if (r.st != CNNL_EINTERRUPTED)
        print_error("long run: %s: %s\n", cnnl_status_string(r.st), r.message);
    assert_int_equal(r.st, CNNL_EINTERRUPTED);
    assert_true(atomic_load(&r.epochs_done) < 100000);
    assert_non_null(strstr(r.message, "stopped on request"));
}

int main(void)
{
    /* Two library threads per caller: OpenMP teams run inside each worker. */
    cnnl_set_num_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_work_at_once),
        cmocka_unit_test(test_stop_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
