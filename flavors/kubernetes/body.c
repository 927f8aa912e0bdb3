/* What the kubernetes flavor asks the API server to create: a batch/v1 Job of one pod that runs
 * the step's image with stepop's entrypoint, the step's resources and GPUs, and the pod settings;
 * labelled and annotated with the run so that cancel and cleanup act on nothing else. */
#include "kubernetes.h"

#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---- */

/* The first 16 hex digits of the SHA-256 of s. */
static void kube_digest16(const char *s, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
    hex_encode(md, 8, hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

char *kube_job_name(const struct manifest *m)
{
    char *name = xasprintf("stepop-%s", m->run_id);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (kube_is_dns_label(name, 63))
        return name;
    free(name);
    char d[17];
    kube_digest16(m->run_id, d);
    return xasprintf("stepop-%s", d);
}

char *kube_run_label(const char *run_id)
{
    if (run_id[0] && kube_is_label_value(run_id))
        return xstrdup(run_id);
    char d[17];
    kube_digest16(run_id, d);
    return xasprintf("sha256-%s", d);
}

/* ---- quantities ---- */

/* CPUs as Kubernetes writes them: whole CPUs ("2") or millicores ("500m"). */
static cJSON *kube_cpu_quantity(double cpu)
{
    long long milli = llround(cpu * 1000);
    char q[32];
    if (milli % 1000 == 0)
        snprintf(q, sizeof q, "%lld", milli / 1000);
    else
        snprintf(q, sizeof q, "%lldm", milli);
    return cJSON_CreateString(q);
}

static cJSON *kube_bytes_quantity(int64_t bytes)
{
    char q[32];
    snprintf(q, sizeof q, "%lld", (long long)bytes);
    return cJSON_CreateString(q);
}

/* ---- pieces of the pod ---- */

static cJSON *kube_labels(const struct job *j, const struct kube_cfg *c)
{
    cJSON *l = cJSON_CreateObject();
    const cJSON *user = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "labels") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, user) cJSON_AddStringToObject(l, it->string, it->valuestring);
    char *v = kube_run_label(j->m->run_id);
    cJSON_AddStringToObject(l, KUBE_LABEL_RUN_ID, v);
    free(v);
    return l;
}

static cJSON *kube_annotations(const struct job *j, const struct kube_cfg *c)
{
    cJSON *a = cJSON_CreateObject();
    const cJSON *user = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "annotations") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, user) cJSON_AddStringToObject(a, it->string, it->valuestring);
    cJSON_AddStringToObject(a, KUBE_ANNOTATION_RUN_ID, j->m->run_id);
    char red[1024];
    uri_redact(j->m->run_uri, red, sizeof red);
    cJSON_AddStringToObject(a, KUBE_ANNOTATION_RUN_URI, red);
    if (j->m->step)
        cJSON_AddStringToObject(a, "stepop.io/step", j->m->step);
    return a;
}

/* name and namespace: for the Job's own metadata, NULL for the pod template's. */
static cJSON *kube_metadata(const struct job *j, const struct kube_cfg *c, const char *name, const char *namespace)
{
    cJSON *md = cJSON_CreateObject();
    if (name)
        cJSON_AddStringToObject(md, "name", name);
    if (namespace)
        cJSON_AddStringToObject(md, "namespace", namespace);
    cJSON_AddItemToObject(md, "labels", kube_labels(j, c));
    cJSON_AddItemToObject(md, "annotations", kube_annotations(j, c));
    return md;
}

static void kube_add_env(cJSON *env, const char *name, const char *value)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", name);
    cJSON_AddStringToObject(v, "value", value);
    cJSON_AddItemToArray(env, v);
}

/* The settings' variables first, then the flavor's own. */
static cJSON *kube_env(const struct job *j, const struct kube_cfg *c)
{
    cJSON *env = cJSON_CreateArray();
    const cJSON *user = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "env") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, user)
    {
        if (cJSON_IsObject(user))
            kube_add_env(env, it->string, it->valuestring);
        else
            cJSON_AddItemToArray(env, cJSON_Duplicate(it, 1));
    }
    kube_add_env(env, "STEPOP_MANIFEST", j->manifest_uri);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    kube_add_env(env, "STEPOP_ATTEMPT", attempt);
    /* A retried pod has the same environment; the entrypoint counts on from the run's status
     * (Kubernetes 1.20 gives a pod no retry counter of its own). */
    if (c->retries > 0)
        kube_add_env(env, "STEPOP_ATTEMPT_FROM_STATUS", "1");
    return env;
}

static cJSON *kube_resources(const struct job *j, const struct kube_cfg *c)
{
    const struct manifest *m = j->m;
    cJSON *r = cJSON_CreateObject();
    cJSON *req = cJSON_AddObjectToObject(r, "requests"), *lim = cJSON_AddObjectToObject(r, "limits");
    const cJSON *user = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "resources") : NULL;
    const char *const parts[] = { "requests", "limits" };
    cJSON *into[] = { req, lim };
    for (int p = 0; p < 2; p++) {
        const cJSON *it, *part = cJSON_GetObjectItemCaseSensitive(user, parts[p]);
        cJSON_ArrayForEach(it, part) cJSON_AddItemToObject(into[p], it->string, cJSON_Duplicate(it, 1));
    }
    /* Requests equal to limits: the step gets what it asked for and no more. */
    if (m->cpu > 0) {
        cJSON_AddItemToObject(req, "cpu", kube_cpu_quantity(m->cpu));
        cJSON_AddItemToObject(lim, "cpu", kube_cpu_quantity(m->cpu));
    }
    if (m->memory > 0) {
        cJSON_AddItemToObject(req, "memory", kube_bytes_quantity(m->memory));
        cJSON_AddItemToObject(lim, "memory", kube_bytes_quantity(m->memory));
    }
    /* Extended resources are given as limits; the request follows. */
    if (m->gpus > 0)
        cJSON_AddItemToObject(lim, c->gpu_resource, kube_bytes_quantity(m->gpus));
    if (!req->child)
        cJSON_DeleteItemFromObjectCaseSensitive(r, "requests");
    if (!lim->child)
        cJSON_DeleteItemFromObjectCaseSensitive(r, "limits");
    return r;
}

static void kube_add_mount(cJSON *mounts, const char *volume, const char *path, int ro)
{
    cJSON *mo = cJSON_CreateObject();
    cJSON_AddStringToObject(mo, "name", volume);
    cJSON_AddStringToObject(mo, "mountPath", path);
    if (ro)
        cJSON_AddBoolToObject(mo, "readOnly", 1);
    cJSON_AddItemToArray(mounts, mo);
}

static cJSON *kube_step_container(const struct job *j, const struct kube_cfg *c)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "name", KUBE_CONTAINER);
    cJSON_AddStringToObject(k, "image", j->m->image);
    if (c->image_pull_policy)
        cJSON_AddStringToObject(k, "imagePullPolicy", c->image_pull_policy);
    /* As the docker flavor: the entrypoint replaces the image's, and the image's CMD is dropped
     * (the manifest holds the step's command). */
    cJSON *cmd = cJSON_AddArrayToObject(k, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString(c->inject ? KUBE_INJECT_PATH : "stepop"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("run"));
    cJSON_AddItemToObject(k, "env", kube_env(j, c));
    const cJSON *env_from = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "env_from") : NULL;
    if (cJSON_IsArray(env_from) && env_from->child)
        cJSON_AddItemToObject(k, "envFrom", cJSON_Duplicate(env_from, 1));
    cJSON_AddItemToObject(k, "resources", kube_resources(j, c));
    cJSON *mounts = cJSON_CreateArray();
    const cJSON *user = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "volume_mounts") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, user) cJSON_AddItemToArray(mounts, cJSON_Duplicate(it, 1));
    if (c->shm_size > 0)
        kube_add_mount(mounts, KUBE_VOLUME_SHM, "/dev/shm", 0);
    if (c->inject)
        kube_add_mount(mounts, KUBE_VOLUME_BIN, KUBE_INJECT_DIR, 1);
    if (mounts->child)
        cJSON_AddItemToObject(k, "volumeMounts", mounts);
    else
        cJSON_Delete(mounts);
    cJSON_AddStringToObject(k, "terminationMessagePolicy", "FallbackToLogsOnError");
    return k;
}

/* inject: the static binary of inject_image installs itself into the shared emptyDir. */
static cJSON *kube_init_container(const struct manifest *m, const struct kube_cfg *c)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "name", KUBE_INIT_CONTAINER);
    cJSON_AddStringToObject(k, "image", c->inject_image);
    if (c->image_pull_policy)
        cJSON_AddStringToObject(k, "imagePullPolicy", c->image_pull_policy);
    cJSON *cmd = cJSON_AddArrayToObject(k, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString(c->inject_binary));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("install"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString(KUBE_INJECT_PATH));
    cJSON *mounts = cJSON_AddArrayToObject(k, "volumeMounts");
    kube_add_mount(mounts, KUBE_VOLUME_BIN, KUBE_INJECT_DIR, 0);
    /* The step's CPU and memory: a pod asks for the larger of an init container's and its
     * containers' requests, so this adds nothing, and the pod keeps the QoS class the step's
     * requests and limits give it (init containers count there too). */
    cJSON *r = cJSON_AddObjectToObject(k, "resources");
    if (m->cpu > 0 || m->memory > 0) {
        const char *const parts[] = { "requests", "limits" };
        for (int p = 0; p < 2; p++) {
            cJSON *q = cJSON_AddObjectToObject(r, parts[p]);
            if (m->cpu > 0)
                cJSON_AddItemToObject(q, "cpu", kube_cpu_quantity(m->cpu));
            if (m->memory > 0)
                cJSON_AddItemToObject(q, "memory", kube_bytes_quantity(m->memory));
        }
    }
    return k;
}

static cJSON *kube_volumes(const struct kube_cfg *c)
{
    cJSON *vols = cJSON_CreateArray();
    const cJSON *user = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "volumes") : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, user) cJSON_AddItemToArray(vols, cJSON_Duplicate(it, 1));
    if (c->shm_size > 0) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", KUBE_VOLUME_SHM);
        cJSON *ed = cJSON_AddObjectToObject(v, "emptyDir");
        cJSON_AddStringToObject(ed, "medium", "Memory");
        cJSON_AddItemToObject(ed, "sizeLimit", kube_bytes_quantity(c->shm_size));
        cJSON_AddItemToArray(vols, v);
    }
    if (c->inject) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", KUBE_VOLUME_BIN);
        cJSON_AddObjectToObject(v, "emptyDir");
        cJSON_AddItemToArray(vols, v);
    }
    return vols;
}

/* A pod setting copied as is under the pod spec's own name, when present. */
static void kube_copy_pod_setting(cJSON *spec, const struct kube_cfg *c, const char *setting, const char *field)
{
    const cJSON *v = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, setting) : NULL;
    if (v && !cJSON_IsNull(v))
        cJSON_AddItemToObject(spec, field, cJSON_Duplicate(v, 1));
}

static cJSON *kube_pod_spec(const struct job *j, const struct kube_cfg *c)
{
    const struct manifest *m = j->m;
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "restartPolicy", "Never");
    cJSON_AddNumberToObject(spec, "terminationGracePeriodSeconds",
                            (double)((m->grace_ms + 999) / 1000 + KUBE_GRACE_MARGIN_S));
    if (c->inject) {
        cJSON *init = cJSON_AddArrayToObject(spec, "initContainers");
        cJSON_AddItemToArray(init, kube_init_container(m, c));
    }
    cJSON *containers = cJSON_AddArrayToObject(spec, "containers");
    cJSON_AddItemToArray(containers, kube_step_container(j, c));
    cJSON *vols = kube_volumes(c);
    if (vols->child)
        cJSON_AddItemToObject(spec, "volumes", vols);
    else
        cJSON_Delete(vols);
    kube_copy_pod_setting(spec, c, "node_selectors", "nodeSelector");
    kube_copy_pod_setting(spec, c, "affinity", "affinity");
    kube_copy_pod_setting(spec, c, "tolerations", "tolerations");
    kube_copy_pod_setting(spec, c, "security_context", "securityContext");
    kube_copy_pod_setting(spec, c, "scheduler_name", "schedulerName");
    kube_copy_pod_setting(spec, c, "host_ipc", "hostIPC");
    if (c->host_network) {
        cJSON_AddBoolToObject(spec, "hostNetwork", 1);
        /* Without it a pod on the node's network resolves through the node, not the cluster. */
        cJSON_AddStringToObject(spec, "dnsPolicy", "ClusterFirstWithHostNet");
    }
    if (c->service_account_name)
        cJSON_AddStringToObject(spec, "serviceAccountName", c->service_account_name);
    if (c->priority_class_name)
        cJSON_AddStringToObject(spec, "priorityClassName", c->priority_class_name);
    if (c->runtime_class_name)
        cJSON_AddStringToObject(spec, "runtimeClassName", c->runtime_class_name);
    const cJSON *ips = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "image_pull_secrets") : NULL;
    if (cJSON_IsArray(ips) && ips->child) {
        cJSON *l = cJSON_AddArrayToObject(spec, "imagePullSecrets");
        const cJSON *it;
        cJSON_ArrayForEach(it, ips)
        {
            cJSON *ref = cJSON_CreateObject();
            cJSON_AddStringToObject(ref, "name", it->valuestring);
            cJSON_AddItemToArray(l, ref);
        }
    }
    return spec;
}

/* ---- the Job ---- */

cJSON *kube_job_body(const struct job *j, const struct kube_cfg *c, const char *namespace)
{
    const struct manifest *m = j->m;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "apiVersion", "batch/v1");
    cJSON_AddStringToObject(b, "kind", "Job");
    char *name = kube_job_name(m);
    cJSON_AddItemToObject(b, "metadata", kube_metadata(j, c, name, namespace));
    free(name);
    cJSON *spec = cJSON_AddObjectToObject(b, "spec");
    cJSON_AddNumberToObject(spec, "backoffLimit", c->retries);
    if (m->timeout_ms > 0) {
        int64_t deadline = (m->timeout_ms + 999) / 1000 + (m->grace_ms + 999) / 1000 + KUBE_DEADLINE_MARGIN_S;
        cJSON_AddNumberToObject(spec, "activeDeadlineSeconds", (double)deadline);
    }
    if (c->ttl_seconds >= 0)
        cJSON_AddNumberToObject(spec, "ttlSecondsAfterFinished", (double)c->ttl_seconds);
    cJSON *tpl = cJSON_AddObjectToObject(spec, "template");
    cJSON_AddItemToObject(tpl, "metadata", kube_metadata(j, c, NULL, NULL));
    cJSON_AddItemToObject(tpl, "spec", kube_pod_spec(j, c));
    return b;
}
