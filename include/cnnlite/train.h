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

#include "data.h"
#include "export.h"
#include "io.h"
#include "loss.h"
#include "comm.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
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
 * @brief A buffer size that holds any line of cnnl_progress_format() with its NUL: the bar (10
 * cells of 3 bytes), two counts of up to 19 digits, two intervals of up to 13 characters and a
 * rate of up to 16.
 */
#define CNNL_PROGRESS_LINE_MAX 128

/**
 * @brief Format a tqdm-like line without drawing it.
 * @param buf Output buffer (caller-owned); always NUL-terminated when @p size > 0.
 * @param size Size of @p buf in bytes; #CNNL_PROGRESS_LINE_MAX is enough for any line (any
 *        counts up to INT64_MAX, any elapsed time).
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
 * @defgroup trainer Trainer
 * @brief Fit a model for a number of epochs, evaluating it on a test set after each epoch.
 *
 * One epoch runs every batch of the training loader through forward, loss (batch mean),
 * backward and an optimizer step, with the model in training mode; then, if a test loader is
 * given, evaluates the model on it in evaluation mode, appends a cnnl_epoch_stats to the
 * history and calls the epoch callback. The loaders decide the order of the batches (see
 * cnnl_loader_start_epoch()), the model draws its own dropout masks, so a run is reproducible:
 * the same seeds and thread count give a bit-identical history (except the timings) and
 * bit-identical weights.
 *
 * Stopping: cnnl_trainer_request_stop() may be called from a signal handler (the library
 * never installs one itself). The trainer then stops after the current batch, calls the
 * checkpoint callback if there is one, and cnnl_trainer_fit() returns #CNNL_EINTERRUPTED.
 * A callback that returns #CNNL_TRAIN_STOP ends training as well, but normally (early
 * stopping): cnnl_trainer_fit() returns #CNNL_OK.
 *
 * Resuming: the position (epoch, batch and the running sums of the epoch) can be read with
 * cnnl_trainer_get_position() and restored with cnnl_trainer_set_position(), together with
 * the model, its dropout generator and the optimizer (see cnnl_checkpoint_save()) and the
 * history; the resumed run then continues bit for bit as the uninterrupted one would have.
 * @{
 */

/** Value a callback returns to end training cleanly after the current batch or epoch. */
#define CNNL_TRAIN_STOP 1

/** Opaque trainer. */
typedef struct cnnl_trainer cnnl_trainer;

/** What the batch callback is told after each training step. */
typedef struct cnnl_batch_info {
    int epoch;          /**< 1-based epoch number. */
    int epochs;         /**< Epochs of the run. */
    int64_t batch;      /**< 0-based batch index within the epoch. */
    int64_t batches;    /**< Batches per epoch. */
    int64_t images;     /**< Images in this batch. */
    int64_t correct;    /**< Images of this batch classified correctly. */
    double loss;        /**< Batch-mean loss. */
} cnnl_batch_info;

/**
 * Called after every training step.
 * @param trainer The trainer (e.g. to change the learning rate through cnnl_trainer_optimizer()).
 * @param info The step's figures, borrowed for the call.
 * @param user The opts' user pointer.
 * @return #CNNL_OK to go on, #CNNL_TRAIN_STOP to end training, or a negative #cnnl_status to
 *         abort it (cnnl_trainer_fit() returns that status).
 */
typedef int (*cnnl_batch_callback)(cnnl_trainer *trainer, const cnnl_batch_info *info, void *user);

/**
 * Called after every epoch, once its figures are in the history.
 * @param trainer The trainer.
 * @param stats The epoch's figures, borrowed for the call.
 * @param user The opts' user pointer.
 * @return As for #cnnl_batch_callback.
 */
typedef int (*cnnl_epoch_callback)(cnnl_trainer *trainer, const cnnl_epoch_stats *stats, void *user);

/**
 * Called when a checkpoint should be written: after every checkpoint_every epochs, and before
 * returning on a stop request. The callback saves whatever it needs (cnnl_checkpoint_save()
 * with cnnl_trainer_get_position() and cnnl_trainer_history()).
 * @param trainer The trainer.
 * @param user The opts' user pointer.
 * @return #CNNL_OK, or an error status that cnnl_trainer_fit() returns.
 */
typedef cnnl_status (*cnnl_checkpoint_callback)(cnnl_trainer *trainer, void *user);
/* With cnnl_train_opts::comm, the checkpoint callback is called on rank 0 only. */

/** Learning-rate schedules (see ::cnnl_schedule_opts). */
typedef enum cnnl_schedule_kind {
    CNNL_SCHEDULE_CONSTANT = 0, /**< The optimizer's learning rate throughout (the default). */
    CNNL_SCHEDULE_STEP = 1,     /**< lr * gamma^floor(epoch / step_size) (torch StepLR). */
    CNNL_SCHEDULE_COSINE = 2,   /**< Linear warm-up over warmup_epochs, then cosine decay to
                                     lr * min_factor at the last batch, per batch. */
    CNNL_SCHEDULE_ONE_CYCLE = 3,/**< torch OneCycleLR (cosine, pct_start 0.3, div_factor 25,
                                     final_div_factor 1e4) with max_lr = lr, per batch. */
    CNNL_SCHEDULE_PLATEAU = 4   /**< torch ReduceLROnPlateau on the test (validation) loss: lr
                                     times gamma after more than plateau_patience epochs without
                                     a relative improvement of 1e-4. */
} cnnl_schedule_kind;

/** A learning-rate schedule (see cnnl_schedule_opts_default() and cnnl_schedule_lr()). */
typedef struct cnnl_schedule_opts {
    cnnl_schedule_kind kind; /**< The schedule (default #CNNL_SCHEDULE_CONSTANT). */
    int warmup_epochs;       /**< Cosine: epochs of linear warm-up, >= 0 (default 1). */
    int step_size;           /**< Step: epochs between reductions, >= 1 (default 5). */
    double gamma;            /**< Step and plateau: factor of a reduction, in (0, 1] (default 0.1). */
    double min_factor;       /**< Cosine: final rate as a fraction of lr, in [0, 1] (default 0.01). */
    int plateau_patience;    /**< Plateau: epochs without improvement tolerated, >= 0 (default 2). */
} cnnl_schedule_opts;

/** Options of a trainer (see cnnl_train_opts_default()). */
typedef struct cnnl_train_opts {
    int epochs;                    /**< Epochs to train, >= 1 (default 15). */
    cnnl_loss_kind loss;           /**< #CNNL_LOSS_CROSS_ENTROPY (default) or #CNNL_LOSS_HINGE. */
    double lr;                     /**< Learning rate of the Adam optimizer the trainer creates when none is given (default 1e-3). */
    bool keep_best;                /**< Keep a copy of the weights of the best test accuracy (default false). */
    cnnl_progress_mode progress;   /**< Progress bar of the training batches (default #CNNL_PROGRESS_OFF: the library draws nothing unless asked; the programs ask for #CNNL_PROGRESS_AUTO). */
    FILE *progress_stream;         /**< Where the bar goes; NULL (default) means stderr. Borrowed. */
    cnnl_batch_callback on_batch;  /**< Called after every step, or NULL. */
    cnnl_epoch_callback on_epoch;  /**< Called after every epoch, or NULL. */
    cnnl_checkpoint_callback on_checkpoint; /**< Writes checkpoints, or NULL (no checkpoints). */
    int checkpoint_every;          /**< Epochs between checkpoints, >= 0 (default 1; 0: only on a stop request). */
    void *user;                    /**< Passed to the callbacks. */
    /** Data-parallel training over several processes (see @ref comm), or NULL (default): one
     *  process. Borrowed; must outlive the trainer. Every process runs the same program with
     *  loaders sharded by rank (cnnl_loader_opts::shard_count = size, shard_index = rank); the
     *  trainer copies rank 0's model state to all at the start of cnnl_trainer_fit(), sums the
     *  gradients (each process's share of the global batch mean) in buckets while backward
     *  runs, reduces the figures, so the history is the same everywhere, agrees on stop
     *  requests, copies rank 0's buffers (batch-norm running statistics, per process unless
     *  cnnl_trainer_set_sync_bn()) to all before each
     *  evaluation and compares a checksum of the weights after every epoch. A failing process
     *  returns its error; the others wait in the next collective, so a program ends the job
     *  with cnnl_comm::abort. */
    const cnnl_comm *comm;
    size_t comm_bucket_bytes;      /**< Gradient bucket size with a comm (default 4 MiB). */
    cnnl_schedule_opts schedule;   /**< Learning-rate schedule around the optimizer's initial rate
                                        (default constant). It is a function of the position and
                                        the history only, so a resumed run follows it exactly. */
    int patience;                  /**< Early stopping: end training after this many epochs without
                                        a better test accuracy and restore the best weights
                                        (implies keep_best); 0 (default) = off. */
    double label_smoothing;        /**< Cross-entropy label smoothing in [0, 1) as torch's
                                        CrossEntropyLoss(label_smoothing=...) (default 0). */
    const float *class_weights;    /**< Cross-entropy class weights as torch's
                                        CrossEntropyLoss(weight=...): one finite value > 0 per
                                        class, copied at creation; NULL (default) = all 1. */
    int num_class_weights;         /**< Entries of @c class_weights. */
} cnnl_train_opts;

/** Where a run stands; everything a checkpoint needs besides model, optimizer and history. */
typedef struct cnnl_train_position {
    int epoch;           /**< Epochs completed. */
    int64_t batch;       /**< Batches of the next epoch already done (0 at an epoch boundary). */
    double loss_sum;     /**< Sum of the batch-mean losses of those batches. */
    int64_t correct;     /**< Images of those batches classified correctly. */
    int64_t images;      /**< Images of those batches. */
    double seconds;      /**< Training time spent on those batches. */
} cnnl_train_position;

CNNL_BEGIN_DECLS

/**
 * @brief Default options: 15 epochs, cross-entropy, Adam lr 1e-3, automatic progress bar,
 *        checkpoints every epoch if a checkpoint callback is set, constant learning rate, no
 *        early stopping, no label smoothing, no class weights.
 * @return The defaults, by value.
 */
CNNL_API cnnl_train_opts cnnl_train_opts_default(void);

/**
 * @brief Default schedule: constant; warm-up 1 epoch, step size 5, gamma 0.1, min factor 0.01,
 *        plateau patience 2 for the kinds that use them.
 * @return The defaults, by value.
 */
CNNL_API cnnl_schedule_opts cnnl_schedule_opts_default(void);

/**
 * @brief The learning rate of a schedule at one batch of a run.
 *
 * A pure function of its arguments: for the plateau schedule the reductions are recounted from
 * the test losses of @p history's epochs before @p epoch.
 * @param sched The schedule.
 * @param base_lr The initial (for one-cycle: the maximum) learning rate, > 0.
 * @param epochs Epochs of the run, >= 1.
 * @param batches Batches per epoch, >= 1.
 * @param epoch 0-based epoch of the batch.
 * @param batch 0-based batch within the epoch.
 * @param history The run's history (needed for the plateau schedule only; may be NULL otherwise).
 * @param[out] lr Receives the rate.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments, a bad option (named) or a position out of range.
 */
CNNL_API cnnl_status cnnl_schedule_lr(const cnnl_schedule_opts *sched, double base_lr, int epochs,
                                      int64_t batches, int epoch, int64_t batch,
                                      const cnnl_history *history, double *lr);

/**
 * @brief Cross-entropy with label smoothing and class weights, as torch's
 *        CrossEntropyLoss(weight=w, label_smoothing=e), mean reduction, and its gradient.
 *
 * Row i with label y contributes w[y] (1 - e) (-log p_y) + (e / C) sum_k w[k] (-log p_k); the
 * mean divides by sum_i w[y_i].
 * @param input Logits (N, C); borrowed.
 * @param labels N class indices in [0, C); borrowed.
 * @param n Number of labels; must equal N.
 * @param smoothing e, in [0, 1).
 * @param weights C weights > 0 (borrowed), or NULL for all 1.
 * @param[out] loss Receives the loss.
 * @param grad Optional: receives d loss / d input (same element count as @p input); caller-owned.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or @p smoothing out of range; #CNNL_ESHAPE;
 *         #CNNL_ERANGE for a label outside [0, C); #CNNL_ENUMERIC for a non-finite input.
 */
CNNL_API cnnl_status cnnl_loss_cross_entropy_ex(const cnnl_tensor *input, const int32_t *labels, size_t n,
                                                double smoothing, const float *weights, float *loss,
                                                cnnl_tensor *grad);

/**
 * @brief Create a trainer.
 * @param out Receives the trainer (NULL on failure); free it with cnnl_trainer_free().
 * @param model The model to train; borrowed, must outlive the trainer.
 * @param optimizer The model's optimizer, borrowed (must outlive the trainer); or NULL: the
 *        trainer creates and owns an Adam optimizer with opts->lr.
 * @param opts Options (copied), or NULL for cnnl_train_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p out / @p model or a bad option (named in the
 *         message); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_trainer_create(cnnl_trainer **out, cnnl_model *model, cnnl_optimizer *optimizer,
                                         const cnnl_train_opts *opts);

/**
 * @brief Free a trainer (and the optimizer it created, not one it was given).
 * @param trainer The trainer, or NULL.
 */
CNNL_API void cnnl_trainer_free(cnnl_trainer *trainer);

/**
 * @brief Synchronised batch norm: in data-parallel training (cnnl_train_opts::comm), every
 *        BatchNorm2d layer normalises with the statistics of the global batch instead of this
 *        process's part of it (as PyTorch's SyncBatchNorm).
 *
 * In training steps each BatchNorm2d layer sums the element count and per-channel sums over
 * the processes before normalising (two reductions: the sums of x, then of squared
 * deviations from the global mean) and, in backward, the per-channel sums of the output
 * gradient and of its product with the normalised input (one reduction); the running mean and
 * variance are updated with the global statistics (unbiased variance with the global count),
 * so every process keeps identical running statistics. A process with no image in a step (a
 * last batch smaller than the process count) takes part with nothing to add. With one process
 * the results are bit-identical to those without synchronisation. Off by default (statistics
 * per process, as PyTorch DDP). Every process must make the same call before
 * cnnl_trainer_fit(). The buffers are allocated here, once; steps allocate nothing more.
 * @param trainer The trainer.
 * @param on Whether to synchronise.
 * @return #CNNL_OK (also, doing nothing, for a trainer without a communicator: one process,
 *         nothing to synchronise; and for a model without BatchNorm2d layers); #CNNL_EINVAL
 *         for a NULL @p trainer; #CNNL_ENOMEM (synchronisation stays off).
 */
CNNL_API cnnl_status cnnl_trainer_set_sync_bn(cnnl_trainer *trainer, bool on);

/**
 * @brief Train from the current position up to opts.epochs epochs.
 * @param trainer The trainer.
 * @param train Loader of the training images (shuffled, typically); borrowed for the call.
 * @param test Loader of the test images, or NULL (no evaluation; test figures are 0).
 * The model is left in evaluation mode when all epochs have run.
 * @return #CNNL_OK when all epochs ran or a callback returned #CNNL_TRAIN_STOP;
 *         #CNNL_EINTERRUPTED after cnnl_trainer_request_stop(); #CNNL_EINVAL for NULL
 *         arguments; #CNNL_ESTATE if the model's output is not (batch, classes); #CNNL_ERANGE
 *         for a label outside the model's classes; any error of a step (e.g. #CNNL_ENUMERIC for
 *         a non-finite loss or gradient, the weights are then not updated), of a loader or of a
 *         callback. Messages name the epoch and batch.
 */
CNNL_API cnnl_status cnnl_trainer_fit(cnnl_trainer *trainer, cnnl_loader *train, cnnl_loader *test);

/**
 * @brief The trainer's history (one entry per completed epoch).
 * @param trainer The trainer.
 * @return Borrowed history, owned by the trainer until it is freed (modifiable, e.g. to
 *         restore it on resume); NULL if @p trainer is NULL.
 */
CNNL_API cnnl_history *cnnl_trainer_history(cnnl_trainer *trainer);

/**
 * @brief The optimizer in use.
 * @param trainer The trainer.
 * @return Borrowed optimizer (owned by the trainer or by the caller, see cnnl_trainer_create());
 *         NULL if @p trainer is NULL.
 */
CNNL_API cnnl_optimizer *cnnl_trainer_optimizer(cnnl_trainer *trainer);

/**
 * @brief Where the run stands.
 * @param trainer The trainer.
 * @param out Receives the position (caller-owned).
 * @return #CNNL_OK or #CNNL_EINVAL for NULL arguments.
 */
CNNL_API cnnl_status cnnl_trainer_get_position(const cnnl_trainer *trainer, cnnl_train_position *out);

/**
 * @brief Continue from a saved position (see the group description).
 * @param trainer The trainer.
 * @param pos The position (copied).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or negative fields.
 */
CNNL_API cnnl_status cnnl_trainer_set_position(cnnl_trainer *trainer, const cnnl_train_position *pos);

/**
 * @brief Save the run in a checkpoint, atomically: the model, the optimizer, the position
 *        and the history (float64, so a resumed run's history equals an uninterrupted one's
 *        to the bit).
 *
 * Calling it from the on_checkpoint callback saves the state cnnl_trainer_fit() resumes from,
 * between batches or epochs. The history goes in as `train.history` with the columns of
 * cnnl_history_save(), the position as the string "position" (cnnl_checkpoint_get_string()).
 * @param trainer The trainer.
 * @param path The checkpoint file; replaced atomically.
 * @param fields More fields to store (split, generator states, strings), or NULL; the trainer
 *        sets its epoch, history and "position" in it (they replace any set before); the
 *        caller keeps ownership.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p trainer or @p path; #CNNL_EIO (the message names
 *         the file; an existing file is left untouched); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_trainer_save_checkpoint(cnnl_trainer *trainer, const char *path, cnnl_checkpoint *fields);

/**
 * @brief Resume a run from a checkpoint written by cnnl_trainer_save_checkpoint() (or by
 *        cnnlite-train of 0.1.0, whose float32 history is widened): restores the model, the
 *        optimizer, the history and the position, so that cnnl_trainer_fit() continues where
 *        the saved run was.
 *
 * The checkpoint is validated as cnnl_checkpoint_load() does, and its position and history
 * against each other (one history row per completed epoch, epochs numbered 1, 2, ...). On
 * error the trainer's history and position are unchanged; the model and optimizer are too,
 * unless the error is found after they were restored (a bad position or history: the message
 * says which).
 * @param trainer The trainer, with the model and optimizer built as for the saved run.
 * @param path The checkpoint.
 * @param[out] fields If not NULL, receives the checkpoint's other fields (split, generator
 *        states, strings), owned by the caller (cnnl_checkpoint_free()); NULL on failure.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p trainer or @p path; #CNNL_EFORMAT for a file that
 *         is not a training checkpoint or holds inconsistent values (named in the message);
 *         #CNNL_ESHAPE, #CNNL_EIO, #CNNL_ENOMEM as cnnl_checkpoint_load().
 */
CNNL_API cnnl_status cnnl_trainer_load_checkpoint(cnnl_trainer *trainer, const char *path, cnnl_checkpoint **fields);

/**
 * @brief Copy the weights of the best test accuracy back into the model.
 * @param trainer The trainer, created with keep_best.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL; #CNNL_ESTATE if keep_best was off or no epoch has
 *         been evaluated yet.
 */
CNNL_API cnnl_status cnnl_trainer_restore_best(cnnl_trainer *trainer);

/**
 * @brief Ask every running cnnl_trainer_fit() of the process to stop after its current batch.
 *
 * Async-signal-safe (it only sets a volatile sig_atomic_t flag): call it from a SIGINT
 * handler. The flag stays set until cnnl_trainer_clear_stop().
 */
CNNL_API void cnnl_trainer_request_stop(void);

/**
 * @brief Whether a stop has been requested.
 * @return true after cnnl_trainer_request_stop(), until cnnl_trainer_clear_stop().
 */
CNNL_API bool cnnl_trainer_stop_requested(void);

/** @brief Clear a stop request (e.g. before starting another run). */
CNNL_API void cnnl_trainer_clear_stop(void);

/**
 * @brief Evaluate a model on every batch of a loader, in evaluation mode.
 *
 * The model's training/evaluation mode is restored afterwards.
 * @param model The model; borrowed.
 * @param loader The images; borrowed (its current epoch order is used).
 * @param loss Loss to report (#CNNL_LOSS_CROSS_ENTROPY or #CNNL_LOSS_HINGE).
 * @param cm If not NULL, the predictions are added to it (it must have as many classes as the
 *        model has outputs).
 * @param mean_loss If not NULL, receives the mean of the batch-mean losses.
 * @param accuracy If not NULL, receives the percentage of correct predictions.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p model or @p loader; #CNNL_ESHAPE if the model's
 *         output does not match @p cm; any error of the loader or the forward pass.
 */
CNNL_API cnnl_status cnnl_evaluate(cnnl_model *model, cnnl_loader *loader, cnnl_loss_kind loss,
                                   cnnl_confusion *cm, double *mean_loss, double *accuracy);

/**
 * @brief cnnl_evaluate() over several processes: each evaluates its shard of every batch
 *        (the loader sharded by rank, cnnl_loader_opts::shard_count), and the loss, the
 *        accuracy and the confusion matrix are summed over the processes, so every process
 *        receives the figures of the whole set. A collective: every process must call it.
 * @param model The model; borrowed.
 * @param loader This process's sharded loader; borrowed.
 * @param loss As for cnnl_evaluate().
 * @param cm If not NULL, every process's predictions are added to it.
 * @param comm The communicator (borrowed for the call), or NULL: exactly cnnl_evaluate().
 * @param mean_loss If not NULL, receives the mean of the global batch-mean losses.
 * @param accuracy If not NULL, receives the percentage of correct predictions.
 * @return As cnnl_evaluate(); #CNNL_EINVAL for an incomplete @p comm; any error of the
 *         communicator (the message names this process's rank).
 */
CNNL_API cnnl_status cnnl_evaluate_comm(cnnl_model *model, cnnl_loader *loader, cnnl_loss_kind loss,
                                        cnnl_confusion *cm, const cnnl_comm *comm,
                                        double *mean_loss, double *accuracy);

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
 * @param n Number of runs, 1..256.
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
