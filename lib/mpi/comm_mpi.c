/* libcnnlite-mpi: a cnnl_comm over MPI (see include/cnnlite/mpi.h). */
#include "cnnlite/mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <stdarg.h>

/* Format a message into the library's thread-local error (cnnl_last_error()). */
static cnnl_status report(cnnl_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cnnl_status report(cnnl_status st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnnl_set_error(st, msg);
}

typedef struct mpi_impl {
    MPI_Comm comm;
} mpi_impl;

static MPI_Comm get(const cnnl_comm *c)
{
    return ((const mpi_impl *)c->impl)->comm;
}

static cnnl_status fail(const cnnl_comm *c, const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", rc);
    return report(CNNL_EIO, "MPI rank %d: %s failed: %s", c->rank, what, msg);
}

static cnnl_status check_count(const cnnl_comm *c, const char *what, size_t count)
{
    if (count > (size_t)INT_MAX)
        return report(CNNL_ERANGE, "MPI rank %d: %s of %zu elements; at most %d", c->rank, what,
                           count, INT_MAX);
    return CNNL_OK;
}

static cnnl_status allreduce_sum(const cnnl_comm *c, void *data, size_t count, cnnl_comm_type type)
{
    MPI_Datatype t = type == CNNL_COMM_F32 ? MPI_FLOAT : type == CNNL_COMM_F64 ? MPI_DOUBLE : MPI_INT64_T;
    cnnl_status st = check_count(c, "MPI_Allreduce", count);
    if (st != CNNL_OK)
        return st;
    int rc = MPI_Allreduce(MPI_IN_PLACE, data, (int)count, t, MPI_SUM, get(c));
    return rc == MPI_SUCCESS ? CNNL_OK : fail(c, "MPI_Allreduce", rc);
}

static cnnl_status allreduce_start(const cnnl_comm *c, float *data, size_t count, void **request)
{
    *request = NULL;
    cnnl_status st = check_count(c, "MPI_Iallreduce", count);
    if (st != CNNL_OK)
        return st;
    MPI_Request *r = malloc(sizeof *r);
    if (r == NULL)
        return report(CNNL_ENOMEM, "MPI rank %d: out of memory", c->rank);
    int rc = MPI_Iallreduce(MPI_IN_PLACE, data, (int)count, MPI_FLOAT, MPI_SUM, get(c), r);
    if (rc != MPI_SUCCESS) {
        free(r);
        return fail(c, "MPI_Iallreduce", rc);
    }
    *request = r;
    return CNNL_OK;
}

static void progress(const cnnl_comm *c)
{
    int flag = 0;
    /* Any MPI call lets the library move started reductions on. */
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, get(c), &flag, MPI_STATUS_IGNORE);
}

static cnnl_status allreduce_wait(const cnnl_comm *c, void *request)
{
    if (request == NULL)
        return CNNL_OK;
    int rc = MPI_Wait(request, MPI_STATUS_IGNORE);
    free(request);
    return rc == MPI_SUCCESS ? CNNL_OK : fail(c, "MPI_Wait", rc);
}

static cnnl_status broadcast(const cnnl_comm *c, void *data, size_t bytes, int root)
{
    unsigned char *p = data;
    while (bytes > 0) { /* in pieces below INT_MAX bytes */
        int n = bytes > (size_t)(1 << 30) ? 1 << 30 : (int)bytes;
        int rc = MPI_Bcast(p, n, MPI_BYTE, root, get(c));
        if (rc != MPI_SUCCESS)
            return fail(c, "MPI_Bcast", rc);
        p += n;
        bytes -= (size_t)n;
    }
    return CNNL_OK;
}

static cnnl_status barrier(const cnnl_comm *c)
{
    int rc = MPI_Barrier(get(c));
    return rc == MPI_SUCCESS ? CNNL_OK : fail(c, "MPI_Barrier", rc);
}

static void abort_job(const cnnl_comm *c, const char *message, int exit_code)
{
    fprintf(stderr, "%s\n", message);
    fflush(stderr);
    MPI_Abort(get(c), exit_code ? exit_code : 1);
}

CNNL_API cnnl_status cnnl_mpi_comm_create(cnnl_comm **out, MPI_Comm comm)
{
    if (out == NULL)
        return report(CNNL_EINVAL, "cnnl_mpi_comm_create: out is NULL");
    *out = NULL;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return report(CNNL_ESTATE, "cnnl_mpi_comm_create: MPI is %s", finalized ? "finalized" : "not initialised");
    cnnl_comm *c = calloc(1, sizeof *c);
    mpi_impl *m = calloc(1, sizeof *m);
    if (c == NULL || m == NULL) {
        free(c);
        free(m);
        return report(CNNL_ENOMEM, "cnnl_mpi_comm_create: out of memory");
    }
    c->impl = m;
    int rc = MPI_Comm_dup(comm, &m->comm);
    if (rc != MPI_SUCCESS) {
        cnnl_status st = fail(c, "MPI_Comm_dup", rc);
        free(m);
        free(c);
        return st;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    c->allreduce_sum = allreduce_sum;
    c->allreduce_start = allreduce_start;
    c->progress = progress;
    c->allreduce_wait = allreduce_wait;
    c->broadcast = broadcast;
    c->barrier = barrier;
    c->abort = abort_job;
    *out = c;
    return CNNL_OK;
}

CNNL_API void cnnl_mpi_comm_free(cnnl_comm *comm)
{
    if (comm == NULL)
        return;
    mpi_impl *m = comm->impl;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&m->comm);
    free(m);
    free(comm);
}
