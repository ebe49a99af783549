/* Helpers shared by the files of lib/train/. Not installed. */
#ifndef CNNL_TRAIN_INTERNAL_H
#define CNNL_TRAIN_INTERNAL_H

/* Monotonic clock in seconds. */
double cnnl__now(void);

#include "cnnlite/train.h"

/* Check a schedule's options; errors start with @p who. */
cnnl_status cnnl__schedule_check(const char *who, const cnnl_schedule_opts *s);

#endif
