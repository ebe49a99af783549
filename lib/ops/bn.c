/* Batch normalisation kernels, parallel over channels; sums in double for accuracy. */
#include <math.h>
#include <omp.h>

#include "core/internal.h"
#include "ops/kernels.h"

void cnnl__bn_stats(const float *x, int n, int c, size_t hw, float eps, float *mean, float *invstd,
                    float *var_unbiased)
{
    double count = (double)n * (double)hw;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++)
                s += p[j];
        }
        double m = s / count, q = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = x + ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                double d = p[j] - m;
                q += d * d;
            }
        }
        double var = q / count;
        mean[ch] = (float)m;
        invstd[ch] = (float)(1.0 / sqrt(var + eps));
        var_unbiased[ch] = (float)(count > 1.0 ? q / (count - 1.0) : var);
    }
}

bool cnnl__bn_apply(const float *x, int n, int c, size_t hw, const float *mean, const float *invstd,
                    const float *gamma, const float *beta, float *y)
{
    int bad = 0;
    size_t planes = (size_t)n * c;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(static) reduction(| : bad)
    for (size_t p = 0; p < planes; p++) {
        int ch = (int)(p % (size_t)c);
        float a = gamma[ch] * invstd[ch], b = beta[ch] - mean[ch] * a;
        const float *xp = x + p * hw;
        float *yp = y + p * hw;
        for (size_t j = 0; j < hw; j++)
            yp[j] = xp[j] * a + b;
        bad |= !(isfinite(a) && isfinite(b));
    }
    return !bad;
}

void cnnl__bn_backward(const float *x, const float *gy, int n, int c, size_t hw, const float *mean,
                       const float *invstd, const float *gamma, bool batch_stats, float *gx, float *ggamma,
                       float *gbeta)
{
    double count = (double)n * (double)hw;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sg = 0.0, sgx = 0.0;
        float m = mean[ch], is = invstd[ch];
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                sg += gy[off + j];
                sgx += (double)gy[off + j] * ((x[off + j] - m) * is);
            }
        }
        if (ggamma)
            ggamma[ch] += (float)sgx;
        if (gbeta)
            gbeta[ch] += (float)sg;
        if (!gx)
            continue;
        float k = gamma[ch] * is;
        float mg = batch_stats ? (float)(sg / count) : 0.0f, mx = batch_stats ? (float)(sgx / count) : 0.0f;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * c + ch) * hw;
            for (size_t j = 0; j < hw; j++) {
                float xh = (x[off + j] - m) * is;
                gx[off + j] = k * (gy[off + j] - mg - xh * mx);
            }
        }
    }
}
