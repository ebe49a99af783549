/*
 * Numeric kernels of the layers on raw NCHW float arrays. They know nothing about layers or
 * tensors; loops over images or planes run on cnnl__num_threads() OpenMP threads with static
 * schedules, so results depend only on the thread count.
 */
#ifndef CNNL_OPS_KERNELS_H
#define CNNL_OPS_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- convolution (im2col + GEMM) ---- */
typedef struct cnnl__conv_geom {
    int n, c, h, w;        /* input */
    int oc, k, stride, pad;
    int oh, ow;            /* output */
    bool relu;             /* a ReLU follows, fused into the kernels */
    bool pool;             /* and then a 2x2 stride-2 max pool (requires relu) */
    bool bf16;             /* bfloat16 inputs and weights (oneDNN engine only) */
    /* Appended for lib/ops/conv_generic.c; 0 and 1 both mean the default (an initializer that
     * leaves them out means dilation 1, one group). */
    int dil;               /* dilation: taps are dil apart */
    int groups;            /* c and oc are multiples; output channel o reads group o / (oc/groups) */
} cnnl__conv_geom;

/* Output rows per band (one im2col buffer's worth) and the per-thread workspace in floats. */
int cnnl__conv_band_rows(const cnnl__conv_geom *g);
size_t cnnl__conv_ws_floats(const cnnl__conv_geom *g);

/* Unfold output rows [oy0, oy1) of one image into col ((c*k*k) x ((oy1-oy0)*ow)). */
void cnnl__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oy0, int oy1, int ow,
                  float *col);
/* Add such columns back into @p x. */
void cnnl__col2im(const float *col, int c, int h, int w, int k, int stride, int pad, int oy0, int oy1, int ow,
                  float *x);

/* y = conv(x, wt) + b (b may be NULL), then ReLU when g->relu, then when g->pool the 2x2 max
 * pool: y is then (n, oc, oh/2, ow/2) and @p arg (one byte per pooled output) receives the
 * position of each maximum in its window. @p ws holds @p threads workspaces of
 * cnnl__conv_ws_floats(). Returns false if a convolution output is not finite. */
bool cnnl__conv2d_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                          uint8_t *arg, float *ws, int threads);

/* Number of fixed batch slices whose weight-gradient partial sums are kept apart. */
int cnnl__conv_slots(int n);

/* From gy (the gradient of y, the forward output; masked by y > 0 when g->relu, routed through
 * @p arg when g->pool): accumulates gw (+=, oc*c*k*k; NULL to skip) and gb (+=, oc; NULL to
 * skip), writes gx when not NULL. @p ws as in forward; @p acc holds
 * cnnl__conv_slots(n) * (oc*c*k*k + oc) floats of partial sums. Results do not depend on the
 * thread count. */
void cnnl__conv2d_backward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *y,
                           const uint8_t *arg, const float *gy, float *gx, float *gw, float *gb, float *ws,
                           float *acc, int threads);

/* Direct convolution (lib/ops/conv_direct.c) for stride 1 and few taps. */
#define CNNL__DIRECT_MAX_TAPS 32
bool cnnl__conv_direct_ok(const cnnl__conv_geom *g);
/* Zero-padded copy of the input rows that output rows [oy0, oy1) of one image read. */
size_t cnnl__conv_direct_pad_floats(const cnnl__conv_geom *g, int rows);
void cnnl__conv_direct_pad(const cnnl__conv_geom *g, const float *x, int oy0, int oy1, float *xp);
/* Output rows (a band of @p rows) from the padded rows; row stride of planes in y is @p ld. */
void cnnl__conv_direct_forward(const cnnl__conv_geom *g, const float *xp, int rows, const float *wt, const float *b,
                               float *y, size_t ld);
/* Weight-gradient partial sums (cnnl__conv_direct_acc_floats()) of one band; then reduced
 * into the transposed weight gradient (+=, (c*k*k) x oc) by cnnl__conv_direct_reduce(). */
size_t cnnl__conv_direct_acc_floats(const cnnl__conv_geom *g);
void cnnl__conv_direct_weight_grad(const cnnl__conv_geom *g, const float *xp, int rows, const float *gy, size_t ld,
                                   float *acc);
void cnnl__conv_direct_reduce(const cnnl__conv_geom *g, const float *acc, float *gw_t);

/* Winograd F(4x4, 3x3) forward (lib/ops/conv_winograd.c): whether it runs @p g here (3x3,
 * stride 1, pad 1, output sides multiples of 4, float32, at least 8 input channels, an AVX2
 * CPU without AVX-512; CNNLITE_CONV_ALGO=direct or CNNLITE_CONV_OWN=0 turns it off,
 * CNNLITE_CONV_ALGO=winograd-avx2 on wherever it can run), its workspace for @p threads
 * threads, and the pass: y and @p arg (may be NULL) as cnnl__conv2d_forward() leaves them.
 * Returns false if an output is not finite. */
bool cnnl__winograd_ok(const cnnl__conv_geom *g);
size_t cnnl__winograd_ws_floats(const cnnl__conv_geom *g, int threads);
bool cnnl__winograd_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                            uint8_t *arg, float *ws, int threads);

/* ---- our own direct AVX2 kernel for 3x3 convolutions (lib/ops/conv_avx2.c) ---- */
/* False when the environment sets CNNLITE_CONV_OWN=0: none of our own convolution kernels
 * (this one, the Winograd forward) runs, only oneDNN's. */
bool cnnl__conv_own_enabled(void);
/* It reads the output gradient in oneDNN's AVX2 layout: element (n, o, y, x) at
 * n * sn + (o / 8) * sc + y * sy + 8 * x + o % 8. Single-threaded: one call per chunk of
 * @p nb images; @p ws holds cnnl__wgrad8_ws_floats() floats. */
/* Whether cnnl__wgrad8() runs @p g: 3x3 stride-1 pad-1 float32, output channels a multiple
 * of 8, on a CPU whose widest level is AVX2 (CNNLITE_CONV_OWN=0 turns it off). */
bool cnnl__wgrad8_ok(const cnnl__conv_geom *g);
size_t cnnl__wgrad8_ws_floats(const cnnl__conv_geom *g);
/* Adds to @p gw ([oc][c][3][3]) and @p gb ([oc]) the weight and bias gradients of @p nb
 * images: NCHW input @p x, output gradient @p dy. */
void cnnl__wgrad8(const cnnl__conv_geom *g, int nb, const float *x, const float *dy, int64_t sn, int64_t sc,
                  int64_t sy, float *gw, float *gb, float *ws);

/* ---- vector kernels dispatched at run time (lib/ops/pool_simd.c) ---- */
enum { CNNL__SIMD_SSE2 = 0, CNNL__SIMD_AVX2 = 1, CNNL__SIMD_AVX512 = 2 };
/* The widest level this CPU runs (AVX-512F; AVX2 with FMA; else SSE2 or plain C), lowered by
 * the environment variable CNNLITE_ISA=avx2|sse2 (never raised). Cheap enough to call once per
 * layer call, so tests can switch levels in one process. */
int cnnl__simd_level(void);
/* ReLU + 2x2 max pool of whole tiles of one pooled row of a channel block (B = 16 or 8
 * channels per pixel, dense pixels; rows @p p0 / @p p1) into NCHW planes @p y / @p arg (plane
 * stride @p plane; @p arg may be NULL: positions not kept), as conv_dnnl.c's portable loop
 * does, bit for bit; adds x * 0 of the inputs read to @p fin. Returns how many leading pooled columns it did (0 when @p level or
 * the block does not suit); the caller does the rest. */
int cnnl__pool_blocked_simd(int level, const float *p0, const float *p1, int B, int nch, int pw, float *y,
                            uint8_t *arg, size_t plane, float *fin);
/* The reverse: the pooled gradient @p gr masked by @p yr > 0 goes to the position @p ar of each
 * window in the blocked rows @p p0 / @p p1, zeros elsewhere. Returns the columns done. */
int cnnl__unpool_blocked_simd(int level, const float *gr, const float *yr, const uint8_t *ar, size_t plane, int B,
                              int nch, int pw, float *p0, float *p1);
/* Leading whole tiles (16 outputs at AVX-512, 8 at AVX2) of one output row of a 2x2 stride-2
 * average pool (input rows @p r0, @p r1), bit-identical to lib/ops/pool.c's loop; ORs the
 * non-finite flag bits into *@p any. Returns the columns done (0 below AVX2). */
int cnnl__avgpool2_row_simd(int level, const float *r0, const float *r1, int ow, float *y, uint32_t *any);
/* float32 to bfloat16 (round to nearest even, denormals to zero, as VCVTNEPS2BF16), @p n
 * values in the same order; AVX512_BF16 instructions where @p level is AVX-512 and the CPU
 * has them, else plain C with the same bits. */
void cnnl__bf16_convert(int level, const float *src, uint16_t *dst, size_t n);
/* @p n images of @p c (a multiple of 16) float32 NCHW planes of @p hw pixels into bfloat16
 * blocked by 16 channels (oneDNN's nChw16c): dst[((i*c/16 + c/16)*hw + p)*16 + c%16]. */
void cnnl__bf16_to_blocked16(int level, const float *src, int n, int c, size_t hw, uint16_t *dst);
/* The same without conversion (float32 nChw16c), and its reverse (nChw16c to NCHW). */
void cnnl__to_blocked16(int level, const float *src, int n, int c, size_t hw, float *dst);
void cnnl__from_blocked16(int level, const float *src, int n, int c, size_t hw, float *dst);

/* Linear's forward y (n x out) = x (n x in) W^T (W: out x in) + @p bias (may be NULL) at
 * @p level (lib/ops/linear_simd.c): each output one chain of multiply-adds over k in order, so
 * a row's result does not depend on the other rows or the thread count. */
void cnnl__linear_forward(int level, const float *x, const float *w, const float *bias, float *y, int n, int in,
                          int out, float *ws);
/* Floats of workspace @p ws that cnnl__linear_forward() needs at @p level (0: may be NULL). */
size_t cnnl__linear_forward_ws(int level, int n, int out);
/* Its input gradient gx (n x in) = gy (n x out) W, in the same way: row by row independent. */
void cnnl__linear_backward_data(int level, const float *gy, const float *w, float *gx, int n, int in, int out);
/* The weight gradient gw (out x in) += gy^T x, each element summed over the rows in order;
 * threads split the input columns, so the result does not depend on the thread count. */
void cnnl__linear_backward_weights(int level, const float *gy, const float *x, float *gw, int n, int in, int out);

/* ---- convolution on oneDNN (lib/ops/conv_dnnl.c; only in builds with CNNL_HAVE_DNNL) ----
 * Same contract as cnnl__conv2d_forward/backward; the layer keeps one engine state
 * (*@p state, created on first use, freed by cnnl__dnnl_conv_free()) holding the primitives
 * and buffers, so no allocation happens after the first batch of a shape. Results are
 * reproducible for a given thread count. */
#ifdef CNNL_HAVE_DNNL
#include "cnnlite/status.h"
typedef struct cnnl__dnnl_conv cnnl__dnnl_conv;
/* False when the environment variable CNNLITE_CONV_ENGINE is "portable" (tests compare the
 * engines in one build with it). */
bool cnnl__dnnl_enabled(void);
bool cnnl__dnnl_conv_ok(const cnnl__conv_geom *g);
/* CNNL_OK when oneDNN runs bfloat16 convolutions natively on this CPU (AVX512_BF16 or AMX),
 * else CNNL_EUNSUPPORTED with a message. */
cnnl_status cnnl__dnnl_bf16_check(void);
/* *@p finite is set false if a convolution output is not finite. */
cnnl_status cnnl__dnnl_conv2d_forward(cnnl__dnnl_conv **state, const cnnl__conv_geom *g, const float *x,
                                      const float *wt, const float *b, float *y, uint8_t *arg, bool *finite);
cnnl_status cnnl__dnnl_conv2d_backward(cnnl__dnnl_conv **state, const cnnl__conv_geom *g, const float *x,
                                       const float *wt, const float *y, const uint8_t *arg, const float *gy,
                                       float *gx, float *gw, float *gb);
void cnnl__dnnl_conv_free(cnnl__dnnl_conv *state);
/* True when the current shape of @p state runs by Winograd (NULL: false). */
bool cnnl__dnnl_conv_winograd(const cnnl__dnnl_conv *state);
/* Bytes of unpooled output per chunk of images (at least one image per chunk); tests lower it
 * to exercise several chunks and a shorter last one. */
extern size_t cnnl__dnnl_chunk_bytes;
#endif

/* ---- pooling over planes (n*c planes of h x w), floor mode ----
 * @p pad (0 <= pad <= k/2) pads as PyTorch does: -inf for max pooling (windows keep only their
 * inputs), zeros counted in the k*k divisor for average pooling (count_include_pad=True). */
void cnnl__maxpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int pad, int oh, int ow,
                           float *y);
/* gx = 0 then, per window, gy goes to the first maximal input (row-major order). */
void cnnl__maxpool_backward(const float *x, const float *y, const float *gy, size_t planes, int h, int w, int k,
                            int s, int pad, int oh, int ow, float *gx);
/* Returns whether every output is finite (checked as the outputs are written). */
bool cnnl__avgpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int pad, int oh, int ow,
                           float *y);
void cnnl__avgpool_backward(const float *gy, size_t planes, int h, int w, int k, int s, int pad, int oh, int ow,
                            float *gx);

/* ---- batch normalisation over channels of (n, c, h, w) ---- */
/* What follows the normalisation in the same pass. */
typedef enum cnnl__bn_fuse { CNNL__BN_PLAIN, CNNL__BN_RELU, CNNL__BN_RELU_POOL } cnnl__bn_fuse;

/* Training: batch mean and biased variance per channel into mean/invstd (invstd =
 * 1/sqrt(var+eps)); @p var_unbiased receives the unbiased variance for the running update. */
void cnnl__bn_stats(const float *x, int n, int c, size_t hw, float eps, float *mean, float *invstd,
                    float *var_unbiased);
/* y = gamma * (x - mean) * invstd + beta, then ReLU, then 2x2 max pool as @p fuse says (pooled:
 * y is (n, c, h/2, w/2) and @p arg gets the window position of each maximum). Returns false
 * if the scale or shift of a channel is not finite. */
bool cnnl__bn_apply(const float *x, int n, int c, int h, int w, const float *mean, const float *invstd,
                    const float *gamma, const float *beta, cnnl__bn_fuse fuse, float *y, uint8_t *arg);
/* From gy (gradient of the forward output y, of the fused ReLU / pool if any): accumulates
 * ggamma/gbeta (NULL to skip); writes gx (NULL to skip). @p batch_stats: mean/invstd came from
 * this batch (training), so gx includes the statistics' dependence on x. */
void cnnl__bn_backward(const float *x, const float *y, const uint8_t *arg, const float *gy, int n, int c, int h,
                       int w, const float *mean, const float *invstd, const float *gamma, bool batch_stats,
                       cnnl__bn_fuse fuse, float *gx, float *ggamma, float *gbeta);
/* The same computations split at the per-channel sums, for statistics summed over several
 * processes (synchronised batch norm); with the sums of one process they give bit for bit what
 * cnnl__bn_stats and cnnl__bn_backward give. Sums of x per channel (double, per plane in
 * cnnl__bn_stats's order); sums of (x - mean)^2; raw sums of g and g * (x - mean) (g routed
 * through the fused ReLU / pool); and gx from the batch's means mg = sum g / count and
 * mx = invstd * sum g (x - mean) / count. */
void cnnl__bn_channel_sums(const float *x, int n, int c, size_t hw, double *sum);
void cnnl__bn_channel_sq_dev(const float *x, int n, int c, size_t hw, const float *mean, double *q);
void cnnl__bn_grad_sums(const float *x, const float *y, const uint8_t *arg, const float *gy, int n, int c, int h,
                        int w, const float *mean, cnnl__bn_fuse fuse, double *sg, double *sgx);
void cnnl__bn_grad_input(const float *x, const float *y, const uint8_t *arg, const float *gy, int n, int c, int h,
                         int w, const float *mean, const float *invstd, const float *gamma, const float *mg,
                         const float *mx, cnnl__bn_fuse fuse, float *gx);

/* ---- element-wise activations ---- */
typedef enum cnnl__act { CNNL__RELU, CNNL__LEAKY, CNNL__ELU, CNNL__TANH, CNNL__SIGMOID } cnnl__act;
/* Returns false if an output is not finite. */
bool cnnl__act_forward(cnnl__act kind, float param, const float *x, float *y, size_t n);
/* gx from the forward input x, output y and gy. */
void cnnl__act_backward(cnnl__act kind, float param, const float *x, const float *y, const float *gy, float *gx,
                        size_t n);
/* Softmax over dimension 1 of (n, c, inner). */
void cnnl__softmax_forward(const float *x, float *y, int n, int c, size_t inner);
void cnnl__softmax_backward(const float *y, const float *gy, float *gx, int n, int c, size_t inner);

/* ---- misc ---- */
/* True when every value is finite (parallel). */
bool cnnl__finite(const float *x, size_t n);
/* Bias gradient of a row-major (rows x cols) output. */
void cnnl__sum_rows_into(const float *gy, int rows, int cols, float *gb);    /* gb[c] += sum_r */

#endif
