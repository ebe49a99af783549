/* Atomic file replacement: mkstemp beside the target, write, fsync, rename, fsync the folder. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
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

/* Keep the mode of a file we replace; new files get rw-r--r--. */
static void set_mode(temp_file *t)
{
    struct stat st;
    mode_t mode = 0644;
    if (stat(t->path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    if (fchmod(t->fd, mode) != 0)
        cnnl__log(CNNL_LOG_WARNING, "%s: cannot set the file mode: %s", t->path, strerror(errno));
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
        t.fd = mkostemp(t.tmp, O_CLOEXEC);
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
