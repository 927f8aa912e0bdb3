/* cloud/api.c: the platforms' error extractors against the bodies their documentation shows,
 * redaction, and calls against a loopback server (TCP and a unix socket) that answers from a
 * script: JSON bodies both ways, error messages, retries by class and by the platform's hook, and
 * the caller's http_request settings passed through. */
#include "../../cloud/api.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- extractors ---- */

static int extract(api_error_fn fn, const char *json, const struct http_response *resp, struct api_error *out)
{
    cJSON *j = cJSON_Parse(json);
    memset(out, 0, sizeof *out);
    int found = fn(resp, j, out);
    cJSON_Delete(j);
    return found;
}

static void test_extractors(void)
{
    struct api_error er;

    /* Docker Engine API, ErrorResponse. */
    ok(extract(api_error_docker, "{\"message\": \"No such container: c2ada9df5af8\"}", NULL, &er), "docker: found");
    is_str(er.message, "No such container: c2ada9df5af8", "docker: message");
    is_str(er.code, "", "docker: no code");
    ok(!extract(api_error_docker, "{\"error\": {\"message\": \"x\"}}", NULL, &er), "docker: another shape is not its");

    /* Google APIs (AIP-193). */
    ok(extract(api_error_google,
               "{\"error\": {\"code\": 400, \"message\": \"API key not valid. Please pass a valid API key.\", "
               "\"status\": \"INVALID_ARGUMENT\", \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", "
               "\"reason\": \"API_KEY_INVALID\", \"domain\": \"googleapis.com\"}]}}",
               NULL, &er),
       "google: found");
    is_str(er.code, "INVALID_ARGUMENT", "google: the status is the code");
    is_str(er.message, "API key not valid. Please pass a valid API key.", "google: message");
    ok(!extract(api_error_google, "{\"message\": \"x\"}", NULL, &er), "google: Docker's shape is not its");
    ok(!extract(api_error_google, "{\"error\": \"invalid_grant\"}", NULL, &er), "google: an OAuth error string is not its");

    /* Azure REST API guidelines / ARM. */
    ok(extract(api_error_azure,
               "{\"error\": {\"code\": \"ResourceNotFound\", \"message\": \"The Resource 'Microsoft.MachineLearningServices/"
               "workspaces/ws1' under resource group 'rg' was not found.\", \"target\": null, \"details\": []}}",
               NULL, &er),
       "azure: found");
    is_str(er.code, "ResourceNotFound", "azure: code");
    is_str(er.message,
           "The Resource 'Microsoft.MachineLearningServices/workspaces/ws1' under resource group 'rg' was not found.",
           "azure: message");

    /* Kubernetes API conventions: a Status. */
    ok(extract(api_error_kubernetes,
               "{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"metadata\": {}, \"status\": \"Failure\", "
               "\"message\": \"pods \\\"grafana\\\" not found\", \"reason\": \"NotFound\", "
               "\"details\": {\"name\": \"grafana\", \"kind\": \"pods\"}, \"code\": 404}",
               NULL, &er),
       "kubernetes: found");
    is_str(er.code, "NotFound", "kubernetes: the reason is the code");
    is_str(er.message, "pods \"grafana\" not found", "kubernetes: message");
    ok(!extract(api_error_kubernetes, "{\"kind\": \"Pod\", \"message\": \"x\"}", NULL, &er),
       "kubernetes: an object that is not a Status is not an error");

    /* AWS JSON 1.1 (Smithy awsJson1_1 error serialization). */
    ok(extract(api_error_aws_json,
               "{\"__type\": \"aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/"
               "com.amazon.coral.validate/\", \"message\": \"Hi\"}",
               NULL, &er),
       "aws json: found");
    is_str(er.code, "FooError", "aws json: __type without namespace and colon suffix");
    is_str(er.message, "Hi", "aws json: message");
    ok(extract(api_error_aws_json,
               "{\"__type\": \"ValidationException\", \"Message\": \"1 validation error detected\"}", NULL, &er),
       "aws json: SageMaker's shape");
    is_str(er.code, "ValidationException", "aws json: a plain __type");
    is_str(er.message, "1 validation error detected", "aws json: Message with a capital");
    ok(extract(api_error_aws_json, "{\"code\": \"ThrottlingException\"}", NULL, &er), "aws json: code member");
    is_str(er.code, "ThrottlingException", "aws json: code member's value");
    struct http_response hr = { 0 };
    hr.headers = curl_slist_append(NULL, "x-amzn-errortype: ResourceLimitExceeded:http://internal.amazon.com/");
    ok(extract(api_error_aws_json, "{\"__type\": \"Other\", \"message\": \"too many\"}", &hr, &er),
       "aws json: header");
    is_str(er.code, "ResourceLimitExceeded", "aws json: X-Amzn-ErrorType wins over __type");
    curl_slist_free_all(hr.headers);
    ok(!extract(api_error_aws_json, "{\"error\": {}}", NULL, &er), "aws json: nothing of its in another shape");
}

/* ---- redaction ---- */

static void check_redact(const char *text, const char *const *secrets, const char *want, const char *what)
{
    char *got = api_redact(text, secrets);
    is_str(got, want, "redact: %s", what);
    free(got);
}

static void test_redact(void)
{
    check_redact("No such container: c2ada9df5af8", NULL, "No such container: c2ada9df5af8", "plain text is kept");
    check_redact("Get \"https://registry-1.docker.io/v2/\": dial tcp: i/o timeout", NULL,
                 "Get \"https://registry-1.docker.io/v2/\": dial tcp: i/o timeout", "a URI without secrets is kept");
    check_redact("fetching https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcdef&x-id=GetObject failed",
                 NULL,
                 "fetching https://b.s3.amazonaws.com/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x-id=GetObject failed",
                 "a presigned URI loses its credentials");
    check_redact("proxy http://user:hunter2@proxy:3128 refused", NULL, "proxy http://***@proxy:3128 refused",
                 "userinfo");
    check_redact("token Bearer eyJhbGciOi.J9x-y_z= was rejected", NULL, "token Bearer REDACTED was rejected",
                 "a bearer token");
    check_redact("bearer REDACTED was rejected", NULL, "bearer REDACTED was rejected", "an already redacted token stays");
    const char *secrets[] = { "s3cr3t-Value", NULL };
    check_redact("key s3cr3t-Value, again s3cr3t-Value.", secrets, "key REDACTED, again REDACTED.", "the caller's secrets");
    check_redact("://odd and Bearer", NULL, "://odd and Bearer", "no scheme, no token");
}

/* ---- calls against a loopback server ---- */

static int tcp_listener(char *url, size_t len)
{
    int port, fd = loopback_listener(4, 10000, &port);
    if (fd >= 0)
        snprintf(url, len, "http://127.0.0.1:%d", port);
    return fd;
}

/* Runs one call against a server that gives the answers in turn. */
static int run(struct server *s, int fd, struct api_call *call, struct api_response *resp, struct err *e)
{
    pthread_t t = server_start(s, fd);
    struct http_client *c = http_client_new();
    err_clear(e);
    int rc = api_perform(c, call, resp, e);
    http_client_free(c);
    pthread_join(t, NULL);
    return rc;
}

static char *answer(const char *status, const char *extra_headers, const char *body)
{
    return xasprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
                     status, extra_headers, strlen(body), body);
}

static int retry_throttling(void *ctx, long status, const struct api_error *er)
{
    (*(int *)ctx)++;
    return status == 400 && strcmp(er->code, "ThrottlingException") == 0 ? 1 : -1;
}

static void test_calls(void)
{
    char base[64], url[256];
    struct server s;
    struct api_response resp;
    struct err e;
    int fd;

    /* A JSON body out, a JSON answer back; the caller's headers and settings go through. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/containers/create?name=x", base);
    char *a1 = answer("201 Created", "", "{\"Id\": \"4fa6e0f0c678\", \"Warnings\": []}");
    s = (struct server){ .answers = { a1 }, .n = 1 };
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "Image", "busybox");
    const char *hdrs[] = { "X-Test: yes", NULL };
    struct api_call create = { .http = { .method = "POST", .url = url, .headers = hdrs, .max_attempts = 1 },
                               .body = body, .json_answer = 1, .error = api_error_docker };
    is_int(run(&s, fd, &create, &resp, &e), 0, "POST with a JSON body succeeds");
    is_int(resp.status, 201, "the status comes back");
    is_str(json_str(resp.json, "Id"), "4fa6e0f0c678", "the answer is parsed");
    is_str(s.bodies[0], "{\"Image\":\"busybox\"}", "the body is sent as compact JSON");
    ok(strcasestr(s.heads[0], "\r\nContent-Type: application/json") != NULL, "with Content-Type: application/json");
    ok(strstr(s.heads[0], "\r\nX-Test: yes") != NULL, "and the caller's headers");
    ok(strncmp(s.heads[0], "POST /containers/create?name=x HTTP/1.1", 39) == 0, "to the URL given");
    api_response_free(&resp);
    close(fd);
    free(a1);

    /* Docker's error: the engine's message, the kind from the status. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/v1.41/containers/c2ada9df5af8/json", base);
    char *a2 = answer("404 Not Found", "", "{\"message\":\"No such container: c2ada9df5af8\"}");
    s = (struct server){ .answers = { a2 }, .n = 1 };
    struct api_call inspect = { .http = { .method = "GET", .url = url }, .json_answer = 1,
                                .label = "/containers/c2ada9df5af8/json", .error = api_error_docker };
    is_int(run(&s, fd, &inspect, &resp, &e), -1, "404 fails");
    is_str(e.msg, "GET /containers/c2ada9df5af8/json: HTTP 404: No such container: c2ada9df5af8",
           "the message: method, label, status and the engine's words");
    is_int(e.kind, ERR_NOT_FOUND, "404 is ERR_NOT_FOUND");
    is_int(e.http_status, 404, "e->http_status");
    is_int(resp.status, 404, "resp.status");
    is_str(resp.error.message, "No such container: c2ada9df5af8", "resp.error");
    ok(resp.json != NULL, "the error answer is kept as JSON");
    is_int(s.seen, 1, "a 404 is not retried");
    api_response_free(&resp);
    close(fd);
    free(a2);

    /* Kubernetes: the reason and message; 409 is ERR_REFUSED; no label: the URL, redacted. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/apis/batch/v1/namespaces/ml/jobs?fieldManager=stepop&access_token=abc123", base);
    char *a3 = answer("409 Conflict", "",
                      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
                      "\"jobs.batch \\\"step-1\\\" already exists\",\"reason\":\"AlreadyExists\",\"details\":"
                      "{\"name\":\"step-1\",\"group\":\"batch\",\"kind\":\"jobs\"},\"code\":409}");
    s = (struct server){ .answers = { a3 }, .n = 1 };
    struct api_call kjob = { .http = { .method = "POST", .url = url }, .error = api_error_kubernetes };
    is_int(run(&s, fd, &kjob, &resp, &e), -1, "409 fails");
    char want[320];
    snprintf(want, sizeof want,
             "POST %s/apis/batch/v1/namespaces/ml/jobs?...: HTTP 409: AlreadyExists: jobs.batch \"step-1\" already exists",
             base);
    is_str(e.msg, want, "the message: reason and message; the URL without its query");
    is_int(e.kind, ERR_REFUSED, "409 is ERR_REFUSED");
    api_response_free(&resp);
    close(fd);
    free(a3);

    /* A token echoed in an error answer never reaches the message. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/v1/projects/p/locations/l/customJobs", base);
    char *a4 = answer("401 Unauthorized", "",
                      "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials: "
                      "ya29.a0AfH6SMB-secret-token was revoked; see https://u:pw@example.com/x?sig=zzz\","
                      "\"status\":\"UNAUTHENTICATED\"}}");
    s = (struct server){ .answers = { a4 }, .n = 1 };
    const char *auth[] = { "Authorization: Bearer ya29.a0AfH6SMB-secret-token", NULL };
    struct api_call vjob = { .http = { .method = "POST", .url = url, .headers = auth }, .label = "customJobs.create",
                             .error = api_error_google };
    is_int(run(&s, fd, &vjob, &resp, &e), -1, "401 fails");
    is_str(e.msg,
           "POST customJobs.create: HTTP 401: UNAUTHENTICATED: Request had invalid authentication credentials: "
           "REDACTED was revoked; see https://***@example.com/x?sig=REDACTED",
           "the token, the password and the signature are redacted");
    is_int(e.kind, ERR_AUTH, "401 is ERR_AUTH");
    api_response_free(&resp);
    close(fd);
    free(a4);

    /* No extractor match: the answer's first bytes; 503 is retried by the HTTP layer. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/x", base);
    char *a5 = answer("503 Service Unavailable", "", "upstream connect error");
    char *a6 = answer("200 OK", "", "{\"ok\":true}");
    s = (struct server){ .answers = { a5, a6 }, .n = 2 };
    struct api_call get = { .http = { .method = "GET", .url = url }, .json_answer = 1, .label = "/x",
                            .error = api_error_azure };
    is_int(run(&s, fd, &get, &resp, &e), 0, "503 then 200 succeeds");
    is_int(resp.http.attempts, 2, "after a retry");
    ok(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp.json, "ok")), "the second answer is parsed");
    api_response_free(&resp);
    close(fd);

    /* The caller's max_attempts goes through: no retry. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/x", base);
    s = (struct server){ .answers = { a5 }, .n = 1 };
    get.http.max_attempts = 1;
    is_int(run(&s, fd, &get, &resp, &e), -1, "503 with max_attempts 1 fails");
    is_str(e.msg, "GET /x: HTTP 503: upstream connect error", "the raw answer is the message");
    ok(e.transient, "and it is transient");
    is_int(e.kind, ERR_HTTP, "503 is ERR_HTTP");
    api_response_free(&resp);
    close(fd);
    free(a5);

    /* The platform's hook: a 400 the HTTP layer would not retry is retried when it says so. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/x", base);
    char *a7 = answer("400 Bad Request", "", "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}");
    s = (struct server){ .answers = { a7, a6 }, .n = 2 };
    int hook_calls = 0;
    struct api_call sm = { .http = { .method = "POST", .url = url }, .body = body,
                           .content_type = "application/x-amz-json-1.1", .json_answer = 1, .label = "CreateTrainingJob",
                           .error = api_error_aws_json, .retry = retry_throttling, .retry_ctx = &hook_calls };
    is_int(run(&s, fd, &sm, &resp, &e), 0, "a throttled call is retried by the hook and succeeds");
    is_int(hook_calls, 1, "the hook saw the error answer (not the 2xx)");
    ok(strcasestr(s.heads[0], "\r\nContent-Type: application/x-amz-json-1.1") != NULL, "the content type given");
    api_response_free(&resp);
    close(fd);

    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/x", base);
    s = (struct server){ .answers = { a7 }, .n = 1 };
    sm.retry = NULL;
    is_int(run(&s, fd, &sm, &resp, &e), -1, "without the hook the 400 is final");
    is_str(e.msg, "POST CreateTrainingJob: HTTP 400: ThrottlingException: Rate exceeded", "AWS JSON message");
    is_str(resp.error.code, "ThrottlingException", "resp.error.code for the caller");
    ok(!e.transient, "not transient");
    api_response_free(&resp);
    close(fd);
    free(a7);

    /* A 2xx answer that must be JSON and is not. */
    fd = tcp_listener(base, sizeof base);
    snprintf(url, sizeof url, "%s/x", base);
    char *a8 = answer("200 OK", "", "<html>");
    s = (struct server){ .answers = { a8 }, .n = 1 };
    get.http.max_attempts = 0;
    is_int(run(&s, fd, &get, &resp, &e), -1, "a 2xx that is not JSON fails");
    is_str(e.msg, "/x: invalid JSON near line 1 (byte 0)", "naming the call");
    is_int(e.kind, ERR_INVALID, "ERR_INVALID");
    api_response_free(&resp);
    close(fd);
    free(a8);

    /* Over a unix socket, as the Docker API is spoken; a 2xx not asked to be JSON is kept raw. */
    char dir[] = "/tmp/test_api.XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp: %s", strerror(errno));
    } else {
        snprintf(path, sizeof path, "%s/engine.sock", dir);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un ua = { .sun_family = AF_UNIX };
        snprintf(ua.sun_path, sizeof ua.sun_path, "%s", path);
        ok(fd >= 0 && bind(fd, (struct sockaddr *)&ua, sizeof ua) == 0 && listen(fd, 4) == 0, "unix listener");
        char *a9 = answer("200 OK", "Api-Version: 1.41\r\n", "OK");
        s = (struct server){ .answers = { a9 }, .n = 1 };
        struct api_call ping = { .http = { .method = "GET", .url = "http://docker/_ping", .unix_socket = path },
                                 .error = api_error_docker };
        is_int(run(&s, fd, &ping, &resp, &e), 0, "GET /_ping over the socket");
        is_str(resp.http.body.data, "OK", "the raw answer");
        ok(resp.json == NULL, "not parsed");
        is_str(http_header(&resp.http, "api-version"), "1.41", "headers come back");
        api_response_free(&resp);
        close(fd);
        free(a9);
        unlink(path);
        rmdir(dir);
    }
    free(a6);
    cJSON_Delete(body);
}

int main(void)
{
    struct err e = { 0 };
    setenv("STEPOP_HTTP_RETRY_BASE", "10ms", 1);
    if (http_global_init(&e) < 0) {
        printf("Bail out! http_global_init: %s\n", e.msg);
        return 1;
    }
    test_extractors();
    test_redact();
    test_calls();
    return tap_done();
}
