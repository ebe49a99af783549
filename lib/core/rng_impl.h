/* Generator layout and inline-speed entry points for the library's own use. */
#ifndef CNNL_CORE_RNG_IMPL_H
#define CNNL_CORE_RNG_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "cnnlite/rng.h"

struct cnnl_rng {
    uint64_t s[4];
    float spare; /* second Box-Muller sample */
    bool has_spare;
};

void cnnl__rng_seed(cnnl_rng *rng, uint64_t seed, uint64_t stream);
uint64_t cnnl__rng_u64(cnnl_rng *rng);
float cnnl__rng_uniform(cnnl_rng *rng);
uint64_t cnnl__rng_below(cnnl_rng *rng, uint64_t bound);
float cnnl__rng_normal(cnnl_rng *rng);

#endif
