/* The az:// store's signatures, as the Blob service documents them ("Authorize with Shared Key",
 * "Create a service SAS", "Create a user delegation SAS"): the Shared Key string-to-sign of a
 * request (version 2015-02-21 and later: a zero Content-Length is signed as empty), the SAS
 * string-to-sign of version 2020-12-06 and later, HMAC-SHA256 with libcrypto; connection strings
 * and block ids. */
#include "azure_internal.h"

#include "../cloud/azure/auth.h"
#include "../runtime/timeutil.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- connection strings -------------------------------------------------------------- */

void az_conn_free(struct az_conn *c)
{
    free(c->protocol);
    free(c->account);
    if (c->key)
        memset(c->key, 0, strlen(c->key));
    free(c->key);
    if (c->sas)
        memset(c->sas, 0, strlen(c->sas));
    free(c->sas);
    free(c->blob_endpoint);
    free(c->suffix);
    memset(c, 0, sizeof *c);
}

int az_conn_parse(const char *s, struct az_conn *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ";");
        const char *eq = memchr(p, '=', n);
        while (n && isspace((unsigned char)*p))
            p++, n--;
        if (n == 0) {
            p += *p == ';';
            continue;
        }
        if (!eq || eq == p) {
            az_conn_free(c);
            return err_set(e, ERR_INVALID, "AZURE_STORAGE_CONNECTION_STRING: a part has no Name=value");
        }
        size_t kn = (size_t)(eq - p);
        char *v = xstrndup(eq + 1, n - kn - 1);
        char **slot = NULL;
#define IS(name) (kn == strlen(name) && strncasecmp(p, name, kn) == 0)
        if (IS("DefaultEndpointsProtocol"))
            slot = &c->protocol;
        else if (IS("AccountName"))
            slot = &c->account;
        else if (IS("AccountKey"))
            slot = &c->key;
        else if (IS("SharedAccessSignature"))
            slot = &c->sas;
        else if (IS("BlobEndpoint"))
            slot = &c->blob_endpoint;
        else if (IS("EndpointSuffix"))
            slot = &c->suffix;
        else if (IS("UseDevelopmentStorage"))
            c->dev = strcasecmp(v, "true") == 0;
#undef IS
        if (slot) {
            free(*slot);
            *slot = v;
        } else {
            free(v);
        }
        p += n;
        p += *p == ';';
    }
    return 0;
}

/* ---- encodings and digests ----------------------------------------------------------- */

char *az_base64(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

int az_base64_decode(const char *in, unsigned char **out, size_t *n)
{
    size_t len = strlen(in);
    if (len == 0 || len % 4)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)in[i]) && in[i] != '+' && in[i] != '/' && !(in[i] == '=' && i >= len - 2))
            return -1;
    if (in[len - 2] == '=' && in[len - 1] != '=')
        return -1;
    unsigned char *b = xmalloc(len / 4 * 3 + 1);
    int got = EVP_DecodeBlock(b, (const unsigned char *)in, (int)len);
    if (got < 0) {
        free(b);
        return -1;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    got -= (in[len - 1] == '=') + (in[len - 2] == '=');
    *out = b;
    *n = (size_t)got;
    return 0;
}

char *az_hmac_base64(const unsigned char *key, size_t key_len, const char *msg)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), mac, &mac_len);
    return az_base64(mac, mac_len);
}

void az_md5_base64(const void *data, size_t n, char out[25])
{
    unsigned char d[16];
    unsigned int dl = 0;
    EVP_Digest(data, n, d, &dl, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, 16);
}

void az_block_id(int n, char out[41])
{
    char raw[32];
    int len = snprintf(raw, sizeof raw, "stepop-block-%010d", n);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, len);
}

/* ---- Shared Key ---------------------------------------------------------------------- */

/* The value of header name in a curl_slist ("Name: value"), the last one given; NULL when
 * absent. An empty value ("Name:", curl's way of removing a header) counts as absent. */
static const char *slist_header(const struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);
    const char *v = NULL;
    for (; l; l = l->next)
        if (strncasecmp(l->data, name, n) == 0 && l->data[n] == ':') {
            const char *p = l->data + n + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            v = *p ? p : NULL;
        }
    return v;
}

struct kv {
    char *k, *v;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

/* Trims v and folds runs of whitespace into one space (outside quotes, as the rules say). */
static char *fold_ws(const char *v)
{
    while (isspace((unsigned char)*v))
        v++;
    char *out = xstrdup(v), *o = out;
    int space = 0, quoted = 0;
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        if (!quoted && isspace((unsigned char)*p)) {
            space = 1;
            continue;
        }
        if (space && o != out)
            *o++ = ' ';
        space = 0;
        *o++ = *p;
    }
    *o = 0;
    return out;
}

char *az_string_to_sign(const char *method, const struct curl_slist *headers, const char *account,
                        const char *path, const char *query)
{
    static const char *const std[] = { "Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
                                       "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
                                       "If-Unmodified-Since", "Range", NULL };
    struct buf b = { 0 };
    buf_appendf(&b, "%s\n", method);
    for (const char *const *h = std; *h; h++) {
        const char *v = slist_header(headers, *h);
        if (v && strcmp(*h, "Content-Length") == 0 && strcmp(v, "0") == 0)
            v = NULL;
        buf_appendf(&b, "%s\n", v ? v : "");
    }
    /* x-ms-* headers: lower-cased names, sorted, one each (the last given). */
    size_t n = 0, cap = 8;
    struct kv *hs = xmalloc(cap * sizeof *hs);
    for (const struct curl_slist *l = headers; l; l = l->next) {
        const char *colon = strchr(l->data, ':');
        if (!colon || strncasecmp(l->data, "x-ms-", 5) != 0)
            continue;
        char *name = xstrndup(l->data, (size_t)(colon - l->data));
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        size_t i;
        for (i = 0; i < n && strcmp(hs[i].k, name); i++)
            ;
        char *v = fold_ws(colon + 1);
        if (i < n) {
            free(name);
            free(hs[i].v);
            hs[i].v = v;
            continue;
        }
        if (n == cap)
            hs = xrealloc(hs, (cap *= 2) * sizeof *hs);
        hs[n].k = name;
        hs[n++].v = v;
    }
    qsort(hs, n, sizeof *hs, kv_cmp);
    for (size_t i = 0; i < n; i++) {
        buf_appendf(&b, "%s:%s\n", hs[i].k, hs[i].v);
        free(hs[i].k);
        free(hs[i].v);
    }
    /* The resource: /account/path, then each query parameter "\nname:value", names lower-cased
     * and sorted, values decoded, a name's values joined with commas in order. */
    buf_appendf(&b, "/%s%s", account, path && *path ? path : "/");
    n = 0;
    for (const char *q = query; q && *q;) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        char *rk = xstrndup(q, eq ? (size_t)(eq - q) : len);
        char *rv = eq ? xstrndup(eq + 1, len - (size_t)(eq - q) - 1) : xstrdup("");
        char *k, *v;
        if (uri_decode(rk, &k) < 0)
            k = xstrdup(rk);
        if (uri_decode(rv, &v) < 0)
            v = xstrdup(rv);
        free(rk);
        free(rv);
        for (char *c = k; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (n == cap)
            hs = xrealloc(hs, (cap *= 2) * sizeof *hs);
        hs[n].k = k;
        hs[n++].v = v;
        q += len;
        q += *q == '&';
    }
    qsort(hs, n, sizeof *hs, kv_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(hs[i].k, hs[i - 1].k))
            buf_appendf(&b, "\n%s:%s", hs[i].k, hs[i].v);
        else
            buf_appendf(&b, ",%s", hs[i].v);
    }
    for (size_t i = 0; i < n; i++) {
        free(hs[i].k);
        free(hs[i].v);
    }
    free(hs);
    if (!b.data)
        buf_append(&b, "", 0);
    return b.data;
}

int az_sign_hook(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e)
{
    struct az_sign *k = ctx;
    const struct az_config *c = k->cfg;
    char date[64];
    time_t now = c->fixed_now ? c->fixed_now : time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "x-ms-date: %a, %d %b %Y %H:%M:%S GMT", &tm);
    *headers = curl_slist_append(*headers, date);
    *headers = curl_slist_append(*headers, "x-ms-version: " AZ_VERSION);
    if (c->auth == AZ_AUTH_TOKEN)
        return azure_auth_sign((void *)AZURE_SCOPE_STORAGE, req, headers, e);
    if (c->auth != AZ_AUTH_KEY)
        return 0;
    /* libcurl sends Content-Length itself: sign what it will send. */
    char cl[48] = "";
    const char *method = req->method ? req->method : "GET";
    int has_body = req->body || req->body_read;
    if (has_body || !strcmp(method, "PUT") || !strcmp(method, "POST"))
        snprintf(cl, sizeof cl, "Content-Length: %lld",
                 (long long)(req->body ? (int64_t)req->body_len : has_body ? req->body_size : 0));
    struct curl_slist tail = { .data = cl, .next = NULL };
    struct curl_slist *last = *headers;
    while (last->next)
        last = last->next;
    if (cl[0])
        last->next = &tail;
    char *sts = az_string_to_sign(method, *headers, c->account, k->path, k->query);
    last->next = NULL;
    char *sig = az_hmac_base64(c->key, c->key_len, sts);
    char *auth = xasprintf("Authorization: SharedKey %s:%s", c->account, sig);
    *headers = curl_slist_append(*headers, auth);
    free(auth);
    free(sig);
    free(sts);
    return 0;
}

/* ---- SAS ----------------------------------------------------------------------------- */

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *sas_query(const char *se, const char *perms, const char *sig, const char *udk_part)
{
    char *esig = uri_encode(sig, "");
    char *ese = uri_encode(se, "");
    char *q = xasprintf("sv=%s&se=%s&sr=b&sp=%s%s&sig=%s", AZ_VERSION, ese, perms, udk_part ? udk_part : "", esig);
    free(esig);
    free(ese);
    return q;
}

char *az_service_sas(const char *account, const unsigned char *key, size_t key_len, const char *container,
                     const char *blob, const char *perms, time_t expiry, char **string_to_sign)
{
    char se[32];
    iso_time(expiry, se);
    /* permissions, start, expiry, resource, identifier, IP, protocol, version, resource type,
     * snapshot time, encryption scope, then the five response header overrides. */
    char *sts = xasprintf("%s\n\n%s\n/blob/%s/%s/%s\n\n\n\n%s\nb\n\n\n\n\n\n\n", perms, se, account, container, blob,
                          AZ_VERSION);
    char *sig = az_hmac_base64(key, key_len, sts);
    char *q = sas_query(se, perms, sig, NULL);
    free(sig);
    if (string_to_sign)
        *string_to_sign = sts;
    else
        free(sts);
    return q;
}

void az_udk_free(struct az_udk *k)
{
    free(k->oid);
    free(k->tid);
    free(k->start);
    free(k->expiry);
    free(k->service);
    free(k->version);
    if (k->value)
        memset(k->value, 0, strlen(k->value));
    free(k->value);
    memset(k, 0, sizeof *k);
}

char *az_user_delegation_sas(const char *account, const struct az_udk *k, const char *container, const char *blob,
                             const char *perms, time_t expiry, char **string_to_sign)
{
    char se[32];
    iso_time(expiry, se);
    unsigned char *key;
    size_t key_len;
    if (az_base64_decode(k->value, &key, &key_len) < 0)
        return NULL;
    /* permissions, start, expiry, resource, the key's oid, tid, start, expiry, service and
     * version, authorized and unauthorized object ids, correlation id, IP, protocol, version,
     * resource type, snapshot time, encryption scope, the five overrides. */
    char *sts = xasprintf("%s\n\n%s\n/blob/%s/%s/%s\n%s\n%s\n%s\n%s\n%s\n%s\n\n\n\n\n\n%s\nb\n\n\n\n\n\n\n", perms, se,
                          account, container, blob, k->oid, k->tid, k->start, k->expiry, k->service, k->version,
                          AZ_VERSION);
    char *sig = az_hmac_base64(key, key_len, sts);
    memset(key, 0, key_len);
    free(key);
    struct buf part = { 0 };
    const char *names[] = { "skoid", "sktid", "skt", "ske", "sks", "skv" };
    const char *vals[] = { k->oid, k->tid, k->start, k->expiry, k->service, k->version };
    for (int i = 0; i < 6; i++) {
        char *v = uri_encode(vals[i], "");
        buf_appendf(&part, "&%s=%s", names[i], v);
        free(v);
    }
    char *q = sas_query(se, perms, sig, part.data);
    buf_free(&part);
    free(sig);
    if (string_to_sign)
        *string_to_sign = sts;
    else
        free(sts);
    return q;
}
