/* The docker flavor's settings (parsed, checked, with their defaults) and the checks of a job
 * against them. */
#include "docker.h"

#include "../../runtime/units.h"
#include "../../runtime/uri.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const docker_known_settings[] = {
    "host", "engine", "pull", "network", "inject", "stepop_binary", "keep", "pass_env", "labels",
    "mounts", "stop_margin", "shm_size", "gpu_driver", "cdi_kind", "gpu_ids", NULL,
};

void docker_cfg_free(struct docker_cfg *c)
{
    free(c->stepop_binary);
    c->stepop_binary = NULL;
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

int docker_parse_settings(const cJSON *s, const char *self, int check_inject, struct docker_cfg *c, struct err *e)
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
    if (flavor_setting_str_list(s, "pass_env", &c->pass_env, e) < 0 ||
        flavor_setting_str_list(s, "mounts", &c->mounts, e) < 0 ||
        flavor_setting_str_list(s, "gpu_ids", &c->gpu_ids, e) < 0)
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

/* A variable of the host environment passes into the container (settings.pass_env). */
int docker_env_passes(const struct docker_cfg *c, const char *name, size_t name_len)
{
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *p = it->valuestring;
        size_t n = strlen(p);
        if (p[n - 1] == '*' ? name_len >= n - 1 && strncmp(name, p, n - 1) == 0 : name_len == n && strncmp(name, p, n) == 0)
            return 1;
    }
    return 0;
}

/* ---- the job against the settings ---- */

int docker_check_job(const struct job *j, const struct docker_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (flavor_check_image(m, "docker", e) < 0)
        return -1;
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
        if (url_is_loopback(m->run_uri))
            bad = "the run's store";
        for (int i = 0; !bad && i < m->input_count; i++)
            if (url_is_loopback(m->inputs[i].uri))
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && url_is_loopback(m->outputs[i].uri))
                bad = m->outputs[i].name;
        static const char *const endpoints[] = { "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL" };
        for (size_t i = 0; !bad && i < sizeof endpoints / sizeof *endpoints; i++) {
            const char *v = getenv(endpoints[i]);
            if (v && docker_env_passes(c, endpoints[i], strlen(endpoints[i])) && url_is_loopback(v))
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

