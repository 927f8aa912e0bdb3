/* Packing a file or directory tree into a stream (libarchive), and the artifact formats. */
#ifndef STEPOP_PACK_H
#define STEPOP_PACK_H

#include "../runtime/err.h"

#include <stddef.h>
#include <stdint.h>

enum pack_format { PACK_FILE = 0, PACK_TAR, PACK_TAR_GZ, PACK_TAR_ZST };

/* Default compression levels (docs/benchmarks.md has the measurements behind them). */
#define PACK_GZIP_LEVEL 6
#define PACK_ZSTD_LEVEL 3

/* "file", "tar", "tar.gz", "tar.zst" (also "tgz"); -1 when unknown. */
int pack_format_parse(const char *name, enum pack_format *out);
const char *pack_format_name(enum pack_format f);
/* The object name suffix: "" for file, ".tar", ".tar.gz", ".tar.zst". */
const char *pack_format_ext(enum pack_format f);
/* The format a name ends in (".tar.zst" ...), or -1. */
int pack_format_from_name(const char *name, enum pack_format *out);

struct pack_options {
    enum pack_format format;
    int level;   /* compression level; 0 = the format's default */
    int threads; /* compression threads (zstd); 0 = the number of online CPUs */
};

struct pack_stats {
    int64_t entries;       /* files, directories and links stored */
    int64_t content_bytes; /* bytes of file contents read */
};

typedef int (*pack_write_fn)(void *ctx, const void *data, size_t n, struct err *e);

/* Streams src as the chosen format to write. A directory becomes a tar of its contents (names
 * relative to it, sorted, empty directories kept, modes and mtimes kept, owner 0:0, symlinks
 * that stay inside the tree kept as links, symlinks leaving it replaced by the file they point
 * to); a regular file becomes a tar with one entry named after it, or the bytes themselves for
 * PACK_FILE. Set-id bits are dropped; sockets, FIFOs and devices are skipped with a warning. */
int pack_path(const char *src, const struct pack_options *opt, pack_write_fn write, void *ctx, struct pack_stats *stats,
              struct err *e);

#endif
