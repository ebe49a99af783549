/* Per-epoch training history and its CSV / JSON writers. */
#include "cnnlite/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "train/strbuf.h"

struct cnnl_history {
    cnnl_epoch_stats *epochs;
    size_t count, cap;
};

CNNL_API cnnl_status cnnl_history_create(cnnl_history **out)
{
    if (out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_history_create: out of memory");
    return CNNL_OK;
}

CNNL_API void cnnl_history_free(cnnl_history *history)
{
    if (history == NULL)
        return;
    free(history->epochs);
    free(history);
}

CNNL_API cnnl_status cnnl_history_clear(cnnl_history *history)
{
    if (history == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_clear: history is NULL");
    history->count = 0;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_history_append(cnnl_history *history, const cnnl_epoch_stats *stats)
{
    if (history == NULL || stats == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_append: history or stats is NULL");
    if (history->count == history->cap) {
        size_t cap = history->cap ? 2 * history->cap : 16;
        cnnl_epoch_stats *p = realloc(history->epochs, cap * sizeof *p);
        if (p == NULL)
            return cnnl__error(CNNL_ENOMEM, "cnnl_history_append: out of memory");
        history->epochs = p;
        history->cap = cap;
    }
    history->epochs[history->count++] = *stats;
    return CNNL_OK;
}

CNNL_API size_t cnnl_history_count(const cnnl_history *history)
{
    return history == NULL ? 0 : history->count;
}

CNNL_API cnnl_status cnnl_history_at(const cnnl_history *history, size_t index, cnnl_epoch_stats *out)
{
    if (history == NULL || out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_at: history or out is NULL");
    if (index >= history->count)
        return cnnl__error(CNNL_ERANGE, "cnnl_history_at: index %zu; the history has %zu epochs",
                           index, history->count);
    *out = history->epochs[index];
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_history_best(const cnnl_history *history, double *accuracy, int *epoch)
{
    if (history == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_best: history is NULL");
    double best = 0.0;
    int at = 0;
    for (size_t i = 0; i < history->count; i++) {
        if (at == 0 || history->epochs[i].test_accuracy > best) {
            best = history->epochs[i].test_accuracy;
            at = history->epochs[i].epoch;
        }
    }
    if (accuracy != NULL)
        *accuracy = best;
    if (epoch != NULL)
        *epoch = at;
    return CNNL_OK;
}

/* Shortest text that reads back to the same double; JSON has no NaN or infinity. */
static void put_number(cnnl__strbuf *sb, double v, bool json)
{
    if (!isfinite(v)) {
        cnnl__sb_printf(sb, "%s", json ? "null" : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    cnnl__sb_printf(sb, "%s", buf);
}

#define N_FIELDS 12
static const char *const field_names[N_FIELDS] = {
    "epoch", "train_loss", "train_loss_mean", "train_accuracy", "test_loss", "test_accuracy",
    "seconds", "images_per_second", "learning_rate", "train_batches", "train_images", "test_images",
};

static void field_values(const cnnl_epoch_stats *e, double v[N_FIELDS])
{
    const double vals[N_FIELDS] = {
        e->epoch, e->train_loss, e->train_loss_mean, e->train_accuracy, e->test_loss,
        e->test_accuracy, e->seconds, e->images_per_second, e->learning_rate,
        (double)e->train_batches, (double)e->train_images, (double)e->test_images,
    };
    memcpy(v, vals, sizeof vals);
}

static void write_csv(const cnnl_history *h, cnnl__strbuf *sb)
{
    for (int f = 0; f < N_FIELDS; f++)
        cnnl__sb_printf(sb, "%s%s", field_names[f], f + 1 < N_FIELDS ? "," : "\n");
    for (size_t i = 0; i < h->count; i++) {
        double v[N_FIELDS];
        field_values(&h->epochs[i], v);
        for (int f = 0; f < N_FIELDS; f++) {
            put_number(sb, v[f], false);
            cnnl__sb_printf(sb, "%s", f + 1 < N_FIELDS ? "," : "\n");
        }
    }
}

static void write_json(const cnnl_history *h, cnnl__strbuf *sb)
{
    double best;
    int best_epoch;
    cnnl_history_best(h, &best, &best_epoch);
    cnnl__sb_printf(sb, "{\n  \"best_test_accuracy\": ");
    put_number(sb, best, true);
    cnnl__sb_printf(sb, ",\n  \"best_epoch\": %d,\n  \"epochs\": [", best_epoch);
    for (size_t i = 0; i < h->count; i++) {
        double v[N_FIELDS];
        field_values(&h->epochs[i], v);
        cnnl__sb_printf(sb, "%s\n    {", i ? "," : "");
        for (int f = 0; f < N_FIELDS; f++) {
            cnnl__sb_printf(sb, "%s\"%s\": ", f ? ", " : "", field_names[f]);
            put_number(sb, v[f], true);
        }
        cnnl__sb_printf(sb, "}");
    }
    cnnl__sb_printf(sb, "%s]\n}\n", h->count ? "\n  " : "");
}

static bool ends_with_json(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcasecmp(path + n - 5, ".json") == 0;
}

CNNL_API cnnl_status cnnl_history_save(const cnnl_history *history, const char *path,
                                       cnnl_history_format format)
{
    if (history == NULL || path == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_save: history or path is NULL");
    if (format == CNNL_HISTORY_AUTO)
        format = ends_with_json(path) ? CNNL_HISTORY_JSON : CNNL_HISTORY_CSV;
    if (format != CNNL_HISTORY_CSV && format != CNNL_HISTORY_JSON)
        return cnnl__error(CNNL_EINVAL, "cnnl_history_save: unknown format %d", (int)format);
    cnnl__strbuf sb = {0};
    if (format == CNNL_HISTORY_CSV)
        write_csv(history, &sb);
    else
        write_json(history, &sb);
    cnnl_status st = cnnl__sb_write_atomic(&sb, path, "cnnl_history_save");
    cnnl__sb_free(&sb);
    return st;
}
