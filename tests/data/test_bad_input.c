/*
 * Bad input for the image-folder loader: every case is skipped with exactly one warning that
 * names the file (and counted), or, with the strict option, is an error naming it; the
 * single-image load of the same file fails with the same status and a message naming it.
 */
#include "test_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_impl.h"
#include "fixtures.h"

static int setup(void **state)
{
    if (fx_setup(state) != 0)
        return -1;
    /* every case: class "a" with one good image and the bad entry, class "b" with one good image */
    fx_mkdir(fx_path(fx_tmp, "a"));
    fx_mkdir(fx_path(fx_tmp, "b"));
    fx_png_const(fx_path(fx_tmp, "a/good.png"), 8, 8, 100);
    fx_png_const(fx_path(fx_tmp, "b/good.png"), 8, 8, 200);
    return 0;
}

/* The single-image load of root/@p name: @p status, a message with the full path and @p why,
 * no tensor, no warning. */
static void expect_image_error(const char *name, const char *why, cnnl_status status)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fx_tmp, name);
    cnnl_tensor *x = (cnnl_tensor *)1;
    tu_log log;
    tu_log_start(&log);
    assert_status_msg(cnnl_image_load(&x, path, &o), status, path);
    tu_log_stop();
    assert_non_null(strstr(cnnl_last_error(), why));
    assert_null(x);
    assert_int_equal(log.warnings, 0);
}

/* Load leniently: expect the two good images, one warning naming @p name with @p why, one
 * skip. Then strictly: expect @p status with a message naming @p name and @p why. */
static void expect_skip(const char *name, const char *why, cnnl_status status)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_dataset *ds = NULL;
    tu_log log;
    tu_log_start(&log);
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    tu_log_stop();
    assert_int_equal(log.warnings, 1);
    if (!strstr(log.text, name) || !strstr(log.text, why)) {
        print_error("warning \"%s\" lacks \"%s\" or \"%s\"\n", log.text, name, why);
        fail();
    }
    assert_int_equal(cnnl_dataset_count(ds), 2);
    assert_int_equal(cnnl_dataset_skipped(ds), 1);
    assert_non_null(strstr(cnnl_dataset_summary(ds), "1 skipped"));
    assert_string_equal(cnnl_dataset_name(ds, 0), "a/good.png");
    cnnl_dataset_free(ds);
    o.strict = true;
    tu_log_start(&log);
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), status, name);
    tu_log_stop();
    assert_non_null(strstr(cnnl_last_error(), why));
    assert_null(ds);
    assert_int_equal(log.warnings, 0);
    expect_image_error(name, why, status);
}

static void test_not_an_image(void **state)
{
    (void)state;
    tu_write_file(fx_path(fx_tmp, "a/notes.txt"), "hello, not an image\n", 20);
    expect_skip("a/notes.txt", "not an image", CNNL_EFORMAT);
}

static void test_zero_bytes(void **state)
{
    (void)state;
    tu_write_file(fx_path(fx_tmp, "a/empty.jpg"), "", 0);
    expect_skip("a/empty.jpg", "empty file", CNNL_EFORMAT);
}

static void test_truncated_png(void **state)
{
    (void)state;
    uint8_t img[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        img[i] = (uint8_t)(i * 31 + i / 7);
    const char *path = fx_path(fx_tmp, "a/cut.png");
    fx_png(path, 64, 64, 1, img);
    tu_cut_file(path, 1, 2);
    expect_skip("a/cut.png", "corrupt or truncated", CNNL_EFORMAT);
}

static void test_truncated_jpeg(void **state)
{
    (void)state;
    uint8_t img[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        img[i] = (uint8_t)(i % 64 * 4);
    const char *path = fx_path(fx_tmp, "a/cut.jpg");
    fx_jpg(path, 64, 64, 1, img);
    tu_cut_file(path, 2, 3);
    expect_skip("a/cut.jpg", "truncated JPEG", CNNL_EFORMAT);
}

static void test_corrupt_png(void **state)
{
    (void)state;
    uint8_t img[32 * 32];
    for (int i = 0; i < 32 * 32; i++)
        img[i] = (uint8_t)(i * 7);
    const char *path = fx_path(fx_tmp, "a/bad.png");
    fx_png(path, 32, 32, 1, img);
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    for (size_t i = 41; i < len - 12; i++) /* scramble the compressed data after IHDR + IDAT header */
        data[i] ^= 0x5A;
    tu_write_file(path, data, len);
    free(data);
    expect_skip("a/bad.png", "corrupt", CNNL_EFORMAT);
}

static void set_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_absurd_dimensions(void **state)
{
    (void)state;
    const char *path = fx_path(fx_tmp, "a/huge.png");
    fx_png_const(path, 4, 4, 1);
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    set_be32(data + 16, 20000); /* IHDR width and height */
    set_be32(data + 20, 20000);
    tu_write_file(path, data, len);
    free(data);
    expect_skip("a/huge.png", "declares 20000x20000 pixels; the limit is 16384", CNNL_EFORMAT);
}

static void test_dimension_limit_option(void **state)
{
    (void)state;
    fx_png_const(fx_path(fx_tmp, "a/big.png"), 40, 30, 1);
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    o.max_dim = 32;
    o.strict = true;
    cnnl_dataset *ds = NULL;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EFORMAT, "a/big.png: declares 40x30 pixels; the limit is 32");
    o.max_dim = 40;
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    assert_int_equal(cnnl_dataset_count(ds), 3);
    cnnl_dataset_free(ds);
}

static void test_unreadable_file(void **state)
{
    (void)state;
    fx_png_const(fx_path(fx_tmp, "a/locked.png"), 8, 8, 3);
    /* root reads any file regardless of its mode, so the failure is injected at open() */
    cnnl__data_fail_open_suffix = "/a/locked.png";
    expect_skip("a/locked.png", "cannot read: Permission denied", CNNL_EIO);
    cnnl__data_fail_open_suffix = NULL;
    if (geteuid() != 0) {
        chmod(fx_path(fx_tmp, "a/locked.png"), 0);
        expect_skip("a/locked.png", "Permission denied", CNNL_EIO);
    }
}

static void test_directory_and_fifo(void **state)
{
    (void)state;
    fx_mkdir(fx_path(fx_tmp, "a/folder.png"));
    expect_skip("a/folder.png", "not a regular file", CNNL_EFORMAT);
    tu_rmtree(fx_path(fx_tmp, "a/folder.png"));
    assert_int_equal(mkfifo(fx_path(fx_tmp, "a/pipe.png"), 0600), 0);
    expect_skip("a/pipe.png", "not a regular file", CNNL_EFORMAT);
}

static void test_symlink_loop(void **state)
{
    (void)state;
    assert_int_equal(symlink("loop.png", fx_path(fx_tmp, "a/loop.png")), 0);
    expect_skip("a/loop.png", "symbolic link loop", CNNL_EIO);
    /* a link to its own folder is a folder, not an image, and is not followed */
    unlink(fx_path(fx_tmp, "a/loop.png"));
    assert_int_equal(symlink(".", fx_path(fx_tmp, "a/self")), 0);
    expect_skip("a/self", "not a regular file", CNNL_EFORMAT);
}

static void test_empty_class(void **state)
{
    (void)state;
    fx_mkdir(fx_path(fx_tmp, "c-empty"));
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_dataset *ds = NULL;
    tu_log log;
    tu_log_start(&log);
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    tu_log_stop();
    assert_int_equal(log.warnings, 1);
    assert_non_null(strstr(log.text, "c-empty: class folder has no usable images"));
    assert_int_equal(cnnl_dataset_num_classes(ds), 3); /* the label is kept */
    assert_int_equal(cnnl_dataset_class_count(ds, 2), 0);
    assert_int_equal(cnnl_dataset_skipped(ds), 1);
    cnnl_dataset_free(ds);
    o.strict = true;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EFORMAT, "c-empty: class folder has no usable images");
}

static void test_root_problems(void **state)
{
    (void)state;
    cnnl_dataset *ds = NULL;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_path(fx_tmp, "missing"), NULL), CNNL_ENOTFOUND, "missing");
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_path(fx_tmp, "a/good.png"), NULL), CNNL_ENOTFOUND,
                      "good.png: not a folder");
    char *empty = tu_tempdir();
    assert_status_msg(cnnl_dataset_load_folder(&ds, empty, NULL), CNNL_EFORMAT, "no class folders");
    /* class folders, but no usable image at all */
    fx_mkdir(fx_path(empty, "x"));
    tu_write_file(fx_path(empty, "x/junk.bin"), "junk", 4);
    tu_log log;
    tu_log_start(&log);
    assert_status_msg(cnnl_dataset_load_folder(&ds, empty, NULL), CNNL_EFORMAT, "no usable images");
    tu_log_stop();
    assert_int_equal(log.warnings, 2); /* the file and its class */
    assert_null(ds);
    tu_rmtree(empty);
    free(empty);
}

static void test_many_problems_counted(void **state)
{
    (void)state;
    tu_write_file(fx_path(fx_tmp, "a/1.txt"), "x", 1);
    tu_write_file(fx_path(fx_tmp, "b/2.jpg"), "", 0);
    fx_mkdir(fx_path(fx_tmp, "b/3.png"));
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 8;
    cnnl_dataset *ds = NULL;
    tu_log log;
    tu_log_start(&log);
    assert_ok(cnnl_dataset_load_folder(&ds, fx_tmp, &o));
    tu_log_stop();
    assert_int_equal(log.warnings, 3);
    assert_int_equal(cnnl_dataset_skipped(ds), 3);
    /* warnings come in file order, whatever the thread that met the file */
    const char *p1 = strstr(log.text, "a/1.txt"), *p2 = strstr(log.text, "b/2.jpg"), *p3 = strstr(log.text, "b/3.png");
    assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    cnnl_dataset_free(ds);
    /* strict: the first problem in file order is the error */
    o.strict = true;
    assert_status_msg(cnnl_dataset_load_folder(&ds, fx_tmp, &o), CNNL_EFORMAT, "a/1.txt");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_an_image, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_zero_bytes, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_png, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_jpeg, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_png, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_absurd_dimensions, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_dimension_limit_option, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_directory_and_fifo, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_symlink_loop, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_class, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_root_problems, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_many_problems_counted, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
