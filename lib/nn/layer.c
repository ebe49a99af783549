/* Parts common to every layer: allocation, state tensors, messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nn/layer.h"

cnnl_layer *cnnl__layer_new(size_t size, const cnnl__layer_ops *ops)
{
    cnnl_layer *l = calloc(1, size);
    if (!l) {
        cnnl__error(CNNL_ENOMEM, "cannot allocate a %s layer", ops->kind);
        return NULL;
    }
    l->ops = ops;
    l->training = true;
    return l;
}

cnnl_status cnnl__layer_add_state(cnnl_layer *l, const char *suffix, int ndim, const int64_t *shape,
                                  cnnl_dtype dtype, bool trainable, size_t fan_in, int init)
{
    if (l->nstate >= CNNL__MAX_STATE)
        return cnnl__error(CNNL_EINVAL, "%s: too many state tensors", l->ops->kind);
    cnnl__state *s = &l->state[l->nstate];
    memset(s, 0, sizeof(*s));
    s->suffix = suffix;
    s->ndim = ndim;
    s->numel = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = shape[i];
        if (!cnnl__mul_size(s->numel, (size_t)shape[i], &s->numel))
            return cnnl__error(CNNL_EINVAL, "%s: %s is too large", l->ops->kind, suffix);
    }
    s->dtype = dtype;
    s->trainable = trainable;
    s->fan_in = fan_in;
    s->init = init;
    if (dtype == CNNL_DTYPE_I64) {
        s->data_i64 = cnnl__alloc_array(s->numel, sizeof(int64_t), true);
        if (!s->data_i64)
            return CNNL_ENOMEM;
    } else {
        s->data = cnnl__alloc_array(s->numel, sizeof(float), true);
        if (!s->data)
            return CNNL_ENOMEM;
        if (trainable) {
            s->grad = cnnl__alloc_array(s->numel, sizeof(float), true);
            if (!s->grad) { /* the entry is not counted: free its values here */
                cnnl__free(s->data);
                s->data = NULL;
                return CNNL_ENOMEM;
            }
        }
    }
    l->nstate++;
    return CNNL_OK;
}

const char *cnnl__shape_str(const cnnl_tensor *t, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndim && used < len; i++) {
        int n = snprintf(buf + used, len - used, i ? "x%lld" : "%lld", (long long)t->shape[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

const char *cnnl__layer_label(const cnnl_layer *l)
{
    static _Thread_local char buf[160];
    snprintf(buf, sizeof buf, "layer %s (%s)", l->name ? l->name : "?", l->ops->kind);
    return buf;
}

cnnl_status cnnl__layer_shape_error(const cnnl_layer *l, const cnnl_tensor *got, const char *expected)
{
    char s[96];
    return cnnl__error(CNNL_ESHAPE, "%s: input shape %s does not fit; expected %s", cnnl__layer_label(l),
                       cnnl__shape_str(got, s, sizeof s), expected);
}
