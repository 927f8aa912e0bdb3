#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- download ------------------------------------------------------------------------ */

int64_t par_range_next(const struct par_range *r)
{
    return r->start + (int64_t)r->data->len;
}

int par_range_append(struct par_range *r, const void *data, size_t n, struct err *e)
{
    if (r->data->len + n > (size_t)r->len)
        return err_set(e, ERR_INTEGRITY, "the server sent more than the %lld bytes asked for", (long long)r->len);
    buf_append(r->data, data, n);
    return 0;
}

struct get_pool {
    const struct par_get *g;
    int64_t nparts;         /* 64-bit: a server may announce any size up to INT64_MAX */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t next_fetch, next_deliver, delivered;
    int failed;
    int stop;               /* read by other threads' transfers: set with __atomic_store_n only */
    struct err err;
};

static void pool_fail(struct get_pool *gp, const struct err *e)
{
    if (!gp->failed) {
        gp->failed = 1;
        gp->err = *e;
        __atomic_store_n(&gp->stop, 1, __ATOMIC_RELAXED);
    }
    pthread_cond_broadcast(&gp->cv);
}

static int fetch_range(struct get_pool *gp, struct http_client *client, int64_t start, int64_t len, struct buf *data,
                       struct err *e)
{
    struct par_range r = { .start = start, .len = len, .data = data };
    data->len = 0;
    if (gp->g->fetch(gp->g->ctx, client, &r, &gp->stop, e) < 0)
        return -1;
    if ((int64_t)data->len != len)
        return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: got %zu bytes, expected %lld", (long long)start,
                       (long long)(start + len - 1), data->len, (long long)len);
    return 0;
}

static void *get_worker(void *arg)
{
    struct get_pool *gp = arg;
    const struct par_get *g = gp->g;
    struct http_client *client = http_client_new();
    struct buf data = { 0 };
    for (;;) {
        pthread_mutex_lock(&gp->mu);
        if (gp->failed || gp->next_fetch >= gp->nparts) {
            pthread_mutex_unlock(&gp->mu);
            break;
        }
        int64_t i = gp->next_fetch++;
        pthread_mutex_unlock(&gp->mu);
        int64_t start = g->begin + i * g->part_size;
        int64_t len = g->end - start < g->part_size ? g->end - start : g->part_size;
        if (data.cap < (size_t)len + 1) {
            /* Exactly one part (and buf's NUL): doubling growth would reserve up to twice that. */
            data.data = xrealloc(data.data, (size_t)len + 1);
            data.cap = (size_t)len + 1;
        }
        struct err pe = { 0 };
        int rc = fetch_range(gp, client, start, len, &data, &pe);
        pthread_mutex_lock(&gp->mu);
        if (rc < 0)
            pool_fail(gp, &pe);
        /* In order: wait for the parts before this one to reach the sink. */
        while (!gp->failed && gp->next_deliver != i)
            pthread_cond_wait(&gp->cv, &gp->mu);
        int stop = gp->failed;
        pthread_mutex_unlock(&gp->mu);
        if (stop)
            break;
        rc = g->sink(g->sink_ctx, data.data, data.len, &pe);
        pthread_mutex_lock(&gp->mu);
        if (rc < 0)
            pool_fail(gp, &pe);
        else
            gp->delivered += (int64_t)data.len;
        gp->next_deliver++;
        pthread_cond_broadcast(&gp->cv);
        pthread_mutex_unlock(&gp->mu);
        if (rc < 0)
            break;
    }
    buf_free(&data);
    http_client_free(client);
    return NULL;
}

int par_get_run(const struct par_get *g, struct err *e)
{
    struct get_pool gp = { .g = g };
    /* Rounded up without overflow: end may be as large as INT64_MAX. */
    gp.nparts = (g->end - g->begin) / g->part_size + ((g->end - g->begin) % g->part_size != 0);
    pthread_mutex_init(&gp.mu, NULL);
    pthread_cond_init(&gp.cv, NULL);
    int n = g->workers < gp.nparts ? g->workers : (int)gp.nparts;
    if (n > PAR_MAX_WORKERS)
        n = PAR_MAX_WORKERS;
    pthread_t tids[PAR_MAX_WORKERS];
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, get_worker, &gp) != 0)
            break;
        started++;
    }
    if (started == 0)
        get_worker(&gp);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_cond_destroy(&gp.cv);
    pthread_mutex_destroy(&gp.mu);
    if (gp.failed) {
        *e = gp.err;
        return -1;
    }
    if (gp.delivered != g->end - g->begin)
        return err_set(e, ERR_INTEGRITY, "bytes %lld-%lld: got %lld bytes of the %lld the server announced",
                       (long long)g->begin, (long long)(g->end - 1), (long long)gp.delivered,
                       (long long)(g->end - g->begin));
    return 0;
}

/* ---- upload -------------------------------------------------------------------------- */

ssize_t par_reader_fill(struct par_reader *r, char *buf, size_t n, struct err *e)
{
    size_t got = 0;
    if (r->ahead_off < r->ahead_len) {
        size_t k = r->ahead_len - r->ahead_off < n ? r->ahead_len - r->ahead_off : n;
        memcpy(buf, r->ahead + r->ahead_off, k);
        r->ahead_off += k;
        got = k;
        if (r->ahead_off == r->ahead_len) {
            free(r->ahead);
            r->ahead = NULL;
            r->ahead_len = r->ahead_off = 0;
        }
    }
    while (got < n) {
        ssize_t k = r->src->read(r->src->ctx, buf + got, n - got, e);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

struct put_pool {
    const struct par_put *p;
    int known;                      /* the stream's size is known: fixed part size */
    pthread_mutex_t read_mu, mu;    /* read_mu: the reader and the part count; mu: the rest */
    int next_part, eof;
    atomic_int failed;              /* set under mu, read under read_mu too */
    int64_t mem_held;               /* part buffers of the live workers (under read_mu) */
    int live;                       /* workers still taking parts (under read_mu) */
    int64_t total;
    struct par_part *parts;
    int parts_cap, parts_max;
    int stop;                       /* read by other threads' transfers: set with __atomic_store_n only */
    struct err err;
};

static int64_t part_size_for(const struct put_pool *m, int n)
{
    if (m->known || m->p->grow_every <= 0)
        return m->p->part_size;
    int64_t sz = m->p->part_size << ((n - 1) / m->p->grow_every);
    return sz > m->p->max_part ? m->p->max_part : sz;
}

static void put_fail(struct put_pool *m, const struct err *e)
{
    pthread_mutex_lock(&m->mu);
    if (!atomic_load(&m->failed)) {
        m->err = *e;
        atomic_store(&m->failed, 1);
        __atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&m->mu);
}

static void *put_worker(void *arg)
{
    struct put_pool *m = arg;
    const struct par_put *p = m->p;
    struct http_client *client = http_client_new();
    char *buf = NULL;
    int64_t cap = 0;
    int left = 0; /* retired for the budget, already uncounted */
    /* Counted as it starts, so a worker that failed to start is never waited for. */
    pthread_mutex_lock(&m->read_mu);
    m->live++;
    pthread_mutex_unlock(&m->read_mu);
    for (;;) {
        struct err pe = { 0 };
        pthread_mutex_lock(&m->read_mu);
        if (atomic_load(&m->failed) || m->eof) {
            pthread_mutex_unlock(&m->read_mu);
            break;
        }
        int n = m->next_part + 1;
        if (n > p->max_parts) {
            pthread_mutex_unlock(&m->read_mu);
            err_set(&pe, ERR_INVALID, "the stream needs more than %d parts of this size; %s", p->max_parts,
                    p->too_many_hint);
            put_fail(m, &pe);
            break;
        }
        int64_t want = part_size_for(m, n);
        if (want > cap) {
            /* A buffer, first or bigger, must fit the budget; if it does not, this worker retires
             * and frees its own (counted at once, so the next one sees it gone), unless it is the
             * last one: then one part is in flight, whatever its size. */
            if (m->mem_held - cap + want > p->mem_budget && m->live > 1) {
                m->mem_held -= cap;
                m->live--;
                left = 1;
                pthread_mutex_unlock(&m->read_mu);
                break;
            }
            m->mem_held += want - cap;
            free(buf);
            buf = xmalloc((size_t)want);
            cap = want;
        }
        ssize_t got = par_reader_fill(p->rd, buf, (size_t)want, &pe);
        if (got < 0) {
            pthread_mutex_unlock(&m->read_mu);
            put_fail(m, &pe);
            break;
        }
        if (got < want)
            m->eof = 1;
        if (got == 0 && n > 1) {
            pthread_mutex_unlock(&m->read_mu);
            break;
        }
        m->next_part = n;
        m->total += got;
        pthread_mutex_unlock(&m->read_mu);

        struct par_part rec = { 0 };
        if (p->put_part(p->ctx, client, n, buf, (size_t)got, &m->stop, &rec, &pe) < 0) {
            free(rec.etag);
            put_fail(m, &pe);
            break;
        }
        pthread_mutex_lock(&m->mu);
        if (n > m->parts_cap) {
            int cap2 = m->parts_cap ? m->parts_cap * 2 : 64;
            while (cap2 < n)
                cap2 *= 2;
            m->parts = xrealloc(m->parts, (size_t)cap2 * sizeof *m->parts);
            memset(m->parts + m->parts_cap, 0, (size_t)(cap2 - m->parts_cap) * sizeof *m->parts);
            m->parts_cap = cap2;
        }
        m->parts[n - 1] = rec;
        if (n > m->parts_max)
            m->parts_max = n;
        pthread_mutex_unlock(&m->mu);
    }
    if (!left) {
        pthread_mutex_lock(&m->read_mu);
        m->mem_held -= cap;
        m->live--;
        pthread_mutex_unlock(&m->read_mu);
    }
    free(buf);
    http_client_free(client);
    return NULL;
}

int par_put_run(const struct par_put *p, struct err *e)
{
    struct put_pool m = { .p = p, .known = p->size >= 0 };
    pthread_mutex_init(&m.read_mu, NULL);
    pthread_mutex_init(&m.mu, NULL);
    int n = p->workers < PAR_MAX_WORKERS ? p->workers : PAR_MAX_WORKERS;
    pthread_t tids[PAR_MAX_WORKERS];
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, put_worker, &m) != 0)
            break;
        started++;
    }
    if (started == 0)
        put_worker(&m);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    int rc;
    if (atomic_load(&m.failed)) {
        *e = m.err;
        rc = -1;
    } else if (m.known && m.total != p->size) {
        rc = err_set(e, ERR_INTEGRITY, "the source gave %lld bytes, not the %lld it announced", (long long)m.total,
                     (long long)p->size);
    } else if (!m.eof) {
        rc = err_set(e, ERR_INTERNAL, "the part uploads stopped before the end of the source");
    } else {
        rc = p->complete(p->ctx, m.parts, m.parts_max, m.total, e);
    }
    if (rc < 0 && p->abort)
        p->abort(p->ctx);
    for (int i = 0; i < m.parts_cap; i++)
        free(m.parts[i].etag);
    free(m.parts);
    pthread_mutex_destroy(&m.read_mu);
    pthread_mutex_destroy(&m.mu);
    return rc;
}
