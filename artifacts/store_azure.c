/* az:// store: Azure Blob Storage (block blobs), az://CONTAINER/BLOB in the account named by
 * AZURE_STORAGE_ACCOUNT, or https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB. Credentials, in
 * order: a connection string (AZURE_STORAGE_CONNECTION_STRING: AccountName, AccountKey or
 * SharedAccessSignature, BlobEndpoint for emulators), an account key (AZURE_STORAGE_KEY, Shared
 * Key signing), a SAS token (AZURE_STORAGE_SAS_TOKEN), else a bearer token from the Azure
 * identity chain (cloud/azure/auth.h). Uploads above a threshold go out as blocks in parallel,
 * downloads as parallel ranged GETs pinned to the ETag, through the shared transfer engine
 * (parallel.h). This file holds the configuration and the small operations; azure_request.c the
 * addressing and errors, azure_sign.c the signatures, azure_get.c and azure_put.c the transfers.
 * Blob names are taken literally from the URI: "az://c/a%20b" is the blob "a%20b". */
#include "azure_internal.h"

#include "../cloud/azure/auth.h"
#include "../runtime/doctor.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/url.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Azurite's and the old storage emulator's well-known account (public, in Microsoft's docs). */
#define AZ_DEV_ACCOUNT "devstoreaccount1"
#define AZ_DEV_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

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

static void config_free(struct az_config *c)
{
    free(c->endpoint);
    free(c->account);
    if (c->key)
        memset(c->key, 0, c->key_len);
    free(c->key);
    if (c->sas)
        memset(c->sas, 0, strlen(c->sas));
    free(c->sas);
}

static int set_key(struct az_config *c, const char *b64, const char *what, struct err *e)
{
    if (az_base64_decode(b64, &c->key, &c->key_len) < 0)
        return err_set(e, ERR_INVALID, "%s: the account key is not base64", what);
    c->auth = AZ_AUTH_KEY;
    return 0;
}

static void set_sas(struct az_config *c, const char *sas)
{
    c->sas = xstrdup(sas + (*sas == '?'));
    c->auth = AZ_AUTH_SAS;
}

static int set_endpoint(struct az_config *c, const char *ep, const char *what, struct err *e)
{
    struct url u;
    if (url_parse(ep, &u, e) < 0)
        return err_prefix(e, "%s: ", what);
    int ok = (!strcmp(u.scheme, "http") || !strcmp(u.scheme, "https")) && !u.query && !u.has_userinfo;
    url_free(&u);
    if (!ok)
        return err_set(e, ERR_INVALID, "%s: the blob endpoint must be an http:// or https:// URL without a query", what);
    c->endpoint = xstrdup(ep);
    size_t n = strlen(c->endpoint);
    while (n && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = 0;
    return 0;
}

/* uri_account: the account an https:// URI names, or NULL for az://. */
static int config_load(struct az_config *c, const char *uri_account, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->auth = AZ_AUTH_TOKEN;
    const char *cs = getenv("AZURE_STORAGE_CONNECTION_STRING");
    const char *env_account = getenv("AZURE_STORAGE_ACCOUNT");
    struct az_conn conn = { 0 };
    if (cs && *cs && az_conn_parse(cs, &conn, e) < 0)
        return -1;
    if (conn.dev) {
        c->account = xstrdup(AZ_DEV_ACCOUNT);
        c->endpoint = xstrdup("http://127.0.0.1:10000/" AZ_DEV_ACCOUNT);
        set_key(c, AZ_DEV_KEY, "UseDevelopmentStorage", e);
    } else if (cs && *cs && (!uri_account || (conn.account && !strcmp(conn.account, uri_account)))) {
        const char *what = "AZURE_STORAGE_CONNECTION_STRING";
        if (!conn.account && !conn.blob_endpoint) {
            az_conn_free(&conn);
            return err_set(e, ERR_INVALID, "%s: has neither AccountName nor BlobEndpoint", what);
        }
        c->account = xstrdup(conn.account ? conn.account : "");
        if (conn.key && set_key(c, conn.key, what, e) < 0) {
            az_conn_free(&conn);
            return -1;
        }
        if (!conn.key && conn.sas)
            set_sas(c, conn.sas);
        if (c->auth == AZ_AUTH_KEY && !conn.account) {
            az_conn_free(&conn);
            return err_set(e, ERR_INVALID, "%s: AccountKey needs AccountName", what);
        }
        char *ep = conn.blob_endpoint ? xstrdup(conn.blob_endpoint)
                                      : xasprintf("%s://%s.blob.%s", conn.protocol ? conn.protocol : "https",
                                                  conn.account, conn.suffix ? conn.suffix : "core.windows.net");
        int rc = set_endpoint(c, ep, what, e);
        free(ep);
        if (rc < 0) {
            az_conn_free(&conn);
            return -1;
        }
    } else {
        const char *account = uri_account ? uri_account : env_account;
        if (!account || !*account) {
            az_conn_free(&conn);
            return err_set(e, ERR_INVALID, "az:// needs a storage account: set AZURE_STORAGE_ACCOUNT (or "
                                           "AZURE_STORAGE_CONNECTION_STRING)");
        }
        c->account = xstrdup(account);
        /* STEPOP_AZURE_BLOB_ENDPOINT: another endpoint for az:// (an emulator, a private link). */
        const char *ep = getenv("STEPOP_AZURE_BLOB_ENDPOINT");
        if (!uri_account && ep && *ep) {
            if (set_endpoint(c, ep, "STEPOP_AZURE_BLOB_ENDPOINT", e) < 0) {
                az_conn_free(&conn);
                return -1;
            }
        } else {
            c->endpoint = xasprintf("https://%s.blob.core.windows.net", account);
        }
        /* The key or SAS in the environment belongs to AZURE_STORAGE_ACCOUNT: never send it to
         * another account an https:// URI names. */
        int mine = !uri_account || !env_account || !*env_account || !strcmp(env_account, uri_account);
        const char *key = getenv("AZURE_STORAGE_KEY"), *sas = getenv("AZURE_STORAGE_SAS_TOKEN");
        if (mine && key && *key) {
            if (set_key(c, key, "AZURE_STORAGE_KEY", e) < 0) {
                az_conn_free(&conn);
                return -1;
            }
        } else if (mine && sas && *sas) {
            set_sas(c, sas);
        }
    }
    az_conn_free(&conn);
    long conc = 8;
    const char *cv = getenv("STEPOP_AZURE_CONCURRENCY");
    if (cv && *cv) {
        char *end;
        conc = strtol(cv, &end, 10);
        if (*end || conc < 1 || conc > 64)
            return err_set(e, ERR_INVALID, "STEPOP_AZURE_CONCURRENCY: expected 1 to 64, got \"%s\"", cv);
    }
    c->concurrency = (int)conc;
    const char *now = getenv("STEPOP_NOW");
    if (now && *now && time_parse(now, &c->fixed_now) < 0)
        return err_set(e, ERR_INVALID, "STEPOP_NOW: expected RFC 3339 or YYYYMMDDTHHMMSSZ, got \"%s\"", now);
    if (env_size("STEPOP_AZURE_PUT_THRESHOLD", 16 * AZ_MIB, 0, AZ_MAX_SINGLE, &c->threshold, e) < 0 ||
        env_size("STEPOP_AZURE_BLOCK_SIZE", 8 * AZ_MIB, AZ_MIB, AZ_MAX_BLOCK, &c->block_size, e) < 0 ||
        env_size("STEPOP_AZURE_MEMORY", 256 * AZ_MIB, AZ_MIB, 64 * AZ_MAX_BLOCK, &c->mem_budget, e) < 0)
        return -1;
    return 0;
}

/* ---- open, stat, list, remove, presign ----------------------------------------------- */

static int az_open(struct store *st, const char *uri, struct err *e)
{
    struct az_path p;
    char *account;
    if (az_parse_uri(uri, &p, &account, e) < 0)
        return -1;
    az_path_free(&p);
    if (http_global_init(e) < 0) {
        free(account);
        return -1;
    }
    struct az *s = xcalloc(1, sizeof *s);
    int rc = config_load(&s->cfg, account, e);
    free(account);
    if (rc < 0) {
        config_free(&s->cfg);
        free(s);
        return -1;
    }
    s->client = http_client_new();
    st->state = s;
    return 0;
}

static void az_close(struct store *st)
{
    struct az *s = st->state;
    http_client_free(s->client);
    config_free(&s->cfg);
    free(s);
}

struct list_page {
    const char *prefix;
    size_t prefix_len;
    store_list_fn fn;
    void *ctx;
    char *name, *next_marker;
    int64_t size;
    time_t mtime;
    int count, max; /* max: stop after this many entries (0: all) */
};

static int list_cb(void *ctx, const char *path, const char *text, struct err *e)
{
    struct list_page *lp = ctx;
    if (lp->max && lp->count >= lp->max)
        return 0;
    if (!strcmp(path, "EnumerationResults/Blobs/Blob/Name")) {
        free(lp->name);
        lp->name = xstrdup(text);
    } else if (!strcmp(path, "EnumerationResults/Blobs/Blob/Properties/Content-Length")) {
        if (store_parse_length(text, &lp->size) < 0)
            lp->size = -1;
    } else if (!strcmp(path, "EnumerationResults/Blobs/Blob/Properties/Last-Modified")) {
        time_t t = curl_getdate(text, NULL);
        lp->mtime = t > 0 ? t : 0;
    } else if (!strcmp(path, "EnumerationResults/NextMarker")) {
        free(lp->next_marker);
        lp->next_marker = *text ? xstrdup(text) : NULL;
    } else if (!strcmp(path, "EnumerationResults/Blobs/Blob") ||
               !strcmp(path, "EnumerationResults/Blobs/BlobPrefix/Name")) {
        int is_prefix = strcmp(path, "EnumerationResults/Blobs/Blob") != 0;
        const char *full = is_prefix ? text : lp->name;
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

/* List Blobs under prefix with delimiter '/', page after page (NextMarker). */
static int list_prefix(struct az *s, const char *uri, const char *container, const char *prefix, int max,
                       store_list_fn fn, void *ctx, int *count, struct err *e)
{
    struct list_page lp = { .prefix = prefix, .prefix_len = strlen(prefix), .fn = fn, .ctx = ctx, .max = max };
    int rc = 0;
    char *pfx = uri_encode(prefix, "");
    int page = 5000;
    const char *pv = getenv("STEPOP_AZURE_LIST_PAGE"); /* tests: small pages to follow markers */
    if (pv && atoi(pv) > 0 && atoi(pv) < page)
        page = atoi(pv);
    do {
        char *mk = lp.next_marker ? uri_encode(lp.next_marker, "") : NULL;
        char *q = xasprintf("restype=container&comp=list&delimiter=%%2F&prefix=%s&maxresults=%d%s%s", pfx,
                            max && max < page ? max : page, mk ? "&marker=" : "", mk ? mk : "");
        free(mk);
        struct az_target t;
        az_make_target(&s->cfg, container, NULL, q, &t);
        free(q);
        struct http_response resp;
        rc = az_simple_request(s, "GET", &t, NULL, NULL, &resp, e);
        if (rc < 0) {
            az_explain(e, &resp, "List Blobs", uri);
        } else {
            free(lp.next_marker);
            lp.next_marker = NULL;
            rc = xml_walk(resp.body.data, resp.body.len, list_cb, &lp, e);
            if (rc < 0 && e->kind == ERR_INVALID)
                err_prefix(e, "List Blobs answer: ");
        }
        http_response_free(&resp);
        az_target_free(&t);
    } while (rc == 0 && lp.next_marker && !(max && lp.count >= max));
    free(pfx);
    free(lp.name);
    free(lp.next_marker);
    if (count)
        *count = lp.count;
    return rc;
}

static int az_list(struct store *st, const char *uri, store_list_fn fn, void *ctx, struct err *e)
{
    struct az *s = st->state;
    struct az_path p;
    if (az_parse_uri(uri, &p, NULL, e) < 0)
        return -1;
    char *prefix = !*p.blob || str_has_suffix(p.blob, "/") ? xstrdup(p.blob) : xasprintf("%s/", p.blob);
    int rc = list_prefix(s, uri, p.container, prefix, 0, fn, ctx, NULL, e);
    free(prefix);
    az_path_free(&p);
    return rc;
}

static int az_stat(struct store *st, const char *uri, struct store_stat *out, struct err *e)
{
    struct az *s = st->state;
    struct az_path p;
    if (az_parse_uri(uri, &p, NULL, e) < 0)
        return -1;
    int rc = -1, headed = *p.blob && !str_has_suffix(p.blob, "/");
    if (headed) {
        rc = az_head_blob(s, uri, &p, out, NULL, e);
        if (rc == 0 || e->kind != ERR_NOT_FOUND)
            goto out;
    }
    /* Not a blob: a "directory" when something lies under name/. */
    char *prefix = !*p.blob || str_has_suffix(p.blob, "/") ? xstrdup(p.blob) : xasprintf("%s/", p.blob);
    int count = 0;
    struct err le = { 0 };
    if (list_prefix(s, uri, p.container, prefix, 1, NULL, NULL, &count, &le) < 0) {
        if (!headed)
            *e = le;
        rc = -1;
    } else if (count > 0 || !*p.blob) {
        memset(out, 0, sizeof *out);
        out->size = -1;
        out->is_dir = 1;
        rc = 0;
    } else {
        char red[512];
        uri_redact(uri, red, sizeof red);
        rc = err_set(e, ERR_NOT_FOUND, "%s: no such blob or prefix", red);
    }
    free(prefix);
out:
    az_path_free(&p);
    return rc;
}

static int az_remove(struct store *st, const char *uri, struct err *e)
{
    struct az *s = st->state;
    struct az_path p;
    if (az_parse_uri(uri, &p, NULL, e) < 0)
        return -1;
    int rc;
    if (!*p.blob) {
        rc = err_set(e, ERR_INVALID, "rm needs a blob name, not a container");
    } else {
        /* Azure answers 404 BlobNotFound for a missing blob: exit 3 as on the other stores. */
        struct az_target t;
        az_make_target(&s->cfg, p.container, p.blob, NULL, &t);
        const char *hdr[] = { "x-ms-delete-snapshots: include", NULL };
        struct http_response resp;
        rc = az_simple_request(s, "DELETE", &t, hdr, NULL, &resp, e);
        if (rc < 0)
            az_explain(e, &resp, "Delete Blob", uri);
        http_response_free(&resp);
        az_target_free(&t);
    }
    az_path_free(&p);
    return rc;
}

struct udk_walk {
    struct az_udk *k;
};

static int udk_cb(void *ctx, const char *path, const char *text, struct err *e)
{
    (void)e;
    struct az_udk *k = ((struct udk_walk *)ctx)->k;
    static const struct {
        const char *path;
        size_t off;
    } fields[] = {
        { "UserDelegationKey/SignedOid", offsetof(struct az_udk, oid) },
        { "UserDelegationKey/SignedTid", offsetof(struct az_udk, tid) },
        { "UserDelegationKey/SignedStart", offsetof(struct az_udk, start) },
        { "UserDelegationKey/SignedExpiry", offsetof(struct az_udk, expiry) },
        { "UserDelegationKey/SignedService", offsetof(struct az_udk, service) },
        { "UserDelegationKey/SignedVersion", offsetof(struct az_udk, version) },
        { "UserDelegationKey/Value", offsetof(struct az_udk, value) },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!strcmp(path, fields[i].path)) {
            char **slot = (char **)((char *)k + fields[i].off);
            free(*slot);
            *slot = xstrdup(text);
        }
    return 0;
}

/* Get User Delegation Key, valid from now to expiry, with the identity chain's token. */
static int get_udk(struct az *s, time_t now, time_t expiry, struct az_udk *k, struct err *e)
{
    memset(k, 0, sizeof *k);
    char st[32], se[32];
    struct tm tm;
    time_t start = now - 300; /* a little earlier, for clocks that differ */
    gmtime_r(&start, &tm);
    strftime(st, sizeof st, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gmtime_r(&expiry, &tm);
    strftime(se, sizeof se, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *body = xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>%s</Start><Expiry>%s</Expiry>"
                           "</KeyInfo>", st, se);
    const char *after = strstr(s->cfg.endpoint, "://");
    const char *ep_path = after ? strchr(after + 3, '/') : NULL;
    size_t base = ep_path ? (size_t)(ep_path - s->cfg.endpoint) : strlen(s->cfg.endpoint);
    struct az_target t = { .path = xasprintf("%s/", ep_path ? ep_path : ""),
                           .query = xstrdup("restype=service&comp=userdelegationkey") };
    t.url = xasprintf("%.*s%s?%s", (int)base, s->cfg.endpoint, t.path, t.query);
    const char *hdr[] = { "Content-Type: application/xml", NULL };
    struct http_response resp;
    int rc = az_simple_request(s, "POST", &t, hdr, body, &resp, e);
    if (rc < 0) {
        az_explain(e, &resp, "Get User Delegation Key", s->cfg.endpoint);
    } else {
        struct udk_walk w = { k };
        rc = xml_walk(resp.body.data, resp.body.len, udk_cb, &w, e);
        if (rc == 0 && (!k->oid || !k->tid || !k->start || !k->expiry || !k->service || !k->version || !k->value))
            rc = err_set(e, ERR_HTTP, "Get User Delegation Key: the answer lacks a field of the key");
    }
    if (rc < 0)
        az_udk_free(k);
    http_response_free(&resp);
    az_target_free(&t);
    free(body);
    return rc;
}

static int az_presign(struct store *st, const char *uri, const char *method, int64_t expires_s, char **url,
                      struct err *e)
{
    struct az *s = st->state;
    /* A user delegation key lasts 7 days at most; an account-key SAS has no limit, but the same
     * bound keeps the two alike. */
    if (expires_s < 1 || expires_s > 604800)
        return err_set(e, ERR_INVALID, "a presigned URL lasts from 1 second to 7 days");
    const char *perms = !strcmp(method, "GET") || !strcmp(method, "HEAD") ? "r"
                        : !strcmp(method, "PUT")                          ? "cw"
                        : !strcmp(method, "DELETE")                       ? "d"
                                                                          : NULL;
    if (!perms)
        return err_set(e, ERR_INVALID, "a SAS cannot grant %s", method);
    struct az_path p;
    if (az_parse_uri(uri, &p, NULL, e) < 0)
        return -1;
    int rc = 0;
    time_t now = s->cfg.fixed_now ? s->cfg.fixed_now : time(NULL);
    char *sas = NULL;
    if (!*p.blob || str_has_suffix(p.blob, "/")) {
        rc = err_set(e, ERR_INVALID, "presign needs a blob name");
    } else if (s->cfg.auth == AZ_AUTH_KEY) {
        sas = az_service_sas(s->cfg.account, s->cfg.key, s->cfg.key_len, p.container, p.blob, perms,
                             now + expires_s, NULL);
    } else if (s->cfg.auth == AZ_AUTH_TOKEN) {
        struct az_udk k;
        rc = get_udk(s, now, now + expires_s, &k, e);
        if (rc == 0) {
            sas = az_user_delegation_sas(s->cfg.account, &k, p.container, p.blob, perms, now + expires_s, NULL);
            if (!sas)
                rc = err_set(e, ERR_HTTP, "Get User Delegation Key: the key's value is not base64");
            az_udk_free(&k);
        }
    } else {
        rc = err_set(e, ERR_UNSUPPORTED, "presign needs an account key or an Entra identity: a SAS token cannot "
                                         "sign another");
    }
    if (sas) {
        struct az_target t;
        struct az_config plain = s->cfg;
        plain.auth = AZ_AUTH_KEY; /* the URL without the store's own SAS */
        az_make_target(&plain, p.container, p.blob, NULL, &t);
        *url = xasprintf("%s?%s", t.url, sas);
        az_target_free(&t);
        free(sas);
    }
    az_path_free(&p);
    return rc;
}

static int az_get(struct store *st, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                  struct store_stat *info, struct err *e)
{
    return az_get_blob(st->state, uri, offset, length, sink, ctx, info, e);
}

static int az_put(struct store *st, const char *uri, struct store_source *src, struct err *e)
{
    return az_put_blob(st->state, uri, src, e);
}

/* `stepop doctor`: which credentials the store signs with (a key or a SAS as configured, never
 * their value), and for Entra ID the source and the token's appid and oid. */
static void az_doctor(struct store *st, const char *root, struct doctor *d)
{
    (void)root;
    struct az *a = st->state;
    if (a->cfg.auth == AZ_AUTH_KEY)
        doctor_add(d, DOCTOR_OK, "store credentials", "account key of %s (Shared Key)", a->cfg.account);
    else if (a->cfg.auth == AZ_AUTH_SAS)
        doctor_add(d, DOCTOR_OK, "store credentials", "SAS token for account %s", a->cfg.account);
    else
        azure_doctor_lines(d, "store", AZURE_SCOPE_STORAGE);
}

const struct store_ops store_azure_ops = {
    .scheme = "az",
    .summary = "Azure Blob Storage (Shared Key, SAS or Entra ID; blocks uploaded and ranges downloaded in parallel)",
    .open = az_open,
    .close = az_close,
    .get = az_get,
    .put = az_put,
    .stat = az_stat,
    .list = az_list,
    .remove = az_remove,
    .presign = az_presign,
    .doctor = az_doctor,
};
