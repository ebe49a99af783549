/* Shared helpers for the cmocka suites. */
#ifndef CNNL_TEST_UTIL_H
#define CNNL_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <cnnlite/cnnlite.h>

/* Assert that @p expr returns @p status and that the last error mentions @p needle. */
#define assert_status_msg(expr, status, needle)                                              \
    do {                                                                                     \
        cnnl_clear_error();                                                                  \
        cnnl_status st_ = (expr);                                                            \
        if (st_ != (status) || strstr(cnnl_last_error(), (needle)) == NULL) {                \
            print_error("%s: got %d (%s) \"%s\", want %d with \"%s\"\n", #expr, (int)st_,    \
                        cnnl_status_string(st_), cnnl_last_error(), (int)(status), (needle)); \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

#define assert_ok(expr)                                                                      \
    do {                                                                                     \
        cnnl_status st_ = (expr);                                                            \
        if (st_ != CNNL_OK) {                                                                \
            print_error("%s failed: %s: %s\n", #expr, cnnl_status_string(st_), cnnl_last_error()); \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

/* Files and folders (tests/test_util.c; failures fail the test). */

/* A fresh folder under $TMPDIR (or /tmp); a malloc'ed path. */
char *tu_tempdir(void);
/* Remove a folder tree (or a file); NULL is ignored. */
void tu_rmtree(const char *path);
void tu_write_file(const char *path, const void *data, size_t n);
/* A whole file in a malloc'ed buffer with a '\0' after its @p *n bytes (@p n may be NULL). */
unsigned char *tu_read_file(const char *path, size_t *n);
/* Keep the first @p num / @p den of the file (a truncated file). */
void tu_cut_file(const char *path, size_t num, size_t den);
/* A text file of up to 64 KiB in a static buffer (valid until the next call), NULL when it
 * cannot be opened. */
const char *tu_read_text(const char *path);

/* Log capture: counts the warnings and keeps their text, one per line. */
typedef struct tu_log {
    int warnings;
    char text[8192];
} tu_log;
void tu_log_start(tu_log *log);
void tu_log_stop(void);

#endif
