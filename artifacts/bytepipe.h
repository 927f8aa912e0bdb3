/* A bounded byte pipe between two threads (pack -> upload, download -> unpack): the writer
 * blocks while it is full, the reader while it is empty; either side can fail it, and the other
 * side then sees that error instead of blocking forever. */
#ifndef STEPOP_BYTEPIPE_H
#define STEPOP_BYTEPIPE_H

#include "../runtime/err.h"

#include <stddef.h>
#include <sys/types.h>

struct bytepipe;

#define BYTEPIPE_ALIGN 4096

struct bytepipe *bytepipe_new(size_t capacity);
void bytepipe_free(struct bytepipe *p);
/* Copies all n bytes in (blocking); -1 when the reader has failed or closed. */
int bytepipe_write(struct bytepipe *p, const void *data, size_t n, struct err *e);
/* Up to n bytes; 0 once the writer closed and everything was read; -1 when the writer failed. */
ssize_t bytepipe_read(struct bytepipe *p, void *buf, size_t n, struct err *e);
/* Zero-copy reading: *data points at up to max contiguous bytes inside the pipe (0 at the end,
 * -1 when the writer failed); they stay valid until bytepipe_consume releases them. */
ssize_t bytepipe_peek(struct bytepipe *p, const void **data, size_t max, struct err *e);
/* The same, waiting until at least min bytes are in the pipe (or the writer closed it). The ring
 * is BYTEPIPE_ALIGN-aligned and a multiple of it long, so after consuming only whole multiples of
 * BYTEPIPE_ALIGN, *data stays aligned and each answer of min or more holds at least one. */
ssize_t bytepipe_peek_min(struct bytepipe *p, const void **data, size_t min, size_t max, struct err *e);
void bytepipe_consume(struct bytepipe *p, size_t n);
/* Writer is done: failure NULL for a clean end of stream, else the error to give the reader. */
void bytepipe_close_write(struct bytepipe *p, const struct err *failure);
/* Reader is done (possibly early, on its own error): unblocks and fails the writer. */
void bytepipe_close_read(struct bytepipe *p, const struct err *failure);

#endif
