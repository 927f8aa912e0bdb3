/* az:// downloads through the shared ranged GET (ranged_get.c): the first range streamed straight
 * to the sink, the rest as ranged GETs in parallel, each pinned to the first answer's ETag with
 * If-Match and delivered in order. A whole blob with an MD5 (x-ms-blob-content-md5) is checked against it. */
#include "azure_internal.h"

#include "ranged_get.h"

#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* The blob being fetched: the same for every worker, read only once the first answer came. */
struct az_get {
    struct az *s;
    const char *uri;
    const struct az_path *p;
    char if_match[200];
    char md5[32];           /* the whole blob's MD5 as the service records it, "" when none */
};

static int get_perform(void *ctx, struct http_client *client, int pinned, const struct http_request *proto,
                       struct http_response *resp, struct err *e)
{
    struct az_get *ag = ctx;
    struct az_target t;
    az_make_target(&ag->s->cfg, ag->p->container, ag->p->blob, NULL, &t);
    const char *hdr[] = { ag->if_match, NULL };
    struct az_sign k;
    struct http_request req;
    az_request_init(&req, "GET", &t, &k, &ag->s->cfg);
    if (pinned)
        req.headers = hdr;
    ranged_get_take_transfer(&req, proto);
    int rc = http_perform(client, &req, resp, e);
    if (rc < 0 && e->kind != ERR_INTEGRITY)
        az_explain(e, resp, "GET", ag->uri);
    else if (rc < 0 && resp->status == 412)
        err_prefix(e, "the blob changed during the download: ");
    az_target_free(&t);
    return rc;
}

static int get_first_answer(void *ctx, const struct http_response *r, struct store_stat *st, struct err *e)
{
    (void)e;
    struct az_get *ag = ctx;
    az_stat_from(r, st);
    if (st->etag[0])
        snprintf(ag->if_match, sizeof ag->if_match, "If-Match: %s", st->etag);
    /* A ranged answer names the whole blob's MD5 in x-ms-blob-content-md5; a whole one in
     * Content-MD5. */
    const char *m = http_header(r, r->status == 200 ? "content-md5" : "x-ms-blob-content-md5");
    snprintf(ag->md5, sizeof ag->md5, "%s", m ? m : "");
    return 0;
}

static int get_split(void *ctx, const struct store_stat *st, struct err *e)
{
    (void)ctx;
    if (!st->etag[0])
        return err_set(e, ERR_UNSUPPORTED, "the server gave no ETag: a large blob cannot be fetched in parts");
    return 0;
}

static const struct ranged_get_ops az_ranged_ops = {
    .perform = get_perform,
    .first_answer = get_first_answer,
    .split = get_split,
};

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
    struct az_get ag = { .s = s, .uri = uri, .p = &p };
    struct ranged_get g = { .ops = &az_ranged_ops, .ctx = &ag, .client = s->client, .offset = offset,
                            .length = length, .part_size = s->cfg.block_size, .concurrency = s->cfg.concurrency,
                            .sink = sink, .sink_ctx = ctx };
    int rc = ranged_get_run(&g, e);
    if (rc == 0 && info)
        *info = g.st;
    if (ms.md) {
        if (rc == 0 && ag.md5[0]) {
            unsigned char d[16];
            unsigned int dl = 0;
            char got[32];
            EVP_DigestFinal_ex(ms.md, d, &dl);
            EVP_EncodeBlock((unsigned char *)got, d, 16);
            if (strcmp(got, ag.md5) != 0) {
                char red[512];
                uri_redact(uri, red, sizeof red);
                rc = err_set(e, ERR_INTEGRITY, "%s: the blob's bytes have MD5 %s, but the service records %s", red,
                             got, ag.md5);
            }
        }
        EVP_MD_CTX_free(ms.md);
    }
    az_path_free(&p);
    return rc;
}
