/* SVG pictures: training curves, confusion matrix heat map, comparison of runs.
 *
 * The drawing is a handful of SVG primitives (lines, polylines, rectangles, text) on panels
 * with "nice" axis ticks; the output is deterministic for the same input. */
#include "cnnlite/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "train/plot_internal.h"
#include "train/strbuf.h"

static const char *const palette[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

typedef struct panel {
    double x0, y0, w, h;      /* plotting area in pixels */
    cnnl__axis x, y;
} panel;

void cnnl__nice_axis(double lo, double hi, int target_ticks, cnnl__axis *axis)
{
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo < 1e-12) {
        double pad = fabs(lo) > 1e-12 ? fabs(lo) * 0.05 : 0.5;
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / (target_ticks > 1 ? target_ticks : 1);
    double mag = pow(10.0, floor(log10(raw)));
    double steps[4] = {1, 2, 2.5, 5}, step = 10 * mag;
    for (int i = 0; i < 4; i++) {
        if (steps[i] * mag >= raw - 1e-12 * mag) {
            step = steps[i] * mag;
            break;
        }
    }
    axis->step = step;
    axis->lo = floor(lo / step + 1e-9) * step;
    axis->hi = ceil(hi / step - 1e-9) * step;
}

static double px(const panel *p, double x)
{
    return p->x0 + (x - p->x.lo) / (p->x.hi - p->x.lo) * p->w;
}

static double py(const panel *p, double y)
{
    return p->y0 + p->h - (y - p->y.lo) / (p->y.hi - p->y.lo) * p->h;
}

static void svg_begin(cnnl__strbuf *sb, int width, int height, double title_x, const char *title)
{
    cnnl__sb_printf(sb,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
                    "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, "
                    "Arial, sans-serif\" font-size=\"13\">\n"
                    "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                    width, height, width, height);
    if (title != NULL) {
        cnnl__sb_printf(sb, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"17\" "
                            "font-weight=\"bold\">", title_x);
        cnnl__sb_xml(sb, title);
        cnnl__sb_printf(sb, "</text>\n");
    }
}

static void svg_text(cnnl__strbuf *sb, double x, double y, const char *anchor, const char *extra,
                     const char *text)
{
    cnnl__sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    cnnl__sb_xml(sb, text);
    cnnl__sb_printf(sb, "</text>\n");
}

static void format_tick(char *buf, size_t size, double v, double step)
{
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(step * pow(10, decimals) - round(step * pow(10, decimals))) > 1e-6)
        decimals++;
    snprintf(buf, size, "%.*f", decimals, fabs(v) < step * 1e-9 ? 0.0 : v);
}

static void panel_axes(cnnl__strbuf *sb, const panel *p, const char *xlabel, const char *ylabel,
                       const char *title)
{
    char buf[64];
    for (double v = p->y.lo; v <= p->y.hi + p->y.step * 1e-6; v += p->y.step) {
        double y = py(p, v);
        cnnl__sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#e5e5e5\"/>\n", p->x0, y, p->x0 + p->w, y);
        format_tick(buf, sizeof buf, v, p->y.step);
        svg_text(sb, p->x0 - 6, y + 4, "end", " fill=\"#444\"", buf);
    }
    for (double v = p->x.lo; v <= p->x.hi + p->x.step * 1e-6; v += p->x.step) {
        double x = px(p, v);
        cnnl__sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#e5e5e5\"/>\n", x, p->y0, x, p->y0 + p->h);
        format_tick(buf, sizeof buf, v, p->x.step);
        svg_text(sb, x, p->y0 + p->h + 17, "middle", " fill=\"#444\"", buf);
    }
    cnnl__sb_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                        "stroke=\"#333\"/>\n", p->x0, p->y0, p->w, p->h);
    svg_text(sb, p->x0 + p->w / 2, p->y0 + p->h + 38, "middle", "", xlabel);
    cnnl__sb_printf(sb, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" "
                        "text-anchor=\"middle\">", p->x0 - 46, p->y0 + p->h / 2);
    cnnl__sb_xml(sb, ylabel);
    cnnl__sb_printf(sb, "</text>\n");
    svg_text(sb, p->x0 + p->w / 2, p->y0 - 10, "middle", " font-weight=\"bold\"", title);
}

static void panel_line(cnnl__strbuf *sb, const panel *p, const double *y, size_t n,
                       const char *color, double width, const char *style)
{
    cnnl__sb_printf(sb, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                        "stroke-linejoin=\"round\"%s points=\"", color, width, style);
    for (size_t i = 0; i < n; i++)
        if (isfinite(y[i]))
            cnnl__sb_printf(sb, "%s%.1f,%.1f", i ? " " : "", px(p, (double)(i + 1)), py(p, y[i]));
    cnnl__sb_printf(sb, "\"/>\n");
    if (n <= 40 && width >= 2)
        for (size_t i = 0; i < n; i++)
            if (isfinite(y[i]))
                cnnl__sb_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                                px(p, (double)(i + 1)), py(p, y[i]), color);
}

static void legend_entry(cnnl__strbuf *sb, double x, double y, const char *color,
                         const char *style, const char *label)
{
    cnnl__sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"2.5\"%s/>\n", x, y - 4, x + 22, y - 4, color, style);
    svg_text(sb, x + 28, y, "start", "", label);
}

static void range_of(const double *v, size_t n, double *lo, double *hi)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (v[i] < *lo)
            *lo = v[i];
        if (v[i] > *hi)
            *hi = v[i];
    }
}

static void make_panel(panel *p, double x0, size_t epochs, double lo, double hi)
{
    p->x0 = x0;
    p->y0 = 60;
    p->w = 400;
    p->h = 300;
    cnnl__nice_axis(1, (double)(epochs > 1 ? epochs : 2), 8, &p->x);
    p->x.lo = 1;
    if (p->x.step < 1)
        p->x.step = 1;
    cnnl__nice_axis(lo, hi, 6, &p->y);
}

static cnnl_status finish(cnnl__strbuf *sb, const char *path, const char *who)
{
    cnnl__sb_printf(sb, "</svg>\n");
    cnnl_status st = cnnl__sb_write_atomic(sb, path, who);
    cnnl__sb_free(sb);
    return st;
}

CNNL_API cnnl_status cnnl_plot_history(const cnnl_history *history, const char *path, const char *title)
{
    static const char who[] = "cnnl_plot_history";
    size_t n = cnnl_history_count(history);
    if (history == NULL || path == NULL || n == 0)
        return cnnl__error(CNNL_EINVAL, "%s: history or path is NULL, or the history is empty", who);
    double *v = calloc(4 * n, sizeof *v);
    if (v == NULL)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    double *tl = v, *vl = v + n, *ta = v + 2 * n, *va = v + 3 * n;
    bool have_test = false;
    for (size_t i = 0; i < n; i++) {
        cnnl_epoch_stats e;
        cnnl_history_at(history, i, &e);
        have_test |= e.test_images > 0;
        tl[i] = e.train_loss_mean;
        vl[i] = e.test_images > 0 ? e.test_loss : NAN;
        ta[i] = e.train_accuracy;
        va[i] = e.test_images > 0 ? e.test_accuracy : NAN;
    }
    double lo = 0, hi = -INFINITY, alo = INFINITY, ahi = 100;
    range_of(tl, 2 * n, &lo, &hi);
    range_of(ta, 2 * n, &alo, &ahi);
    panel pl, pa;
    make_panel(&pl, 70, n, 0, hi);
    make_panel(&pa, 560, n, alo > 0 ? alo : 0, ahi);
    if (pa.y.hi > 100)
        pa.y.hi = 100;

    cnnl__strbuf sb = {0};
    svg_begin(&sb, 1000, 440, 500, title);
    panel_axes(&sb, &pl, "epoch", "loss (mean per batch)", "Loss");
    panel_axes(&sb, &pa, "epoch", "accuracy (%)", "Accuracy");
    panel_line(&sb, &pl, tl, n, palette[0], 2.5, "");
    panel_line(&sb, &pa, ta, n, palette[0], 2.5, "");
    if (have_test) {
        panel_line(&sb, &pl, vl, n, palette[1], 2.5, "");
        panel_line(&sb, &pa, va, n, palette[1], 2.5, "");
        double best;
        int at;
        cnnl_history_best(history, &best, &at);
        double bx = px(&pa, at), by = py(&pa, best);
        char label[64];
        snprintf(label, sizeof label, "best %.2f%% (epoch %d)", best, at);
        cnnl__sb_printf(&sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"none\" "
                             "stroke=\"%s\" stroke-width=\"2\"/>\n", bx, by, palette[3]);
        /* above the marker, or below it when the marker is near the top of the panel */
        double ly = by - pa.y0 < 30 ? by + 22 : by - 10;
        svg_text(&sb, bx > pa.x0 + pa.w / 2 ? bx - 10 : bx + 10, ly,
                 bx > pa.x0 + pa.w / 2 ? "end" : "start",
                 " fill=\"#d62728\" stroke=\"white\" stroke-width=\"4\" paint-order=\"stroke\"", label);
    }
    legend_entry(&sb, 360, 425, palette[0], "", "train");
    if (have_test)
        legend_entry(&sb, 560, 425, palette[1], "", "test");
    free(v);
    return finish(&sb, path, who);
}

/* White to dark blue. */
static void heat_colour(char *buf, size_t size, double t)
{
    static const double lo[3] = {247, 251, 255}, hi[3] = {8, 48, 107};
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = (int)lround(lo[i] + (hi[i] - lo[i]) * t);
    snprintf(buf, size, "#%02x%02x%02x", c[0], c[1], c[2]);
}

CNNL_API cnnl_status cnnl_plot_confusion(const cnnl_confusion *cm, const char *const *class_names,
                                         const char *path, const char *title)
{
    static const char who[] = "cnnl_plot_confusion";
    if (cm == NULL || path == NULL)
        return cnnl__error(CNNL_EINVAL, "%s: cm or path is NULL", who);
    int k = cnnl_confusion_classes(cm);
    double cell = k <= 6 ? 96 : k <= 12 ? 56 : 640.0 / k;
    double x0 = 150, y0 = 80, side = cell * k;
    int width = (int)(x0 + side + 40), height = (int)(y0 + side + 70);
    cnnl__strbuf sb = {0};
    svg_begin(&sb, width < 420 ? 420 : width, height, x0 + side / 2, title);
    char name[32], colour[16], text[64];
    for (int t = 0; t < k; t++) {
        int64_t row = 0;
        for (int p = 0; p < k; p++)
            row += cnnl_confusion_get(cm, t, p);
        for (int p = 0; p < k; p++) {
            int64_t c = cnnl_confusion_get(cm, t, p);
            double frac = row > 0 ? (double)c / (double)row : 0.0;
            heat_colour(colour, sizeof colour, frac);
            double x = x0 + p * cell, y = y0 + t * cell;
            cnnl__sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                                 "fill=\"%s\" stroke=\"white\"/>\n", x, y, cell, cell, colour);
            const char *ink = frac > 0.5 ? " fill=\"white\"" : " fill=\"#222\"";
            snprintf(text, sizeof text, "%lld", (long long)c);
            svg_text(&sb, x + cell / 2, y + cell / 2 + (cell >= 50 ? 0 : 4), "middle", ink, text);
            if (cell >= 50) {
                snprintf(text, sizeof text, "%.1f%%", 100.0 * frac);
                cnnl__sb_printf(&sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                                     "font-size=\"11\"%s>%s</text>\n",
                                x + cell / 2, y + cell / 2 + 16, ink, text);
            }
        }
    }
    for (int i = 0; i < k; i++) {
        const char *label = class_names != NULL && class_names[i] != NULL ? class_names[i] : NULL;
        if (label == NULL) {
            snprintf(name, sizeof name, "%d", i);
            label = name;
        }
        svg_text(&sb, x0 - 8, y0 + i * cell + cell / 2 + 4, "end", "", label);
        svg_text(&sb, x0 + i * cell + cell / 2, y0 + side + 18, "middle", "", label);
    }
    svg_text(&sb, x0 + side / 2, y0 + side + 42, "middle", " font-weight=\"bold\"", "predicted class");
    cnnl__sb_printf(&sb, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\" "
                         "font-weight=\"bold\">true class</text>\n", y0 + side / 2);
    svg_text(&sb, x0 + side / 2, y0 - 12, "middle", " fill=\"#444\" font-size=\"11\"",
             "cell colour: share of the true class's row");
    return finish(&sb, path, who);
}

/* Index of the first run with the same label as run @p i. */
static size_t group_of(const char *const *labels, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(labels[j], labels[i]) == 0)
            return j;
    return i;
}

/* Mean over the runs of group @p g of field @p f per epoch (NaN where no run has the epoch). */
static void group_mean(const cnnl_history *const *runs, const char *const *labels, size_t n,
                       size_t g, size_t len, bool accuracy, double *out)
{
    for (size_t e = 0; e < len; e++) {
        double sum = 0;
        int count = 0;
        for (size_t i = 0; i < n; i++) {
            cnnl_epoch_stats s;
            if (group_of(labels, i) != g || cnnl_history_at(runs[i], e, &s) != CNNL_OK)
                continue;
            sum += accuracy ? s.test_accuracy : s.train_loss_mean;
            count++;
        }
        out[e] = count ? sum / count : NAN;
    }
}

static void run_values(const cnnl_history *h, bool accuracy, double *out)
{
    for (size_t e = 0; e < cnnl_history_count(h); e++) {
        cnnl_epoch_stats s;
        cnnl_history_at(h, e, &s);
        out[e] = accuracy ? s.test_accuracy : s.train_loss_mean;
    }
}

CNNL_API cnnl_status cnnl_plot_compare(const cnnl_history *const *runs, const char *const *labels,
                                       size_t n, const char *path, const char *title)
{
    static const char who[] = "cnnl_plot_compare";
    if (runs == NULL || labels == NULL || path == NULL || n == 0 || n > 256)
        return cnnl__error(CNNL_EINVAL, "%s: runs, labels or path is NULL, or n (%zu) is not 1..256",
                           who, n);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (runs[i] == NULL || labels[i] == NULL || cnnl_history_count(runs[i]) == 0)
            return cnnl__error(CNNL_EINVAL, "%s: run %zu is NULL, unlabelled or empty", who, i);
        if (cnnl_history_count(runs[i]) > len)
            len = cnnl_history_count(runs[i]);
    }
    double *v = calloc(len, sizeof *v);
    if (v == NULL)
        return cnnl__error(CNNL_ENOMEM, "%s: out of memory", who);
    double alo = INFINITY, ahi = -INFINITY, llo = 0, lhi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        size_t m = cnnl_history_count(runs[i]);
        run_values(runs[i], true, v);
        range_of(v, m, &alo, &ahi);
        run_values(runs[i], false, v);
        range_of(v, m, &llo, &lhi);
    }
    panel pa, pl;
    make_panel(&pa, 70, len, alo, ahi);
    make_panel(&pl, 560, len, 0, lhi);
    if (pa.y.hi > 100)
        pa.y.hi = 100;
    size_t groups = 0;
    for (size_t i = 0; i < n; i++)
        groups += group_of(labels, i) == i;
    int height = 420 + 20 * (int)((groups + 3) / 4);
    cnnl__strbuf sb = {0};
    svg_begin(&sb, 1000, height, 500, title);
    panel_axes(&sb, &pa, "epoch", "test accuracy (%)", "Test accuracy");
    panel_axes(&sb, &pl, "epoch", "train loss (mean per batch)", "Training loss");
    size_t colour = 0, legend = 0;
    for (size_t g = 0; g < n; g++) {
        if (group_of(labels, g) != g)
            continue;
        const char *c = palette[colour++ % 10];
        int members = 0;
        for (size_t i = 0; i < n; i++) {
            if (group_of(labels, i) != g)
                continue;
            members++;
            size_t m = cnnl_history_count(runs[i]);
            run_values(runs[i], true, v);
            panel_line(&sb, &pa, v, m, c, 1.0, " stroke-opacity=\"0.35\"");
            run_values(runs[i], false, v);
            panel_line(&sb, &pl, v, m, c, 1.0, " stroke-opacity=\"0.35\"");
        }
        group_mean(runs, labels, n, g, len, true, v);
        panel_line(&sb, &pa, v, len, c, 2.5, "");
        group_mean(runs, labels, n, g, len, false, v);
        panel_line(&sb, &pl, v, len, c, 2.5, "");
        char label[96];
        if (members > 1)
            snprintf(label, sizeof label, "%s (mean of %d)", labels[g], members);
        else
            snprintf(label, sizeof label, "%s", labels[g]);
        legend_entry(&sb, 70 + 230 * (double)(legend % 4), 425 + 20 * (double)(legend / 4), c, "", label);
        legend++;
    }
    free(v);
    return finish(&sb, path, who);
}
