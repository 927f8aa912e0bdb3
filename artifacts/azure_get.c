/* az:// downloads: the first range streamed straight to the sink, the rest as ranged GETs in
 * parallel (artifacts/parallel.c), each pinned to the first answer's ETag with If-Match and
 * delivered in order. A whole blob with an MD5 (x-ms-blob-content-md5) is checked against it. */
#include "azure_internal.h"

#include "parallel.h"

#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* Checks a 206 answer to a request for bytes want..last: Azure names the blob's size in every
 * one, its range starts at want and ends at last or, when the object ends first, at the object's
 * end, and its Content-Length counts that range. Fills the size it announces. */
struct first_get {
    store_sink_fn sink;
    void *ctx;
    struct http_response *resp;
    int64_t start, len;     /* asked for */
    int checked;            /* the attempt whose answer was checked last; 0: none yet */
    int64_t total;          /* object size, -1 unknown */
    int whole;              /* the server answered 200 with the whole object */
    struct store_stat st;
};

static int first_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct first_get *g = ctx;
    if (g->checked != g->resp->attempts) {
        /* Every attempt, a resume too, must announce the size the first one did: the parts
         * are counted from it. */
        int first = !g->checked;
        g->checked = g->resp->attempts;
        int64_t size = -1;
        if (g->resp->status == 200) {
            if (g->start > 0)
                return err_set(e, ERR_UNSUPPORTED, "the server ignored the Range request (HTTP 200)");
            const char *cl = http_header(g->resp, "content-length");
            if (cl && store_parse_length(cl, &size) < 0)
                return err_set(e, ERR_INTEGRITY, "malformed Content-Length \"%s\"", cl);
            if (first)
                g->whole = 1;
        } else if (store_check_range(g->resp, g->start + g->resp->delivered, g->start + g->len - 1, &size, e) < 0) {
            return -1;
        }
        if (first) {
            az_stat_from(g->resp, &g->st);
            g->total = size;
        } else if (size != g->total) {
            return err_set(e, ERR_INTEGRITY, "the object's size changed from %lld to %lld bytes during the download",
                           (long long)g->total, (long long)size);
        }
    }
    return g->sink(g->ctx, data, n, e);
}

/* The object the parts come from: the same for every worker, read only. */
struct parts_of {
    struct az *s;
    const char *uri;
    const struct az_path *p;
    char if_match[200];
    int64_t total;
};

struct part_get {
    struct par_range *r;
    int64_t total;
    struct http_response *resp;
    int checked_attempt;
};

static int part_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct part_get *pg = ctx;
    if (pg->checked_attempt != pg->resp->attempts) {
        /* Each attempt's answer must be exactly the rest of this part (resumes included). */
        pg->checked_attempt = pg->resp->attempts;
        int64_t t, want = par_range_next(pg->r), last = pg->r->start + pg->r->len - 1;
        if (store_check_range(pg->resp, want, last, &t, e) < 0)
            return -1;
        if (t != pg->total)
            return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: the object's size changed from %lld to %lld bytes "
                           "during the download (Content-Range \"%s\")", (long long)want, (long long)last,
                           (long long)pg->total, (long long)t, http_header(pg->resp, "content-range"));
    }
    return par_range_append(pg->r, data, n, e);
}

/* The engine's fetch callback. */
static int fetch_part(void *ctx, struct http_client *client, struct par_range *r, const int *stop, struct err *e)
{
    struct parts_of *gp = ctx;
    int64_t start = r->start, len = r->len;
    struct az_target t;
    az_make_target(&gp->s->cfg, gp->p->container, gp->p->blob, NULL, &t);
    const char *hdr[] = { gp->if_match, NULL };
    struct az_sign k;
    struct http_request req;
    az_request_init(&req, "GET", &t, &k, &gp->s->cfg);
    struct http_response resp;
    struct part_get pg = { .r = r, .total = gp->total, .resp = &resp };
    req.headers = hdr;
    req.on_data = part_data;
    req.data_ctx = &pg;
    req.range_start = start;
    req.range_len = len;
    req.resume = 1;
    req.stop = stop;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0 && resp.status == 416)
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: HTTP 416, yet the server announced %lld bytes: it has "
                     "fewer", (long long)start, (long long)(start + len - 1), (long long)gp->total);
    else if (rc < 0 && e->kind != ERR_INTEGRITY)
        az_explain(e, &resp, "GET", gp->uri);
    else if (rc < 0 && resp.status == 412)
        err_prefix(e, "the blob changed during the download: ");
    http_response_free(&resp);
    az_target_free(&t);
    return rc;
}

/* The whole blob's bytes pass through an MD5 on their way to the sink. */
struct md5_sink {
    store_sink_fn sink;
    void *ctx;
    EVP_MD_CTX *md;
};

static int md5_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct md5_sink *m = ctx;
    EVP_DigestUpdate(m->md, data, n);
    return m->sink(m->ctx, data, n, e);
}

int az_get_blob(struct az *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                struct store_stat *info, struct err *e)
{
    struct az_path p;
    if (az_parse_uri(uri, &p, NULL, e) < 0)
        return -1;
    if (!*p.blob || str_has_suffix(p.blob, "/")) {
        az_path_free(&p);
        return err_set(e, ERR_INVALID, "get needs a blob name, not a prefix");
    }
    if (length == 0) {
        az_path_free(&p);
        return 0;
    }
    struct md5_sink ms = { .sink = sink, .ctx = ctx };
    if (offset == 0 && length < 0) {
        ms.md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ms.md, EVP_md5(), NULL);
        sink = md5_data;
        ctx = &ms;
    }
    int64_t part = s->cfg.block_size;
    struct az_target t;
    az_make_target(&s->cfg, p.container, p.blob, NULL, &t);
    struct http_response resp;
    struct first_get g = { .sink = sink, .ctx = ctx, .resp = &resp, .start = offset, .total = -1,
                           .len = length > 0 && length < part ? length : part };
    struct az_sign k;
    struct http_request req;
    az_request_init(&req, "GET", &t, &k, &s->cfg);
    req.on_data = first_data;
    req.data_ctx = &g;
    req.range_start = offset;
    req.range_len = g.len;
    req.resume = 1;
    char md5[32] = "";
    int rc = http_perform(s->client, &req, &resp, e);
    if (rc < 0 && resp.status == 416 && offset == 0 && !g.checked) {
        /* Azure refuses any range of an empty blob: fetch it whole. */
        http_response_free(&resp);
        req.range_len = 0;
        rc = http_perform(s->client, &req, &resp, e);
        if (rc == 0 && resp.delivered == 0) {
            az_stat_from(&resp, &g.st);
            g.total = 0;
            g.whole = 1;
        }
    }
    if (rc == 0) {
        /* A ranged answer names the whole blob's MD5 in x-ms-blob-content-md5; a whole one in
         * Content-MD5. */
        const char *m = http_header(&resp, g.whole ? "content-md5" : "x-ms-blob-content-md5");
        snprintf(md5, sizeof md5, "%s", m ? m : "");
    }
    if (rc < 0 && e->kind != ERR_INTEGRITY)
        az_explain(e, &resp, "GET", uri);
    else if (rc < 0 && resp.status == 412)
        err_prefix(e, "the blob changed during the download: ");
    int64_t first_end = offset + resp.delivered;
    if (rc == 0 && g.whole && g.total < 0)
        g.total = resp.delivered;
    if (rc == 0 && g.whole && resp.delivered != g.total)
        rc = err_set(e, ERR_INTEGRITY, "expected %lld bytes, got %lld", (long long)g.total, (long long)resp.delivered);
    if (rc == 0 && !g.whole && resp.delivered != (g.total - offset < g.len ? g.total - offset : g.len))
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-: got %lld bytes of %lld", (long long)offset,
                     (long long)resp.delivered, (long long)g.len);
    http_response_free(&resp);
    if (rc == 0) {
        g.st.size = g.total;
        if (info)
            *info = g.st;
    }
    int64_t end = length > 0 ? offset + length : g.total;
    if (rc == 0 && !g.whole && length > 0 && offset + length > g.total)
        rc = err_set(e, ERR_INTEGRITY, "the blob has %lld bytes, fewer than the %lld asked for from %lld",
                     (long long)g.total, (long long)length, (long long)offset);
    if (rc == 0 && !g.whole && end > first_end) {
        if (!g.st.etag[0]) {
            rc = err_set(e, ERR_UNSUPPORTED, "the server gave no ETag: a large blob cannot be fetched in parts");
        } else {
            struct parts_of po = { .s = s, .uri = uri, .p = &p, .total = g.total };
            snprintf(po.if_match, sizeof po.if_match, "If-Match: %s", g.st.etag);
            struct par_get pg = { .begin = first_end, .end = end, .part_size = part, .workers = s->cfg.concurrency,
                                  .fetch = fetch_part, .ctx = &po, .sink = sink, .sink_ctx = ctx };
            rc = par_get_run(&pg, e);
        }
    }
    if (ms.md) {
        if (rc == 0 && md5[0]) {
            unsigned char d[16];
            unsigned int dl = 0;
            char got[32];
            EVP_DigestFinal_ex(ms.md, d, &dl);
            EVP_EncodeBlock((unsigned char *)got, d, 16);
            if (strcmp(got, md5) != 0) {
                char red[512];
                uri_redact(uri, red, sizeof red);
                rc = err_set(e, ERR_INTEGRITY, "%s: the blob's bytes have MD5 %s, but the service records %s", red,
                             got, md5);
            }
        }
        EVP_MD_CTX_free(ms.md);
    }
    az_target_free(&t);
    az_path_free(&p);
    return rc;
}
