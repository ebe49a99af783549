/*
 * Entry points for programs built against older headers of libcnnlite.so.0 (docs/abi.md).
 *
 * When a public struct grows, every exported function that takes or returns it gets a new
 * version node in lib/cnnlite.sym; the functions below keep the old CNNLITE_0 versions. Each
 * takes the old, shorter layout (a frozen copy, *_v0), fills a current struct from the defaults
 * and the old fields, and calls the current function, so the library never reads or writes
 * past the end of a struct an old program passed.
 */
#include <stddef.h>
#include <string.h>

#include <stdint.h>
#include <stdio.h>

#include "cnnlite/data.h"
#include "cnnlite/train.h"

/* Export @p impl as version @p node of @p name (the impl's own name stays local). */
#define CNNL_COMPAT_SYMBOL(impl, name, node) __asm__(".symver " #impl ", " #name "@" #node)

/* ---- cnnl_dataset_opts: 0.1.0 layout (CNNLITE_0); max_pixels was added at the end. */

typedef struct cnnl_dataset_opts_v0 {
    int size;
    int channels;
    cnnl_normalization norm;
    bool strict;
    int max_dim;
} cnnl_dataset_opts_v0;

/* The old fields end here; tail padding of the old struct may hold new fields. */
#define DATASET_OPTS_V0_END (offsetof(cnnl_dataset_opts_v0, max_dim) + sizeof(int))
_Static_assert(offsetof(cnnl_dataset_opts, max_dim) == offsetof(cnnl_dataset_opts_v0, max_dim),
               "cnnl_dataset_opts must keep the 0.1.0 fields in place");

static const cnnl_dataset_opts *dataset_opts_from_v0(const cnnl_dataset_opts_v0 *old, cnnl_dataset_opts *buf)
{
    if (!old)
        return NULL;
    *buf = cnnl_dataset_opts_default();
    memcpy(buf, old, DATASET_OPTS_V0_END);
    return buf;
}

CNNL_API cnnl_dataset_opts_v0 cnnl__compat_dataset_opts_default_v0(void);
CNNL_API cnnl_status cnnl__compat_dataset_load_folder_v0(cnnl_dataset **out, const char *root,
                                                         const cnnl_dataset_opts_v0 *opts);
CNNL_API cnnl_status cnnl__compat_dataset_synthetic_v0(cnnl_dataset **out, const cnnl_synthetic_opts *syn,
                                                       const cnnl_dataset_opts_v0 *opts);
CNNL_API cnnl_status cnnl__compat_image_load_v0(cnnl_tensor **out, const char *path,
                                                const cnnl_dataset_opts_v0 *opts);

CNNL_COMPAT_SYMBOL(cnnl__compat_dataset_opts_default_v0, cnnl_dataset_opts_default, CNNLITE_0);
CNNL_API cnnl_dataset_opts_v0 cnnl__compat_dataset_opts_default_v0(void)
{
    cnnl_dataset_opts cur = cnnl_dataset_opts_default();
    cnnl_dataset_opts_v0 old;
    memset(&old, 0, sizeof old);
    memcpy(&old, &cur, DATASET_OPTS_V0_END);
    return old;
}

CNNL_COMPAT_SYMBOL(cnnl__compat_dataset_load_folder_v0, cnnl_dataset_load_folder, CNNLITE_0);
CNNL_API cnnl_status cnnl__compat_dataset_load_folder_v0(cnnl_dataset **out, const char *root,
                                                         const cnnl_dataset_opts_v0 *opts)
{
    cnnl_dataset_opts buf;
    return cnnl_dataset_load_folder(out, root, dataset_opts_from_v0(opts, &buf));
}

CNNL_COMPAT_SYMBOL(cnnl__compat_dataset_synthetic_v0, cnnl_dataset_synthetic, CNNLITE_0);
CNNL_API cnnl_status cnnl__compat_dataset_synthetic_v0(cnnl_dataset **out, const cnnl_synthetic_opts *syn,
                                                       const cnnl_dataset_opts_v0 *opts)
{
    cnnl_dataset_opts buf;
    return cnnl_dataset_synthetic(out, syn, dataset_opts_from_v0(opts, &buf));
}

CNNL_COMPAT_SYMBOL(cnnl__compat_image_load_v0, cnnl_image_load, CNNLITE_0);
CNNL_API cnnl_status cnnl__compat_image_load_v0(cnnl_tensor **out, const char *path,
                                                const cnnl_dataset_opts_v0 *opts)
{
    cnnl_dataset_opts buf;
    return cnnl_image_load(out, path, dataset_opts_from_v0(opts, &buf));
}

/* ---- cnnl_loader_opts: 0.1.0 layout (CNNLITE_0); augment was added at the end. */

typedef struct cnnl_loader_opts_v0 {
    int batch_size;
    bool shuffle;
    uint64_t seed;
} cnnl_loader_opts_v0;

#define LOADER_OPTS_V0_END (offsetof(cnnl_loader_opts_v0, seed) + sizeof(uint64_t))
_Static_assert(offsetof(cnnl_loader_opts, seed) == offsetof(cnnl_loader_opts_v0, seed),
               "cnnl_loader_opts must keep the 0.1.0 fields in place");

CNNL_API cnnl_loader_opts_v0 cnnl__compat_loader_opts_default_v0(void);
CNNL_API cnnl_status cnnl__compat_loader_create_v0(cnnl_loader **out, const cnnl_dataset *ds,
                                                   const size_t *indices, size_t n,
                                                   const cnnl_loader_opts_v0 *opts);

CNNL_COMPAT_SYMBOL(cnnl__compat_loader_opts_default_v0, cnnl_loader_opts_default, CNNLITE_0);
CNNL_API cnnl_loader_opts_v0 cnnl__compat_loader_opts_default_v0(void)
{
    cnnl_loader_opts cur = cnnl_loader_opts_default();
    cnnl_loader_opts_v0 old;
    memset(&old, 0, sizeof old);
    memcpy(&old, &cur, LOADER_OPTS_V0_END);
    return old;
}

CNNL_COMPAT_SYMBOL(cnnl__compat_loader_create_v0, cnnl_loader_create, CNNLITE_0);
CNNL_API cnnl_status cnnl__compat_loader_create_v0(cnnl_loader **out, const cnnl_dataset *ds,
                                                   const size_t *indices, size_t n,
                                                   const cnnl_loader_opts_v0 *opts)
{
    cnnl_loader_opts buf = cnnl_loader_opts_default();
    if (opts)
        memcpy(&buf, opts, LOADER_OPTS_V0_END);
    return cnnl_loader_create(out, ds, indices, n, opts ? &buf : NULL);
}

/* ---- cnnl_train_opts: 0.1.0 layout (CNNLITE_0); schedule, patience, label_smoothing and the
 * class weights were added at the end. */

typedef struct cnnl_train_opts_v0 {
    int epochs;
    cnnl_loss_kind loss;
    double lr;
    bool keep_best;
    cnnl_progress_mode progress;
    FILE *progress_stream;
    cnnl_batch_callback on_batch;
    cnnl_epoch_callback on_epoch;
    cnnl_checkpoint_callback on_checkpoint;
    int checkpoint_every;
    void *user;
} cnnl_train_opts_v0;

#define TRAIN_OPTS_V0_END (offsetof(cnnl_train_opts_v0, user) + sizeof(void *))
_Static_assert(offsetof(cnnl_train_opts, user) == offsetof(cnnl_train_opts_v0, user),
               "cnnl_train_opts must keep the 0.1.0 fields in place");

CNNL_API cnnl_train_opts_v0 cnnl__compat_train_opts_default_v0(void);
CNNL_API cnnl_status cnnl__compat_trainer_create_v0(cnnl_trainer **out, cnnl_model *model,
                                                    cnnl_optimizer *optimizer,
                                                    const cnnl_train_opts_v0 *opts);

CNNL_COMPAT_SYMBOL(cnnl__compat_train_opts_default_v0, cnnl_train_opts_default, CNNLITE_0);
CNNL_API cnnl_train_opts_v0 cnnl__compat_train_opts_default_v0(void)
{
    cnnl_train_opts cur = cnnl_train_opts_default();
    cnnl_train_opts_v0 old;
    memset(&old, 0, sizeof old);
    memcpy(&old, &cur, TRAIN_OPTS_V0_END);
    return old;
}

CNNL_COMPAT_SYMBOL(cnnl__compat_trainer_create_v0, cnnl_trainer_create, CNNLITE_0);
CNNL_API cnnl_status cnnl__compat_trainer_create_v0(cnnl_trainer **out, cnnl_model *model,
                                                    cnnl_optimizer *optimizer,
                                                    const cnnl_train_opts_v0 *opts)
{
    cnnl_train_opts buf = cnnl_train_opts_default();
    if (opts)
        memcpy(&buf, opts, TRAIN_OPTS_V0_END);
    return cnnl_trainer_create(out, model, optimizer, opts ? &buf : NULL);
}
