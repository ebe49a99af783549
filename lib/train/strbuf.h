/* A growable text buffer for writers that build a whole file in memory before replacing the
 * target atomically. Not installed. */
#ifndef CNNL_TRAIN_STRBUF_H
#define CNNL_TRAIN_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnlite/status.h"
#include "core/internal.h"

typedef struct cnnl__strbuf {
    char *data;   /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    bool failed;  /* an allocation failed; later appends are ignored */
} cnnl__strbuf;

/* Append formatted text; on allocation failure sets sb->failed. */
void cnnl__sb_printf(cnnl__strbuf *sb, const char *fmt, ...) CNNL_PRINTF(2, 3);

/* Append @p s with XML special characters escaped. */
void cnnl__sb_xml(cnnl__strbuf *sb, const char *s);

/* Append @p s as a JSON string literal (with quotes). */
void cnnl__sb_json_string(cnnl__strbuf *sb, const char *s);

void cnnl__sb_free(cnnl__strbuf *sb);

/* Replace @p path by the buffer's content atomically: a temporary file in the same folder,
 * fsync, rename. @p who names the caller in messages. CNNL_ENOMEM if the buffer failed,
 * CNNL_EIO on any file error (an existing file is left untouched). */
cnnl_status cnnl__sb_write_atomic(const cnnl__strbuf *sb, const char *path, const char *who);

#endif
