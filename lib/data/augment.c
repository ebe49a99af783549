/*
 * Data augmentation: per-image random transforms applied while a loader builds a batch.
 *
 * An image is taken from its stored 8-bit pixels into float planes in [0, 1], transformed
 * (flip, one affine resampling, resolution round trip, blur, gamma, contrast, brightness,
 * noise), clipped and normalized into the batch. Every image draws its parameters from its own
 * generator, seeded by (loader seed, epoch, dataset index), so results depend on neither the
 * thread count nor the batch order nor a resume. Scratch memory is the caller's (one work
 * area per thread, cnnl__augment_work_floats()), so building a batch allocates nothing.
 */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng_impl.h"
#include "data/augment.h"
#include "data/data_impl.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

CNNL_API cnnl_augment_opts cnnl_augment_opts_default(void)
{
    cnnl_augment_opts a;
    memset(&a, 0, sizeof a);
    return a;
}

CNNL_API cnnl_augment_opts cnnl_augment_opts_preset(int size)
{
    cnnl_augment_opts a = cnnl_augment_opts_default();
    a.flip_p = 0.5f;
    a.rotate_deg = 10.0f;
    a.scale_min = 0.9f;
    a.scale_max = 1.1f;
    a.translate = 0.05f;
    a.roundtrip_p = 0.3f;
    a.roundtrip_min = 0.4f;
    a.blur_p = 0.3f;
    a.blur_sigma = 2.0f * (float)(size > 0 ? size : 512) / 512.0f;
    if (a.blur_sigma > 20.0f)
        a.blur_sigma = 20.0f;
    a.gamma = 0.5f;
    a.contrast = 0.4f;
    a.brightness = 0.1f;
    a.noise_std = 0.05f;
    return a;
}

static bool in_range(float v, float lo, float hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

cnnl_status cnnl__augment_check(const char *who, const cnnl_augment_opts *a)
{
#define RANGE(f, lo, hi)                                                                          \
    if (!in_range(a->f, lo, hi))                                                                  \
        return cnnl__error(CNNL_EINVAL, "%s: augment." #f " is %g; must be in [%g, %g]", who,     \
                           (double)a->f, (double)(lo), (double)(hi));
    RANGE(flip_p, 0.0f, 1.0f)
    RANGE(rotate_deg, 0.0f, 180.0f)
    RANGE(scale_min, 0.0f, 4.0f)
    RANGE(scale_max, 0.0f, 4.0f)
    RANGE(translate, 0.0f, 0.5f)
    RANGE(roundtrip_p, 0.0f, 1.0f)
    RANGE(roundtrip_min, 0.0f, 1.0f)
    RANGE(blur_p, 0.0f, 1.0f)
    RANGE(blur_sigma, 0.0f, 20.0f)
    RANGE(gamma, 0.0f, 4.0f)
    RANGE(contrast, 0.0f, 1.0f)
    RANGE(brightness, 0.0f, 1.0f)
    RANGE(noise_std, 0.0f, 1.0f)
#undef RANGE
    if ((a->scale_min != 0.0f || a->scale_max != 0.0f) &&
        (a->scale_min <= 0.0f || a->scale_min > a->scale_max))
        return cnnl__error(CNNL_EINVAL, "%s: augment.scale_min %g and scale_max %g; need 0 < "
                           "scale_min <= scale_max (or both 0)", who, (double)a->scale_min,
                           (double)a->scale_max);
    if (a->roundtrip_p > 0.0f && a->roundtrip_min <= 0.0f)
        return cnnl__error(CNNL_EINVAL, "%s: augment.roundtrip_min is 0; must be in (0, 1] when "
                           "roundtrip_p > 0", who);
    return CNNL_OK;
}

bool cnnl__augment_enabled(const cnnl_augment_opts *a)
{
    return a->flip_p > 0 || a->rotate_deg > 0 || a->scale_min > 0 || a->translate > 0 ||
           a->roundtrip_p > 0 || (a->blur_p > 0 && a->blur_sigma > 0) || a->gamma > 0 ||
           a->contrast > 0 || a->brightness > 0 || a->noise_std > 0;
}

size_t cnnl__augment_work_floats(int size)
{
    size_t plane = (size_t)size * (size_t)size;
    return 4 * plane; /* a 3-channel image and one plane for separable passes */
}

void cnnl__augment_draw(const cnnl_augment_opts *a, int size, cnnl_rng *rng, cnnl__augment_params *p)
{
    /* A fixed sequence of draws, whatever is enabled. */
    float u[13];
    for (int i = 0; i < 13; i++)
        u[i] = cnnl__rng_uniform(rng);
    bool full = a->full_strength;
    memset(p, 0, sizeof *p);
    p->flip = a->flip_p > 0 && (full || u[0] < a->flip_p);
    p->angle = a->rotate_deg * (full ? 1.0f : 2.0f * u[1] - 1.0f);
    p->scale = 1.0f;
    if (a->scale_min > 0)
        p->scale = full ? a->scale_max : a->scale_min + (a->scale_max - a->scale_min) * u[2];
    if (!full) {
        p->tx = a->translate * (2.0f * u[3] - 1.0f) * (float)size;
        p->ty = a->translate * (2.0f * u[4] - 1.0f) * (float)size;
    }
    p->roundtrip = size;
    if (a->roundtrip_p > 0 && (full || u[5] < a->roundtrip_p)) {
        float f = full ? a->roundtrip_min : a->roundtrip_min + (1.0f - a->roundtrip_min) * u[6];
        int s = (int)lroundf(f * (float)size);
        int least = (size + 31) / 32; /* keeps the filter within its 128 taps */
        p->roundtrip = s < least ? least : s > size ? size : s;
    }
    if (a->blur_p > 0 && (full || u[7] < a->blur_p))
        p->blur_sigma = full ? a->blur_sigma : a->blur_sigma * u[8];
    p->gamma = 1.0f;
    if (a->gamma > 0)
        p->gamma = full ? 1.0f + a->gamma : expf((2.0f * u[9] - 1.0f) * log1pf(a->gamma));
    p->contrast = 1.0f;
    if (a->contrast > 0)
        p->contrast = full ? 1.0f - a->contrast : 1.0f + a->contrast * (2.0f * u[10] - 1.0f);
    p->brightness = a->brightness * (full ? 1.0f : 2.0f * u[11] - 1.0f);
    p->noise_std = a->noise_std * (full ? 1.0f : u[12]);
}

/* Bilinear sample of one plane at (x, y), 0 outside the image. */
static inline float sample(const float *img, int s, float x, float y)
{
    float fx = floorf(x), fy = floorf(y);
    int x0 = (int)fx, y0 = (int)fy;
    float ax = x - fx, ay = y - fy;
    float v00 = 0, v01 = 0, v10 = 0, v11 = 0;
    if (y0 >= 0 && y0 < s) {
        if (x0 >= 0 && x0 < s)
            v00 = img[(size_t)y0 * (size_t)s + (size_t)x0];
        if (x0 + 1 >= 0 && x0 + 1 < s)
            v01 = img[(size_t)y0 * (size_t)s + (size_t)x0 + 1];
    }
    if (y0 + 1 >= 0 && y0 + 1 < s) {
        if (x0 >= 0 && x0 < s)
            v10 = img[(size_t)(y0 + 1) * (size_t)s + (size_t)x0];
        if (x0 + 1 >= 0 && x0 + 1 < s)
            v11 = img[(size_t)(y0 + 1) * (size_t)s + (size_t)x0 + 1];
    }
    return (1 - ay) * ((1 - ax) * v00 + ax * v01) + ay * ((1 - ax) * v10 + ax * v11);
}

/* Output pixel (x, y) shows input c + R(-angle) (p - c - t) / scale. */
static void affine(const float *in, float *out, int s, int ch, const cnnl__augment_params *p)
{
    double th = (double)p->angle * M_PI / 180.0;
    float cs = (float)(cos(th) / p->scale), sn = (float)(sin(th) / p->scale);
    float c = 0.5f * (float)(s - 1);
    size_t plane = (size_t)s * (size_t)s;
    for (int k = 0; k < ch; k++)
        for (int y = 0; y < s; y++) {
            float dy = (float)y - c - p->ty;
            for (int x = 0; x < s; x++) {
                float dx = (float)x - c - p->tx;
                float ix = c + cs * dx + sn * dy, iy = c - sn * dx + cs * dy;
                out[(size_t)k * plane + (size_t)y * (size_t)s + (size_t)x] =
                    sample(in + (size_t)k * plane, s, ix, iy);
            }
        }
}

/* Triangle-filter resampling along one axis (widened by the scale factor when shrinking, as
 * Pillow's antialiased bilinear): @p n_in -> @p n_out samples, each line of @p lines;
 * element (line, i) is at line * line_stride + i * step. */
static void resample_axis(const float *in, int n_in, float *out, int n_out, int lines,
                          size_t in_line, size_t in_step, size_t out_line, size_t out_step)
{
    double scale = (double)n_in / n_out, fs = scale > 1.0 ? scale : 1.0, support = fs;
    for (int o = 0; o < n_out; o++) {
        double centre = (o + 0.5) * scale;
        int lo = (int)floor(centre - support), hi = (int)ceil(centre + support);
        if (lo < 0)
            lo = 0;
        if (hi > n_in)
            hi = n_in;
        float w[128];
        int taps = 0;
        double total = 0;
        for (int i = lo; i < hi && taps < 128; i++, taps++) {
            double d = fabs((i + 0.5 - centre) / fs);
            double v = d < 1.0 ? 1.0 - d : 0.0;
            w[taps] = (float)v;
            total += v;
        }
        for (int t = 0; t < taps; t++)
            w[t] = total > 0 ? (float)(w[t] / total) : 0.0f;
        for (int l = 0; l < lines; l++) {
            const float *src = in + (size_t)l * in_line + (size_t)lo * in_step;
            float acc = 0;
            for (int t = 0; t < taps; t++)
                acc += w[t] * src[(size_t)t * in_step];
            out[(size_t)l * out_line + (size_t)o * out_step] = acc;
        }
    }
}

/* Plane s x s -> m x m -> s x m... -> s x s in place through @p mid (s * s floats) and @p tmp
 * (s * s floats). */
static void roundtrip(float *img, int s, int m, float *mid, float *tmp)
{
    size_t S = (size_t)s, M = (size_t)m;
    /* down: rows (s x s -> s rows of m) into mid, then columns (-> m x m) into tmp */
    resample_axis(img, s, mid, m, s, S, 1, M, 1);
    resample_axis(mid, s, tmp, m, m, 1, M, 1, M);
    /* up: rows (m x m -> m rows of s) into mid, then columns (-> s x s) into img */
    resample_axis(tmp, m, mid, s, m, M, 1, S, 1);
    resample_axis(mid, m, img, s, s, 1, S, 1, S);
}

/* Separable Gaussian blur of one plane, edges clamped; @p tmp holds s * s floats. */
static void blur(float *img, int s, float sigma, float *tmp)
{
    int r = (int)ceilf(3.0f * sigma);
    if (r < 1)
        return;
    if (r > 63)
        r = 63;
    float k[127];
    double total = 0;
    for (int i = -r; i <= r; i++) {
        k[i + r] = (float)exp(-0.5 * (double)i * i / ((double)sigma * sigma));
        total += k[i + r];
    }
    for (int i = 0; i < 2 * r + 1; i++)
        k[i] = (float)(k[i] / total);
    size_t S = (size_t)s;
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) {
                int xx = x + i < 0 ? 0 : x + i >= s ? s - 1 : x + i;
                acc += k[i + r] * img[(size_t)y * S + (size_t)xx];
            }
            tmp[(size_t)y * S + (size_t)x] = acc;
        }
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) {
                int yy = y + i < 0 ? 0 : y + i >= s ? s - 1 : y + i;
                acc += k[i + r] * tmp[(size_t)yy * S + (size_t)x];
            }
            img[(size_t)y * S + (size_t)x] = acc;
        }
}

void cnnl__augment_apply(float *img, int ch, int s, const cnnl__augment_params *p, cnnl_rng *rng,
                         float *work)
{
    size_t S = (size_t)s, plane = S * S, n = plane * (size_t)ch;
    float *other = work, *mid = work + 3 * plane;
    if (p->flip)
        for (int k = 0; k < ch; k++)
            for (size_t y = 0; y < S; y++) {
                float *row = img + (size_t)k * plane + y * S;
                for (size_t x = 0; x < S / 2; x++) {
                    float t = row[x];
                    row[x] = row[S - 1 - x];
                    row[S - 1 - x] = t;
                }
            }
    if (p->angle != 0.0f || p->scale != 1.0f || p->tx != 0.0f || p->ty != 0.0f) {
        affine(img, other, s, ch, p);
        memcpy(img, other, n * sizeof *img);
    }
    if (p->roundtrip < s)
        for (int k = 0; k < ch; k++)
            roundtrip(img + (size_t)k * plane, s, p->roundtrip, mid, other);
    if (p->blur_sigma > 0.0f)
        for (int k = 0; k < ch; k++)
            blur(img + (size_t)k * plane, s, p->blur_sigma, other);
    if (p->gamma != 1.0f)
        for (size_t i = 0; i < n; i++)
            img[i] = img[i] > 0.0f ? powf(img[i], p->gamma) : 0.0f;
    if (p->contrast != 1.0f) {
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += img[i];
        float mean = (float)(sum / (double)n);
        for (size_t i = 0; i < n; i++)
            img[i] = mean + p->contrast * (img[i] - mean);
    }
    if (p->brightness != 0.0f)
        for (size_t i = 0; i < n; i++)
            img[i] += p->brightness;
    if (p->noise_std > 0.0f)
        for (size_t i = 0; i < n; i++)
            img[i] += p->noise_std * cnnl__rng_normal(rng);
    for (size_t i = 0; i < n; i++)
        img[i] = img[i] < 0.0f ? 0.0f : img[i] > 1.0f ? 1.0f : img[i];
}

void cnnl__augment_convert(const cnnl_dataset *ds, size_t index, const uint8_t *src, int stored,
                           const cnnl_augment_opts *a, uint64_t seed, int epoch, float *work, float *out)
{
    int s = ds->size, sc = stored;
    size_t plane = (size_t)s * (size_t)s;
    /* the image in [0, 1], planar, in its stored channels: @p out has room for them */
    float *buf = out;
    if (sc > ds->channels)
        sc = ds->channels;
    for (int k = 0; k < sc; k++)
        for (size_t i = 0; i < plane; i++)
            buf[(size_t)k * plane + i] = (float)src[(size_t)stored * i + (size_t)k] * (1.0f / 255.0f);
    cnnl_rng rng;
    cnnl__rng_seed(&rng, seed, (uint64_t)CNNL_RNG_AUGMENT | ((uint64_t)(epoch + 1) & 0xFFFFFF) << 8 |
                                   (uint64_t)index << 32);
    cnnl__augment_params p;
    cnnl__augment_draw(a, s, &rng, &p);
    cnnl__augment_apply(buf, sc, s, &p, &rng, work);
    /* normalize: every kind is affine in v / 255; replicate a single stored channel */
    for (int c = ds->channels - 1; c >= 0; c--) {
        float lo = ds->lut[c][0], span = ds->lut[c][255] - ds->lut[c][0];
        const float *from = buf + (size_t)(sc == 1 ? 0 : c) * plane;
        float *to = out + (size_t)c * plane;
        for (size_t i = 0; i < plane; i++)
            to[i] = lo + span * from[i];
    }
}
