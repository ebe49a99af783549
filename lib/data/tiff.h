/* TIFF images through libtiff (lib/data/tiff.c). Not installed. */
#ifndef CNNL_TIFF_H
#define CNNL_TIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when @p d starts like a TIFF or BigTIFF file (either byte order). */
bool cnnl__tiff_detect(const uint8_t *d, size_t n);

/* Size and channels (1: gray, 3: colour) of the first image of @p d; refuses files of more
 * than one page and formats the decoder does not take. On failure writes the reason into
 * @p why, sets @p *oom when memory ran out, and returns false. */
bool cnnl__tiff_header(const uint8_t *d, size_t n, int *w, int *h, int *comp, bool *oom, char *why, size_t whylen);

/* Decode the first image into a malloc'd buffer of w x h x comp bytes (comp as
 * cnnl__tiff_header() gives it; RGB interleaved). 8-bit samples are kept; 16-bit, signed and
 * floating-point samples are scaled by cnnl__scale8(), the smallest negative value becoming 0
 * and the largest 255. NULL on failure: @p *oom tells whether memory ran out, @p why says what
 * else. */
uint8_t *cnnl__tiff_decode(const uint8_t *d, size_t n, bool *oom, char *why, size_t whylen);

#endif
