/* Reader of the PyTorch reference files written by gen_fixtures.py, and the comparison the
 * parity tests use. */
#ifndef CNNL_TEST_FIXTURE_H
#define CNNL_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

typedef struct fx_tensor {
    char *name;
    int ndim;          /* 0 for a scalar */
    int64_t shape[4];
    size_t numel;
    float *data;
} fx_tensor;

typedef struct fx_file {
    size_t count;
    fx_tensor *items;
} fx_file;

/* Load tests/parity/fixtures/<name> below $CNNLITE_SOURCE_ROOT. NULL (with a message on
 * stderr) if the file is missing or malformed. */
fx_file *fx_load(const char *name);
void fx_free(fx_file *f);

/* The tensor named by the printf-style arguments, or NULL. */
const fx_tensor *fx_find(const fx_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Largest error of @p got against the reference @p want, relative to max(|want_i|, rms(want)):
 *     err = max_i |got_i - want_i| / max(|want_i|, rms(want))
 * so a test passes with err <= 1e-4. The floor rms(want) (root mean square over the tensor)
 * keeps elements that are near zero through cancellation from demanding an impossible
 * relative accuracy: a float32 sum of K terms is accurate to about sqrt(K) * 2^-24 times the
 * terms' magnitude, i.e. to ~1e-6 of the tensor's typical size for the K <= 10^4 here, but
 * not to 1e-4 of an element that happens to be 1000 times smaller than the rest.
 * Prints one line "parity <label>: max rel err E (n values)" and returns E.
 */
double fx_compare(const char *label, const float *got, const float *want, size_t n);

#endif
