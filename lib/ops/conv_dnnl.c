/*
 * Convolution on oneDNN (built with -Ddnnl=enabled or auto when libdnnl is present).
 *
 * oneDNN picks its own kernels at run time (AVX-512, AVX2, ...) and its own blocked layouts.
 * The layers around a convolution keep NCHW, so each call converts at its edges only where
 * oneDNN asks for another layout, and the outputs never go through a separate reorder: the
 * epilogue (finiteness check, ReLU, 2x2 max pool with the byte of the maximum's position)
 * reads oneDNN's blocked output directly and writes the NCHW (pooled) result, and backward
 * builds the masked output gradient straight in oneDNN's layout.
 *
 * Threading follows the portable engine: one OpenMP region per call, chunks of images handed
 * to the threads one at a time, each chunk run through single-threaded oneDNN primitives
 * (made with one thread and executed inside the region). On a shared machine a thread that
 * loses its core does not hold the others up at the barriers of many small regions, which
 * measured 1.7x more CPU time than 0.1.0 when oneDNN threaded each call itself. A chunk is
 * the largest divisor of the batch whose unpooled output fits cnnl__dnnl_chunk_bytes, so the
 * unpooled activations of the batch never exist (peak memory stays 0.1.0's). Weight
 * gradients are summed per fixed slice of the batch (slot) and the slots added in order: the
 * results do not depend on the thread count or scheduling. Primitives, per-thread memory
 * objects and streams are made on first use of a shape and kept in the layer; the large
 * buffers live in a per-thread arena shared by all layers; nothing is allocated per batch.
 */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <oneapi/dnnl/dnnl.h>

#include "core/internal.h"
#include "ops/kernels.h"

/* Unpooled output of one chunk, in bytes: the memory of the biggest chunk is held once per
 * thread. */
size_t cnnl__dnnl_chunk_bytes = (size_t)2 << 20;

/* Where element (n, c, y, x) of a 4-d blocked layout lives: n*sn + (c/B)*sc + y*sy + x*sx +
 * c%B (B = 1 for plain layouts). */
typedef struct layout {
    int64_t sn, sc, sy, sx;
    int b;
} layout;

/* One reorder primitive with its source and destination memories (handles set per call). */
typedef struct reorder {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
} reorder;

/* What each thread needs of its own: a stream, memory objects (their handles change per
 * chunk), the per-chunk weight and bias gradients, and its arena regions. */
typedef struct tctx {
    dnnl_stream_t strm;
    dnnl_memory_t f_src, f_w, f_b, f_dst, d_dsrc, d_w, d_ddst, w_src, w_dw, w_db, w_ddst;
    reorder r_fsrc, r_wsrc, r_dsrc, r_ddst, r_dwout, r_pre;
    float *b_dwt, *b_dwo, *b_db;
    dnnl_memory_t m_sf, m_sd, m_sw; /* the primitives' scratchpads, in the arena */
    float *b_dst, *b_src, *b_ddst2, *b_pre, *b_wg;
} tctx;

typedef struct shape_state {
    int nb, threads; /* images per chunk, thread count of the contexts */
    cnnl__conv_geom g; /* geometry with n = nb */
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    dnnl_memory_desc_t src_plain, w_plain, b_md, fsrc_md, fw_md, dst_md, dw_md, dsrc_md, dd_md, wsrc_md, wdd_md,
        wdw_md;
    dnnl_memory_desc_t scr_f, scr_d, scr_w; /* scratchpads of the three primitives */
    bool fsrc_plain, dsrc_plain, wsrc_plain, ddst_same;
    /* bfloat16: the output gradient is built in float32 in the forward output's layout and
     * converted into the weight-gradient primitive's bfloat16 layout (region sz_pre). */
    bool bf16;
    /* Conversions done by our own loops instead of oneDNN reorders (own_kind()): the forward
     * and weight-gradient sources, the source gradient back to NCHW (dsrc_own) and the
     * bfloat16 output gradient (pre_own). */
    int fsrc_own, wsrc_own;
    bool dsrc_own, pre_own;
    bool wino; /* forward by Winograd */
    /* Weight gradients by lib/ops/conv_avx2.c instead of the primitive bwd_w (AVX2, 3x3,
     * output gradient in 8-channel blocks); sz_wg bytes of its workspace. */
    bool wg_own;
    size_t sz_wg;
    layout dst_l, ddst_l;
    /* Weights in the forward and backward-data layouts (shared, read-only in the region). */
    reorder r_fw, r_dw;
    float *b_fw, *b_dw;
    /* Arena regions in bytes: output chunk (also the output gradient), source in oneDNN's
     * layout (forward source, weight-gradient source, then source gradient), backward-data
     * output gradient when its layout differs. */
    size_t sz_dst, sz_src, sz_ddst2, sz_pre;
    tctx *t;
    /* Weight-gradient slots: slots x (weights + bias) floats. */
    float *acc;
    int slots;
} shape_state;

struct cnnl__dnnl_conv {
    dnnl_engine_t eng;
    shape_state s;
};

/* A failed oneDNN call: out of memory, or a configuration this oneDNN cannot run. */
static cnnl_status dn_fail(dnnl_status_t st, const char *what)
{
    if (st == dnnl_out_of_memory)
        return cnnl__error(CNNL_ENOMEM, "convolution (oneDNN): out of memory in %s", what);
    return cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): %s failed with status %d", what, (int)st);
}

#define DN(call)                                                                                                   \
    do {                                                                                                           \
        dnnl_status_t dn_st_ = (call);                                                                             \
        if (dn_st_ != dnnl_success)                                                                                \
            return dn_fail(dn_st_, #call);                                                                         \
    } while (0)

bool cnnl__dnnl_enabled(void)
{
    const char *e = getenv("CNNLITE_CONV_ENGINE");
    return !(e && strcmp(e, "portable") == 0);
}

cnnl_status cnnl__dnnl_bf16_check(void)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16)
        return CNNL_OK;
    return cnnl__error(CNNL_EUNSUPPORTED, "bfloat16: this CPU (as oneDNN sees it, ISA mask 0x%x) has neither "
                       "AVX512_BF16 nor AMX", (unsigned)isa);
}

bool cnnl__dnnl_conv_ok(const cnnl__conv_geom *g)
{
    return g->stride >= 1 && g->k >= 1 && g->oh >= 1 && g->ow >= 1 && g->dil <= 1 && g->groups <= 1 &&
           cnnl__dnnl_enabled();
}

static void reorder_free(reorder *r)
{
    dnnl_primitive_destroy(r->prim);
    dnnl_memory_destroy(r->src);
    dnnl_memory_destroy(r->dst);
    memset(r, 0, sizeof *r);
}

static void tctx_free(tctx *t)
{
    dnnl_stream_destroy(t->strm);
    dnnl_memory_t *mems[] = {&t->f_src, &t->f_w, &t->f_b, &t->f_dst, &t->d_dsrc, &t->d_w,
                             &t->d_ddst, &t->w_src, &t->w_dw, &t->w_db, &t->w_ddst,
                             &t->m_sf, &t->m_sd, &t->m_sw};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        dnnl_memory_destroy(*mems[i]);
    reorder *rs[] = {&t->r_fsrc, &t->r_wsrc, &t->r_dsrc, &t->r_ddst, &t->r_dwout, &t->r_pre};
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
        reorder_free(rs[i]);
    cnnl__free(t->b_dwt);
    cnnl__free(t->b_dwo);
    cnnl__free(t->b_db);
    memset(t, 0, sizeof *t);
}

static void shape_free(shape_state *s)
{
    dnnl_primitive_destroy(s->fwd);
    dnnl_primitive_destroy(s->bwd_d);
    dnnl_primitive_destroy(s->bwd_w);
    reorder_free(&s->r_fw);
    reorder_free(&s->r_dw);
    cnnl__free(s->b_fw);
    cnnl__free(s->b_dw);
    cnnl__free(s->acc);
    for (int i = 0; s->t && i < s->threads; i++)
        tctx_free(&s->t[i]);
    free(s->t);
    memset(s, 0, sizeof *s);
}

void cnnl__dnnl_conv_free(cnnl__dnnl_conv *d)
{
    if (!d)
        return;
    shape_free(&d->s);
    dnnl_engine_destroy(d->eng);
    free(d);
}

static cnnl_status buf(float **p, const dnnl_memory_desc_t *md)
{
    size_t bytes = dnnl_memory_desc_get_size(md);
    /* Some kernels write the bias gradient up to the padded channel count (a block of 16). */
    *p = cnnl__alloc(bytes + 64 * sizeof(float));
    return *p ? CNNL_OK : cnnl__error(CNNL_ENOMEM, "convolution (oneDNN): cannot allocate %zu bytes", bytes);
}

static cnnl_status mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t eng, void *p)
{
    DN(dnnl_memory_create(m, md, eng, p ? p : DNNL_MEMORY_NONE));
    return CNNL_OK;
}

static cnnl_status make_reorder(reorder *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                dnnl_engine_t eng)
{
    dnnl_primitive_desc_t pd;
    DN(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(&r->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    DN(st);
    cnnl_status s;
    if ((s = mem(&r->src, from, eng, NULL)) != CNNL_OK || (s = mem(&r->dst, to, eng, NULL)) != CNNL_OK)
        return s;
    return CNNL_OK;
}

static cnnl_status run_reorder(dnnl_stream_t strm, const reorder *r, const void *from, void *to)
{
    DN(dnnl_memory_set_data_handle(r->src, (void *)from));
    DN(dnnl_memory_set_data_handle(r->dst, to));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, r->src}, {DNNL_ARG_TO, r->dst}};
    DN(dnnl_primitive_execute(r->prim, strm, 2, args));
    return CNNL_OK;
}

/* The layout of @p md if it is plain or blocked by channels only. */
static bool layout_of(const dnnl_memory_desc_t *md, layout *l)
{
    if (md->format_kind != dnnl_blocked || md->ndims != 4 || md->offset0 != 0)
        return false;
    const dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
    if (bd->inner_nblks > 1 || (bd->inner_nblks == 1 && bd->inner_idxs[0] != 1))
        return false;
    l->sn = bd->strides[0];
    l->sc = bd->strides[1];
    l->sy = bd->strides[2];
    l->sx = bd->strides[3];
    l->b = bd->inner_nblks ? (int)bd->inner_blks[0] : 1;
    return l->b <= 64;
}

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static void geometry(const cnnl__conv_geom *g, dnnl_dims_t src, dnnl_dims_t wt, dnnl_dims_t bias, dnnl_dims_t dst,
                     dnnl_dims_t strides, dnnl_dims_t pad_l, dnnl_dims_t pad_r)
{
    src[0] = g->n, src[1] = g->c, src[2] = g->h, src[3] = g->w;
    wt[0] = g->oc, wt[1] = g->c, wt[2] = g->k, wt[3] = g->k;
    bias[0] = g->oc;
    dst[0] = g->n, dst[1] = g->oc, dst[2] = g->oh, dst[3] = g->ow;
    strides[0] = strides[1] = g->stride;
    pad_l[0] = pad_l[1] = g->pad;
    /* oneDNN wants the right padding that makes the sizes consistent. */
    pad_r[0] = (g->oh - 1) * g->stride + g->k - g->h - g->pad;
    pad_r[1] = (g->ow - 1) * g->stride + g->k - g->w - g->pad;
}

/* Creates a primitive from an op descriptor (optionally with a forward hint). */
/* Creates a primitive from an op descriptor (optionally with a forward hint). Its scratchpad
 * is ours (@p scr receives its descriptor): each thread passes its own, since primitives run
 * concurrently on several threads. */
static dnnl_status_t try_prim(dnnl_primitive_t *prim, dnnl_primitive_desc_t *pd_out, const void *desc,
                              dnnl_engine_t eng, const_dnnl_primitive_desc_t hint, dnnl_memory_desc_t *scr)
{
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st != dnnl_success)
        return st;
    st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&pd, desc, attr, eng, hint);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return st;
    st = dnnl_primitive_create(prim, pd);
    if (st != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return st;
    }
    *scr = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *pd_out = pd;
    return dnnl_success;
}

static cnnl_status make_prim(dnnl_primitive_t *prim, dnnl_primitive_desc_t *pd_out, const void *desc,
                             dnnl_engine_t eng, const_dnnl_primitive_desc_t hint, dnnl_memory_desc_t *scr)
{
    DN(try_prim(prim, pd_out, desc, eng, hint, scr));
    return CNNL_OK;
}

/* Winograd F(4x4, 3x3) (oneDNN's AVX-512 kernels; forward only) for float32 3x3 stride-1
 * convolutions with at least 32 input channels and channel counts that fill 16-lane blocks,
 * on CPUs where oneDNN runs AVX-512: 4x fewer multiplications than direct, at a rounding
 * error (1e-6 relative) well inside the 1e-4 parity tolerance (tests/nn/test_engines.c and the
 * parity suite check it). With 16 input channels it measured no faster than direct. oneDNN's
 * Winograd kernels hold about 15 MB more memory. Elsewhere, or when oneDNN declines a shape,
 * the direct algorithm runs. CNNLITE_CONV_ALGO=direct turns it off. */
static bool want_winograd(const cnnl__conv_geom *g)
{
    const char *e = getenv("CNNLITE_CONV_ALGO");
    if (e && strcmp(e, "direct") == 0)
        return false;
    if (g->bf16 || g->k != 3 || g->stride != 1 || g->pad != 1 || g->c % 16 || g->oc % 16 || g->c < 32)
        return false;
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

bool cnnl__dnnl_conv_winograd(const cnnl__dnnl_conv *d)
{
    return d && d->s.wino;
}

/* How a float32 NCHW source reaches oneDNN's layout @p md: by our own loops when that layout is
 * nChw16c (whole blocks; float32 or bfloat16) or plain NCHW in bfloat16, else by a oneDNN
 * reorder (OWN_NONE). Ours ran 3x faster than oneDNN 2.6's reorders into bfloat16 and 2x
 * faster into float32 on a Zen 5 CPU (lib/ops/pool_simd.c). */
enum { OWN_NONE, OWN_PLAIN, OWN_BLK16 };

/* Whether float32 @p md is the source's shape in nChw16c with whole blocks. */
static bool blk16_f32(const shape_state *s, const dnnl_memory_desc_t *md)
{
    dnnl_memory_desc_t blk;
    return md->data_type == dnnl_f32 && s->g.c % 16 == 0 &&
           dnnl_memory_desc_init_by_tag(&blk, 4, s->src_plain.dims, dnnl_f32, dnnl_nChw16c) == dnnl_success &&
           dnnl_memory_desc_equal(md, &blk);
}

static int own_kind(const shape_state *s, const dnnl_memory_desc_t *md)
{
    if (md->data_type != (s->bf16 ? dnnl_bf16 : dnnl_f32))
        return OWN_NONE;
    dnnl_memory_desc_t m = *md;
    m.data_type = dnnl_f32;
    if (s->bf16 && dnnl_memory_desc_equal(&m, &s->src_plain))
        return OWN_PLAIN;
    return blk16_f32(s, &m) ? OWN_BLK16 : OWN_NONE;
}

/* The conversion own_kind() chose, of @p nb images. */
static void own_convert(const shape_state *s, int level, int kind, const float *x, int nb, void *dst)
{
    size_t hw = (size_t)s->g.h * s->g.w;
    if (!s->bf16)
        cnnl__to_blocked16(level, x, nb, s->g.c, hw, dst);
    else if (kind == OWN_PLAIN)
        cnnl__bf16_convert(level, x, dst, (size_t)nb * s->g.c * hw);
    else
        cnnl__bf16_to_blocked16(level, x, nb, s->g.c, hw, dst);
}

/* The primitives for chunks of s->nb images (made while the caller's default team is one
 * thread, so that oneDNN plans them for one thread) and their layouts. */
static cnnl_status make_primitives(cnnl__dnnl_conv *d, shape_state *s)
{
    cnnl_status st;
    dnnl_dims_t sd, wd, bd, dd, strides, pl, pr;
    geometry(&s->g, sd, wd, bd, dd, strides, pl, pr);
    dnnl_memory_desc_t src_any, w_any, dst_any, dsrc_any, grad_any;
    s->bf16 = s->g.bf16;
    dnnl_data_type_t in_t = s->bf16 ? dnnl_bf16 : dnnl_f32;
    DN(dnnl_memory_desc_init_by_tag(&src_any, 4, sd, in_t, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&dsrc_any, 4, sd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, in_t, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&s->b_md, 1, bd, dnnl_f32, dnnl_x));
    DN(dnnl_memory_desc_init_by_tag(&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&s->src_plain, 4, sd, dnnl_f32, dnnl_nchw));
    DN(dnnl_memory_desc_init_by_tag(&s->w_plain, 4, wd, dnnl_f32, dnnl_oihw));
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd;
    s->wino = want_winograd(&s->g) &&
              dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_winograd, &src_any,
                                                 &w_any, &s->b_md, &dst_any, strides, pl, pr) == dnnl_success &&
              try_prim(&s->fwd, &pd, &cd, d->eng, NULL, &s->scr_f) == dnnl_success;
    if (s->wino && !layout_of(query(pd, dnnl_query_dst_md), &s->dst_l)) {
        dnnl_primitive_destroy(s->fwd);
        s->fwd = NULL;
        dnnl_primitive_desc_destroy(pd);
        s->wino = false;
    }
    if (!s->wino) {
        DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src_any, &w_any,
                                              &s->b_md, &dst_any, strides, pl, pr));
        if ((st = make_prim(&s->fwd, &pd, &cd, d->eng, NULL, &s->scr_f)) != CNNL_OK)
            return st;
    }
    if (!layout_of(query(pd, dnnl_query_dst_md), &s->dst_l)) {
        /* An unexpected layout: ask for plain NCHW output instead. */
        dnnl_primitive_destroy(s->fwd);
        s->fwd = NULL;
        dnnl_primitive_desc_destroy(pd);
        dnnl_memory_desc_t dst_plain;
        DN(dnnl_memory_desc_init_by_tag(&dst_plain, 4, dd, dnnl_f32, dnnl_nchw));
        DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src_any, &w_any,
                                              &s->b_md, &dst_plain, strides, pl, pr));
        if ((st = make_prim(&s->fwd, &pd, &cd, d->eng, NULL, &s->scr_f)) != CNNL_OK)
            return st;
        layout_of(query(pd, dnnl_query_dst_md), &s->dst_l);
    }
    s->dst_md = *query(pd, dnnl_query_dst_md);
    s->fsrc_md = *query(pd, dnnl_query_src_md);
    s->fw_md = *query(pd, dnnl_query_weights_md);

    /* Backward primitives, hinted by the forward one, reading the output gradient in the
     * forward output's layout (float32) or in a bfloat16 layout of their choice; gradients of
     * the weights, bias and source are float32. */
    dnnl_convolution_desc_t bdd, bwd;
    dnnl_primitive_desc_t pd_d = NULL, pd_w = NULL;
    dnnl_memory_desc_t dw_f32;
    DN(dnnl_memory_desc_init_by_tag(&dw_f32, 4, wd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&grad_any, 4, dd, dnnl_bf16, dnnl_format_tag_any));
    const dnnl_memory_desc_t *gmd = s->bf16 ? &grad_any : &s->dst_md;
    st = CNNL_OK;
    /* Backward stays direct. With oneDNN 2.6's Winograd weight gradient, training over 2
     * processes drifted 1e-2 relative from one process within an epoch (tests/train/
     * test_dist.c, tests/mpi) against 1e-6 with direct, although single calls agree to 1e-6;
     * its backward data took that drift to 5e-6, half the tests' 1e-5 bound, for a few percent
     * of a training step. */
    if (dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &dsrc_any, &w_any, gmd, strides, pl,
                                                 pr) != dnnl_success ||
        dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &src_any, &dw_f32, &s->b_md, gmd,
                                                    strides, pl, pr) != dnnl_success)
        st = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): backward descriptors failed");
    if (st == CNNL_OK)
        st = make_prim(&s->bwd_d, &pd_d, &bdd, d->eng, pd, &s->scr_d);
    if (st == CNNL_OK)
        st = make_prim(&s->bwd_w, &pd_w, &bwd, d->eng, pd, &s->scr_w);
    if (st == CNNL_OK) {
        s->dw_md = *query(pd_d, dnnl_query_weights_md);
        s->dsrc_md = *query(pd_d, dnnl_query_diff_src_md);
        s->dd_md = *query(pd_d, dnnl_query_diff_dst_md);
        s->wdd_md = *query(pd_w, dnnl_query_diff_dst_md);
        s->wdw_md = *query(pd_w, dnnl_query_diff_weights_md);
        s->wsrc_md = *query(pd_w, dnnl_query_src_md);
        /* The output gradient is built in the weight-gradient primitive's layout (in the
         * output region); backward data reads it there or from a reordered copy. */
        const dnnl_memory_desc_t *built = s->bf16 ? &s->dst_md : &s->wdd_md;
        if (!layout_of(built, &s->ddst_l) || dnnl_memory_desc_get_size(built) > dnnl_memory_desc_get_size(&s->dst_md))
            st = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): unexpected gradient layout");
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(pd_d);
    dnnl_primitive_desc_destroy(pd_w);
    if (st != CNNL_OK)
        return st;
    s->fsrc_plain = dnnl_memory_desc_equal(&s->src_plain, &s->fsrc_md);
    s->wsrc_plain = dnnl_memory_desc_equal(&s->src_plain, &s->wsrc_md);
    s->dsrc_plain = dnnl_memory_desc_equal(&s->src_plain, &s->dsrc_md);
    s->ddst_same = dnnl_memory_desc_equal(&s->wdd_md, &s->dd_md);
    s->fsrc_own = own_kind(s, &s->fsrc_md);
    s->wsrc_own = own_kind(s, &s->wsrc_md);
    s->dsrc_own = blk16_f32(s, &s->dsrc_md);
    if (s->bf16) {
        /* The output gradient, built in float32 in the forward output's layout, goes into the
         * same layout in bfloat16: an element-wise conversion. */
        dnnl_memory_desc_t m = s->wdd_md;
        m.data_type = dnnl_f32;
        s->pre_own = dnnl_memory_desc_equal(&m, &s->dst_md);
    }
    s->wg_own = cnnl__wgrad8_ok(&s->g) && s->ddst_l.b == 8 && s->ddst_l.sx == 8;
    s->sz_wg = s->wg_own ? sizeof(float) * cnnl__wgrad8_ws_floats(&s->g) : 0;
    s->sz_dst = dnnl_memory_desc_get_size(&s->dst_md);
    s->sz_src = 0;
    const dnnl_memory_desc_t *srcs[3] = {&s->fsrc_md, &s->wsrc_md, &s->dsrc_md};
    bool plain[3] = {s->fsrc_plain, s->wsrc_plain || s->wg_own, s->dsrc_plain};
    for (int i = 0; i < 3; i++) {
        size_t z = plain[i] ? 0 : dnnl_memory_desc_get_size(srcs[i]);
        s->sz_src = z > s->sz_src ? z : s->sz_src;
    }
    s->sz_ddst2 = s->ddst_same ? 0 : dnnl_memory_desc_get_size(&s->dd_md);
    s->sz_pre = s->bf16 ? dnnl_memory_desc_get_size(&s->wdd_md) : 0;
    if ((st = make_reorder(&s->r_fw, &s->w_plain, &s->fw_md, d->eng)) != CNNL_OK ||
        (st = buf(&s->b_fw, &s->fw_md)) != CNNL_OK ||
        (st = make_reorder(&s->r_dw, &s->w_plain, &s->dw_md, d->eng)) != CNNL_OK ||
        (st = buf(&s->b_dw, &s->dw_md)) != CNNL_OK)
        return st;
    return CNNL_OK;
}

static cnnl_status make_tctx(cnnl__dnnl_conv *d, const shape_state *s, tctx *t)
{
    cnnl_status st;
    dnnl_engine_t e = d->eng;
    DN(dnnl_stream_create(&t->strm, e, dnnl_stream_default_flags));
    if ((st = mem(&t->f_src, &s->fsrc_md, e, NULL)) != CNNL_OK || (st = mem(&t->f_w, &s->fw_md, e, s->b_fw)) ||
        (st = mem(&t->f_b, &s->b_md, e, NULL)) || (st = mem(&t->f_dst, &s->dst_md, e, NULL)) ||
        (st = mem(&t->d_dsrc, &s->dsrc_md, e, NULL)) || (st = mem(&t->d_w, &s->dw_md, e, s->b_dw)) ||
        (st = mem(&t->d_ddst, &s->dd_md, e, NULL)) || (st = mem(&t->w_src, &s->wsrc_md, e, NULL)) ||
        (st = buf(&t->b_dwt, &s->wdw_md)) || (st = mem(&t->w_dw, &s->wdw_md, e, t->b_dwt)) ||
        (st = buf(&t->b_db, &s->b_md)) || (st = mem(&t->w_db, &s->b_md, e, t->b_db)) ||
        (st = mem(&t->w_ddst, &s->wdd_md, e, NULL)) || (st = buf(&t->b_dwo, &s->w_plain)) ||
        (st = make_reorder(&t->r_dwout, &s->wdw_md, &s->w_plain, e)))
        return st;
    /* The scratchpads live in the thread's arena (bind() points them there). */
    if ((st = mem(&t->m_sf, &s->scr_f, e, NULL)) != CNNL_OK || (st = mem(&t->m_sd, &s->scr_d, e, NULL)) ||
        (st = mem(&t->m_sw, &s->scr_w, e, NULL)))
        return st;
    if (!s->fsrc_plain && !s->fsrc_own && (st = make_reorder(&t->r_fsrc, &s->src_plain, &s->fsrc_md, e)) != CNNL_OK)
        return st;
    if (!s->wsrc_plain && !s->wsrc_own && (st = make_reorder(&t->r_wsrc, &s->src_plain, &s->wsrc_md, e)) != CNNL_OK)
        return st;
    if (!s->dsrc_plain && !s->dsrc_own && (st = make_reorder(&t->r_dsrc, &s->dsrc_md, &s->src_plain, e)) != CNNL_OK)
        return st;
    if (!s->ddst_same && (st = make_reorder(&t->r_ddst, &s->wdd_md, &s->dd_md, e)) != CNNL_OK)
        return st;
    if (s->bf16 && !s->pre_own && (st = make_reorder(&t->r_pre, &s->dst_md, &s->wdd_md, e)) != CNNL_OK)
        return st;
    return CNNL_OK;
}

/* The large buffers live in one arena per calling thread, shared by every convolution layer
 * that thread runs (a layer uses them only during its own call): the memory of the biggest
 * layer instead of the sum of all. Grown on demand, so no allocation once the largest layer
 * has run; freed when the thread exits. */
typedef struct arena {
    float *p;
    size_t bytes;
} arena;

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int arena_key_ok;

static void arena_destroy(void *a)
{
    cnnl__free(((arena *)a)->p);
    free(a);
}

static void arena_init(void)
{
    arena_key_ok = pthread_key_create(&arena_key, arena_destroy) == 0;
}

static float *arena_get(size_t bytes)
{
    pthread_once(&arena_once, arena_init);
    if (!arena_key_ok)
        return NULL;
    arena *a = pthread_getspecific(arena_key);
    if (!a) {
        if (!(a = calloc(1, sizeof *a)))
            return NULL;
        if (pthread_setspecific(arena_key, a) != 0) {
            free(a);
            return NULL;
        }
    }
    if (a->bytes < bytes) {
        cnnl__free(a->p);
        a->bytes = 0;
        if (!(a->p = cnnl__alloc(bytes)))
            return NULL;
        a->bytes = bytes;
    }
    return a->p;
}

static size_t round64(size_t n)
{
    return (n + 63) / 64 * 64;
}

/* Points the arena-backed memories of the calling thread's context at its arena, sized for
 * what the call uses: the forward pass (@p fwd) or a backward pass with weight gradients
 * (@p wgrad) and/or the source gradient (@p dgrad). */
static cnnl_status bind(const shape_state *s, tctx *t, bool fwd, bool wgrad, bool dgrad)
{
    size_t src = 0;
    if (fwd && !s->fsrc_plain)
        src = dnnl_memory_desc_get_size(&s->fsrc_md);
    bool own_wg = wgrad && s->wg_own;
    if (own_wg)
        wgrad = false; /* neither the primitive's source nor its scratchpad */
    if (wgrad && !s->wsrc_plain && dnnl_memory_desc_get_size(&s->wsrc_md) > src)
        src = dnnl_memory_desc_get_size(&s->wsrc_md);
    if (dgrad && !s->dsrc_plain && dnnl_memory_desc_get_size(&s->dsrc_md) > src)
        src = dnnl_memory_desc_get_size(&s->dsrc_md);
    size_t a = round64(s->sz_dst), b = round64(src), c = dgrad ? round64(s->sz_ddst2) : 0;
    size_t e = (fwd ? 0 : round64(s->sz_pre)) + (own_wg ? round64(s->sz_wg) : 0);
    /* The scratchpad of the primitives the call runs (Winograd's is several MiB): in the
     * arena, so that layers share it instead of each holding its own. */
    size_t f = fwd ? dnnl_memory_desc_get_size(&s->scr_f) : 0;
    if (wgrad && dnnl_memory_desc_get_size(&s->scr_w) > f)
        f = dnnl_memory_desc_get_size(&s->scr_w);
    if (dgrad && dnnl_memory_desc_get_size(&s->scr_d) > f)
        f = dnnl_memory_desc_get_size(&s->scr_d);
    f = round64(f);
    char *base = (char *)arena_get(a + b + c + e + f);
    if (!base)
        return cnnl__error(CNNL_ENOMEM, "convolution (oneDNN): cannot allocate %zu bytes of workspace",
                           a + b + c + e + f);
    char *scr = base + a + b + c + e;
    if (fwd)
        DN(dnnl_memory_set_data_handle(t->m_sf, scr));
    if (wgrad)
        DN(dnnl_memory_set_data_handle(t->m_sw, scr));
    if (dgrad)
        DN(dnnl_memory_set_data_handle(t->m_sd, scr));
    t->b_dst = (float *)(void *)base;
    t->b_src = (float *)(void *)(base + a);
    t->b_ddst2 = c ? (float *)(void *)(base + a + b) : NULL;
    t->b_pre = !fwd && s->sz_pre ? (float *)(void *)(base + a + b + c) : NULL;
    t->b_wg = own_wg ? (float *)(void *)(base + a + b + c + round64(s->sz_pre)) : NULL;
    float *grad = s->bf16 ? t->b_pre : t->b_dst; /* the output gradient the primitives read */
    DN(dnnl_memory_set_data_handle(t->f_dst, t->b_dst));
    if (!fwd) {
        DN(dnnl_memory_set_data_handle(t->w_ddst, grad));
        DN(dnnl_memory_set_data_handle(t->d_ddst, s->ddst_same ? grad : t->b_ddst2));
    }
    if (!s->fsrc_plain)
        DN(dnnl_memory_set_data_handle(t->f_src, t->b_src));
    if (!s->wsrc_plain)
        DN(dnnl_memory_set_data_handle(t->w_src, t->b_src));
    if (!s->dsrc_plain)
        DN(dnnl_memory_set_data_handle(t->d_dsrc, t->b_src));
    return CNNL_OK;
}

/* Images per chunk: the largest divisor of the batch whose unpooled output fits
 * cnnl__dnnl_chunk_bytes (at least one image), so that every chunk has the same shape. */
static int chunk_images(const cnnl__conv_geom *g)
{
    size_t per = (size_t)g->oc * g->oh * g->ow * sizeof(float);
    size_t lim = per ? cnnl__dnnl_chunk_bytes / per : 1;
    int nb = 1;
    for (int k = 1; k <= g->n; k++)
        if (g->n % k == 0 && (size_t)k <= lim)
            nb = k;
    return nb;
}

static bool same_geom(const cnnl__conv_geom *a, const cnnl__conv_geom *b)
{
    return a->c == b->c && a->h == b->h && a->w == b->w && a->oc == b->oc && a->k == b->k && a->stride == b->stride &&
           a->pad == b->pad && a->bf16 == b->bf16;
}

/* Runs with the caller's default OpenMP team at @p threads, restoring it afterwards. */
typedef struct team {
    int saved;
} team;

static team team_enter(int threads)
{
    team t = {omp_get_max_threads()};
    if (t.saved != threads)
        omp_set_num_threads(threads);
    return t;
}

static void team_leave(team t, int threads)
{
    if (t.saved != threads)
        omp_set_num_threads(t.saved);
}

/* The engine state for batch geometry @p g on @p threads threads (made on first use). */
static cnnl_status get_shape(cnnl__dnnl_conv **dp, const cnnl__conv_geom *g, int threads, shape_state **out)
{
    cnnl__dnnl_conv *d = *dp;
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d)
            return cnnl__error(CNNL_ENOMEM, "convolution (oneDNN): out of memory");
        if (dnnl_engine_create(&d->eng, dnnl_cpu, 0) != dnnl_success) {
            free(d);
            return cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): cannot create the CPU engine");
        }
        *dp = d;
    }
    shape_state *s = &d->s;
    int nb = chunk_images(g);
    /* Four slices keep two threads busy with dynamic scheduling; more would only cost
     * memory (a weight gradient each). */
    int slots = g->n / nb < 4 ? g->n / nb : 4;
    if (s->fwd && s->nb == nb && s->threads == threads && s->slots == slots && same_geom(&s->g, g)) {
        *out = s;
        return CNNL_OK;
    }
    shape_free(s);
    s->nb = nb;
    s->g = *g;
    s->g.n = nb;
    team tm = team_enter(1);
    cnnl_status st = make_primitives(d, s);
    team_leave(tm, 1);
    if (st == CNNL_OK) {
        s->t = calloc((size_t)threads, sizeof *s->t);
        if (!s->t)
            st = cnnl__error(CNNL_ENOMEM, "convolution (oneDNN): out of memory");
        else
            s->threads = threads;
    }
    for (int i = 0; st == CNNL_OK && i < threads; i++)
        st = make_tctx(d, s, &s->t[i]);
    size_t nw = (size_t)g->oc * g->c * g->k * g->k + (size_t)g->oc;
    if (st == CNNL_OK) {
        s->slots = slots;
        s->acc = cnnl__alloc_array((size_t)slots, nw * sizeof(float), false);
        if (!s->acc)
            st = CNNL_ENOMEM;
    }
    if (st != CNNL_OK) {
        shape_free(s);
        return st;
    }
    *out = s;
    return CNNL_OK;
}

static inline int64_t at(const layout *l, int n, int c, int y, int x)
{
    return n * l->sn + (c / l->b) * l->sc + y * l->sy + x * l->sx + c % l->b;
}

/* Pooled outputs are produced in tiles of this many columns: the lanes of a channel block are
 * computed side by side (vectorised), then stored to the block's NCHW planes. */
#define TILE 16

/* Four lanes of the pool: the first maximum of a, b, c, d (in that order, as PyTorch keeps
 * it) after ReLU into @p out, its position into @p idx, and x * 0 added to @p fin (NaN if any
 * x is not finite). Branch-free: the maximum's position is unpredictable. */
#if defined(__SSE2__)
static inline void pool4(const float *q0, const float *q1, int B, float *out, int32_t *idx, __m128 *fin)
{
    __m128 a = _mm_loadu_ps(q0), b = _mm_loadu_ps(q0 + B), c = _mm_loadu_ps(q1), d = _mm_loadu_ps(q1 + B);
    __m128 z = _mm_setzero_ps();
    *fin = _mm_add_ps(*fin, _mm_add_ps(_mm_add_ps(_mm_mul_ps(a, z), _mm_mul_ps(b, z)),
                                       _mm_add_ps(_mm_mul_ps(c, z), _mm_mul_ps(d, z))));
    __m128 mb = _mm_cmpgt_ps(b, a), md = _mm_cmpgt_ps(d, c);
    __m128 m0 = _mm_or_ps(_mm_and_ps(mb, b), _mm_andnot_ps(mb, a));
    __m128 m1 = _mm_or_ps(_mm_and_ps(md, d), _mm_andnot_ps(md, c));
    __m128i one = _mm_set1_epi32(1), two = _mm_set1_epi32(2);
    __m128i i0 = _mm_and_si128(_mm_castps_si128(mb), one);
    __m128i i1 = _mm_add_epi32(two, _mm_and_si128(_mm_castps_si128(md), one));
    __m128 mh = _mm_cmpgt_ps(m1, m0);
    __m128 m = _mm_or_ps(_mm_and_ps(mh, m1), _mm_andnot_ps(mh, m0));
    __m128i h = _mm_castps_si128(mh);
    __m128i i = _mm_or_si128(_mm_and_si128(h, i1), _mm_andnot_si128(h, i0));
    _mm_storeu_ps(out, _mm_and_ps(m, _mm_cmpgt_ps(m, z)));
    _mm_storeu_si128((__m128i *)(void *)idx, i);
}
#endif

/* ReLU and 2x2 max pool of one pooled row of one channel block: lanes [0, @p nch) of @p B,
 * from rows @p p0 / @p p1 of oneDNN's blocked output (pixel stride B), into the NCHW planes
 * @p y / @p arg (plane stride @p plane). Returns x * 0 summed over the inputs (NaN if any is
 * not finite). The lanes of a block are computed side by side, TILE columns at a time, then
 * stored to the block's planes. */
static float pool_row_blocked(int level, const float *p0, const float *p1, int B, int nch, int pw, float *y,
                              uint8_t *arg, size_t plane)
{
    float out[TILE][16];
    int32_t idx[TILE][16];
    float fin = 0.0f;
#if defined(__SSE2__)
    __m128 fv = _mm_setzero_ps();
#endif
    /* Whole tiles at AVX-512 / AVX2 width when the CPU has it (lib/ops/pool_simd.c). */
    int done = cnnl__pool_blocked_simd(level, p0, p1, B, nch, pw, y, arg, plane, &fin);
    for (int pc0 = done; pc0 < pw; pc0 += TILE) {
        int tn = pw - pc0 < TILE ? pw - pc0 : TILE;
        for (int t = 0; t < tn; t++) {
            const float *q0 = p0 + (size_t)(2 * (pc0 + t)) * B, *q1 = p1 + (size_t)(2 * (pc0 + t)) * B;
#if defined(__SSE2__)
            for (int j = 0; j < B; j += 4)
                pool4(q0 + j, q1 + j, B, &out[t][j], &idx[t][j], &fv);
#else
            for (int j = 0; j < B; j++) {
                float a = q0[j], b = q0[B + j], c = q1[j], d = q1[B + j];
                fin += a * 0.0f + b * 0.0f + c * 0.0f + d * 0.0f;
                float m0 = b > a ? b : a, m1 = d > c ? d : c;
                int i0 = b > a ? 1 : 0, i1 = d > c ? 3 : 2;
                bool hi = m1 > m0;
                float m = hi ? m1 : m0;
                out[t][j] = m > 0.0f ? m : 0.0f;
                idx[t][j] = hi ? i1 : i0;
            }
#endif
        }
        for (int j = 0; j < nch; j++)
            for (int t = 0; t < tn; t++) {
                y[(size_t)j * plane + pc0 + t] = out[t][j];
                if (arg)
                    arg[(size_t)j * plane + pc0 + t] = (uint8_t)idx[t][j];
            }
    }
#if defined(__SSE2__)
    float f4[4];
    _mm_storeu_ps(f4, fv);
    fin += f4[0] + f4[1] + f4[2] + f4[3];
#endif
    return fin;
}

/* The reverse for backward: the pooled gradient (masked by output > 0) of one pooled row of
 * one channel block goes to the maximum's position in rows @p p0 / @p p1 (blocked, pixel
 * stride B); the other three positions of each window get 0. */
static void unpool_row_blocked(int level, const float *gr, const float *yr, const uint8_t *ar, size_t plane, int B,
                               int nch, int pw, float *p0, float *p1)
{
    float gt[TILE][16];
    int32_t idx[TILE][16];
    int done = cnnl__unpool_blocked_simd(level, gr, yr, ar, plane, B, nch, pw, p0, p1);
    for (int pc0 = done; pc0 < pw; pc0 += TILE) {
        int tn = pw - pc0 < TILE ? pw - pc0 : TILE;
        for (int j = 0; j < B; j++)
            for (int t = 0; t < tn; t++) {
                if (j < nch) {
                    size_t o = (size_t)j * plane + pc0 + t;
                    gt[t][j] = yr[o] > 0.0f ? gr[o] : 0.0f;
                    idx[t][j] = ar[o];
                } else {
                    gt[t][j] = 0.0f;
                    idx[t][j] = 0;
                }
            }
        for (int t = 0; t < tn; t++) {
            float *q0 = p0 + (size_t)(2 * (pc0 + t)) * B, *q1 = p1 + (size_t)(2 * (pc0 + t)) * B;
#if defined(__SSE2__)
            for (int j = 0; j < B; j += 4) {
                __m128 v = _mm_loadu_ps(&gt[t][j]);
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)&idx[t][j]);
                _mm_storeu_ps(q0 + j, _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, _mm_set1_epi32(0))), v));
                _mm_storeu_ps(q0 + B + j, _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, _mm_set1_epi32(1))), v));
                _mm_storeu_ps(q1 + j, _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, _mm_set1_epi32(2))), v));
                _mm_storeu_ps(q1 + B + j, _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, _mm_set1_epi32(3))), v));
            }
#else
            for (int j = 0; j < B; j++) {
                float v = gt[t][j];
                int a = idx[t][j];
                q0[j] = a == 0 ? v : 0.0f;
                q0[B + j] = a == 1 ? v : 0.0f;
                q1[j] = a == 2 ? v : 0.0f;
                q1[B + j] = a == 3 ? v : 0.0f;
            }
#endif
        }
    }
}

/* The fast paths take oneDNN's usual 16- or 8-channel blocks with dense pixels. */
static bool fast_blocked(const layout *l)
{
    return (l->b == 16 || l->b == 8) && l->sx == l->b;
}

/* Finiteness, ReLU and optional 2x2 max pool of one chunk's output (layout @p l) into NCHW
 * @p y / @p arg (NULL: the maxima's positions are not kept). Returns false if a raw output
 * is not finite. */
static bool epilogue(const cnnl__conv_geom *g, const float *src, const layout *l, int nb, float *y, uint8_t *arg,
                     int threads)
{
    int oh = g->oh, ow = g->ow, ph = oh / 2, pw = ow / 2;
    int bad = 0, level = cnnl__simd_level();
    int groups = (g->oc + l->b - 1) / l->b;
    int rows = g->pool ? ph : oh;
    size_t plane = g->pool ? (size_t)ph * pw : (size_t)oh * ow;
#pragma omp parallel for collapse(3) num_threads(threads) schedule(static) reduction(| : bad) if (threads > 1)
    for (int n = 0; n < nb; n++)
        for (int cg = 0; cg < groups; cg++)
            for (int r = 0; r < rows; r++) {
                int c0 = cg * l->b, c1 = c0 + l->b < g->oc ? c0 + l->b : g->oc;
                float fin = 0.0f;
                if (g->pool && fast_blocked(l)) {
                    const float *p0 = src + at(l, n, c0, 2 * r, 0), *p1 = p0 + l->sy;
                    size_t o = ((size_t)n * g->oc + c0) * plane + (size_t)r * pw;
                    fin += pool_row_blocked(level, p0, p1, l->b, c1 - c0, pw, y + o, arg ? arg + o : NULL, plane);
                    /* Raw values of the odd last row/column the pool drops are checked too. */
                    for (int j = 0; j < c1 - c0; j++) {
                        if (ow & 1)
                            fin += p0[(ow - 1) * l->sx + j] * 0.0f + p1[(ow - 1) * l->sx + j] * 0.0f;
                        if ((oh & 1) && r == rows - 1)
                            for (int x = 0; x < ow; x++)
                                fin += p1[l->sy + x * l->sx + j] * 0.0f;
                    }
                } else if (g->pool) {
                    /* Raw values of the odd last row/column the pool drops are checked too. */
                    for (int c = c0; c < c1; c++) {
                        const float *p0 = src + at(l, n, c, 2 * r, 0), *p1 = p0 + l->sy;
                        float *yr = y + ((size_t)n * g->oc + c) * plane + (size_t)r * pw;
                        uint8_t *ar = arg ? arg + ((size_t)n * g->oc + c) * plane + (size_t)r * pw : NULL;
                        for (int pc = 0; pc < pw; pc++) {
                            float a = p0[(2 * pc) * l->sx], b = p0[(2 * pc + 1) * l->sx];
                            float cc = p1[(2 * pc) * l->sx], dd = p1[(2 * pc + 1) * l->sx];
                            fin += a * 0.0f + b * 0.0f + cc * 0.0f + dd * 0.0f;
                            /* Strict comparisons keep the first maximum, as PyTorch does. */
                            float m = a;
                            uint8_t i = 0;
                            if (b > m)
                                m = b, i = 1;
                            if (cc > m)
                                m = cc, i = 2;
                            if (dd > m)
                                m = dd, i = 3;
                            yr[pc] = m > 0.0f ? m : 0.0f;
                            if (ar)
                                ar[pc] = i;
                        }
                        if (ow & 1)
                            fin += p0[(ow - 1) * l->sx] * 0.0f + p1[(ow - 1) * l->sx] * 0.0f;
                        if ((oh & 1) && r == rows - 1) {
                            const float *p2 = p1 + l->sy;
                            for (int x = 0; x < ow; x++)
                                fin += p2[x * l->sx] * 0.0f;
                        }
                    }
                } else {
                    for (int c = c0; c < c1; c++) {
                        const float *p = src + at(l, n, c, r, 0);
                        float *yr = y + ((size_t)n * g->oc + c) * plane + (size_t)r * ow;
                        for (int x = 0; x < ow; x++) {
                            float v = p[x * l->sx];
                            fin += v * 0.0f;
                            yr[x] = g->relu ? (v > 0.0f ? v : 0.0f) : v;
                        }
                    }
                }
                bad |= !(fin == 0.0f);
            }
    return !bad;
}

/* The gradient of the raw convolution output of one chunk, in layout @p l: gy masked by the
 * ReLU (output > 0) and, pooled, routed to the position of each window's maximum, into
 * @p dst. Given @p dst16 (bfloat16, same layout) and on the pooled fast path, each pair of
 * rows is built in float32 in @p dst instead (as scratch, while it is in cache; one thread)
 * and converted into @p dst16: half the bytes written, no separate conversion pass. Returns
 * whether it wrote @p dst16. */
static bool grad_prologue(const cnnl__conv_geom *g, const float *gy, const float *y, const uint8_t *arg, int nb,
                          const layout *l, float *dst, size_t dst_floats, uint16_t *dst16, int threads)
{
    int oh = g->oh, ow = g->ow, ph = oh / 2, pw = ow / 2, level = cnnl__simd_level();
    int groups = (g->oc + l->b - 1) / l->b;
    size_t plane = g->pool ? (size_t)ph * pw : (size_t)oh * ow;
    bool fast = g->pool && fast_blocked(l);
    if (!fast)
        dst16 = NULL;
    /* Positions no output gradient reaches must be 0: the pool's dropped last row or column,
     * padding channels, and everything but the maxima outside the fast path. */
    if (dst16)
        threads = 1;
    if (dst16 && (oh | ow) & 1)
        memset(dst16, 0, dst_floats * sizeof(uint16_t));
    else if (!dst16 && ((g->pool && (!fast || (oh | ow) & 1)) || g->oc % l->b))
        memset(dst, 0, dst_floats * sizeof(float));
    int rows = g->pool ? ph : oh;
#pragma omp parallel for collapse(3) num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < nb; n++)
        for (int cg = 0; cg < groups; cg++)
            for (int r = 0; r < rows; r++) {
                int c0 = cg * l->b, c1 = c0 + l->b < g->oc ? c0 + l->b : g->oc;
                if (fast && dst16) {
                    size_t o = ((size_t)n * g->oc + c0) * plane + (size_t)r * pw, span = (size_t)2 * pw * l->b;
                    float *s0 = dst, *s1 = s0 + span; /* one thread */
                    unpool_row_blocked(level, gy + o, y + o, arg + o, plane, l->b, c1 - c0, pw, s0, s1);
                    uint16_t *q0 = dst16 + at(l, n, c0, 2 * r, 0);
                    cnnl__bf16_convert(level, s0, q0, span);
                    cnnl__bf16_convert(level, s1, q0 + l->sy, span);
                    continue;
                }
                if (fast) {
                    size_t o = ((size_t)n * g->oc + c0) * plane + (size_t)r * pw;
                    float *p0 = dst + at(l, n, c0, 2 * r, 0), *p1 = p0 + l->sy;
                    unpool_row_blocked(level, gy + o, y + o, arg + o, plane, l->b, c1 - c0, pw, p0, p1);
                    continue;
                }
                for (int c = c0; c < c1; c++) {
                    size_t o = ((size_t)n * g->oc + c) * plane;
                    if (g->pool) {
                        const float *gr = gy + o + (size_t)r * pw, *yr = y + o + (size_t)r * pw;
                        const uint8_t *ar = arg + o + (size_t)r * pw;
                        float *p0 = dst + at(l, n, c, 2 * r, 0);
                        for (int pc = 0; pc < pw; pc++) {
                            if (!(yr[pc] > 0.0f))
                                continue;
                            int a = ar[pc];
                            p0[(a >> 1) * l->sy + (2 * pc + (a & 1)) * l->sx] = gr[pc];
                        }
                    } else {
                        const float *gr = gy + o + (size_t)r * ow, *yr = y + o + (size_t)r * ow;
                        float *p = dst + at(l, n, c, r, 0);
                        for (int x = 0; x < ow; x++)
                            p[x * l->sx] = !g->relu || yr[x] > 0.0f ? gr[x] : 0.0f;
                    }
                }
            }
    return dst16 != NULL;
}

cnnl_status cnnl__dnnl_conv2d_forward(cnnl__dnnl_conv **dp, const cnnl__conv_geom *g, const float *x,
                                      const float *wt, const float *b, float *y, uint8_t *arg, bool *finite)
{
    int threads = cnnl__num_threads();
    shape_state *s;
    cnnl_status st = get_shape(dp, g, threads, &s);
    if (st != CNNL_OK)
        return st;
    float *zero_b = NULL;
    if (!b && !(zero_b = cnnl__alloc_zero(sizeof(float) * (size_t)g->oc)))
        return cnnl__error(CNNL_ENOMEM, "convolution (oneDNN): out of memory");
    team tm = team_enter(1);
    st = run_reorder(s->t[0].strm, &s->r_fw, wt, s->b_fw);
    team_leave(tm, 1);
    if (st != CNNL_OK) {
        cnnl__free(zero_b);
        return st;
    }
    int nb = s->nb, chunks = g->n / nb, bad = 0, err = 0, level = cnnl__simd_level();
    size_t in_img = (size_t)g->c * g->h * g->w;
    size_t out_img = (size_t)g->oc * (g->pool ? (size_t)(g->oh / 2) * (g->ow / 2) : (size_t)g->oh * g->ow);
    cnnl_status first = CNNL_OK;
#pragma omp parallel num_threads(threads) reduction(| : bad, err)
    {
        /* Primitives are planned for one thread: a region they open inside must not fork
         * (with threads == 1 this region is inactive and would let it fork). */
        omp_set_num_threads(1);
        tctx *t = &s->t[omp_get_thread_num()];
        cnnl_status ts = bind(s, t, true, false, false);
        if (ts == CNNL_OK && dnnl_memory_set_data_handle(t->f_b, (void *)(b ? b : zero_b)) != dnnl_success)
            ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): cannot set the bias");
#pragma omp for schedule(dynamic, 1)
        for (int ci = 0; ci < chunks; ci++) {
            if (ts != CNNL_OK)
                continue;
            size_t n0 = (size_t)ci * nb;
            const float *xs = x + n0 * in_img;
            if (s->fsrc_plain) {
                if (dnnl_memory_set_data_handle(t->f_src, (void *)xs) != dnnl_success)
                    ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): cannot set the source");
            } else if (s->fsrc_own) {
                own_convert(s, level, s->fsrc_own, xs, nb, t->b_src);
            } else {
                ts = run_reorder(t->strm, &t->r_fsrc, xs, t->b_src);
            }
            dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, t->f_src}, {DNNL_ARG_WEIGHTS, t->f_w}, {DNNL_ARG_BIAS, t->f_b},
                                       {DNNL_ARG_DST, t->f_dst}, {DNNL_ARG_SCRATCHPAD, t->m_sf}};
            if (ts == CNNL_OK && dnnl_primitive_execute(s->fwd, t->strm, 5, args) != dnnl_success)
                ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): forward failed");
            if (ts == CNNL_OK &&
                !epilogue(g, t->b_dst, &s->dst_l, nb, y + n0 * out_img, arg ? arg + n0 * out_img : NULL, 1))
                bad = 1;
        }
        if (ts != CNNL_OK) {
            err = 1;
#pragma omp critical(cnnl_dnnl_error)
            if (first == CNNL_OK)
                first = ts;
        }
    }
    cnnl__free(zero_b);
    if (err)
        return first;
    *finite = !bad;
    return CNNL_OK;
}

cnnl_status cnnl__dnnl_conv2d_backward(cnnl__dnnl_conv **dp, const cnnl__conv_geom *g, const float *x,
                                       const float *wt, const float *y, const uint8_t *arg, const float *gy,
                                       float *gx, float *gw, float *gb)
{
    int threads = cnnl__num_threads();
    shape_state *s;
    cnnl_status st = get_shape(dp, g, threads, &s);
    if (st != CNNL_OK)
        return st;
    if (gx) {
        team tm = team_enter(1);
        st = run_reorder(s->t[0].strm, &s->r_dw, wt, s->b_dw);
        team_leave(tm, 1);
        if (st != CNNL_OK)
            return st;
    }
    int nb = s->nb, chunks = g->n / nb, slots = s->slots, err = 0, level = cnnl__simd_level();
    size_t in_img = (size_t)g->c * g->h * g->w;
    size_t out_img = (size_t)g->oc * (g->pool ? (size_t)(g->oh / 2) * (g->ow / 2) : (size_t)g->oh * g->ow);
    size_t nw = (size_t)g->oc * g->c * g->k * g->k, accsz = nw + (size_t)g->oc;
    size_t dd_floats = dnnl_memory_desc_get_size(s->bf16 ? &s->dst_md : &s->wdd_md) / sizeof(float);
    cnnl_status first = CNNL_OK;
    /* Chunks belong to fixed slots; a thread takes a whole slot and sums its chunks in order. */
#pragma omp parallel num_threads(threads) reduction(| : err)
    {
        omp_set_num_threads(1); /* as in forward */
        tctx *t = &s->t[omp_get_thread_num()];
        cnnl_status ts = bind(s, t, false, gw || gb, gx != NULL);
#pragma omp for schedule(dynamic, 1)
        for (int sl = 0; sl < slots; sl++) {
            size_t lo, hi;
            cnnl__chunk((size_t)chunks, slots, sl, &lo, &hi);
            float *aw = s->acc + (size_t)sl * accsz, *ab = aw + nw;
            memset(aw, 0, sizeof(float) * accsz);
            for (size_t ci = lo; ci < hi && ts == CNNL_OK; ci++) {
                size_t n0 = ci * (size_t)nb;
                uint16_t *pre16 = s->pre_own ? (uint16_t *)(void *)t->b_pre : NULL;
                bool built16 = grad_prologue(g, gy + n0 * out_img, y + n0 * out_img, arg ? arg + n0 * out_img : NULL,
                                             nb, &s->ddst_l, t->b_dst, dd_floats, pre16, 1);
                if (pre16 && !built16)
                    cnnl__bf16_convert(level, t->b_dst, pre16, dd_floats);
                else if (s->bf16 && !pre16)
                    ts = run_reorder(t->strm, &t->r_pre, t->b_dst, t->b_pre);
                const float *xs = x + n0 * in_img;
                if ((gw || gb) && s->wg_own) {
                    const layout *dl = &s->ddst_l;
                    cnnl__wgrad8(g, nb, xs, t->b_dst, dl->sn, dl->sc, dl->sy, aw, ab, t->b_wg);
                } else if (gw || gb) {
                    if (s->wsrc_plain) {
                        if (dnnl_memory_set_data_handle(t->w_src, (void *)xs) != dnnl_success)
                            ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): cannot set the source");
                    } else if (s->wsrc_own) {
                        own_convert(s, level, s->wsrc_own, xs, nb, t->b_src);
                    } else {
                        ts = run_reorder(t->strm, &t->r_wsrc, xs, t->b_src);
                    }
                    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, t->w_src}, {DNNL_ARG_DIFF_DST, t->w_ddst},
                                               {DNNL_ARG_DIFF_WEIGHTS, t->w_dw}, {DNNL_ARG_DIFF_BIAS, t->w_db},
                                               {DNNL_ARG_SCRATCHPAD, t->m_sw}};
                    if (ts == CNNL_OK && dnnl_primitive_execute(s->bwd_w, t->strm, 5, args) != dnnl_success)
                        ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): backward weights failed");
                    if (ts == CNNL_OK && (ts = run_reorder(t->strm, &t->r_dwout, t->b_dwt, t->b_dwo)) == CNNL_OK) {
                        for (size_t j = 0; j < nw; j++)
                            aw[j] += t->b_dwo[j];
                        for (int o = 0; o < g->oc; o++)
                            ab[o] += t->b_db[o];
                    }
                }
                if (ts == CNNL_OK && gx) {
                    float *gxs = gx + n0 * in_img;
                    if (!s->ddst_same)
                        ts = run_reorder(t->strm, &t->r_ddst, s->bf16 ? t->b_pre : t->b_dst, t->b_ddst2);
                    if (ts == CNNL_OK && s->dsrc_plain && dnnl_memory_set_data_handle(t->d_dsrc, gxs) != dnnl_success)
                        ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): cannot set the gradient");
                    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, t->d_ddst}, {DNNL_ARG_WEIGHTS, t->d_w},
                                               {DNNL_ARG_DIFF_SRC, t->d_dsrc}, {DNNL_ARG_SCRATCHPAD, t->m_sd}};
                    if (ts == CNNL_OK && dnnl_primitive_execute(s->bwd_d, t->strm, 4, args) != dnnl_success)
                        ts = cnnl__error(CNNL_EUNSUPPORTED, "convolution (oneDNN): backward data failed");
                    if (ts == CNNL_OK && s->dsrc_own)
                        cnnl__from_blocked16(level, t->b_src, nb, g->c, (size_t)g->h * g->w, gxs);
                    else if (ts == CNNL_OK && !s->dsrc_plain)
                        ts = run_reorder(t->strm, &t->r_dsrc, t->b_src, gxs);
                }
            }
        }
        if (ts != CNNL_OK) {
            err = 1;
#pragma omp critical(cnnl_dnnl_error)
            if (first == CNNL_OK)
                first = ts;
        }
    }
    if (err)
        return first;
    /* Add the slots' partial sums in slot order. */
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && nw > 4096)
    for (size_t j = 0; j < accsz; j++) {
        bool is_w = j < nw;
        if ((is_w && !gw) || (!is_w && !gb))
            continue;
        float v = 0.0f;
        for (int sl = 0; sl < slots; sl++)
            v += s->acc[(size_t)sl * accsz + j];
        if (is_w)
            gw[j] += v;
        else
            gb[j - nw] += v;
    }
    return CNNL_OK;
}
