/* Helpers shared by the test suites that work with files (see test_util.h). */
#include "test_util.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/cnnl-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *copy = strdup(d);
    assert_non_null(copy);
    return copy;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0; /* keep going: remove as much as possible */
}

void tu_rmtree(const char *path)
{
    if (path)
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

unsigned char *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = '\0';
    if (n)
        *n = (size_t)len;
    return buf;
}

void tu_cut_file(const char *path, size_t num, size_t den)
{
    size_t n;
    unsigned char *data = tu_read_file(path, &n);
    tu_write_file(path, data, n * num / den);
    free(data);
}

const char *tu_read_text(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void capture(cnnl_log_level level, const char *message, void *user)
{
    tu_log *log = user;
    if (level != CNNL_LOG_WARNING)
        return;
    log->warnings++;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof log->text - used, "%s\n", message);
}

void tu_log_start(tu_log *log)
{
    memset(log, 0, sizeof *log);
    cnnl_set_log_callback(capture, log);
}

void tu_log_stop(void)
{
    cnnl_set_log_callback(NULL, NULL);
}
