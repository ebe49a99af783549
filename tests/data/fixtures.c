/* Fixture helpers for the data tests (see fixtures.h). */
#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "data/data_impl.h"

char *fx_tmp;

int fx_setup(void **state)
{
    (void)state;
    fx_tmp = tu_tempdir();
    return 0;
}

int fx_teardown(void **state)
{
    (void)state;
    tu_rmtree(fx_tmp);
    free(fx_tmp);
    fx_tmp = NULL;
    tu_log_stop();
    cnnl__data_fail_open_suffix = NULL;
    return 0;
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
