/* Durations and sizes (runtime/units.c): parsing anything, and formatting what parsed. */
#include "../../runtime/units.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    int64_t v = -1;
    struct err e = { 0 };
    char buf[64];
    if (units_parse_duration(s, &v, &e) == 0) {
        fuzz_assert(v >= 0, "negative duration %lld from \"%s\"", (long long)v, s);
        units_format_duration(v, buf, sizeof buf);
    } else {
        fuzz_assert(e.msg[0], "refused without a message");
    }
    if (units_parse_size(s, &v, &e) == 0) {
        fuzz_assert(v >= 0, "negative size %lld from \"%s\"", (long long)v, s);
        units_format_size(v, buf, sizeof buf);
    }
    if (size >= sizeof(int64_t)) {
        int64_t raw;
        memcpy(&raw, data, sizeof raw);
        units_format_size(raw, buf, sizeof buf);
        units_format_duration(raw, buf, sizeof buf);
    }
    free(s);
    return 0;
}
