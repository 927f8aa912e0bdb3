/* The vertex flavor's operations against a loopback server that answers each "METHOD /path" from
 * a script: submit's request and handle, Google's error quoted, poll's phases, a forged handle
 * refused before any call, a job whose labels name another run refused by poll, cancel and
 * cleanup, :cancel only for a job still going, the Cloud Logging entries quoted when the run's
 * status was never written (and not when it was), a job Vertex AI does not know, --dry-run. */
#include "../../flavors/vertex/vertex.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/status.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern const struct flavor_ops flavor_vertex_ops;

#define RUN_ID "01J9ZQK8V3N4M5P6Q7R8S9T0AB"
#define RUN_LABEL "01j9zqk8v3n4m5p6q7r8s9t0ab"
#define JOBS "/v1/projects/proj-1/locations/europe-west4/customJobs"
#define NAME "projects/proj-1/locations/europe-west4/customJobs/4242"
#define TOKEN "ya29.unit-test-token"

/* The script: an answer per "METHOD /path" ("200 {...}", "400 {...}", "404 {...}"). */
static struct {
    const char *route[8], *answer[8];
    int n;
    char seen[16][300];
    char heads[16][4096];
    char bodies[16][8192];
    int n_seen;
    int unauthorized_once; /* answer the next request 401 */
} script;
static atomic_int token_requests;
static int listener;
static atomic_int stop_server;

static const char *reason_phrase(int status)
{
    return status == 200 ? "OK" : status == 404 ? "Not Found" : status == 400 ? "Bad Request"
                                : status == 401 ? "Unauthorized" : "Error";
}

static void *serve(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_server)) {
        int a = accept(listener, NULL, NULL);
        if (a < 0)
            continue;
        struct timeval limit = { .tv_sec = 5 };
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char head[4096], body[8192];
        if (read_request(a, head, sizeof head, body, sizeof body)) {
            char method[16] = "", path[256] = "";
            sscanf(head, "%15s %255s", method, path);
            char route[300];
            snprintf(route, sizeof route, "%s %s", method, path);
            const char *ans = NULL;
            /* The metadata server, for Google's credential chain (GCE_METADATA_HOST). */
            if (strstr(path, "/token"))
                atomic_fetch_add(&token_requests, 1);
            if (str_has_prefix(path, "/computeMetadata/"))
                ans = strstr(path, "/token") ? "200 {\"access_token\": \"" TOKEN "\", \"expires_in\": 3600, "
                                               "\"token_type\": \"Bearer\"}"
                      : strstr(path, "project-id") ? "200 proj-1"
                                                   : "200 {}";
            else if (script.n_seen < 16) {
                snprintf(script.seen[script.n_seen], sizeof script.seen[0], "%s", route);
                snprintf(script.heads[script.n_seen], sizeof script.heads[0], "%s", head);
                snprintf(script.bodies[script.n_seen], sizeof script.bodies[0], "%s", body);
                script.n_seen++;
            }
            if (!ans && script.unauthorized_once) {
                script.unauthorized_once = 0;
                ans = "401 {\"error\": {\"code\": 401, \"message\": \"Request had invalid authentication "
                      "credentials.\", \"status\": \"UNAUTHENTICATED\"}}";
            }
            for (int i = 0; !ans && i < script.n; i++)
                if (!strcmp(script.route[i], route))
                    ans = script.answer[i];
            if (!ans)
                ans = "404 {\"error\": {\"code\": 404, \"message\": \"not scripted\", \"status\": \"NOT_FOUND\"}}";
            int status = atoi(ans);
            char *r = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nMetadata-Flavor: Google\r\n"
                                "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                                status, reason_phrase(status), strlen(ans + 4), ans + 4);
            if (write(a, r, strlen(r)) < 0)
                r[0] = 0;
            free(r);
        }
        close(a);
    }
    return NULL;
}

static void set_script(int n, const char *const *pairs)
{
    memset(&script, 0, sizeof script);
    for (int i = 0; i < n; i++) {
        script.route[i] = pairs[2 * i];
        script.answer[i] = pairs[2 * i + 1];
    }
    script.n = n;
}

/* 1 + the index of the first request to route, or 0. */
static int seen(const char *route)
{
    for (int i = 0; i < script.n_seen; i++)
        if (!strcmp(script.seen[i], route))
            return i + 1;
    return 0;
}

#define SCRIPT(...)                                                                                                    \
    do {                                                                                                               \
        const char *p_[] = { __VA_ARGS__ };                                                                            \
        set_script((int)(sizeof p_ / sizeof *p_ / 2), p_);                                                             \
    } while (0)

/* A GET answer for the job: state, labels of run_id and uri_label, an extra member. */
static char *job_json(const char *state, const char *run_label, const char *uri_label, const char *extra)
{
    return xasprintf("200 {\"name\": \"" NAME "\", \"displayName\": \"stepop-" RUN_ID "\", \"state\": \"%s\", "
                     "\"labels\": {\"stepop-run-id\": \"%s\", \"stepop-run-uri\": \"%s\"}%s%s}",
                     state, run_label, uri_label, extra ? ", " : "", extra ? extra : "");
}

static cJSON *handle_for(const char *run_uri)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "name", NAME);
    cJSON_AddStringToObject(h, "location", "europe-west4");
    cJSON_AddStringToObject(h, "run_id", RUN_ID);
    cJSON_AddStringToObject(h, "run_uri", run_uri);
    return h;
}

int main(void)
{
    struct err e = { 0 };
    /* Two attempts: enough to see what is sent again and what is not. */
    setenv("STEPOP_HTTP_ATTEMPTS", "2", 1);
    setenv("STEPOP_HTTP_RETRY_BASE", "10ms", 1);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    setenv("GOOGLE_CLOUD_PROJECT", "env-project", 1);
    char tmpl[] = "/tmp/test_vertex_ops.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!tmp || http_global_init(&e) < 0)
        return 1;
    /* No gcloud ADC file: the credential chain ends at the scripted metadata server. */
    char *gcloud = xasprintf("%s/gcloud", tmp);
    setenv("CLOUDSDK_CONFIG", gcloud, 1);
    int port;
    listener = loopback_listener(8, 100, &port);
    if (listener < 0)
        return 1;
    char host[64], base[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    setenv("GCE_METADATA_HOST", host, 1);
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);

    const struct flavor_ops *ops = &flavor_vertex_ops;
    char *settings_text = xasprintf("{\"project\": \"proj-1\", \"location\": \"europe-west4\", \"api_endpoint\": \"%s\", "
                                    "\"logging_endpoint\": \"%s\"}",
                                    base, base);
    cJSON *settings = cJSON_Parse(settings_text);
    /* The run's store: a directory the test writes status.json into (poll reads it; submit's
     * store check is about where the job runs, and the loopback endpoint lets a loopback store
     * through, so an http:// one stands for the store at submit). */
    char *run_uri = xasprintf("%s/runs/" RUN_ID "/", base);
    char *uri_label = vx_uri_label(run_uri);
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)RUN_ID;
    m.run_uri = run_uri;
    m.image = (char *)"us-docker.pkg.dev/proj-1/repo/train:1";
    m.grace_ms = 30000;
    char *manifest_uri = xasprintf("%smanifest.json", run_uri);
    struct job j = { .m = &m, .manifest_uri = manifest_uri, .settings = settings, .attempt = 1 };

    /* submit */
    SCRIPT("POST " JOBS, "200 {\"name\": \"" NAME "\", \"displayName\": \"stepop-" RUN_ID "\", \"state\": "
                         "\"JOB_STATE_QUEUED\"}");
    cJSON *h = NULL;
    is_int(ops->submit(&j, &h, &e), 0, "submit creates the job");
    ok(seen("POST " JOBS) == 1, "with POST /v1/projects/P/locations/L/customJobs");
    ok(strcasestr(script.heads[0], "\r\nAuthorization: Bearer " TOKEN) != NULL, "with the bearer token");
    ok(strcasestr(script.heads[0], "\r\nContent-Type: application/json") != NULL, "as JSON");
    ok(strstr(script.bodies[0], "\"displayName\":\"stepop-" RUN_ID "\"") &&
           strstr(script.bodies[0], "\"stepop-run-id\":\"" RUN_LABEL "\""),
       "the CustomJob, labelled with the run");
    is_str(json_str(h, "name"), NAME, "handle: the job's name");
    is_str(json_str(h, "location"), "europe-west4", "handle: location");
    is_str(json_str(h, "run_id"), RUN_ID, "handle: run_id");
    is_str(json_str(h, "run_uri"), run_uri, "handle: run_uri");

    SCRIPT("POST " JOBS, "400 {\"error\": {\"code\": 400, \"message\": \"List of found errors:\\t1.Field: "
                         "job_spec.worker_pool_specs[0].machine_spec.accelerator_type; Message: Accelerator "
                         "\\\"NVIDIA_TESLA_T4\\\" is not supported for machine type \\\"a2-highgpu-1g\\\".\", "
                         "\"status\": \"INVALID_ARGUMENT\"}}");
    cJSON *h2 = NULL;
    is_int(ops->submit(&j, &h2, &e), -1, "a refused create fails");
    ok(strstr(e.msg, "creating custom job stepop-" RUN_ID ": POST projects/proj-1/locations/europe-west4/customJobs: "
                     "HTTP 400: INVALID_ARGUMENT: List of found errors:") != NULL,
       "quoting Google's status and message: %s", e.msg);
    ok(!strstr(e.msg, TOKEN) && !strstr(e.msg, "ya29."), "no token in the message");
    ok(h2 == NULL, "and no handle");

    SCRIPT("POST " JOBS, "503 {\"error\": {\"code\": 503, \"message\": \"The service is currently unavailable.\", "
                         "\"status\": \"UNAVAILABLE\"}}");
    is_int(ops->submit(&j, &h2, &e), -1, "a create answered 503 fails");
    is_int(script.n_seen, 1, "without a second create (the first may have made the job)");

    /* render: the request submit would send, the token only named */
    cJSON *rq = NULL;
    set_script(0, NULL);
    is_int(ops->render(&j, &rq, &e), 0, "render");
    const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rq, "requests"), 0);
    char *want_url = xasprintf("%s" JOBS, base);
    is_str(json_str(r0, "url"), want_url, "--dry-run: the create URL");
    free(want_url);
    is_str(json_str(r0, "method"), "POST", "--dry-run: POST");
    char *rtext = json_print(rq, 0);
    ok(strstr(rtext, "Bearer <Google application default credentials, added at send time>") && !strstr(rtext, "ya29."),
       "--dry-run names the credentials, shows no token");
    is_int(script.n_seen, 0, "--dry-run sends nothing");
    cJSON_free(rtext);
    cJSON_Delete(rq);
    cJSON *plain = cJSON_Parse("{}");
    m.run_uri = (char *)"gs://bucket/runs/" RUN_ID "/";
    struct job j2 = { .m = &m, .manifest_uri = "gs://bucket/runs/" RUN_ID "/manifest.json", .settings = plain,
                      .attempt = 1 };
    is_int(ops->render(&j2, &rq, &e), 0, "render with the defaults");
    is_str(json_str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rq, "requests"), 0), "url"),
           "https://us-central1-aiplatform.googleapis.com/v1/projects/env-project/locations/us-central1/customJobs",
           "the regional endpoint; the project from GOOGLE_CLOUD_PROJECT");
    cJSON_Delete(rq);
    cJSON_Delete(plain);
    m.run_uri = run_uri;

    /* poll */
    struct remote_state st;
    char *running = job_json("JOB_STATE_RUNNING", RUN_LABEL, uri_label, NULL);
    SCRIPT("GET /v1/" NAME, running);
    is_int(ops->poll(h, settings, &st, &e), 0, "poll");
    is_int(st.phase, REMOTE_RUNNING, "JOB_STATE_RUNNING is running");
    ok(seen("GET /v1/" NAME) == 1, "GET of the handle's job");

    SCRIPT("GET /v1/" NAME, running);
    script.unauthorized_once = 1;
    int tokens = atomic_load(&token_requests);
    is_int(ops->poll(h, settings, &st, &e), 0, "a 401 ...");
    is_int(atomic_load(&token_requests), tokens + 1, "... gets a fresh token");
    ok(script.n_seen == 2 && !strcmp(script.seen[1], "GET /v1/" NAME), "and the GET is sent again with it");

    char *queued = job_json("JOB_STATE_QUEUED", RUN_LABEL, uri_label, NULL);
    SCRIPT("GET /v1/" NAME, queued);
    is_int(ops->poll(h, settings, &st, &e), 0, "poll a queued job");
    is_int(st.phase, REMOTE_PENDING, "JOB_STATE_QUEUED is pending");

    char *other = job_json("JOB_STATE_RUNNING", "01otherrun", uri_label, NULL);
    SCRIPT("GET /v1/" NAME, other);
    is_int(ops->poll(h, settings, &st, &e), -1, "a job labelled for another run ...");
    is_int(e.kind, ERR_REFUSED, "... is refused by poll");
    ok(strstr(e.msg, "its label stepop-run-id is \"01otherrun\"") != NULL, "naming what it found: %s", e.msg);

    cJSON *forged = cJSON_Duplicate(h, 1);
    cJSON_ReplaceItemInObject(forged, "name", cJSON_CreateString("projects/proj-1/locations/us-east1/customJobs/1"));
    SCRIPT("GET /v1/projects/proj-1/locations/us-east1/customJobs/1", running);
    is_int(ops->poll(forged, settings, &st, &e), -1, "a handle naming a job of another location ...");
    is_int(e.kind, ERR_REFUSED, "... is refused");
    is_int(script.n_seen, 0, "before any call");
    cJSON_ReplaceItemInObject(forged, "name", cJSON_CreateString(NAME "/../../x"));
    is_int(ops->cancel(forged, settings, 30000, &e), -1, "cancel refuses a name with a path in it");
    is_int(ops->cleanup(forged, settings, &e), -1, "and so does cleanup");
    cJSON_ReplaceItemInObject(forged, "name", cJSON_CreateString("4242"));
    is_int(ops->poll(forged, settings, &st, &e), -1, "a bare id is refused too");
    is_int(script.n_seen, 0, "still before any call");
    cJSON_Delete(forged);

    SCRIPT("GET /v1/" NAME, "404 {\"error\": {\"code\": 404, \"message\": \"The CustomJob does not exist.\", "
                            "\"status\": \"NOT_FOUND\"}}");
    is_int(ops->poll(h, settings, &st, &e), 0, "an unknown job ...");
    is_int(st.phase, REMOTE_GONE, "... is gone");

    /* A failed job whose entrypoint never wrote a status: its last log entries are quoted. The
     * handle's run is a directory here, so that the test can write status.json into it. */
    char *dir = xasprintf("%s/run/", tmp);
    if (mkdir(dir, 0700) < 0)
        return 1;
    char *file_run = xasprintf("file://%s", dir);
    char *file_label = vx_uri_label(file_run);
    cJSON *fh = handle_for(file_run);
    char *failed = job_json("JOB_STATE_FAILED", RUN_LABEL, file_label,
                            "\"error\": {\"code\": 13, \"message\": \"Internal error occurred for the current "
                            "attempt.\"}");
    SCRIPT("GET /v1/" NAME, failed, "POST /v2/entries:list",
           "200 {\"entries\": [{\"textPayload\": \"the newest line\\nwith a second\", \"timestamp\": "
           "\"2026-01-01T00:00:02Z\"}, {\"jsonPayload\": {\"message\": \"exec: stepop: not found\"}, \"timestamp\": "
           "\"2026-01-01T00:00:01Z\"}]}");
    is_int(ops->poll(fh, settings, &st, &e), 0, "a failure without a status");
    ok(st.phase == REMOTE_EXITED && st.exit_code == -1, "exited -1");
    is_str(st.message,
           "custom job 4242 failed: Internal error occurred for the current attempt.; its last log lines: exec: "
           "stepop: not found | the newest line",
           "quotes the job's last log entries, oldest first");
    int le = seen("POST /v2/entries:list");
    ok(le && strstr(script.bodies[le - 1], "\"resourceNames\":[\"projects/proj-1\"]") &&
           strstr(script.bodies[le - 1],
                  "\"filter\":\"resource.type=\\\"ml_job\\\" AND resource.labels.job_id=\\\"4242\\\"\"") &&
           strstr(script.bodies[le - 1], "\"orderBy\":\"timestamp desc\"") &&
           strstr(script.bodies[le - 1], "\"pageSize\":20"),
       "entries:list: the ml_job resource of the job, newest first, 20");
    ok(le && strcasestr(script.heads[le - 1], "\r\nAuthorization: Bearer " TOKEN), "with the bearer token");

    /* The same failure once the entrypoint wrote its final status: no log call. */
    struct run_status rs;
    status_init(&rs, RUN_ID, 1);
    status_enter(&rs, PHASE_FAILED);
    cJSON *sj = status_to_json(&rs);
    char *stext = json_print(sj, 1), *spath = xasprintf("%sstatus.json", dir);
    FILE *f = fopen(spath, "w");
    if (!f || fputs(stext, f) < 0 || fclose(f) != 0)
        return 1;
    SCRIPT("GET /v1/" NAME, failed, "POST /v2/entries:list", "200 {}");
    is_int(ops->poll(fh, settings, &st, &e), 0, "a failure with the run's final status");
    ok(!seen("POST /v2/entries:list"), "reads no log entries");
    is_str(st.message, "custom job 4242 failed: Internal error occurred for the current attempt.", "Vertex AI's words");
    cJSON_Delete(sj);
    cJSON_free(stext);
    status_free(&rs);

    char *expired = job_json("JOB_STATE_EXPIRED", RUN_LABEL, uri_label, NULL);
    SCRIPT("GET /v1/" NAME, expired, "POST /v2/entries:list", "200 {}");
    is_int(ops->poll(h, settings, &st, &e), 0, "an expired job");
    is_int(st.phase, REMOTE_CANNOT_START, "did not start");
    ok(!seen("POST /v2/entries:list"), "and had no log to read");

    /* cancel */
    SCRIPT("GET /v1/" NAME, running, "POST /v1/" NAME ":cancel", "200 {}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "cancel");
    ok(seen("GET /v1/" NAME) == 1 && seen("POST /v1/" NAME ":cancel") == 2, "reads the job's labels, then :cancel");

    SCRIPT("GET /v1/" NAME, other, "POST /v1/" NAME ":cancel", "200 {}");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a job labelled for another run ...");
    is_int(e.kind, ERR_REFUSED, "... is refused");
    ok(!seen("POST /v1/" NAME ":cancel"), "and not cancelled");

    char *unlabelled = xasprintf("200 {\"name\": \"" NAME "\", \"state\": \"JOB_STATE_RUNNING\"}");
    SCRIPT("GET /v1/" NAME, unlabelled, "POST /v1/" NAME ":cancel", "200 {}");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a job without stepop's labels is refused");
    ok(strstr(e.msg, "is missing") != NULL && !seen("POST /v1/" NAME ":cancel"), "saying the label is missing; not "
                                                                                 "cancelled");

    char *other_uri = job_json("JOB_STATE_RUNNING", RUN_LABEL, "0123456789abcdef0123456789abcdef", NULL);
    SCRIPT("GET /v1/" NAME, other_uri, "POST /v1/" NAME ":cancel", "200 {}");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "the run id's label alone is not enough: the URI's must match");
    ok(!seen("POST /v1/" NAME ":cancel"), "not cancelled");

    char *succeeded = job_json("JOB_STATE_SUCCEEDED", RUN_LABEL, uri_label, NULL);
    SCRIPT("GET /v1/" NAME, succeeded, "POST /v1/" NAME ":cancel", "400 {\"error\": {\"code\": 400}}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "a job that ended: cancel succeeds");
    ok(!seen("POST /v1/" NAME ":cancel"), "without :cancel");

    SCRIPT("GET /v1/" NAME, running, "POST /v1/" NAME ":cancel",
           "400 {\"error\": {\"code\": 400, \"message\": \"Cannot cancel the job in state JOB_STATE_SUCCEEDED.\", "
           "\"status\": \"FAILED_PRECONDITION\"}}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "a job that ended between the GET and :cancel: cancel succeeds");

    SCRIPT("GET /v1/" NAME, running, "POST /v1/" NAME ":cancel",
           "403 {\"error\": {\"code\": 403, \"message\": \"Permission 'aiplatform.customJobs.cancel' denied\", "
           "\"status\": \"PERMISSION_DENIED\"}}");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a refused :cancel fails");
    ok(strstr(e.msg, "PERMISSION_DENIED: Permission 'aiplatform.customJobs.cancel' denied") != NULL,
       "in Google's words: %s", e.msg);

    /* cleanup */
    SCRIPT("GET /v1/" NAME, succeeded);
    is_int(ops->cleanup(h, settings, &e), 0, "cleanup has nothing to delete");
    is_int(script.n_seen, 1, "after checking the job's labels; nothing else is called");
    SCRIPT("GET /v1/" NAME, unlabelled);
    is_int(ops->cleanup(h, settings, &e), -1, "cleanup refuses a job without the run's labels");
    is_int(e.kind, ERR_REFUSED, "ERR_REFUSED");

    /* Vertex AI starts the job again after a worker restart, or a spot preemption. */
    cJSON *spot = cJSON_Parse("{\"strategy\": \"SPOT\"}"),
          *restart = cJSON_Parse("{\"restart_job_on_worker_restart\": true}");
    ok(!ops->may_restart(settings), "may_restart: not by default");
    ok(ops->may_restart(spot), "may_restart: spot");
    ok(ops->may_restart(restart), "may_restart: restart_job_on_worker_restart");
    cJSON_Delete(spot);
    cJSON_Delete(restart);

    atomic_store(&stop_server, 1);
    pthread_join(t, NULL);
    close(listener);
    unlink(spath);
    rmdir(dir);
    rmdir(tmp);
    free(spath);
    free(succeeded);
    free(other_uri);
    free(unlabelled);
    free(expired);
    free(failed);
    cJSON_Delete(fh);
    free(file_label);
    free(file_run);
    free(dir);
    free(other);
    free(queued);
    free(running);
    cJSON_Delete(h);
    cJSON_Delete(settings);
    free(settings_text);
    free(manifest_uri);
    free(uri_label);
    free(run_uri);
    free(gcloud);
    return tap_done();
}
