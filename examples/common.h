/* Helpers shared by the example programs: strict option parsing, data set-up, printing. */
#ifndef CNNLITE_EXAMPLES_COMMON_H
#define CNNLITE_EXAMPLES_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cnnlite/cnnlite.h>

/* Exit statuses of the programs. */
enum { EXIT_USAGE = 2, EXIT_FAIL = 1 };

/* Program name used in messages (set by cl_init). */
extern const char *cl_prog;

/* Set the program name and its one-line synopsis (after "usage: "), printed on stderr with
 * every usage error; ignore SIGXFSZ, so that a write past the file size limit is an error. */
void cl_init(const char *prog, const char *synopsis);

/* Check, before any work, that the output file @p path of option --opt can be written: its
 * folder exists and takes a new file. NULL is fine. Prints the problem; returns 0 or
 * EXIT_FAIL. @p opt may be NULL for an operand. */
int cl_check_output(const char *opt, const char *path);

/* Print "prog: message" on stderr (one line). */
void cl_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Report a library failure: "prog: what: last error", naming @p what once (not again when the
 * library's message names it already). Returns EXIT_FAIL. */
int cl_fail(const char *what, cnnl_status st);

/* Option tables for getopt_long: every option is long-only and identified by its name. */
#define CL_ARG(name) {name, required_argument, NULL, 0}
#define CL_FLAG(name) {name, no_argument, NULL, 0}
/* --help and --version, in every program's table. */
#define CL_STD_OPTIONS CL_FLAG("help"), CL_FLAG("version")
#define CL_END_OPTIONS {NULL, 0, NULL, 0}

/* One option read by cl_next_option(): its long name and its value (NULL for a flag). */
typedef struct cl_opt {
    const char *name;
    const char *value;
} cl_opt;

/* The next option of argv by getopt_long (operands are moved after the options; "--" ends
 * them). Returns 1 with *o set, 0 when the options are over (optind is then the first operand),
 * -1 after a message and the synopsis on an unknown option or a missing value. */
int cl_next_option(int argc, char **argv, const struct option *longopts, cl_opt *o);

/* Whether @p o is the option --name. */
bool cl_is(const cl_opt *o, const char *name);

/* --help and --version: print the usage (with @p usage) on stdout or the version line and
 * return true; false for any other option. */
bool cl_std_option(const cl_opt *o, void (*usage)(FILE *));

/* Print the synopsis on stderr after a usage error; returns EXIT_USAGE. */
int cl_usage_error(void);

/* Load the model file @p path; @p fallback gives the architecture of a file without metadata
 * (e.g. one written by PyTorch). *ro receives the architecture the model has, and *norm the
 * recorded input normalization (unchanged when the file records none). Prints the error;
 * returns 0 or EXIT_FAIL. */
int cl_load_model(const char *path, const cnnl_report_opts *fallback, cnnl_model **model,
                  cnnl_model_meta **meta, cnnl_report_opts *ro, cnnl_normalization *norm);

/* Strict number parsing: the whole string must be a number within [min, max]. On failure a
 * message naming the option is printed and false returned. */
bool cl_parse_int(const char *opt, const char *s, long min, long max, int *out);
bool cl_parse_u64(const char *opt, const char *s, uint64_t *out);
bool cl_parse_double(const char *opt, const char *s, double min, double max, bool min_open,
                     bool max_open, double *out);

/* Shortest decimal text that reads back to the same double (as Python's repr). */
void cl_format_double(char *buf, size_t size, double v);

/* The metrics block: confusion matrix rows "name counts...", the one-vs-rest matrices with
 * their metrics, then the report's "Macro Accuracy: ..." lines. */
void cl_print_metrics(FILE *out, const cnnl_confusion *cm, const char *const *names);

/* The report's epoch line. */
void cl_print_epoch(FILE *out, const cnnl_epoch_stats *s, int epochs);

/* --precision: "fp32" or "bf16" into *@p bf16; otherwise a message and false. */
bool cl_parse_precision(const char *s, bool *bf16);

/* Ratio of cnnl_bf16_speed_ratio() below which bfloat16 convolutions cannot be faster than
 * float32 ones (without AMX): they also convert their inputs and weights, so they need a
 * clearly faster dot product to gain anything. */
#define CL_BF16_MIN_RATIO 1.2

/* After a model was switched to bfloat16: print one note on stderr (once per process) when this
 * CPU's bfloat16 dot product is below CL_BF16_MIN_RATIO times its float32 multiply-add rate and
 * oneDNN has no AMX, i.e. when bfloat16 will be slower. Silent when the rate cannot be
 * measured. The first call takes a few milliseconds (the library's probe). */
void cl_bf16_note(void);

/* Switch @p model to bfloat16 convolutions when @p bf16 (cnnl_model_set_precision()), then
 * cl_bf16_note(). On failure prints "prog: what: error" (cl_fail()). Returns 0 or EXIT_FAIL. */
int cl_set_precision(cnnl_model *model, bool bf16, const char *what);

/* Install a SIGINT/SIGTERM handler that calls cnnl_trainer_request_stop() (a second Ctrl-C
 * kills the program as usual). */
void cl_install_stop_handler(void);

#endif
