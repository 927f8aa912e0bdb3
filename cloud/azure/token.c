/* The Microsoft identity platform's v2 token endpoint (POST AUTHORITY/TENANT/oauth2/v2.0/token,
 * grant client_credentials): the environment source (a client secret, or a certificate sent as a
 * signed client assertion) and workload identity (the federated token file as the assertion). */
#include "auth.h"
#include "creds.h"

#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/uri.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

void azure_wipe_free(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void azure_tok_clear(struct azure_tok *t)
{
    azure_wipe_free(t->token);
    t->token = NULL;
    t->expires = 0;
}

char *azure_scope_resource(const char *scope)
{
    size_t n = strlen(scope);
    if (str_has_suffix(scope, "/.default"))
        n -= strlen("/.default");
    return xstrndup(scope, n);
}

int azure_json_seconds(const cJSON *obj, const char *key, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v)) {
        *out = (long long)v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v) && v->valuestring[0]) {
        char *end;
        errno = 0;
        long long n = strtoll(v->valuestring, &end, 10);
        if (errno == 0 && *end == '\0') {
            *out = n;
            return 1;
        }
    }
    return 0;
}

/* The first line of an error description: AADSTS messages go on with trace and correlation ids. */
static void first_line(const char *s, char *out, size_t cap)
{
    size_t n = strcspn(s, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

int azure_parse_token_answer(const char *body, size_t len, long status, const char *what, struct azure_tok *t,
                             struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (json_parse(body ? body : "", len, what, &j, &je) < 0) {
        if (status >= 400)
            return err_set(e, status == 401 || status == 403 ? ERR_AUTH : ERR_HTTP, "%s answered HTTP %ld", what,
                           status);
        return err_set(e, ERR_AUTH, "%s answered with something that is not JSON", what);
    }
    const char *error = json_str(j, "error"), *desc = json_str(j, "error_description");
    const char *token = json_str(j, "access_token");
    long long in = 0, on = 0;
    int rc = 0;
    if (error || status >= 400) {
        char line[512];
        first_line(desc ? desc : "", line, sizeof line);
        rc = err_set(e, ERR_AUTH, "%s refused: HTTP %ld %s%s%s", what, status, error ? error : "(no error code)",
                     line[0] ? ": " : "", line);
    } else if (!token || !*token) {
        rc = err_set(e, ERR_AUTH, "%s answered without access_token", what);
    } else if (azure_json_seconds(j, "expires_in", &in) && in > 0) {
        t->expires = time(NULL) + (time_t)in;
    } else if (azure_json_seconds(j, "expires_on", &on) && on > 0) {
        t->expires = (time_t)on;
    } else {
        rc = err_set(e, ERR_AUTH, "%s answered without expires_in", what);
    }
    if (rc == 0)
        t->token = xstrdup(token);
    json_delete_wiped(j);
    return rc;
}

/* The authority: https, or plain http to this machine only (tests, emulators); a bare host name
 * gets https:// as the SDKs give it. */
static int authority(char **out, struct err *e)
{
    char *host = azure_authority_host();
    if (!strstr(host, "://")) {
        char *full = xasprintf("https://%s", host);
        free(host);
        host = full;
    }
    struct url u;
    int rc = 0;
    if (url_parse(host, &u, e) < 0) {
        free(host);
        return err_prefix(e, "AZURE_AUTHORITY_HOST: ");
    }
    /* Not quoted: user info may hold a password. */
    if (u.has_userinfo || u.query || u.has_fragment)
        rc = err_set(e, ERR_INVALID, "AZURE_AUTHORITY_HOST must be a plain https:// URL, without user info, "
                     "query or fragment");
    else if (strcmp(u.scheme, "https") != 0 && !(strcmp(u.scheme, "http") == 0 && url_host_is_loopback(u.host)))
        rc = err_set(e, ERR_INVALID, "AZURE_AUTHORITY_HOST \"%s\" must use https (http only to this machine)", host);
    url_free(&u);
    if (rc < 0) {
        free(host);
        return rc;
    }
    *out = host;
    return 0;
}

/* A tenant goes into the URL's path: a GUID or a domain name, nothing else. */
static int tenant_ok(const char *tenant, struct err *e)
{
    for (const char *p = tenant; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return err_set(e, ERR_INVALID, "AZURE_TENANT_ID \"%s\" is not a tenant id or domain name", tenant);
    return 0;
}

/* The endpoint's URL for tenant (malloc'ed); it is also the client assertion's audience. */
static int token_url(const char *tenant, char **out, struct err *e)
{
    char *base = NULL;
    if (tenant_ok(tenant, e) < 0 || authority(&base, e) < 0)
        return -1;
    *out = xasprintf("%s/%s/oauth2/v2.0/token", base, tenant);
    free(base);
    return 0;
}

/* POSTs the client credentials grant; credential is the form's client_secret or client_assertion
 * part (already encoded). what names the source in messages. */
static int token_request(const char *url, const char *client_id, const char *credential, const char *scope,
                         const char *what, struct azure_tok *t, struct err *e)
{
    char *id_enc = uri_encode(client_id, NULL), *scope_enc = uri_encode(scope, NULL);
    char *body = xasprintf("client_id=%s&scope=%s&grant_type=client_credentials&%s", id_enc, scope_enc, credential);
    const char *hdr[] = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL };
    struct http_request req = { .method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body),
                                .max_body = 1u << 20, .timeout_ms = 60000 };
    struct http_client *client = http_client_new();
    struct http_response resp;
    char *label = xasprintf("the token endpoint %s (%s)", url, what);
    int rc = http_perform(client, &req, &resp, e);
    /* An error answer's JSON says why (invalid_client, AADSTS...); a bare failure keeps http's words. */
    if (rc == 0 || (resp.status >= 400 && resp.body.len > 0 && resp.body.data[0] == '{')) {
        rc = azure_parse_token_answer(resp.body.data, resp.body.len, resp.status, label, t, e);
        if (rc < 0) {
            e->http_status = resp.status;
            e->transient = resp.status >= 500 || resp.status == 429;
        }
    } else
        err_prefix(e, "%s: ", label);
    if (resp.body.data)
        OPENSSL_cleanse(resp.body.data, resp.body.len);
    http_response_free(&resp);
    http_client_free(client);
    azure_wipe_free(body);
    free(label), free(id_enc), free(scope_enc);
    return rc;
}

const char *azure_env_kind(void)
{
    return env_or("AZURE_CLIENT_SECRET", NULL) ? "environment (client secret)" : "environment (certificate)";
}

/* The missing ones of AZURE_TENANT_ID and AZURE_CLIENT_ID, for messages; NULL when both are set. */
static const char *missing_ids(void)
{
    int t = env_or("AZURE_TENANT_ID", NULL) != NULL, c = env_or("AZURE_CLIENT_ID", NULL) != NULL;
    return t && c ? NULL : t ? "AZURE_CLIENT_ID is not set" : c ? "AZURE_TENANT_ID is not set"
                                                                 : "AZURE_TENANT_ID and AZURE_CLIENT_ID are not set";
}

static int with_certificate(const char *scope, const char *url, const char *client_id, struct azure_tok *t,
                            struct err *e)
{
    const char *path = getenv("AZURE_CLIENT_CERTIFICATE_PATH");
    struct azure_cert cert;
    /* Loaded at each refresh: a rotated certificate file is picked up. */
    if (azure_cert_load(path, env_or("AZURE_CLIENT_CERTIFICATE_PASSWORD", NULL), &cert, e) < 0)
        return err_prefix(e, "AZURE_CLIENT_CERTIFICATE_PATH: ");
    char *jwt = NULL;
    int rc = azure_assertion_sign(&cert, "PS256", url, client_id, time(NULL), &jwt, e);
    azure_cert_free(&cert);
    if (rc < 0)
        return rc;
    char *cred = xasprintf("client_assertion_type=%s&client_assertion=%s", JWT_BEARER, jwt);
    rc = token_request(url, client_id, cred, scope, "certificate", t, e);
    azure_wipe_free(cred);
    azure_wipe_free(jwt);
    return rc;
}

int azure_env_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e)
{
    const char *secret = env_or("AZURE_CLIENT_SECRET", NULL), *cert = env_or("AZURE_CLIENT_CERTIFICATE_PATH", NULL);
    if (!secret && !cert)
        return err_set(e, ERR_AUTH, "AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are not set");
    /* Incomplete settings leave the source unavailable, as in EnvironmentCredential. */
    const char *missing = missing_ids();
    if (missing)
        return err_set(e, ERR_AUTH, "%s is set but %s", secret ? "AZURE_CLIENT_SECRET" : "AZURE_CLIENT_CERTIFICATE_PATH",
                       missing);
    *configured = 1;
    const char *tenant = getenv("AZURE_TENANT_ID"), *client_id = getenv("AZURE_CLIENT_ID");
    char *url;
    if (token_url(tenant, &url, e) < 0)
        return -1;
    int rc;
    if (secret) {
        char *enc = uri_encode(secret, NULL);
        char *cred = xasprintf("client_secret=%s", enc);
        rc = token_request(url, client_id, cred, scope, "client secret", t, e);
        azure_wipe_free(cred);
        azure_wipe_free(enc);
    } else {
        rc = with_certificate(scope, url, client_id, t, e);
    }
    free(url);
    return rc;
}

int azure_workload_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e)
{
    const char *file = env_or("AZURE_FEDERATED_TOKEN_FILE", NULL);
    if (!file)
        return err_set(e, ERR_AUTH, "AZURE_FEDERATED_TOKEN_FILE is not set");
    const char *missing = missing_ids();
    if (missing)
        return err_set(e, ERR_AUTH, "AZURE_FEDERATED_TOKEN_FILE is set but %s", missing);
    *configured = 1;
    char *url;
    if (token_url(getenv("AZURE_TENANT_ID"), &url, e) < 0)
        return -1;
    /* Read at every refresh: Kubernetes rotates the projected token. */
    char *assertion;
    if (read_small_file(file, 64 * 1024, &assertion, NULL) < 0) {
        int rc = err_set(e, ERR_AUTH, "cannot read AZURE_FEDERATED_TOKEN_FILE %s: %s", file, strerror(errno));
        free(url);
        return rc;
    }
    char *a = assertion;
    while (isspace((unsigned char)*a))
        a++;
    size_t n = strlen(a);
    while (n > 0 && isspace((unsigned char)a[n - 1]))
        a[--n] = '\0';
    int rc;
    if (!*a) {
        rc = err_set(e, ERR_AUTH, "AZURE_FEDERATED_TOKEN_FILE %s is empty", file);
    } else {
        char *enc = uri_encode(a, NULL);
        char *cred = xasprintf("client_assertion_type=%s&client_assertion=%s", JWT_BEARER, enc);
        rc = token_request(url, getenv("AZURE_CLIENT_ID"), cred, scope, "workload identity", t, e);
        azure_wipe_free(cred);
        azure_wipe_free(enc);
    }
    azure_wipe_free(assertion);
    free(url);
    return rc;
}
