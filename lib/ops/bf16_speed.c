/*
 * The bfloat16 dot-product rate of one core against its float32 multiply-add rate
 * (cnnl_bf16_speed_ratio(), cnnlite/model.h).
 *
 * bfloat16 convolutions run on AVX512_BF16's VDPBF16PS (or on AMX tiles). One 512-bit
 * VDPBF16PS does 16 lanes x 2 products x 2 flops = 64 flops, twice a float32 FMA's 32; it pays
 * only where it issues as often as the FMA: AMD Zen 4/5 should give a ratio of about 2; an
 * Intel Xeon without AMX (family 6, model 207, in a VM) gives 0.50, VDPBF16PS issuing about
 * every other cycle against two FMAs per cycle: without AMX, bfloat16 cannot be faster there.
 *
 * Both kernels run CHAINS = 24 independent accumulator chains in registers, so that latency
 * does not bound them even for an instruction issued once per cycle with a latency of up to 24
 * cycles. Each is timed in short runs, the two alternating, and the best run of each counts,
 * so an interruption (another process on the core) or the first AVX-512 frequency change
 * lowers neither figure. The measurement runs once per process (pthread_once) and takes a few
 * milliseconds.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnnlite/model.h"
#include "core/internal.h"
#include "ops/kernels.h"

#ifdef CNNL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CNNL_BF16_PROBE 1
#include <immintrin.h>
#endif

#ifdef CNNL_BF16_PROBE

enum { CHAINS = 24, ROUNDS = 5 };

/* 1.0, read at run time, so that the compiler can neither fold the chains nor merge them. */
static volatile float probe_one = 1.0f;

#define REPEAT24(X)                                                                                                   \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19)    \
        X(20) X(21) X(22) X(23)

/* Float32: a = a * m + b per chain (m < 1: a stays near b / (1 - m), no denormals); 32 flops
 * per instruction. Returns a value of the chains so that none is dropped. */
__attribute__((target("avx512f"))) static float fma_kernel(long iters)
{
    const float one = probe_one;
    const __m512 m = _mm512_set1_ps(0.999f * one), b = _mm512_set1_ps(0.001f * one);
    __m512 a[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        a[c] = _mm512_set1_ps(one + 0.01f * (float)c);
    for (long i = 0; i < iters; i++) {
#define STEP(c) a[c] = _mm512_fmadd_ps(a[c], m, b);
        REPEAT24(STEP)
#undef STEP
    }
    for (int c = 1; c < CHAINS; c++)
        a[0] = _mm512_add_ps(a[0], a[c]);
    float out[16];
    _mm512_storeu_ps(out, a[0]);
    return out[0];
}

/* bfloat16: acc += x0 * y0 + x1 * y1 per float32 lane (VDPBF16PS), 64 flops per instruction.
 * The pairs are (s, s) and (t, -t): the two products cancel exactly (the accumulators stay in
 * [1, 2), where +-s*t = 0.125 is exact), so they keep their start values however long it runs. */
__attribute__((target("avx512f,avx512bf16"))) static float dpbf16_kernel(long iters)
{
    const float one = probe_one;
    const __m512 s = _mm512_set1_ps(0.5f * one);
    /* alternating signs: after the conversion each 32-bit lane holds the pair (t, -t) */
    const __m512 t = _mm512_mask_blend_ps((__mmask16)0xAAAA, _mm512_set1_ps(0.25f * one), _mm512_set1_ps(-0.25f * one));
    const __m512bh x = _mm512_cvtne2ps_pbh(s, s);
    const __m512bh y = _mm512_cvtne2ps_pbh(t, t);
    __m512 a[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        a[c] = _mm512_set1_ps(one + 0.01f * (float)c);
    for (long i = 0; i < iters; i++) {
#define STEP(c) a[c] = _mm512_dpbf16_ps(a[c], x, y);
        REPEAT24(STEP)
#undef STEP
    }
    for (int c = 1; c < CHAINS; c++)
        a[0] = _mm512_add_ps(a[0], a[c]);
    float out[16];
    _mm512_storeu_ps(out, a[0]);
    return out[0];
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds of one run of @p iters iterations; *@p sink collects the result. */
static double time_run(float (*kernel)(long), long iters, float *sink)
{
    double t0 = now();
    *sink += kernel(iters);
    return now() - t0;
}

static struct {
    pthread_once_t once;
    double ratio; /* 0 when the measurement failed */
} probe = {PTHREAD_ONCE_INIT, 0.0};

static void measure(void)
{
    float sink = 0.0f;
    /* calibrate: iterations for about 0.1 ms of the float32 kernel (0.1-0.5 ms of the bfloat16 one) (the first runs also
     * bring the core to its AVX-512 clock) */
    long iters = 256;
    for (int k = 0; k < 12; k++) {
        double dt = time_run(fma_kernel, iters, &sink);
        time_run(dpbf16_kernel, iters, &sink);
        if (dt >= 1e-4)
            break;
        iters = dt > 1e-6 ? (long)((double)iters * 1e-4 / dt) + 1 : iters * 8;
    }
    double best_fma = INFINITY, best_dp = INFINITY;
    for (int r = 0; r < ROUNDS; r++) {
        double a = time_run(fma_kernel, iters, &sink), b = time_run(dpbf16_kernel, iters, &sink);
        best_fma = a < best_fma ? a : best_fma;
        best_dp = b < best_dp ? b : best_dp;
    }
    if (!(best_fma > 0.0) || !(best_dp > 0.0) || !isfinite(best_fma) || !isfinite(best_dp) || !isfinite(sink))
        return;
    /* same iterations and chains: flops 64 against 32 per instruction */
    double ratio = (64.0 / best_dp) / (32.0 / best_fma);
    if (isfinite(ratio) && ratio > 0.0)
        probe.ratio = ratio;
}

#endif /* CNNL_BF16_PROBE */

CNNL_API cnnl_status cnnl_bf16_speed_ratio(double *ratio, bool *amx)
{
    if (ratio)
        *ratio = 0.0;
    if (amx)
        *amx = false;
    if (!ratio)
        return cnnl__error(CNNL_EINVAL, "cnnl_bf16_speed_ratio: ratio is NULL");
#ifdef CNNL_BF16_PROBE
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16"))
        return cnnl__error(CNNL_EUNSUPPORTED, "cnnl_bf16_speed_ratio: this CPU has no AVX512_BF16");
    if (cnnl__simd_level() < CNNL__SIMD_AVX512)
        return cnnl__error(CNNL_EUNSUPPORTED, "cnnl_bf16_speed_ratio: CNNLITE_ISA=%s limits the library's "
                           "kernels below AVX-512, so AVX512_BF16 is not used", getenv("CNNLITE_ISA"));
    bool has_amx = false;
#ifdef CNNL_HAVE_DNNL
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) != (unsigned)dnnl_cpu_isa_avx512_core_bf16)
        return cnnl__error(CNNL_EUNSUPPORTED, "cnnl_bf16_speed_ratio: oneDNN is limited below AVX512_BF16 "
                           "(ONEDNN_MAX_CPU_ISA; ISA mask 0x%x)", isa);
    has_amx = (isa & (unsigned)dnnl_cpu_isa_avx512_core_amx) == (unsigned)dnnl_cpu_isa_avx512_core_amx;
#endif
    int rc = pthread_once(&probe.once, measure);
    if (rc != 0 || !(probe.ratio > 0.0))
        return cnnl__error(CNNL_ENUMERIC, "cnnl_bf16_speed_ratio: the timing of the probe kernels failed");
    *ratio = probe.ratio;
    if (amx)
        *amx = has_amx;
    return CNNL_OK;
#else
    (void)amx;
    return cnnl__error(CNNL_EUNSUPPORTED, "cnnl_bf16_speed_ratio: AVX512_BF16 exists only on x86-64 CPUs");
#endif
}
