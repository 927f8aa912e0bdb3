#include "ranged_get.h"

#include "parallel.h"

#include <stdint.h>
#include <string.h>

int64_t ranged_get_first_len(int64_t length, int64_t part_size)
{
    return length > 0 && length < part_size ? length : part_size;
}

int ranged_get_plan(int64_t offset, int64_t length, int64_t total, int64_t first_end, int64_t part_size,
                    struct ranged_get_plan *p, struct err *e)
{
    if (offset < 0 || part_size <= 0 || (length > 0 && length > INT64_MAX - offset))
        return err_set(e, ERR_INVALID, "bytes %lld+%lld: beyond the largest object size", (long long)offset,
                       (long long)length);
    if (offset > total)
        return err_set(e, ERR_INTEGRITY, "the object has %lld bytes, fewer than the offset %lld", (long long)total,
                       (long long)offset);
    int64_t end = length > 0 ? offset + length : total;
    if (end > total)
        return err_set(e, ERR_INTEGRITY, "the object has %lld bytes, fewer than the %lld asked for from %lld",
                       (long long)total, (long long)length, (long long)offset);
    if (first_end < offset || first_end > end)
        return err_set(e, ERR_INTEGRITY, "the first answer ended at byte %lld, outside bytes %lld-%lld",
                       (long long)first_end, (long long)offset, (long long)end);
    int64_t rest = end - first_end;
    p->end = end;
    p->rest_parts = rest / part_size + (rest % part_size != 0);
    return 0;
}

/* One streamed GET: the first (bytes offset.. for the first part) or the rest when it is not
 * split. Each attempt's answer, a resume's too, is checked before its first byte reaches the sink. */
struct stream_get {
    struct ranged_get *g;
    struct http_response *resp;
    int64_t start, len;     /* asked for; len 0: the whole object (no Range) */
    int first;
    int checked;            /* the attempt whose answer was checked last; 0: none yet */
    int64_t total;          /* the object's size, -1 until the first answer */
};

void ranged_get_take_transfer(struct http_request *req, const struct http_request *proto)
{
    req->on_data = proto->on_data;
    req->data_ctx = proto->data_ctx;
    req->range_start = proto->range_start;
    req->range_len = proto->range_len;
    req->resume = proto->resume;
    req->stop = proto->stop;
}

static int stream_check(struct stream_get *s, struct err *e)
{
    struct ranged_get *g = s->g;
    const struct http_response *r = s->resp;
    int initial = !s->checked;
    s->checked = r->attempts;
    int64_t size = -1;
    if (s->first && r->status == 200) {
        if (s->start > 0 || g->length > 0)
            return err_set(e, ERR_UNSUPPORTED, "the server ignored the Range request (HTTP 200)");
        const char *cl = http_header(r, "content-length");
        if (cl && store_parse_length(cl, &size) < 0)
            return err_set(e, ERR_INTEGRITY, "malformed Content-Length \"%s\"", cl);
        if (initial)
            g->whole = 1;
    } else if (store_check_range(r, s->start + r->delivered, s->start + s->len - 1, &size, e) < 0) {
        return -1;
    }
    if (s->first && initial) {
        s->total = size;
        return g->ops->first_answer(g->ctx, r, &g->st, e);
    }
    /* Every later answer describes the object the first one did: the parts are counted from it. */
    if (size != s->total)
        return err_set(e, ERR_INTEGRITY, "the object's size changed from %lld to %lld bytes during the download",
                       (long long)s->total, (long long)size);
    return g->ops->same_version ? g->ops->same_version(g->ctx, r, e) : 0;
}

static int stream_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct stream_get *s = ctx;
    if (s->checked != s->resp->attempts && stream_check(s, e) < 0)
        return -1;
    return s->g->sink(s->g->sink_ctx, data, n, e);
}

static int stream(struct ranged_get *g, struct stream_get *s, struct http_response *resp, struct err *e)
{
    struct http_request proto = { .on_data = stream_data, .data_ctx = s, .range_start = s->start,
                                  .range_len = s->len, .resume = 1 };
    return g->ops->perform(g->ctx, g->client, !s->first, &proto, resp, e);
}

/* A part, fetched by a worker into its buffer. */
struct part_get {
    struct ranged_get *g;
    struct par_range *r;
    struct http_response *resp;
    int checked;
};

static int part_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct part_get *pg = ctx;
    if (pg->checked != pg->resp->attempts) {
        /* Each attempt's answer must be exactly the rest of this part (resumes included). */
        pg->checked = pg->resp->attempts;
        int64_t t, want = par_range_next(pg->r), last = pg->r->start + pg->r->len - 1;
        if (store_check_range(pg->resp, want, last, &t, e) < 0)
            return -1;
        if (t != pg->g->st.size)
            return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: the object's size changed from %lld to %lld bytes "
                           "during the download", (long long)want, (long long)last, (long long)pg->g->st.size,
                           (long long)t);
        if (pg->g->ops->same_version && pg->g->ops->same_version(pg->g->ctx, pg->resp, e) < 0)
            return -1;
    }
    return par_range_append(pg->r, data, n, e);
}

static int fetch_part(void *ctx, struct http_client *client, struct par_range *r, const int *stop, struct err *e)
{
    struct ranged_get *g = ctx;
    struct http_response resp;
    struct part_get pg = { .g = g, .r = r, .resp = &resp };
    struct http_request proto = { .on_data = part_data, .data_ctx = &pg, .range_start = r->start,
                                  .range_len = r->len, .resume = 1, .stop = stop };
    int rc = g->ops->perform(g->ctx, client, 1, &proto, &resp, e);
    if (rc < 0 && resp.status == 416)
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: HTTP 416, yet the server announced %lld bytes: it has "
                     "fewer", (long long)r->start, (long long)(r->start + r->len - 1), (long long)g->st.size);
    http_response_free(&resp);
    return rc;
}

int ranged_get_run(struct ranged_get *g, struct err *e)
{
    memset(&g->st, 0, sizeof g->st);
    g->st.size = -1;
    g->whole = 0;
    if (g->length == 0)
        return 0;
    if (g->offset < 0 || (g->length > 0 && g->length > INT64_MAX - g->offset))
        return err_set(e, ERR_INVALID, "bytes %lld+%lld: beyond the largest object size", (long long)g->offset,
                       (long long)g->length);
    struct http_response resp;
    struct stream_get s = { .g = g, .resp = &resp, .start = g->offset, .first = 1, .total = -1,
                            .len = ranged_get_first_len(g->length, g->part_size) };
    int rc = stream(g, &s, &resp, e);
    if (rc < 0 && resp.status == 416 && g->offset == 0 && g->length < 0 && !s.checked) {
        /* Some stores refuse any range of an empty object: fetch it whole. */
        http_response_free(&resp);
        s.len = 0;
        rc = stream(g, &s, &resp, e);
    }
    /* No byte arrived (an empty object): the answer's headers alone tell its size. */
    if (rc == 0 && !s.checked)
        rc = stream_check(&s, e);
    int64_t first_end = g->offset + resp.delivered;
    if (rc == 0 && g->whole && s.total < 0)
        s.total = resp.delivered; /* a 200 without Content-Length ends with the object */
    if (rc == 0 && g->whole && resp.delivered != s.total)
        rc = err_set(e, ERR_INTEGRITY, "expected %lld bytes, got %lld", (long long)s.total, (long long)resp.delivered);
    if (rc == 0 && !g->whole && resp.delivered != (s.total - g->offset < s.len ? s.total - g->offset : s.len))
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-: got %lld bytes of %lld", (long long)g->offset,
                     (long long)resp.delivered, (long long)s.len);
    http_response_free(&resp);
    g->st.size = s.total;
    if (rc < 0 || g->whole)
        return rc;
    struct ranged_get_plan p;
    if (ranged_get_plan(g->offset, g->length, s.total, first_end, g->part_size, &p, e) < 0)
        return -1;
    if (p.rest_parts == 0)
        return 0;
    int split = g->ops->split(g->ctx, &g->st, e);
    if (split < 0)
        return -1;
    if (split == 1) {
        struct stream_get rest = { .g = g, .resp = &resp, .start = first_end, .len = p.end - first_end,
                                   .checked = 0, .total = s.total };
        rc = stream(g, &rest, &resp, e);
        if (rc == 0 && resp.delivered != rest.len)
            rc = err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: got %lld bytes of %lld", (long long)first_end,
                         (long long)(p.end - 1), (long long)resp.delivered, (long long)rest.len);
        http_response_free(&resp);
        return rc;
    }
    struct par_get pg = { .begin = first_end, .end = p.end, .part_size = g->part_size, .workers = g->concurrency,
                          .fetch = fetch_part, .ctx = g, .sink = g->sink, .sink_ctx = g->sink_ctx };
    return par_get_run(&pg, e);
}
