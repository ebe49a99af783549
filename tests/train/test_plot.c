/* SVG pictures: axis ticks, coordinates of plotted points, labels, errors. */
#include "test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include "train/plot_internal.h"

static int count_str(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_nice_axis(void **state)
{
    (void)state;
    cnnl__axis a;
    cnnl__nice_axis(0, 1.37, 6, &a);
    assert_float_equal(a.step, 0.25, 1e-12);
    assert_float_equal(a.lo, 0, 1e-12);
    assert_float_equal(a.hi, 1.5, 1e-12);
    cnnl__nice_axis(45.57, 100, 6, &a);
    assert_float_equal(a.step, 10, 1e-12);
    assert_float_equal(a.lo, 40, 1e-12);
    assert_float_equal(a.hi, 100, 1e-12);
    cnnl__nice_axis(3, 3, 5, &a); /* degenerate: padded */
    assert_float_equal(a.step, 0.1, 1e-12);
    assert_float_equal(a.lo, 2.8, 1e-9);
    assert_float_equal(a.hi, 3.2, 1e-9);
    cnnl__nice_axis(1, 15, 8, &a);
    assert_float_equal(a.step, 2, 1e-12);
    assert_float_equal(a.hi, 16, 1e-12);
}

static cnnl_history *history3(double shift)
{
    cnnl_history *h = NULL;
    assert_ok(cnnl_history_create(&h));
    const double test_acc[3] = {68.7, 74.1, 72.0};
    for (int i = 0; i < 3; i++) {
        cnnl_epoch_stats e = {0};
        e.epoch = i + 1;
        e.train_batches = 33;
        e.train_loss = 39.6 / (i + 1);
        e.train_loss_mean = e.train_loss / 33;
        e.train_accuracy = 45.57 + 10 * i;
        e.test_images = 262;
        e.test_loss = 0.84 - 0.1 * i;
        e.test_accuracy = test_acc[i] + shift;
        assert_ok(cnnl_history_append(h, &e));
    }
    return h;
}

static void test_history_plot(void **state)
{
    (void)state;
    char path[] = "/tmp/cnnl_plot_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    cnnl_history *h = history3(0);
    assert_ok(cnnl_plot_history(h, path, "run <1> & more"));
    const char *s = tu_read_text(path);
    assert_int_equal(strncmp(s, "<?xml", 5), 0);
    assert_non_null(strstr(s, "</svg>\n"));
    assert_int_equal(count_str(s, "<polyline"), 4);
    assert_non_null(strstr(s, "run &lt;1&gt; &amp; more"));
    assert_non_null(strstr(s, "best 74.10% (epoch 2)"));
    /* test accuracy 74.1 at epoch 2: x axis 1..3 over 400 px from 560; y axis 40..100 over
     * 300 px from 60 (top): x = 760, y = 360 - 34.1 / 60 * 300 = 189.5 */
    assert_non_null(strstr(s, "760.0,189.5"));
    /* train loss panel: 1.2 at epoch 1 is the top of a 0..1.2 axis (step 0.2) */
    assert_non_null(strstr(s, "70.0,60.0"));
    assert_non_null(strstr(s, ">1.2<"));
    cnnl_history_free(h);

    cnnl_history *empty = NULL;
    assert_ok(cnnl_history_create(&empty));
    assert_status_msg(cnnl_plot_history(empty, path, NULL), CNNL_EINVAL, "empty");
    cnnl_history_free(empty);
    unlink(path);
}

static void test_confusion_plot(void **state)
{
    (void)state;
    char path[] = "/tmp/cnnl_plot_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cnnl_confusion *cm = NULL;
    assert_ok(cnnl_confusion_create(&cm, 3));
    const int32_t t[8] = {0, 0, 0, 0, 0, 0, 0, 1}, p[8] = {0, 0, 0, 0, 0, 1, 1, 1};
    assert_ok(cnnl_confusion_add(cm, t, p, 8));
    const char *names[3] = {"glioma", "meningioma", "notumor"};
    assert_ok(cnnl_plot_confusion(cm, names, path, "Confusion"));
    const char *s = tu_read_text(path);
    assert_int_equal(count_str(s, ">meningioma<"), 2);
    assert_non_null(strstr(s, ">71.4%<"));   /* 5 of 7 */
    assert_non_null(strstr(s, ">28.6%<"));   /* 2 of 7 */
    assert_non_null(strstr(s, "fill=\"#08306b\"")); /* row 1: 100% on one cell */
    assert_int_equal(count_str(s, "<rect x="), 9);
    assert_ok(cnnl_plot_confusion(cm, NULL, path, NULL));
    assert_non_null(strstr(tu_read_text(path), ">2<"));
    assert_status_msg(cnnl_plot_confusion(cm, names, "/nonexistent-dir/x.svg", NULL), CNNL_EIO,
                      "/nonexistent-dir/x.svg");
    cnnl_confusion_free(cm);
    unlink(path);
}

static void test_compare_plot(void **state)
{
    (void)state;
    char path[] = "/tmp/cnnl_plot_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cnnl_history *runs[3] = {history3(0), history3(2), history3(-10)};
    const char *labels[3] = {"dropout", "dropout", "none"};
    assert_ok(cnnl_plot_compare((const cnnl_history *const *)runs, labels, 3, path, "cmp"));
    const char *s = tu_read_text(path);
    assert_non_null(strstr(s, ">dropout (mean of 2)<"));
    assert_non_null(strstr(s, ">none<"));
    /* 3 thin + 2 mean lines per panel */
    assert_int_equal(count_str(s, "<polyline"), 10);
    assert_int_equal(count_str(s, "stroke-opacity=\"0.35\""), 6);
    labels[1] = NULL;
    assert_status_msg(cnnl_plot_compare((const cnnl_history *const *)runs, labels, 3, path, NULL),
                      CNNL_EINVAL, "run 1");
    for (int i = 0; i < 3; i++)
        cnnl_history_free(runs[i]);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nice_axis),
        cmocka_unit_test(test_history_plot),
        cmocka_unit_test(test_confusion_plot),
        cmocka_unit_test(test_compare_plot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
