/* Shared by model files and checkpoints: building tensor lists to write, matching a file's
 * tensors against a model's or optimizer's state, and the architecture metadata. */
#ifndef CNNL_IO_COMMON_H
#define CNNL_IO_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "cnnlite/io.h"
#include "io/safetensors.h"

/* A list of tensors and metadata to write; owns copies of every name, key and value. */
typedef struct cnnl__st_list {
    cnnl__st_tensor *t;
    size_t nt, cap_t;
    cnnl__st_meta *m;
    size_t nm, cap_m;
    char **owned;
    size_t no, cap_o;
} cnnl__st_list;

/* Append a tensor named prefix+name (copied); @p data is borrowed until the write. */
cnnl_status cnnl__st_list_tensor(cnnl__st_list *l, const char *prefix, const char *name, cnnl_dtype dtype,
                                 int ndim, const int64_t *shape, const void *data);
/* Append a metadata entry (both strings copied). */
cnnl_status cnnl__st_list_meta(cnnl__st_list *l, const char *key, const char *value);
cnnl_status cnnl__st_list_write(const cnnl__st_list *l, const char *path);
void cnnl__st_list_free(cnnl__st_list *l);

/* The state tensors of a model or an optimizer, named prefix+name in a file. */
typedef struct cnnl__state_src {
    void *obj;
    size_t count;
    cnnl_status (*at)(void *obj, size_t index, cnnl_param_info *info);
    const char *prefix;
} cnnl__state_src;

cnnl__state_src cnnl__model_src(cnnl_model *model, const char *prefix);
cnnl__state_src cnnl__optim_src(cnnl_optimizer *opt, const char *prefix);

/* Append every state tensor of @p src to @p l. */
cnnl_status cnnl__state_collect(const cnnl__state_src *src, cnnl__st_list *l);

/* Check the file's tensors named prefix* against @p src: dtypes and shapes must match;
 * missing or unexpected tensors are an error when @p strict, else listed in a warning.
 * Changes nothing. */
cnnl_status cnnl__state_check(const cnnl__st_file *f, const cnnl__state_src *src, bool strict);

/* Copy the file's values into every state tensor of @p src present in the file (after a
 * successful cnnl__state_check()). */
cnnl_status cnnl__state_apply(const cnnl__st_file *f, const cnnl__state_src *src);

/* Metadata keys describing @p model: format, and the builder options when it has them. */
cnnl_status cnnl__arch_meta_add(cnnl__st_list *l, cnnl_model *model, const char *format);

/* Builder options recorded in @p f: CNNL_OK, CNNL_ENOTFOUND (none recorded, no message), or
 * CNNL_EFORMAT for malformed values. */
cnnl_status cnnl__arch_meta_parse(const cnnl__st_file *f, cnnl_report_opts *opts);

/* A JSON array of strings as text (cJSON_free() it); NULL on out of memory. */
char *cnnl__json_string_array(const char *const *items, size_t n);

/* Parse a JSON array of strings; *items receives malloc'd copies (free each and the array). */
cnnl_status cnnl__json_parse_string_array(const char *path, const char *key, const char *text, char ***items,
                                          size_t *n);

struct cJSON;
/* Reads one array entry into a malloc'd string; NULL with *why set if the entry is malformed,
 * NULL with *why untouched if out of memory. */
typedef char *(*cnnl__json_item_reader)(const struct cJSON *item, const char **why);

/* As cnnl__json_parse_string_array(), with @p read turning each entry into a string (NULL:
 * entries must be strings). @p what names an entry in messages ("entry", "file name"). */
cnnl_status cnnl__json_parse_array(const char *path, const char *key, const char *text, const char *what,
                                   cnnl__json_item_reader read, char ***items, size_t *n);

/* Names of user-chosen keys: [A-Za-z0-9_.-]{1,64}. */
bool cnnl__valid_key(const char *key);

#endif
