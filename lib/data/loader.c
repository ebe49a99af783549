/*
 * Batch loader: an order per epoch (shuffled from (seed, epoch) alone) and float batches
 * built in parallel into storage that is reused from batch to batch.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng_impl.h"
#include "core/tensor_impl.h"
#include "data/augment.h"
#include "data/data_impl.h"
#include "data/stream.h"

#include <omp.h>

struct cnnl_loader {
    const cnnl_dataset *ds;
    cnnl_loader_opts opts;
    size_t n;
    size_t *base;     /* indices in the given order */
    size_t *order;    /* this epoch's order */
    cnnl_tensor *batch;
    int32_t *labels;
    cnnl__stream *stream; /* streamed dataset: decoding threads (stream.c) */
    size_t *seq, *start;  /* streamed: this shard's images in batch order, batch offsets */
    int epoch;        /* current epoch (seeds the augmentation) */
    bool augment;     /* any transform on */
    float *aug_work;  /* augmentation scratch: aug_threads areas */
    int aug_threads;
};

static void shard_range(const cnnl_loader *ld, size_t b, size_t *count, size_t *lo, size_t *n);
static void shuffle(cnnl_loader *loader, int epoch);

CNNL_API cnnl_loader_opts cnnl_loader_opts_default(void)
{
    cnnl_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch_size = 32;
    o.shuffle = false;
    o.seed = 0;
    o.shard_count = 1;
    o.shard_index = 0;
    o.augment = cnnl_augment_opts_default();
    return o;
}

CNNL_API void cnnl_loader_free(cnnl_loader *loader)
{
    if (!loader)
        return;
    cnnl__stream_free(loader->stream);
    free(loader->seq);
    free(loader->start);
    cnnl__free(loader->base);
    cnnl__free(loader->order);
    cnnl__free(loader->labels);
    cnnl__free(loader->aug_work);
    cnnl_tensor_free(loader->batch);
    free(loader);
}

static cnnl_status copy_indices(cnnl_loader *ld, const size_t *indices, size_t n)
{
    ld->n = indices ? n : ld->ds->count;
    if (ld->n == 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_create: no images selected");
    ld->base = cnnl__alloc_array(ld->n, sizeof(size_t), false);
    ld->order = cnnl__alloc_array(ld->n, sizeof(size_t), false);
    size_t bs = (size_t)ld->opts.batch_size < ld->n ? (size_t)ld->opts.batch_size : ld->n;
    ld->labels = cnnl__alloc_array(bs, sizeof(int32_t), false);
    if (!ld->base || !ld->order || !ld->labels)
        return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: out of memory for %zu indices", ld->n);
    for (size_t i = 0; i < ld->n; i++) {
        size_t k = indices ? indices[i] : i;
        if (k >= ld->ds->count)
            return cnnl__error(CNNL_ERANGE, "cnnl_loader_create: indices[%zu] is %zu; the dataset has %zu images",
                               i, k, ld->ds->count);
        ld->base[i] = k;
    }
    const cnnl_dataset *ds = ld->ds;
    if (ds->streamed) {
        size_t nb = ld->n / (size_t)ld->opts.batch_size + (ld->n % (size_t)ld->opts.batch_size != 0);
        ld->seq = malloc(ld->n * sizeof *ld->seq);
        ld->start = malloc((nb + 1) * sizeof *ld->start);
        if (!ld->seq || !ld->start)
            return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: out of memory for %zu indices", ld->n);
        cnnl_status st = cnnl__stream_create(&ld->stream, ds, bs);
        if (st != CNNL_OK)
            return st;
    }
    /* The full-size batch now, so that building batches never allocates. */
    cnnl_status st = cnnl__tensor_ensure4(&ld->batch, (int64_t)bs, ds->channels, ds->size, ds->size);
    return st == CNNL_OK ? st : cnnl__error_context(st, "cnnl_loader_create");
}

CNNL_API cnnl_status cnnl_loader_create(cnnl_loader **out, const cnnl_dataset *ds,
                                        const size_t *indices, size_t n,
                                        const cnnl_loader_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !ds)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_create: %s is NULL", out ? "ds" : "out");
    cnnl_loader_opts o = opts ? *opts : cnnl_loader_opts_default();
    if (o.batch_size < 1)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_create: batch_size is %d; must be >= 1", o.batch_size);
    if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_create: shard_index %d of shard_count %d; need "
                           "shard_count >= 1 and 0 <= shard_index < shard_count", o.shard_index,
                           o.shard_count);
    cnnl_status st = cnnl__augment_check("cnnl_loader_create", &o.augment);
    if (st != CNNL_OK)
        return st;
    cnnl_loader *ld = calloc(1, sizeof *ld);
    if (!ld)
        return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: out of memory");
    ld->ds = ds;
    ld->opts = o;
    ld->augment = cnnl__augment_enabled(&o.augment);
    st = copy_indices(ld, indices, n);
    if (st == CNNL_OK)
        st = cnnl_loader_start_epoch(ld, 0);
    if (st != CNNL_OK) {
        cnnl_loader_free(ld);
        return st;
    }
    *out = ld;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_loader_start_epoch(cnnl_loader *loader, int epoch)
{
    if (!loader)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_start_epoch: loader is NULL");
    if (epoch < 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_start_epoch: epoch is %d; must be >= 0", epoch);
    if (loader->stream)
        cnnl__stream_stop(loader->stream);
    memcpy(loader->order, loader->base, loader->n * sizeof(size_t));
    loader->epoch = epoch;
    if (loader->opts.shuffle)
        shuffle(loader, epoch);
    if (loader->stream) { /* this shard's images of every batch, in order */
        size_t nb = cnnl_loader_num_batches(loader), pos = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t m, lo, k;
            shard_range(loader, b, &m, &lo, &k);
            loader->start[b] = pos;
            for (size_t i = 0; i < k; i++)
                loader->seq[pos++] = loader->order[lo + i];
        }
        loader->start[nb] = pos;
        cnnl__stream_set_order(loader->stream, loader->seq, loader->start, nb);
    }
    return CNNL_OK;
}

static void shuffle(cnnl_loader *loader, int epoch)
{
    /* The epoch selects the stream, so any epoch's order is reproducible on its own. */
    cnnl_rng rng;
    cnnl__rng_seed(&rng, loader->opts.seed, CNNL_RNG_SHUFFLE | ((uint64_t)epoch + 1) << 32);
    for (size_t i = loader->n; i > 1; i--) {
        size_t j = (size_t)cnnl__rng_below(&rng, i);
        size_t t = loader->order[i - 1];
        loader->order[i - 1] = loader->order[j];
        loader->order[j] = t;
    }
}

CNNL_API size_t cnnl_loader_count(const cnnl_loader *loader)
{
    return loader ? loader->n : 0;
}

CNNL_API size_t cnnl_loader_num_batches(const cnnl_loader *loader)
{
    if (!loader)
        return 0;
    size_t bs = (size_t)loader->opts.batch_size;
    return loader->n / bs + (loader->n % bs != 0);
}

CNNL_API size_t cnnl_loader_index(const cnnl_loader *loader, size_t i)
{
    return loader && i < loader->n ? loader->order[i] : SIZE_MAX;
}

/* Global batch b covers order[first .. first+count); this shard takes [*lo, *lo + *n). */
static void shard_range(const cnnl_loader *ld, size_t b, size_t *count, size_t *lo, size_t *n)
{
    size_t bs = (size_t)ld->opts.batch_size, first = b * bs;
    size_t m = ld->n - first < bs ? ld->n - first : bs;
    size_t k = (size_t)ld->opts.shard_count, r = (size_t)ld->opts.shard_index;
    size_t a = first + r * m / k, e = first + (r + 1) * m / k;
    *count = m;
    *lo = a;
    *n = e - a;
}

CNNL_API cnnl_status cnnl_loader_batch_sizes(const cnnl_loader *loader, size_t b, size_t *global,
                                             size_t *local)
{
    if (!loader)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_batch_sizes: loader is NULL");
    size_t nb = cnnl_loader_num_batches(loader);
    if (b >= nb)
        return cnnl__error(CNNL_ERANGE, "cnnl_loader_batch_sizes: batch %zu; the loader has %zu batches", b, nb);
    size_t m, lo, n;
    shard_range(loader, b, &m, &lo, &n);
    if (global)
        *global = m;
    if (local)
        *local = n;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_loader_batch(cnnl_loader *loader, size_t b, const cnnl_tensor **images,
                                       const int32_t **labels)
{
    if (images)
        *images = NULL;
    if (labels)
        *labels = NULL;
    if (!loader || !images)
        return cnnl__error(CNNL_EINVAL, "cnnl_loader_batch: %s is NULL", loader ? "images" : "loader");
    size_t nb = cnnl_loader_num_batches(loader);
    if (b >= nb)
        return cnnl__error(CNNL_ERANGE, "cnnl_loader_batch: batch %zu; the loader has %zu batches", b, nb);
    const cnnl_dataset *ds = loader->ds;
    size_t global, first, count;
    shard_range(loader, b, &global, &first, &count);
    if (count == 0)
        return cnnl__error(CNNL_ERANGE, "cnnl_loader_batch: shard %d of %d has no image of batch %zu "
                           "(%zu images)", loader->opts.shard_index, loader->opts.shard_count, b, global);
    cnnl_status st = cnnl__tensor_ensure4(&loader->batch, (int64_t)count, ds->channels, ds->size, ds->size);
    if (st != CNNL_OK)
        return cnnl__error_context(st, "cnnl_loader_batch");
    float *data = loader->batch->data;
    size_t per_image = (size_t)ds->channels * (size_t)ds->size * (size_t)ds->size;
    const size_t *idx = loader->order + first;
    long n = (long)count;
    int threads = cnnl__num_threads();
    size_t plane = (size_t)ds->size * (size_t)ds->size, work = 0;
    if (loader->augment) {
        /* scratch per thread, allocated when the thread count first reaches this value */
        work = cnnl__augment_work_floats(ds->size);
        if (threads > loader->aug_threads) {
            float *w = cnnl__alloc_array((size_t)threads * work, sizeof(float), false);
            if (!w)
                return cnnl__error_context(CNNL_ENOMEM, "cnnl_loader_batch");
            cnnl__free(loader->aug_work);
            loader->aug_work = w;
            loader->aug_threads = threads;
        }
    }
    /* a streamed batch holds this shard's images in order, decoded by the stream's threads */
    const uint8_t *spix = NULL, *sstored = NULL;
    size_t ib = 0;
    if (loader->stream) {
        st = cnnl__stream_batch(loader->stream, b, &spix, &sstored);
        if (st != CNNL_OK)
            return cnnl__error_context(st, "cnnl_loader_batch: batch %zu", b);
        ib = cnnl__stream_image_bytes(loader->stream);
    }
    if (loader->augment) {
        const cnnl_augment_opts *a = &loader->opts.augment;
        uint64_t seed = loader->opts.seed;
        int epoch = loader->epoch;
        float *scratch = loader->aug_work;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (long i = 0; i < n; i++) {
            const uint8_t *src = spix ? spix + (size_t)i * ib : ds->pixels[idx[i]];
            int stored = spix ? sstored[i] : ds->stored[idx[i]];
            cnnl__augment_convert(ds, idx[i], src, stored, a, seed, epoch,
                                  scratch + (size_t)omp_get_thread_num() * work, data + (size_t)i * per_image);
        }
    } else if (spix) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (long i = 0; i < n; i++)
            cnnl__pixels_convert(spix + (size_t)i * ib, sstored[i], ds->channels, plane,
                                 (const float(*)[256])ds->lut, data + (size_t)i * per_image);
    } else {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (long i = 0; i < n; i++)
            cnnl__dataset_convert(ds, idx[i], data + (size_t)i * per_image);
    }
    if (loader->stream)
        cnnl__stream_release(loader->stream, b);
    for (size_t i = 0; i < count; i++)
        loader->labels[i] = ds->labels[idx[i]];
    *images = loader->batch;
    if (labels)
        *labels = loader->labels;
    return CNNL_OK;
}
