#include "passthru.h"

#include "../runtime/timeutil.h"
#include "../runtime/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct passthru {
    pthread_mutex_t lock;
    pthread_cond_t more, room; /* data to write / the writer made room */
    pthread_t thread;
    int fd;
    char *buf;
    size_t cap;
    size_t head, used;         /* next byte to fill at buf[head]; bytes waiting (ending at head) */
    int64_t dropped_total;
    int64_t dropped_unreported;/* dropped since the last note */
    int closing;               /* drain what is left, then stop */
    int abandon;               /* stop now, whatever is left */
    int broken;                /* fd failed for good (EPIPE, EBADF): everything is dropped */
    int64_t write_started_at;  /* monotonic ms the writer's current write began, 0 when idle */
};

/* Interrupts a write blocked on a pipe nobody reads: the handler does nothing, and since it is
 * installed without SA_RESTART the write returns EINTR. */
#define PASSTHRU_SIGNAL (SIGRTMIN)

static void on_interrupt(int sig)
{
    (void)sig;
}

static void install_interrupt(void)
{
    struct sigaction sa = { .sa_handler = on_interrupt };
    sigemptyset(&sa.sa_mask);
    sigaction(PASSTHRU_SIGNAL, &sa, NULL);
}

/* Copies n bytes in at head, wrapping; the caller made sure they fit. */
static void put_bytes(struct passthru *p, const void *data, size_t n)
{
    const char *src = data;
    while (n > 0) {
        size_t room = p->cap - p->head;
        size_t k = n < room ? n : room;
        memcpy(p->buf + p->head, src, k);
        p->head = (p->head + k) % p->cap;
        p->used += k;
        src += k;
        n -= k;
    }
}

static void *writer_main(void *arg)
{
    struct passthru *p = arg;
    sigset_t only;
    sigfillset(&only);
    sigdelset(&only, PASSTHRU_SIGNAL);
    pthread_sigmask(SIG_SETMASK, &only, NULL);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->used == 0 && !p->closing && !p->abandon)
            pthread_cond_wait(&p->more, &p->lock);
        if (p->abandon || (p->used == 0 && p->closing))
            break;
        size_t tail = (p->head + p->cap - p->used) % p->cap;
        size_t len = p->cap - tail < p->used ? p->cap - tail : p->used;
        p->write_started_at = time_mono_ms();
        pthread_mutex_unlock(&p->lock);
        ssize_t w = write(p->fd, p->buf + tail, len);
        int err = errno;
        pthread_mutex_lock(&p->lock);
        p->write_started_at = 0;
        if (w > 0) {
            p->used -= (size_t)w;
        } else if (w < 0 && err == EINTR) {
            continue;
        } else if (w < 0 && err == EAGAIN) {
            /* Someone made the stream non-blocking: wait for room rather than spin. */
            pthread_mutex_unlock(&p->lock);
            struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };
            poll(&pfd, 1, 100);
            pthread_mutex_lock(&p->lock);
            continue;
        } else {
            /* Nobody will read this fd again: what waits and what comes is dropped. */
            p->broken = 1;
            p->dropped_total += (int64_t)p->used;
            p->used = 0;
        }
        pthread_cond_broadcast(&p->room);
    }
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int passthru_open(int fd, size_t capacity, struct passthru **out, struct err *e)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_interrupt);
    struct passthru *p = xcalloc(1, sizeof *p);
    p->fd = fd;
    p->cap = capacity ? capacity : 1;
    p->buf = xmalloc(p->cap);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->more, NULL);
    pthread_cond_init(&p->room, NULL);
    if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->more);
        pthread_cond_destroy(&p->room);
        free(p->buf);
        free(p);
        return err_set(e, ERR_INTERNAL, "cannot start the output pass-through thread");
    }
    *out = p;
    return 0;
}

/* A writer that is keeping up only lagged behind for a moment: on a busy node it waits for a CPU
 * or for dirty-page writeback for tens of milliseconds without being blocked, so wait up to
 * MAX_WAIT_MS for it. One stuck in a write for STALL_MS is blocked: drop at once. */
#define STALL_MS 100
#define MAX_WAIT_MS 100

static void wait_for_room(struct passthru *p, size_t n)
{
    int64_t until = time_mono_ms() + MAX_WAIT_MS;
    while (n > p->cap - p->used && n <= p->cap && !p->broken) {
        int64_t now = time_mono_ms();
        if (now >= until || (p->write_started_at && now - p->write_started_at >= STALL_MS))
            return;
        struct timespec ts = time_realtime_in(2);
        pthread_cond_timedwait(&p->room, &p->lock, &ts);
    }
}

void passthru_write(struct passthru *p, const void *data, size_t n)
{
    pthread_mutex_lock(&p->lock);
    if (p->broken) {
        p->dropped_total += (int64_t)n;
    } else {
        if (p->dropped_unreported > 0) {
            char note[200];
            int k = snprintf(note, sizeof note,
                             "\n[stepop: %lld bytes of output were not passed through here while this stream was "
                             "blocked; the shipped log has every byte]\n",
                             (long long)p->dropped_unreported);
            if ((size_t)k + n <= p->cap - p->used) {
                put_bytes(p, note, (size_t)k);
                p->dropped_unreported = 0;
            }
        }
        wait_for_room(p, n);
        if (p->dropped_unreported == 0 && n <= p->cap - p->used) {
            put_bytes(p, data, n);
            pthread_cond_signal(&p->more);
        } else {
            p->dropped_total += (int64_t)n;
            p->dropped_unreported += (int64_t)n;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

int64_t passthru_close(struct passthru *p, int64_t deadline_ms)
{
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    pthread_cond_signal(&p->more);
    while (p->used > 0 && time_mono_ms() < deadline_ms) {
        struct timespec ts = time_realtime_in(50);
        pthread_cond_timedwait(&p->room, &p->lock, &ts);
    }
    int64_t dropped = p->dropped_total + (int64_t)p->used;
    p->abandon = 1;
    pthread_cond_signal(&p->more);
    pthread_mutex_unlock(&p->lock);
    /* A write blocked on a full pipe is interrupted; repeat in case the signal landed between
     * the thread's check of abandon and its next write. */
    int joined = 0;
    for (int tries = 0; !joined && tries < 50; tries++) {
        pthread_kill(p->thread, PASSTHRU_SIGNAL);
        struct timespec ts = time_realtime_in(20);
        joined = pthread_timedjoin_np(p->thread, NULL, &ts) == 0;
    }
    if (!joined)
        return dropped; /* stuck where no signal reaches (a hung file system): the process exits next */
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->more);
    pthread_cond_destroy(&p->room);
    free(p->buf);
    free(p);
    return dropped;
}
