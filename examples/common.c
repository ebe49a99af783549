/* Helpers shared by the example programs. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cl_prog = "cnnlite";
static const char *cl_synopsis = "[options]";

/* Set once the library reported running out of memory (see cl_fail()). */
static volatile int out_of_memory;

/* Exit handler: after an out-of-memory failure, leave without running the libraries'
 * destructors. OpenBLAS's shutdown joins its server threads, and a server thread that could
 * not get its work buffer (under `ulimit -v`) retries forever, so a normal exit would hang
 * after the message was printed. */
static void exit_after_oom(int status, void *arg)
{
    (void)arg;
    if (out_of_memory) {
        fflush(NULL);
        _exit(status ? status : EXIT_FAIL);
    }
}

void cl_init(const char *prog, const char *synopsis)
{
    cl_prog = prog;
    cl_synopsis = synopsis;
    on_exit(exit_after_oom, NULL);
    /* past the file size limit (ulimit -f) a write then fails with EFBIG, which the library
     * reports with the file's name and cleans up after, instead of the signal killing us */
    signal(SIGXFSZ, SIG_IGN);
}

int cl_check_output(const char *opt, const char *path)
{
    if (path == NULL)
        return 0;
    struct stat st;
    if (path[0] == '\0' || path[strlen(path) - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        cl_error("%s%s%s%s: is a folder, not a file", opt ? "--" : "", opt ? opt : "", opt ? ": " : "", path);
        return EXIT_FAIL;
    }
    const char *slash = strrchr(path, '/');
    size_t dlen = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *probe = malloc(dlen + 32);
    if (probe == NULL) {
        cl_error("out of memory");
        return EXIT_FAIL;
    }
    snprintf(probe, dlen + 32, "%.*s/.cnnlite-probe-%ld", (int)dlen, slash ? path : ".", (long)getpid());
    /* create and remove a file where the output will go: catches a missing folder, a file in
     * the way, a read-only file system and permissions, whoever runs it */
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int err = errno;
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    free(probe);
    if (fd < 0 && err != EEXIST) {
        cl_error("%s%s%s%s: cannot write in %.*s: %s", opt ? "--" : "", opt ? opt : "", opt ? ": " : "", path,
                 (int)dlen, slash ? path : ".", strerror(err));
        return EXIT_FAIL;
    }
    return 0;
}

int cl_usage_error(void)
{
    fprintf(stderr, "usage: %s %s (see --help)\n", cl_prog, cl_synopsis);
    return EXIT_USAGE;
}

void cl_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cl_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cl_fail(const char *what, cnnl_status st)
{
    if (st == CNNL_ENOMEM)
        out_of_memory = 1;
    const char *detail = cnnl_last_error();
    if (detail[0] == '\0') {
        cl_error("%s: %s", what, cnnl_status_string(st));
        return EXIT_FAIL;
    }
    /* "cnnl_function: " names the library's function, not the user's problem */
    size_t fn = strncmp(detail, "cnnl_", 5) == 0 ? strspn(detail, "abcdefghijklmnopqrstuvwxyz0123456789_") : 0;
    if (fn > 0 && strncmp(detail + fn, ": ", 2) == 0)
        detail += fn + 2;
    /* the library's messages name the file already: name it once */
    if (strstr(detail, what) != NULL)
        cl_error("%s", detail);
    else
        cl_error("%s: %s", what, detail);
    return EXIT_FAIL;
}

int cl_next_option(int argc, char **argv, const struct option *longopts, cl_opt *o)
{
    opterr = 0; /* messages below, with the program's name rather than argv[0] */
    int index = -1;
    int prev = optind;
    int c = getopt_long(argc, argv, ":", longopts, &index);
    if (c == -1)
        return 0;
    if (c == 0 && index >= 0) {
        o->name = longopts[index].name;
        o->value = longopts[index].has_arg == no_argument ? NULL : optarg;
        return 1;
    }
    /* the option getopt stopped at */
    const char *arg = optind > prev && optind - 1 < argc ? argv[optind - 1] : argv[prev];
    if (c == ':') {
        cl_error("option %s needs a value", arg);
        cl_usage_error();
        return -1;
    }
    if (strncmp(arg, "--", 2) == 0 && strchr(arg, '=') != NULL) {
        size_t n = (size_t)(strchr(arg, '=') - arg - 2);
        for (const struct option *p = longopts; p->name != NULL; p++)
            if (strlen(p->name) == n && strncmp(p->name, arg + 2, n) == 0) {
                cl_error("option --%s takes no value", p->name);
                cl_usage_error();
                return -1;
            }
    }
    cl_error("unknown option '%s'", arg);
    cl_usage_error();
    return -1;
}

bool cl_is(const cl_opt *o, const char *name)
{
    return strcmp(o->name, name) == 0;
}

bool cl_std_option(const cl_opt *o, void (*usage)(FILE *))
{
    if (cl_is(o, "help")) {
        usage(stdout);
        return true;
    }
    if (cl_is(o, "version")) {
        printf("%s (libcnnlite) %s\n", cl_prog, cnnl_version_string());
        return true;
    }
    return false;
}

int cl_load_model(const char *path, const cnnl_report_opts *fallback, cnnl_model **model,
                  cnnl_model_meta **meta, cnnl_report_opts *ro, cnnl_normalization *norm)
{
    cnnl_status st = cnnl_model_load(model, path, fallback, meta);
    if (st != CNNL_OK)
        return cl_fail(path, st);
    if (cnnl_model_meta_report_opts(*meta, ro) != CNNL_OK)
        *ro = *fallback;
    int64_t in[3];
    if (cnnl_model_input_shape(*model, in) == CNNL_OK) { /* any network: its own geometry */
        if (in[1] != in[2] || cnnl_model_num_outputs(*model) == 0) {
            cl_error("%s: the network takes %lldx%lld inputs%s; the programs need square images and class "
                     "outputs", path, (long long)in[1], (long long)in[2],
                     cnnl_model_num_outputs(*model) == 0 ? " and has no flat output" : "");
            cnnl_model_free(*model);
            cnnl_model_meta_free(*meta);
            *model = NULL;
            *meta = NULL;
            return EXIT_FAIL;
        }
        ro->channels = (int)in[0];
        ro->size = (int)in[1];
        ro->classes = (int)cnnl_model_num_outputs(*model);
    }
    cnnl_normalization recorded;
    if (cnnl_model_meta_normalization(*meta, &recorded) == CNNL_OK)
        *norm = recorded;
    return 0;
}

bool cl_parse_int(const char *opt, const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || end == s || s[0] == ' ') {
        cl_error("--%s: '%s' is not an integer", opt, s);
        return false;
    }
    if (v < min || v > max) {
        cl_error("--%s: %ld is out of range; must be %ld..%ld", opt, v, min, max);
        return false;
    }
    *out = (int)v;
    return true;
}

bool cl_parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (s[0] < '0' || s[0] > '9') {
        cl_error("--%s: '%s' is not a non-negative integer", opt, s);
        return false;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE) {
        cl_error("--%s: '%s' is not a non-negative integer below 2^64", opt, s);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

bool cl_parse_double(const char *opt, const char *s, double min, double max, bool min_open,
                     bool max_open, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || s[0] == ' ' || *end != '\0' || end == s || errno == ERANGE || !isfinite(v)) {
        cl_error("--%s: '%s' is not a number", opt, s);
        return false;
    }
    if ((min_open ? v <= min : v < min) || (max_open ? v >= max : v > max)) {
        cl_error("--%s: %g is out of range; must be in %c%g, %g%c", opt, v, min_open ? '(' : '[',
                 min, max, max_open ? ')' : ']');
        return false;
    }
    *out = v;
    return true;
}

void cl_format_double(char *buf, size_t size, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* Python prints a float with a fraction part: 1.0, not 1 */
    if (isfinite(v) && strpbrk(buf, ".en") == NULL && strlen(buf) + 3 <= size)
        strcat(buf, ".0");
}

static int name_width(const cnnl_confusion *cm, const char *const *names)
{
    int w = 10;
    for (int k = 0; k < cnnl_confusion_classes(cm); k++)
        if ((int)strlen(names[k]) > w)
            w = (int)strlen(names[k]);
    return w;
}

static void print_confusion(FILE *out, const cnnl_confusion *cm, const char *const *names, int w)
{
    int k = cnnl_confusion_classes(cm);
    fprintf(out, "Confusion Matrix (rows: true class, columns: predicted class):\n");
    fprintf(out, "%-*s", w, "");
    for (int p = 0; p < k; p++)
        fprintf(out, " %*s", w, names[p]);
    fputc('\n', out);
    for (int t = 0; t < k; t++) {
        fprintf(out, "%-*s", w, names[t]);
        for (int p = 0; p < k; p++)
            fprintf(out, " %*lld", w, (long long)cnnl_confusion_get(cm, t, p));
        fputc('\n', out);
    }
}

static void print_one_vs_rest(FILE *out, const cnnl_confusion *cm, const char *const *names, int w)
{
    fprintf(out, "\nOne-vs-rest matrices ([[TP FN] [FP TN]]: rows true yes/no, columns predicted yes/no):\n");
    for (int c = 0; c < cnnl_confusion_classes(cm); c++) {
        cnnl_class_metrics m;
        cnnl_confusion_class(cm, c, &m);
        fprintf(out, "%-*s [[%4lld %4lld]  Accuracy: %.4f  Precision: %.4f  Recall: %.4f  F1: %.4f\n",
                w, names[c], (long long)m.tp, (long long)m.fn, m.accuracy, m.precision, m.recall, m.f1);
        fprintf(out, "%-*s  [%4lld %4lld]]\n", w, "", (long long)m.fp, (long long)m.tn);
    }
}

void cl_print_metrics(FILE *out, const cnnl_confusion *cm, const char *const *names)
{
    int w = name_width(cm, names);
    print_confusion(out, cm, names, w);
    print_one_vs_rest(out, cm, names, w);
    cnnl_metrics_summary s;
    cnnl_confusion_summary(cm, &s);
    char a[40], p[40], r[40], f[40];
    cl_format_double(a, sizeof a, s.macro_accuracy);
    cl_format_double(p, sizeof p, s.macro_precision);
    cl_format_double(r, sizeof r, s.macro_recall);
    cl_format_double(f, sizeof f, s.macro_f1);
    fprintf(out, "\nTest Accuracy: %.2f%% (%lld of %lld)\n", 100.0 * s.accuracy,
            (long long)s.correct, (long long)s.total);
    fprintf(out, "Macro Accuracy: %s\nMacro Precision: %s\nMacro Recall: %s\nMacro F1 Score: %s\n",
            a, p, r, f);
}

void cl_print_epoch(FILE *out, const cnnl_epoch_stats *s, int epochs)
{
    fprintf(out, "Epoch [%d/%d], Train Loss: %.2f, Train Accuracy: %.2f%%, Test Loss: %.2f, "
                 "Test Accuracy: %.2f%%\n",
            s->epoch, epochs, s->train_loss, s->train_accuracy, s->test_loss, s->test_accuracy);
    fflush(out);
}

static void on_signal(int sig)
{
    (void)sig;
    cnnl_trainer_request_stop();
}

void cl_install_stop_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the program the usual way */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool cl_parse_precision(const char *s, bool *bf16)
{
    if (strcmp(s, "fp32") != 0 && strcmp(s, "bf16") != 0) {
        cl_error("--precision '%s': give fp32 or bf16", s);
        return false;
    }
    *bf16 = strcmp(s, "bf16") == 0;
    return true;
}

void cl_bf16_note(void)
{
    /* the programs call this from their main thread only */
    static bool shown;
    double ratio = 0.0;
    bool amx = false;
    if (shown || cnnl_bf16_speed_ratio(&ratio, &amx) != CNNL_OK || amx || ratio >= CL_BF16_MIN_RATIO)
        return;
    shown = true;
    fprintf(stderr,
            "%s: note: bfloat16 is not faster than float32 on this CPU: its bf16 dot product runs at %.2fx the "
            "float32 multiply-add rate (no AMX); expect bf16 to be slower\n",
            cl_prog, ratio);
}

int cl_set_precision(cnnl_model *model, bool bf16, const char *what)
{
    if (!bf16)
        return 0;
    cnnl_status st = cnnl_model_set_precision(model, CNNL_PRECISION_BF16);
    if (st != CNNL_OK)
        return cl_fail(what, st);
    cl_bf16_note();
    return 0;
}
