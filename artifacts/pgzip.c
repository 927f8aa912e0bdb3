#include "pgzip.h"

#include "../runtime/cpus.h"
#include "../runtime/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* 1 MiB members: the deflate window is 32 KiB, so larger members would not compress better,
 * and smaller ones would add header overhead (18 bytes per member: 0.002%). */
#define BLOCK (1u << 20)

enum slot_state { SLOT_FILLING = 0, SLOT_READY, SLOT_DONE, SLOT_FAILED };

struct slot {
    enum slot_state state;
    unsigned char *in, *out;
    size_t in_len, out_len, out_cap;
    long seq;
};

struct pgzip {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    pthread_t *threads;
    int nthreads, nslots, level, stopping;
    struct slot *slots;
    long fill_seq, emit_seq, next_work;   /* blocks filled, emitted, taken by a worker */
    pgzip_out_fn out;
    void *ctx;
    char error[256];
};

static int compress_block(int level, struct slot *s, char *error, size_t error_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 31 = a gzip wrapper around a 32 KiB window; memLevel 8 is zlib's default. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        snprintf(error, error_len, "zlib: deflateInit2 failed");
        return -1;
    }
    zs.next_in = s->in;
    zs.avail_in = (uInt)s->in_len;
    zs.next_out = s->out;
    zs.avail_out = (uInt)s->out_cap;
    int r = deflate(&zs, Z_FINISH);
    s->out_len = s->out_cap - zs.avail_out;
    deflateEnd(&zs);
    if (r != Z_STREAM_END) {
        snprintf(error, error_len, "zlib: deflate failed (%d)", r);
        return -1;
    }
    return 0;
}

static void *worker(void *arg)
{
    struct pgzip *z = arg;
    pthread_mutex_lock(&z->lock);
    for (;;) {
        struct slot *s = NULL;
        while (!z->stopping) {
            s = &z->slots[z->next_work % z->nslots];
            if (z->next_work < z->fill_seq && s->state == SLOT_READY && s->seq == z->next_work)
                break;
            s = NULL;
            pthread_cond_wait(&z->work, &z->lock);
        }
        if (!s)
            break;
        z->next_work++;
        char error[sizeof z->error] = "";
        pthread_mutex_unlock(&z->lock);
        int rc = compress_block(z->level, s, error, sizeof error);
        pthread_mutex_lock(&z->lock);
        s->state = rc == 0 ? SLOT_DONE : SLOT_FAILED;
        if (rc < 0 && !z->error[0])
            memcpy(z->error, error, sizeof error);
        pthread_cond_broadcast(&z->done);
        pthread_cond_broadcast(&z->work);
    }
    pthread_mutex_unlock(&z->lock);
    return NULL;
}

struct pgzip *pgzip_new(int level, int threads, pgzip_out_fn out, void *ctx)
{
    struct pgzip *z = xcalloc(1, sizeof *z);
    if (threads <= 0) {
        threads = cpus_usable();
    }
    z->nthreads = threads;
    z->nslots = 2 * threads;
    z->level = level > 0 ? level : 6;
    z->out = out;
    z->ctx = ctx;
    pthread_mutex_init(&z->lock, NULL);
    pthread_cond_init(&z->work, NULL);
    pthread_cond_init(&z->done, NULL);
    z->slots = xcalloc((size_t)z->nslots, sizeof *z->slots);
    for (int i = 0; i < z->nslots; i++) {
        z->slots[i].in = xmalloc(BLOCK);
        z->slots[i].out_cap = compressBound(BLOCK) + 64;
        z->slots[i].out = xmalloc(z->slots[i].out_cap);
        z->slots[i].seq = i;
    }
    z->threads = xcalloc((size_t)threads, sizeof *z->threads);
    int started = 0;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&z->threads[i], NULL, worker, z) == 0)
            started++;
    z->nthreads = started;
    return z;
}

/* Writes out the oldest block once compressed; with the lock held on entry and exit. */
static int emit_one(struct pgzip *z, struct err *e)
{
    struct slot *s = &z->slots[z->emit_seq % z->nslots];
    while (s->state == SLOT_READY)
        pthread_cond_wait(&z->done, &z->lock);
    if (s->state == SLOT_FAILED)
        return err_set(e, ERR_INTERNAL, "%s", z->error);
    pthread_mutex_unlock(&z->lock);
    int rc = z->out(z->ctx, s->out, s->out_len, e);
    pthread_mutex_lock(&z->lock);
    if (rc < 0)
        return -1;
    s->state = SLOT_FILLING;
    s->in_len = 0;
    s->seq = z->emit_seq + z->nslots;
    z->emit_seq++;
    return 0;
}

/* Hands the current block to the workers, first making room in the ring. */
static int submit_block(struct pgzip *z, struct err *e)
{
    struct slot *s = &z->slots[z->fill_seq % z->nslots];
    s->state = SLOT_READY;
    z->fill_seq++;
    pthread_cond_broadcast(&z->work);
    if (z->nthreads == 0) {
        /* No worker could start: compress here. */
        char error[sizeof z->error] = "";
        z->next_work++;
        s->state = compress_block(z->level, s, error, sizeof error) == 0 ? SLOT_DONE : SLOT_FAILED;
        if (s->state == SLOT_FAILED)
            memcpy(z->error, error, sizeof error);
    }
    while (z->fill_seq - z->emit_seq >= z->nslots)
        if (emit_one(z, e) < 0)
            return -1;
    return 0;
}

int pgzip_write(struct pgzip *z, const void *data, size_t n, struct err *e)
{
    const unsigned char *p = data;
    pthread_mutex_lock(&z->lock);
    int rc = 0;
    while (n > 0 && rc == 0) {
        struct slot *s = &z->slots[z->fill_seq % z->nslots];
        size_t room = BLOCK - s->in_len, take = n < room ? n : room;
        memcpy(s->in + s->in_len, p, take);
        s->in_len += take;
        p += take;
        n -= take;
        if (s->in_len == BLOCK)
            rc = submit_block(z, e);
    }
    pthread_mutex_unlock(&z->lock);
    return rc;
}

int pgzip_finish(struct pgzip *z, struct err *e)
{
    pthread_mutex_lock(&z->lock);
    int rc = 0;
    struct slot *s = &z->slots[z->fill_seq % z->nslots];
    if (s->in_len > 0 || z->fill_seq == 0)
        rc = submit_block(z, e);
    while (rc == 0 && z->emit_seq < z->fill_seq)
        rc = emit_one(z, e);
    pthread_mutex_unlock(&z->lock);
    return rc;
}

void pgzip_free(struct pgzip *z)
{
    if (!z)
        return;
    pthread_mutex_lock(&z->lock);
    z->stopping = 1;
    pthread_cond_broadcast(&z->work);
    pthread_mutex_unlock(&z->lock);
    for (int i = 0; i < z->nthreads; i++)
        pthread_join(z->threads[i], NULL);
    for (int i = 0; i < z->nslots; i++) {
        free(z->slots[i].in);
        free(z->slots[i].out);
    }
    free(z->slots);
    free(z->threads);
    pthread_mutex_destroy(&z->lock);
    pthread_cond_destroy(&z->work);
    pthread_cond_destroy(&z->done);
    free(z);
}
