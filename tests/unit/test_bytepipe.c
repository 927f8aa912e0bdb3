#include "../../artifacts/bytepipe.h"
#include "tap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define TOTAL (3u << 20)

static void *writer(void *arg)
{
    struct bytepipe *p = arg;
    unsigned char chunk[7919]; /* a prime, so writes straddle the ring's end */
    struct err e;
    size_t sent = 0;
    while (sent < TOTAL) {
        size_t n = sizeof chunk;
        if (n > TOTAL - sent)
            n = TOTAL - sent;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (unsigned char)((sent + i) * 31 + 7);
        if (bytepipe_write(p, chunk, n, &e) < 0)
            return NULL;
        sent += n;
    }
    bytepipe_close_write(p, NULL);
    return NULL;
}

static void *failing_writer(void *arg)
{
    struct bytepipe *p = arg;
    struct err e = { 0 };
    bytepipe_write(p, "abc", 3, &e);
    err_set(&e, ERR_NETWORK, "connection reset");
    bytepipe_close_write(p, &e);
    return NULL;
}

static void *blocked_writer(void *arg)
{
    struct bytepipe *p = arg;
    static int result;
    struct err e = { 0 };
    char big[4096] = { 0 };
    result = 0;
    for (int i = 0; i < 100 && result == 0; i++)
        result = bytepipe_write(p, big, sizeof big, &e);
    return result < 0 && e.kind == ERR_REFUSED ? (void *)1 : NULL;
}

int main(void)
{
    struct bytepipe *p = bytepipe_new(65536 + 13);
    pthread_t t;
    pthread_create(&t, NULL, writer, p);
    size_t got = 0;
    int in_order = 1;
    unsigned char buf[5003];
    struct err e;
    ssize_t n;
    while ((n = bytepipe_read(p, buf, sizeof buf, &e)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (unsigned char)((got + (size_t)i) * 31 + 7))
                in_order = 0;
        got += (size_t)n;
    }
    pthread_join(t, NULL);
    is_int(n, 0, "reader sees a clean end of stream");
    is_int(got, TOTAL, "every byte arrives");
    ok(in_order, "bytes arrive in order");
    bytepipe_free(p);

    p = bytepipe_new(1024);
    pthread_create(&t, NULL, failing_writer, p);
    pthread_join(t, NULL);
    n = bytepipe_read(p, buf, sizeof buf, &e);
    ok(n < 0 && e.kind == ERR_NETWORK && strstr(e.msg, "reset"), "writer's failure reaches the reader");
    bytepipe_free(p);

    p = bytepipe_new(1024);
    pthread_create(&t, NULL, blocked_writer, p);
    struct err refusal = { 0 };
    err_set(&refusal, ERR_REFUSED, "unsafe entry");
    bytepipe_read(p, buf, 10, &e);
    bytepipe_close_read(p, &refusal);
    void *res;
    pthread_join(t, &res);
    ok(res == (void *)1, "a blocked writer is released with the reader's error");
    bytepipe_free(p);

    /* peek_min: whole pages in place, aligned as long as only whole pages are consumed, and
     * fewer than min only at the end. */
    p = bytepipe_new(65536 + 13);
    pthread_create(&t, NULL, writer, p);
    got = 0;
    in_order = 1;
    int aligned = 1, short_only_at_end = 1, ended = 0;
    const void *data;
    while ((n = bytepipe_peek_min(p, &data, 3 * BYTEPIPE_ALIGN, 5 * BYTEPIPE_ALIGN + 100, &e)) > 0) {
        if (ended)
            short_only_at_end = 0;
        if ((uintptr_t)data % BYTEPIPE_ALIGN != 0)
            aligned = 0;
        size_t use = (size_t)n & ~(size_t)(BYTEPIPE_ALIGN - 1);
        if (use == 0) {
            use = (size_t)n;
            ended = 1;
        }
        for (size_t i = 0; i < use; i++)
            if (((const unsigned char *)data)[i] != (unsigned char)((got + i) * 31 + 7))
                in_order = 0;
        got += use;
        bytepipe_consume(p, use);
    }
    pthread_join(t, NULL);
    is_int(n, 0, "peek_min: a clean end of stream");
    is_int(got, TOTAL, "peek_min: every byte arrives");
    ok(in_order, "peek_min: in order");
    ok(aligned, "peek_min: every answer starts on a page");
    ok(short_only_at_end, "peek_min: less than a page only at the very end");
    bytepipe_free(p);
    return tap_done();
}
