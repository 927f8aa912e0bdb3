#include "../../runtime/units.h"
#include "tap.h"

static void duration(const char *s, long long want)
{
    struct err e = { 0 };
    int64_t ms = -1;
    int rc = units_parse_duration(s, &ms, &e);
    ok(rc == 0 && ms == want, "duration \"%s\" = %lld ms (got %lld, %s)", s, want, (long long)ms, rc ? e.msg : "ok");
}

static void bad_duration(const char *s, const char *needle)
{
    struct err e = { 0 };
    int64_t ms;
    int rc = units_parse_duration(s, &ms, &e);
    ok(rc < 0 && strstr(e.msg, needle), "duration \"%s\" refused: %s", s, e.msg);
}

static void size(const char *s, long long want)
{
    struct err e = { 0 };
    int64_t b = -1;
    int rc = units_parse_size(s, &b, &e);
    ok(rc == 0 && b == want, "size \"%s\" = %lld (got %lld, %s)", s, want, (long long)b, rc ? e.msg : "ok");
}

static void bad_size(const char *s)
{
    struct err e = { 0 };
    int64_t b;
    ok(units_parse_size(s, &b, &e) < 0 && e.kind == ERR_INVALID, "size \"%s\" refused: %s", s, e.msg);
}

int main(void)
{
    duration("90s", 90000);
    duration("15m", 900000);
    duration("2h", 7200000);
    duration("250ms", 250);
    duration("1h30m", 5400000);
    duration("1.5h", 5400000);
    duration("1d", 86400000);
    duration("0s", 0);
    duration("2m3s", 123000);
    bad_duration("90", "unit");
    bad_duration("", "empty");
    bad_duration("5x", "unit");
    bad_duration("s", "invalid");
    bad_duration("-5s", "invalid");
    bad_duration("1e9999h", "invalid");
    bad_duration("99999999999999999h", "too large");

    size("512MiB", 512LL << 20);
    size("40GiB", 40LL << 30);
    size("8GB", 8000000000LL);
    size("100", 100);
    size("1.5GiB", 1610612736LL);
    size("4Gi", 4LL << 30);
    size("1KiB", 1024);
    size("1kB", 1000);
    size("0", 0);
    size("7B", 7);
    size("1TiB", 1LL << 40);
    bad_size("12XB");
    bad_size("MiB");
    bad_size("-1GiB");
    bad_size("0.3B");
    bad_size("9999PiB");
    bad_size("");

    char buf[32];
    units_format_size(1536, buf, sizeof buf);
    is_str(buf, "1.50 KiB", "format 1536 bytes");
    units_format_size(12, buf, sizeof buf);
    is_str(buf, "12 B", "format 12 bytes");
    units_format_duration(123000, buf, sizeof buf);
    is_str(buf, "2m03s", "format 123 s");
    units_format_duration(3723000, buf, sizeof buf);
    is_str(buf, "1h02m03s", "format 1h02m03s");
    return tap_done();
}
