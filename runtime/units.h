/* Durations ("90s", "15m", "1h30m", "250ms") and sizes ("512MiB", "8GB", "40Gi"). */
#ifndef STEPOP_UNITS_H
#define STEPOP_UNITS_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

/* Units: ms, s, m, h, d; several terms add up ("1h30m"); decimals allowed ("1.5h").
 * A bare number is refused: "90" could mean seconds or minutes. */
int units_parse_duration(const char *s, int64_t *out_ms, struct err *e);
/* Decimal units B, kB/KB, MB, GB, TB, PB; binary KiB..PiB and Kubernetes' Ki..Pi;
 * a bare integer is bytes. Rejects overflow past INT64_MAX. */
int units_parse_size(const char *s, int64_t *out_bytes, struct err *e);
/* Human forms for messages and progress: "1.5 GiB", "2m03s". */
void units_format_size(int64_t bytes, char *buf, size_t len);
void units_format_duration(int64_t ms, char *buf, size_t len);

#endif
