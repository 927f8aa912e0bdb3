/* The azureml flavor's requests: the job's and the environment's names, the EnvironmentVersion
 * that holds the image, the command job, and the mapping of a job's status onto a remote_state. */
#include "azureml.h"

#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void aml_sha256_hex(const char *s, char hex[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

char *aml_job_name(const char *run_id)
{
    struct buf b = { 0 };
    buf_append(&b, "stepop-", 7);
    int dash = 1;
    for (const char *p = run_id; *p; p++) {
        if (isalnum((unsigned char)*p)) {
            char ch = (char)tolower((unsigned char)*p);
            buf_append(&b, &ch, 1);
            dash = 0;
        } else if (!dash) {
            buf_append(&b, "-", 1);
            dash = 1;
        }
    }
    while (b.len && b.data[b.len - 1] == '-')
        b.data[--b.len] = 0;
    if (b.len <= 255)
        return b.data;
    char hex[65];
    aml_sha256_hex(run_id, hex);
    char *name = xasprintf("%.200s-%.16s", b.data, hex);
    buf_free(&b);
    return name;
}

char *aml_env_name(const char *image)
{
    char hex[65];
    aml_sha256_hex(image, hex);
    return xasprintf("stepop-%.16s", hex);
}

char *aml_workspace_path(const struct aml_cfg *c)
{
    return xasprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.MachineLearningServices/workspaces/%s",
                     c->subscription_id, c->resource_group, c->workspace);
}

char *aml_env_url(const struct aml_cfg *c, const char *image)
{
    char *ws = aml_workspace_path(c), *name = aml_env_name(image);
    char *u = xasprintf("%s%s/environments/%s/versions/%s?api-version=%s", c->arm_endpoint, ws, name, AML_ENV_VERSION,
                        c->api_version);
    free(ws);
    free(name);
    return u;
}

char *aml_job_url(const struct aml_cfg *c, const char *job, const char *suffix)
{
    char *ws = aml_workspace_path(c);
    char *u = xasprintf("%s%s/jobs/%s%s?api-version=%s", c->arm_endpoint, ws, job, suffix ? suffix : "", c->api_version);
    free(ws);
    return u;
}

char *aml_timeout(int64_t ms)
{
    return xasprintf("PT%lldS", (long long)((ms + 999) / 1000));
}

cJSON *aml_env_body(const struct job *j)
{
    cJSON *b = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(b, "properties");
    cJSON_AddStringToObject(p, "description", "stepop: the image of its steps (named by a digest of the reference)");
    cJSON_AddStringToObject(p, "image", j->m->image);
    cJSON_AddStringToObject(p, "osType", "Linux");
    return b;
}

cJSON *aml_job_body(const struct job *j, const struct aml_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    /* Azure ML keeps environment variables as run properties, whose values it caps; the manifest's
     * URI is the one that can grow. */
    if (strlen(j->manifest_uri) > 2048) {
        err_set(e, ERR_INVALID, "the manifest's URI has %zu characters: use a shorter store prefix",
                strlen(j->manifest_uri));
        return NULL;
    }
    cJSON *b = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(b, "properties");
    cJSON_AddStringToObject(p, "jobType", "Command");
    char *display = xasprintf("%s (stepop %s)", m->step && m->step[0] ? m->step : "step", m->run_id);
    cJSON_AddStringToObject(p, "displayName", display);
    free(display);
    cJSON_AddStringToObject(p, "experimentName", c->experiment_name);
    cJSON *tags = cJSON_AddObjectToObject(p, "tags");
    cJSON_AddStringToObject(tags, AML_TAG_RUN_ID, m->run_id);
    cJSON_AddStringToObject(tags, AML_TAG_RUN_URI, m->run_uri);
    cJSON_AddStringToObject(p, "command", c->command);
    char *ws = aml_workspace_path(c), *env = aml_env_name(m->image);
    char *env_id = xasprintf("%s/environments/%s/versions/%s", ws, env, AML_ENV_VERSION);
    cJSON_AddStringToObject(p, "environmentId", env_id);
    free(env_id);
    free(env);
    cJSON *vars = cJSON_AddObjectToObject(p, "environmentVariables");
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    cJSON_AddStringToObject(vars, "STEPOP_MANIFEST", j->manifest_uri);
    cJSON_AddStringToObject(vars, "STEPOP_ATTEMPT", attempt);
    /* A spot job that Azure ML preempts and requeues starts again with the same variables: the
     * entrypoint counts the restart as the next attempt from the run's status. */
    if (c->job_tier && !strcmp(c->job_tier, "Spot"))
        cJSON_AddStringToObject(vars, "STEPOP_ATTEMPT_FROM_STATUS", "1");
    if (c->compute) {
        char *id = xasprintf("%s/computes/%s", ws, c->compute);
        cJSON_AddStringToObject(p, "computeId", id);
        free(id);
    } else {
        cJSON *r = cJSON_AddObjectToObject(p, "resources");
        cJSON_AddNumberToObject(r, "instanceCount", (double)c->instance_count);
        cJSON_AddStringToObject(r, "instanceType", c->instance_type);
    }
    free(ws);
    if (m->timeout_ms > 0) {
        /* The step's deadline plus its grace: stepop run inside ends the step by then itself. */
        cJSON *l = cJSON_AddObjectToObject(p, "limits");
        cJSON_AddStringToObject(l, "jobLimitsType", "Command");
        char *t = aml_timeout(m->timeout_ms + m->grace_ms);
        cJSON_AddStringToObject(l, "timeout", t);
        free(t);
    }
    if (c->job_tier)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "queueSettings"), "jobTier", c->job_tier);
    return b;
}

/* The exit code in an error message ("... exit code 3", "exitCode: 3"), or -1. */
static int aml_exit_code_in(const char *text)
{
    for (const char *p = text; p && *p; p++) {
        size_t n = !strncasecmp(p, "exit code", 9) ? 9 : !strncasecmp(p, "exitcode", 8) ? 8 : 0;
        if (!n)
            continue;
        const char *q = p + n;
        while (*q == ':' || *q == ' ' || *q == '=' || *q == '"')
            q++;
        if (isdigit((unsigned char)*q)) {
            long v = strtol(q, NULL, 10);
            return v >= 0 && v <= 255 ? (int)v : -1;
        }
    }
    return -1;
}

static int aml_is(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

void aml_remote_state(const cJSON *job, const char *name, struct remote_state *st)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(job, "properties");
    const char *status = json_str(p, "status");
    if (!status)
        status = "";
    static const char *const pending[] = { "NotStarted", "Starting", "Provisioning", "Preparing", "Queued", NULL };
    static const char *const running[] = { "Running", "Finalizing", NULL };
    if (aml_is(status, pending)) {
        st->phase = REMOTE_PENDING;
        snprintf(st->message, sizeof st->message, "command job %.255s: %s", name, status);
        return;
    }
    if (aml_is(status, running)) {
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "command job %.255s: %s", name, status);
        return;
    }
    if (!strcmp(status, "CancelRequested")) {
        /* Stopping: the container has SIGTERM, the entrypoint writes its last status. */
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "command job %.255s: CancelRequested (stopping)", name);
        return;
    }
    if (!strcmp(status, "NotResponding") || !strcmp(status, "Paused")) {
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "command job %.255s: %s (%s)", name, status,
                 !strcmp(status, "Paused") ? "Azure ML paused the job; it goes on when resumed"
                                           : "Azure ML has not heard from the job's node lately; it may recover");
        return;
    }
    st->phase = REMOTE_EXITED;
    st->exit_code = -1;
    if (!strcmp(status, "Completed")) {
        st->exit_code = 0;
        snprintf(st->message, sizeof st->message, "command job %.255s completed", name);
        return;
    }
    if (!strcmp(status, "Canceled")) {
        snprintf(st->message, sizeof st->message, "command job %.255s was canceled", name);
        return;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(job, "properties"), "error");
    const char *code = json_str(err, "code"), *msg = json_str(err, "message");
    if (!strcmp(status, "Failed")) {
        int x = aml_exit_code_in(msg);
        if (x < 0)
            x = aml_exit_code_in(code);
        if (x == AML_EXIT_NOT_FOUND) {
            /* The shell found no stepop: an image without it (the entrypoint never ran). */
            snprintf(st->message, sizeof st->message, "command job %.200s failed: the image has no stepop on its PATH "
                     "(the command `stepop run` exited 127; add it, see docs/containers.md): %.200s", name,
                     msg ? msg : "");
            return;
        }
        st->exit_code = x;
        if ((msg && (strcasestr(msg, "timed out") || strcasestr(msg, "timeout"))) || (code && strcasestr(code, "Timeout")))
            st->reason = REASON_TIMEOUT;
        if (msg && (strcasestr(msg, "out of memory") || strcasestr(msg, "OOMKilled") || strcasestr(msg, "OutOfMemory"))) {
            st->oom_killed = 1;
            if (st->exit_code < 0)
                st->exit_code = 137;
        }
        snprintf(st->message, sizeof st->message, "command job %.200s failed: %.100s%s%.180s", name, code ? code : "",
                 code && msg ? ": " : "", msg ? msg : (code ? "" : "(no error given)"));
        return;
    }
    /* Unknown, or a status this flavor does not know. */
    snprintf(st->message, sizeof st->message, "command job %.255s: status %s%s", name, status[0] ? status : "(none)",
             !strcmp(status, "Unknown") ? " (Azure ML lost track of the job)" : " (not one stepop knows)");
}
