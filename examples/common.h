/* Helpers shared by the example programs: strict option parsing, data set-up, printing. */
#ifndef CNNLITE_EXAMPLES_COMMON_H
#define CNNLITE_EXAMPLES_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cnnlite/cnnlite.h>

/* Exit statuses of the programs. */
enum { EXIT_USAGE = 2, EXIT_FAIL = 1 };

/* Program name used in messages (set by cl_init). */
extern const char *cl_prog;

void cl_init(const char *prog);

/* Print "prog: message" on stderr (one line). */
void cl_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Report a library failure: "prog: what: last error". Returns EXIT_FAIL. */
int cl_fail(const char *what, cnnl_status st);

/* Matching of "--name VALUE" and "--name=VALUE" at argv[*i]. Returns 1 and sets *value (and
 * advances *i past a separate value) on a match, 0 if argv[*i] is another option, -1 (after a
 * message) if the value is missing. */
int cl_opt_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Whether argv[i] is exactly the flag --name. */
bool cl_flag(const char *arg, const char *name);

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

/* Install a SIGINT/SIGTERM handler that calls cnnl_trainer_request_stop() (a second Ctrl-C
 * kills the program as usual). */
void cl_install_stop_handler(void);

#endif
