/* xoshiro256** (Blackman & Vigna), seeded through SplitMix64 from (seed, stream). */
#include <math.h>
#include <stdlib.h>

#include "cnnlite/rng.h"
#include "core/internal.h"
#include "core/rng_impl.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cnnl__rng_seed(cnnl_rng *rng, uint64_t seed, uint64_t stream)
{
    /* Mix the stream into the SplitMix64 start so streams are far apart. */
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    splitmix64(&x);
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = 1;
    rng->has_spare = false;
}

uint64_t cnnl__rng_u64(cnnl_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float cnnl__rng_uniform(cnnl_rng *rng)
{
    return (float)(cnnl__rng_u64(rng) >> 40) * 0x1.0p-24f;
}

uint64_t cnnl__rng_below(cnnl_rng *rng, uint64_t bound)
{
    if (bound == 0)
        return 0;
    /* Rejection sampling: discard the biased tail. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t v;
    do {
        v = cnnl__rng_u64(rng);
    } while (v >= limit);
    return v % bound;
}

float cnnl__rng_normal(cnnl_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = false;
        return rng->spare;
    }
    double u1, u2;
    do {
        u1 = (double)(cnnl__rng_u64(rng) >> 11) * 0x1.0p-53;
    } while (u1 <= 0.0);
    u2 = (double)(cnnl__rng_u64(rng) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    rng->spare = (float)(r * sin(th));
    rng->has_spare = true;
    return (float)(r * cos(th));
}

CNNL_API cnnl_status cnnl_rng_create(cnnl_rng **out, uint64_t seed, uint64_t stream)
{
    if (!out)
        return cnnl__error(CNNL_EINVAL, "cnnl_rng_create: out is NULL");
    *out = NULL;
    cnnl_rng *rng = calloc(1, sizeof *rng);
    if (!rng)
        return cnnl__error(CNNL_ENOMEM, "cnnl_rng_create: out of memory");
    cnnl__rng_seed(rng, seed, stream);
    *out = rng;
    return CNNL_OK;
}

CNNL_API void cnnl_rng_free(cnnl_rng *rng)
{
    free(rng);
}

CNNL_API cnnl_status cnnl_rng_seed(cnnl_rng *rng, uint64_t seed, uint64_t stream)
{
    if (!rng)
        return cnnl__error(CNNL_EINVAL, "cnnl_rng_seed: rng is NULL");
    cnnl__rng_seed(rng, seed, stream);
    return CNNL_OK;
}

CNNL_API uint64_t cnnl_rng_next_u64(cnnl_rng *rng)
{
    return rng ? cnnl__rng_u64(rng) : 0;
}

CNNL_API float cnnl_rng_uniform(cnnl_rng *rng)
{
    return rng ? cnnl__rng_uniform(rng) : 0.0f;
}

CNNL_API uint64_t cnnl_rng_below(cnnl_rng *rng, uint64_t bound)
{
    return rng ? cnnl__rng_below(rng, bound) : 0;
}

CNNL_API float cnnl_rng_normal(cnnl_rng *rng)
{
    return rng ? cnnl__rng_normal(rng) : 0.0f;
}

CNNL_API cnnl_status cnnl_rng_get_state(const cnnl_rng *rng, uint64_t state[CNNL_RNG_STATE_WORDS])
{
    if (!rng || !state)
        return cnnl__error(CNNL_EINVAL, "cnnl_rng_get_state: %s is NULL", rng ? "state" : "rng");
    for (int i = 0; i < 4; i++)
        state[i] = rng->s[i];
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_rng_set_state(cnnl_rng *rng, const uint64_t state[CNNL_RNG_STATE_WORDS])
{
    if (!rng || !state)
        return cnnl__error(CNNL_EINVAL, "cnnl_rng_set_state: %s is NULL", rng ? "state" : "rng");
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_rng_set_state: the all-zero state is invalid for xoshiro256**");
    for (int i = 0; i < 4; i++)
        rng->s[i] = state[i];
    rng->has_spare = false;
    return CNNL_OK;
}
