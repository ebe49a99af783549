/**
 * @file loss.h
 * @brief Loss functions and their input gradients, as PyTorch defines them.
 */
#ifndef CNNLITE_LOSS_H
#define CNNLITE_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "status.h"
#include "tensor.h"

/**
 * @defgroup loss Losses
 * @brief Loss value and gradient with respect to the input in one call.
 *
 * Class-target losses take an (N, C) input and N class indices; dense losses take an input and
 * a target of the same shape. With #CNNL_REDUCE_MEAN the value is PyTorch's default reduction
 * (KL divergence: 'batchmean'); with #CNNL_REDUCE_SUM it is the sum over the batch.
 * @{
 */

/** Loss functions. */
typedef enum cnnl_loss_kind {
    CNNL_LOSS_CROSS_ENTROPY = 0, /**< CrossEntropyLoss from logits, class targets. */
    CNNL_LOSS_HINGE = 1,         /**< MultiMarginLoss (p = 1, margin = 1), class targets. */
    CNNL_LOSS_MSE = 2,           /**< MSELoss, dense targets. */
    CNNL_LOSS_KL_DIV = 3,        /**< KLDivLoss on log-probabilities, probability targets, 'batchmean'. */
    CNNL_LOSS_COSINE = 4         /**< CosineEmbeddingLoss with target 1: mean over rows of 1 - cos(x, y). */
} cnnl_loss_kind;

/** Reduction over the batch. */
typedef enum cnnl_reduction {
    CNNL_REDUCE_MEAN = 0, /**< PyTorch's default ('mean'; 'batchmean' for KL). */
    CNNL_REDUCE_SUM = 1   /**< Sum. */
} cnnl_reduction;

CNNL_BEGIN_DECLS

/**
 * @brief Loss with class-index targets (cross-entropy, hinge) and its gradient.
 * @param kind #CNNL_LOSS_CROSS_ENTROPY or #CNNL_LOSS_HINGE.
 * @param input Logits (N, C); borrowed.
 * @param labels N class indices in [0, C); borrowed.
 * @param n Number of labels; must equal N.
 * @param reduction Mean or sum.
 * @param[out] loss Receives the loss value.
 * @param grad Optional (may be NULL): a tensor with as many elements as @p input, receives
 *             d loss / d input. Owned by the caller; must not share storage with @p input.
 * @return #CNNL_OK; #CNNL_EINVAL (NULL arguments, wrong kind, unknown reduction); #CNNL_ESHAPE
 *         (input not 2-D, @p n differs from N, gradient size differs); #CNNL_ERANGE for a label
 *         outside [0, C) (the message gives its position and value); #CNNL_ENUMERIC if the input
 *         holds a non-finite value (the message gives its position) or the loss overflows.
 *         On failure @p loss is unchanged and the contents of @p grad are unspecified.
 */
CNNL_API cnnl_status cnnl_loss_class(cnnl_loss_kind kind, const cnnl_tensor *input, const int32_t *labels,
                                     size_t n, cnnl_reduction reduction, float *loss, cnnl_tensor *grad);

/**
 * @brief Loss with a dense target (MSE, KL divergence, cosine) and its gradient.
 *
 * MSE averages over all elements; KL ('batchmean') and cosine average over the N rows. KL
 * follows PyTorch's sum of target * (log target - input), a zero target contributing 0.
 * Cosine uses PyTorch's cos = <x, y> / sqrt((|x|^2 + 1e-12)(|y|^2 + 1e-12)).
 * @param kind #CNNL_LOSS_MSE, #CNNL_LOSS_KL_DIV or #CNNL_LOSS_COSINE.
 * @param input Prediction; (N, D) for cosine, (N, ...) for KL, any shape for MSE; borrowed.
 * @param target Same shape as @p input (KL: probabilities, >= 0); borrowed.
 * @param reduction Mean or sum.
 * @param[out] loss Receives the loss value.
 * @param grad Optional (may be NULL) tensor with as many elements as @p input, receives
 *             d loss / d input. Owned by the caller; must not share storage with @p input.
 * @return #CNNL_OK; #CNNL_EINVAL (NULL arguments, wrong kind, unknown reduction);
 *         #CNNL_ESHAPE (target shape differs, cosine input not 2-D, gradient size differs);
 *         #CNNL_ENUMERIC if the input or target holds a non-finite value, a KL target is
 *         negative, or the loss overflows. On failure @p loss is unchanged and the contents of
 *         @p grad are unspecified.
 */
CNNL_API cnnl_status cnnl_loss_dense(cnnl_loss_kind kind, const cnnl_tensor *input, const cnnl_tensor *target,
                                     cnnl_reduction reduction, float *loss, cnnl_tensor *grad);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_LOSS_H */
