/* The ranged download every object store shares (http(s), s3, gs, az): a first GET of the first
 * part, whose answer names the object's size (Content-Range), then the rest as ranged GETs in
 * parallel (parallel.c's workers), each pinned to the version the first answer named and checked
 * with store_check_range, delivered to the sink in order. Exactly the announced bytes must
 * arrive, else ERR_INTEGRITY (exit 4).
 *
 * What differs between stores (the request, its signing and headers, what pins the version,
 * error messages) comes through ranged_get_ops; the state machine and its checks live here once. */
#ifndef STEPOP_RANGED_GET_H
#define STEPOP_RANGED_GET_H

#include "store.h"

#include "../runtime/http.h"

#include <stdint.h>

struct ranged_get_ops {
    /* Sends one GET of the object with client: the store's method, URL, headers and signing,
     * with on_data, data_ctx, range_start, range_len, resume and stop copied from proto. pinned:
     * a part (or the rest), which must come from the version the first answer named (If-Match,
     * generation=). The store words its own failures (its error codes, a 412) in e. */
    int (*perform)(void *ctx, struct http_client *client, int pinned, const struct http_request *proto,
                   struct http_response *resp, struct err *e);
    /* The first answer (200 or 206), before its first byte: fills st's etag and mtime and keeps
     * what pins the version. -1 (e set) refuses it. */
    int (*first_answer)(void *ctx, const struct http_response *r, struct store_stat *st, struct err *e);
    /* Whether the rest may be fetched in parts: 0 yes; 1 no, it comes as one more ranged GET
     * streamed to the sink; -1 (e set) it cannot be fetched. */
    int (*split)(void *ctx, const struct store_stat *st, struct err *e);
    /* Every later answer (a part, a resume): -1 (e set) when it is not the first answer's
     * version. NULL: the pin in the request is enough. */
    int (*same_version)(void *ctx, const struct http_response *r, struct err *e);
};

/* What a perform callback copies from proto into its own request: the engine's part of it. */
void ranged_get_take_transfer(struct http_request *req, const struct http_request *proto);

struct ranged_get {
    const struct ranged_get_ops *ops;
    void *ctx;
    struct http_client *client;  /* the first GET's (the parts' workers have their own) */
    int64_t offset, length;      /* as store_ops.get: length -1 to the end */
    int64_t part_size;           /* the first GET's length and each part's */
    int concurrency;             /* part workers, 1 to PAR_MAX_WORKERS */
    store_sink_fn sink;
    void *sink_ctx;
    /* Filled by ranged_get_run: */
    struct store_stat st;        /* the first answer's, with the object's size */
    int whole;                   /* the server answered the first GET with 200 and the whole object */
};

/* Runs the download: 0 once every byte asked for reached the sink in order, else -1. */
int ranged_get_run(struct ranged_get *g, struct err *e);

/* The part arithmetic (64-bit: a server may announce any size up to INT64_MAX). */
struct ranged_get_plan {
    int64_t end;                 /* one past the last byte to fetch */
    int64_t rest_parts;          /* parts after the first GET's bytes, [first_end, end) */
};
/* The first GET's length for a request of length bytes (-1: to the end). */
int64_t ranged_get_first_len(int64_t length, int64_t part_size);
/* What is left once the first GET delivered [offset, first_end) of an object of total bytes:
 * -1 (ERR_INTEGRITY) when the object is shorter than asked, or ERR_INVALID for an offset and
 * length beyond INT64_MAX. */
int ranged_get_plan(int64_t offset, int64_t length, int64_t total, int64_t first_end, int64_t part_size,
                    struct ranged_get_plan *p, struct err *e);

#endif
