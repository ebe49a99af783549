/*
 * Learning-rate schedules as pure functions of the position in a run (and, for the plateau
 * schedule, of the history), so a resumed run follows them without saved state; and the
 * cross-entropy with label smoothing and class weights the trainer uses for regularized runs.
 */
#include "cnnlite/train.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "core/tensor_impl.h"
#include "train/train_internal.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

CNNL_API cnnl_schedule_opts cnnl_schedule_opts_default(void)
{
    cnnl_schedule_opts s;
    memset(&s, 0, sizeof s);
    s.kind = CNNL_SCHEDULE_CONSTANT;
    s.warmup_epochs = 1;
    s.step_size = 5;
    s.gamma = 0.1;
    s.min_factor = 0.01;
    s.plateau_patience = 2;
    return s;
}

cnnl_status cnnl__schedule_check(const char *who, const cnnl_schedule_opts *s)
{
    if ((int)s->kind < CNNL_SCHEDULE_CONSTANT || (int)s->kind > CNNL_SCHEDULE_PLATEAU)
        return cnnl__error(CNNL_EINVAL, "%s: schedule.kind %d is unknown", who, (int)s->kind);
    if (s->warmup_epochs < 0)
        return cnnl__error(CNNL_EINVAL, "%s: schedule.warmup_epochs is %d; must be >= 0", who, s->warmup_epochs);
    if (s->step_size < 1)
        return cnnl__error(CNNL_EINVAL, "%s: schedule.step_size is %d; must be >= 1", who, s->step_size);
    if (!(s->gamma > 0.0 && s->gamma <= 1.0))
        return cnnl__error(CNNL_EINVAL, "%s: schedule.gamma is %g; must be in (0, 1]", who, s->gamma);
    if (!(s->min_factor >= 0.0 && s->min_factor <= 1.0))
        return cnnl__error(CNNL_EINVAL, "%s: schedule.min_factor is %g; must be in [0, 1]", who, s->min_factor);
    if (s->plateau_patience < 0)
        return cnnl__error(CNNL_EINVAL, "%s: schedule.plateau_patience is %d; must be >= 0", who,
                           s->plateau_patience);
    return CNNL_OK;
}

static double cos_anneal(double start, double end, double pct)
{
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

CNNL_API cnnl_status cnnl_schedule_lr(const cnnl_schedule_opts *sched, double base_lr, int epochs,
                                      int64_t batches, int epoch, int64_t batch,
                                      const cnnl_history *history, double *lr)
{
    static const char who[] = "cnnl_schedule_lr";
    if (sched == NULL || lr == NULL)
        return cnnl__error(CNNL_EINVAL, "%s: sched or lr is NULL", who);
    cnnl_status st = cnnl__schedule_check(who, sched);
    if (st != CNNL_OK)
        return st;
    if (!(base_lr > 0.0) || !isfinite(base_lr) || epochs < 1 || batches < 1 || epoch < 0 ||
        epoch >= epochs || batch < 0 || batch >= batches)
        return cnnl__error(CNNL_EINVAL, "%s: base_lr %g, epoch %d of %d, batch %lld of %lld: out of range",
                           who, base_lr, epoch, epochs, (long long)batch, (long long)batches);
    double total = (double)epochs * (double)batches, step = (double)epoch * (double)batches + (double)batch;
    switch (sched->kind) {
    case CNNL_SCHEDULE_CONSTANT:
        *lr = base_lr;
        break;
    case CNNL_SCHEDULE_STEP:
        *lr = base_lr * pow(sched->gamma, (double)(epoch / sched->step_size));
        break;
    case CNNL_SCHEDULE_COSINE: {
        double warm = (double)sched->warmup_epochs * (double)batches;
        if (warm > total - 1)
            warm = total - 1;
        double floor_lr = base_lr * sched->min_factor;
        if (step < warm)
            *lr = base_lr * (step + 1.0) / (warm + 1.0);
        else
            *lr = cos_anneal(base_lr, floor_lr, total - 1 > warm ? (step - warm) / (total - 1 - warm) : 1.0);
        break;
    }
    case CNNL_SCHEDULE_ONE_CYCLE: {
        double initial = base_lr / 25.0, final_lr = initial / 1e4;
        double end1 = 0.3 * total - 1.0, end2 = total - 1.0;
        if (step <= end1)
            *lr = cos_anneal(initial, base_lr, end1 > 0 ? step / end1 : 1.0);
        else
            *lr = cos_anneal(base_lr, final_lr, end2 > end1 ? (step - end1) / (end2 - end1) : 1.0);
        break;
    }
    case CNNL_SCHEDULE_PLATEAU: {
        double rate = base_lr, best = INFINITY;
        int bad = 0;
        size_t n = cnnl_history_count(history);
        for (size_t i = 0; i < n; i++) {
            cnnl_epoch_stats e;
            cnnl_history_at(history, i, &e);
            if (e.epoch > epoch)
                break;
            if (e.test_loss < best * (1.0 - 1e-4)) {
                best = e.test_loss;
                bad = 0;
            } else if (++bad > sched->plateau_patience) {
                rate *= sched->gamma;
                bad = 0;
            }
        }
        *lr = rate;
        break;
    }
    }
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_loss_cross_entropy_ex(const cnnl_tensor *input, const int32_t *labels, size_t n,
                                                double smoothing, const float *weights, float *loss,
                                                cnnl_tensor *grad)
{
    static const char who[] = "cnnl_loss_cross_entropy_ex";
    if (input == NULL || labels == NULL || loss == NULL)
        return cnnl__error(CNNL_EINVAL, "%s: input, labels or loss is NULL", who);
    if (!(smoothing >= 0.0 && smoothing < 1.0))
        return cnnl__error(CNNL_EINVAL, "%s: smoothing is %g; must be in [0, 1)", who, smoothing);
    if (input->ndim != 2 || (size_t)input->shape[0] != n || input->shape[1] < 1)
        return cnnl__error(CNNL_ESHAPE, "%s: input must be (%zu, classes)", who, n);
    size_t c = (size_t)input->shape[1];
    if (grad != NULL && cnnl_tensor_numel(grad) != n * c)
        return cnnl__error(CNNL_ESHAPE, "%s: grad has %zu elements; input %zu", who,
                           cnnl_tensor_numel(grad), n * c);
    double wsum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || (size_t)labels[i] >= c)
            return cnnl__error(CNNL_ERANGE, "%s: labels[%zu] is %d; must be in [0, %zu)", who, i,
                               (int)labels[i], c);
        wsum += weights ? weights[labels[i]] : 1.0;
    }
    for (size_t i = 0; i < n * c; i++)
        if (!isfinite(input->data[i]))
            return cnnl__error(CNNL_ENUMERIC, "%s: input[%zu] is not finite", who, i);
    double total = 0.0;
    double e = smoothing / (double)c;
    for (size_t i = 0; i < n; i++) {
        const float *z = input->data + i * c;
        double mx = z[0];
        for (size_t k = 1; k < c; k++)
            mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (size_t k = 0; k < c; k++)
            s += exp(z[k] - mx);
        double lse = mx + log(s);
        size_t y = (size_t)labels[i];
        double wy = weights ? weights[y] : 1.0, csum = 0.0;
        for (size_t k = 0; k < c; k++) {
            double wk = weights ? weights[k] : 1.0;
            double ck = e * wk + (k == y ? (1.0 - smoothing) * wy : 0.0);
            total += ck * (lse - z[k]);
            csum += ck;
        }
        if (grad != NULL) {
            float *g = grad->data + i * c;
            for (size_t k = 0; k < c; k++) {
                double wk = weights ? weights[k] : 1.0;
                double ck = e * wk + (k == y ? (1.0 - smoothing) * wy : 0.0);
                g[k] = (float)((csum * exp(z[k] - lse) - ck) / wsum);
            }
        }
    }
    double v = total / wsum;
    if (!isfinite(v))
        return cnnl__error(CNNL_ENUMERIC, "%s: the loss overflows", who);
    *loss = (float)v;
    return CNNL_OK;
}
