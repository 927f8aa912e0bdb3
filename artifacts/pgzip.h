/* Parallel gzip: the stream is cut into blocks compressed on every usable CPU at once, each block a
 * complete gzip member. Concatenated members are one valid gzip file (RFC 1952 section 2.2) that
 * gunzip, GNU tar, Python and libarchive all read. Output comes out in order, memory is bounded
 * (two blocks per thread in flight), and the bytes depend only on the input and the level. */
#ifndef STEPOP_PGZIP_H
#define STEPOP_PGZIP_H

#include "../runtime/err.h"

#include <stddef.h>

typedef int (*pgzip_out_fn)(void *ctx, const void *data, size_t n, struct err *e);

struct pgzip;

/* level 1-9 (0: 6); threads 0: the CPUs this process may use (cpus_usable). */
struct pgzip *pgzip_new(int level, int threads, pgzip_out_fn out, void *ctx);
int pgzip_write(struct pgzip *z, const void *data, size_t n, struct err *e);
/* Compresses what is buffered and writes every remaining member. */
int pgzip_finish(struct pgzip *z, struct err *e);
/* Stops the workers; safe after a failure. */
void pgzip_free(struct pgzip *z);

#endif
