/* Modal credentials and the headers of every call: see auth.h. No C TOML library is linked (and
 * Debian's, libtoml/tomlc99, are not among our dependencies): ~/.modal.toml is a few [profile]
 * tables of strings and booleans, which the small reader below takes. */
#include "auth.h"

#include "modal_api.h"

#include "../../runtime/log.h"
#include "../../runtime/timeutil.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the TOML subset ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A key or table name, bare or quoted, into out; the position after it, or NULL. */
static const char *toml_name(const char *p, char *out, size_t len)
{
    size_t n = 0;
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q && *p != '\n')
            if (n + 1 < len)
                out[n++] = *p++;
            else
                p++;
        if (*p != q)
            return NULL;
        p++;
    } else {
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '-')
            if (n + 1 < len)
                out[n++] = *p++;
            else
                p++;
        if (!n)
            return NULL;
    }
    out[n] = 0;
    return p;
}

/* A value: a basic or literal string, or a bare word (true, false, a number) as its text. */
static char *toml_value(const char *p)
{
    struct buf b = { 0 };
    if (*p == '"') {
        for (p++; *p && *p != '"' && *p != '\n'; p++) {
            char c = *p;
            if (c == '\\' && p[1]) {
                p++;
                c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
            }
            buf_append(&b, &c, 1);
        }
        if (*p != '"') {
            buf_free(&b);
            return NULL;
        }
    } else if (*p == '\'') {
        const char *end = strpbrk(p + 1, "'\n");
        if (!end || *end != '\'')
            return NULL;
        buf_append(&b, p + 1, (size_t)(end - p - 1));
    } else {
        size_t n = strcspn(p, " \t\r\n#");
        if (!n)
            return NULL;
        buf_append(&b, p, n);
    }
    return b.data ? b.data : xstrdup("");
}

/* Walks the text: for each key = value, calls fn(table, key, value); stops when fn returns 1. */
static int toml_walk(const char *text, int (*fn)(void *, const char *, const char *, const char *), void *ctx,
                     struct err *e)
{
    char table[256] = "", key[256];
    int lineno = 0;
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        lineno++;
        const char *p = skip_ws(line);
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p)
            continue;
        if (*p == '[') {
            p = toml_name(skip_ws(p + 1), table, sizeof table);
            if (!p || *(p = skip_ws(p)) != ']')
                return err_set(e, ERR_INVALID, "line %d: expected [profile]", lineno);
            continue;
        }
        p = toml_name(p, key, sizeof key);
        if (!p || *(p = skip_ws(p)) != '=')
            return err_set(e, ERR_INVALID, "line %d: expected key = value", lineno);
        char *v = toml_value(skip_ws(p + 1));
        if (!v)
            return err_set(e, ERR_INVALID, "line %d: a value stepop cannot read (strings and booleans only)", lineno);
        int stop = fn(ctx, table, key, v);
        OPENSSL_cleanse(v, strlen(v));
        free(v);
        if (stop)
            return 1;
    }
    return 0;
}

struct toml_find {
    const char *table, *key;
    char *out;
};

static int toml_find_fn(void *ctx, const char *table, const char *key, const char *value)
{
    struct toml_find *f = ctx;
    if (f->table ? strcmp(table, f->table) != 0 : !table[0])
        return 0;
    if (strcmp(key, f->key) != 0)
        return 0;
    if (!f->table && strcmp(value, "true") != 0)
        return 0;
    f->out = xstrdup(f->table ? value : table);
    return 1;
}

int modal_toml_get(const char *text, const char *profile, const char *key, char **out, struct err *e)
{
    struct toml_find f = { profile, key, NULL };
    *out = NULL;
    if (toml_walk(text, toml_find_fn, &f, e) < 0)
        return -1;
    *out = f.out;
    return 0;
}

int modal_toml_active(const char *text, char **profile, struct err *e)
{
    return modal_toml_get(text, NULL, "active", profile, e);
}

/* ---- the JWT's exp ---- */

int64_t modal_jwt_exp(const char *jwt)
{
    const char *a = strchr(jwt, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    if (!b || strchr(b + 1, '.'))
        return 0;
    size_t n = (size_t)(b - a - 1);
    char *s = xmalloc(n + 4);
    for (size_t i = 0; i < n; i++)
        s[i] = a[1 + i] == '-' ? '+' : a[1 + i] == '_' ? '/' : a[1 + i];
    while (n % 4)
        s[n++] = '=';
    s[n] = 0;
    unsigned char *raw = xmalloc(n + 1);
    int len = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n);
    free(s);
    int64_t exp = 0;
    if (len > 0) {
        /* EVP_DecodeBlock counts padding as zero bytes, which end the JSON early enough. */
        cJSON *j = cJSON_ParseWithLength((const char *)raw, (size_t)len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "exp");
        if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e12)
            exp = (int64_t)v->valuedouble;
        cJSON_Delete(j);
    }
    free(raw);
    return exp;
}

/* The auth token outlives one struct modal_auth: the follow loop polls with a fresh one each
 * time, and each would otherwise call AuthTokenGet. Kept for the same server and token id. */
static struct {
    char *server_url, *token_id, *token;
    int64_t refresh_at;
} token_cache;

static void cache_take(struct modal_auth *a)
{
    if (!token_cache.token || !a->token_id || strcmp(token_cache.server_url, a->server_url) != 0 ||
        strcmp(token_cache.token_id, a->token_id) != 0 || time_wall_ms() / 1000 >= token_cache.refresh_at)
        return;
    a->auth_token = xstrdup(token_cache.token);
    a->refresh_at = token_cache.refresh_at;
}

static void cache_keep(const struct modal_auth *a)
{
    if (!a->auth_token || !a->token_id || !a->server_url)
        return;
    free(token_cache.server_url);
    free(token_cache.token_id);
    if (token_cache.token)
        OPENSSL_cleanse(token_cache.token, strlen(token_cache.token));
    free(token_cache.token);
    token_cache.server_url = xstrdup(a->server_url);
    token_cache.token_id = xstrdup(a->token_id);
    token_cache.token = xstrdup(a->auth_token);
    token_cache.refresh_at = a->refresh_at;
}

/* ---- loading ---- */

static char *env_dup(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? xstrdup(v) : NULL;
}

int modal_auth_load(struct modal_auth *a, const char *server_url, struct err *e)
{
    memset(a, 0, sizeof *a);
    char *path = env_dup("MODAL_CONFIG_PATH");
    if (!path) {
        const char *home = getenv("HOME");
        path = xasprintf("%s/.modal.toml", home && home[0] ? home : ".");
    }
    char *text = NULL;
    size_t len = 0;
    char *tid = NULL, *tsec = NULL, *env = NULL, *url = NULL;
    int rc = 0;
    if (read_small_file(path, 1 << 20, &text, &len) == 0) {
        a->profile = env_dup("MODAL_PROFILE");
        if (!a->profile)
            rc = modal_toml_active(text, &a->profile, e);
        if (rc == 0 && a->profile &&
            (modal_toml_get(text, a->profile, "token_id", &tid, e) < 0 ||
             modal_toml_get(text, a->profile, "token_secret", &tsec, e) < 0 ||
             modal_toml_get(text, a->profile, "environment", &env, e) < 0 ||
             modal_toml_get(text, a->profile, "server_url", &url, e) < 0))
            rc = -1;
        if (rc < 0)
            err_prefix(e, "%s: ", path);
        OPENSSL_cleanse(text, len);
        free(text);
    }
    free(path);
    if (rc < 0) {
        free(tid);
        if (tsec)
            OPENSSL_cleanse(tsec, strlen(tsec));
        free(tsec);
        free(env);
        free(url);
        modal_auth_free(a);
        return -1;
    }
    /* The environment's variables win over the profile's keys, as in the SDK. */
#define PICK(field, var, fromfile)                                                                                     \
    do {                                                                                                               \
        a->field = env_dup(var);                                                                                       \
        if (!a->field) {                                                                                               \
            a->field = fromfile;                                                                                       \
            fromfile = NULL;                                                                                           \
        }                                                                                                              \
    } while (0)
    PICK(token_id, "MODAL_TOKEN_ID", tid);
    PICK(token_secret, "MODAL_TOKEN_SECRET", tsec);
    PICK(environment, "MODAL_ENVIRONMENT", env);
    PICK(server_url, "MODAL_SERVER_URL", url);
#undef PICK
    free(tid);
    if (tsec)
        OPENSSL_cleanse(tsec, strlen(tsec));
    free(tsec);
    free(env);
    free(url);
    if (server_url) {
        free(a->server_url);
        a->server_url = xstrdup(server_url);
    }
    if (!a->server_url)
        a->server_url = xstrdup(MODAL_DEFAULT_SERVER);
    if (!a->environment)
        a->environment = xstrdup("");
    const char *h = strstr(a->server_url, "://");
    h = h ? h + 3 : a->server_url;
    size_t hl = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    a->host = xstrndup(h, hl);
    cache_take(a);
    return 0;
}

int modal_auth_require(const struct modal_auth *a, struct err *e)
{
    if (!a->token_id || !a->token_secret)
        return err_set(e, ERR_AUTH, "no Modal credentials: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, or run `modal "
                                    "token set` (a profile in ~/.modal.toml, or MODAL_CONFIG_PATH; MODAL_PROFILE "
                                    "picks one)%s%s", a->profile ? "; profile " : "", a->profile ? a->profile : "");
    return 0;
}

static void cleanse_free(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void modal_auth_free(struct modal_auth *a)
{
    cache_keep(a);
    free(a->server_url);
    free(a->token_id);
    cleanse_free(a->token_secret);
    free(a->environment);
    free(a->profile);
    free(a->host);
    cleanse_free(a->auth_token);
    memset(a, 0, sizeof *a);
}

/* Fetches a new auth token (AuthTokenGet); the old one stays when the fetch fails and it has
 * not expired yet, as the SDK does. */
static int modal_auth_refresh(struct modal_auth *a, struct err *e)
{
    struct buf req = { 0 }, resp = { 0 };
    a->fetching = 1;
    int rc = grpc_unary(a->ch, "AuthTokenGet", &req, &resp, 30000, e);
    a->fetching = 0;
    char *token = NULL;
    if (rc == 0 && modal_decode_auth_token(&resp, &token, e) == 0 && token && token[0]) {
        int64_t now = time_wall_ms() / 1000, exp = modal_jwt_exp(token);
        /* A token without exp is kept 20 minutes (the SDK's default); either way it is fetched
         * again after about 80% of its life. */
        int64_t life = exp > now ? exp - now : 1200;
        cleanse_free(a->auth_token);
        a->auth_token = token;
        token = NULL;
        a->refresh_at = now + life * 4 / 5;
    } else if (rc == 0) {
        rc = err_set(e, ERR_AUTH, "AuthTokenGet: the answer holds no token");
    }
    cleanse_free(token);
    buf_free(&resp);
    return rc;
}

int modal_auth_reauth(void *ctx)
{
    struct modal_auth *a = ctx;
    if (!a->auth_token)
        return 0;
    cleanse_free(a->auth_token);
    a->auth_token = NULL;
    if (token_cache.token) {
        OPENSSL_cleanse(token_cache.token, strlen(token_cache.token));
        free(token_cache.token);
        token_cache.token = NULL;
    }
    return 1;
}

int modal_auth_headers(void *ctx, const char *method, struct curl_slist **headers, struct err *e)
{
    struct modal_auth *a = ctx;
    if (modal_auth_require(a, e) < 0)
        return -1;
    if (strcmp(method, "AuthTokenGet") != 0 && !a->fetching && a->ch &&
        (!a->auth_token || time_wall_ms() / 1000 >= a->refresh_at)) {
        struct err fe = { 0 };
        if (modal_auth_refresh(a, &fe) < 0) {
            if (!a->auth_token) {
                *e = fe;
                return err_prefix(e, "getting a Modal auth token: ");
            }
            log_debug("refreshing the Modal auth token: %s (the current one is kept)", fe.msg);
        }
    }
    char *line;
    *headers = curl_slist_append(*headers, "x-modal-client-type: " MODAL_CLIENT_TYPE);
    *headers = curl_slist_append(*headers, "x-modal-client-version: " MODAL_CLIENT_VERSION);
    *headers = curl_slist_append(*headers, "x-modal-libmodal-version: stepop/" STEPOP_VERSION
                                           " (modal-js/" MODAL_SDK_PINNED " protocol)");
    line = xasprintf("x-modal-token-id: %s", a->token_id);
    *headers = curl_slist_append(*headers, line);
    free(line);
    line = xasprintf("x-modal-token-secret: %s", a->token_secret);
    *headers = curl_slist_append(*headers, line);
    cleanse_free(line);
    line = xasprintf("x-modal-host: %s", a->host);
    *headers = curl_slist_append(*headers, line);
    free(line);
    if (a->auth_token && strcmp(method, "AuthTokenGet") != 0) {
        line = xasprintf("x-modal-auth-token: %s", a->auth_token);
        *headers = curl_slist_append(*headers, line);
        cleanse_free(line);
    }
    return 0;
}
