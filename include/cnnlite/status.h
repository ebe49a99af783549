/**
 * @file status.h
 * @brief Status codes, the detailed last-error message, and logging.
 */
#ifndef CNNLITE_STATUS_H
#define CNNLITE_STATUS_H

#include "export.h"

/**
 * @defgroup status Status, errors and logging
 * @brief How every function reports failure, and where warnings go.
 *
 * Functions that can fail return a ::cnnl_status. #CNNL_OK is zero; every error is negative.
 * On failure the calling thread's detailed message, which names the file or argument and the
 * problem, is available from cnnl_last_error() until the next failing call on that thread.
 * The library never calls exit(), abort() or assert() on anything a caller or a file can cause.
 * @{
 */

/**
 * @brief Result of a library call. The numeric values are part of the ABI: new codes are
 * only ever appended.
 */
typedef enum cnnl_status {
    CNNL_OK = 0,            /**< Success. */
    CNNL_EINVAL = -1,       /**< An argument is invalid (NULL handle, bad option value, ...). */
    CNNL_ENOMEM = -2,       /**< Memory could not be allocated. */
    CNNL_EIO = -3,          /**< A file could not be opened, read, written or renamed. */
    CNNL_EFORMAT = -4,      /**< A file's content is malformed or unsupported. */
    CNNL_ESHAPE = -5,       /**< Tensor shapes do not fit together. */
    CNNL_ERANGE = -6,       /**< A value is out of its allowed range (e.g. a class index). */
    CNNL_ENUMERIC = -7,     /**< A non-finite value (NaN or infinity) was produced or found. */
    CNNL_ENOTFOUND = -8,    /**< A named item (file, tensor, class) does not exist. */
    CNNL_ESTATE = -9,       /**< The call is not valid in the object's current state. */
    CNNL_EINTERRUPTED = -10,/**< The operation was stopped on request (e.g. Ctrl-C). */
    CNNL_EUNSUPPORTED = -11 /**< The request is valid but not supported by this build. */
} cnnl_status;

/** Severity of a log message. */
typedef enum cnnl_log_level {
    CNNL_LOG_DEBUG = 0,   /**< Diagnostic detail. */
    CNNL_LOG_INFO = 1,    /**< Progress information. */
    CNNL_LOG_WARNING = 2, /**< Something was skipped or adjusted; the operation goes on. */
    CNNL_LOG_ERROR = 3    /**< An operation failed (also returned as a status). */
} cnnl_log_level;

/**
 * @brief Receiver of log messages.
 * @param level Severity of the message.
 * @param message The message without a trailing newline; borrowed, valid only during the call.
 * @param user The pointer given to cnnl_set_log_callback().
 */
typedef void (*cnnl_log_fn)(cnnl_log_level level, const char *message, void *user);

CNNL_BEGIN_DECLS

/**
 * @brief Short, fixed name of a status code.
 * @param status Any value, including unknown ones.
 * @return A static string (e.g. "invalid argument"); never NULL, never to be freed.
 */
CNNL_API const char *cnnl_status_string(cnnl_status status);

/**
 * @brief Detailed message of the calling thread's most recent failure.
 *
 * Each thread has its own message. It is set by every call that returns an error and is
 * left unchanged by successful calls.
 * @return A thread-local string, borrowed: valid until the next failing call on this thread.
 *         Empty ("") when nothing has failed yet. Never NULL.
 */
CNNL_API const char *cnnl_last_error(void);

/**
 * @brief Forget the calling thread's last error message (cnnl_last_error() returns "").
 */
CNNL_API void cnnl_clear_error(void);

/**
 * @brief Route log messages to @p fn instead of standard error.
 *
 * The callback may be called from any library thread, but never concurrently from two
 * threads. It may call any library function, including the log functions and functions that
 * log themselves (their messages reach it, nested). When this function returns, no call of the
 * previous callback is running (unless this is called from inside that callback). Process-wide.
 * @param fn The receiver, or NULL to restore the default (one line per message on stderr).
 * @param user Passed unchanged to @p fn; not owned by the library.
 */
CNNL_API void cnnl_set_log_callback(cnnl_log_fn fn, void *user);

/**
 * @brief Drop messages below @p level (default #CNNL_LOG_WARNING).
 * @param level The lowest severity that is delivered.
 */
CNNL_API void cnnl_set_log_level(cnnl_log_level level);

/**
 * @brief The current minimum log level.
 * @return The level set by cnnl_set_log_level().
 */
CNNL_API cnnl_log_level cnnl_get_log_level(void);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_STATUS_H */
