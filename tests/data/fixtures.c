/* Fixture helpers for the data tests (see fixtures.h). */
#include "fixtures.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

char *fx_tempdir(void)
{
    char tmpl[] = "/tmp/cnnl-data-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

void fx_rmtree(const char *path)
{
    if (path)
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fx_path(const char *a, const char *b)
{
    static char bufs[8][1024];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, 1024, "%s/%s", a, b);
    return p;
}

void fx_mkdir(const char *path)
{
    mkdir(path, 0777);
}

void fx_png(const char *path, int w, int h, int comp, const uint8_t *pixels)
{
    stbi_write_png(path, w, h, comp, pixels, w * comp);
}

void fx_jpg(const char *path, int w, int h, int comp, const uint8_t *pixels)
{
    stbi_write_jpg(path, w, h, comp, pixels, 100);
}

void fx_png_const(const char *path, int w, int h, uint8_t value)
{
    uint8_t *p = malloc((size_t)w * (size_t)h);
    memset(p, value, (size_t)w * (size_t)h);
    fx_png(path, w, h, 1, p);
    free(p);
}

void fx_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        if (len)
            fwrite(data, 1, len, f);
        fclose(f);
    }
}

uint8_t *fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static void capture(cnnl_log_level level, const char *message, void *user)
{
    fx_log *log = user;
    if (level != CNNL_LOG_WARNING)
        return;
    log->warnings++;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof log->text - used, "%s\n", message);
}

void fx_log_start(fx_log *log)
{
    memset(log, 0, sizeof *log);
    cnnl_set_log_callback(capture, log);
}

void fx_log_stop(void)
{
    cnnl_set_log_callback(NULL, NULL);
}
