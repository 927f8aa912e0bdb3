/* cloud/aws/json_rpc.c against a scripted loopback server: the JSON 1.1 request (target,
 * content type, signature), the service's error type and message, throttling retried, other
 * client errors not, a skewed clock corrected once, an expired token refreshed, the endpoint's
 * region. */
#include "../../cloud/aws/creds.h"
#include "../../cloud/aws/json_rpc.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static char *answer(const char *status, const char *body)
{
    return xasprintf("HTTP/1.1 %s\r\nContent-Type: application/x-amz-json-1.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     status, strlen(body), body);
}

/* Listens on loopback, points AWS_ENDPOINT_URL_SAGEMAKER at it, runs op. */
static int run(struct server *s, const char *op, const cJSON *in, cJSON **out, char **code, struct err *e)
{
    /* accept gives up after 2 s: an answer not asked for again stays unused. */
    int port, fd = loopback_listener(4, 2000, &port);
    if (fd < 0)
        return -2;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL_SAGEMAKER", url, 1);
    pthread_t t = server_start(s, fd);
    struct aws_json_client c;
    err_clear(e);
    int rc = aws_json_open(&c, &aws_json_sagemaker, "eu-west-1", e);
    if (rc == 0) {
        rc = aws_json_call(&c, op, in, out, code, e);
        aws_json_close(&c);
    }
    pthread_join(t, NULL);
    close(fd);
    return rc;
}

int main(void)
{
    struct err e = { 0 };
    if (http_global_init(&e) < 0)
        return 1;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_SESSION_TOKEN", "token-one", 1);
    setenv("STEPOP_HTTP_RETRY_BASE", "1ms", 1);
    unsetenv("AWS_ENDPOINT_URL");
    aws_credentials_reset();
    struct server s;
    cJSON *out;
    char *code;

    /* The endpoint the SDKs would use, and the region from the caller. */
    unsetenv("AWS_ENDPOINT_URL_SAGEMAKER");
    struct aws_json_client c;
    is_int(aws_json_open(&c, &aws_json_sagemaker, "eu-west-1", &e), 0, "open without an override");
    is_str(c.url, "https://api.sagemaker.eu-west-1.amazonaws.com/", "SageMaker's regional host");
    aws_json_close(&c);
    is_int(aws_json_open(&c, &aws_json_logs, "cn-north-1", &e), 0, "open CloudWatch Logs");
    is_str(c.url, "https://logs.cn-north-1.amazonaws.com.cn/", "CloudWatch Logs' host in China");
    aws_json_close(&c);

    /* A call: headers, target, signature, body; the answer parsed. */
    char *ok1 = answer("200 OK", "{\"TrainingJobArn\":\"arn:aws:sagemaker:eu-west-1:1:training-job/j\"}");
    s = (struct server){ .answers = { ok1 }, .n = 1 };
    cJSON *in = cJSON_Parse("{\"TrainingJobName\":\"j\"}");
    is_int(run(&s, "CreateTrainingJob", in, &out, &code, &e), 0, "CreateTrainingJob succeeds");
    is_str(json_str(out, "TrainingJobArn"), "arn:aws:sagemaker:eu-west-1:1:training-job/j", "the answer is parsed");
    ok(strncmp(s.heads[0], "POST / HTTP/1.1", 15) == 0, "POST /");
    ok(strcasestr(s.heads[0], "\r\nX-Amz-Target: SageMaker.CreateTrainingJob") != NULL, "X-Amz-Target");
    ok(strcasestr(s.heads[0], "\r\nContent-Type: application/x-amz-json-1.1") != NULL, "the JSON 1.1 content type");
    ok(strcasestr(s.heads[0], "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") != NULL, "signed");
    ok(strstr(s.heads[0], "/eu-west-1/sagemaker/aws4_request") != NULL, "for sagemaker in the region given");
    ok(strstr(s.heads[0], "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target") !=
           NULL,
       "the target and content type are signed");
    ok(strcasestr(s.heads[0], "\r\nX-Amz-Security-Token: token-one") != NULL, "with the session token");
    is_str(s.bodies[0], "{\"TrainingJobName\":\"j\"}", "the body as compact JSON");
    cJSON_Delete(out);
    free(ok1);

    /* The service's error: its type without the namespace, its message; a 400 is not retried. */
    char *bad = answer("400 Bad Request", "{\"__type\":\"com.amazonaws.sagemaker#ResourceLimitExceeded\","
                                          "\"Message\":\"The account-level service limit 'ml.p4d.24xlarge for training job "
                                          "usage' is 0 Instances\"}");
    s = (struct server){ .answers = { bad, bad }, .n = 2 };
    is_int(run(&s, "CreateTrainingJob", in, &out, &code, &e), -1, "an error answer fails");
    is_str(e.msg,
           "SageMaker CreateTrainingJob: HTTP 400: ResourceLimitExceeded: The account-level service limit "
           "'ml.p4d.24xlarge for training job usage' is 0 Instances",
           "the operation, the status, SageMaker's type and message");
    is_str(code, "ResourceLimitExceeded", "the type for the caller");
    is_int(s.seen, 1, "not retried");
    free(code);
    free(bad);

    /* Throttling (a 400) is retried. */
    char *thr = answer("400 Bad Request", "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}");
    char *ok2 = answer("200 OK", "{}");
    s = (struct server){ .answers = { thr, ok2 }, .n = 2 };
    is_int(run(&s, "DescribeTrainingJob", in, &out, &code, &e), 0, "throttled, then answered");
    is_int(s.seen, 2, "the throttled call was retried");
    cJSON_Delete(out);

    /* A 5xx is retried by the HTTP layer. */
    char *five = answer("503 Service Unavailable", "{\"__type\":\"ServiceUnavailable\",\"message\":\"x\"}");
    s = (struct server){ .answers = { five, ok2 }, .n = 2 };
    is_int(run(&s, "DescribeTrainingJob", in, &out, &code, &e), 0, "a 503, then answered");
    is_int(s.seen, 2, "the 503 was retried");
    cJSON_Delete(out);

    /* An expired token: fresh credentials for the next attempt (here the same provider). */
    char *exp = answer("400 Bad Request", "{\"__type\":\"ExpiredTokenException\",\"message\":\"The security token "
                                          "included in the request is expired\"}");
    s = (struct server){ .answers = { exp, ok2 }, .n = 2 };
    is_int(run(&s, "StopTrainingJob", in, &out, &code, &e), 0, "an expired token, then answered");
    is_int(s.seen, 2, "retried once with fresh credentials");
    cJSON_Delete(out);

    /* A signature refused for the clock: retried once with the server's Date, not twice. */
    const char *skew_body = "{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature expired: "
                            "20240101T000000Z is now earlier than 20240101T001000Z (20240101T001500Z - 5 min.)\"}";
    char *skew = xasprintf("HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nConnection: close\r\n"
                           "Date: %s\r\nContent-Length: %zu\r\n\r\n%s",
                           "Mon, 01 Jan 2024 00:15:00 GMT", strlen(skew_body), skew_body);
    s = (struct server){ .answers = { skew, ok2 }, .n = 2 };
    is_int(run(&s, "DescribeTrainingJob", in, &out, &code, &e), 0, "a skewed clock, then answered");
    is_int(s.seen, 2, "retried with the server's time");
    cJSON_Delete(out);
    s = (struct server){ .answers = { skew, skew, ok2 }, .n = 3 };
    is_int(run(&s, "DescribeTrainingJob", in, &out, &code, &e), -1, "refused for the clock twice: fails");
    is_int(s.seen, 2, "only one retry for the clock");
    ok(strstr(e.msg, "InvalidSignatureException: Signature expired") != NULL, "in SageMaker's words");
    free(code);
    free(skew);

    /* No input: an empty object. */
    s = (struct server){ .answers = { ok2 }, .n = 1 };
    is_int(run(&s, "ListTrainingJobs", NULL, &out, NULL, &e), 0, "no input");
    is_str(s.bodies[0], "{}", "sends {}");
    cJSON_Delete(out);

    ok(aws_json_throttling("ThrottlingException") && !aws_json_throttling("ValidationException"),
       "throttling by its type");
    cJSON_Delete(in);
    free(thr);
    free(ok2);
    free(five);
    free(exp);
    return tap_done();
}
