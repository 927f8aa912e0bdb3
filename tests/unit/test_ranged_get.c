/* The shared ranged GET (artifacts/ranged_get.c): its part arithmetic near INT64_MAX, and its
 * state machine against a store whose answers come from memory and lie on purpose (a size that
 * changes, a short part, a new ETag, Range ignored). */
#include "../../artifacts/ranged_get.h"
#include "tap.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void plans(void)
{
    struct ranged_get_plan p;
    struct err e = { 0 };
    ok(ranged_get_first_len(-1, 8) == 8 && ranged_get_first_len(3, 8) == 3 && ranged_get_first_len(20, 8) == 8,
       "the first GET asks for one part, or less when less is wanted");
    ok(ranged_get_plan(0, -1, 100, 8, 8, &p, &e) == 0 && p.end == 100 && p.rest_parts == 12,
       "100 bytes in parts of 8 after the first 8: 12 more parts (the last of 4 bytes)");
    ok(ranged_get_plan(0, -1, 8, 8, 8, &p, &e) == 0 && p.rest_parts == 0, "one part: nothing more");
    ok(ranged_get_plan(10, 20, 100, 18, 8, &p, &e) == 0 && p.end == 30 && p.rest_parts == 2,
       "bytes 10-29 after the first 8: two parts");
    ok(ranged_get_plan(0, -1, INT64_MAX, 8 << 20, 8 << 20, &p, &e) == 0 && p.end == INT64_MAX &&
           p.rest_parts == INT64_MAX / (8 << 20) - 1 + (INT64_MAX % (8 << 20) != 0),
       "an object of 2^63-1 bytes: the part count does not overflow");
    ok(ranged_get_plan(INT64_MAX - 1, -1, INT64_MAX, INT64_MAX, 8, &p, &e) == 0 && p.rest_parts == 0,
       "the last byte of the largest object");
    e.kind = 0;
    ok(ranged_get_plan(INT64_MAX - 10, 20, INT64_MAX, INT64_MAX - 2, 8, &p, &e) < 0 && e.kind == ERR_INVALID,
       "offset + length beyond 2^63-1 is refused, not wrapped");
    e.kind = 0;
    ok(ranged_get_plan(0, 200, 100, 8, 8, &p, &e) < 0 && e.kind == ERR_INTEGRITY,
       "more asked for than the object has: an integrity error");
    e.kind = 0;
    ok(ranged_get_plan(150, -1, 100, 150, 8, &p, &e) < 0 && e.kind == ERR_INTEGRITY, "an offset past the end");
    e.kind = 0;
    ok(ranged_get_plan(0, -1, 100, 101, 8, &p, &e) < 0 && e.kind == ERR_INTEGRITY,
       "a first answer longer than the object");
}

/* ---- a store in memory ---------------------------------------------------------------- */

struct fake {
    unsigned char obj[1000];
    int64_t size;
    atomic_int requests, pinned;
    int lie_total_at;    /* this request (from 0) names another size; -1 never */
    int short_at;        /* this request sends a byte less than it announces */
    int etag_at;         /* from this request on, the ETag is another */
    int norange;         /* every answer a 200 with the whole object */
    int no_etag;         /* split refuses without an ETag */
    char etag[32];
};

struct got {
    unsigned char data[2000];
    int64_t len;
};

static int sink(void *ctx, const void *data, size_t n, struct err *e)
{
    struct got *g = ctx;
    if (g->len + (int64_t)n > (int64_t)sizeof g->data)
        return err_set(e, ERR_INTERNAL, "too much");
    memcpy(g->data + g->len, data, n);
    g->len += (int64_t)n;
    return 0;
}

static void header(struct http_response *r, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->headers = curl_slist_append(r->headers, line);
}

static int fake_perform(void *ctx, struct http_client *client, int pinned, const struct http_request *p,
                        struct http_response *resp, struct err *e)
{
    (void)client;
    struct fake *f = ctx;
    int n = atomic_fetch_add(&f->requests, 1);
    atomic_fetch_add(&f->pinned, pinned);
    memset(resp, 0, sizeof *resp);
    resp->attempts = 1;
    int64_t a = 0, b = f->size - 1;
    if (p->range_len != 0 && !f->norange) {
        a = p->range_start;
        if (p->range_len > 0 && a + p->range_len - 1 < b)
            b = a + p->range_len - 1;
        if (a >= f->size) {
            resp->status = 416;
            return err_set(e, ERR_INTEGRITY, "HTTP 416");
        }
        resp->status = 206;
        header(resp, "content-range: bytes %lld-%lld/%lld", (long long)a, (long long)b,
               (long long)(n == f->lie_total_at ? f->size + 1 : f->size));
    } else {
        resp->status = 200;
    }
    header(resp, "content-length: %lld", (long long)(b - a + 1));
    if (!f->no_etag)
        header(resp, "etag: \"%s%s\"", f->etag, f->etag_at >= 0 && n >= f->etag_at ? "-new" : "");
    int64_t len = b - a + 1 - (n == f->short_at);
    /* In two pieces, as a network would deliver them. */
    for (int64_t off = 0; off < len;) {
        int64_t k = len - off > 7 ? 7 : len - off;
        if (p->on_data(p->data_ctx, f->obj + a + off, (size_t)k, e) < 0)
            return -1;
        off += k;
        resp->delivered += k;
    }
    return 0;
}

static int fake_first(void *ctx, const struct http_response *r, struct store_stat *st, struct err *e)
{
    (void)ctx;
    (void)e;
    const char *etag = http_header(r, "etag");
    snprintf(st->etag, sizeof st->etag, "%s", etag ? etag : "");
    return 0;
}

static int fake_split(void *ctx, const struct store_stat *st, struct err *e)
{
    struct fake *f = ctx;
    if (f->no_etag)
        return 1;
    (void)st;
    (void)e;
    return 0;
}

static char first_etag[64];

static int fake_same(void *ctx, const struct http_response *r, struct err *e)
{
    (void)ctx;
    const char *etag = http_header(r, "etag");
    if (first_etag[0] && (!etag || strcmp(etag, first_etag) != 0))
        return err_set(e, ERR_INTEGRITY, "ETag changed");
    return 0;
}

static const struct ranged_get_ops fake_ops = {
    .perform = fake_perform, .first_answer = fake_first, .split = fake_split, .same_version = fake_same,
};

static struct fake *fake_new(int64_t size)
{
    struct fake *f = calloc(1, sizeof *f);
    for (int i = 0; i < (int)sizeof f->obj; i++)
        f->obj[i] = (unsigned char)(i * 7 + 3);
    f->size = size;
    f->lie_total_at = f->short_at = f->etag_at = -1;
    snprintf(f->etag, sizeof f->etag, "v1");
    snprintf(first_etag, sizeof first_etag, "\"v1\"");
    return f;
}

static int run(struct fake *f, int64_t offset, int64_t length, int workers, struct got *g, struct ranged_get *out,
               struct err *e)
{
    memset(g, 0, sizeof *g);
    struct ranged_get rg = { .ops = &fake_ops, .ctx = f, .client = NULL, .offset = offset, .length = length,
                             .part_size = 64, .concurrency = workers, .sink = sink, .sink_ctx = g };
    memset(e, 0, sizeof *e);
    int rc = ranged_get_run(&rg, e);
    if (out)
        *out = rg;
    return rc;
}

static void machine(void)
{
    struct got g;
    struct err e;
    struct ranged_get rg;
    struct fake *f = fake_new(1000);
    ok(run(f, 0, -1, 4, &g, &rg, &e) == 0 && g.len == 1000 && memcmp(g.data, f->obj, 1000) == 0,
       "1000 bytes in parts of 64 by 4 workers: every byte, in order (%s)", e.msg);
    is_int(atomic_load(&f->requests), 16, "one first GET and 15 parts");
    is_int(atomic_load(&f->pinned), 15, "every part pinned to the first answer's version");
    ok(rg.st.size == 1000 && !rg.whole && strcmp(rg.st.etag, "\"v1\"") == 0, "the size and ETag reported");
    free(f);

    f = fake_new(1000);
    ok(run(f, 100, 300, 3, &g, NULL, &e) == 0 && g.len == 300 && memcmp(g.data, f->obj + 100, 300) == 0,
       "bytes 100-399 alone");
    free(f);

    f = fake_new(50);
    ok(run(f, 0, -1, 4, &g, NULL, &e) == 0 && g.len == 50 && atomic_load(&f->requests) == 1,
       "an object smaller than a part: one GET");
    free(f);

    f = fake_new(0);
    ok(run(f, 0, -1, 4, &g, &rg, &e) == 0 && g.len == 0 && rg.st.size == 0 && rg.whole,
       "an empty object (416 to a range): fetched whole, 0 bytes");
    free(f);

    f = fake_new(1000);
    f->norange = 1;
    ok(run(f, 0, -1, 4, &g, &rg, &e) == 0 && g.len == 1000 && rg.whole && atomic_load(&f->requests) == 1,
       "Range ignored (200): the whole object in that one stream");
    ok(run(f, 10, -1, 4, &g, NULL, &e) < 0 && e.kind == ERR_UNSUPPORTED, "but not from an offset: %s", e.msg);
    free(f);

    f = fake_new(1000);
    f->lie_total_at = 5;
    ok(run(f, 0, -1, 4, &g, NULL, &e) < 0 && e.kind == ERR_INTEGRITY && strstr(e.msg, "size changed"),
       "a part naming another size: refused (%s)", e.msg);
    free(f);

    f = fake_new(1000);
    f->short_at = 7;
    ok(run(f, 0, -1, 4, &g, NULL, &e) < 0 && e.kind == ERR_INTEGRITY, "a short part: refused (%s)", e.msg);
    free(f);

    f = fake_new(1000);
    f->short_at = 0;
    ok(run(f, 0, -1, 4, &g, NULL, &e) < 0 && e.kind == ERR_INTEGRITY, "a short first answer: refused (%s)", e.msg);
    free(f);

    f = fake_new(1000);
    f->etag_at = 9;
    ok(run(f, 0, -1, 4, &g, NULL, &e) < 0 && e.kind == ERR_INTEGRITY && strstr(e.msg, "ETag"),
       "the ETag changing part way: refused (%s)", e.msg);
    free(f);

    f = fake_new(1000);
    f->no_etag = 1;
    first_etag[0] = '\0';
    ok(run(f, 0, -1, 4, &g, NULL, &e) == 0 && g.len == 1000 && memcmp(g.data, f->obj, 1000) == 0 &&
           atomic_load(&f->requests) == 2,
       "no version to pin: the rest as one more stream (%s)", e.msg);
    f->short_at = 1;
    atomic_store(&f->requests, 0);
    ok(run(f, 0, -1, 4, &g, NULL, &e) < 0 && e.kind == ERR_INTEGRITY, "that stream short: refused (%s)", e.msg);
    free(f);

    f = fake_new(1000);
    ok(run(f, INT64_MAX - 5, 10, 4, &g, NULL, &e) < 0 && e.kind == ERR_INVALID && atomic_load(&f->requests) == 0,
       "offset + length beyond 2^63-1: refused before any request");
    free(f);
}

int main(void)
{
    struct err e = { 0 };
    if (http_global_init(&e) < 0) {
        printf("Bail out! %s\n", e.msg);
        return 1;
    }
    plans();
    machine();
    return tap_done();
}
