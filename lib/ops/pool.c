/* Max and average pooling over independent planes, parallel over planes (handed out
 * dynamically; each plane is computed by one thread, so results do not depend on scheduling). */
#include <omp.h>
#include <string.h>

#include "core/internal.h"
#include "ops/kernels.h"

static void maxpool_plane(const float *x, int w, int k, int s, int oh, int ow, float *y)
{
    if (k == 2 && s == 2) {
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
            float *d = y + (size_t)oy * ow;
            for (int ox = 0; ox < ow; ox++) {
                float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], e = r1[2 * ox + 1];
                float m0 = b > a ? b : a, m1 = e > c ? e : c;
                d[ox] = m1 > m0 ? m1 : m0;
            }
        }
        return;
    }
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            const float *p = x + (size_t)(oy * s) * w + (size_t)ox * s;
            float m = p[0];
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    float v = p[(size_t)ky * w + kx];
                    m = v > m ? v : m;
                }
            y[(size_t)oy * ow + ox] = m;
        }
}

void cnnl__maxpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int oh, int ow, float *y)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++)
        maxpool_plane(x + p * in, w, k, s, oh, ow, y + p * out);
}

/* 2x2 windows, stride 2: every input gets exactly one write, so no clearing pass is needed
 * except for a leftover odd row or column. */
static void maxpool2_backward_plane(const float *x, const float *y, const float *gy, int h, int w, int oh, int ow,
                                    float *gx)
{
    for (int oy = 0; oy < oh; oy++) {
        const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
        float *g0 = gx + (size_t)(2 * oy) * w, *g1 = g0 + w;
        const float *yr = y + (size_t)oy * ow, *gr = gy + (size_t)oy * ow;
        for (int ox = 0; ox < ow; ox++) {
            float m = yr[ox], g = gr[ox];
            int a = r0[2 * ox] == m;
            int b = !a && r0[2 * ox + 1] == m;
            int c = !a && !b && r1[2 * ox] == m;
            int d = !a && !b && !c;
            g0[2 * ox] = a ? g : 0.0f;
            g0[2 * ox + 1] = b ? g : 0.0f;
            g1[2 * ox] = c ? g : 0.0f;
            g1[2 * ox + 1] = d ? g : 0.0f;
        }
        if (w > 2 * ow) {
            for (int ix = 2 * ow; ix < w; ix++)
                g0[ix] = g1[ix] = 0.0f;
        }
    }
    for (int iy = 2 * oh; iy < h; iy++)
        memset(gx + (size_t)iy * w, 0, sizeof(float) * (size_t)w);
}

void cnnl__maxpool_backward(const float *x, const float *y, const float *gy, size_t planes, int h, int w, int k,
                            int s, int oh, int ow, float *gx)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in, *yp = y + p * out, *gp = gy + p * out;
        float *gxp = gx + p * in;
        if (k == 2 && s == 2) {
            maxpool2_backward_plane(xp, yp, gp, h, w, oh, ow, gxp);
            continue;
        }
        memset(gxp, 0, sizeof(float) * in);
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                size_t base = (size_t)(oy * s) * w + (size_t)ox * s, o = (size_t)oy * ow + ox;
                /* The gradient goes to the first maximal element in row-major window order. */
                int found = 0;
                for (int ky = 0; ky < k && !found; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        size_t idx = base + (size_t)ky * w + kx;
                        if (xp[idx] == yp[o]) {
                            gxp[idx] += gp[o];
                            found = 1;
                            break;
                        }
                    }
            }
    }
}

void cnnl__avgpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int oh, int ow, float *y)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
    float inv = 1.0f / (float)(k * k);
    (void)h;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in;
        float *yp = y + p * out;
        if (k == 2 && s == 2) {
            for (int oy = 0; oy < oh; oy++) {
                const float *r0 = xp + (size_t)(2 * oy) * w, *r1 = r0 + w;
                for (int ox = 0; ox < ow; ox++)
                    yp[(size_t)oy * ow + ox] = ((r0[2 * ox] + r0[2 * ox + 1]) + (r1[2 * ox] + r1[2 * ox + 1])) * 0.25f;
            }
            continue;
        }
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *q = xp + (size_t)(oy * s) * w + (size_t)ox * s;
                float sum = 0.0f;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        sum += q[(size_t)ky * w + kx];
                yp[(size_t)oy * ow + ox] = sum * inv;
            }
    }
}

void cnnl__avgpool_backward(const float *gy, size_t planes, int h, int w, int k, int s, int oh, int ow, float *gx)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
    float inv = 1.0f / (float)(k * k);
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++) {
        const float *gp = gy + p * out;
        float *gxp = gx + p * in;
        memset(gxp, 0, sizeof(float) * in);
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float v = gp[(size_t)oy * ow + ox] * inv;
                float *q = gxp + (size_t)(oy * s) * w + (size_t)ox * s;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        q[(size_t)ky * w + kx] += v;
            }
    }
}
