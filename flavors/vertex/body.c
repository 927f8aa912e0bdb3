/* The vertex flavor's CustomJob: its labels (the run's id and URI, within Vertex AI's label
 * rules), its durations, its environment and the body itself. */
#include "vertex.h"

#include "../../cloud/aws/sigv4.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *vx_label_value(const char *text)
{
    size_t n = strlen(text);
    char *v = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)tolower((unsigned char)text[i]);
        v[i] = (char)((isdigit(ch) || (ch >= 'a' && ch <= 'z') || ch == '_' || ch == '-') ? ch : '_');
    }
    v[n] = 0;
    if (n <= VX_LABEL_MAX)
        return v;
    /* Too long: a prefix and a digest of the whole text keep it distinct and within 63. */
    char hex[65];
    sigv4_sha256_hex(text, n, hex);
    char *out = xasprintf("%.46s-%.16s", v, hex);
    free(v);
    return out;
}

char *vx_uri_label(const char *run_uri)
{
    char hex[65];
    sigv4_sha256_hex(run_uri, strlen(run_uri), hex);
    return xasprintf("%.32s", hex);
}

void vx_duration(int64_t seconds, char *out, size_t len)
{
    snprintf(out, len, "%" PRId64 "s", seconds);
}

int vx_failure_exit_code(const char *message)
{
    static const char *const words[] = { "non-zero status of", "exit status", "exit code", "exitcode",
                                         "exited with status", NULL };
    if (!message)
        return -1;
    for (const char *p = message; *p; p++)
        for (const char *const *w = words; *w; w++) {
            size_t n = strlen(*w);
            if (strncasecmp(p, *w, n) != 0)
                continue;
            const char *q = p + n;
            while (*q == ':' || *q == ' ' || *q == '=')
                q++;
            if (isdigit((unsigned char)*q)) {
                long v = strtol(q, NULL, 10);
                return v >= 0 && v <= 255 ? (int)v : -1;
            }
        }
    return -1;
}

static cJSON *vx_string_list(const cJSON *list)
{
    cJSON *a = cJSON_CreateArray();
    for (const cJSON *it = list ? list->child : NULL; it; it = it->next)
        cJSON_AddItemToArray(a, cJSON_CreateString(it->valuestring));
    return a;
}

static void vx_add_env(cJSON *env, const char *name, const char *value)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", name);
    cJSON_AddStringToObject(v, "value", value);
    cJSON_AddItemToArray(env, v);
}

static int64_t vx_ceil_s(int64_t ms)
{
    return (ms + 999) / 1000;
}

int vx_may_restart_cfg(const struct vx_cfg *c)
{
    return c->restart_job_on_worker_restart || c->strategy == VX_SPOT;
}

static cJSON *vx_environment(const struct job *j, const struct vx_cfg *c, int redact)
{
    cJSON *env = cJSON_CreateArray();
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    vx_add_env(env, "STEPOP_MANIFEST", j->manifest_uri);
    vx_add_env(env, "STEPOP_ATTEMPT", attempt);
    /* The entrypoint counts a restart as the next attempt from the run's status. */
    if (vx_may_restart_cfg(c))
        vx_add_env(env, "STEPOP_ATTEMPT_FROM_STATUS", "1");
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *v = getenv(it->valuestring);
        if (v)
            vx_add_env(env, it->valuestring, redact ? "<hidden: from the submitting environment>" : v);
    }
    return env;
}

static const char *const vx_strategy_names[] = { "STANDARD", "SPOT", "FLEX_START" };

cJSON *vx_create_body(const struct job *j, const struct vx_cfg *c, int redact)
{
    const struct manifest *m = j->m;
    cJSON *b = cJSON_CreateObject();
    char *name = xasprintf("stepop-%.120s", m->run_id);
    cJSON_AddStringToObject(b, "displayName", name);
    free(name);

    cJSON *spec = cJSON_AddObjectToObject(b, "jobSpec");
    cJSON *pool = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "workerPoolSpecs"), pool);
    cJSON *ms = cJSON_AddObjectToObject(pool, "machineSpec");
    cJSON_AddStringToObject(ms, "machineType", c->machine_type);
    if (c->accelerator_type) {
        cJSON_AddStringToObject(ms, "acceleratorType", c->accelerator_type);
        cJSON_AddNumberToObject(ms, "acceleratorCount", c->accelerator_count);
    }
    /* int64 fields are strings in protobuf's JSON mapping. */
    cJSON_AddStringToObject(pool, "replicaCount", "1");
    cJSON *disk = cJSON_AddObjectToObject(pool, "diskSpec");
    cJSON_AddStringToObject(disk, "bootDiskType", c->boot_disk_type);
    cJSON_AddNumberToObject(disk, "bootDiskSizeGb", (double)c->boot_disk_size_gb);
    cJSON *cs = cJSON_AddObjectToObject(pool, "containerSpec");
    cJSON_AddStringToObject(cs, "imageUri", m->image);
    if (c->entrypoint) {
        cJSON_AddItemToObject(cs, "command", vx_string_list(c->entrypoint));
    } else {
        cJSON *cmd = cJSON_AddArrayToObject(cs, "command");
        cJSON_AddItemToArray(cmd, cJSON_CreateString("stepop"));
        cJSON_AddItemToArray(cmd, cJSON_CreateString("run"));
    }
    cJSON_AddItemToObject(cs, "env", vx_environment(j, c, redact));

    cJSON *sched = cJSON_AddObjectToObject(spec, "scheduling");
    char d[32];
    /* The step's deadline plus its grace: stepop run inside ends the step by then itself. */
    if (m->timeout_ms > 0) {
        vx_duration(vx_ceil_s(m->timeout_ms) + vx_ceil_s(m->grace_ms), d, sizeof d);
        cJSON_AddStringToObject(sched, "timeout", d);
    }
    cJSON_AddStringToObject(sched, "strategy", vx_strategy_names[c->strategy]);
    if (c->max_wait_s) {
        vx_duration(c->max_wait_s, d, sizeof d);
        cJSON_AddStringToObject(sched, "maxWaitDuration", d);
    }
    if (c->restart_job_on_worker_restart)
        cJSON_AddBoolToObject(sched, "restartJobOnWorkerRestart", 1);

    if (c->service_account)
        cJSON_AddStringToObject(spec, "serviceAccount", c->service_account);
    if (c->network)
        cJSON_AddStringToObject(spec, "network", c->network);
    if (c->reserved_ip_ranges)
        cJSON_AddItemToObject(spec, "reservedIpRanges", vx_string_list(c->reserved_ip_ranges));
    if (c->persistent_resource_id)
        cJSON_AddStringToObject(spec, "persistentResourceId", c->persistent_resource_id);
    if (c->enable_web_access)
        cJSON_AddBoolToObject(spec, "enableWebAccess", 1);
    char *out = c->base_output_dir ? xstrdup(c->base_output_dir)
                : strncmp(m->run_uri, "gs://", 5) == 0 ? uri_join(m->run_uri, "vertex-output/")
                                                       : NULL;
    if (out)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(spec, "baseOutputDirectory"), "outputUriPrefix", out);
    free(out);

    cJSON *labels = cJSON_AddObjectToObject(b, "labels");
    char *id = vx_label_value(m->run_id), *uri = vx_uri_label(m->run_uri);
    cJSON_AddStringToObject(labels, VX_LABEL_RUN_ID, id);
    cJSON_AddStringToObject(labels, VX_LABEL_RUN_URI, uri);
    free(id);
    free(uri);
    for (const cJSON *it = c->labels ? c->labels->child : NULL; it; it = it->next)
        cJSON_AddStringToObject(labels, it->string, it->valuestring);
    if (c->kms_key_name)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(b, "encryptionSpec"), "kmsKeyName", c->kms_key_name);
    return b;
}
