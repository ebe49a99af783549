/**
 * @file cnnlite.h
 * @brief Umbrella header: includes every public header of libcnnlite.
 */
#ifndef CNNLITE_CNNLITE_H
#define CNNLITE_CNNLITE_H

#include "version.h"
#include "status.h"
#include "threads.h"
#include "rng.h"
#include "tensor.h"
#include "model.h"
#include "loss.h"
#include "optim.h"
#include "io.h"
#include "data.h"
#include "metrics.h"
#include "train.h"
#include "explain.h"

#endif /* CNNLITE_CNNLITE_H */
