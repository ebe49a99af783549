/* The small network the checkpoint target restores into, shared with the seed generator so
 * that the committed seeds match it: Conv2d(1, 2, 3) -> ReLU -> MaxPool2d(2) -> Flatten ->
 * Linear(2*3*3, 3) on 8x8 inputs, trained by Adam. */
#ifndef CNNL_FUZZ_SMALL_MODEL_H
#define CNNL_FUZZ_SMALL_MODEL_H

#include <cnnlite/cnnlite.h>

static inline cnnl_status fuzz_small_model(cnnl_model **out)
{
    cnnl_model *m = NULL;
    cnnl_layer *l = NULL;
    cnnl_status st = cnnl_model_create(&m);
    if (st == CNNL_OK && (st = cnnl_conv2d_create(&l, 1, 2, 3, 1, 0, true)) == CNNL_OK)
        st = cnnl_model_add(m, NULL, l);
    if (st == CNNL_OK && (st = cnnl_activation_create(&l, CNNL_ACT_RELU, 0.0f)) == CNNL_OK)
        st = cnnl_model_add(m, NULL, l);
    if (st == CNNL_OK && (st = cnnl_maxpool2d_create(&l, 2, 2)) == CNNL_OK)
        st = cnnl_model_add(m, NULL, l);
    if (st == CNNL_OK && (st = cnnl_flatten_create(&l)) == CNNL_OK)
        st = cnnl_model_add(m, NULL, l);
    if (st == CNNL_OK && (st = cnnl_linear_create(&l, 2 * 3 * 3, 3, true)) == CNNL_OK)
        st = cnnl_model_add(m, NULL, l);
    if (st == CNNL_OK)
        st = cnnl_model_init(m, 1);
    if (st != CNNL_OK) {
        cnnl_model_free(m);
        m = NULL;
    }
    *out = m;
    return st;
}

#endif
