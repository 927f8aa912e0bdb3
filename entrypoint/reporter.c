#include "reporter.h"

#include "../artifacts/store.h"
#include "../runtime/http.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Holes are punched in whole blocks. */
#define SPOOL_BLOCK 4096

struct reporter {
    pthread_mutex_t lock;
    pthread_cond_t wake, progress;
    pthread_t thread, cb_thread;
    int cb_running;
    struct reporter_options opt;
    char *run_uri, *callback_url;
    struct store *store;
    struct run_status status;
    unsigned status_version, status_written; /* bumped on every change / last version written */
    int64_t heartbeat_ms, next_heartbeat;

    /* The spool: output is appended at logical offset spool_end; file offset = logical - base.
     * Shipped bytes are released (holes punched, or the file emptied once all is shipped where
     * the file system cannot punch). */
    int spool_fd;
    int64_t spool_end, shipped, base, released;
    int punch_unsupported;
    int64_t oldest_unshipped_at; /* monotonic ms when the oldest unshipped byte arrived */
    int64_t dropped, dropped_unmarked; /* output not spooled (spool full or unwritable) */
    char drop_reason[200];

    /* The chunk being shipped: its range and number are fixed at its first attempt, so every
     * retry writes exactly the same object. */
    int chunk_pending;
    int64_t chunk_start, chunk_len;
    int seq;
    int64_t last_ship_at, gap_ms; /* pacing: objects at least gap_ms apart while output keeps coming */

    int in_io;                    /* the thread is talking to the store (lock released) */
    int shipped_last;             /* the last write was a log chunk */
    int flushing, stopping, giving_up;
    int ship_now;                 /* the run is ending: no pacing delay before the next chunk */
    atomic_int abort_io;          /* aborts the reporter thread's store calls in flight */
    atomic_int cb_abort;          /* the same for the callback thread */
    int64_t retry_at;             /* after a failed write, wait before the next try */
    char last_error[1024];
    char *cb_pending;             /* the latest status for the callback, owned */
    int cb_stop, cb_busy;
    pthread_cond_t cb_wake;
};

static void block_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* Warnings bypass the log sink: the lock is held, and the shipped log must not grow from its own
 * failures. */
static void warn_once(struct reporter *r, const char *what, const char *msg)
{
    if (strcmp(r->last_error, msg) != 0) {
        char line[1300];
        int n = snprintf(line, sizeof line, "stepop: warning: %s failed (will retry): %s\n", what, msg);
        size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        if (r->opt.warn)
            r->opt.warn(r->opt.warn_ctx, line, len);
        else
            (void)!write(2, line, len);
    }
    str_copy(r->last_error, sizeof r->last_error, msg);
}

static void release_shipped(struct reporter *r)
{
    if (r->shipped == r->spool_end && r->shipped > r->base) {
        /* Everything is out: start the file over, on any file system. */
        if (ftruncate(r->spool_fd, 0) == 0) {
            r->base = r->released = r->shipped;
            return;
        }
    }
    if (r->punch_unsupported)
        return;
    int64_t upto = (r->shipped - r->base) / SPOOL_BLOCK * SPOOL_BLOCK;
    int64_t from = r->released - r->base;
    if (upto <= from)
        return;
    if (fallocate(r->spool_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, from, upto - from) == 0)
        r->released = r->base + upto;
    else
        r->punch_unsupported = 1;
}

/* Called with the lock held; returns with it held. */
static void ship_once(struct reporter *r)
{
    if (!r->chunk_pending) {
        int64_t n = r->spool_end - r->shipped;
        if (n > (int64_t)r->opt.chunk_max)
            n = (int64_t)r->opt.chunk_max;
        r->chunk_start = r->shipped;
        r->chunk_len = n;
        r->chunk_pending = 1;
        int64_t now = time_mono_ms();
        /* Pacing: output that keeps coming is shipped in ever larger batches, up to the interval;
         * after a quiet spell the next output goes out after the short delay again. */
        if (r->last_ship_at && now - r->last_ship_at <= r->gap_ms + r->opt.ship_delay_ms)
            r->gap_ms = r->gap_ms * 2 > r->opt.ship_interval_ms ? r->opt.ship_interval_ms : r->gap_ms * 2;
        else
            r->gap_ms = r->opt.ship_delay_ms;
        r->last_ship_at = now;
    }
    int64_t start = r->chunk_start, n = r->chunk_len;
    int seq = r->seq;
    off_t at = (off_t)(start - r->base);
    r->in_io = 1;
    pthread_mutex_unlock(&r->lock);
    char *buf = xmalloc((size_t)n);
    struct err e = { 0 };
    int rc = 0;
    ssize_t got = pread(r->spool_fd, buf, (size_t)n, at);
    if (got != n) {
        rc = err_set(&e, ERR_IO, "reading the log spool: %s", got < 0 ? strerror(errno) : "short read");
    } else {
        char name[64];
        snprintf(name, sizeof name, "logs/%d/%08d.log", r->opt.attempt, seq);
        char *uri = uri_join(r->run_uri, name);
        rc = store_put_small(r->store, uri, buf, (size_t)n, &e);
        free(uri);
    }
    free(buf);
    pthread_mutex_lock(&r->lock);
    r->in_io = 0;
    if (rc == 0) {
        r->shipped = start + n;
        r->chunk_pending = 0;
        r->seq++;
        r->oldest_unshipped_at = r->shipped < r->spool_end ? time_mono_ms() : 0;
        r->last_error[0] = '\0';
        release_shipped(r);
    } else if (!r->giving_up) {
        warn_once(r, "shipping logs", e.msg);
        r->retry_at = time_mono_ms() + 1000;
    }
}

static void publish_once(struct reporter *r)
{
    unsigned version = r->status_version;
    cJSON *j = status_to_json(&r->status);
    char *text = json_print(j, 1);
    cJSON_Delete(j);
    if (r->callback_url) {
        free(r->cb_pending);
        r->cb_pending = xstrdup(text);
        pthread_cond_signal(&r->cb_wake);
    }
    r->in_io = 1;
    pthread_mutex_unlock(&r->lock);
    struct err e = { 0 };
    char *uri = uri_join(r->run_uri, "status.json");
    int rc = store_put_small(r->store, uri, text, strlen(text), &e);
    free(uri);
    cJSON_free(text);
    pthread_mutex_lock(&r->lock);
    r->in_io = 0;
    if (rc == 0) {
        if (r->status_written < version)
            r->status_written = version;
    } else {
        warn_once(r, "writing status.json", e.msg);
        r->retry_at = time_mono_ms() + 1000;
    }
}

/* When the unshipped output is due, in monotonic ms. */
static int64_t logs_due_at(const struct reporter *r)
{
    if (r->chunk_pending || r->flushing || r->ship_now || status_phase_is_final(r->status.phase) ||
        r->spool_end - r->shipped >= (int64_t)r->opt.chunk_max)
        return 0;
    int64_t at = r->oldest_unshipped_at + r->opt.ship_delay_ms;
    if (r->last_ship_at && r->last_ship_at + r->gap_ms > at)
        at = r->last_ship_at + r->gap_ms;
    if (at > r->oldest_unshipped_at + r->opt.ship_interval_ms)
        at = r->oldest_unshipped_at + r->opt.ship_interval_ms;
    return at;
}

static void *reporter_main(void *arg)
{
    struct reporter *r = arg;
    block_signals();
    http_set_thread_stop(&r->abort_io);
    pthread_mutex_lock(&r->lock);
    for (;;) {
        int64_t now = time_mono_ms();
        if (r->heartbeat_ms && now >= r->next_heartbeat) {
            r->status.heartbeat_ms = time_wall_ms();
            r->status_version++;
            r->next_heartbeat = now + r->heartbeat_ms;
        }
        if (atomic_load(&r->abort_io)) {
            if (r->stopping)
                break;
            pthread_cond_broadcast(&r->progress);
            struct timespec ts = time_realtime_in(50);
            pthread_cond_timedwait(&r->wake, &r->lock, &ts);
            continue;
        }
        int backing_off = now < r->retry_at;
        int have_logs = r->spool_end > r->shipped && !r->giving_up;
        int64_t due = have_logs ? logs_due_at(r) : 0;
        /* A final status waits for the logs: whoever reads it may stop reading logs. */
        int logs_first = r->flushing || status_phase_is_final(r->status.phase);
        int status_due = r->status_written != r->status_version && !(logs_first && have_logs);
        /* Output that never stops waiting (MiBs a second) must not starve heartbeats: after a
         * chunk, a pending status goes next. */
        int logs_due = have_logs && now >= due && !(status_due && r->shipped_last);
        if (logs_due && !backing_off) {
            ship_once(r);
            r->shipped_last = 1;
            pthread_cond_broadcast(&r->progress);
            continue;
        }
        if (status_due && !backing_off) {
            publish_once(r);
            r->shipped_last = 0;
            pthread_cond_broadcast(&r->progress);
            continue;
        }
        if (r->stopping && !have_logs && r->status_written == r->status_version)
            break;
        int64_t wait = 1000;
        if (backing_off)
            wait = r->retry_at - now;
        else if (have_logs)
            wait = due - now;
        if (r->heartbeat_ms && r->next_heartbeat - now < wait)
            wait = r->next_heartbeat - now;
        if (wait < 1)
            wait = 1;
        struct timespec ts = time_realtime_in(wait);
        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
    }
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Best effort: POSTs the newest status; a slow or failing receiver only loses updates. */
static void *callback_main(void *arg)
{
    struct reporter *r = arg;
    block_signals();
    http_set_thread_stop(&r->cb_abort);
    struct http_client *c = http_client_new();
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->cb_pending && !r->cb_stop)
            pthread_cond_wait(&r->cb_wake, &r->lock);
        if (!r->cb_pending)
            break;
        char *body = r->cb_pending;
        r->cb_pending = NULL;
        r->cb_busy = 1;
        pthread_mutex_unlock(&r->lock);
        static const char *const headers[] = { "Content-Type: application/json", NULL };
        struct http_request req = { .method = "POST", .url = r->callback_url, .headers = headers, .body = body,
                                    .body_len = strlen(body), .max_attempts = 3, .timeout_ms = 5000 };
        struct http_response resp;
        struct err e = { 0 };
        if (http_perform(c, &req, &resp, &e) < 0)
            log_debug("status callback failed: %s", e.msg);
        http_response_free(&resp);
        free(body);
        pthread_mutex_lock(&r->lock);
        r->cb_busy = 0;
        pthread_cond_broadcast(&r->progress);
    }
    r->cb_busy = 0;
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->lock);
    http_client_free(c);
    return NULL;
}

int reporter_start(const struct reporter_options *o, const struct run_status *initial, struct reporter **out,
                   struct err *e)
{
    struct reporter *r = xcalloc(1, sizeof *r);
    r->opt = *o;
    r->run_uri = xstrdup(o->run_uri);
    r->opt.run_uri = r->run_uri;
    if (o->callback_url) {
        r->callback_url = xstrdup(o->callback_url);
        r->opt.callback_url = r->callback_url;
    }
    if (!r->opt.chunk_max)
        r->opt.chunk_max = 1u << 20;
    if (r->opt.ship_interval_ms <= 0)
        r->opt.ship_interval_ms = 1000;
    if (r->opt.ship_delay_ms <= 0)
        r->opt.ship_delay_ms = 200;
    if (r->opt.ship_delay_ms > r->opt.ship_interval_ms)
        r->opt.ship_delay_ms = r->opt.ship_interval_ms;
    if (r->opt.spool_max <= 0)
        r->opt.spool_max = (int64_t)1 << 30;
    r->gap_ms = r->opt.ship_delay_ms;
    r->status = *initial;
    r->status.gpu = initial->gpu ? cJSON_Duplicate(initial->gpu, 1) : NULL;
    r->status_version = 1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    pthread_cond_init(&r->progress, NULL);
    pthread_cond_init(&r->cb_wake, NULL);
    /* The spool is an unlinked temporary file: output waits there, not in memory, when the
     * store is slow or down. */
    char *tmpl = xasprintf("%s/stepop-spool-XXXXXX", env_or("STEPOP_SPOOL_DIR", env_or("TMPDIR", "/tmp")));
    r->spool_fd = mkostemp(tmpl, O_CLOEXEC);
    if (r->spool_fd >= 0)
        unlink(tmpl);
    int rc = r->spool_fd < 0 ? err_set(e, ERR_IO, "creating the log spool %s: %s", tmpl, strerror(errno)) : 0;
    free(tmpl);
    if (rc == 0)
        rc = store_open(r->run_uri, &r->store, e);
    if (rc == 0 && pthread_create(&r->thread, NULL, reporter_main, r) != 0)
        rc = err_set(e, ERR_INTERNAL, "cannot start the reporting thread");
    if (rc == 0 && r->callback_url) {
        if (pthread_create(&r->cb_thread, NULL, callback_main, r) != 0) {
            log_warn("cannot start the callback thread; STEPOP_CALLBACK_URL is ignored");
        } else {
            r->cb_running = 1;
        }
    }
    if (rc < 0) {
        if (r->spool_fd >= 0)
            close(r->spool_fd);
        store_close(r->store);
        status_free(&r->status);
        free(r->run_uri);
        free(r->callback_url);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

struct run_status *reporter_lock(struct reporter *r)
{
    pthread_mutex_lock(&r->lock);
    return &r->status;
}

void reporter_unlock(struct reporter *r)
{
    r->status.updated_ms = time_wall_ms();
    r->status_version++;
    r->retry_at = 0;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void reporter_set_heartbeat(struct reporter *r, int64_t interval_ms)
{
    pthread_mutex_lock(&r->lock);
    r->heartbeat_ms = interval_ms;
    r->next_heartbeat = time_mono_ms() + interval_ms;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void reporter_ship_logs_now(struct reporter *r)
{
    pthread_mutex_lock(&r->lock);
    r->ship_now = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

/* Appends to the spool; with the lock held. 0, or -1 with errno. */
static int spool_append(struct reporter *r, const void *data, size_t n)
{
    ssize_t w = pwrite(r->spool_fd, data, n, (off_t)(r->spool_end - r->base));
    if (w != (ssize_t)n) {
        if (w >= 0)
            errno = ENOSPC; /* a short write leaves bytes past spool_end that are simply rewritten */
        return -1;
    }
    if (r->spool_end == r->shipped) {
        r->oldest_unshipped_at = time_mono_ms();
        pthread_cond_signal(&r->wake);
    }
    r->spool_end += (int64_t)n;
    if (r->spool_end - r->shipped >= (int64_t)r->opt.chunk_max)
        pthread_cond_signal(&r->wake);
    return 0;
}

static int spool_fits(const struct reporter *r, size_t n)
{
    return r->spool_end - r->shipped + (int64_t)n <= r->opt.spool_max;
}

/* A line in the log where output was dropped, once there is room for it and for room_for more
 * bytes (or at the end, when force is set). With the lock held. */
static void mark_drops(struct reporter *r, size_t room_for, int force)
{
    if (r->dropped_unmarked == 0)
        return;
    char note[400];
    int k = snprintf(note, sizeof note, "\n[stepop: %lld bytes of output were dropped here: %s]\n",
                     (long long)r->dropped_unmarked, r->drop_reason);
    if ((force || spool_fits(r, (size_t)k + room_for)) && spool_append(r, note, (size_t)k) == 0)
        r->dropped_unmarked = 0;
}

void reporter_log(struct reporter *r, const void *data, size_t n)
{
    pthread_mutex_lock(&r->lock);
    mark_drops(r, n, 0);
    if (r->dropped_unmarked == 0 && spool_fits(r, n)) {
        if (spool_append(r, data, n) == 0) {
            pthread_mutex_unlock(&r->lock);
            return;
        }
        snprintf(r->drop_reason, sizeof r->drop_reason, "the log spool could not be written (%s)", strerror(errno));
    } else if (r->dropped_unmarked == 0) {
        char max[32];
        units_format_size(r->opt.spool_max, max, sizeof max);
        snprintf(r->drop_reason, sizeof r->drop_reason,
                 "%s of output was waiting for the store already (STEPOP_LOG_SPOOL_MAX)", max);
    }
    r->dropped += (int64_t)n;
    r->dropped_unmarked += (int64_t)n;
    pthread_mutex_unlock(&r->lock);
}

/* Waits on progress until cond holds or the monotonic deadline passes; with the lock held. */
#define WAIT_UNTIL(r, cond, deadline)                                                                                \
    while (!(cond) && time_mono_ms() < (deadline)) {                                                                 \
        struct timespec ts_ = time_realtime_in(50);                                                                  \
        pthread_cond_timedwait(&(r)->progress, &(r)->lock, &ts_);                                                    \
    }

int reporter_flush(struct reporter *r, int64_t deadline_ms, struct err *e)
{
    pthread_mutex_lock(&r->lock);
    int64_t target = r->spool_end;
    unsigned version = r->status_version;
    r->flushing = 1;
    r->retry_at = 0;
    pthread_cond_signal(&r->wake);
    WAIT_UNTIL(r, r->shipped >= target && r->status_written >= version, deadline_ms);
    int rc = 0;
    if (r->shipped < target || r->status_written < version)
        rc = err_set(e, ERR_NETWORK, "could not write logs and status in time: %s",
                     r->last_error[0] ? r->last_error : "timed out");
    r->flushing = 0;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Adds a note to the final status's message. With the lock held. */
static void append_to_message(struct reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append_to_message(struct reporter *r, const char *fmt, ...)
{
    char note[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof note, fmt, ap);
    va_end(ap);
    size_t len = strlen(r->status.message);
    snprintf(r->status.message + len, sizeof r->status.message - len, "%s%s", len ? "; " : "", note);
    r->status.updated_ms = time_wall_ms();
    r->status_version++;
}

static void free_reporter(struct reporter *r)
{
    close(r->spool_fd);
    store_close(r->store);
    status_free(&r->status);
    free(r->cb_pending);
    free(r->run_uri);
    free(r->callback_url);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->progress);
    pthread_cond_destroy(&r->cb_wake);
    free(r);
}

int reporter_finish(struct reporter *r, int64_t deadline_ms, struct err *e)
{
    /* Once the logs are given up the status gets until hard_ms; the threads end by exit_ms. */
    int64_t hard_ms = deadline_ms + 3500, exit_ms = deadline_ms + 4800;
    pthread_mutex_lock(&r->lock);
    mark_drops(r, 0, 1);
    if (r->dropped > 0)
        append_to_message(r, "%lld bytes of log output were dropped (%s)", (long long)r->dropped, r->drop_reason);
    pthread_mutex_unlock(&r->lock);
    int rc = reporter_flush(r, deadline_ms, e);
    pthread_mutex_lock(&r->lock);
    if (rc < 0) {
        /* Give up on the logs: abort the upload in flight, then write the status alone. */
        r->giving_up = 1;
        atomic_store(&r->abort_io, 1);
        pthread_cond_signal(&r->wake);
        WAIT_UNTIL(r, !r->in_io, hard_ms);
        if (r->spool_end > r->shipped)
            append_to_message(r,
                              "%lld bytes of log output were not shipped: the store did not take them before the "
                              "final flush deadline (STEPOP_FINAL_FLUSH_TIMEOUT)",
                              (long long)(r->spool_end - r->shipped));
        atomic_store(&r->abort_io, 0);
        r->retry_at = 0;
        pthread_cond_signal(&r->wake);
        WAIT_UNTIL(r, r->status_written == r->status_version, hard_ms);
        atomic_store(&r->abort_io, 1);
    }
    r->stopping = 1;
    r->cb_stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_cond_signal(&r->cb_wake);
    /* The callback gets the final status if it can, within the same bound. */
    int64_t cb_until = time_mono_ms() + 5000 < hard_ms ? time_mono_ms() + 5000 : hard_ms;
    WAIT_UNTIL(r, !r->cb_busy && !r->cb_pending, cb_until);
    atomic_store(&r->cb_abort, 1);
    pthread_mutex_unlock(&r->lock);
    struct timespec until = time_realtime_in(exit_ms - time_mono_ms());
    int joined = pthread_timedjoin_np(r->thread, NULL, &until) == 0;
    if (joined && r->cb_running)
        joined = pthread_timedjoin_np(r->cb_thread, NULL, &until) == 0;
    if (!joined) {
        /* A store call that ignores the abort (a hung file system): leave the threads and their
         * state to the process's exit rather than hold the container. */
        if (rc == 0)
            rc = err_set(e, ERR_NETWORK, "the reporting threads did not stop in time");
        return rc;
    }
    free_reporter(r);
    return rc;
}
