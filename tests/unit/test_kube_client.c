/* cloud/kube/client.c against a loopback server that answers from a script: the credential in
 * each request, a 401 answered by reading the token file again and sending once more, the API
 * server's Status quoted in errors (a 403 names verb, resource and namespace), no token in any
 * message, text answers cut at max, and proxy-url honoured, no_proxy notwithstanding (the server
 * plays the proxy). */
#include "../../cloud/kube/client.h"
#include "../../runtime/http.h"
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

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static int listener(int *port)
{
    int fd = loopback_listener(4, 10000, port);
    if (fd < 0) {
        printf("Bail out! no loopback listener\n");
        exit(1);
    }
    return fd;
}

static char *answer(const char *status, const char *type, const char *body)
{
    return xasprintf("HTTP/1.1 %s\r\nContent-Type: %s\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s", status,
                     type, strlen(body), body);
}

static char *status_answer(const char *status, const char *reason, const char *message, int code)
{
    char *body = xasprintf("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                           "\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}",
                           message, reason, code);
    char *a = answer(status, "application/json", body);
    free(body);
    return a;
}

/* A kubeconfig for a server at port (or behind a proxy at proxy_port) with the user given. */
static void kubeconfig(const char *server, const char *proxy, const char *user)
{
    char *text = xasprintf("apiVersion: v1\nkind: Config\ncurrent-context: bed\n"
                           "clusters:\n- name: bed\n  cluster:\n    server: %s\n%s%s%s"
                           "contexts:\n- name: bed\n  context:\n    cluster: bed\n    user: u\n    namespace: ml\n"
                           "users:\n- name: u\n  user:\n%s",
                           server, proxy ? "    proxy-url: " : "", proxy ? proxy : "", proxy ? "\n" : "", user);
    write_file("config", text);
    free(text);
    char path[512];
    snprintf(path, sizeof path, "%s/config", dir);
    setenv("KUBECONFIG", path, 1);
}

static int has(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

static void test_requests(void)
{
    int port, fd = listener(&port);
    char server[64], tokfile[300], user[400];
    snprintf(server, sizeof server, "http://127.0.0.1:%d/", port);
    snprintf(tokfile, sizeof tokfile, "%s/token", dir);
    snprintf(user, sizeof user, "    tokenFile: %s\n", tokfile);
    write_file("token", "tok-first-4a7f\n");
    kubeconfig(server, NULL, user);

    struct err e = { 0 };
    struct kube_client *c;
    is_int(kube_client_open(NULL, NULL, &c, &e), 0, "the client opens (%s)", e.msg);
    if (!c)
        return;
    is_str(kube_client_namespace(c), "ml", "the context's namespace");
    is_str(kube_client_server(c), server, "the server");

    /* A GET with the token from the file; a POST with a JSON body. */
    struct server s;
    char *jobs = answer("200 OK", "application/json", "{\"kind\":\"JobList\",\"items\":[]}");
    char *created = answer("201 Created", "application/json", "{\"kind\":\"Job\",\"metadata\":{\"uid\":\"u-1\"}}");
    s = (struct server){ .answers = { jobs, created }, .n = 2 };
    pthread_t t = server_start(&s, fd);
    cJSON *out = NULL;
    is_int(kube_request(c, "GET", "/apis/batch/v1/namespaces/ml/jobs?labelSelector=a%3Db", NULL, &out, &e), 0,
           "GET succeeds (%s)", e.msg);
    is_str(json_str(out, "kind"), "JobList", "the answer is parsed");
    cJSON_Delete(out);
    cJSON *body = cJSON_Parse("{\"kind\":\"Job\"}");
    is_int(kube_request(c, "POST", "/apis/batch/v1/namespaces/ml/jobs", body, &out, &e), 0, "POST succeeds (%s)", e.msg);
    cJSON_Delete(out);
    pthread_join(t, NULL);
    ok(has(s.heads[0], "GET /apis/batch/v1/namespaces/ml/jobs?labelSelector=a%3Db HTTP/1.1"), "the path under the server");
    ok(has(s.heads[0], "\r\nAuthorization: Bearer tok-first-4a7f"), "the token file's token");
    ok(has(s.heads[0], "\r\nAccept: application/json"), "JSON asked for");
    ok(has(s.heads[1], "POST /apis/batch/v1/namespaces/ml/jobs HTTP/1.1"), "the POST");
    is_str(s.bodies[1], "{\"kind\":\"Job\"}", "its body");
    free(jobs);
    free(created);

    /* 401: the token file is read again (it rotated) and the request sent once more. */
    write_file("token", "tok-second-91c2\n");
    char *unauth = status_answer("401 Unauthorized", "Unauthorized", "Unauthorized", 401);
    char *one = answer("200 OK", "application/json", "{\"kind\":\"Job\"}");
    s = (struct server){ .answers = { unauth, one }, .n = 2 };
    t = server_start(&s, fd);
    is_int(kube_request(c, "GET", "/apis/batch/v1/namespaces/ml/jobs/j", NULL, &out, &e), 0,
           "a 401 then a 200 succeeds (%s)", e.msg);
    cJSON_Delete(out);
    pthread_join(t, NULL);
    is_int(s.seen, 2, "sent twice");
    ok(has(s.heads[0], "Bearer tok-first-4a7f"), "first with the cached token");
    ok(has(s.heads[1], "Bearer tok-second-91c2"), "then with the file read again");
    free(one);

    /* Two 401s: sent once more only; the token echoed in the answer is not in the message. */
    char *echo = status_answer("401 Unauthorized", "Unauthorized", "token tok-second-91c2 is not valid", 401);
    s = (struct server){ .answers = { echo, echo, echo }, .n = 2 };
    t = server_start(&s, fd);
    is_int(kube_request(c, "GET", "/api/v1/namespaces/ml/pods", NULL, NULL, &e), -1, "two 401s fail");
    pthread_join(t, NULL);
    is_int(s.seen, 2, "the request is sent once more, not again");
    is_int(e.kind, ERR_AUTH, "ERR_AUTH");
    ok(!has(e.msg, "tok-second") && !has(e.msg, "tok-first"), "no token in the message: %s", e.msg);
    ok(has(e.msg, "GET /api/v1/namespaces/ml/pods: HTTP 401"), "the call named: %s", e.msg);
    free(echo);
    free(unauth);

    /* 403: the Status message names verb, resource and namespace. */
    char *forbidden = status_answer("403 Forbidden", "Forbidden",
                                    "jobs.batch is forbidden: User \\\"limited\\\" cannot create resource \\\"jobs\\\" "
                                    "in API group \\\"batch\\\" in the namespace \\\"ml\\\"",
                                    403);
    s = (struct server){ .answers = { forbidden }, .n = 1 };
    t = server_start(&s, fd);
    is_int(kube_request(c, "POST", "/apis/batch/v1/namespaces/ml/jobs", body, NULL, &e), -1, "403 fails");
    pthread_join(t, NULL);
    is_str(e.msg,
           "POST /apis/batch/v1/namespaces/ml/jobs: HTTP 403: Forbidden: jobs.batch is forbidden: User \"limited\" "
           "cannot create resource \"jobs\" in API group \"batch\" in the namespace \"ml\"",
           "the API server's words");
    is_int(e.kind, ERR_AUTH, "403 is ERR_AUTH");
    is_int(s.seen, 1, "a 403 is not sent again");
    free(forbidden);

    /* 409 and 404 keep their kinds. */
    char *exists = status_answer("409 Conflict", "AlreadyExists", "jobs.batch \\\"stepop-r1\\\" already exists", 409);
    char *gone = status_answer("404 Not Found", "NotFound", "jobs.batch \\\"stepop-r1\\\" not found", 404);
    s = (struct server){ .answers = { exists, gone }, .n = 2 };
    t = server_start(&s, fd);
    is_int(kube_request(c, "POST", "/apis/batch/v1/namespaces/ml/jobs", body, NULL, &e), -1, "409 fails");
    is_int(e.kind, ERR_REFUSED, "409 is ERR_REFUSED");
    ok(has(e.msg, "AlreadyExists: jobs.batch \"stepop-r1\" already exists"), "quoted: %s", e.msg);
    is_int(kube_request(c, "GET", "/apis/batch/v1/namespaces/ml/jobs/stepop-r1", NULL, NULL, &e), -1, "404 fails");
    is_int(e.kind, ERR_NOT_FOUND, "404 is ERR_NOT_FOUND");
    pthread_join(t, NULL);
    free(exists);
    free(gone);
    cJSON_Delete(body);

    /* Text: a pod's log, kept up to max. */
    char *log = answer("200 OK", "text/plain", "line one\nline two\nline three\n");
    s = (struct server){ .answers = { log, log }, .n = 2 };
    t = server_start(&s, fd);
    char *text = NULL;
    size_t len = 0;
    is_int(kube_request_text(c, "/api/v1/namespaces/ml/pods/p/log?container=step&tailLines=20", 12, &text, &len, &e), 0,
           "a text GET (%s)", e.msg);
    is_str(text, "line one\nlin", "the first max bytes");
    is_int((int)len, 12, "its length");
    free(text);
    is_int(kube_request_text(c, "/api/v1/namespaces/ml/pods/p/log", 4096, &text, NULL, &e), 0, "a text GET, all of it");
    is_str(text, "line one\nline two\nline three\n", "all of it");
    free(text);
    pthread_join(t, NULL);
    ok(has(s.heads[0], "GET /api/v1/namespaces/ml/pods/p/log?container=step&tailLines=20 HTTP/1.1"), "the log's path");
    free(log);

    kube_client_free(c);

    /* A static token: a 401 is final at once (sending it again would change nothing). */
    kubeconfig(server, NULL, "    token: static-7e1d\n");
    is_int(kube_client_open(NULL, "other", &c, &e), 0, "a client with a static token (%s)", e.msg);
    is_str(kube_client_namespace(c), "other", "the namespace setting wins");
    char *unauth2 = status_answer("401 Unauthorized", "Unauthorized", "static-7e1d expired", 401);
    s = (struct server){ .answers = { unauth2 }, .n = 1 };
    t = server_start(&s, fd);
    is_int(kube_request(c, "GET", "/version", NULL, NULL, &e), -1, "401 fails");
    pthread_join(t, NULL);
    is_int(s.seen, 1, "sent once");
    ok(!has(e.msg, "static-7e1d"), "the static token is not in the message: %s", e.msg);
    kube_client_free(c);
    free(unauth2);

    /* A credential that cannot be had: no request goes out, the message names the user. */
    snprintf(user, sizeof user, "    tokenFile: %s/no-such-token\n", dir);
    kubeconfig(server, NULL, user);
    if (kube_client_open(NULL, NULL, &c, &e) == 0) {
        is_int(kube_request(c, "GET", "/version", NULL, NULL, &e), -1, "no token file: the request fails");
        ok(has(e.msg, "signing in as kubeconfig user u: "), "naming the user: %s", e.msg);
        is_int(kube_request_text(c, "/version", 10, &text, NULL, &e), -1, "a text request too");
        ok(text == NULL, "with no text");
        kube_client_free(c);
    } else {
        ok(has(e.msg, "no-such-token"), "no token file: refused at once, naming it: %s", e.msg);
    }
    close(fd);
}

/* proxy-url: the request goes to the proxy, in absolute form, for the server's URL. */
static void test_proxy(void)
{
    int port, fd = listener(&port);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
    kubeconfig("http://kube-api.invalid:6443", proxy, "    token: via-proxy-5b\n");
    struct err e = { 0 };
    struct kube_client *c;
    is_int(kube_client_open(NULL, NULL, &c, &e), 0, "a client behind a proxy (%s)", e.msg);
    if (!c)
        return;
    char *ver = answer("200 OK", "application/json", "{\"major\":\"1\",\"minor\":\"20\"}");
    struct server s = { .answers = { ver }, .n = 1 };
    pthread_t t = server_start(&s, fd);
    cJSON *out = NULL;
    /* proxy-url holds for every host, as with kubectl: no_proxy does not apply to it. */
    setenv("no_proxy", "*", 1);
    is_int(kube_request(c, "GET", "/version", NULL, &out, &e), 0, "GET /version through the proxy (%s)", e.msg);
    unsetenv("no_proxy");
    pthread_join(t, NULL);
    is_str(json_str(out, "minor"), "20", "the answer comes back");
    ok(has(s.heads[0], "GET http://kube-api.invalid:6443/version HTTP/1.1"), "the proxy got the absolute URL");
    cJSON_Delete(out);
    free(ver);
    kube_client_free(c);
    close(fd);
}

static void test_missing(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/nowhere", dir);
    setenv("KUBECONFIG", path, 1);
    setenv("HOME", dir, 1);
    setenv("STEPOP_KUBE_SERVICEACCOUNT_DIR", path, 1);
    unsetenv("KUBERNETES_SERVICE_HOST");
    struct err e = { 0 };
    struct kube_client *c = (struct kube_client *)&e;
    is_int(kube_client_open(NULL, NULL, &c, &e), -1, "no kubeconfig: the client does not open");
    ok(c == NULL, "and gives no client");
    ok(e.msg[0] != 0, "with a message: %s", e.msg);
}

int main(void)
{
    struct err e = { 0 };
    snprintf(dir, sizeof dir, "/tmp/test_kube_client.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    /* The proxy is the kubeconfig's only. */
    const char *proxies[] = { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
                              "no_proxy", "NO_PROXY" };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    setenv("STEPOP_HTTP_RETRY_BASE", "10ms", 1);
    if (http_global_init(&e) < 0) {
        printf("Bail out! http_global_init: %s\n", e.msg);
        return 1;
    }
    test_requests();
    test_proxy();
    test_missing();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        ok(0, "removing %s", dir);
    return tap_done();
}
