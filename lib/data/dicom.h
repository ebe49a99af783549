/* DICOM Part 10 files with uncompressed pixel data (lib/data/dicom.c). Not installed. */
#ifndef CNNL_DICOM_H
#define CNNL_DICOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the header says about the one frame of pixels. */
typedef struct cnnl__dicom_info {
    int rows, cols;
    int samples;       /* 1 (MONOCHROME1/2) or 3 (RGB) */
    int bits;          /* bits allocated per sample: 8 or 16 */
    int bits_stored;   /* 1 .. bits */
    bool is_signed;    /* PixelRepresentation 1 */
    bool inverted;     /* MONOCHROME1: the smallest value is white */
    bool planar;       /* RGB stored as three planes */
    size_t pixel_off;  /* offset of the pixel data in the file (for JPEG: its first item) */
    bool jpeg;         /* transfer syntax 1.2.840.10008.1.2.4.50: the pixel data is one baseline
                        * JPEG in fragments (cnnl__dicom_jpeg()) */
    size_t jpeg_bytes; /* total bytes of those fragments */
} cnnl__dicom_info;

/* True when @p d starts like a DICOM Part 10 file (128-byte preamble, then "DICM"). */
bool cnnl__dicom_detect(const uint8_t *d, size_t n);

/* Parse the header of @p d (@p n bytes): transfer syntax (explicit or implicit VR little
 * endian, or baseline JPEG), image geometry and pixel format; checks that the file holds the
 * pixel data (for JPEG: that its fragments are whole). On failure writes the reason into @p why
 * and returns false. */
bool cnnl__dicom_header(const uint8_t *d, size_t n, cnnl__dicom_info *info, char *why, size_t whylen);

/* Decode the uncompressed pixels described by @p info into a malloc'd buffer of rows x cols x
 * samples bytes (RGB interleaved). 8-bit unsigned samples are kept; wider or signed samples
 * are scaled by cnnl__scale8(), the smallest (when below 0) becoming 0 and the largest 255.
 * MONOCHROME1 is inverted. NULL when out of memory. */
uint8_t *cnnl__dicom_decode(const uint8_t *d, const cnnl__dicom_info *info);

/* The JPEG stream of a baseline-JPEG file @p d of @p n bytes whose header cnnl__dicom_header()
 * accepted (@p info->jpeg): its fragments joined, in a malloc'd buffer of info->jpeg_bytes
 * bytes. NULL when out of memory. */
uint8_t *cnnl__dicom_jpeg(const uint8_t *d, size_t n, const cnnl__dicom_info *info);

#endif
