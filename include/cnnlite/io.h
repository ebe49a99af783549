/**
 * @file io.h
 * @brief Model files (safetensors) that PyTorch reads and writes, and training checkpoints.
 */
#ifndef CNNLITE_IO_H
#define CNNLITE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "export.h"
#include "model.h"
#include "optim.h"
#include "status.h"

/**
 * @defgroup io Model files and checkpoints
 * @brief Save and load weights as safetensors; save and resume training runs.
 *
 * A model file is a safetensors file: an 8-byte little-endian header length, a JSON header,
 * then the raw little-endian tensor data. Tensors carry PyTorch's state_dict names
 * ("features.1.weight", ...), F32, and I64 for BatchNorm's num_batches_tracked, so that
 * `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch and a
 * state_dict that PyTorch saved loads here. The header's `__metadata__` map (strings only)
 * records what is needed to predict from the file alone:
 *
 * | key | value |
 * |---|---|
 * | `format`, `format_version` | `cnnlite`, `1` |
 * | `description` | the network's architecture description (cnnl_model_to_json()), for any model built from one |
 * | `arch` | `report_net` when the model came from cnnl_report_net_create() |
 * | `classes`, `channels`, `size`, `seed` | decimal integers (the builder options) |
 * | `batchnorm` | `true` or `false` |
 * | `dropout` | decimal float |
 * | `class_names` | JSON array of strings, in class-index order (optional) |
 * | `normalization` | JSON object `{"kind": "unit"|"symmetric"|"mean_std", "mean": [...], "std": [...]}` (optional) |
 *
 * A checkpoint is one safetensors file too (layout in cnnl_checkpoint_save()). The model
 * loading functions accept a checkpoint wherever they accept a model file: they read its
 * `model.` tensors and its builder options and ignore the rest.
 *
 * Every file is written atomically: a temporary file in the same folder is written, flushed
 * to disk (fsync), renamed over the target, and the folder is synced. If anything fails, the
 * temporary file is removed and an existing file of that name is left untouched. A replaced
 * file keeps its permission bits; a new one gets rw-r--r--.
 *
 * Reading validates the whole file before it changes anything: header length against the
 * file size, JSON syntax, known dtypes, shapes and byte sizes, offsets inside the data
 * section, tensors that tile it exactly without overlap, unique names, then names and shapes
 * against the model. Every error message names the file and the problem.
 *
 * Handles of this module are independent: separate handles may be used from separate threads.
 * The library supports little-endian hosts only (checked at compile time).
 * @{
 */

/** What cnnl_model_save() records beside the weights (see cnnl_save_opts_default()). */
typedef struct cnnl_save_opts {
    const char *const *class_names;  /**< @c num_classes class names in index order, or NULL; borrowed during the call. */
    int num_classes;                 /**< Entries of @c class_names (0 when NULL). */
    const cnnl_normalization *norm;  /**< Input normalization (e.g. the training dataset's cnnl_dataset_opts::norm),
                                          or NULL to record none; borrowed during the call. */
} cnnl_save_opts;

/** Opaque description of a model file's metadata (class names, normalization, builder options). */
typedef struct cnnl_model_meta cnnl_model_meta;

/** Opaque training state stored beside a model and optimizer in a checkpoint. */
typedef struct cnnl_checkpoint cnnl_checkpoint;

CNNL_BEGIN_DECLS

/**
 * @brief Defaults for cnnl_model_save(): no class names, no normalization recorded.
 * @return The options.
 */
CNNL_API cnnl_save_opts cnnl_save_opts_default(void);

/**
 * @brief Save a model's state (parameters and buffers, state_dict names) as a safetensors file,
 * atomically, with the metadata described in @ref io.
 *
 * The builder options are recorded when the model came from cnnl_report_net_create().
 * @param model The model; only read.
 * @param path Target file; replaced atomically.
 * @param opts Class names and normalization to record; NULL means cnnl_save_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments, a class count that differs from the
 *         model's, a NULL or empty class name, or a bad normalization; #CNNL_EIO if the file
 *         cannot be written (the message names it; an existing file is left untouched);
 *         #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_save(cnnl_model *model, const char *path, const cnnl_save_opts *opts);

/**
 * @brief Load a safetensors file's tensors into an existing model.
 *
 * Every tensor is checked before any value is copied; on error the model is unchanged.
 * @param model The model whose state tensors receive the values.
 * @param path The file.
 * @param strict true: a model tensor absent from the file (missing) or a file tensor the model
 *        does not have (unexpected) is an error. false: they are listed in a warning through the
 *        log (cnnl_set_log_callback()), and the tensors present in both are loaded; a file with
 *        none of the model's tensors is still an error.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_EIO if the file cannot be opened or
 *         read (also when @p path is a folder); #CNNL_EFORMAT for a malformed file, a dtype that
 *         differs from the model's, or (strict) missing or unexpected tensors, which the message
 *         lists; #CNNL_ESHAPE if a tensor's shape differs from the model's (the message names the
 *         tensor and both shapes); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_load_weights(cnnl_model *model, const char *path, bool strict);

/**
 * @brief Build the network a model file describes and load its weights (strictly).
 *
 * The network comes from the file's `description` metadata (any description), else from its
 * report-network options (`arch` = `report_net`, as 0.1.0 wrote them), else from @p fallback
 * (e.g. a state_dict PyTorch saved). Before anything large is built, every tensor the
 * description implies is checked against the file's tensor of that name: metadata that does
 * not match the file's shapes is #CNNL_EFORMAT naming the file and the tensor.
 * @param[out] out Receives the model, owned by the caller (cnnl_model_free()); NULL on failure.
 * @param path The file.
 * @param fallback Builder options used only when the file records none; may be NULL.
 * @param[out] meta If not NULL, receives the file's metadata, owned by the caller
 *        (cnnl_model_meta_free()); NULL on failure.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p out or @p path; #CNNL_EFORMAT for a malformed file
 *         or metadata (also an invalid description, or one that does not match the file's
 *         tensors), or a file with no network options and no @p fallback; the errors of
 *         cnnl_report_net_create() and cnnl_model_load_weights(); #CNNL_EIO; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_load(cnnl_model **out, const char *path, const cnnl_report_opts *fallback,
                                     cnnl_model_meta **meta);

/**
 * @brief cnnl_model_load() from a file image in memory (for programs that keep model files in
 * their own storage, as ONNX Runtime's CreateSessionFromArray).
 * @param[out] out Receives the model, owned by the caller (cnnl_model_free()); NULL on failure.
 * @param data The bytes of a model file or checkpoint; borrowed (copied during the call).
 * @param size Number of bytes.
 * @param name Name used in messages instead of a path (NULL: "(memory)").
 * @param fallback As for cnnl_model_load().
 * @param[out] meta As for cnnl_model_load().
 * @return As cnnl_model_load(); messages start with @p name.
 */
CNNL_API cnnl_status cnnl_model_load_memory(cnnl_model **out, const void *data, size_t size, const char *name,
                                            const cnnl_report_opts *fallback, cnnl_model_meta **meta);

/**
 * @brief Read only the metadata of a model file (the whole file is validated).
 * @param[out] out Receives the metadata, owned by the caller (cnnl_model_meta_free()); NULL on failure.
 * @param path The file.
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_EIO; #CNNL_EFORMAT for a malformed file or metadata
 *         (e.g. `class_names` that is not a JSON array of strings); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_model_meta_read(cnnl_model_meta **out, const char *path);

/**
 * @brief Release metadata. NULL is accepted.
 * @param meta The metadata, or NULL. Strings borrowed from it become invalid.
 */
CNNL_API void cnnl_model_meta_free(cnnl_model_meta *meta);

/**
 * @brief Builder options of the model.
 * @param meta The metadata.
 * @param[out] opts Receives the options recorded in the file or, for metadata from
 *        cnnl_model_load(), the @p fallback that was used.
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_ENOTFOUND if the file records none and none were supplied.
 */
CNNL_API cnnl_status cnnl_model_meta_report_opts(const cnnl_model_meta *meta, cnnl_report_opts *opts);

/**
 * @brief Number of class names recorded in the file.
 * @param meta The metadata (NULL gives 0).
 * @return The count; 0 when the file records no class names.
 */
CNNL_API size_t cnnl_model_meta_class_count(const cnnl_model_meta *meta);

/**
 * @brief Name of class @p index.
 * @param meta The metadata.
 * @param index 0..cnnl_model_meta_class_count()-1.
 * @return The name, borrowed from @p meta (valid until cnnl_model_meta_free()); NULL for a bad
 *         index or NULL @p meta.
 */
CNNL_API const char *cnnl_model_meta_class_name(const cnnl_model_meta *meta, size_t index);

/**
 * @brief Input normalization recorded in the file.
 *
 * The result can be put into cnnl_dataset_opts::norm as it is, so that images are prepared for
 * the model as its training images were.
 * @param meta The metadata.
 * @param[out] norm Receives the normalization (channels 0 unless #CNNL_NORM_MEAN_STD).
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_ENOTFOUND if the file records none.
 */
CNNL_API cnnl_status cnnl_model_meta_normalization(const cnnl_model_meta *meta, cnnl_normalization *norm);

/**
 * @brief Raw value of any `__metadata__` key.
 * @param meta The metadata.
 * @param key The key, e.g. "format".
 * @return The value, borrowed from @p meta (valid until cnnl_model_meta_free()); NULL if the key
 *         is absent or an argument is NULL.
 */
CNNL_API const char *cnnl_model_meta_get(const cnnl_model_meta *meta, const char *key);

/**
 * @brief Create an empty set of checkpoint fields (epoch 0, no history, RNG states, split or strings).
 * @param[out] out Receives the handle, owned by the caller (cnnl_checkpoint_free()).
 * @return #CNNL_OK, #CNNL_EINVAL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_create(cnnl_checkpoint **out);

/**
 * @brief Release checkpoint fields. NULL is accepted.
 * @param ck The handle, or NULL. Pointers borrowed from it become invalid.
 */
CNNL_API void cnnl_checkpoint_free(cnnl_checkpoint *ck);

/**
 * @brief Set the number of completed epochs.
 * @param ck The handle.
 * @param epoch Epochs completed, >= 0.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_checkpoint_set_epoch(cnnl_checkpoint *ck, int64_t epoch);

/**
 * @brief The number of completed epochs.
 * @param ck The handle (NULL gives 0).
 * @return The epoch count.
 */
CNNL_API int64_t cnnl_checkpoint_epoch(const cnnl_checkpoint *ck);

/**
 * @brief Set the training history: a table of @p rows rows (e.g. epochs) by @p cols columns.
 * @param ck The handle.
 * @param rows Number of rows (0 clears the history).
 * @param cols Number of columns, >= 1 when @p rows > 0.
 * @param values rows * cols values, row-major; copied.
 * @param column_names @p cols names (copied), or NULL.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p values with rows > 0, a NULL name, or an overflowing size; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_set_history(cnnl_checkpoint *ck, size_t rows, size_t cols, const float *values,
                                                 const char *const *column_names);

/**
 * @brief The training history, as float (see cnnl_checkpoint_history_f64() for the exact values).
 * @param ck The handle.
 * @param[out] rows Receives the number of rows.
 * @param[out] cols Receives the number of columns.
 * @param[out] values Receives the row-major values, borrowed from @p ck until the next change
 *        or cnnl_checkpoint_free(); NULL when empty. May itself be NULL if not wanted.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_checkpoint_history(const cnnl_checkpoint *ck, size_t *rows, size_t *cols,
                                             const float **values);

/**
 * @brief Set the training history from doubles, stored exactly (as cnnl_checkpoint_set_history()
 *        otherwise).
 * @param ck The handle.
 * @param rows Number of rows (0 clears the history).
 * @param cols Number of columns, >= 1 when @p rows > 0.
 * @param values rows * cols values, row-major; copied.
 * @param column_names @p cols names (copied), or NULL.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p values with rows > 0, a NULL name, or an overflowing size; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_set_history_f64(cnnl_checkpoint *ck, size_t rows, size_t cols,
                                                     const double *values, const char *const *column_names);

/**
 * @brief The training history as doubles: exactly the values set or saved (a checkpoint of
 *        0.1.0 stored them as float; they come back widened).
 * @param ck The handle.
 * @param[out] rows Receives the number of rows.
 * @param[out] cols Receives the number of columns.
 * @param[out] values Receives the row-major values, borrowed from @p ck until the next change
 *        or cnnl_checkpoint_free(); NULL when empty. May itself be NULL if not wanted.
 * @return #CNNL_OK, #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_checkpoint_history_f64(const cnnl_checkpoint *ck, size_t *rows, size_t *cols,
                                                 const double **values);

/**
 * @brief Name of history column @p col.
 * @param ck The handle.
 * @param col Column index.
 * @return The name, borrowed from @p ck; NULL if the columns have no names or @p col is out of range.
 */
CNNL_API const char *cnnl_checkpoint_history_column(const cnnl_checkpoint *ck, size_t col);

/**
 * @brief Store the state of a random generator under @p name (e.g. "shuffle"); replaces an
 * earlier state of that name. The model's dropout generator is saved automatically.
 * @param ck The handle.
 * @param name Letters, digits, '_', '-' and '.', 1 to 64 characters; copied.
 * @param state The generator's four words (cnnl_rng_get_state()).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or a bad name; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_set_rng(cnnl_checkpoint *ck, const char *name, const uint64_t state[4]);

/**
 * @brief A generator state stored under @p name.
 * @param ck The handle.
 * @param name The name.
 * @param[out] state Receives the four words.
 * @return #CNNL_OK; #CNNL_EINVAL; #CNNL_ENOTFOUND if no state has that name.
 */
CNNL_API cnnl_status cnnl_checkpoint_get_rng(const cnnl_checkpoint *ck, const char *name, uint64_t state[4]);

/**
 * @brief Record one part of the data split (e.g. "train" or "test") as a list of file names;
 * replaces an earlier list of that part.
 * @param ck The handle.
 * @param part Name of the part: letters, digits, '_', '-' and '.', 1 to 64 characters; copied.
 * @param files @p count file names (copied); may be NULL when @p count is 0.
 * @param count Number of names.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or names, or a bad part name; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_set_split(cnnl_checkpoint *ck, const char *part, const char *const *files,
                                               size_t count);

/**
 * @brief Number of file names recorded for split part @p part.
 * @param ck The handle (NULL gives 0).
 * @param part The part's name.
 * @return The count; 0 if the part is unknown.
 */
CNNL_API size_t cnnl_checkpoint_split_count(const cnnl_checkpoint *ck, const char *part);

/**
 * @brief The @p index-th file name of split part @p part.
 * @param ck The handle.
 * @param part The part's name.
 * @param index 0..cnnl_checkpoint_split_count()-1.
 * @return The name, borrowed from @p ck until it changes or is freed; NULL if absent.
 */
CNNL_API const char *cnnl_checkpoint_split_file(const cnnl_checkpoint *ck, const char *part, size_t index);

/**
 * @brief Store a free-form string under @p key; replaces an earlier value.
 * @param ck The handle.
 * @param key Letters, digits, '_', '-' and '.', 1 to 64 characters; copied.
 * @param value Any UTF-8 string; copied.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or a bad key; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_set_string(cnnl_checkpoint *ck, const char *key, const char *value);

/**
 * @brief A string stored under @p key.
 * @param ck The handle.
 * @param key The key.
 * @return The value, borrowed from @p ck until it changes or is freed; NULL if absent.
 */
CNNL_API const char *cnnl_checkpoint_get_string(const cnnl_checkpoint *ck, const char *key);

/**
 * @brief Save a training run's state in one safetensors file, atomically.
 *
 * Layout (tensors):
 * - `model.<state name>`: every model state tensor (F32; I64 for num_batches_tracked);
 * - `optim.<state name>`: every optimizer state tensor (exp_avg, exp_avg_sq, momentum_buffer);
 * - `train.optim_step` (I64, scalar): the optimizer's step count;
 * - `train.epoch` (I64, scalar); `train.history` (F64, [rows, cols]; F32 in files of 0.1.0,
 *   which still load);
 * - `train.model_rng` (I64, [4]): the model's dropout generator; `rng.<name>` (I64, [4]): the
 *   states set with cnnl_checkpoint_set_rng() (uint64 words stored bit for bit).
 *
 * Metadata: `format` = `cnnlite-checkpoint`, `format_version` = `1`, the model file keys of
 * @ref io that describe the architecture, `optim.lr` (the current learning rate, exact),
 * `history.columns` (JSON array), `split.<part>` (JSON array of file names: a name that is
 * valid UTF-8 as a string, any other as `{"hex": "<its bytes in hex>"}`, so that the header
 * stays UTF-8 and every name reads back byte for byte) and `user.<key>` (strings set with
 * cnnl_checkpoint_set_string()).
 * @param path Target file; replaced atomically.
 * @param model The model; only read.
 * @param opt The model's optimizer, or NULL to store no optimizer state.
 * @param ck Fields to store beside them, or NULL for none.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p path or @p model; #CNNL_EIO (the message names the
 *         file; an existing file is left untouched); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_save(const char *path, cnnl_model *model, cnnl_optimizer *opt,
                                          const cnnl_checkpoint *ck);

/**
 * @brief Restore a run from a checkpoint into an existing model and optimizer built as for
 * the saved run.
 *
 * The model's and optimizer's tensors must match the file's exactly (names, dtypes, shapes:
 * strict). Everything is validated before anything changes; on error the model and optimizer
 * are unchanged. Every value is checked: state tensors finite (integer counts 0..2^53),
 * `train.epoch` 0..INT32_MAX, `train.optim_step` 0..2^53, generator states not all zero,
 * `optim.lr` finite and >= 0, history values finite within +-1e15 and, for the columns the
 * trainer writes, within their range (epochs and counts integers, accuracies 0..100, losses,
 * times and rates >= 0), split names non-empty, relative, without "." or ".." components and
 * each in one place only; the message names the file and the field. Restores the state tensors, the model's dropout generator, the optimizer's
 * step count and learning rate.
 * @param path The checkpoint.
 * @param model The model.
 * @param opt The optimizer, or NULL to skip the optimizer state.
 * @param[out] ck If not NULL, receives the other fields, owned by the caller
 *        (cnnl_checkpoint_free()); NULL on failure.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p path or @p model; #CNNL_EIO; #CNNL_EFORMAT for a
 *         malformed file, a file that is not a checkpoint, or missing or unexpected tensors
 *         (listed in the message); #CNNL_ESHAPE for a shape that differs (named in the
 *         message); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_checkpoint_load(const char *path, cnnl_model *model, cnnl_optimizer *opt,
                                          cnnl_checkpoint **ck);

/**
 * @brief Replace the file @p path by @p size bytes, atomically: the bytes go to a new temporary
 * file in the same folder, which is flushed to disk and renamed over @p path. Every file the
 * library writes (models, checkpoints, histories, pictures, split files, image folders) is
 * written this way.
 *
 * A new file gets mode 0644 less the process's umask; a replaced file keeps its mode. On any
 * failure (missing or read-only folder, full disk, the file size limit: a process that
 * ignores SIGXFSZ gets EFBIG) the temporary file is removed and an existing @p path is left
 * as it was.
 * @param path The file to write (borrowed).
 * @param data The content (borrowed); may be NULL when @p size is 0.
 * @param size Bytes of @p data.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL argument or a path naming a folder; #CNNL_EIO with
 *         a message naming @p path and the reason; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_file_write_atomic(const char *path, const void *data, size_t size);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_IO_H */
