/* The vertex flavor's settings (flavors/vertex/settings.c: what is refused, in which words; the
 * machine and accelerator table), its CustomJob body (flavors/vertex/body.c: every field, exactly;
 * labels within Vertex AI's rules; durations; the environment) and the mapping of a CustomJob's
 * state and error onto phases (lifecycle.c). */
#include "../../flavors/vertex/vertex.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_ID "01J9ZQK8V3N4M5P6Q7R8S9T0AB"
#define RUN_URI "gs://bucket/runs/" RUN_ID "/"

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
    struct vx_cfg c;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(json);
    int r = vx_parse_settings(s, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static struct manifest base_manifest(void)
{
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)RUN_ID;
    m.run_uri = (char *)RUN_URI;
    m.image = (char *)"us-docker.pkg.dev/proj/repo/train:1";
    m.grace_ms = 30000;
    return m;
}

/* The error of checking m under settings, or "". */
static const char *check_err(const struct manifest *m, const char *settings)
{
    static struct err e;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(settings);
    struct vx_cfg c;
    struct job j = { .m = m, .manifest_uri = RUN_URI "manifest.json", .settings = s, .attempt = 1 };
    int r = vx_parse_settings(s, &c, &e);
    if (r == 0)
        r = vx_check_job(&j, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

/* The body, printed compact (caller frees), or the error. */
static char *body_text(const struct manifest *m, const char *settings, int attempt, int redact)
{
    struct err e = { 0 };
    cJSON *s = parse(settings);
    struct vx_cfg c;
    struct job j = { .m = m, .manifest_uri = RUN_URI "manifest.json", .settings = s, .attempt = attempt };
    char *out;
    if (vx_parse_settings(s, &c, &e) == 0 && vx_check_job(&j, &c, &e) == 0) {
        cJSON *b = vx_create_body(&j, &c, redact);
        out = json_print(b, 0);
        cJSON_Delete(b);
    } else {
        out = xasprintf("error: %s", e.msg);
    }
    cJSON_Delete(s);
    return out;
}

static void test_settings(void)
{
    is_str(parse_err("{}"), "", "no setting is required");
    is_str(parse_err("{\"machine_typ\": \"x\"}"), "settings.machine_typ: not a setting of the vertex flavor",
           "an unknown setting is refused");
    is_str(parse_err("{\"strategy\": \"PREEMPTIBLE\"}"),
           "settings.strategy: \"PREEMPTIBLE\": expected STANDARD, SPOT or FLEX_START", "an unknown strategy");
    is_str(parse_err("{\"max_wait\": \"1h\"}"),
           "settings.max_wait: only with strategy FLEX_START (Vertex AI's maxWaitDuration bounds the wait for "
           "flex-start capacity)",
           "max_wait without flex-start");
    is_str(parse_err("{\"strategy\": \"FLEX_START\", \"max_wait\": \"1h\"}"), "", "max_wait with flex-start");
    is_str(parse_err("{\"strategy\": \"FLEX_START\", \"max_wait\": \"1500ms\"}"),
           "settings.max_wait: expected whole seconds from 1s to 604800s", "max_wait in whole seconds");
    is_str(parse_err("{\"location\": \"US Central\"}"),
           "settings.location: \"US Central\" is not a Vertex AI region (us-central1, europe-west4, ...)",
           "a location with a space");
    is_str(parse_err("{\"project\": \"My Project\"}"), "settings.project: \"My Project\" is not a Google Cloud project id",
           "a project name is not an id");
    is_str(parse_err("{\"api_endpoint\": \"ftp://x\"}"),
           "settings.api_endpoint \"ftp://x\" must start with http:// or https://", "api_endpoint's scheme");
    is_str(parse_err("{\"api_endpoint\": \"europe-west4-aiplatform.googleapis.com\"}"), "",
           "api_endpoint as a bare host, as Google's client options take it");
    is_str(parse_err("{\"accelerator_type\": \"TPU_V3\"}"),
           "settings.accelerator_type: TPU_V3: TPUs are not GPUs stepop can check or give to a step; only NVIDIA GPUs",
           "TPUs are refused");
    is_str(parse_err("{\"accelerator_type\": \"nvidia-tesla-t4\"}"),
           "settings.accelerator_type: \"nvidia-tesla-t4\" is not one of Vertex AI's NVIDIA accelerator types "
           "(NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ...; docs/flavors.md#vertex)",
           "Compute Engine's spelling of an accelerator is not the API's");
    is_str(parse_err("{\"accelerator_count\": 2}"), "settings.accelerator_count: needs settings.accelerator_type",
           "a count without a type");
    is_str(parse_err("{\"accelerator_type\": \"NVIDIA_TESLA_T4\", \"accelerator_count\": 0}"),
           "settings.accelerator_count: expected a whole number from 1 to 16", "a count of 0");
    is_str(parse_err("{\"boot_disk_size_gb\": 50}"), "settings.boot_disk_size_gb: expected a whole number from 100 to 64000",
           "boot disks start at 100 GB");
    is_str(parse_err("{\"boot_disk_type\": \"local-ssd\"}"),
           "settings.boot_disk_type: \"local-ssd\": expected pd-ssd, pd-standard, pd-balanced or hyperdisk-balanced",
           "an unknown disk type");
    is_str(parse_err("{\"service_account\": \"trainer\"}"),
           "settings.service_account: \"trainer\" is not a service account e-mail address "
           "(NAME@PROJECT.iam.gserviceaccount.com)",
           "a service account name without a domain");
    is_str(parse_err("{\"network\": \"default\"}"),
           "settings.network: \"default\": expected projects/PROJECT_NUMBER/global/networks/NAME", "a bare network name");
    is_str(parse_err("{\"reserved_ip_ranges\": [\"r1\"]}"),
           "settings.reserved_ip_ranges: only with settings.network (ranges of the peered network)",
           "reserved ranges without a network");
    is_str(parse_err("{\"base_output_dir\": \"s3://b/x\"}"), "settings.base_output_dir: expected gs://BUCKET/PREFIX, got "
                                                             "\"s3://b/x\"",
           "base_output_dir must be gs://");
    is_str(parse_err("{\"kms_key_name\": \"my-key\"}"),
           "settings.kms_key_name: expected projects/P/locations/L/keyRings/R/cryptoKeys/K, got \"my-key\"",
           "a bare key name");
    is_str(parse_err("{\"labels\": {\"stepop-run-id\": \"x\"}}"),
           "settings.labels.stepop-run-id: the stepop- labels are stepop's own", "stepop's own labels");
    is_str(parse_err("{\"labels\": {\"Team\": \"ml\"}}"),
           "settings.labels.Team: Vertex AI takes label keys [a-z][a-z0-9_-]* and values [a-z0-9_-]*, at most 63 "
           "characters each",
           "an upper-case label key");
    is_str(parse_err("{\"labels\": {\"team\": \"ML Ops\"}}"),
           "settings.labels.team: Vertex AI takes label keys [a-z][a-z0-9_-]* and values [a-z0-9_-]*, at most 63 "
           "characters each",
           "a label value with a space");
    is_str(parse_err("{\"pass_env\": [\"STEPOP_MANIFEST\"]}"), "settings.pass_env: STEPOP_MANIFEST is set by the flavor itself",
           "stepop's own variables");
    is_str(parse_err("{\"persistent_resource_id\": \"My_Pool\"}"),
           "settings.persistent_resource_id: \"My_Pool\" is not a persistent resource id ([a-z0-9-], at most 63)",
           "a persistent resource id outside the pattern");
}

static void test_machines(void)
{
    const char *type = NULL;
    int count = 0;
    ok(vx_machine_fixed("a2-highgpu-4g", &type, &count) && !strcmp(type, "NVIDIA_TESLA_A100") && count == 4,
       "a2-highgpu-4g: 4 A100");
    ok(vx_machine_fixed("a2-megagpu-16g", &type, &count) && count == 16, "a2-megagpu-16g: 16");
    ok(vx_machine_fixed("a2-ultragpu-8g", &type, &count) && !strcmp(type, "NVIDIA_A100_80GB") && count == 8,
       "a2-ultragpu-8g: 8 A100 80GB");
    ok(vx_machine_fixed("a3-highgpu-8g", &type, &count) && !strcmp(type, "NVIDIA_H100_80GB") && count == 8,
       "a3-highgpu-8g: 8 H100");
    ok(vx_machine_fixed("a3-megagpu-8g", &type, &count) && !strcmp(type, "NVIDIA_H100_MEGA_80GB"), "a3-megagpu-8g");
    ok(vx_machine_fixed("a3-ultragpu-8g", &type, &count) && !strcmp(type, "NVIDIA_H200_141GB") && count == 8,
       "a3-ultragpu-8g: 8 H200");
    ok(vx_machine_fixed("a4-highgpu-8g", &type, &count) && !strcmp(type, "NVIDIA_B200") && count == 8, "a4-highgpu-8g: 8 B200");
    ok(vx_machine_fixed("g2-standard-24", &type, &count) && !strcmp(type, "NVIDIA_L4") && count == 2, "g2-standard-24: 2 L4");
    ok(vx_machine_fixed("g2-standard-32", &type, &count) && count == 1, "g2-standard-32: 1 L4");
    ok(vx_machine_fixed("g2-standard-96", &type, &count) && count == 8, "g2-standard-96: 8 L4");
    ok(!vx_machine_fixed("n1-standard-8", &type, &count), "n1 types take attached GPUs");

    struct manifest m = base_manifest();
    is_str(check_err(&m, "{}"), "", "the defaults: n1-standard-4, no GPU");
    m.gpus = 1;
    is_str(check_err(&m, "{}"),
           "resources.gpus: 1 GPUs asked and settings.accelerator_type is not set: name the accelerator "
           "(NVIDIA_TESLA_T4 on n1-*, or a GPU machine type from docs/flavors.md#vertex)",
           "--gpus needs an accelerator type");
    is_str(check_err(&m, "{\"accelerator_type\": \"NVIDIA_TESLA_T4\"}"), "", "a T4 on n1-standard-4");
    m.gpus = 3;
    is_str(check_err(&m, "{\"accelerator_type\": \"NVIDIA_TESLA_T4\"}"),
           "settings.accelerator_count: 3 NVIDIA_TESLA_T4 on n1-standard-4: n1-* machines take 1, 2 or 4 of them",
           "three T4s on n1 are refused");
    m.gpus = 8;
    is_str(check_err(&m, "{\"accelerator_type\": \"NVIDIA_TESLA_T4\"}"),
           "settings.accelerator_count: 8 NVIDIA_TESLA_T4 on n1-standard-4: n1-* machines take 1, 2 or 4 of them",
           "eight T4s on n1 are refused");
    is_str(check_err(&m, "{\"accelerator_type\": \"NVIDIA_TESLA_V100\", \"machine_type\": \"n1-highmem-64\"}"), "",
           "eight V100s on n1");
    m.gpus = 2;
    is_str(check_err(&m, "{\"accelerator_type\": \"NVIDIA_TESLA_T4\", \"accelerator_count\": 1}"),
           "resources.gpus: 2 GPUs asked, and the job gets 1 NVIDIA_TESLA_T4 on n1-standard-4",
           "more GPUs than the accelerator count");
    is_str(check_err(&m, "{\"accelerator_type\": \"NVIDIA_L4\"}"),
           "settings.accelerator_type: NVIDIA_L4 does not attach to n1-* machine types (only NVIDIA_TESLA_T4, P4, P100 "
           "and V100 do); pick a machine type from the table",
           "an L4 on n1");
    is_str(check_err(&m, "{\"machine_type\": \"e2-standard-4\", \"accelerator_type\": \"NVIDIA_TESLA_T4\"}"),
           "settings.accelerator_type: e2-standard-4 takes no accelerator: GPUs attach to n1-* machine types, or come "
           "with the a2, a3, a4 and g2 types (docs/flavors.md#vertex)",
           "an accelerator on e2");
    is_str(check_err(&m, "{\"machine_type\": \"a2-highgpu-2g\"}"),
           "settings.accelerator_type: a2-highgpu-2g comes with 2 NVIDIA_TESLA_A100; set accelerator_type to "
           "NVIDIA_TESLA_A100",
           "a GPU machine type needs its accelerator named");
    is_str(check_err(&m, "{\"machine_type\": \"a2-highgpu-2g\", \"accelerator_type\": \"NVIDIA_TESLA_A100\"}"), "",
           "a2-highgpu-2g with 2 GPUs");
    is_str(check_err(&m, "{\"machine_type\": \"a2-highgpu-2g\", \"accelerator_type\": \"NVIDIA_A100_80GB\"}"),
           "settings.accelerator_type: a2-highgpu-2g comes with NVIDIA_TESLA_A100, not NVIDIA_A100_80GB",
           "the wrong A100 for the type");
    is_str(check_err(&m, "{\"machine_type\": \"a2-highgpu-2g\", \"accelerator_type\": \"NVIDIA_TESLA_A100\", "
                         "\"accelerator_count\": 4}"),
           "settings.accelerator_count: a2-highgpu-2g comes with 2 NVIDIA_TESLA_A100, not 4", "the count is fixed");
    m.gpus = 4;
    is_str(check_err(&m, "{\"machine_type\": \"g2-standard-24\", \"accelerator_type\": \"NVIDIA_L4\"}"),
           "resources.gpus: 4 GPUs asked, and the job gets 2 NVIDIA_L4 on g2-standard-24", "more GPUs than the type has");
    is_str(check_err(&m, "{\"machine_type\": \"a3-highgpu-3g\", \"accelerator_type\": \"NVIDIA_H100_80GB\"}"),
           "settings.machine_type: a3-highgpu-3g is not in stepop's table of GPU machine types (docs/flavors.md#vertex): "
           "check the name, and pick one from the table",
           "a GPU series type outside the table");
}

static void test_checks(void)
{
    struct manifest m = base_manifest();
    m.cpu = 2;
    is_str(check_err(&m, "{}"),
           "resources.cpu: a custom job cannot ask for CPUs: the machine type decides (settings.machine_type "
           "n1-standard-4); drop --cpu",
           "--cpu is refused with a hint");
    m.cpu = 0;
    m.memory = 1 << 30;
    is_str(check_err(&m, "{}"),
           "resources.memory: a custom job cannot ask for memory: the machine type decides (settings.machine_type "
           "n1-standard-4); drop --memory",
           "--memory is refused with a hint");
    m.memory = 0;
    m.image = NULL;
    is_str(check_err(&m, "{}"), "the vertex flavor needs an image (manifest \"image\", or --image)", "an image is needed");
    m.image = (char *)"img:1";
    m.run_uri = (char *)"file:///tmp/runs/x/";
    is_str(check_err(&m, "{}"),
           "the run's store file:///tmp/runs/x/ is on this machine, which a custom job cannot see: use a gs:// store",
           "a file:// store is refused");
    m.run_uri = (char *)"http://127.0.0.1:9000/runs/x/";
    is_str(check_err(&m, "{}"),
           "the run's store is on this machine, which a custom job in Google Cloud cannot reach: use a gs:// location",
           "a loopback store is refused");
    is_str(check_err(&m, "{\"api_endpoint\": \"http://127.0.0.1:8080\"}"), "",
           "unless Vertex AI is on this machine too (a fake)");
}

static void test_labels(void)
{
    char *v = vx_label_value(RUN_ID);
    is_str(v, "01j9zqk8v3n4m5p6q7r8s9t0ab", "a ULID becomes lower case");
    free(v);
    v = vx_label_value("My.Run/2024 #1");
    is_str(v, "my_run_2024__1", "other characters become '_'");
    free(v);
    char long_id[100];
    memset(long_id, 'A', 99);
    long_id[99] = 0;
    v = vx_label_value(long_id);
    is_int((int)strlen(v), 63, "a long id is cut to 63");
    ok(!strncmp(v, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-", 47), "its start, then '-'");
    char *v2;
    long_id[98] = 'B';
    v2 = vx_label_value(long_id);
    ok(strcmp(v, v2) != 0, "and a digest that tells two long ids apart");
    free(v);
    free(v2);
    v = vx_uri_label(RUN_URI);
    is_int((int)strlen(v), 32, "the URI label: 32 hex digits");
    ok(strspn(v, "0123456789abcdef") == 32, "lower-case hex");
    free(v);
    char d[32];
    vx_duration(3630, d, sizeof d);
    is_str(d, "3630s", "a Duration in protobuf JSON");
}

static void test_body(void)
{
    struct manifest m = base_manifest();
    char *b = body_text(&m, "{}", 1, 0);
    char *uri_label = vx_uri_label(RUN_URI);
    char *want = xasprintf(
        "{\"displayName\":\"stepop-" RUN_ID "\",\"jobSpec\":{\"workerPoolSpecs\":[{\"machineSpec\":{\"machineType\":"
        "\"n1-standard-4\"},\"replicaCount\":\"1\",\"diskSpec\":{\"bootDiskType\":\"pd-ssd\",\"bootDiskSizeGb\":100},"
        "\"containerSpec\":{\"imageUri\":\"us-docker.pkg.dev/proj/repo/train:1\",\"command\":[\"stepop\",\"run\"],"
        "\"env\":[{\"name\":\"STEPOP_MANIFEST\",\"value\":\"" RUN_URI "manifest.json\"},{\"name\":\"STEPOP_ATTEMPT\","
        "\"value\":\"1\"}]}}],\"scheduling\":{\"strategy\":\"STANDARD\"},\"baseOutputDirectory\":{\"outputUriPrefix\":"
        "\"" RUN_URI "vertex-output/\"}},\"labels\":{\"stepop-run-id\":\"01j9zqk8v3n4m5p6q7r8s9t0ab\","
        "\"stepop-run-uri\":\"%s\"}}",
        uri_label);
    is_str(b, want, "the defaults' body, exactly");
    free(want);
    free(b);

    m.gpus = 2;
    m.timeout_ms = 3600 * 1000 + 1;
    setenv("VX_TEST_TOKEN_LIKE", "s3cr3t-value", 1);
    const char *all = "{\"project\": \"proj-1\", \"location\": \"europe-west4\", \"machine_type\": \"a2-highgpu-2g\", "
                      "\"accelerator_type\": \"NVIDIA_TESLA_A100\", \"boot_disk_type\": \"pd-balanced\", "
                      "\"boot_disk_size_gb\": 200, \"strategy\": \"FLEX_START\", \"max_wait\": \"2h\", "
                      "\"restart_job_on_worker_restart\": true, "
                      "\"service_account\": \"trainer@proj-1.iam.gserviceaccount.com\", "
                      "\"network\": \"projects/123/global/networks/vpc\", \"reserved_ip_ranges\": [\"r1\", \"r2\"], "
                      "\"persistent_resource_id\": \"pool-1\", \"enable_web_access\": true, "
                      "\"base_output_dir\": \"gs://out/x/\", "
                      "\"kms_key_name\": \"projects/p/locations/europe-west4/keyRings/r/cryptoKeys/k\", "
                      "\"entrypoint\": [\"/opt/stepop/bin/stepop\", \"run\"], "
                      "\"pass_env\": [\"VX_TEST_TOKEN_LIKE\", \"VX_TEST_UNSET\"], \"labels\": {\"team\": \"ml\"}}";
    b = body_text(&m, all, 2, 0);
    want = xasprintf(
        "{\"displayName\":\"stepop-" RUN_ID "\",\"jobSpec\":{\"workerPoolSpecs\":[{\"machineSpec\":{\"machineType\":"
        "\"a2-highgpu-2g\",\"acceleratorType\":\"NVIDIA_TESLA_A100\",\"acceleratorCount\":2},\"replicaCount\":\"1\","
        "\"diskSpec\":{\"bootDiskType\":\"pd-balanced\",\"bootDiskSizeGb\":200},\"containerSpec\":{\"imageUri\":"
        "\"us-docker.pkg.dev/proj/repo/train:1\",\"command\":[\"/opt/stepop/bin/stepop\",\"run\"],\"env\":["
        "{\"name\":\"STEPOP_MANIFEST\",\"value\":\"" RUN_URI "manifest.json\"},{\"name\":\"STEPOP_ATTEMPT\",\"value\":"
        "\"2\"},{\"name\":\"STEPOP_ATTEMPT_FROM_STATUS\",\"value\":\"1\"},{\"name\":\"VX_TEST_TOKEN_LIKE\",\"value\":"
        "\"s3cr3t-value\"}]}}],\"scheduling\":{\"timeout\":\"3631s\",\"strategy\":\"FLEX_START\",\"maxWaitDuration\":"
        "\"7200s\",\"restartJobOnWorkerRestart\":true},\"serviceAccount\":\"trainer@proj-1.iam.gserviceaccount.com\","
        "\"network\":\"projects/123/global/networks/vpc\",\"reservedIpRanges\":[\"r1\",\"r2\"],"
        "\"persistentResourceId\":\"pool-1\",\"enableWebAccess\":true,\"baseOutputDirectory\":{\"outputUriPrefix\":"
        "\"gs://out/x/\"}},\"labels\":{\"stepop-run-id\":\"01j9zqk8v3n4m5p6q7r8s9t0ab\",\"stepop-run-uri\":\"%s\","
        "\"team\":\"ml\"},\"encryptionSpec\":{\"kmsKeyName\":\"projects/p/locations/europe-west4/keyRings/r/cryptoKeys/"
        "k\"}}",
        uri_label);
    is_str(b, want, "every setting's field, exactly (timeout + grace rounded up to seconds)");
    free(want);
    free(b);
    b = body_text(&m, all, 2, 1);
    ok(!strstr(b, "s3cr3t-value") && strstr(b, "\"VX_TEST_TOKEN_LIKE\",\"value\":\"<hidden: from the submitting "
                                                "environment>\""),
       "--dry-run hides a passed variable's value");
    free(b);

    m.gpus = 0;
    m.timeout_ms = 0;
    b = body_text(&m, "{\"strategy\": \"SPOT\"}", 1, 0);
    ok(strstr(b, "\"scheduling\":{\"strategy\":\"SPOT\"}") && strstr(b, "STEPOP_ATTEMPT_FROM_STATUS"),
       "spot: the strategy, and restarts counted from the run's status");
    free(b);
    m.run_uri = (char *)"s3://bucket/runs/x/";
    b = body_text(&m, "{}", 1, 0);
    ok(!strstr(b, "baseOutputDirectory"), "no output directory by default on a store that is not gs://");
    free(b);
    free(uri_label);
}

static void test_states(void)
{
    struct remote_state st;
    static const struct {
        const char *job;
        enum remote_phase phase;
        int exit_code, oom;
        enum run_reason reason;
        const char *message;
    } cases[] = {
        { "{\"name\": \"projects/1/locations/l/customJobs/42\", \"state\": \"JOB_STATE_QUEUED\"}", REMOTE_PENDING, -1, 0,
          REASON_NONE, "custom job 42: JOB_STATE_QUEUED" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_PENDING\"}", REMOTE_PENDING, -1, 0, REASON_NONE,
          "custom job 42: JOB_STATE_PENDING" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_PAUSED\"}", REMOTE_PENDING, -1, 0, REASON_NONE,
          "custom job 42: JOB_STATE_PAUSED" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_RUNNING\"}", REMOTE_RUNNING, -1, 0, REASON_NONE,
          "custom job 42: JOB_STATE_RUNNING" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_UPDATING\"}", REMOTE_RUNNING, -1, 0, REASON_NONE,
          "custom job 42: JOB_STATE_UPDATING" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_CANCELLING\"}", REMOTE_RUNNING, -1, 0, REASON_NONE,
          "custom job 42 is stopping (JOB_STATE_CANCELLING)" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_SUCCEEDED\"}", REMOTE_EXITED, 0, 0, REASON_NONE,
          "custom job 42 succeeded" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_CANCELLED\", \"error\": {\"code\": 1, \"message\": \"CANCELED\"}}",
          REMOTE_EXITED, -1, 0, REASON_NONE, "custom job 42 was cancelled: CANCELED" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_EXPIRED\"}", REMOTE_CANNOT_START, -1, 0, REASON_NONE,
          "custom job 42 did not start: no capacity before its maximum wait (JOB_STATE_EXPIRED)" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 3, \"message\": \"The replica "
          "workerpool0-0 exited with a non-zero status of 3. To find out more about why your job exited please check "
          "the logs\"}}",
          REMOTE_EXITED, 3, 0, REASON_NONE,
          "custom job 42 failed: The replica workerpool0-0 exited with a non-zero status of 3. To find out more about "
          "why your job exited please check the logs" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 3, \"message\": \"The replica "
          "workerpool0-0 ran out of memory and exited with a non-zero status of 137(SIGKILL)\"}}",
          REMOTE_EXITED, 137, 1, REASON_NONE,
          "custom job 42 failed: The replica workerpool0-0 ran out of memory and exited with a non-zero status of "
          "137(SIGKILL)" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 4, \"message\": \"Job ran past "
          "its deadline\"}}",
          REMOTE_EXITED, -1, 0, REASON_TIMEOUT, "custom job 42 ran past its scheduling timeout: Job ran past its deadline" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 14, \"message\": \"The replica "
          "workerpool0-0 was preempted\"}}",
          REMOTE_EXITED, -1, 0, REASON_PREEMPTED, "custom job 42 was preempted: The replica workerpool0-0 was preempted" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 8, \"message\": \"The resources "
          "are insufficient in region: europe-west4\"}}",
          REMOTE_CANNOT_START, -1, 0, REASON_NONE,
          "custom job 42 could not start: The resources are insufficient in region: europe-west4" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 3, \"message\": \"Unable to pull "
          "image us-docker.pkg.dev/p/r/missing:1\"}}",
          REMOTE_CANNOT_START, -1, 0, REASON_NONE,
          "custom job 42 could not start: Unable to pull image us-docker.pkg.dev/p/r/missing:1" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 13, \"message\": \"The job "
          "timed out waiting for its worker\"}}",
          REMOTE_EXITED, -1, 0, REASON_TIMEOUT,
          "custom job 42 ran past its scheduling timeout: The job timed out waiting for its worker" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 3, \"message\": \"The replica "
          "workerpool0-0 exited with a non-zero status of 1 (connection timeout)\"}}",
          REMOTE_EXITED, 1, 0, REASON_NONE,
          "custom job 42 failed: The replica workerpool0-0 exited with a non-zero status of 1 (connection timeout)" },
        { "{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\"}", REMOTE_EXITED, -1, 0, REASON_NONE,
          "custom job 42 failed: (no reason given)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *job = parse(cases[i].job);
        memset(&st, 0, sizeof st);
        vx_remote_state(job, NULL, &st);
        const char *state = json_str(job, "state");
        ok(st.phase == cases[i].phase && st.exit_code == cases[i].exit_code && st.oom_killed == cases[i].oom &&
               st.reason == cases[i].reason,
           "%s (%s): phase %d, exit %d, oom %d, reason %d", state, cases[i].message, st.phase, st.exit_code,
           st.oom_killed, st.reason);
        is_str(st.message, cases[i].message, "%s: the message", state);
        cJSON_Delete(job);
    }
    cJSON *job = parse("{\"name\": \"x/42\", \"state\": \"JOB_STATE_FAILED\", \"error\": {\"code\": 13, \"message\": "
                       "\"Internal error occurred for the current attempt.\"}}");
    memset(&st, 0, sizeof st);
    vx_remote_state(job, "exec: \"stepop\": executable file not found in $PATH", &st);
    is_str(st.message,
           "custom job 42 failed: Internal error occurred for the current attempt.; its last log lines: exec: "
           "\"stepop\": executable file not found in $PATH",
           "a tail of the log is quoted after Vertex AI's words");
    cJSON_Delete(job);
    is_int(vx_failure_exit_code("exit code: 42"), 42, "exit code: N");
    is_int(vx_failure_exit_code("no code here"), -1, "no code");
    is_int(vx_failure_exit_code("non-zero status of 999"), -1, "out of range");
}

int main(void)
{
    test_settings();
    test_machines();
    test_checks();
    test_labels();
    test_body();
    test_states();
    return tap_done();
}
