/* The run protocol's status document (<run_uri>status.json, docs/protocol.md), shared by the
 * entrypoint that writes it and the submitter that reads it. */
#ifndef STEPOP_STATUS_H
#define STEPOP_STATUS_H

#include "err.h"

#include <cjson/cJSON.h>
#include <stdint.h>

enum run_phase {
    PHASE_PENDING = 0,
    PHASE_STARTING,
    PHASE_CHECKING_GPU,
    PHASE_FETCHING,
    PHASE_RUNNING,
    PHASE_UPLOADING,
    PHASE_SUCCEEDED,
    PHASE_FAILED,
    PHASE_TERMINATED,
    PHASE_PREEMPTED,
    PHASE_COUNT
};

enum run_reason {
    REASON_NONE = 0,
    REASON_USER_ERROR,      /* the step exited non-zero or died of a signal */
    REASON_OOM_KILLED,
    REASON_TIMEOUT,
    REASON_INPUT_ERROR,
    REASON_GPU_UNAVAILABLE,
    REASON_UPLOAD_ERROR,
    REASON_TERMINATED,
    REASON_PREEMPTED,
    REASON_MANIFEST_ERROR,
    REASON_INTERNAL,
    REASON_COUNT
};

struct run_status {
    char run_id[160];
    int attempt;
    enum run_phase phase;
    enum run_reason reason;
    int system_kind;           /* the failure may not repeat elsewhere (5xx input, no GPU, preempted) */
    char message[1024];
    int exit_code;             /* -1 until the step ended */
    int signal;                /* the signal that ended the step, 0 if none */
    char host[256];
    int64_t updated_ms, heartbeat_ms; /* wall clock, 0 when unset */
    int64_t started_ms[PHASE_COUNT], ended_ms[PHASE_COUNT];
    cJSON *gpu;                /* GPU summary, owned; NULL when none */
};

const char *status_phase_name(enum run_phase p);
const char *status_reason_name(enum run_reason r);
int status_phase_parse(const char *s, enum run_phase *out);
int status_reason_parse(const char *s, enum run_reason *out);
int status_phase_is_final(enum run_phase p);

void status_init(struct run_status *s, const char *run_id, int attempt);
/* Ends the current phase and starts p, stamping both with now. */
void status_enter(struct run_status *s, enum run_phase p);
cJSON *status_to_json(const struct run_status *s);
/* Refuses a duplicate key anywhere and an attempt, exit_code or signal that is not a whole number
 * in range (never cast). */
int status_from_json(const cJSON *j, struct run_status *s, struct err *e);
void status_free(struct run_status *s);

#endif
