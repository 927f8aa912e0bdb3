/* gs:// store: Google Cloud Storage through its JSON API, with application default credentials
 * (cloud/google/auth.h) as a bearer token made afresh before every attempt. Uploads up to a
 * threshold are one multipart/related request, larger ones a resumable session (gcs_put.c);
 * downloads are parallel ranged GETs pinned to the object's generation (gcs_get.c). The shared
 * engine (parallel.h) moves the parts. STORAGE_EMULATOR_HOST is honoured as Google's client
 * libraries honour it: that host, http:// when it names no scheme, and no credentials.
 * Object names are taken literally from the URI, as gcloud takes them. */
#include "gcs_internal.h"

#include "../cloud/google/auth.h"
#include "../runtime/crc32c.h"
#include "../runtime/doctor.h"
#include "../runtime/jsonutil.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/url.h"
#include "../runtime/util.h"

#include <openssl/evp.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- pure helpers -------------------------------------------------------------------- */

char *gcs_encode_name(const char *name)
{
    return uri_encode(name, "");
}

static int b64_decode_exact(const char *s, size_t n, unsigned char *out, size_t want)
{
    unsigned char tmp[64];
    if (n == 0 || n % 4 || n > 88)
        return -1;
    char in[89];
    memcpy(in, s, n);
    in[n] = 0;
    int len = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    int pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    if ((size_t)(len - pad) != want)
        return -1;
    memcpy(out, tmp, want);
    return 0;
}

int gcs_parse_hash(const char *value, uint32_t *crc32c, int *has_crc32c, unsigned char md5[16], int *has_md5)
{
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n > 7 && strncasecmp(p, "crc32c=", 7) == 0) {
            char v[16];
            if (n - 7 >= sizeof v)
                return -1;
            memcpy(v, p + 7, n - 7);
            v[n - 7] = 0;
            if (crc32c_from_base64(v, crc32c) < 0)
                return -1;
            *has_crc32c = 1;
        } else if (n > 4 && strncasecmp(p, "md5=", 4) == 0) {
            if (b64_decode_exact(p + 4, n - 4, md5, 16) < 0)
                return -1;
            *has_md5 = 1;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

int64_t gcs_persisted_from_range(const char *range)
{
    if (!range)
        return 0;
    /* A session holds bytes from the first one on: "bytes=0-N", N strictly decimal. */
    int64_t last;
    if (strncmp(range, "bytes=0-", 8) != 0 || store_parse_length(range + 8, &last) < 0 || last == INT64_MAX)
        return -1;
    return last + 1;
}

int64_t gcs_part_size(int64_t size, int64_t configured, int max_parts)
{
    if (size < 0)
        return configured;
    int64_t min = (size + max_parts - 1) / max_parts;
    return min > configured ? (min + GCS_MIB - 1) / GCS_MIB * GCS_MIB : configured;
}

int gcs_compose_requests(int n)
{
    int requests = 0;
    while (n > 32) {
        requests += (n + 31) / 32;
        n = (n + 31) / 32;
    }
    return requests + 1;
}

/* ---- addressing ---------------------------------------------------------------------- */

void gcs_path_free(struct gcs_path *p)
{
    free(p->bucket);
    free(p->object);
}

int gcs_parse_uri(const char *uri, struct gcs_path *p, struct err *e)
{
    memset(p, 0, sizeof *p);
    if (strncasecmp(uri, "gs://", 5) != 0)
        return err_set(e, ERR_INVALID, "not a gs:// URI: %s", uri);
    const char *b = uri + 5;
    size_t n = strcspn(b, "/");
    if (n < 3 || n > 222)
        return err_set(e, ERR_INVALID, "a gs:// URI needs a bucket name of 3 to 222 characters: gs://BUCKET/OBJECT");
    p->bucket = xstrndup(b, n);
    for (const char *c = p->bucket; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_')) {
            int rc = err_set(e, ERR_INVALID, "\"%s\" is not a valid bucket name (lower-case letters, digits, "
                             "'-', '_' and '.')", p->bucket);
            gcs_path_free(p);
            return rc;
        }
    p->object = xstrdup(b[n] ? b + n + 1 : "");
    if (strlen(p->object) > 1024) {
        gcs_path_free(p);
        return err_set(e, ERR_INVALID, "an object name is at most 1024 bytes");
    }
    return 0;
}

char *gcs_object_url(const struct gcs *g, const struct gcs_path *p, const char *query)
{
    char *enc = gcs_encode_name(p->object);
    char *url = xasprintf("%s/storage/v1/b/%s/o/%s%s%s", g->cfg.base, p->bucket, enc, query ? "?" : "",
                          query ? query : "");
    free(enc);
    return url;
}

char *gcs_bucket_url(const struct gcs *g, const char *bucket, const char *what, const char *query)
{
    return xasprintf("%s%s/b/%s/o%s%s", g->cfg.base, what, bucket, query ? "?" : "", query ? query : "");
}

/* ---- requests and errors ------------------------------------------------------------- */

/* Google's retry guidance: 408, 429, 5xx and connection errors, as the HTTP layer does already;
 * a 401 means the token expired early or was revoked: one fresh token, one more attempt. */
static int retry_hook(void *ctx, const struct http_response *r)
{
    struct gcs_hook *h = ctx;
    if (r->status != 401 || !h || h->refreshed)
        return -1;
    h->refreshed = 1;
    char *tok = NULL;
    time_t exp;
    struct err e = { 0 };
    if (google_auth_token(&tok, &exp, 1, &e) < 0)
        return 0;
    OPENSSL_cleanse(tok, strlen(tok));
    free(tok);
    return 1;
}

void gcs_request_init(struct http_request *req, const struct gcs *g, const char *method, const char *url,
                      struct gcs_hook *hook)
{
    memset(req, 0, sizeof *req);
    memset(hook, 0, sizeof *hook);
    req->method = method;
    req->url = url;
    if (!g->cfg.anonymous) {
        req->sign = google_auth_sign;
        req->retry_hook = retry_hook;
        req->hook_ctx = hook;
    }
}

int gcs_simple_request(struct gcs *g, struct http_client *client, const char *method, const char *url,
                       const char *const *headers, const char *body, size_t body_len, struct http_response *resp,
                       struct err *e)
{
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, g, method, url, &hook);
    req.headers = headers;
    req.body = body;
    req.body_len = body_len;
    req.max_body = 64u << 20;
    return http_perform(client, &req, resp, e);
}

void gcs_explain(struct err *e, const struct http_response *r, const char *what, const char *uri)
{
    if (e->kind == ERR_CANCELLED || e->kind == ERR_INTEGRITY)
        return;
    char red[512];
    uri_redact(uri, red, sizeof red);
    enum err_kind kind = e->kind;
    int transient = e->transient;
    long status = e->http_status;
    cJSON *j = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *msg = json_str(err, "message");
    if (msg) {
        err_set(e, kind, "%s %s: HTTP %ld: %s", what, red, r->status, msg);
    } else {
        char inner[sizeof e->msg];
        snprintf(inner, sizeof inner, "%s", e->msg);
        const char *sp = strchr(inner, ' ');
        const char *colon = sp && strncmp(sp + 1, "http", 4) == 0 ? strstr(sp, ": ") : NULL;
        err_set(e, kind, "%s %s: %s", what, red, colon ? colon + 2 : inner);
    }
    cJSON_Delete(j);
    e->transient = transient;
    e->http_status = status;
}

static int64_t json_int64(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int64_t out;
    if (cJSON_IsString(v) && store_parse_length(v->valuestring, &out) == 0)
        return out;
    /* The API writes int64 fields as strings; a number is taken only where a double is exact. */
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0 &&
        v->valuedouble == (double)(int64_t)v->valuedouble)
        return (int64_t)v->valuedouble;
    return -1;
}

int gcs_object_from_json(const char *json, size_t len, struct gcs_object *o, struct err *e)
{
    memset(o, 0, sizeof *o);
    cJSON *j;
    if (json_parse(json, len, "object resource", &j, e) < 0)
        return -1;
    o->size = json_int64(j, "size");
    o->generation = json_int64(j, "generation");
    const char *crc = json_str(j, "crc32c"), *md5 = json_str(j, "md5Hash"), *etag = json_str(j, "etag"),
               *upd = json_str(j, "updated");
    int rc = 0;
    if (o->size < 0 || o->generation < 0)
        rc = err_set(e, ERR_HTTP, "the object resource has no size or generation");
    else if (crc && crc32c_from_base64(crc, &o->crc32c) < 0)
        rc = err_set(e, ERR_HTTP, "the object resource has a malformed crc32c \"%s\"", crc);
    else if (md5 && b64_decode_exact(md5, strlen(md5), o->md5, 16) < 0)
        rc = err_set(e, ERR_HTTP, "the object resource has a malformed md5Hash");
    o->has_crc32c = crc != NULL;
    o->has_md5 = md5 != NULL;
    if (etag)
        snprintf(o->etag, sizeof o->etag, "%s", etag);
    if (!upd || time_parse(upd, &o->updated) < 0)
        o->updated = 0;
    cJSON_Delete(j);
    return rc;
}

int gcs_get_object_meta(struct gcs *g, const char *uri, const struct gcs_path *p, struct gcs_object *o,
                        struct err *e)
{
    char *url = gcs_object_url(g, p, NULL);
    struct http_response resp;
    int rc = gcs_simple_request(g, g->client, "GET", url, NULL, NULL, 0, &resp, e);
    if (rc < 0)
        gcs_explain(e, &resp, "stat", uri);
    else
        rc = gcs_object_from_json(resp.body.data, resp.body.len, o, e);
    http_response_free(&resp);
    free(url);
    return rc;
}

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

static int endpoint_base(const char *what, const char *v, int add_http, char **out, struct err *e)
{
    static const char *const schemes[] = { "http", "https", NULL };
    char *s = add_http && !strstr(v, "://") ? xasprintf("http://%s", v) : xstrdup(v);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = 0;
    struct url u;
    int rc = url_endpoint(what, s, schemes, &u, e);
    if (rc == 0)
        *out = xasprintf("%s://%s", u.scheme, u.hostport);
    url_free(&u);
    free(s);
    return rc;
}

static int config_load(struct gcs_config *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    const char *emu = getenv("STORAGE_EMULATOR_HOST"), *ep = getenv("STEPOP_GCS_ENDPOINT");
    if (emu && *emu) {
        if (endpoint_base("STORAGE_EMULATOR_HOST", emu, 1, &c->base, e) < 0)
            return -1;
        c->anonymous = 1;
    } else if (ep && *ep) {
        if (endpoint_base("STEPOP_GCS_ENDPOINT", ep, 0, &c->base, e) < 0)
            return -1;
    } else {
        c->base = xstrdup(GCS_DEFAULT_ENDPOINT);
    }
    long conc = 8;
    const char *cv = getenv("STEPOP_GCS_CONCURRENCY");
    if (cv && *cv) {
        char *end;
        conc = strtol(cv, &end, 10);
        if (*end || conc < 1 || conc > 64)
            return err_set(e, ERR_INVALID, "STEPOP_GCS_CONCURRENCY: expected 1 to 64, got \"%s\"", cv);
    }
    c->concurrency = (int)conc;
    const char *now = getenv("STEPOP_NOW");
    if (now && *now && time_parse(now, &c->fixed_now) < 0)
        return err_set(e, ERR_INVALID, "STEPOP_NOW: expected RFC 3339 or YYYYMMDDTHHMMSSZ, got \"%s\"", now);
    const char *pu = getenv("STEPOP_GCS_PARALLEL_UPLOAD");
    c->parallel = GCS_PARALLEL_DEFAULT;
    if (pu && *pu) {
        if (!strcmp(pu, "off"))
            c->parallel = GCS_PARALLEL_OFF;
        else if (!strcmp(pu, "compose"))
            c->parallel = GCS_PARALLEL_COMPOSE;
        else if (!strcmp(pu, "xml"))
            c->parallel = GCS_PARALLEL_XML;
        else
            return err_set(e, ERR_INVALID, "STEPOP_GCS_PARALLEL_UPLOAD: expected off, compose or xml, got \"%s\"", pu);
    }
    if (env_size("STEPOP_GCS_UPLOAD_PART_SIZE", 16 * GCS_MIB, GCS_CHUNK_UNIT, 5120 * GCS_MIB, &c->upload_part, e) < 0 ||
        env_size("STEPOP_GCS_MEMORY", 256 * GCS_MIB, GCS_CHUNK_UNIT, 64 * 5120 * GCS_MIB, &c->mem_budget, e) < 0)
        return -1;
    if (c->parallel == GCS_PARALLEL_XML && c->upload_part < GCS_XML_MIN_PART)
        return err_set(e, ERR_INVALID, "STEPOP_GCS_UPLOAD_PART_SIZE: the XML API's parts are at least 5 MiB");
    if (env_size("STEPOP_GCS_UPLOAD_THRESHOLD", 16 * GCS_MIB, 0, 1024 * GCS_MIB, &c->threshold, e) < 0 ||
        env_size("STEPOP_GCS_CHUNK_SIZE", 16 * GCS_MIB, GCS_CHUNK_UNIT, 1024 * GCS_MIB, &c->chunk_size, e) < 0 ||
        env_size("STEPOP_GCS_PART_SIZE", 8 * GCS_MIB, GCS_MIB, 1024 * GCS_MIB, &c->part_size, e) < 0)
        return -1;
    if (c->chunk_size % GCS_CHUNK_UNIT)
        return err_set(e, ERR_INVALID, "STEPOP_GCS_CHUNK_SIZE: must be a multiple of 256 KiB (the resumable "
                       "upload protocol's unit)");
    return 0;
}

/* ---- open, stat, list, remove -------------------------------------------------------- */

static int gcs_open(struct store *st, const char *uri, struct err *e)
{
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    gcs_path_free(&p);
    if (http_global_init(e) < 0)
        return -1;
    struct gcs *g = xcalloc(1, sizeof *g);
    if (config_load(&g->cfg, e) < 0) {
        free(g->cfg.base);
        free(g);
        return -1;
    }
    g->client = http_client_new();
    st->state = g;
    return 0;
}

static void gcs_close(struct store *st)
{
    struct gcs *g = st->state;
    http_client_free(g->client);
    free(g->cfg.base);
    free(g);
}

/* objects.list under prefix with delimiter '/', page after page; max stops after that many
 * entries (0: all). */
static int list_prefix(struct gcs *g, const char *uri, const char *bucket, const char *prefix, int max,
                       store_list_fn fn, void *ctx, int *count, struct err *e)
{
    size_t plen = strlen(prefix);
    char *pfx = uri_encode(prefix, "");
    char *token = NULL;
    int rc = 0, n = 0;
    do {
        char *tok = token ? uri_encode(token, "") : NULL;
        char *q = xasprintf("prefix=%s&delimiter=%%2F&maxResults=%d%s%s", pfx, max && max < 1000 ? max : 1000,
                            tok ? "&pageToken=" : "", tok ? tok : "");
        free(tok);
        free(token);
        token = NULL;
        char *url = gcs_bucket_url(g, bucket, "/storage/v1", q);
        free(q);
        struct http_response resp;
        rc = gcs_simple_request(g, g->client, "GET", url, NULL, NULL, 0, &resp, e);
        free(url);
        cJSON *j = NULL;
        if (rc < 0)
            gcs_explain(e, &resp, "list", uri);
        else if ((rc = json_parse(resp.body.data, resp.body.len, "objects.list answer", &j, e)) == 0) {
            const char *nt = json_str(j, "nextPageToken");
            token = nt && *nt ? xstrdup(nt) : NULL;
            const cJSON *it;
            /* Objects first, then prefixes: each a complete page of the listing. */
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "items"))
            {
                const char *name = json_str(it, "name");
                if (rc < 0 || (max && n >= max))
                    break;
                if (!name || strncmp(name, prefix, plen) != 0 || !name[plen])
                    continue;
                time_t t = 0;
                const char *upd = json_str(it, "updated");
                if (!upd || time_parse(upd, &t) < 0)
                    t = 0;
                struct store_entry ent = { .name = name + plen, .size = json_int64(it, "size"), .mtime = t };
                n++;
                if (fn && fn(ctx, &ent, e) < 0)
                    rc = -1;
            }
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "prefixes"))
            {
                if (rc < 0 || (max && n >= max))
                    break;
                if (!cJSON_IsString(it) || strncmp(it->valuestring, prefix, plen) != 0 || !it->valuestring[plen])
                    continue;
                struct store_entry ent = { .name = it->valuestring + plen, .size = -1 };
                n++;
                if (fn && fn(ctx, &ent, e) < 0)
                    rc = -1;
            }
        }
        cJSON_Delete(j);
        http_response_free(&resp);
    } while (rc == 0 && token && !(max && n >= max));
    free(token);
    free(pfx);
    if (count)
        *count = n;
    return rc;
}

int gcs_list_under(struct gcs *g, const char *uri, const char *bucket, const char *prefix, store_list_fn fn,
                   void *ctx, struct err *e)
{
    return list_prefix(g, uri, bucket, prefix, 0, fn, ctx, NULL, e);
}

static int gcs_list(struct store *st, const char *uri, store_list_fn fn, void *ctx, struct err *e)
{
    struct gcs *g = st->state;
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    char *prefix = !*p.object || str_has_suffix(p.object, "/") ? xstrdup(p.object) : xasprintf("%s/", p.object);
    int rc = list_prefix(g, uri, p.bucket, prefix, 0, fn, ctx, NULL, e);
    free(prefix);
    gcs_path_free(&p);
    return rc;
}

static int gcs_stat(struct store *st, const char *uri, struct store_stat *out, struct err *e)
{
    struct gcs *g = st->state;
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc = -1, asked = *p.object && !str_has_suffix(p.object, "/");
    if (asked) {
        struct gcs_object o;
        rc = gcs_get_object_meta(g, uri, &p, &o, e);
        if (rc == 0) {
            memset(out, 0, sizeof *out);
            out->size = o.size;
            out->mtime = o.updated;
            snprintf(out->etag, sizeof out->etag, "%s", o.etag);
        }
        if (rc == 0 || e->kind != ERR_NOT_FOUND)
            goto out;
    }
    /* Not an object: a "directory" when something lies under name/. */
    char *prefix = !*p.object || str_has_suffix(p.object, "/") ? xstrdup(p.object) : xasprintf("%s/", p.object);
    int count = 0;
    struct err le = { 0 };
    if (list_prefix(g, uri, p.bucket, prefix, 1, NULL, NULL, &count, &le) < 0) {
        if (!asked)
            *e = le;
        rc = -1;
    } else if (count > 0 || !*p.object) {
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
    gcs_path_free(&p);
    return rc;
}

/* The object's generation first, then a DELETE conditional on it: Google counts that delete as
 * idempotent, so it is retried; a 404 on a retry means an earlier attempt removed it. */
static int gcs_remove(struct store *st, const char *uri, struct err *e)
{
    struct gcs *g = st->state;
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc;
    struct gcs_object o;
    if (!*p.object) {
        rc = err_set(e, ERR_INVALID, "rm needs an object name, not a bucket");
    } else if ((rc = gcs_get_object_meta(g, uri, &p, &o, e)) == 0) {
        char q[64];
        snprintf(q, sizeof q, "ifGenerationMatch=%lld", (long long)o.generation);
        char *url = gcs_object_url(g, &p, q);
        struct http_response resp;
        rc = gcs_simple_request(g, g->client, "DELETE", url, NULL, NULL, 0, &resp, e);
        if (rc < 0 && resp.status == 404 && resp.attempts > 1)
            rc = 0;
        else if (rc < 0 && resp.status == 412)
            err_set(e, ERR_INTEGRITY, "rm: the object changed while it was being removed; left as it is");
        else if (rc < 0)
            gcs_explain(e, &resp, "DELETE", uri);
        http_response_free(&resp);
        free(url);
    }
    gcs_path_free(&p);
    return rc;
}

static int gcs_get(struct store *st, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                   struct store_stat *info, struct err *e)
{
    return gcs_get_object(st->state, uri, offset, length, sink, ctx, info, e);
}

static int gcs_put(struct store *st, const char *uri, struct store_source *src, struct err *e)
{
    return gcs_put_object(st->state, uri, src, e);
}

static int gcs_presign(struct store *st, const char *uri, const char *method, int64_t expires_s, char **url,
                       struct err *e)
{
    return gcs_presign_url(st->state, uri, method, expires_s, url, e);
}

/* `stepop doctor`: the credentials' source and service account; an emulator takes none. */
static void gcs_doctor(struct store *st, const char *root, struct doctor *d)
{
    (void)root;
    struct gcs *g = st->state;
    if (g->cfg.anonymous)
        doctor_add(d, DOCTOR_SKIP, "store credentials", "none: STORAGE_EMULATOR_HOST (%s) takes no credentials",
                   g->cfg.base);
    else
        google_doctor_lines(d, "store");
}

const struct store_ops store_gcs_ops = {
    .scheme = "gs",
    .summary = "Google Cloud Storage (JSON API; resumable upload, ranged download in parallel, V4 signed URLs)",
    .open = gcs_open,
    .close = gcs_close,
    .get = gcs_get,
    .put = gcs_put,
    .stat = gcs_stat,
    .list = gcs_list,
    .remove = gcs_remove,
    .presign = gcs_presign,
    .doctor = gcs_doctor,
};
