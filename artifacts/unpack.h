/* Safe, streaming extraction of tar, tar.gz, tar.zst (also xz, bzip2) detected from the bytes. */
#ifndef STEPOP_UNPACK_H
#define STEPOP_UNPACK_H

#include "../runtime/err.h"

#include <stdint.h>
#include <sys/types.h>

struct unpack_limits {
    int64_t max_bytes;   /* total file content; STEPOP_UNPACK_MAX_BYTES, default 1 TiB */
    int64_t max_entries; /* STEPOP_UNPACK_MAX_ENTRIES, default 10,000,000 */
};

struct unpack_stats {
    int64_t entries;
    int64_t content_bytes;
};

/* Limits from the environment (defaults when unset); -1 on a malformed value. */
int unpack_limits_from_env(struct unpack_limits *l, struct err *e);

/* The next bytes of the archive (*data stays valid until the next call): >0, 0 at the end, or
 * -1 with e set. Reading in place saves a copy of every byte. */
typedef ssize_t (*unpack_next_fn)(void *ctx, const void **data, struct err *e);

/* Extracts the archive read from next into dest (an existing directory). Refuses, naming the
 * entry: absolute names, "..", links leaving dest, writes through symlinks, devices, FIFOs,
 * sockets, set-id bits, and archives over the limits. Nothing is written outside dest. */
int unpack_stream(unpack_next_fn next, void *ctx, const char *dest, const struct unpack_limits *limits,
                  struct unpack_stats *stats, struct err *e);

#endif
