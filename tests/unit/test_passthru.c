#include "../../entrypoint/passthru.h"
#include "../../runtime/timeutil.h"
#include "tap.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads everything the pipe has now (non-blocking); returns the bytes read into buf. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            return got;
        got += (size_t)n;
    }
}

/* A reader that keeps up on average but pauses 15 ms between reads, as a busy node's log
 * collector does: it counts what it got until EOF. */
static void *slow_reader(void *arg)
{
    int fd = *(int *)arg;
    static char chunk[64 * 1024];
    size_t *total = malloc(sizeof *total);
    *total = 0;
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0) {
        *total += (size_t)n;
        usleep(15 * 1000);
    }
    return total;
}

int main(void)
{
    struct err e = { 0 };

    /* A reader that keeps up gets every byte, in order. */
    int p1[2];
    if (pipe(p1) < 0)
        return 1;
    struct passthru *pt;
    ok(passthru_open(p1[1], 4096, &pt, &e) == 0, "open");
    for (int i = 0; i < 100; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        passthru_write(pt, line, (size_t)n);
    }
    is_int(passthru_close(pt, time_mono_ms() + 2000), 0, "nothing dropped when the reader keeps up");
    close(p1[1]);
    char *all = calloc(1, 1 << 16);
    size_t got = 0;
    ssize_t n;
    while ((n = read(p1[0], all + got, (1 << 16) - 1 - got)) > 0)
        got += (size_t)n;
    ok(strncmp(all, "line 0\nline 1\n", 14) == 0 && strstr(all, "line 99\n") != NULL, "every line, in order");
    close(p1[0]);

    /* Nobody reads: writes never block, the surplus is counted, and closing returns by its
     * deadline even with the writer thread stuck in write(). */
    int p2[2];
    if (pipe(p2) < 0)
        return 1;
    fcntl(p2[0], F_SETFL, O_NONBLOCK);
    ok(passthru_open(p2[1], 64 * 1024, &pt, &e) == 0, "open on a pipe nobody reads");
    static char block[16 * 1024];
    memset(block, 'b', sizeof block);
    int64_t t0 = time_mono_ms();
    for (int i = 0; i < 640; i++)
        passthru_write(pt, block, sizeof block); /* 10 MiB into a 64 KiB pipe + 64 KiB buffer */
    int64_t spent = time_mono_ms() - t0;
    ok(spent < 1000, "10 MiB of writes to a blocked stream return at once (%lld ms)", (long long)spent);

    /* The reader comes back: a note says how much was skipped, then output flows again. */
    char *buf = malloc(1 << 20);
    size_t first = drain(p2[0], buf, 1 << 20);
    ok(first > 0, "the reader gets what fitted (%zu bytes)", first);
    usleep(100 * 1000);
    drain(p2[0], buf, 1 << 20);
    passthru_write(pt, "after\n", 6);
    usleep(100 * 1000);
    size_t later = drain(p2[0], buf, (1 << 20) - 1);
    buf[later] = '\0';
    ok(strstr(buf, "bytes of output were not passed through here") != NULL, "a note says what was skipped");
    ok(strstr(buf, "after\n") != NULL, "and output flows again");

    /* Blocked again at close: the deadline bounds the wait. */
    for (int i = 0; i < 64; i++)
        passthru_write(pt, block, sizeof block);
    t0 = time_mono_ms();
    int64_t dropped = passthru_close(pt, time_mono_ms() + 300);
    spent = time_mono_ms() - t0;
    ok(dropped > 0, "close reports the bytes dropped (%lld)", (long long)dropped);
    ok(spent < 1500, "close returns at its deadline with the stream still blocked (%lld ms)", (long long)spent);
    close(p2[0]);
    close(p2[1]);
    free(buf);
    free(all);

    /* A slow reader is not a blocked one: each pause is shorter than the stall limit, so no
     * byte is dropped even though the producer outruns it by far. */
    int p3[2];
    if (pipe(p3) < 0)
        return 1;
    pthread_t reader;
    pthread_create(&reader, NULL, slow_reader, &p3[0]);
    ok(passthru_open(p3[1], 64 * 1024, &pt, &e) == 0, "open on a pipe read slowly");
    static char small[4096];
    memset(small, 's', sizeof small);
    for (int i = 0; i < 512; i++)
        passthru_write(pt, small, sizeof small); /* 2 MiB */
    is_int(passthru_close(pt, time_mono_ms() + 20000), 0, "a slow reader loses nothing");
    close(p3[1]);
    void *res;
    pthread_join(reader, &res);
    is_int((long long)*(size_t *)res, 2 * 1024 * 1024, "it got every byte");
    free(res);
    close(p3[0]);
    return tap_done();
}
