/**
 * @file optim.h
 * @brief Adam, AdamW and SGD with torch.optim's update rules.
 */
#ifndef CNNLITE_OPTIM_H
#define CNNLITE_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "export.h"
#include "model.h"
#include "status.h"

/**
 * @brief The largest step count an optimizer takes (2^53: Adam's bias corrections use the
 * count as an exact double). cnnl_optimizer_step() refuses a step beyond it with #CNNL_ERANGE.
 */
#define CNNL_OPTIMIZER_MAX_STEPS INT64_C(9007199254740992)

/**
 * @defgroup optim Optimizers
 * @brief Update a model's trainable parameters from their gradients.
 *
 * An optimizer is bound to one model and keeps per-parameter state (moments, momentum
 * buffers) for the trainable parameters the model has when the optimizer is created. Before
 * updating, a step checks every gradient: if one is non-finite it returns #CNNL_ENUMERIC and
 * changes nothing.
 *
 * The updates follow torch.optim (PyTorch 1.13, single-tensor path) operation by operation:
 * - Adam: g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * - AdamW: p *= 1 - lr wd first, and no decay term in g.
 * - SGD: d = g + wd p; with momentum, buf = d on the first step and
 *   buf = momentum buf + (1 - dampening) d afterwards; d = d + momentum buf (Nesterov) or buf;
 *   p -= lr d.
 *
 * The options are doubles, like the Python floats PyTorch takes: the per-step factors
 * (1 - b1, 1 - b2, the bias corrections, lr / (1 - b1^t), 1 - lr wd, 1 - dampening) are
 * computed in double from them and rounded to float once, as PyTorch does, so that options
 * written as the same decimals give the same float32 updates. (A value passed through a float
 * first, such as 0.999f, is a different number: 1 - 0.999f is 1.3e-5 smaller, relatively,
 * than 1 - 0.999.)
 * Options and learning rates must lie within float range (magnitude at most FLT_MAX).
 * An optimizer is not thread-safe; the update itself runs on the library's threads, with
 * results that do not depend on the thread count.
 * @{
 */

/** Opaque optimizer. */
typedef struct cnnl_optimizer cnnl_optimizer;

/** Adam / AdamW options (torch.optim.Adam and AdamW). */
typedef struct cnnl_adam_opts {
    double lr;           /**< Learning rate, finite and >= 0 (default 1e-3). */
    double beta1;        /**< First-moment decay, in [0, 1) (default 0.9). */
    double beta2;        /**< Second-moment decay, in [0, 1) (default 0.999). */
    double eps;          /**< Denominator term, finite and >= 0 (default 1e-8). */
    double weight_decay; /**< L2 penalty added to the gradient (Adam) or decoupled decay (AdamW), finite and >= 0; default 0. */
    bool decoupled;      /**< true: AdamW (p -= lr * wd * p before the Adam update). */
} cnnl_adam_opts;

/** SGD options (torch.optim.SGD). */
typedef struct cnnl_sgd_opts {
    double lr;           /**< Learning rate, finite and >= 0 (default 0.01). */
    double momentum;     /**< Momentum factor, finite and >= 0 (default 0). */
    double dampening;    /**< Dampening of momentum, finite (default 0). */
    double weight_decay; /**< L2 penalty, finite and >= 0 (default 0). */
    bool nesterov;       /**< Nesterov momentum (needs momentum > 0 and dampening 0). */
} cnnl_sgd_opts;

CNNL_BEGIN_DECLS

/**
 * @brief Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
 * @return The options.
 */
CNNL_API cnnl_adam_opts cnnl_adam_opts_default(void);

/**
 * @brief SGD defaults: lr 0.01, no momentum, no weight decay.
 * @return The options.
 */
CNNL_API cnnl_sgd_opts cnnl_sgd_opts_default(void);

/**
 * @brief Create an Adam or AdamW optimizer for @p model's trainable parameters.
 * @param[out] out Receives the optimizer, owned by the caller (cnnl_optimizer_free()). It
 *             borrows @p model, which must outlive it.
 * @param model The model.
 * @param opts Options; NULL means cnnl_adam_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL naming a bad option (negative lr, beta outside [0, 1), ...); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_optimizer_adam(cnnl_optimizer **out, cnnl_model *model, const cnnl_adam_opts *opts);

/**
 * @brief Create an SGD optimizer for @p model's trainable parameters.
 * @param[out] out Receives the optimizer, owned by the caller. Borrows @p model.
 * @param model The model.
 * @param opts Options; NULL means cnnl_sgd_opts_default().
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_optimizer_sgd(cnnl_optimizer **out, cnnl_model *model, const cnnl_sgd_opts *opts);

/**
 * @brief Release an optimizer. NULL is accepted.
 * @param opt The optimizer, or NULL.
 */
CNNL_API void cnnl_optimizer_free(cnnl_optimizer *opt);

/**
 * @brief Apply one update from the current gradients.
 * @param opt The optimizer.
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_ENUMERIC if a gradient is non-finite (the message names
 *         the parameter; nothing is changed).
 */
CNNL_API cnnl_status cnnl_optimizer_step(cnnl_optimizer *opt);

/**
 * @brief Zero the gradients of the optimizer's model.
 * @param opt The optimizer.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_optimizer_zero_grad(cnnl_optimizer *opt);

/**
 * @brief Change the learning rate for the following steps.
 * @param opt The optimizer.
 * @param lr New learning rate, finite and >= 0.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p opt or a bad rate (the rate is then unchanged).
 */
CNNL_API cnnl_status cnnl_optimizer_set_lr(cnnl_optimizer *opt, double lr);

/**
 * @brief The current learning rate.
 * @param opt The optimizer (NULL gives 0).
 * @return The learning rate, exactly as given to the constructor or cnnl_optimizer_set_lr().
 */
CNNL_API double cnnl_optimizer_get_lr(const cnnl_optimizer *opt);

/**
 * @brief Number of steps taken (Adam's bias-correction step count).
 * @param opt The optimizer (NULL gives 0).
 * @return The count.
 */
CNNL_API int64_t cnnl_optimizer_step_count(const cnnl_optimizer *opt);

/**
 * @brief Number of state tensors (e.g. Adam: exp_avg and exp_avg_sq per parameter).
 * @param opt The optimizer (NULL gives 0).
 * @return The count.
 */
CNNL_API size_t cnnl_optimizer_state_count(const cnnl_optimizer *opt);

/**
 * @brief Describe the @p index-th state tensor, for checkpoints. Names are
 * "<param name>.exp_avg", "<param name>.exp_avg_sq" or "<param name>.momentum_buffer".
 * @param opt The optimizer.
 * @param index 0..cnnl_optimizer_state_count()-1.
 * @param[out] info Receives borrowed, writable views (grad is NULL, trainable false), valid
 *             until the optimizer is freed; shape as the parameter's.
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ERANGE.
 */
CNNL_API cnnl_status cnnl_optimizer_state_at(cnnl_optimizer *opt, size_t index, cnnl_param_info *info);

/**
 * @brief Restore the step count (with the state tensors, resumes a run exactly). SGD treats
 * its momentum buffers as initialised once the count is above 0.
 * @param opt The optimizer.
 * @param steps Steps taken, 0..#CNNL_OPTIMIZER_MAX_STEPS.
 * @return #CNNL_OK, #CNNL_EINVAL for a NULL @p opt or a negative count, #CNNL_ERANGE for a
 *         count above #CNNL_OPTIMIZER_MAX_STEPS (the optimizer is unchanged on error).
 */
CNNL_API cnnl_status cnnl_optimizer_set_step_count(cnnl_optimizer *opt, int64_t steps);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_OPTIM_H */
