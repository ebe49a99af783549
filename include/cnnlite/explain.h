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
 * @brief Grad-CAM (Selvaraju et al., 2017) and HiResCAM (Draelos and Carin, 2020) on any model
 *        with a convolution.
 *
 * For a class c and a layer with output A (channels k, h x w), the map is the positive part of
 * a gradient-weighted sum of the channels. By default (#CNNL_CAM_ELEMENTWISE, HiResCAM) each
 * position's activation is weighed by the gradient at that position:
 * L = ReLU(sum_k dS_c/dA_k * A_k). The original Grad-CAM (#CNNL_CAM_CHANNEL_MEAN) weighs each
 * channel by the spatial mean of its gradient: L = ReLU(sum_k mean(dS_c/dA_k) A_k). Both are
 * the same when a global average pool follows the layer; after a Flatten + Linear head (the
 * report network) each position has its own weights, and their mean mixes positions that speak
 * for the class with positions that speak against it: on the synthetic set, the element-wise
 * map put its peak inside the planted tumour far more often (see tests/train/test_gradcam.c).
 *
 * The map is scaled to the input's size (bilinear with pixel centres aligned, as the OpenCV
 * resize of common Grad-CAM code) and to [0, 1] by its maximum. Its peak can only be
 * as precise as the layer's cells: a 4x4 map (the last block of the report network at 128x128)
 * places it at one of 16 points. So the default layer is the output of the deepest
 * convolution block (the Conv2d with the BatchNorm2d, ReLU and MaxPool2d layers after it;
 * fused blocks give their pooled output) whose map has at least
 * cnnl_gradcam_opts::min_map cells per side (default #CNNL_GRADCAM_MIN_MAP, 16): for the
 * report network at 512x512 its last block (16x16), at 256x256 its third block (16x16), at
 * 128x128 its second (16x16). min_map 1 always takes the last block.
 * @{
 */

/** Default of cnnl_gradcam_opts::min_map: map cells per side of the default layer. */
#define CNNL_GRADCAM_MIN_MAP 16

/** How the gradient weighs a layer's channels (see @ref explain). */
typedef enum cnnl_cam_weighting {
    CNNL_CAM_ELEMENTWISE = 0, /**< Gradient times activation at each position, summed over
                                   channels (HiResCAM; the default). */
    CNNL_CAM_CHANNEL_MEAN = 1 /**< Spatial mean of each channel's gradient times the channel
                                   (the original Grad-CAM). */
} cnnl_cam_weighting;

/** Options of cnnl_gradcam_ex() (see cnnl_gradcam_opts_default()). */
typedef struct cnnl_gradcam_opts {
    const char *layer;            /**< Name of the layer whose output is explained (as in the state
                                       names, e.g. "features.8"), or NULL (default) for the default
                                       layer described in @ref explain. Borrowed. */
    int target;                   /**< Class to explain, or -1 (default) for the predicted one. */
    cnnl_cam_weighting weighting; /**< #CNNL_CAM_ELEMENTWISE (default) or #CNNL_CAM_CHANNEL_MEAN. */
    int min_map;                  /**< Without @c layer: the deepest convolution block whose map has
                                       at least this many cells per side (>= 1; default
                                       #CNNL_GRADCAM_MIN_MAP); if none has, the block with the
                                       largest map. */
} cnnl_gradcam_opts;

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
    const char *layer;   /**< Name of the layer explained; owned by the model, valid while it
                              lives. */
} cnnl_gradcam_info;

CNNL_BEGIN_DECLS

/**
 * @brief Default Grad-CAM options: default layer, predicted class, element-wise weighting,
 *        min_map #CNNL_GRADCAM_MIN_MAP.
 * @return The options by value; nothing to free.
 */
CNNL_API cnnl_gradcam_opts cnnl_gradcam_opts_default(void);

/**
 * @brief Class-activation map of one image (see @ref explain).
 *
 * Runs the model in evaluation mode (its mode is restored afterwards), then a backward pass of
 * the target class's score; parameter gradients are cleared again before returning. Allocates
 * one map of the layer's size per call and frees it.
 * @param model The model, with at least one Conv2d layer; borrowed.
 * @param image One image, (1, C, H, W), prepared as in training (cnnl_image_load()); borrowed.
 * @param opts Options, or NULL for cnnl_gradcam_opts_default(); borrowed.
 * @param[out] heatmap Room for H * W floats (caller-owned), receives the map in [0, 1], row-major.
 * @param[out] info Receives the prediction and map details (may be NULL).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p model / @p image / @p heatmap, a batch other than
 *         1, a model without Conv2d, an unknown layer, a layer without a 4-D output or the
 *         last layer, a target below -1 or out of range, an unknown weighting or min_map < 1;
 *         #CNNL_ESTATE if the model's output is not (1, classes); any error of the forward or
 *         backward pass. Messages start with "cnnl_gradcam".
 */
CNNL_API cnnl_status cnnl_gradcam_ex(cnnl_model *model, const cnnl_tensor *image, const cnnl_gradcam_opts *opts,
                                     float *heatmap, cnnl_gradcam_info *info);

/**
 * @brief Class-activation map of one image with the default options but @p layer and @p target
 *        (cnnl_gradcam_ex()).
 * @param model The model, with at least one Conv2d layer; borrowed.
 * @param image One image, (1, C, H, W), prepared as in training (cnnl_image_load()); borrowed.
 * @param layer Name of the layer whose output is explained (e.g. "features.8"), or NULL for the
 *        default layer (see @ref explain); borrowed.
 * @param target Class to explain, or -1 for the predicted one.
 * @param[out] heatmap Room for H * W floats (caller-owned), receives the map in [0, 1], row-major.
 * @param[out] info Receives the prediction and map details (may be NULL).
 * @return As cnnl_gradcam_ex().
 */
CNNL_API cnnl_status cnnl_gradcam(cnnl_model *model, const cnnl_tensor *image, const char *layer, int target,
                                  float *heatmap, cnnl_gradcam_info *info);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_EXPLAIN_H */
