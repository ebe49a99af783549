/*
 * Streaming for datasets larger than their memory budget: worker threads decode and resize
 * the images of the coming batches, in the order the loader will ask for them, into a ring
 * of `depth` batch slots. A slot is refilled only after the loader has converted its batch
 * to floats, so at most `depth` batches of 8-bit pixels exist at any time. Each image goes
 * through the same cnnl__image_prepare() as in cached mode and lands at its place in the
 * slot whichever worker decoded it, so batches are bit-identical to cached ones.
 */
#include "data/stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

typedef struct slot {
    size_t batch;          /* the batch it holds or is being filled with; SIZE_MAX: free */
    size_t done, expected; /* images written so far / in the batch */
    uint8_t *pixels;       /* max_images x image_bytes */
    uint8_t *stored;       /* channels per image */
    size_t fail_pos;       /* first failing position of the batch (SIZE_MAX: none) */
    cnnl_status fail_status;
    char *fail_message;
} slot;

struct cnnl__stream {
    const cnnl_dataset *ds;
    size_t image_bytes, max_images;
    int depth, nworkers;
    slot *slots;
    pthread_t *workers;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t work, ready, idle;
    bool quit;
    unsigned gen;          /* bumped by a restart; stale results are dropped */
    int busy;              /* workers decoding right now */
    /* What to produce: positions 0..total-1 in consumption order. */
    const size_t *seq;     /* dataset index per position (the loader's, not copied) */
    const size_t *start;   /* first position of each batch; start[nb] = total */
    size_t nb, total;
    size_t next, next_batch; /* next position to hand out and its batch */
    size_t consumer;       /* the batch the loader takes next; SIZE_MAX before the first */
};

static void *worker_main(void *arg);

void cnnl__stream_free(cnnl__stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->quit = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->started; i++)
        pthread_join(s->workers[i], NULL);
    for (int i = 0; s->slots && i < s->depth; i++) {
        cnnl__free(s->slots[i].pixels);
        free(s->slots[i].stored);
        free(s->slots[i].fail_message);
    }
    free(s->slots);
    free(s->workers);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->ready);
    pthread_cond_destroy(&s->idle);
    free(s);
}

cnnl_status cnnl__stream_create(cnnl__stream **out, const cnnl_dataset *ds, size_t max_images)
{
    *out = NULL;
    cnnl__stream *s = calloc(1, sizeof *s);
    if (!s)
        return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->ready, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->ds = ds;
    s->max_images = max_images ? max_images : 1;
    s->image_bytes = (size_t)ds->size * (size_t)ds->size * (size_t)ds->channels;
    /* A quarter of the budget for the queue: 2 (one converted, one filled) to 4 batches. */
    size_t per_batch = s->image_bytes * s->max_images;
    size_t fit = per_batch ? ds->budget / 4 / per_batch : 4;
    s->depth = fit < 2 ? 2 : fit > 4 ? 4 : (int)fit;
    s->nworkers = cnnl__num_threads();
    s->consumer = SIZE_MAX;
    s->slots = calloc((size_t)s->depth, sizeof *s->slots);
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->slots || !s->workers) {
        cnnl__stream_free(s);
        return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: out of memory");
    }
    for (int i = 0; i < s->depth; i++) {
        slot *q = &s->slots[i];
        q->batch = SIZE_MAX;
        q->pixels = cnnl__alloc_array(s->max_images, s->image_bytes, false);
        q->stored = calloc(s->max_images, 1);
        if (!q->pixels || !q->stored) {
            cnnl__stream_free(s);
            return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: out of memory for a prefetch queue of "
                               "%d batches of %zu images", s->depth, s->max_images);
        }
    }
    for (int i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            cnnl__stream_free(s);
            return cnnl__error(CNNL_ENOMEM, "cnnl_loader_create: cannot start decoding threads");
        }
        s->started++;
    }
    *out = s;
    return CNNL_OK;
}

/* Caller holds the lock. Stop handing out work and wait for the workers to be idle. */
static void quiesce(cnnl__stream *s)
{
    s->gen++;
    s->next = s->total;
    while (s->busy > 0)
        pthread_cond_wait(&s->idle, &s->lock);
    for (int i = 0; i < s->depth; i++) {
        slot *q = &s->slots[i];
        q->batch = SIZE_MAX;
        free(q->fail_message);
        q->fail_message = NULL;
    }
}

void cnnl__stream_set_order(cnnl__stream *s, const size_t *seq, const size_t *start, size_t nb)
{
    pthread_mutex_lock(&s->lock);
    quiesce(s);
    s->seq = seq;
    s->start = start;
    s->nb = nb;
    s->total = start[nb];
    s->next = s->total; /* nothing until the first batch is asked for */
    s->consumer = SIZE_MAX;
    pthread_mutex_unlock(&s->lock);
}

void cnnl__stream_stop(cnnl__stream *s)
{
    pthread_mutex_lock(&s->lock);
    quiesce(s);
    s->seq = s->start = NULL;
    s->nb = s->total = 0;
    s->consumer = SIZE_MAX;
    pthread_mutex_unlock(&s->lock);
}

/* Caller holds the lock: whether position s->next may be handed out now. */
static bool claimable(const cnnl__stream *s)
{
    return s->next < s->total && s->consumer != SIZE_MAX && s->next_batch < s->consumer + (size_t)s->depth;
}

static void *worker_main(void *arg)
{
    cnnl__stream *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->quit && !claimable(s))
            pthread_cond_wait(&s->work, &s->lock);
        if (s->quit)
            break;
        size_t p = s->next++, b = s->next_batch;
        while (s->next_batch < s->nb && s->next >= s->start[s->next_batch + 1])
            s->next_batch++;
        slot *q = &s->slots[b % (size_t)s->depth];
        if (q->batch != b) {
            q->batch = b;
            q->done = 0;
            q->expected = s->start[b + 1] - s->start[b];
            q->fail_pos = SIZE_MAX;
            free(q->fail_message);
            q->fail_message = NULL;
        }
        size_t index = s->seq[p], k = p - s->start[b];
        unsigned gen = s->gen;
        s->busy++;
        pthread_mutex_unlock(&s->lock);

        cnnl__image_result r;
        cnnl__dataset_decode(s->ds, index, &r);
        if (r.status == CNNL_OK) {
            memcpy(q->pixels + k * s->image_bytes, r.pixels, s->image_bytes / (size_t)s->ds->channels *
                                                             (size_t)r.channels);
            q->stored[k] = (uint8_t)r.channels;
        }
        free(r.pixels);

        pthread_mutex_lock(&s->lock);
        s->busy--;
        if (gen == s->gen) {
            if (r.status != CNNL_OK && p < q->fail_pos) { /* the first failure in batch order */
                q->fail_pos = p;
                q->fail_status = r.status;
                free(q->fail_message);
                q->fail_message = r.message;
                r.message = NULL;
            }
            if (++q->done == q->expected)
                pthread_cond_broadcast(&s->ready);
        }
        free(r.message);
        if (s->busy == 0)
            pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

cnnl_status cnnl__stream_batch(cnnl__stream *s, size_t b, const uint8_t **pixels, const uint8_t **stored)
{
    pthread_mutex_lock(&s->lock);
    /* Batches without images for this loader are never asked for: skip them. */
    while (s->consumer != SIZE_MAX && s->consumer < b && s->start[s->consumer + 1] == s->start[s->consumer])
        s->consumer++;
    if (s->consumer != b) { /* not the batch after the last one: start over from b */
        quiesce(s);
        s->next = s->start[b];
        s->next_batch = b;
        s->consumer = b;
        pthread_cond_broadcast(&s->work);
    }
    slot *q = &s->slots[b % (size_t)s->depth];
    while (!(q->batch == b && q->done == q->expected))
        pthread_cond_wait(&s->ready, &s->lock);
    cnnl_status st = CNNL_OK;
    if (q->fail_pos != SIZE_MAX) {
        size_t index = s->seq[q->fail_pos];
        st = cnnl__error(q->fail_status, "%s/%s: %s", s->ds->root, s->ds->names[index],
                         q->fail_message ? q->fail_message : "out of memory");
    }
    pthread_mutex_unlock(&s->lock);
    *pixels = q->pixels;
    *stored = q->stored;
    return st;
}

size_t cnnl__stream_image_bytes(const cnnl__stream *s)
{
    return s->image_bytes;
}

int cnnl__stream_depth(const cnnl__stream *s)
{
    return s->depth;
}

void cnnl__stream_release(cnnl__stream *s, size_t b)
{
    pthread_mutex_lock(&s->lock);
    slot *q = &s->slots[b % (size_t)s->depth];
    if (q->batch == b) {
        q->batch = SIZE_MAX;
        s->consumer = b + 1;
        pthread_cond_broadcast(&s->work);
    }
    pthread_mutex_unlock(&s->lock);
}
