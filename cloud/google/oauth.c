/* The token exchanges: an OAuth 2 token endpoint (jwt-bearer and refresh_token grants), STS
 * (same answer), IAM Credentials generateAccessToken, and the metadata server. */
#include "creds.h"

#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/timeutil.h"
#include "../../runtime/uri.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void google_secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void google_token_clear(struct google_token *t)
{
    google_secret_free(t->token);
    t->token = NULL;
    t->expires = 0;
}

void google_form_add(struct buf *b, const char *name, const char *value)
{
    char *v = uri_encode(value, NULL);
    buf_appendf(b, "%s%s=%s", b->len ? "&" : "", name, v);
    google_secret_free(v);
}

/* The short reason of an OAuth 2 / Google API error body, never more than its codes and
 * description (neither holds a secret). */
static void error_reason(const struct buf *body, char *out, size_t cap)
{
    out[0] = '\0';
    cJSON *j = NULL;
    struct err je;
    if (!body->data || json_parse(body->data, body->len, "error", &j, &je) < 0)
        return;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(err)) {
        const char *d = json_str(j, "error_description");
        snprintf(out, cap, ": %s%s%s", err->valuestring, d ? " (" : "", d ? d : "");
        if (d)
            str_copy(out + strlen(out), cap - strlen(out), ")");
    } else if (cJSON_IsObject(err) && json_str(err, "message")) {
        snprintf(out, cap, ": %s", json_str(err, "message"));
    }
    json_delete_wiped(j);
}

static void redacted(const char *url, char *out, size_t cap)
{
    uri_redact(url, out, cap);
}

/* Parses a token answer; names are those of OAuth 2 (access_token, expires_in) or of IAM
 * Credentials (accessToken, expireTime). */
static int parse_token(const struct buf *body, const char *what, struct google_token *t, struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (!body->data || json_parse(body->data, body->len, what, &j, &je) < 0)
        return err_set(e, ERR_AUTH, "%s answered with something that is not JSON", what);
    const char *tok = json_str(j, "access_token");
    const char *iam = json_str(j, "accessToken");
    int rc = 0;
    time_t now = time(NULL);
    if (tok) {
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
        /* Some endpoints send it as a string. */
        double secs = cJSON_IsNumber(ex) ? ex->valuedouble : cJSON_IsString(ex) ? atof(ex->valuestring) : 3600;
        t->expires = secs > 0 ? now + (time_t)secs : now + 3600;
    } else if (iam) {
        const char *exp = json_str(j, "expireTime");
        if (!exp || time_parse(exp, &t->expires) < 0)
            rc = err_set(e, ERR_AUTH, "%s answered without a valid expireTime", what);
        tok = iam;
    } else {
        rc = err_set(e, ERR_AUTH, "%s answered without an access token", what);
    }
    if (rc == 0 && !*tok)
        rc = err_set(e, ERR_AUTH, "%s answered with an empty access token", what);
    if (rc == 0)
        t->token = xstrdup(tok);
    json_delete_wiped(j);
    return rc;
}

static int perform(const struct http_request *req, const char *what, struct google_token *t, struct err *e)
{
    struct http_client *client = http_client_new();
    struct http_response resp;
    int rc = http_perform(client, req, &resp, e);
    if (rc < 0) {
        char reason[512], red[512];
        error_reason(&resp.body, reason, sizeof reason);
        redacted(req->url, red, sizeof red);
        if (resp.status) {
            int transient = e->transient;
            err_set(e, ERR_AUTH, "%s at %s failed: HTTP %ld%s", what, red, resp.status, reason);
            e->transient = transient;
            e->http_status = resp.status;
        } else {
            err_prefix(e, "%s at %s: ", what, red);
        }
    } else {
        rc = parse_token(&resp.body, what, t, e);
    }
    if (resp.body.data)
        OPENSSL_cleanse(resp.body.data, resp.body.len);
    http_response_free(&resp);
    http_client_free(client);
    return rc;
}

int google_token_request(const char *url, const char *content_type, const char *body, const char *basic_auth,
                         const char *what, struct google_token *t, struct err *e)
{
    char *ct = xasprintf("Content-Type: %s", content_type);
    char *auth = NULL;
    if (basic_auth) {
        unsigned char *b64 = xmalloc(4 * ((strlen(basic_auth) + 2) / 3) + 1);
        EVP_EncodeBlock(b64, (const unsigned char *)basic_auth, (int)strlen(basic_auth));
        auth = xasprintf("Authorization: Basic %s", (char *)b64);
        google_secret_free((char *)b64);
    }
    const char *hdr[] = { ct, "Accept: application/json", auth, NULL };
    struct http_request req = { .method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body),
                                .max_body = 1u << 20, .timeout_ms = 60000 };
    int rc = perform(&req, what, t, e);
    google_secret_free(auth);
    free(ct);
    return rc;
}

char *google_metadata_base(void)
{
    /* GCE_METADATA_ROOT is the older name, still honoured by Google's libraries. */
    const char *h = env_or("GCE_METADATA_HOST", env_or("GCE_METADATA_ROOT", GOOGLE_METADATA_HOST_DEFAULT));
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == '/')
        n--;
    return xasprintf("http://%.*s", (int)n, h);
}

int google_metadata_get(const char *path, struct buf *out, struct err *e)
{
    char *base = google_metadata_base();
    char *url = xasprintf("%s%s", base, path);
    const char *hdr[] = { "Metadata-Flavor: Google", NULL };
    /* Off Google Cloud nothing answers: give up quickly, as Google's libraries do. */
    struct http_request req = { .method = "GET", .url = url, .headers = hdr, .max_body = 64 * 1024,
                                .connect_timeout_ms = 1000, .timeout_ms = 10000, .max_attempts = 2 };
    struct http_client *client = http_client_new();
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc == 0) {
        /* A server that is not Google's metadata server (a captive portal) does not answer
         * with this header. */
        const char *flavor = http_header(&resp, "metadata-flavor");
        if (!flavor || strcmp(flavor, "Google") != 0) {
            rc = err_set(e, ERR_AUTH, "%s answered without Metadata-Flavor: Google; not a metadata server", base);
        } else {
            *out = resp.body;
            resp.body = (struct buf){ 0 };
            if (!out->data)
                buf_append(out, "", 0);
        }
    } else {
        err_prefix(e, "metadata server %s: ", base);
    }
    if (resp.body.data)
        OPENSSL_cleanse(resp.body.data, resp.body.len);
    http_response_free(&resp);
    http_client_free(client);
    free(url);
    free(base);
    return rc;
}

int google_metadata_token(const char *scope, struct google_token *t, struct err *e)
{
    char *scope_enc = uri_encode(scope, NULL);
    char *path = xasprintf("/computeMetadata/v1/instance/service-accounts/default/token?scopes=%s", scope_enc);
    free(scope_enc);
    struct buf body = { 0 };
    int rc = google_metadata_get(path, &body, e);
    free(path);
    if (rc == 0)
        rc = parse_token(&body, "the metadata server", t, e);
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    buf_free(&body);
    return rc;
}

int google_impersonate(const char *url, const char *source_token, const char *scope, const cJSON *delegates,
                       long lifetime_s, struct google_token *t, struct err *e)
{
    cJSON *b = cJSON_CreateObject();
    cJSON *scopes = cJSON_AddArrayToObject(b, "scope");
    cJSON_AddItemToArray(scopes, cJSON_CreateString(scope));
    if (cJSON_IsArray(delegates) && cJSON_GetArraySize(delegates) > 0)
        cJSON_AddItemToObject(b, "delegates", cJSON_Duplicate(delegates, 1));
    char life[32];
    snprintf(life, sizeof life, "%lds", lifetime_s > 0 ? lifetime_s : 3600);
    cJSON_AddStringToObject(b, "lifetime", life);
    char *body = json_print(b, 0);
    cJSON_Delete(b);
    char *auth = xasprintf("Authorization: Bearer %s", source_token);
    const char *hdr[] = { "Content-Type: application/json", "Accept: application/json", auth, NULL };
    struct http_request req = { .method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body),
                                .max_body = 1u << 20, .timeout_ms = 60000 };
    int rc = perform(&req, "service account impersonation (generateAccessToken)", t, e);
    google_secret_free(auth);
    free(body);
    return rc;
}
