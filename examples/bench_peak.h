/* Float32 multiply-add peak per vector width and the bfloat16 dot-product peak (bench_peak.c),
 * for cnnlite-bench. */
#ifndef CNNLITE_BENCH_PEAK_H
#define CNNLITE_BENCH_PEAK_H

#include <stdbool.h>

#define BENCH_PEAK_MAX_THREADS 256

typedef struct bench_peak_result {
    const char *name; /* instruction set, e.g. "AVX2/FMA3 (8 lanes)" */
    int lanes;        /* float32 lanes per vector */
    double gflops_1;  /* one thread */
    double gflops_n;  /* the requested threads */
} bench_peak_result;

/* Measure every width the CPU has (@p all_widths), narrowest first, with 1 and @p threads
 * threads; or only the widest with @p threads threads (gflops_1 is then 0 unless @p threads is
 * 1). Returns how many entries of @p out (at most @p max) were filled. */
int bench_peak_measure(int threads, bool all_widths, bench_peak_result *out, int max);

/* The bfloat16 dot-product peak (AVX512_BF16's VDPBF16PS, 64 flops per 512-bit instruction)
 * with @p threads threads, and with one thread too when @p one_thread (else gflops_1 is 0
 * unless @p threads is 1). Returns false, measuring nothing, when the CPU has no AVX512_BF16. */
bool bench_peak_bf16(int threads, bool one_thread, bench_peak_result *out);

#endif
