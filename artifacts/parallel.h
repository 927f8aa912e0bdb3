/* The parallel transfer engine of the object stores (downloads through ranged_get.c): a pool
 * of workers, each a thread with its own HTTP client (docs/architecture.md says why not curl's
 * multi interface), that moves one object in parts. The store supplies the requests through a few
 * callbacks and keeps its policy (part sizes, limits, which requests); the engine keeps the order,
 * the memory bound, the stop flag and the failure handling.
 *
 * Download: bytes [begin, end) as ranges of part_size, fetched by workers and handed to the
 * sink strictly in order; memory is workers x part_size. Upload: parts pulled from the source in
 * order, sent by workers, their part buffers within a budget; on any failure the other parts'
 * transfers stop (the stop flag), and abort is called once after every worker has ended. */
#ifndef STEPOP_PARALLEL_H
#define STEPOP_PARALLEL_H

#include "store.h"

#include "../runtime/http.h"
#include "../runtime/util.h"

#include <stdint.h>
#include <sys/types.h>

#define PAR_MAX_WORKERS 64

/* ---- download ------------------------------------------------------------------------ */

/* One range being fetched. data holds what arrived so far; a resumed attempt (the HTTP layer's
 * resume after a reset) must answer from par_range_next on, and adds to it. */
struct par_range {
    int64_t start, len;
    struct buf *data;
};

/* The offset the next byte of the range is at: where a resumed attempt must start. */
int64_t par_range_next(const struct par_range *r);
/* Adds bytes to the range; refuses (ERR_INTEGRITY) more than the range's length. */
int par_range_append(struct par_range *r, const void *data, size_t n, struct err *e);

struct par_get {
    int64_t begin, end;  /* the bytes to fetch: [begin, end) */
    int64_t part_size;
    int workers;         /* at most PAR_MAX_WORKERS; fewer when there are fewer parts */
    /* Fetches the whole range into r->data (empty on entry, room for r->len bytes) with the
     * worker's own client, the object pinned to the version its first answer named (ETag,
     * generation). *stop is set when another part failed: hand it to http_request.stop. */
    int (*fetch)(void *ctx, struct http_client *client, struct par_range *r, const int *stop, struct err *e);
    void *ctx;
    store_sink_fn sink;
    void *sink_ctx;
};

/* Runs the download; 0 once exactly end - begin bytes reached the sink, else -1 with the first
 * failure in e. */
int par_get_run(const struct par_get *g, struct err *e);

/* ---- upload -------------------------------------------------------------------------- */

/* A store_source with bytes already read ahead (to choose between one request and parts). */
struct par_reader {
    struct store_source *src;
    char *ahead;
    size_t ahead_len, ahead_off;
};

/* Fills buf with up to n bytes; fewer only at the end of the stream. */
ssize_t par_reader_fill(struct par_reader *r, char *buf, size_t n, struct err *e);

/* What a part's upload returned, listed at completion. */
struct par_part {
    char *etag;         /* the part's identity for the completion (ETag, block id); the engine frees it */
    char checksum[45];  /* base64 SHA-256 sent with the part, "" when none */
};

struct par_put {
    struct par_reader *rd;
    int64_t size;        /* the source's size, -1 when unknown */
    int64_t part_size;   /* every part's (known size) or the first ones' (unknown size) */
    int grow_every;      /* unknown size: the part size doubles every this many parts ... */
    int64_t max_part;    /* ... up to this */
    int max_parts;
    const char *too_many_hint; /* said when a stream needs more than max_parts parts */
    int64_t mem_budget;  /* part buffers of all workers together, but always room for one */
    int workers;         /* at most PAR_MAX_WORKERS */
    /* Sends part n (from 1) with the worker's own client and fills out. */
    int (*put_part)(void *ctx, struct http_client *client, int n, const char *body, size_t len, const int *stop,
                    struct par_part *out, struct err *e);
    /* After every part was sent: parts[0 .. nparts-1], total bytes. */
    int (*complete)(void *ctx, const struct par_part *parts, int nparts, int64_t total, struct err *e);
    /* Once, after a failure (of a part, of the source, or of complete), every worker ended;
     * NULL when the store has nothing to clean up (Azure drops uncommitted blocks itself). */
    void (*abort)(void *ctx);
    void *ctx;
};

/* Runs the upload to its completion; -1 with the first failure in e (abort was called). */
int par_put_run(const struct par_put *p, struct err *e);

#endif
