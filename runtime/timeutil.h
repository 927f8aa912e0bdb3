/* Wall and monotonic clocks, RFC 3339 timestamps. */
#ifndef STEPOP_TIMEUTIL_H
#define STEPOP_TIMEUTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t time_mono_ms(void);
int64_t time_wall_ms(void);
/* "2026-11-25T21:55:07.123Z" */
void time_format_rfc3339_ms(int64_t wall_ms, char *buf, size_t len);
void time_format_rfc3339_now(char *buf, size_t len);
/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)" and "YYYYMMDDTHHMMSSZ"; returns -1 on bad input. */
int time_parse(const char *s, time_t *out);
/* Sleeps; returns early (non-zero) when *stop becomes set. stop may be NULL. */
int time_sleep_ms(int64_t ms, const volatile sig_atomic_t *stop);
/* The CLOCK_REALTIME instant ms from now, as pthread_cond_timedwait and friends want it. */
struct timespec time_realtime_in(int64_t ms);

#endif
