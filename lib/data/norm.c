/* Input normalization: the checks shared by datasets and model files, and the lookup table
 * that turns 8-bit pixel values into floats. */
#include <math.h>

#include "core/internal.h"
#include "data/norm.h"

cnnl_status cnnl__norm_check(const char *who, const cnnl_normalization *n)
{
    if (n->kind != CNNL_NORM_UNIT && n->kind != CNNL_NORM_SYMMETRIC && n->kind != CNNL_NORM_MEAN_STD)
        return cnnl__error(CNNL_EINVAL, "%s: unknown normalization kind %d", who, (int)n->kind);
    if (n->kind != CNNL_NORM_MEAN_STD)
        return CNNL_OK;
    if (n->channels < 1 || n->channels > CNNL_NORM_MAX_CHANNELS)
        return cnnl__error(CNNL_EINVAL, "%s: normalization has %d channels; expected 1 to %d", who, n->channels,
                           CNNL_NORM_MAX_CHANNELS);
    for (int c = 0; c < n->channels; c++)
        if (!isfinite(n->mean[c]) || !isfinite(n->std[c]) || !(n->std[c] > 0.0f))
            return cnnl__error(CNNL_EINVAL, "%s: normalization channel %d has mean %g and std %g; need finite, std > 0",
                               who, c, (double)n->mean[c], (double)n->std[c]);
    return CNNL_OK;
}

void cnnl__norm_lut(const cnnl_normalization *n, float lut[3][256])
{
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            if (n->kind == CNNL_NORM_SYMMETRIC)
                x = (x - 0.5f) / 0.5f;
            else if (n->kind == CNNL_NORM_MEAN_STD && c < n->channels)
                x = (x - n->mean[c]) / n->std[c];
            lut[c][v] = x;
        }
}
