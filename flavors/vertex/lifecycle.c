/* The vertex flavor: one Vertex AI custom job per step, with `stepop run` as its container's
 * command, through the REST API (cloud/api.h) with Google's application default credentials
 * (cloud/google/auth.h). This file holds its operations (flavor_vertex_ops): validate, render,
 * submit, poll, cancel, cleanup, and the Cloud Logging fallback for a job whose entrypoint never
 * wrote a status. Settings and behaviour: docs/flavors.md#vertex. */
#include "vertex.h"

#include "../follow.h"

#include "../../cloud/api.h"
#include "../../cloud/google/auth.h"
#include "../../runtime/doctor.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What --dry-run shows in place of the token. */
#define VX_AUTH_SHOWN "Bearer <Google application default credentials, added at send time>"

struct vx_retry_ctx {
    int create;    /* a create: not idempotent (a custom job has no request id) */
    int refreshed; /* the token was refreshed after a 401 */
};

/* A 401 once with a fresh token (it may have been revoked or expired early). A create is not
 * sent again after a 5xx or 408, which may come after the job was made: a second job would run
 * the step twice; 429 means it was not taken. Everything else as the HTTP layer decides. */
static int vx_retry(void *ctx, long status, const struct api_error *er)
{
    struct vx_retry_ctx *k = ctx;
    (void)er;
    if (status == 401) {
        if (k->refreshed)
            return 0;
        k->refreshed = 1;
        char *token = NULL;
        struct err e = { 0 };
        if (google_auth_token(&token, NULL, 1, &e) < 0)
            return 0;
        OPENSSL_cleanse(token, strlen(token));
        free(token);
        return 1;
    }
    if (k->create && (status >= 500 || status == 408))
        return 0;
    return -1;
}

/* One call to a Google API: JSON in and out, the bearer token added before every attempt, a
 * failure in Google's words (google.rpc.Status). */
static int vx_call(struct http_client *http, const char *method, const char *url, const char *label,
                   const cJSON *body, int create, cJSON **out, struct err *e)
{
    struct vx_retry_ctx k = { .create = create };
    struct api_call call = {
        .http = { .method = method, .url = url, .timeout_ms = 60000, .sign = google_auth_sign },
        .body = body,
        .json_answer = 1,
        .label = label,
        .error = api_error_google,
        .retry = vx_retry,
        .retry_ctx = &k,
    };
    struct api_response resp;
    if (out)
        *out = NULL;
    int rc = api_perform(http, &call, &resp, e);
    if (rc == 0 && out) {
        *out = resp.json;
        resp.json = NULL;
    }
    api_response_free(&resp);
    return rc;
}

/* ---- validate, render, submit ---- */

static int vx_prepare(const struct job *j, struct vx_cfg *c, cJSON **body, int redact, struct err *e)
{
    *body = NULL;
    if (vx_parse_settings(j->settings, c, e) < 0 || vx_check_job(j, c, e) < 0)
        return -1;
    *body = vx_create_body(j, c, redact);
    return 0;
}

static int vx_validate(const struct job *j, struct err *e)
{
    struct vx_cfg c;
    cJSON *body = NULL;
    int rc = vx_prepare(j, &c, &body, 1, e);
    cJSON_Delete(body);
    return rc;
}

/* The project: the setting, else the credentials' (google_auth_project). Caller frees. */
static char *vx_project(const struct vx_cfg *c, struct err *e)
{
    if (c->project)
        return xstrdup(c->project);
    char *p = google_auth_project(e);
    if (!p)
        err_prefix(e, "settings.project is not set and no project is known from the credentials: ");
    return p;
}

/* <base>/v1/projects/P/locations/L/customJobs. Caller frees. */
static char *vx_create_url(const struct vx_cfg *c, const char *project)
{
    char *base = vx_api_base(c);
    char *url = xasprintf("%s/v1/projects/%s/locations/%s/customJobs", base, project, c->location);
    free(base);
    return url;
}

static int vx_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct vx_cfg c;
    cJSON *body = NULL;
    *requests = NULL;
    if (vx_prepare(j, &c, &body, 1, e) < 0)
        return -1;
    char *project = vx_project(&c, e);
    if (!project) {
        cJSON_Delete(body);
        return -1;
    }
    char *url = vx_create_url(&c, project);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "project", project);
    cJSON_AddStringToObject(out, "location", c.location);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", "POST");
    cJSON_AddStringToObject(r, "url", url);
    cJSON *h = cJSON_AddObjectToObject(r, "headers");
    cJSON_AddStringToObject(h, "Authorization", VX_AUTH_SHOWN);
    cJSON_AddStringToObject(h, "Content-Type", "application/json");
    cJSON_AddItemToObject(r, "body", body);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "requests"), r);
    free(url);
    free(project);
    *requests = out;
    return 0;
}

static int vx_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct vx_cfg c;
    cJSON *body = NULL, *ans = NULL;
    *handle = NULL;
    if (vx_prepare(j, &c, &body, 0, e) < 0)
        return -1;
    char *project = vx_project(&c, e);
    if (!project) {
        cJSON_Delete(body);
        return -1;
    }
    char *url = vx_create_url(&c, project);
    char *label = xasprintf("projects/%s/locations/%s/customJobs", project, c.location);
    struct http_client *http = http_client_new();
    int rc = vx_call(http, "POST", url, label, body, 1, &ans, e);
    const char *name = json_str(ans, "name");
    if (rc < 0) {
        err_prefix(e, "creating custom job %s: ", json_str(body, "displayName"));
    } else if (!name || !str_has_prefix(name, "projects/")) {
        rc = err_set(e, ERR_INVALID, "creating custom job %s: the answer names no job (no \"name\")",
                     json_str(body, "displayName"));
    } else {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "name", name);
        cJSON_AddStringToObject(h, "location", c.location);
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
        log_info("created custom job %s (%s%s%s)", name, c.machine_type, c.accelerator_type ? ", " : "",
                 c.accelerator_type ? c.accelerator_type : "");
    }
    http_client_free(http);
    cJSON_Delete(ans);
    cJSON_Delete(body);
    free(label);
    free(url);
    free(project);
    return rc;
}

/* ---- poll, cancel, cleanup: from the handle, also in another process ---- */

struct vx_target {
    struct vx_cfg cfg;
    char *name;          /* projects/P/locations/L/customJobs/ID */
    char *project, *id;  /* parts of name */
    char *url;           /* <base>/v1/<name> */
    struct http_client *http;
};

static void vx_target_free(struct vx_target *t)
{
    if (t->http)
        http_client_free(t->http);
    free(t->name);
    free(t->project);
    free(t->id);
    free(t->url);
    memset(t, 0, sizeof *t);
}

/* The job the handle names, only when the name is a custom job of the settings' location; the
 * endpoint comes from the settings, never from the handle. Whose job it is, the labels say
 * (vx_verify_labels). */
static int vx_target_open(const cJSON *handle, const cJSON *settings, struct vx_target *t, struct err *e)
{
    memset(t, 0, sizeof *t);
    const char *name = json_str(handle, "name");
    if (!name || !json_str(handle, "run_id") || !json_str(handle, "run_uri"))
        return err_set(e, ERR_INVALID, "the vertex flavor's handle lacks name, run_id or run_uri");
    if (vx_parse_settings(settings, &t->cfg, e) < 0)
        return -1;
    int ok = str_has_prefix(name, "projects/");
    const char *p = ok ? name + 9 : name, *slash = strchr(p, '/');
    char *loc = xasprintf("/locations/%s/customJobs/", t->cfg.location);
    ok = ok && slash && slash > p && str_has_prefix(slash, loc);
    const char *id = ok ? slash + strlen(loc) : NULL;
    free(loc);
    static const char *const id_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
    ok = ok && strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-.:") == (size_t)(slash - p) && id[0] &&
         strlen(id) <= 128 && strspn(id, id_chars) == strlen(id);
    if (!ok)
        return err_set(e, ERR_REFUSED, "the handle names \"%.160s\", which is not a custom job in location %s "
                       "(projects/P/locations/%s/customJobs/ID); refusing to act on it", name, t->cfg.location,
                       t->cfg.location);
    t->name = xstrdup(name);
    t->project = xstrndup(p, (size_t)(slash - p));
    t->id = xstrdup(id);
    char *base = vx_api_base(&t->cfg);
    t->url = xasprintf("%s/v1/%s", base, name);
    free(base);
    t->http = http_client_new();
    return 0;
}

/* GET the job; *gone when Vertex AI does not know it. */
static int vx_get(struct vx_target *t, cJSON **job, int *gone, struct err *e)
{
    int rc = vx_call(t->http, "GET", t->url, t->name, NULL, 0, job, e);
    *gone = rc < 0 && e->kind == ERR_NOT_FOUND;
    return rc;
}

/* The job's labels must name the handle's run (flavor.h: handles are untrusted). */
static int vx_verify_labels(const struct vx_target *t, const cJSON *job, const cJSON *handle, struct err *e)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(job, "labels");
    const char *id = json_str(labels, VX_LABEL_RUN_ID), *uri = json_str(labels, VX_LABEL_RUN_URI);
    char *want_id = vx_label_value(json_str(handle, "run_id")), *want_uri = vx_uri_label(json_str(handle, "run_uri"));
    int rc = 0;
    if (!id || strcmp(id, want_id) != 0 || !uri || strcmp(uri, want_uri) != 0)
        rc = err_set(e, ERR_REFUSED, "custom job %s is not run %s's (its label " VX_LABEL_RUN_ID " is %s%.70s%s, "
                     VX_LABEL_RUN_URI " %s%.70s%s); refusing to act on it", t->name, json_str(handle, "run_id"),
                     id ? "\"" : "", id ? id : "missing", id ? "\"" : "", uri ? "\"" : "", uri ? uri : "missing",
                     uri ? "\"" : "");
    free(want_id);
    free(want_uri);
    return rc;
}

/* The text of a log entry: textPayload, else jsonPayload.message. */
static const char *vx_entry_text(const cJSON *entry)
{
    const char *s = json_str(entry, "textPayload");
    return s ? s : json_str(cJSON_GetObjectItemCaseSensitive(entry, "jsonPayload"), "message");
}

/* The job's last Cloud Logging entries (resource ml_job), oldest first, on one line, into out. */
static void vx_log_tail(struct vx_target *t, char *out, size_t len)
{
    out[0] = 0;
    char *base = xstrdup(t->cfg.logging_endpoint ? t->cfg.logging_endpoint : VX_DEFAULT_LOGGING);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        base[--bl] = 0;
    char *url = strstr(base, "://") ? xasprintf("%s/v2/entries:list", base) : xasprintf("https://%s/v2/entries:list", base);
    char *resource = xasprintf("projects/%s", t->project);
    char *filter = xasprintf("resource.type=\"ml_job\" AND resource.labels.job_id=\"%s\"", t->id);
    cJSON *in = cJSON_CreateObject(), *ans = NULL;
    cJSON_AddItemToArray(cJSON_AddArrayToObject(in, "resourceNames"), cJSON_CreateString(resource));
    cJSON_AddStringToObject(in, "filter", filter);
    cJSON_AddStringToObject(in, "orderBy", "timestamp desc");
    cJSON_AddNumberToObject(in, "pageSize", 20);
    struct err e = { 0 };
    if (vx_call(t->http, "POST", url, "entries:list", in, 0, &ans, &e) < 0)
        log_debug("the job's log entries: %s", e.msg);
    /* Newest first: keep the newest that fit, then write them oldest first. */
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(ans, "entries");
    int n = cJSON_GetArraySize(entries), keep = 0;
    size_t used = 0;
    for (; keep < n; keep++) {
        const char *s = vx_entry_text(cJSON_GetArrayItem(entries, keep));
        size_t l = s ? strcspn(s, "\n") + 3 : 0;
        if (used + l >= len)
            break;
        used += l;
    }
    for (int i = keep - 1; i >= 0; i--) {
        const char *s = vx_entry_text(cJSON_GetArrayItem(entries, i));
        size_t at = strlen(out);
        if (s)
            snprintf(out + at, len - at, "%s%.*s", at ? " | " : "", (int)strcspn(s, "\n"), s);
    }
    cJSON_Delete(ans);
    cJSON_Delete(in);
    free(filter);
    free(resource);
    free(url);
    free(base);
}

/* Whether the run's entrypoint wrote a final status (then its words say what happened, and the
 * job's logs are not needed). A store that cannot be read counts as no status. */
static int vx_have_final_status(const char *run_uri)
{
    struct store *s;
    struct err e = { 0 };
    if (store_open(run_uri, &s, &e) < 0)
        return 0;
    struct run_status st;
    memset(&st, 0, sizeof st);
    int have = follow_read_status(s, run_uri, &st, &e) == 0 && status_phase_is_final(st.phase);
    status_free(&st);
    store_close(s);
    return have;
}

static int vx_contains(const char *text, const char *const *words)
{
    for (; text && *words; words++)
        if (strcasestr(text, *words))
            return 1;
    return 0;
}

static const char *const vx_no_start_words[] = { "resources are insufficient", "insufficient capacity",
                                                 "ZONE_RESOURCE_POOL_EXHAUSTED", "stockout", "quota",
                                                 "unable to pull", "failed to pull", "image not found",
                                                 "pull access denied", "ErrImagePull", "ImagePullBackOff", NULL };
static const char *const vx_memory_words[] = { "OOMKilled", "out of memory", "ran out of memory", "OutOfMemory",
                                               NULL };
static const char *const vx_preempt_words[] = { "preempt", NULL };
static const char *const vx_timeout_words[] = { "timeout", "timed out", "deadline exceeded", NULL };

/* google.rpc.Code values in error.code. */
#define VX_RPC_DEADLINE_EXCEEDED 4
#define VX_RPC_RESOURCE_EXHAUSTED 8

/* The job's id (the name's last segment), for messages. */
static const char *vx_job_id(const cJSON *job)
{
    const char *name = json_str(job, "name"), *slash = name ? strrchr(name, '/') : NULL;
    return slash ? slash + 1 : name ? name : "?";
}

void vx_remote_state(const cJSON *job, const char *log_tail, struct remote_state *st)
{
    const char *state = json_str(job, "state"), *id = vx_job_id(job);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(job, "error");
    const char *why = json_str(error, "message");
    const cJSON *code_item = cJSON_GetObjectItemCaseSensitive(error, "code");
    int code = cJSON_IsNumber(code_item) ? code_item->valueint : 0;
    const char *tail = log_tail && log_tail[0] ? log_tail : NULL;
    if (!state)
        state = "JOB_STATE_UNSPECIFIED";
    st->exit_code = -1;
    if (!strcmp(state, "JOB_STATE_RUNNING") || !strcmp(state, "JOB_STATE_UPDATING")) {
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "custom job %s: %s", id, state);
        return;
    }
    if (!strcmp(state, "JOB_STATE_CANCELLING")) {
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "custom job %s is stopping (%s)", id, state);
        return;
    }
    if (!strcmp(state, "JOB_STATE_EXPIRED")) {
        st->phase = REMOTE_CANNOT_START;
        snprintf(st->message, sizeof st->message, "custom job %s did not start: no capacity before its maximum wait "
                 "(%s)%s%.300s", id, state, why ? ": " : "", why ? why : "");
        return;
    }
    int ended = !strcmp(state, "JOB_STATE_SUCCEEDED") || !strcmp(state, "JOB_STATE_PARTIALLY_SUCCEEDED") ||
                !strcmp(state, "JOB_STATE_FAILED") || !strcmp(state, "JOB_STATE_CANCELLED");
    if (!ended) {
        /* QUEUED, PENDING, PAUSED, and any state newer than this code. */
        st->phase = REMOTE_PENDING;
        snprintf(st->message, sizeof st->message, "custom job %s: %s", id, state);
        return;
    }
    st->phase = REMOTE_EXITED;
    char said[400];
    snprintf(said, sizeof said, "%s%.300s%s%s", why ? ": " : "", why ? why : "", tail ? "; its last log lines: " : "",
             tail ? tail : "");
    if (!strcmp(state, "JOB_STATE_SUCCEEDED") || !strcmp(state, "JOB_STATE_PARTIALLY_SUCCEEDED")) {
        st->exit_code = 0;
        snprintf(st->message, sizeof st->message, "custom job %s succeeded%s", id, said);
        return;
    }
    if (!strcmp(state, "JOB_STATE_CANCELLED")) {
        snprintf(st->message, sizeof st->message, "custom job %s was cancelled%s", id, said);
        return;
    }
    /* JOB_STATE_FAILED: error.message is Vertex AI's account. */
    if (code == VX_RPC_RESOURCE_EXHAUSTED || vx_contains(why, vx_no_start_words)) {
        st->phase = REMOTE_CANNOT_START;
        snprintf(st->message, sizeof st->message, "custom job %s could not start%s", id, said);
        return;
    }
    st->exit_code = vx_failure_exit_code(why);
    if (vx_contains(why, vx_preempt_words)) {
        st->reason = REASON_PREEMPTED;
        snprintf(st->message, sizeof st->message, "custom job %s was preempted%s", id, said);
        return;
    }
    /* Words alone only without an exit code: a step's own "timeout" may be in its exit message. */
    if (code == VX_RPC_DEADLINE_EXCEEDED || (st->exit_code < 0 && vx_contains(why, vx_timeout_words))) {
        st->reason = REASON_TIMEOUT;
        snprintf(st->message, sizeof st->message, "custom job %s ran past its scheduling timeout%s", id, said);
        return;
    }
    st->oom_killed = vx_contains(why, vx_memory_words);
    if (st->oom_killed && st->exit_code < 0)
        st->exit_code = 137;
    snprintf(st->message, sizeof st->message, "custom job %s failed%s", id, why ? said : tail ? said : ": (no reason given)");
}

static int vx_state_is_final(const char *state)
{
    static const char *const final[] = { "JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED", "JOB_STATE_FAILED",
                                         "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED", NULL };
    for (const char *const *f = final; state && *f; f++)
        if (!strcmp(state, *f))
            return 1;
    return 0;
}

static int vx_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    struct vx_target t;
    memset(st, 0, sizeof *st);
    if (vx_target_open(handle, settings, &t, e) < 0)
        return -1;
    cJSON *job = NULL;
    int gone, rc = vx_get(&t, &job, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
        st->phase = REMOTE_GONE;
        snprintf(st->message, sizeof st->message, "custom job %s is not known to Vertex AI", t.name);
    } else if (rc == 0) {
        rc = vx_verify_labels(&t, job, handle, e);
    }
    if (rc == 0 && job) {
        const char *state = json_str(job, "state");
        char tail[256] = "";
        /* The entrypoint never wrote its last word: the job's own log says why (an image without
         * stepop, a wrong command, a crash before the status could be written). */
        if (vx_state_is_final(state) && strcmp(state, "JOB_STATE_EXPIRED") != 0 &&
            !vx_have_final_status(json_str(handle, "run_uri")))
            vx_log_tail(&t, tail, sizeof tail);
        vx_remote_state(job, tail, st);
    }
    cJSON_Delete(job);
    vx_target_free(&t);
    return rc;
}

/* :cancel asks Vertex AI to stop the job, which stops its container (SIGTERM, then SIGKILL);
 * the grace period is not the API's to set. */
static int vx_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    (void)grace_ms;
    struct vx_target t;
    if (vx_target_open(handle, settings, &t, e) < 0)
        return -1;
    cJSON *job = NULL;
    int gone, rc = vx_get(&t, &job, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0 && vx_verify_labels(&t, job, handle, e) < 0) {
        rc = -1;
    } else if (rc == 0) {
        const char *state = json_str(job, "state");
        if (!vx_state_is_final(state) && !(state && !strcmp(state, "JOB_STATE_CANCELLING"))) {
            char *url = xasprintf("%s:cancel", t.url), *label = xasprintf("%s:cancel", t.name);
            cJSON *empty = cJSON_CreateObject();
            rc = vx_call(t.http, "POST", url, label, empty, 0, NULL, e);
            /* Ended meanwhile: Vertex AI refuses to cancel a job that has ended. */
            if (rc < 0 && e->http_status == 400 && strstr(e->msg, "FAILED_PRECONDITION")) {
                err_clear(e);
                rc = 0;
            }
            if (rc < 0)
                err_prefix(e, "cancelling custom job %s: ", t.name);
            cJSON_Delete(empty);
            free(label);
            free(url);
        }
    }
    cJSON_Delete(job);
    vx_target_free(&t);
    return rc;
}

/* A custom job leaves nothing to delete (Vertex AI keeps its record, its logs stay in Cloud
 * Logging). The handle is still verified as cancel verifies it, so that a forged one is refused
 * by both (DESIGN.md §8). */
static int vx_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    struct vx_target t;
    if (vx_target_open(handle, settings, &t, e) < 0)
        return -1;
    cJSON *job = NULL;
    int gone, rc = vx_get(&t, &job, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        rc = vx_verify_labels(&t, job, handle, e);
    }
    cJSON_Delete(job);
    vx_target_free(&t);
    return rc;
}

static int vx_may_restart(const cJSON *settings)
{
    struct vx_cfg c;
    struct err e = { 0 };
    return vx_parse_settings(settings, &c, &e) == 0 && vx_may_restart_cfg(&c);
}

/* `stepop doctor`: the credentials and the service account, then ListCustomJobs with pageSize 1
 * in the settings' project and location, a read that needs aiplatform.customJobs.list. */
static void vx_doctor(const cJSON *settings, struct doctor *d)
{
    struct vx_cfg c;
    struct err e = { 0 };
    if (vx_parse_settings(settings, &c, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "flavor vertex", "%s", e.msg);
        return;
    }
    if (google_doctor_lines(d, "vertex") < 0)
        return;
    char *project = vx_project(&c, &e);
    if (!project) {
        doctor_add(d, DOCTOR_FAIL, "flavor vertex", "%s", e.msg);
        return;
    }
    char *list = vx_create_url(&c, project);
    char *url = xasprintf("%s?pageSize=1", list);
    struct http_client *http = http_client_new();
    if (vx_call(http, "GET", url, "ListCustomJobs", NULL, 0, NULL, &e) < 0)
        doctor_add(d, DOCTOR_FAIL, "flavor vertex", "%s (hint: the account needs aiplatform.customJobs.list)", e.msg);
    else
        doctor_add(d, DOCTOR_OK, "flavor vertex", "%s: ListCustomJobs answered", list);
    http_client_free(http);
    free(url);
    free(list);
    free(project);
}

const struct flavor_ops flavor_vertex_ops = {
    .name = "vertex",
    .validate = vx_validate,
    .render = vx_render,
    .submit = vx_submit,
    .poll = vx_poll,
    .cancel = vx_cancel,
    .cleanup = vx_cleanup,
    .may_restart = vx_may_restart,
    .doctor = vx_doctor,
};
