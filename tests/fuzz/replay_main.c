/* Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput over every file of the given
 * directories (or single files), in name order, so every build (gcc included) checks the
 * committed corpora without libFuzzer. Exit status 0 when all inputs ran; a finding aborts
 * (and the sanitizers report it) like under libFuzzer. An empty corpus is an error. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    printf("replay %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 1;
            ran++;
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, NULL, NULL);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        qsort(names, (size_t)n, sizeof *names, by_name);
        int status = 0;
        for (int k = 0; k < n; k++) {
            char path[4096];
            if (names[k]->d_name[0] != '.' && status == 0) {
                snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
                if (run_file(path) != 0)
                    status = 1;
                else
                    ran++;
            }
            free(names[k]);
        }
        free(names);
        if (status)
            return 1;
    }
    if (ran == 0) {
        fprintf(stderr, "no inputs to replay\n");
        return 1;
    }
    printf("%zu inputs replayed\n", ran);
    return 0;
}
