/*
 * Acceptance on the real MRI folder: 1311 images in the four classes with 300/306/405/300
 * images, the report's 80:20 split (1049/262, PyTorch random_split rounding) and 33 training
 * batches of 32. The folder is CNNLITE_DATA, else CNNLITE_DATA_DEFAULT, else
 * <CNNLITE_SOURCE_ROOT>/../shared/data/brain-tumor-mri; the test reports a skip (exit 77) when
 * it is absent.
 */
#include "test_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static char data_dir[4096];

static bool find_data(void)
{
    const char *env = getenv("CNNLITE_DATA");
    if (!env || !*env)
        env = getenv("CNNLITE_DATA_DEFAULT");
    if (env && *env)
        snprintf(data_dir, sizeof data_dir, "%s", env);
    else
        snprintf(data_dir, sizeof data_dir, "%s/../shared/data/brain-tumor-mri",
                 getenv("CNNLITE_SOURCE_ROOT") ? getenv("CNNLITE_SOURCE_ROOT") : ".");
    struct stat st;
    return stat(data_dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_real_data(void **state)
{
    (void)state;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.strict = true; /* the real folder has no bad file */
    cnnl_dataset *ds = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_ok(cnnl_dataset_load_folder(&ds, data_dir, &o));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("%s\nloaded in %.2f s on %d threads\n", cnnl_dataset_summary(ds),
                  (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                  cnnl_get_num_threads());
    assert_int_equal(cnnl_dataset_count(ds), 1311);
    assert_int_equal(cnnl_dataset_num_classes(ds), 4);
    const char *names[4] = {"glioma", "meningioma", "notumor", "pituitary"};
    const size_t counts[4] = {300, 306, 405, 300};
    for (int c = 0; c < 4; c++) {
        assert_string_equal(cnnl_dataset_class_name(ds, c), names[c]);
        assert_int_equal(cnnl_dataset_class_count(ds, c), counts[c]);
    }
    int channels, size;
    assert_ok(cnnl_dataset_geometry(ds, &channels, &size));
    assert_int_equal(channels, 3);
    assert_int_equal(size, 512);

    cnnl_split *sp = NULL;
    assert_ok(cnnl_split_create(&sp, ds, NULL));
    assert_int_equal(cnnl_split_count(sp, CNNL_SUBSET_TRAIN), 1049);
    assert_int_equal(cnnl_split_count(sp, CNNL_SUBSET_TEST), 262);
    cnnl_loader *ld = NULL;
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.shuffle = true;
    assert_ok(cnnl_loader_create(&ld, ds, cnnl_split_indices(sp, CNNL_SUBSET_TRAIN),
                                 cnnl_split_count(sp, CNNL_SUBSET_TRAIN), &lo));
    assert_int_equal(cnnl_loader_num_batches(ld), 33);
    const cnnl_tensor *x;
    const int32_t *y;
    assert_ok(cnnl_loader_batch(ld, 32, &x, &y)); /* the last, partial batch: 1049 - 32 * 32 */
    assert_int_equal(cnnl_tensor_dim(x, 0), 25);
    const float *v = cnnl_tensor_data_const(x);
    double mean = 0;
    for (size_t i = 0; i < cnnl_tensor_numel(x); i++) {
        assert_true(v[i] >= 0.0f && v[i] <= 1.0f);
        mean += v[i];
    }
    mean /= (double)cnnl_tensor_numel(x);
    assert_true(mean > 0.05 && mean < 0.6); /* MRI slices: dark background, bright head */
    cnnl_loader_free(ld);
    cnnl_split_free(sp);

    cnnl_split_opts so = cnnl_split_opts_default();
    so.stratified = true;
    assert_ok(cnnl_split_create(&sp, ds, &so));
    /* 300: 240/60, 306: 245/61, 405: 324/81, 300: 240/60 */
    assert_int_equal(cnnl_split_count(sp, CNNL_SUBSET_TRAIN), 1049);
    assert_int_equal(cnnl_split_count(sp, CNNL_SUBSET_TEST), 262);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
}

int main(void)
{
    if (!find_data()) {
        printf("no MRI data at %s (set CNNLITE_DATA); skipped\n", data_dir);
        return 77; /* meson's exit status for a skipped test */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
