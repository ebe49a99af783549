/* Confusion matrix and metrics, checked against hand-computed matrices. */
#include "test_util.h"

#include <math.h>

static cnnl_confusion *from_rows(int k, const int64_t *rows)
{
    cnnl_confusion *cm = NULL;
    assert_ok(cnnl_confusion_create(&cm, k));
    for (int t = 0; t < k; t++)
        for (int p = 0; p < k; p++)
            assert_ok(cnnl_confusion_set(cm, t, p, rows[t * k + p]));
    return cm;
}

/* Class 2 never occurs but is predicted once; class 3 occurs once and is never predicted. */
static const int64_t zero_div_rows[16] = {
    5, 2, 0, 0,
    1, 3, 1, 0,
    0, 0, 0, 0,
    1, 0, 0, 0,
};

static void test_one_vs_rest_by_hand(void **state)
{
    (void)state;
    cnnl_confusion *cm = from_rows(4, zero_div_rows);
    cnnl_class_metrics m;
    assert_ok(cnnl_confusion_class(cm, 0, &m));
    assert_int_equal(m.tp, 5);
    assert_int_equal(m.fn, 2);
    assert_int_equal(m.fp, 2);
    assert_int_equal(m.tn, 4);
    assert_float_equal(m.accuracy, 9.0 / 13, 1e-15);
    assert_float_equal(m.precision, 5.0 / 7, 1e-15);
    assert_float_equal(m.recall, 5.0 / 7, 1e-15);
    assert_float_equal(m.f1, 5.0 / 7, 1e-15);

    assert_ok(cnnl_confusion_class(cm, 1, &m));
    assert_int_equal(m.tp, 3);
    assert_int_equal(m.fn, 2);
    assert_int_equal(m.fp, 2);
    assert_int_equal(m.tn, 6);
    assert_float_equal(m.accuracy, 9.0 / 13, 1e-15);
    assert_float_equal(m.precision, 0.6, 1e-15);
    assert_float_equal(m.recall, 0.6, 1e-15);

    /* absent class: recall 0/0 := 0, precision 0/1 = 0, F1 with P + R = 0 := 0 */
    assert_ok(cnnl_confusion_class(cm, 2, &m));
    assert_int_equal(m.tp, 0);
    assert_int_equal(m.fn, 0);
    assert_int_equal(m.fp, 1);
    assert_int_equal(m.tn, 12);
    assert_float_equal(m.accuracy, 12.0 / 13, 1e-15);
    assert_true(m.precision == 0.0 && m.recall == 0.0 && m.f1 == 0.0);

    /* never-predicted class: precision 0/0 := 0 */
    assert_ok(cnnl_confusion_class(cm, 3, &m));
    assert_int_equal(m.tp, 0);
    assert_int_equal(m.fn, 1);
    assert_int_equal(m.fp, 0);
    assert_int_equal(m.tn, 12);
    assert_true(m.precision == 0.0 && m.recall == 0.0 && m.f1 == 0.0);
    cnnl_confusion_free(cm);
}

static void test_macro_averages_by_hand(void **state)
{
    (void)state;
    cnnl_confusion *cm = from_rows(4, zero_div_rows);
    cnnl_metrics_summary s;
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_int_equal(s.total, 13);
    assert_int_equal(s.correct, 8);
    assert_float_equal(s.accuracy, 8.0 / 13, 1e-15);
    assert_float_equal(s.macro_accuracy, (9.0 + 9.0 + 12.0 + 12.0) / 13 / 4, 1e-15);
    assert_float_equal(s.macro_precision, (5.0 / 7 + 0.6) / 4, 1e-15);
    assert_float_equal(s.macro_recall, (5.0 / 7 + 0.6) / 4, 1e-15);
    assert_float_equal(s.macro_f1, (5.0 / 7 + 0.6) / 4, 1e-15);
    cnnl_confusion_free(cm);
}

/* Macro F1 is the mean of per-class F1, not the F1 of mean precision and recall. */
static void test_macro_f1_is_mean_of_f1(void **state)
{
    (void)state;
    const int64_t rows[4] = {1, 1, 0, 2};
    cnnl_confusion *cm = from_rows(2, rows);
    cnnl_metrics_summary s;
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_float_equal(s.accuracy, 0.75, 1e-15);
    assert_float_equal(s.macro_accuracy, 0.75, 1e-15);
    assert_float_equal(s.macro_precision, (1.0 + 2.0 / 3) / 2, 1e-15);
    assert_float_equal(s.macro_recall, (0.5 + 1.0) / 2, 1e-15);
    assert_float_equal(s.macro_f1, (2.0 / 3 + 0.8) / 2, 1e-15);
    double p = s.macro_precision, r = s.macro_recall;
    assert_true(fabs(s.macro_f1 - 2 * p * r / (p + r)) > 1e-3);
    cnnl_confusion_free(cm);
}

static void test_empty_matrix_is_zero(void **state)
{
    (void)state;
    cnnl_confusion *cm = NULL;
    assert_ok(cnnl_confusion_create(&cm, 3));
    cnnl_metrics_summary s;
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_int_equal(s.total, 0);
    assert_true(s.accuracy == 0.0 && s.macro_accuracy == 0.0 && s.macro_f1 == 0.0);
    cnnl_confusion_free(cm);
}

static void test_add_and_logits(void **state)
{
    (void)state;
    cnnl_confusion *cm = NULL;
    assert_ok(cnnl_confusion_create(&cm, 3));
    const int32_t t[5] = {0, 1, 2, 2, 1}, p[5] = {0, 2, 2, 2, 1};
    assert_ok(cnnl_confusion_add(cm, t, p, 5));
    assert_int_equal(cnnl_confusion_get(cm, 1, 2), 1);
    assert_int_equal(cnnl_confusion_get(cm, 2, 2), 2);
    assert_int_equal(cnnl_confusion_get(cm, 0, 1), 0);

    /* rows: clear winner 1; tie between 0 and 2 -> 0 (first); NaN never wins */
    const int64_t shape[2] = {3, 3};
    const float logits[9] = {0.1f, 3.0f, -1.0f, 2.0f, 1.0f, 2.0f, NAN, -5.0f, -4.0f};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_from_data(&x, 2, shape, logits));
    const int32_t truth[3] = {1, 2, 2};
    int32_t pred[3] = {-1, -1, -1};
    assert_ok(cnnl_confusion_add_logits(cm, x, truth, pred));
    assert_int_equal(pred[0], 1);
    assert_int_equal(pred[1], 0);
    assert_int_equal(pred[2], 2);
    assert_int_equal(cnnl_confusion_get(cm, 1, 1), 2);
    assert_int_equal(cnnl_confusion_get(cm, 2, 0), 1);
    assert_int_equal(cnnl_confusion_get(cm, 2, 2), 3);

    assert_ok(cnnl_confusion_reset(cm));
    assert_int_equal(cnnl_confusion_get(cm, 2, 2), 0);
    cnnl_tensor_free(x);
    cnnl_confusion_free(cm);
}

/* Counts near INT64_MAX: the metrics are exact and the total never overflows. */
static void test_huge_counts(void **state)
{
    (void)state;
    cnnl_confusion *cm = NULL;
    assert_ok(cnnl_confusion_create(&cm, 2));
    const int64_t big = INT64_C(4000000000000000000);
    assert_ok(cnnl_confusion_set(cm, 0, 0, big));
    assert_ok(cnnl_confusion_set(cm, 1, 1, big));
    assert_ok(cnnl_confusion_set(cm, 0, 1, big / 4));
    assert_status_msg(cnnl_confusion_set(cm, 1, 0, big), CNNL_ERANGE, "past 9223372036854775807");
    assert_int_equal(cnnl_confusion_get(cm, 1, 0), 0);
    cnnl_class_metrics m;
    assert_ok(cnnl_confusion_class(cm, 0, &m));
    assert_true(m.tp == big && m.fn == big / 4 && m.fp == 0 && m.tn == big);
    assert_true(fabs((m.accuracy) - (8.0 / 9.0)) < 1e-12);
    assert_true(fabs((m.precision) - (1.0)) < 1e-12);
    assert_true(fabs((m.recall) - (0.8)) < 1e-12);
    cnnl_metrics_summary s;
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_true(s.total == 2 * big + big / 4 && s.correct == 2 * big);
    assert_true(fabs((s.accuracy) - (8.0 / 9.0)) < 1e-12);
    /* replacing a cell counts its old value out of the total */
    assert_ok(cnnl_confusion_set(cm, 0, 1, INT64_MAX - 2 * big));
    const int32_t t[1] = {1}, p[1] = {0};
    assert_status_msg(cnnl_confusion_add(cm, t, p, 1), CNNL_ERANGE, "past");
    assert_int_equal(cnnl_confusion_get(cm, 1, 0), 0);
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_true(s.total == INT64_MAX);
    assert_ok(cnnl_confusion_reset(cm));
    assert_ok(cnnl_confusion_add(cm, t, p, 1));
    assert_ok(cnnl_confusion_summary(cm, &s));
    assert_true(s.total == 1 && s.correct == 0);
    cnnl_confusion_free(cm);
}

static void test_bad_input(void **state)
{
    (void)state;
    cnnl_confusion *cm = (cnnl_confusion *)1;
    assert_status_msg(cnnl_confusion_create(&cm, 0), CNNL_EINVAL, "classes is 0");
    assert_null(cm);
    assert_ok(cnnl_confusion_create(&cm, 2));
    const int32_t t[2] = {0, 2}, p[2] = {0, 1};
    assert_status_msg(cnnl_confusion_add(cm, t, p, 2), CNNL_ERANGE, "true class 2 at index 1");
    assert_int_equal(cnnl_confusion_get(cm, 0, 0), 0); /* nothing counted */
    assert_status_msg(cnnl_confusion_set(cm, 0, 2, 1), CNNL_ERANGE, "outside a 2x2");
    assert_status_msg(cnnl_confusion_set(cm, 0, 0, -1), CNNL_EINVAL, "count is -1");
    assert_int_equal(cnnl_confusion_get(cm, 5, 0), -1);
    cnnl_class_metrics m;
    assert_status_msg(cnnl_confusion_class(cm, 2, &m), CNNL_ERANGE, "class 2");

    const int64_t shape[2] = {1, 3};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_zeros(&x, 2, shape));
    assert_status_msg(cnnl_confusion_add_logits(cm, x, t, NULL), CNNL_ESHAPE, "must be (n, 2)");
    cnnl_tensor_free(x);
    cnnl_confusion_free(cm);
    cnnl_confusion_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_vs_rest_by_hand),
        cmocka_unit_test(test_macro_averages_by_hand),
        cmocka_unit_test(test_macro_f1_is_mean_of_f1),
        cmocka_unit_test(test_empty_matrix_is_zero),
        cmocka_unit_test(test_add_and_logits),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
