/* Where an AWS service is reached, resolved as the AWS SDKs resolve it ("service-specific
 * endpoints" in the SDKs and Tools reference guide): AWS_ENDPOINT_URL_<SERVICE_ID>, else
 * AWS_ENDPOINT_URL, else the service's regional host under amazonaws.com (amazonaws.com.cn in
 * China's regions). Shared by every AWS client: the S3 store, STS, and the flavors to come. */
#ifndef STEPOP_AWS_ENDPOINT_H
#define STEPOP_AWS_ENDPOINT_H

#include "../../runtime/err.h"

struct aws_endpoint {
    char *scheme; /* "https", or the override's "http"/"https" */
    char *host;   /* "s3.us-west-2.amazonaws.com", "127.0.0.1:9000" */
    char *region; /* aws_region() */
    int custom;   /* from AWS_ENDPOINT_URL_<SERVICE_ID> or AWS_ENDPOINT_URL */
};

/* The override for a service, unparsed: AWS_ENDPOINT_URL_<service_id> ("S3", "STS",
 * "SAGEMAKER": the SDKs' upper-case service id, spaces as '_'), else AWS_ENDPOINT_URL; NULL when
 * neither is set (or both are empty). */
const char *aws_endpoint_override(const char *service_id);

/* Fills ep for a service: the override, which must be http(s)://host[:port] with no path and no
 * user name, or else https://<host_prefix>.<region>.<DNS suffix> ("s3", "api.sagemaker").
 * Returns -1 with e set on a malformed override (ep is then still freed by aws_endpoint_free). */
int aws_endpoint_resolve(const char *service_id, const char *host_prefix, struct aws_endpoint *ep, struct err *e);
void aws_endpoint_free(struct aws_endpoint *ep);

/* "amazonaws.com", or "amazonaws.com.cn" in the cn-* regions. */
const char *aws_dns_suffix(const char *region);

#endif
