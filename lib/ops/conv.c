/*
 * Convolution by im2col + GEMM, parallel over the images of a batch: each thread unfolds one
 * image at a time into its own column buffer and runs a single-threaded GEMM, so the column
 * matrix of the whole batch never exists. Weight gradients are summed into per-thread buffers
 * and reduced in thread order, which keeps results bit-identical for a given thread count.
 */
#include <omp.h>
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

size_t cnnl__conv_col_floats(const cnnl__conv_geom *g)
{
    return (size_t)g->c * (size_t)g->k * (size_t)g->k * (size_t)g->oh * (size_t)g->ow;
}

/* Output columns [lo, hi) whose input column ox*s - pad + kx lies inside [0, w). */
static void valid_range(int ow, int w, int s, int pad, int kx, int *lo, int *hi)
{
    int a = 0, b = ow;
    while (a < ow && a * s - pad + kx < 0)
        a++;
    while (b > a && (b - 1) * s - pad + kx >= w)
        b--;
    *lo = a;
    *hi = b;
}

void cnnl__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oh, int ow, float *col)
{
    for (int ci = 0; ci < c; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * oh * ow;
                int lo, hi;
                valid_range(ow, w, stride, pad, kx, &lo, &hi);
                for (int oy = 0; oy < oh; oy++) {
                    float *dst = row + (size_t)oy * ow;
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h || lo >= hi) {
                        memset(dst, 0, sizeof(float) * (size_t)ow);
                        continue;
                    }
                    const float *src = xc + (size_t)iy * w - pad + kx;
                    for (int ox = 0; ox < lo; ox++)
                        dst[ox] = 0.0f;
                    if (stride == 1) {
                        memcpy(dst + lo, src + lo, sizeof(float) * (size_t)(hi - lo));
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] = src[(size_t)ox * stride];
                    }
                    for (int ox = hi; ox < ow; ox++)
                        dst[ox] = 0.0f;
                }
            }
        }
    }
}

void cnnl__col2im(const float *col, int c, int h, int w, int k, int stride, int pad, int oh, int ow, float *x)
{
    for (int ci = 0; ci < c; ci++) {
        float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(ci * k + ky) * k + kx) * oh * ow;
                int lo, hi;
                valid_range(ow, w, stride, pad, kx, &lo, &hi);
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h)
                        continue;
                    const float *src = row + (size_t)oy * ow;
                    float *dst = xc + (size_t)iy * w - pad + kx;
                    if (stride == 1) {
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] += src[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dst[(size_t)ox * stride] += src[ox];
                    }
                }
            }
        }
    }
}

/* Serial finiteness test: the largest magnitude bit pattern must be below infinity's. */
static bool finite_serial(const float *x, size_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)x;
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = u[i] & 0x7fffffffu;
        m = v > m ? v : m;
    }
    return m < 0x7f800000u;
}

bool cnnl__finite(const float *x, size_t n)
{
    int threads = cnnl__num_threads();
    int bad = 0;
    if (n < ((size_t)1 << 16))
        return finite_serial(x, n);
#pragma omp parallel num_threads(threads) reduction(| : bad)
    {
        size_t lo, hi;
        cnnl__chunk(n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        bad |= !finite_serial(x + lo, hi - lo);
    }
    return !bad;
}

bool cnnl__conv2d_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                          float *col, int threads)
{
    size_t colsz = cnnl__conv_col_floats(g);
    size_t in_img = (size_t)g->c * g->h * g->w, hw = (size_t)g->oh * g->ow, out_img = (size_t)g->oc * hw;
    int kk = g->c * g->k * g->k, bad = 0;
#pragma omp parallel num_threads(threads) reduction(| : bad)
    {
        int t = omp_get_thread_num();
        size_t lo, hi;
        cnnl__chunk((size_t)g->n, omp_get_num_threads(), t, &lo, &hi);
        float *mycol = col + (size_t)t * colsz;
        for (size_t i = lo; i < hi; i++) {
            float *yi = y + i * out_img;
            cnnl__im2col(x + i * in_img, g->c, g->h, g->w, g->k, g->stride, g->pad, g->oh, g->ow, mycol);
            if (b) {
                for (int o = 0; o < g->oc; o++)
                    for (size_t j = 0; j < hw; j++)
                        yi[(size_t)o * hw + j] = b[o];
            }
            cnnl__sgemm_serial(false, false, g->oc, (int)hw, kk, 1.0f, wt, kk, mycol, (int)hw, b ? 1.0f : 0.0f,
                               yi, (int)hw);
            bad |= !finite_serial(yi, out_img);
        }
    }
    return !bad;
}

void cnnl__conv2d_backward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *gy, float *gx,
                           float *gw, float *gb, float *col, float *acc, int threads)
{
    size_t colsz = cnnl__conv_col_floats(g);
    size_t in_img = (size_t)g->c * g->h * g->w, hw = (size_t)g->oh * g->ow, out_img = (size_t)g->oc * hw;
    int kk = g->c * g->k * g->k;
    size_t nw = (size_t)g->oc * kk, accsz = nw + (size_t)g->oc;
    int used = threads;
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num();
#pragma omp single
        used = omp_get_num_threads();
        size_t lo, hi;
        cnnl__chunk((size_t)g->n, omp_get_num_threads(), t, &lo, &hi);
        float *mycol = col + (size_t)t * colsz;
        float *aw = acc + (size_t)t * accsz, *ab = aw + nw;
        memset(aw, 0, sizeof(float) * accsz);
        for (size_t i = lo; i < hi; i++) {
            const float *gyi = gy + i * out_img;
            if (gw) {
                cnnl__im2col(x + i * in_img, g->c, g->h, g->w, g->k, g->stride, g->pad, g->oh, g->ow, mycol);
                cnnl__sgemm_serial(false, true, g->oc, kk, (int)hw, 1.0f, gyi, (int)hw, mycol, (int)hw, 1.0f, aw, kk);
            }
            if (gb) {
                for (int o = 0; o < g->oc; o++) {
                    const float *r = gyi + (size_t)o * hw;
                    float s = 0.0f;
                    for (size_t j = 0; j < hw; j++)
                        s += r[j];
                    ab[o] += s;
                }
            }
            if (gx) {
                float *gxi = gx + i * in_img;
                cnnl__sgemm_serial(true, false, kk, (int)hw, g->oc, 1.0f, wt, kk, gyi, (int)hw, 0.0f, mycol, (int)hw);
                memset(gxi, 0, sizeof(float) * in_img);
                cnnl__col2im(mycol, g->c, g->h, g->w, g->k, g->stride, g->pad, g->oh, g->ow, gxi);
            }
        }
    }
    /* Reduce the partial sums in thread order (fixed for a given thread count). */
    for (int t = 0; t < used; t++) {
        const float *aw = acc + (size_t)t * accsz;
        if (gw)
            for (size_t j = 0; j < nw; j++)
                gw[j] += aw[j];
        if (gb)
            for (int o = 0; o < g->oc; o++)
                gb[o] += aw[nw + (size_t)o];
    }
}
