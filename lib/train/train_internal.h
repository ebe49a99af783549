/* Helpers shared by the files of lib/train/. Not installed. */
#ifndef CNNL_TRAIN_INTERNAL_H
#define CNNL_TRAIN_INTERNAL_H

/* Monotonic clock in seconds. */
double cnnl__now(void);

#endif
