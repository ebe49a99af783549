/* cnnlite-classify MODEL IMAGE: the smallest complete use of libcnnlite's API. */
#include <cnnlite/cnnlite.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define USAGE "usage: cnnlite-classify MODEL.safetensors IMAGE\n"

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf(USAGE "Prints the class the model predicts for IMAGE and its probability.\n");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("cnnlite-classify (libcnnlite) %s\n", cnnl_version_string());
        return 0;
    }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        fprintf(stderr, USAGE);
        return 2;
    }
    cnnl_model *model = NULL;
    cnnl_model_meta *meta = NULL;
    cnnl_tensor *image = NULL;
    const cnnl_tensor *logits = NULL;
    int64_t input[3] = {0, 0, 0}; /* channels, height, width */
    cnnl_dataset_opts prep = cnnl_dataset_opts_default();

    /* The file records the network, its input size and channels, and the normalization. */
    cnnl_status st = cnnl_model_load(&model, argv[1], NULL, &meta);
    if (st == CNNL_OK)
        st = cnnl_model_input_shape(model, input);
    if (st == CNNL_OK && cnnl_model_meta_normalization(meta, &prep.norm) != CNNL_OK)
        prep.norm.kind = CNNL_NORM_UNIT; /* files from PyTorch record none: [0, 1] */
    prep.channels = (int)input[0];
    prep.size = (int)input[1]; /* square images */
    if (st == CNNL_OK)
        st = cnnl_image_load(&image, argv[2], &prep); /* (1, C, H, W), preprocessed as in training */
    if (st == CNNL_OK)
        st = cnnl_model_set_training(model, false);
    if (st == CNNL_OK)
        st = cnnl_model_forward(model, image, &logits); /* borrowed: (1, classes) */
    if (st != CNNL_OK) {
        fprintf(stderr, "cnnlite-classify: %s\n", cnnl_last_error());
    } else {
        const float *z = cnnl_tensor_data_const(logits);
        int classes = (int)cnnl_tensor_dim(logits, 1), best = 0;
        for (int k = 1; k < classes; k++)
            if (z[k] > z[best])
                best = k;
        double sum = 0.0; /* softmax, shifted by the largest logit */
        for (int k = 0; k < classes; k++)
            sum += exp((double)(z[k] - z[best]));
        const char *name = cnnl_model_meta_class_name(meta, (size_t)best);
        printf("%s: %s (p = %.3f)\n", argv[2], name ? name : "?", 1.0 / sum);
    }
    cnnl_tensor_free(image); /* every _free accepts NULL */
    cnnl_model_meta_free(meta);
    cnnl_model_free(model);
    return st == CNNL_OK ? 0 : 1;
}
