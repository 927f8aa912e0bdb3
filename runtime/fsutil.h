/* Local file system helpers shared by stores, transfers and the entrypoint. */
#ifndef STEPOP_FSUTIL_H
#define STEPOP_FSUTIL_H

#include "err.h"

#include <stddef.h>

/* Creates every missing directory above path (not path itself). */
int fs_mkdir_parents(const char *path, struct err *e);
/* Creates dir and every missing directory above it. */
int fs_mkdir_p(const char *dir, struct err *e);
/* Removes a file or a whole tree (without following symlinks); missing is not an error. */
int fs_remove_tree(const char *path, struct err *e);
int fs_write_all(int fd, const void *data, size_t n);
/* fsyncs the directory holding path, so a rename into it survives a crash. */
void fs_fsync_parent(const char *path);
/* Moves every entry of src into dst (an existing directory), merging directories that exist on
 * both sides and replacing files; refuses to merge a directory into a symlink or a file. */
int fs_merge_into(const char *src, const char *dst, struct err *e);
/* Between fork and exec: the descriptors a child must not inherit. fs_fd_limit runs in the
 * parent (getrlimit is not async-signal-safe); fs_cloexec_above_stdio is async-signal-safe and
 * marks every descriptor above 2 close-on-exec, so a descriptor the child still needs until exec
 * stays usable. */
int fs_fd_limit(void);
void fs_cloexec_above_stdio(int fd_limit);

#endif
