/* The entrypoint's reporting thread: keeps <run_uri>status.json current (phase changes and
 * heartbeats), ships the step's combined output to <run_uri>logs/<attempt>/<seq>.log from a
 * local spool, and POSTs each status change to STEPOP_CALLBACK_URL. Network work never happens
 * on the thread that reads the step's output. */
#ifndef STEPOP_REPORTER_H
#define STEPOP_REPORTER_H

#include "../runtime/err.h"
#include "../runtime/status.h"

#include <stddef.h>
#include <stdint.h>

struct reporter;

struct reporter_options {
    const char *run_uri;
    int attempt;
    int64_t ship_delay_ms;    /* output waits this long after a quiet spell, default 200ms */
    int64_t ship_interval_ms; /* STEPOP_LOG_INTERVAL: the ceiling on that wait and on the spacing
                                 of log objects while output keeps coming, default 1s */
    size_t chunk_max;         /* bytes per log object, 1 MiB: shipped at once when reached */
    int64_t spool_max;        /* STEPOP_LOG_SPOOL_MAX: unshipped bytes kept on disk, default 1 GiB */
    const char *callback_url; /* STEPOP_CALLBACK_URL or NULL */
    /* Where the thread's own warnings go; must not block (the lock is held). NULL: stderr. */
    void (*warn)(void *ctx, const char *line, size_t len);
    void *warn_ctx;
};

int reporter_start(const struct reporter_options *o, const struct run_status *initial, struct reporter **out,
                   struct err *e);
/* Lock, change the status, unlock; the change is published soon after. */
struct run_status *reporter_lock(struct reporter *r);
void reporter_unlock(struct reporter *r);
/* 0 stops heartbeats; otherwise heartbeat_at is refreshed and published every interval. */
void reporter_set_heartbeat(struct reporter *r, int64_t interval_ms);
/* Appends output to the spool (never blocks on the network). Past spool_max of unshipped bytes
 * output is dropped, and a line in the log says how much and why. */
void reporter_log(struct reporter *r, const void *data, size_t n);
/* Ships what is logged from now on without the pacing delay, and returns at once: the run is
 * ending, so its last log chunk goes out while the caller finishes its own writes. */
void reporter_ship_logs_now(struct reporter *r);
/* Waits until everything logged so far is shipped and the current status is written, or until
 * deadline (monotonic ms). -1 when something could not be written in time. */
int reporter_flush(struct reporter *r, int64_t deadline_ms, struct err *e);
/* Flushes until deadline; if logs or the status are still not written then, aborts what is in
 * flight, gives up on the logs and writes the final status once more with a message saying how
 * many log bytes were not shipped. Returns within deadline + 5 s in every case (the threads are
 * abandoned, not freed, if a store call will not return; the process exits next). */
int reporter_finish(struct reporter *r, int64_t deadline_ms, struct err *e);

#endif
