/* Data-parallel training without MPI: sharded loaders, and a trainer over a two-"process"
 * communicator made of two threads of this process (reductions in rank order, so both get
 * bit-identical sums), compared with one process; buckets start while backward still runs. */
#include "test_util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

enum { COUNT = 29, BATCH = 7, SIZE = 32, SEED = 5 };

/* ---- a communicator of two threads ---- */
typedef struct shared {
    pthread_barrier_t barrier;
    void *slot[2];
    int starts;           /* allreduce_start calls of rank 0 */
    int starts_early;     /* of those, made before the first layer's gradients were computed */
    cnnl_model *model0;   /* rank 0's model */
} shared;

typedef struct thread_comm {
    cnnl_comm c;
    shared *sh;
} thread_comm;

static shared *sh_of(const cnnl_comm *c)
{
    return ((const thread_comm *)c)->sh;
}

static cnnl_status t_allreduce(const cnnl_comm *c, void *data, size_t count, cnnl_comm_type type)
{
    shared *sh = sh_of(c);
    sh->slot[c->rank] = data;
    pthread_barrier_wait(&sh->barrier);
    if (c->rank == 0) {
        for (size_t i = 0; i < count; i++) {
            if (type == CNNL_COMM_F32) {
                float s = ((float *)sh->slot[0])[i] + ((float *)sh->slot[1])[i];
                ((float *)sh->slot[0])[i] = ((float *)sh->slot[1])[i] = s;
            } else if (type == CNNL_COMM_F64) {
                double s = ((double *)sh->slot[0])[i] + ((double *)sh->slot[1])[i];
                ((double *)sh->slot[0])[i] = ((double *)sh->slot[1])[i] = s;
            } else {
                int64_t s = ((int64_t *)sh->slot[0])[i] + ((int64_t *)sh->slot[1])[i];
                ((int64_t *)sh->slot[0])[i] = ((int64_t *)sh->slot[1])[i] = s;
            }
        }
    }
    pthread_barrier_wait(&sh->barrier);
    return CNNL_OK;
}

static cnnl_status t_start(const cnnl_comm *c, float *data, size_t count, void **request)
{
    shared *sh = sh_of(c);
    if (c->rank == 0) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(sh->model0, 0, &p)); /* the first convolution's weight */
        bool untouched = true;
        for (size_t i = 0; i < p.numel; i++)
            untouched = untouched && p.grad[i] == 0.0f;
        sh->starts++;
        sh->starts_early += untouched;
    }
    *request = data;
    return t_allreduce(c, data, count, CNNL_COMM_F32);
}

static void t_progress(const cnnl_comm *c)
{
    (void)c;
}

static cnnl_status t_wait(const cnnl_comm *c, void *request)
{
    (void)c;
    (void)request;
    return CNNL_OK;
}

static cnnl_status t_broadcast(const cnnl_comm *c, void *data, size_t bytes, int root)
{
    shared *sh = sh_of(c);
    sh->slot[c->rank] = data;
    pthread_barrier_wait(&sh->barrier);
    if (c->rank != root)
        memcpy(data, sh->slot[root], bytes);
    pthread_barrier_wait(&sh->barrier);
    return CNNL_OK;
}

static cnnl_status t_barrier(const cnnl_comm *c)
{
    pthread_barrier_wait(&sh_of(c)->barrier);
    return CNNL_OK;
}

static void t_abort(const cnnl_comm *c, const char *message, int code)
{
    (void)c;
    fprintf(stderr, "%s\n", message);
    exit(code);
}

static void comm_init(thread_comm *tc, shared *sh, int rank)
{
    memset(tc, 0, sizeof *tc);
    tc->c = (cnnl_comm){rank, 2, NULL, t_allreduce, t_start, t_progress, t_wait, t_broadcast, t_barrier, t_abort};
    tc->sh = sh;
}

/* ---- one training run ---- */
typedef struct run {
    const cnnl_dataset *ds;
    const cnnl_comm *comm;
    cnnl_loader *train;
    cnnl_model *model;
    cnnl_trainer *trainer;
    shared *sh;
    cnnl_status status;
    char error[256];
} run;

static void run_build(run *r)
{
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    lo.shuffle = true;
    lo.seed = SEED;
    if (r->comm) {
        lo.shard_count = r->comm->size;
        lo.shard_index = r->comm->rank;
    }
    assert_ok(cnnl_loader_create(&r->train, r->ds, NULL, 0, &lo));
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = SIZE;
    ro.seed = SEED;
    ro.dropout = 0.0f;
    assert_ok(cnnl_report_net_create(&r->model, &ro));
    if (r->sh && r->comm && r->comm->rank == 0)
        r->sh->model0 = r->model;
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = 1;
    to.progress = CNNL_PROGRESS_OFF;
    to.comm = r->comm;
    to.comm_bucket_bytes = 32 << 10;
    assert_ok(cnnl_trainer_create(&r->trainer, r->model, NULL, &to));
}

static void *run_thread(void *arg)
{
    run *r = arg;
    r->status = cnnl_trainer_fit(r->trainer, r->train, NULL);
    snprintf(r->error, sizeof r->error, "%s", cnnl_last_error());
    return NULL;
}

static void run_free(run *r)
{
    cnnl_trainer_free(r->trainer);
    cnnl_model_free(r->model);
    cnnl_loader_free(r->train);
}

static cnnl_dataset *dataset(void)
{
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = COUNT;
    cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
    dopt.size = SIZE;
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_synthetic(&ds, &so, &dopt));
    return ds;
}

static void test_shard_sizes(void **state)
{
    (void)state;
    cnnl_dataset *ds = dataset();
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    lo.shuffle = true;
    cnnl_loader *all = NULL, *part[3] = {NULL};
    assert_ok(cnnl_loader_create(&all, ds, NULL, 0, &lo));
    for (int r = 0; r < 3; r++) {
        lo.shard_count = 3;
        lo.shard_index = r;
        assert_ok(cnnl_loader_create(&part[r], ds, NULL, 0, &lo));
        assert_ok(cnnl_loader_start_epoch(part[r], 2));
    }
    assert_ok(cnnl_loader_start_epoch(all, 2));
    assert_int_equal(cnnl_loader_num_batches(part[0]), 5);
    size_t per_image = 3 * SIZE * SIZE;
    for (size_t b = 0; b < 5; b++) {
        const cnnl_tensor *x = NULL;
        const int32_t *y = NULL;
        assert_ok(cnnl_loader_batch(all, b, &x, &y));
        float *whole = malloc(cnnl_tensor_numel(x) * sizeof(float));
        int32_t labels[BATCH];
        memcpy(whole, cnnl_tensor_data_const(x), cnnl_tensor_numel(x) * sizeof(float));
        memcpy(labels, y, (size_t)cnnl_tensor_dim(x, 0) * sizeof *y);
        size_t global = 0, sum = 0;
        for (int r = 0; r < 3; r++) {
            size_t g = 0, l = 0;
            assert_ok(cnnl_loader_batch_sizes(part[r], b, &g, &l));
            global = g;
            /* 7 images: 2, 2, 3; the last batch of 1: 0, 0, 1 */
            assert_int_equal(l, b < 4 ? (r < 2 ? 2 : 3) : (r < 2 ? 0 : 1));
            if (l == 0) {
                assert_status_msg(cnnl_loader_batch(part[r], b, &x, &y), CNNL_ERANGE, "has no image");
                continue;
            }
            assert_ok(cnnl_loader_batch(part[r], b, &x, &y));
            assert_int_equal(cnnl_tensor_dim(x, 0), (int64_t)l);
            assert_memory_equal(cnnl_tensor_data_const(x), whole + sum * per_image, l * per_image * sizeof(float));
            assert_memory_equal(y, labels + sum, l * sizeof *y);
            sum += l;
        }
        assert_int_equal(sum, global);
        free(whole);
    }
    lo.shard_index = 3;
    cnnl_loader *bad = NULL;
    assert_status_msg(cnnl_loader_create(&bad, ds, NULL, 0, &lo), CNNL_EINVAL, "shard_index 3 of shard_count 3");
    assert_null(bad);
    for (int r = 0; r < 3; r++)
        cnnl_loader_free(part[r]);
    cnnl_loader_free(all);
    cnnl_dataset_free(ds);
}

static void test_two_threads_equal_one(void **state)
{
    (void)state;
    cnnl_set_num_threads(1);
    cnnl_dataset *ds = dataset();
    run one = {.ds = ds};
    run_build(&one);
    assert_ok(cnnl_trainer_fit(one.trainer, one.train, NULL));

    shared sh = {0};
    pthread_barrier_init(&sh.barrier, NULL, 2);
    thread_comm tc[2];
    run two[2];
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        comm_init(&tc[r], &sh, r);
        two[r] = (run){.ds = ds, .comm = &tc[r].c, .sh = &sh};
        run_build(&two[r]);
    }
    for (int r = 0; r < 2; r++)
        pthread_create(&th[r], NULL, run_thread, &two[r]);
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < 2; r++) {
        if (two[r].status != CNNL_OK)
            print_error("rank %d: %s\n", r, two[r].error);
        assert_int_equal(two[r].status, CNNL_OK);
    }
    /* Both "processes" hold the same weights, within 1e-5 of one process's. */
    uint64_t h0, h1;
    assert_ok(cnnl_model_params_hash(two[0].model, &h0));
    assert_ok(cnnl_model_params_hash(two[1].model, &h1));
    assert_true(h0 == h1);
    double worst = 0;
    for (size_t i = 0; i < cnnl_model_state_count(one.model); i++) {
        cnnl_param_info a, b;
        assert_ok(cnnl_model_state_at(one.model, i, &a));
        assert_ok(cnnl_model_state_at(two[0].model, i, &b));
        if (!a.trainable)
            continue;
        double d2 = 0, a2 = 0;
        for (size_t j = 0; j < a.numel; j++) {
            d2 += ((double)a.data[j] - b.data[j]) * ((double)a.data[j] - b.data[j]);
            a2 += (double)a.data[j] * a.data[j];
        }
        worst = fmax(worst, sqrt(d2 / a2));
    }
    print_message("worst relative difference of a weight tensor, 2 ranks vs 1: %.3g\n", worst);
    assert_true(worst > 0 && worst <= 1e-5);
    cnnl_epoch_stats e1, e2;
    assert_ok(cnnl_history_at(cnnl_trainer_history(one.trainer), 0, &e1));
    assert_ok(cnnl_history_at(cnnl_trainer_history(two[1].trainer), 0, &e2));
    assert_int_equal(e2.train_images, COUNT);
    assert_true(fabs(e2.train_loss - e1.train_loss) <= 1e-5 * e1.train_loss);
    assert_true(e2.train_accuracy == e1.train_accuracy);
    /* 5 steps of several buckets each; every step started some before the first layer's
     * gradients existed (while backward was running), except the last step where rank 0 had
     * no image. */
    assert_true(sh.starts >= 5 * 3);
    assert_true(sh.starts_early >= 4);
    assert_true(sh.starts_early < sh.starts);

    /* A loader that is not sharded is refused. */
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    cnnl_loader *plain = NULL;
    assert_ok(cnnl_loader_create(&plain, ds, NULL, 0, &lo));
    assert_status_msg(cnnl_trainer_fit(two[0].trainer, plain, NULL), CNNL_EINVAL, "not sharded");
    cnnl_loader_free(plain);

    for (int r = 0; r < 2; r++)
        run_free(&two[r]);
    run_free(&one);
    pthread_barrier_destroy(&sh.barrier);
    cnnl_dataset_free(ds);
}

static void test_comm_check(void **state)
{
    (void)state;
    shared sh = {0};
    thread_comm tc;
    comm_init(&tc, &sh, 0);
    assert_ok(cnnl_comm_check(&tc.c));
    tc.c.broadcast = NULL;
    assert_status_msg(cnnl_comm_check(&tc.c), CNNL_EINVAL, "broadcast is not set");
    comm_init(&tc, &sh, 2);
    assert_status_msg(cnnl_comm_check(&tc.c), CNNL_EINVAL, "rank 2 of size 2");
    cnnl_model *m = NULL;
    cnnl_train_opts to = cnnl_train_opts_default();
    to.comm = &tc.c;
    cnnl_trainer *t = NULL;
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = SIZE;
    assert_ok(cnnl_report_net_create(&m, &ro));
    assert_status_msg(cnnl_trainer_create(&t, m, NULL, &to), CNNL_EINVAL, "opts.comm");
    assert_null(t);
    cnnl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_sizes),
        cmocka_unit_test(test_two_threads_equal_one),
        cmocka_unit_test(test_comm_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
