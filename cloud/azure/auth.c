/* The Azure identity chain and its per-scope token cache (auth.h). */
#include "auth.h"
#include "creds.h"

#include "../../runtime/doctor.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Ask again 5 minutes before expiry, as the Azure SDKs do; a token that arrived with less than
 * that left is used until its last minute instead of being fetched again on every request. */
#define ADVISORY_S 300
#define MANDATORY_S 60

static const struct {
    const char *name;
    azure_source_fn fn;
} chain[] = {
    { "environment", azure_env_credential },
    { "workload identity", azure_workload_credential },
    { "managed identity", azure_msi_credential },
    { "Azure CLI", azure_cli_credential },
};
#define N_SOURCES (sizeof chain / sizeof chain[0])

struct entry {
    char *scope;
    struct azure_tok tok;
    time_t got;
};

/* One lock for the whole cache: a fetch is rare, and two threads wanting the same scope should
 * not both ask. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;
static size_t n_entries;
static int source = -1;          /* the chain's index that gave the first token; later fetches use it */
static const char *provider;     /* its name for messages */

char *azure_authority_host(void)
{
    const char *v = env_or("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com");
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    return xstrndup(v, n);
}

static const char *source_name(int i)
{
    return i == 0 ? azure_env_kind() : chain[i].name;
}

static int run_chain(const char *scope, struct azure_tok *t, struct err *e)
{
    struct buf why = { 0 };
    for (size_t i = 0; i < N_SOURCES; i++) {
        struct err se = { 0 };
        int configured = 0;
        memset(t, 0, sizeof *t);
        if (chain[i].fn(scope, t, &configured, &se) == 0) {
            source = (int)i;
            provider = source_name(source);
            log_debug("Azure token for %s from %s", scope, provider);
            buf_free(&why);
            return 0;
        }
        azure_tok_clear(t);
        buf_appendf(&why, "%s%s: %s", why.len ? "; " : "", chain[i].name, se.msg);
        /* A source whose settings are there and that failed ends the chain, rather than letting
         * another identity (with other rights) answer in its place. */
        if (configured || i + 1 == N_SOURCES) {
            err_set(e, ERR_AUTH, "no Azure token for %s (tried %s)", scope, why.data);
            e->transient = se.transient;
            e->http_status = se.http_status;
            buf_free(&why);
            return -1;
        }
    }
    return -1;
}

static int from_source(const char *scope, struct azure_tok *t, struct err *e)
{
    int configured = 0;
    memset(t, 0, sizeof *t);
    if (chain[source].fn(scope, t, &configured, e) < 0) {
        azure_tok_clear(t);
        return err_prefix(e, "Azure token for %s from %s: ", scope, source_name(source));
    }
    return 0;
}

static struct entry *find(const char *scope)
{
    for (size_t i = 0; i < n_entries; i++)
        if (strcmp(entries[i].scope, scope) == 0)
            return &entries[i];
    return NULL;
}

static int needs_refresh(const struct entry *en, time_t now)
{
    time_t left = en->tok.expires - now;
    int window = en->tok.expires - en->got > ADVISORY_S ? ADVISORY_S : MANDATORY_S;
    return left < window;
}

int azure_auth_token(const char *scope, char **token, time_t *expires, int force_refresh, struct err *e)
{
    *token = NULL;
    pthread_mutex_lock(&lock);
    time_t now = time(NULL);
    struct entry *en = find(scope);
    int rc = 0;
    if (!en || force_refresh || needs_refresh(en, now)) {
        struct azure_tok fresh;
        rc = source < 0 ? run_chain(scope, &fresh, e) : from_source(scope, &fresh, e);
        if (rc == 0) {
            if (!en) {
                entries = xrealloc(entries, (n_entries + 1) * sizeof *entries);
                en = &entries[n_entries++];
                en->scope = xstrdup(scope);
            } else {
                azure_tok_clear(&en->tok);
            }
            en->tok = fresh;
            en->got = now;
        } else if (en && !force_refresh && en->tok.expires > now) {
            /* Still valid for a while: keep going and try again on the next request. */
            log_warn("%s (the current token is valid for %llds more)", e->msg, (long long)(en->tok.expires - now));
            rc = 0;
        }
    }
    if (rc == 0) {
        *token = xstrdup(en->tok.token);
        if (expires)
            *expires = en->tok.expires;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int azure_auth_sign(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e)
{
    (void)req;
    char *token;
    if (azure_auth_token(ctx, &token, NULL, 0, e) < 0)
        return -1;
    char *line = xasprintf("Authorization: Bearer %s", token);
    *headers = curl_slist_append(*headers, line);
    azure_wipe_free(line);
    azure_wipe_free(token);
    return 0;
}

const char *azure_auth_provider(void)
{
    pthread_mutex_lock(&lock);
    const char *p = provider;
    pthread_mutex_unlock(&lock);
    return p;
}

void azure_auth_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_entries; i++) {
        azure_tok_clear(&entries[i].tok);
        free(entries[i].scope);
    }
    free(entries);
    entries = NULL;
    n_entries = 0;
    source = -1;
    provider = NULL;
    pthread_mutex_unlock(&lock);
}

cJSON *azure_jwt_claims(const char *token)
{
    const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    if (!b || b - a - 1 > 64 * 1024)
        return NULL;
    size_t n = (size_t)(b - a - 1);
    /* base64url to base64, padded to a multiple of 4 */
    char *std = xmalloc(n + 4);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        std[m++] = a[1 + i] == '-' ? '+' : a[1 + i] == '_' ? '/' : a[1 + i];
    while (m % 4)
        std[m++] = '=';
    unsigned char *raw = xmalloc(m / 4 * 3 + 1);
    int len = EVP_DecodeBlock(raw, (unsigned char *)std, (int)m);
    cJSON *claims = NULL;
    if (len >= 0) {
        while (len > 0 && m > 0 && std[m - 1] == '=') /* EVP_DecodeBlock counts padding as zero bytes */
            len--, m--;
        raw[len] = 0;
        claims = cJSON_ParseWithLength((const char *)raw, (size_t)len);
        if (claims && !cJSON_IsObject(claims)) {
            cJSON_Delete(claims);
            claims = NULL;
        }
    }
    free(std);
    free(raw);
    return claims;
}

int azure_doctor_lines(struct doctor *d, const char *what, const char *scope)
{
    char name[64], *token = NULL;
    time_t exp;
    struct err e = { 0 };
    snprintf(name, sizeof name, "%s credentials", what);
    if (azure_auth_token(scope, &token, &exp, 0, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, name, "%s (hint: docs/artifacts.md lists the Azure sources)", e.msg);
        return -1;
    }
    doctor_add(d, DOCTOR_OK, name, "Azure %s", azure_auth_provider());
    cJSON *claims = azure_jwt_claims(token);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    snprintf(name, sizeof name, "%s identity", what);
    const char *appid = json_str(claims, "appid"), *oid = json_str(claims, "oid");
    if (!appid)
        appid = json_str(claims, "azp"); /* v2.0 tokens */
    if (appid || oid)
        doctor_add(d, DOCTOR_OK, name, "appid %s, oid %s", appid ? appid : "(none)", oid ? oid : "(none)");
    else
        doctor_add(d, DOCTOR_SKIP, name, "the token names no appid or oid");
    cJSON_Delete(claims);
    return 0;
}
