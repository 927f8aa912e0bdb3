/* s3:// store: AWS S3 and S3-compatible servers (MinIO, Ceph, R2, ...). SigV4 signing
 * (cloud/aws/sigv4.c) with the AWS credential chain (cloud/aws/creds.c); uploads above a
 * threshold go out as multipart uploads whose parts are sent in parallel, downloads as parallel
 * ranged GETs pinned to the object's ETag and delivered in order. Parallelism uses one thread and
 * one libcurl handle per part in flight (docs/artifacts.md says why not curl's multi interface).
 * This file holds the configuration and the small operations; s3_request.c the addressing,
 * signing and errors, s3_get.c and s3_put.c the transfers (s3_internal.h).
 * Keys are taken literally from the URI, as the AWS CLI takes them: "s3://b/a%20b" is the key
 * "a%20b". */
#include "s3_internal.h"

#include "../cloud/aws/creds.h"
#include "../cloud/aws/endpoint.h"
#include "../cloud/aws/sigv4.h"
#include "../cloud/aws/sts.h"
#include "../runtime/doctor.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    struct aws_endpoint ep;
    int rc = aws_endpoint_resolve("S3", "s3", &ep, e);
    c->scheme = ep.scheme, c->host = ep.host, c->region = ep.region, c->custom = ep.custom;
    if (rc < 0)
        return -1;
    /* A custom endpoint is addressed path-style; us-east-1 keeps the global host names
     * (<bucket>.s3.amazonaws.com). */
    c->path_style = c->custom;
    if (!c->custom && strcmp(c->region, "us-east-1") == 0) {
        free(c->host);
        c->host = xasprintf("s3.%s", aws_dns_suffix(c->region));
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

/* ---- open, stat, list, remove, presign ----------------------------------------------- */

static int s3_open(struct store *st, const char *uri, struct err *e)
{
    struct s3_path p;
    if (s3_parse_uri(uri, &p, e) < 0)
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
        struct s3_target t;
        s3_make_target(&s->cfg, bucket, NULL, q, &t);
        free(q);
        struct http_response resp;
        rc = s3_simple_request(s, s->client, "GET", &t, NULL, NULL, &resp, e);
        if (rc < 0) {
            s3_explain(e, &resp, "list", uri);
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
        s3_target_free(&t);
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
    if (s3_parse_uri(uri, &p, e) < 0)
        return -1;
    char *prefix = !*p.key || str_has_suffix(p.key, "/") ? xstrdup(p.key) : xasprintf("%s/", p.key);
    int rc = list_prefix(s, uri, p.bucket, prefix, 0, fn, ctx, NULL, e);
    free(prefix);
    s3_path_free(&p);
    return rc;
}


static int s3_stat(struct store *st, const char *uri, struct store_stat *out, struct err *e)
{
    struct s3 *s = st->state;
    struct s3_path p;
    if (s3_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc = -1, headed = *p.key && !str_has_suffix(p.key, "/");
    if (headed) {
        rc = s3_head_object(s, uri, &p, out, e);
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
    if (s3_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc;
    struct store_stat info;
    /* S3 answers 204 whether or not the key existed: ask first, so a missing object exits 3 as
     * it does on the other stores. */
    if (!*p.key) {
        rc = err_set(e, ERR_INVALID, "rm needs an object key, not a bucket");
    } else if ((rc = s3_head_object(s, uri, &p, &info, e)) == 0) {
        struct s3_target t;
        s3_make_target(&s->cfg, p.bucket, p.key, NULL, &t);
        struct http_response resp;
        rc = s3_simple_request(s, s->client, "DELETE", &t, NULL, NULL, &resp, e);
        if (rc < 0)
            s3_explain(e, &resp, "DELETE", uri);
        http_response_free(&resp);
        s3_target_free(&t);
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
    if (s3_parse_uri(uri, &p, e) < 0)
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
            struct s3_target t;
            s3_make_target(&s->cfg, p.bucket, p.key, NULL, &t);
            char *base = xasprintf("%s://%s", s->cfg.scheme, t.host);
            *url = sigv4_presign(base, t.host, method, t.path, NULL, cr.access_key, cr.secret_key, cr.session_token,
                                 s->cfg.region, "s3", aws_sign_time(s->cfg.fixed_now), (long)expires_s);
            free(base);
            s3_target_free(&t);
            aws_credentials_free(&cr);
        }
    }
    s3_path_free(&p);
    return rc;
}

static int s3_get(struct store *st, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                  struct store_stat *info, struct err *e)
{
    return s3_get_object(st->state, uri, offset, length, sink, ctx, info, e);
}

static int s3_put(struct store *st, const char *uri, struct store_source *src, struct err *e)
{
    return s3_put_object(st->state, uri, src, e);
}

/* `stepop doctor`: which provider of the chain gave the keys, and whose they are (STS). An
 * S3-compatible server (a custom S3 endpoint) seldom has STS: asked only when an STS endpoint is
 * named too. */
static void s3_doctor(struct store *st, const char *root, struct doctor *d)
{
    (void)root;
    struct s3 *s = st->state;
    if (!s->cfg.custom || aws_endpoint_override("STS")) {
        aws_doctor_lines(d, "store");
        return;
    }
    struct aws_credentials c;
    struct err e = { 0 };
    if (aws_credentials_get(&c, 0, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "store credentials", "%s (hint: docs/artifacts.md lists the AWS sources)", e.msg);
        return;
    }
    doctor_add(d, DOCTOR_OK, "store credentials", "AWS %s (profile %s, region %s)", c.provider, aws_profile(),
               s->cfg.region);
    aws_credentials_free(&c);
    doctor_add(d, DOCTOR_SKIP, "store identity",
               "custom S3 endpoint %s: STS not asked (set AWS_ENDPOINT_URL_STS to ask one)", s->cfg.host);
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
    .doctor = s3_doctor,
};
