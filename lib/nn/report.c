/*
 * The report's network. Layer names follow the PyTorch module it mirrors:
 *   features   = Sequential(AvgPool2d(2), [Conv2d, (BatchNorm2d), ReLU, MaxPool2d(2)] x 4)
 *   flatten    (no state)
 *   classifier = Sequential(Dropout, Linear(., 128), ReLU, Dropout, Linear(128, classes))
 * so the parameters are features.1/4/7/10 (with batch norm: 1,2 / 5,6 / 9,10 / 13,14) and
 * classifier.1 / classifier.4, as in the report's state_dict. The network is one description
 * among others (examples/nets/report.json, report-bn.json), built by the same code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nn/arch_impl.h"
#include "nn/model_impl.h"

CNNL_API cnnl_report_opts cnnl_report_opts_default(void)
{
    cnnl_report_opts o = {.classes = 4, .channels = 3, .size = 512, .batchnorm = false, .dropout = 0.2f, .seed = 0};
    return o;
}

cnnl_status cnnl__report_check(const cnnl_report_opts *o)
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

/* Shortest decimal text of @p f that reads back to the same float. */
static void float_text(float f, char *buf, size_t len)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            return;
    }
}

/* The report network as a description (examples/nets/report.json for the defaults). */
void cnnl__report_describe(const cnnl_report_opts *o, char *buf, size_t len)
{
    static const int widths[4] = {16, 32, 64, 128};
    char p[32];
    float_text(o->dropout, p, sizeof p);
    size_t n = (size_t)snprintf(buf, len,
                                "{\"input\":[%d,%d,%d],\"layers\":[{\"type\":\"Sequential\",\"name\":\"features\","
                                "\"layers\":[{\"type\":\"AvgPool2d\",\"kernel_size\":2}",
                                o->channels, o->size, o->size);
    for (int b = 0; b < 4; b++)
        n += (size_t)snprintf(buf + n, len - n,
                              ",{\"type\":\"Conv2d\",\"out_channels\":%d,\"kernel_size\":3,\"padding\":1}%s,"
                              "{\"type\":\"ReLU\"},{\"type\":\"MaxPool2d\",\"kernel_size\":2}",
                              widths[b], o->batchnorm ? ",{\"type\":\"BatchNorm2d\"}" : "");
    snprintf(buf + n, len - n,
             "]},{\"type\":\"Flatten\",\"name\":\"flatten\"},{\"type\":\"Sequential\",\"name\":\"classifier\","
             "\"layers\":[{\"type\":\"Dropout\",\"p\":%s},{\"type\":\"Linear\",\"out_features\":128},"
             "{\"type\":\"ReLU\"},{\"type\":\"Dropout\",\"p\":%s},{\"type\":\"Linear\",\"out_features\":%d}]}]}",
             p, p, o->classes);
}

CNNL_API cnnl_status cnnl_report_net_create(cnnl_model **out, const cnnl_report_opts *opts)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_report_net_create: out is NULL");
    *out = NULL;
    cnnl_report_opts o = opts ? *opts : cnnl_report_opts_default();
    cnnl_status st = cnnl__report_check(&o);
    if (st != CNNL_OK)
        return st;
    char text[2048];
    cnnl__report_describe(&o, text, sizeof text);
    cnnl__arch *a = NULL;
    cnnl_model *m = NULL;
    st = cnnl__arch_parse(text, strlen(text), "cnnl_report_net_create", &a);
    if (st == CNNL_OK)
        st = cnnl__arch_build(a, &m);
    cnnl__arch_free(a);
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
