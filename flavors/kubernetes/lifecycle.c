/* The kubernetes flavor's operations (flavor_kubernetes_ops): validate, render, submit a batch/v1
 * Job, poll the Job and its newest pod, cancel and clean up, through cloud/kube/client.c. The
 * client is always opened from the settings (context, namespace), never from what a handle
 * names; a handle's Job is acted on only once its labels and annotations say it is the run's.
 * Settings and behaviour: docs/flavors.md#kubernetes. */
#include "kubernetes.h"

#include "../../cloud/kube/client.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Settings parsed, then the client for their context and namespace. */
static int kube_open(const cJSON *settings, struct kube_cfg *cfg, struct kube_client **c, struct err *e)
{
    *c = NULL;
    if (kube_parse_settings(settings, cfg, e) < 0)
        return -1;
    return kube_client_open(cfg->context, cfg->namespace, c, e);
}

/* ---- validate, render ---- */

static int kube_validate(const struct job *j, struct err *e)
{
    struct kube_cfg cfg;
    struct kube_client *c = NULL;
    if (kube_parse_settings(j->settings, &cfg, e) < 0 || kube_check_job(j, &cfg, e) < 0)
        return -1;
    int rc = kube_client_open(cfg.context, cfg.namespace, &c, e);
    kube_client_free(c);
    return rc;
}

/* What the Authorization header would hold, by its kind, never its value; NULL when no token. */
static char *kube_auth_kind(const struct kube_config *k)
{
    const char *user = k->user ? k->user : "";
    if (k->token)
        return xasprintf("Bearer <token from kubeconfig user %s>", user);
    if (k->token_file)
        return k->in_cluster ? xasprintf("Bearer <service account token from %s>", k->token_file)
                             : xasprintf("Bearer <token from file %s (kubeconfig user %s)>", k->token_file, user);
    if (k->exec)
        return xasprintf("Bearer <token from exec plugin %s (kubeconfig user %s), if it gives one>", k->exec->command,
                         user);
    return NULL;
}

static char *kube_jobs_path(const char *ns)
{
    return xasprintf("/apis/batch/v1/namespaces/%s/jobs", ns);
}

static int kube_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct kube_cfg cfg;
    struct kube_client *c;
    *requests = NULL;
    if (kube_parse_settings(j->settings, &cfg, e) < 0 || kube_check_job(j, &cfg, e) < 0 ||
        kube_client_open(cfg.context, cfg.namespace, &c, e) < 0)
        return -1;
    const char *ns = kube_client_namespace(c);
    const struct kube_config *k = kube_client_config(c);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "server", kube_client_server(c));
    cJSON_AddStringToObject(out, "namespace", ns);
    cJSON_AddStringToObject(out, "context", k->context ? k->context : "");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "requests"), r);
    cJSON_AddStringToObject(r, "method", "POST");
    char *path = kube_jobs_path(ns);
    char *url = xasprintf("%s%s", kube_client_server(c), path);
    /* The server URL as it appears in the kubeconfig, trailing '/' included, would give "//". */
    size_t sl = strlen(kube_client_server(c));
    if (sl && kube_client_server(c)[sl - 1] == '/')
        memmove(url + sl - 1, url + sl, strlen(url + sl) + 1);
    cJSON_AddStringToObject(r, "url", url);
    char *auth = kube_auth_kind(k);
    if (auth)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "headers"), "Authorization", auth);
    cJSON_AddItemToObject(r, "body", kube_job_body(j, &cfg, ns));
    free(auth);
    free(url);
    free(path);
    kube_client_free(c);
    *requests = out;
    return 0;
}

/* ---- submit ---- */

static int kube_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct kube_cfg cfg;
    struct kube_client *c;
    *handle = NULL;
    if (kube_parse_settings(j->settings, &cfg, e) < 0 || kube_check_job(j, &cfg, e) < 0 ||
        kube_client_open(cfg.context, cfg.namespace, &c, e) < 0)
        return -1;
    const char *ns = kube_client_namespace(c);
    char *name = kube_job_name(j->m);
    char *path = kube_jobs_path(ns);
    cJSON *body = kube_job_body(j, &cfg, ns), *made = NULL;
    int rc = kube_request(c, "POST", path, body, &made, e);
    if (rc < 0) {
        if (e->http_status == 409)
            err_prefix(e, "a Job named %s exists already in namespace %s (an earlier submit of run %s? delete it with "
                          "'kubectl delete job %s -n %s'): ",
                       name, ns, j->m->run_id, name, ns);
        err_prefix(e, "creating Job %s in namespace %s on %s: ", name, ns, kube_client_server(c));
    } else {
        const char *uid = kube_str(kube_get(made, "metadata", "uid", NULL));
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "namespace", ns);
        cJSON_AddStringToObject(h, "job", name);
        cJSON_AddStringToObject(h, "uid", uid ? uid : "");
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
        log_info("created Job %s in namespace %s on %s", name, ns, kube_client_server(c));
    }
    cJSON_Delete(made);
    cJSON_Delete(body);
    free(path);
    free(name);
    kube_client_free(c);
    return rc;
}

/* ---- the handle, verified ---- */

struct kube_target {
    struct kube_cfg cfg;
    struct kube_client *c;
    const char *ns, *job, *run_id, *run_uri;
    cJSON *obj; /* the Job as the API server has it; NULL when it is gone */
};

static void kube_target_free(struct kube_target *t)
{
    kube_client_free(t->c);
    cJSON_Delete(t->obj);
    memset(t, 0, sizeof *t);
}

/* The Job is the run's when its run-id label, run-id annotation and run-uri annotation say so. */
static int kube_verify(const struct kube_target *t, struct err *e)
{
    const cJSON *md = kube_get(t->obj, "metadata", NULL);
    const char *label = kube_str(kube_get(md, "labels", KUBE_LABEL_RUN_ID, NULL));
    const char *id = kube_str(kube_get(md, "annotations", KUBE_ANNOTATION_RUN_ID, NULL));
    const char *uri = kube_str(kube_get(md, "annotations", KUBE_ANNOTATION_RUN_URI, NULL));
    char *want_label = kube_run_label(t->run_id);
    char want_uri[1024];
    uri_redact(t->run_uri, want_uri, sizeof want_uri);
    const char *what = NULL, *found = NULL;
    if (!label || strcmp(label, want_label) != 0)
        what = "label " KUBE_LABEL_RUN_ID, found = label;
    else if (!id || strcmp(id, t->run_id) != 0)
        what = "annotation " KUBE_ANNOTATION_RUN_ID, found = id;
    else if (!uri || strcmp(uri, want_uri) != 0)
        what = "annotation " KUBE_ANNOTATION_RUN_URI, found = uri;
    free(want_label);
    if (!what)
        return 0;
    return err_set(e, ERR_REFUSED, "Job %s in namespace %s is not run %s's (its %s is %s%s%s); refusing to act on it",
                   t->job, t->ns, t->run_id, what, found ? "\"" : "", found ? found : "missing", found ? "\"" : "");
}

/* Opens the client from the settings, checks the handle against them and fetches its Job
 * (t->obj stays NULL when the API server no longer has it), verified to be the run's. */
static int kube_target_open(const cJSON *handle, const cJSON *settings, struct kube_target *t, struct err *e)
{
    memset(t, 0, sizeof *t);
    t->job = json_str(handle, "job");
    t->run_id = json_str(handle, "run_id");
    t->run_uri = json_str(handle, "run_uri");
    const char *ns = json_str(handle, "namespace");
    if (!t->job || !t->run_id || !t->run_uri || !ns)
        return err_set(e, ERR_INVALID, "the kubernetes flavor's handle lacks namespace, job, run_id or run_uri");
    /* The name goes into API paths: a Job's name, nothing that could name another path. */
    if (!kube_is_dns_subdomain(t->job))
        return err_set(e, ERR_REFUSED, "the kubernetes flavor's handle: \"%s\" is not a Job name", t->job);
    if (kube_open(settings, &t->cfg, &t->c, e) < 0)
        return -1;
    t->ns = kube_client_namespace(t->c);
    if (strcmp(ns, t->ns) != 0) {
        err_set(e, ERR_REFUSED, "the handle names namespace \"%s\", the settings namespace \"%s\"; refusing to act on "
                "Job %s", ns, t->ns, t->job);
        kube_target_free(t);
        return -1;
    }
    char *path = xasprintf("/apis/batch/v1/namespaces/%s/jobs/%s", t->ns, t->job);
    int rc = kube_request(t->c, "GET", path, NULL, &t->obj, e);
    free(path);
    if (rc < 0 && e->http_status == 404) {
        err_clear(e);
        return 0;
    }
    if (rc == 0)
        rc = kube_verify(t, e);
    if (rc < 0)
        kube_target_free(t);
    return rc;
}

/* ---- poll ---- */

/* The newest pod of the list (a retried Job has several), or NULL. */
static const cJSON *kube_newest_pod(const cJSON *list)
{
    const cJSON *best = NULL, *p;
    const char *best_ts = "";
    cJSON_ArrayForEach(p, kube_get(list, "items", NULL))
    {
        const char *ts = kube_str(kube_get(p, "metadata", "creationTimestamp", NULL));
        /* RFC 3339 in UTC with seconds, as the API server writes it: text order is time order. */
        if (!best || (ts && strcmp(ts, best_ts) >= 0)) {
            best = p;
            best_ts = ts ? ts : "";
        }
    }
    return best;
}

static int kube_count_failed(const cJSON *list)
{
    int n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, kube_get(list, "items", NULL))
    {
        const char *phase = kube_str(kube_get(p, "status", "phase", NULL));
        n += phase && strcmp(phase, "Failed") == 0;
    }
    return n;
}

/* The newest pod as a phase; job_ended: the Job failed, so no other pod follows. */
static void kube_pod_state(struct kube_target *t, const cJSON *list, const cJSON *pod, int job_ended,
                           struct remote_state *st)
{
    int over;
    if (!kube_pod_verdict(pod, KUBE_CONTAINER, &over, st))
        return;
    const char *name = kube_str(kube_get(pod, "metadata", "name", NULL));
    const char *phase = kube_str(kube_get(pod, "status", "phase", NULL));
    phase = phase ? phase : "Pending";
    if (!job_ended && !over) {
        /* Being taken away, not gone yet: it runs until the platform stops it. */
        st->phase = strcmp(phase, "Running") == 0 ? REMOTE_RUNNING : REMOTE_PENDING;
        return;
    }
    /* A failed pod with retries left is not the end: the Job starts another. */
    const cJSON *limit = kube_get(t->obj, "spec", "backoffLimit", NULL);
    int retries = cJSON_IsNumber(limit) ? limit->valueint : 6;
    int failures = kube_count_failed(list) + (strcmp(phase, "Failed") != 0); /* a lost pod counts too */
    if (!job_ended && strcmp(phase, "Succeeded") != 0 && failures <= retries) {
        st->phase = REMOTE_RUNNING;
        size_t used = strlen(st->message);
        snprintf(st->message + used, sizeof st->message - used, "; the Job starts another pod");
        return;
    }
    st->phase = REMOTE_EXITED;
    if (st->exit_code != 0)
        kube_quote_pod_log(t->c, t->ns, name ? name : "?", KUBE_CONTAINER, st);
}

static int kube_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    struct kube_target t;
    memset(st, 0, sizeof *st);
    if (kube_target_open(handle, settings, &t, e) < 0)
        return -1;
    if (!t.obj) {
        st->phase = REMOTE_GONE;
        kube_msg(st, "Job %s no longer exists in namespace %s", t.job, t.ns);
        kube_target_free(&t);
        return 0;
    }
    /* The Job controller labels its pods with both; the uid leaves out the pods of an earlier Job
     * of the same name (orphaned by a delete). */
    const char *uid = kube_str(kube_get(t.obj, "metadata", "uid", NULL));
    char *sel = curl_easy_escape(NULL, t.job, 0), *usel = uid ? curl_easy_escape(NULL, uid, 0) : NULL;
    char *path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=job-name%%3D%s%s%s", t.ns, sel,
                           usel ? "%2Ccontroller-uid%3D" : "", usel ? usel : "");
    curl_free(usel);
    curl_free(sel);
    cJSON *pods = NULL;
    int rc = kube_request(t.c, "GET", path, NULL, &pods, e);
    free(path);
    if (rc < 0) {
        err_prefix(e, "listing the pods of Job %s: ", t.job);
        kube_target_free(&t);
        return -1;
    }
    const cJSON *pod = kube_newest_pod(pods);
    const char *pod_name = kube_str(kube_get(pod, "metadata", "name", NULL));
    const cJSON *complete = kube_condition(t.obj, "Complete"), *failed = kube_condition(t.obj, "Failed");
    if (complete) {
        st->phase = REMOTE_EXITED;
        if (!pod || !kube_terminated(pod, KUBE_CONTAINER, pod_name ? pod_name : "?", st))
            kube_msg(st, "Job %s completed", t.job);
        st->exit_code = 0;
    } else if (failed) {
        const char *reason = kube_str(kube_get(failed, "reason", NULL)), *message = kube_str(kube_get(failed, "message", NULL));
        st->exit_code = -1;
        if (pod)
            kube_pod_state(&t, pods, pod, 1, st);
        char pod_words[sizeof st->message];
        str_copy(pod_words, sizeof pod_words, pod ? st->message : "");
        st->phase = REMOTE_EXITED;
        if (reason && strcmp(reason, "DeadlineExceeded") == 0)
            st->reason = REASON_TIMEOUT;
        kube_msg(st, "Job %s failed: %s%s%s%s%.400s", t.job, reason ? reason : "Failed", message ? ": " : "",
                 message ? message : "", pod_words[0] ? "; " : "", pod_words);
    } else if (!pod) {
        st->phase = REMOTE_PENDING;
        kube_msg(st, "Job %s has no pod yet", t.job);
    } else {
        kube_pod_state(&t, pods, pod, 0, st);
    }
    cJSON_Delete(pods);
    kube_target_free(&t);
    return 0;
}

/* ---- cancel, cleanup ---- */

/* DELETE the verified Job; the uid precondition makes sure it is the very Job verified. */
static int kube_delete(struct kube_target *t, const char *propagation, int64_t grace_s, struct err *e)
{
    cJSON *opts = cJSON_CreateObject();
    cJSON_AddStringToObject(opts, "kind", "DeleteOptions");
    cJSON_AddStringToObject(opts, "apiVersion", "v1");
    cJSON_AddStringToObject(opts, "propagationPolicy", propagation);
    if (grace_s >= 0)
        cJSON_AddNumberToObject(opts, "gracePeriodSeconds", (double)grace_s);
    const char *uid = kube_str(kube_get(t->obj, "metadata", "uid", NULL));
    if (uid)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(opts, "preconditions"), "uid", uid);
    char *path = xasprintf("/apis/batch/v1/namespaces/%s/jobs/%s", t->ns, t->job);
    int rc = kube_request(t->c, "DELETE", path, opts, NULL, e);
    if (rc < 0 && e->http_status == 404) {
        rc = 0; /* gone meanwhile */
        err_clear(e);
    }
    if (rc < 0)
        err_prefix(e, "deleting Job %s in namespace %s: ", t->job, t->ns);
    free(path);
    cJSON_Delete(opts);
    return rc;
}

static int kube_finished(const struct kube_target *t)
{
    return kube_condition(t->obj, "Complete") || kube_condition(t->obj, "Failed") ||
           kube_get(t->obj, "metadata", "deletionTimestamp", NULL);
}

/* Deleting the Job (foreground: the Job goes once its pods have) is how a Job is stopped; its
 * pods get SIGTERM and their terminationGracePeriodSeconds (the grace period and a margin). A
 * Job that already ended is left for cleanup (settings.keep). */
static int kube_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    struct kube_target t;
    if (kube_target_open(handle, settings, &t, e) < 0)
        return err_prefix(e, "stopping the Job: ");
    int rc = 0;
    if (t.obj && !kube_finished(&t))
        rc = kube_delete(&t, "Foreground", grace_ms > 0 ? grace_ms / 1000 : 0, e);
    kube_target_free(&t);
    return rc;
}

static int kube_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    struct kube_cfg cfg;
    if (kube_parse_settings(settings, &cfg, e) < 0)
        return -1;
    if (cfg.keep)
        return 0;
    struct kube_target t;
    if (kube_target_open(handle, settings, &t, e) < 0)
        return err_prefix(e, "removing the Job: ");
    int rc = 0;
    if (t.obj && !kube_get(t.obj, "metadata", "deletionTimestamp", NULL))
        rc = kube_delete(&t, "Background", -1, e);
    kube_target_free(&t);
    return rc;
}

/* backoffLimit (settings.retries) above 0: the Job controller runs a failed pod's step again. */
static int kube_may_restart(const cJSON *settings)
{
    struct kube_cfg cfg;
    struct err e = { 0 };
    return kube_parse_settings(settings, &cfg, &e) == 0 && cfg.retries > 0;
}

const struct flavor_ops flavor_kubernetes_ops = {
    .name = "kubernetes",
    .validate = kube_validate,
    .render = kube_render,
    .submit = kube_submit,
    .poll = kube_poll,
    .cancel = kube_cancel,
    .cleanup = kube_cleanup,
    .may_restart = kube_may_restart,
};
