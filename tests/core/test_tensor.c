/* Tensor API: construction, queries, copies, reshape, matmul, and every bad argument. */
#include "test_util.h"

#include <math.h>

#include "core/tensor_impl.h"

static void test_create_and_query(void **state)
{
    (void)state;
    int64_t shape[4] = {2, 3, 4, 5};
    cnnl_tensor *t = NULL;
    assert_ok(cnnl_tensor_zeros(&t, 4, shape));
    assert_int_equal(cnnl_tensor_ndim(t), 4);
    assert_int_equal(cnnl_tensor_numel(t), 120);
    assert_int_equal(cnnl_tensor_dim(t, 0), 2);
    assert_int_equal(cnnl_tensor_dim(t, 3), 5);
    assert_int_equal(cnnl_tensor_dim(t, -1), 5);
    assert_int_equal(cnnl_tensor_dim(t, -4), 2);
    int nd = 0;
    int64_t got[4] = {0};
    assert_ok(cnnl_tensor_shape(t, &nd, got));
    assert_int_equal(nd, 4);
    assert_memory_equal(got, shape, sizeof shape);
    const float *d = cnnl_tensor_data_const(t);
    for (int i = 0; i < 120; i++)
        assert_true(d[i] == 0.0f);
    assert_true(((uintptr_t)d % 64) == 0); /* aligned for vector loads */
    cnnl_tensor_free(t);

    assert_ok(cnnl_tensor_create(&t, 1, shape));
    assert_int_equal(cnnl_tensor_numel(t), 2);
    cnnl_tensor_free(t);
}

static void test_from_data_copy_fill(void **state)
{
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    cnnl_tensor *t = NULL, *c = NULL;
    assert_ok(cnnl_tensor_from_data(&t, 2, shape, v));
    v[0] = 100; /* the tensor holds a copy */
    assert_true(cnnl_tensor_data(t)[0] == 1.0f);
    assert_ok(cnnl_tensor_copy(&c, t));
    assert_true(cnnl_tensor_data(c) != cnnl_tensor_data(t));
    assert_memory_equal(cnnl_tensor_data(c), cnnl_tensor_data(t), 6 * sizeof(float));
    assert_ok(cnnl_tensor_fill(c, -2.5f));
    for (int i = 0; i < 6; i++)
        assert_true(cnnl_tensor_data(c)[i] == -2.5f);
    assert_true(cnnl_tensor_data(t)[5] == 6.0f);
    assert_ok(cnnl_tensor_copy_into(c, t));
    assert_true(cnnl_tensor_data(c)[5] == 6.0f);
    assert_ok(cnnl_tensor_fill(c, NAN));
    assert_true(isnan(cnnl_tensor_data(c)[2]));
    cnnl_tensor_free(t);
    cnnl_tensor_free(c);
}

static void test_reshape(void **state)
{
    (void)state;
    int64_t shape[4] = {2, 3, 2, 2}, flat[2] = {2, 12}, wrong[2] = {5, 5};
    cnnl_tensor *t = NULL;
    assert_ok(cnnl_tensor_zeros(&t, 4, shape));
    cnnl_tensor_data(t)[13] = 7.0f;
    assert_ok(cnnl_tensor_reshape(t, 2, flat));
    assert_int_equal(cnnl_tensor_ndim(t), 2);
    assert_int_equal(cnnl_tensor_dim(t, 1), 12);
    assert_true(cnnl_tensor_data(t)[13] == 7.0f);
    assert_status_msg(cnnl_tensor_reshape(t, 2, wrong), CNNL_ESHAPE, "25 elements");
    assert_status_msg(cnnl_tensor_reshape(t, 5, shape), CNNL_EINVAL, "5 dimensions");
    assert_status_msg(cnnl_tensor_reshape(NULL, 2, flat), CNNL_EINVAL, "tensor is NULL");
    assert_int_equal(cnnl_tensor_ndim(t), 2); /* failures leave the shape alone */
    cnnl_tensor_free(t);
}

static void test_matmul(void **state)
{
    (void)state;
    float a[6] = {1, 2, 3, 4, 5, 6};        /* 2x3 */
    float b[6] = {7, 8, 9, 10, 11, 12};     /* 3x2 */
    int64_t sa[2] = {2, 3}, sb[2] = {3, 2};
    cnnl_tensor *ta = NULL, *tb = NULL, *tc = NULL;
    assert_ok(cnnl_tensor_from_data(&ta, 2, sa, a));
    assert_ok(cnnl_tensor_from_data(&tb, 2, sb, b));
    assert_ok(cnnl_tensor_matmul(&tc, ta, false, tb, false));
    assert_int_equal(cnnl_tensor_dim(tc, 0), 2);
    assert_int_equal(cnnl_tensor_dim(tc, 1), 2);
    const float *c = cnnl_tensor_data_const(tc);
    assert_true(c[0] == 58 && c[1] == 64 && c[2] == 139 && c[3] == 154);
    cnnl_tensor_free(tc);
    /* a^T (3x2) * a (2x3) -> 3x3 */
    assert_ok(cnnl_tensor_matmul(&tc, ta, true, ta, false));
    c = cnnl_tensor_data_const(tc);
    assert_int_equal(cnnl_tensor_dim(tc, 0), 3);
    assert_true(c[0] == 17 && c[1] == 22 && c[4] == 29 && c[8] == 45);
    cnnl_tensor_free(tc);
    /* a (2x3) * a^T (3x2) -> 2x2 */
    assert_ok(cnnl_tensor_matmul(&tc, ta, false, ta, true));
    c = cnnl_tensor_data_const(tc);
    assert_true(c[0] == 14 && c[1] == 32 && c[3] == 77);
    cnnl_tensor_free(tc);
    tc = (cnnl_tensor *)0x1;
    assert_status_msg(cnnl_tensor_matmul(&tc, ta, false, ta, false), CNNL_ESHAPE, "inner dimensions differ (3 vs 2)");
    assert_null(tc);
    cnnl_tensor_free(ta);
    cnnl_tensor_free(tb);
}

static void test_matmul_large_is_threaded_and_right(void **state)
{
    (void)state;
    int64_t sa[2] = {64, 200}, sb[2] = {200, 513};
    cnnl_tensor *a = NULL, *b = NULL, *c = NULL;
    assert_ok(cnnl_tensor_create(&a, 2, sa));
    assert_ok(cnnl_tensor_create(&b, 2, sb));
    for (size_t i = 0; i < cnnl_tensor_numel(a); i++)
        cnnl_tensor_data(a)[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < cnnl_tensor_numel(b); i++)
        cnnl_tensor_data(b)[i] = (float)(i % 5) - 2.0f;
    assert_ok(cnnl_set_num_threads(2));
    assert_ok(cnnl_tensor_matmul(&c, a, false, b, false));
    const float *pa = cnnl_tensor_data(a), *pb = cnnl_tensor_data(b), *pc = cnnl_tensor_data(c);
    for (int i = 0; i < 64; i += 7)
        for (int j = 0; j < 513; j += 13) {
            float ref = 0;
            for (int k = 0; k < 200; k++)
                ref += pa[i * 200 + k] * pb[k * 513 + j];
            assert_true(pc[i * 513 + j] == ref); /* small integers: exact */
        }
    cnnl_tensor_free(a);
    cnnl_tensor_free(b);
    cnnl_tensor_free(c);
}

/* Every constructor rejects every bad shape with EINVAL and a message, and leaves *out NULL. */
static void test_bad_shapes(void **state)
{
    (void)state;
    const float data[4] = {0};
    int64_t zero[2] = {3, 0}, neg[2] = {-4, 2}, big[4] = {INT64_MAX, 2, 1, 1};
    int64_t overflow[4] = {1LL << 31, 1LL << 31, 1LL << 31, 4};
    int64_t ok[2] = {2, 2};
    cnnl_tensor *t = (cnnl_tensor *)0x1;
    typedef cnnl_status (*ctor)(cnnl_tensor **, int, const int64_t *);
    ctor ctors[2] = {cnnl_tensor_create, cnnl_tensor_zeros};
    const char *names[2] = {"cnnl_tensor_create", "cnnl_tensor_zeros"};
    for (int i = 0; i < 2; i++) {
        assert_status_msg(ctors[i](NULL, 2, ok), CNNL_EINVAL, "out is NULL");
        assert_status_msg(ctors[i](&t, 2, NULL), CNNL_EINVAL, "shape is NULL");
        assert_null(t);
        assert_status_msg(ctors[i](&t, 2, zero), CNNL_EINVAL, "dimension 1 is 0");
        assert_status_msg(ctors[i](&t, 2, neg), CNNL_EINVAL, "dimension 0 is -4");
        assert_status_msg(ctors[i](&t, 4, big), CNNL_EINVAL, "overflows");
        assert_status_msg(ctors[i](&t, 4, overflow), CNNL_EINVAL, "overflows");
        assert_status_msg(ctors[i](&t, 0, ok), CNNL_EINVAL, "0 dimensions");
        assert_status_msg(ctors[i](&t, -1, ok), CNNL_EINVAL, "-1 dimensions");
        assert_status_msg(ctors[i](&t, 5, big), CNNL_EINVAL, "5 dimensions");
        assert_true(strstr(cnnl_last_error(), names[i]) != NULL); /* message names the function */
        assert_null(t);
    }
    assert_status_msg(cnnl_tensor_from_data(&t, 2, ok, NULL), CNNL_EINVAL, "data is NULL");
    assert_status_msg(cnnl_tensor_from_data(&t, 2, zero, data), CNNL_EINVAL, "dimension 1 is 0");
    assert_status_msg(cnnl_tensor_from_data(&t, 2, neg, data), CNNL_EINVAL, "dimension 0 is -4");
    assert_status_msg(cnnl_tensor_from_data(&t, 4, overflow, data), CNNL_EINVAL, "overflows");
    assert_status_msg(cnnl_tensor_from_data(NULL, 2, ok, data), CNNL_EINVAL, "out is NULL");
    assert_null(t);
}

/* 2^46 floats = 256 TiB: valid arithmetic, impossible to allocate. */
static void test_allocation_too_large(void **state)
{
    (void)state;
    int64_t huge[3] = {1LL << 20, 1LL << 20, 1LL << 6};
    const float data[1] = {0};
    cnnl_tensor *t = (cnnl_tensor *)0x1;
    assert_status_msg(cnnl_tensor_create(&t, 3, huge), CNNL_ENOMEM, "cannot allocate");
    assert_null(t);
    assert_status_msg(cnnl_tensor_zeros(&t, 3, huge), CNNL_ENOMEM, "cannot allocate");
    assert_status_msg(cnnl_tensor_from_data(&t, 3, huge, data), CNNL_ENOMEM, "cannot allocate");
    assert_null(t);
    cnnl_tensor *small = NULL;
    int64_t s[1] = {4};
    assert_ok(cnnl_tensor_zeros(&small, 1, s));
    assert_status_msg(cnnl__tensor_ensure(&small, 3, huge), CNNL_ENOMEM, "cannot allocate");
    assert_int_equal(cnnl_tensor_numel(small), 4); /* unchanged after the failure */
    cnnl_tensor_free(small);
}

static void test_null_handles(void **state)
{
    (void)state;
    int64_t ok[2] = {2, 2};
    cnnl_tensor *t = NULL, *out = (cnnl_tensor *)0x1;
    assert_ok(cnnl_tensor_zeros(&t, 2, ok));
    cnnl_tensor_free(NULL);

    cnnl_clear_error();
    assert_int_equal(cnnl_tensor_ndim(NULL), 0);
    assert_non_null(strstr(cnnl_last_error(), "cnnl_tensor_ndim: tensor is NULL"));
    cnnl_clear_error();
    assert_int_equal(cnnl_tensor_numel(NULL), 0);
    assert_non_null(strstr(cnnl_last_error(), "cnnl_tensor_numel: tensor is NULL"));
    cnnl_clear_error();
    assert_int_equal(cnnl_tensor_dim(NULL, 0), 0);
    assert_non_null(strstr(cnnl_last_error(), "cnnl_tensor_dim: tensor is NULL"));
    cnnl_clear_error();
    assert_int_equal(cnnl_tensor_dim(t, 2), 0);
    assert_non_null(strstr(cnnl_last_error(), "dimension 2 out of range"));
    cnnl_clear_error();
    assert_int_equal(cnnl_tensor_dim(t, -3), 0);
    assert_non_null(strstr(cnnl_last_error(), "dimension -3 out of range"));
    cnnl_clear_error();
    assert_null(cnnl_tensor_data(NULL));
    assert_non_null(strstr(cnnl_last_error(), "cnnl_tensor_data: tensor is NULL"));
    cnnl_clear_error();
    assert_null(cnnl_tensor_data_const(NULL));
    assert_non_null(strstr(cnnl_last_error(), "cnnl_tensor_data_const: tensor is NULL"));

    assert_status_msg(cnnl_tensor_shape(NULL, NULL, NULL), CNNL_EINVAL, "cnnl_tensor_shape: tensor is NULL");
    assert_status_msg(cnnl_tensor_fill(NULL, 1.0f), CNNL_EINVAL, "cnnl_tensor_fill: tensor is NULL");
    assert_status_msg(cnnl_tensor_copy(&out, NULL), CNNL_EINVAL, "source tensor is NULL");
    assert_null(out);
    assert_status_msg(cnnl_tensor_copy(NULL, t), CNNL_EINVAL, "out is NULL");
    assert_status_msg(cnnl_tensor_copy_into(NULL, t), CNNL_EINVAL, "destination tensor is NULL");
    assert_status_msg(cnnl_tensor_copy_into(t, NULL), CNNL_EINVAL, "source tensor is NULL");
    assert_status_msg(cnnl_tensor_matmul(NULL, t, false, t, false), CNNL_EINVAL, "out is NULL");
    assert_status_msg(cnnl_tensor_matmul(&out, NULL, false, t, false), CNNL_EINVAL, "a tensor is NULL");
    assert_status_msg(cnnl_tensor_matmul(&out, t, false, NULL, false), CNNL_EINVAL, "b tensor is NULL");

    int64_t s3[3] = {2, 2, 1}, s5[1] = {5};
    cnnl_tensor *t3 = NULL, *t5 = NULL;
    assert_ok(cnnl_tensor_zeros(&t3, 3, s3));
    assert_ok(cnnl_tensor_zeros(&t5, 1, s5));
    assert_status_msg(cnnl_tensor_matmul(&out, t3, false, t, false), CNNL_EINVAL, "needs 2-D tensors, got 3-D");
    assert_status_msg(cnnl_tensor_copy_into(t, t5), CNNL_ESHAPE, "destination has 4 elements, source 5");
    cnnl_tensor_free(t3);
    cnnl_tensor_free(t5);
    cnnl_tensor_free(t);
}

static void test_ensure_reuses_storage(void **state)
{
    (void)state;
    cnnl_tensor *w = NULL;
    assert_ok(cnnl__tensor_ensure4(&w, 4, 3, 8, 8));
    float *first = cnnl_tensor_data(w);
    assert_ok(cnnl__tensor_ensure4(&w, 2, 3, 8, 8)); /* smaller: same storage */
    assert_ptr_equal(cnnl_tensor_data(w), first);
    assert_int_equal(cnnl_tensor_numel(w), 2 * 3 * 8 * 8);
    assert_ok(cnnl__tensor_ensure4(&w, 8, 3, 8, 8)); /* larger: reallocated */
    assert_int_equal(cnnl_tensor_numel(w), 8 * 3 * 8 * 8);
    cnnl_tensor_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_query),
        cmocka_unit_test(test_from_data_copy_fill),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_matmul_large_is_threaded_and_right),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_allocation_too_large),
        cmocka_unit_test(test_null_handles),
        cmocka_unit_test(test_ensure_reuses_storage),
    };
    return cmocka_run_group_tests_name("core/tensor", tests, NULL, NULL);
}
