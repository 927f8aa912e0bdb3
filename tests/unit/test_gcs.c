/* The gs:// store's pure pieces: CRC-32C (RFC 3720 B.4 vectors, combine), GCS's base64 form of
 * it, x-goog-hash parsing, object-name encoding, the 308 Range arithmetic, the object resource,
 * part sizes and compose rounds. */
#include "../../artifacts/gcs_internal.h"
#include "../../runtime/crc32c.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static void vector(const char *what, const unsigned char *data, size_t n, uint32_t want)
{
    uint32_t got = crc32c_update(0, data, n);
    ok(got == want, "crc32c of %s = %08x (got %08x)", what, want, got);
    /* The same bytes fed one at a time, and from an unaligned start. */
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++)
        c = crc32c_update(c, data + i, 1);
    ok(c == want, "crc32c of %s byte by byte", what);
}

static void encode(const char *name, const char *want)
{
    char *got = gcs_encode_name(name);
    is_str(got, want, "object name \"%s\" encodes", name);
    free(got);
}

static void persisted(const char *range, long long want)
{
    is_int((long long)gcs_persisted_from_range(range), want, "308 Range \"%s\"", range ? range : "(none)");
}

int main(void)
{
    unsigned char buf[48];
    memset(buf, 0, 32);
    vector("32 zero bytes", buf, 32, 0x8a9136aau);
    memset(buf, 0xff, 32);
    vector("32 0xff bytes", buf, 32, 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    vector("32 ascending bytes", buf, 32, 0x46dd794eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    vector("32 descending bytes", buf, 32, 0x113fdb5cu);
    static const unsigned char pdu[48] = { 0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18,
                                           0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0 };
    vector("the iSCSI read PDU", pdu, 48, 0xd9963a56u);
    vector("\"123456789\"", (const unsigned char *)"123456789", 9, 0xe3069283u);
    vector("nothing", (const unsigned char *)"", 0, 0);

    /* combine: every split of a 1 MiB buffer (a few) gives the whole's CRC. */
    size_t n = 1 << 20;
    unsigned char *big = malloc(n);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (unsigned char)(x >> 16);
    }
    uint32_t whole = crc32c_update(0, big, n);
    size_t splits[] = { 0, 1, 7, 8, 4096, 262144, n - 1, n };
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        size_t k = splits[i];
        uint32_t a = crc32c_update(0, big, k), b = crc32c_update(0, big + k, n - k);
        ok(crc32c_combine(a, b, (int64_t)(n - k)) == whole, "combine at %zu of %zu", k, n);
    }
    free(big);

    char b64[9];
    crc32c_base64(0, b64);
    is_str(b64, "AAAAAA==", "crc32c 0 in GCS's base64");
    crc32c_base64(0xe3069283u, b64);
    is_str(b64, "4waSgw==", "crc32c e3069283 in GCS's base64 (big-endian)");
    uint32_t back = 0;
    ok(crc32c_from_base64("4waSgw==", &back) == 0 && back == 0xe3069283u, "base64 back to e3069283");
    ok(crc32c_from_base64("4waSgw=", &back) < 0, "base64 of the wrong length refused");
    ok(crc32c_from_base64("4wa!gw==", &back) < 0, "base64 with a foreign character refused");
    ok(crc32c_from_base64("4waSgx==", &back) < 0, "base64 with stray low bits refused");

    /* x-goog-hash: one header with both, or each alone; malformed values refused. */
    uint32_t crc = 0;
    int has_crc = 0, has_md5 = 0;
    unsigned char md5[16];
    ok(gcs_parse_hash(" crc32c=4waSgw==,md5=XrY7u+Ae7tCTyyK7j1rNww==", &crc, &has_crc, md5, &has_md5) == 0 &&
           has_crc && has_md5 && crc == 0xe3069283u && md5[0] == 0x5e && md5[15] == 0xc3,
       "x-goog-hash with crc32c and md5");
    has_crc = has_md5 = 0;
    ok(gcs_parse_hash("md5=XrY7u+Ae7tCTyyK7j1rNww==", &crc, &has_crc, md5, &has_md5) == 0 && !has_crc && has_md5,
       "x-goog-hash with md5 alone");
    has_crc = has_md5 = 0;
    ok(gcs_parse_hash("crc32c=AAAAAA==", &crc, &has_crc, md5, &has_md5) == 0 && has_crc && !has_md5 && crc == 0,
       "x-goog-hash with crc32c alone (a composite object)");
    ok(gcs_parse_hash("crc32c=AAAA", &crc, &has_crc, md5, &has_md5) < 0, "short crc32c refused");
    ok(gcs_parse_hash("md5=AAAAAA==", &crc, &has_crc, md5, &has_md5) < 0, "short md5 refused");
    has_crc = has_md5 = 0;
    ok(gcs_parse_hash("sha1=whatever", &crc, &has_crc, md5, &has_md5) == 0 && !has_crc && !has_md5,
       "unknown hashes ignored");

    /* Object names are one path segment: '/' and everything but unreserved encoded. */
    encode("a/b c.txt", "a%2Fb%20c.txt");
    encode("x~y_z-0.9", "x~y_z-0.9");
    encode("100%+?#&=", "100%25%2B%3F%23%26%3D");
    encode("caf\xc3\xa9", "caf%C3%A9");

    /* A 308's Range says how much the session holds. */
    persisted(NULL, 0);
    persisted("bytes=0-262143", 262144);
    persisted("bytes=0-0", 1);
    persisted("bytes=5-10", -1);
    persisted("bytes=0-", -1);
    persisted("bytes 0-10", -1);
    persisted("bytes=0-10x", -1);
    persisted("bytes=00-10", -1);
    persisted("bytes=0--1", -1);
    persisted("bytes=0- 1", -1);

    /* Parallel upload parts: the configured size, or whole MiB enough for the part limit. */
    is_int((long long)gcs_part_size(100LL << 20, 16LL << 20, 10000), 16LL << 20, "100 MiB in 16 MiB parts");
    is_int((long long)gcs_part_size(10LL << 20, 256LL << 10, 1024), 256LL << 10, "10 MiB in 256 KiB parts");
    is_int((long long)gcs_part_size(-1, 16LL << 20, 1024), 16LL << 20, "unknown size: the configured part");
    is_int((long long)gcs_part_size(1LL << 40, 16LL << 20, 1024), 1LL << 30, "1 TiB in 1024 parts: 1 GiB each");
    is_int((long long)gcs_part_size((1LL << 40) + 1, 16LL << 20, 1024), (1LL << 30) + (1 << 20),
           "one byte more: parts one MiB larger");
    is_int((long long)gcs_part_size(200LL << 30, 16LL << 20, 10000), 21LL << 20, "200 GiB in 10,000 parts: 21 MiB");
    /* Compose: 32 sources a request, composed again until one is left. */
    is_int(gcs_compose_requests(1), 1, "one part: one compose");
    is_int(gcs_compose_requests(32), 1, "32 parts: one compose");
    is_int(gcs_compose_requests(33), 3, "33 parts: two groups, then one");
    is_int(gcs_compose_requests(1024), 33, "1024 parts: 32 groups, then one");
    is_int(gcs_compose_requests(1025), 36, "1025 parts: 33 groups, 2, then one");

    /* The object resource: int64 fields as strings (numbers only where a double is exact). */
    struct gcs_object o;
    struct err oe = { 0 };
    const char *res = "{\"size\":\"12\",\"generation\":\"1700000000000001\",\"crc32c\":\"4waSgw==\","
                      "\"md5Hash\":\"XrY7u+Ae7tCTyyK7j1rNww==\",\"etag\":\"CAE=\",\"updated\":\"2026-01-02T03:04:05.000Z\"}";
    ok(gcs_object_from_json(res, strlen(res), &o, &oe) == 0 && o.size == 12 && o.generation == 1700000000000001LL &&
           o.has_crc32c && o.crc32c == 0xe3069283u && o.has_md5 && strcmp(o.etag, "CAE=") == 0 && o.updated > 0,
       "an object resource parses");
    const char *huge = "{\"size\":2333333333333333333333333333330,\"generation\":\"1\"}";
    ok(gcs_object_from_json(huge, strlen(huge), &o, &oe) < 0, "a size beyond int64 is refused (fuzz regression)");
    const char *nogen = "{\"size\":\"1\"}";
    ok(gcs_object_from_json(nogen, strlen(nogen), &o, &oe) < 0, "a resource without generation is refused");
    const char *badcrc = "{\"size\":\"1\",\"generation\":\"1\",\"crc32c\":\"xx\"}";
    ok(gcs_object_from_json(badcrc, strlen(badcrc), &o, &oe) < 0, "a malformed crc32c is refused");

    /* URIs: bucket names GCS allows, objects taken literally. */
    struct gcs_path p;
    struct err e = { 0 };
    ok(gcs_parse_uri("gs://my-bucket_1.x/a/b%20c", &p, &e) == 0 && strcmp(p.bucket, "my-bucket_1.x") == 0 &&
           strcmp(p.object, "a/b%20c") == 0,
       "gs://my-bucket_1.x/a/b%%20c parses literally");
    gcs_path_free(&p);
    ok(gcs_parse_uri("gs://Upper/x", &p, &e) < 0, "upper-case bucket refused");
    ok(gcs_parse_uri("gs://ab/x", &p, &e) < 0, "two-letter bucket refused");
    ok(gcs_parse_uri("s3://abc/x", &p, &e) < 0, "another scheme refused");
    return tap_done();
}
