/*
 * Linear's forward pass, y = x W^T + b, its gradient with respect to x, gx = gy W, and the
 * weight gradient, gW += gy^T x, at AVX-512 and AVX2 width (plain C below AVX2).
 *
 * Every output y[i][o] (and every gx[i][k], over o) is one chain of fused multiply-adds over k in vector lanes (16 or 8),
 * in order, then a fixed horizontal sum and the bias. The chain is the same whatever the
 * batch, the row's place in it, the blocking or the thread count, so a row's result never
 * depends on the other rows: a batch classifies each image exactly as it would alone, and a
 * batch split over processes computes the rows it would compute whole. (BLAS libraries and
 * oneDNN's sgemm choose kernels and summation orders by the number of rows.) At AVX-512 the
 * and AVX2 the forward walks the inputs in blocks, each thread over its own output tiles
 * with their accumulators saved between blocks, so x and W are each read about once per
 * thread; below AVX2, W is read once per block of four rows of x.
 *
 * Tiles are 4 rows x 4 outputs (16 accumulators; 4 x 3 and 3 x 4 at AVX2, which has 16
 * registers); a tile at the edge points its missing rows
 * or outputs at valid ones and stores only what exists, so edge tiles run the same chains.
 */
#include <omp.h>
#include <string.h>

#include "core/internal.h"
#include "ops/kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CNNL_X86_SIMD 1
#include <immintrin.h>
#endif

#ifdef CNNL_X86_SIMD

#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx2,fma")))

/* The AVX2 whole-strip kernels' 12 sums a<r><j> (3 rows x 4 vectors): FMA12 adds g0..g2
 * times the 4 vectors at @p src; STORE4 stores row @p c's 4 vectors to @p p<c>. */
#define FMA12(src, j)                                                                                 \
    {                                                                                                 \
        __m256 v = _mm256_load_ps((src) + 8 * (j));                                                   \
        a0##j = _mm256_fmadd_ps(g0, v, a0##j);                                                        \
        a1##j = _mm256_fmadd_ps(g1, v, a1##j);                                                        \
        a2##j = _mm256_fmadd_ps(g2, v, a2##j);                                                        \
    }
#define STORE4(p, c)                                                                                  \
    {                                                                                                 \
        _mm256_storeu_ps(p##c, a##c##0), _mm256_storeu_ps(p##c + 8, a##c##1);                         \
        _mm256_storeu_ps(p##c + 16, a##c##2), _mm256_storeu_ps(p##c + 24, a##c##3);                   \
    }

T512 static inline float hsum512(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* Inputs [k0, k1) of a tile (k0 a multiple of 16); the accumulators come from and go back to
 * @p save (16 vectors) between blocks of inputs, unchanged, so the chains are those of one
 * pass over all inputs; the last block (k1 == in) finishes the outputs. */
T512 static void tile512(const float *x, const float *w, const float *bias, float *y, int n, int in, int out, int i0,
                         int o0, int k0, int k1, float *save)
{
    const float *xr[4], *wr[4];
    for (int r = 0; r < 4; r++) {
        xr[r] = x + (size_t)(i0 + r < n ? i0 + r : i0) * in;
        wr[r] = w + (size_t)(o0 + r < out ? o0 + r : o0) * in;
    }
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            acc[r][c] = k0 ? _mm512_loadu_ps(save + (r * 4 + c) * 16) : _mm512_setzero_ps();
    int k = k0;
    for (; k + 16 <= k1; k += 16) {
        __m512 wv[4];
        for (int c = 0; c < 4; c++)
            wv[c] = _mm512_loadu_ps(wr[c] + k);
        for (int r = 0; r < 4; r++) {
            __m512 xv = _mm512_loadu_ps(xr[r] + k);
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (k < k1) {
        __mmask16 m = (__mmask16)((1u << (k1 - k)) - 1u);
        __m512 wv[4];
        for (int c = 0; c < 4; c++)
            wv[c] = _mm512_maskz_loadu_ps(m, wr[c] + k);
        for (int r = 0; r < 4; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, xr[r] + k);
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (k1 < in) {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                _mm512_storeu_ps(save + (r * 4 + c) * 16, acc[r][c]);
        return;
    }
    for (int r = 0; r < 4 && i0 + r < n; r++)
        for (int c = 0; c < 4 && o0 + c < out; c++)
            y[(size_t)(i0 + r) * out + o0 + c] = hsum512(acc[r][c]) + (bias ? bias[o0 + c] : 0.0f);
}

T256 static inline float hsum256(__m256 v)
{
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* The AVX2 forward by blocks of inputs, as tile512() does at AVX-512: tiles of 4 rows x 3
 * outputs (12 sums: 4 x 4 did not fit AVX2's 16 registers and spilled), inputs [k0, k1), the
 * sums saved in @p save (12 vectors) between blocks, unchanged, so every output is the same
 * chain as one pass over all inputs: per lane, k in order, then the same horizontal sum. */
#define F4(c, LOAD)                                                                                   \
    {                                                                                                 \
        __m256 wv = LOAD(w##c + k);                                                                   \
        a0##c = _mm256_fmadd_ps(x0, wv, a0##c);                                                       \
        a1##c = _mm256_fmadd_ps(x1, wv, a1##c);                                                       \
        a2##c = _mm256_fmadd_ps(x2, wv, a2##c);                                                       \
        a3##c = _mm256_fmadd_ps(x3, wv, a3##c);                                                       \
    }
T256 static void tile256(const float *x, const float *w, const float *bias, float *y, int n, int in, int out, int i0,
                          int o0, int k0, int k1, float *save)
{
    const float *xr[4], *wr[3];
    for (int r = 0; r < 4; r++)
        xr[r] = x + (size_t)(i0 + r < n ? i0 + r : i0) * in;
    for (int c = 0; c < 3; c++)
        wr[c] = w + (size_t)(o0 + c < out ? o0 + c : o0) * in;
    const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2];
    __m256 acc[12];
    for (int t = 0; t < 12; t++)
        acc[t] = k0 ? _mm256_loadu_ps(save + 8 * t) : _mm256_setzero_ps();
    __m256 a00 = acc[0], a01 = acc[1], a02 = acc[2], a10 = acc[3], a11 = acc[4], a12 = acc[5];
    __m256 a20 = acc[6], a21 = acc[7], a22 = acc[8], a30 = acc[9], a31 = acc[10], a32 = acc[11];
    int k = k0;
    for (; k + 8 <= k1; k += 8) {
        __m256 x0 = _mm256_loadu_ps(xr[0] + k), x1 = _mm256_loadu_ps(xr[1] + k);
        __m256 x2 = _mm256_loadu_ps(xr[2] + k), x3 = _mm256_loadu_ps(xr[3] + k);
        F4(0, _mm256_loadu_ps) F4(1, _mm256_loadu_ps) F4(2, _mm256_loadu_ps)
    }
    if (k < k1) { /* the tail of the inputs (only in the last block): zeros beyond it */
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(k1 - k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#define MLOAD(p) _mm256_maskload_ps((p), m)
        __m256 x0 = MLOAD(xr[0] + k), x1 = MLOAD(xr[1] + k), x2 = MLOAD(xr[2] + k), x3 = MLOAD(xr[3] + k);
        F4(0, MLOAD) F4(1, MLOAD) F4(2, MLOAD)
#undef MLOAD
    }
    acc[0] = a00, acc[1] = a01, acc[2] = a02, acc[3] = a10, acc[4] = a11, acc[5] = a12;
    acc[6] = a20, acc[7] = a21, acc[8] = a22, acc[9] = a30, acc[10] = a31, acc[11] = a32;
    if (k1 < in) {
        for (int t = 0; t < 12; t++)
            _mm256_storeu_ps(save + 8 * t, acc[t]);
        return;
    }
    for (int r = 0; r < 4 && i0 + r < n; r++)
        for (int c = 0; c < 3 && o0 + c < out; c++)
            y[(size_t)(i0 + r) * out + o0 + c] = hsum256(acc[r * 3 + c]) + (bias ? bias[o0 + c] : 0.0f);
}

#endif

#ifdef CNNL_X86_SIMD
/* Backward data. W's rows are a power of two apart in memory as often as not, so a strip of
 * columns read in place would fall into a few cache sets; it is copied, CHUNK rows at a time,
 * into a dense buffer (zero-padded to the strip width) first. */
#define CHUNK 128

/* gx[i][k..k+64) of all rows: += (or = when @p first) sum over the chunk's rows o, in order,
 * of gy[i][o0 + o] * buf[o][0..64). */
T512 static void bchunk512(const float *gy, const float *buf, int oc, int o0, float *gx, int n, int in, int out, int k,
                           bool first)
{
    int left = in - k;
    __mmask16 mk[4];
    for (int j = 0; j < 4; j++) {
        int c = left - 16 * j;
        mk[j] = c >= 16 ? (__mmask16)0xffff : c <= 0 ? (__mmask16)0 : (__mmask16)((1u << c) - 1u);
    }
    for (int i0 = 0; i0 < n; i0 += 4) {
        const float *gr[4];
        float *xr[4];
        for (int r = 0; r < 4; r++) {
            int i = i0 + r < n ? i0 + r : i0;
            gr[r] = gy + (size_t)i * out + o0;
            xr[r] = gx + (size_t)i * in + k;
        }
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++)
                acc[r][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk[j], xr[r] + 16 * j);
        for (int o = 0; o < oc; o++) {
            __m512 wv[4];
            for (int j = 0; j < 4; j++)
                wv[j] = _mm512_load_ps(buf + (size_t)o * 64 + 16 * j);
            for (int r = 0; r < 4; r++) {
                __m512 g = _mm512_set1_ps(gr[r][o]);
                for (int j = 0; j < 4; j++)
                    acc[r][j] = _mm512_fmadd_ps(g, wv[j], acc[r][j]);
            }
        }
        for (int r = 0; r < 4 && i0 + r < n; r++)
            for (int j = 0; j < 4; j++)
                _mm512_mask_storeu_ps(xr[r] + 16 * j, mk[j], acc[r][j]);
    }
}

T256 static void bchunk256(const float *gy, const float *buf, int oc, int o0, float *gx, int n, int in, int out, int k,
                           bool first)
{
    int left = in - k;
    __m256i mk[4];
    for (int j = 0; j < 4; j++)
        mk[j] = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8 * j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int i0 = 0; i0 < n; i0 += 4) {
        const float *gr[4];
        float *xr[4];
        for (int r = 0; r < 4; r++) {
            int i = i0 + r < n ? i0 + r : i0;
            gr[r] = gy + (size_t)i * out + o0;
            xr[r] = gx + (size_t)i * in + k;
        }
        __m256 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++)
                acc[r][j] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(xr[r] + 8 * j, mk[j]);
        for (int o = 0; o < oc; o++) {
            __m256 wv[4];
            for (int j = 0; j < 4; j++)
                wv[j] = _mm256_load_ps(buf + (size_t)o * 32 + 8 * j);
            for (int r = 0; r < 4; r++) {
                __m256 g = _mm256_set1_ps(gr[r][o]);
                for (int j = 0; j < 4; j++)
                    acc[r][j] = _mm256_fmadd_ps(g, wv[j], acc[r][j]);
            }
        }
        for (int r = 0; r < 4 && i0 + r < n; r++)
            for (int j = 0; j < 4; j++)
                _mm256_maskstore_ps(xr[r] + 8 * j, mk[j], acc[r][j]);
    }
}

/* bchunk256() for a whole strip (32 columns), the same chains: three rows x 4 vectors are 12
 * sums, which fit AVX2's 16 registers (4 x 4 spilled), and each broadcast gradient is used at
 * once. */
#define BINIT(c)                                                                                      \
    __m256 a##c##0 = first ? _mm256_setzero_ps() : _mm256_loadu_ps(xr##c),                           \
           a##c##1 = first ? _mm256_setzero_ps() : _mm256_loadu_ps(xr##c + 8),                       \
           a##c##2 = first ? _mm256_setzero_ps() : _mm256_loadu_ps(xr##c + 16),                      \
           a##c##3 = first ? _mm256_setzero_ps() : _mm256_loadu_ps(xr##c + 24)
T256 static void bchunk256_full(const float *gy, const float *buf, int oc, int o0, float *gx, int n, int in, int out,
                                int k, bool first)
{
    for (int i0 = 0; i0 < n; i0 += 3) {
        int i1 = i0 + 1 < n ? i0 + 1 : i0, i2 = i0 + 2 < n ? i0 + 2 : i0;
        const float *gr0 = gy + (size_t)i0 * out + o0, *gr1 = gy + (size_t)i1 * out + o0;
        const float *gr2 = gy + (size_t)i2 * out + o0;
        float *xr0 = gx + (size_t)i0 * in + k, *xr1 = gx + (size_t)i1 * in + k, *xr2 = gx + (size_t)i2 * in + k;
        BINIT(0);
        BINIT(1);
        BINIT(2);
        for (int o = 0; o < oc; o++) {
            const float *br = buf + (size_t)o * 32;
            __m256 g0 = _mm256_broadcast_ss(gr0 + o), g1 = _mm256_broadcast_ss(gr1 + o);
            __m256 g2 = _mm256_broadcast_ss(gr2 + o);
            FMA12(br, 0) FMA12(br, 1) FMA12(br, 2) FMA12(br, 3)
        }
        /* a duplicated row stores last, with the same value */
        STORE4(xr, 2)
        STORE4(xr, 1)
        STORE4(xr, 0)
    }
}

/* One strip of @p width columns from k, all rows, at AVX-512 (width 64) or AVX2 (32). */
static void bstrip_simd(int level, const float *gy, const float *w, float *gx, int n, int in, int out, int k,
                        int width)
{
    _Alignas(64) float buf[CHUNK * 64];
    int cols = in - k < width ? in - k : width;
    for (int o0 = 0; o0 < out; o0 += CHUNK) {
        int oc = out - o0 < CHUNK ? out - o0 : CHUNK;
        for (int o = 0; o < oc; o++) {
            const float *src = w + (size_t)(o0 + o) * in + k;
            float *dst = buf + (size_t)o * width;
            for (int c = 0; c < cols; c++)
                dst[c] = src[c];
            for (int c = cols; c < width; c++)
                dst[c] = 0.0f;
        }
        if (level >= CNNL__SIMD_AVX512)
            bchunk512(gy, buf, oc, o0, gx, n, in, out, k, o0 == 0);
        else if (cols == 32)
            bchunk256_full(gy, buf, oc, o0, gx, n, in, out, k, o0 == 0);
        else
            bchunk256(gy, buf, oc, o0, gx, n, in, out, k, o0 == 0);
    }
}
#endif

#ifdef CNNL_X86_SIMD
/* Weight gradient, dW[o][k..k+64) += sum over rows i, in order, of gy[i][o] * x[i][k..k+64),
 * four outputs at a time. */
T512 static void wstrip512(const float *gy, const float *x, float *gw, int n, int in, int out, int k)
{
    int left = in - k;
    __mmask16 mk[4];
    for (int j = 0; j < 4; j++) {
        int c = left - 16 * j;
        mk[j] = c >= 16 ? (__mmask16)0xffff : c <= 0 ? (__mmask16)0 : (__mmask16)((1u << c) - 1u);
    }
    for (int o0 = 0; o0 < out; o0 += 4) {
        float *wr[4];
        int oo[4];
        for (int c = 0; c < 4; c++) {
            oo[c] = o0 + c < out ? o0 + c : o0;
            wr[c] = gw + (size_t)oo[c] * in + k;
        }
        __m512 acc[4][4];
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 4; j++)
                acc[c][j] = _mm512_maskz_loadu_ps(mk[j], wr[c] + 16 * j);
        for (int i = 0; i < n; i++) {
            const float *xr = x + (size_t)i * in + k;
            __m512 xv[4];
            for (int j = 0; j < 4; j++)
                xv[j] = _mm512_maskz_loadu_ps(mk[j], xr + 16 * j);
            for (int c = 0; c < 4; c++) {
                __m512 g = _mm512_set1_ps(gy[(size_t)i * out + oo[c]]);
                for (int j = 0; j < 4; j++)
                    acc[c][j] = _mm512_fmadd_ps(g, xv[j], acc[c][j]);
            }
        }
        for (int c = 0; c < 4 && o0 + c < out; c++)
            for (int j = 0; j < 4; j++)
                _mm512_mask_storeu_ps(wr[c] + 16 * j, mk[j], acc[c][j]);
    }
}

T256 static void wstrip256(const float *gy, const float *x, float *gw, int n, int in, int out, int k)
{
    int left = in - k;
    __m256i mk[4];
    for (int j = 0; j < 4; j++)
        mk[j] = _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8 * j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int o0 = 0; o0 < out; o0 += 4) {
        float *wr[4];
        int oo[4];
        for (int c = 0; c < 4; c++) {
            oo[c] = o0 + c < out ? o0 + c : o0;
            wr[c] = gw + (size_t)oo[c] * in + k;
        }
        __m256 acc[4][4];
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 4; j++)
                acc[c][j] = _mm256_maskload_ps(wr[c] + 8 * j, mk[j]);
        for (int i = 0; i < n; i++) {
            const float *xr = x + (size_t)i * in + k;
            __m256 xv[4];
            for (int j = 0; j < 4; j++)
                xv[j] = _mm256_maskload_ps(xr + 8 * j, mk[j]);
            for (int c = 0; c < 4; c++) {
                __m256 g = _mm256_set1_ps(gy[(size_t)i * out + oo[c]]);
                for (int j = 0; j < 4; j++)
                    acc[c][j] = _mm256_fmadd_ps(g, xv[j], acc[c][j]);
            }
        }
        for (int c = 0; c < 4 && o0 + c < out; c++)
            for (int j = 0; j < 4; j++)
                _mm256_maskstore_ps(wr[c] + 8 * j, mk[j], acc[c][j]);
    }
}
#endif

#ifdef CNNL_X86_SIMD
/* wstrip256() for a whole strip (32 columns), the same chains: rows of x are often a power
 * of two apart, so read in place the strip's rows fell into one cache set and were fetched
 * again for every block of outputs; here they are copied, XROWS rows at a time, into a dense
 * buffer (a sum stored and reloaded between blocks of rows is unchanged). Three outputs x 4
 * vectors are 12 sums, which fit AVX2's 16 registers (4 x 4 spilled), and each broadcast
 * gradient is used at once. */
#define XROWS 128
#define WLOAD(c) __m256 a##c##0 = _mm256_loadu_ps(wr##c), a##c##1 = _mm256_loadu_ps(wr##c + 8),      \
                        a##c##2 = _mm256_loadu_ps(wr##c + 16), a##c##3 = _mm256_loadu_ps(wr##c + 24)
T256 static void wstrip256_full(const float *gy, const float *x, float *gw, int n, int in, int out, int k)
{
    _Alignas(32) float xb[XROWS * 32];
    for (int i0 = 0; i0 < n; i0 += XROWS) {
        int rows = n - i0 < XROWS ? n - i0 : XROWS;
        for (int i = 0; i < rows; i++)
            memcpy(xb + (size_t)i * 32, x + (size_t)(i0 + i) * in + k, 32 * sizeof(float));
        for (int o0 = 0; o0 < out; o0 += 3) {
            int o1 = o0 + 1 < out ? o0 + 1 : o0, o2 = o0 + 2 < out ? o0 + 2 : o0;
            float *wr0 = gw + (size_t)o0 * in + k, *wr1 = gw + (size_t)o1 * in + k, *wr2 = gw + (size_t)o2 * in + k;
            WLOAD(0);
            WLOAD(1);
            WLOAD(2);
            const float *gr = gy + (size_t)i0 * out;
            for (int i = 0; i < rows; i++, gr += out) {
                const float *xr = xb + (size_t)i * 32;
                __m256 g0 = _mm256_broadcast_ss(gr + o0), g1 = _mm256_broadcast_ss(gr + o1);
                __m256 g2 = _mm256_broadcast_ss(gr + o2);
                FMA12(xr, 0) FMA12(xr, 1) FMA12(xr, 2) FMA12(xr, 3)
            }
            /* a duplicated output stores last, with the same value */
            STORE4(wr, 2)
            STORE4(wr, 1)
            STORE4(wr, 0)
        }
    }
}
#endif

/* Below AVX2, the weight gradient in the same order (over rows) per element. */
static void wstrip_plain(const float *gy, const float *x, float *gw, int n, int in, int out, int k, int width)
{
    int kend = k + width < in ? k + width : in;
    for (int o = 0; o < out; o++) {
        float *g = gw + (size_t)o * in;
        for (int i = 0; i < n; i++) {
            float a = gy[(size_t)i * out + o];
            const float *xr = x + (size_t)i * in;
            for (int c = k; c < kend; c++)
                g[c] += a * xr[c];
        }
    }
}

void cnnl__linear_backward_weights(int level, const float *gy, const float *x, float *gw, int n, int in, int out)
{
    if (n < 1 || in < 1 || out < 1)
        return;
    int width = level >= CNNL__SIMD_AVX512 ? 64 : 32;
    long strips = (in + width - 1) / width;
    int threads = (long)n * in * out < (1L << 18) ? 1 : cnnl__num_threads();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long sidx = 0; sidx < strips; sidx++) {
        int k = (int)sidx * width;
#ifdef CNNL_X86_SIMD
        if (level >= CNNL__SIMD_AVX512)
            wstrip512(gy, x, gw, n, in, out, k);
        else if (level >= CNNL__SIMD_AVX2 && k + 32 <= in)
            wstrip256_full(gy, x, gw, n, in, out, k);
        else if (level >= CNNL__SIMD_AVX2)
            wstrip256(gy, x, gw, n, in, out, k);
        else
#endif
            wstrip_plain(gy, x, gw, n, in, out, k, width);
    }
    (void)level;
}

/* Below AVX2, backward data: the same order (over o) per element. */
static void bstrip_plain(const float *gy, const float *w, float *gx, int n, int in, int out, int k, int width)
{
    int kend = k + width < in ? k + width : in;
    for (int i = 0; i < n; i++) {
        float *g = gx + (size_t)i * in;
        for (int c = k; c < kend; c++)
            g[c] = 0.0f;
        for (int o = 0; o < out; o++) {
            float a = gy[(size_t)i * out + o];
            const float *wr = w + (size_t)o * in;
            for (int c = k; c < kend; c++)
                g[c] += a * wr[c];
        }
    }
}

void cnnl__linear_backward_data(int level, const float *gy, const float *w, float *gx, int n, int in, int out)
{
    if (n < 1 || in < 1 || out < 1)
        return;
    /* Strips of columns of W (out x width floats, a few tens of KB) across threads; each
     * strip is read from memory once and stays in cache for every block of rows. */
    int width = level >= CNNL__SIMD_AVX512 ? 64 : 32;
    long strips = (in + width - 1) / width;
    int threads = (long)n * in * out < (1L << 18) ? 1 : cnnl__num_threads();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long sidx = 0; sidx < strips; sidx++) {
        int k = (int)sidx * width;
#ifdef CNNL_X86_SIMD
        if (level >= CNNL__SIMD_AVX2)
            bstrip_simd(level, gy, w, gx, n, in, out, k, width);
        else
#endif
            bstrip_plain(gy, w, gx, n, in, out, k, width);
    }
    (void)level;
}

/* Below AVX2: eight partial sums per output, the same for every row. */
static void tile_plain(const float *x, const float *w, const float *bias, float *y, int n, int in, int out, int i0,
                       int o0)
{
    for (int r = 0; r < 4 && i0 + r < n; r++)
        for (int c = 0; c < 4 && o0 + c < out; c++) {
            const float *xr = x + (size_t)(i0 + r) * in, *wr = w + (size_t)(o0 + c) * in;
            float acc[8] = {0};
            int k = 0;
            for (; k + 8 <= in; k += 8)
                for (int j = 0; j < 8; j++)
                    acc[j] += xr[k + j] * wr[k + j];
            for (int j = 0; k + j < in; j++)
                acc[j] += xr[k + j] * wr[k + j];
            float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            y[(size_t)(i0 + r) * out + o0 + c] = s + (bias ? bias[o0 + c] : 0.0f);
        }
}

/* Inputs per block of the AVX-512 forward: the block of x (every row) and of each thread's W
 * rows stay in cache while the thread's tiles run over it. */
#define KBLOCK 512

size_t cnnl__linear_forward_ws(int level, int n, int out)
{
    if (level >= CNNL__SIMD_AVX512)
        return (size_t)((n + 3) / 4) * (size_t)((out + 3) / 4) * 256;
    return level >= CNNL__SIMD_AVX2 ? (size_t)((n + 3) / 4) * (size_t)((out + 2) / 3) * 96 : 0;
}

void cnnl__linear_forward(int level, const float *x, const float *w, const float *bias, float *y, int n, int in,
                          int out, float *ws)
{
    if (n < 1 || in < 1 || out < 1)
        return;
    int ob = (out + 3) / 4, ib = (n + 3) / 4;
    long tiles = (long)ob * ib;
    /* Outputs across threads, each thread's W rows staying in its cache while it goes down
     * the batch; enough work per tile that small layers stay on one thread. */
    int threads = (long)n * in * out < (1L << 18) ? 1 : cnnl__num_threads();
#ifdef CNNL_X86_SIMD
    if (level >= CNNL__SIMD_AVX2) {
        /* Each thread owns a fixed range of output tiles and goes over the inputs block by
         * block, its accumulators saved in @p ws between blocks: x is read from memory about
         * once per thread instead of once per output tile (the report network's first Linear
         * reads 4 MB of x against 16 MB of W). AVX-512: tiles of 4 x 4 outputs, blocks of 512
         * inputs. AVX2: tiles of 4 rows x 3 outputs in longer blocks, x's block about 1 MiB
         * (inputs of every row): on a Zen 3 CPU the report network's first Linear (32 rows,
         * 32768 -> 128, 2 threads) took 3.2 ms in one pass per tile, 3.1 / 2.2 / 2.0 ms with
         * blocks of 512 / 4096 / 8192 inputs (longer runs along W's rows for the prefetcher). */
        bool wide = level >= CNNL__SIMD_AVX512;
        int per = wide ? 4 : 3, obt = (out + per - 1) / per, kb = wide ? KBLOCK : 262144 / n;
        size_t save = wide ? 256 : 96;
        kb = kb < KBLOCK ? KBLOCK : kb / 8 * 8;
#pragma omp parallel num_threads(threads)
        {
            size_t lo, hi;
            cnnl__chunk((size_t)obt, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            for (int k0 = 0; k0 < in; k0 += kb) {
                int k1 = in - k0 > kb ? k0 + kb : in;
                for (size_t ot = lo; ot < hi; ot++)
                    for (int it = 0; it < ib; it++) {
                        float *sv = ws + ((size_t)ot * ib + it) * save;
                        if (wide)
                            tile512(x, w, bias, y, n, in, out, it * 4, (int)ot * 4, k0, k1, sv);
                        else
                            tile256(x, w, bias, y, n, in, out, it * 4, (int)ot * 3, k0, k1, sv);
                    }
            }
        }
        return;
    }
#endif
    (void)ws;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long t = 0; t < tiles; t++) {
        int o0 = (int)(t / ib) * 4, i0 = (int)(t % ib) * 4;
        tile_plain(x, w, bias, y, n, in, out, i0, o0);
    }
    (void)level;
}
