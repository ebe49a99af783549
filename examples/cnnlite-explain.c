/* cnnlite-explain: Grad-CAM heat maps of a saved model over MRI slices, one PNG overlay per
 * image (slice in gray, heat map in colour, predicted class and probability written on it)
 * and one contact sheet of all of them. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Debian's stb_easy_font.h is a header of static functions written for older warning sets. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop
#include <stb_image_write.h>

#include "common.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: cnnlite-explain --model FILE --out DIR [options] IMAGE...\n"
"Writes, for each image, DIR/<name>.png: the slice with the model's Grad-CAM heat map of the\n"
"predicted class over it (red: what spoke most for the class) and the predicted class with\n"
"its probability; and DIR/contact-sheet.png with all of them side by side.\n"
"\n"
"  --model FILE       model saved by cnnlite-train (safetensors with metadata; required)\n"
"  --out DIR          output folder, created if missing (required)\n"
"  --layer NAME       layer to explain, e.g. features.8 (default: the deepest convolution\n"
"                     block whose map has at least --min-map cells per side)\n"
"  --min-map N        cells per side of the default layer's map (default %d; 1: the last\n"
"                     convolution block)\n"
"  --weighting W      hirescam (default: gradient times activation at each position) or\n"
"                     gradcam (each channel weighed by its mean gradient)\n"
"  --class K          explain class index K instead of the predicted class\n"
"  --thumb N          side of the contact sheet's tiles in pixels (default 256)\n"
"  --help             show this text\n"
"  --version          show the program's and the library's version\n", CNNL_GRADCAM_MIN_MAP);
}

typedef struct image_rgb {
    int w, h;
    uint8_t *px; /* w * h * 3 */
} image_rgb;

/* Blue -> cyan -> yellow -> red. */
static void colormap(float v, float rgb[3])
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    float r = fminf(fmaxf(1.5f - fabsf(4.0f * v - 3.0f), 0), 1);
    float g = fminf(fmaxf(1.5f - fabsf(4.0f * v - 2.0f), 0), 1);
    float b = fminf(fmaxf(1.5f - fabsf(4.0f * v - 1.0f), 0), 1);
    rgb[0] = r;
    rgb[1] = g;
    rgb[2] = b;
}

/* Gray slice (channel 0 stretched to 0..255) with the heat map blended in by its value. */
static void overlay(const float *x, const float *heat, int size, image_rgb *img)
{
    size_t n = (size_t)size * (size_t)size;
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    float span = hi > lo ? hi - lo : 1;
    for (size_t i = 0; i < n; i++) {
        float g = (x[i] - lo) / span, c[3];
        colormap(heat[i], c);
        float a = 0.6f * heat[i];
        for (int k = 0; k < 3; k++) {
            float v = (1 - a) * g + a * c[k];
            img->px[3 * i + (size_t)k] = (uint8_t)lrintf(255.0f * fminf(fmaxf(v, 0), 1));
        }
    }
}

/* Text with stb_easy_font's built-in bitmap font, scaled, on a dark band. */
static void draw_text(image_rgb *img, int x0, int y0, int scale, const char *text)
{
    static char buf[60000];
    int quads = stb_easy_font_print(0, 0, (char *)text, NULL, buf, sizeof buf);
    int tw = stb_easy_font_width((char *)text) * scale, th = 12 * scale;
    for (int y = y0; y < y0 + th + 2 * scale && y < img->h; y++)
        for (int x = x0; x < x0 + tw + 2 * scale && x < img->w; x++)
            for (int k = 0; k < 3; k++)
                img->px[3 * ((size_t)y * (size_t)img->w + (size_t)x) + (size_t)k] /= 4;
    for (int q = 0; q < quads; q++) {
        const float *v = (const float *)(void *)(buf + (size_t)q * 64); /* 4 vertices of 16 bytes */
        int qx0 = (int)v[0], qy0 = (int)v[1], qx1 = (int)v[8], qy1 = (int)v[9];
        for (int y = qy0 * scale; y < qy1 * scale; y++)
            for (int x = qx0 * scale; x < qx1 * scale; x++) {
                int px = x0 + scale + x, py = y0 + scale + y;
                if (px >= 0 && py >= 0 && px < img->w && py < img->h)
                    memset(img->px + 3 * ((size_t)py * (size_t)img->w + (size_t)px), 255, 3);
            }
    }
}

typedef struct mem_png {
    unsigned char *data;
    size_t len, cap;
    int failed;
} mem_png;

static void png_sink(void *ctx, void *data, int size)
{
    mem_png *m = ctx;
    if (m->failed || size <= 0)
        return;
    if (m->len + (size_t)size > m->cap) {
        size_t cap = (m->cap ? m->cap * 2 : 65536) + (size_t)size;
        unsigned char *p = realloc(m->data, cap);
        if (p == NULL) {
            m->failed = 1;
            return;
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

/* Encode @p img as PNG and replace @p path atomically (temporary file, fsync, rename). */
static int write_png(const char *path, const image_rgb *img)
{
    mem_png m = {0};
    if (!stbi_write_png_to_func(png_sink, &m, img->w, img->h, 3, img->px, img->w * 3) || m.failed) {
        free(m.data);
        cl_error("%s: could not encode the PNG (out of memory)", path);
        return EXIT_FAIL;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    int rc = EXIT_FAIL;
    if (tmp != NULL) {
        snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
        int fd = mkstemp(tmp);
        if (fd >= 0) {
            size_t off = 0;
            while (off < m.len) {
                ssize_t w = write(fd, m.data + off, m.len - off);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            bool ok = off == m.len && fsync(fd) == 0;
            ok = close(fd) == 0 && ok;
            if (ok && rename(tmp, path) == 0)
                rc = 0;
            else
                unlink(tmp);
        }
        if (rc != 0)
            cl_error("%s: cannot write: %s", path, strerror(errno));
    }
    free(tmp);
    free(m.data);
    return rc;
}

/* File name of @p path without folders and extension, with ".png". */
static void out_name(const char *dir, const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, size, "%s/%.*s.png", dir, len, base);
}

/* Nearest-neighbour copy of @p src into the tile at (tx, ty) of side @p t in @p sheet. */
static void place_tile(image_rgb *sheet, const image_rgb *src, int tx, int ty, int t)
{
    for (int y = 0; y < t; y++)
        for (int x = 0; x < t; x++) {
            int sx = x * src->w / t, sy = y * src->h / t;
            memcpy(sheet->px + 3 * ((size_t)(ty + y) * (size_t)sheet->w + (size_t)(tx + x)),
                   src->px + 3 * ((size_t)sy * (size_t)src->w + (size_t)sx), 3);
        }
}

int main(int argc, char **argv)
{
    cl_init("cnnlite-explain", "--model FILE --out DIR [options] IMAGE...");
    const char *model_path = NULL, *out_dir = NULL;
    int thumb = 256, nimages = 0;
    cnnl_gradcam_opts go = cnnl_gradcam_opts_default();
    static const struct option long_options[] = {
        CL_STD_OPTIONS, CL_ARG("model"), CL_ARG("out"), CL_ARG("layer"), CL_ARG("class"), CL_ARG("thumb"),
        CL_ARG("min-map"), CL_ARG("weighting"), CL_END_OPTIONS,
    };
    cl_opt op;
    int r;
    while ((r = cl_next_option(argc, argv, long_options, &op)) > 0) {
        if (cl_std_option(&op, usage))
            return 0;
        if (cl_is(&op, "model"))
            model_path = op.value;
        else if (cl_is(&op, "out"))
            out_dir = op.value;
        else if (cl_is(&op, "layer"))
            go.layer = op.value;
        else if (cl_is(&op, "class") && !cl_parse_int("class", op.value, 0, 100000, &go.target))
            return EXIT_USAGE;
        else if (cl_is(&op, "min-map") && !cl_parse_int("min-map", op.value, 1, 1 << 20, &go.min_map))
            return EXIT_USAGE;
        else if (cl_is(&op, "weighting")) {
            if (strcmp(op.value, "hirescam") == 0)
                go.weighting = CNNL_CAM_ELEMENTWISE;
            else if (strcmp(op.value, "gradcam") == 0)
                go.weighting = CNNL_CAM_CHANNEL_MEAN;
            else {
                cl_error("--weighting: unknown weighting '%s' (hirescam, gradcam)", op.value);
                return EXIT_USAGE;
            }
        }
        else if (cl_is(&op, "thumb") && !cl_parse_int("thumb", op.value, 16, 4096, &thumb))
            return EXIT_USAGE;
    }
    if (r < 0)
        return EXIT_USAGE;
    char **images = argv + optind; /* the operands, which getopt_long moved after the options */
    nimages = argc - optind;
    if (model_path == NULL || out_dir == NULL || nimages == 0) {
        cl_error("%s", model_path == NULL ? "--model FILE is required"
                       : out_dir == NULL ? "--out DIR is required" : "no IMAGE given");
        return EXIT_USAGE;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        cl_error("%s: cannot create the folder: %s", out_dir, strerror(errno));
        return EXIT_FAIL;
    }

    cnnl_report_opts fallback = cnnl_report_opts_default(), ro;
    cnnl_model *model = NULL;
    cnnl_model_meta *meta = NULL;
    cnnl_dataset_opts prep = cnnl_dataset_opts_default();
    int rc = cl_load_model(model_path, &fallback, &model, &meta, &ro, &prep.norm);
    if (rc != 0)
        return rc;
    prep.size = ro.size;
    prep.channels = ro.channels;
    int size = ro.size, cols = (int)ceil(sqrt((double)nimages)), rows = (nimages + cols - 1) / cols;
    image_rgb sheet = {cols * thumb, rows * thumb, calloc((size_t)cols * (size_t)rows * (size_t)thumb * (size_t)thumb * 3, 1)};
    image_rgb img = {size, size, malloc((size_t)size * (size_t)size * 3)};
    float *heat = malloc((size_t)size * (size_t)size * sizeof *heat);
    if (sheet.px == NULL || img.px == NULL || heat == NULL)
        rc = cl_fail("memory", CNNL_ENOMEM);
    int scale = size >= 384 ? 3 : size >= 192 ? 2 : 1;
    for (int i = 0; i < nimages && rc == 0; i++) {
        cnnl_tensor *x = NULL;
        cnnl_gradcam_info info;
        cnnl_status st = cnnl_image_load(&x, images[i], &prep);
        if (st == CNNL_OK)
            st = cnnl_gradcam_ex(model, x, &go, heat, &info);
        if (st != CNNL_OK) {
            rc = cl_fail(images[i], st);
            cnnl_tensor_free(x);
            break;
        }
        overlay(cnnl_tensor_data_const(x), heat, size, &img);
        cnnl_tensor_free(x);
        const char *name = cnnl_model_meta_class_name(meta, (size_t)info.predicted);
        char text[160], path[4096];
        snprintf(text, sizeof text, "%s  p=%.3f", name ? name : "?", (double)info.probability);
        if (info.target != info.predicted) {
            const char *tn = cnnl_model_meta_class_name(meta, (size_t)info.target);
            size_t l = strlen(text);
            snprintf(text + l, sizeof text - l, "  (map: %s)", tn ? tn : "?");
        }
        draw_text(&img, 0, 0, scale, text);
        out_name(out_dir, images[i], path, sizeof path);
        rc = write_png(path, &img);
        if (rc == 0)
            printf("%s: %s (p = %.3f; map of %s, %dx%d) -> %s\n", images[i], name ? name : "?",
                   (double)info.probability, info.layer, info.map_height, info.map_width, path);
        place_tile(&sheet, &img, (i % cols) * thumb, (i / cols) * thumb, thumb);
    }
    if (rc == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/contact-sheet.png", out_dir);
        rc = write_png(path, &sheet);
        if (rc == 0)
            printf("contact sheet: %s\n", path);
    }
    free(heat);
    free(img.px);
    free(sheet.px);
    cnnl_model_meta_free(meta);
    cnnl_model_free(model);
    return rc;
}
