/*
 * Antialiased bilinear (triangle-filter) resizing of 8-bit images, computed the way
 * Pillow's Image.resize(..., BILINEAR) computes it: per output pixel the triangle filter is
 * widened by the scale factor when shrinking, cut at the image border and renormalised;
 * weights are 22-bit fixed point; a horizontal pass into an 8-bit intermediate image, then a
 * vertical pass. Pixel-for-pixel agreement with torchvision's PIL pipeline is the point.
 *
 * Debian's stb_image_resize 0.97 was the first choice, but it is built with assertions and
 * aborts the process (stbir__normalize_downsample_coefficients: total < 1.1f) on some
 * downscale factors that occur in the real MRI folder, which a library must never do.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "data/data_impl.h"

enum { PRECISION_BITS = 32 - 8 - 2 };

typedef struct coeffs {
    int ksize;
    int *bounds;   /* per output pixel: first input pixel, number of input pixels */
    int32_t *k;    /* per output pixel: ksize fixed-point weights */
} coeffs;

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Frees and forgets both arrays: a failed coeffs_make() has freed them already when its
 * caller frees them again. */
static void coeffs_free(coeffs *c)
{
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

static bool coeffs_make(int in_size, int out_size, coeffs *c)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale; /* the triangle's support is 1 */
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out_size * (size_t)c->ksize * sizeof *c->k);
    double *w = malloc((size_t)c->ksize * sizeof *w);
    if (!c->bounds || !c->k || !w) {
        free(w);
        coeffs_free(c);
        return false;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, total = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax;
        if (xmin < 0)
            xmin = 0;
        xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            total += w[x];
        }
        int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax && total != 0.0 ? w[x] / total : 0.0;
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return true;
}

static uint8_t clip8(int64_t v)
{
    if (v >= ((int64_t)1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* Rows [y0, y0 + rows) of @p in (width w) -> @p out (width ow). */
static void pass_horizontal(const uint8_t *in, int w, int y0, int rows, int ch, const coeffs *c,
                            uint8_t *out, int ow)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)(y0 + y) * (size_t)w * (size_t)ch;
        uint8_t *dst = out + (size_t)y * (size_t)ow * (size_t)ch;
        for (int xx = 0; xx < ow; xx++) {
            int xmin = c->bounds[2 * xx], xmax = c->bounds[2 * xx + 1];
            const int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
            for (int b = 0; b < ch; b++) {
                int64_t ss = (int64_t)1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++)
                    ss += (int64_t)src[(size_t)(x + xmin) * (size_t)ch + (size_t)b] * k[x];
                dst[(size_t)xx * (size_t)ch + (size_t)b] = clip8(ss);
            }
        }
    }
}

static void pass_vertical(const uint8_t *in, int w, int ch, const coeffs *c, int y_shift, uint8_t *out,
                          int oh)
{
    size_t stride = (size_t)w * (size_t)ch;
    for (int yy = 0; yy < oh; yy++) {
        int ymin = c->bounds[2 * yy] - y_shift, ymax = c->bounds[2 * yy + 1];
        const int32_t *k = c->k + (size_t)yy * (size_t)c->ksize;
        uint8_t *dst = out + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int64_t ss = (int64_t)1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++)
                ss += (int64_t)in[(size_t)(y + ymin) * stride + i] * k[y];
            dst[i] = clip8(ss);
        }
    }
}

int cnnl__image_resize(const uint8_t *in, int w, int h, int ch, uint8_t *out, int ow, int oh)
{
    if (w == ow && h == oh) {
        memcpy(out, in, (size_t)w * (size_t)h * (size_t)ch);
        return 1;
    }
    coeffs ch_x = {0}, cv = {0};
    bool need_h = w != ow, need_v = h != oh;
    if ((need_h && !coeffs_make(w, ow, &ch_x)) || (need_v && !coeffs_make(h, oh, &cv))) {
        coeffs_free(&ch_x);
        return 0;
    }
    if (!need_v) {
        pass_horizontal(in, w, 0, h, ch, &ch_x, out, ow);
        coeffs_free(&ch_x);
        return 1;
    }
    /* only the input rows the vertical pass reads go through the horizontal pass */
    int first = cv.bounds[0], last = cv.bounds[2 * oh - 2] + cv.bounds[2 * oh - 1];
    const uint8_t *src = in;
    uint8_t *mid = NULL;
    int shift = 0;
    if (need_h) {
        mid = malloc((size_t)ow * (size_t)(last - first) * (size_t)ch);
        if (!mid) {
            coeffs_free(&ch_x);
            coeffs_free(&cv);
            return 0;
        }
        pass_horizontal(in, w, first, last - first, ch, &ch_x, mid, ow);
        src = mid;
        shift = first;
    }
    pass_vertical(src, need_h ? ow : w, ch, &cv, shift, out, oh);
    free(mid);
    coeffs_free(&ch_x);
    coeffs_free(&cv);
    return 1;
}
