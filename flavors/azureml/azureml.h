/* The azureml flavor's own parts, shared by its files: settings.c (the settings and the checks of
 * a job against them), body.c (the names, the environment version and command job bodies, the
 * mapping of a job's status) and lifecycle.c (the ARM calls and the flavor's operations,
 * flavor_azureml_ops). Credentials: cloud/azure/auth.h. Settings and behaviour:
 * docs/flavors.md#azureml. */
#ifndef STEPOP_FLAVOR_AZUREML_H
#define STEPOP_FLAVOR_AZUREML_H

#include "../flavor.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* Azure ML tag keys (a job's tags are a string dictionary). */
#define AML_TAG_RUN_ID "stepop-run-id"
#define AML_TAG_RUN_URI "stepop-run-uri"
/* The api-version by default: the newest stable one verified in the docs (docs/flavors.md#azureml). */
#define AML_DEFAULT_API_VERSION "2025-09-01"
/* The first stable api-version with queueSettings (job_tier). */
#define AML_QUEUE_SETTINGS_SINCE "2023-04-01"
#define AML_DEFAULT_ARM "https://management.azure.com"
/* The exit code of a shell that cannot find the command: an image without stepop. */
#define AML_EXIT_NOT_FOUND 127

struct aml_cfg {
    const char *subscription_id, *resource_group, *workspace;
    const char *compute;          /* a compute cluster's name, or NULL (serverless) */
    const char *instance_type;    /* serverless: resources.instanceType */
    int64_t instance_count;
    const char *job_tier;         /* Spot, Basic, Standard, Premium, or NULL */
    const char *api_version;
    const char *arm_endpoint;     /* no trailing slash */
    const char *authority_host;   /* NULL: AZURE_AUTHORITY_HOST, else Azure's public cloud */
    const char *experiment_name;
    const char *command;          /* the stepop entrypoint as a command line */
};

/* ---- settings.c ---- */

int aml_parse_settings(const cJSON *s, struct aml_cfg *c, struct err *e);
/* Refuses what the step asks that a command job cannot give (CPU and memory, GPUs: the compute
 * decides; a grace period over Azure ML's; a store out of the job's reach). */
int aml_check_job(const struct job *j, const struct aml_cfg *c, struct err *e);
/* The token scope for the ARM endpoint (the public cloud's, or a sovereign cloud's audience). */
const char *aml_scope(const struct aml_cfg *c);

/* ---- body.c ---- */

/* The job's name for a run: stepop-<run id> in lower case, other characters as single hyphens;
 * over 255 characters a prefix and a digest. Caller frees. */
char *aml_job_name(const char *run_id);
/* The environment's name for an image: stepop-<16 hex of sha256(image)>; version "1". */
char *aml_env_name(const char *image);
#define AML_ENV_VERSION "1"
/* The workspace's ARM path: /subscriptions/S/resourceGroups/RG/providers/
 * Microsoft.MachineLearningServices/workspaces/WS. Caller frees. */
char *aml_workspace_path(const struct aml_cfg *c);
/* Full URLs (with ?api-version=) of the environment version, the job and the job's cancel. */
char *aml_env_url(const struct aml_cfg *c, const char *image);
char *aml_job_url(const struct aml_cfg *c, const char *job, const char *suffix);
/* The EnvironmentVersion body for the image. */
cJSON *aml_env_body(const struct job *j);
/* The command job body; NULL with e set when the manifest's URI is too long. */
cJSON *aml_job_body(const struct job *j, const struct aml_cfg *c, struct err *e);
/* ISO 8601 duration "PT<seconds>S" of ms, rounded up. Caller frees. */
char *aml_timeout(int64_t ms);
/* Maps a job's properties (its GET answer) onto a remote_state. */
void aml_remote_state(const cJSON *job, const char *name, struct remote_state *st);

#endif
