/* The Modal API messages stepop sends and reads, encoded and decoded by hand (cloud/modal/pb.h).
 * Field numbers are those of Modal's modal_proto/api.proto as the generated codecs of Modal's
 * JavaScript SDK, npm modal 0.11.1 (dist/index.js, each message's encode function), carry them;
 * fields stepop does not use are skipped when read and never written. docs/flavors.md#modal. */
#ifndef STEPOP_MODAL_API_H
#define STEPOP_MODAL_API_H

#include "pb.h"

#include "../../runtime/err.h"

#include <stdint.h>

/* ObjectCreationType */
#define MODAL_CREATE_IF_MISSING 1
#define MODAL_CREATE_EPHEMERAL 5
/* RegistryAuthType */
#define MODAL_REGISTRY_STATIC_CREDS 4
/* FileDescriptor */
#define MODAL_FD_STDOUT 1
#define MODAL_FD_STDERR 2

/* GenericResult.status (GenericResult_GenericStatus) */
enum modal_status {
    MODAL_ST_UNSPECIFIED = 0,
    MODAL_ST_SUCCESS = 1,
    MODAL_ST_FAILURE = 2,
    MODAL_ST_TERMINATED = 3,
    MODAL_ST_TIMEOUT = 4,
    MODAL_ST_INIT_FAILURE = 5,
    MODAL_ST_INTERNAL_FAILURE = 6,
    MODAL_ST_IDLE_TIMEOUT = 7,
    MODAL_ST_MEMORY_MANAGER_EVICTION = 8,
};
const char *modal_status_name(int status);

struct modal_result {
    int present;          /* the message held a GenericResult */
    int status;           /* enum modal_status */
    int exitcode;
    char *exception, *traceback, *propagation_reason;
};
void modal_result_free(struct modal_result *r);

/* One string field of a message (the ids answers carry: AppGetOrCreateResponse.app_id = 1,
 * SecretGetOrCreateResponse.secret_id = 1, SandboxCreateResponse.sandbox_id = 1 ...); *out NULL
 * when absent. */
int modal_dec_string(const struct buf *msg, uint32_t field, char **out, struct err *e);

/* AuthTokenGetResponse.token = 1 */
int modal_decode_auth_token(const struct buf *msg, char **token, struct err *e);

void modal_enc_app_get_or_create(struct buf *b, const char *app, const char *environment);
void modal_enc_environment_get_or_create(struct buf *b, const char *environment);
/* EnvironmentGetOrCreateResponse: environment_id = 1, metadata = 2 { settings = 2 {
 * image_builder_version = 1 } } */
int modal_dec_environment(const struct buf *msg, char **env_id, char **builder_version, struct err *e);
/* An ephemeral secret (SecretGetOrCreateRequest, object_creation_type EPHEMERAL, env_dict = 5). */
void modal_enc_secret_ephemeral(struct buf *b, const char *environment, const char *const *names,
                                const char *const *values, int n);
/* ImageGetOrCreateRequest for `FROM <image>`, with registry credentials from secret
 * registry_secret_id (NULL: none). */
void modal_enc_image_get_or_create(struct buf *b, const char *app_id, const char *image,
                                   const char *registry_secret_id, const char *builder_version);
/* ImageGetOrCreateResponse: image_id = 1, result = 2 */
int modal_dec_image_get_or_create(const struct buf *msg, char **image_id, struct modal_result *r, struct err *e);
void modal_enc_image_join(struct buf *b, const char *image_id, float timeout_s, const char *last_entry_id);

/* A stream message with logs: ImageJoinStreamingResponse (result = 1, task_logs = 2, entry_id = 3,
 * eof = 4) or TaskLogsBatch (items = 2, entry_id = 5, eof = 14); TaskLogs.data = 1,
 * file_descriptor = 8. */
struct modal_logs {
    struct buf text;      /* the items' data, in order */
    char *entry_id;
    int eof;
    struct modal_result result; /* ImageJoinStreamingResponse only */
};
void modal_logs_free(struct modal_logs *l);
int modal_dec_image_join(const struct buf *msg, struct modal_logs *l, struct err *e);
int modal_dec_logs_batch(const struct buf *msg, struct modal_logs *l, struct err *e);

struct modal_sandbox {
    const char *app_id, *image_id, *name;
    const char *const *argv;
    int argc;
    const char *const *secret_ids;
    int secret_count;
    uint32_t milli_cpu, memory_mb;
    const char *gpu_type;   /* NULL: none */
    uint32_t gpu_count;
    uint32_t timeout_secs;
    const char *workdir, *cloud;
    const char *const *regions;
    int region_count;
    int nonpreemptible;
    const char *const *tag_names, *const *tag_values;
    int tag_count;
};
/* SandboxCreateRequest: app_id = 1, definition = 2 (Sandbox), tags = 4 (SandboxTag). */
void modal_enc_sandbox_create(struct buf *b, const struct modal_sandbox *s);
/* A request of only sandbox_id = 1 (SandboxTerminate, SandboxTagsGet), with timeout = 2 (float)
 * when timeout_s >= 0 (SandboxWait, SandboxGetTaskId). */
void modal_enc_sandbox_id(struct buf *b, const char *sandbox_id, float timeout_s);
void modal_enc_sandbox_logs(struct buf *b, const char *sandbox_id, int fd, float timeout_s, const char *last_entry_id);
/* SandboxWaitResponse.result = 1; SandboxGetTaskIdResponse: task_id = 1, task_result = 2;
 * SandboxTerminateResponse.existing_result = 1. */
int modal_dec_result_at(const struct buf *msg, uint32_t field, struct modal_result *r, struct err *e);
/* SandboxTagsGetResponse.tags = 1: the value of tag name, or NULL. */
int modal_dec_tag(const struct buf *msg, const char *name, char **value, struct err *e);

#endif
