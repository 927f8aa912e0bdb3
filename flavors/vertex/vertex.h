/* The vertex flavor's own parts, shared by its files: settings.c (the settings, the machine and
 * accelerator table, the checks of a job against them), body.c (labels, durations, the CustomJob
 * body) and lifecycle.c (the flavor's operations, flavor_vertex_ops: create, follow by GET,
 * cancel, cleanup, the Cloud Logging fallback). Credentials: cloud/google/auth.h. Settings and
 * behaviour: docs/flavors.md#vertex. */
#ifndef STEPOP_FLAVOR_VERTEX_H
#define STEPOP_FLAVOR_VERTEX_H

#include "../flavor.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define VX_LABEL_RUN_ID "stepop-run-id"
#define VX_LABEL_RUN_URI "stepop-run-uri"
#define VX_DEFAULT_LOCATION "us-central1"
#define VX_DEFAULT_MACHINE "n1-standard-4"
#define VX_DEFAULT_LOGGING "https://logging.googleapis.com"
/* Vertex AI's label limits: 64 labels, keys and values of at most 63 characters. */
#define VX_LABEL_MAX 63
#define VX_LABELS_MAX 64

enum vx_strategy { VX_STANDARD = 0, VX_SPOT, VX_FLEX_START };

/* The settings, checked and with their defaults. Strings point into the settings object. */
struct vx_cfg {
    const char *project;            /* NULL: google_auth_project() at submit */
    const char *location;
    const char *api_endpoint;       /* NULL: https://<location>-aiplatform.googleapis.com */
    const char *logging_endpoint;   /* NULL: VX_DEFAULT_LOGGING */
    const char *machine_type;
    const char *accelerator_type;   /* NULL: none */
    int accelerator_count;          /* 0: from the table or --gpus */
    const char *boot_disk_type;
    int64_t boot_disk_size_gb;
    enum vx_strategy strategy;
    int64_t max_wait_s;             /* FLEX_START only; 0: not set */
    int restart_job_on_worker_restart;
    const char *service_account, *network, *persistent_resource_id, *base_output_dir, *kms_key_name;
    int enable_web_access;
    const cJSON *reserved_ip_ranges, *entrypoint, *pass_env, *labels;
};

/* ---- settings.c ---- */

int vx_parse_settings(const cJSON *s, struct vx_cfg *c, struct err *e);
/* The accelerator a machine type comes with (*type, *count), for the types whose GPUs are fixed
 * (a2, a3, a4, g2); 0 when the type is not one of them. */
int vx_machine_fixed(const char *machine_type, const char **type, int *count);
/* Refuses what the step asks that the job cannot give (CPUs, memory, GPUs the machine and
 * accelerator do not have, an accelerator the machine type does not take, a store out of the
 * job's reach). Fills c->accelerator_count when the table or --gpus decides it. */
int vx_check_job(const struct job *j, struct vx_cfg *c, struct err *e);
/* The API's base URL (no trailing '/'), caller frees. */
char *vx_api_base(const struct vx_cfg *c);

/* ---- body.c ---- */

/* A label value for text: lower-cased, characters outside [a-z0-9_-] as '_'; over 63 characters,
 * the first 46 and '-' and 16 hex digits of its SHA-256. Caller frees. */
char *vx_label_value(const char *text);
/* The run URI's label value: 32 hex digits of its SHA-256 (a URI rarely fits a label). */
char *vx_uri_label(const char *run_uri);
/* A protobuf Duration in JSON: "<seconds>s". */
void vx_duration(int64_t seconds, char *out, size_t len);
/* The CustomJob (settings and job checked already); redact hides the passed environment's values
 * (--dry-run). */
cJSON *vx_create_body(const struct job *j, const struct vx_cfg *c, int redact);
/* Whether Vertex AI may start the job again itself, with the same environment: after a worker
 * restart (restart_job_on_worker_restart) or a spot preemption (strategy SPOT). */
int vx_may_restart_cfg(const struct vx_cfg *c);
/* The exit code in an error message ("non-zero status of 3", "exit code 3"), or -1. */
int vx_failure_exit_code(const char *message);

/* ---- lifecycle.c ---- */

/* Maps a CustomJob (GET answer) onto a remote_state; log_tail, when not NULL, is the job's last
 * Cloud Logging lines to quote in a failure. */
void vx_remote_state(const cJSON *job, const char *log_tail, struct remote_state *st);

#endif
