/* Fuzz target: a checkpoint through cnnl_checkpoint_load() into a small model and its Adam
 * optimizer (small_model.h). Checks the documented contract: on failure no checkpoint
 * handle, a message naming the file, and model and optimizer unchanged. */
#include <stdlib.h>
#include <string.h>

#include "small_model.h"
#include "util.h"

static cnnl_model *model;
static cnnl_optimizer *opt;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

/* A digest of every model and optimizer state value, the step count and the learning rate. */
static uint64_t digest(void)
{
    uint64_t h = 14695981039346656037u;
    cnnl_param_info info;
    for (size_t i = 0; i < cnnl_model_state_count(model); i++) {
        if (cnnl_model_state_at(model, i, &info) != CNNL_OK)
            abort();
        h = info.data ? fnv(h, info.data, info.numel * sizeof(float)) : fnv(h, info.data_i64, info.numel * 8);
    }
    for (size_t i = 0; i < cnnl_optimizer_state_count(opt); i++) {
        if (cnnl_optimizer_state_at(opt, i, &info) != CNNL_OK)
            abort();
        h = info.data ? fnv(h, info.data, info.numel * sizeof(float)) : fnv(h, info.data_i64, info.numel * 8);
    }
    int64_t step = cnnl_optimizer_step_count(opt);
    double lr = cnnl_optimizer_get_lr(opt);
    h = fnv(h, &step, sizeof step);
    return fnv(h, &lr, sizeof lr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model) {
        cnnl_set_log_level(CNNL_LOG_ERROR);
        cnnl_adam_opts ao = cnnl_adam_opts_default();
        if (fuzz_small_model(&model) != CNNL_OK || cnnl_optimizer_adam(&opt, model, &ao) != CNNL_OK)
            abort();
    }
    const char *path = fuzz_write_temp(data, size, ".ckpt");
    uint64_t before = digest();
    cnnl_checkpoint *ck = NULL;
    if (cnnl_checkpoint_load(path, model, opt, &ck) == CNNL_OK) {
        if (!ck)
            abort();
        size_t rows = 0, cols = 0;
        const float *values = NULL;
        /* columns are all named, or (no "history.columns" metadata) none is */
        size_t named = 0;
        if (cnnl_checkpoint_history(ck, &rows, &cols, &values) == CNNL_OK)
            for (size_t c = 0; c < cols; c++)
                named += cnnl_checkpoint_history_column(ck, c) != NULL;
        if (named != 0 && named != cols)
            abort();
        cnnl_checkpoint_free(ck);
    } else if (ck || !cnnl_last_error() || !strstr(cnnl_last_error(), path) || digest() != before) {
        abort();
    }
    return 0;
}
