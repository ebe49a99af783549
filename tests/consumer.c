/* Built against the installed library through pkg-config by install-test.sh. */
#include <cnnlite/cnnlite.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    if (strcmp(cnnl_version_string(), CNNL_VERSION_STRING) != 0) {
        fprintf(stderr, "header/library version skew: %s vs %s\n", CNNL_VERSION_STRING, cnnl_version_string());
        return 1;
    }
    int64_t sa[2] = {2, 3}, sb[2] = {3, 2};
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    cnnl_tensor *ta = NULL, *tb = NULL, *tc = NULL;
    if (cnnl_tensor_from_data(&ta, 2, sa, a) != CNNL_OK || cnnl_tensor_from_data(&tb, 2, sb, b) != CNNL_OK ||
        cnnl_tensor_matmul(&tc, ta, false, tb, false) != CNNL_OK) {
        fprintf(stderr, "error: %s\n", cnnl_last_error());
        return 1;
    }
    const float *c = cnnl_tensor_data_const(tc);
    int ok = c[0] == 58 && c[1] == 64 && c[2] == 139 && c[3] == 154;
    printf("C consumer: libcnnlite %s, matmul %s\n", cnnl_version_string(), ok ? "ok" : "WRONG");
    cnnl_tensor_free(ta);
    cnnl_tensor_free(tb);
    cnnl_tensor_free(tc);
    return ok ? 0 : 1;
}
