/*
 * Vector kernels of the convolution epilogue: ReLU + 2x2 max pool from a channel-blocked
 * convolution output (16 or 8 channels per pixel, pixels dense) into NCHW planes, and the
 * reverse routing of the pooled gradient, at AVX-512 and AVX2 width.
 *
 * The portable loops in lib/ops/conv_dnnl.c compute four lanes at a time and then store the
 * lanes of a channel block to their planes one float at a time; on a 512x512 training step
 * that scatter cost as much as a third of the convolutions' time. Here a tile of 16 (AVX-512)
 * or 8 (AVX2) pooled columns of a channel block is computed in registers, transposed in
 * registers, and stored as whole rows of each channel's plane. The results are bit-identical
 * to the portable loops: the same comparisons select the same values; nothing is rounded.
 *
 * Also here: the 2x2 average pool's rows, and the conversions at the edges of the oneDNN
 * engine (float32 to bfloat16 in place of layout; float32 NCHW to nChw16c in float32 or
 * bfloat16, and back in float32), which oneDNN 2.6's reorders did at a third (bfloat16) to
 * a half (float32) of the speed of these loops on a Zen 5 CPU.
 *
 * The level is chosen at run time from what the CPU reports; CNNLITE_ISA=avx2 or sse2 lowers
 * it (tests compare the levels; it never raises it above the CPU's).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CNNL_X86_SIMD 1
#include <immintrin.h>
#endif

int cnnl__simd_level(void)
{
#ifdef CNNL_X86_SIMD
    int cpu = CNNL__SIMD_SSE2;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cpu = CNNL__SIMD_AVX2;
    if (cpu == CNNL__SIMD_AVX2 && __builtin_cpu_supports("avx512f"))
        cpu = CNNL__SIMD_AVX512;
    const char *e = getenv("CNNLITE_ISA");
    int want = cpu;
    if (e && (!strcmp(e, "sse2") || !strcmp(e, "generic")))
        want = CNNL__SIMD_SSE2;
    else if (e && !strcmp(e, "avx2"))
        want = CNNL__SIMD_AVX2;
    return want < cpu ? want : cpu;
#else
    return CNNL__SIMD_SSE2;
#endif
}

#ifdef CNNL_X86_SIMD

/* ---- AVX-512: 16 pooled columns x 16 channels per tile ---- */

#define T512 __attribute__((target("avx512f")))

/* r[i] holds row i of a 16x16 matrix; afterwards r[i] holds column i. */
T512 static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    /* r[4g + k] now holds element k (+4 per 128-bit lane) of rows 4g..4g+3. */
    __m512 o[16];
    for (int k = 0; k < 4; k++) {
        __m512 a = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88), b = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        __m512 c = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88), d = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
        o[k] = _mm512_shuffle_f32x4(a, c, 0x88);
        o[k + 8] = _mm512_shuffle_f32x4(a, c, 0xDD);
        o[k + 4] = _mm512_shuffle_f32x4(b, d, 0x88);
        o[k + 12] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
    for (int i = 0; i < 16; i++)
        r[i] = o[i];
}

T512 static int pool_avx512(const float *p0, const float *p1, int pw, float *y, uint8_t *arg, size_t plane,
                            float *fin)
{
    const __m512 z = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
    __m512 fv = z;
    int cols = pw & ~15;
    for (int pc0 = 0; pc0 < cols; pc0 += 16) {
        __m512 m[16], ix[16];
        for (int t = 0; t < 16; t++) {
            const float *q0 = p0 + (size_t)(2 * (pc0 + t)) * 16, *q1 = p1 + (size_t)(2 * (pc0 + t)) * 16;
            __m512 a = _mm512_loadu_ps(q0), b = _mm512_loadu_ps(q0 + 16);
            __m512 c = _mm512_loadu_ps(q1), d = _mm512_loadu_ps(q1 + 16);
            fv = _mm512_fmadd_ps(a, z, fv);
            fv = _mm512_fmadd_ps(b, z, fv);
            fv = _mm512_fmadd_ps(c, z, fv);
            fv = _mm512_fmadd_ps(d, z, fv);
            __mmask16 mb = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), md = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
            __m512 m0 = _mm512_mask_blend_ps(mb, a, b), m1 = _mm512_mask_blend_ps(md, c, d);
            __mmask16 mh = _mm512_cmp_ps_mask(m1, m0, _CMP_GT_OQ);
            /* max(x, +0) gives +0 for NaN, -0 and negatives, as "x > 0 ? x : 0" does. */
            m[t] = _mm512_max_ps(_mm512_mask_blend_ps(mh, m0, m1), z);
            if (arg) {
                __m512i i0 = _mm512_maskz_mov_epi32(mb, one), i1 = _mm512_mask_blend_epi32(md, two, three);
                ix[t] = _mm512_castsi512_ps(_mm512_mask_blend_epi32(mh, i0, i1));
            }
        }
        transpose16(m);
        for (int j = 0; j < 16; j++)
            _mm512_storeu_ps(y + (size_t)j * plane + pc0, m[j]);
        if (!arg)
            continue;
        transpose16(ix);
        for (int j = 0; j < 16; j++)
            _mm_storeu_si128((__m128i *)(void *)(arg + (size_t)j * plane + pc0),
                             _mm512_cvtepi32_epi8(_mm512_castps_si512(ix[j])));
    }
    *fin += _mm512_reduce_add_ps(fv);
    return cols;
}

T512 static int unpool_avx512(const float *gr, const float *yr, const uint8_t *ar, size_t plane, int pw, float *p0,
                              float *p1)
{
    const __m512 z = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2),
                  three = _mm512_set1_epi32(3);
    int cols = pw & ~15;
    for (int pc0 = 0; pc0 < cols; pc0 += 16) {
        __m512 g[16], ix[16];
        for (int j = 0; j < 16; j++) {
            size_t o = (size_t)j * plane + pc0;
            __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(yr + o), z, _CMP_GT_OQ);
            g[j] = _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(gr + o));
            ix[j] = _mm512_castsi512_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(ar + o))));
        }
        transpose16(g);
        transpose16(ix);
        for (int t = 0; t < 16; t++) {
            float *q0 = p0 + (size_t)(2 * (pc0 + t)) * 16, *q1 = p1 + (size_t)(2 * (pc0 + t)) * 16;
            __m512i i = _mm512_castps_si512(ix[t]);
            _mm512_storeu_ps(q0, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(i, zero), g[t]));
            _mm512_storeu_ps(q0 + 16, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(i, one), g[t]));
            _mm512_storeu_ps(q1, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(i, two), g[t]));
            _mm512_storeu_ps(q1 + 16, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(i, three), g[t]));
        }
    }
    return cols;
}

/* ---- AVX2: 8 pooled columns x 8 channels per tile (a 16-channel block is two halves) ---- */

#define T256 __attribute__((target("avx2,fma")))

T256 static inline void transpose8(__m256 r[8])
{
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        s[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* s[4g + k] holds element k (+4 in the upper lane) of rows 4g..4g+3. */
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(s[k], s[4 + k], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(s[k], s[4 + k], 0x31);
    }
}

T256 static int pool_avx2(const float *p0, const float *p1, int B, int nch, int pw, float *y, uint8_t *arg,
                          size_t plane, float *fin)
{
    const __m256 z = _mm256_setzero_ps();
    const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
    /* Byte 0 of each 32-bit lane, gathered into the low 4 bytes of each 128-bit half. */
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0);
    __m256 fv = z;
    int cols = pw & ~7;
    for (int h = 0; h + 8 <= nch; h += 8)
        for (int pc0 = 0; pc0 < cols; pc0 += 8) {
            __m256 m[8], ix[8];
            for (int t = 0; t < 8; t++) {
                const float *q0 = p0 + (size_t)(2 * (pc0 + t)) * B + h, *q1 = p1 + (size_t)(2 * (pc0 + t)) * B + h;
                __m256 a = _mm256_loadu_ps(q0), b = _mm256_loadu_ps(q0 + B);
                __m256 c = _mm256_loadu_ps(q1), d = _mm256_loadu_ps(q1 + B);
                fv = _mm256_fmadd_ps(a, z, fv);
                fv = _mm256_fmadd_ps(b, z, fv);
                fv = _mm256_fmadd_ps(c, z, fv);
                fv = _mm256_fmadd_ps(d, z, fv);
                __m256 mb = _mm256_cmp_ps(b, a, _CMP_GT_OQ), md = _mm256_cmp_ps(d, c, _CMP_GT_OQ);
                __m256 m0 = _mm256_blendv_ps(a, b, mb), m1 = _mm256_blendv_ps(c, d, md);
                __m256 mh = _mm256_cmp_ps(m1, m0, _CMP_GT_OQ);
                m[t] = _mm256_max_ps(_mm256_blendv_ps(m0, m1, mh), z);
                __m256i i0 = _mm256_and_si256(_mm256_castps_si256(mb), one);
                __m256i i1 = _mm256_add_epi32(two, _mm256_and_si256(_mm256_castps_si256(md), one));
                ix[t] = _mm256_blendv_ps(_mm256_castsi256_ps(i0), _mm256_castsi256_ps(i1), mh);
            }
            transpose8(m);
            for (int j = 0; j < 8; j++)
                _mm256_storeu_ps(y + (size_t)(h + j) * plane + pc0, m[j]);
            if (!arg)
                continue;
            transpose8(ix);
            for (int j = 0; j < 8; j++) {
                size_t o = (size_t)(h + j) * plane + pc0;
                __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_castps_si256(ix[j]), pick), join);
                _mm_storel_epi64((__m128i *)(void *)(arg + o), _mm256_castsi256_si128(bytes));
            }
        }
    __m128 f4 = _mm_add_ps(_mm256_castps256_ps128(fv), _mm256_extractf128_ps(fv, 1));
    float f[4];
    _mm_storeu_ps(f, f4);
    *fin += f[0] + f[1] + f[2] + f[3];
    return cols;
}

T256 static int unpool_avx2(const float *gr, const float *yr, const uint8_t *ar, size_t plane, int B, int nch, int pw,
                            float *p0, float *p1)
{
    const __m256 z = _mm256_setzero_ps();
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2),
                  three = _mm256_set1_epi32(3);
    int cols = pw & ~7;
    for (int h = 0; h + 8 <= nch; h += 8)
        for (int pc0 = 0; pc0 < cols; pc0 += 8) {
            __m256 g[8], ix[8];
            for (int j = 0; j < 8; j++) {
                size_t o = (size_t)(h + j) * plane + pc0;
                __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(yr + o), z, _CMP_GT_OQ);
                g[j] = _mm256_and_ps(pos, _mm256_loadu_ps(gr + o));
                ix[j] = _mm256_castsi256_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(ar + o))));
            }
            transpose8(g);
            transpose8(ix);
            for (int t = 0; t < 8; t++) {
                float *q0 = p0 + (size_t)(2 * (pc0 + t)) * B + h, *q1 = p1 + (size_t)(2 * (pc0 + t)) * B + h;
                __m256i i = _mm256_castps_si256(ix[t]);
                _mm256_storeu_ps(q0, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(i, zero)), g[t]));
                _mm256_storeu_ps(q0 + B, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(i, one)), g[t]));
                _mm256_storeu_ps(q1, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(i, two)), g[t]));
                _mm256_storeu_ps(q1 + B, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(i, three)), g[t]));
            }
        }
    return cols;
}

/* One output row of a 2x2 stride-2 average pool from input rows @p r0 / @p r1: whole 16-column
 * tiles, each output ((a + b) + (c + d)) * 0.25 as the portable loop sums it; ORs into *@p any
 * the bits that flag a non-finite output (see lib/ops/pool.c). Returns the columns done. */
T512 static int avgpool2_avx512(const float *r0, const float *r1, int ow, float *y, uint32_t *any)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i abs = _mm512_set1_epi32(0x7fffffff), step = _mm512_set1_epi32(0x00800000);
    const __m512 quarter = _mm512_set1_ps(0.25f);
    __m512i acc = _mm512_setzero_si512();
    int cols = ow & ~15;
    for (int x = 0; x < cols; x += 16) {
        __m512 a = _mm512_loadu_ps(r0 + 2 * x), b = _mm512_loadu_ps(r0 + 2 * x + 16);
        __m512 c = _mm512_loadu_ps(r1 + 2 * x), d = _mm512_loadu_ps(r1 + 2 * x + 16);
        __m512 h0 = _mm512_add_ps(_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b));
        __m512 h1 = _mm512_add_ps(_mm512_permutex2var_ps(c, even, d), _mm512_permutex2var_ps(c, odd, d));
        __m512 v = _mm512_mul_ps(_mm512_add_ps(h0, h1), quarter);
        acc = _mm512_or_si512(acc, _mm512_add_epi32(_mm512_and_si512(_mm512_castps_si512(v), abs), step));
        _mm512_storeu_ps(y + x, v);
    }
    *any |= (uint32_t)_mm512_reduce_or_epi32(acc);
    return cols;
}

/* The AVX2 version of avgpool2_avx512(): 8 outputs per step, the same sums in the same order.
 * shuffle_ps pairs columns within 128-bit lanes, leaving outputs 0 1 4 5 | 2 3 6 7; one
 * 64-bit permute puts them back in order. */
T256 static int avgpool2_avx2(const float *r0, const float *r1, int ow, float *y, uint32_t *any)
{
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), step = _mm256_set1_epi32(0x00800000);
    const __m256 quarter = _mm256_set1_ps(0.25f);
    __m256i acc = _mm256_setzero_si256();
    int cols = ow & ~7;
    for (int x = 0; x < cols; x += 8) {
        __m256 a = _mm256_loadu_ps(r0 + 2 * x), b = _mm256_loadu_ps(r0 + 2 * x + 8);
        __m256 c = _mm256_loadu_ps(r1 + 2 * x), d = _mm256_loadu_ps(r1 + 2 * x + 8);
        __m256 h0 = _mm256_add_ps(_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xdd));
        __m256 h1 = _mm256_add_ps(_mm256_shuffle_ps(c, d, 0x88), _mm256_shuffle_ps(c, d, 0xdd));
        __m256 v = _mm256_mul_ps(_mm256_add_ps(h0, h1), quarter);
        v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8));
        acc = _mm256_or_si256(acc, _mm256_add_epi32(_mm256_and_si256(_mm256_castps_si256(v), abs), step));
        _mm256_storeu_ps(y + x, v);
    }
    __m128i o = _mm_or_si128(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    o = _mm_or_si128(o, _mm_shuffle_epi32(o, 0x4e));
    o = _mm_or_si128(o, _mm_shuffle_epi32(o, 0xb1));
    *any |= (uint32_t)_mm_cvtsi128_si32(o);
    return cols;
}

/* ---- bfloat16 conversions (AVX512_BF16: VCVTNEPS2BF16, round to nearest even) ---- */

#define TBF __attribute__((target("avx512f,avx512bf16")))

TBF static size_t bf16_convert_avx512(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)v);
    }
    return i;
}

/* Pixels p0.. (at most 16) of 16 planes of @p hw floats, transposed: r[t] holds the 16
 * channels of pixel p0 + t. Returns how many pixels there are. */
T512 static inline size_t planes_tile(const float *src, size_t hw, size_t p0, __m512 r[16])
{
    size_t m = hw - p0 < 16 ? hw - p0 : 16;
    __mmask16 k = (__mmask16)((1u << m) - 1u);
    for (int j = 0; j < 16; j++)
        r[j] = _mm512_maskz_loadu_ps(k, src + (size_t)j * hw + p0);
    transpose16(r);
    return m;
}

/* 16 planes of @p hw floats (plane stride @p hw) into @p hw pixels of 16 bfloat16 channels. */
TBF static void blocked16_avx512(const float *src, size_t hw, uint16_t *dst)
{
    for (size_t p0 = 0; p0 < hw; p0 += 16) {
        __m512 r[16];
        size_t m = planes_tile(src, hw, p0, r);
        for (size_t t = 0; t < m; t++)
            _mm256_storeu_si256((__m256i *)(void *)(dst + (p0 + t) * 16), (__m256i)_mm512_cvtneps_pbh(r[t]));
    }
}

/* The same in float32, and its reverse (blocked to planes). */
T512 static void blocked16_f32_avx512(const float *src, size_t hw, float *dst)
{
    for (size_t p0 = 0; p0 < hw; p0 += 16) {
        __m512 r[16];
        size_t m = planes_tile(src, hw, p0, r);
        for (size_t t = 0; t < m; t++)
            _mm512_storeu_ps(dst + (p0 + t) * 16, r[t]);
    }
}

T512 static void planes16_f32_avx512(const float *src, size_t hw, float *dst)
{
    for (size_t p0 = 0; p0 < hw; p0 += 16) {
        size_t m = hw - p0 < 16 ? hw - p0 : 16;
        __mmask16 k = (__mmask16)((1u << m) - 1u);
        __m512 r[16];
        for (size_t t = 0; t < 16; t++)
            r[t] = t < m ? _mm512_loadu_ps(src + (p0 + t) * 16) : _mm512_setzero_ps();
        transpose16(r);
        for (int j = 0; j < 16; j++)
            _mm512_mask_storeu_ps(dst + (size_t)j * hw + p0, k, r[j]);
    }
}

static bool cpu_bf16(int level)
{
    __builtin_cpu_init();
    return level >= CNNL__SIMD_AVX512 && __builtin_cpu_supports("avx512bf16");
}

#endif /* CNNL_X86_SIMD */

/* What VCVTNEPS2BF16 does: round to nearest even, denormal inputs to signed zero, NaN stays a
 * (quiet) NaN. */
static inline uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x0040u);
    if ((u & 0x7f800000u) == 0)
        return (uint16_t)((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void cnnl__bf16_convert(int level, const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
#ifdef CNNL_X86_SIMD
    if (cpu_bf16(level))
        i = bf16_convert_avx512(src, dst, n);
#else
    (void)level;
#endif
    for (; i < n; i++)
        dst[i] = bf16_round(src[i]);
}

/* The three conversions between NCHW planes and 16-channel blocks, block by block. */
enum { TO_BLOCKED, FROM_BLOCKED, TO_BLOCKED_BF16 };

static void blocks16(int level, int mode, const float *src, int n, int c, size_t hw, void *dst)
{
#ifdef CNNL_X86_SIMD
    bool fast = mode == TO_BLOCKED_BF16 ? cpu_bf16(level) : level >= CNNL__SIMD_AVX512;
#else
    (void)level;
#endif
    for (int b = 0; b < n * (c / 16); b++) {
        size_t off = (size_t)b * 16 * hw;
        const float *s = src + off;
        float *d = (float *)dst + off;
        uint16_t *h = (uint16_t *)dst + off;
#ifdef CNNL_X86_SIMD
        if (fast) {
            if (mode == TO_BLOCKED)
                blocked16_f32_avx512(s, hw, d);
            else if (mode == FROM_BLOCKED)
                planes16_f32_avx512(s, hw, d);
            else
                blocked16_avx512(s, hw, h);
            continue;
        }
#endif
        for (size_t p = 0; p < hw; p++)
            for (size_t j = 0; j < 16; j++) {
                if (mode == TO_BLOCKED)
                    d[p * 16 + j] = s[j * hw + p];
                else if (mode == FROM_BLOCKED)
                    d[j * hw + p] = s[p * 16 + j];
                else
                    h[p * 16 + j] = bf16_round(s[j * hw + p]);
            }
    }
}

void cnnl__to_blocked16(int level, const float *src, int n, int c, size_t hw, float *dst)
{
    blocks16(level, TO_BLOCKED, src, n, c, hw, dst);
}

void cnnl__from_blocked16(int level, const float *src, int n, int c, size_t hw, float *dst)
{
    blocks16(level, FROM_BLOCKED, src, n, c, hw, dst);
}

void cnnl__bf16_to_blocked16(int level, const float *src, int n, int c, size_t hw, uint16_t *dst)
{
    blocks16(level, TO_BLOCKED_BF16, src, n, c, hw, dst);
}

int cnnl__pool_blocked_simd(int level, const float *p0, const float *p1, int B, int nch, int pw, float *y,
                            uint8_t *arg, size_t plane, float *fin)
{
#ifdef CNNL_X86_SIMD
    if (level >= CNNL__SIMD_AVX512 && B == 16 && nch == 16)
        return pool_avx512(p0, p1, pw, y, arg, plane, fin);
    if (level >= CNNL__SIMD_AVX2 && (B == 16 || B == 8) && nch == B)
        return pool_avx2(p0, p1, B, nch, pw, y, arg, plane, fin);
#else
    (void)level, (void)p0, (void)p1, (void)B, (void)nch, (void)pw, (void)y, (void)arg, (void)plane, (void)fin;
#endif
    return 0;
}

int cnnl__avgpool2_row_simd(int level, const float *r0, const float *r1, int ow, float *y, uint32_t *any)
{
#ifdef CNNL_X86_SIMD
    if (level >= CNNL__SIMD_AVX512)
        return avgpool2_avx512(r0, r1, ow, y, any);
    if (level >= CNNL__SIMD_AVX2)
        return avgpool2_avx2(r0, r1, ow, y, any);
#else
    (void)level, (void)r0, (void)r1, (void)ow, (void)y, (void)any;
#endif
    return 0;
}

int cnnl__unpool_blocked_simd(int level, const float *gr, const float *yr, const uint8_t *ar, size_t plane, int B,
                              int nch, int pw, float *p0, float *p1)
{
#ifdef CNNL_X86_SIMD
    if (level >= CNNL__SIMD_AVX512 && B == 16 && nch == 16)
        return unpool_avx512(gr, yr, ar, plane, pw, p0, p1);
    if (level >= CNNL__SIMD_AVX2 && (B == 16 || B == 8) && nch == B)
        return unpool_avx2(gr, yr, ar, plane, B, nch, pw, p0, p1);
#else
    (void)level, (void)gr, (void)yr, (void)ar, (void)plane, (void)B, (void)nch, (void)pw, (void)p0, (void)p1;
#endif
    return 0;
}
