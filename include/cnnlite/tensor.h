/**
 * @file tensor.h
 * @brief Dense float32 tensors of up to four dimensions (NCHW).
 */
#ifndef CNNLITE_TENSOR_H
#define CNNLITE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "status.h"

/**
 * @defgroup tensor Tensors
 * @brief Opaque, contiguous, row-major float32 arrays; images are NCHW.
 *
 * Every dimension is at least 1 and the element count must fit in memory; both are checked
 * (a zero, negative or overflowing dimension is #CNNL_EINVAL, an allocation the system
 * cannot satisfy is #CNNL_ENOMEM). A tensor owns its data; cnnl_tensor_data() lends it.
 * @{
 */

/** Largest number of dimensions a tensor can have. */
#define CNNL_TENSOR_MAX_DIMS 4

/** Opaque tensor handle. */
typedef struct cnnl_tensor cnnl_tensor;

CNNL_BEGIN_DECLS

/**
 * @brief Create a tensor whose contents are unspecified (fast; fill it before reading).
 * @param[out] out Receives the tensor, owned by the caller (cnnl_tensor_free()); NULL on failure.
 * @param ndim Number of dimensions, 1..#CNNL_TENSOR_MAX_DIMS.
 * @param shape @p ndim sizes, each >= 1; the product times 4 bytes must fit in size_t.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL pointer, a bad @p ndim, a dimension < 1 or an
 *         element count that overflows; #CNNL_ENOMEM if the memory cannot be allocated.
 */
CNNL_API cnnl_status cnnl_tensor_create(cnnl_tensor **out, int ndim, const int64_t *shape);

/**
 * @brief Create a tensor filled with zeros.
 * @param[out] out Receives the tensor, owned by the caller; NULL on failure.
 * @param ndim Number of dimensions, 1..#CNNL_TENSOR_MAX_DIMS.
 * @param shape @p ndim sizes, each >= 1.
 * @return As cnnl_tensor_create().
 */
CNNL_API cnnl_status cnnl_tensor_zeros(cnnl_tensor **out, int ndim, const int64_t *shape);

/**
 * @brief Create a tensor holding a copy of @p data.
 * @param[out] out Receives the tensor, owned by the caller; NULL on failure.
 * @param ndim Number of dimensions, 1..#CNNL_TENSOR_MAX_DIMS.
 * @param shape @p ndim sizes, each >= 1.
 * @param data Row-major values, as many as the product of @p shape; copied, not retained.
 * @return As cnnl_tensor_create(); #CNNL_EINVAL if @p data is NULL.
 */
CNNL_API cnnl_status cnnl_tensor_from_data(cnnl_tensor **out, int ndim, const int64_t *shape,
                                           const float *data);

/**
 * @brief Release a tensor and its data. NULL is accepted and ignored.
 * @param t The tensor, or NULL.
 */
CNNL_API void cnnl_tensor_free(cnnl_tensor *t);

/**
 * @brief Number of dimensions.
 * @param t The tensor.
 * @return 1..#CNNL_TENSOR_MAX_DIMS, or 0 if @p t is NULL (and the last error is set).
 */
CNNL_API int cnnl_tensor_ndim(const cnnl_tensor *t);

/**
 * @brief Size of one dimension.
 * @param t The tensor.
 * @param dim Index 0..ndim-1; negative values count from the end (-1 is the last).
 * @return The size, or 0 if @p t is NULL or @p dim is out of range (and the last error is set).
 */
CNNL_API int64_t cnnl_tensor_dim(const cnnl_tensor *t, int dim);

/**
 * @brief Number of elements (the product of the dimensions).
 * @param t The tensor.
 * @return The count, or 0 if @p t is NULL (and the last error is set).
 */
CNNL_API size_t cnnl_tensor_numel(const cnnl_tensor *t);

/**
 * @brief Copy the shape out.
 * @param t The tensor.
 * @param[out] ndim Receives the number of dimensions (may be NULL).
 * @param[out] shape Receives ndim sizes; room for #CNNL_TENSOR_MAX_DIMS (may be NULL).
 * @return #CNNL_OK, or #CNNL_EINVAL if @p t is NULL.
 */
CNNL_API cnnl_status cnnl_tensor_shape(const cnnl_tensor *t, int *ndim, int64_t *shape);

/**
 * @brief Borrow the tensor's data: numel() contiguous row-major floats.
 * @param t The tensor.
 * @return A pointer owned by @p t, valid until @p t is freed or reshaped to more elements;
 *         NULL if @p t is NULL (and the last error is set).
 */
CNNL_API float *cnnl_tensor_data(cnnl_tensor *t);

/**
 * @brief Borrow a read-only view of the tensor's data.
 * @param t The tensor.
 * @return As cnnl_tensor_data().
 */
CNNL_API const float *cnnl_tensor_data_const(const cnnl_tensor *t);

/**
 * @brief Create a deep copy.
 * @param[out] out Receives the copy, owned by the caller; NULL on failure.
 * @param src The tensor to copy.
 * @return #CNNL_OK, #CNNL_EINVAL for NULL arguments, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_tensor_copy(cnnl_tensor **out, const cnnl_tensor *src);

/**
 * @brief Copy values between two tensors with the same number of elements.
 * @param dst Destination; its shape is kept.
 * @param src Source.
 * @return #CNNL_OK, #CNNL_EINVAL for NULL arguments, #CNNL_ESHAPE if the counts differ.
 */
CNNL_API cnnl_status cnnl_tensor_copy_into(cnnl_tensor *dst, const cnnl_tensor *src);

/**
 * @brief Set every element to @p value.
 * @param t The tensor.
 * @param value Any float (NaN and infinities included).
 * @return #CNNL_OK or #CNNL_EINVAL if @p t is NULL.
 */
CNNL_API cnnl_status cnnl_tensor_fill(cnnl_tensor *t, float value);

/**
 * @brief Give the tensor a new shape with the same number of elements (data unchanged).
 * @param t The tensor.
 * @param ndim Number of dimensions, 1..#CNNL_TENSOR_MAX_DIMS.
 * @param shape @p ndim sizes, each >= 1, whose product equals numel().
 * @return #CNNL_OK, #CNNL_EINVAL for bad arguments, #CNNL_ESHAPE if the count differs.
 */
CNNL_API cnnl_status cnnl_tensor_reshape(cnnl_tensor *t, int ndim, const int64_t *shape);

/**
 * @brief Matrix product of two 2-D tensors: out = op(a) * op(b), op = transpose or identity.
 *
 * Runs on cblas_sgemm, split over the library's threads (see cnnl_set_num_threads()); in
 * builds with oneDNN, blocks of at least 2^20 multiply-adds run on oneDNN's sgemm instead
 * (unless the environment variable CNNLITE_CONV_ENGINE=portable is set). The result depends
 * only on the inputs and the thread count.
 * @param[out] out Receives a new (M, N) tensor owned by the caller; NULL on failure.
 * @param a (M, K) tensor, or (K, M) if @p trans_a.
 * @param trans_a Use the transpose of @p a.
 * @param b (K, N) tensor, or (N, K) if @p trans_b.
 * @param trans_b Use the transpose of @p b.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or tensors that are not 2-D;
 *         #CNNL_ESHAPE if the inner dimensions differ; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_tensor_matmul(cnnl_tensor **out, const cnnl_tensor *a, bool trans_a,
                                        const cnnl_tensor *b, bool trans_b);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_TENSOR_H */
