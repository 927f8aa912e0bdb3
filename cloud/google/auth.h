/* Google credentials, found the way Google's client libraries find them (application default
 * credentials, docs/artifacts.md#google): GOOGLE_APPLICATION_CREDENTIALS (service_account,
 * authorized_user, external_account, impersonated_service_account), then gcloud's ADC file, then
 * the metadata server. One process-wide token cache, refreshed 5 minutes before expiry; every
 * function here is thread-safe. No key, assertion or token is ever put in a message. */
#ifndef STEPOP_GOOGLE_AUTH_H
#define STEPOP_GOOGLE_AUTH_H

#include "../../runtime/err.h"
#include "../../runtime/http.h"

#include <stddef.h>
#include <time.h>

/* The scope every stepop caller asks for: GCS and Vertex AI both accept it. */
#define GOOGLE_SCOPE_CLOUD_PLATFORM "https://www.googleapis.com/auth/cloud-platform"

/* A current OAuth 2 access token (malloc'ed into *token, caller frees and wipes) and its expiry.
 * force_refresh asks the provider again at once (after a 401). On failure e says which sources
 * were tried and why each one gave nothing. Exit-code class: EXIT_CONFIG for unusable files,
 * EXIT_AUTH-like store errors are the caller's to map. */
int google_auth_token(char **token, time_t *expires, int force_refresh, struct err *e);

/* An http_sign_fn (ctx unused, may be NULL): adds "Authorization: Bearer <token>" before every
 * attempt, so a retry or a long transfer picks up a refreshed token; and x-goog-user-project when
 * GOOGLE_CLOUD_QUOTA_PROJECT or the file's quota_project_id names one, as Google's libraries do. */
int google_auth_sign(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e);

/* The project: GOOGLE_CLOUD_PROJECT, else GCLOUD_PROJECT, else the credentials file's
 * project_id / quota_project_id, else the metadata server. Caller frees; NULL with e set when
 * none is known. */
char *google_auth_project(struct err *e);

/* Which source gave the credentials ("service account key", "authorized user", "external
 * account", "impersonated service account", "gcloud ADC", "metadata server"), for messages;
 * NULL before the chain ran. */
const char *google_auth_provider(void);

/* The service account the credentials act as, when the files say it without a call: a
 * service_account key's client_email, an impersonated_service_account's target (from its
 * service_account_impersonation_url); NULL otherwise or before the chain ran. Caller frees. */
char *google_auth_account(void);

struct doctor;
/* `stepop doctor`'s lines for a user of these credentials: "<what> credentials" (a token was had,
 * and from which source) and "<what> identity" (google_auth_account, when known). Returns 0 when a
 * token was had. */
int google_doctor_lines(struct doctor *d, const char *what);

/* Signs data with the service-account key of the credentials (RSASSA-PKCS1-v1_5 SHA-256), for
 * V4 signed URLs; *sig is malloc'ed raw bytes. Fails with a clear message when the credentials
 * are not a service_account key (no IAM signBlob). email receives the key's client_email
 * (malloc'ed) when not NULL. */
int google_auth_sign_bytes(const void *data, size_t len, unsigned char **sig, size_t *sig_len, char **email,
                           struct err *e);

/* Forgets the cached token and chain (tests, and processes that change their environment). */
void google_auth_reset(void);

#endif
