/*
 * Grad-CAM: one forward pass in evaluation mode, one backward pass of a class score, then the
 * gradient-weighted sum of a layer's output channels, scaled to the input size and to [0, 1].
 * The layer output and its gradient are read from the model's layers after the passes
 * (nn/model_impl.h): the backward pass computes every layer's input gradient above the first
 * layer with parameters and, through cnnl__model_backward_keep(), keeps each in its layer, so the
 * gradient of any later layer's output is there.
 *
 * The weighting is element-wise by default (HiResCAM): with a Flatten + Linear head each map
 * position has its own weights, and their channel mean (the original Grad-CAM) lets positive
 * and negative positions cancel; on the synthetic set it put the peak on the tumour for 10-50%
 * of the images at every layer, the element-wise product for 60-100%. With a global average
 * pool after the layer the gradient is the same at every position and both agree.
 */
#include "cnnlite/explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/tensor_impl.h"
#include "nn/layer.h"
#include "nn/model_impl.h"

/* Whether layer @p l belongs to the block of the convolution before it (its output is that
 * block's output). */
static bool block_follower(const cnnl_layer *l)
{
    const char *k = l->ops->kind;
    return strcmp(k, "BatchNorm2d") == 0 || strcmp(k, "ReLU") == 0 || strcmp(k, "MaxPool2d") == 0;
}

/* Index of the layer named @p name, or an error. */
static cnnl_status find_layer(const cnnl_model *m, const char *name, size_t *index)
{
    static const char who[] = "cnnl_gradcam";
    size_t n = cnnl__model_num_layers(m);
    for (size_t i = 0; i < n; i++) {
        const cnnl_layer *l = cnnl__model_layer(m, i);
        if (l->name != NULL && strcmp(l->name, name) == 0) {
            if (i + 1 >= n)
                return cnnl__error(CNNL_EINVAL, "%s: layer '%s' is the last layer; its output "
                                   "gradient is the class score's", who, name);
            *index = i;
            return CNNL_OK;
        }
    }
    return cnnl__error(CNNL_EINVAL, "%s: the model has no layer named '%s'", who, name);
}

/* Whether the model has a Conv2d layer (checked before any pass). */
static bool has_conv(const cnnl_model *m)
{
    size_t n = cnnl__model_num_layers(m);
    for (size_t i = 0; i < n; i++)
        if (strcmp(cnnl__model_layer(m, i)->ops->kind, "Conv2d") == 0)
            return true;
    return false;
}

/* The default layer, after a forward pass (the outputs' sizes are known then): the output of
 * the deepest convolution block (Conv2d and the BatchNorm2d/ReLU/MaxPool2d layers after it)
 * whose map has at least @p min_map cells per side; if none has, the block with the largest
 * map (the earliest of equals). */
static cnnl_status pick_default(const cnnl_model *m, int min_map, size_t *index)
{
    static const char who[] = "cnnl_gradcam";
    size_t n = cnnl__model_num_layers(m), fine = n, deep = n;
    int64_t fine_side = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cnnl__model_layer(m, i)->ops->kind, "Conv2d") != 0)
            continue;
        size_t k = i;
        while (k + 2 < n && block_follower(cnnl__model_layer(m, k + 1)))
            k++;
        if (k + 1 >= n)
            continue; /* the convolution ends the model */
        const cnnl_tensor *o = cnnl__model_layer(m, k)->out;
        if (o == NULL || o->ndim != 4)
            continue;
        int64_t side = o->shape[2] < o->shape[3] ? o->shape[2] : o->shape[3];
        if (side >= min_map)
            deep = k;
        if (side > fine_side) {
            fine_side = side;
            fine = k;
        }
    }
    if (deep == n)
        deep = fine;
    if (deep == n)
        return cnnl__error(CNNL_EINVAL, "%s: no convolution of the model has a 4-D output with a layer "
                           "after it", who);
    *index = deep;
    return CNNL_OK;
}

/* Bilinear scaling of an h x w map to H x W (pixel centres aligned, edges clamped). */
static void upsample(const float *cam, int h, int w, float *out, int H, int W)
{
    for (int y = 0; y < H; y++) {
        float fy = ((float)y + 0.5f) * (float)h / (float)H - 0.5f;
        fy = fy < 0 ? 0 : fy > (float)(h - 1) ? (float)(h - 1) : fy;
        int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : y0;
        float ay = fy - (float)y0;
        for (int x = 0; x < W; x++) {
            float fx = ((float)x + 0.5f) * (float)w / (float)W - 0.5f;
            fx = fx < 0 ? 0 : fx > (float)(w - 1) ? (float)(w - 1) : fx;
            int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : x0;
            float ax = fx - (float)x0;
            float top = cam[y0 * w + x0] + ax * (cam[y0 * w + x1] - cam[y0 * w + x0]);
            float bot = cam[y1 * w + x0] + ax * (cam[y1 * w + x1] - cam[y1 * w + x0]);
            out[(size_t)y * (size_t)W + (size_t)x] = top + ay * (bot - top);
        }
    }
}

CNNL_API cnnl_gradcam_opts cnnl_gradcam_opts_default(void)
{
    cnnl_gradcam_opts o;
    memset(&o, 0, sizeof o);
    o.layer = NULL;
    o.target = -1;
    o.weighting = CNNL_CAM_ELEMENTWISE;
    o.min_map = CNNL_GRADCAM_MIN_MAP;
    return o;
}

/* The map of layer output @p A (channels x plane) and its gradient @p dA, before the ReLU. */
static void weigh(const float *A, const float *dA, int64_t ch, size_t plane, cnnl_cam_weighting how, float *cam)
{
    memset(cam, 0, plane * sizeof *cam);
    for (int64_t c = 0; c < ch; c++) {
        const float *a = A + (size_t)c * plane, *d = dA + (size_t)c * plane;
        if (how == CNNL_CAM_ELEMENTWISE) {
            for (size_t i = 0; i < plane; i++)
                cam[i] += d[i] * a[i];
            continue;
        }
        double alpha = 0;
        for (size_t i = 0; i < plane; i++)
            alpha += d[i];
        alpha /= (double)plane;
        for (size_t i = 0; i < plane; i++)
            cam[i] += (float)alpha * a[i];
    }
}

CNNL_API cnnl_status cnnl_gradcam_ex(cnnl_model *model, const cnnl_tensor *image, const cnnl_gradcam_opts *opts,
                                     float *heatmap, cnnl_gradcam_info *info)
{
    static const char who[] = "cnnl_gradcam";
    if (model == NULL || image == NULL || heatmap == NULL)
        return cnnl__error(CNNL_EINVAL, "%s: %s is NULL", who, !model ? "model" : !image ? "image" : "heatmap");
    cnnl_gradcam_opts o = opts ? *opts : cnnl_gradcam_opts_default();
    if (image->ndim != 4 || image->shape[0] != 1)
        return cnnl__error(CNNL_EINVAL, "%s: image must be (1, C, H, W)", who);
    if (o.weighting != CNNL_CAM_ELEMENTWISE && o.weighting != CNNL_CAM_CHANNEL_MEAN)
        return cnnl__error(CNNL_EINVAL, "%s: weighting is %d; must be CNNL_CAM_ELEMENTWISE (0) or "
                           "CNNL_CAM_CHANNEL_MEAN (1)", who, (int)o.weighting);
    if (o.layer == NULL && o.min_map < 1)
        return cnnl__error(CNNL_EINVAL, "%s: min_map is %d; must be >= 1", who, o.min_map);
    if (o.target < -1)
        return cnnl__error(CNNL_EINVAL, "%s: target class %d; must be -1 (the predicted class) or a class",
                           who, o.target);
    size_t k = 0;
    cnnl_status st = o.layer != NULL ? find_layer(model, o.layer, &k)
                     : has_conv(model) ? CNNL_OK
                     : cnnl__error(CNNL_EINVAL, "%s: the model has no Conv2d layer", who);
    if (st != CNNL_OK)
        return st;
    bool was_training = cnnl_model_is_training(model);
    st = cnnl_model_set_training(model, false);
    const cnnl_tensor *out = NULL;
    cnnl_tensor *g = NULL;
    float *cam = NULL;
    if (st == CNNL_OK)
        st = cnnl_model_forward(model, image, &out);
    if (st == CNNL_OK && (out->ndim != 2 || out->shape[0] != 1 || out->shape[1] < 1))
        st = cnnl__error(CNNL_ESTATE, "%s: the model's output must be (1, classes)", who);
    if (st == CNNL_OK && o.layer == NULL)
        st = pick_default(model, o.min_map, &k);
    cnnl_gradcam_info res;
    memset(&res, 0, sizeof res);
    int classes = st == CNNL_OK ? (int)out->shape[1] : 0;
    if (st == CNNL_OK) {
        const float *z = out->data;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (z[c] > z[best])
                best = c;
        double sum = 0;
        for (int c = 0; c < classes; c++)
            sum += exp((double)z[c] - (double)z[best]);
        res.predicted = best;
        res.probability = (float)(1.0 / sum);
        res.target = o.target < 0 ? best : o.target;
        if (o.target >= classes)
            st = cnnl__error(CNNL_EINVAL, "%s: target class %d; the model has %d classes", who, o.target, classes);
        else
            res.target_probability = (float)(exp((double)z[res.target] - (double)z[best]) / sum);
    }
    /* d score_target / d logits: one-hot */
    int64_t shape[2] = {1, classes};
    if (st == CNNL_OK)
        st = cnnl_tensor_zeros(&g, 2, shape);
    if (st == CNNL_OK) {
        g->data[res.target] = 1.0f;
        st = cnnl__model_backward_keep(model, g);
    }
    const cnnl_layer *L = cnnl__model_layer(model, k), *next = cnnl__model_layer(model, k + 1);
    const cnnl_tensor *A = st == CNNL_OK ? L->out : NULL, *dA = st == CNNL_OK ? next->gin : NULL;
    if (st == CNNL_OK && (A == NULL || dA == NULL || A->ndim != 4 || dA->numel != A->numel))
        st = cnnl__error(CNNL_EINVAL, "%s: %s has no 4-D output with a gradient", who, cnnl__layer_label(L));
    if (st == CNNL_OK) {
        int64_t ch = A->shape[1], h = A->shape[2], w = A->shape[3];
        size_t plane = (size_t)(h * w);
        cam = malloc(plane * sizeof *cam);
        if (cam == NULL)
            st = cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
        if (st == CNNL_OK) {
            weigh(A->data, dA->data, ch, plane, o.weighting, cam);
            float mx = 0;
            for (size_t i = 0; i < plane; i++) {
                cam[i] = cam[i] > 0 ? cam[i] : 0;
                mx = cam[i] > mx ? cam[i] : mx;
            }
            res.map_height = (int)h;
            res.map_width = (int)w;
            res.raw_max = mx;
            res.layer = L->name;
            int H = (int)image->shape[2], W = (int)image->shape[3];
            upsample(cam, (int)h, (int)w, heatmap, H, W);
            size_t n = (size_t)H * (size_t)W;
            float top = 0; /* the scaled map's maximum: bilinear scaling may miss the cell's */
            for (size_t i = 0; i < n; i++)
                top = heatmap[i] > top ? heatmap[i] : top;
            for (size_t i = 0; i < n; i++)
                heatmap[i] = top > 0 ? heatmap[i] / top : 0.0f;
        }
    }
    cnnl_model_zero_grad(model);
    cnnl_status st2 = cnnl_model_set_training(model, was_training);
    free(cam);
    cnnl_tensor_free(g);
    if (st != CNNL_OK)
        return st;
    if (info != NULL)
        *info = res;
    return st2;
}

CNNL_API cnnl_status cnnl_gradcam(cnnl_model *model, const cnnl_tensor *image, const char *layer, int target,
                                  float *heatmap, cnnl_gradcam_info *info)
{
    cnnl_gradcam_opts o = cnnl_gradcam_opts_default();
    o.layer = layer;
    o.target = target;
    return cnnl_gradcam_ex(model, image, &o, heatmap, info);
}
