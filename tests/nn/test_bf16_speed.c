/* cnnl_bf16_speed_ratio(): a positive, finite, cached ratio on CPUs with AVX512_BF16, the same
 * for threads asking at once; CNNL_EUNSUPPORTED without AVX512_BF16 and under the instruction-set
 * limits (CNNLITE_ISA in this process, ONEDNN_MAX_CPU_ISA in a child process, since oneDNN reads
 * it once). What is expected is derived from the CPU and the environment, so the suite passes
 * on any x86-64 (Zen 4/5, Intel with or without AMX, AVX2-only) and in CI's AVX2 run. */
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#ifdef CNNL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#if defined(__x86_64__)
#include <cpuid.h>
#endif

extern char **environ;

#define CHILD_ARG "--child-onednn-limited"

/* This program, for the child process: argv[0] when it is a path (under valgrind
 * /proc/self/exe is the tool, not the test), else /proc/self/exe. */
static const char *self_path = "/proc/self/exe";

/* Whether the CPU has AVX512_BF16 (and AVX-512 state enabled by the OS). */
static bool cpu_has_bf16(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

/* CPUID.(7,0):EDX bit 22, AMX-BF16. */
static bool cpu_has_amx_bf16(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1u);
#else
    return false;
#endif
}

static bool isa_env_limited(void)
{
    const char *e = getenv("CNNLITE_ISA");
    return e && (!strcmp(e, "avx2") || !strcmp(e, "sse2") || !strcmp(e, "generic"));
}

/* What the probe should answer in this process: supported or not. */
static bool expect_supported(void)
{
    if (!cpu_has_bf16() || isa_env_limited())
        return false;
#ifdef CNNL_HAVE_DNNL
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) != (unsigned)dnnl_cpu_isa_avx512_core_bf16)
        return false;
#endif
    return true;
}

typedef struct probe_call {
    cnnl_status st;
    double ratio;
    bool amx;
} probe_call;

static void *call_probe(void *arg)
{
    probe_call *c = arg;
    c->st = cnnl_bf16_speed_ratio(&c->ratio, &c->amx);
    return NULL;
}

/* First: threads asking at once, before anyone measured, all get the one measurement. */
static void test_concurrent_first_calls(void **state)
{
    (void)state;
    enum { N = 4 };
    pthread_t t[N];
    probe_call calls[N];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, call_probe, &calls[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    bool want = expect_supported();
    for (int i = 0; i < N; i++) {
        assert_int_equal(calls[i].st, want ? CNNL_OK : CNNL_EUNSUPPORTED);
        assert_memory_equal(&calls[i].ratio, &calls[0].ratio, sizeof(double));
        assert_int_equal(calls[i].amx, calls[0].amx);
    }
}

static void test_ratio(void **state)
{
    (void)state;
    double ratio = -1.0, again = -1.0;
    bool amx = true, amx2 = true;
    cnnl_status st = cnnl_bf16_speed_ratio(&ratio, &amx);
    if (!expect_supported()) {
        assert_int_equal(st, CNNL_EUNSUPPORTED);
        assert_true(ratio == 0.0);
        assert_false(amx);
        if (!cpu_has_bf16())
            assert_non_null(strstr(cnnl_last_error(), "no AVX512_BF16"));
        return;
    }
    assert_int_equal(st, CNNL_OK);
    print_message("bf16 dot product / float32 FMA on one core: %.3f, AMX %s\n", ratio, amx ? "yes" : "no");
    /* full-rate bf16 gives about 2 (64 against 32 flops per instruction); nothing can run it
     * 8 times the FMA's rate, and a kernel that did no work would show as huge */
    assert_true(isfinite(ratio) && ratio > 0.05 && ratio < 8.0);
    if (amx)
        assert_true(cpu_has_amx_bf16());
    /* cached: the same bits, at once; amx may be NULL */
    assert_int_equal(cnnl_bf16_speed_ratio(&again, &amx2), CNNL_OK);
    assert_memory_equal(&again, &ratio, sizeof ratio);
    assert_int_equal(amx2, amx);
    again = -1.0;
    assert_int_equal(cnnl_bf16_speed_ratio(&again, NULL), CNNL_OK);
    assert_memory_equal(&again, &ratio, sizeof ratio);
}

static void test_null(void **state)
{
    (void)state;
    bool amx = true;
    assert_status_msg(cnnl_bf16_speed_ratio(NULL, &amx), CNNL_EINVAL, "cnnl_bf16_speed_ratio: ratio is NULL");
    assert_false(amx);
}

/* CNNLITE_ISA=avx2 (the library's own kernels stay at AVX2) refuses the AVX-512 probe; lifting
 * it gives the cached figure back. */
static void test_isa_limit(void **state)
{
    (void)state;
    char *saved = getenv("CNNLITE_ISA") ? strdup(getenv("CNNLITE_ISA")) : NULL;
    double ratio = -1.0;
    bool amx = true;
    assert_int_equal(setenv("CNNLITE_ISA", "avx2", 1), 0);
    assert_status_msg(cnnl_bf16_speed_ratio(&ratio, &amx), CNNL_EUNSUPPORTED,
                      cpu_has_bf16() ? "CNNLITE_ISA=avx2" : "no AVX512_BF16");
    assert_true(ratio == 0.0);
    assert_false(amx);
    assert_int_equal(unsetenv("CNNLITE_ISA"), 0);
    if (expect_supported()) {
        assert_int_equal(cnnl_bf16_speed_ratio(&ratio, &amx), CNNL_OK);
        assert_true(ratio > 0.0);
    }
    if (saved)
        assert_int_equal(setenv("CNNLITE_ISA", saved, 1), 0);
    free(saved);
}

/* In a child process with ONEDNN_MAX_CPU_ISA=AVX2: unsupported on every CPU in builds with
 * oneDNN (without oneDNN the variable means nothing to the library and the child checks only
 * that the answer matches the CPU). */
static int child_main(void)
{
    double ratio = -1.0;
    bool amx = true;
    cnnl_status st = cnnl_bf16_speed_ratio(&ratio, &amx);
#ifdef CNNL_HAVE_DNNL
    bool ok = st == CNNL_EUNSUPPORTED && ratio == 0.0 && !amx &&
              (!cpu_has_bf16() || isa_env_limited() || strstr(cnnl_last_error(), "ONEDNN_MAX_CPU_ISA"));
#else
    bool ok = expect_supported() ? st == CNNL_OK && ratio > 0.0 : st == CNNL_EUNSUPPORTED;
#endif
    if (!ok)
        fprintf(stderr, "child: status %d, ratio %g, amx %d: %s\n", (int)st, ratio, (int)amx, cnnl_last_error());
    return ok ? 0 : 1;
}

static void test_onednn_limit(void **state)
{
    (void)state;
    char *saved = getenv("ONEDNN_MAX_CPU_ISA") ? strdup(getenv("ONEDNN_MAX_CPU_ISA")) : NULL;
    assert_int_equal(setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1), 0);
    char *argv[] = {(char *)self_path, (char *)CHILD_ARG, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, self_path, NULL, NULL, argv, environ);
    assert_int_equal(saved ? setenv("ONEDNN_MAX_CPU_ISA", saved, 1) : unsetenv("ONEDNN_MAX_CPU_ISA"), 0);
    free(saved);
    assert_int_equal(rc, 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], CHILD_ARG))
        return child_main();
    if (argc >= 1 && strchr(argv[0], '/'))
        self_path = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_first_calls),
        cmocka_unit_test(test_ratio),
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_isa_limit),
        cmocka_unit_test(test_onednn_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
