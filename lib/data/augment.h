/* Data augmentation inside the loader (augment.c). Not installed. */
#ifndef CNNL_DATA_AUGMENT_H
#define CNNL_DATA_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnlite/data.h"
#include "core/rng_impl.h"

/* The transforms drawn for one image. */
typedef struct cnnl__augment_params {
    bool flip;
    float angle;       /* degrees */
    float scale;       /* zoom factor */
    float tx, ty;      /* shift in pixels */
    int roundtrip;     /* side of the round trip; the image size = none */
    float blur_sigma;  /* 0 = none */
    float gamma, contrast, brightness, noise_std;
} cnnl__augment_params;

/* Check the ranges of @p a; errors start with @p who and name the field. */
cnnl_status cnnl__augment_check(const char *who, const cnnl_augment_opts *a);

/* Whether any transform is on. */
bool cnnl__augment_enabled(const cnnl_augment_opts *a);

/* Floats of scratch one thread needs for images of @p size. */
size_t cnnl__augment_work_floats(int size);

/* Draw one image's transforms (a fixed number of draws from @p rng). */
void cnnl__augment_draw(const cnnl_augment_opts *a, int size, cnnl_rng *rng, cnnl__augment_params *p);

/* Apply @p p to @p ch planes of size x size floats in [0, 1], in place; noise draws from
 * @p rng; @p work holds cnnl__augment_work_floats(size) floats. The result is clipped to [0, 1]. */
void cnnl__augment_apply(float *img, int ch, int size, const cnnl__augment_params *p, cnnl_rng *rng,
                         float *work);

/* Image @p index of @p ds (its pixels @p src with @p stored channels, from the cache or a
 * streamed batch), transformed with its own generator (seed, epoch, index) and
 * normalized into C x H x W floats at @p out, as cnnl__dataset_convert() does without
 * augmentation. */
void cnnl__augment_convert(const cnnl_dataset *ds, size_t index, const uint8_t *src, int stored,
                           const cnnl_augment_opts *a, uint64_t seed, int epoch, float *work, float *out);

#endif
