/*
 * Our own direct AVX2 kernel for 3x3 stride-1 pad-1 float32 convolutions, used by the oneDNN
 * engine (lib/ops/conv_dnnl.c) where oneDNN's AVX2 kernel measured slower. It works on
 * oneDNN's layout of the output gradient (blocks of 8 channels, nChw8c) and the NCHW input, so
 * it slots in where a primitive ran; the order of every sum is fixed by the geometry, so
 * results do not depend on the thread count.
 *
 * Weight and bias gradients (cnnl__wgrad8). Why: on an AVX2-only CPU (Zen 3 EPYC) oneDNN
 * 2.6's weight-gradient kernel took about 1.4x the time of its data-gradient kernel for the
 * same multiply-adds, on each of the report network's 3x3 layers from 16 input channels.
 * How: the gradient of weight (o, c, ky, kx) is the sum over images and output positions p
 * of dy(o, p) x(c, p + (ky - 1, kx - 1)). A vector holds 8 output channels (one block, so
 * the gradient is read as stored). For a band of output rows (about 128 positions), the
 * band's input rows are copied once into a zero-padded buffer (cnnl__conv_direct_pad());
 * then for 4 channel blocks (32 output channels) and one (c, ky), every position adds 4
 * gradient vectors times the 3 broadcast inputs x(c, y + ky - 1, x - 1 .. x + 1) into 12
 * accumulators: 12 multiply-adds per 7 loads, with the band's 4 blocks (16 KiB) staying in
 * the L1 cache across all (c, ky). After the band the accumulators are added to a [tap][output channel] array, which goes to
 * the caller's [o][c][3][3] sums at the end of the call.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CNNL_CONV_AVX2_X86 1
#include <immintrin.h>
#endif

/* Output rows per band: at least one, about 128 positions. */
static int band_rows(const cnnl__conv_geom *g)
{
    int r = 128 / g->ow;
    if (r < 1)
        r = 1;
    return r > g->oh ? g->oh : r;
}

bool cnnl__conv_own_enabled(void)
{
    const char *e = getenv("CNNLITE_CONV_OWN");
    return !(e && !strcmp(e, "0"));
}

/* 3x3 stride-1 pad-1 float32, whole blocks of 8 output channels, on a CPU whose widest
 * level is AVX2, unless CNNLITE_CONV_OWN=0. */
bool cnnl__wgrad8_ok(const cnnl__conv_geom *g)
{
    if (g->k != 3 || g->stride != 1 || g->pad != 1 || g->dil > 1 || g->groups > 1 || g->bf16)
        return false;
    if (g->oc % 8 || g->oh != g->h || g->ow != g->w || g->ow < 2 || g->c > 65536 || g->oc > 65536)
        return false;
    return cnnl__conv_own_enabled() && cnnl__simd_level() == CNNL__SIMD_AVX2;
}

size_t cnnl__wgrad8_ws_floats(const cnnl__conv_geom *g)
{
    /* [tap][o] sums, bias sums, the padded band */
    return (size_t)g->c * 9 * g->oc + (size_t)g->oc + cnnl__conv_direct_pad_floats(g, band_rows(g));
}

#ifdef CNNL_CONV_AVX2_X86
#define T256 __attribute__((target("avx2,fma")))
/* Hides where @p p points from the optimiser: GCC otherwise carries broadcasts over to the
 * next position (the same addresses), runs out of registers and spills an accumulator, whose
 * chain then waits on memory at every position. */
#define OPAQUE(p) __asm__("" : "+r"(p))

/* NOV (1, 2 or 4) blocks of 8 output channels x 3 taps (kx) of one (c, ky), over @p rows rows
 * of @p w positions: the padded input rows start at @p xr (stride @p xs), the gradient rows
 * of the first block at @p d (block stride @p sc, row stride @p sy). Adds the sums to the
 * [tap][o] array at @p s (tap stride @p ts). The accumulators are named variables: GCC kept
 * an array of them in memory. */
#define ZERO3(j) __m256 a##j##0 = _mm256_setzero_ps(), a##j##1 = a##j##0, a##j##2 = a##j##0
#define FMA3(j)                                                                                       \
    {                                                                                                 \
        __m256 v = _mm256_loadu_ps(dr + (j) * sc + 8 * p);                                            \
        a##j##0 = _mm256_fmadd_ps(v, b0, a##j##0);                                                    \
        a##j##1 = _mm256_fmadd_ps(v, b1, a##j##1);                                                    \
        a##j##2 = _mm256_fmadd_ps(v, b2, a##j##2);                                                    \
    }
#define ADD1(j, k)                                                                                    \
    {                                                                                                 \
        float *q = s + (k) * ts + 8 * (j);                                                            \
        _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), a##j##k));                              \
    }
#define STORE3(j) ADD1(j, 0) ADD1(j, 1) ADD1(j, 2)
#define DEFINE_PASS(NOV, ZEROS, BODY, STORES)                                                         \
    T256 static void pass##NOV(const float *xr, size_t xs, const float *d, int64_t sc, int64_t sy,    \
                               int rows, int w, float *s, size_t ts)                                 \
    {                                                                                                 \
        ZEROS;                                                                                        \
        for (int r = 0; r < rows; r++) {                                                              \
            const float *x = xr + (size_t)r * xs, *dr = d + (int64_t)r * sy;                          \
            for (int p = 0; p < w; p++) {                                                             \
                __m256 b0 = _mm256_broadcast_ss(x + p), b1 = _mm256_broadcast_ss(x + p + 1);          \
                __m256 b2 = _mm256_broadcast_ss(x + p + 2);                                           \
                BODY;                                                                                 \
            }                                                                                         \
        }                                                                                             \
        STORES;                                                                                       \
    }
#define ZEROS1 ZERO3(0)
#define ZEROS2 ZERO3(0); ZERO3(1)
#define ZEROS4 ZERO3(0); ZERO3(1); ZERO3(2); ZERO3(3)
#define BODY1 FMA3(0)
#define BODY2 FMA3(0) FMA3(1)
#define BODY4 FMA3(0) FMA3(1) FMA3(2) FMA3(3)
#define STORES1 STORE3(0)
#define STORES2 STORE3(0) STORE3(1)
#define STORES4 STORE3(0) STORE3(1) STORE3(2) STORE3(3)
DEFINE_PASS(1, ZEROS1, BODY1, STORES1)
DEFINE_PASS(2, ZEROS2, BODY2, STORES2)
DEFINE_PASS(4, ZEROS4, BODY4, STORES4)

/* Two blocks and two rows of taps (ky, ky + 1) at once: 12 accumulators where pass2 has 6,
 * enough independent sums to keep both FMA units busy (the first layer: 16 output channels).
 * Each broadcast is used at once. */
#define KFMA(k, ky, kx)                                                                               \
    {                                                                                                 \
        __m256 b = _mm256_broadcast_ss(xq + (ky) * xs + (kx));                                        \
        a0##k = _mm256_fmadd_ps(v0, b, a0##k);                                                        \
        a1##k = _mm256_fmadd_ps(v1, b, a1##k);                                                        \
    }
T256 static void pass2k2(const float *xr, size_t xs, const float *d, int64_t sc, int64_t sy, int rows, int w,
                         float *s, size_t ts)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00;
    for (int r = 0; r < rows; r++) {
        const float *x = xr + (size_t)r * xs, *dr = d + (int64_t)r * sy;
        for (int p = 0; p < w; p++) {
            __m256 v0 = _mm256_loadu_ps(dr + 8 * p), v1 = _mm256_loadu_ps(dr + sc + 8 * p);
            const float *xq = x + p;
            OPAQUE(xq);
            KFMA(0, 0, 0) KFMA(1, 0, 1) KFMA(2, 0, 2) KFMA(3, 1, 0) KFMA(4, 1, 1) KFMA(5, 1, 2)
        }
    }
    /* taps (ky, 0..2) then (ky + 1, 0..2): consecutive in the [tap][o] array */
    ADD1(0, 0) ADD1(0, 1) ADD1(0, 2) ADD1(0, 3) ADD1(0, 4) ADD1(0, 5)
    ADD1(1, 0) ADD1(1, 1) ADD1(1, 2) ADD1(1, 3) ADD1(1, 4) ADD1(1, 5)
}

/* Bias sums of one band: 8 channels per block, @p nblk blocks. */
T256 static void bias_band(const float *d, int64_t sc, int64_t sy, int rows, int w, int nblk, float *bs)
{
    for (int j = 0; j < nblk; j++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (int r = 0; r < rows; r++) {
            const float *dr = d + j * sc + (int64_t)r * sy;
            int p = 0;
            for (; p + 1 < w; p += 2) {
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(dr + 8 * p));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(dr + 8 * p + 8));
            }
            if (p < w)
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(dr + 8 * p));
        }
        float *q = bs + 8 * j;
        _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), _mm256_add_ps(a0, a1)));
    }
}

#endif /* CNNL_CONV_AVX2_X86 */

void cnnl__wgrad8(const cnnl__conv_geom *g, int nb, const float *x, const float *dy, int64_t sn, int64_t sc,
                  int64_t sy, float *gw, float *gb, float *ws)
{
#ifdef CNNL_CONV_AVX2_X86
    int C = g->c, OC = g->oc, H = g->h, W = g->w, R = band_rows(g), nblk = OC / 8;
    size_t taps = (size_t)C * 9, xs = (size_t)W + 2; /* padded row */
    float *s = ws, *bs = s + taps * OC, *xp = bs + OC;
    memset(s, 0, sizeof(float) * (taps * OC + OC));
    for (int n = 0; n < nb; n++) {
        const float *xn = x + (size_t)n * C * H * W;
        for (int y0 = 0; y0 < H; y0 += R) {
            int rows = H - y0 < R ? H - y0 : R;
            cnnl__conv_direct_pad(g, xn, y0, y0 + rows, xp); /* rows + 2 rows per channel */
            size_t cs = (size_t)(rows + 2) * xs;
            const float *d0 = dy + n * sn + (int64_t)y0 * sy;
            bias_band(d0, sc, sy, rows, W, nblk, bs);
            for (int j0 = 0, nov; j0 < nblk; j0 += nov) {
                nov = nblk - j0 >= 4 ? 4 : nblk - j0 >= 2 ? 2 : 1;
                const float *dj = d0 + j0 * sc;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < 3; ky++) {
                        const float *xr = xp + (size_t)c * cs + (size_t)ky * xs;
                        float *st = s + (size_t)(c * 9 + ky * 3) * OC + 8 * j0;
                        if (nov == 2 && ky == 0) {
                            pass2k2(xr, xs, dj, sc, sy, rows, W, st, (size_t)OC);
                            ky++;
                        } else if (nov == 4)
                            pass4(xr, xs, dj, sc, sy, rows, W, st, (size_t)OC);
                        else if (nov == 2)
                            pass2(xr, xs, dj, sc, sy, rows, W, st, (size_t)OC);
                        else
                            pass1(xr, xs, dj, sc, sy, rows, W, st, (size_t)OC);
                    }
            }
        }
    }
    for (int o = 0; o < OC; o++) {
        for (size_t t = 0; t < taps; t++)
            gw[(size_t)o * taps + t] += s[t * OC + o];
        gb[o] += bs[o];
    }
#else
    (void)g, (void)nb, (void)x, (void)dy, (void)sn, (void)sc, (void)sy, (void)gw, (void)gb, (void)ws;
#endif
}
