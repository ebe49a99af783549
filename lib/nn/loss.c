/*
 * Loss functions with their input gradients, defined as torch.nn's losses are.
 *
 * Values and gradients are accumulated in double and rounded once: the losses are cheap next
 * to the network, and this keeps their error far below the float32 noise of the layers.
 */
#include <math.h>
#include <stdbool.h>

#include "cnnlite/loss.h"
#include "core/internal.h"
#include "core/tensor_impl.h"

/* PyTorch's cosine_embedding_loss adds this to both squared norms (EPSILON in Loss.cpp). */
#define COSINE_EPS 1e-12

/* Index of the first non-finite value, or n. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

static cnnl_status check_finite(const char *who, const char *what, const cnnl_tensor *t)
{
    size_t bad = first_non_finite(t->data, t->numel);
    if (bad < t->numel)
        return cnnl__error(CNNL_ENUMERIC, "%s: %s holds a non-finite value (%g) at element %zu", who, what,
                           (double)t->data[bad], bad);
    return CNNL_OK;
}

static cnnl_status check_reduction(const char *who, cnnl_reduction reduction)
{
    if (reduction != CNNL_REDUCE_MEAN && reduction != CNNL_REDUCE_SUM)
        return cnnl__error(CNNL_EINVAL, "%s: unknown reduction %d", who, (int)reduction);
    return CNNL_OK;
}

static cnnl_status check_grad(const char *who, const cnnl_tensor *input, const cnnl_tensor *grad)
{
    if (grad && grad->numel != input->numel)
        return cnnl__error(CNNL_ESHAPE, "%s: gradient has %zu elements; the input has %zu", who, grad->numel,
                           input->numel);
    return CNNL_OK;
}

static cnnl_status finish(const char *who, double total, float *loss)
{
    if (!isfinite(total) || !isfinite((float)total))
        return cnnl__error(CNNL_ENUMERIC, "%s: the loss is not finite (%g)", who, total);
    *loss = (float)total;
    return CNNL_OK;
}

/* ---- class-index losses ---------------------------------------------------------------- */

/* Cross-entropy of one row of logits: logsumexp(x) - x[y], max-shifted so exp cannot overflow.
 * d/dx_j = softmax(x)_j - [j == y]. */
static double cross_entropy_row(const float *x, int64_t c, int32_t y, float *g, double scale)
{
    double m = x[0];
    for (int64_t j = 1; j < c; j++)
        if (x[j] > m)
            m = x[j];
    double s = 0.0;
    for (int64_t j = 0; j < c; j++)
        s += exp((double)x[j] - m);
    double lse = m + log(s);
    if (g)
        for (int64_t j = 0; j < c; j++)
            g[j] = (float)(scale * (exp((double)x[j] - m) / s - (j == y ? 1.0 : 0.0)));
    return lse - (double)x[y];
}

/* MultiMarginLoss (p = 1, margin = 1) of one row: sum_{j != y} max(0, 1 - x_y + x_j) / C.
 * A positive term adds 1/C to d/dx_j and subtracts it from d/dx_y (PyTorch's backward counts
 * only strictly positive terms). */
static double hinge_row(const float *x, int64_t c, int32_t y, float *g, double scale)
{
    double sum = 0.0, gy = 0.0, unit = scale / (double)c;
    for (int64_t j = 0; j < c; j++) {
        if (j == y)
            continue;
        double z = 1.0 - (double)x[y] + (double)x[j];
        bool active = z > 0.0;
        if (active) {
            sum += z;
            gy -= unit;
        }
        if (g)
            g[j] = active ? (float)unit : 0.0f;
    }
    if (g)
        g[y] = (float)gy;
    return sum / (double)c;
}

static cnnl_status check_labels(const char *who, const int32_t *labels, size_t n, int64_t c)
{
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (int64_t)labels[i] >= c)
            return cnnl__error(CNNL_ERANGE, "%s: label %d at position %zu is outside [0, %lld)", who,
                               (int)labels[i], i, (long long)c);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_loss_class(cnnl_loss_kind kind, const cnnl_tensor *input, const int32_t *labels,
                                     size_t n, cnnl_reduction reduction, float *loss, cnnl_tensor *grad)
{
    static const char who[] = "cnnl_loss_class";
    if (!input || !labels || !loss)
        return cnnl__error(CNNL_EINVAL, "%s: %s is NULL", who, !input ? "input" : !labels ? "labels" : "loss");
    if (kind != CNNL_LOSS_CROSS_ENTROPY && kind != CNNL_LOSS_HINGE)
        return cnnl__error(CNNL_EINVAL, "%s: loss kind %d does not take class labels (use cross-entropy or hinge)",
                           who, (int)kind);
    cnnl_status st = check_reduction(who, reduction);
    if (st != CNNL_OK)
        return st;
    if (input->ndim != 2)
        return cnnl__error(CNNL_ESHAPE, "%s: input has %d dimensions; expected (N, C)", who, input->ndim);
    int64_t rows = input->shape[0], c = input->shape[1];
    if ((uint64_t)rows != (uint64_t)n)
        return cnnl__error(CNNL_ESHAPE, "%s: %zu labels for a batch of %lld rows", who, n, (long long)rows);
    if ((st = check_grad(who, input, grad)) != CNNL_OK || (st = check_labels(who, labels, n, c)) != CNNL_OK ||
        (st = check_finite(who, "input", input)) != CNNL_OK)
        return st;

    double scale = reduction == CNNL_REDUCE_MEAN ? 1.0 / (double)rows : 1.0, total = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        const float *x = input->data + i * c;
        float *g = grad ? grad->data + i * c : NULL;
        total += kind == CNNL_LOSS_CROSS_ENTROPY ? cross_entropy_row(x, c, labels[i], g, scale)
                                                 : hinge_row(x, c, labels[i], g, scale);
    }
    return finish(who, total * scale, loss);
}

/* ---- dense-target losses --------------------------------------------------------------- */

/* MSELoss: mean over all elements of (x - t)^2; d/dx = 2 (x - t) / numel. */
static double mse(const float *x, const float *t, size_t n, float *g, double scale)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)t[i];
        sum += d * d;
        if (g)
            g[i] = (float)(2.0 * d * scale);
    }
    return sum;
}

/* KLDivLoss on log-probabilities x: sum t (log t - x), where a zero target contributes 0
 * (PyTorch's xlogy); d/dx = -t. A negative target has no logarithm: PyTorch gives NaN. */
static double kl_div(const float *x, const float *t, size_t n, float *g, double scale)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double ti = t[i];
        double xlogx = ti == 0.0 ? 0.0 : ti * log(ti);
        sum += xlogx - ti * (double)x[i];
        if (g)
            g[i] = (float)(-ti * scale);
    }
    return sum;
}

/* 1 - cos(x, y) with PyTorch's eps: cos = <x,y> / sqrt((|x|^2 + eps)(|y|^2 + eps)).
 * With a = |x|^2 + eps and D the denominator, d cos / dx = y / D - cos x / a. */
static double cosine_row(const float *x, const float *y, int64_t d, float *g, double scale)
{
    double p = 0.0, a = COSINE_EPS, b = COSINE_EPS;
    for (int64_t j = 0; j < d; j++) {
        p += (double)x[j] * y[j];
        a += (double)x[j] * x[j];
        b += (double)y[j] * y[j];
    }
    double den = sqrt(a * b), cosv = p / den;
    if (g)
        for (int64_t j = 0; j < d; j++)
            g[j] = (float)(-scale * ((double)y[j] / den - cosv * (double)x[j] / a));
    return 1.0 - cosv;
}

static cnnl_status check_dense_shapes(const char *who, cnnl_loss_kind kind, const cnnl_tensor *input,
                                      const cnnl_tensor *target)
{
    bool same = input->ndim == target->ndim;
    for (int i = 0; same && i < input->ndim; i++)
        same = input->shape[i] == target->shape[i];
    if (!same)
        return cnnl__error(CNNL_ESHAPE, "%s: target shape differs from the input's (%d vs %d dimensions, %zu vs %zu elements)",
                           who, target->ndim, input->ndim, target->numel, input->numel);
    if (kind == CNNL_LOSS_COSINE && input->ndim != 2)
        return cnnl__error(CNNL_ESHAPE, "%s: cosine loss needs (N, D) inputs; got %d dimensions", who, input->ndim);
    return CNNL_OK;
}

static cnnl_status check_kl_target(const char *who, const cnnl_tensor *target)
{
    for (size_t i = 0; i < target->numel; i++)
        if (target->data[i] < 0.0f)
            return cnnl__error(CNNL_ENUMERIC, "%s: KL target %g at element %zu is negative; its logarithm is undefined",
                               who, (double)target->data[i], i);
    return CNNL_OK;
}

static double dense_total(cnnl_loss_kind kind, const cnnl_tensor *input, const cnnl_tensor *target, float *g,
                          cnnl_reduction reduction, double *scale_out)
{
    size_t n = input->numel;
    int64_t rows = input->shape[0];
    /* MSE averages over elements; KL ('batchmean') and cosine over rows. */
    double count = kind == CNNL_LOSS_MSE ? (double)n : (double)rows;
    double scale = reduction == CNNL_REDUCE_MEAN ? 1.0 / count : 1.0;
    *scale_out = scale;
    if (kind == CNNL_LOSS_MSE)
        return mse(input->data, target->data, n, g, scale);
    if (kind == CNNL_LOSS_KL_DIV)
        return kl_div(input->data, target->data, n, g, scale);
    int64_t d = input->shape[1];
    double total = 0.0;
    for (int64_t i = 0; i < rows; i++)
        total += cosine_row(input->data + i * d, target->data + i * d, d, g ? g + i * d : NULL, scale);
    return total;
}

CNNL_API cnnl_status cnnl_loss_dense(cnnl_loss_kind kind, const cnnl_tensor *input, const cnnl_tensor *target,
                                     cnnl_reduction reduction, float *loss, cnnl_tensor *grad)
{
    static const char who[] = "cnnl_loss_dense";
    if (!input || !target || !loss)
        return cnnl__error(CNNL_EINVAL, "%s: %s is NULL", who, !input ? "input" : !target ? "target" : "loss");
    if (kind != CNNL_LOSS_MSE && kind != CNNL_LOSS_KL_DIV && kind != CNNL_LOSS_COSINE)
        return cnnl__error(CNNL_EINVAL, "%s: loss kind %d does not take a dense target (use MSE, KL or cosine)", who,
                           (int)kind);
    cnnl_status st = check_reduction(who, reduction);
    if (st != CNNL_OK || (st = check_dense_shapes(who, kind, input, target)) != CNNL_OK ||
        (st = check_grad(who, input, grad)) != CNNL_OK || (st = check_finite(who, "input", input)) != CNNL_OK ||
        (st = check_finite(who, "target", target)) != CNNL_OK)
        return st;
    if (kind == CNNL_LOSS_KL_DIV && (st = check_kl_target(who, target)) != CNNL_OK)
        return st;
    double scale = 1.0;
    double total = dense_total(kind, input, target, grad ? grad->data : NULL, reduction, &scale);
    return finish(who, total * scale, loss);
}
