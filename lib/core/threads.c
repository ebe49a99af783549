/*
 * Thread control. The library runs its loops on OpenMP threads and keeps BLAS at one thread
 * per caller, so the process never runs more than cnnl_get_num_threads() compute threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cnnlite/threads.h"
#include "core/internal.h"

#ifdef CNNL_HAVE_OPENBLAS
void openblas_set_num_threads(int num_threads);
#endif

enum { MAX_THREADS = 1024 };

static atomic_int num_threads; /* 0 = not yet initialised */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void init_blas(void)
{
#ifdef CNNL_HAVE_OPENBLAS
    openblas_set_num_threads(1);
#endif
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static int default_threads(void)
{
    const char *env = getenv("CNNL_NUM_THREADS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= MAX_THREADS)
            return (int)v;
    }
    return online_cpus();
}

CNNL_API cnnl_status cnnl_set_num_threads(int n)
{
    if (n < 0 || n > MAX_THREADS)
        return cnnl__error(CNNL_EINVAL, "cnnl_set_num_threads: %d threads requested; use 0 (all processors) to %d",
                           n, MAX_THREADS);
    pthread_once(&blas_once, init_blas);
    atomic_store(&num_threads, n == 0 ? online_cpus() : n);
    return CNNL_OK;
}

CNNL_API int cnnl_get_num_threads(void)
{
    return cnnl__num_threads();
}

int cnnl__num_threads(void)
{
    pthread_once(&blas_once, init_blas);
    int n = atomic_load(&num_threads);
    if (n == 0) {
        int expected = 0;
        n = default_threads();
        if (!atomic_compare_exchange_strong(&num_threads, &expected, n))
            n = expected;
    }
    return n;
}
