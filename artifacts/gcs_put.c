/* gs:// uploads: up to the threshold one multipart/related request whose metadata carries the
 * crc32c (GCS refuses the object when the bytes do not match it); above it a resumable session
 * (uploadType=resumable) fed in chunks that are multiples of 256 KiB. A chunk that failed is not
 * simply sent again: the session is asked what it holds (PUT with "Content-Range: bytes
 * * /TOTAL") and the upload goes on from there; a session that is gone (404, 410) starts over
 * when the source can be rewound. The final object's size and crc32c are compared with what was
 * sent. Retries follow Google's guidance; an upload is retried without ifGenerationMatch, since
 * every attempt writes the same bytes (docs/artifacts.md). */
#include "gcs_internal.h"

#include "parallel.h"

#include "../runtime/crc32c.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *metadata_json(const char *name, const char *crc_b64)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", name);
    if (crc_b64)
        cJSON_AddStringToObject(m, "crc32c", crc_b64);
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return s;
}

/* The object the server made must be the one sent. */
int gcs_check_result(const struct http_response *resp, int64_t size, uint32_t crc, const char *uri,
                        struct err *e)
{
    struct gcs_object o;
    if (gcs_object_from_json(resp->body.data, resp->body.len, &o, e) < 0)
        return err_prefix(e, "upload of %s: ", uri);
    if (o.size != size)
        return err_set(e, ERR_INTEGRITY, "upload of %s: the server stored %lld bytes, %lld were sent", uri,
                       (long long)o.size, (long long)size);
    if (o.has_crc32c && o.crc32c != crc) {
        char want[9], got[9];
        crc32c_base64(crc, want);
        crc32c_base64(o.crc32c, got);
        return err_set(e, ERR_INTEGRITY, "upload of %s: the server's crc32c is %s, the bytes sent give %s", uri, got,
                       want);
    }
    return 0;
}

int gcs_upload_multipart(struct gcs *g, struct http_client *client, const char *uri, const char *bucket,
                         const char *name, const char *body, size_t len, const int *stop, uint32_t *crc_out,
                         struct err *e)
{
    uint32_t crc = crc32c_update(0, body, len);
    char crc_b64[9];
    crc32c_base64(crc, crc_b64);
    if (crc_out)
        *crc_out = crc;
    /* A boundary that the data does not hold (checked, though 128 random bits never collide). */
    char boundary[40];
    for (;;) {
        unsigned char rnd[16];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return err_set(e, ERR_INTERNAL, "no random bytes for a multipart boundary");
        memcpy(boundary, "stepop", 6);
        hex_encode(rnd, sizeof rnd, boundary + 6);
        if (!len || !memmem(body, len, boundary, strlen(boundary)))
            break;
    }
    char *meta = metadata_json(name, crc_b64);
    struct buf b = { 0 };
    buf_appendf(&b, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n--%s\r\n"
                "Content-Type: application/octet-stream\r\n\r\n", boundary, meta, boundary);
    buf_append(&b, body, len);
    buf_appendf(&b, "\r\n--%s--\r\n", boundary);
    free(meta);
    char ctype[96];
    snprintf(ctype, sizeof ctype, "Content-Type: multipart/related; boundary=%s", boundary);
    const char *hdr[] = { ctype, NULL };
    char *url = gcs_bucket_url(g, bucket, "/upload/storage/v1", "uploadType=multipart");
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, g, "POST", url, &hook);
    req.headers = hdr;
    req.body = b.data;
    req.body_len = b.len;
    req.max_body = 1u << 20;
    req.stop = stop;
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0)
        gcs_explain(e, &resp, "upload", uri);
    else
        rc = gcs_check_result(&resp, (int64_t)len, crc, uri, e);
    http_response_free(&resp);
    free(url);
    buf_free(&b);
    return rc;
}

/* ---- resumable ----------------------------------------------------------------------- */

struct session {
    struct gcs *g;
    const char *uri;
    char *url;          /* the session URI (Location of the POST) */
    int64_t total;      /* -1 until the last chunk is known */
};

static int start_session(struct session *s, const struct gcs_path *p, int64_t size, struct err *e)
{
    char *meta = metadata_json(p->object, NULL);
    char clen[64] = "";
    if (size >= 0)
        snprintf(clen, sizeof clen, "X-Upload-Content-Length: %lld", (long long)size);
    const char *hdr[] = { "Content-Type: application/json; charset=UTF-8",
                          "X-Upload-Content-Type: application/octet-stream", clen[0] ? clen : NULL, NULL };
    char *enc = gcs_encode_name(p->object);
    char *q = xasprintf("uploadType=resumable&name=%s", enc);
    char *url = gcs_bucket_url(s->g, p->bucket, "/upload/storage/v1", q);
    struct http_response resp;
    int rc = gcs_simple_request(s->g, s->g->client, "POST", url, hdr, meta, strlen(meta), &resp, e);
    if (rc < 0) {
        gcs_explain(e, &resp, "resumable upload", s->uri);
    } else {
        const char *loc = http_header(&resp, "location");
        if (!loc || strncmp(loc, "http", 4) != 0)
            rc = err_set(e, ERR_HTTP, "resumable upload of %s: the answer has no session URI (Location)", s->uri);
        else
            s->url = xstrdup(loc);
    }
    http_response_free(&resp);
    free(url);
    free(q);
    free(enc);
    free(meta);
    return rc;
}

/* Outcome of one exchange with the session. */
enum sess_state { SESS_MORE, SESS_DONE, SESS_GONE, SESS_FAILED };

/* Reads a session's answer: 308 (persisted up to Range), 200/201 (done), 404/410 (gone). */
static enum sess_state session_answer(int rc, const struct http_response *resp, int64_t *persisted, struct err *e)
{
    if (rc == 0 && (resp->status == 200 || resp->status == 201))
        return SESS_DONE;
    if (resp->status == 308) {
        int64_t n = gcs_persisted_from_range(http_header(resp, "range"));
        if (n < 0) {
            err_set(e, ERR_HTTP, "resumable upload: malformed Range \"%s\" in a 308", http_header(resp, "range"));
            return SESS_FAILED;
        }
        *persisted = n;
        return SESS_MORE;
    }
    if (resp->status == 404 || resp->status == 410)
        return SESS_GONE;
    if (rc == 0)
        err_set(e, ERR_HTTP, "resumable upload: unexpected HTTP %ld", resp->status);
    return SESS_FAILED;
}

/* Asks the session how much it holds; retried with backoff while the answers are transient. */
static enum sess_state query_session(struct session *s, int64_t *persisted, struct http_response *final,
                                     struct err *e)
{
    char cr[80];
    if (s->total >= 0)
        snprintf(cr, sizeof cr, "Content-Range: bytes */%lld", (long long)s->total);
    else
        snprintf(cr, sizeof cr, "Content-Range: bytes */*");
    const char *hdr[] = { cr, NULL };
    const struct http_config *hc = http_config();
    for (int attempt = 1;; attempt++) {
        struct http_response resp;
        int rc = gcs_simple_request(s->g, s->g->client, "PUT", s->url, hdr, "", 0, &resp, e);
        enum sess_state st = session_answer(rc, &resp, persisted, e);
        if (st == SESS_DONE) {
            *final = resp;
            return st;
        }
        http_response_free(&resp);
        if (st != SESS_FAILED || !e->transient || attempt >= hc->max_attempts)
            return st;
        if (time_sleep_ms(http_backoff_ms(attempt, -1, hc, (unsigned)time_mono_ms()), NULL) < 0 || http_cancelled())
            return err_set(e, ERR_CANCELLED, "resumable upload: cancelled"), SESS_FAILED;
    }
}

/* Sends chunk[from - chunk_start ..] as bytes from..chunk_end-1 (final: of total bytes). */
static enum sess_state send_chunk(struct session *s, const char *chunk, int64_t chunk_start, int64_t chunk_end,
                                  int64_t from, int final, int64_t *persisted, struct http_response *out,
                                  struct err *e)
{
    char cr[96];
    if (chunk_end == from)
        snprintf(cr, sizeof cr, "Content-Range: bytes */%lld", (long long)chunk_end);
    else if (final)
        snprintf(cr, sizeof cr, "Content-Range: bytes %lld-%lld/%lld", (long long)from, (long long)chunk_end - 1,
                 (long long)chunk_end);
    else if (s->total >= 0)
        snprintf(cr, sizeof cr, "Content-Range: bytes %lld-%lld/%lld", (long long)from, (long long)chunk_end - 1,
                 (long long)s->total);
    else
        snprintf(cr, sizeof cr, "Content-Range: bytes %lld-%lld/*", (long long)from, (long long)chunk_end - 1);
    const char *hdr[] = { cr, NULL };
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, s->g, "PUT", s->url, &hook);
    req.headers = hdr;
    req.body = chunk + (from - chunk_start);
    req.body_len = (size_t)(chunk_end - from);
    req.max_attempts = 1; /* a failed chunk is followed by a status query, not sent again blindly */
    struct http_response resp;
    int rc = http_perform(s->g->client, &req, &resp, e);
    enum sess_state st = session_answer(rc, &resp, persisted, e);
    if (st == SESS_DONE)
        *out = resp;
    else
        http_response_free(&resp);
    return st;
}

/* The whole upload through one session; SESS_GONE when it has to start over. */
static enum sess_state run_session(struct session *s, const struct gcs_path *p, struct par_reader *rd, int64_t size,
                                   uint32_t *crc_out, struct http_response *final_resp, struct err *e)
{
    if (start_session(s, p, size, e) < 0)
        return SESS_FAILED;
    int64_t csize = s->g->cfg.chunk_size;
    char *chunk = xmalloc((size_t)csize);
    int64_t start = 0;
    uint32_t crc = 0;
    enum sess_state st = SESS_FAILED;
    s->total = size;
    const struct http_config *hc = http_config();
    for (;;) {
        ssize_t got = par_reader_fill(rd, chunk, (size_t)csize, e);
        if (got < 0) {
            st = SESS_FAILED;
            break;
        }
        int64_t end = start + got;
        int final = got < csize || (size >= 0 && end >= size);
        if (final)
            s->total = end;
        crc = crc32c_update(crc, chunk, (size_t)got);
        int64_t from = start;
        int failures = 0;
        for (;;) {
            int64_t persisted = -1;
            st = send_chunk(s, chunk, start, end, from, final, &persisted, final_resp, e);
            /* After any failure but a refusal of the credentials, the session says where it
             * stands: a chunk cut off may have been stored in part, and libcurl sends a request
             * again by itself when a reused connection closes before any answer, which the
             * session refuses once it holds those bytes. */
            if (st == SESS_FAILED && e->kind != ERR_CANCELLED && e->kind != ERR_AUTH && ++failures < hc->max_attempts) {
                log_debug("resumable upload of %s: bytes %lld-%lld failed (%s); asking the session what it holds",
                          s->uri, (long long)from, (long long)end - 1, e->msg);
                if (time_sleep_ms(http_backoff_ms(failures, -1, hc, (unsigned)time_mono_ms()), NULL) < 0 ||
                    http_cancelled()) {
                    err_set(e, ERR_CANCELLED, "resumable upload of %s: cancelled", s->uri);
                    goto out;
                }
                st = query_session(s, &persisted, final_resp, e);
            }
            if (st == SESS_DONE && !final) {
                err_set(e, ERR_INTEGRITY, "resumable upload of %s: the server finished the object after bytes "
                        "%lld-%lld, before the rest was sent (does it take chunks? see STEPOP_GCS_CHUNK_SIZE)",
                        s->uri, (long long)from, (long long)end - 1);
                st = SESS_FAILED;
            }
            if (st != SESS_MORE)
                goto out;
            if (persisted < start) {
                /* The session lost bytes of an earlier chunk, which are no longer at hand. */
                log_debug("resumable upload of %s: the session holds %lld bytes, fewer than the %lld sent", s->uri,
                          (long long)persisted, (long long)start);
                st = SESS_GONE;
                goto out;
            }
            if (persisted > end) {
                err_set(e, ERR_HTTP, "resumable upload of %s: the session claims %lld bytes, only %lld were sent",
                        s->uri, (long long)persisted, (long long)end);
                st = SESS_FAILED;
                goto out;
            }
            if (persisted == end && !final)
                break;
            from = persisted;
        }
        start = end;
    }
out:
    free(chunk);
    *crc_out = crc;
    return st;
}

static int put_resumable(struct gcs *g, const char *uri, const struct gcs_path *p, struct par_reader *rd,
                         int64_t size, struct err *e)
{
    for (int round = 1;; round++) {
        struct session s = { .g = g, .uri = uri, .total = -1 };
        struct http_response final;
        memset(&final, 0, sizeof final);
        uint32_t crc = 0;
        enum sess_state st = run_session(&s, p, rd, size, &crc, &final, e);
        int rc = -1;
        if (st == SESS_DONE)
            rc = gcs_check_result(&final, s.total, crc, uri, e);
        http_response_free(&final);
        free(s.url);
        if (st != SESS_GONE)
            return st == SESS_DONE ? rc : -1;
        if (!rd->src->rewind || round >= 3 || rd->src->rewind(rd->src->ctx, e) < 0) {
            err_set(e, ERR_HTTP, "resumable upload of %s: the upload session is gone (expired or lost data)", uri);
            e->transient = 1; /* transfer_put packs the stream again */
            return -1;
        }
        log_warn("resumable upload of %s: the upload session is gone; starting again", uri);
        rd->ahead_len = rd->ahead_off = 0;
    }
}

int gcs_put_object(struct gcs *g, const char *uri, struct store_source *src, struct err *e)
{
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc;
    if (!*p.object || str_has_suffix(p.object, "/")) {
        rc = err_set(e, ERR_INVALID, "an object URI needs a name that does not end in '/'");
        goto out;
    }
    struct par_reader rd = { .src = src };
    int64_t threshold = g->cfg.threshold;
    if (src->size >= 0 && src->size > threshold) {
        rc = g->cfg.parallel != GCS_PARALLEL_OFF ? gcs_put_parallel(g, uri, &p, &rd, src->size, e)
                                                 : put_resumable(g, uri, &p, &rd, src->size, e);
        goto out;
    }
    /* Up to the threshold the body is read into memory: one request, retried from memory. A
     * stream of unknown length shows which case it is once more than the threshold arrived. */
    size_t want = src->size >= 0 ? (size_t)src->size : (size_t)threshold + 1;
    char *body = xmalloc(want ? want : 1);
    ssize_t got = par_reader_fill(&rd, body, want, e);
    if (got < 0) {
        free(body);
        rc = -1;
    } else if (src->size < 0 && (size_t)got > (size_t)threshold) {
        rd.ahead = body;
        rd.ahead_len = (size_t)got;
        rc = g->cfg.parallel != GCS_PARALLEL_OFF ? gcs_put_parallel(g, uri, &p, &rd, -1, e)
                                                 : put_resumable(g, uri, &p, &rd, -1, e);
        free(rd.ahead);
    } else {
        rc = gcs_upload_multipart(g, g->client, uri, p.bucket, p.object, body, (size_t)got, NULL, NULL, e);
        free(body);
    }
out:
    gcs_path_free(&p);
    return rc;
}
