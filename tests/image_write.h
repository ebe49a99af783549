/* Writers of the small image files that stb_image_write cannot make, for the tests and the
 * fuzz seeds: DICOM Part 10 (not a general writer: the elements the image reader looks at,
 * plus a nested sequence), PNG and PNM with 16-bit samples, and TIFF through libtiff. Each
 * returns false (or NULL) when the file cannot be written. */
#ifndef CNNL_TEST_IMAGE_WRITE_H
#define CNNL_TEST_IMAGE_WRITE_H

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

/* A PNG of 16-bit samples @p v (w x h x comp, comp 1 gray or 3 RGB), its image data in
 * stored (not compressed) deflate blocks, so that no zlib is needed. */
bool tw_png16(const char *path, int w, int h, int comp, const uint16_t *v);

/* A binary PGM (comp 1) or PPM (comp 3) with maximum value @p maxv and 16-bit samples @p v;
 * the last @p cut bytes are left out. */
bool tw_pnm16(const char *path, int w, int h, int comp, int maxv, const uint16_t *v, size_t cut);

#ifdef CNNL_HAVE_TIFF
typedef struct tw_tiff_opts {
    int spp, bps, fmt, photo; /* fmt 0: SAMPLEFORMAT_UINT */
    bool planar;              /* PLANARCONFIG_SEPARATE */
    int tile;                 /* tile side (0: strips of 4 rows) */
    int compression;          /* COMPRESSION_NONE when 0 */
    int pages;                /* 1 when 0 */
    const uint16_t *palette;  /* a 256-entry colour map used for all three colours, or NULL */
} tw_tiff_opts;

/* A TIFF of w x h pixels whose interleaved samples (8-, 16- or 32-bit values, as o->bps says)
 * are @p v; every page the same. */
bool tw_tiff(const char *path, int w, int h, const void *v, const tw_tiff_opts *o);
#endif

#endif
