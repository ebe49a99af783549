/* Dataset layout shared by the files of lib/data/. Not installed. */
#ifndef CNNL_DATA_IMPL_H
#define CNNL_DATA_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "cnnlite/data.h"

struct cnnl_dataset {
    int size;             /* height = width of every stored image */
    int channels;         /* channels of a batch: 1 or 3 */
    cnnl_normalization norm;
    float lut[3][256];    /* uint8 -> float per channel, from norm */
    char *root;           /* NULL for synthetic data */
    int num_classes;
    char **class_names;
    size_t *class_counts;
    size_t count;
    char **names;         /* "<class>/<file>" */
    int32_t *labels;
    uint8_t **pixels;     /* size*size*stored[i] bytes each, HWC */
    uint8_t *stored;      /* stored channels per image: 1 or 3 */
    size_t skipped;
    int64_t peak_pixels;  /* most source pixels decoded at once while loading (tests) */
    char *summary;
    bool streamed;        /* pixels[] stay NULL; loaders decode on the fly (stream.c) */
    int max_dim;          /* for decoding again when streamed */
    int64_t max_pixels;
    size_t budget;        /* memory budget in bytes */
    size_t decoded_bytes; /* count x size x size x channels */
};


/* A sample wider than 8 bits (or signed, or floating point) as 8 bits: @p lo becomes 0 and
 * lo + @p range 255, rounded to nearest; 0 when the range is empty. The formats with such
 * samples (image.c: 16-bit PNG, PSD, PNM; dicom.c; tiff.c) all scale through it, with lo the
 * smallest sample when negative, else 0, and range the largest sample minus lo. */
static inline uint8_t cnnl__scale8(double v, double lo, double range)
{
    if (!(range > 0.0))
        return 0;
    double q = (v - lo) * 255.0 / range + 0.5;
    return (uint8_t)(q < 0.0 ? 0.0 : q >= 255.0 ? 255.0 : q);
}

/* Validate options (NULL = defaults) and copy them into @p out; @p who names the caller. */
cnnl_status cnnl__data_check_opts(const char *who, const cnnl_dataset_opts *opts,
                                  cnnl_dataset_opts *out);

/* Convert size*size stored pixels (@p stored channels, HWC) into @p channels planes of floats
 * (CHW) through @p lut, replicating a single stored channel. */
void cnnl__pixels_convert(const uint8_t *src, int stored, int channels, size_t plane,
                          const float lut[3][256], float *out);

/* Allocate a dataset shell with @p count items and @p classes classes (arrays zeroed) and the
 * normalisation table from @p o. */
cnnl_status cnnl__dataset_alloc(cnnl_dataset **out, const cnnl_dataset_opts *o, size_t count,
                                int classes);

/* Fill class counts and the summary string. */
cnnl_status cnnl__dataset_finish(cnnl_dataset *ds);

/* Convert image @p index into C*H*W floats at @p out (replicating gray channels). */
void cnnl__dataset_convert(const cnnl_dataset *ds, size_t index, float *out);

/* Result of preparing one image file. */
typedef struct cnnl__image_result {
    uint8_t *pixels;   /* size*size*channels bytes, malloc'ed; NULL on failure */
    int channels;      /* 1 or 3 */
    cnnl_status status;/* CNNL_OK or the failure */
    char *message;     /* malloc'ed description of the failure (without the file name) */
} cnnl__image_result;

/* Pixels being decoded at once by the threads sharing this budget: a thread waits until its
 * image fits under @c limit beside the others (alone, any image fits). @c peak records the
 * most seen, for tests. */
typedef struct cnnl__pixel_budget {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int64_t limit, in_flight, peak;
} cnnl__pixel_budget;

void cnnl__pixel_budget_init(cnnl__pixel_budget *b, int64_t limit);
void cnnl__pixel_budget_destroy(cnnl__pixel_budget *b);

/* Read, check, decode and resize one file to size x size. @p want_channels: 1 (luma) or 3
 * (colour; gray sources and colour sources whose channels are all equal come back as 1).
 * Files declaring more than @p max_dim per side or @p max_pixels in all, or more than they
 * can hold, are refused before decoding. @p budget (may be NULL) bounds the pixels decoded
 * at once over all threads. */
void cnnl__image_prepare(const char *path, int size, int want_channels, int max_dim, int64_t max_pixels,
                         cnnl__pixel_budget *budget, cnnl__image_result *res);

/* Decode and resize image @p index of a streamed dataset again (cnnl__image_prepare). */
void cnnl__dataset_decode(const cnnl_dataset *ds, size_t index, cnnl__image_result *res);

/* Resize 8-bit interleaved pixels with the triangle filter (PIL's antialiased bilinear). */
int cnnl__image_resize(const uint8_t *in, int w, int h, int channels, uint8_t *out, int ow, int oh);

/* Fault injection for tests: when set, opening a file whose path ends with this string fails
 * with EACCES, as an unreadable file would for a non-root user. */
extern const char *cnnl__data_fail_open_suffix;

/* For tests of explanations: whether pixel (@p px, @p py) (column, row; 0 = centre of the first
 * pixel) of image @p index at @p size x @p size lies inside the mass the generator planted
 * there (false for notumor images); the covering circle is cnnl_synthetic_tumour(). */
cnnl_status cnnl__synthetic_in_tumour(const cnnl_synthetic_opts *syn, size_t index, int size, float px, float py,
                                      bool *inside);

#endif
