/* Max and average pooling over independent planes, parallel over planes (handed out
 * dynamically; each plane is computed by one thread, so results do not depend on scheduling).
 * Padding follows PyTorch: max pooling pads with -inf (pad <= k/2, so every window holds an
 * input), average pooling counts the padded zeros (count_include_pad=True, floor mode: the
 * divisor is always k*k). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/internal.h"
#include "ops/kernels.h"

/* Window rows [*y0, *y1) and columns [*x0, *x1) of output (oy, ox), clipped to the input. */
static void window(int oy, int ox, int h, int w, int k, int s, int pad, int *y0, int *y1, int *x0, int *x1)
{
    int a = oy * s - pad, b = ox * s - pad;
    *y0 = a < 0 ? 0 : a;
    *y1 = a + k > h ? h : a + k;
    *x0 = b < 0 ? 0 : b;
    *x1 = b + k > w ? w : b + k;
}

/* Index in the plane of the first maximal input of window (oy, ox), in row-major order. */
static size_t argmax_window(const float *x, int oy, int ox, int h, int w, int k, int s, int pad)
{
    int y0, y1, x0, x1;
    window(oy, ox, h, w, k, s, pad, &y0, &y1, &x0, &x1);
    size_t best = (size_t)y0 * w + (size_t)x0;
    float m = x[best];
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            size_t idx = (size_t)iy * w + (size_t)ix;
            if (x[idx] > m) {
                m = x[idx];
                best = idx;
            }
        }
    return best;
}

static void maxpool_plane(const float *x, int h, int w, int k, int s, int pad, int oh, int ow, float *y)
{
    if (pad > 0) {
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                y[(size_t)oy * ow + ox] = x[argmax_window(x, oy, ox, h, w, k, s, pad)];
        return;
    }
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

void cnnl__maxpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int pad, int oh, int ow,
                           float *y)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++)
        maxpool_plane(x + p * in, h, w, k, s, pad, oh, ow, y + p * out);
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
                            int s, int pad, int oh, int ow, float *gx)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in, *yp = y + p * out, *gp = gy + p * out;
        float *gxp = gx + p * in;
        if (k == 2 && s == 2 && pad == 0) {
            maxpool2_backward_plane(xp, yp, gp, h, w, oh, ow, gxp);
            continue;
        }
        memset(gxp, 0, sizeof(float) * in);
        if (pad > 0) {
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                    gxp[argmax_window(xp, oy, ox, h, w, k, s, pad)] += gp[(size_t)oy * ow + ox];
            continue;
        }
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

bool cnnl__avgpool_forward(const float *x, size_t planes, int h, int w, int k, int s, int pad, int oh, int ow,
                           float *y)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
    float inv = 1.0f / (float)(k * k);
    int bad = 0, level = cnnl__simd_level();
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4) reduction(| : bad)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * in;
        float *yp = y + p * out;
        /* y * 0 is 0 for every finite y and NaN otherwise: one sum per plane tells */
        float zero = 0.0f;
        if (pad > 0) {
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int y0, y1, x0, x1;
                    window(oy, ox, h, w, k, s, pad, &y0, &y1, &x0, &x1);
                    float sum = 0.0f;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                            sum += xp[(size_t)iy * w + ix];
                    yp[(size_t)oy * ow + ox] = sum * inv;
                    zero += sum * 0.0f;
                }
        } else if (k == 2 && s == 2) {
            for (int oy = 0; oy < oh; oy++) {
                const float *r0 = xp + (size_t)(2 * oy) * w, *r1 = r0 + w;
                float *yr = yp + (size_t)oy * ow;
                /* |y| as bits plus one exponent step reaches the sign bit exactly when y is
                 * an infinity or a NaN: an integer OR over the row, which vectorises */
                uint32_t any = 0;
                for (int ox = cnnl__avgpool2_row_simd(level, r0, r1, ow, yr, &any); ox < ow; ox++) {
                    float v = ((r0[2 * ox] + r0[2 * ox + 1]) + (r1[2 * ox] + r1[2 * ox + 1])) * 0.25f;
                    uint32_t bits;
                    memcpy(&bits, &v, sizeof bits);
                    any |= (bits & 0x7fffffffu) + 0x00800000u;
                    yr[ox] = v;
                }
                if (any & 0x80000000u)
                    zero = NAN;
            }
        } else {
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    const float *q = xp + (size_t)(oy * s) * w + (size_t)ox * s;
                    float sum = 0.0f;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++)
                            sum += q[(size_t)ky * w + kx];
                    yp[(size_t)oy * ow + ox] = sum * inv;
                    zero += sum * 0.0f;
                }
        }
        bad |= zero != 0.0f;
    }
    return !bad;
}

void cnnl__avgpool_backward(const float *gy, size_t planes, int h, int w, int k, int s, int pad, int oh, int ow,
                            float *gx)
{
    size_t in = (size_t)h * w, out = (size_t)oh * ow;
    float inv = 1.0f / (float)(k * k);
#pragma omp parallel for num_threads(cnnl__num_threads()) schedule(dynamic, 4)
    for (size_t p = 0; p < planes; p++) {
        const float *gp = gy + p * out;
        float *gxp = gx + p * in;
        memset(gxp, 0, sizeof(float) * in);
        if (pad > 0) {
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float v = gp[(size_t)oy * ow + ox] * inv;
                    int y0, y1, x0, x1;
                    window(oy, ox, h, w, k, s, pad, &y0, &y1, &x0, &x1);
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                            gxp[(size_t)iy * w + ix] += v;
                }
            continue;
        }
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
