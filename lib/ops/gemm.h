/* Row-major single-precision matrix products on cblas_sgemm, or oneDNN's sgemm for large ones
 * in builds with oneDNN (see gemm.c). */
#ifndef CNNL_OPS_GEMM_H
#define CNNL_OPS_GEMM_H

#include <stdbool.h>

#include "cnnlite/status.h"

/* C(MxN) = alpha * op(A) * op(B) + beta * C, row-major, split over the library's threads
 * (each block runs single-threaded BLAS). Call from outside parallel regions. */
void cnnl__sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);

/* The same on the calling thread only; for use inside the library's parallel loops. */
/* Make sure the BLAS library can take its per-thread work buffers for the current thread
 * count (see gemm.c); CNNL_ENOMEM naming @p who if not. Call before products that may be a
 * thread's first. */
cnnl_status cnnl__blas_reserve(const char *who);

void cnnl__sgemm_serial(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc);

#endif
