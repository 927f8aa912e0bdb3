#include "transfer.h"

#include "bytepipe.h"

#include "../runtime/fsutil.h"
#include "../runtime/http.h"
#include "../runtime/log.h"
#include "../runtime/progress.h"
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

struct file_source {
    int fd;
    const char *path;
    struct digest dg;
    struct progress *pr;
};

static ssize_t file_source_read(void *ctx, void *buf, size_t n, struct err *e)
{
    struct file_source *fs = ctx;
    for (;;) {
        ssize_t r = read(fs->fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return err_set(e, ERR_IO, "read %s: %s", fs->path, strerror(errno));
        digest_update(&fs->dg, buf, (size_t)r);
        progress_add(fs->pr, r);
        return r;
    }
}

static int file_source_rewind(void *ctx, struct err *e)
{
    struct file_source *fs = ctx;
    if (lseek(fs->fd, 0, SEEK_SET) < 0)
        return err_set(e, ERR_IO, "seek %s: %s", fs->path, strerror(errno));
    digest_init(&fs->dg);
    fs->pr->done = 0;
    return 0;
}

static int put_file(struct store *s, const char *src, const char *uri, struct progress *pr,
                    struct transfer_result *r, struct err *e)
{
    struct file_source fs = { .path = src, .pr = pr };
    fs.fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fs.fd < 0)
        return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "open %s: %s", src, strerror(errno));
    struct stat st;
    if (fstat(fs.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fs.fd);
        return err_set(e, ERR_INVALID, "%s is not a regular file; format \"file\" holds one file (use tar, tar.gz or "
                       "tar.zst for a directory)", src);
    }
    posix_fadvise(fs.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    pr->total = st.st_size;
    digest_init(&fs.dg);
    struct store_source source = { .read = file_source_read, .rewind = file_source_rewind, .ctx = &fs,
                                   .size = st.st_size };
    int rc = store_put(s, uri, &source, e);
    if (rc == 0) {
        if (fs.dg.bytes != st.st_size)
            rc = err_set(e, ERR_INTEGRITY, "%s changed size while it was uploaded", src);
        r->size = fs.dg.bytes;
        digest_final(&fs.dg, r->sha256);
        r->entries = 1;
        r->content_bytes = r->size;
    }
    digest_free(&fs.dg);
    close(fs.fd);
    return rc;
}

struct pack_job {
    const char *src;
    struct pack_options opt;
    struct bytepipe *pipe;
    struct pack_stats stats;
    struct err e;
    int rc;
};

static int pack_to_pipe(void *ctx, const void *data, size_t n, struct err *e)
{
    return bytepipe_write(ctx, data, n, e);
}

static void *pack_thread(void *arg)
{
    struct pack_job *j = arg;
    j->rc = pack_path(j->src, &j->opt, pack_to_pipe, j->pipe, &j->stats, &j->e);
    bytepipe_close_write(j->pipe, j->rc < 0 ? &j->e : NULL);
    return NULL;
}

struct pipe_source {
    struct bytepipe *pipe;
    struct digest dg;
    struct progress *pr;
};

static ssize_t pipe_source_read(void *ctx, void *buf, size_t n, struct err *e)
{
    struct pipe_source *ps = ctx;
    ssize_t r = bytepipe_read(ps->pipe, buf, n, e);
    if (r > 0) {
        digest_update(&ps->dg, buf, (size_t)r);
        progress_add(ps->pr, r);
    }
    return r;
}

static int put_archive_once(struct store *s, const char *src, const char *uri, const struct transfer_options *o,
                            struct progress *pr, struct transfer_result *r, struct err *e)
{
    struct pack_job job = { .src = src, .opt = { .format = o->format, .level = o->level, .threads = o->threads },
                            .pipe = bytepipe_new(PIPE_CAPACITY) };
    struct pipe_source ps = { .pipe = job.pipe, .pr = pr };
    digest_init(&ps.dg);
    pr->done = 0;
    pthread_t tid;
    if (pthread_create(&tid, NULL, pack_thread, &job) != 0) {
        bytepipe_free(job.pipe);
        digest_free(&ps.dg);
        return err_set(e, ERR_INTERNAL, "cannot start the packing thread");
    }
    struct store_source source = { .read = pipe_source_read, .ctx = &ps, .size = -1 };
    int rc = store_put(s, uri, &source, e);
    bytepipe_close_read(job.pipe, rc < 0 ? e : NULL);
    pthread_join(tid, NULL);
    if (rc == 0 && job.rc < 0) {
        *e = job.e; /* the store accepted a short stream: should not happen, but never report it as complete */
        rc = -1;
    }
    if (rc == 0) {
        r->size = ps.dg.bytes;
        digest_final(&ps.dg, r->sha256);
        r->entries = job.stats.entries;
        r->content_bytes = job.stats.content_bytes;
    }
    digest_free(&ps.dg);
    bytepipe_free(job.pipe);
    return rc;
}

int transfer_put(struct store *s, const char *src, const char *uri, const struct transfer_options *o,
                 struct transfer_result *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    struct progress pr;
    progress_begin(&pr, o->progress_label ? o->progress_label : "", -1);
    if (!o->progress_label)
        pr.enabled = 0;
    int rc;
    if (o->format == PACK_FILE) {
        rc = put_file(s, src, uri, &pr, r, e);
    } else {
        int attempts = http_config()->max_attempts;
        for (int i = 1;; i++) {
            rc = put_archive_once(s, src, uri, o, &pr, r, e);
            if (rc == 0 || !e->transient || i >= attempts || http_cancelled())
                break;
            log_warn("upload failed (%s); packing again (attempt %d of %d)", e->msg, i + 1, attempts);
        }
    }
    progress_end(&pr);
    return rc;
}

/* ---- get ---------------------------------------------------------------------------- */

struct file_sink {
    int fd;
    const char *path;
    struct digest dg;
    struct progress *pr;
};

static int file_sink_write(void *ctx, const void *data, size_t n, struct err *e)
{
    struct file_sink *fs = ctx;
    if (fs_write_all(fs->fd, data, n) < 0)
        return err_set(e, ERR_IO, "write %s: %s", fs->path, strerror(errno));
    digest_update(&fs->dg, data, n);
    progress_add(fs->pr, (int64_t)n);
    return 0;
}

static int check_digest(const char *uri, const char *expect, const char *got, struct err *e)
{
    if (!expect || strcasecmp(expect, got) == 0)
        return 0;
    char red[512];
    uri_redact(uri, red, sizeof red);
    return err_set(e, ERR_INTEGRITY, "%s: sha256 mismatch: expected %s, got %s", red, expect, got);
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
    char *tmp = slash ? xasprintf("%.*s/.stepop-part-%s.XXXXXX", (int)(slash - target), target, slash + 1)
                      : xasprintf(".stepop-part-%s.XXXXXX", target);
    struct file_sink fs = { .path = target, .pr = pr };
    fs.fd = mkostemp(tmp, O_CLOEXEC);
    if (fs.fd < 0) {
        int rc = err_set(e, ERR_IO, "create %s: %s", tmp, strerror(errno));
        free(tmp);
        free(target);
        return rc;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fs.fd, 0666 & ~mask);
    digest_init(&fs.dg);
    struct store_stat info = { .size = -1 };
    int rc = store_get(s, uri, 0, -1, file_sink_write, &fs, &info, e);
    if (rc == 0) {
        r->size = fs.dg.bytes;
        digest_final(&fs.dg, r->sha256);
        r->entries = 1;
        r->content_bytes = r->size;
        rc = check_digest(uri, o->expect_sha256, r->sha256, e);
    }
    if (rc == 0 && fsync(fs.fd) < 0)
        rc = err_set(e, ERR_IO, "fsync %s: %s", target, strerror(errno));
    if (close(fs.fd) < 0 && rc == 0)
        rc = err_set(e, ERR_IO, "close %s: %s", target, strerror(errno));
    if (rc == 0 && rename(tmp, target) < 0)
        rc = err_set(e, ERR_IO, "rename to %s: %s", target, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    else
        fs_fsync_parent(target);
    digest_free(&fs.dg);
    free(tmp);
    free(target);
    return rc;
}

struct fetch_job {
    struct store *s;
    const char *uri;
    struct bytepipe *pipe;
    struct digest dg;
    struct progress *pr;
    struct err e;
    int rc;
};

static int fetch_sink(void *ctx, const void *data, size_t n, struct err *e)
{
    struct fetch_job *j = ctx;
    digest_update(&j->dg, data, n);
    progress_add(j->pr, (int64_t)n);
    return bytepipe_write(j->pipe, data, n, e);
}

static void *fetch_thread(void *arg)
{
    struct fetch_job *j = arg;
    struct store_stat info = { .size = -1 };
    j->rc = store_get(j->s, j->uri, 0, -1, fetch_sink, j, &info, &j->e);
    bytepipe_close_write(j->pipe, j->rc < 0 ? &j->e : NULL);
    return NULL;
}

static ssize_t pipe_read(void *ctx, void *buf, size_t n, struct err *e)
{
    return bytepipe_read(ctx, buf, n, e);
}

static int get_unpack(struct store *s, const char *uri, const char *dest, const struct transfer_options *o,
                      struct progress *pr, struct transfer_result *r, struct err *e)
{
    if (fs_mkdir_p(dest, e) < 0)
        return -1;
    char real[PATH_MAX];
    if (!realpath(dest, real))
        return err_set(e, ERR_IO, "%s: %s", dest, strerror(errno));
    /* Extract beside dest, then move in: a damaged or mismatching archive leaves dest as it was. */
    char *staging = xasprintf("%s.stepop-part-XXXXXX", real);
    if (!mkdtemp(staging)) {
        int rc = err_set(e, ERR_IO, "create a staging directory beside %s: %s", real, strerror(errno));
        free(staging);
        return rc;
    }
    struct fetch_job job = { .s = s, .uri = uri, .pipe = bytepipe_new(PIPE_CAPACITY), .pr = pr };
    digest_init(&job.dg);
    pthread_t tid;
    int rc;
    if (pthread_create(&tid, NULL, fetch_thread, &job) != 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot start the download thread");
        goto out;
    }
    struct unpack_stats stats;
    rc = unpack_stream(pipe_read, job.pipe, staging, &o->limits, &stats, e);
    if (rc == 0) {
        /* Read what follows the archive's end (block padding) so the digest covers everything. */
        char sink[65536];
        ssize_t n;
        while ((n = bytepipe_read(job.pipe, sink, sizeof sink, e)) > 0)
            ;
        if (n < 0)
            rc = -1;
    }
    bytepipe_close_read(job.pipe, rc < 0 ? e : NULL);
    pthread_join(tid, NULL);
    if (job.rc < 0 && (rc == 0 || e->kind == ERR_INVALID || e->kind == ERR_INTERNAL)) {
        *e = job.e; /* the download's failure explains a damaged stream better than the extractor */
        rc = -1;
    }
    if (rc == 0) {
        r->size = job.dg.bytes;
        digest_final(&job.dg, r->sha256);
        r->entries = stats.entries;
        r->content_bytes = stats.content_bytes;
        rc = check_digest(uri, o->expect_sha256, r->sha256, e);
    }
    if (rc == 0)
        rc = fs_merge_into(staging, real, e);
out:
    {
        struct err ignored;
        fs_remove_tree(staging, &ignored);
    }
    digest_free(&job.dg);
    bytepipe_free(job.pipe);
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
