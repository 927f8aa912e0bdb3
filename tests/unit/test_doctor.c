/* stepop doctor's checklist (runtime/doctor.c) and the doctor hooks of the docker and kubernetes
 * flavors against loopback servers that answer from a script: the engine's ping and version, the
 * API server's /version and the SelfSubjectAccessReview it is asked (allowed, denied, refused),
 * the exact detail of each line, and what each request carried. */
#include "../../cloud/azure/auth.h"
#include "../../flavors/flavor.h"
#include "../../runtime/doctor.h"
#include "../../runtime/http.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct flavor_ops flavor_kubernetes_ops, flavor_docker_ops;

static int fd, port;

static char *answer(const char *status, const char *extra, const char *body)
{
    return xasprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sConnection: close\r\nContent-Length: "
                     "%zu\r\n\r\n%s",
                     status, extra, strlen(body), body);
}

/* The i-th check's status and detail. */
static const char *field(const struct doctor *d, int i, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d->checks, i), name)->valuestring;
}

static void test_checklist(void)
{
    struct doctor d;
    doctor_init(&d);
    doctor_add(&d, DOCTOR_OK, "a", "fine %d", 1);
    doctor_add(&d, DOCTOR_FAIL, "b", "line one\nline two");
    doctor_add(&d, DOCTOR_SKIP, "c", "n/a");
    is_int(d.failed, 1, "one failure counted");
    is_int(cJSON_GetArraySize(d.checks), 3, "three checks kept in order");
    is_str(field(&d, 0, "status"), "ok", "ok");
    is_str(field(&d, 1, "status"), "fail", "fail");
    is_str(field(&d, 2, "status"), "skip", "skip");
    is_str(field(&d, 1, "detail"), "line one line two", "a detail stays one line");
    doctor_free(&d);
}

/* JWT payloads: base64url of every length modulo 4, '-' and '_', and what is not a JWT. */
static void test_jwt_claims(void)
{
    /* {"appid":"a-1","oid":"o-2"} and {"appid":"a?>","x":1}: the second has '-' / '_' in base64url */
    static const char *const tokens[] = {
        "eyJhbGciOiJSUzI1NiJ9.eyJhcHBpZCI6ImEtMSIsIm9pZCI6Im8tMiJ9.c2ln",
        "h.eyJhcHBpZCI6ImE_PiIsIngiOjF9.s",
    };
    cJSON *c = azure_jwt_claims(tokens[0]);
    ok(c && strcmp(cJSON_GetObjectItemCaseSensitive(c, "appid")->valuestring, "a-1") == 0 &&
           strcmp(cJSON_GetObjectItemCaseSensitive(c, "oid")->valuestring, "o-2") == 0,
       "jwt: appid and oid");
    cJSON_Delete(c);
    c = azure_jwt_claims(tokens[1]);
    ok(c && strcmp(cJSON_GetObjectItemCaseSensitive(c, "appid")->valuestring, "a?>") == 0, "jwt: base64url '_'");
    cJSON_Delete(c);
    for (int pad = 0; pad < 3; pad++) {
        /* {"a":"x"}, {"a":"xx"}, {"a":"xxx"}: 9, 10, 11 bytes, so no, two and one padding bytes */
        char json[32], tok[64];
        snprintf(json, sizeof json, "{\"a\":\"%.*s\"}", pad + 1, "xxx");
        unsigned char b64[64];
        int n = EVP_EncodeBlock(b64, (const unsigned char *)json, (int)strlen(json));
        while (n > 0 && b64[n - 1] == '=')
            n--;
        snprintf(tok, sizeof tok, "h.%.*s.s", n, (const char *)b64);
        c = azure_jwt_claims(tok);
        ok(c && strlen(cJSON_GetObjectItemCaseSensitive(c, "a")->valuestring) == (size_t)pad + 1,
           "jwt: a payload of %zu bytes", strlen(json));
        cJSON_Delete(c);
    }
    ok(azure_jwt_claims("opaque-token") == NULL, "jwt: an opaque token has no claims");
    ok(azure_jwt_claims("a.bm90IGpzb24.b") == NULL, "jwt: a payload that is not JSON");
    ok(azure_jwt_claims("a.WzFd.b") == NULL, "jwt: a payload that is no object");
}

static void kube(const char *ssar_status, const char *ssar_body, int want_failed, const char *want1,
                 const char *desc)
{
    char *a0 = answer("200 OK", "", "{\"major\":\"1\",\"minor\":\"20\",\"gitVersion\":\"v1.20.15\"}");
    char *a1 = answer(ssar_status, "", ssar_body);
    struct server s = { .answers = { a0, a1 }, .n = 2 };
    pthread_t t = server_start(&s, fd);
    struct doctor d;
    doctor_init(&d);
    cJSON *settings = cJSON_CreateObject();
    flavor_kubernetes_ops.doctor(settings, &d);
    pthread_join(t, NULL);
    char want0[128];
    snprintf(want0, sizeof want0, "http://127.0.0.1:%d: Kubernetes v1.20.15", port);
    is_int(s.seen, 2, "%s: two requests", desc);
    ok(strncmp(s.heads[0], "GET /version ", 13) == 0, "%s: GET /version", desc);
    ok(strncmp(s.heads[1], "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews ", 60) == 0,
       "%s: POST selfsubjectaccessreviews", desc);
    cJSON *r = cJSON_Parse(s.bodies[1]);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(r, "spec");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(spec, "resourceAttributes");
    ok(r && strcmp(cJSON_GetObjectItemCaseSensitive(r, "kind")->valuestring, "SelfSubjectAccessReview") == 0 &&
           strcmp(cJSON_GetObjectItemCaseSensitive(ra, "verb")->valuestring, "create") == 0 &&
           strcmp(cJSON_GetObjectItemCaseSensitive(ra, "group")->valuestring, "batch") == 0 &&
           strcmp(cJSON_GetObjectItemCaseSensitive(ra, "resource")->valuestring, "jobs") == 0 &&
           strcmp(cJSON_GetObjectItemCaseSensitive(ra, "namespace")->valuestring, "ml") == 0,
       "%s: the review asks create batch/jobs in ml", desc);
    cJSON_Delete(r);
    is_int(d.failed, want_failed, "%s: failures", desc);
    is_str(field(&d, 0, "detail"), want0, "%s: the API server's line", desc);
    ok(strstr(field(&d, 1, "detail"), want1) != NULL, "%s: the RBAC line has \"%s\" (%s)", desc, want1,
       field(&d, 1, "detail"));
    for (int i = 0; i < 2; i++)
        ok(!strstr(s.heads[i], "t-0d1e") || strstr(s.heads[i], "Authorization: Bearer t-0d1e"),
           "%s: the token only in its header", desc);
    ok(!strstr(field(&d, 0, "detail"), "t-0d1e") && !strstr(field(&d, 1, "detail"), "t-0d1e"),
       "%s: no token in the checklist", desc);
    cJSON_Delete(settings);
    doctor_free(&d);
    free(a0);
    free(a1);
}

static void test_docker(void)
{
    char *ping = answer("200 OK", "Api-Version: 1.43\r\n", "OK");
    char *ver = answer("200 OK", "",
                       "{\"Version\":\"24.0.7\",\"ApiVersion\":\"1.43\",\"MinAPIVersion\":\"1.12\",\"Components\":[]}");
    struct server s = { .answers = { ping, ver }, .n = 2 };
    pthread_t t = server_start(&s, fd);
    char *host = xasprintf("tcp://127.0.0.1:%d", port);
    cJSON *settings = cJSON_CreateObject();
    cJSON_AddStringToObject(settings, "host", host);
    struct doctor d;
    doctor_init(&d);
    flavor_docker_ops.doctor(settings, &d);
    pthread_join(t, NULL);
    ok(strncmp(s.heads[0], "GET /_ping ", 11) == 0 && strncmp(s.heads[1], "GET /version ", 13) == 0,
       "docker: GET /_ping then /version");
    is_int(d.failed, 0, "docker: no failure");
    char want[160];
    snprintf(want, sizeof want, "docker 24.0.7 at %s (API v1.43)", host);
    is_str(field(&d, 0, "detail"), want, "docker: engine, version, host and API");
    doctor_free(&d);

    /* Nothing answers: a failure with its hint. */
    int dead_port, dead = loopback_listener(1, 100, &dead_port);
    close(dead);
    char *dead_host = xasprintf("tcp://127.0.0.1:%d", dead_port);
    cJSON_ReplaceItemInObject(settings, "host", cJSON_CreateString(dead_host));
    doctor_init(&d);
    flavor_docker_ops.doctor(settings, &d);
    is_int(d.failed, 1, "docker down: a failure");
    ok(strstr(field(&d, 0, "detail"), "Set DOCKER_HOST or settings.host") != NULL,
       "docker down: the hint (%s)", field(&d, 0, "detail"));
    doctor_free(&d);
    cJSON_Delete(settings);
    free(dead_host);
    free(host);
    free(ping);
    free(ver);
}

int main(void)
{
    struct err e = { 0 };
    const char *proxies[] = { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy" };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    setenv("STEPOP_HTTP_ATTEMPTS", "1", 1);
    if (http_global_init(&e) < 0) {
        printf("Bail out! http_global_init: %s\n", e.msg);
        return 1;
    }
    fd = loopback_listener(4, 10000, &port);
    if (fd < 0) {
        printf("Bail out! no loopback listener\n");
        return 1;
    }
    char dir[] = "/tmp/test_doctor.XXXXXX";
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    char *path = xasprintf("%s/config", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("Bail out! cannot write %s\n", path);
        return 1;
    }
    fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n"
               "    server: http://127.0.0.1:%d\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
               "    namespace: ml\nusers:\n- name: u\n  user:\n    token: t-0d1e\n",
            port);
    fclose(f);
    setenv("KUBECONFIG", path, 1);

    test_checklist();
    test_jwt_claims();
    kube("201 Created", "{\"kind\":\"SelfSubjectAccessReview\",\"status\":{\"allowed\":true}}", 0,
         "may create jobs in namespace ml", "kubernetes allowed");
    kube("201 Created",
         "{\"kind\":\"SelfSubjectAccessReview\",\"status\":{\"allowed\":false,"
         "\"reason\":\"no RBAC policy matched\"}}",
         1,
         "may not create jobs in namespace ml: no RBAC policy matched (hint: a Role granting create on batch/jobs)",
         "kubernetes denied");
    kube("403 Forbidden",
         "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"selfsubjectaccessreviews is forbidden\","
         "\"reason\":\"Forbidden\",\"code\":403}",
         1, "SelfSubjectAccessReview: ", "kubernetes review refused");
    test_docker();
    close(fd);
    unlink(path);
    rmdir(dir);
    free(path);
    return tap_done();
}
