/*
 * Synthetic MRI-like axial slices in four classes (glioma, meningioma, notumor, pituitary).
 *
 * Every image is drawn in normalised coordinates (x right, y down, both in [-1, 1]) so that
 * it looks the same at any size: a head ellipse with a bright scalp ring and a dark bone
 * line, brain tissue with grey/white contrast, folded cortex and smooth texture, two lateral
 * ventricles, then the class's lesion, confounders, a bias field, gain, gamma and noise.
 * Parameters come from a generator seeded by (seed, image index), so images are independent
 * of each other and of the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "core/internal.h"
#include "core/rng_impl.h"
#include "data/data_impl.h"

static const char *const class_names[4] = {"glioma", "meningioma", "notumor", "pituitary"};
enum { GLIOMA = 0, MENINGIOMA = 1, NOTUMOR = 2, PITUITARY = 3 };

enum { LATTICE_MAX = 32, MAX_SPOTS = 4, HARMONICS = 4 };

/* Smooth random field: values on an (n+1)^2 lattice over [-1.2, 1.2]^2, bicubic-smoothed. */
typedef struct lattice {
    int n;
    float v[(LATTICE_MAX + 1) * (LATTICE_MAX + 1)];
} lattice;

typedef struct spot {
    float x, y, r, contrast;
} spot;

typedef struct mri {
    int cls;
    float cx, cy, ct, st, a, b;         /* head centre, rotation, half-axes */
    float gain, gamma, bias_x, bias_y, noise;
    float scalp, bone, grey, white;
    float sulci_freq, sulci_depth;
    float vx, vy, vrx, vry, vcos, vsin; /* ventricles: centre offsets, radii, tilt */
    bool lesion;
    float lx, ly, lr, lcontrast, ltex;  /* lesion centre, radius, contrast */
    float harm_amp[HARMONICS], harm_phase[HARMONICS];
    float necrosis, edema, aspect;
    int nspots;
    spot spots[MAX_SPOTS];
    lattice coarse, fine, gyri, lesion_tex;
} mri;

static float uniform(cnnl_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * cnnl__rng_uniform(r);
}

static float smoothstep(float e0, float e1, float x)
{
    float t = (x - e0) / (e1 - e0);
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    return t * t * (3.0f - 2.0f * t);
}

static void lattice_init(lattice *l, int n, cnnl_rng *r)
{
    l->n = n;
    for (int i = 0; i < (n + 1) * (n + 1); i++)
        l->v[i] = 2.0f * cnnl__rng_uniform(r) - 1.0f;
}

static float lattice_at(const lattice *l, float x, float y)
{
    float u = (x + 1.2f) / 2.4f * (float)l->n, v = (y + 1.2f) / 2.4f * (float)l->n;
    u = u < 0.0f ? 0.0f : u > (float)l->n - 0.001f ? (float)l->n - 0.001f : u;
    v = v < 0.0f ? 0.0f : v > (float)l->n - 0.001f ? (float)l->n - 0.001f : v;
    int i = (int)u, j = (int)v;
    float fu = u - (float)i, fv = v - (float)j;
    fu = fu * fu * (3.0f - 2.0f * fu);
    fv = fv * fv * (3.0f - 2.0f * fv);
    const float *row0 = l->v + j * (l->n + 1), *row1 = row0 + (l->n + 1);
    float top = row0[i] + fu * (row0[i + 1] - row0[i]);
    float bot = row1[i] + fu * (row1[i + 1] - row1[i]);
    return top + fv * (bot - top);
}

/* A point inside the brain at normalised elliptic radius in [rmin, rmax]. */
static void brain_point(cnnl_rng *r, float rmin, float rmax, const mri *m, float *x, float *y)
{
    float ang = uniform(r, 0.0f, 6.2831853f), rad = sqrtf(uniform(r, rmin * rmin, rmax * rmax));
    *x = rad * m->a * cosf(ang);
    *y = rad * m->b * sinf(ang);
}

static void draw_anatomy(mri *m, cnnl_rng *r, float d)
{
    m->cx = uniform(r, -0.06f, 0.06f);
    m->cy = uniform(r, -0.05f, 0.05f);
    float th = uniform(r, -0.3f, 0.3f);
    m->ct = cosf(th);
    m->st = sinf(th);
    m->a = uniform(r, 0.68f, 0.82f);
    m->b = uniform(r, 0.80f, 0.92f);
    m->gain = uniform(r, 0.8f, 1.15f);
    m->gamma = uniform(r, 0.8f, 1.25f);
    m->bias_x = uniform(r, -0.12f, 0.12f);
    m->bias_y = uniform(r, -0.12f, 0.12f);
    m->noise = uniform(r, 0.01f, 0.03f) + 0.04f * d * cnnl__rng_uniform(r);
    m->scalp = uniform(r, 0.55f, 0.8f);
    m->bone = uniform(r, 0.05f, 0.15f);
    m->grey = uniform(r, 0.32f, 0.42f);
    m->white = m->grey + uniform(r, 0.04f, 0.14f);
    m->sulci_freq = uniform(r, 5.0f, 8.0f);
    m->sulci_depth = uniform(r, 0.12f, 0.25f);
    m->vx = uniform(r, 0.07f, 0.12f);
    m->vy = uniform(r, -0.15f, 0.02f);
    m->vrx = uniform(r, 0.03f, 0.08f);
    m->vry = uniform(r, 0.12f, 0.26f);
    float tilt = uniform(r, 0.15f, 0.45f);
    m->vcos = cosf(tilt);
    m->vsin = sinf(tilt);
    lattice_init(&m->coarse, 6, r);
    lattice_init(&m->fine, 24, r);
    lattice_init(&m->gyri, LATTICE_MAX, r);
    lattice_init(&m->lesion_tex, 20, r);
}

static void draw_lesion(mri *m, cnnl_rng *r, float d)
{
    float scale = 1.0f - 0.3f * d * cnnl__rng_uniform(r);
    float contrast = uniform(r, 0.3f, 0.55f) * (1.0f - 0.4f * d);
    /* Faint lesions: the hard cases. */
    if (cnnl__rng_uniform(r) < 0.25f * d)
        contrast *= uniform(r, 0.3f, 0.6f);
    m->lesion = true;
    m->lcontrast = contrast;
    m->aspect = uniform(r, 0.8f, 1.25f);
    for (int k = 0; k < HARMONICS; k++) {
        m->harm_amp[k] = 0.0f;
        m->harm_phase[k] = uniform(r, 0.0f, 6.2831853f);
    }
    switch (m->cls) {
    case GLIOMA:
        brain_point(r, 0.0f, 0.55f, m, &m->lx, &m->ly);
        m->lr = uniform(r, 0.14f, 0.3f) * scale;
        for (int k = 0; k < HARMONICS; k++)
            m->harm_amp[k] = uniform(r, 0.05f, 0.25f) / (float)(k + 1);
        m->necrosis = cnnl__rng_uniform(r) < 0.7f ? uniform(r, 0.35f, 0.75f) : 0.0f;
        m->edema = uniform(r, 0.06f, 0.15f);
        m->ltex = uniform(r, 0.25f, 0.5f);
        break;
    case MENINGIOMA: {
        float ang = uniform(r, 0.0f, 6.2831853f), rad = uniform(r, 0.8f, 0.9f);
        m->lx = rad * m->a * cosf(ang);
        m->ly = rad * m->b * sinf(ang);
        m->lr = uniform(r, 0.1f, 0.22f) * scale;
        m->aspect = uniform(r, 0.9f, 1.1f);
        m->ltex = uniform(r, 0.0f, 0.05f);
        break;
    }
    case PITUITARY:
        m->lx = uniform(r, -0.04f, 0.04f);
        m->ly = uniform(r, 0.46f, 0.6f) * m->b;
        m->lr = uniform(r, 0.05f, 0.1f) * scale;
        m->ltex = uniform(r, 0.0f, 0.08f);
        break;
    default:
        m->lesion = false;
        break;
    }
}

/* Bright spots that are not masses (vessels, fat, flow artefacts); in tumour-free images
 * they are sometimes placed where a pituitary tumour or meningioma would be. */
static void draw_spots(mri *m, cnnl_rng *r, float d)
{
    float p = m->cls == NOTUMOR ? 0.2f + 0.6f * d : 0.1f + 0.3f * d;
    m->nspots = 0;
    while (m->nspots < MAX_SPOTS && cnnl__rng_uniform(r) < p) {
        spot *s = &m->spots[m->nspots++];
        float where = cnnl__rng_uniform(r);
        if (m->cls == NOTUMOR && where < 0.35f) { /* near the sella */
            s->x = uniform(r, -0.06f, 0.06f);
            s->y = uniform(r, 0.42f, 0.62f) * m->b;
            s->r = uniform(r, 0.012f, 0.03f);
        } else if (m->cls == NOTUMOR && where < 0.6f) { /* at the brain's edge */
            float ang = uniform(r, 0.0f, 6.2831853f), rad = uniform(r, 0.8f, 0.9f);
            s->x = rad * m->a * cosf(ang);
            s->y = rad * m->b * sinf(ang);
            s->r = uniform(r, 0.015f, 0.035f);
        } else {
            brain_point(r, 0.1f, 0.85f, m, &s->x, &s->y);
            s->r = uniform(r, 0.01f, 0.03f);
        }
        s->contrast = uniform(r, 0.15f, 0.4f);
        p *= 0.6f;
    }
}

/* Distance of (x, y) from the lesion centre relative to its (angle-dependent) radius. */
static float lesion_radius(const mri *m, float x, float y)
{
    float dx = x - m->lx, dy = (y - m->ly) * m->aspect;
    float ang = atan2f(dy, dx), boundary = 1.0f;
    for (int k = 0; k < HARMONICS; k++)
        boundary += m->harm_amp[k] * sinf((float)(k + 2) * ang + m->harm_phase[k]);
    return sqrtf(dx * dx + dy * dy) / (m->lr * boundary);
}

static float ventricle(const mri *m, float x, float y, float side, float aa)
{
    float dx = x - side * m->vx, dy = y - m->vy;
    float c = m->vcos, s = side * m->vsin;
    float u = (c * dx + s * dy) / m->vrx, v = (-s * dx + c * dy) / m->vry;
    float rr = sqrtf(u * u + v * v);
    return 1.0f - smoothstep(1.0f - aa / m->vrx, 1.0f + aa / m->vrx, rr);
}

static float lesion_value(const mri *m, float x, float y, float base, float aa)
{
    if (!m->lesion)
        return base;
    /* the boundary never exceeds 1.6 radii, the glioma's oedema reaches 1.8 of that */
    float dx = x - m->lx, dy = (y - m->ly) * m->aspect, reach = 3.0f * m->lr;
    if (dx * dx + dy * dy > reach * reach)
        return base;
    float q = lesion_radius(m, x, y);
    float edge_w = aa / m->lr;
    float tex = lattice_at(&m->lesion_tex, (x - m->lx) / m->lr * 0.3f, (y - m->ly) / m->lr * 0.3f);
    if (m->cls == GLIOMA) {
        base -= m->edema * (1.0f - smoothstep(1.0f, 1.8f, q));
        float inside = 1.0f - smoothstep(1.0f - 3.0f * edge_w - 0.1f, 1.0f + edge_w, q);
        float rim = 0.65f + 0.35f * smoothstep(0.5f, 0.95f, q);
        float core = m->necrosis > 0.0f ? 1.0f - smoothstep(0.0f, m->necrosis, q) : 0.0f;
        float v = m->white + m->lcontrast * rim * (1.0f + m->ltex * 2.0f * tex) - 0.8f * m->lcontrast * core;
        return base + inside * (v - base); /* the mass replaces the tissue (and ventricle) */
    }
    float inside = 1.0f - smoothstep(1.0f - edge_w, 1.0f + edge_w, q);
    return base + inside * (m->white + m->lcontrast * (1.0f + m->ltex * tex) - base);
}

/* Intensity at head-frame point (x, y), before global gain, gamma and noise. */
static float head_value(const mri *m, float x, float y, float aa)
{
    float rho = sqrtf((x / m->a) * (x / m->a) + (y / m->b) * (y / m->b));
    float wig = 0.012f * lattice_at(&m->coarse, 2.0f * x, 2.0f * y);
    rho += wig;
    if (rho > 1.12f)
        return 0.0f;
    float coarse = lattice_at(&m->coarse, x, y), fine = lattice_at(&m->fine, x, y);
    /* white matter inside, cortical grey ribbon outside, folded by sulci */
    float wm = 1.0f - smoothstep(0.55f, 0.78f, rho + 0.08f * coarse);
    float v = m->grey + (m->white - m->grey) * wm + 0.03f * coarse + 0.035f * fine;
    /* sulci: the zero lines of a fine random field (ridged noise) make winding dark clefts
     * in the cortical ribbon, deeper in some places than others */
    float g = lattice_at(&m->gyri, x + 0.05f * coarse, y - 0.05f * coarse);
    float depth = 0.62f + 0.12f * fine + 0.08f * coarse;
    float ridge = 1.0f - fminf(fabsf(g) * m->sulci_freq, 1.0f);
    float sulcus = ridge * ridge * ridge * smoothstep(depth, depth + 0.15f, rho);
    v -= m->sulci_depth * sulcus;
    /* ventricles and the midline fissure */
    float vent = fmaxf(ventricle(m, x, y, 1.0f, aa), ventricle(m, x, y, -1.0f, aa));
    v += (0.1f - v) * vent;
    if (fabsf(x) < 0.05f) {
        float fissure = expf(-(x * x) / (0.0001f + aa * aa)) * smoothstep(0.35f, 0.55f, fabsf(y - m->vy));
        v -= 0.15f * fissure * (y < 0.0f ? 1.0f : 0.5f);
    }
    v = lesion_value(m, x, y, v, aa);
    for (int k = 0; k < m->nspots; k++) {
        const spot *s = &m->spots[k];
        float dd = sqrtf((x - s->x) * (x - s->x) + (y - s->y) * (y - s->y)) / s->r;
        v += s->contrast * (1.0f - smoothstep(0.6f, 1.0f + aa / s->r, dd));
    }
    /* brain edge (CSF), dark bone line, bright scalp, dark background */
    float e = aa / m->a;
    float brain = 1.0f - smoothstep(0.9f - e, 0.9f + e, rho);
    float bone = smoothstep(0.93f - e, 0.93f + e, rho) * (1.0f - smoothstep(0.97f - e, 0.97f + e, rho));
    float scalp = smoothstep(0.97f - e, 0.97f + e, rho) * (1.0f - smoothstep(1.05f - e, 1.08f + e, rho));
    float csf = (1.0f - brain) * (1.0f - smoothstep(0.93f - e, 0.93f + e, rho));
    return brain * v + csf * 0.15f + bone * m->bone + scalp * m->scalp * (1.0f + 0.15f * fine);
}

/* Approximately normal sample from four uniforms (cheap, per pixel). */
static float quick_normal(cnnl_rng *r)
{
    uint64_t u = cnnl__rng_u64(r);
    float s = (float)(u & 0xFFFF) + (float)((u >> 16) & 0xFFFF) + (float)((u >> 32) & 0xFFFF) +
              (float)(u >> 48);
    return (s / 65536.0f - 2.0f) * 1.7320508f;
}

enum { GAMMA_STEPS = 1024 };

/* v^gamma for v in [0, 2] by linear interpolation in a table (powf per pixel is slow). */
static float gamma_apply(const float *lut, float v)
{
    float t = fminf(fmaxf(v, 0.0f), 1.999f) * (GAMMA_STEPS / 2);
    int i = (int)t;
    return lut[i] + (t - (float)i) * (lut[i + 1] - lut[i]);
}

static void render(const mri *m, int size, uint8_t *out, cnnl_rng *r)
{
    float aa = 1.5f / (float)size;
    float gamma_lut[GAMMA_STEPS + 1];
    for (int i = 0; i <= GAMMA_STEPS; i++)
        gamma_lut[i] = powf((float)i * 2.0f / GAMMA_STEPS, m->gamma);
    for (int py = 0; py < size; py++)
        for (int px = 0; px < size; px++) {
            float x = ((float)px + 0.5f) / (float)size * 2.0f - 1.0f - m->cx;
            float y = ((float)py + 0.5f) / (float)size * 2.0f - 1.0f - m->cy;
            float hx = m->ct * x + m->st * y, hy = -m->st * x + m->ct * y;
            float v = head_value(m, hx, hy, aa);
            v *= m->gain * (1.0f + m->bias_x * x + m->bias_y * y);
            v = gamma_apply(gamma_lut, v);
            v = fabsf(v + m->noise * quick_normal(r)); /* magnitude images: Rician-like floor */
            int q = (int)lrintf(v * 255.0f);
            out[(size_t)py * (size_t)size + (size_t)px] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
        }
}

static void synthesize(int cls, uint64_t seed, size_t index, float d, int size, uint8_t *out)
{
    cnnl_rng r;
    /* One generator per image: (seed, index) alone decide it. */
    cnnl__rng_seed(&r, seed, CNNL_RNG_SYNTHETIC | ((uint64_t)index + 1) << 8);
    mri m; /* about 13 KiB */
    memset(&m, 0, sizeof m);
    m.cls = cls;
    draw_anatomy(&m, &r, d);
    draw_lesion(&m, &r, d);
    draw_spots(&m, &r, d);
    render(&m, size, out, &r);
}

CNNL_API cnnl_synthetic_opts cnnl_synthetic_opts_default(void)
{
    cnnl_synthetic_opts o;
    memset(&o, 0, sizeof o);
    o.count = 1311;
    o.seed = 0;
    o.difficulty = 0.5f;
    return o;
}

static cnnl_status name_items(cnnl_dataset *ds)
{
    for (int c = 0; c < 4; c++)
        if (!(ds->class_names[c] = strdup(class_names[c])))
            return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_synthetic: out of memory");
    size_t per = ds->count / 4, extra = ds->count % 4, i = 0;
    for (int c = 0; c < 4; c++) {
        size_t n = per + ((size_t)c < extra);
        for (size_t k = 0; k < n; k++, i++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s/synth_%06zu.png", class_names[c], i);
            ds->labels[i] = c;
            ds->stored[i] = 1;
            if (!(ds->names[i] = strdup(buf)))
                return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_synthetic: out of memory");
        }
    }
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_dataset_synthetic(cnnl_dataset **out, const cnnl_synthetic_opts *syn,
                                            const cnnl_dataset_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_synthetic: out is NULL");
    cnnl_synthetic_opts s = syn ? *syn : cnnl_synthetic_opts_default();
    if (s.count == 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_synthetic: count is 0");
    if (!(s.difficulty >= 0.0f && s.difficulty <= 1.0f))
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_synthetic: difficulty is %g; must be in [0, 1]",
                           (double)s.difficulty);
    cnnl_dataset_opts o;
    cnnl_status st = cnnl__data_check_opts("cnnl_dataset_synthetic", opts, &o);
    if (st != CNNL_OK)
        return st;
    size_t plane;
    if (!cnnl__mul_size((size_t)o.size, (size_t)o.size, &plane) || !cnnl__mul_size(plane, s.count, &(size_t){0}))
        return cnnl__error(CNNL_EINVAL, "cnnl_dataset_synthetic: %zu images of %dx%d overflow memory", s.count,
                           o.size, o.size);
    cnnl_dataset *ds = NULL;
    if ((st = cnnl__dataset_alloc(&ds, &o, s.count, 4)) != CNNL_OK)
        return st;
    if ((st = name_items(ds)) != CNNL_OK) {
        cnnl_dataset_free(ds);
        return st;
    }
    for (size_t i = 0; i < s.count; i++)
        if (!(ds->pixels[i] = malloc(plane))) {
            cnnl_dataset_free(ds);
            return cnnl__error(CNNL_ENOMEM, "cnnl_dataset_synthetic: out of memory for %zu images of %dx%d", s.count,
                               o.size, o.size);
        }
    long n = (long)s.count;
#pragma omp parallel for schedule(static) num_threads(cnnl__num_threads())
    for (long i = 0; i < n; i++)
        synthesize(ds->labels[i], s.seed, (size_t)i, s.difficulty, o.size, ds->pixels[i]);
    if ((st = cnnl__dataset_finish(ds)) != CNNL_OK) {
        cnnl_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CNNL_OK;
}

/* The drawn parameters of image @p index (allocated; the caller frees them). */
static cnnl_status draw_image(const char *who, const cnnl_synthetic_opts *syn, size_t index, mri **out)
{
    cnnl_synthetic_opts s = syn ? *syn : cnnl_synthetic_opts_default();
    if (!(s.difficulty >= 0.0f && s.difficulty <= 1.0f))
        return cnnl__error(CNNL_EINVAL, "%s: difficulty is %g; must be in [0, 1]", who, (double)s.difficulty);
    if (index >= s.count)
        return cnnl__error(CNNL_ERANGE, "%s: index %zu; the set has %zu images", who, index, s.count);
    /* the class of the index, as name_items() deals them */
    size_t per = s.count / 4, extra = s.count % 4, first = 0;
    int cls = 0;
    for (; cls < 3; cls++) {
        size_t n = per + ((size_t)cls < extra);
        if (index < first + n)
            break;
        first += n;
    }
    cnnl_rng r;
    cnnl__rng_seed(&r, s.seed, CNNL_RNG_SYNTHETIC | ((uint64_t)index + 1) << 8);
    mri *m = calloc(1, sizeof *m);
    if (m == NULL)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    m->cls = cls;
    draw_anatomy(m, &r, s.difficulty);
    draw_lesion(m, &r, s.difficulty);
    *out = m;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_synthetic_tumour(const cnnl_synthetic_opts *syn, size_t index, int size,
                                           cnnl_synthetic_region *out)
{
    static const char who[] = "cnnl_synthetic_tumour";
    if (out == NULL || size < 1)
        return cnnl__error(CNNL_EINVAL, "%s: %s", who, out == NULL ? "out is NULL" : "size must be >= 1");
    memset(out, 0, sizeof *out);
    mri *m = NULL;
    cnnl_status st = draw_image(who, syn, index, &m);
    if (st != CNNL_OK)
        return st;
    if (m->lesion) {
        /* head frame -> image frame -> pixels (render() maps pixel p to (p + 0.5) / size * 2 - 1) */
        float x = m->ct * m->lx - m->st * m->ly, y = m->st * m->lx + m->ct * m->ly;
        float boundary = 1.0f;
        for (int k = 0; k < HARMONICS; k++)
            boundary += m->harm_amp[k];
        float reach = m->lr * boundary * (m->aspect < 1.0f ? 1.0f / m->aspect : 1.0f);
        out->present = true;
        out->x = (x + m->cx + 1.0f) * 0.5f * (float)size - 0.5f;
        out->y = (y + m->cy + 1.0f) * 0.5f * (float)size - 0.5f;
        out->radius = reach * 0.5f * (float)size;
    }
    free(m);
    return CNNL_OK;
}

cnnl_status cnnl__synthetic_in_tumour(const cnnl_synthetic_opts *syn, size_t index, int size, float px, float py,
                                      bool *inside)
{
    static const char who[] = "cnnl__synthetic_in_tumour";
    if (inside == NULL || size < 1)
        return cnnl__error(CNNL_EINVAL, "%s: %s", who, inside == NULL ? "inside is NULL" : "size must be >= 1");
    *inside = false;
    mri *m = NULL;
    cnnl_status st = draw_image(who, syn, index, &m);
    if (st != CNNL_OK)
        return st;
    if (m->lesion) {
        /* as render(): pixel -> image frame -> head frame */
        float x = (px + 0.5f) / (float)size * 2.0f - 1.0f - m->cx;
        float y = (py + 0.5f) / (float)size * 2.0f - 1.0f - m->cy;
        float hx = m->ct * x + m->st * y, hy = -m->st * x + m->ct * y;
        *inside = lesion_radius(m, hx, hy) <= 1.0f;
    }
    free(m);
    return CNNL_OK;
}
