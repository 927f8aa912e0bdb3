/* The sagemaker flavor's own parts, shared by its files: settings.c (the settings, the checks of
 * a job against them, the GPU table), body.c (the job's name, tags, environment and the
 * CreateTrainingJob request) and lifecycle.c (the flavor's operations, flavor_sagemaker_ops). The
 * API client is cloud/aws/json_rpc.h. Settings and behaviour: docs/flavors.md#sagemaker. */
#ifndef STEPOP_FLAVOR_SAGEMAKER_H
#define STEPOP_FLAVOR_SAGEMAKER_H

#include "../flavor.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define SM_TAG_RUN_ID "stepop:run-id"
#define SM_TAG_RUN_URI "stepop:run-uri"
/* SageMaker sends SIGTERM, then SIGKILL 120 s later, when it stops a job. */
#define SM_STOP_GRACE_MS 120000LL
/* SageMaker's own MaxRuntimeInSeconds default, used when the step has no timeout. */
#define SM_DEFAULT_MAX_RUNTIME_S 86400LL
#define SM_LOG_GROUP "/aws/sagemaker/TrainingJobs"

/* The settings, checked and with their defaults. Strings point into the settings object. */
struct sm_cfg {
    const char *region;             /* NULL: aws_region() */
    const char *role_arn, *instance_type;
    int64_t volume_size_gb;
    int64_t keep_alive_s;           /* -1: not set */
    int spot;
    int64_t max_wait_s;             /* 0: MaxRuntime + SM_SPOT_WAIT_EXTRA_S */
    const char *checkpoint_s3_uri;  /* NULL: <run prefix>checkpoints/ on an s3 store */
    const char *checkpoint_local_path;
    const char *output_s3_uri;      /* NULL: <run prefix>sagemaker-output/ on an s3 store */
    const char *volume_kms_key_id, *output_kms_key_id;
    int max_retry_attempts;         /* 0: no RetryStrategy */
    const cJSON *subnets, *security_group_ids, *entrypoint, *pass_env, *tags;
};

/* How long a spot job may wait for capacity beyond its run time, by default. */
#define SM_SPOT_WAIT_EXTRA_S 3600LL

/* ---- settings.c ---- */

int sm_parse_settings(const cJSON *s, struct sm_cfg *c, struct err *e);
/* GPUs of an instance type from the documented table; -1 when the type is not in it. */
int sm_instance_gpus(const char *instance_type);
/* Refuses what the step asks that a training job cannot give (CPU and memory, GPUs beyond the
 * instance type's, a grace period over 120 s, a store out of the job's reach). */
int sm_check_job(const struct job *j, const struct sm_cfg *c, struct err *e);

/* ---- body.c ---- */

/* The training job's name for a run: stepop-<run id>, within [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}. */
char *sm_job_name(const char *run_id);
/* A tag value for text: itself when SageMaker's tag value pattern and length allow it, else
 * "sha256:<hex>" of it. Caller frees. */
char *sm_tag_value(const char *text);
/* The CreateTrainingJob input; redact hides the passed environment's values (--dry-run). Returns
 * NULL with e set when the environment or the tags break the API's limits. */
cJSON *sm_create_body(const struct job *j, const struct sm_cfg *c, int redact, struct err *e);
/* The exit code in a FailureReason ("... exit code: 3"), or -1. */
int sm_failure_exit_code(const char *reason);

/* ---- lifecycle.c ---- */

/* Maps a DescribeTrainingJob answer onto a remote_state: pending until Training, Interrupted and
 * Restarting running on (a new attempt), MaxRuntimeExceeded a timeout, MaxWaitTimeExceeded and
 * capacity errors never started, Stopped after an interruption preempted, FailureReason's exit
 * code and memory words; a failure without an exit code quotes the job's last CloudWatch log
 * lines (region: where to read them). */
void sm_remote_state(const cJSON *describe, const char *job, const char *region, struct remote_state *st);

#endif
