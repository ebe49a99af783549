/* Prints what cnnl_bf16_speed_ratio() says on this CPU, for bf16_note.sh: "RATIO AMX" (AMX 0 or
 * 1), or "unsupported" when it returns CNNL_EUNSUPPORTED. Exit status 1 on any other error. */
#include <stdio.h>

#include <cnnlite/cnnlite.h>

int main(void)
{
    double ratio = 0.0;
    bool amx = false;
    cnnl_status st = cnnl_bf16_speed_ratio(&ratio, &amx);
    if (st == CNNL_EUNSUPPORTED) {
        printf("unsupported\n");
        return 0;
    }
    if (st != CNNL_OK) {
        fprintf(stderr, "bf16_ratio: %s\n", cnnl_last_error());
        return 1;
    }
    printf("%.4f %d\n", ratio, amx ? 1 : 0);
    return 0;
}
