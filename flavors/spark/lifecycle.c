/* The spark flavor's operations (flavor_spark_ops). Cluster mode on Kubernetes: spark-submit with
 * spark.kubernetes.submission.waitAppCompletion=false creates the driver pod from the generated
 * template and returns; poll, cancel and cleanup then find the driver pod through the Kubernetes
 * API (the run-id label and spark-role=driver), verify its annotations and read it with the
 * kubernetes flavor's pod-state code. Client mode (every other master): `stepop run --exec --
 * spark-submit ...` as a local child (flavor_local_spawn); poll and cancel are the local flavor's
 * (SIGTERM, which stepop run forwards to spark-submit, whose JVM is the driver). */
#include "spark.h"

#include "../kubernetes/kubernetes.h"

#include "../../cloud/kube/client.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/subproc.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* spark-submit's own time to create the driver pod (it uploads nothing: the application is in
 * the image). */
#define SPARK_SUBMIT_TIMEOUT_MS (10 * 60 * 1000)
#define SPARK_TEMPLATE_PLACEHOLDER "$TMPDIR/stepop-spark-XXXXXX.json"

static int spark_prepare(const struct job *j, struct spark_cfg *c, enum spark_app *app, struct err *e)
{
    return spark_parse_settings(j->settings, c, e) < 0 || spark_check_job(j, c, app, e) < 0 ? -1 : 0;
}

static int k8s_cluster(const struct spark_cfg *c)
{
    return c->kind == SPARK_K8S && c->cluster;
}

static int spark_validate(const struct job *j, struct err *e)
{
    struct spark_cfg c;
    enum spark_app app;
    if (spark_prepare(j, &c, &app, e) < 0)
        return -1;
    if (!k8s_cluster(&c))
        return 0;
    struct kube_client *kc = NULL;
    int rc = kube_client_open(c.context, c.namespace, &kc, e);
    kube_client_free(kc);
    return rc;
}

static cJSON *argv_json(char *const *argv)
{
    cJSON *a = cJSON_CreateArray();
    for (char *const *p = argv; *p; p++)
        cJSON_AddItemToArray(a, cJSON_CreateString(*p));
    return a;
}

/* Client mode: the argv of the local `stepop run --exec -- spark-submit ...`. */
static cJSON *client_request(const struct job *j, char **submit)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(r, "argv");
    const char *const head[] = { j->stepop_path, "run", "--exec", "--" };
    for (size_t i = 0; i < 4; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(head[i]));
    for (char **p = submit; *p; p++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(*p));
    cJSON *env = cJSON_AddObjectToObject(r, "env");
    cJSON_AddStringToObject(env, "STEPOP_MANIFEST", j->manifest_uri);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    cJSON_AddStringToObject(env, "STEPOP_ATTEMPT", attempt);
    return r;
}

static int spark_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct spark_cfg c;
    enum spark_app app;
    *requests = NULL;
    if (spark_prepare(j, &c, &app, e) < 0)
        return -1;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "flavor", "spark");
    cJSON_AddStringToObject(out, "deploy_mode", c.cluster ? "cluster" : "client");
    if (!k8s_cluster(&c)) {
        char **argv = spark_argv(j, &c, app, NULL, NULL);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "requests"), client_request(j, argv));
        spark_argv_free(argv);
        *requests = out;
        return 0;
    }
    struct kube_client *kc;
    if (kube_client_open(c.context, c.namespace, &kc, e) < 0) {
        cJSON_Delete(out);
        return -1;
    }
    const char *ns = kube_client_namespace(kc);
    cJSON_AddStringToObject(out, "server", kube_client_server(kc));
    cJSON_AddStringToObject(out, "namespace", ns);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "requests"), r);
    char **argv = spark_argv(j, &c, app, ns, SPARK_TEMPLATE_PLACEHOLDER);
    cJSON_AddItemToObject(r, "argv", argv_json(argv));
    cJSON_AddItemToObject(r, "pod_template", spark_pod_template(j, &c));
    cJSON_AddItemToObject(r, "driver_env", spark_driver_env(j, &c));
    spark_argv_free(argv);
    kube_client_free(kc);
    *requests = out;
    return 0;
}

/* ---- submit ---- */

static int submit_client(const struct job *j, char **argv, cJSON **handle, struct err *e)
{
    cJSON *none = cJSON_CreateObject();
    struct job lj = *j;
    lj.settings = none;
    int rc = flavor_local_spawn(&lj, (const char *const *)argv, handle, e);
    cJSON_Delete(none);
    if (rc == 0)
        cJSON_AddStringToObject(*handle, "mode", "client");
    return rc;
}

static int write_template(const struct job *j, const struct spark_cfg *c, char *path, size_t len, struct err *e)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, len, "%s/stepop-spark-XXXXXX.json", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemps(path, 5);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    /* Compact JSON: valid YAML, which Spark reads the template as; cJSON's pretty form indents
     * with tabs, which YAML refuses. */
    cJSON *t = spark_pod_template(j, c);
    char *text = json_print(t, 0);
    cJSON_Delete(t);
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    cJSON_free(text);
    int ok = off == n;
    if (close(fd) < 0)
        ok = 0;
    if (!ok) {
        unlink(path);
        return err_set(e, ERR_IO, "writing the pod template %s: %s", path, strerror(errno));
    }
    return 0;
}

static int submit_cluster(const struct job *j, const struct spark_cfg *c, enum spark_app app, cJSON **handle,
                          struct err *e)
{
    struct kube_client *kc;
    if (kube_client_open(c->context, c->namespace, &kc, e) < 0)
        return -1;
    const char *ns = kube_client_namespace(kc);
    char tpl[1100];
    if (write_template(j, c, tpl, sizeof tpl, e) < 0) {
        kube_client_free(kc);
        return -1;
    }
    char **argv = spark_argv(j, c, app, ns, tpl);
    struct subproc_opts o = { .argv = (const char *const *)argv, .max_output = 4u << 20,
                              .timeout_ms = SPARK_SUBMIT_TIMEOUT_MS, .what = "spark-submit" };
    struct subproc_result r = { 0 };
    int rc = subproc_run(&o, &r, e);
    unlink(tpl);
    if (r.out.len)
        fwrite(r.out.data, 1, r.out.len, stderr);
    if (rc < 0) {
        if (e->kind == ERR_NOT_FOUND)
            err_prefix(e, "spark-submit (%s; settings.spark_submit or $SPARK_HOME/bin/spark-submit names another): ",
                       c->spark_submit);
    } else if (r.signal || r.exit_code != 0) {
        rc = err_set(e, ERR_INTERNAL, "spark-submit %s %d (its messages are above); no driver pod was made for run %s",
                     r.signal ? "was killed by signal" : "exited with code", r.signal ? r.signal : r.exit_code,
                     j->m->run_id);
    } else {
        char *pod = spark_driver_pod_name(j->m);
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "mode", "cluster");
        cJSON_AddStringToObject(h, "namespace", ns);
        cJSON_AddStringToObject(h, "pod", pod);
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
        log_info("spark-submit made driver pod %s in namespace %s on %s", pod, ns, kube_client_server(kc));
        free(pod);
    }
    subproc_result_free(&r);
    spark_argv_free(argv);
    kube_client_free(kc);
    return rc;
}

static int spark_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct spark_cfg c;
    enum spark_app app;
    *handle = NULL;
    if (spark_prepare(j, &c, &app, e) < 0)
        return -1;
    if (k8s_cluster(&c))
        return submit_cluster(j, &c, app, handle, e);
    char **argv = spark_argv(j, &c, app, NULL, NULL);
    int rc = submit_client(j, argv, handle, e);
    spark_argv_free(argv);
    return rc;
}

/* ---- the driver pod, found and verified ---- */

static int handle_client(const cJSON *handle)
{
    const char *mode = json_str(handle, "mode");
    return mode && strcmp(mode, "client") == 0;
}

struct spark_target {
    struct spark_cfg cfg;
    struct kube_client *c;
    const char *ns, *run_id, *run_uri;
    cJSON *list;         /* the pods the label selector found */
    const cJSON *pod;    /* the newest of them, verified; NULL when none */
    const char *name;
};

static void target_free(struct spark_target *t)
{
    kube_client_free(t->c);
    cJSON_Delete(t->list);
    memset(t, 0, sizeof *t);
}

static int target_open(const cJSON *handle, const cJSON *settings, struct spark_target *t, struct err *e)
{
    memset(t, 0, sizeof *t);
    t->run_id = json_str(handle, "run_id");
    t->run_uri = json_str(handle, "run_uri");
    const char *ns = json_str(handle, "namespace");
    if (!t->run_id || !*t->run_id || !t->run_uri || !ns)
        return err_set(e, ERR_INVALID, "the spark flavor's handle lacks namespace, run_id or run_uri");
    if (spark_parse_settings(settings, &t->cfg, e) < 0 || kube_client_open(t->cfg.context, t->cfg.namespace, &t->c, e) < 0)
        return -1;
    t->ns = kube_client_namespace(t->c);
    if (strcmp(ns, t->ns) != 0) {
        err_set(e, ERR_REFUSED, "the handle names namespace \"%s\", the settings namespace \"%s\"; refusing to act on "
                "run %s's driver pod", ns, t->ns, t->run_id);
        target_free(t);
        return -1;
    }
    char *label = kube_run_label(t->run_id);
    char *sel = curl_easy_escape(NULL, label, 0);
    char *path = xasprintf("/api/v1/namespaces/%s/pods?labelSelector=" KUBE_LABEL_RUN_ID "%%3D%s%%2Cspark-role%%3Ddriver",
                           t->ns, sel);
    curl_free(sel);
    free(label);
    int rc = kube_request(t->c, "GET", path, NULL, &t->list, e);
    free(path);
    if (rc < 0) {
        err_prefix(e, "listing run %s's driver pod in namespace %s: ", t->run_id, t->ns);
        target_free(t);
        return -1;
    }
    const cJSON *p;
    const char *best_ts = "";
    cJSON_ArrayForEach(p, kube_get(t->list, "items", NULL))
    {
        const char *ts = kube_str(kube_get(p, "metadata", "creationTimestamp", NULL));
        if (!t->pod || (ts && strcmp(ts, best_ts) >= 0)) {
            t->pod = p;
            best_ts = ts ? ts : "";
        }
    }
    if (!t->pod)
        return 0;
    t->name = kube_str(kube_get(t->pod, "metadata", "name", NULL));
    t->name = t->name ? t->name : "?";
    /* The label could be set by anyone who can make pods; the annotations must say the same. */
    const char *id = kube_str(kube_get(t->pod, "metadata", "annotations", KUBE_ANNOTATION_RUN_ID, NULL));
    const char *uri = kube_str(kube_get(t->pod, "metadata", "annotations", KUBE_ANNOTATION_RUN_URI, NULL));
    char want_uri[1024];
    uri_redact(t->run_uri, want_uri, sizeof want_uri);
    const char *what = NULL, *found = NULL;
    if (!id || strcmp(id, t->run_id) != 0)
        what = "annotation " KUBE_ANNOTATION_RUN_ID, found = id;
    else if (!uri || strcmp(uri, want_uri) != 0)
        what = "annotation " KUBE_ANNOTATION_RUN_URI, found = uri;
    if (!what)
        return 0;
    err_set(e, ERR_REFUSED, "pod %s in namespace %s is not run %s's driver (its %s is %s%s%s); refusing to act on it",
            t->name, t->ns, t->run_id, what, found ? "\"" : "", found ? found : "missing", found ? "\"" : "");
    target_free(t);
    return -1;
}

static int spark_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    memset(st, 0, sizeof *st);
    if (handle_client(handle)) {
        cJSON *none = cJSON_CreateObject();
        int rc = flavor_local_ops.poll(handle, none, st, e);
        cJSON_Delete(none);
        return rc;
    }
    struct spark_target t;
    if (target_open(handle, settings, &t, e) < 0)
        return -1;
    if (!t.pod) {
        st->phase = REMOTE_GONE;
        kube_msg(st, "run %s has no driver pod in namespace %s", t.run_id, t.ns);
        target_free(&t);
        return 0;
    }
    int over;
    if (kube_pod_verdict(t.pod, SPARK_DRIVER_CONTAINER, &over, st)) {
        const char *phase = kube_str(kube_get(t.pod, "status", "phase", NULL));
        if (!over)
            st->phase = phase && strcmp(phase, "Running") == 0 ? REMOTE_RUNNING : REMOTE_PENDING;
        else {
            st->phase = REMOTE_EXITED;
            if (st->exit_code != 0)
                kube_quote_pod_log(t.c, t.ns, t.name, SPARK_DRIVER_CONTAINER, st);
        }
    }
    target_free(&t);
    return 0;
}

static int delete_pod(struct spark_target *t, int64_t grace_s, struct err *e)
{
    cJSON *opts = cJSON_CreateObject();
    cJSON_AddStringToObject(opts, "kind", "DeleteOptions");
    cJSON_AddStringToObject(opts, "apiVersion", "v1");
    if (grace_s >= 0)
        cJSON_AddNumberToObject(opts, "gracePeriodSeconds", (double)grace_s);
    const char *uid = kube_str(kube_get(t->pod, "metadata", "uid", NULL));
    if (uid)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(opts, "preconditions"), "uid", uid);
    char *path = xasprintf("/api/v1/namespaces/%s/pods/%s", t->ns, t->name);
    int rc = kube_request(t->c, "DELETE", path, opts, NULL, e);
    if (rc < 0 && e->http_status == 404) {
        rc = 0;
        err_clear(e);
    }
    if (rc < 0)
        err_prefix(e, "deleting driver pod %s in namespace %s: ", t->name, t->ns);
    free(path);
    cJSON_Delete(opts);
    return rc;
}

static int pod_over(const cJSON *pod)
{
    const char *phase = kube_str(kube_get(pod, "status", "phase", NULL));
    return (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) ||
           kube_get(pod, "metadata", "deletionTimestamp", NULL);
}

/* Deleting the driver pod: stepop run in it gets SIGTERM and the grace period (plus the margin
 * for its final status); the executors, owned by the driver pod, go with it. */
static int spark_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    if (handle_client(handle)) {
        cJSON *none = cJSON_CreateObject();
        int rc = flavor_local_ops.cancel(handle, none, grace_ms, e);
        cJSON_Delete(none);
        return rc;
    }
    struct spark_target t;
    if (target_open(handle, settings, &t, e) < 0)
        return err_prefix(e, "stopping the driver: ");
    int rc = 0;
    if (t.pod && !pod_over(t.pod))
        rc = delete_pod(&t, grace_ms > 0 ? (grace_ms + 999) / 1000 + KUBE_GRACE_MARGIN_S : 0, e);
    target_free(&t);
    return rc;
}

static int spark_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    struct spark_cfg cfg;
    if (spark_parse_settings(settings, &cfg, e) < 0)
        return -1;
    if (cfg.keep)
        return 0;
    if (handle_client(handle)) {
        cJSON *none = cJSON_CreateObject();
        int rc = flavor_local_ops.cleanup(handle, none, e);
        cJSON_Delete(none);
        return rc;
    }
    struct spark_target t;
    if (target_open(handle, settings, &t, e) < 0)
        return err_prefix(e, "removing the driver pod: ");
    int rc = 0;
    if (t.pod && !kube_get(t.pod, "metadata", "deletionTimestamp", NULL))
        rc = delete_pod(&t, -1, e);
    target_free(&t);
    return rc;
}

const struct flavor_ops flavor_spark_ops = {
    .name = "spark",
    .validate = spark_validate,
    .render = spark_render,
    .submit = spark_submit,
    .poll = spark_poll,
    .cancel = spark_cancel,
    .cleanup = spark_cleanup,
};
