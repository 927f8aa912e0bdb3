#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->kind = kind;
    e->transient = 0;
    e->http_status = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), olen = strlen(e->msg);
    if (plen >= sizeof e->msg)
        plen = sizeof e->msg - 1;
    if (plen + olen >= sizeof e->msg)
        olen = sizeof e->msg - 1 - plen;
    memmove(e->msg + plen, e->msg, olen);
    memcpy(e->msg, prefix, plen);
    e->msg[plen + olen] = '\0';
    return -1;
}

void err_clear(struct err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

const char *err_kind_name(enum err_kind kind)
{
    static const char *const names[] = {
        [ERR_NONE] = "none",           [ERR_USAGE] = "usage",
        [ERR_INVALID] = "invalid",     [ERR_NOT_FOUND] = "not_found",
        [ERR_IO] = "io",               [ERR_NETWORK] = "network",
        [ERR_HTTP] = "http",           [ERR_AUTH] = "auth",
        [ERR_REFUSED] = "refused",     [ERR_INTEGRITY] = "integrity",
        [ERR_UNSUPPORTED] = "unsupported", [ERR_CANCELLED] = "cancelled",
        [ERR_INTERNAL] = "internal",
    };
    if ((unsigned)kind < sizeof names / sizeof names[0] && names[kind])
        return names[kind];
    return "unknown";
}
