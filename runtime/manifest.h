/* The step manifest, "api_version": "stepop/v1" (docs/manifest.md). */
#ifndef STEPOP_MANIFEST_H
#define STEPOP_MANIFEST_H

#include "err.h"

#include "../artifacts/pack.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define MANIFEST_API_VERSION "stepop/v1"

enum manifest_smoke { MANIFEST_SMOKE_NONE = 0, MANIFEST_SMOKE_QUICK };

struct manifest_input {
    char *name;
    char *uri;
    char *path;   /* relative to workdir unless absolute; default: name */
    int unpack;
    char *sha256; /* lower-case hex, or NULL */
};

struct manifest_output {
    char *name;
    char *path;
    enum pack_format format;     /* default tar.zst */
    char *uri;                   /* default <run_uri>outputs/<name><ext> */
    int optional;
};

struct manifest {
    char *api_version;
    char *run_id;
    char *run_uri;  /* ends in '/' */
    char *step;
    char *image;
    char **argv;    /* NULL-terminated; NULL when the manifest has no command */
    int argc;
    char *workdir;  /* NULL: the current directory */
    int env_count;
    char **env_names, **env_values;
    int env_drop_count;
    char **env_drop;         /* names, or prefixes ending in '*', removed from the inherited environment */
    int input_count;
    struct manifest_input *inputs;
    int output_count;
    struct manifest_output *outputs;
    double cpu;         /* 0 when unset */
    int64_t memory;     /* bytes, 0 when unset */
    int gpus;
    int gpu_required;
    int gpu_min_devices;     /* default 1 */
    int gpu_min_cc_major, gpu_min_cc_minor;
    int64_t gpu_min_memory;  /* per device, bytes */
    enum manifest_smoke gpu_smoke;
    int64_t timeout_ms;      /* 0: none */
    int64_t grace_ms;        /* default 30s */
    int64_t heartbeat_ms;    /* default 10s */
    int64_t fetch_timeout_ms;  /* default 6h: the whole fetching phase */
    int64_t upload_timeout_ms; /* default 6h: packing and uploading every output */
};

#define MANIFEST_DEFAULT_TRANSFER_TIMEOUT_MS (6LL * 3600 * 1000)

/* Parses and validates; require_command refuses a manifest without "command". */
int manifest_parse(const char *text, size_t len, int require_command, struct manifest *m, struct err *e);
int manifest_from_json(const cJSON *root, int require_command, struct manifest *m, struct err *e);
/* The manifest as JSON with every default written out, except those of env_drop, fetch_timeout
 * and upload_timeout (an older stepop run refuses them as unknown fields). */
cJSON *manifest_to_json(const struct manifest *m);
void manifest_free(struct manifest *m);

/* Whether env_drop removes entry ("NAME=value") from the environment the step inherits. */
int manifest_env_dropped(const struct manifest *m, const char *entry);
/* "STEPOP_INPUT_" + NAME upper-cased, other characters as '_'. Caller frees. */
char *manifest_env_name(const char *prefix, const char *name);
/* A ULID-style run id: 26 Crockford base32 characters, time-sortable. */
void manifest_new_run_id(char out[27]);

#endif
