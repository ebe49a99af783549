/* Status strings, last error, logging and version. */
#include "test_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(cnnl_version_string(), CNNL_VERSION_STRING);
    assert_string_equal(CNNL_VERSION_STRING, CNNL_PROJECT_VERSION); /* headers agree with meson.build */
    assert_int_equal(cnnl_version_number(), CNNL_VERSION_NUMBER);
    assert_int_equal(CNNL_VERSION_NUMBER, CNNL_VERSION_MAJOR * 10000 + CNNL_VERSION_MINOR * 100 + CNNL_VERSION_PATCH);
}

static void test_status_values_are_stable(void **state)
{
    (void)state;
    /* These numbers are ABI: a change here breaks compiled programs. */
    assert_int_equal(CNNL_OK, 0);
    assert_int_equal(CNNL_EINVAL, -1);
    assert_int_equal(CNNL_ENOMEM, -2);
    assert_int_equal(CNNL_EIO, -3);
    assert_int_equal(CNNL_EFORMAT, -4);
    assert_int_equal(CNNL_ESHAPE, -5);
    assert_int_equal(CNNL_ERANGE, -6);
    assert_int_equal(CNNL_ENUMERIC, -7);
    assert_int_equal(CNNL_ENOTFOUND, -8);
    assert_int_equal(CNNL_ESTATE, -9);
    assert_int_equal(CNNL_EINTERRUPTED, -10);
    assert_int_equal(CNNL_EUNSUPPORTED, -11);
}

static void test_status_strings(void **state)
{
    (void)state;
    assert_string_equal(cnnl_status_string(CNNL_OK), "success");
    assert_string_equal(cnnl_status_string(CNNL_EINVAL), "invalid argument");
    assert_string_equal(cnnl_status_string(CNNL_ENOMEM), "out of memory");
    assert_string_equal(cnnl_status_string((cnnl_status)-999), "unknown status");
    for (int s = 0; s >= -11; s--)
        assert_string_not_equal(cnnl_status_string((cnnl_status)s), "unknown status");
}

static void test_last_error_is_set_and_cleared(void **state)
{
    (void)state;
    cnnl_clear_error();
    assert_string_equal(cnnl_last_error(), "");
    assert_int_equal(cnnl__error(CNNL_EIO, "data/%s: cannot open", "x.jpg"), CNNL_EIO);
    assert_string_equal(cnnl_last_error(), "data/x.jpg: cannot open");
    cnnl__error_context(CNNL_EIO, "loading %s", "model");
    assert_string_equal(cnnl_last_error(), "loading model: data/x.jpg: cannot open");
    cnnl_clear_error();
    assert_string_equal(cnnl_last_error(), "");
}

static void test_last_error_truncates_long_messages(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cnnl__error(CNNL_EINVAL, "%s", big);
    size_t len = strlen(cnnl_last_error());
    assert_true(len > 100 && len < sizeof big);
}

struct captured {
    int calls;
    cnnl_log_level level;
    char msg[256];
};

static void capture(cnnl_log_level level, const char *message, void *user)
{
    struct captured *c = user;
    c->calls++;
    c->level = level;
    snprintf(c->msg, sizeof c->msg, "%s", message);
}

static void test_log_callback_and_level(void **state)
{
    (void)state;
    struct captured c = {0};
    cnnl_set_log_callback(capture, &c);
    assert_int_equal(cnnl_get_log_level(), CNNL_LOG_WARNING);
    cnnl__log(CNNL_LOG_INFO, "hidden %d", 1);
    assert_int_equal(c.calls, 0);
    cnnl__log(CNNL_LOG_WARNING, "skipping %s", "a.png");
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.level, CNNL_LOG_WARNING);
    assert_string_equal(c.msg, "skipping a.png");
    cnnl_set_log_level(CNNL_LOG_DEBUG);
    cnnl__log(CNNL_LOG_DEBUG, "now visible");
    assert_int_equal(c.calls, 2);
    cnnl_set_log_level(CNNL_LOG_WARNING);
    cnnl_set_log_callback(NULL, NULL);
    cnnl__log(CNNL_LOG_WARNING, "to stderr");
    assert_int_equal(c.calls, 2);
}

/* A callback that calls back into the library: the level functions, a nested message, and
 * replacing itself. */
struct reentrant {
    int calls;
    cnnl_log_level seen_level;
    char nested[256];
};

static void reenter(cnnl_log_level level, const char *message, void *user)
{
    struct reentrant *r = user;
    r->calls++;
    if (r->calls == 1) {
        r->seen_level = cnnl_get_log_level();
        cnnl_set_log_level(CNNL_LOG_INFO);
        cnnl__log(CNNL_LOG_INFO, "nested after '%s'", message);
    } else if (r->calls == 2) {
        snprintf(r->nested, sizeof r->nested, "%d %s", (int)level, message);
        cnnl_set_log_callback(NULL, NULL);
    }
}

static void *log_from_thread(void *arg)
{
    cnnl__log(CNNL_LOG_WARNING, "outer");
    (void)arg;
    return NULL;
}

static void test_log_callback_may_call_the_library(void **state)
{
    (void)state;
    struct reentrant r = {0};
    cnnl_set_log_callback(reenter, &r);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, log_from_thread, NULL), 0);
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 20;
    int rc = pthread_timedjoin_np(t, NULL, &limit);
    if (rc != 0)
        fail_msg("the log callback deadlocked calling back into the library");
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.seen_level, CNNL_LOG_WARNING);
    assert_string_equal(r.nested, "1 nested after 'outer'");
    assert_int_equal(cnnl_get_log_level(), CNNL_LOG_INFO);
    /* the callback removed itself: later messages go to stderr, not to it */
    cnnl__log(CNNL_LOG_WARNING, "to stderr");
    assert_int_equal(r.calls, 2);
    cnnl_set_log_level(CNNL_LOG_WARNING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_values_are_stable),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_last_error_is_set_and_cleared),
        cmocka_unit_test(test_last_error_truncates_long_messages),
        cmocka_unit_test(test_log_callback_and_level),
        cmocka_unit_test(test_log_callback_may_call_the_library),
    };
    return cmocka_run_group_tests_name("core/status", tests, NULL, NULL);
}
