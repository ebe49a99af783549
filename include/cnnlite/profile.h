/**
 * @file profile.h
 * @brief Per-layer timing of a model's forward and backward passes.
 */
#ifndef CNNLITE_PROFILE_H
#define CNNLITE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "model.h"
#include "status.h"

/**
 * @defgroup profile Per-layer profile
 * @brief Where the time of a forward or backward pass goes, layer by layer.
 *
 * With profiling on, cnnl_model_forward() and cnnl_model_backward() add the wall time of each
 * layer's work to that layer's totals (two clock reads per layer; no allocation). A layer that
 * another layer has taken over (for example a ReLU fused into the convolution before it) keeps
 * its entry and shows almost no time: its work is counted in the layer that does it.
 * @{
 */

CNNL_BEGIN_DECLS

/** One layer's totals since profiling was switched on (see cnnl_model_layer_profile()). */
typedef struct cnnl_layer_profile {
    const char *name;         /**< Layer name as given to cnnl_model_add(); owned by the model. */
    const char *kind;         /**< PyTorch class name, e.g. "Conv2d"; static storage. */
    double forward_seconds;   /**< Wall seconds in this layer's forward passes. */
    double backward_seconds;  /**< Wall seconds in its backward passes (both gradients). */
    int64_t forward_calls;    /**< Forward passes counted. */
    int64_t backward_calls;   /**< Backward passes counted. */
    int in_ndim;              /**< Dimensions of the last forward input (0 before any). */
    int64_t in_shape[4];      /**< Shape of the last forward input. */
    int out_ndim;             /**< Dimensions of the last forward output (0 before any). */
    int64_t out_shape[4];     /**< Shape of the last forward output. */
} cnnl_layer_profile;

/**
 * @brief Switch per-layer timing on or off; switching it on clears the totals.
 * @param model The model; borrowed.
 * @param on true to time every following forward and backward pass.
 * @return #CNNL_OK; #CNNL_EINVAL if @p model is NULL; #CNNL_ENOMEM if the table of totals
 *         cannot be allocated (profiling then stays off).
 */
CNNL_API cnnl_status cnnl_model_set_profiling(cnnl_model *model, bool on);

/**
 * @brief Number of layers of a model (the entries of its profile).
 * @param model The model, or NULL (0).
 * @return Layers added with cnnl_model_add(), including those fused into another layer.
 */
CNNL_API size_t cnnl_model_num_layers(const cnnl_model *model);

/**
 * @brief One layer's profile totals.
 * @param model The model; borrowed.
 * @param index Layer position, 0 .. cnnl_model_num_layers() - 1.
 * @param[out] out Receives the totals; its strings are borrowed from the model (valid until
 *             it is freed). Times are zero for a model that was never profiled.
 * @return #CNNL_OK; #CNNL_EINVAL if @p model or @p out is NULL; #CNNL_ERANGE if @p index is
 *         not a layer position.
 */
CNNL_API cnnl_status cnnl_model_layer_profile(const cnnl_model *model, size_t index, cnnl_layer_profile *out);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_PROFILE_H */
