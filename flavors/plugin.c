/* Flavor plugins (docs/plugins.md): one invocation of the plugin per operation, the request on
 * its stdin, the answer on its stdout, its stderr the user's. */
#include "plugin.h"

#include "../runtime/jsonutil.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLUGIN_PREFIX "stepop-flavor-"

static const char *const op_names[PLUGIN_OP_COUNT] = { "validate", "render", "submit", "poll", "cancel", "cleanup" };
static const int64_t op_default_ms[PLUGIN_OP_COUNT] = { 30000, 30000, 300000, 60000, 120000, 120000 };

const char *plugin_op_name(enum plugin_op op)
{
    return op_names[op];
}

static int valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64 || !(islower((unsigned char)n[0]) || isdigit((unsigned char)n[0])))
        return 0;
    for (const char *p = n; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
    return 1;
}

static int is_executable_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* file on PATH, as execvp would find it; caller frees. */
static char *path_search(const char *file)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        return NULL;
    char *copy = xstrdup(path), *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/')
            continue; /* a relative PATH entry would make the plugin depend on the directory we are in */
        char *cand = xasprintf("%s/%s", dir, file);
        if (is_executable_file(cand))
            found = cand;
        else
            free(cand);
    }
    free(copy);
    return found;
}

char *plugin_lookup(const char *name)
{
    if (!valid_name(name))
        return NULL;
    char *file = xasprintf(PLUGIN_PREFIX "%s", name);
    char *p = path_search(file);
    free(file);
    return p;
}

static int builtin_name(const char *name)
{
    int n;
    const struct flavor_info *all = flavor_all(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(all[i].name, name) == 0)
            return 1;
    return 0;
}

void plugin_each(void (*fn)(const char *name, const char *path, void *arg), void *arg)
{
    const char *path = getenv("PATH");
    if (!path)
        return;
    char *copy = xstrdup(path), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/')
            continue;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            const char *name = de->d_name + strlen(PLUGIN_PREFIX);
            if (strncmp(de->d_name, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) != 0 || !valid_name(name) ||
                builtin_name(name))
                continue;
            /* The first on PATH wins, as for the lookup itself. */
            char *first = plugin_lookup(name);
            char *here = xasprintf("%s/%s", dir, de->d_name);
            if (first && strcmp(first, here) == 0)
                fn(name, first, arg);
            free(here);
            free(first);
        }
        closedir(d);
    }
    free(copy);
}

/* Resolves a plugin setting: an absolute path, or a name looked up on PATH. */
static char *resolve_setting(const char *setting, struct err *e)
{
    if (strchr(setting, '/')) {
        if (setting[0] != '/') {
            err_set(e, ERR_INVALID, "settings.plugin: \"%s\": expected an absolute path or a name on PATH", setting);
            return NULL;
        }
        if (!is_executable_file(setting)) {
            err_set(e, ERR_NOT_FOUND, "settings.plugin: %s is not an executable file", setting);
            return NULL;
        }
        return xstrdup(setting);
    }
    char *p = path_search(setting);
    if (!p)
        err_set(e, ERR_NOT_FOUND, "settings.plugin: no executable \"%s\" on PATH", setting);
    return p;
}

const struct flavor_ops *plugin_flavor_find(const char *name, cJSON *settings, const struct config *cfg,
                                            const char *operator_name, int reattach, struct err *e)
{
    if (strcmp(name, "custom") != 0 && builtin_name(name))
        return flavor_find(name, e);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(settings, "plugin");
    const char *setting = NULL;
    if (reattach && cJSON_IsObject(ps))
        setting = json_str(ps, "setting");
    else if (cJSON_IsString(ps))
        setting = ps->valuestring;
    else if (ps && !cJSON_IsNull(ps)) {
        err_set(e, ERR_INVALID, "settings.plugin: expected a string (a path, or a name on PATH)");
        return NULL;
    }
    if (!setting && strcmp(name, "custom") == 0) {
        err_set(e, ERR_USAGE, "the custom flavor needs the plugin setting (docs/plugins.md)");
        return NULL;
    }
    if (!setting && !valid_name(name)) {
        err_set(e, ERR_USAGE, "unknown flavor \"%s\" (see 'stepop flavor list')", name);
        return NULL;
    }
    char *path;
    if (setting) {
        if (reattach) {
            /* The store named this program: run it only when this configuration does too. */
            const cJSON *op = operator_name && cfg ? cJSON_GetObjectItemCaseSensitive(cfg->operators, operator_name)
                                                   : NULL;
            const char *mine = op ? json_str(cJSON_GetObjectItemCaseSensitive(op, "settings"), "plugin") : NULL;
            if (!mine || strcmp(mine, setting) != 0) {
                err_set(e, ERR_REFUSED,
                        "submission.json names the plugin %s, which no operator of this configuration names "
                        "(operator %s)", setting, operator_name ? operator_name : "none");
                return NULL;
            }
        }
        path = resolve_setting(setting, e);
        if (!path)
            return NULL;
    } else {
        path = plugin_lookup(name);
        if (!path) {
            err_set(e, ERR_USAGE, "unknown flavor \"%s\": no built-in flavor and no " PLUGIN_PREFIX "%s on PATH "
                    "(see 'stepop flavor list')", name, name);
            return NULL;
        }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "path", path);
    json_add_str(o, "setting", setting);
    free(path);
    cJSON_DeleteItemFromObjectCaseSensitive(settings, "plugin");
    cJSON_AddItemToObject(settings, "plugin", o);
    return &flavor_plugin_ops;
}

int plugin_timeout_ms(const cJSON *settings, enum plugin_op op, int64_t *ms, struct err *e)
{
    *ms = op_default_ms[op];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(settings, "plugin_timeout");
    if (!t || cJSON_IsNull(t))
        return 0;
    if (cJSON_IsObject(t)) {
        for (const cJSON *it = t->child; it; it = it->next) {
            int known = 0;
            for (int i = 0; i < PLUGIN_OP_COUNT; i++)
                known |= strcmp(it->string, op_names[i]) == 0;
            if (!known)
                return err_set(e, ERR_INVALID, "settings.plugin_timeout.%s: not an operation (validate, render, "
                               "submit, poll, cancel, cleanup)", it->string);
        }
        t = cJSON_GetObjectItemCaseSensitive(t, op_names[op]);
        if (!t)
            return 0;
    }
    if (!cJSON_IsNumber(t) || !(t->valuedouble > 0) || t->valuedouble > 86400)
        return err_set(e, ERR_INVALID, "settings.plugin_timeout: expected seconds (more than 0, at most 86400), "
                       "or an object of them by operation");
    *ms = (int64_t)(t->valuedouble * 1000);
    if (*ms < 1)
        *ms = 1;
    return 0;
}

cJSON *plugin_request(enum plugin_op op, const char *name, const cJSON *settings, const struct job *j,
                      const cJSON *handle, int64_t grace_ms, const char *stepop)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "protocol_version", 1);
    cJSON_AddStringToObject(r, "operation", op_names[op]);
    cJSON_AddStringToObject(r, "plugin", name);
    cJSON *s = settings ? cJSON_Duplicate(settings, 1) : cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(s, "plugin");
    cJSON_DeleteItemFromObjectCaseSensitive(s, "plugin_timeout");
    if (j) {
        cJSON_AddStringToObject(r, "run_id", j->m->run_id);
        cJSON_AddStringToObject(r, "run_uri", j->m->run_uri);
    } else {
        json_add_str(r, "run_id", json_str(handle, "run_id"));
        json_add_str(r, "run_uri", json_str(handle, "run_uri"));
    }
    cJSON_AddItemToObject(r, "settings", s);
    json_add_str(r, "stepop", stepop);
    cJSON_AddNumberToObject(r, "grace_period_ms", (double)grace_ms);
    if (j) {
        cJSON_AddItemToObject(r, "manifest", manifest_to_json(j->m));
        cJSON_AddStringToObject(r, "manifest_uri", j->manifest_uri);
        cJSON_AddNumberToObject(r, "attempt", j->attempt > 0 ? j->attempt : 1);
    } else {
        cJSON_AddItemToObject(r, "handle", handle ? cJSON_Duplicate(handle, 1) : cJSON_CreateObject());
    }
    return r;
}

/* The first bytes of what a plugin printed, for a message: control bytes escaped, bounded. */
static void snippet(const char *p, size_t len, char *out, size_t n)
{
    size_t k = 0, max = len < 200 ? len : 200;
    for (size_t i = 0; i < max && k + 5 < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, n - k, "\\x%02x", c);
    }
    if (len > max && k + 4 < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
}

static enum err_kind error_kind(const char *kind)
{
    if (!kind)
        return ERR_INVALID;
    if (strcmp(kind, "refused") == 0)
        return ERR_REFUSED;
    if (strcmp(kind, "not_found") == 0)
        return ERR_NOT_FOUND;
    if (strcmp(kind, "unavailable") == 0)
        return ERR_NETWORK;
    if (strcmp(kind, "unsupported") == 0)
        return ERR_UNSUPPORTED;
    return ERR_INVALID;
}

static int check_schema(const char *who, enum plugin_op op, const cJSON *a, struct err *e)
{
    const char *what = op_names[op];
    switch (op) {
    case PLUGIN_VALIDATE:
    case PLUGIN_CANCEL:
    case PLUGIN_CLEANUP:
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok")))
            return err_set(e, ERR_INVALID, "%s: %s answer: expected {\"ok\": true} or {\"error\": {...}}", who, what);
        return 0;
    case PLUGIN_RENDER: {
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(a, "requests");
        const cJSON *argv = cJSON_GetObjectItemCaseSensitive(a, "argv");
        if (req && argv)
            return err_set(e, ERR_INVALID, "%s: render answer: either requests or argv, not both", who);
        if (req)
            return cJSON_IsArray(req) ? 0 : err_set(e, ERR_INVALID, "%s: render answer: requests: expected an array", who);
        if (!cJSON_IsArray(argv))
            return err_set(e, ERR_INVALID, "%s: render answer: expected requests (an array) or argv (strings)", who);
        for (const cJSON *it = argv->child; it; it = it->next)
            if (!cJSON_IsString(it))
                return err_set(e, ERR_INVALID, "%s: render answer: argv: expected strings", who);
        return 0;
    }
    case PLUGIN_SUBMIT:
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(a, "handle")))
            return err_set(e, ERR_INVALID, "%s: submit answer: handle: expected an object", who);
        return 0;
    case PLUGIN_POLL: {
        struct remote_state st;
        return plugin_parse_state(who, a, &st, e);
    }
    default:
        return err_set(e, ERR_INTERNAL, "%s: unknown operation", who);
    }
}

int plugin_parse_answer(const char *who, enum plugin_op op, const struct subproc_result *r, cJSON **answer,
                        struct err *e)
{
    *answer = NULL;
    char head[1024];
    const char *text = r->out.data ? r->out.data : "";
    size_t len = r->out.data ? r->out.len : 0;
    char status[64] = "";
    if (r->signal)
        snprintf(status, sizeof status, "killed by signal %d", r->signal);
    else if (r->exit_code)
        snprintf(status, sizeof status, "exited with status %d", r->exit_code);
    cJSON *a = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(a)) {
        cJSON_Delete(a);
        snippet(text, len, head, sizeof head);
        if (status[0])
            return err_set(e, ERR_INVALID, "%s: %s; it printed %s%s%s", who, status, len ? "\"" : "nothing",
                           head, len ? "\"" : "");
        return err_set(e, ERR_INVALID, "%s: the answer is not a JSON object; it printed %s%s%s", who,
                       len ? "\"" : "nothing", head, len ? "\"" : "");
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "protocol_version");
    if (v && !(cJSON_IsNumber(v) && v->valuedouble == 1)) {
        cJSON_Delete(a);
        return err_set(e, ERR_INVALID, "%s: the answer speaks protocol_version other than 1", who);
    }
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(a, "error");
    if (er) {
        const char *msg = json_str(er, "message");
        const char *kind = json_str(er, "kind");
        int rc = msg && msg[0] ? err_set(e, error_kind(kind), "%s: %s", who, msg)
                               : err_set(e, ERR_INVALID, "%s: error answer: error.message: expected a string", who);
        cJSON_Delete(a);
        return rc;
    }
    if (status[0]) {
        snippet(text, len, head, sizeof head);
        cJSON_Delete(a);
        return err_set(e, ERR_INVALID, "%s: %s without an error answer; it printed \"%s\"", who, status, head);
    }
    if (check_schema(who, op, a, e) < 0) {
        cJSON_Delete(a);
        return -1;
    }
    *answer = a;
    return 0;
}

int plugin_parse_state(const char *who, const cJSON *answer, struct remote_state *st, struct err *e)
{
    static const struct { const char *name; enum remote_phase phase; } phases[] = {
        { "pending", REMOTE_PENDING }, { "running", REMOTE_RUNNING }, { "exited", REMOTE_EXITED },
        { "terminated", REMOTE_EXITED }, { "gone", REMOTE_GONE }, { "cannot_start", REMOTE_CANNOT_START },
    };
    memset(st, 0, sizeof *st);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(answer, "state");
    if (!cJSON_IsObject(s))
        return err_set(e, ERR_INVALID, "%s: poll answer: state: expected an object", who);
    const char *ph = json_str(s, "phase");
    size_t i = 0;
    while (ph && i < sizeof phases / sizeof phases[0] && strcmp(phases[i].name, ph) != 0)
        i++;
    if (!ph || i == sizeof phases / sizeof phases[0])
        return err_set(e, ERR_INVALID, "%s: poll answer: state.phase: expected one of pending, running, exited, "
                       "terminated, gone, cannot_start", who);
    st->phase = phases[i].phase;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(s, "exit_code");
    if (code && !cJSON_IsNull(code)) {
        if (!cJSON_IsNumber(code) || code->valuedouble != (double)code->valueint || code->valueint < 0 ||
            code->valueint > 255)
            return err_set(e, ERR_INVALID, "%s: poll answer: state.exit_code: expected an integer 0..255", who);
        st->exit_code = code->valueint;
    } else if (strcmp(ph, "exited") == 0) {
        return err_set(e, ERR_INVALID, "%s: poll answer: state.exit_code: required when the phase is exited", who);
    } else if (strcmp(ph, "terminated") == 0) {
        st->exit_code = 137;
    }
    const cJSON *oom = cJSON_GetObjectItemCaseSensitive(s, "oom_killed");
    if (oom && !cJSON_IsNull(oom) && !cJSON_IsBool(oom))
        return err_set(e, ERR_INVALID, "%s: poll answer: state.oom_killed: expected true or false", who);
    st->oom_killed = cJSON_IsTrue(oom);
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(s, "reason");
    if (reason && !cJSON_IsNull(reason)) {
        const char *rs = cJSON_IsString(reason) ? reason->valuestring : "";
        if (strcmp(rs, "timeout") == 0)
            st->reason = REASON_TIMEOUT;
        else if (strcmp(rs, "preempted") == 0)
            st->reason = REASON_PREEMPTED;
        else
            return err_set(e, ERR_INVALID, "%s: poll answer: state.reason: expected timeout, preempted or null", who);
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(s, "message");
    if (msg && !cJSON_IsNull(msg) && !cJSON_IsString(msg))
        return err_set(e, ERR_INVALID, "%s: poll answer: state.message: expected a string", who);
    if (cJSON_IsString(msg))
        snprintf(st->message, sizeof st->message, "%s", msg->valuestring);
    return 0;
}

/* The plugin resolved into settings.plugin by plugin_flavor_find. */
static int resolved(const cJSON *settings, const char **name, const char **path, struct err *e)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(settings, "plugin");
    *name = json_str(p, "name");
    *path = json_str(p, "path");
    if (!*name || !*path || (*path)[0] != '/')
        return err_set(e, ERR_USAGE, "no plugin resolved for this flavor (the custom flavor needs the plugin "
                       "setting; docs/plugins.md)");
    return 0;
}

static int call(enum plugin_op op, const cJSON *settings, const struct job *j, const cJSON *handle,
                int64_t grace_ms, cJSON **answer, struct err *e)
{
    const char *name, *path;
    int64_t timeout;
    if (resolved(settings, &name, &path, e) < 0 || plugin_timeout_ms(settings, op, &timeout, e) < 0)
        return -1;
    char who[PATH_MAX + 128];
    snprintf(who, sizeof who, "plugin %s (%s), operation %s", name, path, op_names[op]);
    char *self = NULL;
    if (!j) {
        self = realpath("/proc/self/exe", NULL);
    }
    cJSON *req = plugin_request(op, name, settings, j, handle, grace_ms, j ? j->stepop_path : self);
    free(self);
    /* The request is never logged: the manifest's environment may hold what users think private. */
    char *text = json_print(req, 0);
    cJSON_Delete(req);
    const char *argv[] = { path, NULL };
    const char *env[] = { "STEPOP_PLUGIN_PROTOCOL=1", NULL };
    struct subproc_opts o = { .argv = argv, .env_extra = env, .input = text, .input_len = strlen(text),
                              .timeout_ms = timeout, .what = who, .own_group = 1 };
    struct subproc_result r;
    int rc = subproc_run(&o, &r, e);
    cJSON_free(text);
    if (rc < 0)
        return -1;
    rc = plugin_parse_answer(who, op, &r, answer, e);
    subproc_result_free(&r);
    return rc;
}

static int64_t handle_grace(const cJSON *handle)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(handle, "grace_period_ms");
    return cJSON_IsNumber(g) && g->valuedouble >= 0 ? (int64_t)g->valuedouble : 30000;
}

static int plugin_validate(const struct job *j, struct err *e)
{
    cJSON *a;
    int64_t t;
    for (int op = 0; op < PLUGIN_OP_COUNT; op++)
        if (plugin_timeout_ms(j->settings, (enum plugin_op)op, &t, e) < 0)
            return -1;
    if (call(PLUGIN_VALIDATE, j->settings, j, NULL, j->m->grace_ms, &a, e) < 0)
        return -1;
    cJSON_Delete(a);
    return 0;
}

static int plugin_render(const struct job *j, cJSON **requests, struct err *e)
{
    cJSON *a;
    if (call(PLUGIN_RENDER, j->settings, j, NULL, j->m->grace_ms, &a, e) < 0)
        return -1;
    cJSON *req = cJSON_DetachItemFromObjectCaseSensitive(a, "requests");
    if (!req) {
        req = cJSON_CreateArray();
        cJSON *one = cJSON_CreateObject();
        cJSON_AddItemToObject(one, "argv", cJSON_DetachItemFromObjectCaseSensitive(a, "argv"));
        cJSON_AddItemToArray(req, one);
    }
    cJSON_Delete(a);
    *requests = req;
    return 0;
}

static int plugin_submit(const struct job *j, cJSON **handle, struct err *e)
{
    cJSON *a;
    if (call(PLUGIN_SUBMIT, j->settings, j, NULL, j->m->grace_ms, &a, e) < 0)
        return -1;
    cJSON *h = cJSON_DetachItemFromObjectCaseSensitive(a, "handle");
    cJSON_Delete(a);
    /* stepop's own keys: the run it was submitted for (flavor.h) and its grace period. */
    static const char *const own[] = { "run_id", "run_uri", "grace_period_ms" };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(h, own[i]);
    cJSON_AddStringToObject(h, "run_id", j->m->run_id);
    cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
    cJSON_AddNumberToObject(h, "grace_period_ms", (double)j->m->grace_ms);
    *handle = h;
    return 0;
}

static int plugin_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    cJSON *a;
    const char *name, *path;
    if (call(PLUGIN_POLL, settings, NULL, handle, handle_grace(handle), &a, e) < 0)
        return -1;
    char who[PATH_MAX + 128];
    resolved(settings, &name, &path, e);
    snprintf(who, sizeof who, "plugin %s (%s), operation poll", name, path);
    int rc = plugin_parse_state(who, a, st, e);
    cJSON_Delete(a);
    return rc;
}

static int plugin_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    cJSON *a;
    if (call(PLUGIN_CANCEL, settings, NULL, handle, grace_ms, &a, e) < 0)
        return -1;
    cJSON_Delete(a);
    return 0;
}

static int plugin_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    cJSON *a;
    if (call(PLUGIN_CLEANUP, settings, NULL, handle, handle_grace(handle), &a, e) < 0)
        return -1;
    cJSON_Delete(a);
    return 0;
}

const struct flavor_ops flavor_plugin_ops = {
    .name = "custom",
    .validate = plugin_validate,
    .render = plugin_render,
    .submit = plugin_submit,
    .poll = plugin_poll,
    .cancel = plugin_cancel,
    .cleanup = plugin_cleanup,
};
