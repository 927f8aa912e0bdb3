/* gs:// downloads through the shared ranged GET (ranged_get.c): the first range streamed straight
 * to the sink, the rest as ranged GETs in parallel, each pinned to the generation the first
 * answer named (generation=), delivered in order. A whole-object download is checked against
 * x-goog-hash (crc32c, and md5 when the object has one). */
#include "gcs_internal.h"

#include "ranged_get.h"

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

/* The object being fetched and what its first answer says: generation (the pin), hashes. Read
 * only by the part workers once the first answer came. */
struct gcs_get {
    struct gcs *g;
    const char *uri;
    const struct gcs_path *p;
    int64_t generation;
    int has_crc, has_md5, transcoded;
    uint32_t crc;
    unsigned char md5[16];
};

static int get_first_answer(void *ctx, const struct http_response *r, struct store_stat *st, struct err *e)
{
    struct gcs_get *gg = ctx;
    const char *gen = http_header(r, "x-goog-generation");
    if (!gen || store_parse_length(gen, &gg->generation) < 0)
        gg->generation = -1;
    gg->has_crc = gg->has_md5 = 0;
    for (const struct curl_slist *h = r->headers; h; h = h->next)
        if (strncmp(h->data, "x-goog-hash:", 12) == 0 &&
            gcs_parse_hash(h->data + 12, &gg->crc, &gg->has_crc, gg->md5, &gg->has_md5) < 0)
            return err_set(e, ERR_INTEGRITY, "malformed x-goog-hash \"%s\"", h->data + 12);
    /* Decompressive transcoding: the hashes are those of the stored (gzip) bytes. */
    const char *stored = http_header(r, "x-goog-stored-content-encoding");
    gg->transcoded = stored && strcmp(stored, "identity") != 0;
    const char *etag = http_header(r, "etag");
    if (etag)
        snprintf(st->etag, sizeof st->etag, "%s", etag);
    const char *lm = http_header(r, "last-modified");
    time_t t = lm ? curl_getdate(lm, NULL) : -1;
    st->mtime = t > 0 ? t : 0;
    return 0;
}

/* The first GET asks for alt=media; a part pins the generation the first answer named. */
static int get_perform(void *ctx, struct http_client *client, int pinned, const struct http_request *proto,
                       struct http_response *resp, struct err *e)
{
    struct gcs_get *gg = ctx;
    char q[64];
    if (pinned)
        snprintf(q, sizeof q, "alt=media&generation=%lld", (long long)gg->generation);
    char *url = gcs_object_url(gg->g, gg->p, pinned ? q : "alt=media");
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, gg->g, "GET", url, &hook);
    ranged_get_take_transfer(&req, proto);
    int rc = http_perform(client, &req, resp, e);
    if (rc < 0 && pinned && resp->status == 404)
        rc = err_set(e, ERR_INTEGRITY, "the object changed during the download (generation %lld is gone)",
                     (long long)gg->generation);
    else if (rc < 0)
        gcs_explain(e, resp, "GET", gg->uri);
    free(url);
    return rc;
}

static int get_split(void *ctx, const struct store_stat *st, struct err *e)
{
    (void)st;
    const struct gcs_get *gg = ctx;
    if (gg->generation < 0)
        return err_set(e, ERR_UNSUPPORTED, "the server gave no x-goog-generation: a large object cannot be "
                       "fetched in parts");
    return 0;
}

static const struct ranged_get_ops gcs_ranged_ops = {
    .perform = get_perform,
    .first_answer = get_first_answer,
    .split = get_split,
};

static int check_hashes(const struct gcs_get *g, struct hashing_sink *hs, const char *uri, struct err *e)
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
    struct gcs_get gg = { .g = g, .uri = uri, .p = &p, .generation = -1 };
    struct ranged_get rg = { .ops = &gcs_ranged_ops, .ctx = &gg, .client = g->client, .offset = offset,
                             .length = length, .part_size = g->cfg.part_size, .concurrency = g->cfg.concurrency,
                             .sink = hashing_data, .sink_ctx = &hs };
    int rc = ranged_get_run(&rg, e);
    if (rc == 0 && info)
        *info = rg.st;
    if (rc == 0 && hs.whole)
        rc = check_hashes(&gg, &hs, uri, e);
    EVP_MD_CTX_free(hs.md5);
    gcs_path_free(&p);
    return rc;
}
