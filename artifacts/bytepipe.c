#include "bytepipe.h"

#include "../runtime/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bytepipe {
    pthread_mutex_t lock;
    pthread_cond_t can_read, can_write;
    char *ring;
    size_t cap, head, len; /* data occupies [head, head+len) modulo cap */
    int write_closed, read_closed;
    struct err write_failure, read_failure;
    int write_failed, read_failed;
};

struct bytepipe *bytepipe_new(size_t capacity)
{
    struct bytepipe *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->can_read, NULL);
    pthread_cond_init(&p->can_write, NULL);
    /* Page-aligned, and capacity a multiple of the page: whole pages read in place can go to an
     * O_DIRECT write (transfer.c). */
    capacity = (capacity + BYTEPIPE_ALIGN - 1) & ~(size_t)(BYTEPIPE_ALIGN - 1);
    if (posix_memalign((void **)&p->ring, BYTEPIPE_ALIGN, capacity) != 0)
        abort();
    p->cap = capacity;
    return p;
}

void bytepipe_free(struct bytepipe *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->can_read);
    pthread_cond_destroy(&p->can_write);
    free(p->ring);
    free(p);
}

int bytepipe_write(struct bytepipe *p, const void *data, size_t n, struct err *e)
{
    const char *src = data;
    pthread_mutex_lock(&p->lock);
    while (n > 0) {
        while (p->len == p->cap && !p->read_closed)
            pthread_cond_wait(&p->can_write, &p->lock);
        if (p->read_closed) {
            if (p->read_failed)
                *e = p->read_failure;
            else
                err_set(e, ERR_INTERNAL, "the reading side stopped early");
            pthread_mutex_unlock(&p->lock);
            return -1;
        }
        size_t tail = (p->head + p->len) % p->cap;
        size_t room = p->cap - p->len;
        size_t chunk = n < room ? n : room;
        if (chunk > p->cap - tail)
            chunk = p->cap - tail;
        memcpy(p->ring + tail, src, chunk);
        p->len += chunk;
        src += chunk;
        n -= chunk;
        pthread_cond_signal(&p->can_read);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

ssize_t bytepipe_read(struct bytepipe *p, void *buf, size_t n, struct err *e)
{
    pthread_mutex_lock(&p->lock);
    while (p->len == 0 && !p->write_closed)
        pthread_cond_wait(&p->can_read, &p->lock);
    if (p->len == 0 || p->write_failed) {
        ssize_t r = 0;
        if (p->write_failed) {
            *e = p->write_failure;
            r = -1;
        }
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    size_t chunk = n < p->len ? n : p->len;
    if (chunk > p->cap - p->head)
        chunk = p->cap - p->head;
    memcpy(buf, p->ring + p->head, chunk);
    p->head = (p->head + chunk) % p->cap;
    p->len -= chunk;
    pthread_cond_signal(&p->can_write);
    pthread_mutex_unlock(&p->lock);
    return (ssize_t)chunk;
}

ssize_t bytepipe_peek(struct bytepipe *p, const void **data, size_t max, struct err *e)
{
    return bytepipe_peek_min(p, data, 1, max, e);
}

ssize_t bytepipe_peek_min(struct bytepipe *p, const void **data, size_t min, size_t max, struct err *e)
{
    if (min > p->cap)
        min = p->cap;
    if (min == 0)
        min = 1;
    pthread_mutex_lock(&p->lock);
    while (p->len < min && !p->write_closed)
        pthread_cond_wait(&p->can_read, &p->lock);
    ssize_t r = 0;
    if (p->write_failed) {
        *e = p->write_failure;
        r = -1;
    } else if (p->len > 0) {
        size_t chunk = p->len < max ? p->len : max;
        if (chunk > p->cap - p->head)
            chunk = p->cap - p->head;
        *data = p->ring + p->head;
        r = (ssize_t)chunk;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

void bytepipe_consume(struct bytepipe *p, size_t n)
{
    pthread_mutex_lock(&p->lock);
    p->head = (p->head + n) % p->cap;
    p->len -= n;
    pthread_cond_signal(&p->can_write);
    pthread_mutex_unlock(&p->lock);
}

void bytepipe_close_write(struct bytepipe *p, const struct err *failure)
{
    pthread_mutex_lock(&p->lock);
    p->write_closed = 1;
    if (failure) {
        p->write_failed = 1;
        p->write_failure = *failure;
    }
    pthread_cond_broadcast(&p->can_read);
    pthread_mutex_unlock(&p->lock);
}

void bytepipe_close_read(struct bytepipe *p, const struct err *failure)
{
    pthread_mutex_lock(&p->lock);
    p->read_closed = 1;
    if (failure) {
        p->read_failed = 1;
        p->read_failure = *failure;
    }
    pthread_cond_broadcast(&p->can_write);
    pthread_mutex_unlock(&p->lock);
}
