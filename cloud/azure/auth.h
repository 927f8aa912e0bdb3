/* Azure (Microsoft Entra) identity, found in the order DefaultAzureCredential uses
 * (docs/artifacts.md#azure): the environment (client secret, or a PEM/PFX certificate sent as a
 * signed client assertion), workload identity (AZURE_FEDERATED_TOKEN_FILE, re-read at each
 * refresh), managed identity (IMDS, or App Service's IDENTITY_ENDPOINT), then the Azure CLI.
 * Tokens are cached per scope and refreshed before expiry; every function here is thread-safe.
 * No secret, assertion or token is ever put in a message. */
#ifndef STEPOP_AZURE_AUTH_H
#define STEPOP_AZURE_AUTH_H

#include "../../runtime/err.h"
#include "../../runtime/http.h"

#include <cjson/cJSON.h>
#include <time.h>

/* Scopes: Azure Resource Manager (the azureml flavor) and Azure Storage (the az:// store). */
#define AZURE_SCOPE_ARM "https://management.azure.com/.default"
#define AZURE_SCOPE_STORAGE "https://storage.azure.com/.default"

/* A current access token for scope (malloc'ed into *token; caller frees and wipes) and its
 * expiry. force_refresh asks the source again at once (after a 401). On failure e says which
 * sources were tried and why each one gave nothing. */
int azure_auth_token(const char *scope, char **token, time_t *expires, int force_refresh, struct err *e);

/* An http_sign_fn; ctx is the scope (const char *). Adds "Authorization: Bearer <token>" before
 * every attempt, so a retry or a long transfer picks up a refreshed token. */
int azure_auth_sign(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e);

/* The authority host: AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com (no trailing
 * slash). Caller frees. */
char *azure_authority_host(void);

/* Which source gave the last token ("environment (client secret)", "environment (certificate)",
 * "workload identity", "managed identity", "Azure CLI"), for messages; NULL before any. */
const char *azure_auth_provider(void);

/* The claims of a JWT access token (its payload, base64url-decoded and parsed; the signature is
 * not checked), or NULL when it is not one. Caller frees. */
cJSON *azure_jwt_claims(const char *token);

struct doctor;
/* `stepop doctor`'s lines for a user of the chain with this scope: "<what> credentials" (a token
 * was had, and from which source) and "<what> identity" (the token's appid and oid claims; the
 * token itself is never shown). Returns 0 when a token was had. */
int azure_doctor_lines(struct doctor *d, const char *what, const char *scope);

/* Forgets the cached tokens (tests, and processes that change their environment). */
void azure_auth_reset(void);

#endif
