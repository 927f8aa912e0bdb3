/* AWS Signature Version 4 (libcrypto's SHA-256 and HMAC), as the S3 API reference specifies it:
 * "Signature Calculations for the Authorization Header" and "Authenticating Requests: Using Query
 * Parameters". Pure functions of their inputs, so the documentation's worked examples are unit
 * tests (tests/unit/test_sigv4.c). */
#ifndef STEPOP_SIGV4_H
#define STEPOP_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_header {
    const char *name;  /* any case; signed lower-cased */
    const char *value; /* trimmed and inner runs of spaces squeezed when signed */
};

struct sigv4_input {
    const char *method;
    const char *path;         /* the URI path exactly as sent: already encoded (see sigv4_encode) */
    const char *query;        /* the query as sent ("a=b&c"), or NULL; canonicalised here */
    const struct sigv4_header *headers; /* every header to sign, host included */
    size_t n_headers;
    const char *payload_hash; /* lower-case hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD */
    const char *access_key, *secret_key;
    const char *region, *service;
    time_t when;
};

struct sigv4_output {
    char amz_date[17];        /* "20130524T000000Z" */
    char signature[65];
    char *canonical_request;  /* for tests and debugging; never holds a secret */
    char *string_to_sign;
    char *signed_headers;     /* "host;range;x-amz-date" */
    char *authorization;      /* the Authorization header's value */
};

/* AWS's UriEncode: every byte except A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex); '/' kept
 * unless encode_slash. Used for S3 keys (each segment), query names and values. Caller frees. */
char *sigv4_encode(const char *s, int encode_slash);
/* The canonical query string: parameters decoded, re-encoded with sigv4_encode, sorted by name
 * then value; a bare name gets "=". Caller frees. */
char *sigv4_canonical_query(const char *query);
/* "YYYYMMDDTHHMMSSZ" */
void sigv4_amz_date(time_t when, char out[17]);

/* Signs a request for the Authorization header. Returns 0, or -1 on a malformed query escape. */
int sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out);
void sigv4_output_free(struct sigv4_output *out);

/* A presigned URL (query-string authentication, UNSIGNED-PAYLOAD, only host signed):
 * base is "scheme://host[:port]", host the Host header's value, path as in sigv4_input,
 * query the request's own parameters or NULL. Caller frees. */
char *sigv4_presign(const char *base, const char *host, const char *method, const char *path, const char *query,
                    const char *access_key, const char *secret_key, const char *session_token, const char *region,
                    const char *service, time_t when, long expires_s);

/* Lower-case hex SHA-256 of data; base64 of the raw digest (x-amz-checksum-sha256). */
void sigv4_sha256_hex(const void *data, size_t n, char out[65]);
void sigv4_sha256_base64(const void *data, size_t n, char out[45]);

#endif
