/**
 * @file model.h
 * @brief Layers, sequential models and the report's network.
 */
#ifndef CNNLITE_MODEL_H
#define CNNLITE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "status.h"
#include "tensor.h"

/**
 * @defgroup model Layers and models
 * @brief Layers with forward, backward and train/eval behaviour, composed in a sequential model.
 *
 * Layers are created alone and then handed to a model with cnnl_model_add(), which takes
 * ownership. Each layer's parameters and buffers carry PyTorch state_dict names
 * ("features.1.weight", "features.2.running_mean", ...), built from the name given to
 * cnnl_model_add() and the layer's own suffixes. Inputs are NCHW float32 tensors; Linear takes
 * (N, features).
 *
 * A Conv2d directly followed by ReLU (and then MaxPool2d(2, 2)) is computed as one fused
 * operation; the fused layers keep their names and positions and the results are the same.
 *
 * Semantics follow PyTorch: BatchNorm2d uses batch statistics in training (biased variance for
 * normalisation, unbiased for the running variance, momentum 0.1, eps 1e-5) and running
 * statistics in evaluation; Dropout is inverted (scaled by 1/(1-p)) and active only in
 * training, with masks drawn from the model's dropout stream.
 * @{
 */

/** Opaque layer. */
typedef struct cnnl_layer cnnl_layer;
/** Opaque sequential model. */
typedef struct cnnl_model cnnl_model;

/** Element-wise (and softmax) activations. */
typedef enum cnnl_activation {
    CNNL_ACT_RELU = 0,       /**< max(0, x). */
    CNNL_ACT_LEAKY_RELU = 1, /**< x if x > 0 else slope * x (param = slope, PyTorch default 0.01). */
    CNNL_ACT_ELU = 2,        /**< x if x > 0 else alpha * (exp(x) - 1) (param = alpha, default 1). */
    CNNL_ACT_TANH = 3,       /**< tanh(x). */
    CNNL_ACT_SIGMOID = 4,    /**< 1 / (1 + exp(-x)). */
    CNNL_ACT_SOFTMAX = 5     /**< Softmax over dimension 1 (classes / channels). */
} cnnl_activation;

/** Element type of a parameter or buffer. */
typedef enum cnnl_dtype {
    CNNL_DTYPE_F32 = 0, /**< float32; the data is in cnnl_param_info::data. */
    CNNL_DTYPE_I64 = 1, /**< int64 (BatchNorm's num_batches_tracked); data in cnnl_param_info::data_i64. */
    CNNL_DTYPE_F64 = 2  /**< float64: a checkpoint's training history only, never a model or optimizer tensor. */
} cnnl_dtype;

/** Description of one named tensor of a model's state (borrowed views). */
typedef struct cnnl_param_info {
    const char *name;      /**< PyTorch state_dict name; owned by the model. */
    int ndim;              /**< Number of dimensions (0 for a scalar such as num_batches_tracked). */
    int64_t shape[4];      /**< Sizes of the first @c ndim dimensions. */
    size_t numel;          /**< Number of elements (1 for a scalar). */
    cnnl_dtype dtype;      /**< Element type. */
    float *data;           /**< F32 values (NULL for I64); owned by the model, writable. */
    int64_t *data_i64;     /**< I64 values (NULL for F32); owned by the model, writable. */
    float *grad;           /**< Gradient, same layout as data; NULL for buffers. */
    bool trainable;        /**< true for parameters, false for buffers (running statistics). */
} cnnl_param_info;

/** Options of the report's network (see cnnl_report_opts_default()). */
typedef struct cnnl_report_opts {
    int classes;     /**< Output classes (default 4). */
    int channels;    /**< Input channels (default 3). */
    int size;        /**< Input height and width, a positive multiple of 32 (default 512). */
    bool batchnorm;  /**< Insert BatchNorm2d after each convolution (default false). */
    float dropout;   /**< Dropout probability in the classifier, 0 <= p < 1 (default 0.2). */
    uint64_t seed;   /**< Seed of weight initialisation and dropout masks (default 0). */
} cnnl_report_opts;

CNNL_BEGIN_DECLS

/**
 * @brief Create a 2-D convolution (PyTorch Conv2d, square kernel, groups = 1, dilation = 1).
 * @param[out] out Receives the layer, owned by the caller until passed to cnnl_model_add().
 * @param in_channels Input channels, >= 1.
 * @param out_channels Output channels, >= 1.
 * @param kernel Kernel height and width, >= 1.
 * @param stride Stride, >= 1.
 * @param padding Zero padding on each side, >= 0.
 * @param bias Whether the layer has a bias.
 * @return #CNNL_OK, #CNNL_EINVAL for out-of-range values (message names the argument), #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_conv2d_create(cnnl_layer **out, int in_channels, int out_channels, int kernel,
                                        int stride, int padding, bool bias);

/**
 * @brief Create a max pooling layer (PyTorch MaxPool2d, no padding, floor mode).
 * @param[out] out Receives the layer.
 * @param kernel Window size, >= 1.
 * @param stride Stride, >= 1.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_maxpool2d_create(cnnl_layer **out, int kernel, int stride);

/**
 * @brief Create an average pooling layer (PyTorch AvgPool2d, no padding, floor mode).
 * @param[out] out Receives the layer.
 * @param kernel Window size, >= 1.
 * @param stride Stride, >= 1.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_avgpool2d_create(cnnl_layer **out, int kernel, int stride);

/**
 * @brief Create a batch normalisation layer over channels (PyTorch BatchNorm2d, affine,
 * momentum 0.1, eps 1e-5, tracking running statistics).
 * @param[out] out Receives the layer.
 * @param channels Number of channels, >= 1.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_batchnorm2d_create(cnnl_layer **out, int channels);

/**
 * @brief Create an inverted dropout layer.
 * @param[out] out Receives the layer.
 * @param p Probability of zeroing an element, 0 <= p < 1.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_dropout_create(cnnl_layer **out, float p);

/**
 * @brief Create a fully connected layer y = x W^T + b (PyTorch Linear).
 * @param[out] out Receives the layer.
 * @param in_features Input features, >= 1.
 * @param out_features Output features, >= 1.
 * @param bias Whether the layer has a bias.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_linear_create(cnnl_layer **out, int in_features, int out_features, bool bias);

/**
 * @brief Create a layer that flattens (N, C, H, W) to (N, C*H*W).
 * @param[out] out Receives the layer.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_flatten_create(cnnl_layer **out);

/**
 * @brief Create an activation layer.
 * @param[out] out Receives the layer.
 * @param kind The function.
 * @param param Slope for #CNNL_ACT_LEAKY_RELU, alpha for #CNNL_ACT_ELU; ignored otherwise.
 * @return #CNNL_OK, #CNNL_EINVAL for an unknown kind or a non-finite @p param, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_activation_create(cnnl_layer **out, cnnl_activation kind, float param);

/**
 * @brief Release a layer that was not added to a model. NULL is accepted.
 * @param layer The layer, or NULL. Never free a layer a model owns.
 */
CNNL_API void cnnl_layer_free(cnnl_layer *layer);

/**
 * @brief Create an empty sequential model (in training mode).
 * @param[out] out Receives the model, owned by the caller (cnnl_model_free()).
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_create(cnnl_model **out);

/**
 * @brief Release a model and every layer it owns. NULL is accepted.
 * @param model The model, or NULL.
 */
CNNL_API void cnnl_model_free(cnnl_model *model);

/**
 * @brief Append a layer. The model takes ownership of @p layer in every case: on failure the
 * layer is freed.
 * @param model The model.
 * @param name Prefix of the layer's state names (e.g. "features.1"); NULL uses the layer's
 *             index. Copied.
 * @param layer The layer to append.
 * @return #CNNL_OK, #CNNL_EINVAL (NULL arguments, duplicate name), #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_add(cnnl_model *model, const char *name, cnnl_layer *layer);

/**
 * @brief (Re)initialise every parameter as PyTorch does by default (kaiming-uniform with
 * a = sqrt(5) for weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases, ones and zeros for
 * BatchNorm) from the #CNNL_RNG_INIT stream of @p seed, reset running statistics, and seed
 * the dropout stream with @p seed.
 * @param model The model.
 * @param seed The seed.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_model_init(cnnl_model *model, uint64_t seed);

/**
 * @brief Switch between training (batch statistics, dropout on) and evaluation.
 * @param model The model.
 * @param training true for training mode.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_model_set_training(cnnl_model *model, bool training);

/**
 * @brief Whether the model is in training mode.
 * @param model The model (NULL gives false).
 * @return The mode.
 */
CNNL_API bool cnnl_model_is_training(const cnnl_model *model);

/** Arithmetic precision of the convolutions. */
typedef enum cnnl_precision {
    CNNL_PRECISION_FP32 = 0, /**< float32 everywhere (the default). */
    CNNL_PRECISION_BF16 = 1  /**< bfloat16 inputs and weights inside the convolutions, float32
                                  accumulation, outputs, master weights and optimizer. */
} cnnl_precision;

/**
 * Choose the precision of the model's convolutions for the following forward and backward
 * passes. bfloat16 needs the oneDNN engine and a CPU with AVX512_BF16 or AMX; there is no
 * slower fallback.
 * @param model the model (borrowed).
 * @param precision CNNL_PRECISION_FP32 or CNNL_PRECISION_BF16.
 * @return CNNL_OK; CNNL_EINVAL for a NULL model or an unknown value; CNNL_EUNSUPPORTED when
 *         bfloat16 is asked for and this build (no oneDNN, or `CNNLITE_CONV_ENGINE=portable`)
 *         or this CPU (no AVX512_BF16/AMX, or `ONEDNN_MAX_CPU_ISA` below them) cannot run it;
 *         the model is then unchanged.
 */
CNNL_API cnnl_status cnnl_model_set_precision(cnnl_model *model, cnnl_precision precision);

/**
 * @brief How fast this CPU runs bfloat16 dot products against float32 multiply-adds.
 *
 * bfloat16 convolutions (#CNNL_PRECISION_BF16) run on AVX512_BF16's VDPBF16PS, or on AMX tiles
 * where oneDNN has them. One 512-bit VDPBF16PS does 64 flops, twice a float32 FMA; it pays
 * only on CPUs that issue it as often as the FMA. The first call measures both rates on the
 * calling thread's core (register-only kernels with enough independent chains that latency
 * does not bound them, the best of several short runs each, a few milliseconds in all) and
 * keeps the result for the process; later calls return it at once. Thread-safe: concurrent
 * first calls wait for the one measurement.
 *
 * Typical ratios: about 2 where VDPBF16PS issues at the FMA's rate (AMD Zen 4 and Zen 5),
 * below 1 on Intel Xeons without AMX, which issue it far less often than the FMA (0.50 on
 * one). A ratio below about 1.2 without AMX means bfloat16 convolutions cannot be faster than
 * float32 ones (they also convert their inputs and weights): the programs print a note then.
 *
 * The limits of the library's instruction sets apply: `CNNLITE_ISA=avx2` or `sse2` (the
 * library's own kernels) and, in builds with oneDNN, `ONEDNN_MAX_CPU_ISA` below
 * AVX512_CORE_BF16 (read by oneDNN once per process) make it CNNL_EUNSUPPORTED, as if the CPU
 * had no AVX512_BF16. The convolution engine (`CNNLITE_CONV_ENGINE`) does not matter.
 *
 * @param[out] ratio receives the bfloat16 flop rate of VDPBF16PS divided by the float32 flop
 *             rate of 512-bit FMAs on one core (> 0 and finite); 0 on any error. Not NULL.
 * @param[out] amx receives true when oneDNN runs bfloat16 convolutions on AMX tiles on this
 *             CPU (the ratio then does not bound their speed), false otherwise and on any
 *             error. May be NULL.
 * @return CNNL_OK; CNNL_EINVAL when @p ratio is NULL; CNNL_EUNSUPPORTED when the CPU has no
 *         AVX512_BF16 (or is not x86-64), or an instruction-set limit above excludes it;
 *         CNNL_ENUMERIC when the timing gave no usable figure (then later calls fail too).
 *         Nothing is allocated; the caller owns nothing.
 */
CNNL_API cnnl_status cnnl_bf16_speed_ratio(double *ratio, bool *amx);

/**
 * @brief Run the model forward on a batch.
 * @param model The model.
 * @param input Input batch; borrowed, must stay unchanged until cnnl_model_backward() (and
 *              cnnl_model_input_grad(), if called) of this pass.
 * @param[out] output Receives the output (e.g. logits (N, classes)); borrowed from the model,
 *             valid until the next forward call or cnnl_model_free().
 * @return #CNNL_OK; #CNNL_EINVAL (NULL arguments, empty model); #CNNL_ESHAPE if the input does
 *         not fit a layer (the message names the layer and both shapes); #CNNL_ENUMERIC if an
 *         activation became non-finite; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_forward(cnnl_model *model, const cnnl_tensor *input, const cnnl_tensor **output);

/**
 * @brief Back-propagate the gradient of a loss with respect to the last forward output,
 * accumulating parameter gradients (add, as PyTorch does; clear them with cnnl_model_zero_grad()).
 * @param model The model, after cnnl_model_forward().
 * @param grad_output Gradient with the shape of the last output; borrowed.
 * @return #CNNL_OK; #CNNL_ESTATE if there was no forward pass; #CNNL_ESHAPE; #CNNL_ENUMERIC if
 *         a gradient became non-finite; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_backward(cnnl_model *model, const cnnl_tensor *grad_output);

/**
 * @brief Gradient with respect to the input of the last backward pass.
 *
 * cnnl_model_backward() stops at the first layer with parameters, since nothing else needs
 * the gradient below it; the first call of this function after a backward pass computes the
 * rest (the forward input must still be unchanged). Parameter gradients are not touched.
 * @param model The model.
 * @param[out] grad_input Receives a borrowed tensor, valid until the next forward or backward.
 * @return #CNNL_OK, #CNNL_ESTATE if there was no backward pass since the last forward,
 *         #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_input_grad(cnnl_model *model, const cnnl_tensor **grad_input);

/**
 * @brief Set every parameter gradient to zero.
 * @param model The model.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_model_zero_grad(cnnl_model *model);

/**
 * @brief Number of trainable scalars (PyTorch's sum of p.numel() over parameters()).
 * @param model The model (NULL gives 0).
 * @return The count.
 */
CNNL_API size_t cnnl_model_num_params(const cnnl_model *model);

/**
 * @brief Number of named state tensors: parameters and buffers, in state_dict order.
 * @param model The model (NULL gives 0).
 * @return The count.
 */
CNNL_API size_t cnnl_model_state_count(const cnnl_model *model);

/**
 * @brief Describe the @p index-th state tensor (state_dict order).
 * @param model The model.
 * @param index 0..cnnl_model_state_count()-1.
 * @param[out] info Receives borrowed views, valid until the model is freed.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ERANGE for a bad index.
 */
CNNL_API cnnl_status cnnl_model_state_at(cnnl_model *model, size_t index, cnnl_param_info *info);

/**
 * @brief Find a state tensor by its state_dict name.
 * @param model The model.
 * @param name The name, e.g. "classifier.4.bias".
 * @param[out] info Receives borrowed views.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOTFOUND.
 */
CNNL_API cnnl_status cnnl_model_state_find(cnnl_model *model, const char *name, cnnl_param_info *info);

/**
 * @brief The dropout generator's state (for checkpoints).
 * @param model The model.
 * @param[out] state Four words.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_model_get_rng_state(const cnnl_model *model, uint64_t state[4]);

/**
 * @brief Restore the dropout generator's state.
 * @param model The model.
 * @param state Four words from cnnl_model_get_rng_state().
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_model_set_rng_state(cnnl_model *model, const uint64_t state[4]);

/**
 * @brief The report network's default options: 4 classes, 3 channels, 512x512, no batch
 * norm, dropout 0.2, seed 0.
 * @return The options.
 */
CNNL_API cnnl_report_opts cnnl_report_opts_default(void);

/**
 * @brief Build and initialise the report's network (REPORT.md): AvgPool2d(2), four blocks of
 * Conv2d(3x3, pad 1) [BatchNorm2d] ReLU MaxPool2d(2), then Flatten Dropout Linear(.,128) ReLU
 * Dropout Linear(128, classes), with PyTorch's state_dict names.
 * @param[out] out Receives the model, owned by the caller.
 * @param opts Options; NULL means cnnl_report_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL naming the bad option (e.g. a size that is not a multiple of
 *         32); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_report_net_create(cnnl_model **out, const cnnl_report_opts *opts);

/**
 * @brief Options of a model made by cnnl_report_net_create().
 * @param model The model.
 * @param[out] opts Receives the options.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOTFOUND if the model was assembled by hand.
 */
CNNL_API cnnl_status cnnl_model_report_opts(const cnnl_model *model, cnnl_report_opts *opts);

/**
 * @brief Build and initialise a model from an architecture description (JSON, PyTorch's
 * vocabulary; see docs/architecture.md and examples/nets/):
 * `{"input": [C, H, W], "layers": [{"type": "Conv2d", "out_channels": 16, "kernel_size": 3}, ...]}`.
 *
 * Types: Conv2d (out_channels, kernel_size, stride, padding, bias), BatchNorm2d (eps, momentum),
 * MaxPool2d and AvgPool2d (kernel_size, stride), AdaptiveAvgPool2d (output_size 1), Flatten,
 * Dropout (p), Linear (out_features, bias), ReLU, LeakyReLU (negative_slope), ELU (alpha),
 * Tanh, Sigmoid, Softmax, Sequential (layers) and Residual (layers whose output is added to
 * their input). Any layer may carry a "name" (letters, digits, '_') used instead of its index
 * in state names. Absent options take PyTorch's defaults; input channels and features are
 * inferred. State names are those of the equivalent torch.nn.Sequential, a Residual holding
 * its layers as "body": "0.weight", "3.body.0.weight", "features.1.bias".
 *
 * The whole description is checked before anything is allocated.
 * @param[out] out Receives the model (training mode), owned by the caller (cnnl_model_free()).
 * @param json NUL-terminated description; borrowed.
 * @param seed Seed of the weight initialisation and dropout masks (as cnnl_model_init()).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_EFORMAT for an invalid description,
 *         with a message naming the layer's position (e.g. "layers[3].layers[0] (Conv2d)") and
 *         the option; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_from_json(cnnl_model **out, const char *json, uint64_t seed);

/**
 * @brief cnnl_model_from_json() on the contents of a file (at most 4 MiB).
 * @param[out] out Receives the model, owned by the caller.
 * @param path The description file.
 * @param seed Initialisation seed.
 * @return As cnnl_model_from_json(), with messages starting with @p path; #CNNL_EIO when the
 *         file cannot be read.
 */
CNNL_API cnnl_status cnnl_model_from_json_file(cnnl_model **out, const char *path, uint64_t seed);

/**
 * @brief The model's description in canonical form (every option explicit, no spaces): what
 * cnnl_model_from_json() reads back into the same network.
 * @param model The model.
 * @param[out] json Receives a NUL-terminated string borrowed from the model (valid until
 *             cnnl_model_free()); NULL on failure.
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_ENOTFOUND for a model assembled with cnnl_model_add().
 */
CNNL_API cnnl_status cnnl_model_to_json(const cnnl_model *model, const char **json);

/**
 * @brief Input shape of one sample (channels, height, width) of a model built from a description.
 * @param model The model.
 * @param[out] shape Receives C, H, W.
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_ENOTFOUND for a model assembled with cnnl_model_add().
 */
CNNL_API cnnl_status cnnl_model_input_shape(const cnnl_model *model, int64_t shape[3]);

/**
 * @brief Number of outputs (classes) of a model built from a description or by
 * cnnl_report_net_create(): the features of its flat output.
 * @param model The model (NULL gives 0).
 * @return The count; 0 when unknown (a model assembled layer by layer, or an output that is
 *         not flat).
 */
CNNL_API size_t cnnl_model_num_outputs(const cnnl_model *model);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_MODEL_H */
