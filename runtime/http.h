/* The HTTP layer under every store and flavor: libcurl with connection reuse, connect and stall
 * timeouts, bounded retries with exponential backoff and jitter (connection errors, 408, 429,
 * 5xx, Retry-After), resumable GETs, TLS verification on unless turned off explicitly. */
#ifndef STEPOP_HTTP_H
#define STEPOP_HTTP_H

#include "err.h"
#include "util.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct http_config {
    int max_attempts;          /* STEPOP_HTTP_ATTEMPTS, default 5 */
    int64_t retry_base_ms;     /* STEPOP_HTTP_RETRY_BASE, default 250ms */
    int64_t retry_max_ms;      /* STEPOP_HTTP_RETRY_MAX, default 20s */
    int64_t retry_after_max_ms;/* longest Retry-After honoured, 5m */
    int64_t connect_timeout_ms;/* STEPOP_HTTP_CONNECT_TIMEOUT, default 10s */
    int64_t stall_timeout_ms;  /* STEPOP_HTTP_STALL_TIMEOUT, default 30s below 1 KiB/s */
    const char *ca_bundle;     /* STEPOP_CA_BUNDLE, else SSL_CERT_FILE, else NULL for libcurl's
                                  built-in one, else a distribution's found where it keeps it */
    const char *ca_dir;        /* SSL_CERT_DIR */
    int insecure;              /* STEPOP_TLS_INSECURE=1 only */
};

/* Once per process, before threads: curl_global_init and the configuration from the
 * environment. Returns -1 with e set on a malformed variable. */
int http_global_init(struct err *e);
const struct http_config *http_config(void);
/* Transfers in flight abort (ERR_CANCELLED) once *flag becomes non-zero. */
void http_set_cancel_flag(volatile sig_atomic_t *flag);
/* ... and once the monotonic clock reaches deadline_ms (a phase's deadline); 0 clears it. */
void http_set_cancel_deadline(int64_t deadline_ms);
/* Either of the two has fired. */
int http_cancelled(void);
/* Transfers made by the calling thread abort (ERR_CANCELLED) once *flag becomes non-zero, retry
 * pauses included: how a thread with its own deadline (the log shipper) gets out of a slow store
 * whatever backend it talks to. Such a thread no longer answers to the process-wide cancel flag.
 * NULL turns it off for the thread. */
void http_set_thread_stop(const atomic_int *flag);

struct http_client; /* one per thread; keeps connections alive between requests */
struct http_client *http_client_new(void);
void http_client_free(struct http_client *c);

struct http_response;
struct http_request;

/* Streams 2xx response bytes to the consumer; -1 (with e set) aborts the transfer. */
typedef int (*http_data_fn)(void *ctx, const void *data, size_t n, struct err *e);
/* Pulls request body bytes: >0 bytes, 0 at the end, -1 (with e set) to abort. */
typedef ssize_t (*http_body_fn)(void *ctx, void *buf, size_t n, struct err *e);
typedef int (*http_rewind_fn)(void *ctx, struct err *e);
/* Called before every attempt to add headers (signatures are made afresh on each retry). */
typedef int (*http_sign_fn)(void *ctx, const struct http_request *req, struct curl_slist **headers,
                            struct err *e);
/* Overrides the retry decision for a complete response: 1 retry, 0 do not, -1 default. */
typedef int (*http_retry_fn)(void *ctx, const struct http_response *resp);

/* TLS settings of one request (a Kubernetes cluster's CA and client certificate). Each field left
 * NULL or 0 keeps the process-wide setting (STEPOP_CA_BUNDLE, SSL_CERT_DIR, STEPOP_TLS_INSECURE).
 * PEM text in memory is copied by libcurl for each attempt; key material is never logged. */
struct http_tls {
    const char *ca_file;     /* trust only the CAs in this PEM file ... */
    const char *ca_pem;      /* ... or in this PEM text (either replaces the process-wide CAs) */
    const char *cert_file;   /* client certificate, PEM (a file may hold the key too) ... */
    const char *cert_pem;    /* ... or PEM text */
    const char *key_file;    /* its private key, PEM ... */
    const char *key_pem;     /* ... or PEM text */
    const char *server_name; /* the name sent in SNI and checked against the certificate when it
                                is not the URL's host (kubeconfig's tls-server-name); the
                                connection still goes to the URL's host and port, and Host: is
                                the URL's */
    int insecure;            /* neither certificate nor name verified (insecure-skip-tls-verify) */
};

struct http_request {
    const char *method;
    const char *url;
    const char *unix_socket;      /* connect to this unix socket instead of the URL's host (Docker API) */
    const struct http_tls *tls;   /* NULL: the process-wide TLS settings */
    const char *proxy;            /* this proxy for every host, no_proxy notwithstanding (http://,
                                     https://, socks5:// ... as libcurl takes them: a kubeconfig's
                                     proxy-url); NULL: libcurl's, from the environment
                                     (https_proxy, no_proxy) */
    const char *const *headers;   /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;             /* a body in memory ... */
    size_t body_len;
    http_body_fn body_read;       /* ... or streamed */
    http_rewind_fn body_rewind;   /* NULL: no retry once body bytes were sent */
    void *body_ctx;
    int64_t body_size;            /* streamed body's size, -1 unknown (chunked) */
    http_data_fn on_data;         /* NULL: a 2xx body is kept in response.body */
    void *data_ctx;
    int64_t range_start;          /* GET bytes [range_start, range_start+range_len) */
    int64_t range_len;            /* 0: no Range header; -1: to the end */
    int resume;                   /* GET: retries continue after the bytes already delivered, with
                                     If-Match (unless headers already hold one) */
    int follow_redirects;
    int max_attempts;             /* 0: configuration default */
    int64_t timeout_ms;           /* whole-attempt limit for small requests; 0: none (stall detection only) */
    int64_t connect_timeout_ms;   /* 0: configuration default (metadata services want less) */
    int path_as_is;               /* send "/./" and "/../" as they are (S3 keys may hold them) */
    const int *stop;              /* non-NULL: the transfer aborts (ERR_CANCELLED) once *stop is set
                                     (with __atomic_store_n: it is read from curl's callbacks) */
    int uncancellable;            /* clean-up (aborting a multipart upload) goes out even after a signal */
    size_t max_body;              /* cap on a kept body, default 16 MiB */
    http_sign_fn sign;
    http_retry_fn retry_hook;
    void *hook_ctx;
};

struct http_response {
    long status;
    int attempts;
    int64_t content_length;       /* -1 when the server gave none */
    int64_t retry_after_ms;       /* -1 when absent */
    struct curl_slist *headers;   /* "name: value", names lower-cased, of the final response */
    struct buf body;              /* kept body, or the start of an error body */
    int64_t delivered;            /* bytes handed to on_data */
};

void http_response_free(struct http_response *r);
/* A response header's value (name lower-case), or NULL. */
const char *http_header(const struct http_response *r, const char *name);

/* Performs the request with retries. Returns 0 for a final 2xx/304; otherwise -1 with e set
 * (kind from the status: 404 ERR_NOT_FOUND, 401/403 ERR_AUTH, 412 ERR_INTEGRITY, other
 * ERR_HTTP; e->http_status and e->transient filled) and resp still describing the last answer. */
int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp,
                 struct err *e);

/* Retry classification and backoff, exposed for unit tests. */
int http_retryable_curl_code(int curl_code);
int http_retryable_status(long status);
int64_t http_backoff_ms(int attempt, int64_t retry_after_ms, const struct http_config *cfg, unsigned rnd);
/* Parses Retry-After (delta seconds or an HTTP-date) relative to now; -1 if malformed. */
int64_t http_parse_retry_after(const char *value, time_t now);

#endif
