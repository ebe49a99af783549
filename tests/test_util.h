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

#endif
