/* Passing the step's output through to stepop's own stdout or stderr without ever waiting on
 * them: writes land in a bounded buffer that a thread drains, so a blocked stdout (a full Docker
 * log buffer, a reader that stopped reading) never delays signal forwarding, the timeout, the
 * grace period or heartbeats. When the buffer is full, bytes are dropped from the pass-through
 * only (the shipped log keeps every byte) and one note in the stream says how many. */
#ifndef STEPOP_PASSTHRU_H
#define STEPOP_PASSTHRU_H

#include "../runtime/err.h"

#include <stddef.h>
#include <stdint.h>

struct passthru;

/* Starts passing through to fd with a buffer of capacity bytes. */
int passthru_open(int fd, size_t capacity, struct passthru **out, struct err *e);
/* Queues data; never blocks on fd. */
void passthru_write(struct passthru *p, const void *data, size_t n);
/* Lets the buffer drain until deadline (monotonic ms), then stops the thread, interrupting a
 * write still blocked, and frees p (within a second of the deadline; a thread that cannot be
 * interrupted is left to the process's exit). Returns the bytes dropped over p's life. A write
 * larger than the buffer is dropped whole. */
int64_t passthru_close(struct passthru *p, int64_t deadline_ms);

#endif
