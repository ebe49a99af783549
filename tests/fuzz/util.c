/* Temporary input file of the fuzz targets: created once per process in $TMPDIR (default /tmp),
 * rewritten for every input, removed at exit. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char temp_path[4096];

static void remove_temp(void)
{
    if (temp_path[0])
        unlink(temp_path);
}

const char *fuzz_write_temp(const uint8_t *data, size_t size, const char *suffix)
{
    if (!temp_path[0]) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir)
            dir = "/tmp";
        int n = snprintf(temp_path, sizeof temp_path, "%s/cnnl-fuzz-XXXXXX%s", dir, suffix);
        if (n < 0 || (size_t)n >= sizeof temp_path)
            abort();
        int fd = mkstemps(temp_path, (int)strlen(suffix));
        if (fd < 0) {
            perror("fuzz: mkstemps");
            abort();
        }
        close(fd);
        atexit(remove_temp);
    }
    FILE *f = fopen(temp_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: writing the temporary input");
        abort();
    }
    return temp_path;
}
