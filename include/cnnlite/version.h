/**
 * @file version.h
 * @brief Compile-time and run-time version of libcnnlite.
 */
#ifndef CNNLITE_VERSION_H
#define CNNLITE_VERSION_H

#include "export.h"

/**
 * @defgroup version Version
 * @brief Version macros and the run-time version string.
 *
 * The macros describe the headers a program was compiled against;
 * cnnl_version_string() and cnnl_version_number() describe the library loaded at run time.
 * @{
 */

/** Major version: incremented on incompatible API or ABI changes. */
#define CNNL_VERSION_MAJOR 0
/** Minor version: incremented when features are added compatibly. */
#define CNNL_VERSION_MINOR 1
/** Patch version: incremented for fixes. */
#define CNNL_VERSION_PATCH 0
/** The version as one comparable number: MAJOR*10000 + MINOR*100 + PATCH. */
#define CNNL_VERSION_NUMBER (CNNL_VERSION_MAJOR * 10000 + CNNL_VERSION_MINOR * 100 + CNNL_VERSION_PATCH)

/** @cond INTERNAL */
#define CNNL_STR_(x) #x
#define CNNL_STR(x) CNNL_STR_(x)
/** @endcond */

/** The version as a string literal, e.g. "0.1.0". */
#define CNNL_VERSION_STRING CNNL_STR(CNNL_VERSION_MAJOR) "." CNNL_STR(CNNL_VERSION_MINOR) "." CNNL_STR(CNNL_VERSION_PATCH)

CNNL_BEGIN_DECLS

/**
 * @brief Version of the library loaded at run time.
 * @return A static string such as "0.1.0"; never NULL, never to be freed.
 */
CNNL_API const char *cnnl_version_string(void);

/**
 * @brief Version of the library loaded at run time as MAJOR*10000 + MINOR*100 + PATCH.
 * @return The number; compare with #CNNL_VERSION_NUMBER to detect header/library skew.
 */
CNNL_API unsigned cnnl_version_number(void);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_VERSION_H */
