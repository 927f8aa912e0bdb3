/* gRPC over HTTP/2 with libcurl: see grpc.h. */
#include "grpc.h"

#include "../../runtime/http.h"
#include "../../runtime/log.h"
#include "../../runtime/timeutil.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define GRPC_SERVICE "/modal.client.ModalClient/"

static const char *const grpc_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *grpc_code_name(int code)
{
    return code >= 0 && code <= GRPC_UNAUTHENTICATED ? grpc_names[code] : "UNKNOWN_CODE";
}

int grpc_retryable(int code)
{
    return code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED || code == GRPC_INTERNAL ||
           code == GRPC_UNKNOWN;
}

void grpc_frame(struct buf *out, const void *msg, size_t n)
{
    uint8_t p[5] = { 0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    buf_append(out, p, 5);
    buf_append(out, n ? msg : "", n);
}

int grpc_deframe(struct grpc_deframer *d, const void *data, size_t n, struct err *e)
{
    buf_append(&d->pending, data, n);
    size_t at = 0;
    int rc = 0;
    while (d->pending.len - at >= 5) {
        const uint8_t *p = (const uint8_t *)d->pending.data + at;
        uint32_t len = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4];
        if (p[0] != 0) {
            rc = err_set(e, ERR_UNSUPPORTED, "gRPC: a compressed message came back, but none was asked for");
            break;
        }
        if (len > GRPC_MAX_MESSAGE) {
            rc = err_set(e, ERR_REFUSED, "gRPC: a message of %u bytes is over the %u-byte limit", len,
                         GRPC_MAX_MESSAGE);
            break;
        }
        if (d->pending.len - at - 5 < len)
            break;
        int r = d->on_msg ? d->on_msg(d->ctx, p + 5, len, e) : 0;
        at += 5 + (size_t)len;
        if (r != 0) {
            rc = r < 0 ? -1 : 1;
            break;
        }
    }
    if (at) {
        memmove(d->pending.data, d->pending.data + at, d->pending.len - at);
        d->pending.len -= at;
        d->pending.data[d->pending.len] = 0;
    }
    return rc;
}

int grpc_deframe_end(struct grpc_deframer *d, struct err *e)
{
    if (d->pending.len)
        return err_set(e, ERR_INVALID, "gRPC: the answer ended inside a message (%zu bytes left over)", d->pending.len);
    return 0;
}

void grpc_deframer_free(struct grpc_deframer *d)
{
    buf_free(&d->pending);
    memset(d, 0, sizeof *d);
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

void grpc_percent_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval((unsigned char)r[1])) >= 0 && (lo = hexval((unsigned char)r[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
}

void grpc_header_line(struct grpc_result *r, const char *line, size_t n)
{
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
        const char *sp = memchr(line, ' ', n);
        if (sp)
            r->http_status = strtol(sp + 1, NULL, 10);
        return;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < line + n && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(line + n - v);
    if (nl == 11 && !strncasecmp(line, "grpc-status", 11)) {
        char tmp[16];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(vl < 15 ? vl : 15), v);
        char *end;
        long c = strtol(tmp, &end, 10);
        r->have_status = 1;
        r->code = (end != tmp && !*end && c >= 0 && c <= 1000) ? (int)c : GRPC_UNKNOWN;
    } else if (nl == 12 && !strncasecmp(line, "grpc-message", 12)) {
        snprintf(r->message, sizeof r->message, "%.*s", (int)vl, v);
        grpc_percent_decode(r->message);
    } else if (nl == 12 && !strncasecmp(line, "content-type", 12)) {
        snprintf(r->content_type, sizeof r->content_type, "%.*s", (int)vl, v);
    }
}

int grpc_channel_init(struct grpc_channel *ch, const char *server_url, grpc_headers_fn headers, void *ctx,
                      struct err *e)
{
    memset(ch, 0, sizeof *ch);
    const char *rest;
    if (!strncmp(server_url, "http://", 7)) {
        ch->cleartext = 1;
        rest = server_url + 7;
    } else if (!strncmp(server_url, "https://", 8)) {
        rest = server_url + 8;
    } else {
        return err_set(e, ERR_INVALID, "Modal server URL \"%s\": expected http:// or https://", server_url);
    }
    size_t n = strlen(rest);
    while (n && rest[n - 1] == '/')
        n--;
    if (!n || memchr(rest, '/', n) || memchr(rest, '?', n) || memchr(rest, '@', n))
        return err_set(e, ERR_INVALID, "Modal server URL \"%s\": expected scheme://host[:port] without a path",
                       server_url);
    ch->base = xasprintf("%s%.*s", ch->cleartext ? "http://" : "https://", (int)n, rest);
    ch->share = curl_share_init();
    if (!ch->share) {
        free(ch->base);
        ch->base = NULL;
        return err_set(e, ERR_INTERNAL, "curl_share_init failed");
    }
    curl_share_setopt(ch->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    ch->headers = headers;
    ch->headers_ctx = ctx;
    return 0;
}

void grpc_channel_free(struct grpc_channel *ch)
{
    if (ch->share)
        curl_share_cleanup(ch->share);
    free(ch->base);
    memset(ch, 0, sizeof *ch);
}

struct grpc_xfer {
    struct grpc_result res;
    struct grpc_deframer d;
    struct err cb_err;
    int cb_failed;
    int stopped; /* the consumer had what it wanted (a stream's eof) */
};

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    grpc_header_line(ud, p, size * n);
    return size * n;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct grpc_xfer *x = ud;
    /* Only a gRPC answer's body is parsed; anything else is reported from its status. */
    if (x->res.http_status != 200)
        return size * n;
    int rc = grpc_deframe(&x->d, p, size * n, &x->cb_err);
    if (rc < 0)
        x->cb_failed = 1;
    if (rc > 0)
        x->stopped = 1;
    return rc ? 0 : size * n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return http_cancelled();
}

/* Frees a header list, its lines wiped first: they hold the token secret and the auth token. */
static void grpc_slist_wipe(struct curl_slist *l)
{
    for (struct curl_slist *it = l; it; it = it->next)
        OPENSSL_cleanse(it->data, strlen(it->data));
    curl_slist_free_all(l);
}

/* A version 4 UUID, as the JS SDK's idempotency keys are. */
static void grpc_uuid(char out[37])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)rand();
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* One attempt. Returns 0 on grpc-status OK; -1 with e set otherwise, *code the gRPC code (-1
 * when the transport failed before a status). */
static int grpc_attempt(struct grpc_channel *ch, const char *method, const struct buf *framed, grpc_msg_fn on_msg,
                        void *ctx, int64_t timeout_ms, const char *idem_key, int attempt, int *code, struct err *e)
{
    /* A fresh easy handle and a fresh connection per call: libcurl 7.88 (Debian 12's, and the
     * static build's) fails a second request on a kept HTTP/2 connection to a gRPC server with
     * "Error in the HTTP2 framing layer" (curl's own command line does the same). */
    CURL *h = curl_easy_init();
    if (!h)
        return err_set(e, ERR_INTERNAL, "curl_easy_init failed");
    const struct http_config *cfg = http_config();
    struct grpc_xfer x;
    memset(&x, 0, sizeof x);
    x.d.on_msg = on_msg;
    x.d.ctx = ctx;
    *code = -1;
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "content-type: application/grpc");
    hl = curl_slist_append(hl, "te: trailers");
    hl = curl_slist_append(hl, "Expect:");
    char line[128];
    if (idem_key) {
        snprintf(line, sizeof line, "x-idempotency-key: %s", idem_key);
        hl = curl_slist_append(hl, line);
        snprintf(line, sizeof line, "x-retry-attempt: %d", attempt);
        hl = curl_slist_append(hl, line);
    }
    if (timeout_ms > 0) {
        snprintf(line, sizeof line, "grpc-timeout: %lldm", (long long)timeout_ms);
        hl = curl_slist_append(hl, line);
    }
    if (ch->headers && ch->headers(ch->headers_ctx, method, &hl, e) < 0) {
        grpc_slist_wipe(hl);
        curl_easy_cleanup(h);
        *code = GRPC_UNAUTHENTICATED;
        return -1;
    }
    char *url = xasprintf("%s" GRPC_SERVICE "%s", ch->base, method);
    curl_easy_setopt(h, CURLOPT_SHARE, ch->share);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     (long)(ch->cleartext ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, framed->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)framed->len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "stepop/" STEPOP_VERSION " grpc-c-libcurl");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x.res);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    if (timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms + 10000));
    if (cfg->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_bundle);
    if (cfg->ca_dir)
        curl_easy_setopt(h, CURLOPT_CAPATH, cfg->ca_dir);
    if (cfg->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    long version = 0;
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    curl_easy_cleanup(h);
    grpc_slist_wipe(hl);
    free(url);
    int rc = 0;
    if (x.cb_failed) {
        *e = x.cb_err;
        rc = -1;
    } else if (x.stopped) {
        *code = GRPC_OK;
    } else if (cc == CURLE_ABORTED_BY_CALLBACK && http_cancelled()) {
        rc = err_set(e, ERR_CANCELLED, "%s: interrupted", method);
    } else if (cc != CURLE_OK && !x.res.have_status) {
        rc = err_set(e, ERR_NETWORK, "%s: %s (%s)", method, curl_easy_strerror(cc), ch->base);
        e->transient = 1;
    } else if (x.res.http_status && version != CURL_HTTP_VERSION_2_0) {
        rc = err_set(e, ERR_UNSUPPORTED, "%s: %s answered over HTTP/1 (gRPC needs HTTP/2): HTTP %ld", method, ch->base,
                     x.res.http_status);
    } else if (!x.res.have_status) {
        /* No grpc-status: not a gRPC server, or a proxy's error page. HTTP codes map as gRPC's do. */
        long s = x.res.http_status;
        *code = s == 401 ? GRPC_UNAUTHENTICATED : s == 403 ? GRPC_PERMISSION_DENIED : s == 404 ? GRPC_UNIMPLEMENTED
              : (s == 429 || s == 502 || s == 503 || s == 504) ? GRPC_UNAVAILABLE : GRPC_UNKNOWN;
        rc = err_set(e, ERR_HTTP, "%s: HTTP %ld without a gRPC status from %s (content-type %s)", method, s, ch->base,
                     x.res.content_type[0] ? x.res.content_type : "none");
        e->transient = grpc_retryable(*code);
    } else if (x.res.code != GRPC_OK) {
        *code = x.res.code;
        enum err_kind kind = ERR_HTTP;
        if (*code == GRPC_NOT_FOUND)
            kind = ERR_NOT_FOUND;
        else if (*code == GRPC_UNAUTHENTICATED || *code == GRPC_PERMISSION_DENIED)
            kind = ERR_AUTH;
        else if (*code == GRPC_INVALID_ARGUMENT || *code == GRPC_FAILED_PRECONDITION || *code == GRPC_OUT_OF_RANGE)
            kind = ERR_INVALID;
        rc = err_set(e, kind, "%s: %s%s%s", method, grpc_code_name(*code), x.res.message[0] ? ": " : "",
                     x.res.message);
        e->transient = grpc_retryable(*code);
    } else if (grpc_deframe_end(&x.d, e) < 0) {
        rc = -1;
    } else {
        *code = GRPC_OK;
    }
    if (rc < 0)
        e->http_status = *code;
    grpc_deframer_free(&x.d);
    return rc;
}

struct grpc_unary_ctx {
    struct buf *resp;
    int count;
};

static int grpc_keep(void *ctx, const uint8_t *msg, size_t n, struct err *e)
{
    struct grpc_unary_ctx *u = ctx;
    if (++u->count > 1)
        return err_set(e, ERR_INVALID, "gRPC: a unary call answered with more than one message");
    buf_append(u->resp, msg, n);
    return 0;
}

static void grpc_sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && !http_cancelled())
        ;
}

int grpc_unary(struct grpc_channel *ch, const char *method, const struct buf *req, struct buf *resp,
               int64_t timeout_ms, struct err *e)
{
    struct buf framed = { 0 };
    grpc_frame(&framed, req->data, req->len);
    char key[37];
    grpc_uuid(key);
    const struct http_config *cfg = http_config();
    int max = ch->max_attempts > 0 ? ch->max_attempts : cfg->max_attempts;
    int rc = -1, reauthed = 0;
    for (int attempt = 0;; attempt++) {
        struct grpc_unary_ctx u = { resp, 0 };
        resp->len = 0;
        if (resp->data)
            resp->data[0] = 0;
        int code;
        rc = grpc_attempt(ch, method, &framed, grpc_keep, &u, timeout_ms, key, attempt, &code, e);
        if (rc == 0 && u.count != 1)
            rc = err_set(e, ERR_INVALID, "%s: the answer holds no message", method);
        if (rc < 0 && code == GRPC_UNAUTHENTICATED && !reauthed && ch->reauth && ch->reauth(ch->headers_ctx)) {
            reauthed = 1;
            log_debug("%s: %s; again with a fresh auth token", method, e->msg);
            continue;
        }
        if (rc == 0 || attempt + 1 >= max || e->kind == ERR_CANCELLED || !(code < 0 ? e->transient : grpc_retryable(code)))
            break;
        unsigned rnd;
        if (RAND_bytes((unsigned char *)&rnd, sizeof rnd) != 1)
            rnd = (unsigned)rand();
        int64_t wait = http_backoff_ms(attempt + 1, -1, cfg, rnd);
        log_debug("%s: %s; retrying in %lld ms (attempt %d of %d)", method, e->msg, (long long)wait, attempt + 2, max);
        grpc_sleep_ms(wait);
        if (http_cancelled()) {
            rc = err_set(e, ERR_CANCELLED, "%s: interrupted", method);
            break;
        }
    }
    buf_free(&framed);
    return rc;
}

int grpc_stream(struct grpc_channel *ch, const char *method, const struct buf *req, grpc_msg_fn on_msg, void *ctx,
                int64_t timeout_ms, struct err *e)
{
    struct buf framed = { 0 };
    grpc_frame(&framed, req->data, req->len);
    char key[37];
    grpc_uuid(key);
    int code;
    int rc = grpc_attempt(ch, method, &framed, on_msg, ctx, timeout_ms, key, 0, &code, e);
    buf_free(&framed);
    return rc;
}
