/* The modal flavor's own parts, shared by its files: settings.c (the settings, the GPU string,
 * the checks of a job against them), body.c (the sandbox's environment, tags and definition, as a
 * plan that --dry-run shows and submit encodes) and lifecycle.c (the flavor's operations,
 * flavor_modal_ops: AppGetOrCreate, EnvironmentGetOrCreate, SecretGetOrCreate, ImageGetOrCreate
 * with ImageJoinStreaming, SandboxCreate, then SandboxWait, SandboxGetTaskId, SandboxTerminate,
 * SandboxGetLogs). The API client is cloud/modal/. Settings and behaviour: docs/flavors.md#modal. */
#ifndef STEPOP_FLAVOR_MODAL_H
#define STEPOP_FLAVOR_MODAL_H

#include "../flavor.h"

#include "../../cloud/modal/modal_api.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define MD_TAG_RUN_ID "stepop-run-id"
#define MD_TAG_RUN_URI "stepop-run-uri"
#define MD_DEFAULT_APP "stepop"
/* Modal's limit on a sandbox's lifetime: 24 hours. */
#define MD_MAX_TIMEOUT_S 86400LL
#define MD_MAX_REGIONS 16

/* The settings, checked and with their defaults. Strings point into the settings object. */
struct md_cfg {
    const char *app;
    const char *environment;    /* NULL: MODAL_ENVIRONMENT or the profile's */
    const char *server_url;     /* NULL: MODAL_SERVER_URL, the profile's, or api.modal.com */
    const char *gpu_type;       /* "H100", "A100-80GB", ...; may carry ":N" */
    int gpu_count;              /* from gpu_type's ":N", else --gpus; 0: no GPU */
    const char *cloud, *workdir;
    const cJSON *regions, *entrypoint, *pass_env;
    int nonpreemptible;
    int private_registry;       /* REGISTRY_USERNAME and REGISTRY_PASSWORD from the environment */
    int64_t image_build_timeout_s;
};

/* ---- settings.c ---- */

int md_parse_settings(const cJSON *s, struct md_cfg *c, struct err *e);
/* Splits a GPU string, Modal's form TYPE[:COUNT] (the type upper-cased as the SDK does); refuses a
 * malformed one. */
int md_parse_gpu(const char *gpu, char *type, size_t type_len, int *count, struct err *e);
/* Refuses what the step asks that a sandbox cannot give (GPUs without a type, a count that
 * differs from the type's, a timeout over 24 h, a store out of its reach). Fills c->gpu_count. */
int md_check_job(const struct job *j, struct md_cfg *c, struct err *e);

/* ---- body.c ---- */

/* What submit sends, decided before anything is sent. */
struct md_plan {
    char *name;                 /* stepop-<run id> */
    char *argv_store[8];
    const char *argv[8];
    int argc;
    int env_count;
    char **env_names, **env_values;
    char *gpu_type;             /* NULL: none */
    int gpu_count;
    uint32_t milli_cpu, memory_mb, timeout_secs;
    const char *tag_names[2];
    char *tag_values[2];
    const char *regions[MD_MAX_REGIONS]; /* point into the settings */
    int region_count;
};

/* The run URI's tag value: 32 hex digits of its SHA-256. Caller frees. */
char *md_uri_tag(const char *run_uri);
/* Builds the plan (settings and job checked); the passed environment's values are read here. */
void md_plan_build(const struct job *j, const struct md_cfg *c, struct md_plan *p);
void md_plan_free(struct md_plan *p);
/* The SandboxCreate definition of a plan, for modal_enc_sandbox_create (ids filled by the caller). */
void md_plan_sandbox(const struct md_plan *p, const struct md_cfg *c, struct modal_sandbox *s);
/* The plan as JSON for --dry-run: one entry per request, secrets' values hidden. */
cJSON *md_plan_render(const struct md_plan *p, const struct md_cfg *c, const struct job *j, const char *server_url,
                      const char *environment);

/* ---- lifecycle.c ---- */

/* Maps a finished sandbox's GenericResult onto a remote_state; log_tail, when not NULL, is the
 * sandbox's last output lines to quote. */
void md_remote_state(const char *sandbox_id, const struct modal_result *r, const char *log_tail,
                     struct remote_state *st);

#endif
