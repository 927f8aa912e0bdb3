/* The strict parsers of what servers say about sizes (artifacts/store.c): a download's part
 * arithmetic and its completeness check rest on them. */
#include "../../artifacts/store.h"
#include "tap.h"

#include <string.h>

static void range(const char *v, long long a, long long b, long long t)
{
    int64_t ga = -2, gb = -2, gt = -2;
    int rc = store_parse_content_range(v, &ga, &gb, &gt);
    ok(rc == 0 && ga == a && gb == b && gt == t, "Content-Range \"%s\" = %lld-%lld/%lld (got %lld-%lld/%lld)", v, a,
       b, t, (long long)ga, (long long)gb, (long long)gt);
}

static void bad_range(const char *v)
{
    int64_t a, b, t;
    ok(store_parse_content_range(v, &a, &b, &t) < 0, "Content-Range \"%s\" refused", v ? v : "(null)");
}

static void length(const char *v, long long want)
{
    int64_t n = -2;
    ok(store_parse_length(v, &n) == 0 && n == want, "Content-Length \"%s\" = %lld (got %lld)", v, want, (long long)n);
}

static void bad_length(const char *v)
{
    int64_t n;
    ok(store_parse_length(v, &n) < 0, "Content-Length \"%s\" refused", v ? v : "(null)");
}

int main(void)
{
    range("bytes 0-0/1", 0, 0, 1);
    range("bytes 0-8388607/20971520", 0, 8388607, 20971520);
    range("bytes 5-9/*", 5, 9, -1);
    /* The largest size a server can name still parses: refusing it is the download's job. */
    range("bytes 0-8388607/9223372036854775807", 0, 8388607, 9223372036854775807LL);
    bad_range("bytes 0-8388607/9223372036854775808"); /* overflows int64_t */
    bad_range("bytes 0-99999999999999999999/1");
    bad_range("bytes -1-5/10");
    bad_range("bytes 0--5/10");
    bad_range("bytes 0-5/-10");
    bad_range("bytes 0-5/+10");
    bad_range("bytes 0-5/ 10");
    bad_range("bytes 0-5/10 ");
    bad_range("bytes 0-5/10x");
    bad_range("bytes 6-5/10"); /* first after last */
    bad_range("bytes 0-10/10"); /* last beyond the end */
    bad_range("bytes */10");
    bad_range("items 0-5/10");
    bad_range("bytes 0-5");
    bad_range("");
    bad_range(NULL);

    length("0", 0);
    length("1048576", 1048576);
    length("9223372036854775807", 9223372036854775807LL);
    bad_length("9223372036854775808");
    bad_length("-1");
    bad_length("+1");
    bad_length("1 ");
    bad_length(" 1");
    bad_length("0x10");
    bad_length("");
    bad_length(NULL);
    return tap_done();
}
