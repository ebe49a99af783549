/*
 * Parity with PyTorch 1.13: every layer's forward and backward, every loss and its gradient,
 * one or two steps of each optimizer, the whole report network with and without batch
 * norm, and small networks from architecture descriptions (arch.bin: dilation, groups, pool
 * padding, global pooling, a residual block), against the reference values written by gen_fixtures.py.
 *
 * Comparison (fx_compare in fixture.c): for each tensor,
 *     max_i |got_i - want_i| / max(|want_i|, rms(want)) <= 1e-4.
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>

#include "fixture.h"

#define PARITY_TOL 1e-4

static fx_file *layers_fx, *losses_fx, *optim_fx, *report_fx, *arch_fx;

static int load_all(void **state)
{
    (void)state;
    layers_fx = fx_load("layers.bin");
    losses_fx = fx_load("losses.bin");
    optim_fx = fx_load("optim.bin");
    report_fx = fx_load("report.bin");
    arch_fx = fx_load("arch.bin");
    return layers_fx && losses_fx && optim_fx && report_fx && arch_fx ? 0 : -1;
}

static int free_all(void **state)
{
    (void)state;
    fx_free(layers_fx);
    fx_free(losses_fx);
    fx_free(optim_fx);
    fx_free(report_fx);
    fx_free(arch_fx);
    return 0;
}

/* The named reference tensor; fails the test if it is missing. */
static const fx_tensor *need(const fx_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const fx_tensor *need(const fx_file *f, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const fx_tensor *t = fx_find(f, "%s", name);
    if (!t) {
        print_error("fixture tensor %s is missing\n", name);
        fail();
    }
    return t;
}

static void check(const char *label, const float *got, size_t n, const fx_tensor *want)
{
    if (n != want->numel) {
        print_error("%s: %zu values, reference has %zu\n", label, n, want->numel);
        fail();
    }
    double err = fx_compare(label, got, want->data, n);
    if (!(err <= PARITY_TOL)) {
        print_error("%s: max relative error %.3g exceeds %g\n", label, err, PARITY_TOL);
        fail();
    }
}

static void check_tensor(const char *label, const cnnl_tensor *got, const fx_tensor *want)
{
    int ndim = 0;
    int64_t shape[4];
    assert_ok(cnnl_tensor_shape(got, &ndim, shape));
    assert_int_equal(ndim, want->ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(shape[i], want->shape[i]);
    check(label, cnnl_tensor_data_const(got), cnnl_tensor_numel(got), want);
}

static cnnl_tensor *to_tensor(const fx_tensor *t)
{
    cnnl_tensor *out = NULL;
    assert_ok(cnnl_tensor_from_data(&out, t->ndim, t->shape, t->data));
    return out;
}

/* Copy a reference tensor into a model state entry (float or int64). */
static void load_state(const cnnl_param_info *info, const fx_tensor *t)
{
    assert_int_equal(info->numel, t->numel);
    for (size_t k = 0; k < t->numel; k++) {
        if (info->dtype == CNNL_DTYPE_F32)
            info->data[k] = t->data[k];
        else
            info->data_i64[k] = (int64_t)t->data[k];
    }
}

static void check_state(const char *label, const cnnl_param_info *info, const fx_tensor *want)
{
    if (info->dtype == CNNL_DTYPE_F32) {
        check(label, info->data, info->numel, want);
        return;
    }
    assert_int_equal(info->numel, want->numel);
    for (size_t k = 0; k < info->numel; k++)
        assert_int_equal(info->data_i64[k], (int64_t)want->data[k]);
}

/* ---- layers ---------------------------------------------------------------------------- */

/*
 * One layer in a model named "l": load its parameters and buffers from "<case>.<suffix>",
 * forward "<case>.x", backward "<case>.gy", and compare the output, the input gradient, every
 * parameter gradient ("<case>.grad.<suffix>") and every buffer afterwards ("<case>.after.<suffix>").
 */
static void run_layer_case(const char *c, cnnl_layer *layer, bool training)
{
    const fx_file *F = layers_fx;
    cnnl_model *m = NULL;
    char label[256];
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_model_add(m, "l", layer));
    assert_ok(cnnl_model_set_training(m, training));
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        load_state(&info, need(F, "%s.%s", c, info.name + 2));
    }
    cnnl_tensor *x = to_tensor(need(F, "%s.x", c)), *gy = to_tensor(need(F, "%s.gy", c));
    const cnnl_tensor *y = NULL, *gx = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    snprintf(label, sizeof label, "%s output", c);
    check_tensor(label, y, need(F, "%s.y", c));
    assert_ok(cnnl_model_zero_grad(m));
    assert_ok(cnnl_model_backward(m, gy));
    assert_ok(cnnl_model_input_grad(m, &gx));
    snprintf(label, sizeof label, "%s input grad", c);
    check_tensor(label, gx, need(F, "%s.gx", c));
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        const char *suffix = info.name + 2;
        if (info.trainable) {
            snprintf(label, sizeof label, "%s %s grad", c, suffix);
            check(label, info.grad, info.numel, need(F, "%s.grad.%s", c, suffix));
        } else {
            snprintf(label, sizeof label, "%s %s after", c, suffix);
            check_state(label, &info, need(F, "%s.after.%s", c, suffix));
        }
    }
    cnnl_tensor_free(x);
    cnnl_tensor_free(gy);
    cnnl_model_free(m);
}

static const float *cfg(const char *c, size_t n)
{
    const fx_tensor *t = need(layers_fx, "%s.cfg", c);
    assert_int_equal(t->numel, n);
    return t->data;
}

static void test_conv2d(void **state)
{
    (void)state;
    const char *cases[] = {"conv_k3s1p1", "conv_k3s2p1_nobias", "conv_k3s2p1_odd",
                           "conv_k2s2p0", "conv_k1",            "conv_k5s1p2_nobias"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const float *k = cfg(cases[i], 6);
        cnnl_layer *l = NULL;
        assert_ok(cnnl_conv2d_create(&l, (int)k[0], (int)k[1], (int)k[2], (int)k[3], (int)k[4], k[5] != 0.0f));
        run_layer_case(cases[i], l, true);
    }
}

static void run_pools(const char *kind, cnnl_status (*make)(cnnl_layer **, int, int))
{
    const char *suffixes[] = {"k2s2", "k3s2", "k2s2_odd", "k2s1"};
    for (size_t i = 0; i < 4; i++) {
        char c[64];
        snprintf(c, sizeof c, "%s_%s", kind, suffixes[i]);
        const float *k = cfg(c, 2);
        cnnl_layer *l = NULL;
        assert_ok(make(&l, (int)k[0], (int)k[1]));
        run_layer_case(c, l, true);
    }
}

static void test_maxpool2d(void **state)
{
    (void)state;
    run_pools("maxpool", cnnl_maxpool2d_create);
}

static void test_avgpool2d(void **state)
{
    (void)state;
    run_pools("avgpool", cnnl_avgpool2d_create);
}

static void test_batchnorm2d(void **state)
{
    (void)state;
    const char *cases[] = {"bn_train", "bn_train_offset", "bn_eval"};
    for (size_t i = 0; i < 3; i++) {
        const float *k = cfg(cases[i], 2);
        cnnl_layer *l = NULL;
        assert_ok(cnnl_batchnorm2d_create(&l, (int)k[0]));
        run_layer_case(cases[i], l, k[1] != 0.0f);
    }
}

static void test_linear_and_flatten(void **state)
{
    (void)state;
    const char *cases[] = {"linear", "linear_nobias"};
    for (size_t i = 0; i < 2; i++) {
        const float *k = cfg(cases[i], 3);
        cnnl_layer *l = NULL;
        assert_ok(cnnl_linear_create(&l, (int)k[0], (int)k[1], k[2] != 0.0f));
        run_layer_case(cases[i], l, true);
    }
    cnnl_layer *f = NULL;
    assert_ok(cnnl_flatten_create(&f));
    run_layer_case("flatten", f, true);
}

static void test_activations(void **state)
{
    (void)state;
    const char *cases[] = {"act_relu", "act_leaky_relu", "act_elu",       "act_tanh",
                           "act_sigmoid", "act_softmax", "act_softmax_2d"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const float *k = cfg(cases[i], 2);
        cnnl_layer *l = NULL;
        assert_ok(cnnl_activation_create(&l, (cnnl_activation)(int)k[0], k[1]));
        run_layer_case(cases[i], l, true);
    }
}

/*
 * Dropout masks come from different generators, so the mask is inferred: every output must be
 * 0 or PyTorch's x * (1 / (1 - p)), the input gradient must follow the same mask, and the
 * dropped fraction must be plausible for p (384 values, p = 0.3: mean 115, sd 9; accept
 * 70..160, over 4.5 sd). In evaluation mode, and with p = 0, the layer is the identity.
 */
static void test_dropout(void **state)
{
    (void)state;
    const fx_file *F = layers_fx;
    float p = cfg("dropout", 1)[0];
    const fx_tensor *scaled = need(F, "dropout.scaled");
    cnnl_tensor *x = to_tensor(need(F, "dropout.x")), *gy = to_tensor(need(F, "dropout.gy"));
    const float *xd = cnnl_tensor_data_const(x), *gyd = cnnl_tensor_data_const(gy);
    size_t n = cnnl_tensor_numel(x);
    for (int mode = 0; mode < 3; mode++) {
        cnnl_model *m = NULL;
        cnnl_layer *l = NULL;
        assert_ok(cnnl_model_create(&m));
        assert_ok(cnnl_dropout_create(&l, mode == 2 ? 0.0f : p));
        assert_ok(cnnl_model_add(m, "drop", l));
        assert_ok(cnnl_model_init(m, 5));
        assert_ok(cnnl_model_set_training(m, mode != 1));
        const cnnl_tensor *y = NULL, *gx = NULL;
        assert_ok(cnnl_model_forward(m, x, &y));
        assert_ok(cnnl_model_backward(m, gy));
        assert_ok(cnnl_model_input_grad(m, &gx));
        const float *yd = cnnl_tensor_data_const(y), *gxd = cnnl_tensor_data_const(gx);
        size_t dropped = 0;
        double worst = 0.0;
        for (size_t i = 0; i < n; i++) {
            if (mode != 0) { /* identity */
                assert_true(yd[i] == xd[i] && gxd[i] == gyd[i]);
                continue;
            }
            if (yd[i] == 0.0f) {
                dropped++;
                assert_true(gxd[i] == 0.0f);
                continue;
            }
            double scale = (double)scaled->data[i] / xd[i];
            double e1 = fabs(yd[i] - scaled->data[i]) / fabs(scaled->data[i]);
            double e2 = fabs(gxd[i] - gyd[i] * scale) / fabs(gyd[i] * scale);
            worst = fmax(worst, fmax(e1, e2));
        }
        if (mode == 0) {
            printf("parity %-44s max rel err %.3g (%zu kept of %zu)\n", "dropout kept values and grads", worst,
                   n - dropped, n);
            assert_true(worst <= PARITY_TOL);
            assert_in_range(dropped, 70, 160);
        }
        cnnl_model_free(m);
    }
    cnnl_tensor_free(x);
    cnnl_tensor_free(gy);
}

/* ---- losses ---------------------------------------------------------------------------- */

static void test_losses(void **state)
{
    (void)state;
    const char *names[] = {"ce", "hinge", "mse", "kl", "cosine"};
    const cnnl_loss_kind kinds[] = {CNNL_LOSS_CROSS_ENTROPY, CNNL_LOSS_HINGE, CNNL_LOSS_MSE, CNNL_LOSS_KL_DIV,
                                    CNNL_LOSS_COSINE};
    const char *reds[] = {"mean", "sum"};
    char c[64], label[96];
    for (int k = 0; k < 5; k++)
        for (int r = 0; r < 2; r++) {
            snprintf(c, sizeof c, "%s_%s", names[k], reds[r]);
            const fx_tensor *xt = need(losses_fx, "%s.x", c), *tt = need(losses_fx, "%s.target", c);
            cnnl_tensor *x = to_tensor(xt), *g = NULL;
            assert_ok(cnnl_tensor_zeros(&g, xt->ndim, xt->shape));
            float loss = NAN;
            cnnl_reduction red = r == 0 ? CNNL_REDUCE_MEAN : CNNL_REDUCE_SUM;
            if (k < 2) {
                int32_t labels[16];
                assert_true(tt->numel <= 16);
                for (size_t i = 0; i < tt->numel; i++)
                    labels[i] = (int32_t)tt->data[i];
                assert_ok(cnnl_loss_class(kinds[k], x, labels, tt->numel, red, &loss, g));
            } else {
                cnnl_tensor *t = to_tensor(tt);
                assert_ok(cnnl_loss_dense(kinds[k], x, t, red, &loss, g));
                cnnl_tensor_free(t);
            }
            snprintf(label, sizeof label, "loss %s value", c);
            check(label, &loss, 1, need(losses_fx, "%s.loss", c));
            snprintf(label, sizeof label, "loss %s grad", c);
            check_tensor(label, g, need(losses_fx, "%s.gx", c));
            cnnl_tensor_free(x);
            cnnl_tensor_free(g);
        }
}

/* ---- optimizers ------------------------------------------------------------------------ */

/*
 * The settings of each case as gen_fixtures.py gives them to torch.optim, as doubles (the
 * fixture's "<case>.cfg" holds them rounded to float32, which is not what PyTorch used):
 * lr, lr of step 2, then Adam: beta1, beta2, eps, weight decay, decoupled;
 * SGD: momentum, dampening, weight decay, Nesterov.
 */
typedef struct optim_case {
    const char *name;
    double cfg[7];
} optim_case;

static const optim_case optim_cases[] = {
    {"adam", {1e-2, 5e-3, 0.9, 0.999, 1e-8, 0.01, 0}},
    {"adam_betas", {1e-2, 2e-2, 0.8, 0.95, 1e-4, 0.0, 0}},
    {"adamw", {1e-2, 5e-3, 0.9, 0.999, 1e-8, 0.1, 1}},
    {"sgd_momentum", {5e-2, 2e-2, 0.9, 0.1, 1e-3, 0}},
    {"sgd_nesterov", {5e-2, 2e-2, 0.9, 0.0, 1e-3, 1}},
};

/* The table above must be the fixture's settings: equal once rounded to float. */
static void check_cfg(const optim_case *c, const fx_tensor *k)
{
    size_t n = strncmp(c->name, "adam", 4) == 0 ? 7 : 6;
    assert_int_equal(k->numel, n);
    for (size_t i = 0; i < n; i++)
        if ((float)c->cfg[i] != k->data[i]) {
            print_error("%s.cfg[%zu]: table %.9g, fixture %.9g\n", c->name, i, c->cfg[i], (double)k->data[i]);
            fail();
        }
}

static cnnl_optimizer *make_optimizer(const optim_case *c, cnnl_model *m)
{
    const double *k = c->cfg;
    cnnl_optimizer *opt = NULL;
    if (strncmp(c->name, "adam", 4) == 0) {
        cnnl_adam_opts o = {.lr = k[0], .beta1 = k[2], .beta2 = k[3], .eps = k[4], .weight_decay = k[5],
                            .decoupled = k[6] != 0.0};
        assert_ok(cnnl_optimizer_adam(&opt, m, &o));
    } else {
        cnnl_sgd_opts o = {.lr = k[0], .momentum = k[2], .dampening = k[3], .weight_decay = k[4],
                           .nesterov = k[5] != 0.0};
        assert_ok(cnnl_optimizer_sgd(&opt, m, &o));
    }
    return opt;
}

/*
 * Two steps on a Linear(5, 3), with the learning rate changed before the second. Besides the
 * parameters, the change of each parameter (the step itself, ~1e-2 of the parameter) and the
 * optimizer's state tensors are compared, so that the tolerance is not spent on the part of
 * the value that did not move.
 */
static void run_optimizer_case(const optim_case *oc)
{
    const fx_file *F = optim_fx;
    const char *c = oc->name;
    check_cfg(oc, need(F, "%s.cfg", c));
    cnnl_model *m = NULL;
    cnnl_layer *lin = NULL;
    assert_ok(cnnl_model_create(&m));
    assert_ok(cnnl_linear_create(&lin, 5, 3, true));
    assert_ok(cnnl_model_add(m, "fc", lin));
    const char *pnames[2] = {"weight", "bias"};
    cnnl_param_info p[2];
    float before[2][15], delta[2][15], ref_delta[2][15];
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "fc.%s", pnames[i]);
        assert_ok(cnnl_model_state_find(m, name, &p[i]));
        load_state(&p[i], need(F, "%s.%s", c, pnames[i]));
    }
    cnnl_optimizer *opt = make_optimizer(oc, m);
    char label[128];
    for (int step = 1; step <= 2; step++) {
        if (step == 2)
            assert_ok(cnnl_optimizer_set_lr(opt, oc->cfg[1]));
        for (int i = 0; i < 2; i++) {
            const fx_tensor *g = need(F, "%s.step%d.grad.%s", c, step, pnames[i]);
            memcpy(p[i].grad, g->data, g->numel * sizeof(float));
            memcpy(before[i], p[i].data, p[i].numel * sizeof(float));
        }
        assert_ok(cnnl_optimizer_step(opt));
        for (int i = 0; i < 2; i++) {
            const fx_tensor *want = need(F, "%s.step%d.%s", c, step, pnames[i]);
            snprintf(label, sizeof label, "%s step %d %s", c, step, pnames[i]);
            check(label, p[i].data, p[i].numel, want);
            for (size_t j = 0; j < p[i].numel; j++) {
                delta[i][j] = p[i].data[j] - before[i][j];
                ref_delta[i][j] = want->data[j] - before[i][j];
            }
            snprintf(label, sizeof label, "%s step %d %s change", c, step, pnames[i]);
            fx_tensor d = {.ndim = 1, .shape = {(int64_t)p[i].numel}, .numel = p[i].numel, .data = ref_delta[i]};
            check(label, delta[i], p[i].numel, &d);
        }
        for (size_t s = 0; s < cnnl_optimizer_state_count(opt); s++) {
            cnnl_param_info info;
            assert_ok(cnnl_optimizer_state_at(opt, s, &info));
            snprintf(label, sizeof label, "%s step %d %s", c, step, info.name + 3);
            check(label, info.data, info.numel, need(F, "%s.step%d.%s", c, step, info.name + 3));
        }
    }
    assert_int_equal(cnnl_optimizer_state_count(opt), strncmp(c, "adam", 4) == 0 ? 4 : 2);
    cnnl_optimizer_free(opt);
    cnnl_model_free(m);
}

static void test_optimizers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof optim_cases / sizeof *optim_cases; i++)
        run_optimizer_case(&optim_cases[i]);
}

/* ---- the report network ---------------------------------------------------------------- */

/* Name of a parameter of the network without batch norm for one of the network with it:
 * the convolutions move from features.1/4/7/10 to features.1/5/9/13. */
static const char *plain_name(const char *name, bool bn, char *buf, size_t len)
{
    int idx = 0, used = 0;
    if (!bn || sscanf(name, "features.%d.%n", &idx, &used) != 1 || used == 0)
        return name;
    if (idx % 4 != 1)
        return "(batch norm: no counterpart)";
    snprintf(buf, len, "features.%d.%s", 1 + 3 * (idx / 4), name + used);
    return buf;
}

/* Whether @p name is the bias of a convolution that batch norm follows. */
static bool bias_before_bn(const char *name, bool bn)
{
    int idx = 0, used = 0;
    return bn && sscanf(name, "features.%d.%n", &idx, &used) == 1 && used > 0 && idx % 4 == 1 &&
           strcmp(name + used, "bias") == 0;
}

/*
 * In training mode batch norm subtracts the batch mean, which absorbs a preceding bias: its
 * gradient is exactly 0, and both PyTorch's and our values are float32 rounding noise (~1e-6
 * of the layer's weight gradient). Both must stay below 1e-4 of that weight gradient's rms.
 */
static void check_zero_grad(const char *label, const cnnl_param_info *info, const fx_tensor *weight_grad,
                            const fx_tensor *want)
{
    double sq = 0.0, worst = 0.0;
    for (size_t k = 0; k < weight_grad->numel; k++)
        sq += (double)weight_grad->data[k] * weight_grad->data[k];
    double scale = sqrt(sq / (double)weight_grad->numel);
    assert_int_equal(info->numel, want->numel);
    for (size_t k = 0; k < info->numel; k++)
        worst = fmax(worst, fmax(fabs(info->grad[k]), fabs(want->data[k])) / scale);
    printf("parity %-44s max |value| / rms(weight grad) %.3g (exact value 0)\n", label, worst);
    assert_true(worst <= PARITY_TOL);
}

/*
 * The report network at 64x64 in training mode with dropout 0: PyTorch's initial weights are
 * copied in; logits, the cross-entropy loss, every parameter gradient and (with batch norm)
 * the running statistics after the pass must agree; without batch norm, also the logits of
 * evaluation mode.
 */
static void run_report(bool bn)
{
    const fx_file *F = report_fx;
    const char *tag = bn ? "bn" : "plain";
    cnnl_report_opts o = cnnl_report_opts_default();
    o.size = 64;
    o.dropout = 0.0f;
    o.batchnorm = bn;
    cnnl_model *m = NULL;
    assert_ok(cnnl_report_net_create(&m, &o));
    assert_ok(cnnl_model_set_training(m, true));
    size_t params = 0, grads_compared = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        char buf[128];
        assert_ok(cnnl_model_state_at(m, i, &info));
        const fx_tensor *init = fx_find(F, "init.%s", plain_name(info.name, bn, buf, sizeof buf));
        if (info.trainable)
            params++;
        if (init) {
            load_state(&info, init);
            continue;
        }
        /* Only batch norm's entries have no stored initial value: PyTorch starts them at
         * weight 1, bias 0, running mean 0, running var 1, no batches tracked. */
        assert_true(bn && strstr(info.name, "features.") == info.name);
        bool one = strstr(info.name, ".weight") || strstr(info.name, ".running_var");
        for (size_t k = 0; k < info.numel; k++) {
            if (info.dtype == CNNL_DTYPE_F32)
                info.data[k] = one ? 1.0f : 0.0f;
            else
                info.data_i64[k] = 0;
        }
    }
    const fx_tensor *lt = need(F, "labels");
    int32_t labels[8];
    assert_true(lt->numel <= 8);
    for (size_t i = 0; i < lt->numel; i++)
        labels[i] = (int32_t)lt->data[i];
    cnnl_tensor *x = to_tensor(need(F, "input")), *gl = NULL;
    const cnnl_tensor *logits = NULL;
    char label[160];
    assert_ok(cnnl_model_zero_grad(m));
    assert_ok(cnnl_model_forward(m, x, &logits));
    snprintf(label, sizeof label, "report %s logits", tag);
    check_tensor(label, logits, need(F, "%s.logits", tag));
    float loss = NAN;
    assert_ok(cnnl_tensor_zeros(&gl, 2, (const int64_t[]){(int64_t)lt->numel, 4}));
    assert_ok(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, logits, labels, lt->numel, CNNL_REDUCE_MEAN, &loss, gl));
    snprintf(label, sizeof label, "report %s loss", tag);
    check(label, &loss, 1, need(F, "%s.loss", tag));
    assert_ok(cnnl_model_backward(m, gl));
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        if (info.trainable) {
            snprintf(label, sizeof label, "report %s grad %s", tag, info.name);
            const fx_tensor *want = need(F, "%s.grad.%s", tag, info.name);
            if (bias_before_bn(info.name, bn)) {
                int idx = atoi(info.name + strlen("features."));
                check_zero_grad(label, &info, need(F, "%s.grad.features.%d.weight", tag, idx), want);
            } else {
                check(label, info.grad, info.numel, want);
            }
            grads_compared++;
        } else {
            snprintf(label, sizeof label, "report %s %s after", tag, info.name);
            check_state(label, &info, need(F, "%s.after.%s", tag, info.name));
        }
    }
    /* Without batch norm and with dropout 0, evaluation mode computes the same logits; it
     * runs other kernels (no maxima positions; Winograd on AVX2 CPUs). */
    if (!bn) {
        assert_ok(cnnl_model_set_training(m, false));
        assert_ok(cnnl_model_forward(m, x, &logits));
        snprintf(label, sizeof label, "report %s logits, evaluation mode", tag);
        check_tensor(label, logits, need(F, "%s.logits", tag));
    }
    /* Every parameter of the PyTorch network has its counterpart. */
    assert_int_equal(grads_compared, params);
    assert_int_equal(params, bn ? 20 : 12);
    cnnl_tensor_free(x);
    cnnl_tensor_free(gl);
    cnnl_model_free(m);
}

static void test_report_net_plain(void **state)
{
    (void)state;
    run_report(false);
}

static void test_report_net_batchnorm(void **state)
{
    (void)state;
    run_report(true);
}

/* ---- networks from descriptions ----------------------------------------------------------- */

/*
 * One description of arch.bin ("<case>.json", one float per byte), built by
 * cnnl_model_from_json as PyTorch built it from the same text: state loaded by its state_dict
 * name, one training-mode forward and backward, output, input gradient, parameter gradients and
 * buffers afterwards compared.
 */
static void run_arch_case(const char *c)
{
    const fx_file *F = arch_fx;
    const fx_tensor *jt = need(F, "%s.json", c);
    char *json = malloc(jt->numel + 1);
    assert_non_null(json);
    for (size_t i = 0; i < jt->numel; i++)
        json[i] = (char)(int)jt->data[i];
    json[jt->numel] = 0;
    cnnl_model *m = NULL;
    char label[256];
    assert_ok(cnnl_model_from_json(&m, json, 1));
    free(json);
    assert_ok(cnnl_model_set_training(m, true));
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        load_state(&info, need(F, "%s.%s", c, info.name));
    }
    cnnl_tensor *x = to_tensor(need(F, "%s.x", c)), *gy = to_tensor(need(F, "%s.gy", c));
    const cnnl_tensor *y = NULL, *gx = NULL;
    assert_ok(cnnl_model_forward(m, x, &y));
    snprintf(label, sizeof label, "%s output", c);
    check_tensor(label, y, need(F, "%s.y", c));
    assert_ok(cnnl_model_zero_grad(m));
    assert_ok(cnnl_model_backward(m, gy));
    assert_ok(cnnl_model_input_grad(m, &gx));
    snprintf(label, sizeof label, "%s input grad", c);
    check_tensor(label, gx, need(F, "%s.gx", c));
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info info;
        assert_ok(cnnl_model_state_at(m, i, &info));
        if (info.trainable) {
            snprintf(label, sizeof label, "%s %s grad", c, info.name);
            check(label, info.grad, info.numel, need(F, "%s.grad.%s", c, info.name));
        } else {
            snprintf(label, sizeof label, "%s %s after", c, info.name);
            check_state(label, &info, need(F, "%s.after.%s", c, info.name));
        }
    }
    cnnl_tensor_free(x);
    cnnl_tensor_free(gy);
    cnnl_model_free(m);
}

/* Strided, dilated, depthwise (with and without a channel multiplier) and grouped convolutions
 * on the generic engine (the strided one on the fast engines). */
static void test_arch_conv(void **state)
{
    (void)state;
    static const char *cases[] = {"conv_strided", "conv_dilated", "conv_dilated_strided", "conv_depthwise",
                                  "conv_depthwise_mult", "conv_grouped"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_arch_case(cases[i]);
}

/* Padded max and average pools (count_include_pad=True), global average pooling, and a
 * residual block with a depthwise convolution and batch norm in training mode. */
static void test_arch_pools_residual(void **state)
{
    (void)state;
    static const char *cases[] = {"maxpool_pad", "maxpool_pad_k2", "avgpool_pad", "avgpool_pad_s1", "global_pool",
                                  "residual"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_arch_case(cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_maxpool2d),
        cmocka_unit_test(test_avgpool2d),
        cmocka_unit_test(test_batchnorm2d),
        cmocka_unit_test(test_linear_and_flatten),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_losses),
        cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_report_net_plain),
        cmocka_unit_test(test_report_net_batchnorm),
        cmocka_unit_test(test_arch_conv),
        cmocka_unit_test(test_arch_pools_residual),
    };
    return cmocka_run_group_tests(tests, load_all, free_all);
}
