#include "transfer.h"

#include "bytepipe.h"

#include "../runtime/fsutil.h"
#include "../runtime/http.h"
#include "../runtime/log.h"
#include "../runtime/progress.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Between the archive thread and the network thread. Large enough to ride out short stalls
 * on either side, small enough for the memory target (see docs/benchmarks.md). */
#define PIPE_CAPACITY (8u << 20)

/* Names what a download writes before it is complete (the file store's part files too). */
#define STAGING_MARK ".stepop-part-"

struct digest {
    EVP_MD_CTX *md;
    int64_t bytes;
};

static void digest_init(struct digest *d)
{
    if (!d->md)
        d->md = EVP_MD_CTX_new();
    if (!d->md)
        abort();
    EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
    d->bytes = 0;
}

static void digest_update(struct digest *d, const void *data, size_t n)
{
    EVP_DigestUpdate(d->md, data, n);
    d->bytes += (int64_t)n;
}

static void digest_final(struct digest *d, char hex[65])
{
    unsigned char out[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(d->md, out, &len);
    hex_encode(out, 32, hex);
}

static void digest_free(struct digest *d)
{
    EVP_MD_CTX_free(d->md);
    d->md = NULL;
}

/* ---- put ---------------------------------------------------------------------------- */

/* The producing thread packs (or reads a file) and hashes; the caller's thread only sends, so
 * hashing and network work overlap on two cores. */
struct pack_job {
    const char *src;
    struct pack_options opt;
    struct bytepipe *pipe;
    struct digest dg;
    struct pack_stats stats;
    struct err e;
    int rc;
};

static int pack_to_pipe(void *ctx, const void *data, size_t n, struct err *e)
{
    struct pack_job *j = ctx;
    digest_update(&j->dg, data, n);
    return bytepipe_write(j->pipe, data, n, e);
}

static void *pack_thread(void *arg)
{
    struct pack_job *j = arg;
    j->rc = pack_path(j->src, &j->opt, pack_to_pipe, j, &j->stats, &j->e);
    bytepipe_close_write(j->pipe, j->rc < 0 ? &j->e : NULL);
    return NULL;
}

/* One upload: the producing thread and the pipe the store reads from. */
struct put_run {
    struct pack_job job;
    pthread_t tid;
    int running;
    struct progress *pr;
};

static int producer_start(struct put_run *u, struct err *e)
{
    u->job.pipe = bytepipe_new(PIPE_CAPACITY);
    digest_init(&u->job.dg);
    u->job.rc = 0;
    u->pr->done = 0;
    if (pthread_create(&u->tid, NULL, pack_thread, &u->job) != 0) {
        bytepipe_free(u->job.pipe);
        u->job.pipe = NULL;
        return err_set(e, ERR_INTERNAL, "cannot start the packing thread");
    }
    u->running = 1;
    return 0;
}

static void producer_stop(struct put_run *u, const struct err *failure)
{
    if (!u->running)
        return;
    bytepipe_close_read(u->job.pipe, failure);
    pthread_join(u->tid, NULL);
    bytepipe_free(u->job.pipe);
    u->job.pipe = NULL;
    u->running = 0;
}

/* The process-wide cancel flag (http_set_cancel_flag) is checked here too, between chunks, so a
 * transfer through a store that does not use the HTTP layer (file://) stops as well. */
static int cancelled(struct err *e)
{
    return http_cancelled() ? err_set(e, ERR_CANCELLED, "cancelled") : 0;
}

static ssize_t put_source_read(void *ctx, void *buf, size_t n, struct err *e)
{
    struct put_run *u = ctx;
    if (cancelled(e) < 0)
        return -1;
    if (!u->running)
        return err_set(e, ERR_INTERNAL, "the upload's source could not restart");
    ssize_t r = bytepipe_read(u->job.pipe, buf, n, e);
    if (r > 0)
        progress_add(u->pr, r);
    return r;
}

/* A file can be read again, so the store may retry a single PUT itself. */
static int put_source_rewind(void *ctx, struct err *e)
{
    struct put_run *u = ctx;
    struct err stop = { 0 };
    err_set(&stop, ERR_INTERNAL, "the upload restarts");
    producer_stop(u, &stop);
    return producer_start(u, e);
}

/* size: the object's size when known in advance (format file), else -1. */
static int put_once(struct store *s, const char *src, const char *uri, const struct transfer_options *o, int64_t size,
                    struct progress *pr, struct transfer_result *r, struct err *e)
{
    struct put_run u = { .job = { .src = src, .opt = { .format = o->format, .level = o->level, .threads = o->threads } },
                         .pr = pr };
    if (producer_start(&u, e) < 0) {
        digest_free(&u.job.dg);
        return -1;
    }
    struct store_source source = { .read = put_source_read, .ctx = &u, .size = size,
                                   .rewind = o->format == PACK_FILE ? put_source_rewind : NULL };
    int rc = store_put(s, uri, &source, e);
    if (u.running) {
        bytepipe_close_read(u.job.pipe, rc < 0 ? e : NULL);
        pthread_join(u.tid, NULL);
        u.running = 0;
    }
    struct pack_job *job = &u.job;
    if (rc == 0 && job->rc < 0) {
        *e = job->e; /* the store accepted a short stream: should not happen, but never report it as complete */
        rc = -1;
    }
    if (rc == 0 && size >= 0 && job->dg.bytes != size)
        rc = err_set(e, ERR_INTEGRITY, "%s changed size while it was uploaded", src);
    if (rc == 0) {
        r->size = job->dg.bytes;
        digest_final(&job->dg, r->sha256);
        r->entries = job->stats.entries;
        r->content_bytes = job->stats.content_bytes;
    }
    digest_free(&job->dg);
    bytepipe_free(job->pipe);
    return rc;
}

int transfer_put(struct store *s, const char *src, const char *uri, const struct transfer_options *o,
                 struct transfer_result *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    int64_t size = -1;
    if (o->format == PACK_FILE) {
        struct stat st;
        if (stat(src, &st) < 0)
            return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "%s: %s", src, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return err_set(e, ERR_INVALID, "%s is not a regular file; format \"file\" holds one file (use tar, tar.gz "
                           "or tar.zst for a directory)", src);
        size = st.st_size;
    }
    struct progress pr;
    progress_begin(&pr, o->progress_label ? o->progress_label : "", size);
    if (!o->progress_label)
        pr.enabled = 0;
    /* A packed stream cannot be rewound mid-store, so a transient failure packs it again from the
     * start; a file is rewound by the store's own retries instead. */
    int attempts = o->format == PACK_FILE ? 1 : http_config()->max_attempts, rc;
    for (int i = 1;; i++) {
        rc = put_once(s, src, uri, o, size, &pr, r, e);
        if (rc == 0 || !e->transient || i >= attempts || http_cancelled())
            break;
        log_warn("upload failed (%s); packing it again (attempt %d of %d)", e->msg, i + 1, attempts);
    }
    progress_end(&pr);
    return rc;
}

/* ---- get ---------------------------------------------------------------------------- */

static int check_digest(const char *uri, const char *expect, const char *got, struct err *e)
{
    if (!expect || strcasecmp(expect, got) == 0)
        return 0;
    char red[512];
    uri_redact(uri, red, sizeof red);
    return err_set(e, ERR_INTEGRITY, "%s: sha256 mismatch: expected %s, got %s", red, expect, got);
}

/* The download runs in its own thread, which hashes what arrives and copies it into a pipe; the
 * caller's thread writes (or unpacks) it. Hashing there, and not beside the disk writes, keeps the
 * two threads' work about even for a plain download (receive + hash against write) and takes it
 * off the heavier unpacking side. */
struct fetch_job {
    struct store *s;
    const char *uri;
    struct bytepipe *pipe;
    struct digest dg;
    struct progress *pr;
    pthread_t tid;
    size_t held; /* bytes peeked and not yet released */
    struct store_stat info; /* what the store announced; read after the thread ends */
    struct err e;
    int rc;
};

static int fetch_sink(void *ctx, const void *data, size_t n, struct err *e)
{
    struct fetch_job *j = ctx;
    if (cancelled(e) < 0)
        return -1;
    digest_update(&j->dg, data, n);
    return bytepipe_write(j->pipe, data, n, e);
}

static void *fetch_thread(void *arg)
{
    struct fetch_job *j = arg;
    j->info.size = -1;
    j->rc = store_get(j->s, j->uri, 0, -1, fetch_sink, j, &j->info, &j->e);
    bytepipe_close_write(j->pipe, j->rc < 0 ? &j->e : NULL);
    return NULL;
}

static int fetch_start(struct fetch_job *j, struct store *s, const char *uri, struct progress *pr, struct err *e)
{
    memset(j, 0, sizeof *j);
    j->s = s;
    j->uri = uri;
    j->pr = pr;
    j->pipe = bytepipe_new(PIPE_CAPACITY);
    digest_init(&j->dg);
    if (pthread_create(&j->tid, NULL, fetch_thread, j) != 0) {
        bytepipe_free(j->pipe);
        digest_free(&j->dg);
        return err_set(e, ERR_INTERNAL, "cannot start the download thread");
    }
    return 0;
}

/* At least min (fewer only at the end) and at most max of the next bytes, read in place from the
 * pipe; the caller sets j->held to how many it used, released at the next call. */
static ssize_t fetch_peek(struct fetch_job *j, const void **data, size_t min, size_t max, struct err *e)
{
    if (j->held) {
        bytepipe_consume(j->pipe, j->held);
        progress_add(j->pr, (int64_t)j->held);
        j->held = 0;
    }
    return bytepipe_peek_min(j->pipe, data, min, max, e);
}

/* The next bytes, all used (valid until the next call): unpack_stream's reader. */
static ssize_t fetch_next(void *ctx, const void **data, struct err *e)
{
    struct fetch_job *j = ctx;
    ssize_t r = fetch_peek(j, data, 1, 1u << 20, e);
    if (r > 0)
        j->held = (size_t)r;
    return r;
}

/* Stops the download (early when rc < 0), and gives the download's own failure precedence over
 * what a consumer saw of it. Fills r's size and digest on success. */
static int fetch_finish(struct fetch_job *j, int rc, struct transfer_result *r, struct err *e)
{
    if (j->held) {
        bytepipe_consume(j->pipe, j->held);
        progress_add(j->pr, (int64_t)j->held);
    }
    bytepipe_close_read(j->pipe, rc < 0 ? e : NULL);
    pthread_join(j->tid, NULL);
    if (j->rc < 0 && (rc == 0 || e->kind == ERR_INVALID || e->kind == ERR_INTERNAL)) {
        *e = j->e;
        rc = -1;
    }
    /* Every store checks its own answers; this is the last word for all of them: success only
     * once exactly the announced size arrived. */
    if (rc == 0 && j->info.size >= 0 && j->dg.bytes != j->info.size) {
        char red[512];
        uri_redact(j->uri, red, sizeof red);
        rc = err_set(e, ERR_INTEGRITY, "%s: got %lld bytes of the %lld the store announced", red,
                     (long long)j->dg.bytes, (long long)j->info.size);
    }
    if (rc == 0) {
        r->size = j->dg.bytes;
        digest_final(&j->dg, r->sha256);
    }
    digest_free(&j->dg);
    bytepipe_free(j->pipe);
    return rc;
}

/* Where a download starts to be written with O_DIRECT (STEPOP_DIRECT_WRITE; -1: never). Past a
 * few dozen MiB the page cache gains little (the file outgrows what a reader finds cached), and
 * writing through it costs most of a plain download's CPU: the copy into fresh pages (on a VM,
 * pages the host must back first), dirty-page throttling and, later, reclaim. Direct writes go
 * from the pipe to the device and leave the page cache to the programs that use it. */
#define DIRECT_WRITE_FROM (64 << 20)
/* Direct writes are whole pages from the pipe: at least this much each, when there is more to come. */
#define DIRECT_WRITE_MIN (1u << 20)
#define WRITE_MAX (4u << 20)

static int direct_write_from(int64_t *from, struct err *e)
{
    const char *v = getenv("STEPOP_DIRECT_WRITE");
    *from = DIRECT_WRITE_FROM;
    if (!v || !*v)
        return 0;
    if (strcmp(v, "off") == 0) {
        *from = -1;
        return 0;
    }
    if (units_parse_size(v, from, e) < 0) {
        e->kind = ERR_USAGE;
        return err_prefix(e, "STEPOP_DIRECT_WRITE (a size, or off): ");
    }
    return 0;
}

static int set_direct(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT);
}

/* Writes all n bytes; a filesystem that refuses O_DIRECT (EINVAL, as some do only at the first
 * write) gets them buffered instead, and *direct is cleared for good. */
static int write_out(int fd, const char *p, size_t n, int *direct)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL && *direct) {
                *direct = -1;
                if (set_direct(fd, 0) < 0)
                    return -1;
                continue;
            }
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Copies the download into fd: buffered up to direct_from, then whole pages with O_DIRECT (the
 * last partial page buffered again). direct: 0 buffered, 1 direct, -1 buffered for good. */
static int write_download(struct fetch_job *j, int fd, int64_t direct_from, const char *target, struct err *e)
{
    int direct = direct_from < 0 ? -1 : 0;
    int64_t off = 0;
    for (;;) {
        if (direct == 0 && off >= direct_from && off % BYTEPIPE_ALIGN == 0)
            direct = set_direct(fd, 1) == 0 ? 1 : -1;
        const void *data;
        ssize_t n = fetch_peek(j, &data, direct == 1 ? DIRECT_WRITE_MIN : 1, WRITE_MAX, e);
        if (n <= 0)
            return n < 0 ? -1 : 0;
        size_t w = (size_t)n;
        if (direct == 1) {
            w &= ~(size_t)(BYTEPIPE_ALIGN - 1);
            if (w == 0) { /* the end: less than a page left */
                if (set_direct(fd, 0) < 0)
                    return err_set(e, ERR_IO, "%s: %s", target, strerror(errno));
                direct = -1;
                w = (size_t)n;
            }
        } else if (direct == 0 && off + (int64_t)w > direct_from && off % BYTEPIPE_ALIGN != 0) {
            /* Up to the next page boundary, where direct writes can start. */
            size_t to_page = BYTEPIPE_ALIGN - (size_t)(off % BYTEPIPE_ALIGN);
            if (w > to_page)
                w = to_page;
        }
        if (write_out(fd, data, w, &direct) < 0)
            return err_set(e, ERR_IO, "write %s: %s", target, strerror(errno));
        j->held = w;
        off += (int64_t)w;
    }
}

static int get_file(struct store *s, const char *uri, const char *dest, const struct transfer_options *o,
                    struct progress *pr, struct transfer_result *r, struct err *e)
{
    char *target;
    struct stat st;
    if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *base = uri_basename(uri);
        target = xasprintf("%s/%s", dest, base);
        free(base);
    } else {
        target = xstrdup(dest);
    }
    if (fs_mkdir_parents(target, e) < 0) {
        free(target);
        return -1;
    }
    char *slash = strrchr(target, '/');
    char *tmp = slash ? xasprintf("%.*s/" STAGING_MARK "%s.XXXXXX", (int)(slash - target), target, slash + 1)
                      : xasprintf(STAGING_MARK "%s.XXXXXX", target);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = err_set(e, ERR_IO, "create %s: %s", tmp, strerror(errno));
        free(tmp);
        free(target);
        return rc;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    struct fetch_job job;
    int64_t direct_from;
    int rc = direct_write_from(&direct_from, e);
    if (rc == 0)
        rc = fetch_start(&job, s, uri, pr, e);
    if (rc == 0) {
        rc = write_download(&job, fd, direct_from, target, e);
        rc = fetch_finish(&job, rc, r, e);
    }
    if (rc == 0) {
        r->entries = 1;
        r->content_bytes = r->size;
        rc = check_digest(uri, o->expect_sha256, r->sha256, e);
    }
    if (close(fd) < 0 && rc == 0)
        rc = err_set(e, ERR_IO, "close %s: %s", target, strerror(errno));
    if (rc == 0 && rename(tmp, target) < 0)
        rc = err_set(e, ERR_IO, "rename to %s: %s", target, strerror(errno));
    /* No fsync: a download that a crash loses is fetched again, and the rename alone keeps a
     * partial file from ever appearing under the final name. */
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    free(target);
    return rc;
}

static int get_unpack(struct store *s, const char *uri, const char *dest, const struct transfer_options *o,
                      struct progress *pr, struct transfer_result *r, struct err *e)
{
    struct stat st;
    int existed = stat(dest, &st) == 0;
    if (fs_mkdir_p(dest, e) < 0)
        return -1;
    char real[PATH_MAX];
    if (!realpath(dest, real))
        return err_set(e, ERR_IO, "%s: %s", dest, strerror(errno));
    /* Extract into a hidden directory inside dest, then move the entries in: a damaged or
     * mismatching archive leaves dest as it was. Inside, not beside: the renames must stay on
     * dest's filesystem, and a mount point (a Kubernetes emptyDir or volume) has another one
     * than its parent. */
    char *staging = xasprintf("%s/" STAGING_MARK "XXXXXX", real);
    if (!mkdtemp(staging)) {
        int rc = err_set(e, ERR_IO, "create a staging directory inside %s: %s", real, strerror(errno));
        if (!existed)
            rmdir(real);
        free(staging);
        return rc;
    }
    struct fetch_job job;
    struct unpack_stats stats;
    int rc = fetch_start(&job, s, uri, pr, e);
    if (rc == 0) {
        rc = unpack_stream(fetch_next, &job, staging, &o->limits, &stats, e);
        if (rc == 0) {
            /* Read what follows the archive's end (block padding): the download must end cleanly. */
            const void *data;
            ssize_t n;
            while ((n = fetch_next(&job, &data, e)) > 0)
                ;
            if (n < 0)
                rc = -1;
        }
        rc = fetch_finish(&job, rc, r, e);
    }
    if (rc == 0) {
        r->entries = stats.entries;
        r->content_bytes = stats.content_bytes;
        rc = check_digest(uri, o->expect_sha256, r->sha256, e);
    }
    if (rc == 0)
        rc = fs_merge_into(staging, real, e);
    struct err ignored;
    fs_remove_tree(staging, &ignored);
    /* A failed download into a directory it created leaves no destination at all (rmdir: only
     * while it is empty, which it is unless the final merge failed half-way). */
    if (rc < 0 && !existed)
        rmdir(real);
    free(staging);
    return rc;
}

int transfer_get(struct store *s, const char *uri, const char *dest, const struct transfer_options *o,
                 struct transfer_result *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    struct progress pr;
    progress_begin(&pr, o->progress_label ? o->progress_label : "", -1);
    if (!o->progress_label)
        pr.enabled = 0;
    int rc = o->unpack ? get_unpack(s, uri, dest, o, &pr, r, e) : get_file(s, uri, dest, o, &pr, r, e);
    progress_end(&pr);
    return rc;
}
