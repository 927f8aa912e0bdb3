/* The sagemaker flavor's CreateTrainingJob request: the job's name, its tags, its environment
 * (within the API's limits, checked here before any call) and the body itself. */
#include "sagemaker.h"

#include "../../cloud/aws/sigv4.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *sm_job_name(const char *run_id)
{
    struct buf b = { 0 };
    buf_append(&b, "stepop-", 7);
    int dash = 1;
    for (const char *p = run_id; *p; p++) {
        if (isalnum((unsigned char)*p)) {
            buf_append(&b, p, 1);
            dash = 0;
        } else if (!dash) {
            buf_append(&b, "-", 1);
            dash = 1;
        }
    }
    while (b.len && b.data[b.len - 1] == '-')
        b.data[--b.len] = 0;
    if (b.len <= 63)
        return b.data;
    /* Too long: a prefix and a digest keep it unique and within 63. */
    char hex[65];
    sigv4_sha256_hex(run_id, strlen(run_id), hex);
    size_t keep = 46;
    while (keep && b.data[keep - 1] == '-')
        keep--;
    char *name = xasprintf("%.*s-%.16s", (int)keep, b.data, hex);
    buf_free(&b);
    return name;
}

/* SageMaker's tag pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]*, for ASCII (the only text tagged here
 * unchecked is stepop's own). */
static int sm_tag_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!(isalnum(*p) || *p == ' ' || *p >= 0x80 || strchr("_.:/=+-@", *p)))
            return 0;
    return 1;
}

char *sm_tag_value(const char *text)
{
    if (sm_tag_text_ok(text, 256))
        return xstrdup(text);
    char hex[65];
    sigv4_sha256_hex(text, strlen(text), hex);
    return xasprintf("sha256:%s", hex);
}

int sm_failure_exit_code(const char *reason)
{
    if (!reason)
        return -1;
    for (const char *p = reason; *p; p++) {
        size_t n = 0;
        if (!strncasecmp(p, "exit code", 9))
            n = 9;
        else if (!strncasecmp(p, "exitcode", 8))
            n = 8;
        else if (!strncasecmp(p, "exit status", 11))
            n = 11;
        if (!n)
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

static void sm_add_tag(cJSON *tags, const char *key, const char *value)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "Key", key);
    cJSON_AddStringToObject(t, "Value", value);
    cJSON_AddItemToArray(tags, t);
}

static cJSON *sm_string_list(const cJSON *list)
{
    cJSON *a = cJSON_CreateArray();
    for (const cJSON *it = list ? list->child : NULL; it; it = it->next)
        cJSON_AddItemToArray(a, cJSON_CreateString(it->valuestring));
    return a;
}

static int64_t sm_ceil_s(int64_t ms)
{
    return (ms + 999) / 1000;
}

/* The environment (Environment: at most 100 entries, keys [a-zA-Z_][a-zA-Z0-9_]* of at most 512
 * characters, values of at most 512). */
static int sm_environment(const struct job *j, const struct sm_cfg *c, const char *checkpoint_dir, int redact,
                          cJSON **out, struct err *e)
{
    cJSON *env = cJSON_CreateObject();
    *out = env;
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    cJSON_AddStringToObject(env, "STEPOP_MANIFEST", j->manifest_uri);
    cJSON_AddStringToObject(env, "STEPOP_ATTEMPT", attempt);
    /* SageMaker restarts a spot job, and a job under RetryStrategy, with the same environment:
     * the entrypoint counts the restart as the next attempt from the run's status. */
    if (c->spot || c->max_retry_attempts > 0)
        cJSON_AddStringToObject(env, "STEPOP_ATTEMPT_FROM_STATUS", "1");
    if (checkpoint_dir)
        cJSON_AddStringToObject(env, "STEPOP_CHECKPOINT_DIR", checkpoint_dir);
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *v = getenv(it->valuestring);
        if (!v)
            continue;
        if (strlen(it->valuestring) > 512)
            return err_set(e, ERR_INVALID, "settings.pass_env: %.40s...: SageMaker takes variable names of at most 512 "
                                           "characters", it->valuestring);
        if (strlen(v) > 512)
            return err_set(e, ERR_INVALID, "settings.pass_env: the value of %s has %zu characters; SageMaker takes at "
                                           "most 512", it->valuestring, strlen(v));
        cJSON_DeleteItemFromObjectCaseSensitive(env, it->valuestring);
        cJSON_AddStringToObject(env, it->valuestring, redact ? "<hidden: from the submitting environment>" : v);
    }
    if (strlen(j->manifest_uri) > 512)
        return err_set(e, ERR_INVALID, "the manifest's URI has %zu characters; SageMaker takes environment values of at "
                                       "most 512: use a shorter store prefix", strlen(j->manifest_uri));
    if (cJSON_GetArraySize(env) > 100)
        return err_set(e, ERR_INVALID, "settings.pass_env: %d environment variables in all; SageMaker takes at most 100",
                       cJSON_GetArraySize(env));
    return 0;
}

static cJSON *sm_tags(const struct job *j, const struct sm_cfg *c, struct err *e)
{
    cJSON *tags = cJSON_CreateArray();
    char *id = sm_tag_value(j->m->run_id), *uri = sm_tag_value(j->m->run_uri);
    sm_add_tag(tags, SM_TAG_RUN_ID, id);
    sm_add_tag(tags, SM_TAG_RUN_URI, uri);
    free(id);
    free(uri);
    for (const cJSON *it = c->tags ? c->tags->child : NULL; it; it = it->next) {
        if (!it->string[0] || !sm_tag_text_ok(it->string, 128) || !sm_tag_text_ok(it->valuestring, 256)) {
            err_set(e, ERR_INVALID, "settings.tags.%s: SageMaker takes tag keys of 1 to 128 and values of at most 256 "
                                    "letters, digits, spaces and _.:/=+-@", it->string);
            cJSON_Delete(tags);
            return NULL;
        }
        sm_add_tag(tags, it->string, it->valuestring);
    }
    if (cJSON_GetArraySize(tags) > 50) {
        err_set(e, ERR_INVALID, "settings.tags: SageMaker takes at most 50 tags, 2 of them stepop's");
        cJSON_Delete(tags);
        return NULL;
    }
    return tags;
}

cJSON *sm_create_body(const struct job *j, const struct sm_cfg *c, int redact, struct err *e)
{
    const struct manifest *m = j->m;
    int s3 = strncmp(m->run_uri, "s3://", 5) == 0;
    cJSON *b = cJSON_CreateObject();
    char *name = sm_job_name(m->run_id);
    cJSON_AddStringToObject(b, "TrainingJobName", name);
    free(name);
    cJSON_AddStringToObject(b, "RoleArn", c->role_arn);

    cJSON *alg = cJSON_AddObjectToObject(b, "AlgorithmSpecification");
    cJSON_AddStringToObject(alg, "TrainingImage", m->image);
    cJSON_AddStringToObject(alg, "TrainingInputMode", "File");
    if (c->entrypoint) {
        cJSON_AddItemToObject(alg, "ContainerEntrypoint", sm_string_list(c->entrypoint));
    } else {
        cJSON *ep = cJSON_AddArrayToObject(alg, "ContainerEntrypoint");
        cJSON_AddItemToArray(ep, cJSON_CreateString("stepop"));
        cJSON_AddItemToArray(ep, cJSON_CreateString("run"));
    }

    cJSON *rc = cJSON_AddObjectToObject(b, "ResourceConfig");
    cJSON_AddStringToObject(rc, "InstanceType", c->instance_type);
    cJSON_AddNumberToObject(rc, "InstanceCount", 1);
    cJSON_AddNumberToObject(rc, "VolumeSizeInGB", (double)c->volume_size_gb);
    if (c->volume_kms_key_id)
        cJSON_AddStringToObject(rc, "VolumeKmsKeyId", c->volume_kms_key_id);
    if (c->keep_alive_s >= 0)
        cJSON_AddNumberToObject(rc, "KeepAlivePeriodInSeconds", (double)c->keep_alive_s);

    cJSON *out = cJSON_AddObjectToObject(b, "OutputDataConfig");
    char *output = c->output_s3_uri ? xstrdup(c->output_s3_uri) : uri_join(m->run_uri, "sagemaker-output/");
    cJSON_AddStringToObject(out, "S3OutputPath", output);
    free(output);
    if (c->output_kms_key_id)
        cJSON_AddStringToObject(out, "KmsKeyId", c->output_kms_key_id);

    /* The step's deadline plus its grace: stepop run inside ends the step by then itself. */
    int64_t max_runtime = m->timeout_ms > 0 ? sm_ceil_s(m->timeout_ms) + sm_ceil_s(m->grace_ms) : SM_DEFAULT_MAX_RUNTIME_S;
    cJSON *stop = cJSON_AddObjectToObject(b, "StoppingCondition");
    cJSON_AddNumberToObject(stop, "MaxRuntimeInSeconds", (double)max_runtime);

    char *checkpoint_uri = NULL;
    if (c->checkpoint_s3_uri)
        checkpoint_uri = xstrdup(c->checkpoint_s3_uri);
    else if (c->spot && s3)
        checkpoint_uri = uri_join(m->run_uri, "checkpoints/");
    if (c->spot) {
        int64_t wait = c->max_wait_s ? c->max_wait_s : max_runtime + SM_SPOT_WAIT_EXTRA_S;
        if (wait < max_runtime) {
            err_set(e, ERR_INVALID, "settings.max_wait: %llds is less than the job's run time of %llds (timeout plus "
                                    "grace period); SageMaker needs MaxWaitTimeInSeconds >= MaxRuntimeInSeconds",
                    (long long)wait, (long long)max_runtime);
            free(checkpoint_uri);
            cJSON_Delete(b);
            return NULL;
        }
        cJSON_AddNumberToObject(stop, "MaxWaitTimeInSeconds", (double)wait);
        cJSON_AddBoolToObject(b, "EnableManagedSpotTraining", 1);
    }
    if (checkpoint_uri) {
        cJSON *cp = cJSON_AddObjectToObject(b, "CheckpointConfig");
        cJSON_AddStringToObject(cp, "S3Uri", checkpoint_uri);
        cJSON_AddStringToObject(cp, "LocalPath", c->checkpoint_local_path);
    }

    cJSON *env;
    int bad = sm_environment(j, c, checkpoint_uri ? c->checkpoint_local_path : NULL, redact, &env, e) < 0;
    cJSON_AddItemToObject(b, "Environment", env);
    free(checkpoint_uri);
    if (bad) {
        cJSON_Delete(b);
        return NULL;
    }
    if (c->subnets) {
        cJSON *vpc = cJSON_AddObjectToObject(b, "VpcConfig");
        cJSON_AddItemToObject(vpc, "SecurityGroupIds", sm_string_list(c->security_group_ids));
        cJSON_AddItemToObject(vpc, "Subnets", sm_string_list(c->subnets));
    }
    if (c->max_retry_attempts > 0) {
        cJSON *rs = cJSON_AddObjectToObject(b, "RetryStrategy");
        cJSON_AddNumberToObject(rs, "MaximumRetryAttempts", c->max_retry_attempts);
    }
    cJSON *tags = sm_tags(j, c, e);
    if (!tags) {
        cJSON_Delete(b);
        return NULL;
    }
    cJSON_AddItemToObject(b, "Tags", tags);
    return b;
}
