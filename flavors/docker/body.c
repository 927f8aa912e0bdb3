/* What the docker flavor asks the engine to create: the bind mounts that let the step reach its
 * file:// places (and never the host's secrets or the engine's socket), and the create request
 * bodies (Docker's API, and Podman's own for GPUs through CDI) with the environment, labels,
 * resources and GPUs. */
#include "docker.h"

#include "../../runtime/fsutil.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* ---- bind mounts ---- */

void docker_mounts_free(struct docker_mounts *ms)
{
    for (int i = 0; i < ms->n; i++) {
        free(ms->v[i].source);
        free(ms->v[i].target);
    }
    free(ms->v);
    ms->v = NULL;
    ms->n = 0;
}

static int docker_path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0' || (n && dir[n - 1] == '/'));
}

/* Adds a mount of path at the same path, unless one already covers it. */
static void docker_mounts_add_same(struct docker_mounts *ms, const char *path, int ro)
{
    for (int i = 0; i < ms->n; i++)
        if (strcmp(ms->v[i].source, ms->v[i].target) == 0 && docker_path_under(path, ms->v[i].source) && (ro || !ms->v[i].ro))
            return;
    ms->v = xrealloc(ms->v, (size_t)(ms->n + 1) * sizeof *ms->v);
    ms->v[ms->n++] = (struct docker_mount){ xstrdup(path), xstrdup(path), ro };
}

/* path with symbolic links resolved as far as it exists, the rest appended; caller frees. */
static char *docker_resolve(const char *path)
{
    char *head = xstrdup(path), real[PATH_MAX];
    size_t n = strlen(head);
    while (n > 1 && !realpath(head, real)) {
        while (n > 1 && head[n - 1] != '/')
            n--;
        while (n > 1 && head[n - 1] == '/')
            n--;
        head[n] = '\0';
    }
    if (n <= 1)
        str_copy(real, sizeof real, "/");
    const char *rest = path + n;
    while (*rest == '/')
        rest++;
    char *r = *rest ? xasprintf("%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", rest) : xstrdup(real);
    free(head);
    return r;
}

/* Whether a mount of real (resolved) would show the engine's socket: the socket itself or a
 * directory above it, for the configured engine and the usual places. */
static int docker_exposes_socket(const char *real, const struct docker_cfg *c)
{
    const char *h = c->host ? c->host : getenv("DOCKER_HOST");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char *user_podman = xdg && *xdg ? xasprintf("%s/podman/podman.sock", xdg) : NULL;
    char *user_docker = xdg && *xdg ? xasprintf("%s/docker.sock", xdg) : NULL;
    const char *socks[] = { h && str_has_prefix(h, "unix://") ? h + 7 : NULL, DOCKER_DEFAULT_SOCKET, "/run/docker.sock",
                            "/run/podman/podman.sock", user_podman, user_docker };
    int hit = 0;
    for (size_t i = 0; i < sizeof socks / sizeof *socks && !hit; i++) {
        if (!socks[i] || socks[i][0] != '/')
            continue;
        char *s = docker_resolve(socks[i]);
        hit = docker_path_under(s, real) || docker_path_under(socks[i], real);
        free(s);
    }
    free(user_podman);
    free(user_docker);
    return hit;
}

/* A step's URIs become bind mounts: never of the host's root, its configuration or kernel
 * interfaces (/etc, /proc, /sys, /dev), nor anything that shows the engine's socket (a step
 * with it owns the host). what names the field for the message. */
static int docker_mount_allowed(const char *path, const struct docker_cfg *c, const char *what, struct err *e)
{
    static const char *const forbidden[] = { "/etc", "/proc", "/sys", "/dev" };
    if (strstr(path, "/./") || strstr(path, "/../") || str_has_suffix(path, "/.") || str_has_suffix(path, "/.."))
        return err_set(e, ERR_INVALID, "%s: %s has '.' or '..' segments; give the docker flavor a plain path to mount",
                       what, path);
    char *real = docker_resolve(path);
    const char *bad = NULL;
    if (strcmp(real, "/") == 0)
        bad = "the host's root";
    for (size_t i = 0; !bad && i < sizeof forbidden / sizeof *forbidden; i++)
        if (docker_path_under(real, forbidden[i]) || docker_path_under(path, forbidden[i]))
            bad = forbidden[i];
    if (!bad && docker_exposes_socket(real, c))
        bad = "the container engine's socket";
    int moved = strcmp(real, path) != 0;
    if (bad)
        err_set(e, ERR_INVALID, "%s: the docker flavor would mount %s%s%s%s, which shows %s to the step; it never mounts "
                "/, /etc, /proc, /sys, /dev or the engine's socket: put the data elsewhere, or serve it over http(s) or s3",
                what, path, moved ? " (" : "", moved ? real : "", moved ? ")" : "", bad);
    free(real);
    return bad ? -1 : 0;
}

/* The file:// places the step reads and writes, mounted at the same paths so the manifest's
 * URIs mean the same inside: the run's prefix (read-write), each input that exists
 * (read-only) and the directory of each output stored outside the run prefix (read-write,
 * created when create_dirs). Then settings.mounts and the injected binary. */
int docker_collect_mounts(const struct job *j, const struct docker_cfg *c, int create_dirs, struct docker_mounts *ms,
                          struct err *e)
{
    const struct manifest *m = j->m;
    char scheme[16];
    char *path = NULL;
    memset(ms, 0, sizeof *ms);
    if (uri_scheme(m->run_uri, scheme, sizeof scheme) == 0 && strcmp(scheme, "file") == 0) {
        if (uri_file_path(m->run_uri, &path, e) < 0)
            return err_prefix(e, "run_uri: ");
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            path[--n] = '\0';
        if (docker_mount_allowed(path, c, "run_uri", e) < 0 || (create_dirs && fs_mkdir_p(path, e) < 0)) {
            free(path);
            return -1;
        }
        docker_mounts_add_same(ms, path, 0);
        free(path);
    }
    for (int i = 0; i < m->output_count; i++) {
        const char *u = m->outputs[i].uri;
        if (!u || uri_scheme(u, scheme, sizeof scheme) < 0 || strcmp(scheme, "file") != 0)
            continue;
        if (uri_file_path(u, &path, e) < 0)
            return err_prefix(e, "outputs[%d].uri: ", i);
        char *slash = strrchr(path, '/');
        if (slash && slash != path)
            *slash = '\0';
        char what[160];
        snprintf(what, sizeof what, "outputs[%d] (%s)", i, m->outputs[i].name);
        if (docker_mount_allowed(path, c, what, e) < 0 || (create_dirs && fs_mkdir_p(path, e) < 0)) {
            free(path);
            docker_mounts_free(ms);
            return -1;
        }
        docker_mounts_add_same(ms, path, 0);
        free(path);
    }
    for (int i = 0; i < m->input_count; i++) {
        const char *u = m->inputs[i].uri;
        if (uri_scheme(u, scheme, sizeof scheme) < 0 || strcmp(scheme, "file") != 0)
            continue;
        if (uri_file_path(u, &path, e) < 0)
            return err_prefix(e, "inputs[%d].uri: ", i);
        char what[160];
        snprintf(what, sizeof what, "inputs[%d] (%s)", i, m->inputs[i].name);
        if (docker_mount_allowed(path, c, what, e) < 0) {
            free(path);
            docker_mounts_free(ms);
            return -1;
        }
        /* A missing input is left to `stepop run`, which reports it as input_error. */
        if (access(path, F_OK) == 0)
            docker_mounts_add_same(ms, path, 1);
        free(path);
    }
    for (const cJSON *it = c->mounts ? c->mounts->child : NULL; it; it = it->next) {
        const char *s = it->valuestring, *c1 = strchr(s, ':'), *c2 = strchr(c1 + 1, ':');
        /* Explicit mounts are the operator's own choice (its configuration), but never the
         * root or the engine's socket. */
        char *src = xstrndup(s, (size_t)(c1 - s)), *real = docker_resolve(src);
        int bad = strcmp(real, "/") == 0 || docker_exposes_socket(real, c);
        if (bad)
            err_set(e, ERR_INVALID, "settings.mounts: \"%s\" would show %s to the step; the docker flavor never mounts it",
                    s, strcmp(real, "/") == 0 ? "the host's root" : "the container engine's socket");
        free(src);
        free(real);
        if (bad) {
            docker_mounts_free(ms);
            return -1;
        }
        ms->v = xrealloc(ms->v, (size_t)(ms->n + 1) * sizeof *ms->v);
        ms->v[ms->n++] = (struct docker_mount){ xstrndup(s, (size_t)(c1 - s)),
                                                c2 ? xstrndup(c1 + 1, (size_t)(c2 - c1 - 1)) : xstrdup(c1 + 1),
                                                c2 && strcmp(c2, ":ro") == 0 };
    }
    if (c->inject) {
        ms->v = xrealloc(ms->v, (size_t)(ms->n + 1) * sizeof *ms->v);
        ms->v[ms->n++] = (struct docker_mount){ xstrdup(c->stepop_binary), xstrdup(DOCKER_INJECT_PATH), 1 };
    }
    return 0;
}

/* ---- the create request ---- */

int64_t docker_stop_seconds(int64_t grace_ms, int64_t margin_ms)
{
    return (grace_ms + margin_ms + 999) / 1000;
}

char *docker_container_name(const struct manifest *m)
{
    return xasprintf("stepop-%s", m->run_id);
}

/* The GPU names for CDI: <kind>=<id> for each id, else <kind>=0..N-1. */
static cJSON *docker_cdi_names(const struct docker_cfg *c, int gpus)
{
    cJSON *a = cJSON_CreateArray();
    if (c->gpu_ids) {
        const cJSON *it;
        cJSON_ArrayForEach(it, c->gpu_ids)
        {
            char *n = xasprintf("%s=%s", c->cdi_kind, it->valuestring);
            cJSON_AddItemToArray(a, cJSON_CreateString(n));
            free(n);
        }
    } else {
        for (int i = 0; i < gpus; i++) {
            char *n = xasprintf("%s=%d", c->cdi_kind, i);
            cJSON_AddItemToArray(a, cJSON_CreateString(n));
            free(n);
        }
    }
    return a;
}

/* The container's environment: STEPOP_MANIFEST, STEPOP_ATTEMPT, then the host variables that
 * settings.pass_env names (values hidden when redact). */
static void docker_env_each(const struct job *j, const struct docker_cfg *c, int redact,
                            void (*add)(void *ctx, const char *name, size_t name_len, const char *value), void *ctx)
{
    add(ctx, "STEPOP_MANIFEST", 15, j->manifest_uri);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    add(ctx, "STEPOP_ATTEMPT", 14, attempt);
    for (char **ev = environ; ev && *ev; ev++) {
        const char *eq = strchr(*ev, '=');
        if (!eq)
            continue;
        size_t n = (size_t)(eq - *ev);
        if ((n == 15 && strncmp(*ev, "STEPOP_MANIFEST", 15) == 0) || (n == 14 && strncmp(*ev, "STEPOP_ATTEMPT", 14) == 0))
            continue;
        if (docker_env_passes(c, *ev, n))
            add(ctx, *ev, n, redact ? "<hidden: from the submitting environment>" : eq + 1);
    }
}

static void docker_env_add_list(void *ctx, const char *name, size_t name_len, const char *value)
{
    char *s = xasprintf("%.*s=%s", (int)name_len, name, value);
    cJSON_AddItemToArray(ctx, cJSON_CreateString(s));
    free(s);
}

static void docker_env_add_map(void *ctx, const char *name, size_t name_len, const char *value)
{
    char *n = xstrndup(name, name_len);
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, n);
    cJSON_AddStringToObject(ctx, n, value);
    free(n);
}

static cJSON *docker_labels(const struct job *j, const struct docker_cfg *c)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, DOCKER_LABEL_RUN, j->m->run_id);
    char red[1024];
    uri_redact(j->m->run_uri, red, sizeof red);
    cJSON_AddStringToObject(l, "io.stepop.run-uri", red);
    if (j->m->step)
        cJSON_AddStringToObject(l, "io.stepop.step", j->m->step);
    const cJSON *it;
    cJSON_ArrayForEach(it, c->labels) cJSON_AddStringToObject(l, it->string, it->valuestring);
    return l;
}

static cJSON *docker_entrypoint(const struct docker_cfg *c)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(c->inject ? DOCKER_INJECT_PATH : "stepop"));
    cJSON_AddItemToArray(a, cJSON_CreateString("run"));
    return a;
}

/* Docker's API (also Podman's compatible one): POST /containers/create. */
cJSON *docker_create_body(const struct job *j, const struct docker_cfg *c, enum docker_engine engine,
                          const struct docker_mounts *ms, int redact)
{
    const struct manifest *m = j->m;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "Image", m->image);
    cJSON_AddItemToObject(b, "Entrypoint", docker_entrypoint(c));
    cJSON_AddItemToObject(b, "Cmd", cJSON_CreateArray());
    cJSON *env = cJSON_AddArrayToObject(b, "Env");
    docker_env_each(j, c, redact, docker_env_add_list, env);
    cJSON_AddItemToObject(b, "Labels", docker_labels(j, c));
    cJSON_AddStringToObject(b, "StopSignal", "SIGTERM");
    cJSON_AddNumberToObject(b, "StopTimeout", (double)docker_stop_seconds(m->grace_ms, c->stop_margin_ms));
    cJSON_AddBoolToObject(b, "AttachStdout", 0);
    cJSON_AddBoolToObject(b, "AttachStderr", 0);
    cJSON_AddBoolToObject(b, "Tty", 0);
    cJSON_AddBoolToObject(b, "OpenStdin", 0);
    cJSON *hc = cJSON_AddObjectToObject(b, "HostConfig");
    cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
    for (int i = 0; i < ms->n; i++) {
        cJSON *mo = cJSON_CreateObject();
        cJSON_AddStringToObject(mo, "Type", "bind");
        cJSON_AddStringToObject(mo, "Source", ms->v[i].source);
        cJSON_AddStringToObject(mo, "Target", ms->v[i].target);
        cJSON_AddBoolToObject(mo, "ReadOnly", ms->v[i].ro);
        cJSON_AddItemToArray(mounts, mo);
    }
    if (m->cpu > 0)
        cJSON_AddNumberToObject(hc, "NanoCpus", (double)(int64_t)(m->cpu * 1e9 + 0.5));
    if (m->memory > 0) {
        cJSON_AddNumberToObject(hc, "Memory", (double)m->memory);
        cJSON_AddNumberToObject(hc, "MemorySwap", (double)m->memory); /* no swap beyond the limit */
    }
    if (c->shm_size > 0)
        cJSON_AddNumberToObject(hc, "ShmSize", (double)c->shm_size);
    if (c->network)
        cJSON_AddStringToObject(hc, "NetworkMode", c->network);
    if (m->gpus > 0) {
        cJSON *drs = cJSON_AddArrayToObject(hc, "DeviceRequests");
        cJSON *dr = cJSON_CreateObject();
        int cdi = c->gpu == DOCKER_GPU_CDI || (c->gpu == DOCKER_GPU_AUTO && engine == DOCKER_ENGINE_PODMAN);
        if (cdi) {
            cJSON_AddStringToObject(dr, "Driver", "cdi");
            cJSON_AddItemToObject(dr, "DeviceIDs", docker_cdi_names(c, m->gpus));
        } else {
            cJSON_AddStringToObject(dr, "Driver", "nvidia");
            const cJSON *first = c->gpu_ids ? c->gpu_ids->child : NULL;
            if (first && strcmp(first->valuestring, "all") == 0) {
                cJSON_AddNumberToObject(dr, "Count", -1); /* Docker's --gpus all */
            } else if (c->gpu_ids) {
                cJSON_AddNumberToObject(dr, "Count", 0);
                cJSON_AddItemToObject(dr, "DeviceIDs", cJSON_Duplicate(c->gpu_ids, 1));
            } else {
                cJSON_AddNumberToObject(dr, "Count", m->gpus);
            }
            cJSON *caps = cJSON_CreateArray(), *one = cJSON_CreateArray();
            cJSON_AddItemToArray(one, cJSON_CreateString("gpu"));
            cJSON_AddItemToArray(caps, one);
            cJSON_AddItemToObject(dr, "Capabilities", caps);
        }
        cJSON_AddItemToArray(drs, dr);
    }
    cJSON_AddBoolToObject(hc, "AutoRemove", 0);
    cJSON_AddBoolToObject(hc, "Init", 0);
    return b;
}

/* Podman's own API (POST /libpod/containers/create), used when a step on Podman needs GPUs:
 * Podman's compatible API does not turn GPU requests into CDI devices in every release
 * (Debian 12's 4.3 drops DeviceRequests without a word), while its own API takes CDI names
 * as devices since 4.1. */
cJSON *docker_libpod_body(const struct job *j, const struct docker_cfg *c, const struct docker_mounts *ms,
                          const char *name, int redact)
{
    const struct manifest *m = j->m;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "name", name);
    cJSON_AddStringToObject(b, "image", m->image);
    cJSON_AddItemToObject(b, "entrypoint", docker_entrypoint(c));
    cJSON_AddItemToObject(b, "command", cJSON_CreateArray());
    cJSON *env = cJSON_AddObjectToObject(b, "env");
    docker_env_each(j, c, redact, docker_env_add_map, env);
    cJSON_AddItemToObject(b, "labels", docker_labels(j, c));
    cJSON_AddNumberToObject(b, "stop_signal", 15);
    cJSON_AddNumberToObject(b, "stop_timeout", (double)docker_stop_seconds(m->grace_ms, c->stop_margin_ms));
    cJSON *mounts = cJSON_AddArrayToObject(b, "mounts");
    for (int i = 0; i < ms->n; i++) {
        cJSON *mo = cJSON_CreateObject();
        cJSON_AddStringToObject(mo, "type", "bind");
        cJSON_AddStringToObject(mo, "source", ms->v[i].source);
        cJSON_AddStringToObject(mo, "destination", ms->v[i].target);
        cJSON *opts = cJSON_AddArrayToObject(mo, "options");
        cJSON_AddItemToArray(opts, cJSON_CreateString("rbind"));
        cJSON_AddItemToArray(opts, cJSON_CreateString(ms->v[i].ro ? "ro" : "rw"));
        cJSON_AddItemToArray(mounts, mo);
    }
    if (m->cpu > 0 || m->memory > 0) {
        cJSON *rl = cJSON_AddObjectToObject(b, "resource_limits");
        if (m->memory > 0) {
            cJSON *mem = cJSON_AddObjectToObject(rl, "memory");
            cJSON_AddNumberToObject(mem, "limit", (double)m->memory);
            cJSON_AddNumberToObject(mem, "swap", (double)m->memory);
        }
        if (m->cpu > 0) {
            cJSON *cpu = cJSON_AddObjectToObject(rl, "cpu");
            cJSON_AddNumberToObject(cpu, "quota", (double)(int64_t)(m->cpu * 100000 + 0.5));
            cJSON_AddNumberToObject(cpu, "period", 100000);
        }
    }
    if (c->shm_size > 0)
        cJSON_AddNumberToObject(b, "shm_size", (double)c->shm_size);
    if (c->network) {
        const char *n = c->network;
        int special = strcmp(n, "host") == 0 || strcmp(n, "none") == 0 || strcmp(n, "bridge") == 0;
        cJSON *ns = cJSON_AddObjectToObject(b, "netns");
        cJSON_AddStringToObject(ns, "nsmode", special ? n : "bridge");
        if (!special)
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(b, "Networks"), n);
    }
    cJSON *devs = cJSON_AddArrayToObject(b, "devices");
    cJSON *names = docker_cdi_names(c, m->gpus);
    const cJSON *it;
    cJSON_ArrayForEach(it, names)
    {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "path", it->valuestring);
        cJSON_AddItemToArray(devs, d);
    }
    cJSON_Delete(names);
    return b;
}

int docker_use_libpod(const struct job *j, const struct docker_cfg *c, enum docker_engine engine)
{
    return engine == DOCKER_ENGINE_PODMAN && j->m->gpus > 0 && c->gpu != DOCKER_GPU_NVIDIA;
}
