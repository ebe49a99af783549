/**
 * @file explain.h
 * @brief Grad-CAM class-activation maps: where in an image a model looked for its decision.
 */
#ifndef CNNLITE_EXPLAIN_H
#define CNNLITE_EXPLAIN_H

#include <stddef.h>

#include "export.h"
#include "model.h"
#include "status.h"
#include "tensor.h"

/**
 * @defgroup explain Explanations
 * @brief Grad-CAM (Selvaraju et al., 2017) on any model with a convolution.
 *
 * For a class c and a layer with output A (channels k, h x w), Grad-CAM weighs each channel by
 * the spatial mean of d score_c / d A_k and keeps the positive part of the weighted sum:
 * L = ReLU(sum_k alpha_k A_k). The map is scaled to the input's size (bilinear) and to [0, 1]
 * by its maximum. The default layer is the last convolution; in a model whose convolutions
 * are fused with the following batch norm, ReLU and 2x2 max pool (see cnnl_model_add()), its
 * output is that block's pooled activation.
 * @{
 */

/** What cnnl_gradcam() found besides the map. */
typedef struct cnnl_gradcam_info {
    int predicted;       /**< Class with the largest score. */
    float probability;   /**< Softmax probability of the predicted class. */
    int target;          /**< Class the map explains. */
    float target_probability; /**< Softmax probability of the target class. */
    int map_height;      /**< Height of the layer's output (before scaling). */
    int map_width;       /**< Width of the layer's output. */
    float raw_max;       /**< Largest value of the map before scaling to [0, 1] (0: nothing
                              spoke for the class; the map is then all 0). */
} cnnl_gradcam_info;

CNNL_BEGIN_DECLS

/**
 * @brief Grad-CAM map of one image.
 *
 * Runs the model in evaluation mode (its mode is restored afterwards), then a backward pass of
 * the target class's score; parameter gradients are cleared again before returning.
 * @param model The model, with at least one Conv2d layer; borrowed.
 * @param image One image, (1, C, H, W), prepared as in training (cnnl_image_load()); borrowed.
 * @param layer Name of the layer whose output is explained (as in the state names, e.g.
 *        "features.8"), or NULL for the last Conv2d.
 * @param target Class to explain, or -1 for the predicted one.
 * @param[out] heatmap Room for H * W floats (caller-owned), receives the map in [0, 1], row-major.
 * @param[out] info Receives the prediction and map details (may be NULL).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p model / @p image / @p heatmap, a batch other than
 *         1, a model without Conv2d, an unknown @p layer, a layer without a 4-D output or the
 *         last layer, or @p target out of range; #CNNL_ESTATE if the model's output is not
 *         (1, classes); any error of the forward or backward pass.
 */
CNNL_API cnnl_status cnnl_gradcam(cnnl_model *model, const cnnl_tensor *image, const char *layer, int target,
                                  float *heatmap, cnnl_gradcam_info *info);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_EXPLAIN_H */
