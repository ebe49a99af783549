/**
 * @file threads.h
 * @brief How many threads the library uses.
 */
#ifndef CNNLITE_THREADS_H
#define CNNLITE_THREADS_H

#include "export.h"
#include "status.h"

/**
 * @defgroup threads Threads
 * @brief One setting for every thread the library runs.
 *
 * The library parallelises its own loops (over the images of a batch, or over blocks of one
 * matrix product) on a pool of @c n threads, and keeps the BLAS it calls single-threaded
 * inside each of them, so a process never runs more than @c n compute threads on behalf of
 * libcnnlite (no oversubscription). Results are bit-identical for the same thread count.
 *
 * Distinct handles (models, datasets, optimizers) may be used from distinct threads at the
 * same time; one handle must not be used from two threads at once.
 * @{
 */

CNNL_BEGIN_DECLS

/**
 * @brief Set the number of compute threads.
 * @param n Threads to use, 1..1024; 0 selects the number of online processors.
 * @return #CNNL_OK, or #CNNL_EINVAL if @p n is negative or above 1024.
 */
CNNL_API cnnl_status cnnl_set_num_threads(int n);

/**
 * @brief The number of compute threads in use.
 * @return The value set by cnnl_set_num_threads(), or the default: the CNNL_NUM_THREADS
 *         environment variable if set to a valid value, else the number of online processors.
 */
CNNL_API int cnnl_get_num_threads(void);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_THREADS_H */
