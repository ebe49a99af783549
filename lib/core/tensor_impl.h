/* Tensor layout for the library's own modules, and helpers that reuse storage. */
#ifndef CNNL_CORE_TENSOR_IMPL_H
#define CNNL_CORE_TENSOR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnlite/tensor.h"

struct cnnl_tensor {
    int ndim;
    int64_t shape[CNNL_TENSOR_MAX_DIMS];
    size_t numel;
    size_t capacity; /* elements allocated; >= numel */
    float *data;
};

/* Validate (ndim, shape) and compute the element count; sets the last error on failure.
 * @p who names the calling function in the message. */
cnnl_status cnnl__shape_numel(const char *who, int ndim, const int64_t *shape, size_t *numel);

/* Create a tensor (zero-filled if @p zero); errors name @p who. */
cnnl_status cnnl__tensor_new(const char *who, cnnl_tensor **out, int ndim, const int64_t *shape, bool zero);

/* Make *@p t a tensor of the given shape, reusing its storage when large enough (workspaces:
 * no allocation once the largest shape has been seen). Creates it when *t is NULL.
 * Contents are unspecified afterwards. */
cnnl_status cnnl__tensor_ensure(cnnl_tensor **t, int ndim, const int64_t *shape);

/* Convenience for 4-D NCHW shapes. */
cnnl_status cnnl__tensor_ensure4(cnnl_tensor **t, int64_t n, int64_t c, int64_t h, int64_t w);

#endif
