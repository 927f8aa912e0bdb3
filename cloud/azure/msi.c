/* Managed identity: App Service's (and Functions', Container Apps') local endpoint when
 * IDENTITY_ENDPOINT and IDENTITY_HEADER are set, else the instance metadata service (IMDS) of a VM,
 * scale set or AKS node, moved by AZURE_POD_IDENTITY_AUTHORITY_HOST as MSAL moves it. A
 * user-assigned identity is picked by AZURE_CLIENT_ID, as DefaultAzureCredential picks it. */
#include "creds.h"

#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

int azure_parse_msi_answer(const char *body, size_t len, const char *what, struct azure_tok *t, struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (json_parse(body ? body : "", len, what, &j, &je) < 0)
        return err_set(e, ERR_AUTH, "%s answered with something that is not JSON", what);
    const char *token = json_str(j, "access_token");
    long long on = 0, in = 0;
    int rc = 0;
    if (!token || !*token)
        rc = err_set(e, ERR_AUTH, "%s answered without access_token", what);
    else if (azure_json_seconds(j, "expires_on", &on) && on > 0)
        t->expires = (time_t)on;
    else if (azure_json_seconds(j, "expires_in", &in) && in > 0)
        t->expires = time(NULL) + (time_t)in;
    else
        rc = err_set(e, ERR_AUTH, "%s answered without a usable expires_on or expires_in", what);
    if (rc == 0)
        t->token = xstrdup(token);
    json_delete_wiped(j);
    return rc;
}

/* The error an endpoint put in its JSON body ({"error", "error_description"} or App Service's
 * {"statusCode", "message"}), appended to e's message. */
static void explain(const struct http_response *r, struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (!r->body.data || json_parse(r->body.data, r->body.len, "answer", &j, &je) < 0)
        return;
    const char *code = json_str(j, "error"), *desc = json_str(j, "error_description");
    if (!desc)
        desc = json_str(j, "message");
    if (code || desc) {
        char *msg = xasprintf("%s (%.100s%s%.300s)", e->msg, code ? code : "", code && desc ? ": " : "",
                              desc ? desc : "");
        str_copy(e->msg, sizeof e->msg, msg);
        free(msg);
    }
    json_delete_wiped(j);
}

static int get_token(const char *url, const char *header, const char *what, int64_t connect_ms, struct azure_tok *t,
                     struct http_response *resp, struct err *e)
{
    const char *hdr[] = { header, "Accept: application/json", NULL };
    struct http_request req = { .method = "GET", .url = url, .headers = hdr, .max_body = 256 * 1024,
                                .connect_timeout_ms = connect_ms, .max_attempts = 3, .timeout_ms = 60000 };
    struct http_client *client = http_client_new();
    int rc = http_perform(client, &req, resp, e);
    if (rc < 0) {
        explain(resp, e);
        err_prefix(e, "%s: ", what);
    } else {
        rc = azure_parse_msi_answer(resp->body.data, resp->body.len, what, t, e);
    }
    if (resp->body.data)
        OPENSSL_cleanse(resp->body.data, resp->body.len);
    http_client_free(client);
    return rc;
}

static char *query(const char *api_version, const char *scope)
{
    char *resource = azure_scope_resource(scope);
    char *res_enc = uri_encode(resource, NULL);
    const char *client_id = env_or("AZURE_CLIENT_ID", NULL);
    char *id_enc = client_id ? uri_encode(client_id, NULL) : NULL;
    char *q = xasprintf("api-version=%s&resource=%s%s%s", api_version, res_enc, id_enc ? "&client_id=" : "",
                        id_enc ? id_enc : "");
    free(resource), free(res_enc), free(id_enc);
    return q;
}

static int app_service(const char *scope, const char *endpoint, const char *secret, struct azure_tok *t,
                       struct err *e)
{
    if (env_or("IDENTITY_SERVER_THUMBPRINT", NULL))
        return err_set(e, ERR_UNSUPPORTED, "IDENTITY_SERVER_THUMBPRINT is set: Service Fabric's managed identity is "
                       "not supported");
    char *q = query("2019-08-01", scope);
    char *url = xasprintf("%s%c%s", endpoint, strchr(endpoint, '?') ? '&' : '?', q);
    char *hdr = xasprintf("X-IDENTITY-HEADER: %s", secret);
    struct http_response resp;
    int rc = get_token(url, hdr, "App Service managed identity endpoint (IDENTITY_ENDPOINT)", 5000, t, &resp, e);
    http_response_free(&resp);
    azure_wipe_free(hdr);
    free(url), free(q);
    return rc;
}

static int imds(const char *scope, struct azure_tok *t, int *configured, struct err *e)
{
    const char *host = env_or("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254");
    size_t n = strlen(host);
    while (n > 0 && host[n - 1] == '/')
        n--;
    char *q = query("2018-02-01", scope);
    char *url = xasprintf("%.*s/metadata/identity/oauth2/token?%s", (int)n, host, q);
    struct http_response resp;
    /* Off Azure nothing answers at the link-local address: give up quickly. */
    int rc = get_token(url, "Metadata: true", "IMDS", 1000, t, &resp, e);
    /* Unreachable, or 400 (no identity assigned, or not this one): unavailable, the chain goes on.
     * Anything else came from a real IMDS about a real identity and ends it. */
    if (rc == 0 || (resp.status != 0 && resp.status != 400))
        *configured = 1;
    http_response_free(&resp);
    free(url), free(q);
    return rc;
}

int azure_msi_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e)
{
    const char *endpoint = env_or("IDENTITY_ENDPOINT", NULL), *secret = env_or("IDENTITY_HEADER", NULL);
    if (endpoint && secret) {
        *configured = 1;
        return app_service(scope, endpoint, secret, t, e);
    }
    if (endpoint && env_or("IMDS_ENDPOINT", NULL))
        return err_set(e, ERR_UNSUPPORTED, "IDENTITY_ENDPOINT and IMDS_ENDPOINT are set: Azure Arc's managed "
                       "identity is not supported");
    return imds(scope, t, configured, e);
}
