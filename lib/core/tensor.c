/* Opaque float32 tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/tensor_impl.h"

/* Largest element count: keeps byte sizes and int64 arithmetic far from overflow. */
#define MAX_NUMEL ((size_t)1 << 61)

cnnl_status cnnl__shape_numel(const char *who, int ndim, const int64_t *shape, size_t *numel)
{
    if (!shape)
        return cnnl__error(CNNL_EINVAL, "%s: shape is NULL", who);
    if (ndim < 1 || ndim > CNNL_TENSOR_MAX_DIMS)
        return cnnl__error(CNNL_EINVAL, "%s: %d dimensions requested; a tensor has 1 to %d", who, ndim,
                           CNNL_TENSOR_MAX_DIMS);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return cnnl__error(CNNL_EINVAL, "%s: dimension %d is %lld; every dimension must be at least 1", who,
                               i, (long long)shape[i]);
        if ((uint64_t)shape[i] > MAX_NUMEL || !cnnl__mul_size(n, (size_t)shape[i], &n) || n > MAX_NUMEL)
            return cnnl__error(CNNL_EINVAL, "%s: the shape's element count overflows (dimension %d is %lld)", who,
                               i, (long long)shape[i]);
    }
    *numel = n;
    return CNNL_OK;
}

cnnl_status cnnl__tensor_new(const char *who, cnnl_tensor **out, int ndim, const int64_t *shape, bool zero)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "%s: out is NULL", who);
    *out = NULL;
    size_t numel = 0;
    cnnl_status st = cnnl__shape_numel(who, ndim, shape, &numel);
    if (st != CNNL_OK)
        return st;
    cnnl_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    t->data = zero ? cnnl__alloc_zero(numel * sizeof(float)) : cnnl__alloc(numel * sizeof(float));
    if (!t->data) {
        free(t);
        return cnnl__error(CNNL_ENOMEM, "%s: cannot allocate %zu floats (%.1f MiB)", who, numel,
                           (double)numel * 4.0 / 1048576.0);
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = t->capacity = numel;
    *out = t;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_tensor_create(cnnl_tensor **out, int ndim, const int64_t *shape)
{
    return cnnl__tensor_new("cnnl_tensor_create", out, ndim, shape, false);
}

CNNL_API cnnl_status cnnl_tensor_zeros(cnnl_tensor **out, int ndim, const int64_t *shape)
{
    return cnnl__tensor_new("cnnl_tensor_zeros", out, ndim, shape, true);
}

CNNL_API cnnl_status cnnl_tensor_from_data(cnnl_tensor **out, int ndim, const int64_t *shape, const float *data)
{
    if (out)
        *out = NULL;
    if (!data)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_from_data: data is NULL");
    cnnl_status st = cnnl__tensor_new("cnnl_tensor_from_data", out, ndim, shape, false);
    if (st == CNNL_OK)
        memcpy((*out)->data, data, (*out)->numel * sizeof(float));
    return st;
}

CNNL_API void cnnl_tensor_free(cnnl_tensor *t)
{
    if (!t)
        return;
    cnnl__free(t->data);
    free(t);
}

CNNL_API int cnnl_tensor_ndim(const cnnl_tensor *t)
{
    if (!t) {
        cnnl__error(CNNL_EINVAL, "cnnl_tensor_ndim: tensor is NULL");
        return 0;
    }
    return t->ndim;
}

CNNL_API int64_t cnnl_tensor_dim(const cnnl_tensor *t, int dim)
{
    if (!t) {
        cnnl__error(CNNL_EINVAL, "cnnl_tensor_dim: tensor is NULL");
        return 0;
    }
    int d = dim < 0 ? dim + t->ndim : dim;
    if (d < 0 || d >= t->ndim) {
        cnnl__error(CNNL_EINVAL, "cnnl_tensor_dim: dimension %d out of range for a %d-D tensor", dim, t->ndim);
        return 0;
    }
    return t->shape[d];
}

CNNL_API size_t cnnl_tensor_numel(const cnnl_tensor *t)
{
    if (!t) {
        cnnl__error(CNNL_EINVAL, "cnnl_tensor_numel: tensor is NULL");
        return 0;
    }
    return t->numel;
}

CNNL_API cnnl_status cnnl_tensor_shape(const cnnl_tensor *t, int *ndim, int64_t *shape)
{
    if (!t)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_shape: tensor is NULL");
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        for (int i = 0; i < t->ndim; i++)
            shape[i] = t->shape[i];
    return CNNL_OK;
}

CNNL_API float *cnnl_tensor_data(cnnl_tensor *t)
{
    if (!t) {
        cnnl__error(CNNL_EINVAL, "cnnl_tensor_data: tensor is NULL");
        return NULL;
    }
    return t->data;
}

CNNL_API const float *cnnl_tensor_data_const(const cnnl_tensor *t)
{
    if (!t) {
        cnnl__error(CNNL_EINVAL, "cnnl_tensor_data_const: tensor is NULL");
        return NULL;
    }
    return t->data;
}

CNNL_API cnnl_status cnnl_tensor_copy(cnnl_tensor **out, const cnnl_tensor *src)
{
    if (out)
        *out = NULL;
    if (!src)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_copy: source tensor is NULL");
    cnnl_status st = cnnl__tensor_new("cnnl_tensor_copy", out, src->ndim, src->shape, false);
    if (st == CNNL_OK)
        memcpy((*out)->data, src->data, src->numel * sizeof(float));
    return st;
}

CNNL_API cnnl_status cnnl_tensor_copy_into(cnnl_tensor *dst, const cnnl_tensor *src)
{
    if (!dst || !src)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_copy_into: %s tensor is NULL", dst ? "source" : "destination");
    if (dst->numel != src->numel)
        return cnnl__error(CNNL_ESHAPE, "cnnl_tensor_copy_into: destination has %zu elements, source %zu",
                           dst->numel, src->numel);
    memmove(dst->data, src->data, src->numel * sizeof(float));
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_tensor_fill(cnnl_tensor *t, float value)
{
    if (!t)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_fill: tensor is NULL");
    for (size_t i = 0; i < t->numel; i++)
        t->data[i] = value;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_tensor_reshape(cnnl_tensor *t, int ndim, const int64_t *shape)
{
    if (!t)
        return cnnl__error(CNNL_EINVAL, "cnnl_tensor_reshape: tensor is NULL");
    size_t numel = 0;
    cnnl_status st = cnnl__shape_numel("cnnl_tensor_reshape", ndim, shape, &numel);
    if (st != CNNL_OK)
        return st;
    if (numel != t->numel)
        return cnnl__error(CNNL_ESHAPE, "cnnl_tensor_reshape: new shape has %zu elements, the tensor %zu", numel,
                           t->numel);
    t->ndim = ndim;
    for (int i = 0; i < CNNL_TENSOR_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 0;
    return CNNL_OK;
}

cnnl_status cnnl__tensor_ensure(cnnl_tensor **t, int ndim, const int64_t *shape)
{
    size_t numel = 0;
    cnnl_status st = cnnl__shape_numel("tensor", ndim, shape, &numel);
    if (st != CNNL_OK)
        return st;
    if (!*t)
        return cnnl__tensor_new("tensor", t, ndim, shape, false);
    cnnl_tensor *x = *t;
    if (numel > x->capacity) {
        float *data = cnnl__alloc(numel * sizeof(float));
        if (!data)
            return cnnl__error(CNNL_ENOMEM, "cannot allocate %zu floats (%.1f MiB)", numel,
                               (double)numel * 4.0 / 1048576.0);
        cnnl__free(x->data);
        x->data = data;
        x->capacity = numel;
    }
    x->ndim = ndim;
    for (int i = 0; i < CNNL_TENSOR_MAX_DIMS; i++)
        x->shape[i] = i < ndim ? shape[i] : 0;
    x->numel = numel;
    return CNNL_OK;
}

cnnl_status cnnl__tensor_ensure4(cnnl_tensor **t, int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t shape[4] = {n, c, h, w};
    return cnnl__tensor_ensure(t, 4, shape);
}
