/* file:// store: objects are files; a put writes a temporary file beside the target and renames
 * it into place after fsync, so a reader never sees a partial object. The directory holding a
 * rename is fsynced before the store's next rename or at store_close, whichever comes first:
 * renames become durable in the order they were made, and all of them by store_close. Deferring
 * it costs nothing in safety, and on ext4 the next object's own fsync has committed the earlier
 * rename already, so the directory's fsync has less to wait for (the entrypoint's logs, status
 * and outputs, docs/benchmarks.md). */
#include "store.h"

#include "../runtime/doctor.h"
#include "../runtime/fsutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FILE_CHUNK (1u << 20)
#define TEMP_MARK ".stepop-part-"

struct file_state {
    char *unsynced; /* the last object renamed into place whose directory is not fsynced yet */
};

static void sync_renamed(struct file_state *fs)
{
    if (!fs->unsynced)
        return;
    fs_fsync_parent(fs->unsynced);
    free(fs->unsynced);
    fs->unsynced = NULL;
}

static int file_open(struct store *s, const char *uri, struct err *e)
{
    (void)uri;
    (void)e;
    s->state = xcalloc(1, sizeof(struct file_state));
    return 0;
}

static void file_close(struct store *s)
{
    struct file_state *fs = s->state;
    sync_renamed(fs);
    free(fs);
}

static int path_of(const char *uri, char **path, struct err *e)
{
    return uri_file_path(uri, path, e);
}

static int errno_err(struct err *e, const char *what, const char *path)
{
    int saved = errno;
    return err_set(e, saved == ENOENT ? ERR_NOT_FOUND : ERR_IO, "%s %s: %s", what, path, strerror(saved));
}

static void fill_stat(const struct stat *st, struct store_stat *out)
{
    memset(out, 0, sizeof *out);
    out->size = S_ISDIR(st->st_mode) ? -1 : (int64_t)st->st_size;
    out->mtime = st->st_mtime;
    out->is_dir = S_ISDIR(st->st_mode);
    snprintf(out->etag, sizeof out->etag, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
             (unsigned long long)st->st_size, (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
             (unsigned long long)st->st_mtim.tv_nsec);
}

static int file_get(struct store *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                    struct store_stat *info, struct err *e)
{
    (void)s;
    char *path;
    if (path_of(uri, &path, e) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno_err(e, "open", path);
        free(path);
        return -1;
    }
    struct stat st;
    int rc = -1;
    char *chunk = NULL;
    if (fstat(fd, &st) < 0) {
        errno_err(e, "stat", path);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        err_set(e, ERR_INVALID, "%s is a directory, not an object", path);
        goto out;
    }
    if (info)
        fill_stat(&st, info);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    chunk = xmalloc(FILE_CHUNK);
    int64_t pos = offset, end = length < 0 ? INT64_MAX : offset + length;
    while (pos < end) {
        size_t want = FILE_CHUNK;
        if ((int64_t)want > end - pos)
            want = (size_t)(end - pos);
        ssize_t n = pread(fd, chunk, want, pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errno_err(e, "read", path);
            goto out;
        }
        if (n == 0)
            break;
        if (sink(ctx, chunk, (size_t)n, e) < 0)
            goto out;
        pos += n;
    }
    if (length >= 0 && pos < end) {
        err_set(e, ERR_INTEGRITY, "%s: range ends past the end of the file", path);
        goto out;
    }
    rc = 0;
out:
    free(chunk);
    close(fd);
    free(path);
    return rc;
}

static int file_put(struct store *s, const char *uri, struct store_source *src, struct err *e)
{
    struct file_state *fs = s->state;
    char *path;
    if (path_of(uri, &path, e) < 0)
        return -1;
    if (str_has_suffix(path, "/")) {
        err_set(e, ERR_INVALID, "%s: an object name cannot end in '/'", path);
        free(path);
        return -1;
    }
    char *tmp = NULL, *chunk = NULL;
    int fd = -1, rc = -1;
    if (fs_mkdir_parents(path, e) < 0)
        goto out;
    {
        char *slash = strrchr(path, '/');
        tmp = xasprintf("%.*s/." TEMP_MARK "%s.XXXXXX", (int)(slash - path), path, slash + 1);
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        errno_err(e, "create", tmp);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    chunk = xmalloc(FILE_CHUNK);
    for (;;) {
        ssize_t n = src->read(src->ctx, chunk, FILE_CHUNK, e);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        if (fs_write_all(fd, chunk, (size_t)n) < 0) {
            errno_err(e, "write", path);
            goto out;
        }
    }
    if (fsync(fd) < 0) {
        errno_err(e, "fsync", path);
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        errno_err(e, "close", path);
        goto out;
    }
    fd = -1;
    sync_renamed(fs); /* the earlier object is durable before this one can be */
    if (rename(tmp, path) < 0) {
        errno_err(e, "rename into", path);
        goto out;
    }
    free(tmp);
    tmp = NULL;
    fs->unsynced = path;
    path = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(chunk);
    free(path);
    return rc;
}

static int file_stat(struct store *s, const char *uri, struct store_stat *out, struct err *e)
{
    (void)s;
    char *path;
    if (path_of(uri, &path, e) < 0)
        return -1;
    struct stat st;
    int rc = stat(path, &st) < 0 ? errno_err(e, "stat", path) : 0;
    if (rc == 0)
        fill_stat(&st, out);
    free(path);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int file_list(struct store *s, const char *uri, store_list_fn fn, void *ctx, struct err *e)
{
    (void)s;
    char *path;
    if (path_of(uri, &path, e) < 0)
        return -1;
    DIR *d = opendir(path);
    if (!d) {
        int rc = errno_err(e, "list", path);
        free(path);
        return rc;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strncmp(de->d_name, "." TEMP_MARK, sizeof TEMP_MARK) == 0)
            continue; /* a put in progress is not an object yet */
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[count++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (count) /* an empty directory leaves names NULL, which qsort must not get */
        qsort(names, count, sizeof *names, name_cmp);
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        char *full = xasprintf("%s/%s", path, names[i]);
        struct stat st;
        if (rc == 0 && lstat(full, &st) == 0) {
            char *name = S_ISDIR(st.st_mode) ? xasprintf("%s/", names[i]) : xstrdup(names[i]);
            struct store_entry ent = { .name = name, .size = S_ISDIR(st.st_mode) ? -1 : (int64_t)st.st_size,
                                       .mtime = st.st_mtime };
            rc = fn(ctx, &ent, e);
            free(name);
        }
        free(full);
        free(names[i]);
    }
    free(names);
    free(path);
    return rc;
}

static int file_remove(struct store *s, const char *uri, struct err *e)
{
    (void)s;
    char *path;
    if (path_of(uri, &path, e) < 0)
        return -1;
    int rc = 0;
    if (unlink(path) < 0)
        rc = errno == EISDIR ? err_set(e, ERR_INVALID, "%s is a directory, not an object", path)
                             : errno_err(e, "remove", path);
    free(path);
    return rc;
}

/* `stepop doctor`: the directory and the room left in it (a full disk fails every upload). */
static void file_doctor(struct store *s, const char *root, struct doctor *d)
{
    (void)s;
    char *path;
    struct err e = { 0 };
    struct statvfs v;
    if (path_of(root, &path, &e) < 0)
        return;
    if (statvfs(path, &v) < 0) {
        doctor_add(d, DOCTOR_SKIP, "store space", "%s: %s", path, strerror(errno));
    } else {
        char room[32];
        units_format_size((int64_t)v.f_bavail * (int64_t)v.f_frsize, room, sizeof room);
        doctor_add(d, DOCTOR_OK, "store space", "%s free in %s", room, path);
    }
    free(path);
}

const struct store_ops store_file_ops = {
    .scheme = "file",
    .summary = "local or mounted file system (NFS, FUSE mounts, bind mounts into containers)",
    .open = file_open,
    .close = file_close,
    .get = file_get,
    .put = file_put,
    .stat = file_stat,
    .list = file_list,
    .remove = file_remove,
    .doctor = file_doctor,
};
