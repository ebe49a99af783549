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
} cnnl__conv_geom;

/* Column buffer size of one image: c*k*k * oh*ow floats. */
size_t cnnl__conv_col_floats(const cnnl__conv_geom *g);

void cnnl__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oh, int ow, float *col);
/* Adds the columns back into @p x (which the caller zeroes). */
void cnnl__col2im(const float *col, int c, int h, int w, int k, int stride, int pad, int oh, int ow, float *x);

/* y = conv(x, wt) + b (b may be NULL). @p col holds @p threads column buffers. Returns false if
 * an output is not finite. */
bool cnnl__conv2d_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                          float *col, int threads);

/* Accumulates gw (+= , oc*c*k*k) and gb (+=, oc; NULL if no bias); writes gx when not NULL.
 * @p col holds @p threads column buffers and @p acc holds @p threads * (oc*c*k*k + oc) floats
 * of per-thread partial sums. */
void cnnl__conv2d_backward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *gy, float *gx,
                           float *gw, float *gb, float *col, float *acc, int threads);

/* ---- pooling over planes (n*c planes of h x w), no padding, floor mode ---- */
void cnnl__maxpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int oh, int ow, float *y);
/* gx = 0 then, per window, gy goes to the first maximal input. */
void cnnl__maxpool_backward(const float *x, const float *y, const float *gy, size_t planes, int h, int w, int k,
                            int s, int oh, int ow, float *gx);
void cnnl__avgpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int oh, int ow, float *y);
void cnnl__avgpool_backward(const float *gy, size_t planes, int h, int w, int k, int s, int oh, int ow,
                            float *gx);

/* ---- batch normalisation over channels of (n, c, hw) ---- */
/* Training: batch mean and biased variance per channel into mean/invstd (invstd =
 * 1/sqrt(var+eps)); @p var_unbiased receives the unbiased variance for the running update. */
void cnnl__bn_stats(const float *x, int n, int c, size_t hw, float eps, float *mean, float *invstd,
                    float *var_unbiased);
/* y = gamma * (x - mean) * invstd + beta. Returns false if an output is not finite. */
bool cnnl__bn_apply(const float *x, int n, int c, size_t hw, const float *mean, const float *invstd,
                    const float *gamma, const float *beta, float *y);
/* Accumulates ggamma/gbeta; writes gx (may be NULL). @p batch_stats: the mean/invstd came
 * from this batch (training), so gx includes the statistics' dependence on x. */
void cnnl__bn_backward(const float *x, const float *gy, int n, int c, size_t hw, const float *mean,
                       const float *invstd, const float *gamma, bool batch_stats, float *gx, float *ggamma,
                       float *gbeta);

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
/* y = x * mask (the dropout mask holds 0 or 1/(1-p)). */
void cnnl__mul(const float *x, const float *mask, float *y, size_t n);
/* True when every value is finite (parallel). */
bool cnnl__finite(const float *x, size_t n);
/* Row/column helpers for biases. */
void cnnl__add_row_bias(float *y, const float *b, int rows, int cols);       /* y[r][c] += b[c] */
void cnnl__sum_rows_into(const float *gy, int rows, int cols, float *gb);    /* gb[c] += sum_r */

#endif
