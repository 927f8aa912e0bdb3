/* gs:// downloads: the first range streamed straight to the sink, the rest as ranged GETs in
 * parallel (artifacts/parallel.c), each pinned to the generation the first answer named
 * (generation=), delivered in order. A whole-object download is checked against x-goog-hash
 * (crc32c, and md5 when the object has one). */
#include "gcs_internal.h"

#include "parallel.h"

#include "../runtime/crc32c.h"
#include "../runtime/util.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sink every byte passes through, in order, hashed when the whole object is asked for. */
struct hashing_sink {
    store_sink_fn sink;
    void *ctx;
    int whole;
    uint32_t crc;
    EVP_MD_CTX *md5;
};

static int hashing_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct hashing_sink *h = ctx;
    if (h->whole) {
        h->crc = crc32c_update(h->crc, data, n);
        EVP_DigestUpdate(h->md5, data, n);
    }
    return h->sink(h->ctx, data, n, e);
}

/* Checks a 206 answer to a request for bytes want..last (as s3_get.c: the size in every one,
 * the range from want to last or to the object's end). */
/* What the first answer says: size, generation, hashes. */
struct first_get {
    struct hashing_sink *hs;
    struct http_response *resp;
    int64_t start, len;
    int checked;
    int64_t total, generation;
    int whole, has_crc, has_md5, transcoded;
    uint32_t crc;
    unsigned char md5[16];
    struct store_stat st;
};

static int read_first_headers(struct first_get *g, struct err *e)
{
    const char *gen = http_header(g->resp, "x-goog-generation");
    if (!gen || store_parse_length(gen, &g->generation) < 0)
        g->generation = -1;
    for (const struct curl_slist *h = g->resp->headers; h; h = h->next)
        if (strncmp(h->data, "x-goog-hash:", 12) == 0 &&
            gcs_parse_hash(h->data + 12, &g->crc, &g->has_crc, g->md5, &g->has_md5) < 0)
            return err_set(e, ERR_INTEGRITY, "malformed x-goog-hash \"%s\"", h->data + 12);
    /* Decompressive transcoding: the hashes are those of the stored (gzip) bytes. */
    const char *stored = http_header(g->resp, "x-goog-stored-content-encoding");
    g->transcoded = stored && strcmp(stored, "identity") != 0;
    memset(&g->st, 0, sizeof g->st);
    const char *etag = http_header(g->resp, "etag");
    if (etag)
        snprintf(g->st.etag, sizeof g->st.etag, "%s", etag);
    const char *lm = http_header(g->resp, "last-modified");
    time_t t = lm ? curl_getdate(lm, NULL) : -1;
    g->st.mtime = t > 0 ? t : 0;
    return 0;
}

static int first_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct first_get *g = ctx;
    if (g->checked != g->resp->attempts) {
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
            if (read_first_headers(g, e) < 0)
                return -1;
            g->total = size;
        } else if (size != g->total) {
            return err_set(e, ERR_INTEGRITY, "the object's size changed from %lld to %lld bytes during the download",
                           (long long)g->total, (long long)size);
        }
    }
    return hashing_data(g->hs, data, n, e);
}

struct parts_of {
    struct gcs *g;
    const char *uri;
    const struct gcs_path *p;
    int64_t total, generation;
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
        pg->checked_attempt = pg->resp->attempts;
        int64_t t, want = par_range_next(pg->r), last = pg->r->start + pg->r->len - 1;
        if (store_check_range(pg->resp, want, last, &t, e) < 0)
            return -1;
        if (t != pg->total)
            return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: the object's size changed from %lld to %lld bytes "
                           "during the download", (long long)want, (long long)last, (long long)pg->total,
                           (long long)t);
    }
    return par_range_append(pg->r, data, n, e);
}

static int fetch_part(void *ctx, struct http_client *client, struct par_range *r, const int *stop, struct err *e)
{
    struct parts_of *po = ctx;
    char q[64];
    snprintf(q, sizeof q, "alt=media&generation=%lld", (long long)po->generation);
    char *url = gcs_object_url(po->g, po->p, q);
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, po->g, "GET", url, &hook);
    struct http_response resp;
    struct part_get pg = { .r = r, .total = po->total, .resp = &resp };
    req.on_data = part_data;
    req.data_ctx = &pg;
    req.range_start = r->start;
    req.range_len = r->len;
    req.resume = 1;
    req.stop = stop;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0 && resp.status == 404)
        rc = err_set(e, ERR_INTEGRITY, "the object changed during the download (generation %lld is gone)",
                     (long long)po->generation);
    else if (rc < 0)
        gcs_explain(e, &resp, "GET", po->uri);
    http_response_free(&resp);
    free(url);
    return rc;
}

static int check_hashes(const struct first_get *g, struct hashing_sink *hs, const char *uri, struct err *e)
{
    if (g->transcoded)
        return 0;
    if (g->has_crc && hs->crc != g->crc) {
        char want[9], got[9];
        crc32c_base64(g->crc, want);
        crc32c_base64(hs->crc, got);
        return err_set(e, ERR_INTEGRITY, "%s: crc32c mismatch: the server announced %s, the bytes give %s", uri,
                       want, got);
    }
    if (g->has_md5) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        EVP_DigestFinal_ex(hs->md5, md, &mdlen);
        if (mdlen != 16 || memcmp(md, g->md5, 16) != 0)
            return err_set(e, ERR_INTEGRITY, "%s: md5 mismatch between x-goog-hash and the bytes received", uri);
    }
    return 0;
}

int gcs_get_object(struct gcs *g, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                   struct store_stat *info, struct err *e)
{
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    if (!*p.object || str_has_suffix(p.object, "/")) {
        gcs_path_free(&p);
        return err_set(e, ERR_INVALID, "get needs an object name, not a prefix");
    }
    if (length == 0) {
        gcs_path_free(&p);
        return 0;
    }
    struct hashing_sink hs = { .sink = sink, .ctx = ctx, .whole = offset == 0 && length < 0 };
    if (hs.whole) {
        hs.md5 = EVP_MD_CTX_new();
        EVP_DigestInit_ex(hs.md5, EVP_md5(), NULL);
    }
    int64_t part = g->cfg.part_size;
    char *url = gcs_object_url(g, &p, "alt=media");
    struct http_response resp;
    struct first_get fg = { .hs = &hs, .resp = &resp, .start = offset, .total = -1, .generation = -1,
                            .len = length > 0 && length < part ? length : part };
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, g, "GET", url, &hook);
    req.on_data = first_data;
    req.data_ctx = &fg;
    req.range_start = offset;
    req.range_len = fg.len;
    req.resume = 1;
    int rc = http_perform(g->client, &req, &resp, e);
    if (rc < 0 && resp.status == 416 && offset == 0 && !fg.checked) {
        /* No range of an empty object exists: fetch it whole. */
        http_response_free(&resp);
        req.range_len = 0;
        rc = http_perform(g->client, &req, &resp, e);
    }
    if (rc == 0 && !fg.checked && resp.status == 200) {
        /* An empty object answered whole (no byte came to check the answer by). */
        fg.whole = 1;
        fg.total = 0;
        if (read_first_headers(&fg, e) < 0)
            rc = -1;
    }
    if (rc < 0)
        gcs_explain(e, &resp, "GET", uri);
    int64_t first_end = offset + resp.delivered;
    if (rc == 0 && fg.whole && fg.total < 0)
        fg.total = resp.delivered;
    if (rc == 0 && fg.whole && resp.delivered != fg.total)
        rc = err_set(e, ERR_INTEGRITY, "expected %lld bytes, got %lld", (long long)fg.total, (long long)resp.delivered);
    if (rc == 0 && !fg.whole && resp.delivered != (fg.total - offset < fg.len ? fg.total - offset : fg.len))
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-: got %lld bytes of %lld", (long long)offset,
                     (long long)resp.delivered, (long long)fg.len);
    http_response_free(&resp);
    if (rc == 0) {
        fg.st.size = fg.total;
        if (info)
            *info = fg.st;
    }
    int64_t end = length > 0 ? offset + length : fg.total;
    if (rc == 0 && !fg.whole && length > 0 && offset + length > fg.total)
        rc = err_set(e, ERR_INTEGRITY, "the object has %lld bytes, fewer than the %lld asked for from %lld",
                     (long long)fg.total, (long long)length, (long long)offset);
    if (rc == 0 && !fg.whole && end > first_end) {
        if (fg.generation < 0) {
            rc = err_set(e, ERR_UNSUPPORTED, "the server gave no x-goog-generation: a large object cannot be "
                         "fetched in parts");
        } else {
            struct parts_of po = { .g = g, .uri = uri, .p = &p, .total = fg.total, .generation = fg.generation };
            struct par_get pg = { .begin = first_end, .end = end, .part_size = part, .workers = g->cfg.concurrency,
                                  .fetch = fetch_part, .ctx = &po, .sink = hashing_data, .sink_ctx = &hs };
            rc = par_get_run(&pg, e);
        }
    }
    if (rc == 0 && hs.whole)
        rc = check_hashes(&fg, &hs, uri, e);
    EVP_MD_CTX_free(hs.md5);
    free(url);
    gcs_path_free(&p);
    return rc;
}
