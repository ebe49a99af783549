/*
 * Float32 multiply-add peak of this CPU at each vector width it has, for cnnlite-bench --peak.
 *
 * Each kernel runs 12 independent chains a = a * m + b (m = 0.999, b = 0.001: a tends to 1,
 * so no denormals), enough chains to keep two FMA pipes busy at a latency of up to 6 cycles. The
 * SSE kernel has no fused multiply-add: it issues a multiply and an add per lane, still 2
 * flops. Each kernel is compiled for its instruction set with a target attribute and only
 * called when the CPU reports that set (__builtin_cpu_supports).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_peak.h"

#define CHAINS 12

/* 1.0, read at run time: distinct, unknown start values keep the compiler from merging the
 * chains or computing them ahead. */
static volatile float seed_one = 1.0f;

#define KERNEL(NAME, ATTR, VEC, SET1, FMA, ADD, STORE, LANES)                                 \
    ATTR static double NAME(long iters)                                                       \
    {                                                                                         \
        const float seed = seed_one;                                                          \
        VEC a[CHAINS];                                                                        \
        const VEC m = SET1(0.999f * seed), b = SET1(0.001f * seed);                           \
        for (int c = 0; c < CHAINS; c++)                                                      \
            a[c] = SET1(seed + 0.01f * (float)c);                                             \
        for (long i = 0; i < iters; i++) {                                                    \
            a[0] = FMA(a[0], m, b);                                                           \
            a[1] = FMA(a[1], m, b);                                                           \
            a[2] = FMA(a[2], m, b);                                                           \
            a[3] = FMA(a[3], m, b);                                                           \
            a[4] = FMA(a[4], m, b);                                                           \
            a[5] = FMA(a[5], m, b);                                                           \
            a[6] = FMA(a[6], m, b);                                                           \
            a[7] = FMA(a[7], m, b);                                                           \
            a[8] = FMA(a[8], m, b);                                                           \
            a[9] = FMA(a[9], m, b);                                                           \
            a[10] = FMA(a[10], m, b);                                                         \
            a[11] = FMA(a[11], m, b);                                                         \
        }                                                                                     \
        for (int c = 1; c < CHAINS; c++)                                                      \
            a[0] = ADD(a[0], a[c]);                                                           \
        float out[LANES];                                                                     \
        STORE(out, a[0]);                                                                     \
        return out[0];                                                                        \
    }

#define SSE_MULADD(a, m, b) _mm_add_ps(_mm_mul_ps((a), (m)), (b))
KERNEL(kernel_sse, __attribute__((target("sse2"))), __m128, _mm_set1_ps, SSE_MULADD, _mm_add_ps, _mm_storeu_ps, 4)
KERNEL(kernel_avx2, __attribute__((target("avx2,fma"))), __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
       _mm256_storeu_ps, 8)
KERNEL(kernel_avx512, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps, _mm512_fmadd_ps,
       _mm512_add_ps, _mm512_storeu_ps, 16)

typedef double (*kernel_fn)(long);

typedef struct isa {
    const char *name;
    kernel_fn fn;
    int lanes;
} isa;

static int isa_list(isa *out)
{
    int n = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2"))
        out[n++] = (isa){"SSE (mul+add, 4 lanes)", kernel_sse, 4};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[n++] = (isa){"AVX2/FMA3 (8 lanes)", kernel_avx2, 8};
    if (__builtin_cpu_supports("avx512f"))
        out[n++] = (isa){"AVX-512 (16 lanes)", kernel_avx512, 16};
    return n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct job {
    kernel_fn fn;
    long iters;
    double sink;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->sink = j->fn(j->iters);
    return NULL;
}

/* GFLOP/s of @p threads threads each running @p iters iterations; 0 on a thread failure. */
static double measure(const isa *k, int threads, long iters)
{
    job jobs[BENCH_PEAK_MAX_THREADS];
    pthread_t tid[BENCH_PEAK_MAX_THREADS];
    int started = 0;
    double t0 = now();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){k->fn, iters, 0.0};
        if (t > 0 && pthread_create(&tid[t], NULL, run_job, &jobs[t]) != 0)
            break;
        started = t + 1;
    }
    if (started == threads)
        run_job(&jobs[0]);
    for (int t = 1; t < started; t++)
        pthread_join(tid[t], NULL);
    double dt = now() - t0;
    if (started != threads || jobs[0].sink != jobs[0].sink) /* NaN would mean a broken kernel */
        return 0.0;
    return (double)threads * (double)iters * CHAINS * k->lanes * 2.0 / dt * 1e-9;
}

/* Best of 3 runs of about 0.2 s each, after a calibration run. */
static double best_gflops(const isa *k, int threads)
{
    long iters = 1L << 16;
    double t0 = now();
    measure(k, 1, iters);
    double dt = now() - t0;
    if (dt > 0)
        iters = (long)((double)iters * 0.2 / dt) + 1;
    double best = 0.0;
    for (int r = 0; r < 3; r++) {
        double g = measure(k, threads, iters);
        if (g > best)
            best = g;
    }
    return best;
}

int bench_peak_measure(int threads, bool all_widths, bench_peak_result *out, int max)
{
    isa list[3];
    int n = isa_list(list);
    if (threads > BENCH_PEAK_MAX_THREADS)
        threads = BENCH_PEAK_MAX_THREADS;
    int k = 0;
    for (int i = all_widths ? 0 : n - 1; i >= 0 && i < n && k < max; i++, k++) {
        out[k].name = list[i].name;
        out[k].lanes = list[i].lanes;
        out[k].gflops_1 = all_widths || threads == 1 ? best_gflops(&list[i], 1) : 0.0;
        out[k].gflops_n = threads > 1 ? best_gflops(&list[i], threads) : out[k].gflops_1;
    }
    return k;
}
