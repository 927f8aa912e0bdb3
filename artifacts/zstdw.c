#include "zstdw.h"

#include "../runtime/cpus.h"
#include "../runtime/util.h"

#include <stdlib.h>
#include <zstd.h>

/* Each worker holds about two jobs; 1 MiB jobs keep the compressor near 10 MiB in all while
 * still giving every core work (measured in docs/benchmarks.md). */
#define JOB_SIZE (1 << 20)

struct zstdw {
    ZSTD_CCtx *cctx;
    void *out_buf;
    size_t out_cap;
    zstdw_out_fn out;
    void *ctx;
};

static int failed(size_t r, const char *what, struct err *e)
{
    return ZSTD_isError(r) ? err_set(e, ERR_INTERNAL, "zstd %s: %s", what, ZSTD_getErrorName(r)) : 0;
}

struct zstdw *zstdw_new(int level, int threads, zstdw_out_fn out, void *ctx, struct err *e)
{
    if (threads <= 0) {
        threads = cpus_usable();
    }
    struct zstdw *z = xcalloc(1, sizeof *z);
    z->cctx = ZSTD_createCCtx();
    z->out_cap = ZSTD_CStreamOutSize();
    z->out_buf = xmalloc(z->out_cap);
    z->out = out;
    z->ctx = ctx;
    if (!z->cctx || failed(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level ? level : 3), "level", e) ||
        failed(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1), "checksum", e)) {
        if (!z->cctx)
            err_set(e, ERR_INTERNAL, "zstd: cannot create a compression context");
        zstdw_free(z);
        return NULL;
    }
    /* A libzstd built without threads refuses workers: compress on one core then. */
    if (!ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, threads)))
        ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, JOB_SIZE);
    return z;
}

static int drive(struct zstdw *z, const void *data, size_t n, ZSTD_EndDirective mode, struct err *e)
{
    ZSTD_inBuffer in = { data, n, 0 };
    for (;;) {
        ZSTD_outBuffer o = { z->out_buf, z->out_cap, 0 };
        size_t left = ZSTD_compressStream2(z->cctx, &o, &in, mode);
        if (failed(left, "compress", e))
            return -1;
        if (o.pos && z->out(z->ctx, z->out_buf, o.pos, e) < 0)
            return -1;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

int zstdw_write(struct zstdw *z, const void *data, size_t n, struct err *e)
{
    return drive(z, data, n, ZSTD_e_continue, e);
}

int zstdw_finish(struct zstdw *z, struct err *e)
{
    return drive(z, NULL, 0, ZSTD_e_end, e);
}

void zstdw_free(struct zstdw *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->cctx);
    free(z->out_buf);
    free(z);
}
