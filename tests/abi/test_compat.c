/* A program built against the 0.1.0 headers, simulated: it binds to the CNNLITE_0 versions of
 * the functions whose options struct has grown since (lib/compat/so0.c) and passes the old,
 * shorter cnnl_dataset_opts, placed at the very end of a readable page followed by an
 * inaccessible one, so that reading or writing one byte past the old struct crashes. The calls
 * must work and honour the old fields; the new fields take their defaults. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mmap flags, mkdtemp */
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cnnlite/cnnlite.h>

/* cnnl_dataset_opts as 0.1.0 declared it. */
typedef struct dataset_opts_010 {
    int size;
    int channels;
    cnnl_normalization norm;
    bool strict;
    int max_dim;
} dataset_opts_010;

dataset_opts_010 old_opts_default(void);
cnnl_status old_synthetic(cnnl_dataset **out, const cnnl_synthetic_opts *syn, const dataset_opts_010 *opts);
cnnl_status old_image_load(cnnl_tensor **out, const char *path, const dataset_opts_010 *opts);
cnnl_status old_load_folder(cnnl_dataset **out, const char *root, const dataset_opts_010 *opts);
__asm__(".symver old_opts_default, cnnl_dataset_opts_default@CNNLITE_0");
__asm__(".symver old_synthetic, cnnl_dataset_synthetic@CNNLITE_0");
__asm__(".symver old_image_load, cnnl_image_load@CNNLITE_0");
__asm__(".symver old_load_folder, cnnl_dataset_load_folder@CNNLITE_0");

static int failures;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #cond, cnnl_last_error()); \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

int main(void)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || mprotect(mem + page, (size_t)page, PROT_NONE) != 0) {
        perror("mmap");
        return 1;
    }
    /* The old struct ends exactly where the inaccessible page starts. */
    dataset_opts_010 *o = (dataset_opts_010 *)(mem + page - sizeof(dataset_opts_010));
    *o = old_opts_default();
    CHECK(o->size == 512 && o->channels == 3 && !o->strict && o->max_dim == CNNL_DATA_MAX_DIM);

    /* A synthetic dataset with the old options: 8 images of 24x24, one channel. */
    o->size = 24;
    o->channels = 1;
    o->norm.kind = CNNL_NORM_UNIT;
    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = 8;
    cnnl_dataset *ds = NULL;
    CHECK(old_synthetic(&ds, &syn, o) == CNNL_OK);
    int size = 0, channels = 0;
    CHECK(ds && cnnl_dataset_count(ds) == 8);
    CHECK(ds && cnnl_dataset_geometry(ds, &channels, &size) == CNNL_OK && size == 24 && channels == 1);

    /* Through files: write the images, read them back with the old entry points. */
    char dir[] = "/tmp/cnnl-compat-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(ds && cnnl_dataset_write_folder(ds, dir) == CNNL_OK);
    cnnl_dataset *back = NULL;
    CHECK(old_load_folder(&back, dir, o) == CNNL_OK);
    CHECK(back && cnnl_dataset_count(back) == 8 && cnnl_dataset_skipped(back) == 0);

    /* One image through cnnl_image_load@CNNLITE_0: shape (1, 1, 24, 24). */
    char file[512] = "";
    snprintf(file, sizeof file, "%s/%s", dir, back ? cnnl_dataset_name(back, 0) : "missing");
    cnnl_tensor *t = NULL;
    CHECK(old_image_load(&t, file, o) == CNNL_OK);
    CHECK(t && cnnl_tensor_numel(t) == 24 * 24);

    /* An old field is honoured: a size out of range is refused, naming it. */
    o->size = 0;
    cnnl_tensor *t2 = NULL;
    CHECK(old_image_load(&t2, file, o) == CNNL_EINVAL && strstr(cnnl_last_error(), "size") && !t2);

    cnnl_tensor_free(t);
    cnnl_dataset_free(back);
    cnnl_dataset_free(ds);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    munmap(mem, (size_t)page * 2);
    if (failures == 0)
        printf("CNNLITE_0 entry points work with the 0.1.0 layout of cnnl_dataset_opts\n");
    return failures ? 1 : 0;
}
