/*
 * Data-parallel training over MPI, run by mpirun -np 2 (see mpi.sh):
 *   test_mpi equiv   N processes equal one process to 1e-5 relative after an epoch of 5
 *                    steps (the last batch has one image, so one process has none), two
 *                    distributed runs are bit-identical, sharded evaluation equals the
 *                    unsharded one, a weight difference between processes is detected; the
 *                    same equivalence with label smoothing and class weights;
 *   test_mpi syncbn  batch norm with synchronised statistics: N processes equal one process
 *                    to 1e-5 relative, weights and every running_mean / running_var; the
 *                    running statistics are equal on all processes after every step; two
 *                    runs bit-identical; over a one-process communicator bit-identical to no
 *                    synchronisation; without synchronisation the running statistics differ
 *                    between the processes and from one process's;
 *   test_mpi fail    rank 1 fails in its third step; the program ends the job through
 *                    cnnl_comm::abort with a message naming the rank and the cause.
 * Every check prints what it compared; any failure exits with status 1 on that rank.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cnnlite/cnnlite.h>
#include <cnnlite/mpi.h>

static int rank_;
static int failures;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", rank_, __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, " [%s]\n", cnnl_last_error());                        \
            failures++;                                                           \
        }                                                                         \
    } while (0)

#define OK(call) CHECK((call) == CNNL_OK, "%s", #call)

enum { COUNT = 29, BATCH = 7, SIZE = 64, SEED = 3 };

typedef struct run {
    cnnl_loader *train;
    cnnl_model *model;
    cnnl_optimizer *opt; /* SGD when asked for, else NULL (the trainer's Adam) */
    cnnl_trainer *trainer;
} run;

/* What a run trains beyond the defaults of train(). */
typedef struct setup {
    bool batchnorm, sync_bn;
    bool sgd;                   /* SGD with momentum instead of Adam (see syncbn()) */
    double label_smoothing;
    const float *class_weights; /* 4 classes */
    cnnl_batch_callback cb;
    void *user;                 /* for cb; NULL: the model */
} setup;

static int corrupt_rank1(cnnl_trainer *t, const cnnl_batch_info *info, void *user)
{
    (void)t;
    cnnl_model *m = user;
    if (rank_ == 1 && info->batch == 1) { /* change one weight on rank 1 only */
        cnnl_param_info p;
        cnnl_model_state_at(m, 0, &p);
        p.data[0] += 1e-3f;
    }
    return CNNL_OK;
}

static int fail_rank1(cnnl_trainer *t, const cnnl_batch_info *info, void *user)
{
    (void)t;
    (void)user;
    if (rank_ == 1 && info->batch == 2)
        return cnnl_set_error(CNNL_EIO, "cannot read glioma/0042.jpg (simulated failure)");
    return CNNL_OK;
}

/* One epoch on the whole set, over @p comm (NULL: one process). */
static cnnl_status train_with(run *r, const cnnl_dataset *ds, const cnnl_comm *comm, const setup *su)
{
    memset(r, 0, sizeof *r);
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    lo.shuffle = true;
    lo.seed = SEED;
    if (comm) {
        lo.shard_count = comm->size;
        lo.shard_index = comm->rank;
    }
    OK(cnnl_loader_create(&r->train, ds, NULL, 0, &lo));
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = SIZE;
    ro.seed = SEED;
    ro.dropout = 0.0f;
    ro.batchnorm = su->batchnorm;
    OK(cnnl_report_net_create(&r->model, &ro));
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = 1;
    to.lr = 1e-3;
    to.progress = CNNL_PROGRESS_OFF;
    to.comm = comm;
    to.comm_bucket_bytes = 64 << 10; /* several buckets */
    to.on_batch = su->cb;
    to.user = su->user ? su->user : r->model;
    to.label_smoothing = su->label_smoothing;
    to.class_weights = su->class_weights;
    to.num_class_weights = su->class_weights ? 4 : 0;
    if (su->sgd) {
        cnnl_sgd_opts so = cnnl_sgd_opts_default();
        so.lr = 0.01;
        so.momentum = 0.9;
        OK(cnnl_optimizer_sgd(&r->opt, r->model, &so));
    }
    OK(cnnl_trainer_create(&r->trainer, r->model, r->opt, &to));
    OK(cnnl_trainer_set_sync_bn(r->trainer, su->sync_bn));
    return cnnl_trainer_fit(r->trainer, r->train, NULL);
}

static cnnl_status train(run *r, const cnnl_dataset *ds, const cnnl_comm *comm, cnnl_batch_callback cb)
{
    setup su = {.cb = cb};
    return train_with(r, ds, comm, &su);
}

static void run_free(run *r)
{
    cnnl_trainer_free(r->trainer);
    cnnl_optimizer_free(r->opt);
    cnnl_model_free(r->model);
    cnnl_loader_free(r->train);
}

/* Over every trainable tensor: the largest ||a - b|| / ||b|| (2-norms), and the largest
 * max|a - b| / max|b| in *elem. */
static double max_rel_diff(cnnl_model *a, cnnl_model *b, double *elem)
{
    double worst = 0;
    *elem = 0;
    for (size_t i = 0; i < cnnl_model_state_count(a); i++) {
        cnnl_param_info pa, pb;
        cnnl_model_state_at(a, i, &pa);
        cnnl_model_state_at(b, i, &pb);
        if (!pa.trainable)
            continue;
        double d = 0, m = 0, d2 = 0, b2 = 0;
        for (size_t j = 0; j < pa.numel; j++) {
            double x = (double)pa.data[j] - (double)pb.data[j];
            d = fmax(d, fabs(x));
            m = fmax(m, fabs((double)pb.data[j]));
            d2 += x * x;
            b2 += (double)pb.data[j] * (double)pb.data[j];
        }
        if (getenv("TEST_MPI_VERBOSE") && rank_ == 0)
            printf("  %s: max diff %g, max %g, norm ratio %g\n", pa.name, d, m, sqrt(d2 / b2));
        *elem = fmax(*elem, m > 0 ? d / m : d);
        worst = fmax(worst, b2 > 0 ? sqrt(d2 / b2) : sqrt(d2));
    }
    return worst;
}

/* FNV-1a over every state tensor, parameters and buffers (running statistics, counts);
 * @p buffers_only: the buffers alone. */
static uint64_t state_hash(cnnl_model *m, bool buffers_only)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        cnnl_model_state_at(m, i, &p);
        if (buffers_only && p.trainable)
            continue;
        const unsigned char *b = p.dtype == CNNL_DTYPE_I64 ? (const unsigned char *)p.data_i64
                                                            : (const unsigned char *)p.data;
        for (size_t j = 0; j < p.numel * (p.dtype == CNNL_DTYPE_I64 ? 8 : 4); j++)
            h = (h ^ b[j]) * 1099511628211ull;
    }
    return h;
}

/* As max_rel_diff() over the running_mean and running_var tensors; *n receives their count
 * and *nbt_equal whether every num_batches_tracked agrees. */
static double max_rel_diff_stats(cnnl_model *a, cnnl_model *b, double *elem, int *n, bool *nbt_equal)
{
    double worst = 0;
    *elem = 0;
    *n = 0;
    *nbt_equal = true;
    for (size_t i = 0; i < cnnl_model_state_count(a); i++) {
        cnnl_param_info pa, pb;
        cnnl_model_state_at(a, i, &pa);
        cnnl_model_state_at(b, i, &pb);
        if (pa.dtype == CNNL_DTYPE_I64) {
            *nbt_equal = *nbt_equal && pa.data_i64[0] == pb.data_i64[0];
            continue;
        }
        if (!strstr(pa.name, "running_mean") && !strstr(pa.name, "running_var"))
            continue;
        (*n)++;
        double d = 0, m = 0, d2 = 0, b2 = 0;
        for (size_t j = 0; j < pa.numel; j++) {
            double x = (double)pa.data[j] - (double)pb.data[j];
            d = fmax(d, fabs(x));
            m = fmax(m, fabs((double)pb.data[j]));
            d2 += x * x;
            b2 += (double)pb.data[j] * (double)pb.data[j];
        }
        if (getenv("TEST_MPI_VERBOSE") && rank_ == 0)
            printf("  %s: max diff %g, max %g, norm ratio %g\n", pa.name, d, m, sqrt(d2 / b2));
        *elem = fmax(*elem, m > 0 ? d / m : d);
        worst = fmax(worst, b2 > 0 ? sqrt(d2 / b2) : sqrt(d2));
    }
    return worst;
}

/* After every step: whether this process's buffers equal rank 0's (a collective). */
typedef struct stats_check {
    const cnnl_comm *comm;
    run *r;               /* the run being trained (its model) */
    int steps, differing; /* steps seen; steps after which some process's buffers differed */
} stats_check;

static int compare_buffers(cnnl_trainer *t, const cnnl_batch_info *info, void *user)
{
    (void)t;
    (void)info;
    stats_check *c = user;
    uint64_t mine = state_hash(c->r->model, true), root = mine;
    int64_t differ = 0;
    if (c->comm->broadcast(c->comm, &root, sizeof root, 0) != CNNL_OK)
        return CNNL_EIO;
    differ = root != mine;
    if (c->comm->allreduce_sum(c->comm, &differ, 1, CNNL_COMM_I64) != CNNL_OK)
        return CNNL_EIO;
    c->steps++;
    c->differing += differ > 0;
    return CNNL_OK;
}

/* The batch-norm network over @p comm, buffers compared after every step. */
static cnnl_status train_checked(run *r, const cnnl_dataset *ds, const cnnl_comm *comm, bool sync,
                                 stats_check *chk)
{
    memset(chk, 0, sizeof *chk);
    chk->comm = comm;
    chk->r = r;
    setup su = {.batchnorm = true, .sync_bn = sync, .sgd = true, .cb = compare_buffers, .user = chk};
    return train_with(r, ds, comm, &su);
}

static int equiv(const cnnl_comm *comm, const cnnl_dataset *ds)
{
    run one, two, again;
    OK(train(&one, ds, NULL, NULL));
    OK(train(&two, ds, comm, NULL));
    double elem = 0, rel = max_rel_diff(two.model, one.model, &elem);
    cnnl_epoch_stats e1, e2;
    OK(cnnl_history_at(cnnl_trainer_history(one.trainer), 0, &e1));
    OK(cnnl_history_at(cnnl_trainer_history(two.trainer), 0, &e2));
    if (rank_ == 0)
        printf("%d processes vs 1 after 5 steps: relative weight difference %.3g (largest "
               "||a-b||/||b|| of a tensor; largest max|a-b|/max|b| %.3g); train loss "
               "%.9g vs %.9g, %lld vs %lld correct of %lld vs %lld images\n", comm->size, rel, elem,
               e2.train_loss, e1.train_loss, (long long)(e2.train_accuracy * (double)e2.train_images / 100.0 + 0.5),
               (long long)(e1.train_accuracy * (double)e1.train_images / 100.0 + 0.5),
               (long long)e2.train_images, (long long)e1.train_images);
    CHECK(rel > 0 && rel <= 1e-5, "weights differ by %g relative (expected (0, 1e-5]: another "
          "summation order, the same result)", rel);
    CHECK(fabs(e2.train_loss - e1.train_loss) <= 1e-5 * fabs(e1.train_loss), "train loss %.9g vs %.9g",
          e2.train_loss, e1.train_loss);
    CHECK(e2.train_images == COUNT && e1.train_images == COUNT, "train images %lld / %lld",
          (long long)e2.train_images, (long long)e1.train_images);
    CHECK(e2.train_accuracy == e1.train_accuracy, "train accuracy %g vs %g", e2.train_accuracy,
          e1.train_accuracy);

    /* Two distributed runs: bit-identical weights, on every process. */
    OK(train(&again, ds, comm, NULL));
    uint64_t h1 = 0, h2 = 0, h0 = 0;
    OK(cnnl_model_params_hash(two.model, &h1));
    OK(cnnl_model_params_hash(again.model, &h2));
    h0 = h1;
    OK(comm->broadcast(comm, &h0, sizeof h0, 0));
    CHECK(h1 == h2, "two runs over %d processes differ: %016llx vs %016llx", comm->size,
          (unsigned long long)h1, (unsigned long long)h2);
    CHECK(h1 == h0, "rank %d's weights differ from rank 0's", rank_);
    if (rank_ == 0)
        printf("two runs over %d processes: weights hash %016llx and %016llx\n", comm->size,
               (unsigned long long)h1, (unsigned long long)h2);

    /* Sharded evaluation equals the whole set's on one process. */
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    cnnl_loader *all = NULL, *part = NULL;
    OK(cnnl_loader_create(&all, ds, NULL, 0, &lo));
    lo.shard_count = comm->size;
    lo.shard_index = comm->rank;
    OK(cnnl_loader_create(&part, ds, NULL, 0, &lo));
    cnnl_confusion *ca = NULL, *cp = NULL;
    OK(cnnl_confusion_create(&ca, 4));
    OK(cnnl_confusion_create(&cp, 4));
    double la = 0, aa = 0, lp = 0, ap = 0;
    OK(cnnl_evaluate(two.model, all, CNNL_LOSS_CROSS_ENTROPY, ca, &la, &aa));
    OK(cnnl_evaluate_comm(two.model, part, CNNL_LOSS_CROSS_ENTROPY, cp, comm, &lp, &ap));
    CHECK(aa == ap, "accuracy %g (one process) vs %g (sharded)", aa, ap);
    CHECK(fabs(la - lp) <= 1e-6 * fabs(la), "loss %.9g (one process) vs %.9g (sharded)", la, lp);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            CHECK(cnnl_confusion_get(ca, i, j) == cnnl_confusion_get(cp, i, j), "confusion[%d][%d]", i, j);
    if (rank_ == 0)
        printf("evaluation: one process loss %.9g accuracy %.4g%%; sharded loss %.9g accuracy %.4g%%\n",
               la, aa, lp, ap);
    cnnl_confusion_free(ca);
    cnnl_confusion_free(cp);
    cnnl_loader_free(all);
    cnnl_loader_free(part);

    /* A weight changed on rank 1 only is caught by the end-of-epoch checksum, on every rank. */
    run bad;
    cnnl_status st = train(&bad, ds, comm, corrupt_rank1);
    CHECK(st == CNNL_ESTATE, "a weight differing on rank 1 gave status %d, not CNNL_ESTATE", (int)st);
    CHECK(strstr(cnnl_last_error(), "first rank 1") != NULL, "message '%s' names rank 1",
          cnnl_last_error());
    if (rank_ == 0)
        printf("weight difference on rank 1: %s\n", cnnl_last_error());
    run_free(&bad);
    run_free(&one);
    run_free(&two);
    run_free(&again);

    /* Label smoothing and class weights: each process's loss is a weighted mean over its part,
     * so its share of the global batch is its part of the weight sum. */
    static const float weights[4] = {1.0f, 2.5f, 0.5f, 1.5f};
    setup su = {.label_smoothing = 0.1, .class_weights = weights};
    run lone, ltwo;
    OK(train_with(&lone, ds, NULL, &su));
    OK(train_with(&ltwo, ds, comm, &su));
    rel = max_rel_diff(ltwo.model, lone.model, &elem);
    OK(cnnl_history_at(cnnl_trainer_history(lone.trainer), 0, &e1));
    OK(cnnl_history_at(cnnl_trainer_history(ltwo.trainer), 0, &e2));
    if (rank_ == 0)
        printf("label smoothing 0.1 and class weights: %d processes vs 1 after 5 steps: relative weight "
               "difference %.3g (element %.3g); train loss %.9g vs %.9g\n", comm->size, rel, elem,
               e2.train_loss, e1.train_loss);
    CHECK(rel > 0 && rel <= 1e-5, "with label smoothing and class weights the weights differ by %g "
          "relative (expected (0, 1e-5])", rel);
    CHECK(fabs(e2.train_loss - e1.train_loss) <= 1e-5 * fabs(e1.train_loss), "train loss %.9g vs %.9g "
          "with label smoothing and class weights", e2.train_loss, e1.train_loss);
    run_free(&lone);
    run_free(&ltwo);
    return failures;
}

/* Synchronised batch norm (cnnl_trainer_set_sync_bn). The runs use SGD: the report network's
 * convolutions have biases, and a bias right before a BatchNorm2d has a true gradient of 0,
 * which every summation order computes as different rounding noise; Adam divides by that
 * noise's own size and moves such biases by ~lr per step whatever it is, so under Adam those
 * biases (and the running means after them) differ between any two summation orders, one
 * process or several, synchronised or not. */
static int syncbn(const cnnl_comm *comm, const cnnl_dataset *ds)
{
    /* One process: without a communicator the call does nothing; over a one-process
     * communicator the synchronised layers reduce (an identity) and give the same bits. */
    cnnl_comm *self = NULL;
    OK(cnnl_mpi_comm_create(&self, MPI_COMM_SELF));
    run plain, nocomm, selfoff, selfon;
    setup off = {.batchnorm = true, .sgd = true}, on = {.batchnorm = true, .sync_bn = true, .sgd = true};
    OK(train_with(&plain, ds, NULL, &off));
    OK(train_with(&nocomm, ds, NULL, &on));
    OK(train_with(&selfoff, ds, self, &off));
    OK(train_with(&selfon, ds, self, &on));
    uint64_t hp = state_hash(plain.model, false), hn = state_hash(nocomm.model, false);
    uint64_t hf = state_hash(selfoff.model, false), hs = state_hash(selfon.model, false);
    if (rank_ == 0)
        printf("one process, batch norm: state hash %016llx without a communicator, %016llx with "
               "sync requested there; over a 1-process communicator %016llx off, %016llx synchronised\n",
               (unsigned long long)hp, (unsigned long long)hn, (unsigned long long)hf, (unsigned long long)hs);
    CHECK(hn == hp, "sync requested without a communicator changed the run");
    CHECK(hs == hf, "synchronised batch norm over one process differs from none (%016llx vs %016llx)",
          (unsigned long long)hs, (unsigned long long)hf);
    CHECK(hf == hp, "a one-process communicator changed the run");

    /* N processes, synchronised: equal to one process, running statistics included, and equal
     * on every process after every step. */
    run two, again, nosync;
    stats_check c2, c3;
    OK(train_checked(&two, ds, comm, true, &c2));
    double elem = 0, rel = max_rel_diff(two.model, plain.model, &elem);
    double selem = 0;
    int nstats = 0;
    bool nbt = false;
    double srel = max_rel_diff_stats(two.model, plain.model, &selem, &nstats, &nbt);
    cnnl_epoch_stats e1, e2;
    OK(cnnl_history_at(cnnl_trainer_history(plain.trainer), 0, &e1));
    OK(cnnl_history_at(cnnl_trainer_history(two.trainer), 0, &e2));
    if (rank_ == 0)
        printf("synchronised batch norm, %d processes vs 1 after 5 steps: relative weight difference "
               "%.3g (element %.3g); %d running statistics: %.3g (element %.3g); train loss %.9g vs "
               "%.9g; buffers differed between processes after %d of %d steps\n", comm->size, rel, elem,
               nstats, srel, selem, e2.train_loss, e1.train_loss, c2.differing, c2.steps);
    CHECK(rel > 0 && rel <= 1e-5, "weights differ by %g relative (expected (0, 1e-5])", rel);
    CHECK(nstats == 8, "%d running_mean / running_var tensors compared, expected 8", nstats);
    CHECK(srel > 0 && srel <= 1e-5 && selem <= 1e-5, "running statistics differ by %g (element %g) "
          "relative (expected (0, 1e-5])", srel, selem);
    CHECK(nbt, "num_batches_tracked differs from one process's");
    CHECK(fabs(e2.train_loss - e1.train_loss) <= 1e-5 * fabs(e1.train_loss), "train loss %.9g vs %.9g",
          e2.train_loss, e1.train_loss);
    CHECK(c2.steps == 5 && c2.differing == 0, "synchronised: buffers differed between processes "
          "after %d of %d steps", c2.differing, c2.steps);

    /* Two synchronised runs: bit-identical, everything on every process. */
    OK(train_with(&again, ds, comm, &on));
    uint64_t h1 = state_hash(two.model, false), h2 = state_hash(again.model, false), h0 = h1;
    OK(comm->broadcast(comm, &h0, sizeof h0, 0));
    CHECK(h1 == h2, "two synchronised runs differ: %016llx vs %016llx", (unsigned long long)h1,
          (unsigned long long)h2);
    CHECK(h1 == h0, "rank %d's state differs from rank 0's", rank_);
    if (rank_ == 0)
        printf("two synchronised runs over %d processes: state hash %016llx and %016llx\n", comm->size,
               (unsigned long long)h1, (unsigned long long)h2);

    /* Without synchronisation the statistics are per process: they differ between the
     * processes during the epoch and, after it (rank 0's copied to all), from one process's. */
    OK(train_checked(&nosync, ds, comm, false, &c3));
    double urel = max_rel_diff_stats(nosync.model, plain.model, &selem, &nstats, &nbt);
    if (rank_ == 0)
        printf("batch norm per process, %d processes vs 1: running statistics differ by %.3g (element "
               "%.3g); buffers differed between processes after %d of %d steps\n", comm->size, urel,
               selem, c3.differing, c3.steps);
    CHECK(urel > 1e-3, "without synchronisation the running statistics differ by only %g from one "
          "process's", urel);
    CHECK(c3.differing >= 4, "without synchronisation the buffers differed after only %d of %d steps",
          c3.differing, c3.steps);

    run_free(&plain);
    run_free(&nocomm);
    run_free(&selfoff);
    run_free(&selfon);
    run_free(&two);
    run_free(&again);
    run_free(&nosync);
    cnnl_mpi_comm_free(self);
    return failures;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    cnnl_set_num_threads(1);
    cnnl_comm *comm = NULL;
    if (cnnl_mpi_comm_create(&comm, MPI_COMM_WORLD) != CNNL_OK) {
        fprintf(stderr, "cnnl_mpi_comm_create: %s\n", cnnl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    rank_ = comm->rank;
    CHECK(comm->size >= 2, "run with mpirun -np 2 or more (size %d)", comm->size);
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = COUNT;
    cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
    dopt.size = SIZE;
    cnnl_dataset *ds = NULL;
    OK(cnnl_dataset_synthetic(&ds, &so, &dopt));
    if (argc > 1 && strcmp(argv[1], "fail") == 0) {
        run r;
        cnnl_status st = train(&r, ds, comm, fail_rank1);
        if (st != CNNL_OK) {
            char msg[1200];
            snprintf(msg, sizeof msg, "test_mpi (rank %d of %d): %s", comm->rank, comm->size,
                     cnnl_last_error());
            comm->abort(comm, msg, 3);
        }
        failures++; /* not reached when rank 1 fails as it should */
        fprintf(stderr, "rank %d: FAIL the run went on after rank 1's failure\n", rank_);
        run_free(&r);
    } else if (argc > 1 && strcmp(argv[1], "syncbn") == 0) {
        if (failures == 0)
            syncbn(comm, ds);
    } else if (failures == 0) {
        equiv(comm, ds);
    }
    cnnl_dataset_free(ds);
    int all = failures;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    cnnl_mpi_comm_free(comm);
    MPI_Finalize();
    if (rank_ == 0)
        printf("%s: %d failed checks over all ranks\n", all ? "FAIL" : "PASS", all);
    return all ? 1 : 0;
}
