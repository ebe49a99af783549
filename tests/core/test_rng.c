/* xoshiro256** generator: reproducibility, streams, ranges, state round trip. */
#include "test_util.h"

#include <math.h>

static void test_same_seed_same_sequence(void **state)
{
    (void)state;
    cnnl_rng *a = NULL, *b = NULL;
    assert_ok(cnnl_rng_create(&a, 42, CNNL_RNG_SHUFFLE));
    assert_ok(cnnl_rng_create(&b, 42, CNNL_RNG_SHUFFLE));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cnnl_rng_next_u64(a), cnnl_rng_next_u64(b));
    cnnl_rng_free(a);
    cnnl_rng_free(b);
}

static void test_streams_and_seeds_differ(void **state)
{
    (void)state;
    cnnl_rng *a = NULL, *b = NULL, *c = NULL;
    assert_ok(cnnl_rng_create(&a, 7, CNNL_RNG_INIT));
    assert_ok(cnnl_rng_create(&b, 7, CNNL_RNG_DROPOUT));
    assert_ok(cnnl_rng_create(&c, 8, CNNL_RNG_INIT));
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = cnnl_rng_next_u64(a);
        same_ab += x == cnnl_rng_next_u64(b);
        same_ac += x == cnnl_rng_next_u64(c);
    }
    assert_int_equal(same_ab, 0);
    assert_int_equal(same_ac, 0);
    cnnl_rng_free(a);
    cnnl_rng_free(b);
    cnnl_rng_free(c);
}

static void test_distributions(void **state)
{
    (void)state;
    cnnl_rng *r = NULL;
    assert_ok(cnnl_rng_create(&r, 1, 1));
    enum { N = 200000 };
    double sum = 0, sumsq = 0, usum = 0;
    int counts[10] = {0};
    for (int i = 0; i < N; i++) {
        float u = cnnl_rng_uniform(r);
        assert_true(u >= 0.0f && u < 1.0f);
        usum += u;
        uint64_t k = cnnl_rng_below(r, 10);
        assert_true(k < 10);
        counts[k]++;
        float z = cnnl_rng_normal(r);
        assert_true(isfinite(z));
        sum += z;
        sumsq += (double)z * z;
    }
    assert_float_equal(usum / N, 0.5, 0.01);
    assert_float_equal(sum / N, 0.0, 0.01);
    assert_float_equal(sumsq / N, 1.0, 0.02);
    for (int k = 0; k < 10; k++)
        assert_float_equal(counts[k] / (double)N, 0.1, 0.005);
    assert_int_equal(cnnl_rng_below(r, 0), 0);
    cnnl_rng_free(r);
}

static void test_state_round_trip(void **state)
{
    (void)state;
    cnnl_rng *r = NULL, *s = NULL;
    assert_ok(cnnl_rng_create(&r, 99, 3));
    assert_ok(cnnl_rng_create(&s, 0, 0));
    for (int i = 0; i < 17; i++)
        cnnl_rng_next_u64(r);
    uint64_t words[CNNL_RNG_STATE_WORDS];
    assert_ok(cnnl_rng_get_state(r, words));
    assert_ok(cnnl_rng_set_state(s, words));
    for (int i = 0; i < 100; i++)
        assert_int_equal(cnnl_rng_next_u64(r), cnnl_rng_next_u64(s));
    assert_ok(cnnl_rng_seed(s, 99, 3));
    assert_ok(cnnl_rng_seed(r, 99, 3));
    assert_int_equal(cnnl_rng_next_u64(r), cnnl_rng_next_u64(s));
    cnnl_rng_free(r);
    cnnl_rng_free(s);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint64_t zeros[CNNL_RNG_STATE_WORDS] = {0};
    cnnl_rng *r = NULL;
    assert_status_msg(cnnl_rng_create(NULL, 1, 1), CNNL_EINVAL, "out is NULL");
    assert_ok(cnnl_rng_create(&r, 1, 1));
    assert_status_msg(cnnl_rng_set_state(r, zeros), CNNL_EINVAL, "all-zero");
    assert_status_msg(cnnl_rng_set_state(NULL, zeros), CNNL_EINVAL, "rng is NULL");
    assert_status_msg(cnnl_rng_get_state(r, NULL), CNNL_EINVAL, "state is NULL");
    assert_status_msg(cnnl_rng_seed(NULL, 1, 1), CNNL_EINVAL, "rng is NULL");
    assert_int_equal(cnnl_rng_next_u64(NULL), 0);
    assert_true(cnnl_rng_uniform(NULL) == 0.0f);
    cnnl_rng_free(r);
    cnnl_rng_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_streams_and_seeds_differ),
        cmocka_unit_test(test_distributions),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("core/rng", tests, NULL, NULL);
}
