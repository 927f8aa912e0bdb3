/* The docker flavor: one container per step through the Docker Engine API (Docker, or Podman's
 * Docker-compatible service) over DOCKER_HOST, with `stepop run` as its entrypoint. Settings and
 * behaviour: docs/flavors.md#docker; adding stepop to an image: docs/containers.md. */
#include "../flavor.h"

#include "../../runtime/fsutil.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/units.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* Where an injected binary appears inside the container. */
#define DOCKER_INJECT_PATH "/opt/stepop/bin/stepop"
/* API versions: the newest this code was written against, and the oldest with DeviceRequests. */
#define DOCKER_API_MAX_MINOR 44
#define DOCKER_API_MIN_MINOR 40
#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"
#define DOCKER_LABEL_RUN "io.stepop.run-id"

static const char *const docker_known_settings[] = {
    "host", "engine", "pull", "network", "inject", "stepop_binary", "keep", "pass_env", "labels",
    "mounts", "stop_margin", "shm_size", "gpu_driver", "cdi_kind", "gpu_ids", NULL,
};

enum docker_engine { DOCKER_ENGINE_AUTO = 0, DOCKER_ENGINE_DOCKER, DOCKER_ENGINE_PODMAN };
enum docker_pull { DOCKER_PULL_MISSING = 0, DOCKER_PULL_ALWAYS, DOCKER_PULL_NEVER };
enum docker_gpu { DOCKER_GPU_AUTO = 0, DOCKER_GPU_NVIDIA, DOCKER_GPU_CDI };

/* The settings, checked and with their defaults. Strings point into the settings object. */
struct docker_cfg {
    const char *host;
    enum docker_engine engine;
    enum docker_pull pull;
    const char *network;  /* NULL: the engine's default */
    int inject, keep;
    char *stepop_binary;  /* inject: the absolute path of the binary to mount */
    const cJSON *pass_env, *labels, *mounts, *gpu_ids;
    int64_t stop_margin_ms;
    int64_t shm_size;     /* 0: the engine's default */
    enum docker_gpu gpu;
    const char *cdi_kind;
};

/* A connection to the engine. */
struct docker_conn {
    char *host;    /* as configured, for messages and the handle */
    char *sock;    /* unix socket path, or NULL for tcp */
    char *base;    /* http://docker or http://host:port */
    char api[16];  /* "v1.41" */
    char libpod_api[24];
    enum docker_engine engine;
    char engine_version[64];
    struct http_client *http;
};

static const char *docker_engine_name(enum docker_engine k)
{
    return k == DOCKER_ENGINE_PODMAN ? "podman" : "docker";
}

static void docker_cfg_free(struct docker_cfg *c)
{
    free(c->stepop_binary);
    c->stepop_binary = NULL;
}

static int docker_setting_list(const cJSON *s, const char *key, const cJSON **out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v))
        return err_set(e, ERR_INVALID, "settings.%s: expected a list of strings", key);
    for (const cJSON *it = v->child; it; it = it->next)
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return err_set(e, ERR_INVALID, "settings.%s: expected a list of non-empty strings", key);
    *out = v;
    return 0;
}

static int docker_env_pattern_ok(const char *p)
{
    size_t n = strlen(p);
    if (n && p[n - 1] == '*')
        n--;
    if (!n || !(isalpha((unsigned char)p[0]) || p[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_'))
            return 0;
    return 1;
}

/* The default binary to inject: this binary when it is the static build, else stepop-static
 * beside it (build/stepop -> build/stepop-static). */
static char *docker_default_stepop_binary(const char *self)
{
#ifdef STEPOP_STATIC_BUILD
    if (self)
        return xstrdup(self);
#endif
    if (!self)
        return NULL;
    const char *slash = strrchr(self, '/');
    return slash ? xasprintf("%.*s/stepop-static", (int)(slash - self), self) : xstrdup("stepop-static");
}

static int docker_parse_settings(const cJSON *s, const char *self, int check_inject, struct docker_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    if (flavor_check_settings(s, "docker", docker_known_settings, e) < 0)
        return -1;
    const char *engine, *pull, *margin, *shm, *gpu, *bin;
    if (flavor_setting_str(s, "host", NULL, &c->host, e) < 0 || flavor_setting_str(s, "engine", "auto", &engine, e) < 0 ||
        flavor_setting_str(s, "pull", "missing", &pull, e) < 0 ||
        flavor_setting_str(s, "network", NULL, &c->network, e) < 0 ||
        flavor_setting_bool(s, "inject", 0, &c->inject, e) < 0 ||
        flavor_setting_str(s, "stepop_binary", NULL, &bin, e) < 0 || flavor_setting_bool(s, "keep", 0, &c->keep, e) < 0 ||
        flavor_setting_str(s, "stop_margin", "30s", &margin, e) < 0 ||
        flavor_setting_str(s, "shm_size", NULL, &shm, e) < 0 ||
        flavor_setting_str(s, "gpu_driver", "auto", &gpu, e) < 0 ||
        flavor_setting_str(s, "cdi_kind", "nvidia.com/gpu", &c->cdi_kind, e) < 0)
        return -1;
    if (docker_setting_list(s, "pass_env", &c->pass_env, e) < 0 || docker_setting_list(s, "mounts", &c->mounts, e) < 0 ||
        docker_setting_list(s, "gpu_ids", &c->gpu_ids, e) < 0)
        return -1;

    if (strcmp(engine, "auto") == 0)
        c->engine = DOCKER_ENGINE_AUTO;
    else if (strcmp(engine, "docker") == 0)
        c->engine = DOCKER_ENGINE_DOCKER;
    else if (strcmp(engine, "podman") == 0)
        c->engine = DOCKER_ENGINE_PODMAN;
    else
        return err_set(e, ERR_INVALID, "settings.engine: expected auto, docker or podman, got \"%s\"", engine);
    if (strcmp(pull, "missing") == 0)
        c->pull = DOCKER_PULL_MISSING;
    else if (strcmp(pull, "always") == 0)
        c->pull = DOCKER_PULL_ALWAYS;
    else if (strcmp(pull, "never") == 0)
        c->pull = DOCKER_PULL_NEVER;
    else
        return err_set(e, ERR_INVALID, "settings.pull: expected missing, always or never, got \"%s\"", pull);
    if (strcmp(gpu, "auto") == 0)
        c->gpu = DOCKER_GPU_AUTO;
    else if (strcmp(gpu, "nvidia") == 0)
        c->gpu = DOCKER_GPU_NVIDIA;
    else if (strcmp(gpu, "cdi") == 0)
        c->gpu = DOCKER_GPU_CDI;
    else
        return err_set(e, ERR_INVALID, "settings.gpu_driver: expected auto, nvidia or cdi, got \"%s\"", gpu);
    if (units_parse_duration(margin, &c->stop_margin_ms, e) < 0)
        return err_prefix(e, "settings.stop_margin: ");
    if (shm && units_parse_size(shm, &c->shm_size, e) < 0)
        return err_prefix(e, "settings.shm_size: ");
    if (c->network && !c->network[0])
        c->network = NULL;
    if (c->host) {
        if (!str_has_prefix(c->host, "unix://") && !str_has_prefix(c->host, "tcp://"))
            return err_set(e, ERR_INVALID, "settings.host: expected unix:///PATH or tcp://HOST:PORT, got \"%s\"", c->host);
    }
    if (!strchr(c->cdi_kind, '/') || strchr(c->cdi_kind, '='))
        return err_set(e, ERR_INVALID, "settings.cdi_kind: expected a CDI kind like nvidia.com/gpu, got \"%s\"", c->cdi_kind);

    c->labels = cJSON_GetObjectItemCaseSensitive(s, "labels");
    if (c->labels && cJSON_IsNull(c->labels))
        c->labels = NULL;
    if (c->labels) {
        if (!cJSON_IsObject(c->labels))
            return err_set(e, ERR_INVALID, "settings.labels: expected an object of strings");
        for (const cJSON *it = c->labels->child; it; it = it->next) {
            if (!cJSON_IsString(it))
                return err_set(e, ERR_INVALID, "settings.labels.%s: expected a string", it->string);
            if (str_has_prefix(it->string, "io.stepop."))
                return err_set(e, ERR_INVALID, "settings.labels.%s: the io.stepop. labels are stepop's own", it->string);
        }
    }
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        if (!docker_env_pattern_ok(it->valuestring))
            return err_set(e, ERR_INVALID, "settings.pass_env: \"%s\" is not a variable name or NAME_PREFIX*", it->valuestring);
        if (str_has_prefix(it->valuestring, "STEPOP_MANIFEST") || strcmp(it->valuestring, "STEPOP_ATTEMPT") == 0)
            return err_set(e, ERR_INVALID, "settings.pass_env: %s is set by the flavor itself", it->valuestring);
    }
    for (const cJSON *it = c->mounts ? c->mounts->child : NULL; it; it = it->next) {
        const char *m = it->valuestring, *c1 = strchr(m, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (m[0] != '/' || !c1 || c1[1] != '/' || (c2 && strcmp(c2, ":ro") != 0 && strcmp(c2, ":rw") != 0))
            return err_set(e, ERR_INVALID, "settings.mounts: \"%s\" is not HOST_PATH:CONTAINER_PATH[:ro|:rw] with absolute paths", m);
    }
    for (const cJSON *it = c->gpu_ids ? c->gpu_ids->child : NULL; it; it = it->next)
        if (strchr(it->valuestring, '=') || strchr(it->valuestring, ','))
            return err_set(e, ERR_INVALID, "settings.gpu_ids: \"%s\" is not a device id (an index, a UUID or all)", it->valuestring);

    if (c->inject && check_inject) {
        char *path = bin ? xstrdup(bin) : docker_default_stepop_binary(self);
        if (!path)
            return err_set(e, ERR_INVALID, "settings.inject: no static stepop binary known; set settings.stepop_binary");
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(path, real) || stat(real, &st) < 0 || !S_ISREG(st.st_mode) || access(real, X_OK) < 0) {
            err_set(e, ERR_INVALID,
                    "settings.inject: the static stepop binary %s is missing or not executable (build it with 'make static', "
                    "or set settings.stepop_binary)",
                    path);
            free(path);
            return -1;
        }
        free(path);
        c->stepop_binary = xstrdup(real);
    } else if (bin) {
        return err_set(e, ERR_INVALID, "settings.stepop_binary: only used with inject: true");
    }
    return 0;
}

/* ---- URIs the container must reach ---- */

/* The host part of an http(s) URI, lower-cased, into out; "" for other schemes. */
static void docker_uri_host(const char *uri, char *out, size_t len)
{
    char scheme[16];
    out[0] = '\0';
    if (uri_scheme(uri, scheme, sizeof scheme) < 0 || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        return;
    const char *p = strstr(uri, "://") + 3, *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    const char *hend;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        hend = hend ? hend + 1 : end;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (!hend)
            hend = end;
    }
    size_t n = (size_t)(hend - p) < len - 1 ? (size_t)(hend - p) : len - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
}

static int docker_is_loopback(const char *uri)
{
    char host[256];
    docker_uri_host(uri, host, sizeof host);
    return strcmp(host, "localhost") == 0 || str_has_prefix(host, "127.") || strcmp(host, "[::1]") == 0;
}

/* A variable of the host environment passes into the container (settings.pass_env). */
static int docker_env_passes(const struct docker_cfg *c, const char *name, size_t name_len)
{
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *p = it->valuestring;
        size_t n = strlen(p);
        if (p[n - 1] == '*' ? name_len >= n - 1 && strncmp(name, p, n - 1) == 0 : name_len == n && strncmp(name, p, n) == 0)
            return 1;
    }
    return 0;
}

/* ---- bind mounts ---- */

struct docker_mount {
    char *source, *target;
    int ro;
};

struct docker_mounts {
    struct docker_mount *v;
    int n;
};

static void docker_mounts_free(struct docker_mounts *ms)
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
static int docker_collect_mounts(const struct job *j, const struct docker_cfg *c, int create_dirs,
                                 struct docker_mounts *ms, struct err *e)
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

/* ---- validate ---- */

static int docker_check_job(const struct job *j, const struct docker_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (!m->image || !m->image[0])
        return err_set(e, ERR_INVALID, "the docker flavor needs an image (manifest \"image\", or --image)");
    for (const char *p = m->image; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return err_set(e, ERR_INVALID, "image \"%s\": a reference has no white space", m->image);
    if (m->cpu < 0 || m->cpu > 1e6)
        return err_set(e, ERR_INVALID, "resources.cpu: %g is out of range", m->cpu);
    if (m->memory > 0 && m->memory < 6 * 1024 * 1024)
        return err_set(e, ERR_INVALID, "resources.memory: Docker refuses limits below 6 MiB");
    if (c->gpu_ids && m->gpus <= 0)
        return err_set(e, ERR_INVALID, "settings.gpu_ids: the step asks for no GPUs (resources.gpus)");
    int n_ids = c->gpu_ids ? cJSON_GetArraySize(c->gpu_ids) : 0, all = 0;
    for (const cJSON *it = c->gpu_ids ? c->gpu_ids->child : NULL; it; it = it->next)
        all |= strcmp(it->valuestring, "all") == 0;
    if (all && n_ids != 1)
        return err_set(e, ERR_INVALID, "settings.gpu_ids: \"all\" stands alone");
    if (c->gpu_ids && !all && n_ids != m->gpus)
        return err_set(e, ERR_INVALID, "settings.gpu_ids: %d ids for resources.gpus %d", cJSON_GetArraySize(c->gpu_ids),
                       m->gpus);
    if (m->gpus > 0 && c->engine == DOCKER_ENGINE_PODMAN && c->gpu == DOCKER_GPU_NVIDIA)
        return err_set(e, ERR_INVALID, "settings.gpu_driver: Podman takes GPUs through CDI only (gpu_driver auto or cdi)");
    /* A store on this machine's loopback is out of a container's reach unless it shares the
     * host's network. */
    int host_net = c->network && strcmp(c->network, "host") == 0;
    if (!host_net) {
        const char *bad = NULL;
        if (docker_is_loopback(m->run_uri))
            bad = "the run's store";
        for (int i = 0; !bad && i < m->input_count; i++)
            if (docker_is_loopback(m->inputs[i].uri))
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && docker_is_loopback(m->outputs[i].uri))
                bad = m->outputs[i].name;
        static const char *const endpoints[] = { "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL" };
        for (size_t i = 0; !bad && i < sizeof endpoints / sizeof *endpoints; i++) {
            const char *v = getenv(endpoints[i]);
            if (v && docker_env_passes(c, endpoints[i], strlen(endpoints[i])) && docker_is_loopback(v))
                bad = endpoints[i];
        }
        if (bad)
            return err_set(e, ERR_INVALID,
                           "%s is on this machine's loopback address, which a container on network \"%s\" cannot reach: "
                           "set settings.network to \"host\", or use an address the container can reach",
                           bad, c->network ? c->network : "default");
    }
    return 0;
}

static int docker_validate(const struct job *j, struct err *e)
{
    struct docker_cfg c;
    struct docker_mounts ms = { 0 };
    int rc = docker_parse_settings(j->settings, j->stepop_path, 1, &c, e);
    if (rc == 0)
        rc = docker_check_job(j, &c, e);
    if (rc == 0)
        rc = docker_collect_mounts(j, &c, 0, &ms, e);
    docker_mounts_free(&ms);
    docker_cfg_free(&c);
    return rc;
}

/* ---- the engine connection ---- */

static void docker_conn_free(struct docker_conn *k)
{
    free(k->host);
    free(k->sock);
    free(k->base);
    http_client_free(k->http);
    memset(k, 0, sizeof *k);
}

/* DOCKER_HOST as given by settings.host, else the variable, else the first socket that exists
 * of Docker's and Podman's usual places. */
static int docker_conn_open(const char *host_setting, struct docker_conn *k, struct err *e)
{
    memset(k, 0, sizeof *k);
    const char *h = host_setting ? host_setting : getenv("DOCKER_HOST");
    char *fallback = NULL;
    if (!h || !*h) {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        char *user_sock = xdg && *xdg ? xasprintf("%s/podman/podman.sock", xdg) : NULL;
        const char *cands[] = { DOCKER_DEFAULT_SOCKET, "/run/podman/podman.sock", user_sock };
        for (size_t i = 0; i < sizeof cands / sizeof *cands && !fallback; i++)
            if (cands[i] && access(cands[i], F_OK) == 0)
                fallback = xasprintf("unix://%s", cands[i]);
        free(user_sock);
        if (!fallback)
            fallback = xstrdup("unix://" DOCKER_DEFAULT_SOCKET);
        h = fallback;
    }
    if (str_has_prefix(h, "unix://")) {
        k->sock = xstrdup(h + 7);
        k->base = xstrdup("http://docker");
        if (k->sock[0] != '/') {
            err_set(e, ERR_INVALID, "DOCKER_HOST %s: a unix socket needs an absolute path (unix:///path)", h);
            free(fallback);
            docker_conn_free(k);
            return -1;
        }
    } else if (str_has_prefix(h, "tcp://")) {
        const char *hp = h + 6;
        size_t n = strcspn(hp, "/");
        if (getenv("DOCKER_TLS_VERIFY") && *getenv("DOCKER_TLS_VERIFY")) {
            err_set(e, ERR_UNSUPPORTED,
                    "DOCKER_TLS_VERIFY is set, but stepop speaks plain HTTP to tcp:// engines (no client certificates): "
                    "use a unix socket or an SSH tunnel to one");
            free(fallback);
            return -1;
        }
        k->base = xasprintf("http://%.*s", (int)n, hp);
    } else {
        err_set(e, ERR_UNSUPPORTED, "DOCKER_HOST %s: only unix:// and tcp:// are supported", h);
        free(fallback);
        return -1;
    }
    k->host = xstrdup(h);
    free(fallback);
    k->http = http_client_new();
    return 0;
}

struct docker_call {
    const char *method;
    const char *path;       /* after the version prefix, e.g. "/containers/create?name=x" */
    int unversioned;        /* path is used as is */
    const cJSON *body;
    int attempts;           /* 0: the HTTP default (GETs); 1 for requests that change state */
    int64_t timeout_ms;
    int uncancellable;
    http_data_fn on_data;
    void *data_ctx;
    struct http_response *response; /* when set, gets the whole response (the caller frees it) */
};

/* Performs one call; *out (when not NULL) gets the parsed JSON answer, *status the HTTP status.
 * A non-2xx answer is an error whose message is the engine's own ("message" of its answer). */
static int docker_do(struct docker_conn *k, const struct docker_call *call, cJSON **out, long *status, struct err *e)
{
    if (out)
        *out = NULL;
    if (status)
        *status = 0;
    char *url = call->unversioned ? xasprintf("%s%s", k->base, call->path)
                                  : xasprintf("%s/%s%s", k->base, k->api, call->path);
    char *body = call->body ? json_print(call->body, 0) : NULL;
    const char *headers[] = { "Content-Type: application/json", NULL };
    struct http_request req = {
        .method = call->method,
        .url = url,
        .unix_socket = k->sock,
        .headers = body ? headers : NULL,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .max_attempts = call->attempts,
        .timeout_ms = call->timeout_ms,
        .uncancellable = call->uncancellable,
        .on_data = call->on_data,
        .data_ctx = call->data_ctx,
        .connect_timeout_ms = 5000,
    };
    struct http_response resp;
    int rc = http_perform(k->http, &req, &resp, e);
    if (status)
        *status = resp.status;
    if (rc < 0 && resp.status == 0 && e->kind != ERR_CANCELLED && !call->on_data) {
        err_set(e, ERR_NETWORK, "cannot reach the container engine at %s (%s); is Docker running, or `podman system "
                                "service`? Set DOCKER_HOST or settings.host",
                k->host, e->msg);
        e->transient = 1;
    } else if (rc < 0 && resp.status >= 300) {
        cJSON *j = resp.body.data ? cJSON_ParseWithLength(resp.body.data, resp.body.len) : NULL;
        const char *msg = json_str(j, "message");
        long st = resp.status;
        int transient = e->transient;
        err_set(e, st == 404 ? ERR_NOT_FOUND : st == 409 ? ERR_REFUSED : st == 401 || st == 403 ? ERR_AUTH : ERR_HTTP,
                "%s %s: HTTP %ld: %s", call->method, call->path, st, msg ? msg : (resp.body.data ? resp.body.data : ""));
        e->http_status = st;
        e->transient = transient;
        cJSON_Delete(j);
    } else if (rc == 0 && out && resp.body.len) {
        if (json_parse(resp.body.data, resp.body.len, call->path, out, e) < 0)
            rc = -1;
    }
    if (call->response)
        *call->response = resp;
    else
        http_response_free(&resp);
    free(body);
    free(url);
    return rc;
}

/* "1.41" -> 41 (the major version is 1 for every Docker API so far); -1 when malformed. */
static int docker_api_minor(const char *v)
{
    if (!v || strncmp(v, "1.", 2) != 0 || !isdigit((unsigned char)v[2]))
        return -1;
    return atoi(v + 2);
}

/* Speaks the engine's own API version, capped at the newest this code knows, and never below the
 * engine's minimum (min < 0: unknown). */
static int docker_conn_set_api(struct docker_conn *k, int api, int min, struct err *e)
{
    if (api < 0)
        return err_set(e, ERR_INVALID, "the container engine at %s gave no API version", k->host);
    if (api < DOCKER_API_MIN_MINOR)
        return err_set(e, ERR_UNSUPPORTED, "the container engine at %s speaks API 1.%d; stepop needs 1.%d or later (Docker 19.03+)",
                       k->host, api, DOCKER_API_MIN_MINOR);
    if (api > DOCKER_API_MAX_MINOR)
        api = DOCKER_API_MAX_MINOR;
    if (min > api)
        api = min;
    snprintf(k->api, sizeof k->api, "v1.%d", api);
    return 0;
}

/* Which engine answers, and which API version to speak. GET /_ping first: Podman names itself
 * there (Libpod-Api-Version) and answers at once, where its GET /version asks conmon and the OCI
 * runtime for their versions (about 0.3 s). Docker's GET /version is quick and gives the minimum
 * API version, which /_ping does not. */
static int docker_conn_probe(struct docker_conn *k, enum docker_engine want, int attempts, struct err *e)
{
    struct http_response ping = { 0 };
    struct docker_call pc = { .method = "GET", .path = "/_ping", .unversioned = 1, .attempts = attempts,
                              .timeout_ms = 15000, .response = &ping };
    if (docker_do(k, &pc, NULL, NULL, e) < 0) {
        http_response_free(&ping);
        return -1;
    }
    const char *libpod = http_header(&ping, "libpod-api-version");
    if (libpod && isdigit((unsigned char)libpod[0]) && strlen(libpod) < sizeof k->libpod_api - 1) {
        snprintf(k->libpod_api, sizeof k->libpod_api, "v%s", libpod);
        str_copy(k->engine_version, sizeof k->engine_version, libpod);
        k->engine = want == DOCKER_ENGINE_AUTO ? DOCKER_ENGINE_PODMAN : want;
        int api = docker_api_minor(http_header(&ping, "api-version"));
        http_response_free(&ping);
        return docker_conn_set_api(k, api, -1, e);
    }
    http_response_free(&ping);

    cJSON *v = NULL;
    struct docker_call call = { .method = "GET", .path = "/version", .unversioned = 1, .attempts = attempts,
                                .timeout_ms = 15000 };
    if (docker_do(k, &call, &v, NULL, e) < 0)
        return -1;
    int detected = DOCKER_ENGINE_DOCKER;
    const cJSON *comps = cJSON_GetObjectItemCaseSensitive(v, "Components"), *it;
    cJSON_ArrayForEach(it, comps)
    {
        const char *name = json_str(it, "Name");
        if (name && strstr(name, "Podman")) {
            detected = DOCKER_ENGINE_PODMAN;
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "Details");
            const char *lv = json_str(d, "APIVersion");
            if (lv && isdigit((unsigned char)lv[0]) && strlen(lv) < sizeof k->libpod_api - 1)
                snprintf(k->libpod_api, sizeof k->libpod_api, "v%s", lv);
        }
    }
    const char *ver = json_str(v, "Version");
    str_copy(k->engine_version, sizeof k->engine_version, ver ? ver : "unknown");
    k->engine = want == DOCKER_ENGINE_AUTO ? (enum docker_engine)detected : want;
    if (!k->libpod_api[0])
        str_copy(k->libpod_api, sizeof k->libpod_api, "v4.0.0");
    int api = docker_api_minor(json_str(v, "ApiVersion"));
    int min = docker_api_minor(json_str(v, "MinAPIVersion"));
    cJSON_Delete(v);
    return docker_conn_set_api(k, api, min, e);
}

/* ---- the create request ---- */

static int64_t docker_stop_seconds(int64_t grace_ms, int64_t margin_ms)
{
    return (grace_ms + margin_ms + 999) / 1000;
}

static char *docker_container_name(const struct manifest *m)
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
    add(ctx, "STEPOP_ATTEMPT", 14, "1");
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
static cJSON *docker_create_body(const struct job *j, const struct docker_cfg *c, enum docker_engine engine,
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
static cJSON *docker_libpod_body(const struct job *j, const struct docker_cfg *c, const struct docker_mounts *ms,
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

static int docker_use_libpod(const struct job *j, const struct docker_cfg *c, enum docker_engine engine)
{
    return engine == DOCKER_ENGINE_PODMAN && j->m->gpus > 0 && c->gpu != DOCKER_GPU_NVIDIA;
}

/* Splits an image reference into the name and the tag or digest to pull (Docker pulls every
 * tag of a name given without one, so "latest" is explicit). */
static void docker_split_ref(const char *ref, char **name, char **tag)
{
    const char *at = strchr(ref, '@');
    if (at) {
        *name = xstrndup(ref, (size_t)(at - ref));
        *tag = xstrdup(at + 1);
        return;
    }
    const char *slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');
    if (colon && (!slash || colon > slash)) {
        *name = xstrndup(ref, (size_t)(colon - ref));
        *tag = xstrdup(colon + 1);
        return;
    }
    *name = xstrdup(ref);
    *tag = xstrdup("latest");
}

static char *docker_pull_path(const char *image)
{
    char *name, *tag;
    docker_split_ref(image, &name, &tag);
    char *en = uri_encode(name, "/"), *et = uri_encode(tag, ":");
    char *p = xasprintf("/images/create?fromImage=%s&tag=%s", en, et);
    free(en);
    free(et);
    free(name);
    free(tag);
    return p;
}

static cJSON *docker_request_json(const char *method, const char *path, cJSON *body, const char *when)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", method);
    cJSON_AddStringToObject(r, "path", path);
    if (when)
        cJSON_AddStringToObject(r, "when", when);
    if (body)
        cJSON_AddItemToObject(r, "body", body);
    return r;
}

static int docker_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct docker_cfg c;
    struct docker_conn k;
    struct docker_mounts ms = { 0 };
    *requests = NULL;
    if (docker_parse_settings(j->settings, j->stepop_path, 1, &c, e) < 0 || docker_check_job(j, &c, e) < 0 ||
        docker_collect_mounts(j, &c, 0, &ms, e) < 0) {
        docker_cfg_free(&c);
        docker_mounts_free(&ms);
        return -1;
    }
    cJSON *out = cJSON_CreateObject();
    /* Only GET /_ping (and GET /version on Docker) is asked, to name the engine and the API version as submit would. */
    if (docker_conn_open(c.host, &k, e) < 0) {
        docker_cfg_free(&c);
        docker_mounts_free(&ms);
        cJSON_Delete(out);
        return -1;
    }
    struct err pe = { 0 };
    if (docker_conn_probe(&k, c.engine, 1, &pe) < 0) {
        k.engine = c.engine == DOCKER_ENGINE_AUTO ? DOCKER_ENGINE_DOCKER : c.engine;
        snprintf(k.api, sizeof k.api, "v1.%d", DOCKER_API_MAX_MINOR);
        str_copy(k.libpod_api, sizeof k.libpod_api, "v4.0.0");
        cJSON_AddStringToObject(out, "note", "the engine did not answer GET /_ping; engine and API version are assumed");
    }
    cJSON_AddStringToObject(out, "host", k.host);
    cJSON_AddStringToObject(out, "engine", docker_engine_name(k.engine));
    cJSON *reqs = cJSON_AddArrayToObject(out, "requests");
    char *name = docker_container_name(j->m);
    char *pull = docker_pull_path(j->m->image);
    char *p;
    if (c.pull != DOCKER_PULL_NEVER) {
        p = xasprintf("/%s%s", k.api, pull);
        cJSON_AddItemToArray(reqs, docker_request_json("POST", p, NULL,
                                                       c.pull == DOCKER_PULL_ALWAYS ? "always (settings.pull)"
                                                                                    : "the image is not present (pull: missing)"));
        free(p);
    }
    if (docker_use_libpod(j, &c, k.engine)) {
        p = xasprintf("/%s/libpod/containers/create", k.libpod_api);
        cJSON_AddItemToArray(reqs, docker_request_json("POST", p, docker_libpod_body(j, &c, &ms, name, 1), NULL));
    } else {
        p = xasprintf("/%s/containers/create?name=%s", k.api, name);
        cJSON_AddItemToArray(reqs, docker_request_json("POST", p, docker_create_body(j, &c, k.engine, &ms, 1), NULL));
    }
    free(p);
    p = xasprintf("/%s/containers/%s/start", k.api, name);
    cJSON_AddItemToArray(reqs, docker_request_json("POST", p, NULL, NULL));
    free(p);
    free(pull);
    free(name);
    docker_conn_free(&k);
    docker_cfg_free(&c);
    docker_mounts_free(&ms);
    *requests = out;
    return 0;
}

/* ---- submit ---- */

/* The pull answer is a stream of JSON lines; an "error" member in any of them is the failure
 * (the HTTP status is 200 once the stream started). */
struct docker_pull_stream {
    struct buf line;
    char error[600];
};

static void docker_pull_line(struct docker_pull_stream *ps)
{
    cJSON *j = ps->line.len ? cJSON_ParseWithLength(ps->line.data, ps->line.len) : NULL;
    const char *err = json_str(j, "error");
    if (!err)
        err = json_str(cJSON_GetObjectItemCaseSensitive(j, "errorDetail"), "message");
    if (err && !ps->error[0])
        str_copy(ps->error, sizeof ps->error, err);
    cJSON_Delete(j);
    buf_free(&ps->line);
}

static int docker_pull_data(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)e;
    struct docker_pull_stream *ps = ctx;
    const char *p = data;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n')
            docker_pull_line(ps);
        else if (ps->line.len < 64 * 1024)
            buf_append(&ps->line, p + i, 1);
    }
    return 0;
}

static int docker_pull(struct docker_conn *k, const char *image, struct err *e)
{
    char *path = docker_pull_path(image);
    struct docker_pull_stream ps = { 0 };
    struct docker_call call = { .method = "POST", .path = path, .attempts = 1, .on_data = docker_pull_data, .data_ctx = &ps };
    log_info("pulling image %s", image);
    int rc = docker_do(k, &call, NULL, NULL, e);
    if (ps.line.len)
        docker_pull_line(&ps);
    buf_free(&ps.line);
    free(path);
    if (rc < 0)
        return err_prefix(e, "pulling image %s failed: ", image);
    if (ps.error[0])
        return err_set(e, ERR_NOT_FOUND, "pulling image %s failed: %s", image, ps.error);
    return 0;
}

/* Makes sure the image is there per settings.pull. */
static int docker_ensure_image(struct docker_conn *k, const struct docker_cfg *c, const char *image, struct err *e)
{
    if (c->pull == DOCKER_PULL_ALWAYS)
        return docker_pull(k, image, e);
    char *enc = uri_encode(image, "/:@");
    char *path = xasprintf("/images/%s/json", enc);
    free(enc);
    struct docker_call call = { .method = "GET", .path = path, .timeout_ms = 30000 };
    long st;
    int rc = docker_do(k, &call, NULL, &st, e);
    free(path);
    if (rc == 0)
        return 0;
    if (st != 404)
        return err_prefix(e, "looking up image %s: ", image);
    if (c->pull == DOCKER_PULL_NEVER)
        return err_set(e, ERR_NOT_FOUND, "image %s is not on the engine at %s, and settings.pull is never", image, k->host);
    err_clear(e);
    return docker_pull(k, image, e);
}

static void docker_remove(struct docker_conn *k, const char *id)
{
    char *path = xasprintf("/containers/%s?force=1&v=1", id);
    struct docker_call call = { .method = "DELETE", .path = path, .attempts = 2, .timeout_ms = 30000, .uncancellable = 1 };
    struct err e = { 0 };
    if (docker_do(k, &call, NULL, NULL, &e) < 0 && e.http_status != 404)
        log_warn("removing container %s: %s", id, e.msg);
    free(path);
}

/* What to do when the engine could not give the container its GPUs. */
static void docker_gpu_hint(struct err *e)
{
    if (strstr(e->msg, "CDI") || strstr(e->msg, "cdi"))
        err_prefix(e, "GPUs through CDI (is the CDI spec generated? nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml): ");
    else if (strstr(e->msg, "device driver"))
        err_prefix(e, "GPUs (is the NVIDIA Container Toolkit installed and configured for Docker?): ");
}

static int docker_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct docker_cfg c;
    struct docker_conn k = { 0 };
    struct docker_mounts ms = { 0 };
    cJSON *body = NULL, *resp = NULL;
    char *name = NULL, *path = NULL, *id = NULL;
    int rc = -1;
    *handle = NULL;
    if (docker_parse_settings(j->settings, j->stepop_path, 1, &c, e) < 0)
        goto out;
    if (docker_check_job(j, &c, e) < 0 || docker_collect_mounts(j, &c, 1, &ms, e) < 0 ||
        docker_conn_open(c.host, &k, e) < 0 || docker_conn_probe(&k, c.engine, 0, e) < 0)
        goto out;
    if (j->m->gpus > 0 && k.engine == DOCKER_ENGINE_PODMAN && c.gpu == DOCKER_GPU_NVIDIA) {
        err_set(e, ERR_INVALID, "settings.gpu_driver: Podman takes GPUs through CDI only (gpu_driver auto or cdi)");
        goto out;
    }
    if (docker_ensure_image(&k, &c, j->m->image, e) < 0)
        goto out;

    name = docker_container_name(j->m);
    int libpod = docker_use_libpod(j, &c, k.engine);
    if (libpod) {
        body = docker_libpod_body(j, &c, &ms, name, 0);
        path = xasprintf("/%s/libpod/containers/create", k.libpod_api);
    } else {
        body = docker_create_body(j, &c, k.engine, &ms, 0);
        char *en = uri_encode(name, NULL);
        path = xasprintf("/containers/create?name=%s", en);
        free(en);
    }
    struct docker_call create = { .method = "POST", .path = path, .unversioned = libpod,
                                  .body = body, .attempts = 1, .timeout_ms = 120000 };
    long st;
    if (docker_do(&k, &create, &resp, &st, e) < 0) {
        if (st == 409)
            err_prefix(e, "a container named %s exists already (an earlier submit of run %s? remove it with "
                          "'docker rm -f %s'): ", name, j->m->run_id, name);
        else if (st == 404)
            err_set(e, ERR_NOT_FOUND, "image %s is not on the engine at %s: %s", j->m->image, k.host, e->msg);
        else
            docker_gpu_hint(e);
        err_prefix(e, "creating the container: ");
        goto out;
    }
    const char *cid = json_str(resp, "Id");
    if (!cid || !*cid) {
        err_set(e, ERR_INVALID, "creating the container: the engine answered without an Id");
        goto out;
    }
    id = xstrdup(cid);
    free(path);
    path = xasprintf("/containers/%s/start", id);
    struct docker_call start = { .method = "POST", .path = path, .attempts = 1, .timeout_ms = 120000 };
    if (docker_do(&k, &start, NULL, NULL, e) < 0) {
        if (strstr(e->msg, "executable file not found") || strstr(e->msg, "no such file or directory"))
            err_prefix(e, c.inject ? "the injected stepop could not start in image %s (it needs a glibc image): "
                                   : "image %s has no stepop on its PATH (add it, see docs/containers.md, or set "
                                     "settings.inject: true): ",
                       j->m->image);
        else
            docker_gpu_hint(e);
        err_prefix(e, "starting container %s: ", name);
        if (!c.keep)
            docker_remove(&k, id);
        goto out;
    }
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "engine", docker_engine_name(k.engine));
    cJSON_AddStringToObject(h, "engine_version", k.engine_version);
    cJSON_AddStringToObject(h, "host", k.host);
    cJSON_AddStringToObject(h, "api", k.api);
    cJSON_AddStringToObject(h, "id", id);
    cJSON_AddStringToObject(h, "name", name);
    cJSON_AddStringToObject(h, "run_id", j->m->run_id);
    cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
    cJSON_AddStringToObject(h, "image", j->m->image);
    cJSON_AddNumberToObject(h, "stop_timeout", (double)docker_stop_seconds(j->m->grace_ms, c.stop_margin_ms));
    cJSON_AddNumberToObject(h, "memory", (double)j->m->memory);
    *handle = h;
    log_info("started container %s (%.12s) on %s %s", name, id, docker_engine_name(k.engine), k.engine_version);
    rc = 0;
out:
    free(id);
    free(path);
    free(name);
    cJSON_Delete(body);
    cJSON_Delete(resp);
    docker_mounts_free(&ms);
    docker_conn_free(&k);
    docker_cfg_free(&c);
    return rc;
}

/* ---- poll, cancel, cleanup: from the handle, also in another process ---- */

static int docker_handle_conn(const cJSON *handle, struct docker_conn *k, const char **id, struct err *e)
{
    const char *host = json_str(handle, "host"), *api = json_str(handle, "api"), *run_id = json_str(handle, "run_id");
    *id = json_str(handle, "id");
    if (!host || !*id || !api || strlen(api) >= sizeof k->api || !run_id)
        return err_set(e, ERR_INVALID, "the docker flavor's handle lacks host, api, id or run_id");
    /* The id goes into API paths: an engine's container id, nothing that could name another path. */
    size_t n = strspn(*id, "0123456789abcdef");
    if (n == 0 || n > 64 || (*id)[n])
        return err_set(e, ERR_REFUSED, "the docker flavor's handle: \"%s\" is not a container id", *id);
    if (docker_conn_open(host, k, e) < 0)
        return -1;
    str_copy(k->api, sizeof k->api, api);
    return 0;
}

static int docker_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    (void)settings;
    struct docker_conn k;
    const char *id;
    memset(st, 0, sizeof *st);
    if (docker_handle_conn(handle, &k, &id, e) < 0)
        return -1;
    char *path = xasprintf("/containers/%s/json", id);
    struct docker_call call = { .method = "GET", .path = path, .timeout_ms = 30000 };
    cJSON *j = NULL;
    long status;
    int rc = docker_do(&k, &call, &j, &status, e);
    free(path);
    if (rc < 0) {
        docker_conn_free(&k);
        if (status == 404) {
            err_clear(e);
            st->phase = REMOTE_GONE;
            snprintf(st->message, sizeof st->message, "container %.12s no longer exists", id);
            return 0;
        }
        return -1;
    }
    /* The handle may be forged (flavor.h): act only on the container labelled with its run. */
    const char *label = json_str(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "Config"), "Labels"),
                                 DOCKER_LABEL_RUN);
    const char *run_id = json_str(handle, "run_id");
    if (!label || strcmp(label, run_id) != 0) {
        err_set(e, ERR_REFUSED, "container %.12s is not run %s's (its label " DOCKER_LABEL_RUN " is %s%s%s); refusing to "
                "act on it", id, run_id, label ? "\"" : "", label ? label : "missing", label ? "\"" : "");
        cJSON_Delete(j);
        docker_conn_free(&k);
        return -1;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "State");
    const char *status_s = json_str(s, "Status");
    const char *error = json_str(s, "Error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(s, "ExitCode");
    st->oom_killed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "OOMKilled"));
    if (!status_s) {
        rc = err_set(e, ERR_INVALID, "inspecting container %.12s: no State.Status in the answer", id);
    } else if (strcmp(status_s, "created") == 0 || strcmp(status_s, "configured") == 0 ||
               strcmp(status_s, "initialized") == 0) {
        st->phase = REMOTE_PENDING;
        snprintf(st->message, sizeof st->message, "container %.12s is %s", id, status_s);
    } else if (strcmp(status_s, "running") == 0 || strcmp(status_s, "paused") == 0 ||
               strcmp(status_s, "restarting") == 0 || strcmp(status_s, "stopping") == 0) {
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "container %.12s is %s", id, status_s);
    } else {
        /* exited, dead, removing, stopped */
        st->phase = REMOTE_EXITED;
        st->exit_code = cJSON_IsNumber(code) ? code->valueint : -1;
        const cJSON *mem = cJSON_GetObjectItemCaseSensitive(handle, "memory");
        char lim[32] = "";
        if (cJSON_IsNumber(mem) && mem->valuedouble > 0)
            units_format_size((int64_t)mem->valuedouble, lim, sizeof lim);
        if (st->oom_killed)
            snprintf(st->message, sizeof st->message,
                     "the container was killed for exceeding its memory limit%s%s (exit code %d)", lim[0] ? " of " : "",
                     lim, st->exit_code);
        else if (error && *error)
            snprintf(st->message, sizeof st->message, "container %.12s %s with exit code %d: %s", id, status_s,
                     st->exit_code, error);
        else
            snprintf(st->message, sizeof st->message, "container %.12s %s with exit code %d", id, status_s, st->exit_code);
    }
    cJSON_Delete(j);
    docker_conn_free(&k);
    return rc;
}

/* POST /containers/{id}/stop?t=T: the engine sends SIGTERM, and SIGKILL after T seconds, T being
 * the step's grace period plus settings.stop_margin, so that `stepop run` inside (which kills the
 * step after the grace period) still has time to ship logs, upload outputs and write the final
 * status. The engine answers only once the container stopped, and both Docker and Podman carry on
 * with a stop when the client stops waiting, so this waits a few seconds at most: cancel returns
 * once asked. The inspect first tells a reachable engine from a stop still under way. A grace of
 * 0 stops with t=0: SIGTERM and SIGKILL at once. */
static int docker_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    struct docker_cfg c;
    struct docker_conn k;
    const char *id;
    int rc = docker_parse_settings(settings, NULL, 0, &c, e);
    docker_cfg_free(&c);
    if (rc < 0)
        return -1;
    struct remote_state st;
    if (docker_poll(handle, settings, &st, e) < 0)
        return err_prefix(e, "stopping the container: ");
    if (st.phase == REMOTE_EXITED || st.phase == REMOTE_GONE)
        return 0;
    if (docker_handle_conn(handle, &k, &id, e) < 0)
        return -1;
    /* No grace (the submitter's last resort, or a job that never started): SIGKILL at once. */
    int64_t t = grace_ms > 0 ? docker_stop_seconds(grace_ms, c.stop_margin_ms) : 0;
    char *path = xasprintf("/containers/%s/stop?t=%lld", id, (long long)t);
    struct docker_call call = { .method = "POST", .path = path, .attempts = 1, .timeout_ms = 3000, .uncancellable = 1 };
    long status;
    rc = docker_do(&k, &call, NULL, &status, e);
    if (rc < 0 && (status == 304 || status == 404)) {
        rc = 0; /* stopped meanwhile, or gone */
        err_clear(e);
    } else if (rc < 0 && status == 0 && e->kind == ERR_NETWORK) {
        rc = 0; /* asked (the engine answered the inspect just now); it goes on with the stop */
        log_debug("stop of container %.12s asked (t=%llds); not waiting for it: %s", id, (long long)t, e->msg);
        err_clear(e);
    }
    if (rc < 0)
        err_prefix(e, "stopping container %.12s: ", id);
    free(path);
    docker_conn_free(&k);
    return rc;
}

static int docker_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    int keep = 0;
    if (flavor_setting_bool(settings, "keep", 0, &keep, e) < 0)
        return -1;
    if (keep)
        return 0;
    /* The inspect checks the container is the run's (flavor.h) before anything is removed. */
    struct remote_state st;
    if (docker_poll(handle, settings, &st, e) < 0)
        return err_prefix(e, "removing the container: ");
    if (st.phase == REMOTE_GONE)
        return 0;
    struct docker_conn k;
    const char *id;
    if (docker_handle_conn(handle, &k, &id, e) < 0)
        return -1;
    char *path = xasprintf("/containers/%s?force=1&v=1", id);
    struct docker_call call = { .method = "DELETE", .path = path, .attempts = 2, .timeout_ms = 60000, .uncancellable = 1 };
    long status;
    int rc = docker_do(&k, &call, NULL, &status, e);
    if (rc < 0 && status == 404) {
        rc = 0;
        err_clear(e);
    }
    if (rc < 0)
        err_prefix(e, "removing container %.12s: ", id);
    free(path);
    docker_conn_free(&k);
    return rc;
}

const struct flavor_ops flavor_docker_ops = {
    .name = "docker",
    .validate = docker_validate,
    .render = docker_render,
    .submit = docker_submit,
    .poll = docker_poll,
    .cancel = docker_cancel,
    .cleanup = docker_cleanup,
};
