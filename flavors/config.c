#include "config.h"

#include "../artifacts/store.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *config_default_store(void)
{
    const char *data = getenv("XDG_DATA_HOME");
    char *dir = data && *data ? xasprintf("%s/stepop", data) : xasprintf("%s/.local/share/stepop", env_or("HOME", "/tmp"));
    char *uri = uri_from_arg(dir);
    char *r = xasprintf("%s/", uri);
    free(dir);
    free(uri);
    return r;
}

/* A configuration picks the Docker host, mounts and the variables passed to steps: a file that
 * someone else owns or could write to is ignored, with a warning naming it and why. */
int config_file_distrust(const char *path, char *why, size_t n)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(why, n, "absent");
        return 1;
    }
    if (st.st_uid != getuid()) {
        snprintf(why, n, "it belongs to uid %u, not to you (uid %u)", (unsigned)st.st_uid, (unsigned)getuid());
        return 1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, n, "it is %s-writable (mode %04o); chmod go-w it to use it",
                 st.st_mode & S_IWOTH ? "world" : "group", (unsigned)(st.st_mode & 07777));
        return 1;
    }
    return 0;
}

static int config_file_trusted(const char *path)
{
    char why[160];
    if (!config_file_distrust(path, why, sizeof why))
        return 1;
    if (access(path, F_OK) == 0)
        log_warn("ignoring configuration %s: %s", path, why);
    return 0;
}

void config_candidates(char *paths[2])
{
    char cwd[PATH_MAX];
    paths[0] = getcwd(cwd, sizeof cwd) ? xasprintf("%s/stepop.json", cwd) : xstrdup("stepop.json");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    paths[1] = xdg && *xdg ? xasprintf("%s/stepop/config.json", xdg)
                           : xasprintf("%s/.config/stepop/config.json", env_or("HOME", "/tmp"));
}

static char *config_file(void)
{
    char *paths[2];
    config_candidates(paths);
    char *found = NULL;
    for (int i = 0; i < 2; i++) {
        if (!found && access(i == 0 ? "stepop.json" : paths[i], F_OK) == 0 && config_file_trusted(paths[i]))
            found = paths[i];
        else
            free(paths[i]);
    }
    return found;
}

const char *config_source(const struct config *c)
{
    return c->path ? c->path : "none (the embedded default)";
}

static int check_operator(const char *file, const cJSON *op, struct err *e)
{
    if (!cJSON_IsObject(op))
        return err_set(e, ERR_INVALID, "%s: operators.%s: expected an object", file, op->string);
    for (const cJSON *it = op->child; it; it = it->next)
        if (strcmp(it->string, "flavor") != 0 && strcmp(it->string, "settings") != 0)
            return err_set(e, ERR_INVALID, "%s: operators.%s.%s: unknown field (flavor, settings)", file, op->string,
                           it->string);
    if (!json_str(op, "flavor"))
        return err_set(e, ERR_INVALID, "%s: operators.%s.flavor: required string is missing", file, op->string);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(op, "settings");
    if (s && !cJSON_IsObject(s))
        return err_set(e, ERR_INVALID, "%s: operators.%s.settings: expected an object", file, op->string);
    return 0;
}

int config_load(struct config *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->path = config_file();
    cJSON *root = NULL;
    if (c->path && json_read_file(c->path, &root, e) < 0)
        goto fail;
    if (root) {
        if (!cJSON_IsObject(root)) {
            err_set(e, ERR_INVALID, "%s: expected a JSON object", c->path);
            goto fail;
        }
        for (const cJSON *it = root->child; it; it = it->next)
            if (strcmp(it->string, "store") != 0 && strcmp(it->string, "operators") != 0 &&
                strcmp(it->string, "default_operator") != 0) {
                err_set(e, ERR_INVALID, "%s: %s: unknown field (store, default_operator, operators)", c->path,
                        it->string);
                goto fail;
            }
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "store");
        const cJSON *dv = cJSON_GetObjectItemCaseSensitive(root, "default_operator");
        if ((sv && !cJSON_IsString(sv)) || (dv && !cJSON_IsString(dv))) {
            err_set(e, ERR_INVALID, "%s: %s: expected a string", c->path, sv && !cJSON_IsString(sv) ? "store" : "default_operator");
            goto fail;
        }
        const char *store = json_str(root, "store");
        if (store) {
            char *u = uri_from_arg(store);
            if (store_check_uri(u, e) < 0) {
                free(u);
                err_prefix(e, "%s: store: ", c->path);
                goto fail;
            }
            c->store = str_has_suffix(u, "/") ? xstrdup(u) : xasprintf("%s/", u);
            free(u);
        }
        const char *def = json_str(root, "default_operator");
        if (def)
            c->default_operator = xstrdup(def);
        cJSON *ops = cJSON_DetachItemFromObjectCaseSensitive(root, "operators");
        if (ops && !cJSON_IsObject(ops)) {
            cJSON_Delete(ops);
            err_set(e, ERR_INVALID, "%s: operators: expected an object", c->path);
            goto fail;
        }
        c->operators = ops;
        for (const cJSON *it = ops ? ops->child : NULL; it; it = it->next)
            if (check_operator(c->path, it, e) < 0)
                goto fail;
        if (c->default_operator && !cJSON_GetObjectItemCaseSensitive(c->operators, c->default_operator)) {
            err_set(e, ERR_INVALID, "%s: default_operator: no operator \"%s\"", c->path, c->default_operator);
            goto fail;
        }
        cJSON_Delete(root);
        root = NULL;
    }
    if (!c->operators)
        c->operators = cJSON_CreateObject();
    if (!c->store)
        c->store = config_default_store();
    store_http_set_bearer_scope(c->store);
    return 0;
fail:
    cJSON_Delete(root);
    config_free(c);
    return -1;
}

void config_free(struct config *c)
{
    free(c->path);
    free(c->store);
    free(c->default_operator);
    cJSON_Delete(c->operators);
    memset(c, 0, sizeof *c);
}

const cJSON *config_operator(const struct config *c, const char *name, struct err *e)
{
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(c->operators, name);
    if (!op)
        err_set(e, ERR_USAGE, "no operator \"%s\"%s%s (see 'stepop operator list')", name, c->path ? " in " : "",
                c->path ? c->path : " (there is no configuration file)");
    return op;
}

char *config_run_uri(const struct config *c, const char *run)
{
    if (strstr(run, "://"))
        return str_has_suffix(run, "/") ? xstrdup(run) : xasprintf("%s/", run);
    return xasprintf("%sruns/%s/", c->store, run);
}
