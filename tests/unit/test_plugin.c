/* Flavor plugins (flavors/plugin.c): the answers' schema checks, request building, the timeout
 * setting, and the resolution of the plugin setting on re-attach. */
#include "tap.h"

#include "../../flavors/plugin.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"

#include <stdlib.h>
#include <string.h>

#define WHO "plugin t (/x/stepop-flavor-t), operation op"

/* Parses text as what the plugin printed with that exit code; returns the rc, e filled. */
static int parse(enum plugin_op op, const char *text, int exit_code, cJSON **a, struct err *e)
{
    struct subproc_result r = { .exit_code = exit_code };
    buf_append(&r.out, text, strlen(text));
    memset(e, 0, sizeof *e);
    int rc = plugin_parse_answer(WHO, op, &r, a, e);
    subproc_result_free(&r);
    return rc;
}

static void answers(void)
{
    cJSON *a;
    struct err e;
    ok(parse(PLUGIN_VALIDATE, "{\"ok\": true}\n", 0, &a, &e) == 0 && a, "validate: {ok: true}");
    cJSON_Delete(a);
    ok(parse(PLUGIN_VALIDATE, "{\"ok\": false}", 0, &a, &e) < 0 && !a, "validate: ok false is not an answer");
    ok(strstr(e.msg, WHO ": validate answer: expected {\"ok\": true}") != NULL, "the message names who: %s", e.msg);
    ok(parse(PLUGIN_CANCEL, "{\"error\": {\"message\": \"not yours\", \"kind\": \"refused\"}}", 1, &a, &e) < 0,
       "an error answer");
    is_str(e.msg, WHO ": not yours", "carries the plugin's message");
    is_int(e.kind, ERR_REFUSED, "kind refused maps to ERR_REFUSED");
    ok(parse(PLUGIN_CANCEL, "{\"error\": {\"message\": \"x\"}}", 0, &a, &e) < 0 && e.kind == ERR_INVALID,
       "an error answer with exit 0 is an error too (default kind invalid)");
    ok(parse(PLUGIN_CANCEL, "{\"error\": {}}", 1, &a, &e) < 0 && strstr(e.msg, "error.message: expected a string"),
       "an error without a message");
    ok(parse(PLUGIN_CLEANUP, "{\"ok\": true}", 2, &a, &e) < 0 && strstr(e.msg, "exited with status 2 without an error answer"),
       "a non-zero exit without an error answer fails even with ok");
    ok(parse(PLUGIN_SUBMIT, "", 0, &a, &e) < 0 && strstr(e.msg, "not a JSON object; it printed nothing"),
       "empty output");
    ok(parse(PLUGIN_SUBMIT, "[1]", 0, &a, &e) < 0 && strstr(e.msg, "not a JSON object"), "an array is not an answer");
    char big[600];
    memset(big, 'y', sizeof big - 1);
    big[0] = '\n';
    big[sizeof big - 1] = 0;
    ok(parse(PLUGIN_SUBMIT, big, 0, &a, &e) < 0 && strstr(e.msg, "\"\\x0ayyy") && strstr(e.msg, "...\"") &&
           strlen(e.msg) < 400,
       "garbage is quoted escaped and bounded: %zu bytes", strlen(e.msg));
    ok(parse(PLUGIN_SUBMIT, "{\"handle\": {\"job\": 1}}", 0, &a, &e) == 0, "submit: a handle object");
    cJSON_Delete(a);
    ok(parse(PLUGIN_SUBMIT, "{\"handle\": \"j\"}", 0, &a, &e) < 0 && strstr(e.msg, "handle: expected an object"),
       "submit: a string handle");
    ok(parse(PLUGIN_SUBMIT, "{\"protocol_version\": 2, \"handle\": {}}", 0, &a, &e) < 0 &&
           strstr(e.msg, "protocol_version"),
       "an answer of another protocol version");
    ok(parse(PLUGIN_RENDER, "{\"requests\": [{\"a\": 1}]}", 0, &a, &e) == 0, "render: requests");
    cJSON_Delete(a);
    ok(parse(PLUGIN_RENDER, "{\"argv\": [\"sbatch\", \"x\"]}", 0, &a, &e) == 0, "render: argv");
    cJSON_Delete(a);
    ok(parse(PLUGIN_RENDER, "{\"argv\": [\"sbatch\", 3]}", 0, &a, &e) < 0, "render: argv of non-strings");
    ok(parse(PLUGIN_RENDER, "{\"argv\": [], \"requests\": []}", 0, &a, &e) < 0, "render: both");
    ok(parse(PLUGIN_RENDER, "{}", 0, &a, &e) < 0, "render: neither");
}

static int state(const char *text, struct remote_state *st, struct err *e)
{
    cJSON *a = cJSON_Parse(text);
    memset(e, 0, sizeof *e);
    int rc = plugin_parse_state(WHO, a, st, e);
    cJSON_Delete(a);
    return rc;
}

static void states(void)
{
    struct remote_state st;
    struct err e;
    ok(state("{\"state\": {\"phase\": \"exited\", \"exit_code\": 3, \"message\": \"done\"}}", &st, &e) == 0 &&
           st.phase == REMOTE_EXITED && st.exit_code == 3 && !st.oom_killed && strcmp(st.message, "done") == 0,
       "exited with a code");
    ok(state("{\"state\": {\"phase\": \"exited\"}}", &st, &e) < 0 && strstr(e.msg, "exit_code: required"),
       "exited needs an exit code");
    ok(state("{\"state\": {\"phase\": \"terminated\", \"reason\": \"preempted\"}}", &st, &e) == 0 &&
           st.phase == REMOTE_EXITED && st.exit_code == 137 && st.reason == REASON_PREEMPTED,
       "terminated: 137 and the reason");
    ok(state("{\"state\": {\"phase\": \"exited\", \"exit_code\": 137, \"oom_killed\": true, \"reason\": null}}", &st,
             &e) == 0 && st.oom_killed && st.reason == REASON_NONE,
       "oom_killed");
    ok(state("{\"state\": {\"phase\": \"terminated\", \"reason\": \"timeout\"}}", &st, &e) == 0 &&
           st.reason == REASON_TIMEOUT, "reason timeout");
    ok(state("{\"state\": {\"phase\": \"pending\"}}", &st, &e) == 0 && st.phase == REMOTE_PENDING, "pending");
    ok(state("{\"state\": {\"phase\": \"running\"}}", &st, &e) == 0 && st.phase == REMOTE_RUNNING, "running");
    ok(state("{\"state\": {\"phase\": \"gone\"}}", &st, &e) == 0 && st.phase == REMOTE_GONE, "gone");
    ok(state("{\"state\": {\"phase\": \"cannot_start\"}}", &st, &e) == 0 && st.phase == REMOTE_CANNOT_START,
       "cannot_start");
    ok(state("{\"state\": {\"phase\": \"Running\"}}", &st, &e) < 0 && strstr(e.msg, "state.phase: expected one of"),
       "phases are case-sensitive");
    ok(state("{\"state\": {\"phase\": \"exited\", \"exit_code\": 256}}", &st, &e) < 0, "exit code over 255");
    ok(state("{\"state\": {\"phase\": \"exited\", \"exit_code\": 1.5}}", &st, &e) < 0, "a fractional exit code");
    ok(state("{\"state\": {\"phase\": \"running\", \"oom_killed\": \"no\"}}", &st, &e) < 0, "oom_killed not a bool");
    ok(state("{\"state\": {\"phase\": \"running\", \"reason\": \"bored\"}}", &st, &e) < 0, "an unknown reason");
    ok(state("{\"state\": {\"phase\": \"running\", \"message\": 5}}", &st, &e) < 0, "a message not a string");
    ok(state("{\"phase\": \"running\"}", &st, &e) < 0 && strstr(e.msg, "state: expected an object"), "no state");
}

static void timeouts(void)
{
    int64_t ms;
    struct err e = { 0 };
    cJSON *s = cJSON_CreateObject();
    ok(plugin_timeout_ms(s, PLUGIN_SUBMIT, &ms, &e) == 0 && ms == 300000, "submit defaults to 5 min");
    ok(plugin_timeout_ms(s, PLUGIN_POLL, &ms, &e) == 0 && ms == 60000, "poll to 60 s");
    ok(plugin_timeout_ms(s, PLUGIN_CANCEL, &ms, &e) == 0 && ms == 120000, "cancel to 2 min");
    ok(plugin_timeout_ms(s, PLUGIN_VALIDATE, &ms, &e) == 0 && ms == 30000, "validate to 30 s");
    cJSON_AddNumberToObject(s, "plugin_timeout", 2.5);
    ok(plugin_timeout_ms(s, PLUGIN_SUBMIT, &ms, &e) == 0 && ms == 2500, "a number applies to all operations");
    cJSON_DeleteItemFromObject(s, "plugin_timeout");
    cJSON *o = cJSON_AddObjectToObject(s, "plugin_timeout");
    cJSON_AddNumberToObject(o, "poll", 7);
    ok(plugin_timeout_ms(s, PLUGIN_POLL, &ms, &e) == 0 && ms == 7000, "an object by operation");
    ok(plugin_timeout_ms(s, PLUGIN_SUBMIT, &ms, &e) == 0 && ms == 300000, "the others keep their default");
    cJSON_AddNumberToObject(o, "pol", 7);
    ok(plugin_timeout_ms(s, PLUGIN_POLL, &ms, &e) < 0 && strstr(e.msg, "plugin_timeout.pol: not an operation"),
       "an unknown operation key");
    cJSON_DeleteItemFromObject(s, "plugin_timeout");
    cJSON_AddNumberToObject(s, "plugin_timeout", 0);
    ok(plugin_timeout_ms(s, PLUGIN_POLL, &ms, &e) < 0, "zero is refused");
    cJSON_Delete(s);
}

static void requests(void)
{
    struct manifest m;
    struct err e = { 0 };
    const char *text = "{\"api_version\": \"stepop/v1\", \"run_id\": \"r1\", \"run_uri\": \"file:///s/runs/r1/\", \"step\": \"s\", "
                       "\"command\": [\"true\"], \"env\": {\"A\": \"b\"}}";
    if (manifest_parse(text, strlen(text), 0, &m, &e) < 0) {
        ok(0, "manifest: %s", e.msg);
        return;
    }
    cJSON *settings = cJSON_Parse("{\"partition\": \"gpu\", \"plugin\": {\"name\": \"t\", \"path\": \"/x\"}, "
                                  "\"plugin_timeout\": 3}");
    struct job j = { .m = &m, .manifest_uri = "file:///s/runs/r1/manifest.json", .settings = settings,
                     .stepop_path = "/usr/bin/stepop", .attempt = 1 };
    cJSON *r = plugin_request(PLUGIN_SUBMIT, "t", settings, &j, NULL, 5000, j.stepop_path);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "settings");
    ok(cJSON_GetObjectItemCaseSensitive(r, "protocol_version")->valueint == 1, "protocol_version 1");
    is_str(json_str(r, "operation"), "submit", "operation");
    is_str(json_str(r, "plugin"), "t", "plugin name");
    is_str(json_str(r, "run_id"), "r1", "run_id");
    is_str(json_str(r, "manifest_uri"), "file:///s/runs/r1/manifest.json", "manifest_uri");
    is_str(json_str(r, "stepop"), "/usr/bin/stepop", "stepop path");
    ok(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "manifest")), "the manifest");
    is_int(cJSON_GetObjectItemCaseSensitive(r, "grace_period_ms")->valueint, 5000, "grace_period_ms");
    is_int(cJSON_GetObjectItemCaseSensitive(r, "attempt")->valueint, 1, "attempt");
    ok(json_str(s, "partition") && !cJSON_GetObjectItemCaseSensitive(s, "plugin") &&
           !cJSON_GetObjectItemCaseSensitive(s, "plugin_timeout"),
       "settings pass through without stepop's own plugin keys");
    ok(!cJSON_GetObjectItemCaseSensitive(r, "handle"), "no handle before submit");
    is_str(json_str(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "manifest"), "env"), "A"), "b",
           "the manifest as stored (its env)");
    cJSON_Delete(r);
    cJSON *h = cJSON_Parse("{\"job\": \"42\", \"run_id\": \"r1\", \"run_uri\": \"file:///s/runs/r1/\"}");
    r = plugin_request(PLUGIN_CANCEL, "t", settings, NULL, h, 0, "/usr/bin/stepop");
    is_str(json_str(r, "run_id"), "r1", "cancel: run_id from the handle");
    is_str(json_str(cJSON_GetObjectItemCaseSensitive(r, "handle"), "job"), "42", "cancel: the handle");
    ok(!cJSON_GetObjectItemCaseSensitive(r, "manifest"), "cancel: no manifest");
    is_int(cJSON_GetObjectItemCaseSensitive(r, "grace_period_ms")->valueint, 0, "cancel: grace 0");
    cJSON_Delete(r);
    cJSON_Delete(h);
    cJSON_Delete(settings);
    manifest_free(&m);
}

static void resolution(void)
{
    struct err e = { 0 };
    struct config cfg = { .operators = cJSON_Parse("{\"hpc\": {\"flavor\": \"custom\", \"settings\": "
                                                   "{\"plugin\": \"/bin/true\"}}}") };
    cJSON *s = cJSON_Parse("{\"plugin\": {\"name\": \"custom\", \"path\": \"/bin/sh\", \"setting\": \"/bin/true\"}}");
    ok(plugin_flavor_find("custom", s, &cfg, "hpc", 1, &e) == &flavor_plugin_ops, "re-attach: the operator names it");
    is_str(json_str(cJSON_GetObjectItemCaseSensitive(s, "plugin"), "path"), "/bin/true",
           "the path is resolved again, not taken from the store");
    cJSON_Delete(s);
    s = cJSON_Parse("{\"plugin\": {\"name\": \"custom\", \"path\": \"/bin/rm\", \"setting\": \"/bin/rm\"}}");
    ok(!plugin_flavor_find("custom", s, &cfg, "hpc", 1, &e) && e.kind == ERR_REFUSED, "re-attach: another program");
    cJSON_Delete(s);
    s = cJSON_Parse("{\"plugin\": \"/bin/true\"}");
    memset(&e, 0, sizeof e);
    ok(plugin_flavor_find("custom", s, NULL, NULL, 0, &e) == &flavor_plugin_ops, "submit: the plugin setting");
    cJSON_Delete(s);
    s = cJSON_CreateObject();
    ok(!plugin_flavor_find("Bad/Name", s, NULL, NULL, 0, &e) && e.kind == ERR_USAGE, "a name that is not a plugin's");
    ok(plugin_flavor_find("local", s, NULL, NULL, 0, &e) == &flavor_local_ops, "built-ins first");
    ok(!plugin_flavor_find("custom", s, NULL, NULL, 0, &e) && strstr(e.msg, "needs the plugin setting"),
       "custom without the setting");
    cJSON_Delete(s);
    cJSON_Delete(cfg.operators);
}

int main(void)
{
    answers();
    states();
    timeouts();
    requests();
    resolution();
    return tap_done();
}
