/*
 * The layer vtable shared by lib/nn/. A layer owns its output and input-gradient tensors and
 * its workspaces; the model owns the layers and passes each one the previous layer's output.
 */
#ifndef CNNL_NN_LAYER_H
#define CNNL_NN_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnlite/model.h"
#include "core/rng_impl.h"
#include "core/tensor_impl.h"

/* One named tensor of a layer's state; names are "<layer name>.<suffix>". */
typedef struct cnnl__state {
    const char *suffix;
    int ndim;
    int64_t shape[4];
    size_t numel;
    cnnl_dtype dtype;
    float *data;
    int64_t *data_i64;
    float *grad;
    bool trainable;
    size_t fan_in; /* for initialisation of weights and biases; 0 for others */
    enum { CNNL__INIT_KAIMING, CNNL__INIT_ONES, CNNL__INIT_ZEROS } init;
} cnnl__state;

enum { CNNL__MAX_STATE = 5 };

typedef struct cnnl__layer_ops {
    const char *kind; /* PyTorch class name, e.g. "Conv2d" */
    /* Compute l->out from @p in (shapes checked by the layer). */
    cnnl_status (*forward)(cnnl_layer *l, const cnnl_tensor *in);
    /* From @p gout (shape of l->out): when @p want_gin, write l->gin; when @p param_grads,
     * accumulate parameter gradients. @p in is the forward input. An input gradient of the
     * layer's own goes to l->gin_ws through cnnl__tensor_ensure(): the model may lend that
     * slot one of its shared buffers for the call (lib/nn/model.c), so neither it nor @p gout
     * may be kept for a later call (cnnl__layer_keeps_gout() names the exception). */
    cnnl_status (*backward)(cnnl_layer *l, const cnnl_tensor *in, const cnnl_tensor *gout, bool want_gin,
                            bool param_grads);
    void (*destroy)(cnnl_layer *l); /* free layer-specific memory (not the common part) */
    /* Optional: take over the work of @p next, the layer appended right after this one (or
     * after the layers fused into it so far), turning @p next into a pass-through; returns
     * whether it did. */
    bool (*fuse_next)(cnnl_layer *l, cnnl_layer *next);
} cnnl__layer_ops;

struct cnnl_layer {
    const cnnl__layer_ops *ops;
    char *name;            /* set by cnnl_model_add */
    bool training;
    cnnl_rng *rng;         /* the model's dropout stream (borrowed) */
    int nstate;
    cnnl__state state[CNNL__MAX_STATE];
    cnnl_tensor *out_ws;   /* owned output storage */
    cnnl_tensor *gin_ws;   /* owned input-gradient storage */
    const cnnl_tensor *out;/* the output: out_ws, or a view */
    const cnnl_tensor *gin;/* the input gradient: gin_ws, or a view */
    cnnl_tensor out_view, gin_view; /* views for layers that only reshape */
};

/* bfloat16 convolutions: whether this build and CPU can run them (CNNL_EUNSUPPORTED with a
 * message otherwise), and switching a layer (no effect unless it is a Conv2d). */
cnnl_status cnnl__conv_bf16_check(void);
void cnnl__conv_set_bf16(cnnl_layer *l, bool on);
/* cnnl_conv2d_create() with PyTorch's dilation and groups (weights (out, in/groups, k, k));
 * in and out channels must be multiples of @p groups (CNNL_EINVAL otherwise). */
cnnl_status cnnl__conv2d_create_ex(cnnl_layer **out, int in_channels, int out_channels, int kernel, int stride,
                                   int padding, int dilation, int groups, bool bias);

/* Allocate a zeroed layer of @p size bytes (>= sizeof(struct cnnl_layer)) with @p ops. */
cnnl_layer *cnnl__layer_new(size_t size, const cnnl__layer_ops *ops);

/* Add a state tensor (allocated zeroed; with a zeroed gradient when trainable). */
cnnl_status cnnl__layer_add_state(cnnl_layer *l, const char *suffix, int ndim, const int64_t *shape,
                                  cnnl_dtype dtype, bool trainable, size_t fan_in, int init);

/* "a x b x c" rendering of a shape for messages; returns @p buf. */
const char *cnnl__shape_str(const cnnl_tensor *t, char *buf, size_t len);

/* Name of the layer for messages: "features.1 (Conv2d)". Uses a thread-local buffer. */
const char *cnnl__layer_label(const cnnl_layer *l);

/* Shape error naming the layer, what it expected and what it got. */
cnnl_status cnnl__layer_shape_error(const cnnl_layer *l, const cnnl_tensor *got, const char *expected);

/* Make the output a view of @p x (a layer that passes its input through unchanged). */
static inline void cnnl__layer_pass_output(cnnl_layer *l, const cnnl_tensor *x)
{
    l->out_view = *x;
    l->out_view.capacity = 0;
    l->out = &l->out_view;
}

/* Make the input gradient a view of @p gy (the backward of such a layer). */
static inline void cnnl__layer_pass_gradient(cnnl_layer *l, const cnnl_tensor *gy)
{
    l->gin_view = *gy;
    l->gin_view.capacity = 0;
    l->gin = &l->gin_view;
}

/* If @p l is a ReLU layer, make it a pass-through (its producer applies it) and return true. */
bool cnnl__relu_make_passthrough(cnnl_layer *l);
/* The same for a MaxPool2d with kernel 2 and stride 2. */
bool cnnl__maxpool2_make_passthrough(cnnl_layer *l);
/* Whether @p l is an average pool whose windows cover every element of @p x exactly once
 * (kernel = stride, no padding, sizes divisible): its forward then fails with CNNL_ENUMERIC
 * exactly when x holds a NaN or an infinity, or a sum overflows, so the model can leave its
 * separate pass over the input out. */
bool cnnl__avgpool_covers_input(const cnnl_layer *l, const cnnl_tensor *x);
/* MaxPool2d (@p max) or AvgPool2d with PyTorch's padding (0..kernel/2; max pooling pads with
 * -inf, average pooling counts the zeros); CNNL_EINVAL naming the option otherwise. */
cnnl_status cnnl__pool2d_create_ex(cnnl_layer **out, int kernel, int stride, int padding, bool max);

/* Set a BatchNorm2d layer's eps (> 0) and momentum (in [0, 1]). */
cnnl_status cnnl__batchnorm2d_configure(cnnl_layer *l, float eps, float momentum);

/* Residual blocks in a flat model: a begin marker (passes its input through and, in backward,
 * adds the skip gradient) and an end marker (adds the begin's input to the body's output). */
cnnl_status cnnl__residual_begin_create(cnnl_layer **out);
cnnl_status cnnl__residual_end_create(cnnl_layer **out, cnnl_layer *begin);
/* Whether @p l keeps its output gradient past its backward call (a Residual end marker hands
 * it to the begin marker): the model then gives every layer its own input-gradient buffer. */
bool cnnl__layer_keeps_gout(const cnnl_layer *l);

/* Global average pooling to 1x1 (AdaptiveAvgPool2d(1)). */
cnnl_status cnnl__adaptive_avgpool1_create(cnnl_layer **out);

#endif
