/* Lexical rules for archive entry names and link targets, used before anything touches the
 * disk. Together with refusing writes through symlinks (libarchive's SECURE_SYMLINKS) they keep
 * every extracted object, and every link's resolution, inside the destination. */
#ifndef STEPOP_SAFEPATH_H
#define STEPOP_SAFEPATH_H

#include "../runtime/err.h"

#include <stddef.h>

/* Normalises an entry name ("./a//b/" -> "a/b") into out. Refuses absolute names, ".."
 * components and names that normalise to nothing but "." (out is then ""; returns 1 so the
 * caller can skip the archive's root entry). 0 for a normal name, -1 refused. */
int safepath_entry(const char *name, char *out, size_t len, struct err *e);
/* A symlink at entry (normalised) pointing to target stays inside the tree: target is relative,
 * non-empty, and its ".." components all come first and climb no higher than entry's own
 * directory. A ".." after a named component is refused: that component may itself be a link. */
int safepath_symlink(const char *entry, const char *target, struct err *e);

#endif
