/**
 * @file export.h
 * @brief Symbol export and C++ linkage macros shared by every public header.
 */
#ifndef CNNLITE_EXPORT_H
#define CNNLITE_EXPORT_H

/** @cond INTERNAL */
#if defined(_WIN32)
#  define CNNL_API
#elif defined(__GNUC__) && defined(CNNL_BUILDING_LIBRARY)
#  define CNNL_API __attribute__((visibility("default")))
#else
#  define CNNL_API
#endif

#ifdef __cplusplus
#  define CNNL_BEGIN_DECLS extern "C" {
#  define CNNL_END_DECLS }
#else
#  define CNNL_BEGIN_DECLS
#  define CNNL_END_DECLS
#endif
/** @endcond */

#endif /* CNNLITE_EXPORT_H */
