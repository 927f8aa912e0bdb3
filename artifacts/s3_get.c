/* s3:// downloads through the shared ranged GET (ranged_get.c): the first range streamed straight
 * to the sink, the rest as ranged GETs in parallel, each pinned to the first answer's ETag with
 * If-Match and delivered in order. This file holds what is S3's: signing and S3's errors. */
#include "s3_internal.h"

#include "ranged_get.h"

#include "../cloud/aws/sigv4.h"
#include "../runtime/util.h"

#include <stdio.h>
#include <string.h>

/* The object being fetched: the same for every worker, read only once the first answer came. */
struct s3_get {
    struct s3 *s;
    const char *uri;
    const struct s3_path *p;
    char if_match[200];
};

static int get_perform(void *ctx, struct http_client *client, int pinned, const struct http_request *proto,
                       struct http_response *resp, struct err *e)
{
    struct s3_get *sg = ctx;
    struct s3_target t;
    s3_make_target(&sg->s->cfg, sg->p->bucket, sg->p->key, NULL, &t);
    const char *hdr[] = { sg->if_match, NULL };
    struct aws_sign k;
    s3_sign_init(&k, sg->s, &t, sg->s->cfg.sign_payload ? SIGV4_EMPTY_SHA256 : SIGV4_UNSIGNED_PAYLOAD);
    struct http_request req;
    s3_request_init(&req, "GET", &t, &k);
    if (pinned)
        req.headers = hdr;
    ranged_get_take_transfer(&req, proto);
    int rc = http_perform(client, &req, resp, e);
    if (rc < 0 && e->kind != ERR_INTEGRITY)
        s3_explain(e, resp, "GET", sg->uri);
    else if (rc < 0 && resp->status == 412)
        err_prefix(e, "the object changed during the download: ");
    s3_target_free(&t);
    return rc;
}

static int get_first_answer(void *ctx, const struct http_response *r, struct store_stat *st, struct err *e)
{
    (void)e;
    struct s3_get *sg = ctx;
    s3_stat_from(r, st);
    if (st->etag[0])
        snprintf(sg->if_match, sizeof sg->if_match, "If-Match: %s", st->etag);
    return 0;
}

static int get_split(void *ctx, const struct store_stat *st, struct err *e)
{
    (void)ctx;
    if (!st->etag[0])
        return err_set(e, ERR_UNSUPPORTED, "the server gave no ETag: a large object cannot be fetched in parts");
    return 0;
}

static const struct ranged_get_ops s3_ranged_ops = {
    .perform = get_perform,
    .first_answer = get_first_answer,
    .split = get_split,
};

int s3_get_object(struct s3 *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                  struct store_stat *info, struct err *e)
{
    struct s3_path p;
    if (s3_parse_uri(uri, &p, e) < 0)
        return -1;
    if (!*p.key || str_has_suffix(p.key, "/")) {
        s3_path_free(&p);
        return err_set(e, ERR_INVALID, "get needs an object key, not a prefix");
    }
    struct s3_get sg = { .s = s, .uri = uri, .p = &p };
    struct ranged_get g = { .ops = &s3_ranged_ops, .ctx = &sg, .client = s->client, .offset = offset,
                            .length = length, .part_size = s->cfg.part_size, .concurrency = s->cfg.concurrency,
                            .sink = sink, .sink_ctx = ctx };
    int rc = ranged_get_run(&g, e);
    if (rc == 0 && info && length != 0)
        *info = g.st;
    s3_path_free(&p);
    return rc;
}
