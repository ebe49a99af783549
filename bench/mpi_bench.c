/*
 * mpi_bench: the figures of docs/scaling.md. Run with mpirun -np N (N = 1 gives the
 * single-process step):
 *   mpirun -np 2 --allow-run-as-root build/bench/mpi_bench [--size 512] [--batch 32]
 *          [--steps 6] [--reps 30] [--threads 1] [--batchnorm] [--sync-bn]
 * prints the median time of a sum-allreduce of the report network's gradient (its trainable
 * parameter count at --size, float32; the ranks' mean time per repetition) and the median
 * time of a data-parallel training step (global batch --batch, each rank its share, buckets
 * reduced during backward), the first step left out. --batchnorm trains the network with batch
 * norm, --sync-bn synchronises its statistics (cnnl_trainer_set_sync_bn; with -np 1 over a
 * one-process communicator, to time the synchronised code alone); with --batchnorm the
 * program also times the reductions synchronised batch norm adds to a step on their own (per
 * BatchNorm2d layer of C channels, float64 sums of C + 2, C + 1 and 2C + 1 values, as
 * lib/train/dist.c sends them) over --reps repetitions.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cnnlite/cnnlite.h>
#include <cnnlite/mpi.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct steps {
    double *t, *cpu;
    int n;
    double last, last_cpu;
} steps;

static int on_batch(cnnl_trainer *t, const cnnl_batch_info *info, void *user)
{
    (void)t;
    (void)info;
    steps *s = user;
    double x = now(), c = cpu_now();
    s->cpu[s->n] = c - s->last_cpu;
    s->t[s->n++] = x - s->last;
    s->last = x;
    s->last_cpu = c;
    return CNNL_OK;
}

static int die(const cnnl_comm *c, const char *what)
{
    char msg[1200];
    snprintf(msg, sizeof msg, "mpi_bench (rank %d): %s: %s", c ? c->rank : 0, what, cnnl_last_error());
    if (c)
        c->abort(c, msg, 1);
    fprintf(stderr, "%s\n", msg);
    return 1;
}

int main(int argc, char **argv)
{
    int size = 512, batch = 32, nsteps = 6, reps = 30, threads = 1;
    bool batchnorm = false, sync_bn = false;
    MPI_Init(&argc, &argv);
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--batchnorm") == 0 || strcmp(argv[i], "--sync-bn") == 0) {
            batchnorm = true;
            sync_bn = sync_bn || strcmp(argv[i], "--sync-bn") == 0;
            i--;
            continue;
        }
        int v = i + 1 < argc ? atoi(argv[i + 1]) : 0;
        if (strcmp(argv[i], "--size") == 0) size = v;
        else if (strcmp(argv[i], "--batch") == 0) batch = v;
        else if (strcmp(argv[i], "--steps") == 0) nsteps = v;
        else if (strcmp(argv[i], "--reps") == 0) reps = v;
        else if (strcmp(argv[i], "--threads") == 0) threads = v;
    }
    if (size < 32 || size % 32 || batch < 1 || nsteps < 2 || reps < 1 || threads < 1) {
        fprintf(stderr, "mpi_bench: bad option value\n");
        MPI_Finalize();
        return 2;
    }
    cnnl_set_num_threads(threads);
    cnnl_comm *comm = NULL;
    if (cnnl_mpi_comm_create(&comm, MPI_COMM_WORLD) != CNNL_OK)
        return die(NULL, "cnnl_mpi_comm_create");
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = size;
    ro.dropout = 0.0f;
    ro.batchnorm = batchnorm;
    cnnl_model *model = NULL;
    if (cnnl_report_net_create(&model, &ro) != CNNL_OK)
        return die(comm, "model");
    size_t np = cnnl_model_num_params(model);

    /* The gradient allreduce alone. */
    float *g = calloc(np, sizeof *g);
    double *t = calloc((size_t)(reps > nsteps ? reps : nsteps), sizeof *t);
    double *cpu = calloc((size_t)(reps > nsteps ? reps : nsteps), sizeof *cpu);
    if (!g || !t || !cpu)
        return die(comm, "memory");
    for (int r = -3; r < reps; r++) {
        comm->barrier(comm);
        double t0 = now(), c0 = cpu_now();
        if (comm->allreduce_sum(comm, g, np, CNNL_COMM_F32) != CNNL_OK)
            return die(comm, "allreduce");
        double dt = now() - t0;
        if (r >= 0)
            cpu[r] = cpu_now() - c0;
        comm->allreduce_sum(comm, &dt, 1, CNNL_COMM_F64); /* mean over the ranks */
        if (r >= 0)
            t[r] = dt / comm->size;
    }
    double ar = median(t, reps), ar_cpu = median(cpu, reps);
    free(g);

    /* The reductions of synchronised batch norm in one step, alone: for each BatchNorm2d layer
     * (channels of the report network's convolutions) C + 2 and C + 1 doubles in forward,
     * 2C + 1 in backward. */
    static const int widths[] = {16, 32, 64, 128};
    double bn_wall = 0, bn_cpu = 0;
    size_t bn_bytes = 0;
    int bn_calls = 0;
    if (batchnorm) {
        double red[2 * 128 + 2] = {0};
        for (int r = -3; r < reps; r++) {
            comm->barrier(comm);
            double t0 = now(), c0 = cpu_now();
            bn_bytes = 0;
            bn_calls = 0;
            for (int pass = 0; pass < 2; pass++)
                for (int k = 0; k < 4; k++) {
                    int c = widths[pass == 0 ? k : 3 - k];
                    size_t counts[2] = {(size_t)c + 2, (size_t)c + 1};
                    for (int j = 0; j < (pass == 0 ? 2 : 1); j++) {
                        size_t n = pass == 0 ? counts[j] : 2 * (size_t)c + 1;
                        if (comm->allreduce_sum(comm, red, n, CNNL_COMM_F64) != CNNL_OK)
                            return die(comm, "allreduce");
                        bn_bytes += n * sizeof(double);
                        bn_calls++;
                    }
                }
            double dt = now() - t0;
            if (r >= 0)
                cpu[r] = cpu_now() - c0;
            comm->allreduce_sum(comm, &dt, 1, CNNL_COMM_F64);
            if (r >= 0)
                t[r] = dt / comm->size;
        }
        bn_wall = median(t, reps);
        bn_cpu = median(cpu, reps);
    }

    /* Training steps. */
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = (size_t)batch * (size_t)nsteps;
    cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
    dopt.size = size;
    cnnl_dataset *ds = NULL;
    if (cnnl_dataset_synthetic(&ds, &so, &dopt) != CNNL_OK)
        return die(comm, "synthetic data");
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = batch;
    lo.shard_count = comm->size;
    lo.shard_index = comm->rank;
    cnnl_loader *train = NULL;
    if (cnnl_loader_create(&train, ds, NULL, 0, &lo) != CNNL_OK)
        return die(comm, "loader");
    steps s = {t, cpu, 0, 0, 0};
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = 1;
    to.progress = CNNL_PROGRESS_OFF;
    /* One process trains without a communicator, except with --sync-bn: then over a
     * one-process communicator, so that the synchronised layers' code runs (its reductions
     * are identities) and its cost shows without any waiting for another process. */
    to.comm = comm->size > 1 || sync_bn ? comm : NULL;
    to.on_batch = on_batch;
    to.user = &s;
    cnnl_trainer *tr = NULL;
    if (cnnl_trainer_create(&tr, model, NULL, &to) != CNNL_OK)
        return die(comm, "trainer");
    if (cnnl_trainer_set_sync_bn(tr, sync_bn) != CNNL_OK)
        return die(comm, "sync-bn");
    comm->barrier(comm);
    s.last = now();
    s.last_cpu = cpu_now();
    if (cnnl_trainer_fit(tr, train, NULL) != CNNL_OK)
        return die(comm, "training");
    double step = median(t + 1, s.n - 1), step_cpu = median(cpu + 1, s.n - 1);
    if (comm->rank == 0) {
        printf("ranks %d, threads per rank %d, report network at %dx%d%s: %zu parameters (%.2f MB of float32 gradients)\n",
               comm->size, threads, size, size, !batchnorm ? "" : sync_bn ? " with synchronised batch norm"
               : " with batch norm per rank", np, (double)np * 4 / 1e6);
        printf("allreduce (sum) of the gradients: median %.2f ms wall, %.2f ms CPU of rank 0, over %d "
               "repetitions\n", ar * 1e3, ar_cpu * 1e3, reps);
        printf("training step, global batch %d (%d or %d images per rank): median %.3f s wall, %.3f s CPU "
               "of rank 0, over %d steps (first left out)\n", batch, batch / comm->size,
               (batch + comm->size - 1) / comm->size, step, step_cpu, s.n - 1);
        if (batchnorm)
            printf("synchronised batch norm's reductions of one step alone (%d allreduces, %zu bytes): "
                   "median %.1f us wall, %.1f us CPU of rank 0, over %d repetitions\n", bn_calls, bn_bytes,
                   bn_wall * 1e6, bn_cpu * 1e6, reps);
    }
    cnnl_trainer_free(tr);
    cnnl_loader_free(train);
    cnnl_dataset_free(ds);
    cnnl_model_free(model);
    free(t);
    free(cpu);
    cnnl_mpi_comm_free(comm);
    MPI_Finalize();
    return 0;
}
