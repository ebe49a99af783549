/* Streaming of datasets larger than their memory budget (stream.c). Not installed. */
#ifndef CNNL_DATA_STREAM_H
#define CNNL_DATA_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "data/data_impl.h"

typedef struct cnnl__stream cnnl__stream;

/* Decoding threads and a ring of 2-4 batch slots of up to @p max_images images each. */
cnnl_status cnnl__stream_create(cnnl__stream **out, const cnnl_dataset *ds, size_t max_images);
void cnnl__stream_free(cnnl__stream *s);
/* Stop the workers (before the arrays of the order change). */
void cnnl__stream_stop(cnnl__stream *s);
/* What to produce: batch b is images seq[start[b] .. start[b+1]); the arrays are borrowed and
 * must not change until the next cnnl__stream_stop(). */
void cnnl__stream_set_order(cnnl__stream *s, const size_t *seq, const size_t *start, size_t nb);
/* Wait for batch @p b (prefetching the next ones); *pixels holds image k at k * image_bytes,
 * *stored its channels. Valid until cnnl__stream_release(s, b). */
cnnl_status cnnl__stream_batch(cnnl__stream *s, size_t b, const uint8_t **pixels, const uint8_t **stored);
void cnnl__stream_release(cnnl__stream *s, size_t b);
size_t cnnl__stream_image_bytes(const cnnl__stream *s);
int cnnl__stream_depth(const cnnl__stream *s);

#endif
