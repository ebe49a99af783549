/*
 * Single-image load: the values equal the dataset's for the same file under every option
 * combination, the tensor has shape (1, C, H, W), and arguments and files are checked.
 * (Each bad file of the folder loader's cases is also loaded alone in test_bad_input.c.)
 */
#include "test_util.h"

#include <stdlib.h>

#include "data/data_impl.h"
#include "fixtures.h"

/* A gray PNG, a colour PNG, a colour PNG whose channels are equal and a colour JPEG, of odd
 * sizes so that both shrinking and enlarging are exercised. */
static void write_images(void)
{
    enum { W = 37, H = 23 };
    uint8_t gray[W * H], rgb[W * H * 3], rgb_gray[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        gray[i] = (uint8_t)(i * 13 + i / W * 7);
        for (int c = 0; c < 3; c++) {
            rgb[3 * i + c] = (uint8_t)(i * (5 + 3 * c) + c * 40);
            rgb_gray[3 * i + c] = gray[i];
        }
    }
    fx_mkdir(fx_path(fx_tmp, "a"));
    fx_png(fx_path(fx_tmp, "a/gray.png"), W, H, 1, gray);
    fx_png(fx_path(fx_tmp, "a/rgb.png"), W, H, 3, rgb);
    fx_png(fx_path(fx_tmp, "a/rgb_gray.png"), W, H, 3, rgb_gray);
    fx_jpg(fx_path(fx_tmp, "a/photo.jpg"), W, H, 3, rgb);
    fx_png(fx_path(fx_tmp, "a/small.png"), 5, 3, 1, gray);
}

/* Every image of the folder loaded alone equals the dataset's image, bit for bit. */
static void compare_with_dataset(const cnnl_dataset_opts *o)
{
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, o));
    assert_int_equal(cnnl_dataset_count(ds), 5);
    size_t n = (size_t)o->channels * (size_t)o->size * (size_t)o->size;
    float *want = malloc(n * sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < cnnl_dataset_count(ds); i++) {
        assert_ok(cnnl_dataset_get(ds, i, want));
        cnnl_tensor *x = NULL;
        assert_ok(cnnl_image_load(&x, fx_path(fx_tmp, cnnl_dataset_name(ds, i)), o));
        assert_int_equal(cnnl_tensor_ndim(x), 4);
        assert_int_equal(cnnl_tensor_dim(x, 0), 1);
        assert_int_equal(cnnl_tensor_dim(x, 1), o->channels);
        assert_int_equal(cnnl_tensor_dim(x, 2), o->size);
        assert_int_equal(cnnl_tensor_dim(x, 3), o->size);
        if (memcmp(cnnl_tensor_data_const(x), want, n * sizeof *want) != 0) {
            print_error("%s differs from the dataset's (channels %d, size %d, norm %d)\n",
                        cnnl_dataset_name(ds, i), o->channels, o->size, (int)o->norm.kind);
            fail();
        }
        cnnl_tensor_free(x);
    }
    free(want);
    cnnl_dataset_free(ds);
}

static void test_equals_dataset(void **state)
{
    (void)state;
    write_images();
    const int sizes[2] = {16, 48};
    for (int channels = 1; channels <= 3; channels += 2)
        for (int kind = CNNL_NORM_UNIT; kind <= CNNL_NORM_MEAN_STD; kind++)
            for (int s = 0; s < 2; s++) {
                cnnl_dataset_opts o = cnnl_dataset_opts_default();
                o.size = sizes[s];
                o.channels = channels;
                o.norm.kind = (cnnl_norm_kind)kind;
                if (kind == CNNL_NORM_MEAN_STD)
                    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, channels, {0.485f, 0.456f, 0.406f},
                                                  {0.229f, 0.224f, 0.225f}};
                compare_with_dataset(&o);
            }
}

/* Values checked directly: a constant gray image under each normalization. */
static void test_values(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "flat.png");
    fx_png_const(path, 9, 7, 51);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 4;
    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, 3, {0.1f, 0.2f, 0.3f}, {0.5f, 0.25f, 2.0f}};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_image_load(&x, path, &o));
    const float *v = cnnl_tensor_data_const(x);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 16; p++)
            assert_float_equal(v[c * 16 + p], (0.2 - o.norm.mean[c]) / o.norm.std[c], 1e-6);
    cnnl_tensor_free(x);
    o.norm.kind = CNNL_NORM_SYMMETRIC;
    o.channels = 1;
    assert_ok(cnnl_image_load(&x, path, &o));
    assert_int_equal(cnnl_tensor_numel(x), 16);
    for (int p = 0; p < 16; p++)
        assert_float_equal(cnnl_tensor_data_const(x)[p], 51 / 127.5 - 1.0, 1e-6);
    cnnl_tensor_free(x);
    assert_ok(cnnl_image_load(&x, path, NULL)); /* defaults: 3 x 512 x 512 in [0, 1] */
    assert_int_equal(cnnl_tensor_dim(x, 1), 3);
    assert_int_equal(cnnl_tensor_dim(x, 3), 512);
    assert_float_equal(cnnl_tensor_data_const(x)[3 * 512 * 512 - 1], 0.2, 1e-6);
    cnnl_tensor_free(x);
}

/* Encoded bytes in memory give exactly what the file gives; broken bytes name the buffer. */
static void test_memory(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "mem.png");
    fx_png_const(path, 9, 7, 51);
    size_t n = 0;
    unsigned char *bytes = tu_read_file(path, &n);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_tensor *a = NULL, *b = NULL;
    assert_ok(cnnl_image_load(&a, path, &o));
    assert_ok(cnnl_image_load_memory(&b, bytes, n, "scan-in-memory", &o));
    assert_int_equal(cnnl_tensor_numel(a), cnnl_tensor_numel(b));
    assert_memory_equal(cnnl_tensor_data_const(a), cnnl_tensor_data_const(b), cnnl_tensor_numel(a) * sizeof(float));
    cnnl_tensor_free(b);
    b = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load_memory(&b, bytes, 20, "scan-in-memory", &o), CNNL_EFORMAT, "scan-in-memory");
    assert_null(b);
    cnnl_tensor_free(a);
    free(bytes);
}

static void test_arguments_and_files(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "big.png");
    fx_png_const(path, 40, 30, 1);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_tensor *x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(NULL, path, &o), CNNL_EINVAL, "cnnl_image_load: out is NULL");
    assert_status_msg(cnnl_image_load(&x, NULL, &o), CNNL_EINVAL, "cnnl_image_load: path is NULL");
    assert_null(x);
    o.channels = 2;
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EINVAL, "cnnl_image_load: channels is 2");
    o.channels = 1;
    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, 3, {0}, {1, 1, 1}};
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EINVAL, "normalization has 3 channels; the images have 1");
    o.norm = cnnl_dataset_opts_default().norm;
    o.max_dim = 32;
    x = (cnnl_tensor *)1;
    assert_status_msg(cnnl_image_load(&x, path, &o), CNNL_EFORMAT, "big.png: declares 40x30 pixels; the limit is 32");
    assert_null(x);
    o.max_dim = 40;
    assert_ok(cnnl_image_load(&x, path, &o));
    cnnl_tensor_free(x);
    const char *missing = fx_path(fx_tmp, "missing.png");
    assert_status_msg(cnnl_image_load(&x, missing, &o), CNNL_ENOTFOUND, missing);
    assert_non_null(strstr(cnnl_last_error(), "No such file"));
    assert_null(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_equals_dataset, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_values, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_arguments_and_files, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_memory, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
