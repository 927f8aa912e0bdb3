/* The az:// store's requests: addressing under the account's endpoint, the signing hook, Azure's
 * retry rules and error messages. */
#include "azure_internal.h"

#include "../cloud/azure/auth.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- addressing ---------------------------------------------------------------------- */

void az_path_free(struct az_path *p)
{
    free(p->container);
    free(p->blob);
}

#define AZ_HOST_SUFFIX ".blob.core.windows.net"

int az_parse_uri(const char *uri, struct az_path *p, char **account, struct err *e)
{
    memset(p, 0, sizeof *p);
    if (account)
        *account = NULL;
    const char *rest;
    if (strncasecmp(uri, "az://", 5) == 0) {
        rest = uri + 5;
    } else if (strncasecmp(uri, "https://", 8) == 0) {
        const char *host = uri + 8;
        size_t hn = strcspn(host, "/?#");
        size_t sn = strlen(AZ_HOST_SUFFIX);
        if (hn <= sn || strncasecmp(host + hn - sn, AZ_HOST_SUFFIX, sn) != 0 || memchr(host, '.', hn - sn))
            return err_set(e, ERR_INVALID, "not an Azure Blob URL (https://ACCOUNT%s/CONTAINER/BLOB)", AZ_HOST_SUFFIX);
        if (account) {
            *account = xstrndup(host, hn - sn);
            for (char *c = *account; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        }
        rest = host + hn;
        if (*rest == '/')
            rest++;
        if (strpbrk(rest, "?#")) {
            if (account) {
                free(*account);
                *account = NULL;
            }
            return err_set(e, ERR_INVALID, "an Azure Blob URL with a query is read by the https:// store, not this one");
        }
    } else {
        return err_set(e, ERR_INVALID, "not an az:// URI: %s", uri);
    }
    size_t n = strcspn(rest, "/");
    if (n < 3 || n > 63)
        goto bad;
    p->container = xstrndup(rest, n);
    /* Container names: lower-case letters, digits and single hyphens, not first or last
     * ("$root" and "$web" are the special ones). */
    if (strcmp(p->container, "$root") && strcmp(p->container, "$web")) {
        for (const char *c = p->container; *c; c++)
            if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || (*c == '-' && c[1] != '-')))
                goto bad;
        if (p->container[0] == '-' || p->container[n - 1] == '-')
            goto bad;
    }
    p->blob = xstrdup(rest[n] ? rest + n + 1 : "");
    if (strlen(p->blob) > 1024) {
        az_path_free(p);
        if (account) {
            free(*account);
            *account = NULL;
        }
        return err_set(e, ERR_INVALID, "a blob name has at most 1,024 characters");
    }
    return 0;
bad:
    az_path_free(p);
    memset(p, 0, sizeof *p);
    if (account) {
        free(*account);
        *account = NULL;
    }
    return err_set(e, ERR_INVALID, "an az:// URI needs a container name (3 to 63 lower-case letters, digits and "
                                   "single hyphens): az://CONTAINER/BLOB");
}

void az_target_free(struct az_target *t)
{
    free(t->url);
    free(t->path);
    free(t->query);
}

void az_make_target(const struct az_config *c, const char *container, const char *blob, const char *query,
                    struct az_target *t)
{
    /* The endpoint's own path ("/devstoreaccount1" on emulators) comes first. */
    const char *after_scheme = strstr(c->endpoint, "://");
    const char *ep_path = after_scheme ? strchr(after_scheme + 3, '/') : NULL;
    char *enc = blob ? uri_encode(blob, "/") : NULL;
    t->path = enc ? xasprintf("%s/%s/%s", ep_path ? ep_path : "", container, enc)
                  : xasprintf("%s/%s", ep_path ? ep_path : "", container);
    t->query = query && *query ? xstrdup(query) : NULL;
    size_t base = ep_path ? (size_t)(ep_path - c->endpoint) : strlen(c->endpoint);
    const char *sas = c->auth == AZ_AUTH_SAS ? c->sas : NULL;
    t->url = xasprintf("%.*s%s%s%s%s%s", (int)base, c->endpoint, t->path, t->query || sas ? "?" : "",
                       t->query ? t->query : "", t->query && sas ? "&" : "", sas ? sas : "");
    free(enc);
}

/* ---- Azure's errors and retry rules -------------------------------------------------- */

char *az_error_code(const struct http_response *r, char **message)
{
    if (message)
        *message = NULL;
    const char *h = http_header(r, "x-ms-error-code");
    char *code = h && *h ? xstrdup(h) : NULL;
    if (r->body.data && r->body.len && strstr(r->body.data, "<Error")) {
        if (!code)
            code = xml_find(r->body.data, r->body.len, "Error/Code");
        if (code && message) {
            *message = xml_find(r->body.data, r->body.len, "Error/Message");
            /* The service's message ends with RequestId and Time lines: keep the first line. */
            if (*message)
                (*message)[strcspn(*message, "\r\n")] = 0;
        }
    }
    return code;
}

int az_retryable_code(const char *code)
{
    static const char *const codes[] = { "ServerBusy", "OperationTimedOut", "InternalError", NULL };
    for (const char *const *c = codes; *c; c++)
        if (strcmp(code, *c) == 0)
            return 1;
    return 0;
}

/* On top of the HTTP layer's rules (5xx, 408, 429, resets): the codes the service documents as
 * transient, whatever status carries them; and a bearer token refused (401) is fetched afresh
 * once (the next attempt's sign hook picks up the new one). */
static int retry_hook(void *ctx, const struct http_response *r)
{
    struct az_sign *k = ctx;
    if (r->status >= 200 && r->status < 300)
        return -1;
    if (r->status == 401 && k->cfg->auth == AZ_AUTH_TOKEN && !k->refreshed) {
        k->refreshed = 1;
        char *tok = NULL;
        time_t exp;
        struct err e = { 0 };
        int ok = azure_auth_token(AZURE_SCOPE_STORAGE, &tok, &exp, 1, &e) == 0;
        if (tok)
            OPENSSL_cleanse(tok, strlen(tok));
        free(tok);
        return ok ? 1 : 0;
    }
    char *code = az_error_code(r, NULL);
    int d = code && az_retryable_code(code) ? 1 : -1;
    free(code);
    return d;
}

void az_explain(struct err *e, const struct http_response *r, const char *what, const char *uri)
{
    char red[512];
    uri_redact(uri, red, sizeof red);
    char *msg, *code = az_error_code(r, &msg);
    enum err_kind kind = e->kind;
    int transient = e->transient;
    long status = e->http_status;
    if (code) {
        if (!strcmp(code, "BlobNotFound") || !strcmp(code, "ContainerNotFound") ||
            !strcmp(code, "ResourceNotFound"))
            kind = ERR_NOT_FOUND;
        else if (!strcmp(code, "AuthenticationFailed") || !strcmp(code, "AuthorizationFailure") ||
                 !strcmp(code, "AuthorizationPermissionMismatch") || !strcmp(code, "InvalidAuthenticationInfo"))
            kind = ERR_AUTH;
        if (az_retryable_code(code))
            transient = 1;
        err_set(e, kind, "%s %s: HTTP %ld %s%s%s", what, red, r->status, code, msg ? ": " : "", msg ? msg : "");
    } else if (kind != ERR_CANCELLED) {
        char inner[sizeof e->msg];
        snprintf(inner, sizeof inner, "%s", e->msg);
        const char *sp = strchr(inner, ' ');
        const char *colon = sp && strncmp(sp + 1, "http", 4) == 0 ? strstr(sp, ": ") : NULL;
        err_set(e, kind, "%s %s: %s", what, red, colon ? colon + 2 : inner);
    }
    e->transient = transient;
    e->http_status = status;
    free(code);
    free(msg);
}

/* ---- requests ------------------------------------------------------------------------ */

void az_request_init(struct http_request *req, const char *method, const struct az_target *t, struct az_sign *k,
                     const struct az_config *cfg)
{
    memset(k, 0, sizeof *k);
    k->cfg = cfg;
    k->path = t->path;
    k->query = t->query;
    memset(req, 0, sizeof *req);
    req->method = method;
    req->url = t->url;
    req->sign = az_sign_hook;
    req->retry_hook = retry_hook;
    req->hook_ctx = k;
    req->path_as_is = 1;
}

int az_simple_request(struct az *s, const char *method, const struct az_target *t, const char *const *headers,
                      const char *body, struct http_response *resp, struct err *e)
{
    struct az_sign k;
    struct http_request req;
    az_request_init(&req, method, t, &k, &s->cfg);
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.max_body = 64u << 20;
    return http_perform(s->client, &req, resp, e);
}

void az_stat_from(const struct http_response *r, struct store_stat *st)
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

int az_head_blob(struct az *s, const char *uri, const struct az_path *p, struct store_stat *out, char md5[32],
                 struct err *e)
{
    struct az_target t;
    az_make_target(&s->cfg, p->container, p->blob, NULL, &t);
    struct http_response resp;
    int rc = az_simple_request(s, "HEAD", &t, NULL, NULL, &resp, e);
    if (rc == 0) {
        az_stat_from(&resp, out);
        if (md5) {
            const char *m = http_header(&resp, "content-md5");
            snprintf(md5, 32, "%s", m ? m : "");
        }
    } else {
        az_explain(e, &resp, "HEAD", uri);
    }
    http_response_free(&resp);
    az_target_free(&t);
    return rc;
}
