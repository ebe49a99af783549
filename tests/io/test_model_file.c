/* Model files: round trips with and without batch norm, PyTorch fixtures, strict and
 * non-strict loading, metadata, and failures that must leave files and models unchanged. */
#include "io_test_util.h"

#include <math.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"

static const char *const CLASSES[4] = {"glioma", "meningioma", "notumor", "pituitary"};

typedef io_fixture fixture;

static int setup(void **state)
{
    return io_fixture_setup(state, "model.safetensors");
}

static int teardown(void **state)
{
    return io_fixture_teardown(state);
}

static cnnl_model *report_net(int size, bool bn, int classes, uint64_t seed)
{
    cnnl_report_opts o = cnnl_report_opts_default();
    o.size = size;
    o.batchnorm = bn;
    o.classes = classes;
    o.seed = seed;
    cnnl_model *m = NULL;
    assert_ok(cnnl_report_net_create(&m, &o));
    return m;
}

static cnnl_tensor *pattern_input(int n, int size, float phase)
{
    int64_t shape[4] = {n, 3, size, size};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, shape));
    float *d = cnnl_tensor_data(x);
    for (size_t i = 0; i < cnnl_tensor_numel(x); i++)
        d[i] = 0.5f + 0.5f * sinf(0.37f * (float)i + phase);
    return x;
}

/* All state bytes of a model, concatenated (malloc'd); *n receives the size. */
static unsigned char *state_bytes(cnnl_model *m, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(m, i, &p));
        total += p.numel * (p.dtype == CNNL_DTYPE_I64 ? 8 : 4);
    }
    unsigned char *buf = malloc(total ? total : 1), *q = buf;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(m, i, &p));
        size_t b = p.numel * (p.dtype == CNNL_DTYPE_I64 ? 8 : 4);
        memcpy(q, p.dtype == CNNL_DTYPE_I64 ? (void *)p.data_i64 : (void *)p.data, b);
        q += b;
    }
    *n = total;
    return buf;
}

/* Eval-mode logits of @p m on @p x (malloc'd copy). */
static float *logits(cnnl_model *m, const cnnl_tensor *x, size_t *n)
{
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_set_training(m, false));
    assert_ok(cnnl_model_forward(m, x, &y));
    *n = cnnl_tensor_numel(y);
    float *out = malloc(*n * sizeof *out);
    memcpy(out, cnnl_tensor_data_const(y), *n * sizeof *out);
    return out;
}

/* Batch-norm running statistics move away from their defaults. */
static void train_forward(cnnl_model *m, int size)
{
    cnnl_tensor *x = pattern_input(4, size, 1.0f);
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_set_training(m, true));
    for (int i = 0; i < 2; i++)
        assert_ok(cnnl_model_forward(m, x, &y));
    cnnl_tensor_free(x);
}

static void round_trip(fixture *fx, bool bn)
{
    cnnl_model *a = report_net(32, bn, 4, 1), *b = report_net(32, bn, 4, 2);
    if (bn)
        train_forward(a, 32);
    cnnl_normalization norm = {.kind = CNNL_NORM_MEAN_STD, .channels = 3, .mean = {0.485f, 0.456f, 0.406f},
                               .std = {0.229f, 0.224f, 0.225f}};
    cnnl_save_opts so = cnnl_save_opts_default();
    so.class_names = CLASSES;
    so.num_classes = 4;
    so.norm = &norm;
    assert_ok(cnnl_model_save(a, fx->file, &so));

    size_t na = 0, nb = 0, nc = 0;
    unsigned char *sa = state_bytes(a, &na), *sb = state_bytes(b, &nb);
    assert_int_equal(na, nb);
    assert_true(memcmp(sa, sb, na) != 0); /* different seeds: different weights before loading */
    assert_ok(cnnl_model_load_weights(b, fx->file, true));
    free(sb);
    sb = state_bytes(b, &nb);
    assert_memory_equal(sa, sb, na);

    /* A model built from the file alone. */
    cnnl_model *c = NULL;
    cnnl_model_meta *meta = NULL;
    assert_ok(cnnl_model_load(&c, fx->file, NULL, &meta));
    unsigned char *sc = state_bytes(c, &nc);
    assert_int_equal(nc, na);
    assert_memory_equal(sa, sc, na);
    cnnl_report_opts ro;
    assert_ok(cnnl_model_meta_report_opts(meta, &ro));
    assert_int_equal(ro.size, 32);
    assert_int_equal(ro.classes, 4);
    assert_int_equal(ro.channels, 3);
    assert_int_equal(ro.batchnorm, bn);
    assert_true(ro.dropout == 0.2f);
    assert_int_equal(ro.seed, 1);
    assert_int_equal(cnnl_model_meta_class_count(meta), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(cnnl_model_meta_class_name(meta, i), CLASSES[i]);
    assert_null(cnnl_model_meta_class_name(meta, 4));
    cnnl_normalization back;
    assert_ok(cnnl_model_meta_normalization(meta, &back));
    assert_int_equal(back.kind, CNNL_NORM_MEAN_STD);
    assert_int_equal(back.channels, 3);
    for (int k = 0; k < 3; k++) {
        assert_true(back.mean[k] == norm.mean[k]);
        assert_true(back.std[k] == norm.std[k]);
    }
    assert_string_equal(cnnl_model_meta_get(meta, "format"), "cnnlite");
    assert_string_equal(cnnl_model_meta_get(meta, "batchnorm"), bn ? "true" : "false");

    /* Identical predictions. */
    cnnl_tensor *x = pattern_input(3, 32, 0.0f);
    size_t n1, n2, n3;
    float *y1 = logits(a, x, &n1), *y2 = logits(b, x, &n2), *y3 = logits(c, x, &n3);
    assert_int_equal(n1, 12);
    assert_memory_equal(y1, y2, n1 * sizeof *y1);
    assert_memory_equal(y1, y3, n1 * sizeof *y1);
    free(y1);
    free(y2);
    free(y3);
    cnnl_tensor_free(x);
    free(sa);
    free(sb);
    free(sc);
    cnnl_model_meta_free(meta);
    cnnl_model_free(a);
    cnnl_model_free(b);
    cnnl_model_free(c);
}

static void test_round_trip_plain(void **state)
{
    round_trip(*state, false);
}

static void test_round_trip_batchnorm(void **state)
{
    fixture *fx = *state;
    round_trip(fx, true);
    /* num_batches_tracked is stored as a scalar I64 with the count of training batches. */
    cnnl__st_file *f = NULL;
    assert_ok(cnnl__st_read(fx->file, &f));
    const cnnl__st_tensor *t = cnnl__st_find(f, "features.2.num_batches_tracked");
    assert_non_null(t);
    assert_int_equal(t->dtype, CNNL_DTYPE_I64);
    assert_int_equal(t->ndim, 0);
    int64_t v;
    memcpy(&v, t->data, 8);
    assert_int_equal(v, 2);
    assert_non_null(cnnl__st_find(f, "features.14.running_var"));
    cnnl__st_free(f);
}

static char *fixture_path(const char *name)
{
    const char *root = getenv("CNNLITE_SOURCE_ROOT");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/tests/io/fixtures/%s", root ? root : ".", name);
    return strdup(buf);
}

/* A state_dict PyTorch saved (no metadata) reproduces PyTorch's logits. */
static void torch_fixture(bool bn)
{
    char *model_path = fixture_path(bn ? "torch_report32_bn.safetensors" : "torch_report32.safetensors");
    char *io_path = fixture_path("torch_report32_io.safetensors");
    cnnl__st_file *io = NULL;
    assert_ok(cnnl__st_read(io_path, &io));
    const cnnl__st_tensor *in = cnnl__st_find(io, "input");
    const cnnl__st_tensor *want = cnnl__st_find(io, bn ? "logits_bn" : "logits");
    assert_non_null(in);
    assert_non_null(want);
    assert_int_equal(in->ndim, 4);
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, in->shape));
    memcpy(cnnl_tensor_data(x), in->data, in->nbytes);

    cnnl_model *m = NULL;
    cnnl_model_meta *meta = NULL;
    assert_status_msg(cnnl_model_load(&m, model_path, NULL, &meta), CNNL_EFORMAT, "records no network options");
    assert_null(m);
    cnnl_report_opts o = cnnl_report_opts_default();
    o.size = 32;
    o.batchnorm = bn;
    assert_ok(cnnl_model_load(&m, model_path, &o, &meta));
    assert_int_equal(cnnl_model_meta_class_count(meta), 0);
    cnnl_normalization norm;
    assert_status_msg(cnnl_model_meta_normalization(meta, &norm), CNNL_ENOTFOUND, "no normalization");
    size_t n = 0;
    float *got = logits(m, x, &n);
    assert_int_equal(n, want->numel);
    float w[64], maxw = 0.0f, maxd = 0.0f;
    memcpy(w, want->data, want->nbytes);
    for (size_t i = 0; i < n; i++) {
        maxw = fmaxf(maxw, fabsf(w[i]));
        maxd = fmaxf(maxd, fabsf(got[i] - w[i]));
    }
    assert_true(maxw > 1e-3f);
    print_message("PyTorch fixture (%s): max |logit difference| %.3g, max |logit| %.3g\n", bn ? "bn" : "plain",
                  (double)maxd, (double)maxw);
    if (maxd > 1e-4f * maxw)
        fail_msg("logits differ from PyTorch's: max abs difference %g, max |logit| %g", (double)maxd, (double)maxw);
    /* Loading the other variant's file strictly fails and names the problem. */
    cnnl_model *other = report_net(32, !bn, 4, 0);
    assert_status_msg(cnnl_model_load_weights(other, model_path, true), CNNL_EFORMAT, "missing tensors");
    cnnl_model_free(other);
    free(got);
    cnnl_model_meta_free(meta);
    cnnl_model_free(m);
    cnnl_tensor_free(x);
    cnnl__st_free(io);
    free(model_path);
    free(io_path);
}

static void test_torch_fixture_plain(void **state)
{
    (void)state;
    torch_fixture(false);
}

static void test_torch_fixture_batchnorm(void **state)
{
    (void)state;
    torch_fixture(true);
}

/* Writes the model's tensors except @p skip, plus @p extra (if not NULL), without metadata. */
static void write_variant(const char *path, cnnl_model *m, const char *skip, const char *extra,
                          cnnl_dtype force_nbt)
{
    cnnl__st_tensor t[64];
    size_t n = 0;
    static const float extra_data[3] = {1, 2, 3};
    static float nbt_f32 = 2.0f;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(m, i, &p));
        if (skip && strcmp(p.name, skip) == 0)
            continue;
        cnnl__st_tensor *e = &t[n++];
        memset(e, 0, sizeof *e);
        e->name = p.name;
        e->dtype = p.dtype;
        e->ndim = p.ndim;
        memcpy(e->shape, p.shape, sizeof p.shape);
        e->data = p.dtype == CNNL_DTYPE_I64 ? (const void *)p.data_i64 : (const void *)p.data;
        if (p.dtype == CNNL_DTYPE_I64 && force_nbt == CNNL_DTYPE_F32) {
            e->dtype = CNNL_DTYPE_F32;
            e->data = &nbt_f32;
        }
    }
    if (extra)
        t[n++] = (cnnl__st_tensor){.name = extra, .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {3}, .data = extra_data};
    assert_ok(cnnl__st_write(path, t, n, NULL, 0));
}

static const float UNRELATED_DATA[2] = {1.0f, 2.0f};
static void test_strict_and_lenient(void **state)
{
    fixture *fx = *state;
    cnnl_model *src = report_net(32, false, 4, 5), *dst = report_net(32, false, 4, 6);
    size_t n0 = 0, n1 = 0;
    tu_log log;
    unsigned char *before = state_bytes(dst, &n0);

    write_variant(fx->file, src, "classifier.4.bias", NULL, CNNL_DTYPE_I64);
    assert_status_msg(cnnl_model_load_weights(dst, fx->file, true), CNNL_EFORMAT,
                      "1 missing tensors: classifier.4.bias; 0 unexpected tensors: none");
    assert_non_null(strstr(cnnl_last_error(), fx->file));
    unsigned char *after = state_bytes(dst, &n1);
    assert_memory_equal(before, after, n0); /* unchanged */
    free(after);

    /* Non-strict: loads the rest and lists the missing tensor in a warning. */
    tu_log_start(&log);
    assert_ok(cnnl_model_load_weights(dst, fx->file, false));
    tu_log_stop();
    assert_int_equal(log.warnings, 1);
    assert_non_null(strstr(log.text, "classifier.4.bias"));
    assert_non_null(strstr(log.text, fx->file));
    cnnl_param_info ps, pd;
    assert_ok(cnnl_model_state_find(src, "classifier.4.weight", &ps));
    assert_ok(cnnl_model_state_find(dst, "classifier.4.weight", &pd));
    assert_memory_equal(ps.data, pd.data, ps.numel * sizeof(float));
    assert_ok(cnnl_model_state_find(src, "classifier.4.bias", &ps));
    assert_ok(cnnl_model_state_find(dst, "classifier.4.bias", &pd));
    assert_true(memcmp(ps.data, pd.data, ps.numel * sizeof(float)) != 0); /* kept its own */

    write_variant(fx->file, src, NULL, "extra.weight", CNNL_DTYPE_I64);
    assert_status_msg(cnnl_model_load_weights(dst, fx->file, true), CNNL_EFORMAT,
                      "0 missing tensors: none; 1 unexpected tensors: extra.weight");
    tu_log_start(&log);
    assert_ok(cnnl_model_load_weights(dst, fx->file, false));
    tu_log_stop();
    assert_int_equal(log.warnings, 1);
    assert_non_null(strstr(log.text, "extra.weight"));
    /* Nothing in common is an error even when lenient. */
    char *ckpt = path_in(fx->dir, "other.safetensors");
    cnnl__st_tensor unrelated = {.name = "x", .dtype = CNNL_DTYPE_F32, .ndim = 1, .shape = {2}, .data = UNRELATED_DATA};
    assert_ok(cnnl__st_write(ckpt, &unrelated, 1, NULL, 0));
    unsigned char *now = state_bytes(dst, &n1);
    assert_status_msg(cnnl_model_load_weights(dst, ckpt, false), CNNL_EFORMAT, "none of the 12 tensors");
    after = state_bytes(dst, &n1);
    assert_memory_equal(now, after, n1);
    free(now);
    free(after);
    free(ckpt);
    free(before);
    cnnl_model_free(src);
    cnnl_model_free(dst);
}

static void test_wrong_shape_and_dtype(void **state)
{
    fixture *fx = *state;
    cnnl_model *five = report_net(32, false, 5, 1), *four = report_net(32, false, 4, 2);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = state_bytes(four, &n0);
    assert_ok(cnnl_model_save(five, fx->file, NULL));
    assert_status_msg(cnnl_model_load_weights(four, fx->file, true), CNNL_ESHAPE,
                      "tensor \"classifier.4.weight\" has shape [5, 128] in the file but [4, 128] in the model");
    assert_non_null(strstr(cnnl_last_error(), fx->file));
    assert_status_msg(cnnl_model_load_weights(four, fx->file, false), CNNL_ESHAPE, "classifier.4.weight");
    unsigned char *after = state_bytes(four, &n1);
    assert_memory_equal(before, after, n0);
    /* Requesting 4 classes from a 5-class file's metadata is not possible: the file wins. */
    cnnl_model *m = NULL;
    assert_ok(cnnl_model_load(&m, fx->file, NULL, NULL));
    cnnl_report_opts o;
    assert_ok(cnnl_model_report_opts(m, &o));
    assert_int_equal(o.classes, 5);
    cnnl_model_free(m);

    cnnl_model *bn = report_net(32, true, 4, 1);
    write_variant(fx->file, bn, NULL, NULL, CNNL_DTYPE_F32);
    assert_status_msg(cnnl_model_load_weights(bn, fx->file, true), CNNL_EFORMAT,
                      "tensor \"features.2.num_batches_tracked\" is F32 in the file but I64 in the model");
    free(before);
    free(after);
    cnnl_model_free(bn);
    cnnl_model_free(five);
    cnnl_model_free(four);
}

static void test_bad_metadata(void **state)
{
    fixture *fx = *state;
    cnnl_model *m = report_net(32, false, 4, 1);
    cnnl_param_info p;
    assert_ok(cnnl_model_state_at(m, 0, &p));
    cnnl__st_tensor t = {.name = p.name, .dtype = p.dtype, .ndim = p.ndim, .data = p.data};
    memcpy(t.shape, p.shape, sizeof p.shape);
    struct {
        cnnl__st_meta meta[7];
        size_t n;
        const char *needle;
    } cases[] = {
        {{{"arch", "resnet"}}, 1, "unknown architecture \"resnet\""},
        {{{"arch", "report_net"}, {"classes", "4"}, {"channels", "3"}}, 3, "\"size\" is missing"},
        {{{"arch", "report_net"}, {"classes", "four"}}, 2, "\"classes\" is \"four\"; expected an integer"},
        {{{"arch", "report_net"}, {"classes", "4"}, {"channels", "3"}, {"size", "32"}, {"batchnorm", "yes"}},
         5, "\"batchnorm\" is \"yes\""},
        {{{"arch", "report_net"}, {"classes", "4"}, {"channels", "3"}, {"size", "32"}, {"batchnorm", "true"},
          {"dropout", "1.5"}},
         6, "\"dropout\" is 1.5"},
        {{{"class_names", "{\"a\": 1}"}}, 1, "\"class_names\" is not a JSON array of strings"},
        {{{"class_names", "[\"a\", 2]"}}, 1, "entry 1 is not a string"},
        {{{"normalization", "{\"kind\": \"weird\"}"}}, 1, "metadata \"normalization\" is not"},
        {{{"normalization", "{\"kind\": \"mean_std\", \"mean\": [0.5], \"std\": [0]}"}}, 1,
         "metadata \"normalization\" is not"},
        {{{"arch", "report_net"}, {"classes", "4"}, {"channels", "3"}, {"size", "32"}, {"batchnorm", "true"},
          {"dropout", "0.1"}, {"class_names", "[\"a\"]"}},
         7, "1 class names for 4 classes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_ok(cnnl__st_write(fx->file, &t, 1, cases[i].meta, cases[i].n));
        cnnl_model_meta *meta = (cnnl_model_meta *)1;
        assert_status_msg(cnnl_model_meta_read(&meta, fx->file), CNNL_EFORMAT, cases[i].needle);
        assert_null(meta);
        cnnl_model *out = (cnnl_model *)1;
        assert_status_msg(cnnl_model_load(&out, fx->file, NULL, NULL), CNNL_EFORMAT, cases[i].needle);
        assert_null(out);
    }
    /* A size the builder rejects is reported with the file's name. */
    cnnl__st_meta bad_size[6] = {{"arch", "report_net"}, {"classes", "4"}, {"channels", "3"},
                                 {"size", "33"},         {"batchnorm", "false"}, {"dropout", "0"}};
    assert_ok(cnnl__st_write(fx->file, &t, 1, bad_size, 6));
    cnnl_model *out = NULL;
    assert_status_msg(cnnl_model_load(&out, fx->file, NULL, NULL), CNNL_EINVAL, "size is 33");
    assert_non_null(strstr(cnnl_last_error(), fx->file));
    cnnl_model_free(m);
}

static void test_save_arguments(void **state)
{
    fixture *fx = *state;
    cnnl_model *m = report_net(32, false, 4, 1);
    cnnl_save_opts so = cnnl_save_opts_default();
    so.class_names = CLASSES;
    so.num_classes = 3;
    assert_status_msg(cnnl_model_save(m, fx->file, &so), CNNL_EINVAL, "3 class names for a model with 4 classes");
    const char *holes[4] = {"a", "", "c", "d"};
    so.class_names = holes;
    so.num_classes = 4;
    assert_status_msg(cnnl_model_save(m, fx->file, &so), CNNL_EINVAL, "class name 1 is NULL or empty");
    cnnl_normalization norm = {.kind = CNNL_NORM_MEAN_STD, .channels = 1, .mean = {0.5f}, .std = {0.0f}};
    so = cnnl_save_opts_default();
    so.norm = &norm;
    assert_status_msg(cnnl_model_save(m, fx->file, &so), CNNL_EINVAL, "std 0");
    norm.channels = 5;
    assert_status_msg(cnnl_model_save(m, fx->file, &so), CNNL_EINVAL, "5 channels");
    assert_status_msg(cnnl_model_save(NULL, fx->file, NULL), CNNL_EINVAL, "model");
    assert_status_msg(cnnl_model_save(m, NULL, NULL), CNNL_EINVAL, "path");
    assert_int_equal(scratch_count(fx->dir), 0);
    /* Unit normalization round-trips without mean and std. */
    norm = (cnnl_normalization){.kind = CNNL_NORM_UNIT};
    assert_ok(cnnl_model_save(m, fx->file, &so));
    cnnl_model_meta *meta = NULL;
    assert_ok(cnnl_model_meta_read(&meta, fx->file));
    cnnl_normalization back = {.kind = CNNL_NORM_MEAN_STD, .channels = 9};
    assert_ok(cnnl_model_meta_normalization(meta, &back));
    assert_int_equal(back.kind, CNNL_NORM_UNIT);
    assert_int_equal(back.channels, 0);
    assert_string_equal(cnnl_model_meta_get(meta, "normalization"), "{\"kind\":\"unit\"}");
    assert_null(cnnl_model_meta_get(meta, "class_names"));
    cnnl_model_meta_free(meta);
    cnnl_model_meta_free(NULL);
    cnnl_model_free(m);
}

/* A dataset's normalization is recorded as it is and, read back into dataset options, gives
 * the same input values. */
static void test_dataset_normalization_round_trip(void **state)
{
    fixture *fx = *state;
    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = 4;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = 32;
    o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, 3, {0.1f, 0.2f, 0.3f}, {0.7f, 0.2f, 1.5f}};
    cnnl_dataset *ds = NULL, *again = NULL;
    assert_ok(cnnl_dataset_synthetic(&ds, &syn, &o));
    cnnl_normalization used;
    assert_ok(cnnl_dataset_normalization(ds, &used));
    assert_memory_equal(&used, &o.norm, sizeof used);
    cnnl_model *m = report_net(32, false, 4, 1);
    cnnl_save_opts so = cnnl_save_opts_default();
    so.norm = &used;
    assert_ok(cnnl_model_save(m, fx->file, &so));
    cnnl_model_meta *meta = NULL;
    assert_ok(cnnl_model_meta_read(&meta, fx->file));
    cnnl_dataset_opts o2 = cnnl_dataset_opts_default();
    o2.size = 32;
    assert_ok(cnnl_model_meta_normalization(meta, &o2.norm));
    assert_ok(cnnl_dataset_synthetic(&again, &syn, &o2));
    float a[3 * 32 * 32], b[3 * 32 * 32];
    assert_ok(cnnl_dataset_get(ds, 3, a));
    assert_ok(cnnl_dataset_get(again, 3, b));
    assert_memory_equal(a, b, sizeof a);
    /* the default [0, 1] scaling, recorded without mean and std */
    cnnl_dataset_free(again);
    o2 = cnnl_dataset_opts_default();
    o2.size = 32;
    assert_ok(cnnl_dataset_synthetic(&again, &syn, &o2));
    assert_ok(cnnl_dataset_get(again, 3, b));
    for (int i = 0; i < 32 * 32; i += 97) {
        assert_float_equal(a[i], (b[i] - 0.1f) / 0.7f, 1e-5);
        assert_float_equal(a[2048 + i], (b[2048 + i] - 0.3f) / 1.5f, 1e-5);
    }
    assert_ok(cnnl_dataset_normalization(again, &used));
    assert_int_equal(used.kind, CNNL_NORM_UNIT);
    assert_int_equal(used.channels, 0);
    cnnl_model_meta_free(meta);
    assert_ok(cnnl_model_save(m, fx->file, &so));
    assert_ok(cnnl_model_meta_read(&meta, fx->file));
    assert_string_equal(cnnl_model_meta_get(meta, "normalization"), "{\"kind\":\"unit\"}");
    assert_status_msg(cnnl_dataset_normalization(NULL, &used), CNNL_EINVAL, "ds is NULL");
    assert_status_msg(cnnl_dataset_normalization(again, NULL), CNNL_EINVAL, "norm is NULL");
    cnnl_model_meta_free(meta);
    cnnl_model_free(m);
    cnnl_dataset_free(again);
    cnnl_dataset_free(ds);
}

static void test_load_errors(void **state)
{
    fixture *fx = *state;
    cnnl_model *m = report_net(32, false, 4, 1);
    assert_status_msg(cnnl_model_load_weights(m, fx->file, true), CNNL_EIO, "No such file");
    assert_status_msg(cnnl_model_load_weights(m, fx->dir, true), CNNL_EIO, "is a folder");
    tu_write_file(fx->file, "", 0);
    assert_status_msg(cnnl_model_load_weights(m, fx->file, true), CNNL_EFORMAT, "has 0 bytes");
    assert_status_msg(cnnl_model_load_weights(NULL, fx->file, true), CNNL_EINVAL, "model is NULL");
    cnnl_model *out = (cnnl_model *)1;
    assert_status_msg(cnnl_model_load(&out, fx->dir, NULL, NULL), CNNL_EIO, "is a folder");
    assert_null(out);
    cnnl_model_free(m);
}

/* A save that fails midway (or cannot start) leaves the previous file byte-identical. */
static void test_failed_save_keeps_file(void **state)
{
    fixture *fx = *state;
    cnnl_model *a = report_net(32, true, 4, 1), *b = report_net(32, true, 4, 2);
    assert_ok(cnnl_model_save(a, fx->file, NULL));
    size_t n0 = 0, n1 = 0;
    unsigned char *before = tu_read_file(fx->file, &n0);
    const long long limits[] = {0, 100, (long long)n0 / 2, (long long)n0 - 1};
    for (size_t k = 0; k < 4; k++) {
        cnnl__io_fail_after_bytes = limits[k];
        assert_status_msg(cnnl_model_save(b, fx->file, NULL), CNNL_EIO, "injected");
        cnnl__io_fail_after_bytes = -1;
        unsigned char *after = tu_read_file(fx->file, &n1);
        assert_int_equal(n0, n1);
        assert_memory_equal(before, after, n0);
        free(after);
        assert_int_equal(scratch_count(fx->dir), 1);
    }
    char *bad = path_in(fx->file, "nested.safetensors");
    assert_status_msg(cnnl_model_save(b, bad, NULL), CNNL_EIO, bad);
    unsigned char *after = tu_read_file(fx->file, &n1);
    assert_memory_equal(before, after, n0);
    free(after);
    free(bad);
    free(before);
    cnnl_model_free(a);
    cnnl_model_free(b);
}

/* Writes a model file and its eval logits for tests/io/read_with_torch.py when
 * CNNLITE_IO_EXPORT_DIR is set (the torch-read test sets it). */
static void test_export_for_torch(void **state)
{
    (void)state;
    const char *dir = getenv("CNNLITE_IO_EXPORT_DIR");
    if (!dir || !*dir) {
        skip();
        return;
    }
    for (int bn = 0; bn < 2; bn++) {
        cnnl_model *m = report_net(64, bn, 4, 11 + (uint64_t)bn);
        if (bn)
            train_forward(m, 64);
        char *model_path = path_in(dir, bn ? "ours_bn.safetensors" : "ours.safetensors");
        char *io_path = path_in(dir, bn ? "ours_bn_io.safetensors" : "ours_io.safetensors");
        cnnl_save_opts so = cnnl_save_opts_default();
        so.class_names = CLASSES;
        so.num_classes = 4;
        assert_ok(cnnl_model_save(m, model_path, &so));
        cnnl_tensor *x = pattern_input(2, 64, 0.5f);
        size_t n = 0;
        float *y = logits(m, x, &n);
        cnnl__st_tensor t[2] = {
            {.name = "input", .dtype = CNNL_DTYPE_F32, .ndim = 4, .shape = {2, 3, 64, 64},
             .data = cnnl_tensor_data_const(x)},
            {.name = "logits", .dtype = CNNL_DTYPE_F32, .ndim = 2, .shape = {2, 4}, .data = y},
        };
        assert_ok(cnnl__st_write(io_path, t, 2, NULL, 0));
        free(y);
        cnnl_tensor_free(x);
        free(model_path);
        free(io_path);
        cnnl_model_free(m);
    }
}

/* The tensors of @p m with the given metadata pairs (keys[i], values[i]). */
static void write_with_meta(const char *path, cnnl_model *m, const char *const *keys, const char *const *values,
                            size_t nmeta)
{
    cnnl__st_tensor t[128];
    cnnl__st_meta meta[16];
    size_t n = 0;
    for (size_t i = 0; i < cnnl_model_state_count(m); i++) {
        cnnl_param_info p;
        assert_ok(cnnl_model_state_at(m, i, &p));
        cnnl__st_tensor *e = &t[n++];
        memset(e, 0, sizeof *e);
        e->name = p.name;
        e->dtype = p.dtype;
        e->ndim = p.ndim;
        memcpy(e->shape, p.shape, sizeof p.shape);
        e->data = p.dtype == CNNL_DTYPE_I64 ? (const void *)p.data_i64 : (const void *)p.data;
    }
    for (size_t i = 0; i < nmeta; i++)
        meta[i] = (cnnl__st_meta){keys[i], values[i]};
    assert_ok(cnnl__st_write(path, t, n, meta, nmeta));
}

static char *source_file(const char *rel)
{
    const char *root = getenv("CNNLITE_SOURCE_ROOT");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return strdup(buf);
}

/* Any description: the file alone rebuilds the network, from disk or from memory. */
static void test_description_round_trip(void **state)
{
    fixture *fx = *state;
    char *net = source_file("examples/nets/small.json");
    cnnl_model *m = NULL, *back = NULL, *mem = NULL;
    assert_ok(cnnl_model_from_json_file(&m, net, 9));
    cnnl_tensor *x = pattern_input(2, 64, 0.5f);
    const cnnl_tensor *y = NULL;
    assert_ok(cnnl_model_forward(m, x, &y)); /* training mode: batch-norm statistics move */
    cnnl_save_opts so = cnnl_save_opts_default();
    so.class_names = CLASSES;
    /* Saving checks the class names against the description's outputs, as loading does, and
     * leaves no file behind. */
    assert_int_equal(cnnl_model_num_outputs(m), 4);
    so.num_classes = 3;
    assert_status_msg(cnnl_model_save(m, fx->file, &so), CNNL_EINVAL, "3 class names but the network has 4 outputs");
    assert_non_null(strstr(cnnl_last_error(), fx->file));
    assert_int_equal(access(fx->file, F_OK), -1);
    cnnl_model *conv = NULL;
    assert_ok(cnnl_model_from_json(&conv, "{\"input\": [1, 4, 4], \"layers\": [{\"type\": \"Conv2d\", "
                                          "\"out_channels\": 2, \"kernel_size\": 3}]}", 0));
    so.num_classes = 2;
    assert_status_msg(cnnl_model_save(conv, fx->file, &so), CNNL_EINVAL, "output is not flat features");
    cnnl_model_free(conv);
    so.num_classes = 4;
    assert_ok(cnnl_model_save(m, fx->file, &so));
    cnnl_model_meta *meta = NULL;
    assert_ok(cnnl_model_load(&back, fx->file, NULL, &meta));
    const char *ja = NULL, *jb = NULL;
    assert_ok(cnnl_model_to_json(m, &ja));
    assert_ok(cnnl_model_to_json(back, &jb));
    assert_string_equal(ja, jb);
    assert_string_equal(cnnl_model_meta_get(meta, "description"), ja);
    assert_int_equal(cnnl_model_meta_class_count(meta), 4);
    cnnl_report_opts ro;
    assert_int_equal(cnnl_model_report_opts(back, &ro), CNNL_ENOTFOUND);
    size_t n1 = 0, n2 = 0, n3 = 0;
    float *a = logits(m, x, &n1), *b = logits(back, x, &n2);
    assert_int_equal(n1, 8);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof *a);
    /* From memory: the same bytes give the same model; broken bytes name the buffer. */
    size_t size = 0;
    unsigned char *bytes = tu_read_file(fx->file, &size);
    assert_ok(cnnl_model_load_memory(&mem, bytes, size, "net-in-memory", NULL, NULL));
    float *c = logits(mem, x, &n3);
    assert_memory_equal(a, c, n1 * sizeof *a);
    cnnl_model *none = (cnnl_model *)1;
    assert_status_msg(cnnl_model_load_memory(&none, bytes, size - 10, "net-in-memory", NULL, NULL), CNNL_EFORMAT,
                      "net-in-memory");
    assert_null(none);
    free(bytes);
    free(a);
    free(b);
    free(c);
    free(net);
    cnnl_tensor_free(x);
    cnnl_model_meta_free(meta);
    cnnl_model_free(m);
    cnnl_model_free(back);
    cnnl_model_free(mem);
}

/* A file written by 0.1.0 (report-network options, no description; committed with the logits
 * 0.1.0 computed for pattern_input(2, 32, 0.25) in evaluation mode) loads and predicts the same
 * on every engine. */
static void test_v010_file(void **state)
{
    fixture *fx = *state;
    char *path = fixture_path("v010_report32_bn.safetensors");
    char *lpath = fixture_path("v010_report32_bn.logits");
    cnnl_model *m = NULL, *again = NULL;
    cnnl_model_meta *meta = NULL;
    assert_ok(cnnl_model_load(&m, path, NULL, &meta));
    assert_null(cnnl_model_meta_get(meta, "description"));
    cnnl_report_opts ro;
    assert_ok(cnnl_model_report_opts(m, &ro));
    assert_true(ro.batchnorm);
    assert_int_equal(ro.size, 32);
    cnnl_tensor *x = pattern_input(2, 32, 0.25f);
    size_t n = 0;
    float *got = logits(m, x, &n);
    assert_int_equal(n, 8);
    FILE *f = fopen(lpath, "r");
    assert_non_null(f);
    /* Identical up to the engines' summation order (the parity criterion: 1e-4 of the
     * largest logit). */
    double want[8], scale = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fscanf(f, "%lf", &want[i]), 1);
        scale = fmax(scale, fabs(want[i]));
    }
    for (size_t i = 0; i < n; i++)
        assert_float_equal(got[i], want[i], 1e-4 * scale);
    fclose(f);
    /* Saved again, the file carries the description too and still loads to the same network. */
    assert_ok(cnnl_model_save(m, fx->file, NULL));
    assert_ok(cnnl_model_load(&again, fx->file, NULL, NULL));
    const char *ja = NULL, *jb = NULL;
    assert_ok(cnnl_model_to_json(m, &ja));
    assert_ok(cnnl_model_to_json(again, &jb));
    assert_string_equal(ja, jb);
    assert_ok(cnnl_model_report_opts(again, &ro));
    free(got);
    free(path);
    free(lpath);
    cnnl_tensor_free(x);
    cnnl_model_meta_free(meta);
    cnnl_model_free(m);
    cnnl_model_free(again);
}

/* Metadata that does not describe the file's tensors is refused before the network is built:
 * a 32x32 network's tensors with metadata claiming 8192x8192 (4 GB of weights). */
static void test_metadata_against_tensors(void **state)
{
    fixture *fx = *state;
    cnnl_model *small = report_net(32, false, 4, 1), *m = (cnnl_model *)1;
    const char *keys[] = {"format", "arch", "classes", "channels", "size", "batchnorm", "dropout"};
    const char *values[] = {"cnnlite", "report_net", "4", "3", "8192", "false", "0.2"};
    write_with_meta(fx->file, small, keys, values, 7);
    assert_status_msg(cnnl_model_load(&m, fx->file, NULL, NULL), CNNL_EFORMAT,
                      "tensor \"classifier.1.weight\" has shape [128x128] but the network in the metadata needs "
                      "[128x8388608]");
    assert_non_null(strstr(cnnl_last_error(), fx->file));
    assert_null(m);
    /* The same with a description. */
    const char *dkeys[] = {"format", "description"};
    const char *dvalues[] = {"cnnlite", "{\"input\": [3, 32, 32], \"layers\": [{\"type\": \"Flatten\"}, "
                                        "{\"type\": \"Linear\", \"out_features\": 100000}]}"};
    write_with_meta(fx->file, small, dkeys, dvalues, 2);
    assert_status_msg(cnnl_model_load(&m, fx->file, NULL, NULL), CNNL_EFORMAT,
                      "the network in the metadata has a tensor \"1.weight\" that the file lacks");
    /* An invalid description names the file, the metadata key, the layer and the option. */
    dvalues[1] = "{\"input\": [3, 32, 32], \"layers\": [{\"type\": \"Conv2d\", \"out_channels\": 0, "
                 "\"kernel_size\": 3}]}";
    write_with_meta(fx->file, small, dkeys, dvalues, 2);
    assert_status_msg(cnnl_model_load(&m, fx->file, NULL, NULL), CNNL_EFORMAT,
                      "metadata \"description\": layers[0] (Conv2d): option \"out_channels\" is 0");
    /* A description and report options that disagree. */
    const char *bkeys[] = {"format", "arch", "classes", "channels", "size", "batchnorm", "dropout", "description"};
    char desc[4096];
    const char *json = NULL;
    assert_ok(cnnl_model_to_json(small, &json));
    snprintf(desc, sizeof desc, "%s", json);
    const char *bvalues[] = {"cnnlite", "report_net", "4", "3", "32", "true", "0.2", desc};
    write_with_meta(fx->file, small, bkeys, bvalues, 8);
    assert_status_msg(cnnl_model_load(&m, fx->file, NULL, NULL), CNNL_EFORMAT, "\"description\" is not the network");
    cnnl_model_free(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_batchnorm, setup, teardown),
        cmocka_unit_test(test_torch_fixture_plain),
        cmocka_unit_test(test_torch_fixture_batchnorm),
        cmocka_unit_test_setup_teardown(test_strict_and_lenient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shape_and_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_normalization_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save_keeps_file, setup, teardown),
        cmocka_unit_test(test_export_for_torch),
        cmocka_unit_test_setup_teardown(test_description_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v010_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_against_tensors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
