/* `stepop doctor [--operator NAME] [--json]`: is this machine ready to submit? The configuration
 * file, the store (reachable, writable, whose credentials), the operator's flavor (reachable,
 * authorised) and the local GPU, each a line of the checklist (runtime/doctor.h). Nothing it does
 * costs money or leaves anything behind: the store's probe object is removed again. */
#include "config.h"
#include "flavor.h"
#include "plugin.h"

#include "../artifacts/store.h"
#include "../gpu/gpu.h"
#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/doctor.h"
#include "../runtime/exitcodes.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void check_config(struct doctor *d, const struct config *cfg)
{
    char *paths[2];
    config_candidates(paths);
    for (int i = 0; i < 2; i++) {
        char why[160];
        if (cfg->path && strcmp(cfg->path, paths[i]) == 0)
            continue;
        if (!config_file_distrust(paths[i], why, sizeof why))
            doctor_add(d, DOCTOR_SKIP, "config ignored", "%s: ./stepop.json comes first", paths[i]);
        else if (strcmp(why, "absent") != 0)
            doctor_add(d, DOCTOR_FAIL, "config ignored", "%s: %s", paths[i], why);
    }
    if (cfg->path)
        doctor_add(d, DOCTOR_OK, "config", "%s", cfg->path);
    else
        doctor_add(d, DOCTOR_SKIP, "config", "none found (%s, %s): the default store and the local flavor", paths[0],
                   paths[1]);
    free(paths[0]);
    free(paths[1]);
}

static int drop_entry(void *ctx, const struct store_entry *entry, struct err *e)
{
    (void)ctx;
    (void)entry;
    (void)e;
    return 0;
}

static void check_store(struct doctor *d, const char *root)
{
    struct store *s = NULL;
    struct err e = { 0 };
    if (store_open(root, &s, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "store", "%s: %s (hint: check the store URI and its credentials)", root, e.msg);
        return;
    }
    char *prefix = xasprintf("%sdoctor/", root);
    if (store_list(s, prefix, drop_entry, NULL, &e) < 0 && e.kind != ERR_NOT_FOUND) {
        doctor_add(d, DOCTOR_FAIL, "store reachable", "%s: %s (hint: is the server up, are the credentials right?)",
                   root, e.msg);
        doctor_add(d, DOCTOR_SKIP, "store writable", "not tried: the store is not reachable");
    } else {
        doctor_add(d, DOCTOR_OK, "store reachable", "%s", root);
        char *probe = xasprintf("%sprobe-%ld-%ld", prefix, (long)getpid(), (long)time(NULL));
        static const char body[] = "stepop doctor probe\n";
        err_clear(&e);
        if (store_put_small(s, probe, body, sizeof body - 1, &e) < 0) {
            doctor_add(d, DOCTOR_FAIL, "store writable", "%s: %s (hint: the credentials need write access)", probe,
                       e.msg);
        } else if (store_remove(s, probe, &e) < 0) {
            doctor_add(d, DOCTOR_FAIL, "store writable", "wrote %s but could not remove it: %s", probe, e.msg);
        } else {
            doctor_add(d, DOCTOR_OK, "store writable", "put and removed %s", probe);
        }
        free(probe);
    }
    free(prefix);
    if (s->ops->doctor)
        s->ops->doctor(s, root, d);
    store_close(s);
}

static void check_flavor(struct doctor *d, const struct config *cfg, const char *name)
{
    struct err e = { 0 };
    const char *opname = name ? name : cfg->default_operator;
    const char *fname = "local";
    const cJSON *settings = NULL;
    cJSON *empty = cJSON_CreateObject();
    if (opname) {
        const cJSON *op = config_operator(cfg, opname, &e);
        if (!op) {
            doctor_add(d, DOCTOR_FAIL, "operator", "%s (hint: stepop operator list)", e.msg);
            cJSON_Delete(empty);
            return;
        }
        fname = json_str(op, "flavor");
        settings = cJSON_GetObjectItemCaseSensitive(op, "settings");
        doctor_add(d, DOCTOR_OK, "operator", "%s (flavor %s)", opname, fname);
    } else {
        doctor_add(d, DOCTOR_SKIP, "operator", "none configured: steps run with the local flavor");
    }
    /* A plugin flavor is resolved like submit resolves it (its own checks are its validate). */
    cJSON *resolved = cJSON_Duplicate(settings ? settings : empty, 1);
    const struct flavor_ops *f = plugin_flavor_find(fname, resolved, cfg, opname, 0, &e);
    if (!f)
        doctor_add(d, DOCTOR_FAIL, "flavor", "%s (hint: stepop flavor)", e.msg);
    else if (!f->doctor)
        doctor_add(d, DOCTOR_SKIP, "flavor", "%s: no checks of its own", fname);
    else
        f->doctor(settings ? settings : empty, d);
    cJSON_Delete(resolved);
    cJSON_Delete(empty);
}

static void check_gpu(struct doctor *d)
{
    struct gpu_requirements req = { .timeout_ms = 30000 };
    cJSON *summary = NULL;
    char cls[64];
    struct err e = { 0 };
    if (gpu_preflight(&req, &summary, cls, sizeof cls, &e) == 0) {
        const cJSON *devs = cJSON_GetObjectItemCaseSensitive(summary, "devices");
        doctor_add(d, DOCTOR_OK, "gpu", "%d device(s) ready (stepop gpu check for details)", cJSON_GetArraySize(devs));
    } else if (strcmp(cls, "no_driver") == 0 || strcmp(cls, "no_device") == 0 || strcmp(cls, "cuda_not_built") == 0 ||
               strcmp(cls, "stub_library") == 0) {
        /* Most machines that submit have no GPU: the steps' nodes do. */
        doctor_add(d, DOCTOR_SKIP, "gpu", "none usable here (%s); only steps run with the local flavor need one", cls);
    } else {
        doctor_add(d, DOCTOR_FAIL, "gpu", "%s", e.msg);
    }
    cJSON_Delete(summary);
}

enum { OPT_OPERATOR = 1, OPT_JSON };
static const struct cli_option doctor_opts[] = {
    { "operator", 'o', 1, OPT_OPERATOR },
    { "json", 0, 0, OPT_JSON },
    { NULL, 0, 0, 0 },
};
const struct cli_option *const doctor_cli_options = doctor_opts;

int cmd_doctor(int argc, char **argv)
{
    static const char usage[] =
        "usage: stepop doctor [--operator NAME] [--json]\n"
        "\nChecks the configuration, the store, the operator's flavor and the local GPU, one line each:\n"
        "\u2714 passed, \u2718 failed (with a hint), \u2013 not applicable. Exits 1 when a check failed.\n"
        "The store check writes and removes one small object under <store>doctor/. docs/doctor.md.\n";
    struct cli c;
    struct err e = { 0 };
    const char *opname = NULL, *v;
    int json = 0, id;
    cli_init(&c, "doctor", doctor_opts, argc - 1, argv + 1);
    while ((id = cli_next(&c, &v, &e)) > 0) {
        if (id == OPT_OPERATOR)
            opname = v;
        else
            json = 1;
    }
    int npos = c.pos_count + c.rest_count;
    cli_free(&c);
    if (id == CLI_HELP) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (id < 0 || npos) {
        if (id < 0)
            log_error("%s", e.msg);
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    struct doctor d;
    doctor_init(&d);
    struct config cfg;
    if (config_load(&cfg, &e) < 0) {
        doctor_add(&d, DOCTOR_FAIL, "config", "%s", e.msg);
    } else {
        check_config(&d, &cfg);
        store_http_set_bearer_scope(cfg.store);
        check_store(&d, cfg.store);
        check_flavor(&d, &cfg, opname);
        config_free(&cfg);
    }
    check_gpu(&d);
    doctor_print(&d, json);
    int code = d.failed ? EXIT_FAILED : EXIT_OK;
    doctor_free(&d);
    return code;
}
