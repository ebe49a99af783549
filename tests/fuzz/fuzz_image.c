/* Fuzz target: one image file through cnnl_image_load(), the same checks, decoder and resize
 * as the dataset loader (every format stb_image reads, and JPEG). */
#include <cnnlite/cnnlite.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnnl_set_log_level(CNNL_LOG_ERROR);
    cnnl_dataset_opts opts = cnnl_dataset_opts_default();
    opts.size = 16;    /* small output: time goes into decoding, not resizing */
    opts.max_dim = 4096; /* keeps one input's memory within the fuzzer's limit */
    opts.channels = size > 0 && (data[0] & 1) ? 1 : 3;
    const char *path = fuzz_write_temp(data, size, ".img");
    cnnl_tensor *t = NULL;
    cnnl_status st = cnnl_image_load(&t, path, &opts);
    if (st == CNNL_OK) {
        /* A decoded image is opts.channels x 16 x 16 of finite values in [0, 1]. */
        if (!t || cnnl_tensor_numel(t) != (size_t)opts.channels * 16 * 16)
            abort();
        const float *p = cnnl_tensor_data_const(t);
        for (size_t i = 0; i < cnnl_tensor_numel(t); i++)
            if (!(p[i] >= 0.0f && p[i] <= 1.0f))
                abort();
    } else if (t || !cnnl_last_error() || !strstr(cnnl_last_error(), path)) {
        abort(); /* a failure leaves no tensor and names the file */
    }
    cnnl_tensor_free(t);
    return 0;
}
