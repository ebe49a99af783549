/* Axis arithmetic of the SVG pictures, exposed for tests. Not installed. */
#ifndef CNNL_TRAIN_PLOT_INTERNAL_H
#define CNNL_TRAIN_PLOT_INTERNAL_H

typedef struct cnnl__axis {
    double lo, hi, step; /* lo and hi are multiples of step */
} cnnl__axis;

/* Choose a step of 1, 2, 2.5 or 5 times a power of ten giving about @p target_ticks intervals,
 * and widen [lo, hi] to multiples of it. A degenerate range is padded. */
void cnnl__nice_axis(double lo, double hi, int target_ticks, cnnl__axis *axis);

#endif
