/* One training run of the report's network: data, split, loaders, model, trainer, outputs,
 * checkpoints. */
#include "run.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* --augment and one option per transform; explicit values override the preset whatever the
 * order (kept in c->augment, with NaN meaning "not given"). */
static const struct aug_option {
    const char *name;
    size_t offset;
    double min, max;
} aug_options[] = {
    {"aug-flip", offsetof(cnnl_augment_opts, flip_p), 0, 1},
    {"aug-rotate", offsetof(cnnl_augment_opts, rotate_deg), 0, 180},
    {"aug-scale-min", offsetof(cnnl_augment_opts, scale_min), 0, 4},
    {"aug-scale-max", offsetof(cnnl_augment_opts, scale_max), 0, 4},
    {"aug-translate", offsetof(cnnl_augment_opts, translate), 0, 0.5},
    {"aug-roundtrip", offsetof(cnnl_augment_opts, roundtrip_p), 0, 1},
    {"aug-roundtrip-min", offsetof(cnnl_augment_opts, roundtrip_min), 0, 1},
    {"aug-blur", offsetof(cnnl_augment_opts, blur_p), 0, 1},
    {"aug-blur-sigma", offsetof(cnnl_augment_opts, blur_sigma), 0, 20},
    {"aug-gamma", offsetof(cnnl_augment_opts, gamma), 0, 4},
    {"aug-contrast", offsetof(cnnl_augment_opts, contrast), 0, 1},
    {"aug-brightness", offsetof(cnnl_augment_opts, brightness), 0, 1},
    {"aug-noise", offsetof(cnnl_augment_opts, noise_std), 0, 1},
};

static float *aug_field(cnnl_augment_opts *a, size_t offset)
{
    return (float *)(void *)((char *)a + offset);
}

static int run_augment_option(const cl_opt *o, run_config *c)
{
    if (cl_is(o, "augment")) {
        c->augment_preset = true;
        return 1;
    }
    for (size_t k = 0; k < sizeof aug_options / sizeof aug_options[0]; k++) {
        if (!cl_is(o, aug_options[k].name))
            continue;
        double d;
        if (!cl_parse_double(aug_options[k].name, o->value, aug_options[k].min, aug_options[k].max,
                             false, false, &d))
            return -1;
        *aug_field(&c->augment, aug_options[k].offset) = (float)d;
        return 1;
    }
    return 0;
}

/* The augmentation of a run: the preset (with --augment) or nothing, then each given field. */
static cnnl_augment_opts run_augment(const run_config *c)
{
    cnnl_augment_opts a = c->augment_preset ? cnnl_augment_opts_preset(c->size) : cnnl_augment_opts_default();
    cnnl_augment_opts given = c->augment;
    for (size_t k = 0; k < sizeof aug_options / sizeof aug_options[0]; k++) {
        float v = *aug_field(&given, aug_options[k].offset);
        if (!isnan(v))
            *aug_field(&a, aug_options[k].offset) = v;
    }
    if (a.scale_min > 0 && a.scale_max == 0)
        a.scale_max = a.scale_min > 1 ? a.scale_min : 1;
    if (a.roundtrip_p > 0 && a.roundtrip_min == 0)
        a.roundtrip_min = 0.4f;
    return a;
}

void run_config_default(run_config *c)
{
    memset(c, 0, sizeof *c);
    c->count = 1311;
    c->difficulty = DEMO_DIFFICULTY;
    c->epochs = 15;
    c->batch = 32;
    c->size = 512;
    c->channels = 3;
    c->norm = cnnl_dataset_opts_default().norm;
    c->lr = 1e-3;
    c->dropout = 0.2;
    c->split = 0.8;
    c->print_epochs = true;
    c->print_metrics = true;
    for (size_t k = 0; k < sizeof aug_options / sizeof aug_options[0]; k++)
        *aug_field(&c->augment, aug_options[k].offset) = NAN;
    c->optimizer = "adam";
    c->schedule = cnnl_schedule_opts_default();
}

/* Options of the optimizer, schedule, early stopping, loss and validation split. */
int run_training_option(const cl_opt *o, run_config *c)
{
    const char *v = o->value;
    int r = 1;
    int a = run_augment_option(o, c);
    if (a != 0)
        return a;
#define OPT(name) cl_is(o, name)
    if (OPT("sync-bn")) {
        c->sync_bn = true;
    } else if (OPT("optimizer")) {
        if (r > 0 && strcmp(v, "adam") != 0 && strcmp(v, "adamw") != 0 && strcmp(v, "sgd") != 0) {
            cl_error("--optimizer: '%s' is not adam, adamw or sgd", v);
            return -1;
        }
        c->optimizer = v;
    } else if (OPT("weight-decay")) {
        if (r > 0 && !cl_parse_double("weight-decay", v, 0, 10, false, false, &c->weight_decay))
            return -1;
    } else if (OPT("momentum")) {
        if (r > 0 && !cl_parse_double("momentum", v, 0, 1, false, true, &c->momentum))
            return -1;
    } else if (OPT("schedule")) {
        static const char *const kinds[] = {"constant", "step", "cosine", "onecycle", "plateau"};
        int k = 0;
        while (r > 0 && k < 5 && strcmp(v, kinds[k]) != 0)
            k++;
        if (r > 0 && k == 5) {
            cl_error("--schedule: '%s' is not constant, step, cosine, onecycle or plateau", v);
            return -1;
        }
        c->schedule.kind = (cnnl_schedule_kind)k;
    } else if (OPT("warmup")) {
        if (r > 0 && !cl_parse_int("warmup", v, 0, 100000, &c->schedule.warmup_epochs))
            return -1;
    } else if (OPT("step-size")) {
        if (r > 0 && !cl_parse_int("step-size", v, 1, 100000, &c->schedule.step_size))
            return -1;
    } else if (OPT("lr-factor")) {
        if (r > 0 && !cl_parse_double("lr-factor", v, 0, 1, true, false, &c->schedule.gamma))
            return -1;
    } else if (OPT("plateau-patience")) {
        if (r > 0 && !cl_parse_int("plateau-patience", v, 0, 100000, &c->schedule.plateau_patience))
            return -1;
    } else if (OPT("patience")) {
        if (r > 0 && !cl_parse_int("patience", v, 0, 100000, &c->patience))
            return -1;
    } else if (OPT("label-smoothing")) {
        if (r > 0 && !cl_parse_double("label-smoothing", v, 0, 1, false, true, &c->label_smoothing))
            return -1;
    } else if (OPT("class-weights")) {
        c->class_weights = v;
    } else if (OPT("val")) {
        if (r > 0 && !cl_parse_double("val", v, 0, 1, true, true, &c->val))
            return -1;
    } else {
        return 0;
    }
#undef OPT
    return r < 0 ? -1 : 1;
}

int run_common_option(const cl_opt *o, run_config *c)
{
    const char *v = o->value;
#define OPT(name) cl_is(o, name)
    if (OPT("batchnorm") || OPT("no-batchnorm")) {
        c->batchnorm = OPT("batchnorm");
        c->set_batchnorm = true;
    } else if (OPT("data")) {
        c->data = v;
    } else if (OPT("arch")) {
        c->arch = v;
    } else if (OPT("count")) {
        c->set_count = true;
        if (!cl_parse_int("count", v, 8, 1000000, &c->count))
            return -1;
    } else if (OPT("difficulty")) {
        c->set_difficulty = true;
        if (!cl_parse_double("difficulty", v, 0, 1, false, false, &c->difficulty))
            return -1;
    } else if (OPT("epochs")) {
        c->set_epochs = true;
        if (!cl_parse_int("epochs", v, 1, 100000, &c->epochs))
            return -1;
    } else if (OPT("batch")) {
        if (!cl_parse_int("batch", v, 1, 65536, &c->batch))
            return -1;
    } else if (OPT("size")) {
        c->set_size = true;
        if (!cl_parse_int("size", v, 32, 4096, &c->size))
            return -1;
        if (c->size % 32 != 0) {
            cl_error("--size: %d is not a multiple of 32", c->size);
            return -1;
        }
    } else if (OPT("channels")) {
        c->set_channels = true;
        if (!cl_parse_int("channels", v, 1, 3, &c->channels))
            return -1;
        if (c->channels == 2) {
            cl_error("--channels: must be 1 or 3");
            return -1;
        }
    } else if (OPT("precision")) {
        if (!cl_parse_precision(v, &c->bf16))
            return -1;
    } else if (OPT("memory-budget")) {
        if (!cl_parse_int("memory-budget", v, 1, 1 << 24, &c->memory_budget_mb))
            return -1;
    } else if (OPT("threads")) {
        if (!cl_parse_int("threads", v, 1, 1024, &c->threads))
            return -1;
    } else if (OPT("lr")) {
        if (!cl_parse_double("lr", v, 0, 10, true, false, &c->lr))
            return -1;
    } else if (OPT("dropout")) {
        c->set_dropout = true;
        if (!cl_parse_double("dropout", v, 0, 1, false, true, &c->dropout))
            return -1;
    } else if (OPT("split")) {
        if (!cl_parse_double("split", v, 0, 1, true, true, &c->split))
            return -1;
    } else if (OPT("seed")) {
        if (!cl_parse_u64("seed", v, &c->seed))
            return -1;
    } else {
        return 0;
    }
#undef OPT
    return 1;
}

/* Input geometry from the description: the images are prepared at its size and channels. */
static int arch_geometry(run_config *c)
{
    if (c->set_batchnorm || c->set_dropout) {
        cl_error("--%s applies to the report network; with --arch the description says it",
                 c->set_batchnorm ? "batchnorm" : "dropout");
        return -1;
    }
    cnnl_model *m = NULL;
    int64_t in[3];
    cnnl_status st = cnnl_model_from_json_file(&m, c->arch, c->seed);
    if (st == CNNL_OK)
        st = cnnl_model_input_shape(m, in);
    cnnl_model_free(m);
    if (st != CNNL_OK)
        return cl_fail("--arch", st), -1;
    if (in[1] != in[2] || (in[0] != 1 && in[0] != 3)) {
        cl_error("%s: input %lldx%lldx%lld; images need 1 or 3 channels and equal height and width", c->arch,
                 (long long)in[0], (long long)in[1], (long long)in[2]);
        return -1;
    }
    if ((c->set_size && c->size != in[1]) || (c->set_channels && c->channels != in[0])) {
        cl_error("--%s %d contradicts the input [%lld, %lld, %lld] of %s", c->set_size && c->size != in[1] ? "size"
                 : "channels", c->set_size && c->size != in[1] ? c->size : c->channels, (long long)in[0],
                 (long long)in[1], (long long)in[2], c->arch);
        return -1;
    }
    c->size = (int)in[1];
    c->channels = (int)in[0];
    c->set_size = true;
    return 0;
}

int run_config_finish(run_config *c)
{
    if (c->arch && arch_geometry(c) != 0)
        return -1;
    if (c->data == NULL) {
        if (!c->set_count)
            c->count = DEMO_COUNT;
        if (!c->set_size)
            c->size = DEMO_SIZE;
        if (!c->set_epochs)
            c->epochs = DEMO_EPOCHS;
        if (!c->set_batchnorm && !c->arch)
            c->batchnorm = true;
    } else if (c->set_count || c->set_difficulty) {
        cl_error("--%s only applies to the synthetic set (without --data)",
                 c->set_count ? "count" : "difficulty");
        return -1;
    }
    if (c->threads > 0 && cnnl_set_num_threads(c->threads) != CNNL_OK)
        return cl_fail("--threads", CNNL_EINVAL), -1;
    return 0;
}

int run_check_outputs(const run_config *c)
{
    const struct {
        const char *opt, *path;
    } out[] = {
        {"save", c->save},       {"save-best", c->save_best}, {"checkpoint", c->checkpoint},
        {"history", c->history}, {"plot", c->plot},           {"confusion-plot", c->confusion_plot},
    };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        if (cl_check_output(out[i].opt, out[i].path) != 0)
            return EXIT_FAIL;
    return 0;
}

void run_describe(const run_config *c, const cnnl_dataset *ds)
{
    if (c->quiet)
        return;
    fprintf(stderr, "%s: %s: %s\n", cl_prog, c->data ? c->data : "synthetic MRI-like set",
            cnnl_dataset_summary(ds));
    char net[300];
    if (c->arch)
        snprintf(net, sizeof net, "network %.256s", c->arch);
    else
        snprintf(net, sizeof net, "dropout %g%s", c->dropout, c->batchnorm ? ", batch norm" : "");
    fprintf(stderr, "%s: %d epochs, batch %d, Adam lr %g, %s, %dx%dx%d input, "
                    "split %g, seed %" PRIu64 ", %d threads\n",
            cl_prog, c->epochs, c->batch, c->lr, net,
            c->size, c->size, c->channels, c->split, c->seed, cnnl_get_num_threads());
    if (c->comm != NULL)
        fprintf(stderr, "%s: data-parallel over %d processes: each takes %d or %d images of every "
                        "batch of %d; %d threads each%s\n", cl_prog, c->comm->size,
                c->batch / c->comm->size, (c->batch + c->comm->size - 1) / c->comm->size, c->batch,
                cnnl_get_num_threads(), c->sync_bn ? "; batch-norm statistics over all processes" : "");
    else if (c->sync_bn)
        fprintf(stderr, "%s: --sync-bn has no effect in a single process\n", cl_prog);
    cnnl_augment_opts a = run_augment(c);
    if (a.flip_p > 0 || a.rotate_deg > 0 || a.scale_min > 0 || a.translate > 0 || a.roundtrip_p > 0 ||
        a.blur_p > 0 || a.gamma > 0 || a.contrast > 0 || a.brightness > 0 || a.noise_std > 0)
        fprintf(stderr, "%s: augmentation: flip %g, rotate %g, scale %g..%g, translate %g, roundtrip %g "
                        "(min %g), blur %g (sigma %g), gamma %g, contrast %g, brightness %g, noise %g\n",
                cl_prog, a.flip_p, a.rotate_deg, a.scale_min, a.scale_max, a.translate, a.roundtrip_p,
                a.roundtrip_min, a.blur_p, a.blur_sigma, a.gamma, a.contrast, a.brightness, a.noise_std);
    if (strcmp(c->optimizer, "adam") != 0 || c->weight_decay > 0 || c->schedule.kind != CNNL_SCHEDULE_CONSTANT ||
        c->patience > 0 || c->label_smoothing > 0 || c->class_weights || c->val > 0)
        fprintf(stderr, "%s: optimizer %s (weight decay %g, momentum %g), schedule %d, patience %d, "
                        "label smoothing %g, class weights %s, validation %g%s\n",
                cl_prog, c->optimizer, c->weight_decay, c->momentum, (int)c->schedule.kind, c->patience,
                c->label_smoothing, c->class_weights ? c->class_weights : "none", c->val,
                c->val > 0 ? " (epoch lines show the validation images; the metrics the test split)" : "");
    if (c->data == NULL)
        fprintf(stderr, "%s: demo on synthetic data, difficulty %g (the report's run: --data DIR "
                        "--size 512 --epochs 15, no batch norm)\n", cl_prog, c->difficulty);
}

int run_load_data(const run_config *c, cnnl_dataset **ds)
{
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = c->size;
    o.channels = c->channels;
    o.norm = c->norm;
    o.memory_budget = (size_t)c->memory_budget_mb << 20;
    o.trust_files = c->comm != NULL; /* streamed: each process reads only its shards' files */
    cnnl_status st;
    if (c->data != NULL) {
        st = cnnl_dataset_load_folder(ds, c->data, &o);
    } else {
        cnnl_synthetic_opts so = cnnl_synthetic_opts_default();
        so.count = (size_t)c->count;
        so.seed = SYNTHETIC_SEED;
        so.difficulty = (float)c->difficulty;
        st = cnnl_dataset_synthetic(ds, &so, &o);
    }
    if (st != CNNL_OK)
        return cl_fail(c->data ? c->data : "synthetic data", st);
    return 0;
}

/* Everything one run owns. */
typedef struct run_state {
    const run_config *c;
    const cnnl_dataset *ds;
    cnnl_split *split;
    cnnl_loader *train, *test, *val;
    size_t *train_idx, *val_idx; /* with --val: the training part cut in two */
    size_t n_train, n_val;
    float *class_weights;
    cnnl_model *model;
    cnnl_optimizer *opt;
    cnnl_trainer *trainer;
    const char **names;      /* class names (borrowed strings) */
    int classes;
    FILE *out;
} run_state;

static void state_free(run_state *s)
{
    cnnl_trainer_free(s->trainer);
    cnnl_optimizer_free(s->opt);
    cnnl_model_free(s->model);
    cnnl_loader_free(s->train);
    cnnl_loader_free(s->test);
    cnnl_loader_free(s->val);
    free(s->train_idx);
    free(s->val_idx);
    free(s->class_weights);
    cnnl_split_free(s->split);
    free(s->names);
}

static int on_epoch(cnnl_trainer *t, const cnnl_epoch_stats *e, void *user)
{
    (void)t;
    run_state *s = user;
    if (s->c->print_epochs)
        cl_print_epoch(s->out, e, s->c->epochs);
    return CNNL_OK;
}

static cnnl_status set_split_names(cnnl_checkpoint *ck, const run_state *s, cnnl_subset which,
                                   const char *part)
{
    size_t n = cnnl_split_count(s->split, which);
    const size_t *idx = cnnl_split_indices(s->split, which);
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (names == NULL)
        return CNNL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        names[i] = cnnl_dataset_name(s->ds, idx[i]);
    cnnl_status st = cnnl_checkpoint_set_split(ck, part, names, n);
    free(names);
    return st;
}

/* Options a checkpoint records (user.opt.<name>) and a resumed run must repeat: each changes
 * what the remaining epochs compute (--epochs may grow, --threads changes only the rounding). */
enum { RESUME_OPTS = 8 };
static const char *const resume_opt_names[RESUME_OPTS] = {"lr", "dropout", "batch", "seed", "split", "size",
                                                          "channels", "batchnorm"};

static void resume_opt_values(const run_config *c, char v[RESUME_OPTS][32])
{
    snprintf(v[0], 32, "%.9g", c->lr);
    snprintf(v[1], 32, "%.9g", c->dropout);
    snprintf(v[2], 32, "%d", c->batch);
    snprintf(v[3], 32, "%" PRIu64, c->seed);
    snprintf(v[4], 32, "%.9g", c->split);
    snprintf(v[5], 32, "%d", c->size);
    snprintf(v[6], 32, "%d", c->channels);
    snprintf(v[7], 32, "%s", c->batchnorm ? "on" : "off");
}

static cnnl_status set_resume_opts(cnnl_checkpoint *ck, const run_config *c)
{
    char v[RESUME_OPTS][32], key[48];
    resume_opt_values(c, v);
    cnnl_status st = CNNL_OK;
    for (int i = 0; i < RESUME_OPTS && st == CNNL_OK; i++) {
        snprintf(key, sizeof key, "opt.%s", resume_opt_names[i]);
        st = cnnl_checkpoint_set_string(ck, key, v[i]);
    }
    return st;
}

/* Refuse options that contradict the checkpoint's, naming both values. Checkpoints without
 * recorded options (0.1.0) are checked on the learning rate they restored. */
static int check_resume_opts(const run_state *s, const cnnl_checkpoint *ck)
{
    char v[RESUME_OPTS][32], key[48];
    resume_opt_values(s->c, v);
    for (int i = 0; i < RESUME_OPTS; i++) {
        snprintf(key, sizeof key, "opt.%s", resume_opt_names[i]);
        const char *saved = cnnl_checkpoint_get_string(ck, key);
        bool flag = strcmp(resume_opt_names[i], "batchnorm") == 0;
        if (saved != NULL && strcmp(saved, v[i]) != 0) {
            if (flag)
                cl_error("%s: the checkpoint's run had batch norm %s; this run has it %s (resume with the "
                         "same options)", s->c->resume, saved, v[i]);
            else
                cl_error("%s: the checkpoint's run used --%s %s; this run gives --%s %s (resume with the "
                         "same options)", s->c->resume, resume_opt_names[i], saved, resume_opt_names[i], v[i]);
            return -1;
        }
    }
    float restored = cnnl_optimizer_get_lr(s->opt);
    if (cnnl_checkpoint_get_string(ck, "opt.lr") == NULL && restored != (float)s->c->lr) {
        cl_error("%s: the checkpoint's run used --lr %.9g; this run gives --lr %s (resume with the same "
                 "options)", s->c->resume, (double)restored, v[0]);
        return -1;
    }
    return 0;
}

static cnnl_status on_checkpoint(cnnl_trainer *t, void *user)
{
    run_state *s = user;
    cnnl_checkpoint *ck = NULL;
    char procs[16];
    snprintf(procs, sizeof procs, "%d", s->c->comm ? s->c->comm->size : 1);
    cnnl_status st = cnnl_checkpoint_create(&ck);
    if (st == CNNL_OK)
        st = cnnl_checkpoint_set_string(ck, "processes", procs);
    if (st == CNNL_OK)
        st = set_split_names(ck, s, CNNL_SUBSET_TRAIN, "train");
    if (st == CNNL_OK)
        st = set_split_names(ck, s, CNNL_SUBSET_TEST, "test");
    if (st == CNNL_OK)
        st = set_resume_opts(ck, s->c);
    if (st == CNNL_OK)
        st = cnnl_trainer_save_checkpoint(t, s->c->checkpoint, ck);
    cnnl_checkpoint_free(ck);
    return st;
}

/* The checkpoint must come from the same split of the same data. */
static int check_split(const run_state *s, const cnnl_checkpoint *ck, cnnl_subset which, const char *part)
{
    size_t n = cnnl_split_count(s->split, which);
    const size_t *idx = cnnl_split_indices(s->split, which);
    if (cnnl_checkpoint_split_count(ck, part) != n) {
        cl_error("%s: its %s split has %zu images, this run's has %zu (same --data, --split and "
                 "--seed needed)", s->c->resume, part, cnnl_checkpoint_split_count(ck, part), n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = cnnl_checkpoint_split_file(ck, part, i);
        if (name == NULL || strcmp(name, cnnl_dataset_name(s->ds, idx[i])) != 0) {
            cl_error("%s: its %s split differs from this run's at '%s' (same --data, --split and "
                     "--seed needed)", s->c->resume, part, name ? name : "?");
            return -1;
        }
    }
    return 0;
}

static int resume(run_state *s)
{
    cnnl_checkpoint *ck = NULL;
    cnnl_status st = cnnl_trainer_load_checkpoint(s->trainer, s->c->resume, &ck);
    if (st != CNNL_OK)
        return cl_fail("--resume", st);
    int rc = check_resume_opts(s, ck);
    if (rc == 0)
        rc = check_split(s, ck, CNNL_SUBSET_TRAIN, "train");
    if (rc == 0)
        rc = check_split(s, ck, CNNL_SUBSET_TEST, "test");
    cnnl_train_position p = {0};
    cnnl_trainer_get_position(s->trainer, &p);
    /* Another process count sums the gradients in another order: not the same run. */
    const char *procs = cnnl_checkpoint_get_string(ck, "processes");
    int n = s->c->comm ? s->c->comm->size : 1;
    if (rc == 0 && procs != NULL && atoi(procs) != n) {
        cl_error("%s: written by a run over %s processes; resume it with as many (this run has %d)",
                 s->c->resume, procs, n);
        rc = -1;
    }
    if (rc == 0 && (p.epoch > s->c->epochs || (p.epoch == s->c->epochs && p.batch > 0))) {
        cl_error("%s: %d epochs are done%s; give --epochs of at least %d", s->c->resume, p.epoch,
                 p.batch > 0 ? " and part of the next" : "", p.epoch + (p.batch > 0));
        rc = -1;
    }
    if (rc == 0 && !s->c->quiet)
        fprintf(stderr, "%s: resuming %s after epoch %d%s\n", cl_prog, s->c->resume, p.epoch,
                p.batch ? " (inside the next epoch)" : "");
    if (rc == 0 && s->c->print_epochs) {
        cnnl_history *h = cnnl_trainer_history(s->trainer);
        for (size_t i = 0; i < cnnl_history_count(h); i++) {
            cnnl_epoch_stats e;
            cnnl_history_at(h, i, &e);
            cl_print_epoch(s->out, &e, s->c->epochs);
        }
    }
    cnnl_checkpoint_free(ck);
    return rc == 0 ? 0 : EXIT_FAIL;
}

/* The training indices, and with --val a seeded share of them held out for validation. */
static int carve_validation(run_state *s)
{
    size_t n = cnnl_split_count(s->split, CNNL_SUBSET_TRAIN);
    const size_t *idx = cnnl_split_indices(s->split, CNNL_SUBSET_TRAIN);
    size_t n_val = (size_t)floor((double)n * s->c->val);
    s->train_idx = calloc(n ? n : 1, sizeof *s->train_idx);
    s->val_idx = calloc(n_val ? n_val : 1, sizeof *s->val_idx);
    size_t *perm = calloc(n ? n : 1, sizeof *perm);
    cnnl_rng *rng = NULL;
    if (!s->train_idx || !s->val_idx || !perm ||
        cnnl_rng_create(&rng, s->c->seed, (uint64_t)CNNL_RNG_SPLIT | 1ULL << 32) != CNNL_OK) {
        free(perm);
        return cl_fail("memory", CNNL_ENOMEM);
    }
    memcpy(perm, idx, n * sizeof *perm);
    for (size_t i = n; n_val > 0 && i > 1; i--) {
        size_t j = (size_t)cnnl_rng_below(rng, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    cnnl_rng_free(rng);
    if (n_val > 0 && n_val >= n) {
        free(perm);
        cl_error("--val %g leaves no training images", s->c->val);
        return -1;
    }
    /* the first n_val of the permutation validate; both parts keep ascending order */
    bool *held = calloc(cnnl_dataset_count(s->ds) ? cnnl_dataset_count(s->ds) : 1, sizeof *held);
    if (held == NULL) {
        free(perm);
        return cl_fail("memory", CNNL_ENOMEM);
    }
    for (size_t i = 0; i < n_val; i++)
        held[perm[i]] = true;
    for (size_t i = 0; i < n; i++) {
        if (held[idx[i]])
            s->val_idx[s->n_val++] = idx[i];
        else
            s->train_idx[s->n_train++] = idx[i];
    }
    free(held);
    free(perm);
    return 0;
}

/* --class-weights: "balanced" (n / (classes * count) over the training images) or a list. */
static int class_weights(run_state *s)
{
    const char *v = s->c->class_weights;
    s->class_weights = calloc((size_t)s->classes, sizeof *s->class_weights);
    if (s->class_weights == NULL)
        return cl_fail("memory", CNNL_ENOMEM);
    if (strcmp(v, "balanced") == 0) {
        size_t *count = calloc((size_t)s->classes, sizeof *count);
        if (count == NULL)
            return cl_fail("memory", CNNL_ENOMEM);
        for (size_t i = 0; i < s->n_train; i++)
            count[cnnl_dataset_label(s->ds, s->train_idx[i])]++;
        for (int k = 0; k < s->classes; k++)
            s->class_weights[k] = count[k] ? (float)((double)s->n_train / ((double)s->classes * (double)count[k])) : 1.0f;
        free(count);
        return 0;
    }
    const char *p = v;
    for (int k = 0; k < s->classes; k++) {
        char *end = NULL;
        double w = strtod(p, &end);
        if (end == p || !(w > 0) || !isfinite(w) || (k + 1 < s->classes ? *end != ',' : *end != '\0')) {
            cl_error("--class-weights: '%s' is not 'balanced' or %d positive numbers separated by commas",
                     v, s->classes);
            return -1;
        }
        s->class_weights[k] = (float)w;
        p = end + 1;
    }
    return 0;
}

static int build(run_state *s)
{
    const run_config *c = s->c;
    s->classes = cnnl_dataset_num_classes(s->ds);
    s->names = calloc((size_t)s->classes, sizeof *s->names);
    if (s->names == NULL)
        return cl_fail("memory", CNNL_ENOMEM);
    for (int k = 0; k < s->classes; k++)
        s->names[k] = cnnl_dataset_class_name(s->ds, k);
    cnnl_split_opts so = cnnl_split_opts_default();
    so.train_fraction = c->split;
    so.seed = c->seed;
    cnnl_status st = cnnl_split_create(&s->split, s->ds, &so);
    if (st != CNNL_OK)
        return cl_fail("split", st);
    if (cnnl_split_count(s->split, CNNL_SUBSET_TRAIN) == 0 || cnnl_split_count(s->split, CNNL_SUBSET_TEST) == 0) {
        cl_error("--split %g leaves an empty training or test set of %zu images", c->split,
                 cnnl_dataset_count(s->ds));
        return EXIT_FAIL;
    }
    if (carve_validation(s) != 0)
        return EXIT_FAIL;
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.batch_size = c->batch;
    lo.seed = c->seed;
    lo.shuffle = true;
    if (c->comm != NULL) { /* every process takes its part of each global batch */
        lo.shard_count = c->comm->size;
        lo.shard_index = c->comm->rank;
    }
    lo.augment = run_augment(c);
    st = cnnl_loader_create(&s->train, s->ds, s->train_idx, s->n_train, &lo);
    lo.shuffle = false;
    lo.augment = cnnl_augment_opts_default();
    if (st == CNNL_OK)
        st = cnnl_loader_create(&s->test, s->ds, cnnl_split_indices(s->split, CNNL_SUBSET_TEST),
                                cnnl_split_count(s->split, CNNL_SUBSET_TEST), &lo);
    if (st == CNNL_OK && s->n_val > 0)
        st = cnnl_loader_create(&s->val, s->ds, s->val_idx, s->n_val, &lo);
    if (st != CNNL_OK)
        return cl_fail("loader", st);
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.classes = s->classes;
    ro.channels = c->channels;
    ro.size = c->size;
    ro.batchnorm = c->batchnorm;
    ro.dropout = (float)c->dropout;
    ro.seed = c->seed;
    if (c->arch)
        st = cnnl_model_from_json_file(&s->model, c->arch, c->seed);
    else
        st = cnnl_report_net_create(&s->model, &ro);
    if (st != CNNL_OK)
        return cl_fail(c->arch ? c->arch : "model", st);
    if (cl_set_precision(s->model, c->bf16, c->arch ? c->arch : "model") != 0)
        return EXIT_FAIL;
    if (c->arch && cnnl_model_num_outputs(s->model) != (size_t)s->classes) {
        cl_error("%s: the network has %zu outputs for %d classes", c->arch, cnnl_model_num_outputs(s->model),
                 s->classes);
        return EXIT_FAIL;
    }
    if (strcmp(c->optimizer, "sgd") == 0) {
        cnnl_sgd_opts so2 = cnnl_sgd_opts_default();
        so2.lr = c->lr;
        so2.momentum = c->momentum;
        so2.weight_decay = c->weight_decay;
        st = cnnl_optimizer_sgd(&s->opt, s->model, &so2);
    } else {
        cnnl_adam_opts ao = cnnl_adam_opts_default();
        ao.lr = c->lr;
        ao.weight_decay = c->weight_decay;
        ao.decoupled = strcmp(c->optimizer, "adamw") == 0;
        st = cnnl_optimizer_adam(&s->opt, s->model, &ao);
    }
    if (st != CNNL_OK)
        return cl_fail("optimizer", st);
    if (c->class_weights != NULL && class_weights(s) != 0)
        return EXIT_FAIL;
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = c->epochs;
    to.keep_best = c->save_best != NULL;
    to.progress = c->quiet ? CNNL_PROGRESS_OFF : CNNL_PROGRESS_AUTO;
    to.on_epoch = on_epoch;
    to.on_checkpoint = c->checkpoint ? on_checkpoint : NULL;
    to.user = s;
    to.comm = c->comm;
    to.schedule = c->schedule;
    to.patience = c->patience;
    to.label_smoothing = c->label_smoothing;
    to.class_weights = s->class_weights;
    to.num_class_weights = s->class_weights ? s->classes : 0;
    st = cnnl_trainer_create(&s->trainer, s->model, s->opt, &to);
    if (st == CNNL_OK && c->sync_bn) /* nothing to do in one process */
        st = cnnl_trainer_set_sync_bn(s->trainer, true);
    if (st != CNNL_OK)
        return cl_fail("trainer", st);
    return 0;
}

static int save_model(const run_state *s, const char *path)
{
    cnnl_save_opts so = cnnl_save_opts_default();
    cnnl_normalization norm;
    cnnl_dataset_normalization(s->ds, &norm); /* recorded so that predictions prepare images alike */
    so.class_names = s->names;
    so.num_classes = s->classes;
    so.norm = &norm;
    cnnl_status st = cnnl_model_save(s->model, path, &so);
    return st == CNNL_OK ? 0 : cl_fail("save", st);
}

/* Final evaluation, metrics, files. */
static int finish(run_state *s, run_result *res)
{
    const run_config *c = s->c;
    cnnl_history *h = cnnl_trainer_history(s->trainer);
    int best_epoch = 0;
    cnnl_history_best(h, &res->best_accuracy, &best_epoch);
    double secs = 0;
    for (size_t i = 0; i < cnnl_history_count(h); i++) {
        cnnl_epoch_stats e;
        cnnl_history_at(h, i, &e);
        secs += e.seconds;
    }
    res->seconds_per_epoch = cnnl_history_count(h) ? secs / (double)cnnl_history_count(h) : 0;
    if (c->print_epochs)
        fprintf(s->out, "Best Test Accuracy: %.2f\n", res->best_accuracy);
    cnnl_confusion *cm = NULL;
    cnnl_status st = cnnl_confusion_create(&cm, s->classes);
    if (st == CNNL_OK)
        st = cnnl_evaluate_comm(s->model, s->test, CNNL_LOSS_CROSS_ENTROPY, cm, c->comm, NULL,
                                &res->final_accuracy);
    if (st != CNNL_OK) {
        cnnl_confusion_free(cm);
        return cl_fail("evaluation", st);
    }
    cnnl_metrics_summary sum;
    cnnl_confusion_summary(cm, &sum);
    res->macro_f1 = sum.macro_f1;
    if (c->print_metrics) {
        fputc('\n', s->out);
        cl_print_metrics(s->out, cm, s->names);
        fflush(s->out);
    }
    int rc = 0;
    if (c->comm != NULL && c->comm->rank != 0) { /* rank 0 writes every file */
        cnnl_confusion_free(cm);
        return 0;
    }
    if (c->confusion_plot && (st = cnnl_plot_confusion(cm, s->names, c->confusion_plot,
                                                       "Confusion matrix, final weights, test split")) != CNNL_OK)
        rc = cl_fail("--confusion-plot", st);
    cnnl_confusion_free(cm);
    if (c->history && (st = cnnl_history_save(h, c->history, CNNL_HISTORY_AUTO)) != CNNL_OK)
        rc = cl_fail("--history", st);
    if (c->plot && cnnl_history_count(h) > 0) {
        char title[160];
        snprintf(title, sizeof title, "cnnlite-train: %s, %dx%d, batch %d, dropout %g%s, seed %" PRIu64,
                 c->data ? "image folder" : "synthetic data", c->size, c->size, c->batch,
                 c->dropout, c->batchnorm ? ", batch norm" : "", c->seed);
        if ((st = cnnl_plot_history(h, c->plot, title)) != CNNL_OK)
            rc = cl_fail("--plot", st);
    }
    if (c->save && save_model(s, c->save) != 0)
        rc = EXIT_FAIL;
    if (c->save_best && cnnl_history_count(h) > 0) {
        if ((st = cnnl_trainer_restore_best(s->trainer)) != CNNL_OK)
            rc = cl_fail("--save-best", st);
        else if (save_model(s, c->save_best) != 0)
            rc = EXIT_FAIL;
    }
    return rc;
}

int run_train_on(const run_config *c, const cnnl_dataset *ds, run_result *res, FILE *out)
{
    memset(res, 0, sizeof *res);
    run_state s = {0};
    s.c = c;
    s.ds = ds;
    s.out = out;
    int rc = build(&s);
    if (rc == 0 && c->resume)
        rc = resume(&s);
    cnnl_status st = CNNL_OK;
    if (rc == 0) {
        st = cnnl_trainer_fit(s.trainer, s.train, s.val ? s.val : s.test);
        if (st == CNNL_EINTERRUPTED) {
            res->interrupted = true;
            if (!c->quiet || c->checkpoint)
                fprintf(stderr, "%s: stopped after the current batch%s%s\n", cl_prog,
                        c->checkpoint ? "; checkpoint saved to " : "", c->checkpoint ? c->checkpoint : "");
            rc = 130;
        } else if (st != CNNL_OK) {
            rc = cl_fail("training", st);
        }
    }
    if (rc == 0)
        rc = finish(&s, res);
    if (s.trainer != NULL) {
        cnnl_history *h = NULL;
        if (cnnl_history_create(&h) == CNNL_OK) {
            cnnl_history *src = cnnl_trainer_history(s.trainer);
            for (size_t i = 0; i < cnnl_history_count(src); i++) {
                cnnl_epoch_stats e;
                cnnl_history_at(src, i, &e);
                cnnl_history_append(h, &e);
            }
        }
        res->history = h;
    }
    state_free(&s);
    return rc;
}

int run_train(const run_config *c, run_result *res, FILE *out)
{
    memset(res, 0, sizeof *res);
    cnnl_dataset *ds = NULL;
    int rc = run_load_data(c, &ds);
    if (rc != 0)
        return rc;
    run_describe(c, ds);
    rc = run_train_on(c, ds, res, out);
    cnnl_dataset_free(ds);
    return rc;
}

void run_result_free(run_result *res)
{
    cnnl_history_free(res->history);
    res->history = NULL;
}
