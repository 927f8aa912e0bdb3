/* zstd compression of a stream on every usable CPU through libzstd's own worker threads, with a
 * small job size so memory stays bounded (libarchive's zstd filter cannot set it). */
#ifndef STEPOP_ZSTDW_H
#define STEPOP_ZSTDW_H

#include "../runtime/err.h"

#include <stddef.h>

typedef int (*zstdw_out_fn)(void *ctx, const void *data, size_t n, struct err *e);

struct zstdw;

/* level 1-19 (0: 3); threads 0: the CPUs this process may use (cpus_usable). NULL when libzstd
 * refuses. */
struct zstdw *zstdw_new(int level, int threads, zstdw_out_fn out, void *ctx, struct err *e);
int zstdw_write(struct zstdw *z, const void *data, size_t n, struct err *e);
int zstdw_finish(struct zstdw *z, struct err *e);
void zstdw_free(struct zstdw *z);

#endif
