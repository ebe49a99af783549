/* Streamed datasets (a folder larger than its memory budget): the choice is reported, every
 * batch equals the cached mode's bit for bit (shuffled epochs, any batch order, shards),
 * and a file that goes bad after loading is an error naming it. */
#include "test_util.h"

#include <stdlib.h>

enum { COUNT = 45, SIZE = 32, BATCH = 7 };

typedef struct pair {
    char *dir;
    cnnl_dataset *cached, *streamed;
} pair;

static void make_pair(pair *p, int channels)
{
    memset(p, 0, sizeof *p);
    p->dir = tu_tempdir();
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = COUNT;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 48; /* written at 48x48, loaded at 32x32: decoding and resizing */
    cnnl_dataset *syn = NULL;
    assert_ok(cnnl_dataset_synthetic(&syn, &so, &o));
    assert_ok(cnnl_dataset_write_folder(syn, p->dir));
    cnnl_dataset_free(syn);
    o.size = SIZE;
    o.channels = channels;
    assert_ok(cnnl_dataset_load_folder(&p->cached, p->dir, &o));
    o.memory_budget = (size_t)COUNT * SIZE * SIZE * (size_t)channels - 1; /* one byte short */
    assert_ok(cnnl_dataset_load_folder(&p->streamed, p->dir, &o));
}

static void free_pair(pair *p)
{
    cnnl_dataset_free(p->cached);
    cnnl_dataset_free(p->streamed);
    tu_rmtree(p->dir);
    free(p->dir);
}

/* Batch b of both loaders: the same images, labels and values. */
static void same_batch(cnnl_loader *a, cnnl_loader *b, size_t i)
{
    const cnnl_tensor *xa = NULL, *xb = NULL;
    const int32_t *ya = NULL, *yb = NULL;
    assert_ok(cnnl_loader_batch(a, i, &xa, &ya));
    size_t n = cnnl_tensor_numel(xa);
    float *copy = malloc(n * sizeof *copy);
    int32_t labels[BATCH];
    memcpy(copy, cnnl_tensor_data_const(xa), n * sizeof *copy);
    memcpy(labels, ya, (size_t)cnnl_tensor_dim(xa, 0) * sizeof *ya);
    assert_ok(cnnl_loader_batch(b, i, &xb, &yb));
    assert_int_equal(cnnl_tensor_numel(xb), n);
    assert_memory_equal(cnnl_tensor_data_const(xb), copy, n * sizeof *copy);
    assert_memory_equal(yb, labels, (size_t)cnnl_tensor_dim(xb, 0) * sizeof *yb);
    free(copy);
}

static void check_equal(int channels)
{
    pair p;
    make_pair(&p, channels);
    assert_non_null(strstr(cnnl_dataset_summary(p.cached), "cached in memory"));
    assert_non_null(strstr(cnnl_dataset_summary(p.streamed), "streamed from disk"));
    assert_int_equal(cnnl_dataset_count(p.streamed), COUNT);
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    lo.shuffle = true;
    lo.seed = 11;
    cnnl_loader *a = NULL, *b = NULL;
    assert_ok(cnnl_loader_create(&a, p.cached, NULL, 0, &lo));
    assert_ok(cnnl_loader_create(&b, p.streamed, NULL, 0, &lo));
    size_t nb = cnnl_loader_num_batches(a);
    for (int epoch = 0; epoch < 2; epoch++) {
        assert_ok(cnnl_loader_start_epoch(a, epoch));
        assert_ok(cnnl_loader_start_epoch(b, epoch));
        for (size_t i = 0; i < nb; i++)
            same_batch(a, b, i);
    }
    /* Out of order: the queue starts over at the batch asked for. */
    same_batch(a, b, 4);
    same_batch(a, b, 1);
    same_batch(a, b, 2);
    same_batch(a, b, 6);
    cnnl_loader_free(a);
    cnnl_loader_free(b);

    /* Shards: each process's part, streamed, equals its cached part. */
    for (int r = 0; r < 2; r++) {
        lo.shard_count = 2;
        lo.shard_index = r;
        assert_ok(cnnl_loader_create(&a, p.cached, NULL, 0, &lo));
        assert_ok(cnnl_loader_create(&b, p.streamed, NULL, 0, &lo));
        assert_ok(cnnl_loader_start_epoch(a, 3));
        assert_ok(cnnl_loader_start_epoch(b, 3));
        for (size_t i = 0; i < nb; i++)
            same_batch(a, b, i);
        cnnl_loader_free(a);
        cnnl_loader_free(b);
    }

    /* One image at a time, and no borrowed pixels. */
    size_t per = (size_t)channels * SIZE * SIZE;
    float *x = malloc(per * sizeof *x), *y = malloc(per * sizeof *y);
    assert_ok(cnnl_dataset_get(p.cached, 17, x));
    assert_ok(cnnl_dataset_get(p.streamed, 17, y));
    assert_memory_equal(x, y, per * sizeof *x);
    free(x);
    free(y);
    const uint8_t *px = NULL;
    int ch = 0;
    assert_status_msg(cnnl_dataset_pixels(p.streamed, 0, &px, &ch), CNNL_EUNSUPPORTED, "streamed");
    free_pair(&p);
}

static void test_streamed_equals_cached_rgb(void **state)
{
    (void)state;
    check_equal(3);
}

static void test_streamed_equals_cached_gray(void **state)
{
    (void)state;
    check_equal(1);
}

static void test_file_gone_bad(void **state)
{
    (void)state;
    pair p;
    make_pair(&p, 3);
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    cnnl_loader *b = NULL;
    assert_ok(cnnl_loader_create(&b, p.streamed, NULL, 0, &lo));
    /* Image 9 (batch 1 without shuffling) is cut to half after the folder was loaded. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", p.dir, cnnl_dataset_name(p.streamed, 9));
    char *dot = strrchr(path, '.');
    assert_non_null(dot);
    tu_cut_file(path, 1, 2);
    const cnnl_tensor *x = NULL;
    const int32_t *y = NULL;
    assert_ok(cnnl_loader_batch(b, 0, &x, &y));
    assert_status_msg(cnnl_loader_batch(b, 1, &x, &y), CNNL_EFORMAT, cnnl_dataset_name(p.streamed, 9));
    assert_ok(cnnl_loader_batch(b, 2, &x, &y)); /* the others still load */
    cnnl_loader_free(b);
    free_pair(&p);
}

/* Without the check at load, every file is listed; batches still equal the cached ones, and a
 * bad file fails the batch that needs it. */
static void test_trusted(void **state)
{
    (void)state;
    pair p;
    make_pair(&p, 3);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = SIZE;
    o.memory_budget = 1;
    o.trust_files = true;
    cnnl_dataset *t = NULL;
    assert_ok(cnnl_dataset_load_folder(&t, p.dir, &o));
    assert_non_null(strstr(cnnl_dataset_summary(t), "streamed from disk"));
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = BATCH;
    lo.shuffle = true;
    cnnl_loader *a = NULL, *b = NULL;
    assert_ok(cnnl_loader_create(&a, p.cached, NULL, 0, &lo));
    assert_ok(cnnl_loader_create(&b, t, NULL, 0, &lo));
    for (size_t i = 0; i < cnnl_loader_num_batches(a); i++)
        same_batch(a, b, i);
    cnnl_loader_free(a);
    cnnl_loader_free(b);
    cnnl_dataset_free(t);
    /* A file that is not an image is listed, and fails its batch. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/zz_not_an_image.png", p.dir, cnnl_dataset_class_name(p.cached, 0));
    tu_write_file(path, "not a png", 9);
    assert_ok(cnnl_dataset_load_folder(&t, p.dir, &o));
    assert_int_equal(cnnl_dataset_count(t), COUNT + 1);
    lo.shuffle = false;
    lo.batch_size = COUNT + 1;
    assert_ok(cnnl_loader_create(&b, t, NULL, 0, &lo));
    const cnnl_tensor *x = NULL;
    const int32_t *y = NULL;
    assert_status_msg(cnnl_loader_batch(b, 0, &x, &y), CNNL_EFORMAT, "zz_not_an_image.png");
    cnnl_loader_free(b);
    cnnl_dataset_free(t);
    free_pair(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streamed_equals_cached_rgb),
        cmocka_unit_test(test_streamed_equals_cached_gray),
        cmocka_unit_test(test_file_gone_bad),
        cmocka_unit_test(test_trusted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
