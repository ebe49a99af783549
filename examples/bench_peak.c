/*
 * Float32 multiply-add peak of this CPU at each vector width it has, for cnnlite-bench --peak.
 *
 * Each kernel runs 12 independent chains a = a * m + b (m = 0.999, b = 0.001: a tends to 1,
 * so no denormals), enough chains to keep two FMA pipes busy at a latency of up to 6 cycles. The
 * SSE kernel has no fused multiply-add: it issues a multiply and an add per lane, still 2
 * flops. Each kernel is compiled for its instruction set with a target attribute and only
 * called when the CPU reports that set (__builtin_cpu_supports).
 *
 * The bfloat16 row (bench_peak_bf16()) runs AVX512_BF16's VDPBF16PS: per float32 lane it adds
 * the two products of a pair of bfloat16 values, 64 flops per 512-bit instruction. It runs
 * BF16_CHAINS = 24 independent chains, so that latency does not bound it even on a CPU that
 * issues it once per cycle with a latency of up to 24 cycles.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_peak.h"

#define CHAINS 12
#define BF16_CHAINS 24

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

/* acc += x0 * y0 + x1 * y1 per lane with the pairs (s, s) and (t, -t): the products cancel
 * exactly while the accumulators stay in [1, 2), so they keep their values for any run length. */
#define BF16_STEP(c) a[c] = _mm512_dpbf16_ps(a[c], x, y);
__attribute__((target("avx512f,avx512bf16"))) static double kernel_bf16(long iters)
{
    const float seed = seed_one;
    /* alternating signs: after the conversion each 32-bit lane holds the pair (t, -t) */
    const __m512 t = _mm512_mask_blend_ps((__mmask16)0xAAAA, _mm512_set1_ps(0.25f * seed),
                                          _mm512_set1_ps(-0.25f * seed));
    const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f * seed), _mm512_set1_ps(0.5f * seed));
    const __m512bh y = _mm512_cvtne2ps_pbh(t, t);
    __m512 a[BF16_CHAINS];
    for (int c = 0; c < BF16_CHAINS; c++)
        a[c] = _mm512_set1_ps(seed + 0.01f * (float)c);
    for (long i = 0; i < iters; i++) {
        BF16_STEP(0) BF16_STEP(1) BF16_STEP(2) BF16_STEP(3) BF16_STEP(4) BF16_STEP(5)
        BF16_STEP(6) BF16_STEP(7) BF16_STEP(8) BF16_STEP(9) BF16_STEP(10) BF16_STEP(11)
        BF16_STEP(12) BF16_STEP(13) BF16_STEP(14) BF16_STEP(15) BF16_STEP(16) BF16_STEP(17)
        BF16_STEP(18) BF16_STEP(19) BF16_STEP(20) BF16_STEP(21) BF16_STEP(22) BF16_STEP(23)
    }
    for (int c = 1; c < BF16_CHAINS; c++)
        a[0] = _mm512_add_ps(a[0], a[c]);
    float out[16];
    _mm512_storeu_ps(out, a[0]);
    return out[0];
}

typedef double (*kernel_fn)(long);

typedef struct isa {
    const char *name;
    kernel_fn fn;
    int lanes;
    double flops; /* per iteration of the kernel's loop */
} isa;

static int isa_list(isa *out)
{
    int n = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2"))
        out[n++] = (isa){"SSE (mul+add, 4 lanes)", kernel_sse, 4, CHAINS * 4 * 2.0};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[n++] = (isa){"AVX2/FMA3 (8 lanes)", kernel_avx2, 8, CHAINS * 8 * 2.0};
    if (__builtin_cpu_supports("avx512f"))
        out[n++] = (isa){"AVX-512 (16 lanes)", kernel_avx512, 16, CHAINS * 16 * 2.0};
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
    return (double)threads * (double)iters * k->flops / dt * 1e-9;
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

bool bench_peak_bf16(int threads, bool one_thread, bench_peak_result *out)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16"))
        return false;
    /* 16 float32 lanes, each 2 products and 2 additions per instruction */
    isa k = {"AVX512_BF16 dot (16 lanes)", kernel_bf16, 16, BF16_CHAINS * 16 * 4.0};
    if (threads > BENCH_PEAK_MAX_THREADS)
        threads = BENCH_PEAK_MAX_THREADS;
    out->name = k.name;
    out->lanes = k.lanes;
    out->gflops_1 = one_thread || threads == 1 ? best_gflops(&k, 1) : 0.0;
    out->gflops_n = threads > 1 ? best_gflops(&k, threads) : out->gflops_1;
    return true;
}
