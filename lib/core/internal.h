/*
 * Internal helpers shared by every module: error reporting, logging, checked allocation,
 * the thread count. Not installed.
 */
#ifndef CNNL_CORE_INTERNAL_H
#define CNNL_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnlite/status.h"

#if defined(__GNUC__)
#  define CNNL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define CNNL_PRINTF(f, a)
#endif

/* Record a detailed message for the calling thread and return @p status (for "return
 * cnnl__error(CNNL_EINVAL, ...)"). Messages longer than the buffer are truncated. */
cnnl_status cnnl__error(cnnl_status status, const char *fmt, ...) CNNL_PRINTF(2, 3);

/* Prefix the current last-error message with "context: " (e.g. a file name). */
cnnl_status cnnl__error_context(cnnl_status status, const char *fmt, ...) CNNL_PRINTF(2, 3);

/* Deliver a message to the log callback (or stderr) if @p level passes the filter. */
void cnnl__log(cnnl_log_level level, const char *fmt, ...) CNNL_PRINTF(2, 3);

/* Overflow-checked size arithmetic: false on overflow. */
static inline bool cnnl__mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool cnnl__add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* 64-byte aligned allocation of @p bytes (0 allowed). NULL on failure (caller reports). */
void *cnnl__alloc(size_t bytes);
/* As cnnl__alloc, zero-filled. */
void *cnnl__alloc_zero(size_t bytes);
/* Array of @p n elements of @p size bytes, overflow-checked; sets ENOMEM/EINVAL message. */
void *cnnl__alloc_array(size_t n, size_t size, bool zero);
void cnnl__free(void *p);

/* Allocation-failure injection, for tests only (lib/core/alloc.c). cnnl__alloc_fail_after(n)
 * makes the allocation after the next @p n ones fail, once (n < 0 disarms) and resets the
 * count; cnnl__alloc_fault_hit() is called by every hooked allocation and returns true for
 * the one that must fail; cnnl__alloc_fault_count() is the number of hooked allocations since
 * arming. */
void cnnl__alloc_fail_after(long n);
bool cnnl__alloc_fault_hit(void);
long cnnl__alloc_fault_count(void);

/* True when @p text (@p len bytes) is well-formed JSON that cJSON parses when memory suffices
 * (lib/core/json_check.c; allocates nothing). After cJSON returned NULL: true means the
 * parse ran out of memory, false that the text is malformed. */
bool cnnl__json_well_formed(const char *text, size_t len);

/* Number of compute threads (>= 1); initialises BLAS threading on first use. */
int cnnl__num_threads(void);

/* Split [0, n) into @p parts contiguous chunks; chunk @p i is [*begin, *end). */
static inline void cnnl__chunk(size_t n, int parts, int i, size_t *begin, size_t *end)
{
    size_t base = n / (size_t)parts, rem = n % (size_t)parts, idx = (size_t)i;
    *begin = idx * base + (idx < rem ? idx : rem);
    *end = *begin + base + (idx < rem ? 1 : 0);
}

#endif /* CNNL_CORE_INTERNAL_H */
