/*
 * Learning-rate schedules against torch.optim.lr_scheduler 1.13 (values printed by PyTorch for
 * the same settings), and the cross-entropy with label smoothing and class weights against
 * torch.nn.CrossEntropyLoss(weight, label_smoothing) and a finite-difference gradient.
 */
#include "test_util.h"

#include <math.h>
#include <string.h>

static double lr_at(const cnnl_schedule_opts *s, int epochs, int64_t batches, int epoch, int64_t batch,
                    const cnnl_history *h)
{
    double lr = -1;
    assert_ok(cnnl_schedule_lr(s, 0.1, epochs, batches, epoch, batch, h, &lr));
    return lr;
}

static void test_one_cycle_matches_torch(void **state)
{
    (void)state;
    /* OneCycleLR(max_lr=0.1, total_steps=20) */
    static const double torch_lrs[20] = {
        0.0040000000000000036, 0.013167184270002533, 0.037167184270002526, 0.06683281572999747,
        0.09083281572999748, 0.1, 0.09874640062350874, 0.09504846320134738, 0.089091617757105,
        0.0811745653949763, 0.07169430017913009, 0.06112620219362893, 0.0500002, 0.03887419780637107,
        0.028306099820869922, 0.0188258346050237, 0.010908782242895003, 0.004951936798652629,
        0.0012539993764912555, 4e-07};
    cnnl_schedule_opts s = cnnl_schedule_opts_default();
    s.kind = CNNL_SCHEDULE_ONE_CYCLE;
    for (int i = 0; i < 20; i++) /* 4 epochs of 5 batches */
        assert_float_equal(lr_at(&s, 4, 5, i / 5, i % 5, NULL), torch_lrs[i], 1e-12);
}

static void test_step_and_cosine(void **state)
{
    (void)state;
    cnnl_schedule_opts s = cnnl_schedule_opts_default();
    assert_float_equal(lr_at(&s, 10, 3, 7, 2, NULL), 0.1, 0);
    s.kind = CNNL_SCHEDULE_STEP;
    s.step_size = 3;
    s.gamma = 0.5;
    assert_float_equal(lr_at(&s, 10, 3, 2, 2, NULL), 0.1, 1e-15);
    assert_float_equal(lr_at(&s, 10, 3, 3, 0, NULL), 0.05, 1e-15);
    assert_float_equal(lr_at(&s, 10, 3, 9, 1, NULL), 0.0125, 1e-15);
    s = cnnl_schedule_opts_default();
    s.kind = CNNL_SCHEDULE_COSINE;
    s.warmup_epochs = 1;
    s.min_factor = 0.01;
    /* warm-up: linear over the first epoch's 4 batches up to the peak */
    assert_float_equal(lr_at(&s, 5, 4, 0, 0, NULL), 0.1 * 1 / 5.0, 1e-15);
    assert_float_equal(lr_at(&s, 5, 4, 0, 3, NULL), 0.1 * 4 / 5.0, 1e-15);
    assert_float_equal(lr_at(&s, 5, 4, 1, 0, NULL), 0.1, 1e-15);
    /* half way through the decay: the mean of peak and floor; the last batch: the floor */
    assert_float_equal(lr_at(&s, 5, 4, 2, 2, NULL), 0.5 * (0.1 + 0.001) + 0.5 * (0.1 - 0.001) * cos(M_PI * 6 / 15), 1e-12);
    assert_float_equal(lr_at(&s, 5, 4, 4, 3, NULL), 0.001, 1e-15);
    /* bad options and positions are named */
    double lr;
    s.min_factor = 2;
    assert_status_msg(cnnl_schedule_lr(&s, 0.1, 5, 4, 0, 0, NULL, &lr), CNNL_EINVAL, "min_factor");
    s = cnnl_schedule_opts_default();
    assert_status_msg(cnnl_schedule_lr(&s, 0.1, 5, 4, 5, 0, NULL, &lr), CNNL_EINVAL, "epoch 5 of 5");
}

static void test_plateau_matches_torch(void **state)
{
    (void)state;
    /* ReduceLROnPlateau(factor=0.5, patience=1) stepped with these losses gives these rates */
    static const double losses[9] = {1.0, 0.9, 0.95, 0.93, 0.92, 0.5, 0.6, 0.7, 0.8};
    static const double torch_lrs[9] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025};
    cnnl_history *h = NULL;
    assert_ok(cnnl_history_create(&h));
    cnnl_schedule_opts s = cnnl_schedule_opts_default();
    s.kind = CNNL_SCHEDULE_PLATEAU;
    s.gamma = 0.5;
    s.plateau_patience = 1;
    assert_float_equal(lr_at(&s, 10, 2, 0, 0, h), 0.1, 0);
    for (int e = 0; e < 9; e++) {
        cnnl_epoch_stats st = {0};
        st.epoch = e + 1;
        st.test_loss = losses[e];
        assert_ok(cnnl_history_append(h, &st));
        /* the rate of the next epoch */
        assert_float_equal(lr_at(&s, 10, 2, e + 1, 1, h), torch_lrs[e], 1e-15);
    }
    cnnl_history_free(h);
}

static void test_cross_entropy_ex(void **state)
{
    (void)state;
    static const float z[12] = {1.0f, -0.5f, 2.0f, 0.3f, 0.2f, 0.1f, -1.0f, 1.5f, -2.0f, 0.5f, 0.0f, 0.7f};
    static const int32_t y[3] = {2, 0, 3};
    static const float w[4] = {1.0f, 2.0f, 0.5f, 1.5f};
    /* torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)(z, y) and z.grad */
    static const double torch_grad[12] = {
        0.03485431149601936, -0.007030200213193893, -0.03677045553922653, 0.008946350775659084,
        -0.25018054246902466, 0.035952139645814896, 0.013348610140383244, 0.200879767537117,
        0.005535461008548737, 0.15228988230228424, 0.09831066429615021, -0.2561359703540802};
    int64_t shape[2] = {3, 4};
    cnnl_tensor *x = NULL, *g = NULL, *g0 = NULL;
    assert_ok(cnnl_tensor_create(&x, 2, shape));
    assert_ok(cnnl_tensor_create(&g, 2, shape));
    assert_ok(cnnl_tensor_create(&g0, 2, shape));
    memcpy(cnnl_tensor_data(x), z, sizeof z);
    float loss = 0;
    assert_ok(cnnl_loss_cross_entropy_ex(x, y, 3, 0.1, w, &loss, g));
    assert_float_equal(loss, 1.216227650642395, 1e-6);
    for (int i = 0; i < 12; i++)
        assert_float_equal(cnnl_tensor_data(g)[i], torch_grad[i], 1e-6);
    /* without smoothing and weights: the plain cross-entropy */
    float plain = 0, ex = 0;
    assert_ok(cnnl_loss_class(CNNL_LOSS_CROSS_ENTROPY, x, y, 3, CNNL_REDUCE_MEAN, &plain, g0));
    assert_ok(cnnl_loss_cross_entropy_ex(x, y, 3, 0.0, NULL, &ex, g));
    assert_float_equal(ex, plain, 1e-6);
    for (int i = 0; i < 12; i++)
        assert_float_equal(cnnl_tensor_data(g)[i], cnnl_tensor_data(g0)[i], 1e-6);
    int32_t bad[3] = {2, 4, 0};
    assert_status_msg(cnnl_loss_cross_entropy_ex(x, bad, 3, 0.1, NULL, &ex, NULL), CNNL_ERANGE, "labels[1] is 4");
    assert_status_msg(cnnl_loss_cross_entropy_ex(x, y, 3, 1.0, NULL, &ex, NULL), CNNL_EINVAL, "smoothing");
    cnnl_tensor_free(x);
    cnnl_tensor_free(g);
    cnnl_tensor_free(g0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_cycle_matches_torch),
        cmocka_unit_test(test_step_and_cosine),
        cmocka_unit_test(test_plateau_matches_torch),
        cmocka_unit_test(test_cross_entropy_ex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
