/*
 * safetensors files: an 8-byte little-endian header length, a JSON header mapping tensor
 * names to {dtype, shape, data_offsets} (plus an optional "__metadata__" map of strings),
 * then the raw little-endian tensor bytes. Only F32 and I64 are supported.
 *
 * The reader validates the whole file before anything uses it; the writer replaces the
 * target atomically (see atomic_file.h). Not installed.
 */
#ifndef CNNL_IO_SAFETENSORS_H
#define CNNL_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "cnnlite/model.h"
#include "cnnlite/status.h"

/* Largest accepted JSON header (the reference implementation uses the same bound). */
#define CNNL__ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
/* Most dimensions a tensor may have in a file we read. */
#define CNNL__ST_MAX_DIMS 8

/* One named tensor. For writing, @c data is borrowed from the caller; for reading it points
 * into the file's buffer (not aligned: copy it out with memcpy). */
typedef struct cnnl__st_tensor {
    const char *name;
    size_t begin; /* offset in the data section (read only) */
    cnnl_dtype dtype;
    int ndim;
    int64_t shape[CNNL__ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data;
} cnnl__st_tensor;

/* One "__metadata__" entry (strings borrowed for writing, owned by the file when read). */
typedef struct cnnl__st_meta {
    const char *key;
    const char *value;
} cnnl__st_meta;

/* A file that has been read and validated completely. */
typedef struct cnnl__st_file {
    char *path;                 /* copy of the path, for messages */
    unsigned char *buf;         /* the whole file */
    size_t size;
    cnnl__st_tensor *tensors;   /* in header order; names owned by the file */
    size_t count;
    cnnl__st_meta *meta;        /* keys and values owned by the file */
    size_t meta_count;
    int has_metadata;           /* the header has a "__metadata__" entry */
    void *json;                 /* parsed header (cJSON); names and metadata point into it */
} cnnl__st_file;

/* Size in bytes of one element of @p dtype. */
size_t cnnl__st_dtype_size(cnnl_dtype dtype);

/* Read and validate @p path. On success *out owns everything (cnnl__st_free()). Errors:
 * CNNL_EIO (open/read/not a regular file), CNNL_EFORMAT (any malformed content), CNNL_ENOMEM;
 * every message starts with the path. */
cnnl_status cnnl__st_read(const char *path, cnnl__st_file **out);

/* Parse an in-memory file image (takes ownership of @p buf, malloc'd, even on failure).
 * @p path is used in messages only. */
cnnl_status cnnl__st_parse(const char *path, unsigned char *buf, size_t size, cnnl__st_file **out);

void cnnl__st_free(cnnl__st_file *f);

/* Tensor named @p name, or NULL. */
const cnnl__st_tensor *cnnl__st_find(const cnnl__st_file *f, const char *name);

/* Metadata value for @p key, or NULL. */
const char *cnnl__st_meta_get(const cnnl__st_file *f, const char *key);

/* Write @p count tensors (in this order) and @p meta_count metadata entries to @p path
 * atomically. Each tensor's numel/nbytes are recomputed from its shape; names must be unique,
 * non-empty and not "__metadata__". Errors: CNNL_EINVAL (bad list), CNNL_EIO, CNNL_ENOMEM. */
cnnl_status cnnl__st_write(const char *path, const cnnl__st_tensor *tensors, size_t count,
                           const cnnl__st_meta *meta, size_t meta_count);

#endif
