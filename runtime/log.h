/* stepop's own diagnostics: stderr, "stepop: " prefix, or JSON lines with STEPOP_LOG_FORMAT=json.
 * Never pass a credential here; URIs go through uri_redact() first. */
#ifndef STEPOP_LOG_H
#define STEPOP_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Reads STEPOP_LOG_FORMAT and STEPOP_LOG_LEVEL; safe to call more than once. */
void log_init(void);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lines go to fn instead of stderr (the entrypoint passes them through without blocking and
 * ships them with the step's logs). fn must be thread-safe; NULL restores stderr. */
void log_set_sink(void (*fn)(void *ctx, const char *line, size_t len), void *ctx);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
