/* s3:// uploads: one PUT up to the threshold, else a multipart upload whose parts go out in
 * parallel (artifacts/parallel.c). S3's policy is here: part sizes, 10,000 parts, the requests
 * (CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload). */
#include "s3_internal.h"

#include "parallel.h"

#include "../cloud/aws/sigv4.h"
#include "../runtime/log.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put_single(struct s3 *s, const char *uri, const struct s3_path *p, const char *body, size_t len,
                      struct err *e)
{
    struct s3_target t;
    s3_make_target(&s->cfg, p->bucket, p->key, NULL, &t);
    char hash[65], sum[45], sum_hdr[80];
    s3_body_hashes(&s->cfg, body ? body : "", len, hash, sum);
    const char *hdr[3] = { "Content-Type: application/octet-stream", NULL, NULL };
    if (sum[0]) {
        snprintf(sum_hdr, sizeof sum_hdr, "x-amz-checksum-sha256: %s", sum);
        hdr[1] = sum_hdr;
    }
    struct aws_sign k;
    s3_sign_init(&k, s, &t, hash);
    struct http_request req;
    s3_request_init(&req, "PUT", &t, &k);
    req.headers = hdr;
    req.body = body ? body : "";
    req.body_len = len;
    struct http_response resp;
    int rc = http_perform(s->client, &req, &resp, e);
    if (rc < 0)
        s3_explain(e, &resp, "PUT", uri);
    http_response_free(&resp);
    s3_target_free(&t);
    return rc;
}

/* One multipart upload, read only while the parts go out: the engine's callback context. */
struct mp {
    struct s3 *s;
    const char *uri;
    const struct s3_path *p;
    char *upload_id_enc;
};

static int upload_part(void *ctx, struct http_client *client, int n, const char *body, size_t len, const int *stop,
                       struct par_part *rec, struct err *e)
{
    struct mp *m = ctx;
    char *q = xasprintf("partNumber=%d&uploadId=%s", n, m->upload_id_enc);
    struct s3_target t;
    s3_make_target(&m->s->cfg, m->p->bucket, m->p->key, q, &t);
    free(q);
    char hash[65], sum_hdr[80];
    s3_body_hashes(&m->s->cfg, body, len, hash, rec->checksum);
    const char *hdr[2] = { NULL, NULL };
    if (rec->checksum[0]) {
        snprintf(sum_hdr, sizeof sum_hdr, "x-amz-checksum-sha256: %s", rec->checksum);
        hdr[0] = sum_hdr;
    }
    struct aws_sign k;
    s3_sign_init(&k, m->s, &t, hash);
    struct http_request req;
    s3_request_init(&req, "PUT", &t, &k);
    req.headers = hdr;
    req.body = body;
    req.body_len = len;
    req.stop = stop;
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0) {
        s3_explain(e, &resp, "UploadPart", m->uri);
        err_prefix(e, "part %d: ", n);
    } else {
        const char *etag = http_header(&resp, "etag");
        if (!etag || !*etag)
            rc = err_set(e, ERR_HTTP, "part %d: UploadPart answered without an ETag", n);
        else
            rec->etag = xstrdup(etag);
    }
    http_response_free(&resp);
    s3_target_free(&t);
    return rc;
}

static void abort_upload(void *ctx)
{
    struct mp *m = ctx;
    char *q = xasprintf("uploadId=%s", m->upload_id_enc);
    struct s3_target t;
    s3_make_target(&m->s->cfg, m->p->bucket, m->p->key, q, &t);
    free(q);
    char hash[65];
    s3_payload_hash(&m->s->cfg, "", 0, hash);
    struct aws_sign k;
    s3_sign_init(&k, m->s, &t, hash);
    struct http_request req;
    s3_request_init(&req, "DELETE", &t, &k);
    req.uncancellable = 1;
    struct http_response resp;
    struct err e = { 0 };
    if (http_perform(m->s->client, &req, &resp, &e) < 0 && resp.status != 404) {
        s3_explain(&e, &resp, "AbortMultipartUpload", m->uri);
        char red[512];
        uri_redact(m->uri, red, sizeof red);
        log_warn("%s; the incomplete multipart upload of %s may keep its parts until it is aborted "
                 "(aws s3api abort-multipart-upload)", e.msg, red);
    }
    http_response_free(&resp);
    s3_target_free(&t);
}

static int complete_upload(void *ctx, const struct par_part *parts, int nparts, int64_t total, struct err *e)
{
    struct mp *m = ctx;
    for (int i = 0; i < nparts; i++) {
        if (!parts[i].etag)
            return err_set(e, ERR_INTERNAL, "part %d has no ETag", i + 1);
        /* ETags are quoted strings of hex digits: nothing to escape, but never trust that. */
        if (strpbrk(parts[i].etag, "<>&"))
            return err_set(e, ERR_HTTP, "part %d: the server's ETag holds XML markup", i + 1);
    }
    struct buf xml = { 0 };
    buf_appendf(&xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (int i = 0; i < nparts; i++) {
        buf_appendf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>", i + 1, parts[i].etag);
        if (parts[i].checksum[0])
            buf_appendf(&xml, "<ChecksumSHA256>%s</ChecksumSHA256>", parts[i].checksum);
        buf_appendf(&xml, "</Part>");
    }
    buf_appendf(&xml, "</CompleteMultipartUpload>");
    char *q = xasprintf("uploadId=%s", m->upload_id_enc);
    struct s3_target t;
    s3_make_target(&m->s->cfg, m->p->bucket, m->p->key, q, &t);
    free(q);
    const char *hdr[] = { "Content-Type: application/xml", NULL };
    struct http_response resp;
    int rc = s3_simple_request(m->s, m->s->client, "POST", &t, hdr, xml.data, &resp, e);
    if (rc < 0 && resp.status == 404 && resp.attempts > 1) {
        /* An earlier attempt completed it and the answer was lost: the object tells. */
        struct store_stat st;
        struct err he = { 0 };
        if (s3_head_object(m->s, m->uri, m->p, &st, &he) == 0 && st.size == total)
            rc = 0;
    } else if (rc < 0) {
        s3_explain(e, &resp, "CompleteMultipartUpload", m->uri);
    } else {
        /* A 200 can still carry an error (S3 sends the status before it has finished). */
        char *msg, *code = s3_error_code(&resp, &msg);
        char *etag = code ? NULL : xml_find(resp.body.data, resp.body.len, "CompleteMultipartUploadResult/ETag");
        if (code) {
            rc = err_set(e, ERR_HTTP, "CompleteMultipartUpload: HTTP 200 with error %s%s%s", code, msg ? ": " : "",
                         msg ? msg : "");
            e->transient = s3_retryable_code(code);
        } else if (!etag) {
            rc = err_set(e, ERR_HTTP, "CompleteMultipartUpload: the answer has no CompleteMultipartUploadResult");
        } else {
            /* A multipart ETag ends in "-<number of parts>" on S3; other servers may give an MD5. */
            const char *dash = strrchr(etag, '-');
            if (dash && atoi(dash + 1) != nparts)
                rc = err_set(e, ERR_INTEGRITY, "CompleteMultipartUpload: the object's ETag %s does not count %d parts",
                             etag, nparts);
        }
        free(code);
        free(msg);
        free(etag);
    }
    http_response_free(&resp);
    s3_target_free(&t);
    buf_free(&xml);
    return rc;
}

static int put_multipart(struct s3 *s, const char *uri, const struct s3_path *p, struct par_reader *rd, int64_t size,
                         struct err *e)
{
    struct mp m = { .s = s, .uri = uri, .p = p };
    struct par_put pp = { .rd = rd, .size = size, .part_size = s->cfg.part_size, .grow_every = UNKNOWN_GROWTH_EVERY,
                          .max_part = S3_MAX_PART, .max_parts = S3_MAX_PARTS,
                          .too_many_hint = "raise STEPOP_S3_PART_SIZE", .mem_budget = s->cfg.mem_budget,
                          .put_part = upload_part, .complete = complete_upload, .abort = abort_upload, .ctx = &m };
    int64_t nparts = 0;
    if (size >= 0) {
        /* The configured part size, or larger when the object needs more than 10,000 parts. */
        int64_t min = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
        min = (min + MIB - 1) / MIB * MIB;
        if (min > pp.part_size)
            pp.part_size = min;
        if (pp.part_size > S3_MAX_PART)
            return err_set(e, ERR_INVALID, "the object is larger than S3's 5 TiB limit");
        nparts = (size + pp.part_size - 1) / pp.part_size;
    }
    struct s3_target t;
    s3_make_target(&s->cfg, p->bucket, p->key, "uploads", &t);
    const char *hdr[3] = { "Content-Type: application/octet-stream", s->cfg.checksum ? "x-amz-checksum-algorithm: SHA256" : NULL,
                           NULL };
    struct http_response resp;
    int rc = s3_simple_request(s, s->client, "POST", &t, hdr, NULL, &resp, e);
    char *upload_id = NULL;
    if (rc < 0)
        s3_explain(e, &resp, "CreateMultipartUpload", uri);
    else if (!(upload_id = xml_find(resp.body.data, resp.body.len, "InitiateMultipartUploadResult/UploadId")) ||
             !*upload_id)
        rc = err_set(e, ERR_HTTP, "CreateMultipartUpload: the answer has no UploadId");
    http_response_free(&resp);
    s3_target_free(&t);
    if (rc < 0) {
        free(upload_id);
        return -1;
    }
    m.upload_id_enc = sigv4_encode(upload_id, 1);
    pp.workers = s->cfg.concurrency;
    if (size >= 0 && nparts < pp.workers)
        pp.workers = (int)nparts;
    log_debug("multipart upload %s: parts of %lld bytes, %d at a time at most", upload_id, (long long)pp.part_size,
              pp.workers);
    rc = par_put_run(&pp, e);
    free(m.upload_id_enc);
    free(upload_id);
    return rc;
}

int s3_put_object(struct s3 *s, const char *uri, struct store_source *src, struct err *e)
{
    struct s3_path p;
    if (s3_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc;
    if (!*p.key || str_has_suffix(p.key, "/")) {
        rc = err_set(e, ERR_INVALID, "an object URI needs a key that does not end in '/'");
        goto out;
    }
    struct par_reader rd = { .src = src };
    int64_t threshold = s->cfg.threshold;
    if (src->size >= 0 && src->size > threshold) {
        rc = put_multipart(s, uri, &p, &rd, src->size, e);
        goto out;
    }
    /* Up to the threshold the body is read into memory: one PUT, signed with its hash, and
     * retried from memory. A stream of unknown length shows which case it is once more than the
     * threshold has arrived. */
    size_t want = src->size >= 0 ? (size_t)src->size : (size_t)threshold + 1;
    char *body = xmalloc(want ? want : 1);
    ssize_t got = par_reader_fill(&rd, body, want, e);
    if (got < 0) {
        free(body);
        rc = -1;
    } else if (src->size < 0 && (size_t)got > (size_t)threshold) {
        rd.ahead = body;
        rd.ahead_len = (size_t)got;
        rc = put_multipart(s, uri, &p, &rd, -1, e);
        free(rd.ahead);
    } else {
        rc = put_single(s, uri, &p, body, (size_t)got, e);
        free(body);
    }
out:
    s3_path_free(&p);
    return rc;
}

