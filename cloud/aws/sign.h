/* SigV4 for one http_request, as a hook of the HTTP layer (http_request.sign): every attempt,
 * retries included, is signed afresh with the current time and the current credentials of the
 * chain (creds.h). The clock correction learnt from one server's RequestTimeTooSkewed applies to
 * every later signature of the process, whatever the service: the clock is the process's. */
#ifndef STEPOP_AWS_SIGN_H
#define STEPOP_AWS_SIGN_H

#include "../../runtime/http.h"

#include <time.h>

/* One request's signing state; also the hook_ctx its retry hook gets. */
struct aws_sign {
    const char *service;      /* the credential scope's service: "s3", "sagemaker" */
    const char *region;
    const char *host;         /* the Host header's value */
    const char *path;         /* as sent, already encoded (sigv4_encode) */
    const char *query;        /* as sent, or NULL */
    const char *payload_hash; /* hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD where allowed */
    time_t fixed_now;         /* STEPOP_NOW, or 0 for the clock */
    int refresh_creds;        /* the server said the token expired: ask the provider again */
    int refreshed;            /* ... once per request */
};

/* An http_sign_fn (ctx: struct aws_sign). Signs host, x-amz-date, x-amz-content-sha256, the
 * session token, every x-amz-* header of the request, content-type and content-md5; not Range or
 * If-Match, which the resume logic may change between attempts. */
int aws_sign_hook(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e);

/* The time to sign with: fixed_now (or the clock) corrected by the skew learnt so far. */
time_t aws_sign_time(time_t fixed_now);

/* For a retry hook, on RequestTimeTooSkewed: learns the skew from the answer's Date (with a
 * warning naming the server, "S3") and returns 1 (retry); 0 when the answer has no usable Date. */
int aws_sign_skewed(const struct aws_sign *s, const struct http_response *r, const char *who);

/* For a retry hook, on ExpiredToken: the next attempt fetches fresh credentials. Returns 1
 * (retry) the first time for this request, 0 after. */
int aws_sign_expired(struct aws_sign *s);

#endif
