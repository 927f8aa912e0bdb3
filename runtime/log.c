#include "log.h"

#include "jsonutil.h"
#include "timeutil.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level current_level = LOG_INFO;
static int json_format;
static void (*sink_fn)(void *ctx, const char *line, size_t len);
static void *sink_ctx;

void log_set_sink(void (*fn)(void *ctx, const char *line, size_t len), void *ctx)
{
    sink_fn = fn;
    sink_ctx = ctx;
}

static void emit(const char *line)
{
    size_t n = strlen(line);
    if (sink_fn) {
        sink_fn(sink_ctx, line, n);
        return;
    }
    fwrite(line, 1, n, stderr);
    fflush(stderr);
}

void log_init(void)
{
    const char *fmt = getenv("STEPOP_LOG_FORMAT");
    json_format = fmt && strcmp(fmt, "json") == 0;
    const char *lvl = getenv("STEPOP_LOG_LEVEL");
    if (!lvl)
        return;
    if (strcmp(lvl, "error") == 0)
        current_level = LOG_ERROR;
    else if (strcmp(lvl, "warn") == 0 || strcmp(lvl, "warning") == 0)
        current_level = LOG_WARN;
    else if (strcmp(lvl, "info") == 0)
        current_level = LOG_INFO;
    else if (strcmp(lvl, "debug") == 0)
        current_level = LOG_DEBUG;
}

void log_set_level(enum log_level level)
{
    current_level = level;
}

int log_enabled(enum log_level level)
{
    return level <= current_level;
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_ERROR: return "error";
    case LOG_WARN: return "warning";
    case LOG_INFO: return "info";
    default: return "debug";
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    if (json_format) {
        char ts[40];
        time_format_rfc3339_now(ts, sizeof ts);
        char *line = json_log_line(ts, level_name(level), text);
        if (line) {
            char *nl = xasprintf("%s\n", line);
            emit(nl);
            free(nl);
            free(line);
        }
        return;
    }
    /* One write per line keeps lines whole when threads log at once. */
    char *line = (level == LOG_INFO || level == LOG_DEBUG) ? xasprintf("stepop: %s\n", text)
                                                           : xasprintf("stepop: %s: %s\n", level_name(level), text);
    emit(line);
    free(line);
}
