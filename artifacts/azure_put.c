/* az:// uploads: one Put Blob up to the threshold, else Put Block in parallel (artifacts/parallel.c)
 * and one Put Block List. Every body carries its Content-MD5, which the service checks; the
 * block list names the whole blob's MD5 (x-ms-blob-content-md5), which downloads check. Nothing
 * needs aborting after a failure: the service discards uncommitted blocks after a week, and a
 * later upload of the same name replaces them. */
#include "azure_internal.h"

#include "parallel.h"

#include "../runtime/log.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The source with an MD5 of every byte read from it, from the start (a rewind restarts it). */
struct md5_source {
    struct store_source *src;
    EVP_MD_CTX *md;
};

static ssize_t md5_read(void *ctx, void *buf, size_t n, struct err *e)
{
    struct md5_source *m = ctx;
    ssize_t got = m->src->read(m->src->ctx, buf, n, e);
    if (got > 0)
        EVP_DigestUpdate(m->md, buf, (size_t)got);
    return got;
}

static int md5_rewind(void *ctx, struct err *e)
{
    struct md5_source *m = ctx;
    if (m->src->rewind(m->src->ctx, e) < 0)
        return -1;
    EVP_DigestInit_ex(m->md, EVP_md5(), NULL);
    return 0;
}

static void md5_final(struct md5_source *m, char out[25])
{
    unsigned char d[16];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(m->md, d, &dl);
    EVP_EncodeBlock((unsigned char *)out, d, 16);
}

static int put_single(struct az *s, const char *uri, const struct az_path *p, const char *body, size_t len,
                      const char *md5, struct err *e)
{
    struct az_target t;
    az_make_target(&s->cfg, p->container, p->blob, NULL, &t);
    char md5_hdr[64];
    snprintf(md5_hdr, sizeof md5_hdr, "Content-MD5: %s", md5);
    const char *hdr[] = { "Content-Type: application/octet-stream", "x-ms-blob-type: BlockBlob", md5_hdr, NULL };
    struct az_sign k;
    struct http_request req;
    az_request_init(&req, "PUT", &t, &k, &s->cfg);
    req.headers = hdr;
    req.body = body ? body : "";
    req.body_len = len;
    struct http_response resp;
    int rc = http_perform(s->client, &req, &resp, e);
    if (rc < 0)
        az_explain(e, &resp, "Put Blob", uri);
    http_response_free(&resp);
    az_target_free(&t);
    return rc;
}

/* One block upload, read only while the blocks go out: the engine's callback context. */
struct blocks {
    struct az *s;
    const char *uri;
    const struct az_path *p;
    struct md5_source *whole;
};

static int put_block(void *ctx, struct http_client *client, int n, const char *body, size_t len, const int *stop,
                     struct par_part *rec, struct err *e)
{
    struct blocks *b = ctx;
    char id[41], md5[25], md5_hdr[64];
    az_block_id(n, id);
    az_md5_base64(body, len, md5);
    snprintf(md5_hdr, sizeof md5_hdr, "Content-MD5: %s", md5);
    /* Block ids are base64: '+', '/' and '=' are escaped in the query. */
    char *eid = uri_encode(id, "");
    char *q = xasprintf("comp=block&blockid=%s", eid);
    free(eid);
    struct az_target t;
    az_make_target(&b->s->cfg, b->p->container, b->p->blob, q, &t);
    free(q);
    const char *hdr[] = { md5_hdr, NULL };
    struct az_sign k;
    struct http_request req;
    az_request_init(&req, "PUT", &t, &k, &b->s->cfg);
    req.headers = hdr;
    req.body = body;
    req.body_len = len;
    req.stop = stop;
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0) {
        az_explain(e, &resp, "Put Block", b->uri);
        err_prefix(e, "block %d: ", n);
    } else {
        rec->etag = xstrdup(id);
    }
    http_response_free(&resp);
    az_target_free(&t);
    return rc;
}

static int put_block_list(void *ctx, const struct par_part *parts, int nparts, int64_t total, struct err *e)
{
    (void)total;
    struct blocks *b = ctx;
    for (int i = 0; i < nparts; i++)
        if (!parts[i].etag)
            return err_set(e, ERR_INTERNAL, "block %d has no id", i + 1);
    struct buf xml = { 0 };
    buf_appendf(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (int i = 0; i < nparts; i++)
        buf_appendf(&xml, "<Latest>%s</Latest>", parts[i].etag);
    buf_appendf(&xml, "</BlockList>");
    char md5[25], md5_hdr[64], body_md5[25], body_md5_hdr[64];
    md5_final(b->whole, md5);
    snprintf(md5_hdr, sizeof md5_hdr, "x-ms-blob-content-md5: %s", md5);
    az_md5_base64(xml.data, xml.len, body_md5);
    snprintf(body_md5_hdr, sizeof body_md5_hdr, "Content-MD5: %s", body_md5);
    const char *hdr[] = { "Content-Type: application/xml", "x-ms-blob-content-type: application/octet-stream",
                          md5_hdr, body_md5_hdr, NULL };
    struct az_target t;
    az_make_target(&b->s->cfg, b->p->container, b->p->blob, "comp=blocklist", &t);
    struct http_response resp;
    int rc = az_simple_request(b->s, "PUT", &t, hdr, xml.data, &resp, e);
    if (rc < 0)
        az_explain(e, &resp, "Put Block List", b->uri);
    http_response_free(&resp);
    az_target_free(&t);
    buf_free(&xml);
    return rc;
}

static int put_blocks(struct az *s, const char *uri, const struct az_path *p, struct par_reader *rd, int64_t size,
                      struct md5_source *whole, struct err *e)
{
    struct blocks b = { .s = s, .uri = uri, .p = p, .whole = whole };
    struct par_put pp = { .rd = rd, .size = size, .part_size = s->cfg.block_size, .grow_every = AZ_GROWTH_EVERY,
                          .max_part = AZ_MAX_BLOCK, .max_parts = AZ_MAX_BLOCKS,
                          .too_many_hint = "raise STEPOP_AZURE_BLOCK_SIZE", .mem_budget = s->cfg.mem_budget,
                          .put_part = put_block, .complete = put_block_list, .ctx = &b };
    int64_t nblocks = 0;
    if (size >= 0) {
        /* The configured block size, or larger when the blob needs more than 50,000 blocks. */
        int64_t min = (size + AZ_MAX_BLOCKS - 1) / AZ_MAX_BLOCKS;
        min = (min + AZ_MIB - 1) / AZ_MIB * AZ_MIB;
        if (min > pp.part_size)
            pp.part_size = min;
        if (pp.part_size > AZ_MAX_BLOCK)
            return err_set(e, ERR_INVALID, "the blob is larger than a block blob's limit (50,000 blocks of 4000 MiB)");
        nblocks = (size + pp.part_size - 1) / pp.part_size;
    }
    pp.workers = s->cfg.concurrency;
    if (size >= 0 && nblocks < pp.workers)
        pp.workers = (int)nblocks;
    log_debug("block upload: blocks of %lld bytes, %d at a time at most", (long long)pp.part_size, pp.workers);
    return par_put_run(&pp, e);
}

int az_put_blob(struct az *s, const char *uri, struct store_source *src, struct err *e)
{
    struct az_path p;
    if (az_parse_uri(uri, &p, NULL, e) < 0)
        return -1;
    int rc;
    if (!*p.blob || str_has_suffix(p.blob, "/")) {
        az_path_free(&p);
        return err_set(e, ERR_INVALID, "a blob URI needs a name that does not end in '/'");
    }
    struct md5_source ms = { .src = src, .md = EVP_MD_CTX_new() };
    EVP_DigestInit_ex(ms.md, EVP_md5(), NULL);
    struct store_source hashed = { .read = md5_read, .rewind = src->rewind ? md5_rewind : NULL, .ctx = &ms,
                                   .size = src->size };
    struct par_reader rd = { .src = &hashed };
    int64_t threshold = s->cfg.threshold;
    if (src->size >= 0 && src->size > threshold) {
        rc = put_blocks(s, uri, &p, &rd, src->size, &ms, e);
        goto out;
    }
    /* Up to the threshold the body is read into memory and sent as one Put Blob (retried from
     * memory). A stream of unknown length shows which case it is once more than the threshold
     * has arrived. */
    size_t want = src->size >= 0 ? (size_t)src->size : (size_t)threshold + 1;
    char *body = xmalloc(want ? want : 1);
    ssize_t got = par_reader_fill(&rd, body, want, e);
    if (got < 0) {
        free(body);
        rc = -1;
    } else if (src->size < 0 && (size_t)got > (size_t)threshold) {
        rd.ahead = body;
        rd.ahead_len = (size_t)got;
        rc = put_blocks(s, uri, &p, &rd, -1, &ms, e);
        free(rd.ahead);
    } else {
        char md5[25];
        md5_final(&ms, md5);
        rc = put_single(s, uri, &p, body, (size_t)got, md5, e);
        free(body);
    }
out:
    EVP_MD_CTX_free(ms.md);
    az_path_free(&p);
    return rc;
}
