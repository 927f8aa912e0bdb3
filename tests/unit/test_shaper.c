/* The bench's shaping proxy (bench/shaper.c): a connection's rate in each direction stays within
 * 15% of the cap, two connections get the cap each, and data waits at least the round trip
 * (a new connection one round trip more). A server in this process answers through the proxy. */
#define SHAPER_NO_MAIN
#include "../../bench/shaper.c"

#include "tap.h"

#define RATE 32e6
#define RTT 0.1
#define BYTES (24 * 1000 * 1000)

static int server_fd;

/* What a connection measured of the bytes it received: the first read starts the clock, and
 * the rest over the time to the last one is the rate. */
struct meter {
    double first, last;
    size_t after_first;
};

static void meter_add(struct meter *m, size_t n)
{
    double now = mono_now();
    if (m->first == 0)
        m->first = now;
    else
        m->after_first += n;
    m->last = now;
}

static double meter_rate(const struct meter *m)
{
    return m->last > m->first ? (double)m->after_first / (m->last - m->first) : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char zeros[1 << 16];

/* One connection to the server: 'E' echoes until EOF; 'S' sinks until EOF and answers with its
 * meter; 'D' sends BYTES and closes. */
static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char cmd, buf[1 << 16];
    if (read(fd, &cmd, 1) == 1) {
        ssize_t n;
        if (cmd == 'E') {
            while ((n = read(fd, buf, sizeof buf)) > 0)
                if (write_all(fd, buf, (size_t)n) < 0)
                    break;
        } else if (cmd == 'S') {
            struct meter m = {0};
            while ((n = read(fd, buf, sizeof buf)) > 0)
                meter_add(&m, (size_t)n);
            write_all(fd, (const char *)&m, sizeof m);
        } else if (cmd == 'D') {
            for (size_t sent = 0; sent < BYTES; sent += sizeof zeros)
                if (write_all(fd, zeros, sizeof zeros) < 0)
                    break;
        }
    }
    close(fd);
    return NULL;
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(server_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t th;
        pthread_create(&th, NULL, serve_one, (void *)(intptr_t)fd);
        pthread_detach(th);
    }
}

static int proxy_port;

static int dial(void)
{
    return connect_target(proxy_port);
}

static double download_rate(void)
{
    int fd = dial();
    char buf[1 << 16];
    struct meter m = {0};
    ssize_t n;
    if (fd < 0 || write(fd, "D", 1) != 1)
        return -1;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        meter_add(&m, (size_t)n);
    close(fd);
    return meter_rate(&m);
}

static double upload_rate(void)
{
    int fd = dial();
    struct meter m = {0};
    if (fd < 0 || write(fd, "S", 1) != 1)
        return -1;
    for (size_t sent = 0; sent < BYTES; sent += sizeof zeros)
        if (write_all(fd, zeros, sizeof zeros) < 0)
            return -1;
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof m && (n = read(fd, (char *)&m + got, sizeof m - got)) > 0)
        got += (size_t)n;
    close(fd);
    return got == sizeof m ? meter_rate(&m) : -1;
}

static void *download_thread(void *arg)
{
    *(double *)arg = download_rate();
    return NULL;
}

static int within(double rate)
{
    return rate >= 0.85 * RATE && rate <= 1.15 * RATE;
}

/* A loaded machine can only slow a transfer, never speed it past the bucket: a rate under the
 * range is measured again (up to three times), one over it fails at once. */
static double measure(double (*fn)(void))
{
    double r = 0;
    for (int i = 0; i < 3; i++) {
        r = fn();
        if (r >= 0.85 * RATE)
            break;
        printf("# %.1f MB/s, under the range: again\n", r / 1e6);
    }
    return r;
}

static double two_downloads(void)
{
    double r[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, download_thread, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    printf("# two at once: %.1f and %.1f MB/s\n", r[0] / 1e6, r[1] / 1e6);
    /* Both must be in range: the smaller decides a retry, the larger is checked after. */
    if (r[1] > 1.15 * RATE || r[0] > 1.15 * RATE)
        return r[0] > r[1] ? r[0] : r[1];
    return r[0] < r[1] ? r[0] : r[1];
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    server_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ok(bind(server_fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(server_fd, 16) == 0 &&
           getsockname(server_fd, (struct sockaddr *)&a, &len) == 0,
       "the server listens");
    pthread_t th;
    pthread_create(&th, NULL, server_main, NULL);
    pthread_detach(th);

    static struct shaper s;
    s.target_port = ntohs(a.sin_port);
    s.rate = RATE;
    s.rtt = RTT;
    proxy_port = shaper_listen(&s, 0);
    ok(proxy_port > 0, "the proxy listens on a port of its own choosing (%d)", proxy_port);
    pthread_create(&th, NULL, shaper_serve, &s);
    pthread_detach(th);

    /* Delay: the first answer on a new connection comes after the handshake's round trip and
     * the request's; a later one after one round trip. */
    int fd = dial();
    double t0 = mono_now();
    char c = 0;
    ok(fd >= 0 && write(fd, "Ex", 2) == 2 && read(fd, &c, 1) == 1 && c == 'x', "an echo through the proxy");
    double t1 = mono_now();
    ok(write(fd, "y", 1) == 1 && read(fd, &c, 1) == 1 && c == 'y', "a second echo on the same connection");
    double t2 = mono_now();
    close(fd);
    printf("# first echo %.0f ms, second %.0f ms (RTT %.0f ms)\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3, RTT * 1e3);
    ok(t1 - t0 >= 2 * RTT, "a new connection's first answer waits the handshake and one round trip");
    ok(t2 - t1 >= RTT && t2 - t1 < RTT + 1.0, "a later answer waits one round trip (and not much more)");

    double up = measure(upload_rate);
    printf("# upload %.1f MB/s (cap %.0f)\n", up / 1e6, RATE / 1e6);
    ok(within(up), "upload rate within 15%% of the cap (%.1f MB/s)", up / 1e6);
    double down = measure(download_rate);
    printf("# download %.1f MB/s (cap %.0f)\n", down / 1e6, RATE / 1e6);
    ok(within(down), "download rate within 15%% of the cap (%.1f MB/s)", down / 1e6);
    double two = measure(two_downloads);
    ok(within(two), "two connections at once get the cap each (the cap is per connection)");
    ok(atomic_load(&s.conns) >= 5, "the proxy counted its connections (%llu)", (unsigned long long)atomic_load(&s.conns));
    return tap_done();
}
