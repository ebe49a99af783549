/* Temporary folders and small image files written by the data tests themselves. */
#ifndef CNNL_TEST_DATA_FIXTURES_H
#define CNNL_TEST_DATA_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cnnlite/cnnlite.h>

/* Create a fresh temporary folder; returns a malloc'ed path. */
char *fx_tempdir(void);
/* Remove a folder tree. */
void fx_rmtree(const char *path);
/* "<a>/<b>" in a static rotating buffer (valid for the next few calls). */
const char *fx_path(const char *a, const char *b);
void fx_mkdir(const char *path);
/* Write a w x h image with @p comp channels as PNG or JPEG (quality 100). */
void fx_png(const char *path, int w, int h, int comp, const uint8_t *pixels);
void fx_jpg(const char *path, int w, int h, int comp, const uint8_t *pixels);
/* A w x h gray PNG filled with @p value. */
void fx_png_const(const char *path, int w, int h, uint8_t value);
/* Write raw bytes. */
void fx_bytes(const char *path, const void *data, size_t len);
/* Read a whole file; *len receives its size. */
uint8_t *fx_read(const char *path, size_t *len);

/* Log capture: counts warnings and keeps their text (joined with '\n'). */
typedef struct fx_log {
    int warnings;
    char text[8192];
} fx_log;
void fx_log_start(fx_log *log);
void fx_log_stop(void);

#endif
