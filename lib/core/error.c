/* Status strings, the thread-local last-error message, and logging. */
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include "cnnlite/status.h"
#include "core/internal.h"

enum { ERROR_BUF = 1024 };

static _Thread_local char last_error[ERROR_BUF];

/* log_lock guards the three settings below and is never held while a callback runs, so that
 * a callback may call any library function (cnnl_get_log_level(), cnnl_set_log_callback(),
 * anything that logs). call_lock, recursive, serializes the callback's calls and is taken by
 * cnnl_set_log_callback() so that the previous callback has returned when it does. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t call_lock;
static pthread_once_t call_lock_once = PTHREAD_ONCE_INIT;
static cnnl_log_fn log_fn;
static void *log_user;
static cnnl_log_level log_level = CNNL_LOG_WARNING;

CNNL_API const char *cnnl_status_string(cnnl_status status)
{
    switch (status) {
    case CNNL_OK: return "success";
    case CNNL_EINVAL: return "invalid argument";
    case CNNL_ENOMEM: return "out of memory";
    case CNNL_EIO: return "input/output error";
    case CNNL_EFORMAT: return "malformed or unsupported file";
    case CNNL_ESHAPE: return "shape mismatch";
    case CNNL_ERANGE: return "value out of range";
    case CNNL_ENUMERIC: return "non-finite value";
    case CNNL_ENOTFOUND: return "not found";
    case CNNL_ESTATE: return "invalid state";
    case CNNL_EINTERRUPTED: return "interrupted";
    case CNNL_EUNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

CNNL_API const char *cnnl_last_error(void)
{
    return last_error;
}

CNNL_API void cnnl_clear_error(void)
{
    last_error[0] = '\0';
}

cnnl_status cnnl__error(cnnl_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

cnnl_status cnnl__error_context(cnnl_status status, const char *fmt, ...)
{
    char prefix[ERROR_BUF / 2], old[ERROR_BUF];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    const char *detail = old[0] ? old : cnnl_status_string(status);
    size_t plen = strlen(prefix);
    /* prefix + ": " + detail, truncated to the buffer */
    memcpy(last_error, prefix, plen);
    last_error[plen] = ':';
    last_error[plen + 1] = ' ';
    size_t room = sizeof last_error - plen - 3;
    size_t dlen = strlen(detail);
    if (dlen > room)
        dlen = room;
    memcpy(last_error + plen + 2, detail, dlen);
    last_error[plen + 2 + dlen] = '\0';
    return status;
}

static void call_lock_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&call_lock, &a);
    pthread_mutexattr_destroy(&a);
}

CNNL_API void cnnl_set_log_callback(cnnl_log_fn fn, void *user)
{
    pthread_once(&call_lock_once, call_lock_init);
    pthread_mutex_lock(&call_lock);
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user;
    pthread_mutex_unlock(&log_lock);
    pthread_mutex_unlock(&call_lock);
}

CNNL_API void cnnl_set_log_level(cnnl_log_level level)
{
    if (level < CNNL_LOG_DEBUG)
        level = CNNL_LOG_DEBUG;
    if (level > CNNL_LOG_ERROR)
        level = CNNL_LOG_ERROR;
    pthread_mutex_lock(&log_lock);
    log_level = level;
    pthread_mutex_unlock(&log_lock);
}

CNNL_API cnnl_log_level cnnl_get_log_level(void)
{
    pthread_mutex_lock(&log_lock);
    cnnl_log_level level = log_level;
    pthread_mutex_unlock(&log_lock);
    return level;
}

static const char *level_name(cnnl_log_level level)
{
    switch (level) {
    case CNNL_LOG_DEBUG: return "debug";
    case CNNL_LOG_INFO: return "info";
    case CNNL_LOG_WARNING: return "warning";
    case CNNL_LOG_ERROR: return "error";
    }
    return "log";
}

void cnnl__log(cnnl_log_level level, const char *fmt, ...)
{
    char msg[ERROR_BUF];
    if (level < cnnl_get_log_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_once(&call_lock_once, call_lock_init);
    pthread_mutex_lock(&call_lock);
    pthread_mutex_lock(&log_lock);
    cnnl_log_fn fn = log_fn;
    void *user = log_user;
    pthread_mutex_unlock(&log_lock);
    if (fn)
        fn(level, msg, user);
    else
        fprintf(stderr, "cnnlite: %s: %s\n", level_name(level), msg);
    pthread_mutex_unlock(&call_lock);
}
