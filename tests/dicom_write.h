/* A writer of small DICOM Part 10 files for the tests and the fuzz seeds (not a general
 * DICOM writer: the elements the image reader looks at, plus a nested sequence). */
#ifndef CNNL_TEST_DICOM_WRITE_H
#define CNNL_TEST_DICOM_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tdcm_opts {
    bool implicit_vr;        /* transfer syntax 1.2.840.10008.1.2 instead of ...1.2.1 */
    const char *transfer;    /* overrides the transfer syntax UID when not NULL */
    const char *photometric; /* "MONOCHROME2" when NULL */
    int samples;             /* 1 or 3 */
    int bits, bits_stored;   /* allocated and stored bits per sample */
    bool is_signed;
    bool planar;             /* RGB as three planes */
    int frames;              /* NumberOfFrames written when > 0 */
    int nesting;             /* a sequence of undefined length nested this deep (0: none) */
    size_t cut;              /* bytes left off the end */
    const uint8_t *jpeg;     /* when not NULL: baseline JPEG (transfer syntax ...1.2.4.50) whose
                                stream is these bytes, in two fragments; @p v is then unused */
    size_t jpeg_len;
} tdcm_opts;

/* Write a w x h image whose samples (w x h x samples, in file order, as 8- or 16-bit values
 * according to o->bits) are @p v, to @p path, or to memory when @p path is NULL. Returns the
 * bytes written (malloc'd; the caller frees) and their count in @p n; NULL on failure. */
uint8_t *tdcm_write(const char *path, int w, int h, const uint16_t *v, const tdcm_opts *o, size_t *n);

#endif
