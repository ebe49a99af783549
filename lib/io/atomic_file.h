/* Atomic replacement of a file: temporary file in the same folder, write, fsync, rename,
 * fsync the folder. Not installed. */
#ifndef CNNL_IO_ATOMIC_FILE_H
#define CNNL_IO_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "cnnlite/status.h"

/* A piece of the file's content, written in order. */
typedef struct cnnl__io_chunk {
    const void *data;
    size_t size;
} cnnl__io_chunk;

/* Replace @p path by the concatenation of @p n chunks. On any failure (full disk, EFBIG past
 * the file size limit when SIGXFSZ is ignored, I/O error) the temporary file is removed, an
 * existing @p path is left untouched, and CNNL_EIO (or CNNL_ENOMEM) is returned with a message
 * naming @p path. A new file gets mode 0644 less the umask; a replaced file keeps its mode. */
cnnl_status cnnl__atomic_write(const char *path, const cnnl__io_chunk *chunks, size_t n);

/* cnnl__atomic_write of what @p write_fn prints on a stream (in memory first; write_fn returns
 * non-zero on failure). */
cnnl_status cnnl__atomic_write_stream(const char *path, int (*write_fn)(FILE *f, void *ctx), void *ctx);

/* Test hook: when >= 0, the write that would take the total written by cnnl__atomic_write
 * past this many bytes writes up to the limit and then fails as if the disk were full. Tests
 * set it and reset it to -1; the library never changes it. Not thread-safe. */
extern long long cnnl__io_fail_after_bytes;

#endif
