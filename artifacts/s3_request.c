/* The s3:// store's requests: addressing (path-style or virtual-hosted), SigV4 through the AWS
 * room's signing hook, S3's retry rules and error messages. */
#include "s3_internal.h"

#include "../cloud/aws/sigv4.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- addressing ---------------------------------------------------------------------- */

void s3_path_free(struct s3_path *p)
{
    free(p->bucket);
    free(p->key);
}

int s3_parse_uri(const char *uri, struct s3_path *p, struct err *e)
{
    memset(p, 0, sizeof *p);
    if (strncasecmp(uri, "s3://", 5) != 0)
        return err_set(e, ERR_INVALID, "not an s3:// URI: %s", uri);
    const char *b = uri + 5;
    size_t n = strcspn(b, "/");
    if (n == 0 || n > 255)
        return err_set(e, ERR_INVALID, "an s3:// URI needs a bucket name: s3://BUCKET/KEY");
    p->bucket = xstrndup(b, n);
    for (const char *c = p->bucket; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_')) {
            int rc = err_set(e, ERR_INVALID, "\"%s\" is not a valid bucket name", p->bucket);
            s3_path_free(p);
            return rc;
        }
    p->key = xstrdup(b[n] ? b + n + 1 : "");
    return 0;
}

/* Virtual-hosted style needs a bucket name that is one DNS label set the certificate covers:
 * lower-case letters, digits and hyphens (dots break TLS wildcard names). */
static int dns_compatible(const char *bucket, int https)
{
    size_t n = strlen(bucket);
    if (n < 3 || n > 63 || bucket[0] == '-' || bucket[n - 1] == '-')
        return 0;
    for (const char *c = bucket; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || (*c == '.' && !https)))
            return 0;
    return 1;
}

void s3_target_free(struct s3_target *t)
{
    free(t->url);
    free(t->host);
    free(t->path);
    free(t->query);
}

void s3_make_target(const struct s3_config *c, const char *bucket, const char *key, const char *query,
                    struct s3_target *t)
{
    char *enc = key ? sigv4_encode(key, 0) : NULL;
    int path_style = c->path_style || !dns_compatible(bucket, strcmp(c->scheme, "https") == 0);
    if (path_style) {
        t->host = xstrdup(c->host);
        t->path = enc ? xasprintf("/%s/%s", bucket, enc) : xasprintf("/%s", bucket);
    } else {
        t->host = xasprintf("%s.%s", bucket, c->host);
        t->path = xasprintf("/%s", enc ? enc : "");
    }
    t->query = query && *query ? xstrdup(query) : NULL;
    t->url = xasprintf("%s://%s%s%s%s", c->scheme, t->host, t->path, t->query ? "?" : "", t->query ? t->query : "");
    free(enc);
}

/* ---- S3's errors and retry rules ------------------------------------------------------- */

char *s3_error_code(const struct http_response *r, char **message)
{
    if (message)
        *message = NULL;
    if (!r->body.data || !r->body.len || !strstr(r->body.data, "<Error"))
        return NULL;
    char *code = xml_find(r->body.data, r->body.len, "Error/Code");
    if (code && message)
        *message = xml_find(r->body.data, r->body.len, "Error/Message");
    return code;
}

int s3_retryable_code(const char *code)
{
    static const char *const codes[] = { "InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout",
                                         "RequestTimeTooSkewed", "OperationAborted", NULL };
    for (const char *const *c = codes; *c; c++)
        if (strcmp(code, *c) == 0)
            return 1;
    return 0;
}

/* S3's retry rules on top of the HTTP layer's (which retries 5xx, 408, 429 and resets):
 * RequestTimeout is a 400, a skewed clock a 403 that the server's Date corrects, an expired
 * session token a 400 that fresh credentials fix, and CompleteMultipartUpload can answer 200 with
 * an <Error> body. */
static int retry_hook(void *ctx, const struct http_response *r)
{
    struct aws_sign *k = ctx;
    char *code = s3_error_code(r, NULL);
    int d = -1;
    if (!code) {
        d = -1;
    } else if (strcmp(code, "RequestTimeTooSkewed") == 0) {
        d = aws_sign_skewed(k, r, "S3");
    } else if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "TokenRefreshRequired") == 0) {
        d = aws_sign_expired(k);
    } else if (r->status >= 200 && r->status < 300) {
        d = s3_retryable_code(code) ? 1 : -1;
    } else if (s3_retryable_code(code)) {
        d = 1;
    }
    free(code);
    return d;
}

void s3_explain(struct err *e, const struct http_response *r, const char *what, const char *uri)
{
    char red[512];
    uri_redact(uri, red, sizeof red);
    char *msg, *code = s3_error_code(r, &msg);
    if (code) {
        enum err_kind kind = e->kind;
        if (!strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchBucket") || !strcmp(code, "NoSuchUpload"))
            kind = ERR_NOT_FOUND;
        int transient = e->transient;
        long status = e->http_status;
        err_set(e, kind, "%s %s: HTTP %ld %s%s%s", what, red, r->status, code, msg ? ": " : "", msg ? msg : "");
        e->transient = transient;
        e->http_status = status;
    } else if (e->kind != ERR_CANCELLED) {
        char inner[sizeof e->msg];
        snprintf(inner, sizeof inner, "%s", e->msg);
        /* The HTTP layer's "METHOD http://...: why" names the URL; the s3:// URI is what the
         * user gave. Other messages (no credentials) are kept whole. */
        const char *sp = strchr(inner, ' ');
        const char *colon = sp && strncmp(sp + 1, "http", 4) == 0 ? strstr(sp, ": ") : NULL;
        enum err_kind kind = e->kind;
        int transient = e->transient;
        long status = e->http_status;
        err_set(e, kind, "%s %s: %s", what, red, colon ? colon + 2 : inner);
        e->transient = transient;
        e->http_status = status;
    }
    free(code);
    free(msg);
    /* A bucket in another region than the one signed for (301, or 400 to a signed request):
     * say which, as S3 tells in a header. */
    const char *region = http_header(r, "x-amz-bucket-region");
    if ((r->status == 301 || r->status == 400) && region && *region &&
        strlen(e->msg) + strlen(region) * 2 + 40 < sizeof e->msg)
        snprintf(e->msg + strlen(e->msg), sizeof e->msg - strlen(e->msg),
                 " (the bucket is in %s: set AWS_REGION=%s)", region, region);
}

/* ---- requests ------------------------------------------------------------------------ */

void s3_sign_init(struct aws_sign *k, const struct s3 *s, const struct s3_target *t, const char *payload_hash)
{
    memset(k, 0, sizeof *k);
    k->service = "s3";
    k->region = s->cfg.region;
    k->host = t->host;
    k->path = t->path;
    k->query = t->query;
    k->payload_hash = payload_hash;
    k->fixed_now = s->cfg.fixed_now;
}

void s3_request_init(struct http_request *req, const char *method, const struct s3_target *t, struct aws_sign *k)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    req->url = t->url;
    req->sign = aws_sign_hook;
    req->retry_hook = retry_hook;
    req->hook_ctx = k;
    req->path_as_is = 1;
}

void s3_payload_hash(const struct s3_config *c, const void *body, size_t n, char out[65])
{
    if (c->sign_payload)
        sigv4_sha256_hex(body, n, out);
    else
        snprintf(out, 65, "%s", SIGV4_UNSIGNED_PAYLOAD);
}

void s3_body_hashes(const struct s3_config *c, const void *body, size_t n, char hash[65], char sum[45])
{
    sum[0] = 0;
    if (!c->checksum) {
        s3_payload_hash(c, body, n, hash);
        return;
    }
    /* The signed payload hash and x-amz-checksum-sha256 are the same digest: one pass. */
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(body, n, md, &len, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)sum, md, 32);
    if (c->sign_payload)
        hex_encode(md, 32, hash);
    else
        snprintf(hash, 65, "%s", SIGV4_UNSIGNED_PAYLOAD);
}

int s3_simple_request(struct s3 *s, struct http_client *client, const char *method, const struct s3_target *t,
                      const char *const *headers, const char *body, struct http_response *resp, struct err *e)
{
    char hash[65];
    s3_payload_hash(&s->cfg, body ? body : "", body ? strlen(body) : 0, hash);
    struct aws_sign k;
    s3_sign_init(&k, s, t, hash);
    struct http_request req;
    s3_request_init(&req, method, t, &k);
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.max_body = 64u << 20;
    return http_perform(client, &req, resp, e);
}

/* From the headers rather than the response's content_length, which is only filled once the
 * transfer ends: the first range's answer is read while its body streams. */
void s3_stat_from(const struct http_response *r, struct store_stat *st)
{
    memset(st, 0, sizeof *st);
    int64_t a, b;
    if (store_parse_content_range(http_header(r, "content-range"), &a, &b, &st->size) < 0 &&
        store_parse_length(http_header(r, "content-length"), &st->size) < 0)
        st->size = -1;
    const char *etag = http_header(r, "etag");
    if (etag)
        snprintf(st->etag, sizeof st->etag, "%s", etag);
    const char *lm = http_header(r, "last-modified");
    time_t t = lm ? curl_getdate(lm, NULL) : -1;
    st->mtime = t > 0 ? t : 0;
}

int s3_head_object(struct s3 *s, const char *uri, const struct s3_path *p, struct store_stat *out, struct err *e)
{
    struct s3_target t;
    s3_make_target(&s->cfg, p->bucket, p->key, NULL, &t);
    struct http_response resp;
    int rc = s3_simple_request(s, s->client, "HEAD", &t, NULL, NULL, &resp, e);
    if (rc == 0)
        s3_stat_from(&resp, out);
    else
        s3_explain(e, &resp, "HEAD", uri);
    http_response_free(&resp);
    s3_target_free(&t);
    return rc;
}
