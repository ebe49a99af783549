/*
 * The report's network. Layer names follow the PyTorch module it mirrors:
 *   features   = Sequential(AvgPool2d(2), [Conv2d, (BatchNorm2d), ReLU, MaxPool2d(2)] x 4)
 *   flatten    (no state)
 *   classifier = Sequential(Dropout, Linear(., 128), ReLU, Dropout, Linear(128, classes))
 * so the parameters are features.1/4/7/10 (with batch norm: 1,2 / 5,6 / 9,10 / 13,14) and
 * classifier.1 / classifier.4, as in the report's state_dict.
 */
#include <stdio.h>

#include "core/internal.h"
#include "nn/model_impl.h"

CNNL_API cnnl_report_opts cnnl_report_opts_default(void)
{
    cnnl_report_opts o = {.classes = 4, .channels = 3, .size = 512, .batchnorm = false, .dropout = 0.2f, .seed = 0};
    return o;
}

static cnnl_status check_opts(const cnnl_report_opts *o)
{
    const char *fn = "cnnl_report_net_create";
    if (o->classes < 1 || o->classes > 100000)
        return cnnl__error(CNNL_EINVAL, "%s: classes is %d; must be in 1..100000", fn, o->classes);
    if (o->channels < 1 || o->channels > 4096)
        return cnnl__error(CNNL_EINVAL, "%s: channels is %d; must be in 1..4096", fn, o->channels);
    if (o->size < 32 || o->size % 32 != 0 || o->size > 8192)
        return cnnl__error(CNNL_EINVAL, "%s: size is %d; must be a positive multiple of 32 (up to 8192)", fn, o->size);
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f))
        return cnnl__error(CNNL_EINVAL, "%s: dropout is %g; must be in [0, 1)", fn, (double)o->dropout);
    return CNNL_OK;
}

/* Append *@p l (made by the constructor call whose status is @p made; arguments are evaluated
 * in unspecified order, hence the pointer) as "<group>.<index>"; the model frees @p l on failure. */
static cnnl_status add(cnnl_model *m, const char *group, int *index, cnnl_status made, cnnl_layer **l)
{
    if (made != CNNL_OK)
        return made;
    char name[48];
    snprintf(name, sizeof name, "%s.%d", group, (*index)++);
    return cnnl_model_add(m, name, *l);
}

static cnnl_status build(cnnl_model *m, const cnnl_report_opts *o)
{
    static const int widths[4] = {16, 32, 64, 128};
    cnnl_layer *l = NULL;
    int fi = 0, ci = 0, in_c = o->channels;
    cnnl_status st = add(m, "features", &fi, cnnl_avgpool2d_create(&l, 2, 2), &l);
    for (int b = 0; b < 4 && st == CNNL_OK; b++) {
        st = add(m, "features", &fi, cnnl_conv2d_create(&l, in_c, widths[b], 3, 1, 1, true), &l);
        if (st == CNNL_OK && o->batchnorm)
            st = add(m, "features", &fi, cnnl_batchnorm2d_create(&l, widths[b]), &l);
        if (st == CNNL_OK)
            st = add(m, "features", &fi, cnnl_activation_create(&l, CNNL_ACT_RELU, 0.0f), &l);
        if (st == CNNL_OK)
            st = add(m, "features", &fi, cnnl_maxpool2d_create(&l, 2, 2), &l);
        in_c = widths[b];
    }
    if (st == CNNL_OK && (st = cnnl_flatten_create(&l)) == CNNL_OK)
        st = cnnl_model_add(m, "flatten", l);
    int side = o->size / 32;
    int flat = 128 * side * side;
    if (st == CNNL_OK)
        st = add(m, "classifier", &ci, cnnl_dropout_create(&l, o->dropout), &l);
    if (st == CNNL_OK)
        st = add(m, "classifier", &ci, cnnl_linear_create(&l, flat, 128, true), &l);
    if (st == CNNL_OK)
        st = add(m, "classifier", &ci, cnnl_activation_create(&l, CNNL_ACT_RELU, 0.0f), &l);
    if (st == CNNL_OK)
        st = add(m, "classifier", &ci, cnnl_dropout_create(&l, o->dropout), &l);
    if (st == CNNL_OK)
        st = add(m, "classifier", &ci, cnnl_linear_create(&l, 128, o->classes, true), &l);
    return st;
}

CNNL_API cnnl_status cnnl_report_net_create(cnnl_model **out, const cnnl_report_opts *opts)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_report_net_create: out is NULL");
    *out = NULL;
    cnnl_report_opts o = opts ? *opts : cnnl_report_opts_default();
    cnnl_status st = check_opts(&o);
    if (st != CNNL_OK)
        return st;
    cnnl_model *m = NULL;
    if ((st = cnnl_model_create(&m)) != CNNL_OK)
        return st;
    st = build(m, &o);
    if (st == CNNL_OK) {
        cnnl__model_set_report(m, &o);
        st = cnnl_model_init(m, o.seed);
    }
    if (st != CNNL_OK) {
        cnnl_model_free(m);
        return st;
    }
    *out = m;
    return CNNL_OK;
}
