/*
 * Generic convolution: any kernel size, stride, padding, dilation and number of groups, by
 * direct loops over the taps. It is the portable path for what the other engines do not cover
 * (dilated, grouped and depthwise layers), written for correctness first: every output plane,
 * input-gradient plane and weight-gradient partial sum is computed by one thread in a fixed
 * order, so results do not depend on the thread count or on scheduling.
 *
 * Layout: x (n, c, h, w), wt (oc, c/groups, k, k), y (n, oc, oh, ow); output channel o reads the
 * input channels of group o / (oc/groups).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/internal.h"
#include "ops/conv_generic.h"
#include "ops/kernels.h"

static int geom_dil(const cnnl__conv_geom *g)
{
    return g->dil > 1 ? g->dil : 1;
}

static int geom_groups(const cnnl__conv_geom *g)
{
    return g->groups > 1 ? g->groups : 1;
}

/* Output columns [lo, hi) whose input column ox*s - pad + off lies inside [0, w). */
static void col_range(int ow, int w, int s, int pad, int off, int *lo, int *hi)
{
    int a = 0, b = ow;
    /* ox*s >= pad - off */
    int need = pad - off;
    if (need > 0)
        a = (need + s - 1) / s;
    /* ox*s - pad + off <= w - 1 */
    int top = w - 1 + pad - off;
    b = top < 0 ? 0 : top / s + 1;
    if (b > ow)
        b = ow;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

bool cnnl__conv_generic_forward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *b, float *y,
                                int threads)
{
    const int d = geom_dil(g), G = geom_groups(g);
    const int cg = g->c / G, og = g->oc / G, k = g->k, s = g->stride, p = g->pad;
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    const size_t planes = (size_t)g->n * g->oc;
    int ok = 1;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(&& : ok)
    for (size_t pi = 0; pi < planes; pi++) {
        const size_t img = pi / (size_t)g->oc;
        const int o = (int)(pi % (size_t)g->oc), grp = o / og;
        float *yp = y + pi * out_plane;
        const float bias = b ? b[o] : 0.0f;
        for (size_t i = 0; i < out_plane; i++)
            yp[i] = bias;
        for (int ci = 0; ci < cg; ci++) {
            const float *xp = x + (img * (size_t)g->c + (size_t)(grp * cg + ci)) * in_plane;
            const float *wp = wt + ((size_t)o * cg + ci) * (size_t)k * k;
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    const float wv = wp[ky * k + kx];
                    int lo, hi;
                    col_range(g->ow, g->w, s, p, kx * d, &lo, &hi);
                    for (int oy = 0; oy < g->oh; oy++) {
                        int iy = oy * s - p + ky * d;
                        if (iy < 0 || iy >= g->h)
                            continue;
                        const float *xr = xp + (size_t)iy * g->w;
                        const int off = kx * d - p; /* input column of output column ox: ox*s + off */
                        float *yr = yp + (size_t)oy * g->ow;
                        for (int ox = lo; ox < hi; ox++)
                            yr[ox] += wv * xr[ox * s + off];
                    }
                }
        }
        for (size_t i = 0; i < out_plane; i++)
            ok = ok && isfinite(yp[i]);
    }
    return ok != 0;
}

size_t cnnl__conv_generic_acc_floats(const cnnl__conv_geom *g)
{
    size_t wsz = (size_t)g->oc * (size_t)(g->c / geom_groups(g)) * (size_t)g->k * g->k;
    return (size_t)cnnl__conv_slots(g->n) * (wsz + (size_t)g->oc);
}

void cnnl__conv_generic_backward(const cnnl__conv_geom *g, const float *x, const float *wt, const float *gy,
                                 float *gx, float *gw, float *gb, float *acc, int threads)
{
    const int d = geom_dil(g), G = geom_groups(g);
    const int cg = g->c / G, og = g->oc / G, k = g->k, s = g->stride, p = g->pad;
    const size_t in_plane = (size_t)g->h * g->w, out_plane = (size_t)g->oh * g->ow;
    const size_t kk = (size_t)k * k, wsz = (size_t)g->oc * cg * kk, row = wsz + (size_t)g->oc;

    if (gx) {
        /* One input-gradient plane per task: the output channels of its group scatter into it. */
        const size_t planes = (size_t)g->n * g->c;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (size_t pi = 0; pi < planes; pi++) {
            const size_t img = pi / (size_t)g->c;
            const int c = (int)(pi % (size_t)g->c), grp = c / cg, ci = c % cg;
            float *gp = gx + pi * in_plane;
            memset(gp, 0, sizeof(float) * in_plane);
            for (int oo = 0; oo < og; oo++) {
                const int o = grp * og + oo;
                const float *gyp = gy + (img * (size_t)g->oc + (size_t)o) * out_plane;
                const float *wp = wt + ((size_t)o * cg + ci) * kk;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        const float wv = wp[ky * k + kx];
                        int lo, hi;
                        col_range(g->ow, g->w, s, p, kx * d, &lo, &hi);
                        for (int oy = 0; oy < g->oh; oy++) {
                            int iy = oy * s - p + ky * d;
                            if (iy < 0 || iy >= g->h)
                                continue;
                            float *gr = gp + (size_t)iy * g->w;
                            const int off = kx * d - p;
                            const float *gyr = gyp + (size_t)oy * g->ow;
                            for (int ox = lo; ox < hi; ox++)
                                gr[ox * s + off] += wv * gyr[ox];
                        }
                    }
            }
        }
    }
    if (!gw && !gb)
        return;
    /* Partial sums per fixed slice of the batch (slot) and output channel, then the slots added
     * in order. */
    const int slots = cnnl__conv_slots(g->n);
    const size_t tasks = (size_t)slots * g->oc;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (size_t t = 0; t < tasks; t++) {
        const int slot = (int)(t / (size_t)g->oc), o = (int)(t % (size_t)g->oc), grp = o / og;
        const int i0 = (int)((int64_t)slot * g->n / slots), i1 = (int)((int64_t)(slot + 1) * g->n / slots);
        float *aw = acc + (size_t)slot * row + (size_t)o * cg * kk;
        float *ab = acc + (size_t)slot * row + wsz + (size_t)o;
        memset(aw, 0, sizeof(float) * (size_t)cg * kk);
        *ab = 0.0f;
        for (int img = i0; img < i1; img++) {
            const float *gyp = gy + ((size_t)img * g->oc + (size_t)o) * out_plane;
            if (gb) {
                float sb = 0.0f;
                for (size_t i = 0; i < out_plane; i++)
                    sb += gyp[i];
                *ab += sb;
            }
            if (!gw)
                continue;
            for (int ci = 0; ci < cg; ci++) {
                const float *xp = x + ((size_t)img * g->c + (size_t)(grp * cg + ci)) * in_plane;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int lo, hi;
                        col_range(g->ow, g->w, s, p, kx * d, &lo, &hi);
                        float sum = 0.0f;
                        for (int oy = 0; oy < g->oh; oy++) {
                            int iy = oy * s - p + ky * d;
                            if (iy < 0 || iy >= g->h)
                                continue;
                            const float *xr = xp + (size_t)iy * g->w;
                            const int off = kx * d - p;
                            const float *gyr = gyp + (size_t)oy * g->ow;
                            for (int ox = lo; ox < hi; ox++)
                                sum += gyr[ox] * xr[ox * s + off];
                        }
                        aw[(size_t)ci * kk + (size_t)(ky * k + kx)] += sum;
                    }
            }
        }
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < row; i++) {
        float sum = 0.0f;
        for (int slot = 0; slot < slots; slot++)
            sum += acc[(size_t)slot * row + i];
        if (i < wsz) {
            if (gw)
                gw[i] += sum;
        } else if (gb) {
            gb[i - wsz] += sum;
        }
    }
}
