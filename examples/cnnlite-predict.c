/* cnnlite-predict: classify image files with a saved model; per image the predicted class and
 * the class probabilities, as text or one JSON object per line. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: cnnlite-predict --model FILE [options] IMAGE...\n"
"Classifies each IMAGE (any format stb_image reads) with a model saved by cnnlite-train and\n"
"prints its predicted class and the class probabilities. An image that cannot be read is\n"
"named in a message, the others are still classified, and the exit status is 1.\n"
"\n"
"  --model FILE       safetensors model file (required)\n"
"  --json             one JSON object per line: {\"file\": ..., \"class\": ..., \"probs\": [...]}\n"
"  --threads N        compute threads (default: all processors)\n"
"  --batchnorm, --size N, --channels C, --classes a,b,c,d\n"
"                     architecture and class names, used only when FILE has no metadata\n"
"                     (defaults: no batch norm, 512, 3, glioma,meningioma,notumor,pituitary)\n"
"  --help             show this text\n");
}

#define MAX_CLASSES 256

typedef struct options {
    const char *model;
    bool json, batchnorm;
    int size, channels, threads;
    char *classes_arg;
    const char *class_names[MAX_CLASSES];
    int num_classes;
    char **images;
    int num_images;
} options;

static int split_classes(options *o, const char *arg)
{
    free(o->classes_arg);
    o->classes_arg = strdup(arg);
    if (o->classes_arg == NULL)
        return -1;
    o->num_classes = 0;
    for (char *p = o->classes_arg, *save = NULL, *tok; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
        if (o->num_classes == MAX_CLASSES) {
            cl_error("--classes: more than %d names", MAX_CLASSES);
            return -1;
        }
        o->class_names[o->num_classes++] = tok;
    }
    if (o->num_classes < 2) {
        cl_error("--classes: give at least two comma-separated names");
        return -1;
    }
    return 0;
}

static int parse(int argc, char **argv, options *o)
{
    static const char *const defaults[4] = {"glioma", "meningioma", "notumor", "pituitary"};
    for (int k = 0; k < 4; k++)
        o->class_names[k] = defaults[k];
    o->num_classes = 4;
    o->size = 512;
    o->channels = 3;
    o->images = calloc((size_t)argc, sizeof *o->images);
    if (o->images == NULL)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *a = argv[i];
        int r;
        if (cl_flag(a, "help")) {
            usage(stdout);
            return 1;
        } else if (cl_flag(a, "json")) {
            o->json = true;
        } else if (cl_flag(a, "batchnorm")) {
            o->batchnorm = true;
        } else if (strcmp(a, "--") == 0) {
            while (++i < argc)
                o->images[o->num_images++] = argv[i];
        } else if ((r = cl_opt_value(argc, argv, &i, "model", &v)) != 0) {
            if (r < 0)
                return -1;
            o->model = v;
        } else if ((r = cl_opt_value(argc, argv, &i, "size", &v)) != 0) {
            if (r < 0 || !cl_parse_int("size", v, 32, 4096, &o->size))
                return -1;
            if (o->size % 32 != 0) {
                cl_error("--size: %d is not a multiple of 32", o->size);
                return -1;
            }
        } else if ((r = cl_opt_value(argc, argv, &i, "channels", &v)) != 0) {
            if (r < 0 || !cl_parse_int("channels", v, 1, 3, &o->channels) || o->channels == 2) {
                if (r > 0 && o->channels == 2)
                    cl_error("--channels: must be 1 or 3");
                return -1;
            }
        } else if ((r = cl_opt_value(argc, argv, &i, "threads", &v)) != 0) {
            if (r < 0 || !cl_parse_int("threads", v, 1, 1024, &o->threads))
                return -1;
        } else if ((r = cl_opt_value(argc, argv, &i, "classes", &v)) != 0) {
            if (r < 0 || split_classes(o, v) != 0)
                return -1;
        } else if (a[0] == '-' && a[1] != '\0') {
            cl_error("unknown option '%s' (see --help)", a);
            return -1;
        } else {
            o->images[o->num_images++] = argv[i];
        }
    }
    if (o->model == NULL) {
        cl_error("--model FILE is required (see --help)");
        return -1;
    }
    if (o->num_images == 0) {
        cl_error("no IMAGE given (see --help)");
        return -1;
    }
    if (o->threads > 0 && cnnl_set_num_threads(o->threads) != CNNL_OK)
        return cl_fail("--threads", CNNL_EINVAL), -1;
    return 0;
}

/* The dataset loader reads folders root/<class>/<file>: the images are linked into a temporary
 * folder as tmp/images/<index>-<name>, so they are decoded, resized and normalised exactly as
 * the training images were. */
typedef struct staging {
    char dir[64];
    char sub[80];
    char **links;
    int n;
} staging;

static void staging_remove(staging *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->links[i] != NULL) {
            unlink(s->links[i]);
            free(s->links[i]);
        }
    free(s->links);
    if (s->sub[0])
        rmdir(s->sub);
    if (s->dir[0])
        rmdir(s->dir);
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Link every readable image; *bad counts those reported as unreadable. */
static int stage(staging *s, const options *o, int *bad)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/cnnlite-predict-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL) {
        s->dir[0] = '\0';
        cl_error("cannot create a temporary folder: %s", strerror(errno));
        return -1;
    }
    snprintf(s->sub, sizeof s->sub, "%s/images", s->dir);
    if (mkdir(s->sub, 0700) != 0) {
        s->sub[0] = '\0';
        cl_error("cannot create a temporary folder: %s", strerror(errno));
        return -1;
    }
    s->links = calloc((size_t)o->num_images, sizeof *s->links);
    if (s->links == NULL)
        return -1;
    s->n = o->num_images;
    for (int i = 0; i < o->num_images; i++) {
        const char *img = o->images[i];
        struct stat st;
        char *real = NULL;
        if (stat(img, &st) != 0 || !S_ISREG(st.st_mode) || access(img, R_OK) != 0 ||
            (real = realpath(img, NULL)) == NULL) {
            cl_error("%s: cannot read: %s", img, errno ? strerror(errno) : "not a regular file");
            ++*bad;
            free(real);
            continue;
        }
        size_t len = strlen(s->sub) + strlen(base_name(img)) + 16;
        s->links[i] = malloc(len);
        if (s->links[i] == NULL) {
            free(real);
            return -1;
        }
        snprintf(s->links[i], len, "%s/%06d-%s", s->sub, i, base_name(img));
        if (symlink(real, s->links[i]) != 0) {
            cl_error("%s: cannot link into %s: %s", img, s->sub, strerror(errno));
            free(s->links[i]);
            s->links[i] = NULL;
            free(real);
            return -1;
        }
        free(real);
    }
    return 0;
}

/* Library warnings name the temporary links; they are replaced by our own messages. */
static void quiet_log(cnnl_log_level level, const char *message, void *user)
{
    (void)level;
    (void)message;
    (void)user;
}

static void softmax(const float *z, int k, double *p)
{
    double m = z[0], s = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > m)
            m = z[j];
    for (int j = 0; j < k; j++)
        s += p[j] = exp((double)z[j] - m);
    for (int j = 0; j < k; j++)
        p[j] /= s;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_result(const options *o, const char *file, const double *p, int k, const char *const *names)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    if (o->json) {
        printf("{\"file\": ");
        print_json_string(file);
        printf(", \"class\": ");
        print_json_string(names[best]);
        printf(", \"probs\": [");
        for (int j = 0; j < k; j++)
            printf("%s%.6g", j ? ", " : "", p[j]);
        printf("]}\n");
    } else {
        printf("%s: %s (%.1f%%)", file, names[best], 100.0 * p[best]);
        for (int j = 0; j < k; j++)
            printf("  %s %.4f", names[j], p[j]);
        putchar('\n');
    }
}

/* Image index from a staged name "images/<index>-<file>". */
static int staged_index(const char *name)
{
    const char *s = strchr(name, '/');
    return s ? atoi(s + 1) : -1;
}

static int classify(const options *o, cnnl_model *model, const cnnl_dataset *ds,
                    const char *const *names, int classes, bool *seen)
{
    cnnl_loader *loader = NULL;
    cnnl_status st = cnnl_loader_create(&loader, ds, NULL, 0, NULL);
    if (st != CNNL_OK)
        return cl_fail("loader", st);
    double *p = calloc((size_t)classes, sizeof *p);
    if (p == NULL)
        st = CNNL_ENOMEM;
    cnnl_model_set_training(model, false);
    size_t pos = 0;
    for (size_t b = 0; st == CNNL_OK && b < cnnl_loader_num_batches(loader); b++) {
        const cnnl_tensor *x = NULL, *y = NULL;
        st = cnnl_loader_batch(loader, b, &x, NULL);
        if (st == CNNL_OK)
            st = cnnl_model_forward(model, x, &y);
        if (st == CNNL_OK && (cnnl_tensor_ndim(y) != 2 || cnnl_tensor_dim(y, 1) != classes))
            st = CNNL_ESHAPE;
        for (int64_t i = 0; st == CNNL_OK && i < cnnl_tensor_dim(y, 0); i++, pos++) {
            int idx = staged_index(cnnl_dataset_name(ds, cnnl_loader_index(loader, pos)));
            if (idx < 0 || idx >= o->num_images)
                continue;
            softmax(cnnl_tensor_data_const(y) + i * classes, classes, p);
            print_result(o, o->images[idx], p, classes, names);
            seen[idx] = true;
        }
    }
    free(p);
    cnnl_loader_free(loader);
    return st == CNNL_OK ? 0 : cl_fail("prediction", st);
}

static int load_model(const options *o, cnnl_model **model, cnnl_model_meta **meta, cnnl_report_opts *ro)
{
    cnnl_report_opts fb = cnnl_report_opts_default();
    fb.batchnorm = o->batchnorm;
    fb.size = o->size;
    fb.channels = o->channels;
    fb.classes = o->num_classes;
    cnnl_status st = cnnl_model_load(model, o->model, &fb, meta);
    if (st != CNNL_OK)
        return cl_fail(o->model, st);
    if (cnnl_model_meta_report_opts(*meta, ro) != CNNL_OK)
        *ro = fb;
    return 0;
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-predict");
    options o;
    memset(&o, 0, sizeof o);
    int r = parse(argc, argv, &o);
    if (r != 0) {
        free(o.images);
        free(o.classes_arg);
        return r > 0 ? 0 : EXIT_USAGE;
    }
    cnnl_model *model = NULL;
    cnnl_model_meta *meta = NULL;
    cnnl_report_opts ro;
    int rc = load_model(&o, &model, &meta, &ro);
    const char *names[MAX_CLASSES];
    if (rc == 0 && ro.classes > MAX_CLASSES) {
        cl_error("%s: %d classes; at most %d supported", o.model, ro.classes, MAX_CLASSES);
        rc = EXIT_FAIL;
    }
    for (int k = 0; rc == 0 && k < ro.classes; k++) {
        const char *m = cnnl_model_meta_class_name(meta, (size_t)k);
        names[k] = m ? m : k < o.num_classes ? o.class_names[k] : "?";
    }
    staging s;
    memset(&s, 0, sizeof s);
    int bad = 0;
    bool *seen = calloc((size_t)o.num_images, sizeof *seen);
    if (rc == 0 && (seen == NULL || stage(&s, &o, &bad) != 0))
        rc = EXIT_FAIL;
    if (rc == 0 && bad < o.num_images) {
        cnnl_dataset_opts dopt = cnnl_dataset_opts_default();
        dopt.size = ro.size;
        dopt.channels = ro.channels;
        cnnl_dataset *ds = NULL;
        cnnl_set_log_callback(quiet_log, NULL);
        cnnl_status st = cnnl_dataset_load_folder(&ds, s.dir, &dopt);
        cnnl_set_log_callback(NULL, NULL);
        if (st == CNNL_OK)
            rc = classify(&o, model, ds, names, ro.classes, seen);
        else if (st != CNNL_EFORMAT) /* EFORMAT: no usable image, each named below */
            rc = cl_fail("images", st);
        cnnl_dataset_free(ds);
        for (int i = 0; rc == 0 && i < o.num_images; i++)
            if (!seen[i] && s.links && s.links[i] != NULL) {
                cl_error("%s: not a readable image (corrupt, truncated or unsupported format)", o.images[i]);
                bad++;
            }
    }
    staging_remove(&s);
    free(seen);
    cnnl_model_meta_free(meta);
    cnnl_model_free(model);
    free(o.images);
    free(o.classes_arg);
    return rc != 0 ? rc : bad > 0 ? EXIT_FAIL : 0;
}
