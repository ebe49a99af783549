/* Checked, aligned allocation. Alignment suits AVX-512 loads and cache lines. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

enum { ALIGN = 64 };

void *cnnl__alloc(size_t bytes)
{
    void *p = NULL;
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
