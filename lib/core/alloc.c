/* Checked, aligned allocation. Alignment suits AVX-512 loads and cache lines.
 *
 * Also the allocation-failure hook of the tests (tests/core/test_alloc_fault.c): once armed
 * with cnnl__alloc_fail_after(n), the allocation after the next n ones fails. cnnl__alloc
 * consults it; the test routes the library's malloc, calloc, realloc and strdup (linker
 * --wrap) and cJSON (cJSON_InitHooks) through cnnl__alloc_fault_hit() too. Disarmed (the
 * default), the hook costs one relaxed atomic load per allocation. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

enum { ALIGN = 64 };

/* Allocations still allowed before the injected failure; negative when disarmed. */
static atomic_long fault_countdown = -1;
static atomic_long fault_seen;

void cnnl__alloc_fail_after(long n)
{
    atomic_store(&fault_seen, 0);
    atomic_store(&fault_countdown, n < 0 ? -1 : n);
}

long cnnl__alloc_fault_count(void)
{
    return atomic_load(&fault_seen);
}

bool cnnl__alloc_fault_hit(void)
{
    if (atomic_load_explicit(&fault_countdown, memory_order_relaxed) < 0)
        return false;
    atomic_fetch_add(&fault_seen, 1);
    long left = atomic_fetch_sub(&fault_countdown, 1);
    if (left == 0) {
        atomic_store(&fault_countdown, -1); /* one failure per arming */
        return true;
    }
    return false;
}

void *cnnl__alloc(size_t bytes)
{
    void *p = NULL;
    if (cnnl__alloc_fault_hit())
        return NULL;
    if (bytes == 0)
        bytes = 1;
    if (posix_memalign(&p, ALIGN, bytes) != 0)
        return NULL;
    return p;
}

void *cnnl__alloc_zero(size_t bytes)
{
    void *p = cnnl__alloc(bytes);
    if (p)
        memset(p, 0, bytes ? bytes : 1);
    return p;
}

void *cnnl__alloc_array(size_t n, size_t size, bool zero)
{
    size_t bytes;
    if (!cnnl__mul_size(n, size, &bytes)) {
        cnnl__error(CNNL_EINVAL, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = zero ? cnnl__alloc_zero(bytes) : cnnl__alloc(bytes);
    if (!p)
        cnnl__error(CNNL_ENOMEM, "cannot allocate %zu bytes", bytes);
    return p;
}

void cnnl__free(void *p)
{
    free(p);
}
