/* The parallel transfer engine (artifacts/parallel.c) with in-memory fake callbacks: downloads
 * delivered in order whatever order the parts finish in, at most one part buffered per worker, a
 * resumed range continuing where it stopped, a failure stopping the other parts; uploads whose
 * parts are listed in order at completion, a failing part (or source) aborting once, the memory
 * budget, growing part sizes and the part limit for a stream of unknown length. */
#include "../../artifacts/parallel.h"
#include "tap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char byte_at(int64_t i)
{
    return (unsigned char)(i * 7 + 3);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Waits on cv until *cond is true or seconds pass (a broken engine must fail, not hang). */
static int wait_for(pthread_mutex_t *mu, pthread_cond_t *cv, const int *cond, int seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    while (!*cond)
        if (pthread_cond_timedwait(cv, mu, &until) != 0)
            return -1;
    return 0;
}

/* ---- download ------------------------------------------------------------------------ */

struct fake_get {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t part_size;
    int nparts;
    int done[64];           /* part fetched */
    int hold_upto;          /* the first part waits until parts 1 to this one are fetched ... */
    int held;               /* ... which they are */
    int later_done_first;   /* a part finished while an earlier one was still being fetched */
    int outstanding, max_outstanding; /* fetched or fetching, not yet at the sink */
    int fail_part;          /* -1: none */
    int resume_part;        /* -1: none; this part's answer is cut and resumed */
    int resume_ok;          /* the resume continued at the byte after the cut */
    int overflow_part;      /* -1: none; this part's server sends a byte too many */
    int saw_stop;           /* a part in flight saw the stop flag after the failure */
    struct buf got;         /* what reached the sink */
    int sink_calls;
};

static int fake_fetch(void *ctx, struct http_client *client, struct par_range *r, const int *stop, struct err *e)
{
    (void)client;
    struct fake_get *f = ctx;
    int k = (int)(r->start / f->part_size);
    pthread_mutex_lock(&f->mu);
    if (++f->outstanding > f->max_outstanding)
        f->max_outstanding = f->outstanding;
    pthread_mutex_unlock(&f->mu);
    if (k == 0 && f->hold_upto) {
        /* The first part finishes after later ones. */
        pthread_mutex_lock(&f->mu);
        if (wait_for(&f->mu, &f->cv, &f->held, 5) == 0)
            f->later_done_first = 1;
        pthread_mutex_unlock(&f->mu);
    }
    if (k == f->fail_part) {
        sleep_ms(20);
        return err_set(e, ERR_HTTP, "part %d failed", k);
    }
    if (f->fail_part >= 0 && k == f->fail_part + 1) {
        /* In flight beside the failing part: the engine must tell it to stop. */
        for (int i = 0; i < 500 && !__atomic_load_n(stop, __ATOMIC_RELAXED); i++)
            sleep_ms(10);
        f->saw_stop = __atomic_load_n(stop, __ATOMIC_RELAXED);
        return err_set(e, ERR_CANCELLED, "stopped");
    }
    int64_t len = r->len + (k == f->overflow_part);
    char chunk[4096];
    int64_t cut = k == f->resume_part ? len / 3 : len;
    for (int64_t i = 0; i < cut; i++)
        chunk[i] = (char)byte_at(r->start + i);
    if (par_range_append(r, chunk, (size_t)cut, e) < 0)
        return -1;
    if (cut < len) {
        /* The connection was reset here; the resumed answer starts at the next byte. */
        int64_t next = par_range_next(r);
        f->resume_ok = next == r->start + cut;
        for (int64_t i = 0; i < len - cut; i++)
            chunk[i] = (char)byte_at(next + i);
        if (par_range_append(r, chunk, (size_t)(len - cut), e) < 0)
            return -1;
    }
    pthread_mutex_lock(&f->mu);
    f->done[k] = 1;
    f->held = 1;
    for (int i = 1; i <= f->hold_upto; i++)
        f->held &= f->done[i];
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int fake_sink(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)e;
    struct fake_get *f = ctx;
    buf_append(&f->got, data, n);
    pthread_mutex_lock(&f->mu);
    f->outstanding--;
    f->sink_calls++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static void fake_get_init(struct fake_get *f, int64_t part_size, int nparts)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->part_size = part_size;
    f->nparts = nparts;
    f->fail_part = f->resume_part = f->overflow_part = -1;
}

static void fake_get_free(struct fake_get *f)
{
    buf_free(&f->got);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static int bytes_right(const struct buf *b, int64_t from)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] != byte_at(from + (int64_t)i))
            return 0;
    return 1;
}

static void test_get_order(void)
{
    struct fake_get f;
    fake_get_init(&f, 100, 11);
    f.hold_upto = 1;
    struct par_get g = { .begin = 0, .end = 1037, .part_size = 100, .workers = 4, .fetch = fake_fetch, .ctx = &f,
                         .sink = fake_sink, .sink_ctx = &f };
    struct err e = { 0 };
    is_int(par_get_run(&g, &e), 0, "download of 11 parts with 4 workers");
    ok(f.later_done_first, "part 2 finished before part 1");
    is_int(f.got.len, 1037, "every byte reached the sink");
    ok(bytes_right(&f.got, 0), "in order");
    is_int(f.sink_calls, 11, "one sink call per part");
    ok(f.max_outstanding <= 4, "at most one part per worker held (held %d)", f.max_outstanding);
    fake_get_free(&f);
}

static void test_get_memory(void)
{
    /* The first part is slow: the others pile up behind it, as far as the workers allow. */
    struct fake_get f;
    fake_get_init(&f, 64, 30);
    f.hold_upto = 2;
    struct par_get g = { .begin = 0, .end = 30 * 64, .part_size = 64, .workers = 3, .fetch = fake_fetch, .ctx = &f,
                         .sink = fake_sink, .sink_ctx = &f };
    struct err e = { 0 };
    is_int(par_get_run(&g, &e), 0, "download of 30 parts with 3 workers");
    is_int(f.max_outstanding, 3, "no more than 3 parts fetched and not yet delivered");
    ok(bytes_right(&f.got, 0) && f.got.len == 30 * 64, "the bytes, in order");
    fake_get_free(&f);
}

static void test_get_resume(void)
{
    struct fake_get f;
    fake_get_init(&f, 100, 5);
    f.resume_part = 2;
    struct par_get g = { .begin = 0, .end = 500, .part_size = 100, .workers = 2, .fetch = fake_fetch, .ctx = &f,
                         .sink = fake_sink, .sink_ctx = &f };
    struct err e = { 0 };
    is_int(par_get_run(&g, &e), 0, "a range cut and resumed");
    ok(f.resume_ok, "the resumed answer was asked from the byte after the cut");
    ok(f.got.len == 500 && bytes_right(&f.got, 0), "the bytes, whole and in order");
    fake_get_free(&f);

    /* A range that starts inside the object (the first one was streamed by the store). */
    fake_get_init(&f, 100, 3);
    struct par_get g2 = { .begin = 100, .end = 350, .part_size = 100, .workers = 2, .fetch = fake_fetch, .ctx = &f,
                          .sink = fake_sink, .sink_ctx = &f };
    f.resume_part = 1;
    is_int(par_get_run(&g2, &e), 0, "bytes 100-349, a range resumed");
    ok(f.got.len == 250 && bytes_right(&f.got, 100), "the bytes from 100 on");
    fake_get_free(&f);
}

static void test_get_failures(void)
{
    struct fake_get f;
    fake_get_init(&f, 100, 10);
    f.hold_upto = 1;
    f.fail_part = 4;
    struct par_get g = { .begin = 0, .end = 1000, .part_size = 100, .workers = 3, .fetch = fake_fetch, .ctx = &f,
                         .sink = fake_sink, .sink_ctx = &f };
    struct err e = { 0 };
    is_int(par_get_run(&g, &e), -1, "a failing part fails the download");
    is_str(e.msg, "part 4 failed", "with the part's error, not a later one's");
    ok(f.saw_stop, "the part in flight beside it was told to stop");
    ok(f.got.len <= 400 && f.got.len % 100 == 0 && bytes_right(&f.got, 0),
       "only whole parts before it reached the sink");
    fake_get_free(&f);

    fake_get_init(&f, 100, 3);
    f.overflow_part = 1;
    struct par_get g2 = { .begin = 0, .end = 300, .part_size = 100, .workers = 2, .fetch = fake_fetch, .ctx = &f,
                          .sink = fake_sink, .sink_ctx = &f };
    memset(&e, 0, sizeof e);
    is_int(par_get_run(&g2, &e), -1, "a server sending more than the range fails");
    is_str(e.msg, "the server sent more than the 100 bytes asked for", "with what it did");
    is_int(e.kind, ERR_INTEGRITY, "an integrity error");
    fake_get_free(&f);
}

/* A fetch that gives half of what it was asked for and says it succeeded. */
static int short_fetch(void *ctx, struct http_client *client, struct par_range *r, const int *stop, struct err *e)
{
    (void)ctx, (void)client, (void)stop;
    char chunk[50] = { 0 };
    return par_range_append(r, chunk, (size_t)r->len / 2, e);
}

static int null_sink(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)ctx, (void)data, (void)n, (void)e;
    return 0;
}

static void test_get_short(void)
{
    struct par_get g = { .begin = 0, .end = 200, .part_size = 100, .workers = 2, .fetch = short_fetch,
                         .sink = null_sink };
    struct err e = { 0 };
    is_int(par_get_run(&g, &e), -1, "a range that came back short fails");
    is_str(e.msg, "bytes 0-99: got 50 bytes, expected 100", "naming the range");
}

/* ---- upload -------------------------------------------------------------------------- */

struct mem_source {
    int64_t size, off;
    int64_t fail_at;         /* -1: never */
};

static ssize_t mem_read(void *ctx, void *buf, size_t n, struct err *e)
{
    struct mem_source *m = ctx;
    if (m->fail_at >= 0 && m->off >= m->fail_at)
        return err_set(e, ERR_IO, "the source broke");
    size_t k = n < 7 ? n : 7; /* small reads: the engine fills its parts from many */
    if ((int64_t)k > m->size - m->off)
        k = (size_t)(m->size - m->off);
    for (size_t i = 0; i < k; i++)
        ((char *)buf)[i] = (char)byte_at(m->off + (int64_t)i);
    m->off += (int64_t)k;
    return (ssize_t)k;
}

struct fake_put {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sent[256];
    int64_t part_len[256];
    int64_t part_first[256];/* the part's first byte, -1 for an empty part */
    int fail_part;          /* 0: none */
    int hold_first;         /* part 1 waits until part 2 was sent */
    int inflight, max_inflight;
    int saw_stop;
    int later_sent_first;
    int completes, aborts;
    int complete_ok;        /* complete got every part in order, and the total */
    int64_t complete_total;
};

static int fake_put_part(void *ctx, struct http_client *client, int n, const char *body, size_t len, const int *stop,
                         struct par_part *out, struct err *e)
{
    (void)client;
    struct fake_put *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (++f->inflight > f->max_inflight)
        f->max_inflight = f->inflight;
    pthread_mutex_unlock(&f->mu);
    int rc = 0;
    if (n == 1 && f->hold_first) {
        pthread_mutex_lock(&f->mu);
        if (wait_for(&f->mu, &f->cv, &f->sent[2], 2) == 0)
            f->later_sent_first = 1;
        pthread_mutex_unlock(&f->mu);
    }
    if (n == f->fail_part) {
        sleep_ms(20);
        rc = err_set(e, ERR_HTTP, "part %d refused", n);
    } else if (f->fail_part && n == f->fail_part + 1) {
        for (int i = 0; i < 500 && !__atomic_load_n(stop, __ATOMIC_RELAXED); i++)
            sleep_ms(10);
        f->saw_stop = __atomic_load_n(stop, __ATOMIC_RELAXED);
        rc = err_set(e, ERR_CANCELLED, "stopped");
    } else {
        /* The part's first byte, checked against the source at completion. */
        out->etag = xasprintf("\"etag-%d\"", n);
        snprintf(out->checksum, sizeof out->checksum, "sum-%d", n);
        pthread_mutex_lock(&f->mu);
        f->part_len[n - 1] = (int64_t)len;
        f->part_first[n - 1] = len ? (int64_t)(unsigned char)body[0] : -1;
        f->sent[n] = 1;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int fake_complete(void *ctx, const struct par_part *parts, int nparts, int64_t total, struct err *e)
{
    (void)e;
    struct fake_put *f = ctx;
    f->completes++;
    f->complete_total = total;
    int good = 1;
    int64_t off = 0;
    for (int i = 0; i < nparts; i++) {
        char want[32], sum[32];
        snprintf(want, sizeof want, "\"etag-%d\"", i + 1);
        snprintf(sum, sizeof sum, "sum-%d", i + 1);
        if (!parts[i].etag || strcmp(parts[i].etag, want) || strcmp(parts[i].checksum, sum))
            good = 0;
        if (f->part_len[i] && f->part_first[i] != byte_at(off))
            good = 0;
        off += f->part_len[i];
    }
    f->complete_ok = good && off == total;
    return 0;
}

static void fake_abort(void *ctx)
{
    struct fake_put *f = ctx;
    f->aborts++;
}

static void fake_put_init(struct fake_put *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
}

static void fake_put_free(struct fake_put *f)
{
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static int run_put(struct fake_put *f, int64_t size, int64_t announced, int64_t fail_at, int64_t part_size,
                   int grow_every, int64_t max_part, int max_parts, int64_t budget, int workers, struct err *e)
{
    struct mem_source ms = { .size = size, .fail_at = fail_at };
    struct store_source src = { .read = mem_read, .ctx = &ms, .size = announced };
    struct par_reader rd = { .src = &src };
    struct par_put p = { .rd = &rd, .size = announced, .part_size = part_size, .grow_every = grow_every,
                         .max_part = max_part, .max_parts = max_parts, .too_many_hint = "raise THE_PART_SIZE",
                         .mem_budget = budget, .workers = workers, .put_part = fake_put_part,
                         .complete = fake_complete, .abort = fake_abort, .ctx = f };
    return par_put_run(&p, e);
}

static void test_put_order(void)
{
    struct fake_put f;
    fake_put_init(&f);
    f.hold_first = 1;
    struct err e = { 0 };
    is_int(run_put(&f, 1050, 1050, -1, 100, 0, 100, 100, 1000, 4, &e), 0, "upload of 1050 bytes in parts of 100");
    ok(f.later_sent_first, "part 2 was sent before part 1");
    is_int(f.completes, 1, "completed once");
    ok(f.complete_ok, "with every part's ETag and checksum in order, and the parts in sequence");
    is_int(f.complete_total, 1050, "and the total");
    is_int(f.part_len[10], 50, "the last part holds the rest");
    is_int(f.aborts, 0, "not aborted");
    fake_put_free(&f);
}

static void test_put_failures(void)
{
    struct fake_put f;
    fake_put_init(&f);
    f.hold_first = 1;
    f.fail_part = 3;
    struct err e = { 0 };
    is_int(run_put(&f, 2000, 2000, -1, 100, 0, 100, 100, 1000, 4, &e), -1, "a failing part fails the upload");
    is_str(e.msg, "part 3 refused", "with the part's error");
    ok(f.saw_stop, "the part in flight beside it was told to stop");
    is_int(f.aborts, 1, "abort called once");
    is_int(f.completes, 0, "complete not called");
    fake_put_free(&f);

    fake_put_init(&f);
    memset(&e, 0, sizeof e);
    is_int(run_put(&f, 1000, 1000, 450, 100, 0, 100, 100, 1000, 3, &e), -1, "a failing source fails the upload");
    is_str(e.msg, "the source broke", "with the source's error");
    is_int(f.aborts, 1, "abort called once");
    is_int(f.completes, 0, "complete not called");
    fake_put_free(&f);

    fake_put_init(&f);
    memset(&e, 0, sizeof e);
    is_int(run_put(&f, 900, 1000, -1, 100, 0, 100, 100, 1000, 3, &e), -1, "a source shorter than announced fails");
    is_str(e.msg, "the source gave 900 bytes, not the 1000 it announced", "saying so");
    is_int(f.aborts, 1, "abort called once");
    fake_put_free(&f);
}

static void test_put_memory(void)
{
    /* 8 workers, but a budget of 2.5 parts: two part buffers at most. */
    struct fake_put f;
    fake_put_init(&f);
    struct err e = { 0 };
    is_int(run_put(&f, 3000, 3000, -1, 100, 0, 100, 100, 250, 8, &e), 0, "upload with a budget of 250 bytes");
    ok(f.max_inflight <= 2, "no more than 2 parts of 100 in flight (saw %d)", f.max_inflight);
    ok(f.complete_ok && f.complete_total == 3000, "all parts, in order");
    fake_put_free(&f);

    /* A budget below one part still lets one through. */
    fake_put_init(&f);
    is_int(run_put(&f, 500, 500, -1, 100, 0, 100, 100, 50, 4, &e), 0, "a budget smaller than a part");
    is_int(f.max_inflight, 1, "one part at a time");
    fake_put_free(&f);
}

static void test_put_unknown(void)
{
    /* Unknown size: parts of 10 double every 2 parts, up to 40. */
    struct fake_put f;
    fake_put_init(&f);
    struct err e = { 0 };
    is_int(run_put(&f, 200, -1, -1, 10, 2, 40, 100, 1000, 3, &e), 0, "a stream of unknown length");
    int64_t want[] = { 10, 10, 20, 20, 40, 40, 40, 20 };
    int same = 1;
    for (int i = 0; i < 8; i++)
        same &= f.part_len[i] == want[i];
    ok(same, "parts of 10, 10, 20, 20, 40, 40, 40 and the rest (20)");
    ok(f.complete_ok && f.complete_total == 200, "completed with the total");
    fake_put_free(&f);

    /* Growing parts retire workers when the bigger buffers do not fit the budget. */
    fake_put_init(&f);
    is_int(run_put(&f, 2000, -1, -1, 10, 3, 160, 1000, 200, 8, &e), 0, "growing parts within a budget of 200");
    ok(f.max_inflight >= 1 && f.complete_ok, "completed (at most %d parts at once)", f.max_inflight);
    fake_put_free(&f);

    fake_put_init(&f);
    memset(&e, 0, sizeof e);
    is_int(run_put(&f, 200, -1, -1, 10, 0, 10, 3, 1000, 2, &e), -1, "a stream needing more parts than allowed");
    is_str(e.msg, "the stream needs more than 3 parts of this size; raise THE_PART_SIZE", "says so");
    is_int(f.aborts, 1, "abort called once");
    fake_put_free(&f);

    /* An empty stream is one empty part. */
    fake_put_init(&f);
    is_int(run_put(&f, 0, -1, -1, 10, 0, 10, 3, 1000, 2, &e), 0, "an empty stream");
    ok(f.sent[1] && !f.sent[2] && f.part_len[0] == 0 && f.completes == 1, "one empty part, completed");
    fake_put_free(&f);
}

/* ---- the reader ---------------------------------------------------------------------- */

static void test_reader(void)
{
    struct mem_source ms = { .size = 30, .fail_at = -1 };
    struct store_source src = { .read = mem_read, .ctx = &ms, .size = -1 };
    char *ahead = xmalloc(12);
    for (int i = 0; i < 12; i++)
        ahead[i] = (char)byte_at(i);
    ms.off = 12;
    struct par_reader rd = { .src = &src, .ahead = ahead, .ahead_len = 12 };
    char buf[64];
    struct err e = { 0 };
    is_int(par_reader_fill(&rd, buf, 5, &e), 5, "5 bytes of what was read ahead");
    is_int(par_reader_fill(&rd, buf + 5, 20, &e), 20, "then the rest of it and the source's");
    is_int(par_reader_fill(&rd, buf + 25, 20, &e), 5, "fewer at the end");
    struct buf b = { .data = buf, .len = 30 };
    ok(bytes_right(&b, 0), "in sequence");
    ok(rd.ahead == NULL, "the read-ahead buffer freed once used");
}

int main(void)
{
    struct err e = { 0 };
    if (http_global_init(&e) < 0) {
        printf("Bail out! %s\n", e.msg);
        return 1;
    }
    test_get_order();
    test_get_memory();
    test_get_resume();
    test_get_failures();
    test_get_short();
    test_put_order();
    test_put_failures();
    test_put_memory();
    test_put_unknown();
    test_reader();
    return tap_done();
}
