/*
 * A JSON syntax check that allocates nothing. cJSON returns NULL both for malformed text and
 * when an allocation fails; after a failed parse, readers ask this check which it was, so that
 * out of memory is reported as CNNL_ENOMEM and never as a malformed file.
 *
 * The check accepts exactly what RFC 8259 allows, within the limits of the cJSON build the
 * library uses (Debian 12's 1.7.15): nesting up to 1000 levels, numbers of at most 63
 * characters, \u escapes that form valid UTF-16 (no lone surrogates). Text it accepts is text
 * cJSON parses when memory suffices.
 */
#include <string.h>

#include "core/internal.h"

enum { MAX_DEPTH = 1000, MAX_NUMBER_CHARS = 63 };

typedef struct cursor {
    const unsigned char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool literal(cursor *c, const char *word)
{
    for (; *word; word++, c->p++)
        if (c->p >= c->end || *c->p != (unsigned char)*word)
            return false;
    return true;
}

static bool is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool number(cursor *c)
{
    const unsigned char *start = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end || !is_digit(*c->p))
        return false;
    if (*c->p == '0')
        c->p++;
    else
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return false;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return false;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    return c->p - start <= MAX_NUMBER_CHARS;
}

static int hex4(cursor *c)
{
    int v = 0;
    for (int i = 0; i < 4; i++, c->p++) {
        if (c->p >= c->end)
            return -1;
        unsigned char ch = *c->p;
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                  : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool string(cursor *c)
{
    c->p++; /* opening quote */
    while (c->p < c->end) {
        unsigned char ch = *c->p++;
        if (ch == '"')
            return true;
        if (ch < 0x20)
            return false;
        if (ch != '\\')
            continue;
        if (c->p >= c->end)
            return false;
        ch = *c->p++;
        if (ch == 'u') {
            int u = hex4(c);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return false;
            if (u >= 0xD800 && u <= 0xDBFF) { /* a high surrogate needs its low half */
                if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
                    return false;
                c->p += 2;
                int lo = hex4(c);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return false;
            }
        } else if (!strchr("\"\\/bfnrt", ch) || ch == '\0') {
            return false;
        }
    }
    return false;
}

static bool value(cursor *c, int depth)
{
    skip_ws(c);
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
    case '[': {
        bool object = *c->p == '{';
        char close = object ? '}' : ']';
        if (depth >= MAX_DEPTH)
            return false;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return true;
        }
        for (;;) {
            if (object) {
                skip_ws(c);
                if (c->p >= c->end || *c->p != '"' || !string(c))
                    return false;
                skip_ws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return false;
            }
            if (!value(c, depth + 1))
                return false;
            skip_ws(c);
            if (c->p >= c->end)
                return false;
            if (*c->p == close) {
                c->p++;
                return true;
            }
            if (*c->p++ != ',')
                return false;
        }
    }
    case '"':
        return string(c);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        return number(c);
    }
}

bool cnnl__json_well_formed(const char *text, size_t len)
{
    if (!text)
        return false;
    cursor c = {(const unsigned char *)text, (const unsigned char *)text + len};
    if (!value(&c, 0))
        return false;
    skip_ws(&c);
    return c.p == c.end;
}
