/* Flavors: where a step runs. One file per flavor behind struct flavor_ops, found through the
 * registry in flavors/registry.c (adding flavors/nebius.c touches only that table). The generic
 * submit/follow loop (flavors/follow.c) drives every flavor the same way; the run's status.json
 * in the store says what happened inside, the flavor's own API is the fallback truth when the
 * entrypoint never ran or died without a word. */
#ifndef STEPOP_FLAVOR_H
#define STEPOP_FLAVOR_H

#include "../runtime/err.h"
#include "../runtime/manifest.h"
#include "../runtime/status.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* What a flavor is given to launch. */
struct job {
    const struct manifest *m;   /* run_id, run_uri, image, resources, gpus, timeout, grace period */
    const char *manifest_uri;   /* <run_uri>manifest.json, already written */
    const cJSON *settings;      /* the flavor's settings (operator config merged with STEP.json); never NULL */
    const char *stepop_path;    /* this stepop binary, for flavors that run it locally or inject it */
    int attempt;                /* this submission's attempt, from 1; the entrypoint gets it as
                                   STEPOP_ATTEMPT. A platform that restarts the step itself
                                   (Kubernetes backoffLimit, SageMaker spot) counts on from it. */
};

enum remote_phase {
    REMOTE_PENDING = 0, /* accepted, not running yet (image pull, scheduling) */
    REMOTE_RUNNING,
    REMOTE_EXITED,      /* finished; exit_code is valid */
    REMOTE_GONE,        /* the platform no longer knows the job (removed, never existed) */
    REMOTE_CANNOT_START, /* the platform says the job will not start (the image cannot be pulled, the
                            container cannot be created): fail now, not at the pending timeout */
};

struct remote_state {
    enum remote_phase phase;
    int exit_code;       /* REMOTE_EXITED */
    int oom_killed;      /* the platform killed it for memory (container OOM) */
    enum run_reason reason; /* the platform's verdict when it ended the job itself: REASON_TIMEOUT
                               (its deadline), REASON_PREEMPTED (evicted, preempted, node lost);
                               REASON_NONE otherwise */
    char message[512];   /* the platform's own words, for people */
};

/* Handles are untrusted. poll, cancel and cleanup may get a handle read back from
 * <run_uri>submission.json, which anyone who can write to the store can forge; the caller sets
 * its "run_id" and "run_uri" to the run it means (the one named on the command line), and
 * submit records them too. Before acting, a flavor verifies against the platform that the job
 * the handle names is that run's (local: the pid is `stepop run` of that run, started at the
 * recorded time; docker: the container carries the label io.stepop.run-id of that run), acts on
 * nothing else, and fails with ERR_REFUSED naming what it found; paths in a handle are used only
 * where the flavor itself would have put them. docs/flavors.md#flavor-conventions. */
struct flavor_ops {
    const char *name;
    /* Refuse settings or manifest fields this flavor cannot honour (never ignore them). */
    int (*validate)(const struct job *j, struct err *e);
    /* --dry-run: the exact request(s) submit would send, as JSON. */
    int (*render)(const struct job *j, cJSON **requests, struct err *e);
    /* Launches the job; *handle (caller frees) is what poll/cancel/cleanup need later, also from
     * another process (it is recorded in <run_uri>submission.json). */
    int (*submit)(const struct job *j, cJSON **handle, struct err *e);
    int (*poll)(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e);
    /* Asks the job to stop (SIGTERM, then SIGKILL after grace_ms). Returns once asked. */
    int (*cancel)(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e);
    /* Releases what the job left behind (a stopped container), unless settings keep it. */
    int (*cleanup)(const cJSON *handle, const cJSON *settings, struct err *e);
    /* Whether the platform may run the step again after a failed attempt (Kubernetes retries,
     * SageMaker spot restarts): the follow loop then asks poll before it takes a failed status
     * as the run's last. NULL: never. */
    int (*may_restart)(const cJSON *settings);
};

struct flavor_info {
    const char *name;
    const char *integration;    /* the platform it talks to */
    const char *notes;
    const struct flavor_ops *ops; /* NULL: planned, not in this build */
};

/* Every flavor of the design, available or planned, in a stable order; count in *n. */
const struct flavor_info *flavor_all(int *n);
/* The flavor called name, or NULL; e says whether it is unknown or only planned. */
const struct flavor_ops *flavor_find(const char *name, struct err *e);

/* The local flavor's submit: `stepop run` as a child in its own session and work directory under
 * the run (j->settings: the local flavor's); with exec_argv (NULL-terminated), `stepop run
 * --exec -- EXEC_ARGV...` runs that command instead of the manifest's (the spark flavor's
 * client mode runs spark-submit so). The handle is flavor_local_ops's. */
int flavor_local_spawn(const struct job *j, const char *const *exec_argv, cJSON **handle, struct err *e);
extern const struct flavor_ops flavor_local_ops;

/* Settings helpers: a string / bool / number setting, or the fallback when absent. A setting of
 * the wrong type is an error naming it (settings.<key>). */
int flavor_setting_str(const cJSON *settings, const char *key, const char *fallback, const char **out, struct err *e);
int flavor_setting_bool(const cJSON *settings, const char *key, int fallback, int *out, struct err *e);
/* A list of non-empty strings; *out NULL when absent or null. */
int flavor_setting_str_list(const cJSON *settings, const char *key, const cJSON **out, struct err *e);
/* The manifest names an image, a reference without white space ("the NAME flavor needs an image"). */
int flavor_check_image(const struct manifest *m, const char *flavor, struct err *e);
/* Refuses settings keys not in known (NULL-terminated), naming the first unknown one. */
int flavor_check_settings(const cJSON *settings, const char *flavor, const char *const *known, struct err *e);

#endif
