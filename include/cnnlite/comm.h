/**
 * @file comm.h
 * @brief Communicator interface for data-parallel training over several processes.
 */
#ifndef CNNLITE_COMM_H
#define CNNLITE_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "model.h"
#include "status.h"

/**
 * @defgroup comm Communicator
 * @brief The collective operations data-parallel training needs, as a table of functions.
 *
 * The base library does not depend on any message-passing library: a trainer given a
 * ::cnnl_comm (cnnl_train_opts::comm) calls these functions and nothing else. The add-on
 * library `libcnnlite-mpi` (header `cnnlite/mpi.h`, built when Open MPI is found) fills one
 * from an `MPI_Comm`; a program may also supply its own.
 *
 * Every collective must be called by every process of the communicator in the same order with
 * the same counts, and must give every process bit-identical results (a fixed reduction
 * order), so that processes that start equal stay equal. Functions return #CNNL_OK or an
 * error status with a message (cnnl_last_error()) naming the operation and the cause.
 * @{
 */

/** Element type of a reduction. */
typedef enum cnnl_comm_type {
    CNNL_COMM_F32 = 0, /**< float */
    CNNL_COMM_F64 = 1, /**< double */
    CNNL_COMM_I64 = 2  /**< int64_t */
} cnnl_comm_type;

/** A communicator: this process's rank, the number of processes, and the collectives. */
typedef struct cnnl_comm {
    int rank;  /**< This process's rank, 0..size-1. */
    int size;  /**< Number of processes, >= 1. */
    void *impl;/**< The implementation's state. */
    /** Sum @p count elements of @p type over all processes, in place; blocking. */
    cnnl_status (*allreduce_sum)(const struct cnnl_comm *comm, void *data, size_t count,
                                 cnnl_comm_type type);
    /** Start summing @p count floats in place without waiting; *request receives a handle that
     *  allreduce_wait() completes (and releases). @p data must stay untouched until then. */
    cnnl_status (*allreduce_start)(const struct cnnl_comm *comm, float *data, size_t count,
                                   void **request);
    /** Let started reductions progress while the caller computes (may do nothing). */
    void (*progress)(const struct cnnl_comm *comm);
    /** Wait for a started reduction and release its handle. */
    cnnl_status (*allreduce_wait)(const struct cnnl_comm *comm, void *request);
    /** Copy @p bytes at @p data from process @p root to every process. */
    cnnl_status (*broadcast)(const struct cnnl_comm *comm, void *data, size_t bytes, int root);
    /** Wait until every process has called it. */
    cnnl_status (*barrier)(const struct cnnl_comm *comm);
    /** End every process of the job after printing @p message (which names this rank) on
     *  stderr; used when one process fails and the others would otherwise wait for it. */
    void (*abort)(const struct cnnl_comm *comm, const char *message, int exit_code);
} cnnl_comm;

CNNL_BEGIN_DECLS

/**
 * @brief Check that a communicator is usable: rank within size and every function set.
 * @param comm The communicator (borrowed for the call).
 * @return #CNNL_OK, or #CNNL_EINVAL naming what is missing.
 */
CNNL_API cnnl_status cnnl_comm_check(const cnnl_comm *comm);

/**
 * @brief A 64-bit FNV-1a hash of the trainable parameters of a model, the same on every
 *        process exactly when their parameters are bit-identical.
 * @param model The model (borrowed for the call); see model.h.
 * @param[out] hash Receives the hash.
 * @return #CNNL_OK or #CNNL_EINVAL for NULL arguments.
 */
CNNL_API cnnl_status cnnl_model_params_hash(cnnl_model *model, uint64_t *hash);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_COMM_H */
