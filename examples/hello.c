/* cnnlite-hello: the smallest program using libcnnlite; multiplies two matrices. */
#include <cnnlite/cnnlite.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("cnnlite-hello (libcnnlite) %s\n", cnnl_version_string());
        return 0;
    }
    if (argc > 1) {
        FILE *out = strcmp(argv[1], "--help") == 0 ? stdout : stderr;
        fprintf(out, "usage: cnnlite-hello\nMultiplies two 2x2 matrices with libcnnlite.\n");
        return out == stdout ? 0 : 2;
    }
    const int64_t shape[2] = {2, 2};
    const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    cnnl_tensor *ta = NULL, *tb = NULL, *tc = NULL;
    cnnl_status st = cnnl_tensor_from_data(&ta, 2, shape, a);
    if (st == CNNL_OK)
        st = cnnl_tensor_from_data(&tb, 2, shape, b);
    if (st == CNNL_OK)
        st = cnnl_tensor_matmul(&tc, ta, false, tb, false);
    if (st != CNNL_OK) {
        fprintf(stderr, "cnnlite-hello: %s\n", cnnl_last_error());
    } else {
        const float *c = cnnl_tensor_data_const(tc);
        printf("libcnnlite %s, %d threads: [[1 2] [3 4]] x [[5 6] [7 8]] = [[%g %g] [%g %g]]\n",
               cnnl_version_string(), cnnl_get_num_threads(), c[0], c[1], c[2], c[3]);
    }
    cnnl_tensor_free(ta);
    cnnl_tensor_free(tb);
    cnnl_tensor_free(tc);
    return st == CNNL_OK ? 0 : 1;
}
