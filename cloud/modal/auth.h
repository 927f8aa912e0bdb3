/* Modal credentials, found as Modal's own clients find them (the JS SDK, npm modal 0.11.1): the
 * profile named by MODAL_PROFILE, else the one marked active = true, in MODAL_CONFIG_PATH or
 * ~/.modal.toml; MODAL_TOKEN_ID, MODAL_TOKEN_SECRET, MODAL_ENVIRONMENT and MODAL_SERVER_URL over
 * the profile's token_id, token_secret, environment and server_url. Each call carries them as
 * the SDK's headers, with the short-lived x-modal-auth-token from AuthTokenGet, fetched again
 * before its JWT exp. The token secret and the auth token are never logged or shown. */
#ifndef STEPOP_MODAL_AUTH_H
#define STEPOP_MODAL_AUTH_H

#include "grpc.h"

#include "../../runtime/err.h"

#include <stdint.h>

#define MODAL_DEFAULT_SERVER "https://api.modal.com:443"
/* What the JS SDK sends as x-modal-client-type (CLIENT_TYPE_LIBMODAL_JS) and -client-version:
 * stepop speaks that SDK's protocol, with its field numbers. */
#define MODAL_CLIENT_TYPE "8"
#define MODAL_CLIENT_VERSION "1.0.0"
#define MODAL_SDK_PINNED "0.11.1"

struct modal_auth {
    char *server_url;      /* MODAL_SERVER_URL, the profile's, or the default */
    char *token_id, *token_secret;
    char *environment;     /* "" for the workspace's default */
    char *profile;         /* the profile read, or NULL */
    char *host;            /* server_url's host, for x-modal-host */
    char *auth_token;      /* from AuthTokenGet */
    int64_t refresh_at;    /* wall seconds: fetch a new one from then */
    struct grpc_channel *ch; /* where AuthTokenGet goes (set by the caller) */
    int fetching;
};

/* Reads the configuration and the environment. server_url, when not NULL, is a setting that
 * overrides both. Missing credentials are refused (ERR_AUTH) only by modal_auth_require, so that
 * --dry-run works without them. */
int modal_auth_load(struct modal_auth *a, const char *server_url, struct err *e);
int modal_auth_require(const struct modal_auth *a, struct err *e);
void modal_auth_free(struct modal_auth *a);
/* grpc_channel.reauth: drops the auth token (the server refused it: expired early, revoked), so
 * that the next call fetches one; 0 when there was none to drop. */
int modal_auth_reauth(void *ctx);
/* grpc_headers_fn: ctx is a struct modal_auth. */
int modal_auth_headers(void *ctx, const char *method, struct curl_slist **headers, struct err *e);

/* ---- exposed for unit tests ---- */

/* The string or bool value of key in table [profile] of a TOML text (a minimal reader: tables,
 * basic and literal strings, booleans, comments); *out NULL when absent (caller frees). The
 * active profile: profile NULL finds the first table with active = true and returns its name. */
int modal_toml_get(const char *text, const char *profile, const char *key, char **out, struct err *e);
int modal_toml_active(const char *text, char **profile, struct err *e);
/* The exp claim of a JWT, or 0. */
int64_t modal_jwt_exp(const char *jwt);

#endif
