/* The sagemaker flavor's settings (parsed, checked, with their defaults), the GPU table of the
 * instance types, and the checks of a job against them. */
#include "sagemaker.h"

#include "../../cloud/aws/endpoint.h"
#include "../../runtime/units.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const sm_known_settings[] = {
    "region", "role_arn", "instance_type", "instance_count", "volume_size_gb", "keep_alive_period", "spot",
    "max_wait", "checkpoint_s3_uri", "checkpoint_local_path", "output_s3_uri", "subnets", "security_group_ids",
    "volume_kms_key_id", "output_kms_key_id", "max_retry_attempts", "entrypoint", "pass_env", "tags",
    "enable_network_isolation", NULL,
};

/* A whole number within [min, max]; fallback when absent. */
static int sm_int(const cJSON *s, const char *key, int64_t fallback, int64_t min, int64_t max, int64_t *out,
                  struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    *out = fallback;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
        v->valuedouble > (double)max)
        return err_set(e, ERR_INVALID, "settings.%s: expected a whole number from %lld to %lld", key, (long long)min,
                       (long long)max);
    *out = (int64_t)v->valuedouble;
    return 0;
}

/* Seconds, as a number or a duration ("30m"); fallback when absent. */
static int sm_seconds(const cJSON *s, const char *key, int64_t fallback, int64_t max, int64_t *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    if (cJSON_IsString(v)) {
        int64_t ms;
        if (units_parse_duration(v->valuestring, &ms, e) < 0)
            return err_prefix(e, "settings.%s: ", key);
        if (ms % 1000 || ms / 1000 > max)
            return err_set(e, ERR_INVALID, "settings.%s: expected whole seconds up to %llds", key, (long long)max);
        *out = ms / 1000;
        return 0;
    }
    return sm_int(s, key, fallback, 0, max, out, e);
}

static int sm_s3_uri_ok(const char *u)
{
    return strncmp(u, "s3://", 5) == 0 && u[5] && u[5] != '/' && strlen(u) <= 1024;
}

/* SageMaker's KMS key id pattern: [a-zA-Z0-9:/_-]*, at most 2048. */
static int sm_kms_ok(const char *k)
{
    return strlen(k) <= 2048 && strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/_-") == strlen(k);
}

/* SageMaker's role ARN: arn:aws[a-z-]*:iam::<12 digits>:role/<name>. */
static int sm_role_ok(const char *r)
{
    const char *p = r;
    if (strncmp(p, "arn:aws", 7) != 0)
        return 0;
    p += 7 + strspn(p + 7, "abcdefghijklmnopqrstuvwxyz-");
    if (strncmp(p, ":iam::", 6) != 0)
        return 0;
    p += 6;
    if (strspn(p, "0123456789") != 12 || strncmp(p + 12, ":role", 5) != 0)
        return 0;
    p += 17;
    if (*p == '/')
        p++;
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@-_/");
    return n > 0 && !p[n] && strlen(r) <= 2048;
}

int sm_parse_settings(const cJSON *s, struct sm_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    if (flavor_check_settings(s, "sagemaker", sm_known_settings, e) < 0)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(s, "enable_network_isolation"))
        return err_set(e, ERR_INVALID, "settings.enable_network_isolation: refused: stepop's entrypoint inside the job "
                                       "must reach the store to fetch inputs and write logs, outputs and status");
    int64_t count, retries;
    if (flavor_setting_str(s, "region", NULL, &c->region, e) < 0 ||
        flavor_setting_str(s, "role_arn", NULL, &c->role_arn, e) < 0 ||
        flavor_setting_str(s, "instance_type", NULL, &c->instance_type, e) < 0 ||
        flavor_setting_bool(s, "spot", 0, &c->spot, e) < 0 ||
        flavor_setting_str(s, "checkpoint_s3_uri", NULL, &c->checkpoint_s3_uri, e) < 0 ||
        flavor_setting_str(s, "checkpoint_local_path", "/opt/ml/checkpoints", &c->checkpoint_local_path, e) < 0 ||
        flavor_setting_str(s, "output_s3_uri", NULL, &c->output_s3_uri, e) < 0 ||
        flavor_setting_str(s, "volume_kms_key_id", NULL, &c->volume_kms_key_id, e) < 0 ||
        flavor_setting_str(s, "output_kms_key_id", NULL, &c->output_kms_key_id, e) < 0 ||
        sm_int(s, "instance_count", 1, 1, 1000, &count, e) < 0 ||
        sm_int(s, "volume_size_gb", 30, 1, 16384, &c->volume_size_gb, e) < 0 ||
        sm_seconds(s, "keep_alive_period", -1, 21600, &c->keep_alive_s, e) < 0 ||
        sm_seconds(s, "max_wait", 0, 100LL * 24 * 3600, &c->max_wait_s, e) < 0 ||
        sm_int(s, "max_retry_attempts", 0, 0, 30, &retries, e) < 0)
        return -1;
    c->max_retry_attempts = (int)retries;
    if (flavor_setting_str_list(s, "subnets", &c->subnets, e) < 0 ||
        flavor_setting_str_list(s, "security_group_ids", &c->security_group_ids, e) < 0 ||
        flavor_setting_str_list(s, "entrypoint", &c->entrypoint, e) < 0 ||
        flavor_setting_str_list(s, "pass_env", &c->pass_env, e) < 0)
        return -1;
    if (count != 1)
        return err_set(e, ERR_INVALID, "settings.instance_count: only 1 (a step runs on one instance)");
    if (!c->role_arn || !c->role_arn[0])
        return err_set(e, ERR_INVALID, "settings.role_arn: required: the IAM role the training job runs as "
                                       "(arn:aws:iam::ACCOUNT:role/NAME)");
    if (!sm_role_ok(c->role_arn))
        return err_set(e, ERR_INVALID, "settings.role_arn: \"%s\" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                       c->role_arn);
    if (!c->instance_type || !c->instance_type[0])
        return err_set(e, ERR_INVALID, "settings.instance_type: required: the training instance type (ml.g5.xlarge, ...)");
    if (strncmp(c->instance_type, "ml.", 3) != 0 || strchr(c->instance_type, ' '))
        return err_set(e, ERR_INVALID, "settings.instance_type: \"%s\" is not a SageMaker instance type (ml.FAMILY.SIZE)",
                       c->instance_type);
    if (c->region && (!c->region[0] || strspn(c->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->region)))
        return err_set(e, ERR_INVALID, "settings.region: \"%s\" is not an AWS region", c->region);
    if (c->max_wait_s && !c->spot)
        return err_set(e, ERR_INVALID, "settings.max_wait: only with spot: true");
    if (c->entrypoint && cJSON_GetArraySize(c->entrypoint) > 100)
        return err_set(e, ERR_INVALID, "settings.entrypoint: at most 100 items");
    const char *uris[][2] = { { "checkpoint_s3_uri", c->checkpoint_s3_uri }, { "output_s3_uri", c->output_s3_uri } };
    for (size_t i = 0; i < 2; i++)
        if (uris[i][1] && !sm_s3_uri_ok(uris[i][1]))
            return err_set(e, ERR_INVALID, "settings.%s: expected s3://BUCKET/PREFIX, got \"%s\"", uris[i][0], uris[i][1]);
    if (c->checkpoint_local_path[0] != '/' || strlen(c->checkpoint_local_path) > 4096)
        return err_set(e, ERR_INVALID, "settings.checkpoint_local_path: expected an absolute path");
    const char *keys[][2] = { { "volume_kms_key_id", c->volume_kms_key_id }, { "output_kms_key_id", c->output_kms_key_id } };
    for (size_t i = 0; i < 2; i++)
        if (keys[i][1] && !sm_kms_ok(keys[i][1]))
            return err_set(e, ERR_INVALID, "settings.%s: \"%s\" is not a KMS key id, alias or ARN", keys[i][0], keys[i][1]);
    if (!c->subnets != !c->security_group_ids)
        return err_set(e, ERR_INVALID, "settings.%s: a VPC needs both subnets and security_group_ids",
                       c->subnets ? "security_group_ids" : "subnets");
    if (c->subnets && cJSON_GetArraySize(c->subnets) > 16)
        return err_set(e, ERR_INVALID, "settings.subnets: at most 16");
    if (c->security_group_ids && cJSON_GetArraySize(c->security_group_ids) > 5)
        return err_set(e, ERR_INVALID, "settings.security_group_ids: at most 5");
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *n = it->valuestring;
        if (!(isalpha((unsigned char)n[0]) || n[0] == '_') || strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(n))
            return err_set(e, ERR_INVALID, "settings.pass_env: \"%s\" is not a variable name ([a-zA-Z_][a-zA-Z0-9_]*)", n);
        if (str_has_prefix(n, "STEPOP_MANIFEST") || str_has_prefix(n, "STEPOP_ATTEMPT") || !strcmp(n, "STEPOP_CHECKPOINT_DIR"))
            return err_set(e, ERR_INVALID, "settings.pass_env: %s is set by the flavor itself", n);
    }
    c->tags = cJSON_GetObjectItemCaseSensitive(s, "tags");
    if (c->tags && cJSON_IsNull(c->tags))
        c->tags = NULL;
    if (c->tags) {
        if (!cJSON_IsObject(c->tags))
            return err_set(e, ERR_INVALID, "settings.tags: expected an object of strings");
        for (const cJSON *it = c->tags->child; it; it = it->next) {
            if (!cJSON_IsString(it))
                return err_set(e, ERR_INVALID, "settings.tags.%s: expected a string", it->string);
            if (str_has_prefix(it->string, "stepop:") || strncasecmp(it->string, "aws:", 4) == 0)
                return err_set(e, ERR_INVALID, "settings.tags.%s: the stepop: tags are stepop's own and aws: is reserved",
                               it->string);
        }
    }
    return 0;
}

/* GPUs per instance type (NVIDIA GPUs, what --gpus counts), from the GPU instance table of the
 * AWS Batch user guide ("Run GPU jobs": g4dn, g5, g6, p2, p3) and the EC2 accelerated-computing
 * instance specifications (p3dn, p4d, p4de, p5, p5e, p5en, g6e, g4dn.metal). Families without GPUs are
 * listed by prefix; Trainium (trn) and Inferentia (inf) accelerators are not CUDA GPUs. */
static const struct {
    const char *type;
    int gpus;
} sm_gpu_table[] = {
    { "ml.p2.xlarge", 1 },       { "ml.p2.8xlarge", 8 },     { "ml.p2.16xlarge", 16 },
    { "ml.p3.2xlarge", 1 },      { "ml.p3.8xlarge", 4 },     { "ml.p3.16xlarge", 8 },
    { "ml.p3dn.24xlarge", 8 },   { "ml.p4d.24xlarge", 8 },   { "ml.p4de.24xlarge", 8 },
    { "ml.p5.4xlarge", 1 },      { "ml.p5.48xlarge", 8 },    { "ml.p5e.48xlarge", 8 },
    { "ml.p5en.48xlarge", 8 },   { "ml.g4dn.xlarge", 1 },    { "ml.g4dn.2xlarge", 1 },
    { "ml.g4dn.4xlarge", 1 },    { "ml.g4dn.8xlarge", 1 },   { "ml.g4dn.16xlarge", 1 },
    { "ml.g4dn.12xlarge", 4 },   { "ml.g4dn.metal", 8 },     { "ml.g5.xlarge", 1 },
    { "ml.g5.2xlarge", 1 },      { "ml.g5.4xlarge", 1 },     { "ml.g5.8xlarge", 1 },
    { "ml.g5.16xlarge", 1 },     { "ml.g5.12xlarge", 4 },    { "ml.g5.24xlarge", 4 },
    { "ml.g5.48xlarge", 8 },     { "ml.g6.xlarge", 1 },      { "ml.g6.2xlarge", 1 },
    { "ml.g6.4xlarge", 1 },      { "ml.g6.8xlarge", 1 },     { "ml.g6.16xlarge", 1 },
    { "ml.g6.12xlarge", 4 },     { "ml.g6.24xlarge", 4 },    { "ml.g6.48xlarge", 8 },
    { "ml.g6e.xlarge", 1 },      { "ml.g6e.2xlarge", 1 },    { "ml.g6e.4xlarge", 1 },
    { "ml.g6e.8xlarge", 1 },     { "ml.g6e.16xlarge", 1 },   { "ml.g6e.12xlarge", 4 },
    { "ml.g6e.24xlarge", 4 },    { "ml.g6e.48xlarge", 8 },
};

int sm_instance_gpus(const char *t)
{
    for (size_t i = 0; i < sizeof sm_gpu_table / sizeof *sm_gpu_table; i++)
        if (strcmp(t, sm_gpu_table[i].type) == 0)
            return sm_gpu_table[i].gpus;
    static const char *const cpu_only[] = { "ml.m", "ml.c", "ml.r", "ml.t", "ml.trn", "ml.inf", NULL };
    for (const char *const *p = cpu_only; *p; p++)
        if (str_has_prefix(t, *p) && isdigit((unsigned char)t[strlen(*p)]))
            return 0;
    return -1;
}

int sm_check_job(const struct job *j, const struct sm_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (!m->image || !m->image[0])
        return err_set(e, ERR_INVALID, "the sagemaker flavor needs an image (manifest \"image\", or --image): an ECR "
                                       "image with stepop in it");
    if (strlen(m->image) > 255)
        return err_set(e, ERR_INVALID, "image: SageMaker takes image names of at most 255 characters");
    if (m->cpu > 0)
        return err_set(e, ERR_INVALID, "resources.cpu: a training job cannot ask for CPUs: the instance type decides "
                                       "(settings.instance_type %s); drop --cpu", c->instance_type);
    if (m->memory > 0)
        return err_set(e, ERR_INVALID, "resources.memory: a training job cannot ask for memory: the instance type "
                                       "decides (settings.instance_type %s); drop --memory", c->instance_type);
    if (m->gpus > 0) {
        int have = sm_instance_gpus(c->instance_type);
        if (have < 0)
            return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked, and %s is not in stepop's table of GPU "
                                           "instance types (docs/flavors.md#sagemaker): check the type's GPUs and pick "
                                           "one from the table", m->gpus, c->instance_type);
        if (have < m->gpus)
            return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked, and %s has %d; pick a larger instance type",
                           m->gpus, c->instance_type, have);
    }
    if (m->grace_ms > SM_STOP_GRACE_MS)
        return err_set(e, ERR_INVALID, "grace_period: %llds asked, and SageMaker sends SIGKILL 120 s after SIGTERM "
                                       "when it stops a job; at most 120s", (long long)(m->grace_ms / 1000));
    /* The job runs in AWS: a file:// store is on this machine only, a loopback one too, unless
     * SageMaker itself is on this machine (a local fake, AWS_ENDPOINT_URL_SAGEMAKER). */
    if (strncmp(m->run_uri, "file:", 5) == 0)
        return err_set(e, ERR_INVALID, "the run's store %s is on this machine, which a training job cannot see: use an "
                                       "s3:// store", m->run_uri);
    const char *ep = aws_endpoint_override("SAGEMAKER");
    int local = ep && url_is_loopback(ep);
    if (!local) {
        const char *bad = url_is_loopback(m->run_uri) ? "the run's store" : NULL;
        for (int i = 0; !bad && i < m->input_count; i++)
            if (url_is_loopback(m->inputs[i].uri) || strncmp(m->inputs[i].uri, "file:", 5) == 0)
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && (url_is_loopback(m->outputs[i].uri) || strncmp(m->outputs[i].uri, "file:", 5) == 0))
                bad = m->outputs[i].name;
        if (bad)
            return err_set(e, ERR_INVALID, "%s is on this machine, which a training job in AWS cannot reach: use an "
                                           "s3:// location", bad);
    }
    int s3 = strncmp(m->run_uri, "s3://", 5) == 0;
    if (!s3 && !c->output_s3_uri)
        return err_set(e, ERR_INVALID, "settings.output_s3_uri: required when the store is not s3:// (SageMaker's "
                                       "S3OutputPath)");
    if (!s3 && c->spot && !c->checkpoint_s3_uri)
        return err_set(e, ERR_INVALID, "settings.checkpoint_s3_uri: required for spot when the store is not s3://");
    return 0;
}
