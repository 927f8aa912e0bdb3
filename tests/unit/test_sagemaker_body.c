/* The sagemaker flavor's settings (flavors/sagemaker/settings.c: what is refused, in which
 * words; the GPU table), its CreateTrainingJob body (flavors/sagemaker/body.c: name, tags,
 * environment and its limits, spot) and the mapping of DescribeTrainingJob onto phases
 * (lifecycle.c). */
#include "../../flavors/sagemaker/sagemaker.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLE "\"role_arn\": \"arn:aws:iam::123456789012:role/SageMakerRole\""
#define BASE ROLE ", \"instance_type\": \"ml.g5.xlarge\""

static const cJSON *jp(const cJSON *root, ...)
{
    va_list ap;
    va_start(ap, root);
    const char *k;
    while (root && (k = va_arg(ap, const char *)))
        root = k[0] == '#' ? cJSON_GetArrayItem(root, atoi(k + 1)) : cJSON_GetObjectItemCaseSensitive(root, k);
    va_end(ap);
    return root;
}

static const char *js(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jn(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v->valuedouble : -999;
}

static cJSON *parse(const char *json)
{
    cJSON *s = cJSON_Parse(json);
    if (!s) {
        printf("Bail out! bad JSON in the test: %s\n", json);
        exit(1);
    }
    return s;
}

static const char *parse_err(const char *json)
{
    static struct err e;
    struct sm_cfg c;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(json);
    int r = sm_parse_settings(s, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static struct manifest base_manifest(void)
{
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)"01J9ZQK8V3N4M5P6Q7R8S9T0AB";
    m.run_uri = (char *)"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/";
    m.image = (char *)"123456789012.dkr.ecr.eu-west-1.amazonaws.com/train:1";
    m.grace_ms = 30000;
    return m;
}

/* The error of checking m and building its body under settings, or "". */
static const char *check_err(const struct manifest *m, const char *settings)
{
    static struct err e;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(settings);
    struct sm_cfg c;
    struct job j = { .m = m, .manifest_uri = "s3://bucket/runs/x/manifest.json", .settings = s, .attempt = 1 };
    int r = sm_parse_settings(s, &c, &e);
    if (r == 0)
        r = sm_check_job(&j, &c, &e);
    if (r == 0) {
        cJSON *b = sm_create_body(&j, &c, 0, &e);
        r = b ? 0 : -1;
        cJSON_Delete(b);
    }
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static cJSON *body_for(const struct manifest *m, const char *settings, int attempt)
{
    struct err e = { 0 };
    cJSON *s = parse(settings);
    struct sm_cfg c;
    char *mu = xasprintf("%smanifest.json", m->run_uri);
    struct job j = { .m = m, .manifest_uri = mu, .settings = s, .attempt = attempt };
    cJSON *b = NULL;
    if (sm_parse_settings(s, &c, &e) == 0 && sm_check_job(&j, &c, &e) == 0)
        b = sm_create_body(&j, &c, 0, &e);
    if (!b)
        printf("# %s\n", e.msg);
    /* The body copies every string it needs. */
    cJSON_Delete(s);
    free(mu);
    return b;
}

static void test_settings(void)
{
    is_str(parse_err("{" BASE "}"), "", "role_arn and instance_type are enough");
    is_str(parse_err("{" BASE ", \"instance_typ\": \"x\"}"), "settings.instance_typ: not a setting of the sagemaker flavor",
           "an unknown setting is refused");
    is_str(parse_err("{\"instance_type\": \"ml.g5.xlarge\"}"),
           "settings.role_arn: required: the IAM role the training job runs as (arn:aws:iam::ACCOUNT:role/NAME)",
           "role_arn is required");
    is_str(parse_err("{\"role_arn\": \"SageMakerRole\", \"instance_type\": \"ml.g5.xlarge\"}"),
           "settings.role_arn: \"SageMakerRole\" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
           "a role name is not an ARN");
    is_str(parse_err("{" ROLE "}"), "settings.instance_type: required: the training instance type (ml.g5.xlarge, ...)",
           "instance_type is required");
    is_str(parse_err("{" ROLE ", \"instance_type\": \"g5.xlarge\"}"),
           "settings.instance_type: \"g5.xlarge\" is not a SageMaker instance type (ml.FAMILY.SIZE)", "an EC2 type name");
    is_str(parse_err("{" BASE ", \"instance_count\": 2}"), "settings.instance_count: only 1 (a step runs on one instance)",
           "instance_count above 1");
    is_str(parse_err("{" BASE ", \"instance_count\": 1}"), "", "instance_count 1");
    is_str(parse_err("{" BASE ", \"enable_network_isolation\": true}"),
           "settings.enable_network_isolation: refused: stepop's entrypoint inside the job must reach the store to fetch "
           "inputs and write logs, outputs and status",
           "network isolation is refused with the reason");
    is_str(parse_err("{" BASE ", \"max_wait\": 7200}"), "settings.max_wait: only with spot: true", "max_wait without spot");
    is_str(parse_err("{" BASE ", \"keep_alive_period\": 30000}"),
           "settings.keep_alive_period: expected a whole number from 0 to 21600", "keep_alive_period's limit");
    is_str(parse_err("{" BASE ", \"keep_alive_period\": \"30m\"}"), "", "keep_alive_period as a duration");
    is_str(parse_err("{" BASE ", \"max_retry_attempts\": 31}"),
           "settings.max_retry_attempts: expected a whole number from 0 to 30", "max_retry_attempts' limit");
    is_str(parse_err("{" BASE ", \"subnets\": [\"subnet-1\"]}"),
           "settings.security_group_ids: a VPC needs both subnets and security_group_ids", "subnets alone");
    is_str(parse_err("{" BASE ", \"output_s3_uri\": \"gs://b/x\"}"),
           "settings.output_s3_uri: expected s3://BUCKET/PREFIX, got \"gs://b/x\"", "output_s3_uri must be s3://");
    is_str(parse_err("{" BASE ", \"volume_kms_key_id\": \"alias/my key\"}"),
           "settings.volume_kms_key_id: \"alias/my key\" is not a KMS key id, alias or ARN", "a KMS key with a space");
    is_str(parse_err("{" BASE ", \"pass_env\": [\"MY-VAR\"]}"),
           "settings.pass_env: \"MY-VAR\" is not a variable name ([a-zA-Z_][a-zA-Z0-9_]*)", "a pass_env name outside the pattern");
    is_str(parse_err("{" BASE ", \"pass_env\": [\"STEPOP_ATTEMPT\"]}"),
           "settings.pass_env: STEPOP_ATTEMPT is set by the flavor itself", "stepop's own variables");
    is_str(parse_err("{" BASE ", \"tags\": {\"stepop:run-id\": \"x\"}}"),
           "settings.tags.stepop:run-id: the stepop: tags are stepop's own and aws: is reserved", "stepop's own tags");
    is_str(parse_err("{" BASE ", \"checkpoint_local_path\": \"ckpt\"}"),
           "settings.checkpoint_local_path: expected an absolute path", "a relative checkpoint path");
}

static void test_gpus(void)
{
    is_int(sm_instance_gpus("ml.p3.2xlarge"), 1, "ml.p3.2xlarge: 1");
    is_int(sm_instance_gpus("ml.p3.8xlarge"), 4, "ml.p3.8xlarge: 4");
    is_int(sm_instance_gpus("ml.p3.16xlarge"), 8, "ml.p3.16xlarge: 8");
    is_int(sm_instance_gpus("ml.p4d.24xlarge"), 8, "ml.p4d.24xlarge: 8");
    is_int(sm_instance_gpus("ml.p5.48xlarge"), 8, "ml.p5.48xlarge: 8");
    is_int(sm_instance_gpus("ml.g4dn.12xlarge"), 4, "ml.g4dn.12xlarge: 4");
    is_int(sm_instance_gpus("ml.g4dn.16xlarge"), 1, "ml.g4dn.16xlarge: 1");
    is_int(sm_instance_gpus("ml.g5.24xlarge"), 4, "ml.g5.24xlarge: 4");
    is_int(sm_instance_gpus("ml.g5.48xlarge"), 8, "ml.g5.48xlarge: 8");
    is_int(sm_instance_gpus("ml.g6.12xlarge"), 4, "ml.g6 like g5");
    is_int(sm_instance_gpus("ml.m5.xlarge"), 0, "ml.m5: no GPU");
    is_int(sm_instance_gpus("ml.trn1.32xlarge"), 0, "Trainium is not a GPU");
    is_int(sm_instance_gpus("ml.x9.xlarge"), -1, "an unknown type");

    struct manifest m = base_manifest();
    m.gpus = 4;
    is_str(check_err(&m, "{" BASE "}"), "resources.gpus: 4 GPUs asked, and ml.g5.xlarge has 1; pick a larger instance type",
           "more GPUs than the type has");
    is_str(check_err(&m, "{" ROLE ", \"instance_type\": \"ml.g5.12xlarge\"}"), "", "as many as it has");
    m.gpus = 1;
    is_str(check_err(&m, "{" ROLE ", \"instance_type\": \"ml.m5.xlarge\"}"),
           "resources.gpus: 1 GPUs asked, and ml.m5.xlarge has 0; pick a larger instance type", "a CPU type");
    is_str(check_err(&m, "{" ROLE ", \"instance_type\": \"ml.x9.xlarge\"}"),
           "resources.gpus: 1 GPUs asked, and ml.x9.xlarge is not in stepop's table of GPU instance types "
           "(docs/flavors.md#sagemaker): check the type's GPUs and pick one from the table",
           "an unknown type with GPUs");
}

static void test_checks(void)
{
    struct manifest m = base_manifest();
    m.cpu = 2;
    is_str(check_err(&m, "{" BASE "}"),
           "resources.cpu: a training job cannot ask for CPUs: the instance type decides (settings.instance_type "
           "ml.g5.xlarge); drop --cpu",
           "--cpu is refused with a hint");
    m.cpu = 0;
    m.memory = 1 << 30;
    is_str(check_err(&m, "{" BASE "}"),
           "resources.memory: a training job cannot ask for memory: the instance type decides (settings.instance_type "
           "ml.g5.xlarge); drop --memory",
           "--memory is refused with a hint");
    m.memory = 0;
    m.grace_ms = 121000;
    is_str(check_err(&m, "{" BASE "}"),
           "grace_period: 121s asked, and SageMaker sends SIGKILL 120 s after SIGTERM when it stops a job; at most 120s",
           "a grace period over 120 s");
    m.grace_ms = 120000;
    is_str(check_err(&m, "{" BASE "}"), "", "120 s is fine");
    m = base_manifest();
    m.run_uri = (char *)"file:///srv/store/runs/x/";
    is_str(check_err(&m, "{" BASE "}"),
           "the run's store file:///srv/store/runs/x/ is on this machine, which a training job cannot see: use an s3:// "
           "store",
           "a file store");
    unsetenv("AWS_ENDPOINT_URL_SAGEMAKER");
    unsetenv("AWS_ENDPOINT_URL");
    m.run_uri = (char *)"http://127.0.0.1:9000/runs/x/";
    is_str(check_err(&m, "{" BASE ", \"output_s3_uri\": \"s3://b/out/\"}"),
           "the run's store is on this machine, which a training job in AWS cannot reach: use an s3:// location",
           "a loopback store with SageMaker in AWS");
    setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:4599", 1);
    is_str(check_err(&m, "{" BASE ", \"output_s3_uri\": \"s3://b/out/\"}"), "", "... allowed with a local SageMaker");
    is_str(check_err(&m, "{" BASE "}"),
           "settings.output_s3_uri: required when the store is not s3:// (SageMaker's S3OutputPath)",
           "output_s3_uri is required off S3");
    unsetenv("AWS_ENDPOINT_URL_SAGEMAKER");
    m = base_manifest();
    m.image = NULL;
    is_str(check_err(&m, "{" BASE "}"),
           "the sagemaker flavor needs an image (manifest \"image\", or --image): an ECR image with stepop in it",
           "an image is needed");
}

static void test_names_tags(void)
{
    char *n = sm_job_name("01J9ZQK8V3N4M5P6Q7R8S9T0AB");
    is_str(n, "stepop-01J9ZQK8V3N4M5P6Q7R8S9T0AB", "stepop-<run id>");
    free(n);
    n = sm_job_name("my_run..2--");
    is_str(n, "stepop-my-run-2", "other characters become single hyphens, none at the end");
    free(n);
    n = sm_job_name("a-very-long-run-id-that-goes-on-and-on-and-on-well-past-sixty-three-characters");
    ok(strlen(n) <= 63 && strlen(n) > 50 && str_has_prefix(n, "stepop-a-very-long-run-id"), "a long id: at most 63 characters, its start kept");
    char *n2 = sm_job_name("a-very-long-run-id-that-goes-on-and-on-and-on-well-past-sixty-three-characterz");
    ok(strcmp(n, n2) != 0, "... and a digest keeps two long ids apart");
    free(n);
    free(n2);

    char *v = sm_tag_value("s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/");
    is_str(v, "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/", "an S3 run URI is its own tag value");
    free(v);
    char long_uri[400];
    snprintf(long_uri, sizeof long_uri, "s3://bucket/%0300d/", 0);
    v = sm_tag_value(long_uri);
    ok(str_has_prefix(v, "sha256:") && strlen(v) == 71, "a run URI over 256 characters: its digest");
    free(v);
    v = sm_tag_value("https://store.example.com/runs/x/?v=1");
    ok(str_has_prefix(v, "sha256:"), "a URI with characters the tag pattern refuses: its digest");
    free(v);

    struct manifest m = base_manifest();
    is_str(check_err(&m, "{" BASE ", \"tags\": {\"team\": \"ml#1\"}}"),
           "settings.tags.team: SageMaker takes tag keys of 1 to 128 and values of at most 256 letters, digits, spaces "
           "and _.:/=+-@",
           "a tag value outside the pattern");
}

static void test_body(void)
{
    struct manifest m = base_manifest();
    m.timeout_ms = 3600000;
    m.gpus = 1;
    cJSON *b = body_for(&m, "{" BASE ", \"volume_size_gb\": 100, \"keep_alive_period\": 600, \"subnets\": [\"subnet-1\"], "
                            "\"security_group_ids\": [\"sg-1\"], \"max_retry_attempts\": 2, \"tags\": {\"team\": \"ml\"}, "
                            "\"volume_kms_key_id\": \"alias/vol\", \"output_kms_key_id\": \"alias/out\"}",
                        3);
    ok(b != NULL, "a body");
    is_str(js(jp(b, "TrainingJobName", NULL)), "stepop-01J9ZQK8V3N4M5P6Q7R8S9T0AB", "TrainingJobName");
    is_str(js(jp(b, "RoleArn", NULL)), "arn:aws:iam::123456789012:role/SageMakerRole", "RoleArn");
    is_str(js(jp(b, "AlgorithmSpecification", "TrainingImage", NULL)), m.image, "TrainingImage: the manifest's image");
    is_str(js(jp(b, "AlgorithmSpecification", "TrainingInputMode", NULL)), "File", "TrainingInputMode File");
    is_str(js(jp(b, "AlgorithmSpecification", "ContainerEntrypoint", "#0", NULL)), "stepop", "entrypoint: stepop ...");
    is_str(js(jp(b, "AlgorithmSpecification", "ContainerEntrypoint", "#1", NULL)), "run", "... run");
    ok(!jp(b, "InputDataConfig", NULL), "no channels");
    is_str(js(jp(b, "ResourceConfig", "InstanceType", NULL)), "ml.g5.xlarge", "InstanceType");
    ok(jn(jp(b, "ResourceConfig", "InstanceCount", NULL)) == 1, "InstanceCount 1");
    ok(jn(jp(b, "ResourceConfig", "VolumeSizeInGB", NULL)) == 100, "VolumeSizeInGB");
    ok(jn(jp(b, "ResourceConfig", "KeepAlivePeriodInSeconds", NULL)) == 600, "KeepAlivePeriodInSeconds");
    is_str(js(jp(b, "ResourceConfig", "VolumeKmsKeyId", NULL)), "alias/vol", "VolumeKmsKeyId");
    is_str(js(jp(b, "OutputDataConfig", "S3OutputPath", NULL)),
           "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/sagemaker-output/", "S3OutputPath under the run prefix");
    is_str(js(jp(b, "OutputDataConfig", "KmsKeyId", NULL)), "alias/out", "the output's KmsKeyId");
    ok(jn(jp(b, "StoppingCondition", "MaxRuntimeInSeconds", NULL)) == 3630, "MaxRuntimeInSeconds: timeout + grace");
    ok(!jp(b, "StoppingCondition", "MaxWaitTimeInSeconds", NULL), "no MaxWait without spot");
    ok(!jp(b, "EnableManagedSpotTraining", NULL) && !jp(b, "CheckpointConfig", NULL), "no spot, no checkpoints");
    is_str(js(jp(b, "Environment", "STEPOP_MANIFEST", NULL)), "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json",
           "STEPOP_MANIFEST");
    is_str(js(jp(b, "Environment", "STEPOP_ATTEMPT", NULL)), "3", "STEPOP_ATTEMPT: this submission's attempt");
    is_str(js(jp(b, "Environment", "STEPOP_ATTEMPT_FROM_STATUS", NULL)), "1", "retries count attempts from the status");
    is_str(js(jp(b, "VpcConfig", "Subnets", "#0", NULL)), "subnet-1", "VpcConfig.Subnets");
    is_str(js(jp(b, "VpcConfig", "SecurityGroupIds", "#0", NULL)), "sg-1", "VpcConfig.SecurityGroupIds");
    ok(jn(jp(b, "RetryStrategy", "MaximumRetryAttempts", NULL)) == 2, "RetryStrategy");
    is_str(js(jp(b, "Tags", "#0", "Key", NULL)), "stepop:run-id", "tag stepop:run-id ...");
    is_str(js(jp(b, "Tags", "#0", "Value", NULL)), "01J9ZQK8V3N4M5P6Q7R8S9T0AB", "... the run id");
    is_str(js(jp(b, "Tags", "#1", "Key", NULL)), "stepop:run-uri", "tag stepop:run-uri ...");
    is_str(js(jp(b, "Tags", "#1", "Value", NULL)), m.run_uri, "... the run URI");
    is_str(js(jp(b, "Tags", "#2", "Key", NULL)), "team", "and the user's tags");
    ok(!jp(b, "EnableNetworkIsolation", NULL), "no network isolation");
    cJSON_Delete(b);

    /* No timeout: SageMaker's own default. */
    m.timeout_ms = 0;
    b = body_for(&m, "{" BASE "}", 1);
    ok(jn(jp(b, "StoppingCondition", "MaxRuntimeInSeconds", NULL)) == 86400, "no timeout: 86400 s");
    ok(!jp(b, "Environment", "STEPOP_ATTEMPT_FROM_STATUS", NULL), "no restarts, no attempts from the status");
    ok(!jp(b, "ResourceConfig", "KeepAlivePeriodInSeconds", NULL), "no warm pool unless asked");
    cJSON_Delete(b);

    /* A custom entrypoint. */
    b = body_for(&m, "{" BASE ", \"entrypoint\": [\"/opt/stepop/bin/stepop\", \"run\"]}", 1);
    is_str(js(jp(b, "AlgorithmSpecification", "ContainerEntrypoint", "#0", NULL)), "/opt/stepop/bin/stepop",
           "settings.entrypoint");
    cJSON_Delete(b);
}

static void test_spot(void)
{
    struct manifest m = base_manifest();
    m.timeout_ms = 7200000;
    cJSON *b = body_for(&m, "{" BASE ", \"spot\": true}", 1);
    ok(cJSON_IsTrue(jp(b, "EnableManagedSpotTraining", NULL)), "EnableManagedSpotTraining");
    ok(jn(jp(b, "StoppingCondition", "MaxRuntimeInSeconds", NULL)) == 7230, "MaxRuntime");
    ok(jn(jp(b, "StoppingCondition", "MaxWaitTimeInSeconds", NULL)) == 7230 + 3600, "MaxWait: run time plus an hour");
    is_str(js(jp(b, "CheckpointConfig", "S3Uri", NULL)), "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/checkpoints/",
           "checkpoints under the run prefix");
    is_str(js(jp(b, "CheckpointConfig", "LocalPath", NULL)), "/opt/ml/checkpoints", "the default local path");
    is_str(js(jp(b, "Environment", "STEPOP_CHECKPOINT_DIR", NULL)), "/opt/ml/checkpoints", "STEPOP_CHECKPOINT_DIR");
    is_str(js(jp(b, "Environment", "STEPOP_ATTEMPT_FROM_STATUS", NULL)), "1", "a spot restart is the next attempt");
    cJSON_Delete(b);
    b = body_for(&m, "{" BASE ", \"spot\": true, \"max_wait\": \"3h\", \"checkpoint_s3_uri\": \"s3://ck/p/\", "
                     "\"checkpoint_local_path\": \"/ckpt\"}",
                 1);
    ok(jn(jp(b, "StoppingCondition", "MaxWaitTimeInSeconds", NULL)) == 10800, "max_wait");
    is_str(js(jp(b, "CheckpointConfig", "S3Uri", NULL)), "s3://ck/p/", "checkpoint_s3_uri");
    is_str(js(jp(b, "Environment", "STEPOP_CHECKPOINT_DIR", NULL)), "/ckpt", "checkpoint_local_path to the step");
    cJSON_Delete(b);
    is_str(check_err(&m, "{" BASE ", \"spot\": true, \"max_wait\": 3600}"),
           "settings.max_wait: 3600s is less than the job's run time of 7230s (timeout plus grace period); SageMaker "
           "needs MaxWaitTimeInSeconds >= MaxRuntimeInSeconds",
           "max_wait below the run time");
}

static void test_environment(void)
{
    struct manifest m = base_manifest();
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    setenv("SM_TEST_BIG", big, 1);
    is_str(check_err(&m, "{" BASE ", \"pass_env\": [\"SM_TEST_BIG\"]}"),
           "settings.pass_env: the value of SM_TEST_BIG has 599 characters; SageMaker takes at most 512",
           "a value over 512 characters");
    setenv("SM_TEST_OK", "v", 1);
    struct buf s = { 0 };
    buf_appendf(&s, "{" BASE ", \"pass_env\": [");
    for (int i = 0; i < 99; i++) {
        char name[32];
        snprintf(name, sizeof name, "SM_TEST_%d", i);
        setenv(name, "v", 1);
        buf_appendf(&s, "%s\"%s\"", i ? ", " : "", name);
    }
    buf_appendf(&s, "]}");
    is_str(check_err(&m, s.data), "settings.pass_env: 101 environment variables in all; SageMaker takes at most 100",
           "more than 100 variables");
    buf_free(&s);
    unsetenv("SM_TEST_ABSENT");
    cJSON *b = body_for(&m, "{" BASE ", \"pass_env\": [\"SM_TEST_OK\", \"SM_TEST_ABSENT\"]}", 1);
    is_str(js(jp(b, "Environment", "SM_TEST_OK", NULL)), "v", "a passed variable");
    ok(!jp(b, "Environment", "SM_TEST_ABSENT", NULL), "an unset one is left out");
    cJSON_Delete(b);
}

/* DescribeTrainingJob answers onto phases. */
static struct remote_state state_of(const char *json)
{
    struct remote_state st;
    memset(&st, 0, sizeof st);
    cJSON *d = parse(json);
    sm_remote_state(d, "stepop-x", "eu-west-1", &st);
    cJSON_Delete(d);
    return st;
}

static void test_states(void)
{
    struct remote_state st;
    st = state_of("{\"TrainingJobStatus\": \"InProgress\", \"SecondaryStatus\": \"Starting\", \"SecondaryStatusTransitions\": "
                  "[{\"Status\": \"Starting\", \"StatusMessage\": \"Preparing the instances for training\"}]}");
    is_int(st.phase, REMOTE_PENDING, "Starting: pending");
    is_str(st.message, "training job stepop-x: InProgress/Starting: Preparing the instances for training",
           "with SageMaker's words");
    st = state_of("{\"TrainingJobStatus\": \"InProgress\", \"SecondaryStatus\": \"Downloading\"}");
    is_int(st.phase, REMOTE_PENDING, "Downloading: pending");
    st = state_of("{\"TrainingJobStatus\": \"InProgress\", \"SecondaryStatus\": \"Training\"}");
    is_int(st.phase, REMOTE_RUNNING, "Training: running");
    st = state_of("{\"TrainingJobStatus\": \"InProgress\", \"SecondaryStatus\": \"Interrupted\"}");
    is_int(st.phase, REMOTE_RUNNING, "Interrupted: running on (a new attempt)");
    st = state_of("{\"TrainingJobStatus\": \"Completed\", \"SecondaryStatus\": \"Completed\"}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == 0, "Completed: exit 0");
    st = state_of("{\"TrainingJobStatus\": \"Failed\", \"SecondaryStatus\": \"Failed\", \"FailureReason\": "
                  "\"AlgorithmError: ExecuteUserScriptError: exit code: 3\"}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == 3, "Failed: the exit code from FailureReason");
    st = state_of("{\"TrainingJobStatus\": \"Failed\", \"SecondaryStatus\": \"Failed\", \"FailureReason\": "
                  "\"AlgorithmError: Please check memory: the process ran out of memory\"}");
    ok(st.oom_killed && st.exit_code == 137, "out of memory: oom_killed");
    st = state_of("{\"TrainingJobStatus\": \"Failed\", \"SecondaryStatus\": \"Failed\", \"FailureReason\": "
                  "\"CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML "
                  "instance type.\"}");
    is_int(st.phase, REMOTE_CANNOT_START, "a capacity error: cannot start");
    st = state_of("{\"TrainingJobStatus\": \"Stopped\", \"SecondaryStatus\": \"MaxRuntimeExceeded\"}");
    ok(st.phase == REMOTE_EXITED && st.reason == REASON_TIMEOUT, "MaxRuntimeExceeded: timeout");
    st = state_of("{\"TrainingJobStatus\": \"Stopped\", \"SecondaryStatus\": \"MaxWaitTimeExceeded\"}");
    is_int(st.phase, REMOTE_CANNOT_START, "MaxWaitTimeExceeded: did not start");
    st = state_of("{\"TrainingJobStatus\": \"Stopped\", \"SecondaryStatus\": \"Stopped\", \"SecondaryStatusTransitions\": "
                  "[{\"Status\": \"Training\"}, {\"Status\": \"Interrupted\"}, {\"Status\": \"Stopped\"}]}");
    ok(st.phase == REMOTE_EXITED && st.reason == REASON_PREEMPTED, "Stopped after an interruption: preempted");
    st = state_of("{\"TrainingJobStatus\": \"Stopped\", \"SecondaryStatus\": \"Stopped\"}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == -1 && st.reason == REASON_NONE, "Stopped: exited -1");
    is_int(sm_failure_exit_code("ExitCode=42"), 42, "ExitCode=42");
    is_int(sm_failure_exit_code("no code here"), -1, "no code");
}

int main(void)
{
    struct err e = { 0 };
    setenv("STEPOP_HTTP_ATTEMPTS", "1", 1);
    /* The log fallback must find no CloudWatch here: a closed port. */
    setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://127.0.0.1:9", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    if (http_global_init(&e) < 0)
        return 1;
    test_settings();
    test_gpus();
    test_checks();
    test_names_tags();
    test_body();
    test_spot();
    test_environment();
    test_states();
    return tap_done();
}
