/* What the files of the s3:// store share (store_s3.c: configuration, open, ls, stat, rm, presign;
 * s3_request.c: addressing, signing and S3's errors; s3_get.c: downloads; s3_put.c: uploads).
 * Private to them. */
#ifndef STEPOP_S3_INTERNAL_H
#define STEPOP_S3_INTERNAL_H

#include "store.h"

#include "../cloud/aws/sign.h"
#include "../runtime/http.h"

#include <stdint.h>
#include <time.h>

#define MIB (1024LL * 1024)
#define S3_MIN_PART (5 * MIB)          /* S3's smallest part but the last */
#define S3_MAX_PART (5LL * 1024 * MIB) /* and largest */
#define S3_MAX_PARTS 10000
/* Parts of a stream of unknown length double in size every this many parts, so that 10,000
 * parts reach S3's 5 TiB object limit; fewer of them are in flight as they grow (mem_budget). */
#define UNKNOWN_GROWTH_EVERY 1000

struct s3_config {
    char *scheme;      /* "https" */
    char *host;        /* "s3.us-west-2.amazonaws.com", "127.0.0.1:9000" */
    char *region;
    int custom;        /* endpoint from AWS_ENDPOINT_URL[_S3] */
    int path_style;
    int checksum;      /* send x-amz-checksum-sha256 */
    int sign_payload;  /* hash bodies into the signature instead of UNSIGNED-PAYLOAD */
    int64_t threshold, part_size;
    int concurrency;
    int64_t mem_budget; /* upload part buffers in all, but always room for one part */
    time_t fixed_now;  /* STEPOP_NOW, or 0 */
};

struct s3 {
    struct s3_config cfg;
    struct http_client *client;
};

/* ---- addressing (s3_request.c) --------------------------------------------------------- */

struct s3_path {
    char *bucket;
    char *key; /* "" for the bucket itself */
};

void s3_path_free(struct s3_path *p);
int s3_parse_uri(const char *uri, struct s3_path *p, struct err *e);

/* One request's target: the URL to send, the Host header and the path and query to sign. */
struct s3_target {
    char *url, *host, *path, *query;
};

void s3_target_free(struct s3_target *t);
/* key NULL addresses the bucket; query is already encoded (sigv4_encode) or NULL. */
void s3_make_target(const struct s3_config *c, const char *bucket, const char *key, const char *query,
                    struct s3_target *t);

/* ---- requests and S3's errors (s3_request.c) ------------------------------------------- */

/* S3's error code from an answer's body ("<Error><Code>SlowDown</Code>..."), or NULL. */
char *s3_error_code(const struct http_response *r, char **message);
int s3_retryable_code(const char *code);
/* Rewrites the HTTP layer's message with S3's code and message when the body has them. */
void s3_explain(struct err *e, const struct http_response *r, const char *what, const char *uri);

/* Everything one S3 request needs besides the body and the consumer: its signing state (which
 * is also the hook context of S3's retry rules) and the request itself. */
void s3_sign_init(struct aws_sign *k, const struct s3 *s, const struct s3_target *t, const char *payload_hash);
void s3_request_init(struct http_request *req, const char *method, const struct s3_target *t, struct aws_sign *k);
/* The payload hash for a body in memory. */
void s3_payload_hash(const struct s3_config *c, const void *body, size_t n, char out[65]);
/* The payload hash and, when checksums are on, the x-amz-checksum-sha256 value (else sum is ""),
 * hashing the body once for both. */
void s3_body_hashes(const struct s3_config *c, const void *body, size_t n, char hash[65], char sum[45]);
/* A request whose answer is small (or nothing): HEAD, DELETE, POST with XML. */
int s3_simple_request(struct s3 *s, struct http_client *client, const char *method, const struct s3_target *t,
                      const char *const *headers, const char *body, struct http_response *resp, struct err *e);

/* Size, ETag and time from an answer's headers. */
void s3_stat_from(const struct http_response *r, struct store_stat *st);
int s3_head_object(struct s3 *s, const char *uri, const struct s3_path *p, struct store_stat *out, struct err *e);

/* ---- transfers (s3_get.c, s3_put.c) ---------------------------------------------------- */

int s3_get_object(struct s3 *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                  struct store_stat *info, struct err *e);
int s3_put_object(struct s3 *s, const char *uri, struct store_source *src, struct err *e);

#endif
