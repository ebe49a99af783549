/* Small image folders written by the data tests themselves (temporary folders, raw files and
 * log capture: test_util.h). */
#ifndef CNNL_TEST_DATA_FIXTURES_H
#define CNNL_TEST_DATA_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "test_util.h"

/* The running test's temporary folder: made by fx_setup, removed by fx_teardown. */
extern char *fx_tmp;
int fx_setup(void **state);
/* Also stops log capture and injected open failures that a failed test may have left. */
int fx_teardown(void **state);

/* "<a>/<b>" in a static rotating buffer (valid for the next few calls). */
const char *fx_path(const char *a, const char *b);
void fx_mkdir(const char *path);
/* Write a w x h image with @p comp channels as PNG or JPEG (quality 100). */
void fx_png(const char *path, int w, int h, int comp, const uint8_t *pixels);
void fx_jpg(const char *path, int w, int h, int comp, const uint8_t *pixels);
/* A w x h gray PNG filled with @p value. */
void fx_png_const(const char *path, int w, int h, uint8_t value);

#endif
