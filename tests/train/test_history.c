/* Progress line format, history bookkeeping, CSV/JSON writers, atomic replacement. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_progress_format(void **state)
{
    (void)state;
    char line[128];
    assert_ok(cnnl_progress_format(line, sizeof line, 33, 33, 10.58));
    assert_string_equal(line, "100%|\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588| "
                              "33/33 [00:11<00:00, 3.12it/s]");
    /* 5/8 of the bar: 5 full blocks, then none; 45/100: 4 full + half block */
    assert_ok(cnnl_progress_format(line, sizeof line, 45, 100, 9.0));
    assert_string_equal(line, " 45%|\u2588\u2588\u2588\u2588\u258c     | 45/100 [00:09<00:11, 5.00it/s]");
    /* slow: seconds per iteration; hours in the remaining time */
    assert_ok(cnnl_progress_format(line, sizeof line, 1, 3000, 4.0));
    assert_string_equal(line, "  0%|          | 1/3000 [00:04<3:19:56, 4.00s/it]");
    /* nothing done yet: unknown rate */
    assert_ok(cnnl_progress_format(line, sizeof line, 0, 10, 0.0));
    assert_string_equal(line, "  0%|          | 0/10 [00:00<?, ?it/s]");
    assert_status_msg(cnnl_progress_format(line, 10, 1, 2, 1.0), CNNL_ERANGE, "too small");
    assert_status_msg(cnnl_progress_format(line, sizeof line, -1, 2, 1.0), CNNL_EINVAL, "invalid");
}

/* The documented buffer size holds every line, whatever the counts and times. */
static void test_progress_format_bound(void **state)
{
    (void)state;
    const int64_t counts[] = {0, 1, 999, INT64_C(1000000000000), INT64_MAX - 1, INT64_MAX};
    const double times[] = {0.0, 1e-300, 1e-9, 0.5, 3599.5, 1e12, 1e300, INFINITY};
    char line[CNNL_PROGRESS_LINE_MAX];
    for (size_t t = 0; t < sizeof counts / sizeof counts[0]; t++)
        for (size_t d = 0; d <= t; d++)
            for (size_t e = 0; e < sizeof times / sizeof times[0]; e++) {
                assert_ok(cnnl_progress_format(line, sizeof line, counts[d], counts[t], times[e]));
                assert_true(strlen(line) < sizeof line);
            }
    assert_ok(cnnl_progress_format(line, sizeof line, INT64_MAX, INT64_MAX, 1e300));
    assert_non_null(strstr(line, "| 9223372036854775807/9223372036854775807 [?<00:00, "));
    assert_ok(cnnl_progress_format(line, sizeof line, 1, INT64_MAX, 1e6));
    assert_non_null(strstr(line, "[277:46:40<?, 1000000.00s/it]"));
    assert_ok(cnnl_progress_format(line, sizeof line, INT64_MAX - 1, INT64_MAX, 1e-9));
    assert_non_null(strstr(line, "9.22e+27it/s]"));
}

static void run_bar(cnnl_progress_mode mode, char *out, size_t size)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    cnnl_progress *p = NULL;
    assert_ok(cnnl_progress_create(&p, f, mode));
    assert_status_msg(cnnl_progress_update(p, 1), CNNL_ESTATE, "no bar");
    assert_ok(cnnl_progress_start(p, 3));
    for (int i = 1; i <= 3; i++)
        assert_ok(cnnl_progress_update(p, i));
    assert_status_msg(cnnl_progress_update(p, 4), CNNL_ERANGE, "0..3");
    assert_ok(cnnl_progress_finish(p));
    cnnl_progress_free(p);
    rewind(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static void test_progress_modes(void **state)
{
    (void)state;
    char out[2048];
    run_bar(CNNL_PROGRESS_LINES, out, sizeof out);
    assert_int_equal(count_char(out, '\n'), 1);
    assert_int_equal(count_char(out, '\r'), 0);
    assert_non_null(strstr(out, "100%|"));
    assert_non_null(strstr(out, "| 3/3 ["));

    run_bar(CNNL_PROGRESS_TTY, out, sizeof out);
    assert_int_equal(count_char(out, '\n'), 1);
    assert_int_equal(count_char(out, '\r'), 5); /* start, 3 updates, finish */
    assert_non_null(strstr(out, "| 0/3 ["));

    run_bar(CNNL_PROGRESS_OFF, out, sizeof out);
    assert_string_equal(out, "");

    /* AUTO on a regular file is not a terminal: plain lines */
    run_bar(CNNL_PROGRESS_AUTO, out, sizeof out);
    assert_int_equal(count_char(out, '\r'), 0);
    assert_int_equal(count_char(out, '\n'), 1);
}

static cnnl_history *sample_history(void)
{
    cnnl_history *h = NULL;
    assert_ok(cnnl_history_create(&h));
    const double acc[3] = {68.7, 74.1, 72.0};
    for (int i = 0; i < 3; i++) {
        cnnl_epoch_stats e = {0};
        e.epoch = i + 1;
        e.train_batches = 33;
        e.train_images = 1049;
        e.train_loss = 39.47 / (i + 1);
        e.train_loss_mean = e.train_loss / 33;
        e.train_accuracy = 45.57 + 10 * i;
        e.test_images = 262;
        e.test_loss = 0.84 - 0.1 * i;
        e.test_accuracy = acc[i];
        e.seconds = 10.5;
        e.images_per_second = 110.25;
        e.learning_rate = 1e-3;
        assert_ok(cnnl_history_append(h, &e));
    }
    return h;
}

static void test_history_best_and_at(void **state)
{
    (void)state;
    cnnl_history *h = sample_history();
    assert_int_equal(cnnl_history_count(h), 3);
    double best;
    int at;
    assert_ok(cnnl_history_best(h, &best, &at));
    assert_float_equal(best, 74.1, 1e-12);
    assert_int_equal(at, 2);
    cnnl_epoch_stats e;
    assert_ok(cnnl_history_at(h, 2, &e));
    assert_int_equal(e.epoch, 3);
    assert_status_msg(cnnl_history_at(h, 3, &e), CNNL_ERANGE, "has 3 epochs");
    assert_ok(cnnl_history_clear(h));
    assert_ok(cnnl_history_best(h, &best, &at));
    assert_int_equal(at, 0);
    assert_true(best == 0.0);
    cnnl_history_free(h);
    cnnl_history_free(NULL);
}

static void test_history_csv_json(void **state)
{
    (void)state;
    char dir[] = "/tmp/cnnl_hist_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    cnnl_history *h = sample_history();

    snprintf(path, sizeof path, "%s/h.csv", dir);
    assert_ok(cnnl_history_save(h, path, CNNL_HISTORY_AUTO));
    const char *s = tu_read_text(path);
    assert_non_null(s);
    assert_int_equal(strncmp(s, "epoch,train_loss,train_loss_mean,train_accuracy,test_loss,"
                                "test_accuracy,seconds,images_per_second,learning_rate,"
                                "train_batches,train_images,test_images\n", 149), 0);
    assert_non_null(strstr(s, "\n1,39.47,"));
    assert_non_null(strstr(s, ",45.57,0.84,68.7,10.5,110.25,0.001,33,1049,262\n"));
    assert_int_equal(count_char(s, '\n'), 4);
    /* round trip of a double that needs 17 digits */
    assert_non_null(strstr(s, "\n2,19.735,"));
    struct stat stt;
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0644); /* umask 022 set below main */

    snprintf(path, sizeof path, "%s/h.JSON", dir);
    assert_ok(cnnl_history_save(h, path, CNNL_HISTORY_AUTO));
    s = tu_read_text(path);
    assert_non_null(strstr(s, "\"best_test_accuracy\": 74.1,"));
    assert_non_null(strstr(s, "\"best_epoch\": 2,"));
    assert_non_null(strstr(s, "{\"epoch\": 3, \"train_loss\": 13.156666666666666"));
    assert_true(s[0] == '{' && s[strlen(s) - 2] == '}');

    /* non-finite numbers: null in JSON */
    cnnl_epoch_stats e = {0};
    e.epoch = 4;
    e.train_loss = NAN;
    assert_ok(cnnl_history_append(h, &e));
    assert_ok(cnnl_history_save(h, path, CNNL_HISTORY_JSON));
    assert_non_null(strstr(tu_read_text(path), "\"train_loss\": null"));
    cnnl_history_free(h);
    unlink(path);
    snprintf(path, sizeof path, "%s/h.csv", dir);
    unlink(path);
    rmdir(dir);
}

static void test_history_save_failure_keeps_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/cnnl_hist_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/h.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("old\n", f);
    fclose(f);
    cnnl_history *h = sample_history();
    chmod(dir, 0500);
    if (access(dir, W_OK) == 0) { /* root ignores permissions: use a missing folder instead */
        char missing[300];
        snprintf(missing, sizeof missing, "%s/no/such/h.csv", dir);
        assert_status_msg(cnnl_history_save(h, missing, CNNL_HISTORY_CSV), CNNL_EIO, "no/such/h.csv");
    } else {
        assert_status_msg(cnnl_history_save(h, path, CNNL_HISTORY_CSV), CNNL_EIO, "h.csv");
    }
    chmod(dir, 0700);
    assert_string_equal(tu_read_text(path), "old\n");
    assert_status_msg(cnnl_history_save(h, path, (cnnl_history_format)7), CNNL_EINVAL, "unknown format");
    cnnl_history_free(h);
    unlink(path);
    rmdir(dir);
}

/* The library draws no progress bar unless its caller asks. */
static void test_trainer_default_draws_nothing(void **state)
{
    (void)state;
    cnnl_train_opts o = cnnl_train_opts_default();
    assert_int_equal(o.progress, CNNL_PROGRESS_OFF);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_progress_format_bound),
        cmocka_unit_test(test_trainer_default_draws_nothing),
        cmocka_unit_test(test_progress_modes),
        cmocka_unit_test(test_history_best_and_at),
        cmocka_unit_test(test_history_csv_json),
        cmocka_unit_test(test_history_save_failure_keeps_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
