/**
 * @file train.h
 * @brief Training history, progress bar, pictures of curves and confusion matrices.
 */
#ifndef CNNLITE_TRAIN_H
#define CNNLITE_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "export.h"
#include "metrics.h"
#include "status.h"

/**
 * @defgroup history Training history
 * @brief Per-epoch figures of a training run, with writers for CSV and JSON.
 *
 * The figures follow the report's printout: the train loss is the @b sum of the batch-mean
 * losses of the epoch (the report prints it that way; cnnl_epoch_stats::train_loss_mean is
 * the same divided by the number of batches), the test loss is the mean of the test batches'
 * mean losses, accuracies are percentages.
 * @{
 */

/** Figures of one epoch. */
typedef struct cnnl_epoch_stats {
    int epoch;                /**< 1-based epoch number. */
    int64_t train_batches;    /**< Training batches in the epoch. */
    int64_t train_images;     /**< Training images in the epoch. */
    double train_loss;        /**< Sum over training batches of the batch-mean loss. */
    double train_loss_mean;   /**< train_loss / train_batches. */
    double train_accuracy;    /**< Percent of training images classified correctly (in training mode). */
    int64_t test_images;      /**< Test images evaluated (0: no test set; test figures are then 0). */
    double test_loss;         /**< Mean over test batches of the batch-mean loss. */
    double test_accuracy;     /**< Percent of test images classified correctly (evaluation mode). */
    double seconds;           /**< Wall time of the epoch, training and evaluation. */
    double images_per_second; /**< Training images per second of the training phase. */
    double learning_rate;     /**< Learning rate in use during the epoch. */
} cnnl_epoch_stats;

/** Opaque list of epoch figures. */
typedef struct cnnl_history cnnl_history;

/** File formats of cnnl_history_save(). */
typedef enum cnnl_history_format {
    CNNL_HISTORY_AUTO = 0, /**< JSON if the path ends in ".json" (any case), else CSV. */
    CNNL_HISTORY_CSV = 1,  /**< One header line, then one line per epoch. */
    CNNL_HISTORY_JSON = 2  /**< {"best_test_accuracy": x, "best_epoch": n, "epochs": [{...}, ...]}. */
} cnnl_history_format;

CNNL_BEGIN_DECLS

/**
 * @brief Create an empty history.
 * @param out Receives the history (NULL on failure); free it with cnnl_history_free().
 * @return #CNNL_OK, #CNNL_EINVAL for a NULL @p out, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_history_create(cnnl_history **out);

/**
 * @brief Free a history.
 * @param history The history, or NULL.
 */
CNNL_API void cnnl_history_free(cnnl_history *history);

/**
 * @brief Remove every epoch.
 * @param history The history.
 * @return #CNNL_OK, or #CNNL_EINVAL for NULL.
 */
CNNL_API cnnl_status cnnl_history_clear(cnnl_history *history);

/**
 * @brief Append one epoch's figures (copied).
 * @param history The history.
 * @param stats The figures (borrowed for the call).
 * @return #CNNL_OK, #CNNL_EINVAL for NULL arguments, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_history_append(cnnl_history *history, const cnnl_epoch_stats *stats);

/**
 * @brief Number of epochs recorded.
 * @param history The history.
 * @return The count, 0 for NULL.
 */
CNNL_API size_t cnnl_history_count(const cnnl_history *history);

/**
 * @brief Read the figures of one recorded epoch.
 * @param history The history.
 * @param index 0-based position, below cnnl_history_count().
 * @param out Receives a copy (caller-owned).
 * @return #CNNL_OK, #CNNL_EINVAL for NULL arguments, #CNNL_ERANGE for @p index out of range.
 */
CNNL_API cnnl_status cnnl_history_at(const cnnl_history *history, size_t index, cnnl_epoch_stats *out);

/**
 * @brief The best test accuracy and the epoch that reached it first.
 * @param history The history.
 * @param accuracy Receives the best test accuracy in percent (0 for an empty history); may be NULL.
 * @param epoch Receives its 1-based epoch number (0 for an empty history); may be NULL.
 * @return #CNNL_OK, or #CNNL_EINVAL if @p history is NULL.
 */
CNNL_API cnnl_status cnnl_history_best(const cnnl_history *history, double *accuracy, int *epoch);

/**
 * @brief Write the history as CSV or JSON, replacing @p path atomically (temporary file in the
 *        same folder, fsync, rename).
 * @param history The history.
 * @param path Target file.
 * @param format #CNNL_HISTORY_AUTO chooses by the file name.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or an unknown format; #CNNL_EIO if the file
 *         cannot be written (an existing file is then left untouched); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_history_save(const cnnl_history *history, const char *path,
                                       cnnl_history_format format);

CNNL_END_DECLS

/** @} */

/**
 * @defgroup progress Progress bar
 * @brief A tqdm-like progress line on a stream, e.g.
 *        `100%|██████████| 33/33 [00:10<00:00, 3.12it/s]`.
 * @{
 */

/** How the progress bar is shown. */
typedef enum cnnl_progress_mode {
    CNNL_PROGRESS_AUTO = 0,  /**< #CNNL_PROGRESS_TTY if the stream is a terminal, else #CNNL_PROGRESS_LINES. */
    CNNL_PROGRESS_TTY = 1,   /**< Redrawn in place with a carriage return after every update. */
    CNNL_PROGRESS_LINES = 2, /**< One plain line when a bar is finished (logs, pipes). */
    CNNL_PROGRESS_OFF = 3    /**< Nothing is written. */
} cnnl_progress_mode;

/** Opaque progress bar. */
typedef struct cnnl_progress cnnl_progress;

CNNL_BEGIN_DECLS

/**
 * @brief Create a progress bar.
 * @param out Receives the bar (NULL on failure); free it with cnnl_progress_free().
 * @param stream Where to draw (borrowed until the bar is freed); NULL means stderr.
 * @param mode How to draw.
 * @return #CNNL_OK, #CNNL_EINVAL for a NULL @p out or an unknown mode, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_progress_create(cnnl_progress **out, FILE *stream, cnnl_progress_mode mode);

/**
 * @brief Free a progress bar (does not close its stream).
 * @param progress The bar, or NULL.
 */
CNNL_API void cnnl_progress_free(cnnl_progress *progress);

/**
 * @brief Start a new bar of @p total steps; its clock starts now.
 * @param progress The bar.
 * @param total Number of steps, >= 0.
 * @return #CNNL_OK, or #CNNL_EINVAL for NULL or a negative @p total.
 */
CNNL_API cnnl_status cnnl_progress_start(cnnl_progress *progress, int64_t total);

/**
 * @brief Report that @p done steps are complete (redraws in TTY mode).
 * @param progress The bar.
 * @param done Steps done, 0..total.
 * @return #CNNL_OK, #CNNL_EINVAL for NULL, #CNNL_ESTATE before cnnl_progress_start(),
 *         #CNNL_ERANGE if @p done is outside 0..total.
 */
CNNL_API cnnl_status cnnl_progress_update(cnnl_progress *progress, int64_t done);

/**
 * @brief Finish the current bar: the final line is drawn and ended with a newline.
 * @param progress The bar.
 * @return #CNNL_OK, #CNNL_EINVAL for NULL, #CNNL_ESTATE if no bar is running.
 */
CNNL_API cnnl_status cnnl_progress_finish(cnnl_progress *progress);

/**
 * @brief Format a tqdm-like line without drawing it.
 * @param buf Output buffer (caller-owned); always NUL-terminated when @p size > 0.
 * @param size Size of @p buf in bytes; 96 is enough for any line.
 * @param done Steps done.
 * @param total Total steps.
 * @param elapsed Seconds since the start.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p buf, a zero @p size or negative values;
 *         #CNNL_ERANGE if the line did not fit (it is truncated).
 */
CNNL_API cnnl_status cnnl_progress_format(char *buf, size_t size, int64_t done, int64_t total,
                                          double elapsed);

CNNL_END_DECLS

/** @} */

/**
 * @defgroup plots Pictures
 * @brief SVG pictures of training curves, confusion matrices and comparisons.
 *
 * Every picture is a self-contained SVG 1.1 file (viewable in any browser, convertible with
 * rsvg-convert), written atomically like cnnl_history_save().
 * @{
 */

CNNL_BEGIN_DECLS

/**
 * @brief Draw the loss and accuracy curves of a run: the left panel shows the mean training
 *        loss per batch and the test loss, the right panel training and test accuracy; the best
 *        test accuracy is marked.
 * @param history The run (borrowed for the call); must have at least one epoch.
 * @param path Target SVG file.
 * @param title Caption, or NULL.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or an empty history; #CNNL_EIO; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_plot_history(const cnnl_history *history, const char *path, const char *title);

/**
 * @brief Draw a confusion matrix as a heat map with counts and per-row percentages.
 * @param cm The matrix (borrowed for the call).
 * @param class_names K names (borrowed for the call), or NULL for "0", "1", ...
 * @param path Target SVG file.
 * @param title Caption, or NULL.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_EIO; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_plot_confusion(const cnnl_confusion *cm, const char *const *class_names,
                                         const char *path, const char *title);

/**
 * @brief Compare several runs: test accuracy (left) and mean training loss (right) per epoch.
 *
 * Runs with the same label (repeats of one configuration over seeds) share a colour; their mean
 * is drawn as a thick line over the thin individual curves, and the legend names each label once.
 * @param runs @p n histories (borrowed for the call), each with at least one epoch.
 * @param labels @p n labels (borrowed for the call).
 * @param n Number of runs, 1..64.
 * @param path Target SVG file.
 * @param title Caption, or NULL.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments, an empty history or @p n out of range;
 *         #CNNL_EIO; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_plot_compare(const cnnl_history *const *runs, const char *const *labels,
                                       size_t n, const char *path, const char *title);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_TRAIN_H */
