/* Re-attaching to runs (`stepop status|logs|cancel RUN`) and listing what can run them
 * (`stepop flavor list`, `stepop operator list|describe`). RUN is a run id in the configured
 * store, or a run URI. */
#include "config.h"
#include "flavor.h"
#include "plugin.h"
#include "follow.h"

#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/exitcodes.h"
#include "../runtime/http.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { R_JSON = 1, R_FOLLOW, R_ATTEMPT, R_WAIT };

static const struct cli_option status_opts[] = { { "json", 0, 0, R_JSON }, { 0 } };
static const struct cli_option logs_opts[] = { { "follow", 'f', 0, R_FOLLOW }, { "attempt", 0, 1, R_ATTEMPT }, { 0 } };
static const struct cli_option cancel_opts[] = { { "wait", 'w', 0, R_WAIT }, { 0 } };
const struct cli_option *const status_cli_options = status_opts;
const struct cli_option *const logs_cli_options = logs_opts;
const struct cli_option *const cancel_cli_options = cancel_opts;

static int fail(const struct err *e)
{
    log_error("%s", e->msg);
    return exit_code_for(e);
}

/* Parses "CMD RUN [opts]"; returns 1 after --help, -1 on a usage error. */
static int parse_run_args(const char *cmd, const char *usage, const struct cli_option *opts, int argc, char **argv,
                          char **run_uri, int *flags, long *attempt, struct config *cfg, struct err *e)
{
    struct cli c;
    cli_init(&c, cmd, opts, argc - 1, argv + 1);
    const char *v;
    int id, rc = 0;
    while ((id = cli_next(&c, &v, e)) > 0) {
        if (id == R_ATTEMPT) {
            if (cli_int("attempt", v, 1, 100000, attempt, e) < 0) {
                rc = -1;
                break;
            }
        } else {
            *flags |= 1 << id;
        }
    }
    if (id == CLI_HELP) {
        fputs(usage, stdout);
        cli_free(&c);
        return 1;
    }
    if (rc == 0 && id < 0)
        rc = -1;
    if (rc == 0 && c.pos_count != 1)
        rc = err_set(e, ERR_USAGE, "%s: expected one RUN (a run id or a run URI)", cmd);
    if (rc == 0 && config_load(cfg, e) < 0)
        rc = -1;
    if (rc == 0 && http_global_init(e) < 0)
        rc = -1;
    if (rc == 0) {
        *run_uri = config_run_uri(cfg, c.pos[0]);
        store_http_set_bearer_scope(*run_uri);
    }
    if (rc < 0 && e->kind != ERR_NOT_FOUND)
        e->kind = ERR_USAGE;
    cli_free(&c);
    return rc;
}

int cmd_status(int argc, char **argv)
{
    static const char usage[] = "usage: stepop status RUN [--json]\n\nThe run's status.json (RUN: a run id in the "
                                "configured store, or a run URI). Exit 3 when the run does not exist.\n";
    struct err e = { 0 };
    struct config cfg = { 0 };
    char *run_uri = NULL;
    int flags = 0;
    long attempt = 0;
    int p = parse_run_args("status", usage, status_opts, argc, argv, &run_uri, &flags, &attempt, &cfg, &e);
    if (p != 0) {
        config_free(&cfg);
        return p > 0 ? EXIT_OK : fail(&e);
    }
    struct store *s;
    int code = EXIT_OK;
    struct run_status st;
    char *shown = uri_redact_secrets(run_uri);
    if (store_open(run_uri, &s, &e) < 0) {
        code = fail(&e);
    } else {
        if (follow_read_status(s, run_uri, &st, &e) < 0) {
            if (e.kind == ERR_NOT_FOUND)
                err_set(&e, ERR_NOT_FOUND, "no run at %s (no status.json)", shown);
            code = fail(&e);
        } else {
            cJSON *sub = NULL;
            struct err se;
            follow_read_json(s, run_uri, "submission.json", &sub, &se);
            if (flags & (1 << R_JSON)) {
                cJSON *o = status_to_json(&st);
                cJSON_AddStringToObject(o, "run_uri", shown);
                json_add_str(o, "flavor", sub ? json_str(sub, "flavor") : NULL);
                char *j = json_print(o, 1);
                printf("%s\n", j);
                cJSON_free(j);
                cJSON_Delete(o);
            } else {
                printf("run:       %s\n", st.run_id);
                printf("uri:       %s\n", shown);
                if (sub && json_str(sub, "flavor"))
                    printf("flavor:    %s\n", json_str(sub, "flavor"));
                printf("attempt:   %d\n", st.attempt);
                printf("phase:     %s\n", status_phase_name(st.phase));
                if (st.reason)
                    printf("reason:    %s (%s)\n", status_reason_name(st.reason), st.system_kind ? "system" : "user");
                if (st.exit_code >= 0)
                    printf("exit code: %d\n", st.exit_code);
                if (st.host[0])
                    printf("host:      %s\n", st.host);
                if (st.message[0])
                    printf("message:   %s\n", st.message);
                for (int ph = 0; ph < PHASE_COUNT; ph++) {
                    if (!st.started_ms[ph])
                        continue;
                    char d[32] = "running";
                    if (st.ended_ms[ph])
                        units_format_duration(st.ended_ms[ph] - st.started_ms[ph], d, sizeof d);
                    printf("  %-13s %s\n", status_phase_name((enum run_phase)ph), d);
                }
            }
            cJSON_Delete(sub);
            status_free(&st);
        }
        store_close(s);
    }
    free(shown);
    free(run_uri);
    config_free(&cfg);
    return code;
}

int cmd_logs(int argc, char **argv)
{
    static const char usage[] = "usage: stepop logs RUN [-f|--follow] [--attempt N]\n\nThe run's shipped output (of its "
                                "latest attempt unless --attempt); -f follows until the run ends.\n";
    struct err e = { 0 };
    struct config cfg = { 0 };
    char *run_uri = NULL;
    int flags = 0;
    long attempt = 0;
    int p = parse_run_args("logs", usage, logs_opts, argc, argv, &run_uri, &flags, &attempt, &cfg, &e);
    if (p != 0) {
        config_free(&cfg);
        return p > 0 ? EXIT_OK : fail(&e);
    }
    int code = EXIT_OK;
    struct store *s;
    if (store_open(run_uri, &s, &e) < 0) {
        code = fail(&e);
        goto out;
    }
    struct run_status st;
    if (follow_read_status(s, run_uri, &st, &e) < 0) {
        if (e.kind == ERR_NOT_FOUND) {
            char red[512];
            uri_redact(run_uri, red, sizeof red);
            err_set(&e, ERR_NOT_FOUND, "no run at %s (no status.json)", red);
        }
        code = fail(&e);
        store_close(s);
        goto out;
    }
    int final = status_phase_is_final(st.phase);
    status_free(&st);
    if (!(flags & (1 << R_FOLLOW)) || final || attempt) {
        struct log_cursor cur = { .attempt = attempt ? (int)attempt : st.attempt, .seq = 0 };
        if (follow_drain_logs(s, run_uri, &cur, stdout, &e) < 0)
            code = fail(&e);
        store_close(s);
        goto out;
    }
    store_close(s);
    struct follow_options fo = { .run_uri = run_uri, .log_out = stdout, .handle_interrupts = 1 };
    struct follow_result fr;
    if (follow_run(&fo, &fr, &e) < 0)
        code = fail(&e);
    status_free(&fr.status);
out:
    free(run_uri);
    config_free(&cfg);
    return code;
}

int cmd_cancel(int argc, char **argv)
{
    static const char usage[] = "usage: stepop cancel RUN [--wait]\n\nAsks the run's flavor to stop it (SIGTERM, then "
                                "SIGKILL after the grace period); --wait follows it to its final status.\n";
    struct err e = { 0 };
    struct config cfg = { 0 };
    char *run_uri = NULL;
    int flags = 0;
    long attempt = 0;
    int p = parse_run_args("cancel", usage, cancel_opts, argc, argv, &run_uri, &flags, &attempt, &cfg, &e);
    if (p != 0) {
        config_free(&cfg);
        return p > 0 ? EXIT_OK : fail(&e);
    }
    int code = EXIT_OK;
    struct store *s = NULL;
    cJSON *sub = NULL;
    struct run_status st = { 0 };
    if (store_open(run_uri, &s, &e) < 0 || follow_read_json(s, run_uri, "submission.json", &sub, &e) < 0) {
        if (e.kind == ERR_NOT_FOUND) {
            char red[512];
            uri_redact(run_uri, red, sizeof red);
            err_set(&e, ERR_NOT_FOUND, "no submitted run at %s (no submission.json)", red);
        }
        code = fail(&e);
        goto out;
    }
    if (follow_read_status(s, run_uri, &st, &e) == 0 && status_phase_is_final(st.phase)) {
        log_info("run %s already ended: %s", st.run_id, status_phase_name(st.phase));
        goto out;
    }
    const char *fname = json_str(sub, "flavor");
    cJSON *settings = cJSON_GetObjectItemCaseSensitive(sub, "settings");
    if (!cJSON_IsObject(settings)) {
        cJSON_DeleteItemFromObjectCaseSensitive(sub, "settings");
        settings = cJSON_AddObjectToObject(sub, "settings");
    }
    /* A plugin is looked up again here, never run from the path the store names (plugin.h). */
    const struct flavor_ops *flavor =
        fname ? plugin_flavor_find(fname, settings, &cfg, json_str(sub, "operator"), 1, &e) : NULL;
    cJSON *handle = cJSON_GetObjectItemCaseSensitive(sub, "handle");
    if (!flavor || !cJSON_IsObject(handle)) {
        if (!e.msg[0])
            err_set(&e, ERR_INVALID, "submission.json has no flavor handle");
        code = fail(&e);
        goto out;
    }
    /* submission.json is only the store's word: the run is the one named on the command line,
     * and the flavor checks the platform's job belongs to it before acting (flavor.h). */
    char *run_id = uri_basename(run_uri);
    cJSON_DeleteItemFromObjectCaseSensitive(handle, "run_id");
    cJSON_DeleteItemFromObjectCaseSensitive(handle, "run_uri");
    cJSON_AddStringToObject(handle, "run_id", run_id);
    cJSON_AddStringToObject(handle, "run_uri", run_uri);
    free(run_id);
    /* The grace period is the manifest's. */
    int64_t grace = 30000;
    char *muri = uri_join(run_uri, "manifest.json");
    char *text;
    size_t len;
    struct manifest m;
    struct err me;
    if (store_get_small(s, muri, 16u << 20, &text, &len, &me) == 0) {
        if (manifest_parse(text, len, 0, &m, &me) == 0)
            grace = m.grace_ms;
        manifest_free(&m);
        free(text);
    }
    free(muri);
    if (flavor->cancel(handle, settings, grace, &e) < 0) {
        code = fail(&e);
        goto out;
    }
    char red[512];
    uri_redact(run_uri, red, sizeof red);
    log_info("cancel requested for %s (SIGTERM, SIGKILL after %llds)", red, (long long)(grace / 1000));
    if (flags & (1 << R_WAIT)) {
        struct follow_options fo = { .run_uri = run_uri, .flavor = flavor, .handle = handle, .settings = settings,
                                     .print_phases = 1, .grace_ms = grace, .cleanup = 1 };
        struct follow_result fr;
        if (follow_run(&fo, &fr, &e) < 0)
            code = fail(&e);
        status_free(&fr.status);
    }
out:
    status_free(&st);
    cJSON_Delete(sub);
    store_close(s);
    free(run_uri);
    config_free(&cfg);
    return code;
}

static void list_plugin_json(const char *name, const char *path, void *arg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "flavor", name);
    cJSON_AddStringToObject(o, "integration", "plugin");
    cJSON_AddStringToObject(o, "notes", "a flavor plugin found on PATH (docs/plugins.md)");
    cJSON_AddStringToObject(o, "state", "available");
    cJSON_AddBoolToObject(o, "plugin", 1);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddItemToArray((cJSON *)arg, o);
}

static void list_plugin_text(const char *name, const char *path, void *arg)
{
    (void)arg;
    printf("%-11s %-10s %-48s %s\n", name, "plugin", "plugin", path);
}

int cmd_flavor(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "list") != 0 || (argc > 2 && strcmp(argv[2], "--json") != 0) || argc > 3) {
        int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
        fputs("usage: stepop flavor list [--json]\n", help ? stdout : stderr);
        return help ? EXIT_OK : EXIT_USAGE;
    }
    int n;
    const struct flavor_info *all = flavor_all(&n);
    if (argc == 3) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "flavor", all[i].name);
            cJSON_AddStringToObject(o, "integration", all[i].integration);
            cJSON_AddStringToObject(o, "notes", all[i].notes);
            cJSON_AddStringToObject(o, "state", all[i].ops ? "available" : "planned");
            cJSON_AddItemToArray(arr, o);
        }
        plugin_each(list_plugin_json, arr);
        char *s = json_print(arr, 1);
        printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(arr);
        return EXIT_OK;
    }
    printf("%-11s %-10s %-48s %s\n", "FLAVOR", "STATE", "INTEGRATION", "NOTES");
    for (int i = 0; i < n; i++)
        printf("%-11s %-10s %-48s %s\n", all[i].name, all[i].ops ? "available" : "planned", all[i].integration,
               all[i].notes);
    plugin_each(list_plugin_text, NULL);
    return EXIT_OK;
}

int cmd_operator(int argc, char **argv)
{
    static const char usage[] = "usage: stepop operator list [--json]\n       stepop operator describe NAME [--json]\n"
                                "\nOperators are configured in ./stepop.json or $XDG_CONFIG_HOME/stepop/config.json.\n";
    int json = argc > 1 && strcmp(argv[argc - 1], "--json") == 0;
    int nargs = argc - json;
    if (nargs >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    int list = nargs == 2 && strcmp(argv[1], "list") == 0;
    int describe = nargs == 3 && strcmp(argv[1], "describe") == 0;
    if (!list && !describe) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    struct config cfg;
    struct err e = { 0 };
    if (config_load(&cfg, &e) < 0) {
        e.kind = ERR_USAGE;
        return fail(&e);
    }
    int code = EXIT_OK;
    if (list) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            json_add_str(o, "config", cfg.path);
            cJSON_AddStringToObject(o, "store", cfg.store);
            json_add_str(o, "default_operator", cfg.default_operator);
            cJSON_AddItemToObject(o, "operators", cJSON_Duplicate(cfg.operators, 1));
            char *s = json_print(o, 1);
            printf("%s\n", s);
            cJSON_free(s);
            cJSON_Delete(o);
        } else {
            printf("config: %s\nstore:  %s\n", cfg.path ? cfg.path : "(none: the embedded default)", cfg.store);
            if (!cfg.operators->child)
                printf("no operators: steps run with the local flavor\n");
            for (const cJSON *it = cfg.operators->child; it; it = it->next)
                printf("%-20s %s%s\n", it->string, json_str(it, "flavor"),
                       cfg.default_operator && strcmp(cfg.default_operator, it->string) == 0 ? " (default)" : "");
        }
    } else {
        const cJSON *op = config_operator(&cfg, argv[2], &e);
        if (!op) {
            code = fail(&e);
        } else {
            struct err fe = { 0 };
            const char *fname = json_str(op, "flavor");
            const struct flavor_ops *f = flavor_find(fname, &fe);
            cJSON *o = cJSON_Duplicate(op, 1);
            cJSON_AddStringToObject(o, "name", argv[2]);
            cJSON_AddStringToObject(o, "state", f ? "available" : "unavailable");
            if (!f)
                cJSON_AddStringToObject(o, "problem", fe.msg);
            char *s = json_print(o, 1);
            printf("%s\n", s);
            cJSON_free(s);
            cJSON_Delete(o);
        }
    }
    config_free(&cfg);
    return code;
}
