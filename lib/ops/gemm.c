/*
 * GEMM dispatch. BLAS stays single-threaded (see core/threads.c); large products are split
 * into column blocks (or row blocks when N is small) that run on the library's threads. The
 * split depends only on the shape and the thread count, so results are reproducible.
 */
#include <cblas.h>
#include <stdlib.h>
#ifdef CNNL_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#endif

#include "cnnlite/tensor.h"
#include "core/internal.h"
#include "core/tensor_impl.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

/* Multiply-adds from which a product runs on oneDNN's sgemm (in builds with oneDNN). */
#define DNNL_MIN_WORK (1L << 20)

void cnnl__sgemm_serial(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
#ifdef CNNL_HAVE_DNNL
    /* oneDNN's sgemm picks its kernel for the vector unit this CPU has at run time, where the
     * BLAS library may run a narrower one (OpenBLAS 0.3.21 takes some recent Xeons for SSE3
     * Prescotts). It stays on the calling thread: inside a parallel region oneDNN runs serially,
     * and outside one the thread's team is set to 1 for the call. Small products stay on BLAS:
     * oneDNN gains nothing there and takes a packing buffer from malloc on every call. */
    if ((long)m * (long)n * (long)k >= DNNL_MIN_WORK && cnnl__dnnl_enabled()) {
        bool top = !omp_in_parallel();
        int saved = top ? omp_get_max_threads() : 1;
        if (saved != 1)
            omp_set_num_threads(1);
        dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta,
                                      c, ldc);
        if (saved != 1)
            omp_set_num_threads(saved);
        if (st == dnnl_success)
            return;
        /* dnnl_sgemm only fails on arguments the callers never pass; BLAS is the fallback */
    }
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* OpenBLAS takes a work buffer of BLAS_BUFFER_BYTES on the first product of a thread whose
 * buffers are all in use, and when malloc fails it retries forever (under `ulimit -v`, say).
 * Reserving that address space once per thread count, up front, turns the hang into
 * CNNL_ENOMEM. Virtual memory only: the probe's pages are never touched. */
#define BLAS_BUFFER_BYTES ((size_t)128 << 20)

static int blas_reserved; /* the largest thread count whose buffers were found to fit */

cnnl_status cnnl__blas_reserve(const char *who)
{
#ifdef CNNL_HAVE_OPENBLAS
    int threads = cnnl__num_threads();
    if (__atomic_load_n(&blas_reserved, __ATOMIC_ACQUIRE) >= threads)
        return CNNL_OK;
    void *probe[1024];
    int n = threads < 1024 ? threads : 1024, got = 0;
    for (; got < n; got++) {
        /* volatile: a compiler may otherwise elide an allocation that is only tested */
        void *volatile p = malloc(BLAS_BUFFER_BYTES + 4096);
        if (!p)
            break;
        probe[got] = p;
    }
    for (int i = 0; i < got; i++)
        free(probe[i]);
    if (got < n)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory: OpenBLAS needs %zu MiB of address space per "
                           "thread for its work buffers (%d threads) and cannot have it", who,
                           BLAS_BUFFER_BYTES >> 20, n);
    __atomic_store_n(&blas_reserved, n, __ATOMIC_RELEASE);
#else
    (void)who;
#endif
    return CNNL_OK;
}

/* Below this many multiply-adds a product is not worth splitting. */
#define SPLIT_MIN_WORK (1L << 20)

void cnnl__sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc)
{
    int threads = cnnl__num_threads();
    long work = (long)m * (long)n * (long)(k > 0 ? k : 1);
    if (threads == 1 || work < SPLIT_MIN_WORK || (m < 2 && n < 2)) {
        cnnl__sgemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    bool by_cols = n >= m;
    int extent = by_cols ? n : m;
    int parts = threads < extent ? threads : extent;
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int p = 0; p < parts; p++) {
        size_t lo, hi;
        cnnl__chunk((size_t)extent, parts, p, &lo, &hi);
        int len = (int)(hi - lo);
        if (by_cols) {
            /* Columns [lo, hi) of C need columns of op(B). */
            const float *bp = trans_b ? b + lo * (size_t)ldb : b + lo;
            cnnl__sgemm_serial(trans_a, trans_b, m, len, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc);
        } else {
            const float *ap = trans_a ? a + lo : a + lo * (size_t)lda;
            cnnl__sgemm_serial(trans_a, trans_b, len, n, k, alpha, ap, lda, b, ldb, beta, c + lo * (size_t)ldc, ldc);
        }
    }
}

/* The public 2-D product of tensor.h, on the dispatch above. */
CNNL_API cnnl_status cnnl_tensor_matmul(cnnl_tensor **out, const cnnl_tensor *a, bool trans_a,
                                        const cnnl_tensor *b, bool trans_b)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_matmul: out is NULL");
    *out = NULL;
    if (!a || !b)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_matmul: %s tensor is NULL", a ? "b" : "a");
    if (a->ndim != 2 || b->ndim != 2)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_matmul: needs 2-D tensors, got %d-D and %d-D", a->ndim,
                           b->ndim);
    int64_t m = trans_a ? a->shape[1] : a->shape[0], ka = trans_a ? a->shape[0] : a->shape[1];
    int64_t kb = trans_b ? b->shape[1] : b->shape[0], n = trans_b ? b->shape[0] : b->shape[1];
    if (ka != kb)
        return cnnl__error(CNNL_ESHAPE, "cnnl_tensor_matmul: inner dimensions differ (%lld vs %lld)", (long long)ka,
                           (long long)kb);
    if (m > INT32_MAX || n > INT32_MAX || ka > INT32_MAX)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_matmul: dimensions exceed the BLAS integer range");
    int64_t shape[2] = {m, n};
    cnnl_status st = cnnl__blas_reserve("cnnl_tensor_matmul");
    if (st == CNNL_OK)
        st = cnnl__tensor_new("cnnl_tensor_matmul", out, 2, shape, false);
    if (st != CNNL_OK)
        return st;
    cnnl__sgemm(trans_a, trans_b, (int)m, (int)n, (int)ka, 1.0f, a->data, (int)a->shape[1], b->data,
                (int)b->shape[1], 0.0f, (*out)->data, (int)n);
    return CNNL_OK;
}
