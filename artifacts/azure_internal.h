/* What the files of the az:// store share (store_azure.c: configuration, open, ls, stat, rm,
 * presign; azure_request.c: addressing, requests and Azure's errors; azure_sign.c: Shared Key and
 * SAS signatures, connection strings, block ids; azure_get.c: downloads; azure_put.c: uploads).
 * Private to them, and to tests/unit/test_azure_blob.c, which checks the signing functions. */
#ifndef STEPOP_AZURE_INTERNAL_H
#define STEPOP_AZURE_INTERNAL_H

#include "store.h"

#include "../runtime/http.h"

#include <stdint.h>
#include <time.h>

/* The Blob service version stepop speaks and signs SAS for: new enough for everything used here
 * (it has the 2020-12-06 SAS string-to-sign), old enough that every emulator knows it (Azurite
 * 3.37 accepts 2009-09-19 to 2026-06-06). */
#define AZ_VERSION "2021-12-02"

#define AZ_MIB (1024LL * 1024)
#define AZ_MAX_BLOCK (4000LL * AZ_MIB) /* Put Block's largest block */
#define AZ_MAX_BLOCKS 50000            /* and a block blob's most */
#define AZ_MAX_SINGLE (5000LL * AZ_MIB) /* Put Blob's largest body */
/* Blocks of a stream of unknown length double every this many blocks (50,000 blocks of 8 MiB
 * doubling every 5,000 reach far past any size a step writes). */
#define AZ_GROWTH_EVERY 5000

enum az_auth { AZ_AUTH_KEY, AZ_AUTH_SAS, AZ_AUTH_TOKEN };

/* A connection string's fields (AZURE_STORAGE_CONNECTION_STRING), each NULL when absent. */
struct az_conn {
    char *protocol;       /* DefaultEndpointsProtocol */
    char *account;        /* AccountName */
    char *key;            /* AccountKey (base64) */
    char *sas;            /* SharedAccessSignature */
    char *blob_endpoint;  /* BlobEndpoint */
    char *suffix;         /* EndpointSuffix */
    int dev;              /* UseDevelopmentStorage=true */
};

struct az_config {
    char *endpoint;        /* "https://acct.blob.core.windows.net", "http://127.0.0.1:10000/devstoreaccount1":
                              no trailing slash; its path (if any) precedes the container */
    char *account;
    enum az_auth auth;
    unsigned char *key;    /* the decoded account key (AZ_AUTH_KEY) */
    size_t key_len;
    char *sas;             /* the SAS query without '?' (AZ_AUTH_SAS) */
    int64_t threshold, block_size, mem_budget;
    int concurrency;
    time_t fixed_now;      /* STEPOP_NOW, or 0 */
};

struct az {
    struct az_config cfg;
    struct http_client *client;
};

/* ---- signing (azure_sign.c) ------------------------------------------------------------ */

void az_conn_free(struct az_conn *c);
/* Parses "Key=Value;Key=Value" (keys case-insensitive, values may hold '='). Unknown keys are
 * ignored; a part without '=' is refused. Values are never quoted in messages. */
int az_conn_parse(const char *s, struct az_conn *c, struct err *e);

/* base64 (standard alphabet, padded). az_base64_decode returns -1 on malformed input. */
char *az_base64(const unsigned char *in, size_t n);
int az_base64_decode(const char *in, unsigned char **out, size_t *n);
/* HMAC-SHA256 of msg with key, base64. */
char *az_hmac_base64(const unsigned char *key, size_t key_len, const char *msg);
/* base64 MD5 of data. */
void az_md5_base64(const void *data, size_t n, char out[25]);

/* The block id of block n (from 1): base64 of "stepop-block-" and n in 10 digits, so that every
 * id of a blob has the same length, as the service requires. */
void az_block_id(int n, char out[41]);

/* The Shared Key string-to-sign of a request: method, the standard headers and the x-ms-* ones
 * found in headers (a curl_slist of "Name: value" lines; later lines win), the account and the
 * path as sent (percent-encoded) and the query as sent (decoded here). Caller frees. */
char *az_string_to_sign(const char *method, const struct curl_slist *headers, const char *account,
                        const char *path, const char *query);

/* A service SAS for one blob (sr=b) made with the account key: permissions (in the service's
 * order, "r", "cw", "d"), expiry (unix time), the blob's container and name (not encoded).
 * Returns the query string (sv, se, sr, sp, sig); *string_to_sign, when not NULL, gets what was
 * signed. Caller frees both. */
char *az_service_sas(const char *account, const unsigned char *key, size_t key_len, const char *container,
                     const char *blob, const char *perms, time_t expiry, char **string_to_sign);

/* A user delegation key, as Get User Delegation Key returns it. */
struct az_udk {
    char *oid, *tid, *start, *expiry, *service, *version, *value;
};
void az_udk_free(struct az_udk *k);
/* A user delegation SAS (version AZ_VERSION) for one blob with that key. */
char *az_user_delegation_sas(const char *account, const struct az_udk *k, const char *container, const char *blob,
                             const char *perms, time_t expiry, char **string_to_sign);

/* The http_sign_fn of the store: x-ms-date and x-ms-version on every attempt, then the
 * Authorization header (Shared Key, or a bearer token from cloud/azure/auth.h); nothing more
 * for a SAS, which is in the URL. ctx: struct az_sign. */
struct az_sign {
    const struct az_config *cfg;
    const char *path;   /* as sent */
    const char *query;  /* as sent, without the SAS, or NULL */
    int refreshed;      /* a bearer token was fetched afresh after a 401 (once per request) */
};
int az_sign_hook(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e);

/* ---- addressing and requests (azure_request.c) ---------------------------------------- */

struct az_path {
    char *container;
    char *blob; /* "" for the container itself */
};

void az_path_free(struct az_path *p);
/* az://container/blob, or https://account.blob.core.windows.net/container/blob (account, when not
 * NULL, receives the host's first label; else NULL). */
int az_parse_uri(const char *uri, struct az_path *p, char **account, struct err *e);

struct az_target {
    char *url, *path, *query; /* query without the SAS, as signed; url has both */
};
void az_target_free(struct az_target *t);
/* blob NULL addresses the container; query already encoded or NULL. */
void az_make_target(const struct az_config *c, const char *container, const char *blob, const char *query,
                    struct az_target *t);

/* Azure's error code (x-ms-error-code, else the body's <Error><Code>), or NULL. */
char *az_error_code(const struct http_response *r, char **message);
int az_retryable_code(const char *code);
void az_explain(struct err *e, const struct http_response *r, const char *what, const char *uri);

void az_request_init(struct http_request *req, const char *method, const struct az_target *t, struct az_sign *k,
                     const struct az_config *cfg);
/* A request whose answer is small: HEAD, DELETE, a listing, Put Block List. */
int az_simple_request(struct az *s, const char *method, const struct az_target *t, const char *const *headers,
                      const char *body, struct http_response *resp, struct err *e);

void az_stat_from(const struct http_response *r, struct store_stat *st);
/* Get Blob Properties; md5 (may be NULL) receives x-ms-blob-content-md5 or Content-MD5 of the
 * whole blob, "" when none. */
int az_head_blob(struct az *s, const char *uri, const struct az_path *p, struct store_stat *out, char md5[32],
                 struct err *e);

/* ---- transfers (azure_get.c, azure_put.c) -------------------------------------------- */

int az_get_blob(struct az *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                struct store_stat *info, struct err *e);
int az_put_blob(struct az *s, const char *uri, struct store_source *src, struct err *e);

#endif
