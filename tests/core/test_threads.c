/* Thread control. */
#include "test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include "core/internal.h"
#include "ops/gemm.h"

static void test_set_and_get(void **state)
{
    (void)state;
    assert_ok(cnnl_set_num_threads(3));
    assert_int_equal(cnnl_get_num_threads(), 3);
    assert_ok(cnnl_set_num_threads(1));
    assert_int_equal(cnnl_get_num_threads(), 1);
    assert_ok(cnnl_set_num_threads(0));
    assert_int_equal(cnnl_get_num_threads(), (int)sysconf(_SC_NPROCESSORS_ONLN));
}

static void test_invalid_counts(void **state)
{
    (void)state;
    assert_ok(cnnl_set_num_threads(2));
    assert_status_msg(cnnl_set_num_threads(-1), CNNL_EINVAL, "-1 threads");
    assert_status_msg(cnnl_set_num_threads(5000), CNNL_EINVAL, "5000 threads");
    assert_int_equal(cnnl_get_num_threads(), 2); /* unchanged by the failures */
}

static void test_chunks_cover_range(void **state)
{
    (void)state;
    for (size_t n = 0; n < 40; n++)
        for (int parts = 1; parts <= 7; parts++) {
            size_t expect = 0;
            for (int i = 0; i < parts; i++) {
                size_t lo, hi;
                cnnl__chunk(n, parts, i, &lo, &hi);
                assert_int_equal(lo, expect);
                assert_true(hi >= lo && hi - lo <= n / (size_t)parts + 1);
                expect = hi;
            }
            assert_int_equal(expect, n);
        }
}

/* The threaded GEMM split must give the same numbers whatever the thread count, and agree
 * with a naive product. */
static void test_parallel_gemm_matches_naive(void **state)
{
    (void)state;
    enum { M = 37, N = 300, K = 129 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c1 = malloc(sizeof(float) * M * N), *c4 = malloc(sizeof(float) * M * N);
    assert_non_null(a); assert_non_null(b); assert_non_null(c1); assert_non_null(c4);
    for (int i = 0; i < M * K; i++)
        a[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)((i * 11) % 13) / 13.0f - 0.5f;
    assert_ok(cnnl_set_num_threads(1));
    cnnl__sgemm(false, false, M, N, K, 1.0f, a, K, b, N, 0.0f, c1, N);
    assert_ok(cnnl_set_num_threads(4));
    cnnl__sgemm(false, false, M, N, K, 1.0f, a, K, b, N, 0.0f, c4, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double ref = 0;
            for (int k = 0; k < K; k++)
                ref += (double)a[i * K + k] * b[k * N + j];
            assert_float_equal(c1[i * N + j], ref, 1e-3);
            assert_float_equal(c4[i * N + j], c1[i * N + j], 1e-5);
        }
    free(a); free(b); free(c1); free(c4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_invalid_counts),
        cmocka_unit_test(test_chunks_cover_range),
        cmocka_unit_test(test_parallel_gemm_matches_naive),
    };
    return cmocka_run_group_tests_name("core/threads", tests, NULL, NULL);
}
