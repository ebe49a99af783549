/*
 * Batch normalisation kernels, parallel over channels (or planes), handed out dynamically:
 * each is computed by one thread in a fixed order, so results do not depend on scheduling. Per-plane sums use 16 float lanes (so
 * they vectorise) and are added up per channel in double; the order is fixed.
 *
 * Optionally a following ReLU, or ReLU and 2x2 stride-2 max pool, is applied in the same pass
 * (as in lib/ops/conv.c): the pooled variant stores only the pooled output and one byte per
 * output for the position of the maximum.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/internal.h"
#include "ops/kernels.h"

enum { LANES = 16 };

static double lanes_total(const float *acc)
{
    double s = 0.0;
    for (int l = 0; l < LANES; l++)
        s += acc[l];
    return s;
}

static double plane_sum(const float *x, size_t n)
{
    float acc[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += x[j + l];
    for (; j < n; j++)
        acc[j % LANES] += x[j];
    return lanes_total(acc);
}

static double plane_sq_dev(const float *x, size_t n, float m)
{
    float acc[LANES] = {0};
    size_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float d = x[j + l] - m;
            acc[l] += d * d;
        }
    for (; j < n; j++) {
        float d = x[j] - m;
        acc[j % LANES] += d * d;
    }
    return lanes_total(acc);
}

void cnnl__bn_stats(const float *x, int n, int c, size_t hw, float eps, float *mean, float *invstd,
                    float *var_unbiased)
{
    double count = (double)n * (double)hw;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0, q = 0.0;
        for (int i = 0; i < n; i++)
            s += plane_sum(x + ((size_t)i * c + ch) * hw, hw);
        float m = (float)(s / count);
        for (int i = 0; i < n; i++)
            q += plane_sq_dev(x + ((size_t)i * c + ch) * hw, hw, m);
        double var = q / count;
        mean[ch] = m;
        invstd[ch] = (float)(1.0 / sqrt(var + eps));
        var_unbiased[ch] = (float)(count > 1.0 ? q / (count - 1.0) : var);
    }
}

/* Pooled outputs of one plane: ReLU(max of a*x+b over each 2x2 window), first maximum wins. */
static void apply_pool_plane(const float *x, int h, int w, float a, float b, float *y, uint8_t *arg)
{
    int ph = h / 2, pw = w / 2;
    (void)ph;
    for (int pr = 0; pr < h / 2; pr++) {
        const float *r0 = x + (size_t)(2 * pr) * w, *r1 = r0 + w;
        for (int pc = 0; pc < pw; pc++) {
            float v1 = r0[2 * pc + 1] * a + b, v2 = r1[2 * pc] * a + b, v3 = r1[2 * pc + 1] * a + b;
            float m = r0[2 * pc] * a + b;
            uint8_t i = 0;
            if (v1 > m)
                m = v1, i = 1;
            if (v2 > m)
                m = v2, i = 2;
            if (v3 > m)
                m = v3, i = 3;
            y[(size_t)pr * pw + pc] = m > 0.0f ? m : 0.0f;
            arg[(size_t)pr * pw + pc] = i;
        }
    }
}

bool cnnl__bn_apply(const float *x, int n, int c, int h, int w, const float *mean, const float *invstd,
                    const float *gamma, const float *beta, cnnl__bn_fuse fuse, float *y, uint8_t *arg)
{
    int bad = 0;
    size_t planes = (size_t)n * c, hw = (size_t)h * w, php = (size_t)(h / 2) * (size_t)(w / 2);
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4) reduction(| : bad)
    for (size_t p = 0; p < planes; p++) {
        int ch = (int)(p % (size_t)c);
        float a = gamma[ch] * invstd[ch], b = beta[ch] - mean[ch] * a;
        const float *xp = x + p * hw;
        bad |= !(isfinite(a) && isfinite(b));
        if (fuse == CNNL__BN_RELU_POOL) {
            apply_pool_plane(xp, h, w, a, b, y + p * php, arg + p * php);
            continue;
        }
        float *yp = y + p * hw;
        if (fuse == CNNL__BN_RELU)
            for (size_t j = 0; j < hw; j++) {
                float v = xp[j] * a + b;
                yp[j] = v > 0.0f ? v : 0.0f;
            }
        else
            for (size_t j = 0; j < hw; j++)
                yp[j] = xp[j] * a + b;
    }
    return !bad;
}

/* Sums of g and g * (x - m) over one plane, g being the gradient of the BN output. */
static void plane_grad_sums(const float *x, const float *gy, const float *y, const uint8_t *arg, int h, int w,
                            cnnl__bn_fuse fuse, float m, double *sg, double *sgx)
{
    size_t hw = (size_t)h * w;
    if (fuse == CNNL__BN_RELU_POOL) {
        /* Only the maxima of positive windows receive a gradient. */
        int pw = w / 2;
        double a = 0.0, b = 0.0;
        for (int pr = 0; pr < h / 2; pr++)
            for (int pc = 0; pc < pw; pc++) {
                size_t q = (size_t)pr * pw + pc;
                if (!(y[q] > 0.0f))
                    continue;
                int i = arg[q];
                float xv = x[(size_t)(2 * pr + (i >> 1)) * w + 2 * pc + (i & 1)];
                a += gy[q];
                b += (double)gy[q] * (xv - m);
            }
        *sg += a;
        *sgx += b;
        return;
    }
    float as[LANES] = {0}, ax[LANES] = {0};
    bool relu = fuse == CNNL__BN_RELU;
    size_t j = 0;
    for (; j + LANES <= hw; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float g = relu && !(y[j + l] > 0.0f) ? 0.0f : gy[j + l];
            as[l] += g;
            ax[l] += g * (x[j + l] - m);
        }
    for (; j < hw; j++) {
        float g = relu && !(y[j] > 0.0f) ? 0.0f : gy[j];
        as[j % LANES] += g;
        ax[j % LANES] += g * (x[j] - m);
    }
    *sg += lanes_total(as);
    *sgx += lanes_total(ax);
}

/* gx of one plane: k * (g - mg - xhat * mx), with g routed through the fused ReLU / pool. */
static void plane_grad_input(const float *x, const float *gy, const float *y, const uint8_t *arg, int h, int w,
                             cnnl__bn_fuse fuse, float m, float is, float k, float mg, float mx, float *gx)
{
    size_t hw = (size_t)h * w;
    if (fuse == CNNL__BN_RELU_POOL) {
        for (size_t j = 0; j < hw; j++)
            gx[j] = -k * (mg + (x[j] - m) * is * mx);
        int pw = w / 2;
        for (int pr = 0; pr < h / 2; pr++)
            for (int pc = 0; pc < pw; pc++) {
                size_t q = (size_t)pr * pw + pc;
                if (y[q] > 0.0f) {
                    int i = arg[q];
                    gx[(size_t)(2 * pr + (i >> 1)) * w + 2 * pc + (i & 1)] += k * gy[q];
                }
            }
        return;
    }
    for (size_t j = 0; j < hw; j++) {
        float g = gy[j];
        if (fuse == CNNL__BN_RELU && !(y[j] > 0.0f))
            g = 0.0f;
        gx[j] = k * (g - mg - (x[j] - m) * is * mx);
    }
}

void cnnl__bn_backward(const float *x, const float *y, const uint8_t *arg, const float *gy, int n, int c, int h,
                       int w, const float *mean, const float *invstd, const float *gamma, bool batch_stats,
                       cnnl__bn_fuse fuse, float *gx, float *ggamma, float *gbeta)
{
    double count = (double)n * h * w;
    size_t hw = (size_t)h * w, out = fuse == CNNL__BN_RELU_POOL ? (size_t)(h / 2) * (size_t)(w / 2) : hw;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        double sg = 0.0, sgx = 0.0;
        float m = mean[ch], is = invstd[ch];
        for (int i = 0; i < n; i++) {
            size_t p = (size_t)i * c + ch;
            plane_grad_sums(x + p * hw, gy + p * out, y + p * out, arg ? arg + p * out : NULL, h, w, fuse, m, &sg,
                            &sgx);
        }
        sgx *= is;
        if (ggamma)
            ggamma[ch] += (float)sgx;
        if (gbeta)
            gbeta[ch] += (float)sg;
        if (!gx)
            continue;
        float k = gamma[ch] * is;
        float mg = batch_stats ? (float)(sg / count) : 0.0f, mx = batch_stats ? (float)(sgx / count) : 0.0f;
        for (int i = 0; i < n; i++) {
            size_t p = (size_t)i * c + ch;
            plane_grad_input(x + p * hw, gy + p * out, y + p * out, arg ? arg + p * out : NULL, h, w, fuse, m, is, k,
                             mg, mx, gx + p * hw);
        }
    }
}

void cnnl__bn_channel_sums(const float *x, int n, int c, size_t hw, double *sum)
{
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += plane_sum(x + ((size_t)i * c + ch) * hw, hw);
        sum[ch] = s;
    }
}

void cnnl__bn_channel_sq_dev(const float *x, int n, int c, size_t hw, const float *mean, double *q)
{
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += plane_sq_dev(x + ((size_t)i * c + ch) * hw, hw, mean[ch]);
        q[ch] = s;
    }
}

void cnnl__bn_grad_sums(const float *x, const float *y, const uint8_t *arg, const float *gy, int n, int c, int h,
                        int w, const float *mean, cnnl__bn_fuse fuse, double *sg, double *sgx)
{
    size_t hw = (size_t)h * w, out = fuse == CNNL__BN_RELU_POOL ? (size_t)(h / 2) * (size_t)(w / 2) : hw;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        double a = 0.0, b = 0.0;
        for (int i = 0; i < n; i++) {
            size_t p = (size_t)i * c + ch;
            plane_grad_sums(x + p * hw, gy + p * out, y + p * out, arg ? arg + p * out : NULL, h, w, fuse, mean[ch],
                            &a, &b);
        }
        sg[ch] = a;
        sgx[ch] = b;
    }
}

void cnnl__bn_grad_input(const float *x, const float *y, const uint8_t *arg, const float *gy, int n, int c, int h,
                         int w, const float *mean, const float *invstd, const float *gamma, const float *mg,
                         const float *mx, cnnl__bn_fuse fuse, float *gx)
{
    size_t hw = (size_t)h * w, out = fuse == CNNL__BN_RELU_POOL ? (size_t)(h / 2) * (size_t)(w / 2) : hw;
    size_t planes = (size_t)n * c;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++) {
        int ch = (int)(p % (size_t)c);
        float is = invstd[ch], k = gamma[ch] * is;
        plane_grad_input(x + p * hw, gy + p * out, y + p * out, arg ? arg + p * out : NULL, h, w, fuse, mean[ch], is,
                         k, mg[ch], mx[ch], gx + p * hw);
    }
}
