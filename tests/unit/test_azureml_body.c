/* The azureml flavor's settings (flavors/azureml/settings.c: what is refused, in which words; the
 * token scope per cloud), its requests (body.c: the job's and environment's names, the URLs, the
 * EnvironmentVersion and command job bodies) and the mapping of a job's status onto phases. */
#include "../../flavors/azureml/azureml.h"
#include "../../cloud/azure/auth.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "00000000-1111-2222-3333-444444444444"
#define BASE "\"subscription_id\": \"" SUB "\", \"resource_group\": \"rg-ml\", \"workspace\": \"ws-main\""
#define WS "/subscriptions/" SUB "/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-main"

static const cJSON *jp(const cJSON *root, ...)
{
    va_list ap;
    va_start(ap, root);
    const char *k;
    while (root && (k = va_arg(ap, const char *)))
        root = cJSON_GetObjectItemCaseSensitive(root, k);
    va_end(ap);
    return root;
}

static const char *js(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
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
    struct aml_cfg c;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(json);
    int r = aml_parse_settings(s, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static int has(const char *text, const char *part)
{
    int yes = text && strstr(text, part) != NULL;
    if (!yes)
        printf("#   \"%s\" lacks \"%s\"\n", text ? text : "(null)", part);
    return yes;
}

static struct manifest base_manifest(void)
{
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)"01J9ZQK8V3N4M5P6Q7R8S9T0AB";
    m.run_uri = (char *)"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/";
    m.image = (char *)"myreg.azurecr.io/train:1";
    m.grace_ms = 30000;
    return m;
}

static const char *check_err(const struct manifest *m, const char *settings)
{
    static struct err e;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(settings);
    struct aml_cfg c;
    struct job j = { .m = m, .manifest_uri = "s3://bucket/runs/x/manifest.json", .settings = s, .attempt = 1 };
    int r = aml_parse_settings(s, &c, &e);
    if (r == 0)
        r = aml_check_job(&j, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static void test_settings(void)
{
    is_str(parse_err("{" BASE ", \"compute\": \"gpu\"}"), "", "a cluster's settings are taken");
    is_str(parse_err("{" BASE ", \"instance_type\": \"Standard_NC6s_v3\", \"job_tier\": \"Spot\"}"), "",
           "serverless with a job tier is taken");
    ok(has(parse_err("{" BASE ", \"compute\": \"gpu\", \"zone\": 1}"), "settings.zone: not a setting of the azureml flavor"),
       "an unknown setting is refused, named");
    ok(has(parse_err("{\"resource_group\": \"rg\", \"workspace\": \"ws1\", \"compute\": \"c\"}"),
           "settings.subscription_id: required"), "the subscription is required");
    ok(has(parse_err("{\"subscription_id\": \"s\", \"workspace\": \"ws1\", \"compute\": \"c\"}"),
           "settings.resource_group: required"), "the resource group is required");
    ok(has(parse_err("{" BASE "}"), "settings.compute: required"), "a compute or an instance type is required");
    ok(has(parse_err("{" BASE ", \"compute\": \"c\", \"instance_type\": \"Standard_D2_v2\"}"), "one or the other"),
       "compute and instance_type together are refused");
    ok(has(parse_err("{\"subscription_id\": \"s\", \"resource_group\": \"rg\", \"workspace\": \"w\", \"compute\": \"c\"}"),
           "is not a workspace name"), "a workspace name under 3 characters");
    ok(has(parse_err("{\"subscription_id\": \"s/x\", \"resource_group\": \"rg\", \"workspace\": \"ws1\", \"compute\": \"c\"}"),
           "is not a subscription id"), "a subscription with a slash (it goes into the URL)");
    ok(has(parse_err("{" BASE ", \"compute\": \"c\", \"job_tier\": \"Spot\"}"), "only with serverless compute"),
       "a job tier on a cluster is refused");
    ok(has(parse_err("{" BASE ", \"instance_type\": \"Standard_NC6s_v3\", \"job_tier\": \"Cheap\"}"),
           "one of Spot, Basic, Standard, Premium"), "an unknown job tier");
    ok(has(parse_err("{" BASE ", \"instance_type\": \"Standard_NC6s_v3\", \"job_tier\": \"Spot\", \"api_version\": "
                     "\"2022-10-01\"}"), "queueSettings needs api_version 2023-04-01 or later"),
       "a job tier on an api-version without queueSettings");
    ok(has(parse_err("{" BASE ", \"compute\": \"c\", \"api_version\": \"latest\"}"), "is not an api-version"),
       "a malformed api-version");
    is_str(parse_err("{" BASE ", \"compute\": \"c\", \"api_version\": \"2024-10-01-preview\"}"), "",
           "a preview api-version is taken");
    ok(has(parse_err("{" BASE ", \"compute\": \"c\", \"instance_count\": 2}"), "only 1"), "instance_count 2");
    ok(has(parse_err("{" BASE ", \"compute\": \"c\", \"arm_endpoint\": \"http://arm.example.com\"}"),
           "http:// only on loopback"), "plain http to a remote ARM endpoint (a token is sent)");
    is_str(parse_err("{" BASE ", \"compute\": \"c\", \"arm_endpoint\": \"http://127.0.0.1:8080\"}"), "",
           "plain http on loopback (a local fake)");
    ok(has(parse_err("{" BASE ", \"compute\": \"c\", \"arm_endpoint\": \"https://arm.example.com/x\"}"),
           "must not have a path"), "an endpoint with a path");

    struct aml_cfg c;
    struct err e = { 0 };
    cJSON *s = parse("{" BASE ", \"compute\": \"c\"}");
    aml_parse_settings(s, &c, &e);
    is_str(c.api_version, AML_DEFAULT_API_VERSION, "the default api-version");
    is_str(aml_scope(&c), AZURE_SCOPE_ARM, "the public cloud's ARM scope");
    c.arm_endpoint = "https://management.usgovcloudapi.net";
    is_str(aml_scope(&c), "https://management.core.usgovcloudapi.net/.default", "US Government's ARM audience");
    cJSON_Delete(s);
}

static void test_checks(void)
{
    struct manifest m = base_manifest();
    const char *cl = "{" BASE ", \"compute\": \"gpu\"}";
    is_str(check_err(&m, cl), "", "a plain job passes");
    m.cpu = 2;
    ok(has(check_err(&m, cl), "the compute cluster decides"), "--cpu is refused with the hint");
    m.cpu = 0;
    m.memory = 1 << 30;
    ok(has(check_err(&m, cl), "drop --memory"), "--memory is refused");
    m.memory = 0;
    m.gpus = 1;
    ok(has(check_err(&m, "{" BASE ", \"instance_type\": \"Standard_NC6s_v3\"}"), "settings.instance_type decides"),
       "--gpus is refused: the VM size decides");
    m.gpus = 0;
    m.image = NULL;
    ok(has(check_err(&m, cl), "needs an image"), "no image");
    m = base_manifest();
    m.run_uri = (char *)"file:///tmp/store/runs/x/";
    ok(has(check_err(&m, cl), "cannot see"), "a file:// store");
    m.run_uri = (char *)"http://127.0.0.1:9000/runs/x/";
    ok(has(check_err(&m, cl), "cannot reach"), "a loopback store with Azure ML in Azure");
    is_str(check_err(&m, "{" BASE ", \"compute\": \"gpu\", \"arm_endpoint\": \"http://127.0.0.1:1\"}"), "",
           "a loopback store with a loopback ARM endpoint (a local fake)");
}

static void test_names(void)
{
    char *n = aml_job_name("01J9ZQK8V3N4M5P6Q7R8S9T0AB");
    is_str(n, "stepop-01j9zqk8v3n4m5p6q7r8s9t0ab", "the job's name: stepop-<run id> in lower case");
    free(n);
    n = aml_job_name("a..b__c");
    is_str(n, "stepop-a-b-c", "other characters as single hyphens");
    free(n);
    char longid[400];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    n = aml_job_name(longid);
    ok(strlen(n) <= 255 && strncmp(n, "stepop-xxx", 10) == 0, "a long run id is shortened with a digest (%zu)", strlen(n));
    free(n);
    char *a = aml_env_name("myreg.azurecr.io/train:1"), *b = aml_env_name("myreg.azurecr.io/train:2");
    ok(strlen(a) == 23 && !strncmp(a, "stepop-", 7) && strcmp(a, b) != 0, "environment names from a digest of the image "
       "(%s, %s)", a, b);
    free(a);
    free(b);
    char *t = aml_timeout(3630000);
    is_str(t, "PT3630S", "ISO 8601 timeout");
    free(t);
    t = aml_timeout(1001);
    is_str(t, "PT2S", "rounded up");
    free(t);
}

static void test_body(void)
{
    struct manifest m = base_manifest();
    m.step = (char *)"train";
    m.timeout_ms = 3600000;
    struct err e = { 0 };
    cJSON *s = parse("{" BASE ", \"compute\": \"gpu-cluster\", \"api_version\": \"2022-10-01\"}");
    struct aml_cfg c;
    aml_parse_settings(s, &c, &e);
    struct job j = { .m = &m, .manifest_uri = "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json",
                     .settings = s, .attempt = 2 };
    cJSON *b = aml_job_body(&j, &c, &e);
    const cJSON *p = jp(b, "properties", NULL);
    is_str(js(jp(p, "jobType", NULL)), "Command", "jobType Command");
    is_str(js(jp(p, "command", NULL)), "stepop run", "the command runs the entrypoint");
    is_str(js(jp(p, "computeId", NULL)), WS "/computes/gpu-cluster", "computeId: the cluster's ARM id");
    ok(!jp(p, "resources", NULL) && !jp(p, "queueSettings", NULL), "no resources or queueSettings with a cluster");
    char *env = aml_env_name(m.image), *want = xasprintf(WS "/environments/%s/versions/1", env);
    is_str(js(jp(p, "environmentId", NULL)), want, "environmentId: the image's environment version");
    free(env);
    free(want);
    is_str(js(jp(p, "environmentVariables", "STEPOP_MANIFEST", NULL)), j.manifest_uri, "STEPOP_MANIFEST");
    is_str(js(jp(p, "environmentVariables", "STEPOP_ATTEMPT", NULL)), "2", "STEPOP_ATTEMPT");
    ok(!jp(p, "environmentVariables", "STEPOP_ATTEMPT_FROM_STATUS", NULL), "no attempt from status off Spot");
    is_str(js(jp(p, "tags", AML_TAG_RUN_ID, NULL)), m.run_id, "the run id tag");
    is_str(js(jp(p, "tags", AML_TAG_RUN_URI, NULL)), m.run_uri, "the run URI tag");
    is_str(js(jp(p, "limits", "jobLimitsType", NULL)), "Command", "limits' discriminator");
    is_str(js(jp(p, "limits", "timeout", NULL)), "PT3630S", "limits.timeout: timeout plus grace");
    is_str(js(jp(p, "experimentName", NULL)), "stepop", "experimentName");
    ok(has(js(jp(p, "displayName", NULL)), "train"), "displayName names the step");
    cJSON_Delete(b);
    cJSON_Delete(s);

    m.timeout_ms = 0;
    s = parse("{" BASE ", \"instance_type\": \"Standard_NC6s_v3\", \"job_tier\": \"Spot\"}");
    aml_parse_settings(s, &c, &e);
    j.settings = s;
    b = aml_job_body(&j, &c, &e);
    p = jp(b, "properties", NULL);
    ok(!jp(p, "computeId", NULL), "serverless: no computeId");
    is_str(js(jp(p, "resources", "instanceType", NULL)), "Standard_NC6s_v3", "resources.instanceType");
    ok(cJSON_IsNumber(jp(p, "resources", "instanceCount", NULL)), "resources.instanceCount");
    is_str(js(jp(p, "queueSettings", "jobTier", NULL)), "Spot", "queueSettings.jobTier");
    is_str(js(jp(p, "environmentVariables", "STEPOP_ATTEMPT_FROM_STATUS", NULL)), "1", "Spot: attempts from the status");
    ok(!jp(p, "limits", NULL), "no timeout: no limits");
    cJSON_Delete(b);

    b = aml_env_body(&j);
    is_str(js(jp(b, "properties", "image", NULL)), m.image, "the environment holds the image");
    is_str(js(jp(b, "properties", "osType", NULL)), "Linux", "osType Linux");
    cJSON_Delete(b);
    char *u = aml_job_url(&c, "stepop-x", "/cancel");
    is_str(u, AML_DEFAULT_ARM WS "/jobs/stepop-x/cancel?api-version=" AML_DEFAULT_API_VERSION, "the cancel URL");
    free(u);
    cJSON_Delete(s);
}

static struct remote_state state_of(const char *json)
{
    struct remote_state st;
    memset(&st, 0, sizeof st);
    cJSON *d = parse(json);
    aml_remote_state(d, "stepop-x", &st);
    cJSON_Delete(d);
    return st;
}

static void test_states(void)
{
    const char *pending[] = { "NotStarted", "Starting", "Provisioning", "Preparing", "Queued" };
    for (int i = 0; i < 5; i++) {
        char *j = xasprintf("{\"properties\": {\"status\": \"%s\"}}", pending[i]);
        struct remote_state st = state_of(j);
        ok(st.phase == REMOTE_PENDING && has(st.message, pending[i]), "%s is pending, in Azure's word", pending[i]);
        free(j);
    }
    struct remote_state st = state_of("{\"properties\": {\"status\": \"Running\"}}");
    is_int(st.phase, REMOTE_RUNNING, "Running is running");
    st = state_of("{\"properties\": {\"status\": \"Finalizing\"}}");
    is_int(st.phase, REMOTE_RUNNING, "Finalizing is running");
    st = state_of("{\"properties\": {\"status\": \"CancelRequested\"}}");
    ok(st.phase == REMOTE_RUNNING && has(st.message, "stopping"), "CancelRequested: stopping");
    st = state_of("{\"properties\": {\"status\": \"Completed\"}}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == 0, "Completed exits 0");
    st = state_of("{\"properties\": {\"status\": \"Canceled\"}}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == -1 && has(st.message, "canceled"), "Canceled: ended, no code");
    st = state_of("{\"properties\": {\"status\": \"Failed\", \"error\": {\"code\": \"UserError\", \"message\": "
                  "\"Execution failed. User process exited with exit code 3\"}}}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == 3 && has(st.message, "UserError"), "Failed with the exit code in "
       "the error");
    st = state_of("{\"properties\": {\"status\": \"Failed\", \"error\": {\"code\": \"UserError\", \"message\": "
                  "\"/bin/bash: stepop: command not found; exit code 127\"}}}");
    ok(st.phase == REMOTE_EXITED && st.exit_code == -1 && has(st.message, "no stepop on its PATH"),
       "exit 127: an image without stepop, no exit code (the entrypoint never ran)");
    st = state_of("{\"properties\": {\"status\": \"Failed\", \"error\": {\"code\": \"SystemError\", \"message\": "
                  "\"the container ran out of memory (OOMKilled)\"}}}");
    ok(st.oom_killed && st.exit_code == 137, "memory words: oom_killed, 137");
    st = state_of("{\"properties\": {\"status\": \"Failed\", \"error\": {\"code\": \"JobTimeout\", \"message\": "
                  "\"the job ran past its limit\"}}}");
    is_int(st.reason, REASON_TIMEOUT, "a timeout error: reason timeout");
    st = state_of("{\"properties\": {\"status\": \"Failed\"}}");
    ok(st.exit_code == -1 && has(st.message, "no error given"), "Failed without an error");
    st = state_of("{\"properties\": {\"status\": \"NotResponding\"}}");
    ok(st.phase == REMOTE_RUNNING && has(st.message, "not heard"), "NotResponding explained, still running");
    st = state_of("{\"properties\": {\"status\": \"Paused\"}}");
    ok(st.phase == REMOTE_RUNNING && has(st.message, "paused"), "Paused explained");
    st = state_of("{\"properties\": {\"status\": \"Unknown\"}}");
    ok(st.phase == REMOTE_EXITED && has(st.message, "lost track"), "Unknown explained, ended");
}

int main(void)
{
    test_settings();
    test_checks();
    test_names();
    test_body();
    test_states();
    return tap_done();
}
