/* Every writer of the library goes through the atomic writer: modes under the umask, a
 * replaced file keeps its mode, and full disks and the file size limit are errors that leave
 * neither a partial file nor a temporary one. */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "io_test_util.h"

enum { WRITERS = 7 };
static const char *const writer_names[WRITERS] = {
    "cnnl_file_write_atomic", "cnnl_model_save", "cnnl_history_save", "cnnl_plot_history",
    "cnnl_plot_confusion", "cnnl_split_save", "cnnl_dataset_write_folder",
};

/* The objects the writers need, made once. */
typedef struct objects {
    cnnl_model *model;
    cnnl_history *history;
    cnnl_confusion *cm;
    cnnl_dataset *ds;
    cnnl_split *split;
} objects;

static void make_objects(objects *o)
{
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = 32;
    assert_ok(cnnl_report_net_create(&o->model, &ro));
    assert_ok(cnnl_history_create(&o->history));
    for (int e = 1; e <= 3; e++) {
        cnnl_epoch_stats s = {0};
        s.epoch = e;
        s.train_loss = 1.0 / e;
        s.test_accuracy = 50.0 + e;
        assert_ok(cnnl_history_append(o->history, &s));
    }
    assert_ok(cnnl_confusion_create(&o->cm, 4));
    assert_ok(cnnl_confusion_set(o->cm, 1, 2, 3));
    cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
    so.count = 8;
    cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
    dopt.size = 16;
    assert_ok(cnnl_dataset_synthetic(&o->ds, &so, &dopt));
    assert_ok(cnnl_split_create(&o->split, o->ds, NULL));
}

static void free_objects(objects *o)
{
    cnnl_split_free(o->split);
    cnnl_dataset_free(o->ds);
    cnnl_confusion_free(o->cm);
    cnnl_history_free(o->history);
    cnnl_model_free(o->model);
}

/* Run writer @p w on @p path (a folder for cnnl_dataset_write_folder). */
static cnnl_status run_writer(int w, const objects *o, const char *path)
{
    static const char *const names[4] = {"glioma", "meningioma", "notumor", "pituitary"};
    static char text[4096];
    memset(text, 'x', sizeof text);
    switch (w) {
    case 0: return cnnl_file_write_atomic(path, text, sizeof text);
    case 1: return cnnl_model_save(o->model, path, NULL);
    case 2: return cnnl_history_save(o->history, path, CNNL_HISTORY_CSV);
    case 3: return cnnl_plot_history(o->history, path, "title");
    case 4: return cnnl_plot_confusion(o->cm, names, path, "title");
    case 5: return cnnl_split_save(o->split, o->ds, path);
    default: return cnnl_dataset_write_folder(o->ds, path);
    }
}

/* The mode of @p path, or of the first image under it for a folder. */
static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (!S_ISDIR(st.st_mode))
        return st.st_mode & 07777;
    char *sub = path_in(path, "glioma");
    DIR *d = opendir(sub);
    assert_non_null(d);
    struct dirent *e;
    mode_t mode = 0;
    while ((e = readdir(d)) != NULL && mode == 0)
        if (e->d_name[0] != '.') {
            char *f = path_in(sub, e->d_name);
            assert_int_equal(stat(f, &st), 0);
            mode = st.st_mode & 07777;
            free(f);
        }
    closedir(d);
    free(sub);
    return mode;
}

static void test_modes_follow_the_umask(void **state)
{
    io_fixture *fx = *state;
    objects o = {0};
    make_objects(&o);
    const mode_t masks[2] = {022, 077}, want[2] = {0644, 0600};
    for (int m = 0; m < 2; m++)
        for (int w = 0; w < WRITERS; w++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%o", writer_names[w], (unsigned)masks[m]);
            char *path = path_in(fx->dir, name);
            mode_t old = umask(masks[m]);
            cnnl_status st = run_writer(w, &o, path);
            umask(old);
            assert_ok(st);
            if (file_mode(path) != want[m])
                fail_msg("%s under umask %03o: mode %04o, want %04o", writer_names[w], (unsigned)masks[m],
                         (unsigned)file_mode(path), (unsigned)want[m]);
            free(path);
        }
    /* a replaced file keeps its mode */
    char *path = path_in(fx->dir, "kept");
    assert_ok(run_writer(2, &o, path));
    assert_int_equal(chmod(path, 0640), 0);
    assert_ok(run_writer(2, &o, path));
    assert_int_equal(file_mode(path), 0640);
    free(path);
    free_objects(&o);
}

/* An injected full disk fails every writer with a message naming the file; nothing is left. */
static void test_full_disk_fails_every_writer(void **state)
{
    io_fixture *fx = *state;
    objects o = {0};
    make_objects(&o);
    for (int w = 0; w < WRITERS; w++) {
        char *dir = path_in(fx->dir, writer_names[w]);
        assert_int_equal(mkdir(dir, 0755), 0);
        char *path = path_in(dir, w == 6 ? "images" : "out");
        cnnl__io_fail_after_bytes = 100;
        cnnl_status st = run_writer(w, &o, path);
        cnnl__io_fail_after_bytes = -1;
        if (st != CNNL_EIO)
            fail_msg("%s on a full disk: status %d (%s)", writer_names[w], (int)st, cnnl_last_error());
        assert_non_null(strstr(cnnl_last_error(), w == 6 ? "images/" : path));
        if (w == 6) {
            /* the class folders exist, no image and no temporary file in them */
            char *sub = path_in(path, "glioma");
            assert_int_equal(scratch_count(sub), 0);
            free(sub);
        } else {
            assert_int_equal(scratch_count(dir), 0);
        }
        free(path);
        free(dir);
    }
    free_objects(&o);
}

/* Past the file size limit, with SIGXFSZ ignored (as the programs do): EFBIG is an error
 * naming the file, and no temporary file is left. */
static void test_file_size_limit(void **state)
{
    io_fixture *fx = *state;
    objects o = {0};
    make_objects(&o);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct sigaction ign, prev;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGXFSZ, &ign, &prev), 0);
    struct rlimit small = old;
    small.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char *path = path_in(fx->dir, "m.safetensors");
    cnnl_status st = run_writer(1, &o, path);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cnnl_last_error());
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    sigaction(SIGXFSZ, &prev, NULL);
    assert_int_equal(st, CNNL_EIO);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, strerror(EFBIG)));
    assert_int_equal(scratch_count(fx->dir), 0);
    free(path);
    free_objects(&o);
}

static void test_bad_arguments(void **state)
{
    io_fixture *fx = *state;
    assert_status_msg(cnnl_file_write_atomic(NULL, "", 0), CNNL_EINVAL, "path is NULL");
    assert_status_msg(cnnl_file_write_atomic(fx->file, NULL, 3), CNNL_EINVAL, "data is NULL");
    char *dir_path = path_in(fx->dir, "sub/");
    assert_status_msg(cnnl_file_write_atomic(dir_path, "a", 1), CNNL_EINVAL, "names a folder");
    free(dir_path);
    char *missing = path_in(fx->dir, "no/such/file");
    assert_status_msg(cnnl_file_write_atomic(missing, "a", 1), CNNL_EIO, missing);
    free(missing);
    assert_ok(cnnl_file_write_atomic(fx->file, NULL, 0));
    size_t n = 1;
    free(tu_read_file(fx->file, &n));
    assert_int_equal(n, 0);
}

static int setup(void **state)
{
    return io_fixture_setup(state, "file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_modes_follow_the_umask, setup, io_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_fails_every_writer, setup, io_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_file_size_limit, setup, io_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, io_fixture_teardown),
    };
    return cmocka_run_group_tests_name("io/atomic_file", tests, NULL, NULL);
}
