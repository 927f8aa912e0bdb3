/* A one-line progress display on stderr (bytes, rate, ETA), only when stderr is a terminal. */
#ifndef STEPOP_PROGRESS_H
#define STEPOP_PROGRESS_H

#include <stdint.h>

struct progress {
    char label[64];
    int64_t total; /* -1 when unknown */
    int64_t done;
    int64_t start_ms, last_draw_ms;
    int enabled;
};

/* Enabled when stderr is a tty, STEPOP_NO_PROGRESS is unset and logs are not JSON. */
void progress_begin(struct progress *p, const char *label, int64_t total);
void progress_add(struct progress *p, int64_t n);
void progress_end(struct progress *p);

#endif
