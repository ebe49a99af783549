/**
 * @file mpi.h
 * @brief A ::cnnl_comm over MPI (add-on library libcnnlite-mpi, pkg-config cnnlite-mpi).
 */
#ifndef CNNLITE_MPI_H
#define CNNLITE_MPI_H

#include <mpi.h>

#include "comm.h"
#include "export.h"
#include "status.h"

/**
 * @defgroup mpi MPI communicator
 * @brief Data-parallel training over MPI: `mpirun -np N program` with one communicator.
 *
 * libcnnlite-mpi.so.0 is built when meson finds Open MPI (option `mpi`); the base library
 * never depends on MPI. The program calls MPI_Init() (or MPI_Init_thread()) itself, creates
 * a communicator here, gives it to the trainer (cnnl_train_opts::comm) and to sharded loaders
 * (cnnl_loader_opts::shard_count / shard_index), and frees it before MPI_Finalize().
 *
 * Reductions are MPI_Allreduce / MPI_Iallreduce with MPI_SUM on a duplicate of the given
 * communicator with MPI_ERRORS_RETURN, so failures come back as statuses. The abort function
 * prints its message on stderr and calls MPI_Abort(), which ends every process of the job.
 * @{
 */

CNNL_BEGIN_DECLS

/**
 * @brief Create a communicator over (a duplicate of) @p comm.
 * @param[out] out Receives the communicator, owned by the caller (cnnl_mpi_comm_free()).
 * @param comm An MPI communicator, e.g. MPI_COMM_WORLD; MPI must be initialised.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p out; #CNNL_ESTATE if MPI is not initialised;
 *         #CNNL_EIO if MPI fails (the message has MPI's error string); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_mpi_comm_create(cnnl_comm **out, MPI_Comm comm);

/**
 * @brief Free a communicator of cnnl_mpi_comm_create() (a collective, like MPI_Comm_free()).
 * @param comm The communicator, or NULL.
 */
CNNL_API void cnnl_mpi_comm_free(cnnl_comm *comm);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_MPI_H */
