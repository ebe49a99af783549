/*
 * Winograd F(4x4, 3x3) forward convolution at AVX2 width, for 3x3 stride-1 pad-1 convolutions
 * on NCHW float32 arrays, with the bias, ReLU and 2x2 max pool of a fused layer applied before
 * the output is stored.
 *
 * Why: on a CPU without AVX-512 oneDNN 2.6 has no Winograd kernel, and its direct AVX2
 * convolution already runs at about 80% of the float32 FMA peak; ONNX Runtime runs this
 * network at the same share of the peak. Only fewer multiplications go faster: F(4x4, 3x3)
 * does 36 multiply-adds per input channel for 16 outputs where the direct convolution does 144.
 *
 * How: the output planes are cut into 4x4 tiles. A unit of work is one image and a few tile
 * rows (about 32 tiles). For each input channel, the 6x6 input patch of every tile is
 * transformed (B^T d B: rows first, vectorised along the row, then columns, eight tiles per
 * vector after a stride-4 de-interleave); then, four output channels at a time, 36 small
 * matrix products (tiles x channels times channels x 4) give the transformed outputs, which
 * are transformed back (A^T m A), biased, rectified, pooled and stored as whole rows. The
 * weights are transformed once per call (G g G^T, in double precision).
 *
 * Lanes of a vector hold tiles in the order 0 2 4 6 1 3 5 7 (what the de-interleave leaves);
 * the final stores undo it. Every output is one fixed sequence of operations (the sum over
 * input channels in order), whatever the thread count. Results differ from the direct
 * convolution's by rounding: up to about 1e-5 of the largest output (tests/nn/test_winograd.c).
 */
#include <stdlib.h>
#include <string.h>

#include "ops/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CNNL_WINO_X86 1
#include <immintrin.h>
#endif

enum { KB = 4 }; /* output channels per block of products */

/* Tiles per unit: whole tile rows, each rounded up to whole vectors of 8 tiles. */
static void unit_shape(const cnnl__conv_geom *g, int *twp, int *rows)
{
    int tw = g->ow / 4;
    *twp = (tw + 7) / 8 * 8;
    *rows = *twp >= 32 ? 1 : 32 / *twp;
    if (*rows > g->oh / 4)
        *rows = g->oh / 4;
}

static size_t per_thread_floats(const cnnl__conv_geom *g)
{
    int twp, rows;
    unit_shape(g, &twp, &rows);
    size_t t = (size_t)twp * rows, wb = (size_t)twp * 4 + 8;
    /* row-transformed lines, a zero line, V (36 x c x t), M (36 x KB x t), a store tile */
    return 6 * wb + wb + 36 * (size_t)g->c * t + 36 * (size_t)KB * t + 64 + 8 * 8;
}

bool cnnl__winograd_ok(const cnnl__conv_geom *g)
{
    if (g->k != 3 || g->stride != 1 || g->pad != 1 || g->dil > 1 || g->groups > 1 || g->bf16)
        return false;
    if (g->oh % 4 || g->ow % 4 || g->oh < 4 || g->ow < 4 || (g->pool && !g->relu))
        return false;
    if (g->c > 4096 || g->oc > 4096 || g->ow > 1 << 16)
        return false;
    const char *e = getenv("CNNLITE_CONV_ALGO");
    if ((e && !strcmp(e, "direct")) || !cnnl__conv_own_enabled())
        return false;
    if (cnnl__simd_level() < CNNL__SIMD_AVX2)
        return false;
    /* CNNLITE_CONV_ALGO=winograd-avx2 uses it wherever it can run (tests). */
    if (e && !strcmp(e, "winograd-avx2"))
        return true;
    /* With AVX-512 oneDNN picks its own Winograd or direct kernels at full width; this kernel
     * is for the CPUs where it has none. With 3 input channels (the report's first layer) it
     * was slower than oneDNN's direct kernel: 49.6 against 40.3 ms per batch of 32 at 256x256
     * on a Zen 1 CPU; from 16 (the second layer) it was 1.6x faster. */
    return cnnl__simd_level() == CNNL__SIMD_AVX2 && g->c >= 8;
}

size_t cnnl__winograd_ws_floats(const cnnl__conv_geom *g, int threads)
{
    return 36 * (size_t)g->c * g->oc + (size_t)threads * per_thread_floats(g) + 16;
}

/* U[xi][c][k] = (G g G^T)[i][j], xi = 6 i + j, in double precision. */
static void transform_weights(const cnnl__conv_geom *g, const float *wt, float *u, int threads)
{
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    int C = g->c, K = g->oc;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int kc = 0; kc < K * C; kc++) {
        int k = kc / C, c = kc % C;
        const float *w = wt + (size_t)kc * 9;
        double t[6][3];
        for (int i = 0; i < 6; i++)
            for (int s = 0; s < 3; s++)
                t[i][s] = G[i][0] * w[s] + G[i][1] * w[3 + s] + G[i][2] * w[6 + s];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                double v = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                u[((size_t)(i * 6 + j) * C + c) * K + k] = (float)v;
            }
    }
}

#ifdef CNNL_WINO_X86
#define T256 __attribute__((target("avx2,fma")))
#define INL __attribute__((always_inline)) inline

/* B^T applied to six values (rows or columns of a patch). */
T256 static INL void bt6(const __m256 d[6], __m256 r[6])
{
    const __m256 four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f), two = _mm256_set1_ps(2.f);
    __m256 t4 = _mm256_fmadd_ps(four, d[1], _mm256_setzero_ps()); /* 4 d1 */
    __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]);                 /* d4 - 4 d2 */
    __m256 b = _mm256_sub_ps(d[3], t4);                             /* d3 - 4 d1 */
    __m256 e = _mm256_sub_ps(d[4], d[2]);                           /* d4 - d2 */
    __m256 f = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));       /* 2 (d3 - d1) */
    r[0] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[2], _mm256_mul_ps(four, d[0])), d[4]);
    r[1] = _mm256_add_ps(a, b);    /* -4 d1 - 4 d2 + d3 + d4 */
    r[2] = _mm256_sub_ps(a, b);    /* 4 d1 - 4 d2 - d3 + d4 */
    r[3] = _mm256_add_ps(e, f);    /* -2 d1 - d2 + 2 d3 + d4 */
    r[4] = _mm256_sub_ps(e, f);    /* 2 d1 - d2 - 2 d3 + d4 */
    r[5] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[3], t4), d[5]); /* 4 d1 - 5 d3 + d5 */
}

/* A^T applied to six values. */
T256 static INL void at6(const __m256 m[6], __m256 o[4])
{
    __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.f), d34, d12);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.f), s34, s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.f), d34, d12), m[5]);
}

/* Eight groups of four consecutive floats (a[0..3]) to four vectors of the groups' j-th
 * elements, lanes in group order 0 2 4 6 1 3 5 7. */
T256 static INL void deinterleave4(const __m256 a[4], __m256 j[4])
{
    __m256 u0 = _mm256_unpacklo_ps(a[0], a[1]), u1 = _mm256_unpackhi_ps(a[0], a[1]);
    __m256 u2 = _mm256_unpacklo_ps(a[2], a[3]), u3 = _mm256_unpackhi_ps(a[2], a[3]);
    j[0] = _mm256_shuffle_ps(u0, u2, 0x44);
    j[1] = _mm256_shuffle_ps(u0, u2, 0xEE);
    j[2] = _mm256_shuffle_ps(u1, u3, 0x44);
    j[3] = _mm256_shuffle_ps(u1, u3, 0xEE);
}

/* The inverse: four vectors (lanes in that order) to 32 consecutive floats. */
T256 static INL void interleave4(const __m256 j[4], float *out)
{
    __m256 l01 = _mm256_unpacklo_ps(j[0], j[1]), h01 = _mm256_unpackhi_ps(j[0], j[1]);
    __m256 l23 = _mm256_unpacklo_ps(j[2], j[3]), h23 = _mm256_unpackhi_ps(j[2], j[3]);
    _mm256_storeu_ps(out, _mm256_shuffle_ps(l01, l23, 0x44));
    _mm256_storeu_ps(out + 8, _mm256_shuffle_ps(l01, l23, 0xEE));
    _mm256_storeu_ps(out + 16, _mm256_shuffle_ps(h01, h23, 0x44));
    _mm256_storeu_ps(out + 24, _mm256_shuffle_ps(h01, h23, 0xEE));
}

/* Two vectors (lanes in that order) of pairs to 16 consecutive floats a0 b0 a1 b1 ... */
T256 static INL void interleave2(__m256 a, __m256 b, float *out)
{
    __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
    _mm256_storeu_ps(out, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(lo), 0xD8)));
    _mm256_storeu_ps(out + 8, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(hi), 0xD8)));
}

/* Input transform of one tile row (ty) of channel c into V at tile offset @p toff. */
T256 static void input_row(const cnnl__conv_geom *g, const float *xc, int ty, int twp, float *rb, size_t wb,
                           const float *zero, float *v, size_t t, int c, int toff)
{
    int W = g->w, H = g->h;
    const float *p[6];
    for (int i = 0; i < 6; i++) {
        int iy = 4 * ty - 1 + i;
        p[i] = iy >= 0 && iy < H ? xc + (size_t)iy * W : zero;
    }
    /* Rows: rb[i][1 + x] = (B^T d)[i] at input column x; rb[i][0] and past W stay zero. */
    int x = 0;
    for (; x + 8 <= W; x += 8) {
        __m256 d[6], r[6];
        for (int i = 0; i < 6; i++)
            d[i] = _mm256_loadu_ps(p[i] + x);
        bt6(d, r);
        for (int i = 0; i < 6; i++)
            _mm256_storeu_ps(rb + i * wb + 1 + x, r[i]);
    }
    for (; x < W; x++) {
        float d0 = p[0][x], d1 = p[1][x], d2 = p[2][x], d3 = p[3][x], d4 = p[4][x], d5 = p[5][x];
        rb[0 * wb + 1 + x] = 4 * d0 - 5 * d2 + d4;
        rb[1 * wb + 1 + x] = (d4 - 4 * d2) + (d3 - 4 * d1);
        rb[2 * wb + 1 + x] = (d4 - 4 * d2) - (d3 - 4 * d1);
        rb[3 * wb + 1 + x] = (d4 - d2) + 2 * (d3 - d1);
        rb[4 * wb + 1 + x] = (d4 - d2) - 2 * (d3 - d1);
        rb[5 * wb + 1 + x] = 4 * d1 - 5 * d3 + d5;
    }
    /* Columns, eight tiles per vector. */
    for (int tv = 0; tv < twp; tv += 8) {
        __m256 col[6][6]; /* [i][j] */
        for (int i = 0; i < 6; i++) {
            const float *b = rb + i * wb + 4 * tv;
            __m256 a[4] = {_mm256_loadu_ps(b), _mm256_loadu_ps(b + 8), _mm256_loadu_ps(b + 16),
                           _mm256_loadu_ps(b + 24)};
            __m256 j4[4];
            deinterleave4(a, j4);
            __m256 a2[4] = {_mm256_loadu_ps(b + 4), _mm256_loadu_ps(b + 12), _mm256_loadu_ps(b + 20),
                            _mm256_loadu_ps(b + 28)};
            __m256 u0 = _mm256_unpacklo_ps(a2[0], a2[1]), u2 = _mm256_unpacklo_ps(a2[2], a2[3]);
            __m256 d[6] = {j4[0], j4[1], j4[2], j4[3], _mm256_shuffle_ps(u0, u2, 0x44),
                           _mm256_shuffle_ps(u0, u2, 0xEE)};
            bt6(d, col[i]);
        }
        float *vt = v + (size_t)c * t + toff + tv;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                _mm256_storeu_ps(vt + (size_t)(i * 6 + j) * g->c * t, col[i][j]);
    }
}

/* M[xi][kk][tiles] for kk < NK, tiles [t0, t0 + 8 NV), summed over channels in order. */
T256 static INL void products(const float *v, const float *u, int C, int K, size_t t, int t0, int NV, int NK,
                              float *m)
{
    __m256 acc[2][KB];
    for (int a = 0; a < NV; a++)
        for (int b = 0; b < NK; b++)
            acc[a][b] = _mm256_setzero_ps();
    for (int c = 0; c < C; c++) {
        const float *vc = v + (size_t)c * t + t0;
        const float *uc = u + (size_t)c * K;
        __m256 x0 = _mm256_loadu_ps(vc), x1 = NV > 1 ? _mm256_loadu_ps(vc + 8) : x0;
        for (int b = 0; b < NK; b++) {
            __m256 w = _mm256_broadcast_ss(uc + b);
            acc[0][b] = _mm256_fmadd_ps(x0, w, acc[0][b]);
            if (NV > 1)
                acc[1][b] = _mm256_fmadd_ps(x1, w, acc[1][b]);
        }
    }
    for (int a = 0; a < NV; a++)
        for (int b = 0; b < NK; b++)
            _mm256_storeu_ps(m + (size_t)b * t + t0 + 8 * a, acc[a][b]);
}

T256 static void products_block(const float *v, const float *u, int C, int K, size_t t, int nk, float *m)
{
    for (int xi = 0; xi < 36; xi++) {
        const float *vx = v + (size_t)xi * C * t;
        const float *ux = u + (size_t)xi * C * K;
        float *mx = m + (size_t)xi * KB * t;
        int t0 = 0;
        if (nk == KB) {
            for (; t0 + 16 <= (int)t; t0 += 16)
                products(vx, ux, C, K, t, t0, 2, KB, mx);
            if (t0 < (int)t)
                products(vx, ux, C, K, t, t0, 1, KB, mx);
        } else {
            for (; t0 + 16 <= (int)t; t0 += 16)
                for (int b = 0; b < nk; b++)
                    products(vx, ux + b, C, K, t, t0, 2, 1, mx + (size_t)b * t);
            if (t0 < (int)t)
                for (int b = 0; b < nk; b++)
                    products(vx, ux + b, C, K, t, t0, 1, 1, mx + (size_t)b * t);
        }
    }
}

/* Output transform of one channel's eight tiles (one vector) and the stores. */
T256 static INL void output_tiles(const cnnl__conv_geom *g, const float *mk, size_t mstride, __m256 bias,
                                  float *yk, uint8_t *ak, int ty, int tx0, int ntile, float *tmp, __m256 *fin)
{
    __m256 r[4][6];
    for (int j = 0; j < 6; j++) {
        __m256 m[6], o[4];
        for (int i = 0; i < 6; i++)
            m[i] = _mm256_loadu_ps(mk + (size_t)(i * 6 + j) * mstride);
        at6(m, o);
        for (int a = 0; a < 4; a++)
            r[a][j] = o[a];
    }
    __m256 out[4][4];
    for (int a = 0; a < 4; a++) {
        at6(r[a], out[a]);
        for (int b = 0; b < 4; b++) {
            out[a][b] = _mm256_add_ps(out[a][b], bias);
            *fin = _mm256_fmadd_ps(out[a][b], _mm256_setzero_ps(), *fin); /* NaN if not finite */
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    if (g->pool) {
        /* The first maximum of each window in the order (0,0) (0,1) (1,0) (1,1), as PyTorch
         * keeps it and as the other engines do, then ReLU; its position when @p ak. */
        const __m256 one = _mm256_castsi256_ps(_mm256_set1_epi32(1));
        const __m256 two = _mm256_castsi256_ps(_mm256_set1_epi32(2));
        int pw = g->ow / 2;
        for (int a = 0; a < 2; a++) {
            __m256 p[2], idx[2];
            for (int h = 0; h < 2; h++) {
                __m256 A = out[2 * a][2 * h], B = out[2 * a][2 * h + 1];
                __m256 Cc = out[2 * a + 1][2 * h], D = out[2 * a + 1][2 * h + 1];
                __m256 mb = _mm256_cmp_ps(B, A, _CMP_GT_OQ), md = _mm256_cmp_ps(D, Cc, _CMP_GT_OQ);
                __m256 m0 = _mm256_blendv_ps(A, B, mb), m1 = _mm256_blendv_ps(Cc, D, md);
                __m256 mh = _mm256_cmp_ps(m1, m0, _CMP_GT_OQ);
                __m256 m = _mm256_blendv_ps(m0, m1, mh);
                p[h] = _mm256_and_ps(m, _mm256_cmp_ps(m, zero, _CMP_GT_OQ));
                idx[h] = _mm256_blendv_ps(_mm256_and_ps(mb, one), _mm256_or_ps(two, _mm256_and_ps(md, one)), mh);
            }
            size_t off = (size_t)(2 * ty + a) * pw + 2 * tx0;
            if (ntile == 8) {
                interleave2(p[0], p[1], yk + off);
            } else {
                interleave2(p[0], p[1], tmp);
                memcpy(yk + off, tmp, (size_t)ntile * 2 * sizeof(float));
            }
            if (ak) {
                int32_t pos[16];
                interleave2(idx[0], idx[1], (float *)(void *)pos);
                for (int i = 0; i < 2 * ntile; i++)
                    ak[off + i] = (uint8_t)pos[i];
            }
        }
    } else {
        int ow = g->ow;
        for (int a = 0; a < 4; a++) {
            if (g->relu)
                for (int b = 0; b < 4; b++)
                    out[a][b] = _mm256_max_ps(out[a][b], zero);
            float *row = yk + (size_t)(4 * ty + a) * ow + 4 * tx0;
            if (ntile == 8) {
                interleave4(out[a], row);
            } else {
                interleave4(out[a], tmp);
                memcpy(row, tmp, (size_t)ntile * 4 * sizeof(float));
            }
        }
    }
}

T256 static bool unit_avx2(const cnnl__conv_geom *g, const float *x, const float *u, const float *bias, float *y,
                           uint8_t *arg, int n, int ty0, int nrows, int twp, float *ws)
{
    int C = g->c, K = g->oc, tw = g->ow / 4;
    size_t wb = (size_t)twp * 4 + 8, t = (size_t)twp * nrows;
    float *rb = ws, *zero = rb + 6 * wb, *v = zero + wb, *m = v + 36 * (size_t)C * t, *tmp = m + 36 * (size_t)KB * t;
    memset(rb, 0, 7 * wb * sizeof(float));
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < C; c++)
            input_row(g, x + ((size_t)n * C + c) * g->h * g->w, ty0 + r, twp, rb, wb, zero, v, t, c, r * twp);
    int oh = g->pool ? g->oh / 2 : g->oh, ow = g->pool ? g->ow / 2 : g->ow;
    __m256 fin = _mm256_setzero_ps();
    for (int k0 = 0; k0 < K; k0 += KB) {
        int nk = K - k0 < KB ? K - k0 : KB;
        products_block(v, u + k0, C, K, t, nk, m);
        for (int b = 0; b < nk; b++) {
            __m256 bv = _mm256_set1_ps(bias ? bias[k0 + b] : 0.f);
            float *yk = y + ((size_t)n * K + k0 + b) * oh * ow;
            uint8_t *ak = arg ? arg + ((size_t)n * K + k0 + b) * oh * ow : NULL;
            for (int r = 0; r < nrows; r++)
                for (int tv = 0; tv < twp; tv += 8) {
                    int ntile = tw - tv < 8 ? tw - tv : 8;
                    output_tiles(g, m + (size_t)b * t + (size_t)r * twp + tv, KB * t, bv, yk, ak, ty0 + r, tv, ntile,
                                 tmp, &fin);
                }
        }
    }
    float f[8];
    _mm256_storeu_ps(f, fin);
    for (int i = 0; i < 8; i++)
        if (f[i] != 0.f)
            return false;
    return true;
}
#endif /* CNNL_WINO_X86 */

bool cnnl__winograd_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                            uint8_t *arg, float *ws, int threads)
{
#ifdef CNNL_WINO_X86
    int twp, rows;
    unit_shape(g, &twp, &rows);
    int th = g->oh / 4, per_img = (th + rows - 1) / rows, units = g->n * per_img;
    float *u = ws;
    size_t ptf = per_thread_floats(g);
    float *scratch = ws + 36 * (size_t)g->c * g->oc;
    transform_weights(g, wt, u, threads);
    int bad = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(| : bad)
    for (int i = 0; i < units; i++) {
        int n = i / per_img, ty0 = (i % per_img) * rows;
        int nrows = th - ty0 < rows ? th - ty0 : rows;
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        if (!unit_avx2(g, x, u, b, y, g->pool ? arg : NULL, n, ty0, nrows, twp, scratch + (size_t)tid * ptf))
            bad = 1;
    }
    return !bad;
#else
    (void)g, (void)x, (void)wt, (void)b, (void)y, (void)arg, (void)ws, (void)threads;
    return false;
#endif
}
