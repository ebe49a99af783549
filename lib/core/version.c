/* Run-time version. */
#include "cnnlite/version.h"

CNNL_API const char *cnnl_version_string(void)
{
    return CNNL_VERSION_STRING;
}

CNNL_API unsigned cnnl_version_number(void)
{
    return CNNL_VERSION_NUMBER;
}
