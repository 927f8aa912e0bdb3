#include "units.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Parses "<digits>[.<digits>]" at *p; returns -1 when there is no number. */
static int parse_decimal(const char **p, long double *out)
{
    const char *s = *p;
    long double v = 0;
    int any = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        s++;
        any = 1;
    }
    if (*s == '.') {
        s++;
        long double scale = 0.1L;
        while (*s >= '0' && *s <= '9') {
            v += (*s - '0') * scale;
            scale /= 10;
            s++;
            any = 1;
        }
    }
    if (!any)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

int units_parse_duration(const char *s, int64_t *out_ms, struct err *e)
{
    static const struct { const char *unit; long double ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
    };
    const char *p = s;
    long double total = 0;
    if (!*p)
        return err_set(e, ERR_INVALID, "empty duration (expected e.g. \"90s\", \"15m\", \"2h\")");
    while (*p) {
        long double v;
        if (parse_decimal(&p, &v) < 0)
            return err_set(e, ERR_INVALID, "invalid duration \"%s\" (expected e.g. \"90s\", \"15m\", \"2h\")", s);
        size_t best = 0;
        long double mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 && n > best) {
                best = n;
                mult = units[i].ms;
            }
        }
        if (!best)
            return err_set(e, ERR_INVALID, "invalid duration \"%s\": missing or unknown unit (use ms, s, m, h or d)", s);
        p += best;
        total += v * mult;
    }
    if (total > (long double)INT64_MAX / 2)
        return err_set(e, ERR_INVALID, "duration \"%s\" is too large", s);
    *out_ms = (int64_t)llroundl(total);
    return 0;
}

int units_parse_size(const char *s, int64_t *out_bytes, struct err *e)
{
    static const struct { const char *unit; long double mult; } units[] = {
        { "", 1 }, { "B", 1 },
        { "k", 1e3L }, { "K", 1e3L }, { "kB", 1e3L }, { "KB", 1e3L }, { "M", 1e6L }, { "MB", 1e6L },
        { "G", 1e9L }, { "GB", 1e9L }, { "T", 1e12L }, { "TB", 1e12L }, { "P", 1e15L }, { "PB", 1e15L },
        { "Ki", 1024.0L }, { "KiB", 1024.0L }, { "Mi", 1048576.0L }, { "MiB", 1048576.0L },
        { "Gi", 1073741824.0L }, { "GiB", 1073741824.0L }, { "Ti", 1099511627776.0L },
        { "TiB", 1099511627776.0L }, { "Pi", 1125899906842624.0L }, { "PiB", 1125899906842624.0L },
    };
    const char *p = s;
    long double v;
    if (parse_decimal(&p, &v) < 0)
        return err_set(e, ERR_INVALID, "invalid size \"%s\" (expected e.g. \"512MiB\", \"40GiB\", \"8GB\")", s);
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].unit) != 0)
            continue;
        long double bytes = v * units[i].mult;
        if (bytes >= 9.2e18L)
            return err_set(e, ERR_INVALID, "size \"%s\" is too large", s);
        if (bytes != floorl(bytes))
            return err_set(e, ERR_INVALID, "size \"%s\" is not a whole number of bytes", s);
        *out_bytes = (int64_t)bytes;
        return 0;
    }
    return err_set(e, ERR_INVALID, "invalid size \"%s\": unknown unit \"%s\" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, p);
}

void units_format_size(int64_t bytes, char *buf, size_t len)
{
    static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)bytes;
    int i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%lld B", (long long)bytes);
    else
        snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, names[i]);
}

void units_format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000) {
        snprintf(buf, len, "%lldms", (long long)ms);
        return;
    }
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, len, "%lldh%02lldm%02llds", (long long)(s / 3600), (long long)(s / 60 % 60),
                 (long long)(s % 60));
}
