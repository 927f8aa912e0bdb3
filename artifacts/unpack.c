#include "unpack.h"

#include "safepath.h"

#include "../runtime/log.h"
#include "../runtime/units.h"
#include "../runtime/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int unpack_limits_from_env(struct unpack_limits *l, struct err *e)
{
    l->max_bytes = (int64_t)1 << 40;
    l->max_entries = 10000000;
    const char *b = getenv("STEPOP_UNPACK_MAX_BYTES");
    if (b && *b && units_parse_size(b, &l->max_bytes, e) < 0)
        return err_prefix(e, "STEPOP_UNPACK_MAX_BYTES: ");
    const char *n = getenv("STEPOP_UNPACK_MAX_ENTRIES");
    if (n && *n) {
        char *end;
        long long v = strtoll(n, &end, 10);
        if (*end || v < 1)
            return err_set(e, ERR_INVALID, "STEPOP_UNPACK_MAX_ENTRIES: expected a positive number, got \"%s\"", n);
        l->max_entries = v;
    }
    return 0;
}

struct reader {
    unpack_next_fn next;
    void *ctx;
    struct err *e;
    int failed;
};

static la_ssize_t on_read(struct archive *a, void *ud, const void **out)
{
    struct reader *r = ud;
    ssize_t n = r->next(r->ctx, out, r->e);
    if (n < 0) {
        r->failed = 1;
        archive_set_error(a, EIO, "input failed");
        return -1;
    }
    return n;
}

/* A hard link's target must be reachable without passing through a symlink. */
static int check_no_symlink_components(const char *dest, const char *rel, struct err *e)
{
    char *path = xasprintf("%s/%s", dest, rel);
    size_t base = strlen(dest) + 1;
    int rc = 0;
    for (char *p = path + base; *p && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            rc = err_set(e, ERR_REFUSED, "hard link target \"%s\" passes through the symlink \"%s\"", rel, path + base);
        *p = '/';
    }
    free(path);
    return rc;
}

static int check_entry(struct archive_entry *en, const char *dest, char *norm, size_t len, char *link_norm,
                       size_t link_len, struct err *e)
{
    const char *name = archive_entry_pathname(en);
    int r = safepath_entry(name, norm, len, e);
    if (r != 0)
        return r;
    mode_t mode = archive_entry_mode(en);
    if (mode & (S_ISUID | S_ISGID))
        return err_set(e, ERR_REFUSED, "entry \"%s\": set-user-id or set-group-id bit", name);
    const char *hardlink = archive_entry_hardlink(en);
    if (hardlink) {
        int t = safepath_entry(hardlink, link_norm, link_len, e);
        if (t < 0)
            return err_prefix(e, "hard link \"%s\": ", name);
        if (t > 0)
            return err_set(e, ERR_REFUSED, "hard link \"%s\": target is the destination itself", name);
        return check_no_symlink_components(dest, link_norm, e);
    }
    switch (archive_entry_filetype(en)) {
    case AE_IFREG:
    case AE_IFDIR:
        return 0;
    case AE_IFLNK:
        return safepath_symlink(norm, archive_entry_symlink(en), e);
    case AE_IFCHR:
    case AE_IFBLK:
        return err_set(e, ERR_REFUSED, "entry \"%s\": device node", name);
    case AE_IFIFO:
        return err_set(e, ERR_REFUSED, "entry \"%s\": FIFO", name);
    case AE_IFSOCK:
        return err_set(e, ERR_REFUSED, "entry \"%s\": socket", name);
    default:
        return err_set(e, ERR_REFUSED, "entry \"%s\": unknown file type", name);
    }
}

static int copy_data(struct archive *in, struct archive *out, const char *name, int64_t *total, int64_t max,
                     struct err *e)
{
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(in, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return 1; /* a read error: the caller reports it */
        *total += (int64_t)size;
        if (*total > max)
            return err_set(e, ERR_REFUSED, "entry \"%s\": archive content exceeds the limit of %lld bytes "
                           "(STEPOP_UNPACK_MAX_BYTES)", name, (long long)max);
        if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
            return err_set(e, ERR_IO, "write %s: %s", name, archive_error_string(out));
    }
}

int unpack_stream(unpack_next_fn next, void *ctx, const char *dest, const struct unpack_limits *limits,
                  struct unpack_stats *stats, struct err *e)
{
    memset(stats, 0, sizeof *stats);
    char real_dest[PATH_MAX];
    /* libarchive refuses paths through symlinks, so the prefix itself must have none. */
    if (!realpath(dest, real_dest))
        return err_set(e, ERR_IO, "destination %s: %s", dest, strerror(errno));

    struct reader r = { .next = next, .ctx = ctx, .e = e };
    struct archive *in = archive_read_new();
    archive_read_support_filter_gzip(in);
    archive_read_support_filter_zstd(in);
    archive_read_support_filter_xz(in);
    archive_read_support_filter_bzip2(in);
    archive_read_support_format_tar(in);
    struct archive *out = archive_write_disk_new();
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    int rc = 0;
    if (archive_read_open(in, &r, NULL, on_read, NULL) != ARCHIVE_OK) {
        rc = r.failed ? -1
                      : err_set(e, ERR_INVALID, "not a tar archive (tar, tar.gz, tar.zst, tar.xz, tar.bz2): %s",
                                archive_error_string(in));
        goto out;
    }
    char norm[PATH_MAX], link_norm[PATH_MAX];
    for (;;) {
        struct archive_entry *en;
        int h = archive_read_next_header(in, &en);
        if (h == ARCHIVE_EOF)
            break;
        if (h < ARCHIVE_WARN) {
            if (r.failed)
                rc = -1;
            else if (stats->entries == 0)
                rc = err_set(e, ERR_INVALID, "not a tar archive (tar, tar.gz, tar.zst, tar.xz, tar.bz2): %s",
                             archive_error_string(in));
            else
                rc = err_set(e, ERR_INVALID, "damaged archive after %lld entries: %s", (long long)stats->entries,
                             archive_error_string(in));
            goto out;
        }
        int c = check_entry(en, real_dest, norm, sizeof norm, link_norm, sizeof link_norm, e);
        if (c < 0) {
            rc = -1;
            goto out;
        }
        if (c > 0)
            continue; /* "./": the destination itself */
        if (++stats->entries > limits->max_entries) {
            rc = err_set(e, ERR_REFUSED, "entry \"%s\": more than %lld entries (STEPOP_UNPACK_MAX_ENTRIES)", norm,
                         (long long)limits->max_entries);
            goto out;
        }
        if (archive_entry_size(en) > limits->max_bytes - stats->content_bytes) {
            rc = err_set(e, ERR_REFUSED, "entry \"%s\": archive content exceeds the limit of %lld bytes "
                         "(STEPOP_UNPACK_MAX_BYTES)", norm, (long long)limits->max_bytes);
            goto out;
        }
        char *full = xasprintf("%s/%s", real_dest, norm);
        archive_entry_copy_pathname(en, full);
        free(full);
        if (archive_entry_hardlink(en)) {
            char *target = xasprintf("%s/%s", real_dest, link_norm);
            archive_entry_copy_hardlink(en, target);
            free(target);
        }
        archive_entry_set_perm(en, archive_entry_perm(en) & 0777);
        int w = archive_write_header(out, en);
        if (w < ARCHIVE_WARN) {
            rc = err_set(e, ERR_REFUSED, "entry \"%s\": %s", norm, archive_error_string(out));
            goto out;
        }
        if (w == ARCHIVE_WARN)
            log_warn("entry \"%s\": %s", norm, archive_error_string(out));
        if (archive_entry_size(en) > 0) {
            int d = copy_data(in, out, norm, &stats->content_bytes, limits->max_bytes, e);
            if (d < 0) {
                rc = -1;
                goto out;
            }
            if (d > 0) {
                rc = r.failed ? -1 : err_set(e, ERR_INVALID, "entry \"%s\": %s", norm, archive_error_string(in));
                goto out;
            }
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
            rc = err_set(e, ERR_IO, "entry \"%s\": %s", norm, archive_error_string(out));
            goto out;
        }
    }
    if (archive_write_close(out) != ARCHIVE_OK)
        rc = err_set(e, ERR_IO, "finishing extraction: %s", archive_error_string(out));
out:
    archive_write_free(out);
    archive_read_free(in);
    return rc;
}
