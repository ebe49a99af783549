/*
 * Grad-CAM checked where the truth is known: for a network trained on the synthetic MRI set,
 * the heat map's peak falls inside the tumour the generator planted for at least 80% of the
 * correctly classified tumour images (the goal of issue 12), far more often than a point drawn
 * at random would (the share of the image the tumour covers), and more often than with the
 * original channel-mean weighting. Also the default layer, the map's range, a chosen layer and
 * the errors.
 */
#include "test_util.h"

#include "data/data_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COUNT = 800, SIZE = 128, EPOCHS = 10 };

/* Seed of the synthetic set, split, initialisation and shuffling: 0, or CNNLITE_TEST_SEED (to
 * check that the figures do not depend on one lucky seed). */
static uint64_t test_seed(void)
{
    const char *s = getenv("CNNLITE_TEST_SEED");
    return s != NULL ? strtoull(s, NULL, 10) : 0;
}

static void test_peak_inside_tumour(void **state)
{
    (void)state;
    uint64_t seed = test_seed();
    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = COUNT;
    syn.seed = seed;
    cnnl_dataset_opts o = cnnl_dataset_opts_default();
    o.size = SIZE;
    cnnl_dataset *ds = NULL;
    assert_ok(cnnl_dataset_synthetic(&ds, &syn, &o));
    cnnl_split *sp = NULL;
    cnnl_split_opts so = cnnl_split_opts_default();
    so.seed = seed;
    assert_ok(cnnl_split_create(&sp, ds, &so));
    cnnl_loader_opts lo = cnnl_loader_opts_default();
    lo.shuffle = true;
    lo.seed = seed;
    cnnl_loader *train = NULL;
    assert_ok(cnnl_loader_create(&train, ds, cnnl_split_indices(sp, CNNL_SUBSET_TRAIN),
                                 cnnl_split_count(sp, CNNL_SUBSET_TRAIN), &lo));
    cnnl_report_opts ro = cnnl_report_opts_default();
    ro.size = SIZE;
    ro.batchnorm = true;
    ro.seed = seed;
    cnnl_model *m = NULL;
    assert_ok(cnnl_report_net_create(&m, &ro));
    cnnl_train_opts to = cnnl_train_opts_default();
    to.epochs = EPOCHS;
    to.progress = CNNL_PROGRESS_OFF;
    cnnl_trainer *t = NULL;
    assert_ok(cnnl_trainer_create(&t, m, NULL, &to));
    assert_ok(cnnl_trainer_fit(t, train, NULL));

    size_t n = cnnl_split_count(sp, CNNL_SUBSET_TEST);
    const size_t *idx = cnnl_split_indices(sp, CNNL_SUBSET_TEST);
    int64_t shape[4] = {1, 3, SIZE, SIZE};
    cnnl_tensor *x = NULL;
    assert_ok(cnnl_tensor_create(&x, 4, shape));
    float *heat = malloc(SIZE * SIZE * sizeof *heat);
    assert_non_null(heat);
    int tumours = 0, inside = 0, inside_mask = 0, inside_mean = 0, correct = 0;
    double chance = 0;
    for (size_t i = 0; i < n; i++) {
        int label = cnnl_dataset_label(ds, idx[i]);
        assert_ok(cnnl_dataset_get(ds, idx[i], cnnl_tensor_data(x)));
        cnnl_gradcam_info info;
        assert_ok(cnnl_gradcam(m, x, NULL, -1, heat, &info));
        assert_int_equal(info.target, info.predicted);
        /* the default layer: the deepest block with a map of at least 16x16, the second
         * block's pooled output at 128x128 (128 / 2 / 2 / 2) */
        assert_string_equal(info.layer, "features.8");
        assert_int_equal(info.map_height, SIZE / 8);
        assert_int_equal(info.map_width, SIZE / 8);
        assert_true(info.probability > 0.0f && info.probability <= 1.0f);
        correct += info.predicted == label;
        cnnl_synthetic_region r;
        assert_ok(cnnl_synthetic_tumour(&syn, idx[i], SIZE, &r));
        assert_int_equal(r.present, label != 2); /* notumor */
        if (!r.present || info.predicted != label)
            continue;
        /* the map is in [0, 1] with its maximum at 1 */
        size_t peak = 0;
        float lo_v = 1, hi_v = 0;
        for (size_t p = 0; p < SIZE * SIZE; p++) {
            if (heat[p] > heat[peak])
                peak = p;
            lo_v = fminf(lo_v, heat[p]);
            hi_v = fmaxf(hi_v, heat[p]);
        }
        assert_true(lo_v >= 0.0f);
        if (info.raw_max > 0)
            assert_float_equal(hi_v, 1.0f, 1e-6);
        float px = (float)(peak % SIZE), py = (float)(peak / SIZE);
        tumours++;
        inside += hypotf(px - r.x, py - r.y) <= r.radius;
        /* stricter: inside the mass itself, not only the circle that covers it */
        bool in_mass = false;
        assert_ok(cnnl__synthetic_in_tumour(&syn, idx[i], SIZE, px, py, &in_mass));
        inside_mask += in_mass;
        /* the original Grad-CAM weighting on the same layer */
        cnnl_gradcam_opts go = cnnl_gradcam_opts_default();
        go.weighting = CNNL_CAM_CHANNEL_MEAN;
        cnnl_gradcam_info mi;
        assert_ok(cnnl_gradcam_ex(m, x, &go, heat, &mi));
        assert_string_equal(mi.layer, "features.8");
        peak = 0;
        for (size_t p = 1; p < SIZE * SIZE; p++)
            if (heat[p] > heat[peak])
                peak = p;
        inside_mean += hypotf((float)(peak % SIZE) - r.x, (float)(peak / SIZE) - r.y) <= r.radius;
        /* a random point's chance: the share of the image inside the circle */
        int covered = 0;
        for (int yy = 0; yy < SIZE; yy++)
            for (int xx = 0; xx < SIZE; xx++)
                covered += hypotf((float)xx - r.x, (float)yy - r.y) <= r.radius;
        chance += (double)covered / (SIZE * SIZE);
    }
    double acc = 100.0 * correct / (double)n, share = 100.0 * inside / (double)(tumours ? tumours : 1);
    double share_mean = 100.0 * inside_mean / (double)(tumours ? tumours : 1);
    double share_mask = 100.0 * inside_mask / (double)(tumours ? tumours : 1);
    chance = 100.0 * chance / (double)(tumours ? tumours : 1);
    printf("gradcam: seed %llu, test accuracy %.2f%%; peak inside the tumour for %d of %d correctly classified "
           "tumour images (%.1f%%; inside the mass itself: %.1f%%; channel-mean weighting: %.1f%%; a random "
           "point: %.1f%%)\n", (unsigned long long)seed, acc, inside, tumours, share, share_mask, share_mean, chance);
    assert_true(acc >= 80.0);
    assert_true(tumours >= 50);
    assert_true(share >= 80.0);
    assert_true(share >= 3.0 * chance);
    assert_true(inside > inside_mean);

    /* errors */
    cnnl_gradcam_info info;
    cnnl_gradcam_opts bad = cnnl_gradcam_opts_default();
    bad.weighting = (cnnl_cam_weighting)7;
    assert_status_msg(cnnl_gradcam_ex(m, x, &bad, heat, &info), CNNL_EINVAL, "weighting is 7");
    bad = cnnl_gradcam_opts_default();
    bad.min_map = 0;
    assert_status_msg(cnnl_gradcam_ex(m, x, &bad, heat, &info), CNNL_EINVAL, "min_map is 0");
    assert_status_msg(cnnl_gradcam(m, x, NULL, -2, heat, &info), CNNL_EINVAL, "target class -2");
    assert_status_msg(cnnl_gradcam(m, x, "features.99", -1, heat, &info), CNNL_EINVAL, "no layer named 'features.99'");
    assert_status_msg(cnnl_gradcam(m, x, NULL, 4, heat, &info), CNNL_EINVAL, "target class 4");
    assert_status_msg(cnnl_gradcam(NULL, x, NULL, -1, heat, &info), CNNL_EINVAL, "model is NULL");
    /* a chosen layer: the first convolution block's output (after the input's 2x2 average pool
     * and the block's 2x2 max pool) gives a finer map */
    assert_ok(cnnl_gradcam(m, x, "features.4", 0, heat, &info));
    assert_int_equal(info.target, 0);
    assert_string_equal(info.layer, "features.4");
    assert_int_equal(info.map_height, SIZE / 4);
    /* min_map 1: the last block (4x4 at 128x128); a min_map no block reaches: the finest */
    cnnl_gradcam_opts go = cnnl_gradcam_opts_default();
    go.min_map = 1;
    assert_ok(cnnl_gradcam_ex(m, x, &go, heat, &info));
    assert_string_equal(info.layer, "features.16");
    assert_int_equal(info.map_height, SIZE / 32);
    go.min_map = 1000;
    assert_ok(cnnl_gradcam_ex(m, x, &go, heat, &info));
    assert_string_equal(info.layer, "features.4");
    cnnl_model *dense = NULL;
    cnnl_layer *fl = NULL, *lin = NULL;
    assert_ok(cnnl_model_create(&dense));
    assert_ok(cnnl_flatten_create(&fl));
    assert_ok(cnnl_model_add(dense, "0", fl));
    assert_ok(cnnl_linear_create(&lin, 3 * SIZE * SIZE, 4, true));
    assert_ok(cnnl_model_add(dense, "1", lin));
    assert_status_msg(cnnl_gradcam(dense, x, NULL, -1, heat, &info), CNNL_EINVAL, "no Conv2d");
    cnnl_model_free(dense);
    free(heat);
    cnnl_tensor_free(x);
    cnnl_trainer_free(t);
    cnnl_model_free(m);
    cnnl_loader_free(train);
    cnnl_split_free(sp);
    cnnl_dataset_free(ds);
}

/* The ground truth itself: the planted mass contains its centre, lies inside the circle
 * cnnl_synthetic_tumour() gives, and fills a good part of it; notumor images have none. */
static void test_truth(void **state)
{
    (void)state;
    cnnl_synthetic_opts syn = cnnl_synthetic_opts_default();
    syn.count = 200;
    for (size_t i = 0; i < syn.count; i += 9) {
        cnnl_synthetic_region r;
        assert_ok(cnnl_synthetic_tumour(&syn, i, SIZE, &r));
        bool in = true;
        if (!r.present) {
            assert_ok(cnnl__synthetic_in_tumour(&syn, i, SIZE, (float)SIZE / 2, (float)SIZE / 2, &in));
            assert_false(in);
            continue;
        }
        assert_ok(cnnl__synthetic_in_tumour(&syn, i, SIZE, r.x, r.y, &in));
        assert_true(in);
        int mass = 0, disc = 0; /* over the circle's bounding box and 2 pixels around it */
        int x0 = (int)floorf(r.x - r.radius) - 2, x1 = (int)ceilf(r.x + r.radius) + 2;
        int y0 = (int)floorf(r.y - r.radius) - 2, y1 = (int)ceilf(r.y + r.radius) + 2;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                float d = hypotf((float)x - r.x, (float)y - r.y);
                assert_ok(cnnl__synthetic_in_tumour(&syn, i, SIZE, (float)x, (float)y, &in));
                if (in)
                    assert_true(d <= r.radius + 0.01f);
                mass += in;
                disc += d <= r.radius;
            }
        assert_true(mass >= disc / 4);
    }
    bool in;
    assert_status_msg(cnnl__synthetic_in_tumour(&syn, 200, SIZE, 0, 0, &in), CNNL_ERANGE, "index 200");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truth),
        cmocka_unit_test(test_peak_inside_tumour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
