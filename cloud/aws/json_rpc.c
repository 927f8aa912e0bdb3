#include "json_rpc.h"

#include "sign.h"
#include "sigv4.h"

#include "../api.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/timeutil.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct aws_json_service aws_json_sagemaker = { "SAGEMAKER", "api.sagemaker", "sagemaker", "SageMaker", "SageMaker" };
const struct aws_json_service aws_json_logs = { "CLOUDWATCH_LOGS", "logs", "logs", "Logs_20140328", "CloudWatch Logs" };

int aws_json_open(struct aws_json_client *c, const struct aws_json_service *svc, const char *region, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->svc = svc;
    if (aws_endpoint_resolve(svc->service_id, svc->host_prefix, &c->ep, e) < 0) {
        aws_endpoint_free(&c->ep);
        return -1;
    }
    if (region && *region && strcmp(region, c->ep.region) != 0) {
        free(c->ep.region);
        c->ep.region = xstrdup(region);
        if (!c->ep.custom) {
            free(c->ep.host);
            c->ep.host = xasprintf("%s.%s.%s", svc->host_prefix, region, aws_dns_suffix(region));
        }
    }
    const char *now = getenv("STEPOP_NOW");
    if (now && *now && time_parse(now, &c->fixed_now) < 0) {
        aws_endpoint_free(&c->ep);
        return err_set(e, ERR_INVALID, "STEPOP_NOW: expected RFC 3339 or YYYYMMDDTHHMMSSZ, got \"%s\"", now);
    }
    c->url = xasprintf("%s://%s/", c->ep.scheme, c->ep.host);
    c->http = http_client_new();
    return 0;
}

void aws_json_close(struct aws_json_client *c)
{
    if (c->http)
        http_client_free(c->http);
    free(c->url);
    aws_endpoint_free(&c->ep);
    memset(c, 0, sizeof *c);
}

int aws_json_throttling(const char *type)
{
    /* The SDKs' throttling error codes (botocore's retry quota "throttling" class). */
    static const char *const codes[] = {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", NULL,
    };
    for (const char *const *c = codes; *c; c++)
        if (strcmp(type, *c) == 0)
            return 1;
    return 0;
}

/* The signing state and what the retry hook has done for this call. The sign hook reads the
 * struct aws_sign at its start. */
struct aws_json_ctx {
    struct aws_sign sign;
    const char *label;
    int skew_retried;
};

/* Throttling is retried whatever its status (SageMaker answers 400 ThrottlingException); a
 * signature refused for the time, once, with the server's Date; an expired token, once, with
 * fresh credentials; everything else as the HTTP layer decides (5xx, 429 and 408 retried). */
static int aws_json_retry(void *ctx, const struct http_response *r)
{
    struct aws_json_ctx *k = ctx;
    if (r->status < 300)
        return -1;
    cJSON *body = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    struct api_error er;
    memset(&er, 0, sizeof er);
    api_error_aws_json(r, body, &er);
    cJSON_Delete(body);
    if (aws_json_throttling(er.code))
        return 1;
    if (!strcmp(er.code, "RequestTimeTooSkewed") || !strcmp(er.code, "RequestExpired") ||
        (!strcmp(er.code, "InvalidSignatureException") &&
         (strstr(er.message, "Signature expired") || strstr(er.message, "Signature not yet current")))) {
        if (k->skew_retried)
            return 0;
        k->skew_retried = 1;
        return aws_sign_skewed(&k->sign, r, k->label);
    }
    if (!strcmp(er.code, "ExpiredToken") || !strcmp(er.code, "ExpiredTokenException"))
        return aws_sign_expired(&k->sign);
    return -1;
}

int aws_json_call(struct aws_json_client *c, const char *op, const cJSON *input, cJSON **output, char **code,
                  struct err *e)
{
    if (output)
        *output = NULL;
    if (code)
        *code = NULL;
    cJSON *empty = input ? NULL : cJSON_CreateObject();
    char *body = json_print(input ? input : empty, 0);
    cJSON_Delete(empty);
    char hash[65];
    sigv4_sha256_hex(body, strlen(body), hash);
    char *label = xasprintf("%s %s", c->svc->label, op);
    struct aws_json_ctx k = { .sign = { .service = c->svc->signing_name, .region = c->ep.region, .host = c->ep.host,
                                        .path = "/", .payload_hash = hash, .fixed_now = c->fixed_now },
                              .label = c->svc->label };
    char *target = xasprintf("X-Amz-Target: %s.%s", c->svc->target_prefix, op);
    const char *headers[] = { target, "Content-Type: application/x-amz-json-1.1", NULL };
    struct api_call call = {
        .http = { .method = "POST", .url = c->url, .headers = headers, .body = body, .body_len = strlen(body),
                  .max_attempts = c->max_attempts, .timeout_ms = 60000, .sign = aws_sign_hook,
                  .retry_hook = aws_json_retry, .hook_ctx = &k },
        .json_answer = 1,
        .label = label,
        .error = api_error_aws_json,
    };
    struct api_response resp;
    /* api_perform's message starts with the method; the operation names the call. */
    int rc = api_perform(c->http, &call, &resp, e);
    if (rc < 0) {
        const char *post = "POST ";
        if (str_has_prefix(e->msg, post))
            memmove(e->msg, e->msg + strlen(post), strlen(e->msg + strlen(post)) + 1);
        if (code && resp.error.code[0])
            *code = xstrdup(resp.error.code);
    } else if (output) {
        *output = resp.json;
        resp.json = NULL;
    }
    api_response_free(&resp);
    free(target);
    free(label);
    free(body);
    return rc;
}
