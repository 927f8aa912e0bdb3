#include "manifest.h"

#include "jsonutil.h"
#include "units.h"
#include "uri.h"
#include "util.h"

#include "../artifacts/store.h"

#include <ctype.h>
#include <math.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

/* Levenshtein distance, for "did you mean" on unknown fields. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int check_fields(const cJSON *obj, const char *path, const char *const *known, struct err *e)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        const char *closest = NULL;
        size_t best = 3;
        for (const char *const *k = known; *k; k++) {
            if (strcmp(*k, it->string) == 0)
                ok = 1;
            size_t d = edit_distance(*k, it->string);
            if (d < best) {
                best = d;
                closest = *k;
            }
        }
        if (!ok) {
            if (closest)
                return err_set(e, ERR_INVALID, "%s%s%s: unknown field (did you mean \"%s\"?)", path, *path ? "." : "",
                               it->string, closest);
            return err_set(e, ERR_INVALID, "%s%s%s: unknown field", path, *path ? "." : "", it->string);
        }
    }
    return 0;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "null";
}

/* Optional string member; *out stays NULL when absent. */
static int get_string(const cJSON *obj, const char *key, const char *path, char **out, int required, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required)
            return err_set(e, ERR_INVALID, "%s%s%s: required field is missing", path, *path ? "." : "", key);
        return 0;
    }
    if (!cJSON_IsString(v))
        return err_set(e, ERR_INVALID, "%s%s%s: expected a string, got %s", path, *path ? "." : "", key, type_name(v));
    if (required && !*v->valuestring)
        return err_set(e, ERR_INVALID, "%s%s%s: must not be empty", path, *path ? "." : "", key);
    *out = xstrdup(v->valuestring);
    return 0;
}

static int get_bool(const cJSON *obj, const char *key, const char *path, int *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return err_set(e, ERR_INVALID, "%s%s%s: expected true or false, got %s", path, *path ? "." : "", key,
                       type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_int(const cJSON *obj, const char *key, const char *path, long min, long max, int *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min || v->valuedouble > max)
        return err_set(e, ERR_INVALID, "%s%s%s: expected a whole number from %ld to %ld", path, *path ? "." : "", key,
                       min, max);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_duration(const cJSON *obj, const char *key, int64_t *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return err_set(e, ERR_INVALID, "%s: expected a duration string like \"90s\", \"15m\" or \"2h\", got %s", key,
                       type_name(v));
    if (units_parse_duration(v->valuestring, out, e) < 0)
        return err_prefix(e, "%s: ", key);
    return 0;
}

static int get_size(const cJSON *obj, const char *key, const char *path, int64_t *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return err_set(e, ERR_INVALID, "%s.%s: expected a size string like \"512MiB\" or \"40GiB\", got %s", path, key,
                       type_name(v));
    if (units_parse_size(v->valuestring, out, e) < 0)
        return err_prefix(e, "%s.%s: ", path, key);
    return 0;
}

/* Names become paths (an input's default path, an output's object name, the run's prefix), so
 * "." and ".." are refused: an input named ".." would land in the work directory's parent. */
#define NAME_RULE "1-128 letters, digits, '_', '-' or '.', and not \".\" or \"..\""

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return 0;
    return 1;
}

static int valid_env_name(const char *s)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

static int check_uri(const char *path, const char *uri, struct err *e)
{
    if (store_check_uri(uri, e) < 0)
        return err_prefix(e, "%s: ", path);
    return 0;
}

char *manifest_env_name(const char *prefix, const char *name)
{
    char *s = xasprintf("%s%s", prefix, name);
    for (char *p = s + strlen(prefix); *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    return s;
}

static int parse_command(const cJSON *root, struct manifest *m, struct err *e)
{
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "command");
    if (!cmd)
        return 0;
    if (!cJSON_IsArray(cmd))
        return err_set(e, ERR_INVALID, "command: expected an array of strings (argv), got %s", type_name(cmd));
    int n = cJSON_GetArraySize(cmd);
    if (n == 0)
        return err_set(e, ERR_INVALID, "command: must not be empty");
    m->argv = xcalloc((size_t)n + 1, sizeof *m->argv);
    int i = 0;
    for (const cJSON *it = cmd->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it))
            return err_set(e, ERR_INVALID, "command[%d]: expected a string, got %s", i, type_name(it));
        if (i == 0 && !*it->valuestring)
            return err_set(e, ERR_INVALID, "command[0]: the program must not be empty");
        m->argv[i] = xstrdup(it->valuestring);
        m->argc = i + 1;
    }
    return 0;
}

static int parse_env(const cJSON *root, struct manifest *m, struct err *e)
{
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(root, "env");
    if (!env)
        return 0;
    if (!cJSON_IsObject(env))
        return err_set(e, ERR_INVALID, "env: expected an object of strings, got %s", type_name(env));
    int n = cJSON_GetArraySize(env);
    m->env_names = xcalloc((size_t)n + 1, sizeof *m->env_names);
    m->env_values = xcalloc((size_t)n + 1, sizeof *m->env_values);
    for (const cJSON *it = env->child; it; it = it->next) {
        if (!valid_env_name(it->string))
            return err_set(e, ERR_INVALID, "env.%s: not a valid variable name (letters, digits, _; not starting with a digit)",
                           it->string);
        if (!cJSON_IsString(it))
            return err_set(e, ERR_INVALID, "env.%s: expected a string, got %s", it->string, type_name(it));
        m->env_names[m->env_count] = xstrdup(it->string);
        m->env_values[m->env_count] = xstrdup(it->valuestring);
        m->env_count++;
    }
    return 0;
}

/* NAME, or a prefix ending in '*' ("AWS_*"; "*" alone drops everything). */
static int valid_env_pattern(const char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '*') {
        if (n == 1)
            return 1;
        char *name = xstrndup(s, n - 1);
        int ok = valid_env_name(name);
        free(name);
        return ok;
    }
    return valid_env_name(s);
}

static int parse_env_drop(const cJSON *root, struct manifest *m, struct err *e)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "env_drop");
    if (!arr)
        return 0;
    if (!cJSON_IsArray(arr))
        return err_set(e, ERR_INVALID, "env_drop: expected an array of variable names or prefixes like \"AWS_*\", got %s",
                       type_name(arr));
    m->env_drop = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *m->env_drop);
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it))
            return err_set(e, ERR_INVALID, "env_drop[%d]: expected a string, got %s", i, type_name(it));
        if (!valid_env_pattern(it->valuestring))
            return err_set(e, ERR_INVALID, "env_drop[%d]: \"%s\" is not a variable name or a prefix ending in '*'", i,
                           it->valuestring);
        m->env_drop[m->env_drop_count++] = xstrdup(it->valuestring);
    }
    return 0;
}

int manifest_env_dropped(const struct manifest *m, const char *entry)
{
    size_t len = strcspn(entry, "=");
    for (int i = 0; i < m->env_drop_count; i++) {
        const char *p = m->env_drop[i];
        size_t n = strlen(p);
        int prefix = n && p[n - 1] == '*';
        if (prefix && len >= n - 1 && strncmp(entry, p, n - 1) == 0)
            return 1;
        if (!prefix && len == n && strncmp(entry, p, n) == 0)
            return 1;
    }
    return 0;
}

static int valid_sha256(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return 0;
    return 1;
}

static int parse_inputs(const cJSON *root, struct manifest *m, struct err *e)
{
    static const char *const known[] = { "name", "uri", "path", "unpack", "sha256", NULL };
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!arr)
        return 0;
    if (!cJSON_IsArray(arr))
        return err_set(e, ERR_INVALID, "inputs: expected an array, got %s", type_name(arr));
    int n = cJSON_GetArraySize(arr);
    m->inputs = xcalloc((size_t)n + 1, sizeof *m->inputs);
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "inputs[%d]", i);
        struct manifest_input *in = &m->inputs[i];
        m->input_count = i + 1;
        if (!cJSON_IsObject(it))
            return err_set(e, ERR_INVALID, "%s: expected an object, got %s", path, type_name(it));
        char *sha = NULL;
        if (check_fields(it, path, known, e) < 0 || get_string(it, "name", path, &in->name, 1, e) < 0 ||
            get_string(it, "uri", path, &in->uri, 1, e) < 0 || get_string(it, "path", path, &in->path, 0, e) < 0 ||
            get_bool(it, "unpack", path, &in->unpack, e) < 0 || get_string(it, "sha256", path, &sha, 0, e) < 0)
            return -1;
        in->sha256 = sha;
        if (!valid_name(in->name))
            return err_set(e, ERR_INVALID, "%s.name: \"%s\" must be " NAME_RULE, path, in->name);
        char uri_path[48];
        snprintf(uri_path, sizeof uri_path, "%s.uri", path);
        if (check_uri(uri_path, in->uri, e) < 0)
            return -1;
        if (in->path && !*in->path)
            return err_set(e, ERR_INVALID, "%s.path: must not be empty", path);
        if (!in->path)
            in->path = xstrdup(in->name);
        if (in->sha256) {
            if (!valid_sha256(in->sha256))
                return err_set(e, ERR_INVALID, "%s.sha256: expected 64 hexadecimal digits", path);
            for (char *p = in->sha256; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        for (int j = 0; j < i; j++) {
            char *a = manifest_env_name("", m->inputs[j].name), *b = manifest_env_name("", in->name);
            int clash = strcmp(a, b) == 0;
            free(a);
            free(b);
            if (clash)
                return err_set(e, ERR_INVALID, "%s.name: \"%s\" clashes with inputs[%d] (\"%s\")", path, in->name, j,
                               m->inputs[j].name);
        }
    }
    return 0;
}

static int parse_outputs(const cJSON *root, struct manifest *m, struct err *e)
{
    static const char *const known[] = { "name", "path", "format", "uri", "optional", NULL };
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!arr)
        return 0;
    if (!cJSON_IsArray(arr))
        return err_set(e, ERR_INVALID, "outputs: expected an array, got %s", type_name(arr));
    int n = cJSON_GetArraySize(arr);
    m->outputs = xcalloc((size_t)n + 1, sizeof *m->outputs);
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "outputs[%d]", i);
        struct manifest_output *out = &m->outputs[i];
        m->output_count = i + 1;
        out->format = PACK_TAR_ZST;
        if (!cJSON_IsObject(it))
            return err_set(e, ERR_INVALID, "%s: expected an object, got %s", path, type_name(it));
        char *format = NULL;
        int rc = 0;
        if (check_fields(it, path, known, e) < 0 || get_string(it, "name", path, &out->name, 1, e) < 0 ||
            get_string(it, "path", path, &out->path, 1, e) < 0 || get_string(it, "format", path, &format, 0, e) < 0 ||
            get_string(it, "uri", path, &out->uri, 0, e) < 0 || get_bool(it, "optional", path, &out->optional, e) < 0)
            rc = -1;
        if (rc == 0 && format && pack_format_parse(format, &out->format) < 0)
            rc = err_set(e, ERR_INVALID, "%s.format: \"%s\" is not one of file, tar, tar.gz, tar.zst", path, format);
        free(format);
        if (rc < 0)
            return -1;
        if (!valid_name(out->name))
            return err_set(e, ERR_INVALID, "%s.name: \"%s\" must be " NAME_RULE, path, out->name);
        if (out->uri) {
            char uri_path[48];
            snprintf(uri_path, sizeof uri_path, "%s.uri", path);
            if (check_uri(uri_path, out->uri, e) < 0)
                return -1;
        } else {
            out->uri = xasprintf("%soutputs/%s%s", m->run_uri, out->name, pack_format_ext(out->format));
        }
        for (int j = 0; j < i; j++) {
            char *a = manifest_env_name("", m->outputs[j].name), *b = manifest_env_name("", out->name);
            int clash = strcmp(a, b) == 0;
            free(a);
            free(b);
            if (clash)
                return err_set(e, ERR_INVALID, "%s.name: \"%s\" clashes with outputs[%d] (\"%s\")", path, out->name, j,
                               m->outputs[j].name);
        }
    }
    return 0;
}

/* Kubernetes-style CPU: 2, 0.5, "1.5", "500m". */
static int parse_cpu(const cJSON *v, double *out, struct err *e)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        char *end;
        double d = strtod(v->valuestring, &end);
        if (end == v->valuestring || (*end && strcmp(end, "m") != 0))
            return err_set(e, ERR_INVALID, "resources.cpu: \"%s\" is not a CPU count like 4, 0.5 or \"500m\"",
                           v->valuestring);
        *out = *end == 'm' ? d / 1000.0 : d;
    } else {
        return err_set(e, ERR_INVALID, "resources.cpu: expected a number or a string like \"500m\", got %s",
                       type_name(v));
    }
    if (!(*out > 0) || *out > 100000)
        return err_set(e, ERR_INVALID, "resources.cpu: must be greater than 0");
    return 0;
}

static int parse_resources(const cJSON *root, struct manifest *m, struct err *e)
{
    static const char *const known[] = { "cpu", "memory", "gpus", NULL };
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "resources");
    if (!r)
        return 0;
    if (!cJSON_IsObject(r))
        return err_set(e, ERR_INVALID, "resources: expected an object, got %s", type_name(r));
    if (check_fields(r, "resources", known, e) < 0)
        return -1;
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(r, "cpu");
    if (cpu && parse_cpu(cpu, &m->cpu, e) < 0)
        return -1;
    if (get_size(r, "memory", "resources", &m->memory, e) < 0)
        return -1;
    return get_int(r, "gpus", "resources", 0, 1024, &m->gpus, e);
}

static int parse_gpu(const cJSON *root, struct manifest *m, struct err *e)
{
    static const char *const known[] = { "required", "min_devices", "min_compute_capability", "min_memory", "smoke",
                                         NULL };
    m->gpu_min_devices = 1;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "gpu");
    if (!g)
        return 0;
    if (!cJSON_IsObject(g))
        return err_set(e, ERR_INVALID, "gpu: expected an object, got %s", type_name(g));
    if (check_fields(g, "gpu", known, e) < 0 || get_bool(g, "required", "gpu", &m->gpu_required, e) < 0 ||
        get_int(g, "min_devices", "gpu", 1, 1024, &m->gpu_min_devices, e) < 0 ||
        get_size(g, "min_memory", "gpu", &m->gpu_min_memory, e) < 0)
        return -1;
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(g, "min_compute_capability");
    if (cc) {
        char text[32];
        if (cJSON_IsString(cc))
            snprintf(text, sizeof text, "%s", cc->valuestring);
        else if (cJSON_IsNumber(cc) && cc->valuedouble >= 0 && cc->valuedouble < 1000)
            snprintf(text, sizeof text, "%.1f", cc->valuedouble);
        else if (cJSON_IsNumber(cc))
            return err_set(e, ERR_INVALID, "gpu.min_compute_capability: %g is not a compute capability like \"8.0\"",
                           cc->valuedouble);
        else
            return err_set(e, ERR_INVALID, "gpu.min_compute_capability: expected \"X.Y\", got %s", type_name(cc));
        /* Digits counted, not sscanf's %d: a major of 30 digits must be refused, not overflow. */
        size_t major_len = strspn(text, "0123456789");
        if (major_len < 1 || major_len > 3 || text[major_len] != '.' || !isdigit((unsigned char)text[major_len + 1]) ||
            text[major_len + 2] || atoi(text) < 1)
            return err_set(e, ERR_INVALID, "gpu.min_compute_capability: \"%s\" is not a compute capability like \"8.0\"",
                           text);
        m->gpu_min_cc_major = atoi(text);
        m->gpu_min_cc_minor = text[major_len + 1] - '0';
    }
    const cJSON *smoke = cJSON_GetObjectItemCaseSensitive(g, "smoke");
    if (smoke) {
        if (!cJSON_IsString(smoke) ||
            (strcmp(smoke->valuestring, "none") != 0 && strcmp(smoke->valuestring, "quick") != 0))
            return err_set(e, ERR_INVALID, "gpu.smoke: expected \"none\" or \"quick\"");
        m->gpu_smoke = strcmp(smoke->valuestring, "quick") == 0 ? MANIFEST_SMOKE_QUICK : MANIFEST_SMOKE_NONE;
    }
    return 0;
}

int manifest_from_json(const cJSON *root, int require_command, struct manifest *m, struct err *e)
{
    static const char *const known[] = { "api_version", "run_id", "step", "image", "command", "workdir", "env",
                                         "inputs", "outputs", "resources", "gpu", "timeout", "grace_period",
                                         "heartbeat", "run_uri", "env_drop", "fetch_timeout", "upload_timeout",
                                         NULL };
    memset(m, 0, sizeof *m);
    m->grace_ms = 30000;
    m->heartbeat_ms = 10000;
    m->fetch_timeout_ms = MANIFEST_DEFAULT_TRANSFER_TIMEOUT_MS;
    m->upload_timeout_ms = MANIFEST_DEFAULT_TRANSFER_TIMEOUT_MS;
    m->gpu_min_devices = 1;
    if (!cJSON_IsObject(root))
        return err_set(e, ERR_INVALID, "manifest: expected a JSON object");
    if (json_check_unique_keys(root, e) < 0)
        return -1;
    if (check_fields(root, "", known, e) < 0 || get_string(root, "api_version", "", &m->api_version, 1, e) < 0)
        return -1;
    if (strcmp(m->api_version, MANIFEST_API_VERSION) != 0)
        return err_set(e, ERR_INVALID, "api_version: \"%s\" is not supported (expected \"%s\")", m->api_version,
                       MANIFEST_API_VERSION);
    if (get_string(root, "run_id", "", &m->run_id, 1, e) < 0 || get_string(root, "run_uri", "", &m->run_uri, 1, e) < 0 ||
        get_string(root, "step", "", &m->step, 0, e) < 0 || get_string(root, "image", "", &m->image, 0, e) < 0 ||
        get_string(root, "workdir", "", &m->workdir, 0, e) < 0)
        return -1;
    if (!valid_name(m->run_id))
        return err_set(e, ERR_INVALID, "run_id: \"%s\" must be " NAME_RULE, m->run_id);
    if (check_uri("run_uri", m->run_uri, e) < 0)
        return -1;
    if (!str_has_suffix(m->run_uri, "/"))
        return err_set(e, ERR_INVALID, "run_uri: must end in '/' (it is a prefix)");
    /* The run prefix is written into the manifest, submission.json, status and the step's
     * environment (STEPOP_MANIFEST): it must not carry a credential. */
    char *clean = uri_redact_secrets(m->run_uri);
    int secret = strcmp(clean, m->run_uri) != 0;
    free(clean);
    if (secret)
        return err_set(e, ERR_INVALID, "run_uri: the store URI holds a credential (user:password@ or a signature "
                       "parameter), which would be written into the run's manifest and the step's environment: give "
                       "the store's credentials through the environment instead (STEPOP_HTTP_BEARER_TOKEN, AWS_*)");
    if (m->workdir && !*m->workdir)
        return err_set(e, ERR_INVALID, "workdir: must not be empty");
    if (parse_command(root, m, e) < 0 || parse_env(root, m, e) < 0 || parse_inputs(root, m, e) < 0 ||
        parse_outputs(root, m, e) < 0 || parse_resources(root, m, e) < 0 || parse_gpu(root, m, e) < 0 ||
        get_duration(root, "timeout", &m->timeout_ms, e) < 0 || get_duration(root, "grace_period", &m->grace_ms, e) < 0 ||
        get_duration(root, "heartbeat", &m->heartbeat_ms, e) < 0 || parse_env_drop(root, m, e) < 0 ||
        get_duration(root, "fetch_timeout", &m->fetch_timeout_ms, e) < 0 ||
        get_duration(root, "upload_timeout", &m->upload_timeout_ms, e) < 0)
        return -1;
    if (require_command && !m->argv)
        return err_set(e, ERR_INVALID, "command: required field is missing");
    if (m->heartbeat_ms < 1000)
        return err_set(e, ERR_INVALID, "heartbeat: must be at least 1s");
    if (m->fetch_timeout_ms <= 0)
        return err_set(e, ERR_INVALID, "fetch_timeout: must be longer than 0s");
    if (m->upload_timeout_ms <= 0)
        return err_set(e, ERR_INVALID, "upload_timeout: must be longer than 0s");
    return 0;
}

int manifest_parse(const char *text, size_t len, int require_command, struct manifest *m, struct err *e)
{
    cJSON *root;
    memset(m, 0, sizeof *m);
    if (json_parse(text, len, "manifest", &root, e) < 0)
        return -1;
    int rc = manifest_from_json(root, require_command, m, e);
    cJSON_Delete(root);
    return rc;
}

static void add_duration(cJSON *o, const char *key, int64_t ms)
{
    char buf[32];
    if (ms % 1000)
        snprintf(buf, sizeof buf, "%lldms", (long long)ms);
    else
        snprintf(buf, sizeof buf, "%llds", (long long)(ms / 1000));
    cJSON_AddStringToObject(o, key, buf);
}

cJSON *manifest_to_json(const struct manifest *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "api_version", MANIFEST_API_VERSION);
    cJSON_AddStringToObject(o, "run_id", m->run_id);
    cJSON_AddStringToObject(o, "run_uri", m->run_uri);
    if (m->step)
        cJSON_AddStringToObject(o, "step", m->step);
    if (m->image)
        cJSON_AddStringToObject(o, "image", m->image);
    if (m->argv) {
        cJSON *cmd = cJSON_AddArrayToObject(o, "command");
        for (int i = 0; i < m->argc; i++)
            cJSON_AddItemToArray(cmd, cJSON_CreateString(m->argv[i]));
    }
    if (m->workdir)
        cJSON_AddStringToObject(o, "workdir", m->workdir);
    cJSON *env = cJSON_AddObjectToObject(o, "env");
    for (int i = 0; i < m->env_count; i++)
        cJSON_AddStringToObject(env, m->env_names[i], m->env_values[i]);
    cJSON *ins = cJSON_AddArrayToObject(o, "inputs");
    for (int i = 0; i < m->input_count; i++) {
        const struct manifest_input *in = &m->inputs[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", in->name);
        cJSON_AddStringToObject(x, "uri", in->uri);
        cJSON_AddStringToObject(x, "path", in->path);
        cJSON_AddBoolToObject(x, "unpack", in->unpack);
        if (in->sha256)
            cJSON_AddStringToObject(x, "sha256", in->sha256);
        cJSON_AddItemToArray(ins, x);
    }
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
    for (int i = 0; i < m->output_count; i++) {
        const struct manifest_output *out = &m->outputs[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", out->name);
        cJSON_AddStringToObject(x, "path", out->path);
        cJSON_AddStringToObject(x, "format", pack_format_name(out->format));
        cJSON_AddStringToObject(x, "uri", out->uri);
        cJSON_AddBoolToObject(x, "optional", out->optional);
        cJSON_AddItemToArray(outs, x);
    }
    cJSON *res = cJSON_AddObjectToObject(o, "resources");
    if (m->cpu > 0)
        cJSON_AddNumberToObject(res, "cpu", m->cpu);
    if (m->memory > 0) {
        char mem[32];
        snprintf(mem, sizeof mem, "%lld", (long long)m->memory);
        cJSON_AddStringToObject(res, "memory", mem);
    }
    if (m->gpus > 0)
        cJSON_AddNumberToObject(res, "gpus", m->gpus);
    cJSON *gpu = cJSON_AddObjectToObject(o, "gpu");
    cJSON_AddBoolToObject(gpu, "required", m->gpu_required);
    cJSON_AddNumberToObject(gpu, "min_devices", m->gpu_min_devices);
    if (m->gpu_min_cc_major) {
        char cc[16];
        snprintf(cc, sizeof cc, "%d.%d", m->gpu_min_cc_major, m->gpu_min_cc_minor);
        cJSON_AddStringToObject(gpu, "min_compute_capability", cc);
    }
    if (m->gpu_min_memory) {
        char mem[32];
        snprintf(mem, sizeof mem, "%lld", (long long)m->gpu_min_memory);
        cJSON_AddStringToObject(gpu, "min_memory", mem);
    }
    cJSON_AddStringToObject(gpu, "smoke", m->gpu_smoke == MANIFEST_SMOKE_QUICK ? "quick" : "none");
    if (m->timeout_ms)
        add_duration(o, "timeout", m->timeout_ms);
    add_duration(o, "grace_period", m->grace_ms);
    add_duration(o, "heartbeat", m->heartbeat_ms);
    /* Fields newer than the first stepop/v1 readers only when set, so a manifest that does not use
     * them is still read by an older `stepop run` baked into an image. */
    if (m->fetch_timeout_ms != MANIFEST_DEFAULT_TRANSFER_TIMEOUT_MS)
        add_duration(o, "fetch_timeout", m->fetch_timeout_ms);
    if (m->upload_timeout_ms != MANIFEST_DEFAULT_TRANSFER_TIMEOUT_MS)
        add_duration(o, "upload_timeout", m->upload_timeout_ms);
    if (m->env_drop_count) {
        cJSON *drop = cJSON_AddArrayToObject(o, "env_drop");
        for (int i = 0; i < m->env_drop_count; i++)
            cJSON_AddItemToArray(drop, cJSON_CreateString(m->env_drop[i]));
    }
    return o;
}

static void free_strv(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void manifest_free(struct manifest *m)
{
    free(m->api_version);
    free(m->run_id);
    free(m->run_uri);
    free(m->step);
    free(m->image);
    free_strv(m->argv, m->argc);
    free(m->workdir);
    free_strv(m->env_names, m->env_count);
    free_strv(m->env_values, m->env_count);
    free_strv(m->env_drop, m->env_drop_count);
    for (int i = 0; i < m->input_count; i++) {
        free(m->inputs[i].name);
        free(m->inputs[i].uri);
        free(m->inputs[i].path);
        free(m->inputs[i].sha256);
    }
    free(m->inputs);
    for (int i = 0; i < m->output_count; i++) {
        free(m->outputs[i].name);
        free(m->outputs[i].path);
        free(m->outputs[i].uri);
    }
    free(m->outputs);
    memset(m, 0, sizeof *m);
}

void manifest_new_run_id(char out[27])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t ms = (uint64_t)time_wall_ms();
    unsigned char rnd[10];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    /* 48 bits of milliseconds (10 characters) then 80 random bits (16 characters). */
    for (int i = 9; i >= 0; i--) {
        out[i] = alphabet[ms & 31];
        ms >>= 5;
    }
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = hi << 8 | rnd[i];
    for (int i = 5; i < 10; i++)
        lo = lo << 8 | rnd[i];
    for (int i = 17; i >= 10; i--) {
        out[i] = alphabet[hi & 31];
        hi >>= 5;
    }
    for (int i = 25; i >= 18; i--) {
        out[i] = alphabet[lo & 31];
        lo >>= 5;
    }
    out[26] = '\0';
}
