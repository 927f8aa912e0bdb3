/* Internals of the Google credentials layer (auth.c, jwt.c, oauth.c, external.c): a credential
 * source read from a file or the metadata server, and the exchanges that turn it into an access
 * token. Not for stores or flavors: they use auth.h. */
#ifndef STEPOP_GOOGLE_CREDS_H
#define STEPOP_GOOGLE_CREDS_H

#include "../../runtime/err.h"
#include "../../runtime/util.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <time.h>

#define GOOGLE_TOKEN_URI_DEFAULT "https://oauth2.googleapis.com/token"
#define GOOGLE_STS_URI_DEFAULT "https://sts.googleapis.com/v1/token"
#define GOOGLE_METADATA_HOST_DEFAULT "metadata.google.internal"

/* An access token and when it stops working (0: unknown). */
struct google_token {
    char *token;
    time_t expires;
};
void google_token_clear(struct google_token *t);

enum google_source_type {
    GOOGLE_SERVICE_ACCOUNT,
    GOOGLE_AUTHORIZED_USER,
    GOOGLE_EXTERNAL_ACCOUNT,
    GOOGLE_IMPERSONATED,
    GOOGLE_METADATA
};

/* Where tokens come from: a parsed credentials file (its document wiped when freed) or the
 * metadata server. */
struct google_source {
    enum google_source_type type;
    char *path;          /* the file, for messages; NULL for the metadata server */
    cJSON *doc;          /* the file's document (secrets inside) */
    EVP_PKEY *key;       /* service_account: the private key */
    const char *email;   /* service_account: client_email (in doc) */
    const char *key_id;  /* service_account: private_key_id (in doc), may be NULL */
    const char *token_uri; /* service_account, authorized_user: in doc, or the default */
    struct google_source *inner; /* impersonated_service_account: source_credentials */
};

/* Reads a credentials file of any supported type. ERR_INVALID for a file that cannot be used,
 * ERR_UNSUPPORTED for a type or source stepop does not handle; the message never quotes a
 * secret. */
int google_source_from_file(const char *path, struct google_source **out, struct err *e);
/* Parses an already-read document (takes it; path is for messages). */
int google_source_from_doc(cJSON *doc, const char *path, struct google_source **out, struct err *e);
struct google_source *google_source_metadata(void);
void google_source_free(struct google_source *s);
/* A fresh token with scope from the source. */
int google_source_token(struct google_source *s, const char *scope, struct google_token *t, struct err *e);

/* ---- jwt.c --------------------------------------------------------------------------- */

/* base64url without padding (RFC 7515 §2). Caller frees. */
char *google_b64url(const void *data, size_t len);
/* Loads a PEM private key (PKCS#8 or PKCS#1, RSA). The message never quotes the key. */
int google_key_load(const char *pem, EVP_PKEY **key, struct err *e);
/* RSASSA-PKCS1-v1_5 with SHA-256; *sig malloc'ed. */
int google_rs256(EVP_PKEY *key, const void *data, size_t len, unsigned char **sig, size_t *sig_len, struct err *e);
/* The signed JWT a service account sends to its token endpoint (RFC 7523): iss = email,
 * aud = token_uri, scope, iat = now, exp = now + 1 h; kid when key_id is given. Caller wipes and
 * frees. */
int google_jwt_assertion(EVP_PKEY *key, const char *key_id, const char *email, const char *token_uri,
                         const char *scope, time_t now, char **out, struct err *e);

/* ---- oauth.c ------------------------------------------------------------------------- */

/* Wipes and frees a string that held a secret. */
void google_secret_free(char *s);
/* Appends "&name=value" (percent-encoded; no '&' first time) to a form body. */
void google_form_add(struct buf *b, const char *name, const char *value);
/* POSTs body to an OAuth 2 / STS token endpoint and reads {access_token, expires_in}. what names
 * the exchange in messages; basic_auth ("id:secret", may be NULL) goes in Authorization. */
int google_token_request(const char *url, const char *content_type, const char *body, const char *basic_auth,
                         const char *what, struct google_token *t, struct err *e);
/* The metadata server's base URL ("http://HOST"; GCE_METADATA_HOST, GCE_METADATA_ROOT, else the
 * default). Caller frees. */
char *google_metadata_base(void);
/* GET base + path with Metadata-Flavor: Google; a 1 s connect timeout so that a machine off
 * Google Cloud fails fast. out holds the body (caller frees). */
int google_metadata_get(const char *path, struct buf *out, struct err *e);
int google_metadata_token(const char *scope, struct google_token *t, struct err *e);
/* IAM Credentials generateAccessToken at url with source_token as bearer; delegates may be NULL. */
int google_impersonate(const char *url, const char *source_token, const char *scope, const cJSON *delegates,
                       long lifetime_s, struct google_token *t, struct err *e);

/* ---- external.c ---------------------------------------------------------------------- */

/* Checks an external_account document at load time (refuses AWS and other sources). */
int google_external_check(const cJSON *doc, struct err *e);
/* The STS exchange (and the impersonation the file asks for). */
int google_external_token(const cJSON *doc, const char *scope, struct google_token *t, struct err *e);

#endif
