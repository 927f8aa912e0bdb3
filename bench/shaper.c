/* bench/shaper.c: a TCP proxy on loopback that makes a connection look like one to an object
 * store over a real network (docs/benchmarks.md, "Real links"): each connection is capped at
 * --rate bytes a second in each direction (a token bucket), every byte reaches the other side
 * half a round trip (--rtt) after it was sent, and a new connection reaches the server one round
 * trip after it was accepted (the handshake). Not part of stepop: the bench runs it in front of
 * nginx and s3rver.
 *
 *   shaper --to PORT [--port N] [--rate 80M] [--rtt 20]
 *
 * --rate is in bytes a second (K, M, G: powers of 1000; 0: no cap), --rtt in milliseconds.
 * It prints the port it listens on (on 127.0.0.1; --port 0, the default, lets the kernel pick)
 * and serves until SIGTERM or SIGINT, then prints its totals and its CPU time to stderr.
 *
 * Each direction of a connection has a reader, paced by the token bucket (so the sender waits
 * as it would behind a slow link: TCP's own backpressure), and a writer that holds every chunk
 * until its due time; between them a queue of at most rate x RTT/2 plus a few chunks. Threads
 * and 256 KiB reads keep it cheap: the bench reports its CPU beside the figures. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SHAPER_CHUNK (256 * 1024)

struct shaper {
    int target_port;
    double rate;  /* bytes a second, 0: no cap */
    double rtt;   /* seconds */
    double burst; /* seconds of rate the bucket holds */
    int listen_fd;
    atomic_ullong conns, bytes_up, bytes_down;
};

struct chunk {
    struct chunk *next;
    double due; /* monotonic seconds; a chunk of length 0 is the end of the stream */
    size_t len;
    char data[SHAPER_CHUNK];
};

struct conn;

struct direction {
    struct conn *c;
    int src, dst;
    atomic_ullong *counter;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct chunk *head, *tail, *spare;
    size_t queued, cap;
};

struct conn {
    struct shaper *s;
    int client, server;
    atomic_int failed;
    struct direction up, down;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* One side failed (reset, refused): both sockets are shut down, which wakes every thread of the
 * connection blocked on them, and the queues' waiters are woken. */
static void conn_fail(struct conn *c)
{
    if (atomic_exchange(&c->failed, 1))
        return;
    shutdown(c->client, SHUT_RDWR);
    shutdown(c->server, SHUT_RDWR);
    struct direction *ds[2] = {&c->up, &c->down};
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&ds[i]->mu);
        pthread_cond_broadcast(&ds[i]->cv);
        pthread_mutex_unlock(&ds[i]->mu);
    }
}

static struct chunk *chunk_take(struct direction *d)
{
    pthread_mutex_lock(&d->mu);
    struct chunk *k = d->spare;
    if (k)
        d->spare = k->next;
    pthread_mutex_unlock(&d->mu);
    return k ? k : malloc(sizeof *k);
}

static void *dir_reader(void *arg)
{
    struct direction *d = arg;
    struct shaper *s = d->c->s;
    double busy = 0; /* when the link has sent all that was read so far */
    for (;;) {
        struct chunk *k = chunk_take(d);
        if (!k) {
            conn_fail(d->c);
            return NULL;
        }
        ssize_t n;
        do
            n = read(d->src, k->data, sizeof k->data);
        while (n < 0 && errno == EINTR);
        double now = mono_now();
        k->next = NULL;
        k->len = n > 0 ? (size_t)n : 0;
        if (n < 0)
            conn_fail(d->c);
        /* The bucket: the link may lag `now` by at most `burst` (a full bucket), so a reader
         * that overslept catches up that much and no more. */
        if (s->rate > 0) {
            if (busy < now - s->burst)
                busy = now - s->burst;
            busy += (double)k->len / s->rate;
        }
        k->due = (busy > now ? busy : now) + s->rtt / 2;
        pthread_mutex_lock(&d->mu);
        if (d->tail)
            d->tail->next = k;
        else
            d->head = k;
        d->tail = k;
        d->queued += k->len;
        pthread_cond_broadcast(&d->cv);
        while (d->queued > d->cap && !atomic_load(&d->c->failed))
            pthread_cond_wait(&d->cv, &d->mu);
        pthread_mutex_unlock(&d->mu);
        if (n <= 0 || atomic_load(&d->c->failed))
            return NULL;
        if (busy > now)
            sleep_until(busy);
    }
}

static void *dir_writer(void *arg)
{
    struct direction *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        while (!d->head && !atomic_load(&d->c->failed))
            pthread_cond_wait(&d->cv, &d->mu);
        struct chunk *k = d->head;
        if (k) {
            d->head = k->next;
            if (!d->head)
                d->tail = NULL;
        }
        pthread_mutex_unlock(&d->mu);
        if (!k)
            return NULL; /* failed */
        if (k->len == 0) {
            shutdown(d->dst, SHUT_WR);
            free(k);
            return NULL;
        }
        sleep_until(k->due);
        size_t off = 0;
        while (off < k->len) {
            ssize_t w = send(d->dst, k->data + off, k->len - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                conn_fail(d->c);
                free(k);
                return NULL;
            }
            off += (size_t)w;
        }
        atomic_fetch_add(d->counter, k->len);
        pthread_mutex_lock(&d->mu);
        d->queued -= k->len;
        k->next = d->spare;
        d->spare = k;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
    }
}

static void dir_init(struct direction *d, struct conn *c, int src, int dst, atomic_ullong *counter)
{
    memset(d, 0, sizeof *d);
    d->c = c;
    d->src = src;
    d->dst = dst;
    d->counter = counter;
    /* What the link holds in flight (rate x one way), plus room for the reads around it. */
    d->cap = (size_t)(c->s->rate * c->s->rtt / 2) + 2 * SHAPER_CHUNK;
    if (c->s->rate <= 0)
        d->cap = 16 * SHAPER_CHUNK;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
}

static void dir_free(struct direction *d)
{
    struct chunk *lists[2] = {d->head, d->spare};
    for (int i = 0; i < 2; i++)
        while (lists[i]) {
            struct chunk *next = lists[i]->next;
            free(lists[i]);
            lists[i] = next;
        }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

static int connect_target(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct shaper *s = c->s;
    /* The handshake: the server hears of the connection one round trip after the client. */
    sleep_until(mono_now() + s->rtt);
    c->server = connect_target(s->target_port);
    if (c->server >= 0) {
        int one = 1;
        setsockopt(c->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(c->server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        dir_init(&c->up, c, c->client, c->server, &s->bytes_up);
        dir_init(&c->down, c, c->server, c->client, &s->bytes_down);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_t th[3];
        int started = 0;
        void *(*fn[3])(void *) = {dir_reader, dir_writer, dir_reader};
        void *args[3] = {&c->up, &c->up, &c->down};
        for (; started < 3; started++)
            if (pthread_create(&th[started], &attr, fn[started], args[started]) != 0)
                break;
        pthread_attr_destroy(&attr);
        if (started < 3)
            conn_fail(c);
        else
            dir_writer(&c->down);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        dir_free(&c->up);
        dir_free(&c->down);
        close(c->server);
    }
    close(c->client);
    free(c);
    return NULL;
}

/* shaper_listen S PORT: listens on 127.0.0.1:PORT (0: any free port); returns the port, or -1. */
static int shaper_listen(struct shaper *s, int port)
{
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->listen_fd, 512) < 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &len) < 0) {
        close(s->listen_fd);
        return -1;
    }
    /* A token bucket of 20 ms of rate, at least two reads: enough to ride out a late wake-up on
     * a busy machine, too little to change the rate over a transfer. */
    s->burst = 0.02;
    if (s->rate > 0 && s->burst * s->rate < 2.0 * SHAPER_CHUNK)
        s->burst = 2.0 * SHAPER_CHUNK / s->rate;
    return ntohs(a.sin_port);
}

/* shaper_serve S: accepts connections until accept fails (a signal, or the socket closed). */
static void *shaper_serve(void *arg)
{
    struct shaper *s = arg;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            return NULL;
        }
        struct conn *c = calloc(1, sizeof *c);
        pthread_t th;
        pthread_attr_t attr;
        /* The connection's threads (and theirs) block every signal: SIGTERM must reach the
         * thread in accept, which then stops. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (!c) {
            close(fd);
        } else {
            c->s = s;
            c->client = fd;
            c->server = -1;
            atomic_fetch_add(&s->conns, 1);
            if (pthread_create(&th, &attr, conn_main, c) != 0) {
                close(fd);
                free(c);
            }
        }
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
}

#ifndef SHAPER_NO_MAIN
static void on_signal(int sig)
{
    (void)sig;
}

/* "80M" -> 80e6; K, M, G are powers of 1000, an optional trailing "B" or "B/s" is allowed. */
static int parse_rate(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    double mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1e3, end++;
    else if (*end == 'M')
        mul = 1e6, end++;
    else if (*end == 'G')
        mul = 1e9, end++;
    if (*end == 'B')
        end++;
    if (strcmp(end, "/s") == 0)
        end += 2;
    if (end == v || *end || x < 0)
        return -1;
    *out = x * mul;
    return 0;
}

static int usage(const char *why)
{
    fprintf(stderr, "shaper: %s\nusage: shaper --to PORT [--port N] [--rate 80M] [--rtt 20]\n", why);
    return 2;
}

int main(int argc, char **argv)
{
    static struct shaper s;
    int port = 0;
    s.target_port = -1;
    s.rate = 80e6;
    s.rtt = 0.020;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v)
            return usage("an option lacks its value");
        i++;
        if (strcmp(o, "--to") == 0) {
            long p = strtol(v, &end, 10);
            if (*end || p < 1 || p > 65535)
                return usage("--to: expected a port, 1 to 65535");
            s.target_port = (int)p;
        } else if (strcmp(o, "--port") == 0) {
            long p = strtol(v, &end, 10);
            if (*end || p < 0 || p > 65535)
                return usage("--port: expected a port, 0 to 65535");
            port = (int)p;
        } else if (strcmp(o, "--rate") == 0) {
            if (parse_rate(v, &s.rate) < 0)
                return usage("--rate: expected bytes a second, e.g. 80M");
        } else if (strcmp(o, "--rtt") == 0) {
            double ms = strtod(v, &end);
            if (*end || end == v || ms < 0 || ms > 10000)
                return usage("--rtt: expected milliseconds, 0 to 10000");
            s.rtt = ms / 1000;
        } else {
            return usage("unknown option");
        }
    }
    if (s.target_port < 0)
        return usage("--to PORT is required");
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: accept returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int got = shaper_listen(&s, port);
    if (got < 0) {
        perror("shaper: listen");
        return 1;
    }
    printf("%d\n", got);
    fflush(stdout);
    shaper_serve(&s);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "shaper: %llu connections, %llu bytes up, %llu bytes down, CPU user %.2f s, sys %.2f s\n",
            (unsigned long long)s.conns, (unsigned long long)s.bytes_up, (unsigned long long)s.bytes_down,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    return 0;
}
#endif
