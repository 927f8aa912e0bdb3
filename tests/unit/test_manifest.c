#include "../../runtime/jsonutil.h"
#include "../../runtime/manifest.h"
#include "tap.h"

#include <stdlib.h>
#include <unistd.h>

#define HEAD "\"api_version\":\"stepop/v1\",\"run_id\":\"r1\",\"run_uri\":\"file:///tmp/runs/r1/\""

static void bad(const char *body, const char *want)
{
    char text[4096];
    snprintf(text, sizeof text, "{" HEAD "%s%s}", *body ? "," : "", body);
    struct manifest m;
    struct err e = { 0 };
    int rc = manifest_parse(text, strlen(text), 1, &m, &e);
    ok(rc < 0 && strstr(e.msg, want), "refused %s: \"%s\"", body, e.msg);
    if (rc < 0 && !strstr(e.msg, want))
        printf("#   want a message containing: %s\n", want);
    manifest_free(&m);
}

int main(void)
{
    const char *full = "{" HEAD ",\"step\":\"train\",\"image\":\"repo/img:1\",\"command\":[\"python\",\"train.py\",\"--lr\",\"0.1\"],"
                       "\"workdir\":\"/work\",\"env\":{\"A\":\"1\",\"B_2\":\"x y\"},"
                       "\"inputs\":[{\"name\":\"data\",\"uri\":\"http://h/data.tar.zst\",\"unpack\":true,"
                       "\"sha256\":\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"},"
                       "{\"name\":\"cfg.json\",\"uri\":\"file:///etc/cfg.json\",\"path\":\"conf/cfg.json\"}],"
                       "\"outputs\":[{\"name\":\"model\",\"path\":\"out/model\"},"
                       "{\"name\":\"metrics\",\"path\":\"m.json\",\"format\":\"file\",\"optional\":true},"
                       "{\"name\":\"ckpt\",\"path\":\"ckpt\",\"format\":\"tar.gz\",\"uri\":\"https://h/c.tgz\"}],"
                       "\"resources\":{\"cpu\":\"500m\",\"memory\":\"8GiB\",\"gpus\":2},"
                       "\"gpu\":{\"required\":true,\"min_devices\":2,\"min_compute_capability\":\"8.0\","
                       "\"min_memory\":\"40GiB\",\"smoke\":\"quick\"},"
                       "\"timeout\":\"2h\",\"grace_period\":\"45s\",\"heartbeat\":\"5s\"}";
    struct manifest m;
    struct err e = { 0 };
    int rc = manifest_parse(full, strlen(full), 1, &m, &e);
    ok(rc == 0, "full manifest parses (%s)", rc ? e.msg : "ok");
    is_int(m.argc, 4, "argv has 4 words");
    is_str(m.argv[3], "0.1", "argv kept verbatim");
    ok(m.argv[4] == NULL, "argv is NULL-terminated");
    is_int(m.env_count, 2, "two env variables");
    is_str(m.env_values[1], "x y", "env value kept");
    is_int(m.input_count, 2, "two inputs");
    is_str(m.inputs[0].path, "data", "input path defaults to its name");
    is_str(m.inputs[0].sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "sha256 lower-cased");
    ok(m.inputs[0].unpack && !m.inputs[1].unpack, "unpack flags");
    is_int(m.outputs[0].format, PACK_TAR_ZST, "output format defaults to tar.zst");
    is_str(m.outputs[0].uri, "file:///tmp/runs/r1/outputs/model.tar.zst", "default output URI under the run");
    is_str(m.outputs[1].uri, "file:///tmp/runs/r1/outputs/metrics", "file output has no suffix");
    is_str(m.outputs[2].uri, "https://h/c.tgz", "explicit output URI kept");
    ok(m.outputs[1].optional, "optional output");
    ok(m.cpu > 0.49 && m.cpu < 0.51, "cpu 500m = 0.5");
    is_int(m.memory, 8LL << 30, "memory 8GiB");
    is_int(m.gpus, 2, "gpus");
    ok(m.gpu_required && m.gpu_min_devices == 2 && m.gpu_min_cc_major == 8 && m.gpu_min_cc_minor == 0, "gpu block");
    is_int(m.gpu_min_memory, 40LL << 30, "gpu min_memory");
    is_int(m.gpu_smoke, MANIFEST_SMOKE_QUICK, "gpu smoke quick");
    is_int(m.timeout_ms, 7200000, "timeout 2h");
    is_int(m.grace_ms, 45000, "grace 45s");
    is_int(m.heartbeat_ms, 5000, "heartbeat 5s");

    cJSON *j = manifest_to_json(&m);
    char *text = json_print(j, 0);
    struct manifest m2;
    rc = manifest_parse(text, strlen(text), 1, &m2, &e);
    ok(rc == 0, "written manifest parses again (%s)", rc ? e.msg : "ok");
    if (rc == 0) {
        is_str(m2.outputs[0].uri, m.outputs[0].uri, "round trip keeps output URIs");
        is_int(m2.memory, m.memory, "round trip keeps memory");
        is_int(m2.gpu_min_memory, m.gpu_min_memory, "round trip keeps gpu memory");
        is_int(m2.timeout_ms, m.timeout_ms, "round trip keeps timeout");
        is_str(m2.inputs[0].sha256, m.inputs[0].sha256, "round trip keeps sha256");
    }
    manifest_free(&m2);
    cJSON_free(text);
    cJSON_Delete(j);
    manifest_free(&m);

    const char *minimal = "{" HEAD ",\"command\":[\"true\"]}";
    rc = manifest_parse(minimal, strlen(minimal), 1, &m, &e);
    ok(rc == 0, "minimal manifest parses");
    is_int(m.grace_ms, 30000, "grace defaults to 30s");
    is_int(m.heartbeat_ms, 10000, "heartbeat defaults to 10s");
    is_int(m.timeout_ms, 0, "no timeout by default");
    ok(m.workdir == NULL && !m.gpu_required && m.gpu_min_devices == 1, "other defaults");
    manifest_free(&m);

    const char *cc = "{" HEAD ",\"command\":[\"x\"],\"gpu\":{\"min_compute_capability\":8.6}}";
    ok(manifest_parse(cc, strlen(cc), 1, &m, &e) == 0 && m.gpu_min_cc_major == 8 && m.gpu_min_cc_minor == 6,
       "compute capability as a number");
    manifest_free(&m);
    cc = "{" HEAD ",\"command\":[\"x\"],\"gpu\":{\"min_compute_capability\":\"10.0\"}}";
    ok(manifest_parse(cc, strlen(cc), 1, &m, &e) == 0 && m.gpu_min_cc_major == 10 && m.gpu_min_cc_minor == 0,
       "compute capability with two digits");
    manifest_free(&m);
    const char *dots = "{" HEAD ",\"command\":[\"x\"],\"inputs\":[{\"name\":\"a.b\",\"uri\":\"http://h/a\"},"
                       "{\"name\":\"...\",\"uri\":\"http://h/b\"}]}";
    ok(manifest_parse(dots, strlen(dots), 1, &m, &e) == 0, "names with dots that are not . or .. are accepted");
    manifest_free(&m);

    rc = manifest_parse(minimal, strlen(minimal), 1, &m, &e);
    is_int(m.fetch_timeout_ms, 6LL * 3600 * 1000, "fetch_timeout defaults to 6h");
    is_int(m.upload_timeout_ms, 6LL * 3600 * 1000, "upload_timeout defaults to 6h");
    ok(m.env_drop_count == 0 && !manifest_env_dropped(&m, "AWS_SECRET_ACCESS_KEY=x"), "nothing dropped by default");
    manifest_free(&m);
    const char *drop = "{" HEAD ",\"command\":[\"x\"],\"env_drop\":[\"AWS_*\",\"STEPOP_HTTP_BEARER_TOKEN\"],"
                       "\"fetch_timeout\":\"90s\",\"upload_timeout\":\"1h30m\"}";
    rc = manifest_parse(drop, strlen(drop), 1, &m, &e);
    ok(rc == 0, "env_drop and transfer timeouts parse (%s)", rc ? e.msg : "ok");
    is_int(m.fetch_timeout_ms, 90000, "fetch_timeout 90s");
    is_int(m.upload_timeout_ms, 5400000, "upload_timeout 1h30m");
    ok(manifest_env_dropped(&m, "AWS_SECRET_ACCESS_KEY=s") && manifest_env_dropped(&m, "AWS_=x"), "a prefix drops its variables");
    ok(manifest_env_dropped(&m, "STEPOP_HTTP_BEARER_TOKEN=t"), "a name drops its variable");
    ok(!manifest_env_dropped(&m, "STEPOP_HTTP_BEARER_TOKEN_FILE=f") && !manifest_env_dropped(&m, "STEPOP_HTTP_BEARER=t"),
       "a name drops only that exact name");
    ok(!manifest_env_dropped(&m, "MY_AWS_KEY=x") && !manifest_env_dropped(&m, "AWS=x"), "a prefix matches at the start only");
    cJSON *dj = manifest_to_json(&m);
    char *dtext = json_print(dj, 0);
    struct manifest m3;
    rc = manifest_parse(dtext, strlen(dtext), 1, &m3, &e);
    ok(rc == 0 && m3.env_drop_count == 2 && strcmp(m3.env_drop[0], "AWS_*") == 0 && m3.fetch_timeout_ms == 90000 &&
           m3.upload_timeout_ms == 5400000,
       "round trip keeps env_drop and the transfer timeouts");
    manifest_free(&m3);
    cJSON_free(dtext);
    cJSON_Delete(dj);
    manifest_free(&m);
    rc = manifest_parse(minimal, strlen(minimal), 1, &m, &e);
    dj = manifest_to_json(&m);
    ok(!cJSON_GetObjectItem(dj, "fetch_timeout") && !cJSON_GetObjectItem(dj, "upload_timeout") &&
           !cJSON_GetObjectItem(dj, "env_drop"),
       "the newer fields are written only when set (an older stepop run refuses unknown fields)");
    cJSON_Delete(dj);
    manifest_free(&m);
    const char *all = "{" HEAD ",\"command\":[\"x\"],\"env_drop\":[\"*\"]}";
    ok(manifest_parse(all, strlen(all), 1, &m, &e) == 0 && manifest_env_dropped(&m, "PATH=/bin"), "\"*\" drops everything");
    manifest_free(&m);

    char file[] = "/tmp/test_manifest_XXXXXX";
    int fd = mkstemp(file);
    const char *twice = "{\"flavor\":\"local\",\"resources\":{\"cpu\":1},\"flavor\":\"docker\"}";
    ok(fd >= 0 && write(fd, twice, strlen(twice)) == (ssize_t)strlen(twice), "wrote a JSON file");
    close(fd);
    cJSON *doc = NULL;
    ok(json_read_file(file, &doc, &e) < 0 && doc == NULL && strstr(e.msg, "flavor: duplicate field") &&
           strstr(e.msg, file),
       "json_read_file (STEP.json, config files) refuses duplicate keys: %s", e.msg);
    unlink(file);

    const char *nocmd = "{" HEAD "}";
    ok(manifest_parse(nocmd, strlen(nocmd), 0, &m, &e) == 0 && m.argv == NULL, "command optional when not required");
    manifest_free(&m);

    bad("", "command: required field is missing");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\"a\",\"uri\":\"http://h/a\"},{\"name\":\"b\",\"uri\":\"http://h/b\"},"
        "{\"name\":\"c\",\"uri\":\"ftp://h/c\"}]",
        "inputs[2].uri: unsupported scheme \"ftp\"");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\"a\",\"uri\":\"http://h/a\",\"shaa256\":\"x\"}]",
        "inputs[0].shaa256: unknown field (did you mean \"sha256\"?)");
    bad("\"command\":[\"x\"],\"comand\":[\"y\"]", "comand: unknown field (did you mean \"command\"?)");
    bad("\"command\":[\"x\"],\"colour\":1", "colour: unknown field");
    bad("\"command\":\"echo hi\"", "command: expected an array of strings (argv), got a string");
    bad("\"command\":[]", "command: must not be empty");
    bad("\"command\":[\"x\", 3]", "command[1]: expected a string, got a number");
    bad("\"command\":[\"x\"],\"timeout\":90", "timeout: expected a duration string");
    bad("\"command\":[\"x\"],\"timeout\":\"90\"", "timeout: invalid duration \"90\": missing or unknown unit");
    bad("\"command\":[\"x\"],\"resources\":{\"memory\":\"8 gigs\"}", "resources.memory: invalid size");
    bad("\"command\":[\"x\"],\"resources\":{\"cpu\":-1}", "resources.cpu: must be greater than 0");
    bad("\"command\":[\"x\"],\"resources\":{\"gpus\":1.5}", "resources.gpus: expected a whole number");
    bad("\"command\":[\"x\"],\"outputs\":[{\"name\":\"m\",\"path\":\"m\",\"format\":\"zip\"}]",
        "outputs[0].format: \"zip\" is not one of file, tar, tar.gz, tar.zst");
    bad("\"command\":[\"x\"],\"outputs\":[{\"name\":\"m\"}]", "outputs[0].path: required field is missing");
    bad("\"command\":[\"x\"],\"outputs\":[{\"name\":\"a-b\",\"path\":\"x\"},{\"name\":\"a_b\",\"path\":\"y\"}]",
        "outputs[1].name: \"a_b\" clashes with outputs[0]");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\"../x\",\"uri\":\"http://h/a\"}]", "inputs[0].name: \"../x\" must be");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\"a\",\"uri\":\"http://h/a\",\"sha256\":\"abc\"}]",
        "inputs[0].sha256: expected 64 hexadecimal digits");
    bad("\"command\":[\"x\"],\"env\":{\"1BAD\":\"x\"}", "env.1BAD: not a valid variable name");
    bad("\"command\":[\"x\"],\"env\":{\"A\":1}", "env.A: expected a string, got a number");
    bad("\"command\":[\"x\"],\"gpu\":{\"min_compute_capability\":\"eight\"}", "gpu.min_compute_capability");
    bad("\"command\":[\"x\"],\"gpu\":{\"smoke\":\"full\"}", "gpu.smoke: expected \"none\" or \"quick\"");
    bad("\"command\":[\"x\"],\"gpu\":{\"required\":\"yes\"}", "gpu.required: expected true or false, got a string");
    bad("\"command\":[\"x\"],\"heartbeat\":\"100ms\"", "heartbeat: must be at least 1s");
    bad("\"command\":[\"x\"],\"run_id\":\"r2\"", "run_id: duplicate field");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\"a\",\"uri\":\"http://h/a\"},"
        "{\"name\":\"b\",\"uri\":\"http://h/b\",\"uri\":\"http://h/c\"}]",
        "inputs[1].uri: duplicate field");
    bad("\"command\":[\"x\"],\"env\":{\"A\":\"1\",\"B\":\"2\",\"A\":\"3\"}", "env.A: duplicate field");
    bad("\"command\":[\"x\"],\"gpu\":{\"required\":true,\"required\":false}", "gpu.required: duplicate field");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\"..\",\"uri\":\"http://h/a\"}]", "inputs[0].name: \"..\" must be");
    bad("\"command\":[\"x\"],\"inputs\":[{\"name\":\".\",\"uri\":\"http://h/a\"}]", "inputs[0].name: \".\" must be");
    bad("\"command\":[\"x\"],\"outputs\":[{\"name\":\"..\",\"path\":\"x\"}]", "outputs[0].name: \"..\" must be");
    bad("\"command\":[\"x\"],\"outputs\":[{\"name\":\".\",\"path\":\"x\"}]", "outputs[0].name: \".\" must be");
    bad("\"command\":[\"x\"],\"gpu\":{\"min_compute_capability\":\"99999999999999999999.0\"}",
        "gpu.min_compute_capability: \"99999999999999999999.0\" is not");
    bad("\"command\":[\"x\"],\"gpu\":{\"min_compute_capability\":1e300}", "gpu.min_compute_capability: 1e+300 is not");
    bad("\"command\":[\"x\"],\"gpu\":{\"min_compute_capability\":\"0.5\"}", "gpu.min_compute_capability: \"0.5\" is not");
    bad("\"command\":[\"x\"],\"gpu\":{\"min_devices\":9007199254740993}", "gpu.min_devices: expected a whole number");
    bad("\"command\":[\"x\"],\"resources\":{\"gpus\":1e300}", "resources.gpus: expected a whole number");
    bad("\"command\":[\"x\"],\"env_drop\":\"AWS_*\"", "env_drop: expected an array");
    bad("\"command\":[\"x\"],\"env_drop\":[\"A\",3]", "env_drop[1]: expected a string, got a number");
    bad("\"command\":[\"x\"],\"env_drop\":[\"A*B\"]", "env_drop[0]: \"A*B\" is not a variable name or a prefix");
    bad("\"command\":[\"x\"],\"env_drop\":[\"\"]", "env_drop[0]: \"\" is not");
    bad("\"command\":[\"x\"],\"env_drop\":[\"1X*\"]", "env_drop[0]: \"1X*\" is not");
    bad("\"command\":[\"x\"],\"fetch_timeout\":\"0s\"", "fetch_timeout: must be longer than 0s");
    bad("\"command\":[\"x\"],\"upload_timeout\":90", "upload_timeout: expected a duration string");
    bad("\"command\":[\"x\"],\"fetch_timeoutt\":\"1h\"", "fetch_timeoutt: unknown field (did you mean \"fetch_timeout\"?)");

    const char *wrong_version = "{\"api_version\":\"stepop/v2\",\"run_id\":\"r\",\"run_uri\":\"file:///x/\"}";
    ok(manifest_parse(wrong_version, strlen(wrong_version), 0, &m, &e) < 0 && strstr(e.msg, "api_version: \"stepop/v2\""),
       "unknown api_version refused: %s", e.msg);
    manifest_free(&m);
    const char *no_slash = "{\"api_version\":\"stepop/v1\",\"run_id\":\"r\",\"run_uri\":\"file:///x\"}";
    ok(manifest_parse(no_slash, strlen(no_slash), 0, &m, &e) < 0 && strstr(e.msg, "run_uri: must end in '/'"),
       "run_uri without a trailing slash refused");
    manifest_free(&m);
    const char *userinfo = "{\"api_version\":\"stepop/v1\",\"run_id\":\"r\",\"run_uri\":\"https://u:pw@h/runs/r/\"}";
    ok(manifest_parse(userinfo, strlen(userinfo), 0, &m, &e) < 0 && strstr(e.msg, "run_uri: the store URI holds a credential") &&
           !strstr(e.msg, "pw"),
       "a run_uri with user:password is refused, without echoing it: %s", e.msg);
    manifest_free(&m);
    const char *no_id = "{\"api_version\":\"stepop/v1\",\"run_uri\":\"file:///x/\"}";
    ok(manifest_parse(no_id, strlen(no_id), 0, &m, &e) < 0 && strstr(e.msg, "run_id: required field is missing"),
       "missing run_id refused");
    manifest_free(&m);
    const char *broken = "{\"api_version\":\n\"stepop/v1\",,}";
    ok(manifest_parse(broken, strlen(broken), 0, &m, &e) < 0 && strstr(e.msg, "invalid JSON near line 2"),
       "syntax error gives the line: %s", e.msg);
    manifest_free(&m);

    char *env = manifest_env_name("STEPOP_INPUT_", "my-data.v2");
    is_str(env, "STEPOP_INPUT_MY_DATA_V2", "input variable name");
    free(env);

    char id1[27], id2[27];
    manifest_new_run_id(id1);
    manifest_new_run_id(id2);
    ok(strlen(id1) == 26 && strcmp(id1, id2) != 0, "run ids are 26 characters and distinct");
    ok(strncmp(id1, id2, 8) <= 0, "run ids sort by time");
    return tap_done();
}
