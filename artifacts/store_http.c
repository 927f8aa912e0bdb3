/* http(s):// store: GET (parallel ranged GETs through ranged_get.c when the server serves ranges,
 * else one stream; resumed after interruptions), PUT, HEAD, DELETE, and WebDAV PROPFIND for
 * listings. Works with nginx's dav module, Apache mod_dav, and any server
 * that accepts PUT. Credentials: user:password in the URI (sent as Basic auth, never logged)
 * or a bearer token in STEPOP_HTTP_BEARER_TOKEN, sent to one host only. */
#include "store.h"

#include "parallel.h"
#include "ranged_get.h"

#include "../runtime/doctor.h"
#include "../runtime/http.h"
#include "../runtime/log.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/url.h"
#include "../runtime/util.h"

#include <expat.h>
#include <stdatomic.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024LL * 1024)

/* Where the bearer token may go: a host and a port (0: any port). */
struct bearer_scope {
    char *host;
    long port;
};

/* The store the program works for, set before any thread starts (store_http_set_bearer_scope). */
static struct bearer_scope program_scope;
static int program_scope_set;
static atomic_flag unscoped_warned = ATOMIC_FLAG_INIT;

struct http_store {
    struct http_client *client;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    struct bearer_scope scope; /* host NULL: the token goes nowhere */
    int concurrency;           /* STEPOP_HTTP_CONCURRENCY: ranged GETs in flight; 1: one stream */
    int64_t part_size;         /* STEPOP_HTTP_PART_SIZE */
};

/* The download settings, named as the s3:// store's (STEPOP_S3_CONCURRENCY, STEPOP_S3_PART_SIZE). */
static int ranged_config(struct http_store *hs, struct err *e)
{
    /* 8 x 4 MiB: the part buffers (32 MiB) keep a download with its pipe inside the 64 MiB
     * memory target (8 MiB parts peaked at 90 MiB), and on a capped link with 20 ms of round
     * trip each connection still carries data about 70% of the time (docs/benchmarks.md). */
    hs->concurrency = 8;
    hs->part_size = 4 * MIB;
    const char *cv = getenv("STEPOP_HTTP_CONCURRENCY");
    if (cv && *cv) {
        char *end;
        long c = strtol(cv, &end, 10);
        if (*end || c < 1 || c > PAR_MAX_WORKERS)
            return err_set(e, ERR_USAGE, "STEPOP_HTTP_CONCURRENCY: expected 1 to %d, got \"%s\"", PAR_MAX_WORKERS,
                           cv);
        hs->concurrency = (int)c;
    }
    const char *pv = getenv("STEPOP_HTTP_PART_SIZE");
    if (pv && *pv) {
        if (units_parse_size(pv, &hs->part_size, e) < 0)
            return err_prefix(e, "STEPOP_HTTP_PART_SIZE: ");
        if (hs->part_size < 64 * 1024 || hs->part_size > 5 * 1024 * MIB)
            return err_set(e, ERR_USAGE, "STEPOP_HTTP_PART_SIZE: must be between 64 KiB and 5 GiB, got \"%s\"", pv);
    }
    return 0;
}

/* Host and port of an http(s) URL (url_parse's: lower-case, IPv6 without brackets); default_port
 * fills in the scheme's port when none is given (else *port is 0). -1 when it is no http(s) URL
 * with a host. */
static int url_host_port(const char *url, int default_port, char **host, long *port)
{
    struct url u;
    if (url_parse(url, &u, NULL) < 0)
        return -1;
    int web = strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0;
    if (web) {
        *host = xstrdup(u.host);
        *port = default_port ? u.port_or_default : u.port;
    }
    url_free(&u);
    return web ? 0 : -1;
}

void store_http_set_bearer_scope(const char *store_uri)
{
    free(program_scope.host);
    program_scope.host = NULL;
    program_scope_set = 1;
    if (url_host_port(store_uri, 1, &program_scope.host, &program_scope.port) < 0)
        program_scope.host = NULL; /* a file:// or s3:// store: no http host gets the token */
}

/* STEPOP_HTTP_BEARER_HOST (host or host:port) wins over the program's store. */
static int bearer_scope_for_store(struct bearer_scope *sc, struct err *e)
{
    const char *v = getenv("STEPOP_HTTP_BEARER_HOST");
    if (v && *v) {
        char *url = xasprintf("http://%s/", v);
        int bad = strpbrk(v, "/@?#") != NULL || url_host_port(url, 0, &sc->host, &sc->port) < 0;
        free(url);
        if (bad)
            return err_set(e, ERR_USAGE, "STEPOP_HTTP_BEARER_HOST: \"%s\" is not a host or host:port", v);
        return 0;
    }
    if (program_scope_set) {
        sc->host = program_scope.host ? xstrdup(program_scope.host) : NULL;
        sc->port = program_scope.port;
        if (!sc->host && !atomic_flag_test_and_set(&unscoped_warned))
            log_warn("STEPOP_HTTP_BEARER_TOKEN is set but the store is not an http(s) one: it is sent to no host "
                     "(set STEPOP_HTTP_BEARER_HOST to name the one it is for)");
        return 0;
    }
    if (!atomic_flag_test_and_set(&unscoped_warned))
        log_warn("STEPOP_HTTP_BEARER_TOKEN is set but no store says where it goes: it is sent to no host "
                 "(set STEPOP_HTTP_BEARER_HOST to the host it is for)");
    return 0;
}

static int http_store_open(struct store *s, const char *uri, struct err *e)
{
    (void)uri;
    if (http_global_init(e) < 0)
        return -1;
    struct http_store *hs = xcalloc(1, sizeof *hs);
    if (ranged_config(hs, e) < 0) {
        free(hs);
        return -1;
    }
    const char *token = getenv("STEPOP_HTTP_BEARER_TOKEN");
    if (token && *token) {
        if (bearer_scope_for_store(&hs->scope, e) < 0) {
            free(hs);
            return -1;
        }
        hs->auth_header = xasprintf("Authorization: Bearer %s", token);
    }
    hs->client = http_client_new();
    s->state = hs;
    return 0;
}

static void http_store_close(struct store *s)
{
    struct http_store *hs = s->state;
    http_client_free(hs->client);
    free(hs->auth_header);
    free(hs->scope.host);
    free(hs);
}

/* The Authorization header for a request to url: only to the scope's host and port, and not
 * when the URL carries its own credentials (user:password@, a presigned signature), which the
 * server would see as a second, conflicting authorization. libcurl drops it on a redirect to
 * another host, port or scheme. */
static const char *bearer_for(const struct http_store *hs, const char *url)
{
    if (!hs->auth_header || !hs->scope.host)
        return NULL;
    char *clean = uri_redact_secrets(url);
    int own = strcmp(clean, url) != 0;
    free(clean);
    char *host;
    long port;
    if (own || url_host_port(url, 1, &host, &port) < 0)
        return NULL;
    int match = strcasecmp(host, hs->scope.host) == 0 && (hs->scope.port == 0 || hs->scope.port == port);
    free(host);
    return match ? hs->auth_header : NULL;
}

/* From the headers rather than the response's content_length, which is only filled once the
 * transfer ends: a GET's answer is read while its body streams. */
static void fill_stat_from(const struct http_response *r, struct store_stat *st)
{
    memset(st, 0, sizeof *st);
    int64_t a, b;
    if (r->status == 206) {
        if (store_parse_content_range(http_header(r, "content-range"), &a, &b, &st->size) < 0)
            st->size = -1;
    } else if (store_parse_length(http_header(r, "content-length"), &st->size) < 0) {
        st->size = -1;
    }
    const char *etag = http_header(r, "etag");
    if (etag)
        snprintf(st->etag, sizeof st->etag, "%s", etag);
    const char *lm = http_header(r, "last-modified");
    if (lm) {
        time_t t = curl_getdate(lm, NULL);
        st->mtime = t > 0 ? t : 0;
    }
}

struct get_ctx {
    store_sink_fn sink;
    void *ctx;
    struct store_stat *info;
    struct http_response *resp;
    int ranged;
    int checked;        /* the attempt whose answer was checked last; 0: none yet */
    int64_t total;      /* the object's size as the answers announce it; -1 unknown */
};

/* The object's size one answer announces (-1 when it gives none), refusing an answer whose
 * Content-Length and Content-Range disagree. */
static int announced_size(const struct http_response *r, int64_t *size, struct err *e)
{
    const char *cl = http_header(r, "content-length");
    const char *cr = http_header(r, "content-range");
    int64_t len = -1, a, b;
    *size = -1;
    if (cl && store_parse_length(cl, &len) < 0)
        return err_set(e, ERR_INTEGRITY, "malformed Content-Length \"%s\"", cl);
    if (r->status != 206) {
        *size = len;
        return 0;
    }
    if (store_parse_content_range(cr, &a, &b, size) < 0)
        return err_set(e, ERR_INTEGRITY, "malformed Content-Range \"%s\"", cr ? cr : "(none)");
    if (len >= 0 && len != b - a + 1)
        return err_set(e, ERR_INTEGRITY, "Content-Length %s does not match Content-Range \"%s\"", cl, cr);
    return 0;
}

static int get_data(void *ctx, const void *data, size_t n, struct err *e)
{
    struct get_ctx *g = ctx;
    if (g->checked != g->resp->attempts) {
        int first = !g->checked;
        g->checked = g->resp->attempts;
        if (first && g->ranged && g->resp->status != 206)
            return err_set(e, ERR_UNSUPPORTED, "the server ignored the Range request (HTTP %ld)", g->resp->status);
        int64_t size;
        if (announced_size(g->resp, &size, e) < 0)
            return -1;
        /* A resumed attempt describes the same object: its size must be the one announced first. */
        if (size >= 0 && g->total >= 0 && size != g->total)
            return err_set(e, ERR_INTEGRITY, "the object's size changed from %lld to %lld bytes during the download",
                           (long long)g->total, (long long)size);
        if (size >= 0)
            g->total = size;
        if (first && g->info)
            fill_stat_from(g->resp, g->info);
    }
    return g->sink(g->ctx, data, n, e);
}

static const char *const *auth_headers(struct http_store *hs, const char *url, const char **storage, const char *extra)
{
    int n = 0;
    const char *bearer = bearer_for(hs, url);
    if (bearer)
        storage[n++] = bearer;
    if (extra)
        storage[n++] = extra;
    storage[n] = NULL;
    return storage;
}

/* One stream: a plain GET (Range only for a part of the object), resumed after interruptions. */
static int http_get_stream(struct store *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink,
                           void *ctx, struct store_stat *info, struct err *e)
{
    struct http_store *hs = s->state;
    struct http_response resp;
    struct get_ctx g = { .sink = sink, .ctx = ctx, .info = info, .resp = &resp, .ranged = offset > 0 || length > 0,
                         .total = -1 };
    const char *hdr[3];
    struct http_request req = {
        .method = "GET", .url = uri, .headers = auth_headers(hs, uri, hdr, NULL),
        .on_data = get_data, .data_ctx = &g, .range_start = offset,
        .range_len = length < 0 ? (offset > 0 ? -1 : 0) : length, .resume = 1, .follow_redirects = 1,
    };
    if (length == 0)
        return 0;
    int rc = http_perform(hs->client, &req, &resp, e);
    if (rc < 0 && resp.status == 416 && g.total >= 0)
        rc = err_set(e, ERR_INTEGRITY, "HTTP 416 after %lld bytes, yet the server announced %lld: it has fewer",
                     (long long)resp.delivered, (long long)g.total);
    if (rc == 0 && !g.checked) {
        /* No body arrived (an empty object): the answer's headers alone tell its size. */
        int64_t size;
        rc = announced_size(&resp, &size, e);
        if (rc == 0 && info)
            fill_stat_from(&resp, info);
        g.total = size;
    }
    /* What arrived must be exactly what was announced: the rest of the object from offset. */
    if (rc == 0 && g.total >= 0 && offset > g.total)
        rc = err_set(e, ERR_INTEGRITY, "the object has %lld bytes, fewer than the offset %lld", (long long)g.total,
                     (long long)offset);
    int64_t want = length > 0 ? length : g.total >= 0 ? g.total - offset : -1;
    if (rc == 0 && length > 0 && g.total >= 0 && length > g.total - offset)
        rc = err_set(e, ERR_INTEGRITY, "the object has %lld bytes, fewer than the %lld asked for from %lld",
                     (long long)g.total, (long long)length, (long long)offset);
    if (rc == 0 && want >= 0 && resp.delivered != want)
        rc = err_set(e, ERR_INTEGRITY, "expected %lld bytes, got %lld", (long long)want, (long long)resp.delivered);
    http_response_free(&resp);
    return rc;
}

/* ---- parallel ranged GET (ranged_get.c) ---------------------------------------------- */

/* The object being fetched: what pins its version, from the first answer; read only after it. */
struct http_ranged {
    struct http_store *hs;
    const char *uri;
    char etag[160];
    char last_modified[64];
    char pin[240];          /* "If-Match: ETAG" or "If-Unmodified-Since: DATE"; "" when neither */
};

static int ranged_perform(void *ctx, struct http_client *client, int pinned, const struct http_request *proto,
                          struct http_response *resp, struct err *e)
{
    struct http_ranged *hr = ctx;
    const char *hdr[3];
    struct http_request req = {
        .method = "GET", .url = hr->uri, .follow_redirects = 1,
        .headers = auth_headers(hr->hs, hr->uri, hdr, pinned && hr->pin[0] ? hr->pin : NULL),
    };
    ranged_get_take_transfer(&req, proto);
    int rc = http_perform(client, &req, resp, e);
    if (rc < 0 && resp->status == 412)
        err_prefix(e, "the object changed during the download: ");
    return rc;
}

static int ranged_first_answer(void *ctx, const struct http_response *r, struct store_stat *st, struct err *e)
{
    (void)e;
    struct http_ranged *hr = ctx;
    fill_stat_from(r, st);
    const char *etag = http_header(r, "etag");
    const char *lm = http_header(r, "last-modified");
    snprintf(hr->etag, sizeof hr->etag, "%s", etag ? etag : "");
    snprintf(hr->last_modified, sizeof hr->last_modified, "%s", lm ? lm : "");
    /* A weak ETag never matches If-Match (RFC 9110 13.1.1): then the date pins the version. */
    if (etag && strncmp(etag, "W/", 2) != 0)
        snprintf(hr->pin, sizeof hr->pin, "If-Match: %s", etag);
    else if (lm)
        snprintf(hr->pin, sizeof hr->pin, "If-Unmodified-Since: %s", lm);
    return 0;
}

/* Parts are stitched only when each can be tied to the first answer's version: without an ETag
 * or a Last-Modified the rest comes as one more stream. */
static int ranged_split(void *ctx, const struct store_stat *st, struct err *e)
{
    (void)st;
    (void)e;
    const struct http_ranged *hr = ctx;
    return hr->etag[0] || hr->last_modified[0] ? 0 : 1;
}

/* Servers that ignore If-Match (some CDNs) still name the version in each answer. */
static int ranged_same_version(void *ctx, const struct http_response *r, struct err *e)
{
    const struct http_ranged *hr = ctx;
    const char *etag = http_header(r, "etag");
    const char *lm = http_header(r, "last-modified");
    if (hr->etag[0] && (!etag || strcmp(etag, hr->etag) != 0))
        return err_set(e, ERR_INTEGRITY, "the object changed during the download (ETag %s, then %s)", hr->etag,
                       etag ? etag : "none");
    if (hr->last_modified[0] && (!lm || strcmp(lm, hr->last_modified) != 0))
        return err_set(e, ERR_INTEGRITY, "the object changed during the download (Last-Modified %s, then %s)",
                       hr->last_modified, lm ? lm : "none");
    return 0;
}

static const struct ranged_get_ops http_ranged_ops = {
    .perform = ranged_perform,
    .first_answer = ranged_first_answer,
    .split = ranged_split,
    .same_version = ranged_same_version,
};

/* Parallel ranged GETs unless STEPOP_HTTP_CONCURRENCY is 1; a server that answers the first
 * ranged GET with 200 sends the whole object in that one stream. */
static int http_get(struct store *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                    struct store_stat *info, struct err *e)
{
    struct http_store *hs = s->state;
    if (hs->concurrency <= 1)
        return http_get_stream(s, uri, offset, length, sink, ctx, info, e);
    struct http_ranged hr = { .hs = hs, .uri = uri };
    struct ranged_get g = { .ops = &http_ranged_ops, .ctx = &hr, .client = hs->client, .offset = offset,
                            .length = length, .part_size = hs->part_size, .concurrency = hs->concurrency,
                            .sink = sink, .sink_ctx = ctx };
    int rc = ranged_get_run(&g, e);
    if (rc == 0 && info && length != 0)
        *info = g.st;
    return rc;
}

static int http_put(struct store *s, const char *uri, struct store_source *src, struct err *e)
{
    struct http_store *hs = s->state;
    if (str_has_suffix(uri, "/"))
        return err_set(e, ERR_INVALID, "an object URI cannot end in '/'");
    const char *hdr[3];
    struct http_request req = {
        .method = "PUT", .url = uri, .headers = auth_headers(hs, uri, hdr, "Content-Type: application/octet-stream"),
        .body_read = src->read, .body_rewind = src->rewind, .body_ctx = src->ctx, .body_size = src->size,
    };
    struct http_response resp;
    int rc = http_perform(hs->client, &req, &resp, e);
    http_response_free(&resp);
    return rc;
}

static int http_stat(struct store *s, const char *uri, struct store_stat *st, struct err *e)
{
    struct http_store *hs = s->state;
    const char *hdr[3];
    struct http_request req = { .method = "HEAD", .url = uri, .headers = auth_headers(hs, uri, hdr, NULL),
                                .follow_redirects = 1 };
    struct http_response resp;
    int rc = http_perform(hs->client, &req, &resp, e);
    if (rc == 0)
        fill_stat_from(&resp, st);
    http_response_free(&resp);
    return rc;
}

static int http_remove(struct store *s, const char *uri, struct err *e)
{
    struct http_store *hs = s->state;
    const char *hdr[3];
    struct http_request req = { .method = "DELETE", .url = uri, .headers = auth_headers(hs, uri, hdr, NULL) };
    struct http_response resp;
    int rc = http_perform(hs->client, &req, &resp, e);
    http_response_free(&resp);
    return rc;
}

/* PROPFIND multistatus parsing (RFC 4918 §9.1): one entry per <response>. */
struct dav_parse {
    struct buf text;
    char *href;
    int64_t size;
    time_t mtime;
    int collection;
    char *base_path; /* the listed collection's path, decoded, ending in '/' */
    store_list_fn fn;
    void *ctx;
    struct err *e;
    int failed;
    int count;
};

static const char *local_name(const char *name)
{
    const char *bar = strrchr(name, '|');
    return bar ? bar + 1 : name;
}

static void XMLCALL dav_start(void *ud, const char *name, const char **attrs)
{
    (void)attrs;
    struct dav_parse *p = ud;
    const char *n = local_name(name);
    p->text.len = 0;
    if (p->text.data)
        p->text.data[0] = '\0';
    if (strcmp(n, "response") == 0) {
        free(p->href);
        p->href = NULL;
        p->size = -1;
        p->mtime = 0;
        p->collection = 0;
    } else if (strcmp(n, "collection") == 0) {
        p->collection = 1;
    }
}

static void XMLCALL dav_text(void *ud, const char *s, int len)
{
    struct dav_parse *p = ud;
    buf_append(&p->text, s, (size_t)len);
}

static const char *href_path(const char *href)
{
    /* An href may be absolute ("http://host/a/b") or a path ("/a/b"). */
    const char *sep = strstr(href, "://");
    if (!sep)
        return href;
    const char *slash = strchr(sep + 3, '/');
    return slash ? slash : "/";
}

static void dav_emit(struct dav_parse *p)
{
    if (p->failed || !p->href)
        return;
    char *decoded;
    if (uri_decode(href_path(p->href), &decoded) < 0)
        return;
    size_t bl = strlen(p->base_path);
    if (strncmp(decoded, p->base_path, bl) == 0 && decoded[bl]) {
        char *name = decoded + bl;
        size_t nl = strlen(name);
        char *entry_name = (p->collection && name[nl - 1] != '/') ? xasprintf("%s/", name) : xstrdup(name);
        struct store_entry ent = { .name = entry_name, .size = p->collection ? -1 : p->size, .mtime = p->mtime };
        if (p->fn(p->ctx, &ent, p->e) < 0)
            p->failed = 1;
        p->count++;
        free(entry_name);
    }
    free(decoded);
}

static void XMLCALL dav_end(void *ud, const char *name)
{
    struct dav_parse *p = ud;
    const char *n = local_name(name);
    const char *t = p->text.data ? p->text.data : "";
    if (strcmp(n, "href") == 0) {
        free(p->href);
        p->href = xstrdup(t);
    } else if (strcmp(n, "getcontentlength") == 0) {
        p->size = strtoll(t, NULL, 10);
    } else if (strcmp(n, "getlastmodified") == 0) {
        time_t m = curl_getdate(t, NULL);
        p->mtime = m > 0 ? m : 0;
    } else if (strcmp(n, "response") == 0) {
        dav_emit(p);
    }
    p->text.len = 0;
    if (p->text.data)
        p->text.data[0] = '\0';
}

static int http_list(struct store *s, const char *uri, store_list_fn fn, void *ctx, struct err *e)
{
    struct http_store *hs = s->state;
    char *dir_uri = str_has_suffix(uri, "/") ? xstrdup(uri) : xasprintf("%s/", uri);
    static const char body[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                               "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/><D:getcontentlength/>"
                               "<D:getlastmodified/></D:prop></D:propfind>";
    const char *hdr[] = { "Depth: 1", "Content-Type: application/xml", bearer_for(hs, dir_uri), NULL };
    struct http_request req = { .method = "PROPFIND", .url = dir_uri, .headers = hdr, .body = body,
                                .body_len = sizeof body - 1, .max_body = 64u << 20 };
    struct http_response resp;
    int rc = http_perform(hs->client, &req, &resp, e);
    if (rc < 0) {
        if (e->http_status == 405 || e->http_status == 501)
            err_prefix(e, "listing needs WebDAV PROPFIND on the server: ");
        goto out;
    }
    if (resp.status != 207) {
        rc = err_set(e, ERR_UNSUPPORTED, "listing needs WebDAV PROPFIND; the server answered HTTP %ld", resp.status);
        goto out;
    }
    struct dav_parse p = { .size = -1, .fn = fn, .ctx = ctx, .e = e };
    if (uri_decode(href_path(dir_uri + 0), &p.base_path) < 0) {
        rc = err_set(e, ERR_INVALID, "malformed URI");
        goto out;
    }
    XML_Parser parser = XML_ParserCreateNS(NULL, '|');
    XML_SetUserData(parser, &p);
    XML_SetElementHandler(parser, dav_start, dav_end);
    XML_SetCharacterDataHandler(parser, dav_text);
    if (XML_Parse(parser, resp.body.data ? resp.body.data : "", (int)resp.body.len, 1) == XML_STATUS_ERROR && !p.failed)
        rc = err_set(e, ERR_INVALID, "malformed PROPFIND answer: %s", XML_ErrorString(XML_GetErrorCode(parser)));
    else if (p.failed)
        rc = -1;
    XML_ParserFree(parser);
    free(p.href);
    free(p.base_path);
    buf_free(&p.text);
out:
    http_response_free(&resp);
    free(dir_uri);
    return rc;
}

/* `stepop doctor`: whether the bearer token goes to this store, and where it may go (never the
 * token itself). */
static void http_store_doctor(struct store *s, const char *root, struct doctor *d)
{
    struct http_store *hs = s->state;
    if (!hs->auth_header)
        doctor_add(d, DOCTOR_SKIP, "store credentials", "none (STEPOP_HTTP_BEARER_TOKEN is not set)");
    else if (bearer_for(hs, root))
        doctor_add(d, DOCTOR_OK, "store credentials", "STEPOP_HTTP_BEARER_TOKEN, sent to %s port %ld only",
                   hs->scope.host, hs->scope.port);
    else
        doctor_add(d, DOCTOR_FAIL, "store credentials",
                   "STEPOP_HTTP_BEARER_TOKEN is set but not sent to %s (hint: STEPOP_HTTP_BEARER_HOST names %s)",
                   root, hs->scope.host ? hs->scope.host : "no host");
}

const struct store_ops store_http_ops = {
    .scheme = "http",
    .summary = "any HTTP server for GET; PUT/DELETE/PROPFIND with WebDAV (nginx dav, Apache mod_dav)",
    .open = http_store_open,
    .close = http_store_close,
    .get = http_get,
    .put = http_put,
    .stat = http_stat,
    .list = http_list,
    .remove = http_remove,
    .doctor = http_store_doctor,
};
