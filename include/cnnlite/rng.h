/**
 * @file rng.h
 * @brief Seedable pseudo-random numbers with independent streams (xoshiro256**).
 */
#ifndef CNNLITE_RNG_H
#define CNNLITE_RNG_H

#include <stdint.h>

#include "export.h"
#include "status.h"

/**
 * @defgroup rng Random numbers
 * @brief xoshiro256** generators; one seed, independent streams.
 *
 * A generator is identified by a seed and a stream number. The state is derived with
 * SplitMix64 from both, so streams of one seed are statistically independent. The library
 * uses one stream per purpose (see ::cnnl_rng_stream), so that for example changing the
 * dropout rate does not change the weight initialisation or the data split.
 * @{
 */

/** Stream numbers the library uses for its own purposes. */
typedef enum cnnl_rng_stream {
    CNNL_RNG_INIT = 1,      /**< Weight initialisation. */
    CNNL_RNG_SPLIT = 2,     /**< Train/test split. */
    CNNL_RNG_SHUFFLE = 3,   /**< Batch order in each epoch. */
    CNNL_RNG_DROPOUT = 4,   /**< Dropout masks. */
    CNNL_RNG_SYNTHETIC = 5, /**< Synthetic data generation. */
    CNNL_RNG_AUGMENT = 6    /**< Per-image data augmentation. */
} cnnl_rng_stream;

/** Opaque generator. */
typedef struct cnnl_rng cnnl_rng;

/** Number of 64-bit words in a serialised generator state. */
#define CNNL_RNG_STATE_WORDS 4

CNNL_BEGIN_DECLS

/**
 * @brief Create a generator for @p seed and @p stream.
 * @param[out] out Receives the new generator; owned by the caller, release with cnnl_rng_free().
 *             Set to NULL on failure.
 * @param seed Any 64-bit seed.
 * @param stream Any stream number; different streams give independent sequences.
 * @return #CNNL_OK, #CNNL_EINVAL if @p out is NULL, #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_rng_create(cnnl_rng **out, uint64_t seed, uint64_t stream);

/**
 * @brief Release a generator. NULL is accepted and ignored.
 * @param rng The generator, or NULL.
 */
CNNL_API void cnnl_rng_free(cnnl_rng *rng);

/**
 * @brief Reset @p rng to the start of (@p seed, @p stream).
 * @param rng The generator (not NULL).
 * @param seed Seed.
 * @param stream Stream number.
 * @return #CNNL_OK or #CNNL_EINVAL if @p rng is NULL.
 */
CNNL_API cnnl_status cnnl_rng_seed(cnnl_rng *rng, uint64_t seed, uint64_t stream);

/**
 * @brief Next 64 random bits.
 * @param rng The generator; must not be NULL (returns 0 if it is).
 * @return Uniformly distributed 64-bit value.
 */
CNNL_API uint64_t cnnl_rng_next_u64(cnnl_rng *rng);

/**
 * @brief Uniform float in [0, 1) with 24 random bits.
 * @param rng The generator; must not be NULL (returns 0 if it is).
 * @return A value in [0, 1).
 */
CNNL_API float cnnl_rng_uniform(cnnl_rng *rng);

/**
 * @brief Uniform integer in [0, @p bound) without modulo bias.
 * @param rng The generator; must not be NULL (returns 0 if it is).
 * @param bound Upper bound (exclusive); 0 returns 0.
 * @return A value in [0, @p bound).
 */
CNNL_API uint64_t cnnl_rng_below(cnnl_rng *rng, uint64_t bound);

/**
 * @brief Standard normal float (Box-Muller).
 * @param rng The generator; must not be NULL (returns 0 if it is).
 * @return A sample of N(0, 1).
 */
CNNL_API float cnnl_rng_normal(cnnl_rng *rng);

/**
 * @brief Copy the generator's state out, e.g. into a checkpoint.
 *
 * The state covers cnnl_rng_next_u64(), cnnl_rng_uniform() and cnnl_rng_below() exactly;
 * the second sample that cnnl_rng_normal() keeps from its last Box-Muller pair is not part of
 * it (restoring a state discards it).
 * @param rng The generator (not NULL).
 * @param[out] state Receives #CNNL_RNG_STATE_WORDS words (not NULL).
 * @return #CNNL_OK or #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_rng_get_state(const cnnl_rng *rng, uint64_t state[CNNL_RNG_STATE_WORDS]);

/**
 * @brief Restore a state saved by cnnl_rng_get_state().
 * @param rng The generator (not NULL).
 * @param state #CNNL_RNG_STATE_WORDS words; all-zero is rejected (xoshiro's one invalid state).
 * @return #CNNL_OK or #CNNL_EINVAL.
 */
CNNL_API cnnl_status cnnl_rng_set_state(cnnl_rng *rng, const uint64_t state[CNNL_RNG_STATE_WORDS]);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_RNG_H */
