/* Fuzz target: a model file (safetensors + metadata) through cnnl_model_meta_read() and
 * cnnl_model_load() with no fallback options, as cnnlite-predict loads one. */
#include <cnnlite/cnnlite.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void check_failure(const char *path, bool out_is_null)
{
    /* A failure leaves no handle and a message that names the file. */
    if (!out_is_null || !cnnl_last_error() || !strstr(cnnl_last_error(), path))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnnl_set_log_level(CNNL_LOG_ERROR);
    const char *path = fuzz_write_temp(data, size, ".safetensors");

    cnnl_model_meta *meta = NULL;
    if (cnnl_model_meta_read(&meta, path) == CNNL_OK) {
        size_t classes = cnnl_model_meta_class_count(meta);
        for (size_t i = 0; i < classes; i++)
            if (!cnnl_model_meta_class_name(meta, i))
                abort();
        cnnl_normalization norm;
        (void)cnnl_model_meta_normalization(meta, &norm);
        cnnl_model_meta_free(meta);
    } else {
        check_failure(path, meta == NULL);
    }

    cnnl_model *model = NULL;
    meta = NULL;
    if (cnnl_model_load(&model, path, NULL, &meta) == CNNL_OK) {
        if (!model || !meta || cnnl_model_num_params(model) == 0)
            abort();
        cnnl_report_opts ro;
        if (cnnl_model_report_opts(model, &ro) == CNNL_OK && (ro.size < 32 || ro.size % 32 || ro.classes < 1))
            abort();
    } else {
        check_failure(path, model == NULL && meta == NULL);
    }
    cnnl_model_free(model);
    cnnl_model_meta_free(meta);
    return 0;
}
