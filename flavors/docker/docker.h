/* The docker flavor's own parts, shared by its files: settings.c (parsing and checking the
 * settings and the job), body.c (bind mounts and the create request bodies) and lifecycle.c (the
 * flavor's operations, flavor_docker_ops). The engine client is cloud/docker/engine.h. Settings
 * and behaviour: docs/flavors.md#docker; adding stepop to an image: docs/containers.md. */
#ifndef STEPOP_FLAVOR_DOCKER_H
#define STEPOP_FLAVOR_DOCKER_H

#include "../flavor.h"

#include "../../cloud/docker/engine.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Where an injected binary appears inside the container. */
#define DOCKER_INJECT_PATH "/opt/stepop/bin/stepop"
#define DOCKER_LABEL_RUN "io.stepop.run-id"

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

struct docker_mount {
    char *source, *target;
    int ro;
};

struct docker_mounts {
    struct docker_mount *v;
    int n;
};

/* ---- settings.c ---- */

/* Parses and checks the settings; self is this binary (the default to inject), check_inject
 * whether the binary to inject must exist. */
int docker_parse_settings(const cJSON *s, const char *self, int check_inject, struct docker_cfg *c, struct err *e);
void docker_cfg_free(struct docker_cfg *c);
/* A variable of the host environment passes into the container (settings.pass_env). */
int docker_env_passes(const struct docker_cfg *c, const char *name, size_t name_len);
/* Refuses what the step asks that the settings cannot give (image, resources, GPUs, a loopback
 * store out of the container's reach). */
int docker_check_job(const struct job *j, const struct docker_cfg *c, struct err *e);

/* ---- body.c ---- */

/* The bind mounts of a step (create_dirs: make the output directories). */
int docker_collect_mounts(const struct job *j, const struct docker_cfg *c, int create_dirs, struct docker_mounts *ms,
                          struct err *e);
void docker_mounts_free(struct docker_mounts *ms);
/* SIGKILL this many seconds after SIGTERM. */
int64_t docker_stop_seconds(int64_t grace_ms, int64_t margin_ms);
/* stepop-<run id>; caller frees. */
char *docker_container_name(const struct manifest *m);
/* The bodies of POST /containers/create and of Podman's POST /libpod/containers/create; redact
 * hides the passed environment's values (for --dry-run). */
cJSON *docker_create_body(const struct job *j, const struct docker_cfg *c, enum docker_engine engine,
                          const struct docker_mounts *ms, int redact);
cJSON *docker_libpod_body(const struct job *j, const struct docker_cfg *c, const struct docker_mounts *ms,
                          const char *name, int redact);
/* Whether the step is created through Podman's own API (GPUs on Podman). */
int docker_use_libpod(const struct job *j, const struct docker_cfg *c, enum docker_engine engine);

#endif
