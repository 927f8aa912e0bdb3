#include "store.h"

#include "../runtime/http.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const struct store_ops store_file_ops;
extern const struct store_ops store_http_ops;
extern const struct store_ops store_s3_ops;
extern const struct store_ops store_gcs_ops;
extern const struct store_ops store_azure_ops;

/* The registry: adding a store touches only this table and its own file. */
static const struct {
    const char *scheme;
    const struct store_ops *ops;
} registry[] = {
    { "file", &store_file_ops },
    { "http", &store_http_ops },
    { "https", &store_http_ops },
    { "s3", &store_s3_ops },
    { "gs", &store_gcs_ops },
    { "az", &store_azure_ops },
};

/* https://ACCOUNT.blob.core.windows.net/... without a query is Azure Blob Storage, signed with the
 * account's credentials; with a query (a SAS URL) it stays a plain https:// download. */
static int azure_blob_url(const char *uri)
{
    static const char suffix[] = ".blob.core.windows.net";
    if (strncasecmp(uri, "https://", 8) != 0 || strpbrk(uri, "?#"))
        return 0;
    const char *host = uri + 8;
    size_t n = strcspn(host, "/"), sn = sizeof suffix - 1;
    return n > sn && strncasecmp(host + n - sn, suffix, sn) == 0 && !memchr(host, '.', n - sn);
}

const struct store_ops *store_backend(const char *uri)
{
    char scheme[16];
    if (uri_scheme(uri, scheme, sizeof scheme) < 0)
        return NULL;
    if (azure_blob_url(uri))
        return &store_azure_ops;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i].scheme, scheme) == 0)
            return registry[i].ops;
    return NULL;
}

const char *store_schemes(void)
{
    static char list[128];
    if (!list[0]) {
        size_t off = 0;
        for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s://", i ? ", " : "", registry[i].scheme);
    }
    return list;
}

int store_check_uri(const char *uri, struct err *e)
{
    char scheme[16];
    if (uri_scheme(uri, scheme, sizeof scheme) < 0)
        return err_set(e, ERR_INVALID, "\"%s\" is not a URI (expected one of %s)", uri, store_schemes());
    if (!store_backend(uri))
        return err_set(e, ERR_UNSUPPORTED, "unsupported scheme \"%s\" (supported: %s)", scheme, store_schemes());
    return 0;
}

int store_open(const char *uri, struct store **out, struct err *e)
{
    if (store_check_uri(uri, e) < 0)
        return -1;
    struct store *s = xcalloc(1, sizeof *s);
    s->ops = store_backend(uri);
    if (s->ops->open && s->ops->open(s, uri, e) < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->ops->close)
        s->ops->close(s);
    free(s);
}

static int unsupported(const struct store *s, const char *op, struct err *e)
{
    return err_set(e, ERR_UNSUPPORTED, "the %s store does not support %s", s->ops->scheme, op);
}

int store_get(struct store *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
              struct store_stat *info, struct err *e)
{
    return s->ops->get ? s->ops->get(s, uri, offset, length, sink, ctx, info, e) : unsupported(s, "get", e);
}

int store_put(struct store *s, const char *uri, struct store_source *src, struct err *e)
{
    return s->ops->put ? s->ops->put(s, uri, src, e) : unsupported(s, "put", e);
}

int store_stat(struct store *s, const char *uri, struct store_stat *st, struct err *e)
{
    return s->ops->stat ? s->ops->stat(s, uri, st, e) : unsupported(s, "stat", e);
}

int store_list(struct store *s, const char *uri, store_list_fn fn, void *ctx, struct err *e)
{
    return s->ops->list ? s->ops->list(s, uri, fn, ctx, e) : unsupported(s, "list", e);
}

int store_remove(struct store *s, const char *uri, struct err *e)
{
    return s->ops->remove ? s->ops->remove(s, uri, e) : unsupported(s, "remove", e);
}

int store_presign(struct store *s, const char *uri, const char *method, int64_t expires_s, char **url,
                  struct err *e)
{
    return s->ops->presign ? s->ops->presign(s, uri, method, expires_s, url, e) : unsupported(s, "presign", e);
}

struct small_sink {
    struct buf b;
    size_t max;
};

static int small_sink(void *ctx, const void *data, size_t n, struct err *e)
{
    struct small_sink *ss = ctx;
    if (ss->b.len + n > ss->max)
        return err_set(e, ERR_INVALID, "object larger than %zu bytes", ss->max);
    buf_append(&ss->b, data, n);
    return 0;
}

int store_get_small(struct store *s, const char *uri, size_t max, char **data, size_t *len, struct err *e)
{
    struct small_sink ss = { .max = max };
    if (store_get(s, uri, 0, -1, small_sink, &ss, NULL, e) < 0) {
        buf_free(&ss.b);
        return -1;
    }
    if (!ss.b.data)
        buf_append(&ss.b, "", 0);
    *data = ss.b.data;
    if (len)
        *len = ss.b.len;
    return 0;
}

struct mem_source {
    const char *data;
    size_t len, off;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n, struct err *e)
{
    (void)e;
    struct mem_source *m = ctx;
    size_t left = m->len - m->off;
    if (n > left)
        n = left;
    memcpy(buf, m->data + m->off, n);
    m->off += n;
    return (ssize_t)n;
}

static int mem_rewind(void *ctx, struct err *e)
{
    (void)e;
    ((struct mem_source *)ctx)->off = 0;
    return 0;
}

int store_put_small(struct store *s, const char *uri, const void *data, size_t len, struct err *e)
{
    struct mem_source m = { .data = data, .len = len };
    struct store_source src = { .read = mem_read, .rewind = mem_rewind, .ctx = &m, .size = (int64_t)len };
    return store_put(s, uri, &src, e);
}

/* Digits from *p into an int64_t, advancing *p; -1 when there are none or they overflow. */
static int parse_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

int store_parse_length(const char *v, int64_t *out)
{
    if (!v || parse_digits(&v, out) < 0 || *v)
        return -1;
    return 0;
}

int store_parse_content_range(const char *v, int64_t *first, int64_t *last, int64_t *total)
{
    if (!v || strncmp(v, "bytes ", 6) != 0)
        return -1;
    v += 6;
    if (parse_digits(&v, first) < 0 || *v++ != '-' || parse_digits(&v, last) < 0 || *v++ != '/')
        return -1;
    if (strcmp(v, "*") == 0)
        *total = -1;
    else if (parse_digits(&v, total) < 0 || *v)
        return -1;
    if (*first > *last || (*total >= 0 && *last >= *total))
        return -1;
    return 0;
}

int store_check_range(const struct http_response *r, int64_t want, int64_t last, int64_t *total, struct err *e)
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
