/* Following a run from the client: status.json and the flavor's own state together, log chunks
 * streamed in order with no gap and no duplicate, Ctrl-C cancelling (a second one detaches),
 * a pending deadline and an overall deadline, and the flavor's report filling in a status the
 * entrypoint never wrote. */
#ifndef STEPOP_FOLLOW_H
#define STEPOP_FOLLOW_H

#include "flavor.h"

#include "../artifacts/store.h"
#include "../runtime/status.h"

#include <stdio.h>

/* Where the next log chunk is expected. */
struct log_cursor {
    int attempt;
    int seq;
};

/* Writes every log chunk of cur->attempt from cur->seq on that exists now; advances cur. */
int follow_drain_logs(struct store *s, const char *run_uri, struct log_cursor *cur, FILE *out, struct err *e);
/* Reads and parses <run_uri>NAME, a small JSON object; ERR_NOT_FOUND when absent. */
int follow_read_json(struct store *s, const char *run_uri, const char *name, cJSON **out, struct err *e);
/* Reads <run_uri>status.json; ERR_NOT_FOUND when absent. */
int follow_read_status(struct store *s, const char *run_uri, struct run_status *st, struct err *e);
int follow_write_status(struct store *s, const char *run_uri, const struct run_status *st, struct err *e);

struct follow_options {
    const char *run_uri;
    const struct flavor_ops *flavor; /* NULL: follow the store only */
    const cJSON *handle, *settings;
    FILE *log_out;                   /* NULL: no logs */
    int print_phases;
    int handle_interrupts;           /* Ctrl-C cancels the job, a second one detaches */
    int64_t pending_timeout_ms;      /* 0: none */
    int64_t deadline_ms;             /* overall, monotonic; 0: none */
    int64_t grace_ms;
    int cleanup;                     /* call the flavor's cleanup at the end */
};

struct follow_result {
    struct run_status status;        /* the final status (filled in from the flavor if need be) */
    int have_status;
    int lost;                        /* ended without a final status, filled in from the flavor */
    int pending_timed_out;
    int cannot_start;                /* the flavor said the job will not start (REMOTE_CANNOT_START) */
    int deadline_passed;
    int cancelled;
    int detached;
};

int follow_run(const struct follow_options *o, struct follow_result *r, struct err *e);

#endif
