/* Fuzz target: an architecture description (JSON) through the parser and checker, and, when
 * the network it describes is small, through cnnl_model_from_json(), cnnl_model_to_json() and
 * one forward pass. Checks: a failure leaves no model and a message naming the description; a
 * success gives a canonical text that reads back to itself and a network whose output has
 * the announced number of features. */
#include <cnnlite/cnnlite.h>
#include <stdlib.h>
#include <string.h>

#include "nn/arch_impl.h"
#include "util.h"

/* Networks built in full stay below these (the fuzzer's memory limit is not the library's). */
#define SMALL_STATE ((size_t)1 << 20)
#define SMALL_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnnl_set_log_level(CNNL_LOG_ERROR);
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cnnl__arch *a = NULL;
    cnnl_status st = cnnl__arch_parse(text, strlen(text), "description", &a);
    if (st != CNNL_OK) {
        if (a || !strstr(cnnl_last_error(), "description"))
            abort();
        free(text);
        return 0;
    }
    size_t state = cnnl__arch_state_numel(a);
    int64_t in[3] = {0, 0, 0};
    cnnl_model *m = NULL;
    const char *canon = cnnl__arch_json(a);
    bool small = state <= SMALL_STATE;
    if (small && cnnl_model_from_json(&m, canon, 1) != CNNL_OK)
        abort(); /* what the checker accepts must build (memory permitting, which it does here) */
    if (m) {
        const char *again = NULL;
        if (cnnl_model_to_json(m, &again) != CNNL_OK || strcmp(again, canon) != 0)
            abort();
        if (cnnl_model_input_shape(m, in) != CNNL_OK)
            abort();
        if (in[0] * in[1] * in[2] <= SMALL_INPUT) {
            int64_t shape[4] = {2, in[0], in[1], in[2]};
            cnnl_tensor *x = NULL;
            if (cnnl_tensor_create(&x, 4, shape) == CNNL_OK) {
                float *d = cnnl_tensor_data(x);
                for (size_t i = 0; i < cnnl_tensor_numel(x); i++)
                    d[i] = (float)(i % 7) * 0.25f - 0.75f;
                const cnnl_tensor *y = NULL;
                /* Non-finite activations are a legitimate error for hostile option values. */
                st = cnnl_model_forward(m, x, &y);
                if (st == CNNL_OK && cnnl_model_num_outputs(m) > 0 &&
                    cnnl_tensor_numel(y) != 2 * cnnl_model_num_outputs(m))
                    abort();
                if (st != CNNL_OK && st != CNNL_ENUMERIC && st != CNNL_ENOMEM)
                    abort();
            }
            cnnl_tensor_free(x);
        }
    }
    cnnl_model_free(m);
    cnnl__arch_free(a);
    free(text);
    return 0;
}
