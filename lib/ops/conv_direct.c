/*
 * Direct convolution for layers with few input taps (c*k*k <= CNNL__DIRECT_MAX_TAPS, stride 1),
 * such as the first layer of an image network (3 channels, 3x3). There im2col + GEMM is
 * dominated by unfolding and packing: every unfolded value is used only oc times. Here a band
 * of input rows is copied once into a zero-padded buffer and each output row is an unrolled
 * sum of shifted input rows. The hot loops are compiled twice (AVX2 and baseline) and chosen
 * at load time; the order of every sum is fixed, so results are reproducible on a machine.
 */
#include <string.h>

#include "ops/kernels.h"

#define BLOCK 32 /* outputs kept in registers while all taps are summed */
#define LANES 32 /* independent partial sums of the weight-gradient dot products */

bool cnnl__conv_direct_ok(const cnnl__conv_geom *g)
{
    return g->stride == 1 && g->c * g->k * g->k <= CNNL__DIRECT_MAX_TAPS && g->ow >= BLOCK;
}

size_t cnnl__conv_direct_pad_floats(const cnnl__conv_geom *g, int rows)
{
    return (size_t)g->c * (size_t)(rows + g->k - 1) * (size_t)(g->w + 2 * g->pad);
}

void cnnl__conv_direct_pad(const cnnl__conv_geom *g, const float *x, int oy0, int oy1, float *xp)
{
    int rows_in = oy1 - oy0 + g->k - 1, wp = g->w + 2 * g->pad;
    for (int ci = 0; ci < g->c; ci++)
        for (int r = 0; r < rows_in; r++) {
            float *d = xp + ((size_t)ci * rows_in + r) * wp;
            int iy = oy0 - g->pad + r;
            if (iy < 0 || iy >= g->h) {
                memset(d, 0, sizeof(float) * (size_t)wp);
                continue;
            }
            memset(d, 0, sizeof(float) * (size_t)g->pad);
            memcpy(d + g->pad, x + ((size_t)ci * g->h + iy) * g->w, sizeof(float) * (size_t)g->w);
            memset(d + g->pad + g->w, 0, sizeof(float) * (size_t)g->pad);
        }
}

/* Eight floats; GCC's vector extension maps it to one AVX register or two SSE registers. */
typedef float v8 __attribute__((vector_size(32)));

/* Unaligned load of eight floats (a macro: functions passing v8 by value would depend on the
 * target's vector ABI). */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v8))

/* One block of BLOCK (= 32) outputs: the sum over all taps of weight x shifted input, with the
 * four accumulators held in registers across the tap loop. */
static inline void block_taps(float *out, const float *base, const float *wv, const size_t *off, int taps,
                              float bias)
{
    v8 a0 = {bias, bias, bias, bias, bias, bias, bias, bias}, a1 = a0, a2 = a0, a3 = a0;
    for (int t = 0; t < taps; t++) {
        const float *s = base + off[t];
        float w = wv[t];
        v8 wb = {w, w, w, w, w, w, w, w}, x0, x1, x2, x3;
        LOAD8(x0, s);
        LOAD8(x1, s + 8);
        LOAD8(x2, s + 16);
        LOAD8(x3, s + 24);
        a0 += wb * x0;
        a1 += wb * x1;
        a2 += wb * x2;
        a3 += wb * x3;
    }
    memcpy(out, &a0, sizeof a0);
    memcpy(out + 8, &a1, sizeof a1);
    memcpy(out + 16, &a2, sizeof a2);
    memcpy(out + 24, &a3, sizeof a3);
}

/* The clones are static and called through a plain wrapper: clang 14 names the dispatcher of an
 * external target_clones function differently from gcc, so other files could not link to it.
 * ThreadSanitizer builds compile only the baseline: the instrumented resolver would run during
 * relocation, before the sanitizer's runtime is initialised. */
#if defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define CNNL_NO_CLONES 1
#  endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(CNNL_NO_CLONES)
#  define CNNL_CLONES
#else
#  define CNNL_CLONES __attribute__((target_clones("avx2", "default")))
#endif

CNNL_CLONES
static void direct_forward(const cnnl__conv_geom *g, const float *xp, int rows, const float *wt, const float *b,
                           float *y, size_t ld)
{
    int k = g->k, rows_in = rows + k - 1, wp = g->w + 2 * g->pad, ow = g->ow, taps = g->c * k * k;
    size_t off[CNNL__DIRECT_MAX_TAPS];
    for (int ci = 0, t = 0; ci < g->c; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
                off[t++] = ((size_t)ci * rows_in + ky) * wp + kx;
    /* Rows outer: the k input rows of each channel that one output row reads stay in L1 while
     * every output channel is computed from them. */
    for (int r = 0; r < rows; r++) {
        const float *base = xp + (size_t)r * wp;
        for (int o = 0; o < g->oc; o++) {
            const float *wo = wt + (size_t)o * taps;
            float bias = b ? b[o] : 0.0f;
            float *yr = y + (size_t)o * ld + (size_t)r * ow;
            int ox0 = 0;
            for (; ox0 + BLOCK <= ow; ox0 += BLOCK)
                block_taps(yr + ox0, base + ox0, wo, off, taps, bias);
            for (int ox = ox0; ox < ow; ox++) {
                float a = bias;
                for (int t = 0; t < taps; t++)
                    a += wo[t] * base[ox + off[t]];
                yr[ox] = a;
            }
        }
    }
}

void cnnl__conv_direct_forward(const cnnl__conv_geom *g, const float *xp, int rows, const float *wt, const float *b,
                               float *y, size_t ld)
{
    direct_forward(g, xp, rows, wt, b, y, ld);
}

size_t cnnl__conv_direct_acc_floats(const cnnl__conv_geom *g)
{
    return (size_t)g->oc * g->c * g->k * g->k * LANES;
}

/* One dot product of a gradient row with a shifted input row, added lane-wise into @p a
 * (LANES = 32 partial sums in four registers). */
static inline void dot_lanes(float *a, const float *gr, const float *s, int ow)
{
    v8 a0, a1, a2, a3, g0, g1, g2, g3, x0, x1, x2, x3;
    LOAD8(a0, a);
    LOAD8(a1, a + 8);
    LOAD8(a2, a + 16);
    LOAD8(a3, a + 24);
    int j = 0;
    for (; j + LANES <= ow; j += LANES) {
        LOAD8(g0, gr + j);
        LOAD8(g1, gr + j + 8);
        LOAD8(g2, gr + j + 16);
        LOAD8(g3, gr + j + 24);
        LOAD8(x0, s + j);
        LOAD8(x1, s + j + 8);
        LOAD8(x2, s + j + 16);
        LOAD8(x3, s + j + 24);
        a0 += g0 * x0;
        a1 += g1 * x1;
        a2 += g2 * x2;
        a3 += g3 * x3;
    }
    memcpy(a, &a0, sizeof a0);
    memcpy(a + 8, &a1, sizeof a1);
    memcpy(a + 16, &a2, sizeof a2);
    memcpy(a + 24, &a3, sizeof a3);
    for (; j < ow; j++)
        a[j % LANES] += gr[j] * s[j];
}

CNNL_CLONES
static void direct_weight_grad(const cnnl__conv_geom *g, const float *xp, int rows, const float *gy, size_t ld,
                               float *acc)
{
    int k = g->k, rows_in = rows + k - 1, wp = g->w + 2 * g->pad, ow = g->ow, kk = g->c * k * k;
    for (int o = 0; o < g->oc; o++)
        for (int ci = 0; ci < g->c; ci++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    float *a = acc + ((size_t)o * kk + (size_t)(ci * k + ky) * k + kx) * LANES;
                    for (int r = 0; r < rows; r++)
                        dot_lanes(a, gy + (size_t)o * ld + (size_t)r * ow,
                                  xp + ((size_t)ci * rows_in + r + ky) * wp + kx, ow);
                }
}

void cnnl__conv_direct_weight_grad(const cnnl__conv_geom *g, const float *xp, int rows, const float *gy, size_t ld,
                                   float *acc)
{
    direct_weight_grad(g, xp, rows, gy, ld, acc);
}

void cnnl__conv_direct_reduce(const cnnl__conv_geom *g, const float *acc, float *gw_t)
{
    size_t kk = (size_t)g->c * g->k * g->k;
    for (int o = 0; o < g->oc; o++)
        for (size_t t = 0; t < kk; t++) {
            const float *a = acc + ((size_t)o * kk + t) * LANES;
            float s = 0.0f;
            for (int l = 0; l < LANES; l++)
                s += a[l];
            gw_t[t * (size_t)g->oc + (size_t)o] += s;
        }
}
