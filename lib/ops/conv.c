/*
 * Convolution by im2col + GEMM, parallel over the images of a batch: each thread unfolds a band
 * of output rows of one image at a time into its own column buffer (sized to stay in cache)
 * and runs a single-threaded GEMM on it, so the column matrix of the whole batch never exists
 * and the columns are consumed while still cached. Weight gradients are summed per fixed
 * slice of the batch and the slices added in order, so results do not depend on the thread
 * count. An optional ReLU, or ReLU and 2x2 max pool, is applied to each band right after its
 * GEMM (and undone on the incoming gradient in backward), which saves separate passes over
 * the largest tensors and, pooled, storing them at all. Few-tap layers use the direct kernels
 * of conv_direct.c instead of im2col + GEMM.
 */
#include <omp.h>
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

/* Column-buffer budget per thread, in floats (512 KiB: inside a 1 MiB L2; 256 KiB and 1 MiB
 * bands measured no faster on the report network). */
#define BAND_FLOATS ((size_t)1 << 17)
/* Bands narrower than this make GEMM repack the weights too often. */
#define BAND_MIN_COLS 512

int cnnl__conv_band_rows(const cnnl__conv_geom *g)
{
    size_t kk = (size_t)g->c * g->k * g->k, ow = (size_t)g->ow;
    size_t rows = BAND_FLOATS / (kk * ow);
    size_t min_rows = (BAND_MIN_COLS + ow - 1) / ow;
    if (rows < min_rows)
        rows = min_rows;
    if (g->pool) {
        size_t limit = (size_t)(g->oh / 2) * 2;
        rows = rows < limit ? rows : limit;
        rows -= rows % 2;
        return rows < 2 ? 2 : (int)rows;
    }
    if (rows > (size_t)g->oh)
        rows = (size_t)g->oh;
    return rows < 1 ? 1 : (int)rows;
}

/* Output rows that matter: the pool drops a last odd row. */
static int conv_rows(const cnnl__conv_geom *g)
{
    return g->pool ? g->oh / 2 * 2 : g->oh;
}

int cnnl__conv_slots(int n)
{
    return n < 32 ? (n > 0 ? n : 1) : 32;
}

size_t cnnl__conv_ws_floats(const cnnl__conv_geom *g)
{
    int rows = cnnl__conv_band_rows(g);
    size_t band = (size_t)rows * (size_t)g->ow;
    size_t n = band * ((size_t)g->c * g->k * g->k + (g->relu || g->pool ? (size_t)g->oc : 0));
    if (cnnl__conv_direct_ok(g))
        n += cnnl__conv_direct_pad_floats(g, rows) + cnnl__conv_direct_acc_floats(g);
    return n;
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

void cnnl__im2col(const float *x, int c, int h, int w, int k, int stride, int pad, int oy0, int oy1, int ow,
                  float *col)
{
    size_t band = (size_t)(oy1 - oy0) * ow;
    for (int ci = 0; ci < c; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * band;
                int lo, hi;
                valid_range(ow, w, stride, pad, kx, &lo, &hi);
                for (int oy = oy0; oy < oy1; oy++) {
                    float *dst = row + (size_t)(oy - oy0) * ow;
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

void cnnl__col2im(const float *col, int c, int h, int w, int k, int stride, int pad, int oy0, int oy1, int ow,
                  float *x)
{
    size_t band = (size_t)(oy1 - oy0) * ow;
    for (int ci = 0; ci < c; ci++) {
        float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(ci * k + ky) * k + kx) * band;
                int lo, hi;
                valid_range(ow, w, stride, pad, kx, &lo, &hi);
                for (int oy = oy0; oy < oy1; oy++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h)
                        continue;
                    const float *src = row + (size_t)(oy - oy0) * ow;
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

/* Serial finiteness test: x * 0 is 0 for finite x and NaN otherwise, and NaN survives the
 * sums. Eight independent partial sums let the compiler vectorise the loop. */
static bool finite_serial(const float *x, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += x[i + k] * 0.0f;
    for (; i < n; i++)
        acc[0] += x[i] * 0.0f;
    float s = 0.0f;
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s == 0.0f;
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


/* Sum with 16 independent partial sums: a single running sum would wait on the latency of
 * every addition. The order is fixed, so results stay reproducible. */
static float sum_floats(const float *x, size_t n)
{
    float acc[16] = {0};
    size_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += x[j + k];
    float s = 0.0f;
    for (int k = 0; k < 16; k++)
        s += acc[k];
    for (; j < n; j++)
        s += x[j];
    return s;
}

/* Bias, ReLU and finiteness of one band: rows of length @p n at stride @p hw. The check runs
 * before the ReLU, which would turn NaN into 0. */
static bool finish_band(float *y, int oc, size_t hw, size_t n, bool relu)
{
    bool ok = true;
    for (int o = 0; o < oc; o++) {
        float *r = y + (size_t)o * hw;
        ok &= finite_serial(r, n);
        if (relu)
            for (size_t j = 0; j < n; j++)
                r[j] = r[j] > 0.0f ? r[j] : 0.0f;
    }
    return ok;
}

static void fill_bias(float *y, const float *b, int oc, size_t hw, size_t n)
{
    for (int o = 0; o < oc; o++)
        for (size_t j = 0; j < n; j++)
            y[(size_t)o * hw + j] = b[o];
}

/* ReLU and 2x2 max pool of one band (@p rows even rows of the oc x (rows*ow) buffer @p b) into
 * pooled outputs @p y / @p arg (plane stride @p plane, row length pw). */
static void pool_band(const float *b, int oc, int rows, int ow, int pw, size_t plane, float *y, uint8_t *arg)
{
    size_t n = (size_t)rows * ow;
    for (int o = 0; o < oc; o++) {
        for (int pr = 0; pr < rows / 2; pr++) {
            const float *r0 = b + (size_t)o * n + (size_t)(2 * pr) * ow, *r1 = r0 + ow;
            float *yr = y + (size_t)o * plane + (size_t)pr * pw;
            uint8_t *ar = arg + (size_t)o * plane + (size_t)pr * pw;
            for (int pc = 0; pc < pw; pc++) {
                /* Strict comparisons keep the first maximum, as PyTorch does. */
                float m = r0[2 * pc];
                uint8_t i = 0;
                if (r0[2 * pc + 1] > m)
                    m = r0[2 * pc + 1], i = 1;
                if (r1[2 * pc] > m)
                    m = r1[2 * pc], i = 2;
                if (r1[2 * pc + 1] > m)
                    m = r1[2 * pc + 1], i = 3;
                yr[pc] = m > 0.0f ? m : 0.0f;
                ar[pc] = i;
            }
        }
    }
}

bool cnnl__conv2d_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                          uint8_t *arg, float *ws, int threads)
{
    size_t wsz = cnnl__conv_ws_floats(g);
    size_t in_img = (size_t)g->c * g->h * g->w, hw = (size_t)g->oh * g->ow;
    int ph = g->oh / 2, pw = g->ow / 2;
    size_t plane = g->pool ? (size_t)ph * pw : hw, out_img = (size_t)g->oc * plane;
    int kk = g->c * g->k * g->k, rows = cnnl__conv_band_rows(g), nrows = conv_rows(g), bad = 0;
    size_t colsz = (size_t)kk * rows * g->ow;
    bool direct = cnnl__conv_direct_ok(g);
    /* Images are independent, so they are handed out one at a time: on a shared machine a
     * thread that loses its core does not hold the others up, and results do not change. */
#pragma omp parallel num_threads(threads) reduction(| : bad)
    {
        int t = omp_get_thread_num();
        float *col = ws + (size_t)t * wsz, *bbuf = col + colsz;
        float *xpad = bbuf + (g->relu || g->pool ? (size_t)g->oc * rows * g->ow : 0);
#pragma omp for schedule(dynamic, 1)
        for (int ii = 0; ii < g->n; ii++) {
            size_t i = (size_t)ii;
            for (int oy0 = 0; oy0 < nrows; oy0 += rows) {
                int oy1 = oy0 + rows < nrows ? oy0 + rows : nrows;
                size_t n = (size_t)(oy1 - oy0) * g->ow;
                /* Pooled: the band goes to the workspace first; otherwise straight to y. */
                float *yb = g->pool ? bbuf : y + i * out_img + (size_t)oy0 * g->ow;
                size_t ld = g->pool ? n : hw;
                if (direct) {
                    cnnl__conv_direct_pad(g, x + i * in_img, oy0, oy1, xpad);
                    cnnl__conv_direct_forward(g, xpad, oy1 - oy0, wt, b, yb, ld);
                } else {
                    cnnl__im2col(x + i * in_img, g->c, g->h, g->w, g->k, g->stride, g->pad, oy0, oy1, g->ow, col);
                    if (b)
                        fill_bias(yb, b, g->oc, ld, n);
                    cnnl__sgemm_serial(false, false, g->oc, (int)n, kk, 1.0f, wt, kk, col, (int)n, b ? 1.0f : 0.0f,
                                       yb, (int)ld);
                }
                bad |= !finish_band(yb, g->oc, ld, n, g->relu && !g->pool);
                if (g->pool) {
                    size_t off = i * out_img + (size_t)(oy0 / 2) * pw;
                    pool_band(bbuf, g->oc, oy1 - oy0, g->ow, pw, plane, y + off, arg + off);
                }
            }
        }
    }
    return !bad;
}

/* The incoming gradient of one band, masked by the ReLU (output > 0) when fused, packed into
 * @p buf with row stride @p n; without ReLU the band is used in place. */
static const float *band_grad(const cnnl__conv_geom *g, const float *gy, const float *y, size_t hw, size_t n,
                              float *buf, int *ld)
{
    if (!g->relu && !g->pool) {
        *ld = (int)hw;
        return gy;
    }
    for (int o = 0; o < g->oc; o++) {
        const float *gr = gy + (size_t)o * hw, *yr = y + (size_t)o * hw;
        float *d = buf + (size_t)o * n;
        for (size_t j = 0; j < n; j++)
            d[j] = yr[j] > 0.0f ? gr[j] : 0.0f;
    }
    *ld = (int)n;
    return buf;
}

/* Pooled: each pooled gradient goes, if its output was positive, to the window position of
 * the maximum; everything else in the band is zero. */
static const float *band_grad_pooled(const cnnl__conv_geom *g, const float *gy, const float *y, const uint8_t *arg,
                                     size_t plane, int rows, float *buf, int *ld)
{
    int pw = g->ow / 2;
    size_t n = (size_t)rows * g->ow;
    memset(buf, 0, sizeof(float) * n * (size_t)g->oc);
    for (int o = 0; o < g->oc; o++)
        for (int pr = 0; pr < rows / 2; pr++) {
            size_t p0 = (size_t)o * plane + (size_t)pr * pw;
            float *r0 = buf + (size_t)o * n + (size_t)(2 * pr) * g->ow;
            for (int pc = 0; pc < pw; pc++) {
                if (!(y[p0 + pc] > 0.0f))
                    continue;
                int a = arg[p0 + pc];
                r0[(size_t)(a >> 1) * g->ow + 2 * pc + (a & 1)] = gy[p0 + pc];
            }
        }
    *ld = (int)n;
    return buf;
}

void cnnl__conv2d_backward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *y,
                           const uint8_t *arg, const float *gy, float *gx, float *gw, float *gb, float *ws,
                           float *acc, int threads)
{
    size_t wsz = cnnl__conv_ws_floats(g);
    size_t in_img = (size_t)g->c * g->h * g->w, hw = (size_t)g->oh * g->ow;
    int pw = g->ow / 2;
    size_t plane = g->pool ? (size_t)(g->oh / 2) * pw : hw, out_img = (size_t)g->oc * plane;
    int kk = g->c * g->k * g->k, rows = cnnl__conv_band_rows(g), nrows = conv_rows(g);
    size_t nw = (size_t)g->oc * kk, accsz = nw + (size_t)g->oc;
    size_t colsz = (size_t)kk * rows * g->ow;
    bool direct = cnnl__conv_direct_ok(g);
    int slots = cnnl__conv_slots(g->n);
    /* Gradient partial sums belong to fixed slices of the batch (slots), not to threads: the
     * slots are handed out dynamically and added up in slot order, so results do not depend
     * on the thread count or on scheduling. */
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num();
        float *col = ws + (size_t)t * wsz, *gbuf = col + colsz;
        float *xpad = gbuf + (g->relu || g->pool ? (size_t)g->oc * rows * g->ow : 0);
        float *dacc = xpad + (direct ? cnnl__conv_direct_pad_floats(g, rows) : 0);
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < slots; sl++) {
            size_t lo, hi;
            cnnl__chunk((size_t)g->n, slots, sl, &lo, &hi);
            float *aw = acc + (size_t)sl * accsz, *ab = aw + nw;
            memset(aw, 0, sizeof(float) * accsz);
            if (direct)
                memset(dacc, 0, sizeof(float) * cnnl__conv_direct_acc_floats(g));
            for (size_t i = lo; i < hi; i++) {
                if (gx)
                    memset(gx + i * in_img, 0, sizeof(float) * in_img);
                for (int oy0 = 0; oy0 < nrows; oy0 += rows) {
                    int oy1 = oy0 + rows < nrows ? oy0 + rows : nrows, ld;
                    size_t n = (size_t)(oy1 - oy0) * g->ow;
                    const float *gyb;
                    if (g->pool) {
                        size_t off = i * out_img + (size_t)(oy0 / 2) * pw;
                        gyb = band_grad_pooled(g, gy + off, y + off, arg + off, plane, oy1 - oy0, gbuf, &ld);
                    } else {
                        size_t off = i * out_img + (size_t)oy0 * g->ow;
                        gyb = band_grad(g, gy + off, y + off, hw, n, gbuf, &ld);
                    }
                    if (gw && direct) {
                        cnnl__conv_direct_pad(g, x + i * in_img, oy0, oy1, xpad);
                        cnnl__conv_direct_weight_grad(g, xpad, oy1 - oy0, gyb, (size_t)ld, dacc);
                    } else if (gw) {
                        cnnl__im2col(x + i * in_img, g->c, g->h, g->w, g->k, g->stride, g->pad, oy0, oy1, g->ow, col);
                        /* gw^T += col gy^T: with the output channels as the short side this
                         * shape ran 1.1-1.5x faster in OpenBLAS than gw += gy col^T here. */
                        cnnl__sgemm_serial(false, true, kk, g->oc, (int)n, 1.0f, col, (int)n, gyb, ld, 1.0f, aw, g->oc);
                    }
                    if (gb)
                        for (int o = 0; o < g->oc; o++)
                            ab[o] += sum_floats(gyb + (size_t)o * ld, n);
                    if (gx) {
                        cnnl__sgemm_serial(true, false, kk, (int)n, g->oc, 1.0f, wt, kk, gyb, ld, 0.0f, col, (int)n);
                        cnnl__col2im(col, g->c, g->h, g->w, g->k, g->stride, g->pad, oy0, oy1, g->ow, gx + i * in_img);
                    }
                }
            }
            if (gw && direct)
                cnnl__conv_direct_reduce(g, dacc, aw);
        }
    }
    /* Add the slots' partial sums (weights transposed: kk x oc) in slot order. */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int o = 0; o < g->oc; o++) {
        for (int sl = 0; sl < slots; sl++) {
            const float *aw = acc + (size_t)sl * accsz;
            if (gw)
                for (int j = 0; j < kk; j++)
                    gw[(size_t)o * kk + j] += aw[(size_t)j * g->oc + o];
            if (gb)
                gb[o] += aw[nw + (size_t)o];
        }
    }
}
