/* The sources of the Azure identity chain (auth.c runs them in order), and the pieces the unit
 * tests reach: the certificate loader, the client assertion, the token answer parsers. */
#ifndef STEPOP_AZURE_CREDS_H
#define STEPOP_AZURE_CREDS_H

#include "../../runtime/err.h"
#include "../../runtime/util.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>

struct azure_tok {
    char *token;   /* the access token, wiped by azure_tok_clear */
    time_t expires;
};
void azure_tok_clear(struct azure_tok *t);

/* A source fills t and returns 0, or returns -1 with why in e. It sets *configured when its
 * settings are present (or its service answered): a configured source that fails ends the chain
 * instead of falling through to another identity, as DefaultAzureCredential's
 * CredentialUnavailableError/AuthenticationError split does. */
typedef int (*azure_source_fn)(const char *scope, struct azure_tok *t, int *configured, struct err *e);

int azure_env_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e); /* token.c */
int azure_workload_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e);
int azure_msi_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e);  /* msi.c */
int azure_cli_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e);  /* cli.c */
/* What the environment source is: "environment (client secret)" or "environment (certificate)". */
const char *azure_env_kind(void);

/* The resource of a v1-style endpoint (IMDS, App Service): the scope less "/.default". Caller
 * frees. */
char *azure_scope_resource(const char *scope);

/* The v2 token endpoint's answer ({"access_token", "expires_in"}) or its error
 * ({"error", "error_description"}: both put in e, never the request's secrets). */
int azure_parse_token_answer(const char *body, size_t len, long status, const char *what, struct azure_tok *t,
                             struct err *e);
/* Managed identity's answer: access_token, expires_on (epoch seconds, a number or a string) or
 * expires_in. */
int azure_parse_msi_answer(const char *body, size_t len, const char *what, struct azure_tok *t, struct err *e);
/* The Azure CLI's answer: accessToken and expires_on (epoch seconds; CLI 2.54+), else expiresOn
 * ("YYYY-MM-DD HH:MM:SS.ffffff", local time). */
int azure_parse_cli_answer(const char *body, size_t len, struct azure_tok *t, struct err *e);

/* A client certificate: a PEM file holding the certificate and its private key, or a PFX
 * (PKCS#12) file opened with password (NULL for none). */
struct azure_cert {
    X509 *cert;
    EVP_PKEY *key;
    char thumb_s256[44]; /* base64url SHA-256 of the certificate's DER */
};
int azure_cert_load(const char *path, const char *password, struct azure_cert *out, struct err *e);
void azure_cert_free(struct azure_cert *c);

/* A client assertion JWT as MSAL makes it: PS256 ("RS256" in alg takes PKCS#1 v1.5), header
 * x5t#S256; claims aud, iss = sub = client_id, a fresh jti, nbf = iat = now, exp = now + 600.
 * *jwt is malloc'ed; wipe before free. */
int azure_assertion_sign(const struct azure_cert *c, const char *alg, const char *aud, const char *client_id,
                         time_t now, char **jwt, struct err *e);

/* base64url without padding of n bytes (malloc'ed). */
char *azure_b64url(const void *data, size_t n);

/* Wipes and frees a string (NULL is fine). */
void azure_wipe_free(char *s);
struct cJSON;
/* A number of seconds, given as a JSON number or a string of digits: 1 found, 0 not. */
int azure_json_seconds(const struct cJSON *obj, const char *key, long long *out);

#endif
