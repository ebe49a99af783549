/* safetensors reader and writer on hand-built tensor lists: round trip, every kind of
 * malformed file, and atomic replacement with injected failures. */
#include "io_test_util.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"

typedef io_fixture fixture;

static int setup(void **state)
{
    return io_fixture_setup(state, "t.safetensors");
}

static int teardown(void **state)
{
    return io_fixture_teardown(state);
}

static const float A[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
static const int64_t STEPS = -1234567890123LL;
static const float B[4] = {9, 8, 7, 6};

/* Three tensors (2x3 F32, scalar I64, 4 F32) and an empty one, with metadata. */
static void write_sample(const char *path)
{
    cnnl__st_tensor t[4] = {
        {.name = "a.weight", .dtype = CNNL_DTYPE_F32, .ndim = 2, .shape = {2, 3}, .data = A},
        {.name = "a.steps", .dtype = CNNL_DTYPE_I64, .ndim = 0, .data = &STEPS},
        {.name = "empty", .dtype = CNNL_DTYPE_F32, .ndim = 2, .shape = {0, 5}, .data = NULL},
        {.name = "b", .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {4}, .data = B},
    };
    cnnl__st_meta m[2] = {{"format", "test"}, {"names", "[\"x\\\"y\", \"\xc3\xa9t\xc3\xa9\"]"}};
    assert_ok(cnnl__st_write(path, t, 4, m, 2));
}

static void test_round_trip(void **state)
{
    fixture *fx = *state;
    write_sample(fx->file);
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_int_equal(f->count, 4);
    const cnnl__st_tensor *a = cnnl__st_find(f, "a.weight");
    assert_non_null(a);
    assert_int_equal(a->dtype, CNNL_DTYPE_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->nbytes, 24);
    assert_memory_equal(a->data, A, sizeof A); /* bit-exact, including -0 and denormal-range values */
    const cnnl__st_tensor *s = cnnl__st_find(f, "a.steps");
    assert_non_null(s);
    assert_int_equal(s->dtype, CNNL_DTYPE_I64);
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    int64_t steps;
    memcpy(&steps, s->data, 8);
    assert_true(steps == STEPS);
    const cnnl__st_tensor *e = cnnl__st_find(f, "empty");
    assert_non_null(e);
    assert_int_equal(e->numel, 0);
    assert_memory_equal(cnnl__st_find(f, "b")->data, B, sizeof B);
    assert_null(cnnl__st_find(f, "nope"));
    assert_string_equal(cnnl__st_meta_get(f, "format"), "test");
    assert_string_equal(cnnl__st_meta_get(f, "names"), "[\"x\\\"y\", \"\xc3\xa9t\xc3\xa9\"]");
    assert_null(cnnl__st_meta_get(f, "other"));
    /* The layout the format prescribes: header length, '{', data 8-byte aligned, tensors in order. */
    uint64_t hlen = 0;
    memcpy(&hlen, f->buf, 8);
    assert_int_equal((8 + hlen) % 8, 0);
    assert_int_equal(f->buf[8], '{');
    assert_int_equal(f->size, 8 + hlen + 24 + 8 + 0 + 16);
    assert_int_equal(a->begin, 0);
    assert_int_equal(s->begin, 24);
    assert_int_equal(cnnl__st_find(f, "b")->begin, 32);
    cnnl__st_free(f);
}

static void test_write_rejects_bad_lists(void **state)
{
    fixture *fx = *state;
    cnnl__st_tensor t[2] = {
        {.name = "x", .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {4}, .data = B},
        {.name = "x", .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {4}, .data = B},
    };
    assert_status_msg(cnnl__st_write(fx->file, t, 2, NULL, 0), CNNL_EINVAL, "\"x\" is used twice");
    t[1].name = "__metadata__";
    assert_status_msg(cnnl__st_write(fx->file, t, 2, NULL, 0), CNNL_EINVAL, "reserved name");
    t[1].name = "y";
    t[1].shape[0] = -1;
    assert_status_msg(cnnl__st_write(fx->file, t, 2, NULL, 0), CNNL_EINVAL, "bad shape");
    t[1].shape[0] = 4;
    t[1].data = NULL;
    assert_status_msg(cnnl__st_write(fx->file, t, 2, NULL, 0), CNNL_EINVAL, "has no data");
    assert_int_equal(scratch_count(fx->dir), 0); /* nothing was created */
}

/* Expect reading @p path to fail with @p status and a message holding the path and @p needle. */
static void expect_bad(const char *path, cnnl_status status, const char *needle)
{
    cnnl__st_file *f = (cnnl__st_file *)1;
    assert_status_msg(cnnl__st_read(path, &f), status, needle);
    assert_null(f);
    assert_non_null(strstr(cnnl_last_error(), path));
}

static void test_short_files(void **state)
{
    fixture *fx = *state;
    tu_write_file(fx->file, "", 0);
    expect_bad(fx->file, CNNL_EFORMAT, "has 0 bytes");
    tu_write_file(fx->file, "\x02\0\0", 3);
    expect_bad(fx->file, CNNL_EFORMAT, "8-byte header length");
    /* Header length larger than the file. */
    tu_write_file(fx->file, "\x40\0\0\0\0\0\0\0{}", 10);
    expect_bad(fx->file, CNNL_EFORMAT, "header length 64 is larger than the 2 bytes");
    /* Absurd header length (beyond the 100 MiB limit). */
    tu_write_file(fx->file, "\0\0\0\0\0\0\0\x01{}", 10);
    expect_bad(fx->file, CNNL_EFORMAT, "exceeds the limit");
    /* A valid file truncated inside its data and inside its header. */
    write_sample(fx->file);
    size_t n = 0;
    unsigned char *buf = tu_read_file(fx->file, &n);
    tu_write_file(fx->file, buf, n - 3);
    expect_bad(fx->file, CNNL_EFORMAT, "out of range");
    tu_write_file(fx->file, buf, 40);
    expect_bad(fx->file, CNNL_EFORMAT, "is larger than the 32 bytes");
    free(buf);
}

static void test_bad_json(void **state)
{
    fixture *fx = *state;
    float d[4] = {0};
    write_st_raw(fx->file, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "invalid JSON");
    write_st_raw(fx->file, "{\"a\": {\"dtype\": \"F32\" \"shape\": [4]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "invalid JSON");
    write_st_raw(fx->file, "[1, 2]", NULL, 0);
    expect_bad(fx->file, CNNL_EFORMAT, "does not start with '{'");
    write_st_raw(fx->file, "{}  x", NULL, 0);
    expect_bad(fx->file, CNNL_EFORMAT, "extra bytes");
    write_st_raw(fx->file, "{\"a\": 3}", NULL, 0);
    expect_bad(fx->file, CNNL_EFORMAT, "\"a\": its entry is not a JSON object");
    write_st_raw(fx->file, "{\"__metadata__\": {\"k\": 1}}", NULL, 0);
    expect_bad(fx->file, CNNL_EFORMAT, "metadata entry \"k\" is not a string");
    write_st_raw(fx->file, "{\"__metadata__\": [\"k\"]}", NULL, 0);
    expect_bad(fx->file, CNNL_EFORMAT, "\"__metadata__\" is not a JSON object");
    /* An empty header and trailing padding spaces are valid. */
    write_st_raw(fx->file, "{}      ", NULL, 0);
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_int_equal(f->count, 0);
    assert_int_equal(f->has_metadata, 0);
    cnnl__st_free(f);
}

static void test_bad_entries(void **state)
{
    fixture *fx = *state;
    float d[8] = {0};
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(fx->file, CNNL_EFORMAT, "tensor \"w\" has unsupported dtype \"F16\"");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"XYZ\", \"shape\": [4], \"data_offsets\": [0, 16]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "unsupported dtype \"XYZ\"");
    write_st_raw(fx->file, "{\"w\": {\"shape\": [4], \"data_offsets\": [0, 16]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "\"dtype\" is missing");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "shape entry 0 is not a non-negative integer");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 1.5], \"data_offsets\": [0, 12]}}", d, 12);
    expect_bad(fx->file, CNNL_EFORMAT, "shape entry 1 is not");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": \"4\", \"data_offsets\": [0, 16]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "\"shape\" is missing or not an array");
    write_st_raw(fx->file,
                 "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
                 "\"data_offsets\": [0, 16]}}",
                 d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "overflows");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "\"data_offsets\" is missing or not two");
    /* Wrong shape for the bytes it has. */
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 16]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "hold 16 bytes but shape [3] of F32 needs 12");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"I64\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "shape [2, 2] of I64 needs 32");
}

static void test_bad_offsets(void **state)
{
    fixture *fx = *state;
    float d[8] = {0};
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "data_offsets [16, 32] out of range of the 16-byte data section");
    write_st_raw(fx->file, "{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 0]}}", d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "out of range");
    write_st_raw(fx->file,
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                 " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}",
                 d, 24);
    expect_bad(fx->file, CNNL_EFORMAT, "the data of tensors \"a\" and \"b\" overlap");
    write_st_raw(fx->file,
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                 " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 32]}}",
                 d, 32);
    expect_bad(fx->file, CNNL_EFORMAT, "8 unused bytes before the data of tensor \"b\"");
    write_st_raw(fx->file, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", d, 12);
    expect_bad(fx->file, CNNL_EFORMAT, "4 unused bytes at the end");
    write_st_raw(fx->file,
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                 " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
                 d, 16);
    expect_bad(fx->file, CNNL_EFORMAT, "tensor \"a\" appears twice");
    /* Out-of-order offsets that still tile the section are valid. */
    write_st_raw(fx->file,
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]},"
                 " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
                 d, 24);
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_int_equal(f->count, 2);
    cnnl__st_free(f);
}

static void test_not_a_file(void **state)
{
    fixture *fx = *state;
    expect_bad(fx->file, CNNL_EIO, "cannot open: No such file or directory");
    expect_bad(fx->dir, CNNL_EIO, "is a folder");
    cnnl__st_file *f = NULL;
    assert_status_msg(cnnl__st_read("", &f), CNNL_EINVAL, "empty");
}

/* Writing must replace the file completely or not at all. */
static void test_atomic_injected_failure(void **state)
{
    fixture *fx = *state;
    write_sample(fx->file);
    size_t n0 = 0;
    unsigned char *before = tu_read_file(fx->file, &n0);
    float big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (float)i;
    cnnl__st_tensor t = {.name = "big", .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {1000}, .data = big};
    const long long limits[] = {0, 4, 8, 30, 100, 2000, 4000};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        cnnl__io_fail_after_bytes = limits[k];
        assert_status_msg(cnnl__st_write(fx->file, &t, 1, NULL, 0), CNNL_EIO, "injected");
        cnnl__io_fail_after_bytes = -1;
        assert_non_null(strstr(cnnl_last_error(), fx->file));
        size_t n1 = 0;
        unsigned char *after = tu_read_file(fx->file, &n1);
        assert_int_equal(n1, n0);
        assert_memory_equal(after, before, n0);
        free(after);
        assert_int_equal(scratch_count(fx->dir), 1); /* the temporary file is gone */
    }
    /* Without the failure the same write replaces the file. */
    assert_ok(cnnl__st_write(fx->file, &t, 1, NULL, 0));
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    assert_int_equal(f->count, 1);
    assert_memory_equal(f->tensors[0].data, big, sizeof big);
    cnnl__st_free(f);
    assert_int_equal(scratch_count(fx->dir), 1);
    free(before);
}

static void test_atomic_unwritable(void **state)
{
    fixture *fx = *state;
    /* A parent that is a regular file stops even root. */
    char *bad = path_in(fx->file, "x.safetensors");
    write_sample(fx->file);
    size_t n0 = 0;
    unsigned char *before = tu_read_file(fx->file, &n0);
    cnnl__st_tensor t = {.name = "b", .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {4}, .data = B};
    assert_status_msg(cnnl__st_write(bad, &t, 1, NULL, 0), CNNL_EIO, "cannot create a temporary file");
    assert_non_null(strstr(cnnl_last_error(), bad));
    /* A folder in the way of the target: the rename fails, nothing is left behind. */
    char *sub = path_in(fx->dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_status_msg(cnnl__st_write(sub, &t, 1, NULL, 0), CNNL_EIO, "cannot rename");
    assert_int_equal(scratch_count(fx->dir), 2);
    size_t n1 = 0;
    unsigned char *after = tu_read_file(fx->file, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    /* A path ending in '/' names a folder. */
    assert_status_msg(cnnl__st_write("somewhere/", &t, 1, NULL, 0), CNNL_EINVAL, "names a folder");
    rmdir(sub);
    free(sub);
    free(after);
    free(before);
    free(bad);
}

/* Parses a copy of @p n bytes of @p src: must succeed or fail with CNNL_EFORMAT, never crash. */
static cnnl_status parse_copy(const unsigned char *src, size_t n)
{
    unsigned char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    memcpy(buf, src, n);
    cnnl__st_file *f = NULL;
    cnnl_status st = cnnl__st_parse("mem.safetensors", buf, n, &f);
    if (st == CNNL_OK)
        cnnl__st_free(f);
    else
        assert_int_equal(st, CNNL_EFORMAT);
    return st;
}

/* Every truncation and many single-byte corruptions of a valid file are handled cleanly (the
 * sanitizer build checks the memory accesses). */
static void test_corruption_sweep(void **state)
{
    fixture *fx = *state;
    write_sample(fx->file);
    size_t n = 0;
    unsigned char *good = tu_read_file(fx->file, &n);
    for (size_t len = 0; len < n; len++)
        assert_int_equal(parse_copy(good, len), CNNL_EFORMAT);
    assert_int_equal(parse_copy(good, n), CNNL_OK);
    uint64_t hlen = 0;
    memcpy(&hlen, good, 8);
    static const unsigned char flips[] = {0x01, 0x20, 0x80, 0xff};
    size_t rejected = 0;
    for (size_t i = 0; i < 8 + hlen; i++)
        for (size_t k = 0; k < sizeof flips; k++) {
            good[i] ^= flips[k];
            rejected += parse_copy(good, n) != CNNL_OK;
            good[i] ^= flips[k];
        }
    assert_true(rejected > 8 * 4); /* every change of the length field at least */
    free(good);
}

static void test_mode_kept(void **state)
{
    fixture *fx = *state;
    write_sample(fx->file);
    struct stat st;
    assert_int_equal(stat(fx->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(chmod(fx->file, 0600), 0);
    write_sample(fx->file);
    assert_int_equal(stat(fx->file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rejects_bad_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_injected_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
