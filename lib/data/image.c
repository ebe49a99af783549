/*
 * One image file: read, check the header, decode with stb_image, resize (resize.c); and the
 * public single-image load built on it.
 * Safe to call from several threads at once: stb_image keeps its failure reason in a
 * thread-local variable when built by GCC, as Debian's libstb is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>

#include "core/internal.h"
#include "data/data_impl.h"
#include "data/norm.h"

/* stb_image reads at most INT_MAX bytes; real images are far below this. */
enum { MAX_FILE_BYTES = 1 << 30 };

const char *cnnl__data_fail_open_suffix;

static void fail(cnnl__image_result *res, cnnl_status status, const char *fmt, ...)
    CNNL_PRINTF(3, 4);

static void fail(cnnl__image_result *res, cnnl_status status, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    res->status = status;
    res->message = strdup(buf);
    free(res->pixels);
    res->pixels = NULL;
}

static bool injected_failure(const char *path)
{
    const char *suffix = cnnl__data_fail_open_suffix;
    if (!suffix)
        return false;
    size_t lp = strlen(path), ls = strlen(suffix);
    return lp >= ls && strcmp(path + lp - ls, suffix) == 0;
}

/* Read a whole regular file. Returns 0, or an errno value (EFBIG for oversize files). */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (injected_failure(path))
        return EACCES;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = EISDIR; /* reported as "not a regular file" */
        close(fd);
        return err;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        close(fd);
        return EFBIG;
    }
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return ENOMEM;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return err;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = size;
    return 0;
}

/* A JPEG whose data stops before the end-of-image marker is truncated; stb_image would decode
 * the missing part as grey, PIL refuses it. Trailing bytes after the marker are allowed. */
static bool jpeg_truncated(const uint8_t *d, size_t n)
{
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return false;
    for (size_t i = n - 1; i >= 3; i--)
        if (d[i - 1] == 0xFF && d[i] == 0xD9)
            return false;
    return true;
}

/* True when every pixel of an interleaved RGB image has R == G == B. */
static bool rgb_is_gray(const uint8_t *p, size_t pixels)
{
    for (size_t i = 0; i < pixels; i++, p += 3)
        if (p[0] != p[1] || p[0] != p[2])
            return false;
    return true;
}

static void rgb_to_single(uint8_t *p, size_t pixels)
{
    for (size_t i = 0; i < pixels; i++)
        p[i] = p[3 * i];
}

static void decode_and_resize(const uint8_t *data, size_t len, int size, int want_channels,
                              int src_channels, cnnl__image_result *res)
{
    int req = (want_channels == 1 || src_channels <= 2) ? 1 : 3;
    int w = 0, h = 0, comp = 0;
    uint8_t *img = stbi_load_from_memory(data, (int)len, &w, &h, &comp, req);
    if (!img) {
        fail(res, CNNL_EFORMAT, "corrupt or truncated image (%s)", stbi_failure_reason());
        return;
    }
    size_t npix = (size_t)w * (size_t)h;
    if (req == 3 && rgb_is_gray(img, npix)) {
        rgb_to_single(img, npix);
        req = 1;
    }
    size_t bytes = (size_t)size * (size_t)size * (size_t)req;
    res->pixels = malloc(bytes);
    if (!res->pixels) {
        stbi_image_free(img);
        fail(res, CNNL_ENOMEM, "out of memory for a %dx%d image", size, size);
        return;
    }
    if (!cnnl__image_resize(img, w, h, req, res->pixels, size, size)) {
        stbi_image_free(img);
        fail(res, CNNL_ENOMEM, "out of memory while resizing %dx%d to %dx%d", w, h, size, size);
        return;
    }
    stbi_image_free(img);
    res->channels = req;
    res->status = CNNL_OK;
}

void cnnl__image_prepare(const char *path, int size, int want_channels, int max_dim,
                         cnnl__image_result *res)
{
    memset(res, 0, sizeof *res);
    uint8_t *data = NULL;
    size_t len = 0;
    int err = read_file(path, &data, &len);
    if (err == EISDIR) {
        fail(res, CNNL_EFORMAT, "not a regular file");
        return;
    }
    if (err == ELOOP) {
        fail(res, CNNL_EIO, "cannot open: symbolic link loop");
        return;
    }
    if (err == EFBIG) {
        fail(res, CNNL_EFORMAT, "file larger than %d bytes", MAX_FILE_BYTES);
        return;
    }
    if (err) {
        fail(res, err == ENOMEM ? CNNL_ENOMEM : err == ENOENT ? CNNL_ENOTFOUND : CNNL_EIO, "cannot read: %s",
             strerror(err));
        return;
    }
    int w = 0, h = 0, comp = 0;
    if (len == 0)
        fail(res, CNNL_EFORMAT, "empty file (0 bytes)");
    else if (!stbi_info_from_memory(data, (int)len, &w, &h, &comp))
        fail(res, CNNL_EFORMAT, "not an image or unsupported format (%s)", stbi_failure_reason());
    else if (w < 1 || h < 1 || w > max_dim || h > max_dim)
        fail(res, CNNL_EFORMAT, "declares %dx%d pixels; the limit is %d per side", w, h, max_dim);
    else if (jpeg_truncated(data, len))
        fail(res, CNNL_EFORMAT, "truncated JPEG (no end-of-image marker)");
    else
        decode_and_resize(data, len, size, want_channels, comp, res);
    free(data);
}

CNNL_API cnnl_status cnnl_image_load(cnnl_tensor **out, const char *path, const cnnl_dataset_opts *opts)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return cnnl__error(CNNL_EINVAL, "cnnl_image_load: %s is NULL", out ? "path" : "out");
    cnnl_dataset_opts o;
    cnnl_status st = cnnl__data_check_opts("cnnl_image_load", opts, &o);
    if (st != CNNL_OK)
        return st;
    cnnl__image_result res;
    cnnl__image_prepare(path, o.size, o.channels, o.max_dim, &res);
    if (res.status != CNNL_OK) {
        st = cnnl__error(res.status, "%s: %s", path, res.message ? res.message : "out of memory");
        free(res.message);
        return st;
    }
    int64_t shape[4] = {1, o.channels, o.size, o.size};
    cnnl_tensor *t = NULL;
    if (cnnl_tensor_create(&t, 4, shape) != CNNL_OK) {
        free(res.pixels);
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory for a %dx%dx%d image", path, o.channels, o.size, o.size);
    }
    float lut[3][256];
    cnnl__norm_lut(&o.norm, lut);
    cnnl__pixels_convert(res.pixels, res.channels, o.channels, (size_t)o.size * (size_t)o.size,
                         (const float(*)[256])lut, cnnl_tensor_data(t));
    free(res.pixels);
    *out = t;
    return CNNL_OK;
}
