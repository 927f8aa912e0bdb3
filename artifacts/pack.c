#include "pack.h"

#include "pgzip.h"
#include "safepath.h"
#include "zstdw.h"

#include "../runtime/log.h"
#include "../runtime/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PACK_CHUNK (1u << 20)

static const struct {
    const char *name;
    enum pack_format format;
    const char *ext;
} formats[] = {
    { "file", PACK_FILE, "" },
    { "tar", PACK_TAR, ".tar" },
    { "tar.gz", PACK_TAR_GZ, ".tar.gz" },
    { "tar.zst", PACK_TAR_ZST, ".tar.zst" },
};

int pack_format_parse(const char *name, enum pack_format *out)
{
    if (strcmp(name, "tgz") == 0) {
        *out = PACK_TAR_GZ;
        return 0;
    }
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, name) == 0) {
            *out = formats[i].format;
            return 0;
        }
    return -1;
}

const char *pack_format_name(enum pack_format f)
{
    return formats[f].name;
}

const char *pack_format_ext(enum pack_format f)
{
    return formats[f].ext;
}

int pack_format_from_name(const char *name, enum pack_format *out)
{
    if (str_has_suffix(name, ".tgz")) {
        *out = PACK_TAR_GZ;
        return 0;
    }
    for (size_t i = 1; i < sizeof formats / sizeof formats[0]; i++)
        if (str_has_suffix(name, formats[i].ext)) {
            *out = formats[i].format;
            return 0;
        }
    return -1;
}

struct packer {
    struct archive *a;
    struct pgzip *gz;   /* tar.gz: the tar goes through the parallel gzip compressor */
    struct zstdw *zst;  /* tar.zst: through libzstd's workers */
    struct archive_entry_linkresolver *links;
    pack_write_fn write;
    void *ctx;
    struct err *e;
    int write_failed;
    struct pack_stats *stats;
    char *chunk;
};

static la_ssize_t on_archive_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct packer *p = ud;
    int rc = p->gz ? pgzip_write(p->gz, buf, n, p->e)
                   : p->zst ? zstdw_write(p->zst, buf, n, p->e) : p->write(p->ctx, buf, n, p->e);
    if (rc < 0) {
        p->write_failed = 1;
        archive_set_error(a, EIO, "output failed");
        return -1;
    }
    return (la_ssize_t)n;
}

static int archive_fail(struct packer *p, const char *what)
{
    if (p->write_failed)
        return -1; /* the writer's own error is in p->e */
    return err_set(p->e, ERR_IO, "%s: %s", what, archive_error_string(p->a));
}

static int copy_file_data(struct packer *p, int fd, const char *path, int64_t expect)
{
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, p->chunk, PACK_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(p->e, ERR_IO, "read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        if (total + n > expect)
            n = (ssize_t)(expect - total); /* the file grew: the header already gave its size */
        if (n > 0 && archive_write_data(p->a, p->chunk, (size_t)n) < 0)
            return archive_fail(p, path);
        total += n;
        p->stats->content_bytes += n;
        if (total >= expect)
            break;
    }
    if (total < expect)
        return err_set(p->e, ERR_IO, "%s shrank while it was being packed (%lld of %lld bytes)", path,
                       (long long)total, (long long)expect);
    return 0;
}

static int write_data_of(struct packer *p, struct archive_entry *en, const char *src)
{
    if (archive_entry_filetype(en) != AE_IFREG || archive_entry_size(en) == 0)
        return 0;
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(p->e, ERR_IO, "open %s: %s", src, strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = copy_file_data(p, fd, src, archive_entry_size(en));
    close(fd);
    return rc;
}

static int write_entry(struct packer *p, struct archive_entry *en, const char *src)
{
    if (archive_write_header(p->a, en) < ARCHIVE_WARN)
        return archive_fail(p, archive_entry_pathname(en));
    p->stats->entries++;
    return write_data_of(p, en, src);
}

/* Writes en (and frees it). Files with several names go through the link resolver, which turns
 * the second and later names into hard-link entries without data. */
static int write_one(struct packer *p, struct archive_entry *en, const char *src)
{
    if (archive_entry_filetype(en) != AE_IFREG || archive_entry_nlink(en) < 2) {
        int rc = write_entry(p, en, src);
        archive_entry_free(en);
        return rc;
    }
    struct archive_entry *spare = NULL;
    archive_entry_linkify(p->links, &en, &spare);
    int rc = en ? write_entry(p, en, src) : 0;
    if (rc == 0 && spare)
        rc = write_entry(p, spare, archive_entry_sourcepath(spare));
    archive_entry_free(en);
    archive_entry_free(spare);
    return rc;
}

static struct archive_entry *new_entry(const char *name, const struct stat *st)
{
    struct archive_entry *en = archive_entry_new();
    archive_entry_set_pathname(en, name);
    archive_entry_set_mode(en, (st->st_mode & S_IFMT) | (st->st_mode & 0777));
    archive_entry_set_mtime(en, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    archive_entry_set_uid(en, 0);
    archive_entry_set_gid(en, 0);
    archive_entry_set_size(en, S_ISREG(st->st_mode) ? st->st_size : 0);
    if (S_ISREG(st->st_mode)) {
        archive_entry_set_dev(en, st->st_dev);
        archive_entry_set_ino64(en, (la_int64_t)st->st_ino);
        archive_entry_set_nlink(en, (unsigned)st->st_nlink);
    }
    return en;
}

static int add_regular(struct packer *p, const char *name, const char *disk_path, const struct stat *st)
{
    struct archive_entry *en = new_entry(name, st);
    archive_entry_copy_sourcepath(en, disk_path);
    return write_one(p, en, disk_path);
}

static int add_symlink(struct packer *p, const char *name, const char *disk_path, const struct stat *lst)
{
    char target[PATH_MAX];
    ssize_t n = readlink(disk_path, target, sizeof target - 1);
    if (n < 0)
        return err_set(p->e, ERR_IO, "readlink %s: %s", disk_path, strerror(errno));
    target[n] = '\0';
    if (safepath_symlink(name, target, NULL) == 0) {
        struct archive_entry *en = new_entry(name, lst);
        archive_entry_set_symlink(en, target);
        return write_one(p, en, disk_path);
    }
    struct stat st;
    if (stat(disk_path, &st) == 0 && S_ISREG(st.st_mode)) {
        log_warn("%s -> %s leaves the packed tree: storing the file it points to", name, target);
        return add_regular(p, name, disk_path, &st);
    }
    log_warn("%s -> %s leaves the packed tree and is not a regular file: skipped", name, target);
    return 0;
}

static int by_name(const FTSENT **a, const FTSENT **b)
{
    return strcmp((*a)->fts_name, (*b)->fts_name);
}

static int pack_tree(struct packer *p, const char *root)
{
    char *paths[] = { (char *)root, NULL };
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_COMFOLLOW, by_name);
    if (!fts)
        return err_set(p->e, ERR_IO, "walk %s: %s", root, strerror(errno));
    size_t root_len = strlen(root);
    while (root_len > 1 && root[root_len - 1] == '/')
        root_len--;
    int rc = 0;
    FTSENT *ent = NULL;
    for (;;) {
        errno = 0;
        if (rc != 0 || !(ent = fts_read(fts)))
            break;
        if (ent->fts_level == 0)
            continue; /* the root itself: names are relative to it */
        const char *name = ent->fts_path + root_len + 1;
        switch (ent->fts_info) {
        case FTS_D: {
            struct archive_entry *en = new_entry(name, ent->fts_statp);
            rc = write_one(p, en, ent->fts_path);
            break;
        }
        case FTS_DP:
            break;
        case FTS_F:
            rc = add_regular(p, name, ent->fts_path, ent->fts_statp);
            break;
        case FTS_SL:
        case FTS_SLNONE:
            rc = add_symlink(p, name, ent->fts_path, ent->fts_statp);
            break;
        case FTS_DEFAULT:
            log_warn("%s: not a file, directory or symlink (socket, FIFO or device): skipped", ent->fts_path);
            break;
        case FTS_DC:
            rc = err_set(p->e, ERR_IO, "%s: directory cycle", ent->fts_path);
            break;
        default:
            rc = err_set(p->e, ERR_IO, "%s: %s", ent->fts_path, strerror(ent->fts_errno));
            break;
        }
    }
    if (rc == 0 && errno)
        rc = err_set(p->e, ERR_IO, "walk %s: %s", root, strerror(errno));
    fts_close(fts);
    return rc;
}

static int pack_raw_file(const char *src, pack_write_fn write, void *ctx, struct pack_stats *stats, struct err *e)
{
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "open %s: %s", src, strerror(errno));
    char *chunk = xmalloc(PACK_CHUNK);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, PACK_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = err_set(e, ERR_IO, "read %s: %s", src, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if ((rc = write(ctx, chunk, (size_t)n, e)) < 0)
            break;
        stats->content_bytes += n;
    }
    stats->entries = 1;
    free(chunk);
    close(fd);
    return rc;
}

static int configure_filter(struct packer *p, const struct pack_options *opt)
{
    switch (opt->format) {
    case PACK_TAR_GZ:
        /* libarchive's gzip filter uses one core; pgzip writes independent members on all of them. */
        if (opt->level < 0 || opt->level > 9)
            return err_set(p->e, ERR_INVALID, "gzip level %d: expected 1 to 9", opt->level);
        archive_write_add_filter_none(p->a);
        p->gz = pgzip_new(opt->level ? opt->level : PACK_GZIP_LEVEL, opt->threads, p->write, p->ctx);
        break;
    case PACK_TAR_ZST:
        if (opt->level < 0 || opt->level > 19)
            return err_set(p->e, ERR_INVALID, "zstd level %d: expected 1 to 19", opt->level);
        archive_write_add_filter_none(p->a);
        p->zst = zstdw_new(opt->level ? opt->level : PACK_ZSTD_LEVEL, opt->threads, p->write, p->ctx, p->e);
        if (!p->zst)
            return -1;
        break;
    default:
        archive_write_add_filter_none(p->a);
        break;
    }
    return 0;
}

int pack_path(const char *src, const struct pack_options *opt, pack_write_fn write, void *ctx, struct pack_stats *stats,
              struct err *e)
{
    memset(stats, 0, sizeof *stats);
    struct stat st;
    if (stat(src, &st) < 0)
        return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "%s: %s", src, strerror(errno));
    if (opt->format == PACK_FILE) {
        if (!S_ISREG(st.st_mode))
            return err_set(e, ERR_INVALID, "%s is not a regular file; format \"file\" holds one file (use tar, tar.gz "
                           "or tar.zst for a directory)", src);
        return pack_raw_file(src, write, ctx, stats, e);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return err_set(e, ERR_INVALID, "%s is neither a file nor a directory", src);

    struct packer p = { .write = write, .ctx = ctx, .e = e, .stats = stats };
    p.a = archive_write_new();
    archive_write_set_format_pax_restricted(p.a);
    archive_write_set_bytes_per_block(p.a, 64 * 1024);
    archive_write_set_bytes_in_last_block(p.a, 1);
    int rc = configure_filter(&p, opt);
    if (rc == 0 && archive_write_open2(p.a, &p, NULL, on_archive_write, NULL, NULL) != ARCHIVE_OK)
        rc = archive_fail(&p, "start archive");
    if (rc == 0) {
        p.links = archive_entry_linkresolver_new();
        archive_entry_linkresolver_set_strategy(p.links, archive_format(p.a));
        p.chunk = xmalloc(PACK_CHUNK);
        if (S_ISDIR(st.st_mode)) {
            rc = pack_tree(&p, src);
        } else {
            char *copy = xstrdup(src);
            char *base = strrchr(copy, '/');
            rc = add_regular(&p, base ? base + 1 : copy, src, &st);
            free(copy);
        }
        if (rc == 0 && archive_write_close(p.a) != ARCHIVE_OK)
            rc = archive_fail(&p, "finish archive");
        if (rc == 0 && p.gz)
            rc = pgzip_finish(p.gz, e);
        if (rc == 0 && p.zst)
            rc = zstdw_finish(p.zst, e);
        archive_entry_linkresolver_free(p.links);
        free(p.chunk);
    }
    archive_write_free(p.a);
    pgzip_free(p.gz);
    zstdw_free(p.zst);
    return rc;
}
