/* One JSON API call for every control-plane client (the Docker engine now; Kubernetes, SageMaker,
 * Vertex AI, AzureML next): a request built on runtime/http.c's http_perform (its retries for
 * transport errors, 408, 429 and 5xx, its timeouts and cancellation), an optional JSON body, the
 * answer parsed, and a failure that says what the platform said, in its own words, with any
 * token, signature or password taken out. */
#ifndef STEPOP_API_H
#define STEPOP_API_H

#include "../runtime/err.h"
#include "../runtime/http.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* The platform's own account of a failure. */
struct api_error {
    char code[128];    /* its error code or class ("NotFound", "NOT_FOUND", "ValidationException"), or "" */
    char message[896]; /* its message, or "" */
};

/* Finds the platform's error in an answer (body: the answer parsed, NULL when it is not JSON;
 * resp: its headers). Returns 1 when it found a code or a message, else 0. */
typedef int (*api_error_fn)(const struct http_response *resp, const cJSON *body, struct api_error *out);

/* Docker Engine API (and Podman's): {"message": "..."}. */
int api_error_docker(const struct http_response *resp, const cJSON *body, struct api_error *out);
/* Google APIs (Vertex AI, GCS JSON): {"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}. */
int api_error_google(const struct http_response *resp, const cJSON *body, struct api_error *out);
/* Azure Resource Manager and AzureML: {"error": {"code": "ResourceNotFound", "message": "..."}}. */
int api_error_azure(const struct http_response *resp, const cJSON *body, struct api_error *out);
/* Kubernetes: a Status object {"kind": "Status", "status": "Failure", "message": "...", "reason": "NotFound"}. */
int api_error_kubernetes(const struct http_response *resp, const cJSON *body, struct api_error *out);
/* AWS JSON 1.0/1.1 protocols (SageMaker): the type from the X-Amzn-ErrorType header or "__type"
 * (or "code"), without its namespace ("aws.protocoltests#FooError" -> "FooError") or anything
 * after a ':'; the message from "message" or "Message". */
int api_error_aws_json(const struct http_response *resp, const cJSON *body, struct api_error *out);

/* Overrides the retry decision for an error answer (status >= 300), given the platform's error
 * (empty when none was found): 1 retry, 0 do not, -1 the HTTP layer's default. */
typedef int (*api_retry_fn)(void *ctx, long status, const struct api_error *err);

struct api_call {
    /* Passed to http_perform as it is (method, url, unix_socket, headers, timeouts, attempts,
     * uncancellable, on_data, sign, TLS settings ...), except for what the fields below set. */
    struct http_request http;
    const cJSON *body;          /* sent as JSON; NULL: none (or http.body as it is) */
    const char *content_type;   /* of body; NULL: application/json */
    int json_answer;            /* a 2xx answer with a body must be JSON: parsed into api_response.json */
    const char *label;          /* names the call in messages after the method ("/containers/create");
                                   NULL: the URL, redacted */
    api_error_fn error;         /* NULL: the answer's first bytes are the message */
    const char *const *secrets; /* NULL-terminated strings never to appear in a message (tokens the
                                   caller holds); Authorization headers' values are added */
    api_retry_fn retry;         /* NULL: http.retry_hook, if any, decides */
    void *retry_ctx;
};

struct api_response {
    long status;                /* 0 when no answer came */
    cJSON *json;                /* the 2xx answer (json_answer), or an error answer that is JSON; else NULL */
    struct api_error error;     /* what the extractor found in an error answer */
    struct http_response http;  /* headers, raw body (when not streamed) */
};

void api_response_free(struct api_response *r);

/* Performs the call. Returns 0 for a final 2xx or 304. Otherwise -1 with e set: for an error
 * answer "METHOD LABEL: HTTP STATUS: CODE: MESSAGE" (kind 404 ERR_NOT_FOUND, 409 ERR_REFUSED,
 * 401/403 ERR_AUTH, else ERR_HTTP; e->http_status, and e->transient as the HTTP layer decided),
 * else the HTTP layer's error (no answer, cancelled, a consumer's failure) or a 2xx answer that
 * is not JSON. resp describes the last answer either way; the caller frees it. */
int api_perform(struct http_client *c, const struct api_call *call, struct api_response *resp, struct err *e);

/* text for a message: URIs lose their userinfo and credential query values
 * (uri_redact_secrets), "Bearer X" loses X, and each of secrets (NULL-terminated, may be NULL)
 * becomes REDACTED. Caller frees. */
char *api_redact(const char *text, const char *const *secrets);

#endif
