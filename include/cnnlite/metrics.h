/**
 * @file metrics.h
 * @brief Confusion matrices and the classification metrics derived from them.
 */
#ifndef CNNLITE_METRICS_H
#define CNNLITE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "status.h"
#include "tensor.h"

/**
 * @defgroup metrics Metrics
 * @brief A K x K confusion matrix, per-class one-vs-rest metrics and their macro averages.
 *
 * Rows are the true class, columns the predicted class. For class @c k the one-vs-rest 2x2
 * matrix counts TP = C[k][k], FP = sum of column k without the diagonal, FN = sum of row k
 * without the diagonal and TN = N - TP - FP - FN. From it:
 * - accuracy  = (TP + TN) / N
 * - precision = TP / (TP + FP)
 * - recall    = TP / (TP + FN)
 * - F1        = 2 P R / (P + R)
 *
 * Zero divisions are defined as 0, like scikit-learn's @c zero_division=0: the precision of a
 * class that is never predicted is 0, the recall of a class absent from the true labels is 0,
 * F1 is 0 when P + R = 0, and every accuracy of an empty matrix is 0.
 *
 * The macro averages are the unweighted means over all K classes of the per-class values
 * (REPORT.md's definition; "macro accuracy" is the mean of the one-vs-rest accuracies). The
 * overall accuracy is trace / N.
 * @{
 */

/** Opaque K x K confusion matrix of 64-bit counts. */
typedef struct cnnl_confusion cnnl_confusion;

/** One class's one-vs-rest matrix and the metrics computed from it. */
typedef struct cnnl_class_metrics {
    int64_t tp;       /**< True positives: class k predicted as k. */
    int64_t fp;       /**< False positives: another class predicted as k. */
    int64_t fn;       /**< False negatives: class k predicted as another class. */
    int64_t tn;       /**< True negatives: neither true nor predicted class is k. */
    double accuracy;  /**< (TP + TN) / N; 0 when N = 0. */
    double precision; /**< TP / (TP + FP); 0 when the class is never predicted. */
    double recall;    /**< TP / (TP + FN); 0 when the class never occurs. */
    double f1;        /**< 2PR / (P + R); 0 when P + R = 0. */
} cnnl_class_metrics;

/** Matrix-wide figures. */
typedef struct cnnl_metrics_summary {
    int64_t total;          /**< N, the number of counted samples. */
    int64_t correct;        /**< Trace of the matrix. */
    double accuracy;        /**< correct / N; 0 when N = 0. */
    double macro_accuracy;  /**< Mean over classes of the one-vs-rest accuracy. */
    double macro_precision; /**< Mean over classes of the precision. */
    double macro_recall;    /**< Mean over classes of the recall. */
    double macro_f1;        /**< Mean over classes of F1 (not F1 of the mean P and R). */
} cnnl_metrics_summary;

CNNL_BEGIN_DECLS

/**
 * @brief Create an all-zero confusion matrix.
 * @param out Receives the matrix (NULL on failure); free it with cnnl_confusion_free().
 * @param classes Number of classes K, 1..65536.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p out or @p classes out of range;
 *         #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_confusion_create(cnnl_confusion **out, int classes);

/**
 * @brief Free a confusion matrix.
 * @param cm The matrix, or NULL (nothing happens).
 */
CNNL_API void cnnl_confusion_free(cnnl_confusion *cm);

/**
 * @brief Set every count to zero.
 * @param cm The matrix.
 * @return #CNNL_OK, or #CNNL_EINVAL if @p cm is NULL.
 */
CNNL_API cnnl_status cnnl_confusion_reset(cnnl_confusion *cm);

/**
 * @brief The number of classes K.
 * @param cm The matrix.
 * @return K, or 0 if @p cm is NULL.
 */
CNNL_API int cnnl_confusion_classes(const cnnl_confusion *cm);

/**
 * @brief Count @p n samples at once.
 * @param cm The matrix.
 * @param truth True class of each sample (borrowed for the call), each in [0, K).
 * @param predicted Predicted class of each sample (borrowed for the call), each in [0, K).
 * @param n Number of samples; 0 is allowed.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments (with @p n > 0); #CNNL_ERANGE if a class
 *         is out of range or if the matrix's total would pass INT64_MAX, in which case nothing
 *         is counted.
 */
CNNL_API cnnl_status cnnl_confusion_add(cnnl_confusion *cm, const int32_t *truth,
                                        const int32_t *predicted, size_t n);

/**
 * @brief Count a batch of logits (or probabilities): the prediction is each row's arg max.
 *
 * Ties go to the lowest class index, as torch.argmax does on CPU.
 * @param cm The matrix.
 * @param logits A (n, K) tensor (borrowed for the call).
 * @param truth True class of each of the n rows (borrowed for the call).
 * @param predicted If not NULL, receives the n predicted classes (caller-owned array of n).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_ESHAPE if @p logits is not (n, K);
 *         #CNNL_ERANGE if a true class is out of range or the matrix's total would pass
 *         INT64_MAX (nothing is counted).
 */
CNNL_API cnnl_status cnnl_confusion_add_logits(cnnl_confusion *cm, const cnnl_tensor *logits,
                                               const int32_t *truth, int32_t *predicted);

/**
 * @brief Overwrite one cell (for building a matrix from known counts).
 * @param cm The matrix.
 * @param truth Row (true class), in [0, K).
 * @param predicted Column (predicted class), in [0, K).
 * @param count The new count, >= 0.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p cm or a negative count; #CNNL_ERANGE for an
 *         index out of range or a count that would take the sum of all cells past INT64_MAX
 *         (the matrix is then unchanged).
 */
CNNL_API cnnl_status cnnl_confusion_set(cnnl_confusion *cm, int truth, int predicted, int64_t count);

/**
 * @brief Read one cell.
 * @param cm The matrix.
 * @param truth Row (true class).
 * @param predicted Column (predicted class).
 * @return The count, or -1 if @p cm is NULL or an index is out of range.
 */
CNNL_API int64_t cnnl_confusion_get(const cnnl_confusion *cm, int truth, int predicted);

/**
 * @brief One class's one-vs-rest matrix and metrics (see the group description).
 * @param cm The matrix.
 * @param cls The class, in [0, K).
 * @param out Receives the figures (caller-owned).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_ERANGE for @p cls out of range.
 */
CNNL_API cnnl_status cnnl_confusion_class(const cnnl_confusion *cm, int cls, cnnl_class_metrics *out);

/**
 * @brief Overall accuracy and the macro averages (see the group description).
 * @param cm The matrix.
 * @param out Receives the figures (caller-owned).
 * @return #CNNL_OK, or #CNNL_EINVAL for NULL arguments.
 */
CNNL_API cnnl_status cnnl_confusion_summary(const cnnl_confusion *cm, cnnl_metrics_summary *out);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_METRICS_H */
