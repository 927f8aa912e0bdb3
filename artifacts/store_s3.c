/* s3:// store: AWS S3 and S3-compatible servers (MinIO, Ceph, R2, ...). SigV4 signing
 * (cloud/aws/sigv4.c) with the AWS credential chain (cloud/aws/creds.c); uploads above a
 * threshold go out as multipart uploads whose parts are sent in parallel, downloads as parallel
 * ranged GETs pinned to the object's ETag and delivered in order. Parallelism uses one thread and
 * one libcurl handle per part in flight (docs/artifacts.md says why not curl's multi interface).
 * Keys are taken literally from the URI, as the AWS CLI takes them: "s3://b/a%20b" is the key
 * "a%20b". */
#include "store.h"

#include "../cloud/aws/creds.h"
#include "../runtime/http.h"
#include "../runtime/log.h"
#include "../cloud/aws/sigv4.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIB (1024LL * 1024)
#define S3_MIN_PART (5 * MIB)          /* S3's smallest part but the last */
#define S3_MAX_PART (5LL * 1024 * MIB) /* and largest */
#define S3_MAX_PARTS 10000
/* Parts of a stream of unknown length double in size every this many parts, so that 10,000
 * parts reach S3's 5 TiB object limit; fewer of them are in flight as they grow (mem_budget). */
#define UNKNOWN_GROWTH_EVERY 1000

struct s3_config {
    char *scheme;      /* "https" */
    char *host;        /* "s3.us-west-2.amazonaws.com", "127.0.0.1:9000" */
    char *region;
    int custom;        /* endpoint from AWS_ENDPOINT_URL[_S3] */
    int path_style;
    int checksum;      /* send x-amz-checksum-sha256 */
    int sign_payload;  /* hash bodies into the signature instead of UNSIGNED-PAYLOAD */
    int64_t threshold, part_size;
    int concurrency;
    int64_t mem_budget; /* upload part buffers in all, but always room for one part */
    time_t fixed_now;  /* STEPOP_NOW, or 0 */
};

struct s3 {
    struct s3_config cfg;
    struct http_client *client;
};

/* Seconds to add to our clock, learnt from a server that answered RequestTimeTooSkewed. Shared by
 * every thread and store instance: the clock is the process's. */
static atomic_long clock_skew;

/* ---- configuration ------------------------------------------------------------------- */

static int env_size(const char *name, int64_t dflt, int64_t min, int64_t max, int64_t *out, struct err *e)
{
    const char *v = getenv(name);
    *out = dflt;
    if (!v || !*v)
        return 0;
    if (units_parse_size(v, out, e) < 0)
        return err_prefix(e, "%s: ", name);
    if (*out < min || *out > max) {
        char a[32], b[32];
        units_format_size(min, a, sizeof a);
        units_format_size(max, b, sizeof b);
        return err_set(e, ERR_INVALID, "%s: must be between %s and %s", name, a, b);
    }
    return 0;
}

static int env_onoff(const char *name, int dflt, int *out, struct err *e)
{
    const char *v = getenv(name);
    *out = dflt;
    if (!v || !*v)
        return 0;
    if (!strcmp(v, "on") || !strcmp(v, "1") || !strcasecmp(v, "true"))
        *out = 1;
    else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcasecmp(v, "false"))
        *out = 0;
    else
        return err_set(e, ERR_INVALID, "%s: expected on or off, got \"%s\"", name, v);
    return 0;
}

static void config_free(struct s3_config *c)
{
    free(c->scheme);
    free(c->host);
    free(c->region);
}

static int config_load(struct s3_config *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->region = aws_region();
    const char *ep = env_or("AWS_ENDPOINT_URL_S3", env_or("AWS_ENDPOINT_URL", NULL));
    if (ep) {
        const char *sep = strstr(ep, "://");
        if (!sep || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0))
            return err_set(e, ERR_INVALID, "AWS_ENDPOINT_URL[_S3] \"%s\" must start with http:// or https://", ep);
        c->scheme = xstrndup(ep, (size_t)(sep - ep));
        const char *h = sep + 3;
        size_t n = strcspn(h, "/?#");
        if (h[n] && strspn(h + n, "/") != strlen(h + n))
            return err_set(e, ERR_INVALID, "AWS_ENDPOINT_URL[_S3] \"%s\" must not have a path", ep);
        if (!n || memchr(h, '@', n))
            return err_set(e, ERR_INVALID, "AWS_ENDPOINT_URL[_S3] \"%s\" needs a host (and no user name)", ep);
        c->host = xstrndup(h, n);
        c->custom = 1;
        c->path_style = 1;
    } else {
        c->scheme = xstrdup("https");
        const char *suffix = str_has_prefix(c->region, "cn-") ? "amazonaws.com.cn" : "amazonaws.com";
        /* us-east-1 keeps the global host names (<bucket>.s3.amazonaws.com). */
        c->host = strcmp(c->region, "us-east-1") == 0 ? xasprintf("s3.%s", suffix)
                                                      : xasprintf("s3.%s.%s", c->region, suffix);
    }
    const char *addr = getenv("STEPOP_S3_ADDRESSING");
    if (addr && *addr) {
        if (strcmp(addr, "path") == 0)
            c->path_style = 1;
        else if (strcmp(addr, "virtual") == 0)
            c->path_style = 0;
        else
            return err_set(e, ERR_INVALID, "STEPOP_S3_ADDRESSING: expected path or virtual, got \"%s\"", addr);
    }
    int https = strcmp(c->scheme, "https") == 0;
    long conc = 8;
    const char *cv = getenv("STEPOP_S3_CONCURRENCY");
    if (cv && *cv) {
        char *end;
        conc = strtol(cv, &end, 10);
        if (*end || conc < 1 || conc > 64)
            return err_set(e, ERR_INVALID, "STEPOP_S3_CONCURRENCY: expected 1 to 64, got \"%s\"", cv);
    }
    c->concurrency = (int)conc;
    const char *now = getenv("STEPOP_NOW");
    if (now && *now && time_parse(now, &c->fixed_now) < 0)
        return err_set(e, ERR_INVALID, "STEPOP_NOW: expected RFC 3339 or YYYYMMDDTHHMMSSZ, got \"%s\"", now);
    /* Custom endpoints often predate x-amz-checksum-*; AWS has it everywhere. Over TLS the body
     * is protected in transit already, so the SDKs' default of not hashing it into the signature
     * applies; over plain HTTP it is signed. */
    if (env_onoff("STEPOP_S3_CHECKSUM", !c->custom, &c->checksum, e) < 0 ||
        env_onoff("STEPOP_S3_SIGN_PAYLOAD", !https, &c->sign_payload, e) < 0 ||
        env_size("STEPOP_S3_MULTIPART_THRESHOLD", 16 * MIB, 0, S3_MAX_PART, &c->threshold, e) < 0 ||
        env_size("STEPOP_S3_PART_SIZE", 8 * MIB, S3_MIN_PART, S3_MAX_PART, &c->part_size, e) < 0 ||
        env_size("STEPOP_S3_MEMORY", 256 * MIB, S3_MIN_PART, 64 * S3_MAX_PART, &c->mem_budget, e) < 0)
        return -1;
    return 0;
}

/* ---- addressing ---------------------------------------------------------------------- */

struct s3_path {
    char *bucket;
    char *key; /* "" for the bucket itself */
};

static void s3_path_free(struct s3_path *p)
{
    free(p->bucket);
    free(p->key);
}

static int parse_uri(const char *uri, struct s3_path *p, struct err *e)
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

/* One request's target: the URL to send, the Host header and the path and query to sign. */
struct target {
    char *url, *host, *path, *query;
};

static void target_free(struct target *t)
{
    free(t->url);
    free(t->host);
    free(t->path);
    free(t->query);
}

/* key NULL addresses the bucket; query is already encoded (sigv4_encode) or NULL. */
static void make_target(const struct s3_config *c, const char *bucket, const char *key, const char *query,
                        struct target *t)
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

/* ---- signing and S3's errors ----------------------------------------------------------- */

static time_t base_now(const struct s3_config *c)
{
    return c->fixed_now ? c->fixed_now : time(NULL);
}

/* Per-request state for the sign and retry hooks. */
struct call {
    const struct s3_config *cfg;
    const struct target *t;
    const char *payload_hash;
    int refresh_creds;   /* the server said the token expired: ask the provider again */
    int refreshed;       /* ... once per request */
};

static int sign_hook(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e)
{
    struct call *k = ctx;
    struct aws_credentials cr;
    if (aws_credentials_get(&cr, k->refresh_creds, e) < 0)
        return -1;
    k->refresh_creds = 0;
    char amz_date[17];
    time_t when = base_now(k->cfg) + (time_t)atomic_load(&clock_skew);
    sigv4_amz_date(when, amz_date);

    /* Sign host, every x-amz-* header, and the content headers; not Range or If-Match, which
     * curl's resume logic may change between attempts (each attempt is signed afresh anyway). */
    struct sigv4_header h[32];
    char *names[32];
    size_t n = 0, nn = 0;
    h[n++] = (struct sigv4_header){ "host", k->t->host };
    h[n++] = (struct sigv4_header){ "x-amz-date", amz_date };
    h[n++] = (struct sigv4_header){ "x-amz-content-sha256", k->payload_hash };
    if (cr.session_token)
        h[n++] = (struct sigv4_header){ "x-amz-security-token", cr.session_token };
    for (struct curl_slist *l = *headers; l && n < 32; l = l->next) {
        const char *colon = strchr(l->data, ':');
        if (!colon || colon[1] == '\0')
            continue; /* "Expect:" removes a header */
        size_t nl = (size_t)(colon - l->data);
        if (strncasecmp(l->data, "x-amz-", 6) == 0 || (nl == 12 && !strncasecmp(l->data, "content-type", 12)) ||
            (nl == 11 && !strncasecmp(l->data, "content-md5", 11))) {
            names[nn] = xstrndup(l->data, nl);
            h[n++] = (struct sigv4_header){ names[nn++], colon + 1 };
        }
    }
    struct sigv4_input in = { .method = req->method ? req->method : "GET", .path = k->t->path, .query = k->t->query,
                              .headers = h, .n_headers = n, .payload_hash = k->payload_hash,
                              .access_key = cr.access_key, .secret_key = cr.secret_key, .region = k->cfg->region,
                              .service = "s3", .when = when };
    struct sigv4_output out;
    int rc = sigv4_sign(&in, &out);
    if (rc < 0) {
        err_set(e, ERR_INTERNAL, "cannot sign a request with a malformed query");
    } else {
        char *lines[] = { xasprintf("Host: %s", k->t->host), xasprintf("x-amz-date: %s", amz_date),
                          xasprintf("x-amz-content-sha256: %s", k->payload_hash),
                          cr.session_token ? xasprintf("x-amz-security-token: %s", cr.session_token) : NULL,
                          xasprintf("Authorization: %s", out.authorization) };
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
            if (!lines[i])
                continue;
            struct curl_slist *l = curl_slist_append(*headers, lines[i]);
            free(lines[i]);
            if (!l)
                abort();
            *headers = l;
        }
        sigv4_output_free(&out);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    aws_credentials_free(&cr);
    return rc;
}

/* S3's error code from an answer's body ("<Error><Code>SlowDown</Code>..."), or NULL. */
static char *error_code(const struct http_response *r, char **message)
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

static int retryable_code(const char *code)
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
    struct call *k = ctx;
    char *code = error_code(r, NULL);
    int d = -1;
    if (!code) {
        d = -1;
    } else if (strcmp(code, "RequestTimeTooSkewed") == 0) {
        const char *date = http_header(r, "date");
        time_t server = date ? curl_getdate(date, NULL) : -1;
        if (server > 0) {
            long skew = (long)(server - base_now(k->cfg));
            atomic_store(&clock_skew, skew);
            log_warn("the clock differs from the S3 server's by %lds; signing with the server's time", skew);
            d = 1;
        } else {
            d = 0;
        }
    } else if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "TokenRefreshRequired") == 0) {
        d = !k->refreshed;
        k->refreshed = k->refresh_creds = 1;
    } else if (r->status >= 200 && r->status < 300) {
        d = retryable_code(code) ? 1 : -1;
    } else if (retryable_code(code)) {
        d = 1;
    }
    free(code);
    return d;
}

/* Rewrites the HTTP layer's message with S3's code and message when the body has them. */
static void explain(struct err *e, const struct http_response *r, const char *what, const char *uri)
{
    char red[512];
    uri_redact(uri, red, sizeof red);
    char *msg, *code = error_code(r, &msg);
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

/* Everything one S3 request needs besides the body and the consumer. */
static void call_init(struct call *k, const struct s3 *s, const struct target *t, const char *payload_hash)
{
    memset(k, 0, sizeof *k);
    k->cfg = &s->cfg;
    k->t = t;
    k->payload_hash = payload_hash;
}

static void request_init(struct http_request *req, const char *method, const struct target *t, struct call *k)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    req->url = t->url;
    req->sign = sign_hook;
    req->retry_hook = retry_hook;
    req->hook_ctx = k;
    req->path_as_is = 1;
}

/* The payload hash for a body in memory. */
static void payload_hash(const struct s3_config *c, const void *body, size_t n, char out[65])
{
    if (c->sign_payload)
        sigv4_sha256_hex(body, n, out);
    else
        snprintf(out, 65, "%s", SIGV4_UNSIGNED_PAYLOAD);
}

/* A request whose answer is small (or nothing): HEAD, DELETE, POST with XML. */
static int simple_request(struct s3 *s, struct http_client *client, const char *method, const struct target *t,
                          const char *const *headers, const char *body, struct http_response *resp,
                          struct err *e)
{
    char hash[65];
    payload_hash(&s->cfg, body ? body : "", body ? strlen(body) : 0, hash);
    struct call k;
    call_init(&k, s, t, hash);
    struct http_request req;
    request_init(&req, method, t, &k);
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.max_body = 64u << 20;
    return http_perform(client, &req, resp, e);
}

/* ---- open, stat, list, remove, presign ----------------------------------------------- */

static int s3_open(struct store *st, const char *uri, struct err *e)
{
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    s3_path_free(&p);
    if (http_global_init(e) < 0)
        return -1;
    struct s3 *s = xcalloc(1, sizeof *s);
    if (config_load(&s->cfg, e) < 0) {
        config_free(&s->cfg);
        free(s);
        return -1;
    }
    s->client = http_client_new();
    st->state = s;
    return 0;
}

static void s3_close(struct store *st)
{
    struct s3 *s = st->state;
    http_client_free(s->client);
    config_free(&s->cfg);
    free(s);
}

/* From the headers rather than the response's content_length, which is only filled once the
 * transfer ends: the first range's answer is read while its body streams. */
static void stat_from(const struct http_response *r, struct store_stat *st)
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

struct list_page {
    const char *prefix;
    size_t prefix_len;
    store_list_fn fn;
    void *ctx;
    char *key, *next_token;
    int64_t size;
    time_t mtime;
    int truncated, count, max; /* max: stop after this many entries (0: all) */
};

static int list_cb(void *ctx, const char *path, const char *text, struct err *e)
{
    struct list_page *lp = ctx;
    if (lp->max && lp->count >= lp->max)
        return 0;
    if (!strcmp(path, "ListBucketResult/Contents/Key")) {
        free(lp->key);
        lp->key = xstrdup(text);
    } else if (!strcmp(path, "ListBucketResult/Contents/Size")) {
        lp->size = strtoll(text, NULL, 10);
    } else if (!strcmp(path, "ListBucketResult/Contents/LastModified")) {
        if (time_parse(text, &lp->mtime) < 0)
            lp->mtime = 0;
    } else if (!strcmp(path, "ListBucketResult/IsTruncated")) {
        lp->truncated = strcmp(text, "true") == 0;
    } else if (!strcmp(path, "ListBucketResult/NextContinuationToken")) {
        free(lp->next_token);
        lp->next_token = xstrdup(text);
    } else if (!strcmp(path, "ListBucketResult/Contents") || !strcmp(path, "ListBucketResult/CommonPrefixes/Prefix")) {
        int is_prefix = strcmp(path, "ListBucketResult/Contents") != 0;
        const char *full = is_prefix ? text : lp->key;
        if (!full || strncmp(full, lp->prefix, lp->prefix_len) != 0 || !full[lp->prefix_len])
            return 0; /* the prefix's own "directory" marker, or something outside it */
        struct store_entry ent = { .name = full + lp->prefix_len, .size = is_prefix ? -1 : lp->size,
                                   .mtime = is_prefix ? 0 : lp->mtime };
        lp->count++;
        if (lp->fn && lp->fn(lp->ctx, &ent, e) < 0)
            return -1;
        lp->size = 0;
        lp->mtime = 0;
    }
    return 0;
}

/* ListObjectsV2 under prefix with delimiter '/', page after page. */
static int list_prefix(struct s3 *s, const char *uri, const char *bucket, const char *prefix, int max,
                       store_list_fn fn, void *ctx, int *count, struct err *e)
{
    struct list_page lp = { .prefix = prefix, .prefix_len = strlen(prefix), .fn = fn, .ctx = ctx, .max = max };
    int rc = 0;
    char *pfx = sigv4_encode(prefix, 1);
    do {
        char *tok = lp.next_token ? sigv4_encode(lp.next_token, 1) : NULL;
        char *q = xasprintf("list-type=2&delimiter=%%2F&prefix=%s%s%s&max-keys=%d", pfx,
                            tok ? "&continuation-token=" : "", tok ? tok : "", max && max < 1000 ? max : 1000);
        free(tok);
        struct target t;
        make_target(&s->cfg, bucket, NULL, q, &t);
        free(q);
        struct http_response resp;
        rc = simple_request(s, s->client, "GET", &t, NULL, NULL, &resp, e);
        if (rc < 0) {
            explain(e, &resp, "list", uri);
        } else {
            lp.truncated = 0;
            free(lp.next_token);
            lp.next_token = NULL;
            rc = xml_walk(resp.body.data, resp.body.len, list_cb, &lp, e);
            if (rc < 0 && e->kind == ERR_INVALID)
                err_prefix(e, "ListObjectsV2 answer: ");
            if (rc == 0 && lp.truncated && !lp.next_token)
                rc = err_set(e, ERR_HTTP, "ListObjectsV2 answer is truncated but has no NextContinuationToken");
        }
        http_response_free(&resp);
        target_free(&t);
    } while (rc == 0 && lp.truncated && !(max && lp.count >= max));
    free(pfx);
    free(lp.key);
    free(lp.next_token);
    if (count)
        *count = lp.count;
    return rc;
}

static int s3_list(struct store *st, const char *uri, store_list_fn fn, void *ctx, struct err *e)
{
    struct s3 *s = st->state;
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    char *prefix = !*p.key || str_has_suffix(p.key, "/") ? xstrdup(p.key) : xasprintf("%s/", p.key);
    int rc = list_prefix(s, uri, p.bucket, prefix, 0, fn, ctx, NULL, e);
    free(prefix);
    s3_path_free(&p);
    return rc;
}

static int head_object(struct s3 *s, const char *uri, const struct s3_path *p, struct store_stat *out, struct err *e)
{
    struct target t;
    make_target(&s->cfg, p->bucket, p->key, NULL, &t);
    struct http_response resp;
    int rc = simple_request(s, s->client, "HEAD", &t, NULL, NULL, &resp, e);
    if (rc == 0)
        stat_from(&resp, out);
    else
        explain(e, &resp, "HEAD", uri);
    http_response_free(&resp);
    target_free(&t);
    return rc;
}

static int s3_stat(struct store *st, const char *uri, struct store_stat *out, struct err *e)
{
    struct s3 *s = st->state;
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    int rc = -1, headed = *p.key && !str_has_suffix(p.key, "/");
    if (headed) {
        rc = head_object(s, uri, &p, out, e);
        if (rc == 0 || e->kind != ERR_NOT_FOUND)
            goto out;
    }
    /* Not an object: a "directory" when something lies under key/. */
    char *prefix = !*p.key || str_has_suffix(p.key, "/") ? xstrdup(p.key) : xasprintf("%s/", p.key);
    int count = 0;
    struct err le = { 0 };
    if (list_prefix(s, uri, p.bucket, prefix, 1, NULL, NULL, &count, &le) < 0) {
        if (!headed)
            *e = le; /* else the HEAD's 404 says more than a failed listing */
        rc = -1;
    } else if (count > 0 || !*p.key) {
        memset(out, 0, sizeof *out);
        out->size = -1;
        out->is_dir = 1;
        rc = 0;
    } else {
        char red[512];
        uri_redact(uri, red, sizeof red);
        rc = err_set(e, ERR_NOT_FOUND, "%s: no such object or prefix", red);
    }
    free(prefix);
out:
    s3_path_free(&p);
    return rc;
}

static int s3_remove(struct store *st, const char *uri, struct err *e)
{
    struct s3 *s = st->state;
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    int rc;
    struct store_stat info;
    /* S3 answers 204 whether or not the key existed: ask first, so a missing object exits 3 as
     * it does on the other stores. */
    if (!*p.key) {
        rc = err_set(e, ERR_INVALID, "rm needs an object key, not a bucket");
    } else if ((rc = head_object(s, uri, &p, &info, e)) == 0) {
        struct target t;
        make_target(&s->cfg, p.bucket, p.key, NULL, &t);
        struct http_response resp;
        rc = simple_request(s, s->client, "DELETE", &t, NULL, NULL, &resp, e);
        if (rc < 0)
            explain(e, &resp, "DELETE", uri);
        http_response_free(&resp);
        target_free(&t);
    }
    s3_path_free(&p);
    return rc;
}

static int s3_presign(struct store *st, const char *uri, const char *method, int64_t expires_s, char **url,
                      struct err *e)
{
    struct s3 *s = st->state;
    if (expires_s < 1 || expires_s > 604800)
        return err_set(e, ERR_INVALID, "a presigned URL lasts from 1 second to 7 days (SigV4's limit)");
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    int rc = 0;
    if (!*p.key || str_has_suffix(p.key, "/")) {
        rc = err_set(e, ERR_INVALID, "presign needs an object key");
    } else {
        struct aws_credentials cr;
        rc = aws_credentials_get(&cr, 0, e);
        if (rc == 0) {
            if (cr.expires && cr.expires - time(NULL) < expires_s)
                log_warn("the URL stops working when the %s credentials that signed it expire, in %llds", cr.provider,
                         (long long)(cr.expires - time(NULL)));
            struct target t;
            make_target(&s->cfg, p.bucket, p.key, NULL, &t);
            char *base = xasprintf("%s://%s", s->cfg.scheme, t.host);
            *url = sigv4_presign(base, t.host, method, t.path, NULL, cr.access_key, cr.secret_key, cr.session_token,
                                 s->cfg.region, "s3", base_now(&s->cfg) + (time_t)atomic_load(&clock_skew),
                                 (long)expires_s);
            free(base);
            target_free(&t);
            aws_credentials_free(&cr);
        }
    }
    s3_path_free(&p);
    return rc;
}

/* ---- get: the first range streamed, the rest in parallel parts delivered in order ----- */

/* Checks a 206 answer to a request for bytes want..last: S3 names the object's size in every
 * one, its range starts at want and ends at last or, when the object ends first, at the object's
 * end, and its Content-Length counts that range. Fills the size it announces. */
static int check_range(const struct http_response *r, int64_t want, int64_t last, int64_t *total, struct err *e)
{
    const char *cr = http_header(r, "content-range");
    const char *cl = http_header(r, "content-length");
    int64_t a, b, t, len;
    if (r->status != 206 || store_parse_content_range(cr, &a, &b, &t) < 0 || t < 0 || a != want || b > last ||
        (b < last && b != t - 1))
        return err_set(e, ERR_INTEGRITY, "wrong Content-Range \"%s\" (HTTP %ld) for bytes %lld-%lld", cr ? cr : "",
                       r->status, (long long)want, (long long)last);
    if (cl && (store_parse_length(cl, &len) < 0 || len != b - a + 1))
        return err_set(e, ERR_INTEGRITY, "Content-Length %s does not match Content-Range \"%s\"", cl, cr);
    *total = t;
    return 0;
}

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
        } else if (check_range(g->resp, g->start + g->resp->delivered, g->start + g->len - 1, &size, e) < 0) {
            return -1;
        }
        if (first) {
            stat_from(g->resp, &g->st);
            g->total = size;
        } else if (size != g->total) {
            return err_set(e, ERR_INTEGRITY, "the object's size changed from %lld to %lld bytes during the download",
                           (long long)g->total, (long long)size);
        }
    }
    return g->sink(g->ctx, data, n, e);
}

struct get_pool {
    struct s3 *s;
    const char *uri;
    const struct s3_path *p;
    char if_match[200];
    int64_t total, begin, end, part;
    int64_t nparts;         /* 64-bit: a server may announce any size up to INT64_MAX */
    store_sink_fn sink;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t next_fetch, next_deliver, delivered;
    int failed;
    int stop;               /* read by other threads' transfers: set with __atomic_store_n only */
    struct err err;
};

struct part_get {
    int64_t start, len, total;
    struct buf *data;
    struct http_response *resp;
    int checked_attempt;
};

static int part_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct part_get *pg = ctx;
    if (pg->checked_attempt != pg->resp->attempts) {
        /* Each attempt's answer must be exactly the rest of this part (resumes included). */
        pg->checked_attempt = pg->resp->attempts;
        int64_t t, want = pg->start + (int64_t)pg->data->len, last = pg->start + pg->len - 1;
        if (check_range(pg->resp, want, last, &t, e) < 0)
            return -1;
        if (t != pg->total)
            return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: the object's size changed from %lld to %lld bytes "
                           "during the download (Content-Range \"%s\")", (long long)want, (long long)last,
                           (long long)pg->total, (long long)t, http_header(pg->resp, "content-range"));
    }
    if (pg->data->len + n > (size_t)pg->len)
        return err_set(e, ERR_INTEGRITY, "the server sent more than the %lld bytes asked for", (long long)pg->len);
    buf_append(pg->data, data, n);
    return 0;
}

static int fetch_part(struct get_pool *gp, struct http_client *client, int64_t start, int64_t len, struct buf *data,
                      struct err *e)
{
    struct target t;
    make_target(&gp->s->cfg, gp->p->bucket, gp->p->key, NULL, &t);
    const char *hdr[] = { gp->if_match, NULL };
    struct call k;
    call_init(&k, gp->s, &t, gp->s->cfg.sign_payload ? SIGV4_EMPTY_SHA256 : SIGV4_UNSIGNED_PAYLOAD);
    struct http_request req;
    request_init(&req, "GET", &t, &k);
    struct http_response resp;
    struct part_get pg = { .start = start, .len = len, .total = gp->total, .data = data, .resp = &resp };
    req.headers = hdr;
    req.on_data = part_data;
    req.data_ctx = &pg;
    req.range_start = start;
    req.range_len = len;
    req.resume = 1;
    req.stop = &gp->stop;
    data->len = 0;
    int rc = http_perform(client, &req, &resp, e);
    if (rc == 0 && (int64_t)data->len != len)
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: got %zu bytes, expected %lld", (long long)start,
                     (long long)(start + len - 1), data->len, (long long)len);
    if (rc < 0 && resp.status == 416)
        rc = err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: HTTP 416, yet the server announced %lld bytes: it has "
                     "fewer", (long long)start, (long long)(start + len - 1), (long long)gp->total);
    else if (rc < 0 && e->kind != ERR_INTEGRITY)
        explain(e, &resp, "GET", gp->uri);
    else if (rc < 0 && resp.status == 412)
        err_prefix(e, "the object changed during the download: ");
    http_response_free(&resp);
    target_free(&t);
    return rc;
}

static void pool_fail(struct get_pool *gp, const struct err *e)
{
    if (!gp->failed) {
        gp->failed = 1;
        gp->err = *e;
        __atomic_store_n(&gp->stop, 1, __ATOMIC_RELAXED);
    }
    pthread_cond_broadcast(&gp->cv);
}

static void *get_worker(void *arg)
{
    struct get_pool *gp = arg;
    struct http_client *client = http_client_new();
    struct buf data = { 0 };
    for (;;) {
        pthread_mutex_lock(&gp->mu);
        if (gp->failed || gp->next_fetch >= gp->nparts) {
            pthread_mutex_unlock(&gp->mu);
            break;
        }
        int64_t i = gp->next_fetch++;
        pthread_mutex_unlock(&gp->mu);
        int64_t start = gp->begin + i * gp->part;
        int64_t len = gp->end - start < gp->part ? gp->end - start : gp->part;
        if (data.cap < (size_t)len + 1) {
            /* Exactly one part (and buf's NUL): doubling growth would reserve up to twice that. */
            data.data = xrealloc(data.data, (size_t)len + 1);
            data.cap = (size_t)len + 1;
        }
        struct err pe = { 0 };
        int rc = fetch_part(gp, client, start, len, &data, &pe);
        pthread_mutex_lock(&gp->mu);
        if (rc < 0)
            pool_fail(gp, &pe);
        /* In order: wait for the parts before this one to reach the sink. */
        while (!gp->failed && gp->next_deliver != i)
            pthread_cond_wait(&gp->cv, &gp->mu);
        int stop = gp->failed;
        pthread_mutex_unlock(&gp->mu);
        if (stop)
            break;
        rc = gp->sink(gp->ctx, data.data, data.len, &pe);
        pthread_mutex_lock(&gp->mu);
        if (rc < 0)
            pool_fail(gp, &pe);
        else
            gp->delivered += (int64_t)data.len;
        gp->next_deliver++;
        pthread_cond_broadcast(&gp->cv);
        pthread_mutex_unlock(&gp->mu);
        if (rc < 0)
            break;
    }
    buf_free(&data);
    http_client_free(client);
    return NULL;
}

/* Bytes [begin, end) in parts of gp->part, concurrency workers at a time. */
static int get_parallel(struct get_pool *gp, struct err *e)
{
    /* Rounded up without overflow: end may be as large as INT64_MAX. */
    gp->nparts = (gp->end - gp->begin) / gp->part + ((gp->end - gp->begin) % gp->part != 0);
    pthread_mutex_init(&gp->mu, NULL);
    pthread_cond_init(&gp->cv, NULL);
    int n = gp->s->cfg.concurrency < gp->nparts ? gp->s->cfg.concurrency : (int)gp->nparts;
    pthread_t tids[64];
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, get_worker, gp) != 0)
            break;
        started++;
    }
    if (started == 0)
        get_worker(gp);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_cond_destroy(&gp->cv);
    pthread_mutex_destroy(&gp->mu);
    if (gp->failed) {
        *e = gp->err;
        return -1;
    }
    if (gp->delivered != gp->end - gp->begin)
        return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: got %lld bytes of the %lld the server announced",
                       (long long)gp->begin, (long long)(gp->end - 1), (long long)gp->delivered,
                       (long long)(gp->end - gp->begin));
    return 0;
}

static int s3_get(struct store *st, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                  struct store_stat *info, struct err *e)
{
    struct s3 *s = st->state;
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    if (!*p.key || str_has_suffix(p.key, "/")) {
        s3_path_free(&p);
        return err_set(e, ERR_INVALID, "get needs an object key, not a prefix");
    }
    if (length == 0) {
        s3_path_free(&p);
        return 0;
    }
    int64_t part = s->cfg.part_size;
    struct target t;
    make_target(&s->cfg, p.bucket, p.key, NULL, &t);
    struct http_response resp;
    struct first_get g = { .sink = sink, .ctx = ctx, .resp = &resp, .start = offset, .total = -1,
                           .len = length > 0 && length < part ? length : part };
    struct call k;
    call_init(&k, s, &t, s->cfg.sign_payload ? SIGV4_EMPTY_SHA256 : SIGV4_UNSIGNED_PAYLOAD);
    struct http_request req;
    request_init(&req, "GET", &t, &k);
    req.on_data = first_data;
    req.data_ctx = &g;
    req.range_start = offset;
    req.range_len = g.len;
    req.resume = 1;
    int rc = http_perform(s->client, &req, &resp, e);
    if (rc < 0 && resp.status == 416 && offset == 0 && !g.checked) {
        /* S3 refuses any range of an empty object: fetch it whole. */
        http_response_free(&resp);
        req.range_len = 0;
        rc = http_perform(s->client, &req, &resp, e);
        if (rc == 0 && resp.delivered == 0) {
            stat_from(&resp, &g.st);
            g.total = 0;
            g.whole = 1;
        }
    }
    if (rc < 0 && e->kind != ERR_INTEGRITY)
        explain(e, &resp, "GET", uri);
    else if (rc < 0 && resp.status == 412)
        err_prefix(e, "the object changed during the download: ");
    int64_t first_end = offset + resp.delivered;
    if (rc == 0 && g.whole && g.total < 0)
        g.total = resp.delivered; /* a 200 without Content-Length ends with the object */
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
        rc = err_set(e, ERR_INTEGRITY, "the object has %lld bytes, fewer than the %lld asked for from %lld",
                     (long long)g.total, (long long)length, (long long)offset);
    if (rc == 0 && !g.whole && end > first_end) {
        if (!g.st.etag[0]) {
            rc = err_set(e, ERR_UNSUPPORTED, "the server gave no ETag: a large object cannot be fetched in parts");
        } else {
            struct get_pool gp = { .s = s, .uri = uri, .p = &p, .total = g.total, .begin = first_end, .end = end,
                                   .part = part, .sink = sink, .ctx = ctx };
            snprintf(gp.if_match, sizeof gp.if_match, "If-Match: %s", g.st.etag);
            rc = get_parallel(&gp, e);
        }
    }
    target_free(&t);
    s3_path_free(&p);
    return rc;
}

/* ---- put: one PUT up to the threshold, else a multipart upload with parallel parts ----- */

/* The source, with what was read ahead to choose between one PUT and a multipart upload. */
struct reader {
    struct store_source *src;
    char *ahead;
    size_t ahead_len, ahead_off;
};

/* Fills buf with up to n bytes; fewer only at the end of the stream. */
static ssize_t reader_fill(struct reader *r, char *buf, size_t n, struct err *e)
{
    size_t got = 0;
    if (r->ahead_off < r->ahead_len) {
        size_t k = r->ahead_len - r->ahead_off < n ? r->ahead_len - r->ahead_off : n;
        memcpy(buf, r->ahead + r->ahead_off, k);
        r->ahead_off += k;
        got = k;
        if (r->ahead_off == r->ahead_len) {
            free(r->ahead);
            r->ahead = NULL;
            r->ahead_len = r->ahead_off = 0;
        }
    }
    while (got < n) {
        ssize_t k = r->src->read(r->src->ctx, buf + got, n - got, e);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static int put_single(struct s3 *s, const char *uri, const struct s3_path *p, const char *body, size_t len,
                      struct err *e)
{
    struct target t;
    make_target(&s->cfg, p->bucket, p->key, NULL, &t);
    char hash[65], sum[45], sum_hdr[80];
    payload_hash(&s->cfg, body, len, hash);
    const char *hdr[3] = { "Content-Type: application/octet-stream", NULL, NULL };
    if (s->cfg.checksum) {
        sigv4_sha256_base64(body, len, sum);
        snprintf(sum_hdr, sizeof sum_hdr, "x-amz-checksum-sha256: %s", sum);
        hdr[1] = sum_hdr;
    }
    struct call k;
    call_init(&k, s, &t, hash);
    struct http_request req;
    request_init(&req, "PUT", &t, &k);
    req.headers = hdr;
    req.body = body ? body : "";
    req.body_len = len;
    struct http_response resp;
    int rc = http_perform(s->client, &req, &resp, e);
    if (rc < 0)
        explain(e, &resp, "PUT", uri);
    http_response_free(&resp);
    target_free(&t);
    return rc;
}

struct part_rec {
    char *etag;
    char checksum[45];
};

struct mp {
    struct s3 *s;
    const char *uri;
    const struct s3_path *p;
    char *upload_id_enc;
    struct reader *rd;
    int64_t part_size;
    int known;              /* the stream's size is known: fixed part size */
    pthread_mutex_t read_mu, mu;    /* read_mu: the reader and the part count; mu: the rest */
    int next_part, eof;
    atomic_int failed;              /* set under mu, read under read_mu too */
    int64_t mem_held;               /* part buffers of the live workers (under read_mu) */
    int live;                       /* workers still taking parts (under read_mu) */
    int64_t total;
    struct part_rec *parts;
    int parts_cap, parts_max;
    int stop;                       /* read by other threads' transfers: set with __atomic_store_n only */
    struct err err;
};

static int64_t part_size_for(const struct mp *m, int n)
{
    if (m->known)
        return m->part_size;
    int64_t sz = m->part_size << ((n - 1) / UNKNOWN_GROWTH_EVERY);
    return sz > S3_MAX_PART ? S3_MAX_PART : sz;
}

static void mp_fail(struct mp *m, const struct err *e)
{
    pthread_mutex_lock(&m->mu);
    if (!atomic_load(&m->failed)) {
        m->err = *e;
        atomic_store(&m->failed, 1);
        __atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&m->mu);
}

static int upload_part(struct mp *m, struct http_client *client, int n, const char *body, size_t len,
                       struct part_rec *rec, struct err *e)
{
    char *q = xasprintf("partNumber=%d&uploadId=%s", n, m->upload_id_enc);
    struct target t;
    make_target(&m->s->cfg, m->p->bucket, m->p->key, q, &t);
    free(q);
    char hash[65], sum_hdr[80];
    payload_hash(&m->s->cfg, body, len, hash);
    const char *hdr[2] = { NULL, NULL };
    if (m->s->cfg.checksum) {
        sigv4_sha256_base64(body, len, rec->checksum);
        snprintf(sum_hdr, sizeof sum_hdr, "x-amz-checksum-sha256: %s", rec->checksum);
        hdr[0] = sum_hdr;
    }
    struct call k;
    call_init(&k, m->s, &t, hash);
    struct http_request req;
    request_init(&req, "PUT", &t, &k);
    req.headers = hdr;
    req.body = body;
    req.body_len = len;
    req.stop = &m->stop;
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0) {
        explain(e, &resp, "UploadPart", m->uri);
        err_prefix(e, "part %d: ", n);
    } else {
        const char *etag = http_header(&resp, "etag");
        if (!etag || !*etag)
            rc = err_set(e, ERR_HTTP, "part %d: UploadPart answered without an ETag", n);
        else
            rec->etag = xstrdup(etag);
    }
    http_response_free(&resp);
    target_free(&t);
    return rc;
}

static void *put_worker(void *arg)
{
    struct mp *m = arg;
    struct http_client *client = http_client_new();
    char *buf = NULL;
    int64_t cap = 0;
    int left = 0; /* retired for the budget, already uncounted */
    /* Counted as it starts, so a worker that failed to start is never waited for. */
    pthread_mutex_lock(&m->read_mu);
    m->live++;
    pthread_mutex_unlock(&m->read_mu);
    for (;;) {
        struct err pe = { 0 };
        pthread_mutex_lock(&m->read_mu);
        if (atomic_load(&m->failed) || m->eof) {
            pthread_mutex_unlock(&m->read_mu);
            break;
        }
        int n = m->next_part + 1;
        if (n > S3_MAX_PARTS) {
            pthread_mutex_unlock(&m->read_mu);
            err_set(&pe, ERR_INVALID, "the stream needs more than %d parts of this size; raise STEPOP_S3_PART_SIZE",
                    S3_MAX_PARTS);
            mp_fail(m, &pe);
            break;
        }
        int64_t want = part_size_for(m, n);
        if (want > cap) {
            /* A buffer, first or bigger, must fit the budget; if it does not, this worker retires
             * and frees its own (counted at once, so the next one sees it gone), unless it is the
             * last one: then one part is in flight, whatever its size. */
            if (m->mem_held - cap + want > m->s->cfg.mem_budget && m->live > 1) {
                m->mem_held -= cap;
                m->live--;
                left = 1;
                pthread_mutex_unlock(&m->read_mu);
                break;
            }
            m->mem_held += want - cap;
            free(buf);
            buf = xmalloc((size_t)want);
            cap = want;
        }
        ssize_t got = reader_fill(m->rd, buf, (size_t)want, &pe);
        if (got < 0) {
            pthread_mutex_unlock(&m->read_mu);
            mp_fail(m, &pe);
            break;
        }
        if (got < want)
            m->eof = 1;
        if (got == 0 && n > 1) {
            pthread_mutex_unlock(&m->read_mu);
            break;
        }
        m->next_part = n;
        m->total += got;
        pthread_mutex_unlock(&m->read_mu);

        struct part_rec rec = { 0 };
        if (upload_part(m, client, n, buf, (size_t)got, &rec, &pe) < 0) {
            mp_fail(m, &pe);
            break;
        }
        pthread_mutex_lock(&m->mu);
        if (n > m->parts_cap) {
            int cap2 = m->parts_cap ? m->parts_cap * 2 : 64;
            while (cap2 < n)
                cap2 *= 2;
            m->parts = xrealloc(m->parts, (size_t)cap2 * sizeof *m->parts);
            memset(m->parts + m->parts_cap, 0, (size_t)(cap2 - m->parts_cap) * sizeof *m->parts);
            m->parts_cap = cap2;
        }
        m->parts[n - 1] = rec;
        if (n > m->parts_max)
            m->parts_max = n;
        pthread_mutex_unlock(&m->mu);
    }
    if (!left) {
        pthread_mutex_lock(&m->read_mu);
        m->mem_held -= cap;
        m->live--;
        pthread_mutex_unlock(&m->read_mu);
    }
    free(buf);
    http_client_free(client);
    return NULL;
}

static void abort_upload(struct mp *m)
{
    char *q = xasprintf("uploadId=%s", m->upload_id_enc);
    struct target t;
    make_target(&m->s->cfg, m->p->bucket, m->p->key, q, &t);
    free(q);
    char hash[65];
    payload_hash(&m->s->cfg, "", 0, hash);
    struct call k;
    call_init(&k, m->s, &t, hash);
    struct http_request req;
    request_init(&req, "DELETE", &t, &k);
    req.uncancellable = 1;
    struct http_response resp;
    struct err e = { 0 };
    if (http_perform(m->s->client, &req, &resp, &e) < 0 && resp.status != 404) {
        explain(&e, &resp, "AbortMultipartUpload", m->uri);
        char red[512];
        uri_redact(m->uri, red, sizeof red);
        log_warn("%s; the incomplete multipart upload of %s may keep its parts until it is aborted "
                 "(aws s3api abort-multipart-upload)", e.msg, red);
    }
    http_response_free(&resp);
    target_free(&t);
}

static int complete_upload(struct mp *m, struct err *e)
{
    struct buf xml = { 0 };
    buf_appendf(&xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (int i = 0; i < m->parts_max; i++) {
        if (!m->parts[i].etag)
            return err_set(e, ERR_INTERNAL, "part %d has no ETag", i + 1);
        /* ETags are quoted strings of hex digits: nothing to escape, but never trust that. */
        if (strpbrk(m->parts[i].etag, "<>&"))
            return err_set(e, ERR_HTTP, "part %d: the server's ETag holds XML markup", i + 1);
        buf_appendf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>", i + 1, m->parts[i].etag);
        if (m->parts[i].checksum[0])
            buf_appendf(&xml, "<ChecksumSHA256>%s</ChecksumSHA256>", m->parts[i].checksum);
        buf_appendf(&xml, "</Part>");
    }
    buf_appendf(&xml, "</CompleteMultipartUpload>");
    char *q = xasprintf("uploadId=%s", m->upload_id_enc);
    struct target t;
    make_target(&m->s->cfg, m->p->bucket, m->p->key, q, &t);
    free(q);
    const char *hdr[] = { "Content-Type: application/xml", NULL };
    struct http_response resp;
    int rc = simple_request(m->s, m->s->client, "POST", &t, hdr, xml.data, &resp, e);
    if (rc < 0 && resp.status == 404 && resp.attempts > 1) {
        /* An earlier attempt completed it and the answer was lost: the object tells. */
        struct store_stat st;
        struct err he = { 0 };
        if (head_object(m->s, m->uri, m->p, &st, &he) == 0 && st.size == m->total)
            rc = 0;
    } else if (rc < 0) {
        explain(e, &resp, "CompleteMultipartUpload", m->uri);
    } else {
        /* A 200 can still carry an error (S3 sends the status before it has finished). */
        char *msg, *code = error_code(&resp, &msg);
        char *etag = code ? NULL : xml_find(resp.body.data, resp.body.len, "CompleteMultipartUploadResult/ETag");
        if (code) {
            rc = err_set(e, ERR_HTTP, "CompleteMultipartUpload: HTTP 200 with error %s%s%s", code, msg ? ": " : "",
                         msg ? msg : "");
            e->transient = retryable_code(code);
        } else if (!etag) {
            rc = err_set(e, ERR_HTTP, "CompleteMultipartUpload: the answer has no CompleteMultipartUploadResult");
        } else {
            /* A multipart ETag ends in "-<number of parts>" on S3; other servers may give an MD5. */
            const char *dash = strrchr(etag, '-');
            if (dash && atoi(dash + 1) != m->parts_max)
                rc = err_set(e, ERR_INTEGRITY, "CompleteMultipartUpload: the object's ETag %s does not count %d parts",
                             etag, m->parts_max);
        }
        free(code);
        free(msg);
        free(etag);
    }
    http_response_free(&resp);
    target_free(&t);
    buf_free(&xml);
    return rc;
}

static int put_multipart(struct s3 *s, const char *uri, const struct s3_path *p, struct reader *rd, int64_t size,
                         struct err *e)
{
    struct mp m = { .s = s, .uri = uri, .p = p, .rd = rd, .known = size >= 0, .part_size = s->cfg.part_size };
    int64_t nparts = 0;
    if (m.known) {
        /* The configured part size, or larger when the object needs more than 10,000 parts. */
        int64_t min = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
        min = (min + MIB - 1) / MIB * MIB;
        if (min > m.part_size)
            m.part_size = min;
        if (m.part_size > S3_MAX_PART)
            return err_set(e, ERR_INVALID, "the object is larger than S3's 5 TiB limit");
        nparts = (size + m.part_size - 1) / m.part_size;
    }
    struct target t;
    make_target(&s->cfg, p->bucket, p->key, "uploads", &t);
    const char *hdr[3] = { "Content-Type: application/octet-stream", s->cfg.checksum ? "x-amz-checksum-algorithm: SHA256" : NULL,
                           NULL };
    struct http_response resp;
    int rc = simple_request(s, s->client, "POST", &t, hdr, NULL, &resp, e);
    char *upload_id = NULL;
    if (rc < 0)
        explain(e, &resp, "CreateMultipartUpload", uri);
    else if (!(upload_id = xml_find(resp.body.data, resp.body.len, "InitiateMultipartUploadResult/UploadId")) ||
             !*upload_id)
        rc = err_set(e, ERR_HTTP, "CreateMultipartUpload: the answer has no UploadId");
    http_response_free(&resp);
    target_free(&t);
    if (rc < 0) {
        free(upload_id);
        return -1;
    }
    m.upload_id_enc = sigv4_encode(upload_id, 1);
    pthread_mutex_init(&m.read_mu, NULL);
    pthread_mutex_init(&m.mu, NULL);
    int n = s->cfg.concurrency;
    if (m.known && nparts < n)
        n = (int)nparts;
    log_debug("multipart upload %s: parts of %lld bytes, %d at a time at most", upload_id, (long long)m.part_size, n);
    pthread_t tids[64];
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, put_worker, &m) != 0)
            break;
        started++;
    }
    if (started == 0)
        put_worker(&m);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (atomic_load(&m.failed)) {
        *e = m.err;
        rc = -1;
    } else if (m.known && m.total != size) {
        rc = err_set(e, ERR_INTEGRITY, "the source gave %lld bytes, not the %lld it announced", (long long)m.total,
                     (long long)size);
    } else if (!m.eof) {
        rc = err_set(e, ERR_INTERNAL, "the part uploads stopped before the end of the source");
    } else {
        rc = complete_upload(&m, e);
    }
    if (rc < 0)
        abort_upload(&m);
    for (int i = 0; i < m.parts_cap; i++)
        free(m.parts[i].etag);
    free(m.parts);
    pthread_mutex_destroy(&m.read_mu);
    pthread_mutex_destroy(&m.mu);
    free(m.upload_id_enc);
    free(upload_id);
    return rc;
}

static int s3_put(struct store *st, const char *uri, struct store_source *src, struct err *e)
{
    struct s3 *s = st->state;
    struct s3_path p;
    if (parse_uri(uri, &p, e) < 0)
        return -1;
    int rc;
    if (!*p.key || str_has_suffix(p.key, "/")) {
        rc = err_set(e, ERR_INVALID, "an object URI needs a key that does not end in '/'");
        goto out;
    }
    struct reader rd = { .src = src };
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
    ssize_t got = reader_fill(&rd, body, want, e);
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

const struct store_ops store_s3_ops = {
    .scheme = "s3",
    .summary = "AWS S3 and S3-compatible servers (SigV4; multipart upload and ranged download in parallel)",
    .open = s3_open,
    .close = s3_close,
    .get = s3_get,
    .put = s3_put,
    .stat = s3_stat,
    .list = s3_list,
    .remove = s3_remove,
    .presign = s3_presign,
};
