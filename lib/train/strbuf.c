/* Growable text buffer and atomic file replacement for the history and picture writers. */
#include "train/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

static bool reserve(cnnl__strbuf *sb, size_t extra)
{
    size_t need;
    if (sb->failed || !cnnl__add_size(sb->len, extra + 1, &need))
        return sb->failed = true, false;
    if (need <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 1024;
    while (cap < need)
        if (!cnnl__mul_size(cap, 2, &cap))
            return sb->failed = true, false;
    char *p = realloc(sb->data, cap);
    if (p == NULL)
        return sb->failed = true, false;
    sb->data = p;
    sb->cap = cap;
    return true;
}

void cnnl__sb_printf(cnnl__strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if (!reserve(sb, (size_t)n))
        return;
    if ((size_t)n < sizeof small) {
        memcpy(sb->data + sb->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
}

void cnnl__sb_xml(cnnl__strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': cnnl__sb_printf(sb, "&lt;"); break;
        case '>': cnnl__sb_printf(sb, "&gt;"); break;
        case '&': cnnl__sb_printf(sb, "&amp;"); break;
        case '"': cnnl__sb_printf(sb, "&quot;"); break;
        default: cnnl__sb_printf(sb, "%c", *s); break;
        }
    }
}

void cnnl__sb_json_string(cnnl__strbuf *sb, const char *s)
{
    cnnl__sb_printf(sb, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            cnnl__sb_printf(sb, "\\%c", c);
        else if (c < 0x20)
            cnnl__sb_printf(sb, "\\u%04x", c);
        else
            cnnl__sb_printf(sb, "%c", c);
    }
    cnnl__sb_printf(sb, "\"");
}

void cnnl__sb_free(cnnl__strbuf *sb)
{
    free(sb->data);
    memset(sb, 0, sizeof *sb);
}

cnnl_status cnnl__sb_write_atomic(const cnnl__strbuf *sb, const char *path, const char *who)
{
    if (sb->failed)
        return cnnl__error(CNNL_ENOMEM, "%s: %s: out of memory while formatting", who, path);
    cnnl__io_chunk chunk = {sb->data ? sb->data : "", sb->len};
    cnnl_status st = cnnl__atomic_write(path, &chunk, 1);
    return st == CNNL_OK ? st : cnnl__error_context(st, "%s", who);
}
