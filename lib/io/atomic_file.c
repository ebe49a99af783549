/* Atomic file replacement: a new temporary file beside the target, write, fsync, rename, fsync
 * the folder. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdint.h>

#include "core/internal.h"
#include "cnnlite/io.h"
#include "io/atomic_file.h"

long long cnnl__io_fail_after_bytes = -1;

/* Large writes go out in pieces so that an injected failure can land in the middle. */
#define WRITE_PIECE ((size_t)1 << 20)

typedef struct temp_file {
    const char *path;  /* the target */
    char *dir;         /* its folder */
    char *tmp;         /* the temporary file's path */
    int fd;
    long long written;
} temp_file;

static cnnl_status split_path(temp_file *t)
{
    const char *slash = strrchr(t->path, '/');
    const char *base = slash ? slash + 1 : t->path;
    if (*base == '\0')
        return cnnl__error(CNNL_EINVAL, "%s: the path names a folder, not a file", t->path);
    size_t dir_len = slash ? (size_t)(slash - t->path) : 1;
    const char *dir_src = slash ? t->path : ".";
    if (slash && dir_len == 0)
        dir_len = 1; /* "/name" lives in "/" */
    t->dir = malloc(dir_len + 1);
    /* "<dir>/.<base>.XXXXXX" */
    size_t tmp_len = dir_len + 2 + strlen(base) + 8;
    t->tmp = malloc(tmp_len + 1);
    if (!t->dir || !t->tmp)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", t->path);
    memcpy(t->dir, dir_src, dir_len);
    t->dir[dir_len] = '\0';
    snprintf(t->tmp, tmp_len + 1, "%s/.%s.XXXXXX", t->dir, base);
    return CNNL_OK;
}

static cnnl_status write_all(temp_file *t, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t piece = n < WRITE_PIECE ? n : WRITE_PIECE;
        int injected = 0;
        if (cnnl__io_fail_after_bytes >= 0 && t->written + (long long)piece > cnnl__io_fail_after_bytes) {
            piece = (size_t)(cnnl__io_fail_after_bytes - t->written);
            injected = 1;
        }
        ssize_t w = piece > 0 ? write(t->fd, p, piece) : 0;
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return cnnl__error(CNNL_EIO, "%s: cannot write %s: %s", t->path, t->tmp, strerror(errno));
        }
        t->written += w;
        p += w;
        n -= (size_t)w;
        if (injected && (size_t)w == piece)
            return cnnl__error(CNNL_EIO, "%s: cannot write %s: %s (injected failure)", t->path, t->tmp,
                               strerror(ENOSPC));
    }
    return CNNL_OK;
}

/* Keep the mode of a file we replace; a new file keeps the mode it was created with (0644
 * less the umask, see create_temp()). */
static void set_mode(temp_file *t)
{
    struct stat st;
    if (stat(t->path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    if (fchmod(t->fd, st.st_mode & 07777) != 0)
        cnnl__log(CNNL_LOG_WARNING, "%s: cannot set the file mode: %s", t->path, strerror(errno));
}

/* Create t->tmp ("...XXXXXX" replaced) with open(O_EXCL) and mode 0644, so that the process's
 * umask applies as to any file a program creates (mkstemp would give 0600 whatever the umask).
 * Returns the descriptor or -1 with errno set. */
static int create_temp(char *tmp)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Thread_local unsigned long long counter;
    char *x = tmp + strlen(tmp) - 6;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long v = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^
                           ((unsigned long long)getpid() << 40) ^ (unsigned long long)(uintptr_t)&counter;
    for (int attempt = 0; attempt < 1000; attempt++) {
        v = v * 6364136223846793005ULL + 1442695040888963407ULL + ++counter;
        unsigned long long r = v >> 16;
        for (int i = 0; i < 6; i++, r /= 62)
            x[i] = letters[r % 62];
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

static cnnl_status write_and_sync(temp_file *t, const cnnl__io_chunk *chunks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cnnl_status st = write_all(t, chunks[i].data, chunks[i].size);
        if (st != CNNL_OK)
            return st;
    }
    set_mode(t);
    if (fsync(t->fd) != 0)
        return cnnl__error(CNNL_EIO, "%s: cannot flush %s to disk: %s", t->path, t->tmp, strerror(errno));
    int fd = t->fd;
    t->fd = -1;
    if (close(fd) != 0)
        return cnnl__error(CNNL_EIO, "%s: cannot close %s: %s", t->path, t->tmp, strerror(errno));
    return CNNL_OK;
}

/* After the rename the new content is in place; a folder that cannot be synced only weakens
 * durability after a power loss, so it is a warning. */
static void sync_dir(const char *dir, const char *path)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP))
        cnnl__log(CNNL_LOG_WARNING, "%s: cannot sync folder %s: %s", path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
}

cnnl_status cnnl__atomic_write(const char *path, const cnnl__io_chunk *chunks, size_t n)
{
    if (!path || !*path)
        return cnnl__error(CNNL_EINVAL, "cnnl__atomic_write: empty path");
    temp_file t = {.path = path, .fd = -1};
    cnnl_status st = split_path(&t);
    if (st == CNNL_OK) {
        t.fd = create_temp(t.tmp);
        if (t.fd < 0) {
            st = cnnl__error(CNNL_EIO, "%s: cannot create a temporary file in %s: %s", path, t.dir,
                             strerror(errno));
            t.tmp[0] = '\0';
        }
    }
    if (st == CNNL_OK)
        st = write_and_sync(&t, chunks, n);
    if (st == CNNL_OK && rename(t.tmp, path) != 0)
        st = cnnl__error(CNNL_EIO, "%s: cannot rename %s to it: %s", path, t.tmp, strerror(errno));
    if (st == CNNL_OK) {
        sync_dir(t.dir, path);
    } else {
        if (t.fd >= 0)
            close(t.fd);
        if (t.tmp && t.tmp[0])
            unlink(t.tmp);
    }
    free(t.dir);
    free(t.tmp);
    return st;
}

cnnl_status cnnl__atomic_write_stream(const char *path, int (*write_fn)(FILE *f, void *ctx), void *ctx)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", path);
    int failed = write_fn(f, ctx);
    failed |= fclose(f) != 0;
    cnnl_status st;
    if (failed || buf == NULL) {
        st = cnnl__error(CNNL_ENOMEM, "%s: out of memory while formatting", path);
    } else {
        cnnl__io_chunk chunk = {buf, size};
        st = cnnl__atomic_write(path, &chunk, 1);
    }
    free(buf);
    return st;
}

CNNL_API cnnl_status cnnl_file_write_atomic(const char *path, const void *data, size_t size)
{
    if (path == NULL || (data == NULL && size > 0))
        return cnnl__error(CNNL_EINVAL, "cnnl_file_write_atomic: %s is NULL", path == NULL ? "path" : "data");
    cnnl__io_chunk chunk = {data, size};
    return cnnl__atomic_write(path, &chunk, 1);
}
