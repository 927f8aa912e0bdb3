/* spark-submit's argv, its --conf properties (Spark's documented names, docs/flavors.md#spark) and
 * the driver pod template. Nothing here reads the environment or the cluster: the same job gives
 * the same argv, which --dry-run shows and tests/unit/test_spark_argv.c checks. */
#include "spark.h"

#include "../kubernetes/kubernetes.h"

#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *spark_driver_pod_name(const struct manifest *m)
{
    char *job = kube_job_name(m);
    char *name = xasprintf("%s-driver", job);
    free(job);
    return name;
}

struct argv_b {
    char **v;
    size_t n, cap;
};

static void add(struct argv_b *b, char *owned)
{
    if (b->n + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 32;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = owned;
    b->v[b->n] = NULL;
}

static void conf(struct argv_b *b, const char *key, const char *value)
{
    add(b, xstrdup("--conf"));
    add(b, xasprintf("%s=%s", key, value));
}

static void conf_int(struct argv_b *b, const char *key, long long value)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", value);
    conf(b, key, v);
}

/* spark.{driver,executor}.resource.gpu.*: Spark's resource scheduling (Spark 3.0+). */
static void gpu_confs(struct argv_b *b, const struct spark_cfg *c, const char *role, int gpus)
{
    char key[96];
    snprintf(key, sizeof key, "spark.%s.resource.gpu.amount", role);
    conf_int(b, key, gpus);
    snprintf(key, sizeof key, "spark.%s.resource.gpu.discoveryScript", role);
    conf(b, key, c->gpu_discovery_script);
    if (c->kind == SPARK_K8S) {
        snprintf(key, sizeof key, "spark.%s.resource.gpu.vendor", role);
        conf(b, key, "nvidia.com");
    }
}

/* Spark puts the application's arguments verbatim into the driver container's args, where
 * Kubernetes expands $(VAR) and turns $$ into $: with every $ doubled they arrive as given. The
 * application itself is left as it is: spark-submit reads it (and may upload it) first. */
static char *k8s_arg(const char *s)
{
    size_t n = strlen(s) + 1;
    for (const char *p = s; *p; p++)
        n += *p == '$';
    char *out = xmalloc(n), *o = out;
    for (const char *p = s; *p; p++) {
        *o++ = *p;
        if (*p == '$')
            *o++ = '$';
    }
    *o = '\0';
    return out;
}

char **spark_argv(const struct job *j, const struct spark_cfg *c, enum spark_app app, const char *namespace,
                  const char *template_path)
{
    const struct manifest *m = j->m;
    struct argv_b b = { 0 };
    int k8s_cluster = c->kind == SPARK_K8S && c->cluster;
    add(&b, xstrdup(c->spark_submit));
    add(&b, xstrdup("--master"));
    add(&b, xstrdup(c->master));
    add(&b, xstrdup("--deploy-mode"));
    add(&b, xstrdup(c->cluster ? "cluster" : "client"));
    add(&b, xstrdup("--name"));
    add(&b, xstrdup(m->run_id));
    if (app == SPARK_APP_JAR) {
        add(&b, xstrdup("--class"));
        add(&b, xstrdup(c->main_class));
    }
    if (m->memory > 0) {
        add(&b, xstrdup("--driver-memory"));
        add(&b, xasprintf("%lldm", (long long)((m->memory + (1 << 20) - 1) >> 20)));
    }
    if (c->executor_memory) {
        add(&b, xstrdup("--executor-memory"));
        add(&b, xstrdup(c->executor_memory));
    }
    if (c->executor_cores) {
        add(&b, xstrdup("--executor-cores"));
        add(&b, xasprintf("%d", c->executor_cores));
    }
    if (m->cpu > 0)
        conf_int(&b, "spark.driver.cores", (long long)m->cpu);
    if (c->executor_instances)
        conf_int(&b, "spark.executor.instances", c->executor_instances);
    if (m->gpus > 0)
        gpu_confs(&b, c, "driver", m->gpus);
    if (c->executor_gpus > 0)
        gpu_confs(&b, c, "executor", c->executor_gpus);

    char *label = kube_run_label(m->run_id);
    if (c->kind == SPARK_K8S) {
        if (k8s_cluster)
            conf(&b, "spark.kubernetes.submission.waitAppCompletion", "false");
        conf(&b, "spark.kubernetes.container.image", m->image);
        if (namespace)
            conf(&b, "spark.kubernetes.namespace", namespace);
        if (c->context)
            conf(&b, "spark.kubernetes.context", c->context);
        if (c->image_pull_policy)
            conf(&b, "spark.kubernetes.container.image.pullPolicy", c->image_pull_policy);
        if (c->service_account)
            conf(&b, "spark.kubernetes.authenticate.driver.serviceAccountName", c->service_account);
        conf(&b, "spark.kubernetes.driver.label." KUBE_LABEL_RUN_ID, label);
        conf(&b, "spark.kubernetes.executor.label." KUBE_LABEL_RUN_ID, label);
    }
    if (k8s_cluster) {
        char *pod = spark_driver_pod_name(m);
        conf(&b, "spark.kubernetes.driver.pod.name", pod);
        free(pod);
        conf(&b, "spark.kubernetes.driver.podTemplateFile", template_path);
        conf(&b, "spark.kubernetes.driver.podTemplateContainerName", SPARK_DRIVER_CONTAINER);
        conf(&b, "spark.kubernetes.driverEnv.STEPOP_MANIFEST", j->manifest_uri);
        conf_int(&b, "spark.kubernetes.driverEnv.STEPOP_ATTEMPT", j->attempt);
        for (int i = 0; i < m->env_count; i++) {
            char *key = xasprintf("spark.kubernetes.driverEnv.%s", m->env_names[i]);
            conf(&b, key, m->env_values[i]);
            free(key);
        }
    }
    for (int i = 0; i < m->env_count; i++) {
        char *key = xasprintf("spark.executorEnv.%s", m->env_names[i]);
        conf(&b, key, m->env_values[i]);
        free(key);
    }
    for (const cJSON *it = c->secret_env ? c->secret_env->child : NULL; it; it = it->next) {
        char *key = xasprintf("spark.kubernetes.driver.secretKeyRef.%s", it->string);
        conf(&b, key, it->valuestring);
        free(key);
        key = xasprintf("spark.kubernetes.executor.secretKeyRef.%s", it->string);
        conf(&b, key, it->valuestring);
        free(key);
    }
    for (const cJSON *it = c->conf ? c->conf->child : NULL; it; it = it->next)
        conf(&b, it->string, it->valuestring);
    free(label);
    for (int i = 0; m->argv[i]; i++)
        add(&b, k8s_cluster && i > 0 ? k8s_arg(m->argv[i]) : xstrdup(m->argv[i]));
    return b.v;
}

void spark_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

cJSON *spark_pod_template(const struct job *j, const struct spark_cfg *c)
{
    const struct manifest *m = j->m;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "apiVersion", "v1");
    cJSON_AddStringToObject(t, "kind", "Pod");
    cJSON *md = cJSON_AddObjectToObject(t, "metadata");
    char *label = kube_run_label(m->run_id);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "labels"), KUBE_LABEL_RUN_ID, label);
    free(label);
    cJSON *ann = cJSON_AddObjectToObject(md, "annotations");
    cJSON_AddStringToObject(ann, KUBE_ANNOTATION_RUN_ID, m->run_id);
    char uri[1024];
    uri_redact(m->run_uri, uri, sizeof uri);
    cJSON_AddStringToObject(ann, KUBE_ANNOTATION_RUN_URI, uri);
    cJSON *spec = cJSON_AddObjectToObject(t, "spec");
    cJSON_AddStringToObject(spec, "restartPolicy", "Never");
    /* stepop run forwards SIGTERM, waits the grace period, then writes the final status. */
    cJSON_AddNumberToObject(spec, "terminationGracePeriodSeconds",
                            (double)((m->grace_ms + 999) / 1000 + KUBE_GRACE_MARGIN_S));
    if (m->timeout_ms > 0)
        cJSON_AddNumberToObject(spec, "activeDeadlineSeconds",
                                (double)((m->timeout_ms + m->grace_ms + 999) / 1000 + KUBE_DEADLINE_MARGIN_S));
    if (c->host_network) {
        cJSON_AddBoolToObject(spec, "hostNetwork", 1);
        cJSON_AddStringToObject(spec, "dnsPolicy", "ClusterFirstWithHostNet");
    }
    cJSON *ct = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "containers"), ct);
    cJSON_AddStringToObject(ct, "name", SPARK_DRIVER_CONTAINER);
    /* Spark sets the container's args (driver --properties-file ... --class ... APP ARGS) and leaves
     * its command: so the image's entrypoint runs them under stepop run. */
    cJSON *cmd = cJSON_AddArrayToObject(ct, "command");
    const char *const words[] = { c->stepop_path, "run", "--exec", "--", c->spark_entrypoint };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        cJSON_AddItemToArray(cmd, cJSON_CreateString(words[i]));
    return t;
}

cJSON *spark_driver_env(const struct job *j, const struct spark_cfg *c)
{
    const struct manifest *m = j->m;
    cJSON *env = cJSON_CreateObject();
    cJSON_AddStringToObject(env, "STEPOP_MANIFEST", j->manifest_uri);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    cJSON_AddStringToObject(env, "STEPOP_ATTEMPT", attempt);
    for (int i = 0; i < m->env_count; i++)
        cJSON_AddStringToObject(env, m->env_names[i], m->env_values[i]);
    for (const cJSON *it = c->secret_env ? c->secret_env->child : NULL; it; it = it->next) {
        const char *colon = strchr(it->valuestring, ':');
        char *v = xasprintf("<secret %.*s key %s>", (int)(colon - it->valuestring), it->valuestring, colon + 1);
        cJSON_AddStringToObject(env, it->string, v);
        free(v);
    }
    return env;
}
