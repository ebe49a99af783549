/* Helpers shared by the fuzz targets (tests/fuzz/fuzz_<name>.c).
 *
 * The library reads files by path, so each target writes its input to one temporary file per
 * process and hands the library that path. */
#ifndef CNNL_FUZZ_UTIL_H
#define CNNL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Entry point of every target (libFuzzer's convention). Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replace the contents of this process's temporary file (suffix chosen once, e.g. ".png", so
 * that code looking at the extension sees one) with @p data and return its path; aborts when
 * the file cannot be written (a broken fuzzing setup, not a finding). */
const char *fuzz_write_temp(const uint8_t *data, size_t size, const char *suffix);

#endif
