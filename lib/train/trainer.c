/* The training loop: epochs of forward / loss / backward / optimizer steps, evaluation,
 * history, best weights, callbacks, stop requests. */
#include "cnnlite/train.h"
#include "cnnlite/io.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/tensor_impl.h"
#include "train/dist.h"
#include "train/train_internal.h"

/* Set by cnnl_trainer_request_stop() from any thread or signal handler: a lock-free atomic,
 * which C11 allows in signal handlers and which threads may share without a data race. */
static atomic_int stop_flag;
#if ATOMIC_INT_LOCK_FREE != 2
#  error "cnnl_trainer_request_stop() needs a lock-free atomic int to be async-signal-safe"
#endif

struct cnnl_trainer {
    cnnl_model *model;
    cnnl_optimizer *opt;
    bool owns_opt;
    cnnl_train_opts opts;
    cnnl_history *history;
    cnnl_progress *progress;
    cnnl_train_position pos;
    cnnl_tensor *grad;       /* d loss / d logits, reused */
    unsigned char *best;     /* copy of every state tensor at the best test accuracy */
    size_t best_bytes;
    bool have_best;
    double best_accuracy;
    cnnl__dist *dist;        /* with opts.comm */
    bool stop_all;           /* with opts.comm: some process asked to stop */
    double base_lr;          /* the optimizer's rate at creation: the schedule's reference */
    float *class_weights;    /* copy of opts.class_weights, or NULL */
};

CNNL_API void cnnl_trainer_request_stop(void)
{
    atomic_store(&stop_flag, 1);
}

CNNL_API bool cnnl_trainer_stop_requested(void)
{
    return atomic_load(&stop_flag) != 0;
}

CNNL_API void cnnl_trainer_clear_stop(void)
{
    atomic_store(&stop_flag, 0);
}

CNNL_API cnnl_train_opts cnnl_train_opts_default(void)
{
    cnnl_train_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = 15;
    o.loss = CNNL_LOSS_CROSS_ENTROPY;
    o.lr = 1e-3;
    o.progress = CNNL_PROGRESS_OFF; /* a library draws nothing unless its caller asks */
    o.checkpoint_every = 1;
    o.comm = NULL;
    o.comm_bucket_bytes = (size_t)4 << 20;
    o.schedule = cnnl_schedule_opts_default();
    return o;
}

static cnnl_status check_opts(const cnnl_train_opts *o)
{
    static const char who[] = "cnnl_trainer_create";
    if (o->epochs < 1)
        return cnnl__error(CNNL_EINVAL, "%s: epochs is %d; must be >= 1", who, o->epochs);
    if (o->loss != CNNL_LOSS_CROSS_ENTROPY && o->loss != CNNL_LOSS_HINGE)
        return cnnl__error(CNNL_EINVAL, "%s: loss %d is not a class-index loss (cross-entropy or hinge)",
                           who, (int)o->loss);
    if (!(o->lr > 0.0) || !isfinite(o->lr))
        return cnnl__error(CNNL_EINVAL, "%s: lr is %g; must be a positive number", who, o->lr);
    if (o->checkpoint_every < 0)
        return cnnl__error(CNNL_EINVAL, "%s: checkpoint_every is %d; must be >= 0", who,
                           o->checkpoint_every);
    if (o->comm != NULL) {
        cnnl_status cst = cnnl_comm_check(o->comm);
        if (cst != CNNL_OK)
            return cnnl__error_context(cst, "%s: opts.comm", who);
    }
    cnnl_status st = cnnl__schedule_check(who, &o->schedule);
    if (st != CNNL_OK)
        return st;
    if (o->patience < 0)
        return cnnl__error(CNNL_EINVAL, "%s: patience is %d; must be >= 0", who, o->patience);
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing < 1.0))
        return cnnl__error(CNNL_EINVAL, "%s: label_smoothing is %g; must be in [0, 1)", who,
                           o->label_smoothing);
    if (o->class_weights != NULL && o->num_class_weights < 1)
        return cnnl__error(CNNL_EINVAL, "%s: num_class_weights is %d; must be >= 1", who,
                           o->num_class_weights);
    for (int k = 0; o->class_weights != NULL && k < o->num_class_weights; k++)
        if (!(o->class_weights[k] > 0.0f) || !isfinite(o->class_weights[k]))
            return cnnl__error(CNNL_EINVAL, "%s: class_weights[%d] is %g; must be a positive number",
                               who, k, (double)o->class_weights[k]);
    if ((o->label_smoothing > 0.0 || o->class_weights != NULL) && o->loss != CNNL_LOSS_CROSS_ENTROPY)
        return cnnl__error(CNNL_EINVAL, "%s: label_smoothing and class_weights need the cross-entropy loss", who);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_trainer_create(cnnl_trainer **out, cnnl_model *model, cnnl_optimizer *optimizer,
                                         const cnnl_train_opts *opts)
{
    if (out == NULL || model == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_create: out or model is NULL");
    *out = NULL;
    cnnl_train_opts o = opts != NULL ? *opts : cnnl_train_opts_default();
    cnnl_status st = check_opts(&o);
    if (st != CNNL_OK)
        return st;
    cnnl_trainer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_create: out of memory");
    t->model = model;
    if (o.patience > 0)
        o.keep_best = true;
    t->opts = o;
    t->opts.class_weights = NULL;
    t->opt = optimizer;
    if (optimizer == NULL) {
        cnnl_adam_opts ao = cnnl_adam_opts_default();
        ao.lr = o.lr;
        st = cnnl_optimizer_adam(&t->opt, model, &ao);
        t->owns_opt = true;
    }
    if (st == CNNL_OK && o.class_weights != NULL) {
        t->class_weights = malloc((size_t)o.num_class_weights * sizeof(float));
        if (t->class_weights == NULL)
            st = cnnl__error(CNNL_ENOMEM, "cnnl_trainer_create: out of memory");
        else
            memcpy(t->class_weights, o.class_weights, (size_t)o.num_class_weights * sizeof(float));
        t->opts.class_weights = t->class_weights;
    }
    if (st == CNNL_OK)
        t->base_lr = cnnl_optimizer_get_lr(t->opt);
    if (st == CNNL_OK)
        st = cnnl_history_create(&t->history);
    if (st == CNNL_OK)
        st = cnnl_progress_create(&t->progress, o.progress_stream, o.progress);
    if (st == CNNL_OK && o.comm != NULL)
        st = cnnl__dist_create(&t->dist, model, o.comm, o.comm_bucket_bytes ? o.comm_bucket_bytes : 1);
    if (st != CNNL_OK) {
        cnnl_trainer_free(t);
        return st;
    }
    *out = t;
    return CNNL_OK;
}

CNNL_API void cnnl_trainer_free(cnnl_trainer *trainer)
{
    if (trainer == NULL)
        return;
    if (trainer->owns_opt)
        cnnl_optimizer_free(trainer->opt);
    cnnl__dist_free(trainer->dist);
    cnnl_history_free(trainer->history);
    cnnl_progress_free(trainer->progress);
    cnnl_tensor_free(trainer->grad);
    free(trainer->best);
    free(trainer->class_weights);
    free(trainer);
}

CNNL_API cnnl_status cnnl_trainer_set_sync_bn(cnnl_trainer *trainer, bool on)
{
    if (trainer == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_set_sync_bn: trainer is NULL");
    return trainer->dist != NULL ? cnnl__dist_set_sync_bn(trainer->dist, on) : CNNL_OK;
}

CNNL_API cnnl_history *cnnl_trainer_history(cnnl_trainer *trainer)
{
    return trainer == NULL ? NULL : trainer->history;
}

CNNL_API cnnl_optimizer *cnnl_trainer_optimizer(cnnl_trainer *trainer)
{
    return trainer == NULL ? NULL : trainer->opt;
}

CNNL_API cnnl_status cnnl_trainer_get_position(const cnnl_trainer *trainer, cnnl_train_position *out)
{
    if (trainer == NULL || out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_get_position: trainer or out is NULL");
    *out = trainer->pos;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_trainer_set_position(cnnl_trainer *trainer, const cnnl_train_position *pos)
{
    if (trainer == NULL || pos == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_set_position: trainer or pos is NULL");
    if (pos->epoch < 0 || pos->batch < 0 || pos->correct < 0 || pos->images < 0 ||
        pos->correct > pos->images || !(pos->seconds >= 0) || !isfinite(pos->loss_sum))
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_set_position: inconsistent position "
                           "(epoch %d, batch %lld, %lld of %lld correct)", pos->epoch,
                           (long long)pos->batch, (long long)pos->correct, (long long)pos->images);
    trainer->pos = *pos;
    return CNNL_OK;
}

/* Bytes of every state tensor of the model, for the best-weights copy. */
static size_t state_bytes(cnnl_model *model)
{
    size_t total = 0;
    for (size_t i = 0; i < cnnl_model_state_count(model); i++) {
        cnnl_param_info p;
        if (cnnl_model_state_at(model, i, &p) == CNNL_OK)
            total += p.numel * (p.dtype == CNNL_DTYPE_I64 ? sizeof(int64_t) : sizeof(float));
    }
    return total;
}

/* Copy the model's state into @p buf (to_model false) or back (true). */
static void copy_state(cnnl_model *model, unsigned char *buf, bool to_model)
{
    for (size_t i = 0; i < cnnl_model_state_count(model); i++) {
        cnnl_param_info p;
        if (cnnl_model_state_at(model, i, &p) != CNNL_OK)
            continue;
        void *data = p.dtype == CNNL_DTYPE_I64 ? (void *)p.data_i64 : (void *)p.data;
        size_t n = p.numel * (p.dtype == CNNL_DTYPE_I64 ? sizeof(int64_t) : sizeof(float));
        if (to_model)
            memcpy(data, buf, n);
        else
            memcpy(buf, data, n);
        buf += n;
    }
}

static cnnl_status remember_best(cnnl_trainer *t, double accuracy)
{
    if (t->have_best && !(accuracy > t->best_accuracy))
        return CNNL_OK;
    if (t->best == NULL) {
        t->best_bytes = state_bytes(t->model);
        t->best = malloc(t->best_bytes ? t->best_bytes : 1);
        if (t->best == NULL)
            return cnnl__error(CNNL_ENOMEM, "cnnl_trainer_fit: out of memory for the best weights "
                               "(%zu bytes)", t->best_bytes);
    }
    copy_state(t->model, t->best, false);
    t->have_best = true;
    t->best_accuracy = accuracy;
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_trainer_restore_best(cnnl_trainer *trainer)
{
    if (trainer == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_restore_best: trainer is NULL");
    if (!trainer->opts.keep_best || !trainer->have_best)
        return cnnl__error(CNNL_ESTATE, "cnnl_trainer_restore_best: no best weights kept "
                           "(keep_best is %s, %zu epochs evaluated)",
                           trainer->opts.keep_best ? "on" : "off", cnnl_history_count(trainer->history));
    if (state_bytes(trainer->model) != trainer->best_bytes)
        return cnnl__error(CNNL_ESTATE, "cnnl_trainer_restore_best: the model changed shape");
    copy_state(trainer->model, trainer->best, true);
    return CNNL_OK;
}

/* Check that @p out is (n, classes) and count rows whose arg max equals the label. */
static cnnl_status count_correct(const char *who, const cnnl_tensor *out, const int32_t *labels,
                                 int64_t n, int64_t *correct)
{
    if (out->ndim != 2 || out->shape[0] != n || out->shape[1] < 1)
        return cnnl__error(CNNL_ESTATE, "%s: the model's output must be (%lld, classes); it has "
                           "%d dimensions", who, (long long)n, out->ndim);
    size_t k = (size_t)out->shape[1];
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = out->data + (size_t)i * k;
        size_t best = 0;
        for (size_t j = 1; j < k; j++)
            if (row[j] > row[best])
                best = j;
        c += (int64_t)best == labels[i];
    }
    *correct = c;
    return CNNL_OK;
}

/* Forward, loss and backward of this process's part of batch @p b: *loss is the part's
 * mean loss weighted by its share of the global batch (the loss gradient is scaled alike), so
 * that sums over the processes give the global batch's mean loss and gradient. */
static cnnl_status local_step(cnnl_trainer *t, cnnl_loader *train, int64_t b, double *loss,
                              int64_t *correct, int64_t *images)
{
    static const char who[] = "cnnl_trainer_fit";
    size_t global = 0, local = 0;
    cnnl_status st = cnnl_loader_batch_sizes(train, (size_t)b, &global, &local);
    *loss = 0.0;
    *correct = *images = 0;
    const cnnl_tensor *x = NULL, *out = NULL;
    const int32_t *y = NULL;
    if (st == CNNL_OK && local > 0)
        st = cnnl_loader_batch(train, (size_t)b, &x, &y);
    /* With class weights the loss is a weighted mean: a process's share of the global batch is
     * its part of the batch's weight sum, summed over the processes before forward. */
    double wpart = 0.0, wall = 0.0;
    if (st == CNNL_OK && t->dist != NULL && t->opts.class_weights != NULL) {
        for (size_t i = 0; i < local; i++)
            if (y[i] >= 0 && y[i] < t->opts.num_class_weights)
                wpart += t->opts.class_weights[y[i]];
        wall = wpart;
        st = t->opts.comm->allreduce_sum(t->opts.comm, &wall, 1, CNNL_COMM_F64);
    }
    if (st != CNNL_OK || local == 0)
        return st;
    int64_t n = cnnl_tensor_dim(x, 0);
    float l = 0.0f;
    st = cnnl_model_forward(t->model, x, &out);
    if (st == CNNL_OK)
        st = count_correct(who, out, y, n, correct);
    if (st == CNNL_OK)
        st = cnnl__tensor_ensure(&t->grad, out->ndim, out->shape);
    if (st == CNNL_OK && t->opts.class_weights != NULL && out->shape[1] != t->opts.num_class_weights)
        st = cnnl__error(CNNL_ESHAPE, "%s: the model has %lld classes, class_weights %d entries", who,
                         (long long)out->shape[1], t->opts.num_class_weights);
    if (st == CNNL_OK && (t->opts.label_smoothing > 0.0 || t->opts.class_weights != NULL))
        st = cnnl_loss_cross_entropy_ex(out, y, (size_t)n, t->opts.label_smoothing, t->opts.class_weights,
                                        &l, t->grad);
    else if (st == CNNL_OK)
        st = cnnl_loss_class(t->opts.loss, out, y, (size_t)n, CNNL_REDUCE_MEAN, &l, t->grad);
    if (st == CNNL_OK && !isfinite(l))
        st = cnnl__error(CNNL_ENUMERIC, "%s: the loss of batch %lld is not finite", who, (long long)b);
    if (st == CNNL_OK && wall > 0.0 && wpart != wall) {
        float share = (float)(wpart / wall);
        for (size_t i = 0; i < t->grad->numel; i++)
            t->grad->data[i] *= share;
        *loss = (double)l * wpart / wall;
    } else if (st == CNNL_OK && wall == 0.0 && local != global) {
        float share = (float)local / (float)global;
        for (size_t i = 0; i < t->grad->numel; i++)
            t->grad->data[i] *= share;
        *loss = (double)l * (double)local / (double)global;
    } else {
        *loss = l;
    }
    if (st == CNNL_OK)
        st = cnnl_model_backward(t->model, t->grad);
    *images = n;
    return st;
}

/* One optimizer step on batch @p b; fills @p info. */
static cnnl_status train_step(cnnl_trainer *t, cnnl_loader *train, int64_t b, cnnl_batch_info *info)
{
    double loss = 0.0;
    int64_t correct = 0, images = 0;
    cnnl_status st = cnnl_optimizer_zero_grad(t->opt);
    if (st == CNNL_OK && t->dist != NULL)
        cnnl__dist_begin_step(t->dist);
    if (st == CNNL_OK)
        st = local_step(t, train, b, &loss, &correct, &images);
    if (st == CNNL_OK && t->dist != NULL) {
        st = cnnl__dist_finish_step(t->dist);
        /* The figures of the step, and whether any process was asked to stop. */
        double v[4] = {loss, (double)correct, (double)images, cnnl_trainer_stop_requested() ? 1.0 : 0.0};
        if (st == CNNL_OK)
            st = t->opts.comm->allreduce_sum(t->opts.comm, v, 4, CNNL_COMM_F64);
        loss = v[0];
        correct = (int64_t)v[1];
        images = (int64_t)v[2];
        t->stop_all = t->stop_all || v[3] > 0;
    }
    if (st == CNNL_OK)
        st = cnnl_optimizer_step(t->opt);
    if (st != CNNL_OK) {
        if (t->opts.comm != NULL)
            return cnnl__error_context(st, "rank %d, epoch %d, batch %lld", t->opts.comm->rank,
                                       t->pos.epoch + 1, (long long)b + 1);
        return cnnl__error_context(st, "epoch %d, batch %lld", t->pos.epoch + 1, (long long)b + 1);
    }
    info->batch = b;
    info->images = images;
    info->correct = correct;
    info->loss = loss;
    return CNNL_OK;
}

/* Whether training should stop after this batch: a request in this process, or with a
 * communicator in any process (agreed in the step's reduction). */
static bool stop_now(const cnnl_trainer *t)
{
    return t->dist != NULL ? t->stop_all : cnnl_trainer_stop_requested();
}

/* Sum a confusion matrix over the processes. */
static cnnl_status reduce_confusion(const cnnl_comm *comm, cnnl_confusion *cm)
{
    int k = cnnl_confusion_classes(cm);
    int64_t *v = calloc((size_t)k * (size_t)k, sizeof *v);
    if (v == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_evaluate_comm: out of memory");
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
            v[i * k + j] = cnnl_confusion_get(cm, i, j);
    cnnl_status st = comm->allreduce_sum(comm, v, (size_t)k * (size_t)k, CNNL_COMM_I64);
    for (int i = 0; i < k && st == CNNL_OK; i++)
        for (int j = 0; j < k && st == CNNL_OK; j++)
            st = cnnl_confusion_set(cm, i, j, v[i * k + j]);
    free(v);
    return st;
}

CNNL_API cnnl_status cnnl_evaluate(cnnl_model *model, cnnl_loader *loader, cnnl_loss_kind loss,
                                   cnnl_confusion *cm, double *mean_loss, double *accuracy)
{
    return cnnl_evaluate_comm(model, loader, loss, cm, NULL, mean_loss, accuracy);
}

CNNL_API cnnl_status cnnl_evaluate_comm(cnnl_model *model, cnnl_loader *loader, cnnl_loss_kind loss,
                                        cnnl_confusion *cm, const cnnl_comm *comm,
                                        double *mean_loss, double *accuracy)
{
    static const char who[] = "cnnl_evaluate";
    if (model == NULL || loader == NULL)
        return cnnl__error(CNNL_EINVAL, "%s: model or loader is NULL", who);
    if (comm != NULL && cnnl_comm_check(comm) != CNNL_OK)
        return cnnl__error_context(CNNL_EINVAL, "%s", who);
    bool was_training = cnnl_model_is_training(model);
    cnnl_status st = cnnl_model_set_training(model, false);
    size_t nb = cnnl_loader_num_batches(loader);
    double loss_sum = 0.0;
    int64_t correct = 0, images = 0;
    cnnl_confusion *part = NULL; /* this process's predictions, with a comm */
    if (st == CNNL_OK && cm != NULL && comm != NULL)
        st = cnnl_confusion_create(&part, cnnl_confusion_classes(cm));
    for (size_t b = 0; b < nb && st == CNNL_OK; b++) {
        const cnnl_tensor *x = NULL, *out = NULL;
        const int32_t *y = NULL;
        int64_t c = 0;
        float l = 0.0f;
        size_t global = 0, local = 0;
        st = cnnl_loader_batch_sizes(loader, b, &global, &local);
        if (st != CNNL_OK || local == 0)
            continue;
        st = cnnl_loader_batch(loader, b, &x, &y);
        if (st == CNNL_OK)
            st = cnnl_model_forward(model, x, &out);
        if (st == CNNL_OK)
            st = count_correct(who, out, y, cnnl_tensor_dim(x, 0), &c);
        if (st == CNNL_OK)
            st = cnnl_loss_class(loss, out, y, (size_t)cnnl_tensor_dim(x, 0), CNNL_REDUCE_MEAN, &l, NULL);
        if (st == CNNL_OK && cm != NULL) {
            st = cnnl_confusion_add_logits(part ? part : cm, out, y, NULL);
            if (st == CNNL_ESHAPE)
                st = cnnl__error(CNNL_ESHAPE, "%s: the model has %lld outputs, the confusion "
                                 "matrix %d classes", who, (long long)out->shape[1],
                                 cnnl_confusion_classes(cm));
        }
        loss_sum += local == global ? (double)l : (double)l * (double)local / (double)global;
        correct += c;
        images += (int64_t)local;
    }
    if (st == CNNL_OK && comm != NULL) {
        double v[3] = {loss_sum, (double)correct, (double)images};
        st = comm->allreduce_sum(comm, v, 3, CNNL_COMM_F64);
        loss_sum = v[0];
        correct = (int64_t)v[1];
        images = (int64_t)v[2];
        if (st == CNNL_OK && part != NULL)
            st = reduce_confusion(comm, part);
        for (int i = 0; part != NULL && i < cnnl_confusion_classes(cm) && st == CNNL_OK; i++)
            for (int j = 0; j < cnnl_confusion_classes(cm) && st == CNNL_OK; j++)
                st = cnnl_confusion_set(cm, i, j, cnnl_confusion_get(cm, i, j) + cnnl_confusion_get(part, i, j));
    }
    cnnl_confusion_free(part);
    cnnl_status st2 = cnnl_model_set_training(model, was_training);
    if (st != CNNL_OK)
        return comm != NULL ? cnnl__error_context(st, "rank %d", comm->rank) : st;
    if (mean_loss != NULL)
        *mean_loss = nb ? loss_sum / (double)nb : 0.0;
    if (accuracy != NULL)
        *accuracy = images ? 100.0 * (double)correct / (double)images : 0.0;
    return st2;
}

/* Interpret a callback's return value: *stop is set for CNNL_TRAIN_STOP. */
static cnnl_status callback_result(int r, const char *which, bool *stop)
{
    if (r == CNNL_TRAIN_STOP) {
        *stop = true;
        return CNNL_OK;
    }
    if (r < 0)
        return cnnl__error_context((cnnl_status)r, "cnnl_trainer_fit: %s callback", which);
    return CNNL_OK;
}

/* With a communicator only rank 0 writes checkpoints (every process has the same state). */
static cnnl_status checkpoint(cnnl_trainer *t)
{
    if (t->opts.comm != NULL && t->opts.comm->rank != 0)
        return CNNL_OK;
    return t->opts.on_checkpoint != NULL ? t->opts.on_checkpoint(t, t->opts.user) : CNNL_OK;
}

/* Whether any process has been asked to stop (a collective with a communicator). */
static cnnl_status agree_stop(cnnl_trainer *t, bool *stop)
{
    *stop = cnnl_trainer_stop_requested();
    if (t->dist == NULL)
        return CNNL_OK;
    int64_t v = *stop || t->stop_all;
    cnnl_status st = t->opts.comm->allreduce_sum(t->opts.comm, &v, 1, CNNL_COMM_I64);
    *stop = v > 0;
    t->stop_all = *stop;
    return st;
}

/* Start of a run over a communicator: the loaders must be sharded, and every process starts
 * from rank 0's model state. */
static cnnl_status dist_start(cnnl_trainer *t, cnnl_loader *train)
{
    size_t global = 0, local = 0;
    int size = t->opts.comm->size;
    cnnl_status st = cnnl_loader_batch_sizes(train, 0, &global, &local);
    if (st == CNNL_OK && size > 1 && global >= (size_t)size && local == global)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_fit: the training loader is not sharded over "
                           "the %d processes (cnnl_loader_opts::shard_count)", size);
    t->stop_all = false;
    if (st == CNNL_OK)
        st = cnnl__dist_broadcast_state(t->dist, false);
    return st;
}

static cnnl_status interrupted(cnnl_trainer *t)
{
    cnnl_status st = checkpoint(t);
    if (st != CNNL_OK)
        return st;
    return cnnl__error(CNNL_EINTERRUPTED, "cnnl_trainer_fit: stopped on request after epoch %d, "
                       "batch %lld", t->pos.epoch + (t->pos.batch > 0), (long long)t->pos.batch);
}

/* The schedule's rate for the next batch. */
static cnnl_status set_scheduled_lr(cnnl_trainer *t, int64_t batches)
{
    double lr = t->base_lr;
    cnnl_status st = cnnl_schedule_lr(&t->opts.schedule, t->base_lr, t->opts.epochs, batches,
                                      t->pos.epoch, t->pos.batch < batches ? t->pos.batch : batches - 1,
                                      t->history, &lr);
    if (st == CNNL_OK)
        st = cnnl_optimizer_set_lr(t->opt, lr);
    return st == CNNL_OK ? st : cnnl__error_context(st, "cnnl_trainer_fit: learning-rate schedule");
}

/* The training batches of the current epoch, from pos.batch on. */
static cnnl_status train_epoch(cnnl_trainer *t, cnnl_loader *train, bool *stop)
{
    int64_t nb = (int64_t)cnnl_loader_num_batches(train);
    cnnl_progress_start(t->progress, nb);
    cnnl_progress_update(t->progress, t->pos.batch < nb ? t->pos.batch : nb);
    cnnl_status st = cnnl_model_set_training(t->model, true);
    while (st == CNNL_OK && t->pos.batch < nb && !*stop) {
        double t0 = cnnl__now();
        if (t->opts.schedule.kind != CNNL_SCHEDULE_CONSTANT)
            st = set_scheduled_lr(t, nb);
        if (st != CNNL_OK)
            break;
        cnnl_batch_info info = {0};
        info.epoch = t->pos.epoch + 1;
        info.epochs = t->opts.epochs;
        info.batches = nb;
        st = train_step(t, train, t->pos.batch, &info);
        if (st != CNNL_OK)
            break;
        t->pos.batch++;
        t->pos.loss_sum += info.loss;
        t->pos.correct += info.correct;
        t->pos.images += info.images;
        t->pos.seconds += cnnl__now() - t0;
        cnnl_progress_update(t->progress, t->pos.batch);
        if (t->opts.on_batch != NULL)
            st = callback_result(t->opts.on_batch(t, &info, t->opts.user), "batch", stop);
        if (stop_now(t))
            break;
    }
    cnnl_progress_finish(t->progress);
    return st;
}

/* Evaluate, record the epoch and move the position to the next epoch's start. */
static cnnl_status close_epoch(cnnl_trainer *t, cnnl_loader *test, int64_t batches, double lr,
                               cnnl_epoch_stats *s)
{
    memset(s, 0, sizeof *s);
    s->epoch = t->pos.epoch + 1;
    s->train_batches = batches;
    s->train_images = t->pos.images;
    s->train_loss = t->pos.loss_sum;
    s->train_loss_mean = batches ? t->pos.loss_sum / (double)batches : 0.0;
    s->train_accuracy = t->pos.images ? 100.0 * (double)t->pos.correct / (double)t->pos.images : 0.0;
    s->images_per_second = t->pos.seconds > 0 ? (double)t->pos.images / t->pos.seconds : 0.0;
    s->learning_rate = lr;
    double t0 = cnnl__now();
    cnnl_status st = CNNL_OK;
    if (t->dist != NULL) {
        /* Equal weights everywhere, rank 0's batch-norm statistics for the evaluation. */
        st = cnnl__dist_check_weights(t->dist, s->epoch);
        if (st == CNNL_OK)
            st = cnnl__dist_broadcast_state(t->dist, true);
    }
    if (test != NULL && st == CNNL_OK) {
        s->test_images = (int64_t)cnnl_loader_count(test);
        st = cnnl_evaluate_comm(t->model, test, t->opts.loss, NULL, t->opts.comm, &s->test_loss,
                                &s->test_accuracy);
    }
    s->seconds = t->pos.seconds + (cnnl__now() - t0);
    if (st == CNNL_OK)
        st = cnnl_history_append(t->history, s);
    if (st == CNNL_OK && t->opts.keep_best && test != NULL)
        st = remember_best(t, s->test_accuracy);
    if (st == CNNL_OK) {
        memset(&t->pos, 0, sizeof t->pos);
        t->pos.epoch = s->epoch;
    }
    return st;
}

CNNL_API cnnl_status cnnl_trainer_fit(cnnl_trainer *trainer, cnnl_loader *train, cnnl_loader *test)
{
    if (trainer == NULL || train == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_fit: trainer or train is NULL");
    cnnl_trainer *t = trainer;
    bool stop = false;
    cnnl_status st = t->dist != NULL ? dist_start(t, train) : CNNL_OK;
    while (st == CNNL_OK && !stop && t->pos.epoch < t->opts.epochs) {
        int64_t batches = (int64_t)cnnl_loader_num_batches(train);
        if (t->opts.schedule.kind != CNNL_SCHEDULE_CONSTANT && batches > 0)
            st = set_scheduled_lr(t, batches);
        double lr = cnnl_optimizer_get_lr(t->opt);
        if (st == CNNL_OK)
            st = cnnl_loader_start_epoch(train, t->pos.epoch);
        if (st == CNNL_OK)
            st = train_epoch(t, train, &stop);
        if (st != CNNL_OK)
            break;
        int64_t nb = (int64_t)cnnl_loader_num_batches(train);
        if (t->pos.batch < nb) /* stopped inside the epoch */
            return stop ? CNNL_OK : interrupted(t);
        cnnl_epoch_stats s;
        st = close_epoch(t, test, nb, lr, &s);
        if (st == CNNL_OK && t->opts.on_epoch != NULL)
            st = callback_result(t->opts.on_epoch(t, &s, t->opts.user), "epoch", &stop);
        if (st == CNNL_OK && t->opts.patience > 0 && test != NULL) {
            int best_epoch = 0;
            cnnl_history_best(t->history, NULL, &best_epoch);
            if (s.epoch - best_epoch >= t->opts.patience)
                stop = true; /* early stopping: no better test accuracy for patience epochs */
        }
        bool due = t->opts.checkpoint_every > 0 && (s.epoch % t->opts.checkpoint_every == 0 ||
                                                    s.epoch == t->opts.epochs);
        if (st == CNNL_OK && due)
            st = checkpoint(t);
        bool asked = false;
        if (st == CNNL_OK)
            st = agree_stop(t, &asked);
        if (st == CNNL_OK && asked)
            return due ? cnnl__error(CNNL_EINTERRUPTED, "cnnl_trainer_fit: stopped on request "
                                     "after epoch %d", s.epoch)
                       : interrupted(t);
    }
    if (st == CNNL_OK && t->opts.patience > 0 && t->have_best)
        st = cnnl_trainer_restore_best(t); /* early stopping ends on the best weights */
    cnnl_model_set_training(t->model, false);
    return st;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

enum { HIST_COLS = 12 };
/* The history columns, named as cnnl_history_save() names them. */
static const char *const hist_cols[HIST_COLS] = {
    "epoch", "train_loss", "train_loss_mean", "train_accuracy", "test_loss", "test_accuracy",
    "seconds", "images_per_second", "learning_rate", "train_batches", "train_images", "test_images",
};

CNNL_API cnnl_status cnnl_trainer_save_checkpoint(cnnl_trainer *trainer, const char *path, cnnl_checkpoint *fields)
{
    if (trainer == NULL || path == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_save_checkpoint: %s is NULL", trainer ? "path" : "trainer");
    cnnl_checkpoint *own = NULL;
    cnnl_status st = fields ? CNNL_OK : cnnl_checkpoint_create(&own);
    cnnl_checkpoint *ck = fields ? fields : own;
    size_t n = cnnl_history_count(trainer->history);
    double *table = calloc(n ? n * HIST_COLS : 1, sizeof *table);
    if (st == CNNL_OK && table == NULL)
        st = cnnl__error(CNNL_ENOMEM, "cnnl_trainer_save_checkpoint: out of memory");
    for (size_t i = 0; st == CNNL_OK && i < n; i++) {
        cnnl_epoch_stats e;
        cnnl_history_at(trainer->history, i, &e);
        const double v[HIST_COLS] = {e.epoch, e.train_loss, e.train_loss_mean, e.train_accuracy,
                                     e.test_loss, e.test_accuracy, e.seconds, e.images_per_second,
                                     e.learning_rate, (double)e.train_batches, (double)e.train_images,
                                     (double)e.test_images};
        memcpy(table + i * HIST_COLS, v, sizeof v);
    }
    /* The position inside the epoch; hex floats bring the partial sums back bit for bit. */
    const cnnl_train_position *p = &trainer->pos;
    char pos[256];
    snprintf(pos, sizeof pos, "%d %lld %a %lld %lld %a", p->epoch, (long long)p->batch, p->loss_sum,
             (long long)p->correct, (long long)p->images, p->seconds);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_set_epoch(ck, p->epoch);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_set_string(ck, "position", pos);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_set_history_f64(ck, n, HIST_COLS, table, hist_cols);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_save(path, trainer->model, trainer->opt, ck);
    free(table);
    cnnl_checkpoint_free(own);
    return st;
}

/* The history and position of a checkpoint, checked against each other. */
static cnnl_status read_run_state(const char *path, const cnnl_checkpoint *ck, cnnl_history *h,
                                  cnnl_train_position *p)
{
    const char *pos = cnnl_checkpoint_get_string(ck, "position");
    long long batch = 0, correct = 0, images = 0;
    if (pos == NULL || sscanf(pos, "%d %lld %la %lld %lld %la", &p->epoch, &batch, &p->loss_sum, &correct, &images,
                              &p->seconds) != 6)
        return cnnl__error(CNNL_EFORMAT, "%s: not a training checkpoint (metadata \"user.position\" is %s)", path,
                           pos ? "malformed" : "missing");
    p->batch = batch;
    p->correct = correct;
    p->images = images;
    if (p->epoch < 0 || p->batch < 0 || p->correct < 0 || p->images < 0 || p->correct > p->images ||
        !(p->seconds >= 0 && p->seconds <= 1e15) || !isfinite(p->loss_sum))
        return cnnl__error(CNNL_EFORMAT, "%s: metadata \"user.position\" is inconsistent (\"%.100s\")", path, pos);
    size_t rows = 0, cols = 0;
    const double *v = NULL;
    cnnl_status st = cnnl_checkpoint_history_f64(ck, &rows, &cols, &v);
    if (st != CNNL_OK)
        return st;
    if (rows != (size_t)p->epoch || (rows > 0 && cols != HIST_COLS))
        return cnnl__error(CNNL_EFORMAT, "%s: \"train.history\" has %zu rows of %zu columns for %d completed epochs "
                           "(%d columns expected)", path, rows, cols, p->epoch, HIST_COLS);
    for (size_t j = 0; rows > 0 && j < HIST_COLS; j++) {
        const char *name = cnnl_checkpoint_history_column(ck, j);
        if (name != NULL && strcmp(name, hist_cols[j]) != 0)
            return cnnl__error(CNNL_EFORMAT, "%s: history column %zu is \"%.60s\", expected \"%s\"", path, j, name,
                               hist_cols[j]);
    }
    cnnl_history_clear(h);
    for (size_t i = 0; i < rows; i++) {
        const double *r = v + i * HIST_COLS;
        if (r[0] != (double)(i + 1))
            return cnnl__error(CNNL_EFORMAT, "%s: history row %zu is epoch %g, expected %zu", path, i, r[0], i + 1);
        cnnl_epoch_stats e = {0};
        e.epoch = (int)r[0];
        e.train_loss = r[1];
        e.train_loss_mean = r[2];
        e.train_accuracy = r[3];
        e.test_loss = r[4];
        e.test_accuracy = r[5];
        e.seconds = r[6];
        e.images_per_second = r[7];
        e.learning_rate = r[8];
        e.train_batches = (int64_t)r[9];
        e.train_images = (int64_t)r[10];
        e.test_images = (int64_t)r[11];
        if ((st = cnnl_history_append(h, &e)) != CNNL_OK)
            return st;
    }
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_trainer_load_checkpoint(cnnl_trainer *trainer, const char *path, cnnl_checkpoint **fields)
{
    if (fields)
        *fields = NULL;
    if (trainer == NULL || path == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_trainer_load_checkpoint: %s is NULL", trainer ? "path" : "trainer");
    cnnl_checkpoint *ck = NULL;
    cnnl_history *h = NULL;
    cnnl_train_position p = {0};
    cnnl_status st = cnnl_history_create(&h);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_load(path, trainer->model, trainer->opt, &ck);
    if (st == CNNL_OK)
        st = read_run_state(path, ck, h, &p);
    if (st == CNNL_OK) {
        cnnl_history *old = trainer->history;
        trainer->history = h;
        h = old;
        trainer->pos = p;
    }
    cnnl_history_free(h);
    if (st == CNNL_OK && fields)
        *fields = ck;
    else
        cnnl_checkpoint_free(ck);
    return st;
}
