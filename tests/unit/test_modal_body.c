/* The modal flavor's settings (flavors/modal/settings.c: what is refused, in which words; GPU
 * strings), its plan (body.c: environment, tags, resources, timeout) encoded as the
 * SandboxCreateRequest Modal receives, and the mapping of GenericResult statuses onto phases
 * (lifecycle.c). */
#include "../../flavors/modal/modal.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *parse(const char *json)
{
    cJSON *s = cJSON_Parse(json);
    if (!s) {
        printf("Bail out! bad JSON in the test: %s\n", json);
        exit(1);
    }
    return s;
}

static struct manifest base_manifest(void)
{
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)"01J9ZQK8V3N4M5P6Q7R8S9T0AB";
    m.run_uri = (char *)"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/";
    m.image = (char *)"ghcr.io/acme/train:1";
    m.grace_ms = 30000;
    return m;
}

/* The error of parsing settings and checking m against them, or "". */
static const char *check_err(const struct manifest *m, const char *settings)
{
    static struct err e;
    memset(&e, 0, sizeof e);
    cJSON *s = parse(settings);
    struct md_cfg c;
    struct job j = { .m = m, .manifest_uri = "s3://bucket/runs/x/manifest.json", .settings = s, .attempt = 1 };
    int r = md_parse_settings(s, &c, &e);
    if (r == 0)
        r = md_check_job(&j, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static void refused(const struct manifest *m, const char *settings, const char *words, const char *what)
{
    const char *msg = check_err(m, settings);
    ok(msg[0] && strstr(msg, words), "%s is refused (%s)", what, msg[0] ? msg : "accepted");
}

static void test_settings(void)
{
    struct manifest m = base_manifest();
    is_str(check_err(&m, "{}"), "", "no settings");
    is_str(check_err(&m, "{\"app\": \"ml.team_1\", \"gpu_type\": \"a100-80gb:2\", \"regions\": [\"us-east\"], "
                         "\"cloud\": \"gcp\", \"nonpreemptible\": true, \"workdir\": \"/w\", \"pass_env\": [\"HF_TOKEN\"], "
                         "\"image_build_timeout\": \"30m\", \"server_url\": \"http://127.0.0.1:9\"}"),
           "", "every setting");
    refused(&m, "{\"colour\": 1}", "settings.colour: not a setting of the modal flavor", "an unknown setting");
    refused(&m, "{\"app\": \"my app\"}", "settings.app", "an app name with a space");
    refused(&m, "{\"gpu_type\": \"H100:0\"}", "count after ':'", "a GPU count of 0");
    refused(&m, "{\"gpu_type\": \"H100:9\"}", "count after ':'", "9 GPUs");
    refused(&m, "{\"gpu_type\": \"H100:two\"}", "count after ':'", "a GPU count in words");
    refused(&m, "{\"gpu_type\": \"H 100\"}", "GPU type is letters", "a GPU type with a space");
    refused(&m, "{\"gpu_type\": \"\"}", "expected a Modal GPU type", "an empty GPU type");
    refused(&m, "{\"cloud\": \"azure\"}", "aws, gcp, oci or auto", "an unknown cloud");
    refused(&m, "{\"workdir\": \"rel\"}", "absolute path", "a relative workdir");
    refused(&m, "{\"pass_env\": [\"MODAL_TOKEN_SECRET\"]}", "Modal credential", "passing the token secret");
    refused(&m, "{\"pass_env\": [\"STEPOP_ATTEMPT\"]}", "set by the flavor", "passing STEPOP_ATTEMPT");
    refused(&m, "{\"regions\": [\"us east\"]}", "not a region", "a region with a space");
    refused(&m, "{\"server_url\": \"ftp://x\"}", "settings.server_url", "an ftp server URL");
    refused(&m, "{\"image_build_timeout\": 0}", "image_build_timeout", "a zero build timeout");
    refused(&m, "{\"nonpreemptible\": \"yes\"}", "true or false", "a bool as a string");

    m.gpus = 2;
    refused(&m, "{}", "settings.gpu_type is not set", "GPUs without a type");
    refused(&m, "{\"gpu_type\": \"H100:4\"}", "2 GPUs asked, and settings.gpu_type H100:4 gives 4",
            "--gpus that differs from the type's count");
    is_str(check_err(&m, "{\"gpu_type\": \"H100:2\"}"), "", "--gpus equal to the type's count");
    m.gpus = 9;
    refused(&m, "{\"gpu_type\": \"H100\"}", "at most 8", "9 GPUs asked");
    m.gpus = 0;

    m.timeout_ms = 86400LL * 1000;
    refused(&m, "{}", "over Modal's 24 h limit", "a 24 h timeout plus grace");
    m.timeout_ms = 86370LL * 1000;
    is_str(check_err(&m, "{}"), "", "a timeout that fits 24 h with its grace");
    m.timeout_ms = 0;

    m.run_uri = (char *)"file:///tmp/runs/x/";
    refused(&m, "{}", "a Modal sandbox cannot see", "a file:// store");
    m.run_uri = (char *)"http://127.0.0.1:9000/runs/x/";
    refused(&m, "{}", "cannot reach", "a loopback store with Modal's cloud");
    is_str(check_err(&m, "{\"server_url\": \"http://127.0.0.1:9\"}"), "", "a loopback store with a loopback fake");
    m = base_manifest();
    m.image = NULL;
    refused(&m, "{}", "needs an image", "no image");
    m = base_manifest();
    unsetenv("REGISTRY_USERNAME");
    refused(&m, "{\"private_registry\": true}", "REGISTRY_USERNAME and REGISTRY_PASSWORD", "a private registry without "
                                                                                         "credentials");

    char type[64];
    int count;
    struct err e = { 0 };
    ok(md_parse_gpu("h100!", type, sizeof type, &count, &e) == 0 && !strcmp(type, "H100!") && count == 0,
       "\"h100!\": upper-cased as the SDK does, no count");
    ok(md_parse_gpu("A100-80GB:8", type, sizeof type, &count, &e) == 0 && !strcmp(type, "A100-80GB") && count == 8,
       "\"A100-80GB:8\"");
}

/* The plan of m under settings, encoded as SandboxCreateRequest. */
static int plan_for(const struct manifest *m, const char *settings, struct md_plan *p, struct buf *req)
{
    struct err e = { 0 };
    cJSON *s = parse(settings);
    struct md_cfg c;
    struct job j = { .m = m, .manifest_uri = "s3://bucket/runs/x/manifest.json", .settings = s, .attempt = 3 };
    int r = md_parse_settings(s, &c, &e) < 0 || md_check_job(&j, &c, &e) < 0 ? -1 : 0;
    if (r == 0) {
        md_plan_build(&j, &c, p);
        struct modal_sandbox sb;
        md_plan_sandbox(p, &c, &sb);
        sb.app_id = "ap-1";
        sb.image_id = "im-1";
        const char *sec = "st-1";
        sb.secret_ids = &sec;
        sb.secret_count = 1;
        modal_enc_sandbox_create(req, &sb);
    } else {
        printf("# %s\n", e.msg);
    }
    cJSON_Delete(s);
    return r;
}

/* The first field `field` of a message, or NULL. */
static const struct pb_field *field_of(const void *p, size_t n, uint32_t field, struct pb_field *out)
{
    struct pb_reader r;
    pb_reader_init(&r, p, n);
    while (pb_next(&r, out) == 1)
        if (out->field == field)
            return out;
    return NULL;
}

static void test_plan(void)
{
    struct manifest m = base_manifest();
    m.cpu = 2.5;
    m.memory = 3LL << 30;
    m.gpus = 2;
    m.timeout_ms = 3600500;
    setenv("MD_PASS", "passed-value", 1);
    struct md_plan p;
    struct buf req = { 0 };
    ok(plan_for(&m, "{\"gpu_type\": \"l40s\", \"pass_env\": [\"MD_PASS\", \"MD_ABSENT\"], \"regions\": [\"eu\"], "
                    "\"nonpreemptible\": true}", &p, &req) == 0, "a plan");
    is_str(p.name, "stepop-01J9ZQK8V3N4M5P6Q7R8S9T0AB", "the sandbox's name");
    ok(p.argc == 2 && !strcmp(p.argv[0], "stepop") && !strcmp(p.argv[1], "run"), "entrypoint: stepop run");
    ok(p.env_count == 3 && !strcmp(p.env_names[0], "STEPOP_MANIFEST") &&
           !strcmp(p.env_values[0], "s3://bucket/runs/x/manifest.json") && !strcmp(p.env_names[1], "STEPOP_ATTEMPT") &&
           !strcmp(p.env_values[1], "3") && !strcmp(p.env_names[2], "MD_PASS") && !strcmp(p.env_values[2], "passed-value"),
       "environment: STEPOP_MANIFEST, STEPOP_ATTEMPT, the passed variable that is set");
    is_int(p.milli_cpu, 2500, "milliCpu from --cpu 2.5");
    is_int(p.memory_mb, 3072, "memoryMb from 3 GiB");
    ok(p.gpu_type && !strcmp(p.gpu_type, "L40S") && p.gpu_count == 2, "GPU L40S:2 from the type and --gpus");
    is_int(p.timeout_secs, 3601 + 30, "timeoutSecs: the step's timeout rounded up, plus its grace");
    is_str(p.tag_values[0], "01J9ZQK8V3N4M5P6Q7R8S9T0AB", "tag stepop-run-id");
    is_int(strlen(p.tag_values[1]), 32, "tag stepop-run-uri: 32 hex digits");

    struct pb_field d, r, g;
    ok(field_of(req.data, req.len, 2, &d) != NULL, "the request has a definition");
    ok(field_of(d.data, d.len, 5, &r) && field_of(r.data, r.len, 4, &g), "resources.gpu_config");
    struct pb_field x;
    ok(field_of(g.data, g.len, 2, &x) && x.u == 2 && field_of(g.data, g.len, 4, &x) && x.len == 4 &&
           !memcmp(x.data, "L40S", 4),
       "GPUConfig count = 2, gpu_type = 4 \"L40S\"");
    ok(field_of(r.data, r.len, 3, &x) && x.u == 2500 && field_of(r.data, r.len, 2, &x) && x.u == 3072,
       "Resources milli_cpu = 3, memory_mb = 2");
    ok(field_of(d.data, d.len, 7, &x) && x.u == 3631, "Sandbox.timeout_secs = 7");
    ok(field_of(d.data, d.len, 17, &x) && x.len == 6 && !memcmp(x.data, "\x22\x02" "eu\x30\x01", 6),
       "SchedulerPlacement: regions = 4 \"eu\", nonpreemptible = 6");
    ok(field_of(d.data, d.len, 4, &x) && x.len == 4 && !memcmp(x.data, "st-1", 4), "Sandbox.secret_ids = 4");
    /* The environment goes only in the ephemeral secret, never in the sandbox's definition. */
    ok(!memmem(req.data, req.len, "passed-value", 12), "the passed value is not in SandboxCreate");
    md_plan_free(&p);
    buf_free(&req);

    /* No timeout: Modal's 24 h, since the API's own default is 5 minutes; no GPU: an empty
     * GPUConfig, as the SDK sends it. */
    m = base_manifest();
    ok(plan_for(&m, "{\"entrypoint\": [\"/opt/stepop\", \"run\"]}", &p, &req) == 0, "a plan without resources");
    is_int(p.timeout_secs, 86400, "timeoutSecs without a step timeout: 86400");
    ok(p.argc == 2 && !strcmp(p.argv[0], "/opt/stepop"), "settings.entrypoint");
    ok(field_of(req.data, req.len, 2, &d) && field_of(d.data, d.len, 5, &r) && r.len == 2 &&
           !memcmp(r.data, "\x22\x00", 2),
       "Resources holds an empty gpu_config only");
    ok(!field_of(d.data, d.len, 17, &x), "no scheduler placement");
    md_plan_free(&p);
    buf_free(&req);
    unsetenv("MD_PASS");
}

static void state_of(int status, int exitcode, const char *exception, struct remote_state *st)
{
    struct modal_result r = { .present = 1, .status = status, .exitcode = exitcode, .exception = (char *)exception };
    memset(st, 0, sizeof *st);
    md_remote_state("sb-1", &r, "Traceback | KeyError: 'x'", st);
}

static void test_states(void)
{
    struct remote_state st;
    state_of(MODAL_ST_SUCCESS, 0, NULL, &st);
    ok(st.phase == REMOTE_EXITED && st.exit_code == 0, "SUCCESS: exited 0");
    state_of(MODAL_ST_FAILURE, 3, NULL, &st);
    ok(st.phase == REMOTE_EXITED && st.exit_code == 3 && strstr(st.message, "exit code 3") &&
           strstr(st.message, "KeyError"),
       "FAILURE: its exit code, the last output quoted: %s", st.message);
    state_of(MODAL_ST_TERMINATED, 0, NULL, &st);
    ok(st.phase == REMOTE_EXITED && st.exit_code == 137 && strstr(st.message, "terminated"), "TERMINATED");
    state_of(MODAL_ST_TIMEOUT, 0, NULL, &st);
    ok(st.phase == REMOTE_EXITED && st.reason == REASON_TIMEOUT, "TIMEOUT: reason timeout");
    state_of(MODAL_ST_MEMORY_MANAGER_EVICTION, 0, NULL, &st);
    ok(st.oom_killed && st.exit_code == 137, "MEMORY_MANAGER_EVICTION: oom_killed");
    state_of(MODAL_ST_INIT_FAILURE, 0, "Image pull failed: manifest unknown", &st);
    ok(st.phase == REMOTE_CANNOT_START && strstr(st.message, "manifest unknown"),
       "INIT_FAILURE: cannot start, with the exception: %s", st.message);
    state_of(MODAL_ST_INTERNAL_FAILURE, 0, "worker lost", &st);
    ok(st.phase == REMOTE_EXITED && st.exit_code == -1 && strstr(st.message, "INTERNAL_FAILURE") &&
           strstr(st.message, "worker lost"),
       "INTERNAL_FAILURE with the exception: %s", st.message);
    state_of(MODAL_ST_INTERNAL_FAILURE, 0, "task was preempted", &st);
    ok(st.reason == REASON_PREEMPTED, "a preemption Modal reports");
}

int main(void)
{
    test_settings();
    test_plan();
    test_states();
    return tap_done();
}
