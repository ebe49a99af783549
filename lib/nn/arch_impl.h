/*
 * Architecture descriptions (JSON, PyTorch's vocabulary): the layer registry and the parsed,
 * validated plan a model is built from. See lib/nn/registry.c (types) and lib/nn/arch.c
 * (parsing, checking, building, writing).
 */
#ifndef CNNL_NN_ARCH_IMPL_H
#define CNNL_NN_ARCH_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cnnlite/model.h"

/* Shape of one sample: C x H x W (nd 3) or F (nd 1). */
typedef struct cnnl__ashape {
    int nd;
    int64_t d[3];
} cnnl__ashape;

enum { CNNL__ARCH_MAX_OPTS = 8 };

/* One option of a layer type: 'i' integer, 'f' number, 'b' boolean. A NaN default means
 * "derived" (e.g. a pool's stride defaults to its kernel_size); required options have none. */
typedef struct cnnl__arch_opt {
    const char *name;
    char kind;
    bool required;
    double def, lo, hi;
} cnnl__arch_opt;

/* A state tensor a layer will have: suffix and shape. */
typedef struct cnnl__arch_state_spec {
    const char *suffix;
    int ndim;
    int64_t shape[4];
} cnnl__arch_state_spec;

/* A layer type of the registry. @c v holds the option values in the order of @c opts. */
typedef struct cnnl__arch_type {
    const char *name; /* PyTorch class name */
    const cnnl__arch_opt *opts; /* terminated by a NULL name */
    /* Output shape for input @p in; on failure write the reason (naming the option) to @p why.
     * May fill derived options in @p v. */
    bool (*infer)(double *v, const cnnl__ashape *in, cnnl__ashape *out, char *why, size_t len);
    /* State tensors of the layer (at most 5); returns their number. NULL: none. */
    int (*states)(const double *v, const cnnl__ashape *in, cnnl__arch_state_spec *out);
    cnnl_status (*create)(const double *v, const cnnl__ashape *in, cnnl_layer **out);
} cnnl__arch_type;

/* The registry: every type a description may name, and its length. */
extern const cnnl__arch_type *const cnnl__arch_types[];
extern const size_t cnnl__arch_type_count;

/* A parsed and checked description. */
typedef struct cnnl__arch cnnl__arch;

/* Parse and check @p json (@p len bytes); messages start with @p origin (a file name or
 * "description"). Allocates nothing proportional to the network's size. */
cnnl_status cnnl__arch_parse(const char *json, size_t len, const char *origin, cnnl__arch **out);
void cnnl__arch_free(cnnl__arch *a);
/* The canonical description (every option explicit), borrowed from @p a. */
const char *cnnl__arch_json(const cnnl__arch *a);
/* Number of state tensors the model will have, and each one's full name and shape. */
size_t cnnl__arch_state_count(const cnnl__arch *a);
void cnnl__arch_state_at(const cnnl__arch *a, size_t i, const char **name, int *ndim, const int64_t **shape);
/* Number of trainable scalars plus buffers (what building allocates for state). */
size_t cnnl__arch_state_numel(const cnnl__arch *a);
/* Shape of one sample's output: returns nd (1 or 3) and fills @p shape. */
int cnnl__arch_output(const cnnl__arch *a, int64_t shape[3]);
/* Build the model (not initialised: call cnnl_model_init()). */
cnnl_status cnnl__arch_build(const cnnl__arch *a, cnnl_model **out);

#endif
