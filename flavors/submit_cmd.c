/* `stepop submit` (also `stepop-submit`): build the manifest, write it and a pending status to
 * the run prefix, launch through a flavor, follow to the end, exit with the step's code. */
#include "config.h"
#include "flavor.h"
#include "plugin.h"
#include "follow.h"

#include "../artifacts/store.h"
#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/exitcodes.h"
#include "../runtime/http.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/manifest.h"
#include "../runtime/status.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: stepop submit [STEP.json] [options] [-- CMD ARGS...]   (also: stepop-submit)\n"
    "\n"
    "  --operator NAME        a configured operator (flavor + settings; 'stepop operator list')\n"
    "  --flavor F             local (default), docker, ... ('stepop flavor list')\n"
    "  --store URI            artifact store root for the run (default: config, else the file store\n"
    "                         under $XDG_DATA_HOME/stepop)\n"
    "  --image IMG            container image\n"
    "  --gpus N               require N GPUs (resources.gpus and gpu.required)\n"
    "  --cpu N, --memory SIZE resource limits\n"
    "  --env K=V              step environment (repeatable)\n"
    "  --input NAME=URI[@PATH]      an input (a local path becomes a file:// URI; a URI ending in\n"
    "                         .tar, .tar.gz, .tgz or .tar.zst is unpacked into PATH)\n"
    "  --output NAME=PATH[@FORMAT]  an output (FORMAT: file, tar, tar.gz, tar.zst)\n"
    "  --timeout DUR, --grace DUR   step timeout and SIGTERM-to-SIGKILL grace period\n"
    "  --pending-timeout DUR  give up when the job has not started after this long (default 10m)\n"
    "  --detach               launch, print the run id and exit\n"
    "  --dry-run              print the manifest and the exact flavor request(s); change nothing\n"
    "  --json                 a JSON summary on stdout (logs then go to stderr)\n"
    "\n"
    "STEP.json holds the manifest's step fields (docs/manifest.md) plus \"flavor\", \"operator\",\n"
    "\"settings\" and \"store\"; options win. Logs stream to stdout, phases to stderr; Ctrl-C cancels\n"
    "the run, a second Ctrl-C detaches. Exit code: the step's own; when the step did not run, the\n"
    "codes of docs/protocol.md, or 71 (could not launch), 72 (lost), 73 (did not start in time),\n"
    "130 (detached).\n";

enum {
    O_OPERATOR = 1, O_FLAVOR, O_STORE, O_IMAGE, O_GPUS, O_CPU, O_MEMORY, O_ENV, O_INPUT, O_OUTPUT, O_TIMEOUT,
    O_GRACE, O_PENDING, O_DETACH, O_DRY_RUN, O_JSON
};

static const struct cli_option options[] = {
    { "operator", 0, 1, O_OPERATOR }, { "flavor", 0, 1, O_FLAVOR },   { "store", 0, 1, O_STORE },
    { "image", 0, 1, O_IMAGE },       { "gpus", 0, 1, O_GPUS },       { "cpu", 0, 1, O_CPU },
    { "memory", 0, 1, O_MEMORY },     { "env", 'e', 1, O_ENV },       { "input", 'i', 1, O_INPUT },
    { "output", 'o', 1, O_OUTPUT },   { "timeout", 0, 1, O_TIMEOUT }, { "grace", 0, 1, O_GRACE },
    { "pending-timeout", 0, 1, O_PENDING }, { "detach", 'd', 0, O_DETACH }, { "dry-run", 0, 0, O_DRY_RUN },
    { "json", 0, 0, O_JSON },         { 0 },
};
const struct cli_option *const submit_cli_options = options;

/* An object member of step, created when missing. */
static cJSON *object_member(cJSON *step, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(step, key);
    if (!cJSON_IsObject(o)) {
        cJSON_DeleteItemFromObjectCaseSensitive(step, key);
        o = cJSON_AddObjectToObject(step, key);
    }
    return o;
}

static cJSON *array_member(cJSON *step, const char *key)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(step, key);
    if (!cJSON_IsArray(a)) {
        cJSON_DeleteItemFromObjectCaseSensitive(step, key);
        a = cJSON_AddArrayToObject(step, key);
    }
    return a;
}

static void replace_str(cJSON *o, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddStringToObject(o, key, v);
}

/* Replaces the entry named name in an inputs/outputs array, or appends it. */
static void put_named(cJSON *arr, cJSON *item, const char *name)
{
    int i = 0;
    for (cJSON *it = arr->child; it; it = it->next, i++) {
        const char *n = json_str(it, "name");
        if (n && strcmp(n, name) == 0) {
            cJSON_ReplaceItemInArray(arr, i, item);
            return;
        }
    }
    cJSON_AddItemToArray(arr, item);
}

/* NAME=URI[@PATH]: the '@' that splits off PATH is the last one after the URI's host part. */
static int parse_input(const char *v, cJSON *inputs, struct err *e)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return err_set(e, ERR_USAGE, "--input: expected NAME=URI[@PATH], got \"%s\"", v);
    char *name = xstrndup(v, (size_t)(eq - v));
    const char *rest = eq + 1;
    const char *after_host = rest;
    const char *scheme_end = strstr(rest, "://");
    if (scheme_end) {
        after_host = strchr(scheme_end + 3, '/');
        if (!after_host)
            after_host = rest + strlen(rest);
    }
    const char *at = strrchr(after_host, '@');
    char *uri_part = at ? xstrndup(rest, (size_t)(at - rest)) : xstrdup(rest);
    char *uri = uri_from_arg(uri_part);
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "name", name);
    cJSON_AddStringToObject(in, "uri", uri);
    if (at && at[1])
        cJSON_AddStringToObject(in, "path", at + 1);
    /* On the command line an archive's name says it is one: it is unpacked. */
    enum pack_format f;
    char *base = uri_basename(uri);
    cJSON_AddBoolToObject(in, "unpack", pack_format_from_name(base, &f) == 0);
    free(base);
    put_named(inputs, in, name);
    free(uri_part);
    free(uri);
    free(name);
    return 0;
}

static int parse_output(const char *v, cJSON *outputs, struct err *e)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return err_set(e, ERR_USAGE, "--output: expected NAME=PATH[@FORMAT], got \"%s\"", v);
    char *name = xstrndup(v, (size_t)(eq - v));
    char *path = xstrdup(eq + 1);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "name", name);
    char *at = strrchr(path, '@');
    enum pack_format f;
    if (at && pack_format_parse(at + 1, &f) == 0) {
        cJSON_AddStringToObject(out, "format", at + 1);
        *at = '\0';
    }
    cJSON_AddStringToObject(out, "path", path);
    put_named(outputs, out, name);
    free(name);
    free(path);
    return 0;
}

struct submit_args {
    cJSON *step;  /* the step fields being built */
    const char *operator_name, *flavor, *store;
    int detach, dry_run, json;
    int64_t pending_ms;
};

static int apply_option(struct submit_args *a, int id, const char *v, struct err *e)
{
    int64_t n;
    switch (id) {
    case O_OPERATOR: a->operator_name = v; return 0;
    case O_FLAVOR: a->flavor = v; return 0;
    case O_STORE: a->store = v; return 0;
    case O_IMAGE: replace_str(a->step, "image", v); return 0;
    case O_GPUS: {
        long g;
        if (cli_int("gpus", v, 0, 1024, &g, e) < 0)
            return -1;
        cJSON *res = object_member(a->step, "resources");
        cJSON_DeleteItemFromObjectCaseSensitive(res, "gpus");
        cJSON_AddNumberToObject(res, "gpus", (double)g);
        if (g > 0) {
            cJSON *gpu = object_member(a->step, "gpu");
            cJSON_DeleteItemFromObjectCaseSensitive(gpu, "required");
            cJSON_DeleteItemFromObjectCaseSensitive(gpu, "min_devices");
            cJSON_AddBoolToObject(gpu, "required", 1);
            cJSON_AddNumberToObject(gpu, "min_devices", (double)g);
        }
        return 0;
    }
    case O_CPU: {
        char *end;
        double c = strtod(v, &end);
        cJSON *res = object_member(a->step, "resources");
        cJSON_DeleteItemFromObjectCaseSensitive(res, "cpu");
        if (*end == '\0' && end != v)
            cJSON_AddNumberToObject(res, "cpu", c);
        else
            cJSON_AddStringToObject(res, "cpu", v); /* "500m": the manifest parser judges it */
        return 0;
    }
    case O_MEMORY:
        if (units_parse_size(v, &n, e) < 0)
            return err_prefix(e, "--memory: ");
        replace_str(object_member(a->step, "resources"), "memory", v);
        return 0;
    case O_ENV: {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v)
            return err_set(e, ERR_USAGE, "--env: expected K=V, got \"%s\"", v);
        char *k = xstrndup(v, (size_t)(eq - v));
        replace_str(object_member(a->step, "env"), k, eq + 1);
        free(k);
        return 0;
    }
    case O_INPUT: return parse_input(v, array_member(a->step, "inputs"), e);
    case O_OUTPUT: return parse_output(v, array_member(a->step, "outputs"), e);
    case O_TIMEOUT:
        if (units_parse_duration(v, &n, e) < 0)
            return err_prefix(e, "--timeout: ");
        replace_str(a->step, "timeout", v);
        return 0;
    case O_GRACE:
        if (units_parse_duration(v, &n, e) < 0)
            return err_prefix(e, "--grace: ");
        replace_str(a->step, "grace_period", v);
        return 0;
    case O_PENDING:
        if (units_parse_duration(v, &a->pending_ms, e) < 0)
            return err_prefix(e, "--pending-timeout: ");
        return 0;
    case O_DETACH: a->detach = 1; return 0;
    case O_DRY_RUN: a->dry_run = 1; return 0;
    case O_JSON: a->json = 1; return 0;
    }
    return 0;
}

/* Takes a string member out of step (STEP.json's non-manifest fields); caller frees. */
static char *take_str(cJSON *step, const char *key, struct err *e, int *bad)
{
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(step, key);
    if (!v)
        return NULL;
    char *r = NULL;
    if (cJSON_IsString(v))
        r = xstrdup(v->valuestring);
    else
        *bad = err_set(e, ERR_USAGE, "STEP.json: %s: expected a string", key);
    cJSON_Delete(v);
    return r;
}

static int exit_for(const struct follow_result *fr)
{
    if (fr->detached)
        return EXIT_SUBMIT_DETACHED;
    if (fr->pending_timed_out)
        return EXIT_SUBMIT_NOT_STARTED;
    if (fr->cannot_start)
        return EXIT_SUBMIT_LAUNCH;
    const struct run_status *st = &fr->status;
    if (st->exit_code >= 0 && (st->exit_code != 0 || st->phase == PHASE_SUCCEEDED))
        return st->exit_code;
    if (fr->lost && st->exit_code < 0)
        return EXIT_SUBMIT_LOST;
    switch (st->reason) {
    case REASON_MANIFEST_ERROR: return EXIT_RUN_MANIFEST;
    case REASON_INPUT_ERROR: return EXIT_RUN_INPUT;
    case REASON_GPU_UNAVAILABLE: return EXIT_RUN_GPU;
    case REASON_UPLOAD_ERROR: return EXIT_RUN_UPLOAD;
    case REASON_TERMINATED:
    case REASON_PREEMPTED: return EXIT_RUN_TERMINATED;
    default: return st->phase == PHASE_SUCCEEDED ? 0 : EXIT_RUN_INTERNAL;
    }
}

/* outputs.json, when the run wrote one; NULL otherwise. */
static cJSON *read_outputs(const char *run_uri)
{
    struct store *s;
    struct err e = { 0 };
    if (store_open(run_uri, &s, &e) < 0)
        return NULL;
    char *uri = uri_join(run_uri, "outputs.json");
    char *text = NULL;
    size_t len;
    cJSON *j = NULL;
    if (store_get_small(s, uri, 16u << 20, &text, &len, &e) == 0)
        json_parse(text, len, "outputs.json", &j, &e);
    free(text);
    free(uri);
    store_close(s);
    return j;
}

static cJSON *summary_json(const char *run_uri, const char *flavor, const struct follow_result *fr, int code)
{
    const struct run_status *st = &fr->status;
    cJSON *o = status_to_json(st);
    cJSON_AddStringToObject(o, "run_uri", run_uri);
    cJSON_AddStringToObject(o, "flavor", flavor);
    cJSON_AddNumberToObject(o, "stepop_exit_code", code);
    cJSON_AddBoolToObject(o, "lost", fr->lost);
    cJSON *d = cJSON_AddObjectToObject(o, "durations_ms");
    for (int p = 0; p < PHASE_COUNT; p++)
        if (st->started_ms[p] && st->ended_ms[p])
            cJSON_AddNumberToObject(d, status_phase_name((enum run_phase)p), (double)(st->ended_ms[p] - st->started_ms[p]));
    cJSON *outs = read_outputs(run_uri);
    cJSON *list = outs ? cJSON_DetachItemFromObjectCaseSensitive(outs, "outputs") : NULL;
    cJSON_AddItemToObject(o, "outputs", list ? list : cJSON_CreateArray());
    cJSON_Delete(outs);
    return o;
}

static void print_summary(const char *run_uri, const struct follow_result *fr, int json, const char *flavor, int code)
{
    cJSON *o = summary_json(run_uri, flavor, fr, code);
    if (json) {
        char *s = json_print(o, 1);
        printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
        return;
    }
    const struct run_status *st = &fr->status;
    char total[32] = "?";
    int64_t first = 0, lastt = 0;
    for (int p = 0; p < PHASE_COUNT; p++) {
        if (st->started_ms[p] && (!first || st->started_ms[p] < first))
            first = st->started_ms[p];
        if (st->ended_ms[p] > lastt)
            lastt = st->ended_ms[p];
    }
    if (first && lastt >= first)
        units_format_duration(lastt - first, total, sizeof total);
    fprintf(stderr, "stepop: run %s %s%s%s in %s (exit code %d)\n", st->run_id, status_phase_name(st->phase),
            st->reason ? ", reason " : "", st->reason ? status_reason_name(st->reason) : "", total, code);
    if (st->message[0] && st->phase != PHASE_SUCCEEDED)
        fprintf(stderr, "stepop:   %s\n", st->message);
    const cJSON *durs = cJSON_GetObjectItemCaseSensitive(o, "durations_ms");
    for (const cJSON *it = durs->child; it; it = it->next) {
        char d[32];
        units_format_duration((int64_t)it->valuedouble, d, sizeof d);
        fprintf(stderr, "stepop:   %-13s %s\n", it->string, d);
    }
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(o, "outputs");
    for (const cJSON *it = outs->child; it; it = it->next) {
        char size[32];
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "size");
        units_format_size(cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : 0, size, sizeof size);
        char red[512];
        uri_redact(json_str(it, "uri") ? json_str(it, "uri") : "", red, sizeof red);
        fprintf(stderr, "stepop:   output %s: %s (%s, sha256 %s)\n", json_str(it, "name"), red, size,
                json_str(it, "sha256") ? json_str(it, "sha256") : "?");
    }
    cJSON_Delete(o);
}

static char *self_path(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return xstrdup("stepop");
    buf[n] = '\0';
    return xstrdup(buf);
}

static int put_json(struct store *s, const char *run_uri, const char *name, const cJSON *j, struct err *e)
{
    char *text = json_print(j, 1);
    char *uri = uri_join(run_uri, name);
    int rc = store_put_small(s, uri, text, strlen(text), e);
    if (rc < 0)
        err_prefix(e, "writing %s: ", name);
    free(uri);
    cJSON_free(text);
    return rc;
}

static int fail(const struct err *e, int code)
{
    log_error("%s", e->msg);
    return code;
}

int cmd_submit(int argc, char **argv)
{
    struct err e = { 0 };
    struct submit_args a = { .pending_ms = 600000 };
    struct cli c;
    cli_init(&c, "submit", options, argc - 1, argv + 1);
    a.step = cJSON_CreateObject();
    const char *v;
    int id, code = EXIT_OK;
    struct config cfg = { 0 };
    struct manifest m = { 0 };
    cJSON *settings = NULL, *handle = NULL;
    char *flavor_name = NULL, *operator_name = NULL, *store_root = NULL, *stepop_path = NULL;
    struct store *store = NULL;
    /* Options are applied after STEP.json, so collect them first. */
    struct { int id; const char *v; } opts[256];
    int nopts = 0;
    while ((id = cli_next(&c, &v, &e)) > 0) {
        if (nopts == 256) {
            err_set(&e, ERR_USAGE, "submit: too many options");
            id = -1;
            break;
        }
        opts[nopts].id = id;
        opts[nopts++].v = v;
    }
    if (id == CLI_HELP) {
        fputs(usage_text, stdout);
        goto out;
    }
    if (id < 0 || c.pos_count > 1) {
        if (id >= 0)
            err_set(&e, ERR_USAGE, "submit: at most one STEP.json (put the command after --)");
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    if (c.pos_count == 1) {
        cJSON_Delete(a.step);
        a.step = NULL;
        if (json_read_file(c.pos[0], &a.step, &e) < 0 || !cJSON_IsObject(a.step)) {
            if (a.step && !cJSON_IsObject(a.step))
                err_set(&e, ERR_INVALID, "%s: expected a JSON object", c.pos[0]);
            code = fail(&e, EXIT_USAGE);
            goto out;
        }
    }
    int bad = 0;
    flavor_name = take_str(a.step, "flavor", &e, &bad);
    operator_name = take_str(a.step, "operator", &e, &bad);
    store_root = take_str(a.step, "store", &e, &bad);
    settings = cJSON_DetachItemFromObjectCaseSensitive(a.step, "settings");
    if (settings && !cJSON_IsObject(settings))
        bad = err_set(&e, ERR_USAGE, "STEP.json: settings: expected an object");
    if (bad) {
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    for (int i = 0; i < nopts; i++)
        if (apply_option(&a, opts[i].id, opts[i].v, &e) < 0) {
            code = fail(&e, EXIT_USAGE);
            goto out;
        }
    if (c.rest_count) {
        cJSON *cmd = cJSON_CreateArray();
        for (int i = 0; i < c.rest_count; i++)
            cJSON_AddItemToArray(cmd, cJSON_CreateString(c.rest[i]));
        cJSON_DeleteItemFromObjectCaseSensitive(a.step, "command");
        cJSON_AddItemToObject(a.step, "command", cmd);
    }
    if (config_load(&cfg, &e) < 0) {
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    if (a.operator_name) {
        free(operator_name);
        operator_name = xstrdup(a.operator_name);
    }
    if (!operator_name && cfg.default_operator)
        operator_name = xstrdup(cfg.default_operator);
    if (operator_name) {
        const cJSON *op = config_operator(&cfg, operator_name, &e);
        if (!op) {
            code = fail(&e, EXIT_USAGE);
            goto out;
        }
        if (!flavor_name)
            flavor_name = xstrdup(json_str(op, "flavor"));
        /* The operator's settings, overridden key by key by STEP.json's. */
        const cJSON *os = cJSON_GetObjectItemCaseSensitive(op, "settings");
        cJSON *merged = os ? cJSON_Duplicate(os, 1) : cJSON_CreateObject();
        for (cJSON *it = settings ? settings->child : NULL; it; it = it->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(merged, it->string);
            cJSON_AddItemToObject(merged, it->string, cJSON_Duplicate(it, 1));
        }
        cJSON_Delete(settings);
        settings = merged;
    }
    if (a.flavor) {
        free(flavor_name);
        flavor_name = xstrdup(a.flavor);
    }
    if (!flavor_name)
        flavor_name = xstrdup("local");
    if (!settings)
        settings = cJSON_CreateObject();
    const struct flavor_ops *flavor = plugin_flavor_find(flavor_name, settings, &cfg, operator_name, 0, &e);
    if (!flavor) {
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    if (a.store) {
        free(store_root);
        store_root = xstrdup(a.store);
    }
    char *root = NULL;
    if (store_root) {
        char *u = uri_from_arg(store_root);
        root = str_has_suffix(u, "/") ? xstrdup(u) : xasprintf("%s/", u);
        free(u);
    } else {
        root = xstrdup(cfg.store);
    }
    free(store_root);
    store_root = root;
    if (store_check_uri(store_root, &e) < 0) {
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    store_http_set_bearer_scope(store_root);
    if (http_global_init(&e) < 0) {
        code = fail(&e, EXIT_USAGE);
        goto out;
    }

    char run_id[27];
    manifest_new_run_id(run_id);
    char *run_uri = xasprintf("%sruns/%s/", store_root, run_id);
    replace_str(a.step, "api_version", MANIFEST_API_VERSION);
    replace_str(a.step, "run_id", run_id);
    replace_str(a.step, "run_uri", run_uri);
    free(run_uri);
    if (!cJSON_GetObjectItemCaseSensitive(a.step, "command")) {
        err_set(&e, ERR_USAGE, "submit: no command: give -- CMD ARGS, or \"command\" in STEP.json");
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    if (manifest_from_json(a.step, 1, &m, &e) < 0) {
        err_prefix(&e, "%s", c.pos_count ? "STEP.json/options: " : "options: ");
        code = fail(&e, EXIT_USAGE);
        goto out;
    }
    char *manifest_uri = uri_join(m.run_uri, "manifest.json");
    stepop_path = self_path();
    struct job job = { .m = &m, .manifest_uri = manifest_uri, .settings = settings, .stepop_path = stepop_path,
                       .attempt = 1 };
    if (flavor->validate(&job, &e) < 0) {
        err_prefix(&e, "flavor %s: ", flavor_name);
        code = fail(&e, EXIT_USAGE);
        free(manifest_uri);
        goto out;
    }
    cJSON *manifest_json = manifest_to_json(&m);
    if (a.dry_run) {
        cJSON *requests = NULL;
        if (flavor->render(&job, &requests, &e) < 0) {
            code = fail(&e, EXIT_USAGE);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "flavor", flavor_name);
            json_add_str(o, "operator", operator_name);
            cJSON_AddStringToObject(o, "config", config_source(&cfg));
            cJSON_AddStringToObject(o, "run_id", m.run_id);
            cJSON_AddStringToObject(o, "run_uri", m.run_uri);
            cJSON_AddItemToObject(o, "manifest", manifest_json);
            manifest_json = NULL;
            cJSON_AddItemToObject(o, "requests", requests);
            char *s = json_print(o, 1);
            printf("%s\n", s);
            cJSON_free(s);
            cJSON_Delete(o);
        }
        cJSON_Delete(manifest_json);
        free(manifest_uri);
        goto out;
    }
    /* manifest.json and a pending status.json exist before anything is launched. */
    struct run_status st;
    status_init(&st, m.run_id, 1);
    status_enter(&st, PHASE_PENDING);
    int wrc = store_open(m.run_uri, &store, &e);
    if (wrc == 0)
        wrc = put_json(store, m.run_uri, "manifest.json", manifest_json, &e);
    cJSON_Delete(manifest_json);
    if (wrc == 0) {
        cJSON *sj = status_to_json(&st);
        wrc = put_json(store, m.run_uri, "status.json", sj, &e);
        cJSON_Delete(sj);
    }
    if (wrc < 0) {
        code = fail(&e, EXIT_FAILED);
        free(manifest_uri);
        goto out;
    }
    char red[512];
    uri_redact(m.run_uri, red, sizeof red);
    log_info("[%s] submitting with the %s flavor; run prefix %s; configuration %s", m.run_id, flavor_name, red,
             config_source(&cfg));
    int src = flavor->submit(&job, &handle, &e);
    free(manifest_uri);
    cJSON *sub = cJSON_CreateObject();
    cJSON_AddStringToObject(sub, "flavor", flavor_name);
    json_add_str(sub, "operator", operator_name);
    cJSON_AddItemToObject(sub, "settings", cJSON_Duplicate(settings, 1));
    cJSON_AddItemToObject(sub, "handle", handle ? cJSON_Duplicate(handle, 1) : cJSON_CreateNull());
    char now[40];
    time_format_rfc3339_now(now, sizeof now);
    cJSON_AddStringToObject(sub, "submitted_at", now);
    cJSON_AddStringToObject(sub, "stepop_version", STEPOP_VERSION);
    struct err se = { 0 };
    if (put_json(store, m.run_uri, "submission.json", sub, &se) < 0)
        log_warn("%s (re-attaching with stepop cancel will not work)", se.msg);
    cJSON_Delete(sub);
    if (src < 0) {
        log_error("could not launch the step: %s", e.msg);
        status_enter(&st, PHASE_FAILED);
        st.reason = REASON_INTERNAL;
        st.system_kind = 1;
        snprintf(st.message, sizeof st.message, "could not launch: %.900s", e.msg);
        follow_write_status(store, m.run_uri, &st, &se);
        code = EXIT_SUBMIT_LAUNCH;
        goto out;
    }
    if (a.detach) {
        if (a.json)
            printf("{\"run_id\":\"%s\",\"run_uri\":\"%s\",\"flavor\":\"%s\"}\n", m.run_id, red, flavor_name);
        else
            printf("%s\n", m.run_id);
        log_info("[%s] detached; follow with: stepop logs -f %s", m.run_id, m.run_id);
        goto out;
    }
    struct follow_options fo = {
        .run_uri = m.run_uri, .flavor = flavor, .handle = handle, .settings = settings,
        .log_out = a.json ? stderr : stdout, .print_phases = 1, .handle_interrupts = 1,
        .pending_timeout_ms = a.pending_ms, .grace_ms = m.grace_ms, .cleanup = 1,
        /* stepop run enforces the timeout itself; this only catches a run that cannot. */
        .deadline_ms = m.timeout_ms ? time_mono_ms() + m.timeout_ms + m.grace_ms + 600000 : 0,
    };
    struct follow_result fr;
    if (follow_run(&fo, &fr, &e) < 0) {
        code = fail(&e, EXIT_FAILED);
        goto out;
    }
    code = exit_for(&fr);
    if (!fr.detached)
        print_summary(m.run_uri, &fr, a.json, flavor_name, code);
    status_free(&fr.status);
out:
    store_close(store);
    cli_free(&c);
    cJSON_Delete(a.step);
    cJSON_Delete(settings);
    cJSON_Delete(handle);
    manifest_free(&m);
    config_free(&cfg);
    free(flavor_name);
    free(operator_name);
    free(store_root);
    free(stepop_path);
    return code;
}
