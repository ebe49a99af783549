/* Helpers shared by the io suites: a scratch folder per test, folder contents, raw safetensors
 * files, paths. */
#ifndef CNNL_TESTS_IO_UTIL_H
#define CNNL_TESTS_IO_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "io/atomic_file.h"

/* Number of entries in @p dir other than "." and "..". */
static inline int scratch_count(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* A safetensors file from a header text (unpadded) and @p data_len bytes of data. */
static inline void write_st_raw(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t hlen = strlen(header);
    unsigned char *buf = malloc(8 + hlen + data_len + 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (data_len)
        memcpy(buf + 8 + hlen, data, data_len);
    tu_write_file(path, buf, 8 + hlen + data_len);
    free(buf);
}

static inline char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The cmocka state of the suites that need only a fresh folder and a file name in it. */
typedef struct io_fixture {
    char *dir;
    char *file;
} io_fixture;

static inline int io_fixture_setup(void **state, const char *file_name)
{
    io_fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_tempdir();
    fx->file = path_in(fx->dir, file_name);
    *state = fx;
    return 0;
}

/* Also undoes what a failed test may have left set: injected write failures, log capture. */
static inline int io_fixture_teardown(void **state)
{
    io_fixture *fx = *state;
    cnnl__io_fail_after_bytes = -1;
    tu_log_stop();
    free(fx->file);
    tu_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

#endif
