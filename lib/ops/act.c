/* Element-wise activations, softmax, masks and bias helpers; parallel over elements. */
#include <math.h>
#include <omp.h>

#include "core/internal.h"
#include "ops/kernels.h"

/* Below this many elements threads cost more than they save. */
#define PAR_MIN ((size_t)1 << 15)

static float act1(cnnl__act kind, float a, float x)
{
    switch (kind) {
    case CNNL__RELU: return x > 0.0f ? x : 0.0f;
    case CNNL__LEAKY: return x > 0.0f ? x : a * x;
    case CNNL__ELU: return x > 0.0f ? x : a * expm1f(x);
    case CNNL__TANH: return tanhf(x);
    case CNNL__SIGMOID: return 1.0f / (1.0f + expf(-x));
    }
    return x;
}

static float dact1(cnnl__act kind, float a, float x, float y)
{
    switch (kind) {
    case CNNL__RELU: return x > 0.0f ? 1.0f : 0.0f;
    case CNNL__LEAKY: return x > 0.0f ? 1.0f : a;
    case CNNL__ELU: return x > 0.0f ? 1.0f : y + a;
    case CNNL__TANH: return 1.0f - y * y;
    case CNNL__SIGMOID: return y * (1.0f - y);
    }
    return 1.0f;
}

bool cnnl__act_forward(cnnl__act kind, float param, const float *x, float *y, size_t n)
{
    int threads = n < PAR_MIN ? 1 : cnnl__num_threads();
    if (kind == CNNL__RELU) {
        /* ReLU maps NaN to 0 through the comparison, so NaN is caught here, not hidden. */
        int bad = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            bad |= v != v;
            y[i] = v > 0.0f ? v : 0.0f;
        }
        return !bad;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        y[i] = act1(kind, param, x[i]);
    return cnnl__finite(y, n);
}

void cnnl__act_backward(cnnl__act kind, float param, const float *x, const float *y, const float *gy, float *gx,
                        size_t n)
{
    int threads = n < PAR_MIN ? 1 : cnnl__num_threads();
    if (kind == CNNL__RELU) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++)
            gx[i] = y[i] > 0.0f ? gy[i] : 0.0f;
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        gx[i] = gy[i] * dact1(kind, param, x[i], y[i]);
}

void cnnl__softmax_forward(const float *x, float *y, int n, int c, size_t inner)
{
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < inner; j++) {
            const float *xp = x + (size_t)i * c * inner + j;
            float *yp = y + (size_t)i * c * inner + j;
            float m = xp[0];
            for (int k = 1; k < c; k++)
                m = xp[(size_t)k * inner] > m ? xp[(size_t)k * inner] : m;
            double s = 0.0;
            for (int k = 0; k < c; k++) {
                yp[(size_t)k * inner] = expf(xp[(size_t)k * inner] - m);
                s += yp[(size_t)k * inner];
            }
            float inv = (float)(1.0 / s);
            for (int k = 0; k < c; k++)
                yp[(size_t)k * inner] *= inv;
        }
}

void cnnl__softmax_backward(const float *y, const float *gy, float *gx, int n, int c, size_t inner)
{
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < inner; j++) {
            size_t b = (size_t)i * c * inner + j;
            double dot = 0.0;
            for (int k = 0; k < c; k++)
                dot += (double)y[b + (size_t)k * inner] * gy[b + (size_t)k * inner];
            for (int k = 0; k < c; k++) {
                size_t o = b + (size_t)k * inner;
                gx[o] = y[o] * (gy[o] - (float)dot);
            }
        }
}

void cnnl__sum_rows_into(const float *gy, int rows, int cols, float *gb)
{
    for (int c = 0; c < cols; c++) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++)
            s += gy[(size_t)r * cols + c];
        gb[c] += s;
    }
}
