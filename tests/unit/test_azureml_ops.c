/* The azureml flavor's operations against a loopback ARM server that answers each method and
 * path from a script: the environment reused or made, the job created, a 409 taken only for the
 * run's own job, the bearer token on every call and in no message, poll's phases, a forged handle
 * refused before any call, cancel only after the job's tags name the run and followed through
 * Azure-AsyncOperation, no cancel for an ended job, cleanup's check of the tags, a job Azure ML
 * does not know, a 401 answered with a fresh token. */
#include "../../flavors/azureml/azureml.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

extern const struct flavor_ops flavor_azureml_ops;

#define RUN_ID "01J9ZQK8V3N4M5P6Q7R8S9T0AB"
#define RUN_URI "s3://bucket/runs/" RUN_ID "/"
#define JOB "stepop-01j9zqk8v3n4m5p6q7r8s9t0ab"
#define TOKEN "eyJ0eXAiOiJKV1QiLCJhbGciOi.test-token-value"
#define TAGS "\"tags\": {\"stepop-run-id\": \"" RUN_ID "\", \"stepop-run-uri\": \"" RUN_URI "\"}"

/* The script: "METHOD path-part" -> "STATUS [Header: v\r\n...]|body"; an entry marked once is
 * used by one request only (a sequence of answers for one path). */
static struct {
    const char *match[8], *answer[8];
    int once[8], used[8];
    int n;
    char seen[24][320];
    char auth[24][160];
    char bodies[24][2048];
    int n_seen;
} script;
static int listener, port;
static atomic_int stop_server, token_requests;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *serve(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_server)) {
        int a = accept(listener, NULL, NULL);
        if (a < 0)
            continue;
        struct timeval limit = { .tv_sec = 5 };
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char head[4096], body[2048];
        if (read_request(a, head, sizeof head, body, sizeof body)) {
            char method[16] = "", path[300] = "";
            sscanf(head, "%15s %299s", method, path);
            char *q = strchr(path, '?');
            if (!strcmp(method, "POST") && strstr(path, "/oauth2/v2.0/token")) {
                /* The identity chain's client secret flow (cloud/azure/token.c). */
                atomic_fetch_add(&token_requests, 1);
                const char *tok = "{\"token_type\": \"Bearer\", \"expires_in\": 3600, \"access_token\": \"" TOKEN "\"}";
                char *r = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                    "Content-Length: %zu\r\n\r\n%s", strlen(tok), tok);
                if (write(a, r, strlen(r)) < 0)
                    r[0] = 0;
                free(r);
                close(a);
                continue;
            }
            pthread_mutex_lock(&lock);
            int k = script.n_seen < 24 ? script.n_seen++ : 23;
            snprintf(script.seen[k], sizeof script.seen[k], "%s %s", method, path);
            const char *au = strcasestr(head, "\r\nAuthorization: ");
            snprintf(script.auth[k], sizeof script.auth[k], "%.*s", au ? (int)strcspn(au + 17, "\r") : 0,
                     au ? au + 17 : "");
            snprintf(script.bodies[k], sizeof script.bodies[k], "%s", body);
            if (q)
                *q = 0;
            char key[320];
            snprintf(key, sizeof key, "%s %s", method, path);
            const char *ans = "404 |{\"error\": {\"code\": \"NotScripted\", \"message\": \"not scripted\"}}";
            for (int i = 0; i < script.n; i++) {
                const char *m = script.match[i];
                if (script.once[i] && script.used[i])
                    continue;
                size_t ml = strcspn(m, " ");
                if (strncmp(key, m, ml + 1) != 0 || !strstr(key + ml + 1, m + ml + 1))
                    continue;
                ans = script.answer[i];
                script.used[i]++;
                break;
            }
            pthread_mutex_unlock(&lock);
            int status = atoi(ans);
            const char *hdr = strchr(ans, ' ') + 1, *bar = strchr(ans, '|');
            char *r = xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nConnection: close\r\n%.*s"
                                "Content-Length: %zu\r\n\r\n%s", status, (int)(bar - hdr), hdr, strlen(bar + 1), bar + 1);
            if (write(a, r, strlen(r)) < 0)
                r[0] = 0;
            free(r);
        }
        close(a);
    }
    return NULL;
}

static void set_script(int n, const char *const *triples)
{
    pthread_mutex_lock(&lock);
    memset(&script, 0, sizeof script);
    for (int i = 0; i < n; i++) {
        script.match[i] = triples[3 * i];
        script.once[i] = !strcmp(triples[3 * i + 1], "once");
        script.answer[i] = triples[3 * i + 2];
    }
    script.n = n;
    pthread_mutex_unlock(&lock);
}

#define SCRIPT(...)                                                                                                    \
    do {                                                                                                               \
        const char *p_[] = { __VA_ARGS__ };                                                                            \
        set_script((int)(sizeof p_ / sizeof *p_ / 3), p_);                                                             \
    } while (0)

/* The index + 1 of the first request whose "METHOD path" holds part, or 0. */
static int seen(const char *part)
{
    for (int i = 0; i < script.n_seen; i++)
        if (strstr(script.seen[i], part))
            return i + 1;
    return 0;
}

static int all_bearer(void)
{
    for (int i = 0; i < script.n_seen; i++)
        if (strcmp(script.auth[i], "Bearer " TOKEN) != 0) {
            printf("#   request %d (%s) had Authorization \"%s\"\n", i, script.seen[i], script.auth[i]);
            return 0;
        }
    return script.n_seen > 0;
}

int main(void)
{
    struct err e = { 0 };
    setenv("STEPOP_HTTP_ATTEMPTS", "1", 1);
    if (http_global_init(&e) < 0)
        return 1;
    listener = loopback_listener(8, 100, &port);
    if (listener < 0)
        return 1;
    /* The identity chain's first source, a client secret, against this server's token endpoint. */
    char authority[64];
    snprintf(authority, sizeof authority, "http://127.0.0.1:%d", port);
    setenv("AZURE_AUTHORITY_HOST", authority, 1);
    setenv("AZURE_TENANT_ID", "tenant-1", 1);
    setenv("AZURE_CLIENT_ID", "client-1", 1);
    setenv("AZURE_CLIENT_SECRET", "client-secret-value", 1);
    unsetenv("AZURE_CLIENT_CERTIFICATE_PATH");
    unsetenv("AZURE_FEDERATED_TOKEN_FILE");
    char *settings_text = xasprintf("{\"subscription_id\": \"sub-1\", \"resource_group\": \"rg\", \"workspace\": \"ws1\", "
                                    "\"compute\": \"cpu\", \"api_version\": \"2022-10-01\", \"arm_endpoint\": "
                                    "\"http://127.0.0.1:%d\"}", port);
    cJSON *settings = cJSON_Parse(settings_text);
    free(settings_text);
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);

    const struct flavor_ops *ops = &flavor_azureml_ops;
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)RUN_ID;
    m.run_uri = (char *)RUN_URI;
    m.image = (char *)"myreg.azurecr.io/train:1";
    m.grace_ms = 30000;
    struct job j = { .m = &m, .manifest_uri = RUN_URI "manifest.json", .settings = settings, .attempt = 1 };
    char *env = aml_env_name(m.image), *env_path = xasprintf("/environments/%s/versions/1", env);
    char *env_ok = xasprintf("200 |{\"name\": \"1\", \"properties\": {\"image\": \"%s\"}}", m.image);

    /* submit: the environment is made when it is not there, then the job */
    SCRIPT("GET /environments/", "", "404 |{\"error\": {\"code\": \"UserError\", \"message\": \"not found\"}}",
           "PUT /environments/", "", "201 |{}", "PUT /jobs/" JOB, "", "201 |{}");
    cJSON *h = NULL;
    is_int(ops->submit(&j, &h, &e), 0, "submit creates the job (%s)", e.msg);
    int ge = seen("GET /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1"),
        pe = seen("PUT /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1"),
        pj = seen("PUT /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1/jobs/" JOB
                  "?api-version=2022-10-01");
    ok(ge == 1 && strstr(script.seen[0], env_path), "the environment version is looked up first (%s)", script.seen[0]);
    ok(pe == 2 && strstr(script.bodies[1], m.image), "then made with the image");
    ok(pj == 3, "then the job is put, with the api-version");
    ok(strstr(script.bodies[2], "\"jobType\":\"Command\"") && strstr(script.bodies[2], "\"stepop-run-id\":\"" RUN_ID "\""),
       "a command job tagged with the run id");
    ok(all_bearer(), "every call carries the bearer token");
    is_int(atomic_load(&token_requests), 1, "one token for them all (cached)");
    is_str(json_str(h, "job"), JOB, "handle: job");
    is_str(json_str(h, "run_id"), RUN_ID, "handle: run_id");
    is_str(json_str(h, "run_uri"), RUN_URI, "handle: run_uri");

    SCRIPT("GET /environments/", "", env_ok, "PUT /jobs/" JOB, "", "201 |{}");
    cJSON *h2 = NULL;
    is_int(ops->submit(&j, &h2, &e), 0, "a second submit ...");
    ok(!seen("PUT /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1/environments"),
       "... reuses the environment version");
    cJSON_Delete(h2);

    char *env_other = xasprintf("200 |{\"properties\": {\"image\": \"other/image:2\"}}");
    SCRIPT("GET /environments/", "", env_other);
    is_int(ops->submit(&j, &h2, &e), -1, "an environment version holding another image ...");
    ok(strstr(e.msg, "holds image other/image:2") != NULL, "... is refused, naming it (%s)", e.msg);
    free(env_other);

    /* 409: only the run's own job is taken */
    const char *conflict = "409 |{\"error\": {\"code\": \"Conflict\", \"message\": \"job exists\"}}";
    SCRIPT("GET /environments/", "", env_ok, "PUT /jobs/" JOB, "", conflict, "GET /jobs/" JOB, "",
           "200 |{\"properties\": {\"status\": \"Running\", " TAGS "}}");
    is_int(ops->submit(&j, &h2, &e), 0, "a 409 for the run's own job (a lost answer) is success");
    cJSON_Delete(h2);
    SCRIPT("GET /environments/", "", env_ok, "PUT /jobs/" JOB, "", conflict, "GET /jobs/" JOB, "",
           "200 |{\"properties\": {\"status\": \"Running\", \"tags\": {\"stepop-run-id\": \"01OTHER\"}}}");
    is_int(ops->submit(&j, &h2, &e), -1, "a 409 for a job of another run ...");
    ok(e.kind == ERR_REFUSED && strstr(e.msg, "Conflict") && strstr(e.msg, "\"01OTHER\""),
       "... is refused, in Azure's words and naming the tag (%s)", e.msg);

    SCRIPT("GET /environments/", "", env_ok, "PUT /jobs/", "",
           "400 |{\"error\": {\"code\": \"UserError\", \"message\": \"Compute cpu not found in workspace\"}}");
    is_int(ops->submit(&j, &h2, &e), -1, "a refused job ...");
    ok(strstr(e.msg, "HTTP 400: UserError: Compute cpu not found") != NULL, "... fails in Azure's words (%s)", e.msg);
    ok(!strstr(e.msg, TOKEN) && !strstr(e.msg, "client-secret-value"), "no token or secret in the message");

    /* poll */
    struct remote_state st;
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Queued\", " TAGS "}}");
    is_int(ops->poll(h, settings, &st, &e), 0, "poll");
    ok(st.phase == REMOTE_PENDING && strstr(st.message, "Queued"), "Queued is pending");
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Failed\", \"error\": {\"code\": \"UserError\", "
                                 "\"message\": \"exit code 3\"}, " TAGS "}}");
    is_int(ops->poll(h, settings, &st, &e), 0, "poll a failed job");
    ok(st.phase == REMOTE_EXITED && st.exit_code == 3, "exit code 3 from the error");
    SCRIPT("GET /jobs/" JOB, "", "404 |{\"error\": {\"code\": \"UserError\", \"message\": \"not found\"}}");
    is_int(ops->poll(h, settings, &st, &e), 0, "an unknown job ...");
    is_int(st.phase, REMOTE_GONE, "... is gone");

    /* a 401 is answered once with a fresh token */
    SCRIPT("GET /jobs/" JOB, "once", "401 |{\"error\": {\"code\": \"ExpiredAuthenticationToken\", \"message\": \"expired\"}}",
           "GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Running\", " TAGS "}}");
    int before = atomic_load(&token_requests);
    is_int(ops->poll(h, settings, &st, &e), 0, "a 401 ... (%s)", e.msg);
    ok(st.phase == REMOTE_RUNNING && script.n_seen == 2, "... is retried once ...");
    is_int(atomic_load(&token_requests) - before, 1, "... with a fresh token");

    cJSON *forged = cJSON_Duplicate(h, 1);
    cJSON_ReplaceItemInObject(forged, "job", cJSON_CreateString("someone-elses-job"));
    SCRIPT("GET /", "", "200 |{}");
    is_int(ops->poll(forged, settings, &st, &e), -1, "a handle naming another job ...");
    is_int(e.kind, ERR_REFUSED, "... is refused");
    is_int(script.n_seen, 0, "before any call");
    is_int(ops->cancel(forged, settings, 30000, &e), -1, "cancel refuses it too");
    is_int(ops->cleanup(forged, settings, &e), -1, "and cleanup");
    cJSON_Delete(forged);

    /* cancel: tags, POST, then the operation followed until it is done */
    char *op_hdr = xasprintf("202 Azure-AsyncOperation: http://127.0.0.1:%d/operations/op1?api-version=2022-10-01\r\n"
                             "Retry-After: 0\r\n|", port);
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Running\", " TAGS "}}", "POST /jobs/" JOB "/cancel",
           "", op_hdr, "GET /operations/op1", "once", "200 |{\"status\": \"InProgress\"}", "GET /operations/op1", "",
           "200 |{\"status\": \"Succeeded\"}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "cancel (%s)", e.msg);
    int post = seen("POST /subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1/jobs/" JOB "/cancel?api-version=2022-10-01");
    ok(post == 2, "reads the job, then POSTs its cancel");
    ok(script.n_seen == 4 && strstr(script.seen[3], "/operations/op1"), "and follows Azure-AsyncOperation until Succeeded");
    ok(all_bearer(), "with the bearer token throughout");
    free(op_hdr);

    op_hdr = xasprintf("202 Azure-AsyncOperation: http://203.0.113.9/operations/op1\r\n|");
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Running\", " TAGS "}}", "POST /jobs/", "", op_hdr);
    is_int(ops->cancel(h, settings, 30000, &e), -1, "an operation on another host ...");
    ok(strstr(e.msg, "not sending the token there") && script.n_seen == 2, "... is not followed");
    free(op_hdr);

    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Running\", \"tags\": {\"stepop-run-id\": \"01OTHER\", "
                                 "\"stepop-run-uri\": \"" RUN_URI "\"}}}", "POST /jobs/", "", "202 |");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a job tagged for another run ...");
    ok(e.kind == ERR_REFUSED && strstr(e.msg, "its tag stepop-run-id is \"01OTHER\""), "... is refused, naming the tag");
    ok(!seen("POST"), "and not canceled");
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Running\"}}", "POST /jobs/", "", "202 |");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a job without tags is refused");
    ok(strstr(e.msg, "missing") && !seen("POST"), "saying the tag is missing; not canceled");
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Completed\", " TAGS "}}", "POST /jobs/", "", "400 |{}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "a job that ended: cancel succeeds");
    ok(!seen("POST"), "without a cancel");

    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Completed\", " TAGS "}}");
    is_int(ops->cleanup(h, settings, &e), 0, "cleanup has nothing to delete");
    is_int(script.n_seen, 1, "after reading the job's tags; nothing else is called");
    SCRIPT("GET /jobs/" JOB, "", "200 |{\"properties\": {\"status\": \"Completed\"}}");
    is_int(ops->cleanup(h, settings, &e), -1, "cleanup refuses a job without the run's tags");
    is_int(e.kind, ERR_REFUSED, "ERR_REFUSED");

    cJSON *spot = cJSON_Parse("{\"job_tier\": \"Spot\"}");
    ok(!ops->may_restart(settings), "may_restart: not off Spot");
    ok(ops->may_restart(spot), "may_restart: Spot");
    cJSON_Delete(spot);

    atomic_store(&stop_server, 1);
    pthread_join(t, NULL);
    close(listener);
    free(env);
    free(env_path);
    free(env_ok);
    cJSON_Delete(h);
    cJSON_Delete(settings);
    return tap_done();
}
