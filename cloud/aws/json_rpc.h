/* One call of an AWS JSON 1.1 service (SageMaker, CloudWatch Logs): POST / with
 * X-Amz-Target: <prefix>.<Operation> and an application/x-amz-json-1.1 body, signed with SigV4
 * (sign.h) for the service and region, at the endpoint the SDKs would use (endpoint.h). Errors say
 * the service's own "__type" and message; throttling and 5xx are retried, a skewed clock is
 * corrected and an expired session token refreshed, as the S3 store does. */
#ifndef STEPOP_AWS_JSON_RPC_H
#define STEPOP_AWS_JSON_RPC_H

#include "endpoint.h"

#include "../../runtime/err.h"
#include "../../runtime/http.h"

#include <cjson/cJSON.h>
#include <time.h>

struct aws_json_service {
    const char *service_id;    /* AWS_ENDPOINT_URL_<service_id>: "SAGEMAKER" */
    const char *host_prefix;   /* the regional host's first labels: "api.sagemaker" */
    const char *signing_name;  /* the credential scope's service: "sagemaker" */
    const char *target_prefix; /* X-Amz-Target's prefix: "SageMaker" */
    const char *label;         /* for messages: "SageMaker" */
};

extern const struct aws_json_service aws_json_sagemaker; /* api.sagemaker, SageMaker.* */
extern const struct aws_json_service aws_json_logs;      /* logs, Logs_20140328.* */

struct aws_json_client {
    const struct aws_json_service *svc;
    struct aws_endpoint ep;
    char *url;                 /* <scheme>://<host>/ */
    time_t fixed_now;          /* STEPOP_NOW, or 0 */
    int max_attempts;          /* 0: the HTTP layer's default */
    struct http_client *http;
};

/* Resolves the endpoint (region: NULL for aws_region()). No request is made. */
int aws_json_open(struct aws_json_client *c, const struct aws_json_service *svc, const char *region, struct err *e);
void aws_json_close(struct aws_json_client *c);

/* Performs op with input (NULL: {}); *output (caller frees; may be NULL) gets the answer. On an
 * error answer e says "<label> <op>: HTTP <status>: <__type>: <message>" and *code (when not
 * NULL, caller frees) the type without its namespace. */
int aws_json_call(struct aws_json_client *c, const char *op, const cJSON *input, cJSON **output, char **code,
                  struct err *e);

/* Whether an error type is throttling, retried whatever the status. Exposed for unit tests. */
int aws_json_throttling(const char *type);

#endif
