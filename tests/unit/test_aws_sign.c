/* The AWS room's shared pieces (cloud/aws/endpoint.c, cloud/aws/sign.c): endpoint resolution
 * per service as the SDKs do it, the SigV4 request hook, the clock-skew correction and the
 * expired-token rule. */
#include "../../cloud/aws/creds.h"
#include "../../cloud/aws/endpoint.h"
#include "../../cloud/aws/sign.h"
#include "../../cloud/aws/sigv4.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void clear_env(void)
{
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL_SAGEMAKER");
    setenv("AWS_REGION", "eu-west-3", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
}

static void resolves(const char *id, const char *prefix, const char *scheme, const char *host, int custom,
                     const char *what)
{
    struct aws_endpoint ep;
    struct err e = { 0 };
    int rc = aws_endpoint_resolve(id, prefix, &ep, &e);
    ok(rc == 0 && ep.scheme && ep.host && !strcmp(ep.scheme, scheme) && !strcmp(ep.host, host) && ep.custom == custom,
       "%s: %s://%s%s (got %s://%s, %s)", what, scheme, host, custom ? ", custom" : "", ep.scheme ? ep.scheme : "-",
       ep.host ? ep.host : "-", rc == 0 ? "ok" : e.msg);
    aws_endpoint_free(&ep);
}

static void refused(const char *id, const char *msg, const char *what)
{
    struct aws_endpoint ep;
    struct err e = { 0 };
    int rc = aws_endpoint_resolve(id, "x", &ep, &e);
    ok(rc < 0 && e.kind == ERR_INVALID, "%s: refused", what);
    is_str(e.msg, msg, "%s: the message", what);
    aws_endpoint_free(&ep);
}

static void test_endpoints(void)
{
    clear_env();
    resolves("S3", "s3", "https", "s3.eu-west-3.amazonaws.com", 0, "no override");
    resolves("SAGEMAKER", "api.sagemaker", "https", "api.sagemaker.eu-west-3.amazonaws.com", 0, "another service");
    setenv("AWS_REGION", "cn-north-1", 1);
    resolves("SAGEMAKER", "api.sagemaker", "https", "api.sagemaker.cn-north-1.amazonaws.com.cn", 0, "China");
    is_str(aws_dns_suffix("cn-northwest-1"), "amazonaws.com.cn", "China's DNS suffix");
    is_str(aws_dns_suffix("us-east-1"), "amazonaws.com", "elsewhere");
    clear_env();
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000", 1);
    resolves("SAGEMAKER", "api.sagemaker", "http", "127.0.0.1:9000", 1, "AWS_ENDPOINT_URL");
    setenv("AWS_ENDPOINT_URL_SAGEMAKER", "https://sm.example:8443/", 1);
    resolves("SAGEMAKER", "api.sagemaker", "https", "sm.example:8443", 1, "the service's own wins");
    resolves("S3", "s3", "http", "127.0.0.1:9000", 1, "and only for that service");
    is_str(aws_endpoint_override("SAGEMAKER"), "https://sm.example:8443/", "the override, unparsed");
    setenv("AWS_ENDPOINT_URL_SAGEMAKER", "", 1);
    is_str(aws_endpoint_override("SAGEMAKER"), "http://127.0.0.1:9000", "an empty one is unset");
    clear_env();
    ok(aws_endpoint_override("S3") == NULL, "none: NULL");
    setenv("AWS_ENDPOINT_URL_S3", "ftp://h", 1);
    refused("S3", "AWS_ENDPOINT_URL[_S3] \"ftp://h\" must start with http:// or https://", "another scheme");
    setenv("AWS_ENDPOINT_URL_S3", "http://h/p", 1);
    refused("S3", "AWS_ENDPOINT_URL[_S3] \"http://h/p\" must not have a path", "a path");
    setenv("AWS_ENDPOINT_URL_SAGEMAKER", "https://u@h", 1);
    refused("SAGEMAKER", "AWS_ENDPOINT_URL[_SAGEMAKER] \"https://u@h\" needs a host (and no user name)", "a user name");
    clear_env();
}

static const char *header(const struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);
    for (; l; l = l->next)
        if (!strncasecmp(l->data, name, n) && l->data[n] == ':')
            return l->data + n + 1 + (l->data[n + 1] == ' ');
    return NULL;
}

static void test_hook(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
    unsetenv("AWS_SESSION_TOKEN");
    aws_credentials_reset();
    time_t now = 1369353600; /* 2013-05-24T00:00:00Z, the SigV4 examples' time */
    struct aws_sign k = { .service = "sagemaker", .region = "us-east-1", .host = "api.sagemaker.us-east-1.amazonaws.com",
                          .path = "/", .payload_hash = SIGV4_EMPTY_SHA256, .fixed_now = now };
    is_int(aws_sign_time(now), now, "no skew learnt yet");
    struct http_request req = { .method = "POST" };
    struct curl_slist *h = curl_slist_append(NULL, "X-Amz-Target: SageMaker.DescribeTrainingJob");
    h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.1");
    h = curl_slist_append(h, "Range: bytes=0-9");
    h = curl_slist_append(h, "Expect:");
    struct err e = { 0 };
    is_int(aws_sign_hook(&k, &req, &h, &e), 0, "the hook signs");
    is_str(header(h, "Host"), k.host, "Host");
    is_str(header(h, "x-amz-date"), "20130524T000000Z", "x-amz-date at the fixed time");
    is_str(header(h, "x-amz-content-sha256"), SIGV4_EMPTY_SHA256, "x-amz-content-sha256");
    ok(header(h, "x-amz-security-token") == NULL, "no session token with long-term keys");
    const char *auth = header(h, "Authorization");
    /* The same request signed directly: the hook signed exactly these headers. */
    struct sigv4_header sh[] = { { "host", k.host }, { "x-amz-date", "20130524T000000Z" },
                                 { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
                                 { "x-amz-target", "SageMaker.DescribeTrainingJob" },
                                 { "content-type", "application/x-amz-json-1.1" } };
    struct sigv4_input in = { .method = "POST", .path = "/", .headers = sh, .n_headers = 5,
                              .payload_hash = SIGV4_EMPTY_SHA256, .access_key = "AKIAIOSFODNN7EXAMPLE",
                              .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", .region = "us-east-1",
                              .service = "sagemaker", .when = now };
    struct sigv4_output out;
    sigv4_sign(&in, &out);
    is_str(auth, out.authorization, "Authorization: the service's scope, x-amz-* and content-type signed, not Range");
    ok(auth && strstr(auth, "/us-east-1/sagemaker/aws4_request"), "scoped to sagemaker");
    sigv4_output_free(&out);
    curl_slist_free_all(h);

    /* ExpiredToken: one retry with fresh credentials per request. */
    is_int(aws_sign_expired(&k), 1, "an expired token is retried");
    is_int(k.refresh_creds, 1, "with fresh credentials");
    is_int(aws_sign_expired(&k), 0, "once");

    /* RequestTimeTooSkewed: the server's Date corrects every later signature. */
    struct http_response r = { .status = 403 };
    is_int(aws_sign_skewed(&k, &r, "SageMaker"), 0, "no Date: not retried");
    r.headers = curl_slist_append(NULL, "date: Fri, 24 May 2013 00:10:00 GMT");
    is_int(aws_sign_skewed(&k, &r, "SageMaker"), 1, "a Date: retried");
    is_int(aws_sign_time(now), now + 600, "the skew applies to the next signature");
    is_int(aws_sign_time(now + 5), now + 605, "and to every later one");
    curl_slist_free_all(r.headers);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    aws_credentials_reset();
}

int main(void)
{
    test_endpoints();
    test_hook();
    return tap_done();
}
