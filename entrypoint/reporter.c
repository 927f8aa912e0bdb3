#include "reporter.h"

#include "../artifacts/store.h"
#include "../runtime/http.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    int spool_fd;
    int64_t spool_end, shipped;             /* bytes spooled / shipped */
    int64_t oldest_unshipped_at;            /* monotonic ms when spooled bytes started waiting */
    int seq;
    int flushing, stopping;
    int64_t retry_at;                       /* after a failed write, wait before the next try */
    char last_error[1024];
    char *cb_pending;                       /* the latest status for the callback, owned */
    int cb_stop;
    pthread_cond_t cb_wake;
};

static void block_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static int write_status(struct reporter *r, char *json, struct err *e)
{
    char *uri = uri_join(r->run_uri, "status.json");
    int rc = store_put_small(r->store, uri, json, strlen(json), e);
    free(uri);
    return rc;
}

/* Called with the lock held; returns with it held. */
static void ship_once(struct reporter *r)
{
    int64_t start = r->shipped;
    int64_t n = r->spool_end - start;
    if ((size_t)n > r->opt.chunk_max)
        n = (int64_t)r->opt.chunk_max;
    int seq = r->seq;
    pthread_mutex_unlock(&r->lock);
    char *buf = xmalloc((size_t)n);
    struct err e = { 0 };
    int rc = 0;
    ssize_t got = pread(r->spool_fd, buf, (size_t)n, start);
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
    if (rc == 0) {
        r->shipped = start + n;
        r->seq++;
        r->oldest_unshipped_at = r->shipped < r->spool_end ? time_mono_ms() : 0;
        r->last_error[0] = '\0';
    } else {
        if (strcmp(r->last_error, e.msg) != 0)
            fprintf(stderr, "stepop: warning: shipping logs failed (will retry): %s\n", e.msg);
        str_copy(r->last_error, sizeof r->last_error, e.msg);
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
    pthread_mutex_unlock(&r->lock);
    struct err e = { 0 };
    int rc = write_status(r, text, &e);
    cJSON_free(text);
    pthread_mutex_lock(&r->lock);
    if (rc == 0) {
        if (r->status_written < version)
            r->status_written = version;
    } else {
        if (strcmp(r->last_error, e.msg) != 0)
            fprintf(stderr, "stepop: warning: writing status.json failed (will retry): %s\n", e.msg);
        str_copy(r->last_error, sizeof r->last_error, e.msg);
        r->retry_at = time_mono_ms() + 1000;
    }
}

static void *reporter_main(void *arg)
{
    struct reporter *r = arg;
    block_signals();
    pthread_mutex_lock(&r->lock);
    for (;;) {
        int64_t now = time_mono_ms();
        if (r->heartbeat_ms && now >= r->next_heartbeat) {
            r->status.heartbeat_ms = time_wall_ms();
            r->status_version++;
            r->next_heartbeat = now + r->heartbeat_ms;
        }
        int backing_off = now < r->retry_at;
        int logs_due = r->spool_end > r->shipped &&
                       (r->flushing || r->spool_end - r->shipped >= (int64_t)r->opt.chunk_max ||
                        now - r->oldest_unshipped_at >= r->opt.ship_interval_ms);
        /* Logs first: when the final status appears, every log chunk before it is readable. */
        if (logs_due && !backing_off) {
            ship_once(r);
            pthread_cond_broadcast(&r->progress);
            continue;
        }
        int status_due = r->status_written != r->status_version && !(r->flushing && r->spool_end > r->shipped);
        if (status_due && !backing_off) {
            publish_once(r);
            pthread_cond_broadcast(&r->progress);
            continue;
        }
        if (r->stopping && r->spool_end == r->shipped && r->status_written == r->status_version)
            break;
        int64_t wait = 1000;
        if (backing_off)
            wait = r->retry_at - now;
        else if (r->spool_end > r->shipped)
            wait = r->oldest_unshipped_at + r->opt.ship_interval_ms - now;
        if (r->heartbeat_ms && r->next_heartbeat - now < wait)
            wait = r->next_heartbeat - now;
        if (wait < 1)
            wait = 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Best effort: POSTs the newest status; a slow or failing receiver only loses updates. */
static void *callback_main(void *arg)
{
    struct reporter *r = arg;
    block_signals();
    struct http_client *c = http_client_new();
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->cb_pending && !r->cb_stop)
            pthread_cond_wait(&r->cb_wake, &r->lock);
        if (!r->cb_pending)
            break;
        char *body = r->cb_pending;
        r->cb_pending = NULL;
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
    }
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
        r->opt.ship_interval_ms = 3000;
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

void reporter_log(struct reporter *r, const void *data, size_t n)
{
    pthread_mutex_lock(&r->lock);
    ssize_t w = pwrite(r->spool_fd, data, n, r->spool_end);
    if (w == (ssize_t)n) {
        if (r->spool_end == r->shipped)
            r->oldest_unshipped_at = time_mono_ms();
        r->spool_end += (int64_t)n;
        if (r->spool_end - r->shipped >= (int64_t)r->opt.chunk_max)
            pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
    if (w != (ssize_t)n) {
        static const char msg[] = "stepop: warning: the log spool is not writable; output is not shipped\n";
        (void)!write(2, msg, sizeof msg - 1);
    }
}

int reporter_flush(struct reporter *r, int64_t deadline_ms, struct err *e)
{
    pthread_mutex_lock(&r->lock);
    int64_t target = r->spool_end;
    unsigned version = r->status_version;
    r->flushing = 1;
    r->retry_at = 0;
    pthread_cond_signal(&r->wake);
    while ((r->shipped < target || r->status_written < version) && time_mono_ms() < deadline_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->progress, &r->lock, &ts);
    }
    int rc = 0;
    if (r->shipped < target || r->status_written < version)
        rc = err_set(e, ERR_NETWORK, "could not write logs and status in time: %s",
                     r->last_error[0] ? r->last_error : "timed out");
    r->flushing = 0;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int reporter_finish(struct reporter *r, int64_t deadline_ms, struct err *e)
{
    int rc = reporter_flush(r, deadline_ms, e);
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    if (rc < 0) {
        /* Give up on what is left: the deadline passed. */
        r->spool_end = r->shipped;
        r->status_written = r->status_version;
    }
    r->cb_stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_cond_signal(&r->cb_wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    if (r->cb_running)
        pthread_join(r->cb_thread, NULL);
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
    return rc;
}
