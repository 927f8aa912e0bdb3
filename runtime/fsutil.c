#include "fsutil.h"

#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int fs_mkdir_parents(const char *path, struct err *e)
{
    char *copy = xstrdup(path);
    int rc = 0;
    for (char *p = copy + 1; *p && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0777) < 0 && errno != EEXIST)
            rc = err_set(e, ERR_IO, "mkdir %s: %s", copy, strerror(errno));
        *p = '/';
    }
    free(copy);
    return rc;
}

int fs_mkdir_p(const char *dir, struct err *e)
{
    if (fs_mkdir_parents(dir, e) < 0)
        return -1;
    if (mkdir(dir, 0777) < 0 && errno != EEXIST)
        return err_set(e, ERR_IO, "mkdir %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(e, ERR_IO, "%s exists and is not a directory", dir);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (type == FTW_DP)
        return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_D && (st->st_mode & 0700) != 0700)
        chmod(path, st->st_mode | 0700);
    return 0;
}

int fs_remove_tree(const char *path, struct err *e)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? err_set(e, ERR_IO, "remove %s: %s", path, strerror(errno)) : 0;
    /* Extracted trees may hold read-only directories; open them up before deleting. */
    nftw(path, make_writable, 32, FTW_PHYS);
    if (nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH) < 0)
        return err_set(e, ERR_IO, "remove %s: %s", path, strerror(errno));
    return 0;
}

int fs_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void fs_fsync_parent(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int fs_merge_into(const char *src, const char *dst, struct err *e)
{
    DIR *d = opendir(src);
    if (!d)
        return err_set(e, ERR_IO, "%s: %s", src, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *from = xasprintf("%s/%s", src, de->d_name);
        char *to = xasprintf("%s/%s", dst, de->d_name);
        struct stat sf, st;
        if (lstat(from, &sf) < 0) {
            rc = err_set(e, ERR_IO, "%s: %s", from, strerror(errno));
        } else if (lstat(to, &st) < 0) {
            if (rename(from, to) < 0)
                rc = err_set(e, ERR_IO, "rename %s: %s", to, strerror(errno));
        } else if (S_ISDIR(sf.st_mode) && S_ISDIR(st.st_mode)) {
            rc = fs_merge_into(from, to, e);
        } else if (S_ISDIR(st.st_mode)) {
            rc = err_set(e, ERR_REFUSED, "%s is a directory and the archive has a file there", to);
        } else if (S_ISDIR(sf.st_mode)) {
            rc = err_set(e, ERR_REFUSED, "%s exists and is not a directory; the archive has a directory there", to);
        } else if (rename(from, to) < 0) {
            rc = err_set(e, ERR_IO, "rename %s: %s", to, strerror(errno));
        }
        free(from);
        free(to);
    }
    closedir(d);
    return rc;
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Bounds the fallback loop below: a limit of a billion would take minutes of fcntl calls. */
#define FD_LOOP_MAX (1 << 20)

int fs_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FD_LOOP_MAX)
        return FD_LOOP_MAX;
    return (int)rl.rlim_cur;
}

void fs_cloexec_above_stdio(int fd_limit)
{
    /* close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11) in one call; the raw syscall, so the
     * binary does not need glibc 2.34's wrapper. Older kernels: one fcntl per possible descriptor. */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    for (int fd = 3; fd < fd_limit; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
}
