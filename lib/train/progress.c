/* tqdm-like progress bar on a stream. */
#include "cnnlite/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "train/train_internal.h"

#define BAR_WIDTH 10

struct cnnl_progress {
    FILE *stream;
    cnnl_progress_mode mode; /* resolved: TTY, LINES or OFF */
    bool running;
    int64_t total, done;
    double start;
};

double cnnl__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

CNNL_API cnnl_status cnnl_progress_create(cnnl_progress **out, FILE *stream, cnnl_progress_mode mode)
{
    if (out == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_progress_create: out is NULL");
    *out = NULL;
    if (mode < CNNL_PROGRESS_AUTO || mode > CNNL_PROGRESS_OFF)
        return cnnl__error(CNNL_EINVAL, "cnnl_progress_create: unknown mode %d", (int)mode);
    cnnl_progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return cnnl__error(CNNL_ENOMEM, "cnnl_progress_create: out of memory");
    p->stream = stream != NULL ? stream : stderr;
    if (mode == CNNL_PROGRESS_AUTO)
        mode = isatty(fileno(p->stream)) ? CNNL_PROGRESS_TTY : CNNL_PROGRESS_LINES;
    p->mode = mode;
    *out = p;
    return CNNL_OK;
}

CNNL_API void cnnl_progress_free(cnnl_progress *progress)
{
    free(progress);
}

/* tqdm's format_interval: [h:]mm:ss; "?" beyond 9999999 hours (and for NaN), which also
 * keeps the conversion to an integer defined. */
static void format_interval(char *buf, size_t size, double seconds)
{
    if (!(seconds < 9999999.0 * 3600.0)) {
        snprintf(buf, size, "?");
        return;
    }
    long long s = (long long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%02lld:%02lld", s / 60, s % 60);
}

/* Full blocks, then one partial block in eighths (U+2589..U+258F), then spaces. */
static void format_bar(char *buf, size_t size, double frac)
{
    static const char *const eighths[8] = {"", "\u258f", "\u258e", "\u258d", "\u258c",
                                           "\u258b", "\u258a", "\u2589"};
    int units = (int)(frac * BAR_WIDTH * 8);
    int full = units / 8, part = units % 8;
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < BAR_WIDTH; i++) {
        const char *cell = i < full ? "\u2588" : i == full && part ? eighths[part] : " ";
        size_t n = strlen(cell);
        if (len + n + 1 > size)
            break;
        memcpy(buf + len, cell, n + 1);
        len += n;
    }
}

CNNL_API cnnl_status cnnl_progress_format(char *buf, size_t size, int64_t done, int64_t total,
                                          double elapsed)
{
    if (buf == NULL || size == 0 || done < 0 || total < 0 || !(elapsed >= 0))
        return cnnl__error(CNNL_EINVAL, "cnnl_progress_format: invalid arguments");
    double frac = total > 0 ? (double)(done < total ? done : total) / (double)total : 1.0;
    char bar[BAR_WIDTH * 3 + 1], el[32], rem[32], rate[32];
    format_bar(bar, sizeof bar, frac);
    format_interval(el, sizeof el, elapsed);
    double r = elapsed > 0 ? (double)done / elapsed : 0.0;
    if (r > 0) {
        format_interval(rem, sizeof rem, (double)(total > done ? total - done : 0) / r);
        /* %.2f up to 1e9 as tqdm; beyond, 3 significant digits keep the text short */
        if (r >= 1.0)
            snprintf(rate, sizeof rate, r < 1e9 ? "%.2fit/s" : "%.3git/s", r);
        else
            snprintf(rate, sizeof rate, 1.0 / r < 1e9 ? "%.2fs/it" : "%.3gs/it", 1.0 / r);
    } else {
        snprintf(rem, sizeof rem, "?");
        snprintf(rate, sizeof rate, "?it/s");
    }
    int n = snprintf(buf, size, "%3.0f%%|%s| %lld/%lld [%s<%s, %s]", floor(frac * 100.0 + 1e-9), bar,
                     (long long)done, (long long)total, el, rem, rate);
    if (n < 0 || (size_t)n >= size)
        return cnnl__error(CNNL_ERANGE, "cnnl_progress_format: buffer of %zu bytes is too small", size);
    return CNNL_OK;
}

static void draw(cnnl_progress *p, bool final)
{
    char line[CNNL_PROGRESS_LINE_MAX];
    cnnl_progress_format(line, sizeof line, p->done, p->total, cnnl__now() - p->start);
    if (p->mode == CNNL_PROGRESS_TTY)
        fprintf(p->stream, "\r%s%s", line, final ? "\n" : "");
    else if (final)
        fprintf(p->stream, "%s\n", line);
    fflush(p->stream);
}

CNNL_API cnnl_status cnnl_progress_start(cnnl_progress *progress, int64_t total)
{
    if (progress == NULL || total < 0)
        return cnnl__error(CNNL_EINVAL, "cnnl_progress_start: progress is NULL or total is negative");
    progress->running = true;
    progress->total = total;
    progress->done = 0;
    progress->start = cnnl__now();
    if (progress->mode == CNNL_PROGRESS_TTY)
        draw(progress, false);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_progress_update(cnnl_progress *progress, int64_t done)
{
    if (progress == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_progress_update: progress is NULL");
    if (!progress->running)
        return cnnl__error(CNNL_ESTATE, "cnnl_progress_update: no bar started");
    if (done < 0 || done > progress->total)
        return cnnl__error(CNNL_ERANGE, "cnnl_progress_update: done is %lld; must be 0..%lld",
                           (long long)done, (long long)progress->total);
    progress->done = done;
    if (progress->mode == CNNL_PROGRESS_TTY)
        draw(progress, false);
    return CNNL_OK;
}

CNNL_API cnnl_status cnnl_progress_finish(cnnl_progress *progress)
{
    if (progress == NULL)
        return cnnl__error(CNNL_EINVAL, "cnnl_progress_finish: progress is NULL");
    if (!progress->running)
        return cnnl__error(CNNL_ESTATE, "cnnl_progress_finish: no bar started");
    if (progress->mode != CNNL_PROGRESS_OFF)
        draw(progress, true);
    progress->running = false;
    return CNNL_OK;
}
