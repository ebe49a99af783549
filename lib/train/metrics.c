/* Confusion matrix and the one-vs-rest metrics of REPORT.md. */
#include "cnnlite/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/tensor_impl.h"

#define CNNL_MAX_CLASSES 65536

/* The sum of all cells never exceeds INT64_MAX (add and set refuse what would pass it), so
 * every row, column and one-vs-rest sum computed from them fits in int64_t. */
struct cnnl_confusion {
    int classes;
    int64_t total;   /* sum of the counts */
    int64_t *counts; /* classes x classes, row = truth */
};

/* Whether @p n more samples keep the total representable; sets the error if not. */
static cnnl_status check_room(const char *who, const cnnl_confusion *cm, uint64_t n)
{
    if (n > (uint64_t)(INT64_MAX - cm->total))
        return cnnl__error(CNNL_ERANGE, "%s: %llu more samples would take the matrix's total of %lld "
                           "past %lld", who, (unsigned long long)n, (long long)cm->total,
                           (long long)INT64_MAX);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_confusion_create(cnnl_confusion **out, int classes)
{
    if (out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_create: out is NULL");
    *out = NULL;
    if (classes < 1 || classes > CNNL_MAX_CLASSES)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_create: classes is %d; must be 1..%d",
                           classes, CNNL_MAX_CLASSES);
    cnnl_confusion *cm = calloc(1, sizeof *cm);
    if (cm == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_confusion_create: out of memory");
    cm->classes = classes;
    cm->counts = calloc((size_t)classes * (size_t)classes, sizeof *cm->counts);
    if (cm->counts == NULL) {
        free(cm);
        return cnnl__error(CNNL_ENOMEM, "cnnl_confusion_create: out of memory for %d classes",
                           classes);
    }
    *out = cm;
    return CNNL_OK;
}

CNNL_API void cnnl_confusion_free(cnnl_confusion *cm)
{
    if (cm == NULL)
        return;
    free(cm->counts);
    free(cm);
}

CNNL_API cnnl_status cnnl_confusion_reset(cnnl_confusion *cm)
{
    if (cm == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_reset: cm is NULL");
    memset(cm->counts, 0, (size_t)cm->classes * (size_t)cm->classes * sizeof *cm->counts);
    cm->total = 0;
    return CNNL_OK;
}

CNNL_API int cnnl_confusion_classes(const cnnl_confusion *cm)
{
    return cm == NULL ? 0 : cm->classes;
}

static cnnl_status check_classes(const char *who, const char *what, const int32_t *c, size_t n,
                                 int classes)
{
    for (size_t i = 0; i < n; i++)
        if (c[i] < 0 || c[i] >= classes)
            return cnnl__error(CNNL_ERANGE, "%s: %s class %d at index %zu is outside 0..%d", who,
                               what, (int)c[i], i, classes - 1);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_confusion_add(cnnl_confusion *cm, const int32_t *truth,
                                        const int32_t *predicted, size_t n)
{
    static const char who[] = "cnnl_confusion_add";
    if (cm == NULL || (n > 0 && (truth == NULL || predicted == NULL)))
        return cnnl__error(CNNL_EINVAL, "%s: cm, truth or predicted is NULL", who);
    cnnl_status st = check_classes(who, "true", truth, n, cm->classes);
    if (st == CNNL_OK)
        st = check_classes(who, "predicted", predicted, n, cm->classes);
    if (st == CNNL_OK)
        st = check_room(who, cm, n);
    if (st != CNNL_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        cm->counts[(size_t)truth[i] * (size_t)cm->classes + (size_t)predicted[i]]++;
    cm->total += (int64_t)n;
    return CNNL_OK;
}

/* First index of the largest value; NaN never wins. */
static int32_t argmax_row(const float *row, int k)
{
    int32_t best = 0;
    for (int j = 1; j < k; j++)
        if (row[j] > row[best] || (row[best] != row[best] && row[j] == row[j]))
            best = j;
    return best;
}

CNNL_API cnnl_status cnnl_confusion_add_logits(cnnl_confusion *cm, const cnnl_tensor *logits,
                                               const int32_t *truth, int32_t *predicted)
{
    static const char who[] = "cnnl_confusion_add_logits";
    if (cm == NULL || logits == NULL || truth == NULL)
        return cnnl__error(CNNL_EINVAL, "%s: cm, logits or truth is NULL", who);
    if (logits->ndim != 2 || logits->shape[1] != cm->classes)
        return cnnl__error(CNNL_ESHAPE, "%s: logits must be (n, %d); got %d dimensions, %lld columns",
                           who, cm->classes, logits->ndim,
                           logits->ndim >= 2 ? (long long)logits->shape[1] : -1LL);
    size_t n = (size_t)logits->shape[0];
    cnnl_status st = check_classes(who, "true", truth, n, cm->classes);
    if (st == CNNL_OK)
        st = check_room(who, cm, n);
    if (st != CNNL_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        int32_t p = argmax_row(logits->data + i * (size_t)cm->classes, cm->classes);
        if (predicted != NULL)
            predicted[i] = p;
        cm->counts[(size_t)truth[i] * (size_t)cm->classes + (size_t)p]++;
    }
    cm->total += (int64_t)n;
    return CNNL_OK;
}

static bool in_range(const cnnl_confusion *cm, int a, int b)
{
    return a >= 0 && a < cm->classes && b >= 0 && b < cm->classes;
}

CNNL_API cnnl_status cnnl_confusion_set(cnnl_confusion *cm, int truth, int predicted, int64_t count)
{
    if (cm == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_set: cm is NULL");
    if (count < 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_set: count is %lld; must be >= 0",
                           (long long)count);
    if (!in_range(cm, truth, predicted))
        return cnnl__error(CNNL_ERANGE, "cnnl_confusion_set: cell (%d, %d) is outside a %dx%d matrix",
                           truth, predicted, cm->classes, cm->classes);
    int64_t *cell = &cm->counts[(size_t)truth * (size_t)cm->classes + (size_t)predicted];
    int64_t rest = cm->total - *cell;
    if (count > INT64_MAX - rest)
        return cnnl__error(CNNL_ERANGE, "cnnl_confusion_set: count %lld would take the matrix's total "
                           "past %lld (the other cells hold %lld)", (long long)count,
                           (long long)INT64_MAX, (long long)rest);
    *cell = count;
    cm->total = rest + count;
    return CNNL_OK;
}

CNNL_API int64_t cnnl_confusion_get(const cnnl_confusion *cm, int truth, int predicted)
{
    if (cm == NULL || !in_range(cm, truth, predicted))
        return -1;
    return cm->counts[(size_t)truth * (size_t)cm->classes + (size_t)predicted];
}

static double ratio(int64_t num, int64_t den)
{
    return den == 0 ? 0.0 : (double)num / (double)den;
}

static int64_t total_count(const cnnl_confusion *cm)
{
    return cm->total;
}

static void class_metrics(const cnnl_confusion *cm, int k, int64_t total, cnnl_class_metrics *m)
{
    int64_t row = 0, col = 0;
    for (int j = 0; j < cm->classes; j++) {
        row += cnnl_confusion_get(cm, k, j);
        col += cnnl_confusion_get(cm, j, k);
    }
    m->tp = cnnl_confusion_get(cm, k, k);
    m->fn = row - m->tp;
    m->fp = col - m->tp;
    m->tn = total - m->tp - m->fn - m->fp;
    m->accuracy = ratio(m->tp + m->tn, total);
    m->precision = ratio(m->tp, m->tp + m->fp);
    m->recall = ratio(m->tp, m->tp + m->fn);
    double pr = m->precision + m->recall;
    m->f1 = pr == 0.0 ? 0.0 : 2.0 * m->precision * m->recall / pr;
}

CNNL_API cnnl_status cnnl_confusion_class(const cnnl_confusion *cm, int cls, cnnl_class_metrics *out)
{
    if (cm == NULL || out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_class: cm or out is NULL");
    if (cls < 0 || cls >= cm->classes)
        return cnnl__error(CNNL_ERANGE, "cnnl_confusion_class: class %d is outside 0..%d", cls,
                           cm->classes - 1);
    class_metrics(cm, cls, total_count(cm), out);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_confusion_summary(const cnnl_confusion *cm, cnnl_metrics_summary *out)
{
    if (cm == NULL || out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_confusion_summary: cm or out is NULL");
    memset(out, 0, sizeof *out);
    out->total = total_count(cm);
    for (int k = 0; k < cm->classes; k++) {
        cnnl_class_metrics m;
        class_metrics(cm, k, out->total, &m);
        out->correct += m.tp;
        out->macro_accuracy += m.accuracy;
        out->macro_precision += m.precision;
        out->macro_recall += m.recall;
        out->macro_f1 += m.f1;
    }
    out->accuracy = ratio(out->correct, out->total);
    out->macro_accuracy /= cm->classes;
    out->macro_precision /= cm->classes;
    out->macro_recall /= cm->classes;
    out->macro_f1 /= cm->classes;
    return CNNL_OK;
}
