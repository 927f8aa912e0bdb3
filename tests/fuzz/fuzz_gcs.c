/* What the gs:// store parses from servers and users (artifacts/store_gcs.c, runtime/crc32c.c):
 * x-goog-hash values, a 308's Range, the object resource, GCS's base64 CRCs (accepted only in
 * the canonical form, so they print back the same), object-name encoding (decodes back), and
 * crc32c_combine over any split of the input (equals the CRC of the whole). */
#include "../../artifacts/gcs_internal.h"
#include "../../runtime/crc32c.h"
#include "../../runtime/uri.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);

    uint32_t crc = 0;
    int has_crc = 0, has_md5 = 0;
    unsigned char md5[16];
    gcs_parse_hash(s, &crc, &has_crc, md5, &has_md5);

    int64_t n = gcs_persisted_from_range(s);
    fuzz_assert(n >= -1, "persisted %lld", (long long)n);
    fuzz_assert(n < 1 || strncmp(s, "bytes=0-", 8) == 0, "a Range without bytes=0- gave %lld", (long long)n);

    if (crc32c_from_base64(s, &crc) == 0) {
        char back[9];
        crc32c_base64(crc, back);
        fuzz_assert(strcmp(back, s) == 0, "base64 %s printed back as %s", s, back);
    }

    struct gcs_object o;
    struct err e = { 0 };
    if (gcs_object_from_json(s, strlen(s), &o, &e) == 0)
        fuzz_assert(o.size >= 0 && o.generation >= 0, "an accepted resource with size %lld", (long long)o.size);

    char *enc = gcs_encode_name(s), *dec = NULL;
    for (const char *c = enc; *c; c++)
        fuzz_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%", *c),
                    "'%c' left unencoded", *c);
    fuzz_assert(uri_decode(enc, &dec) == 0 && strcmp(dec, s) == 0, "the encoded name does not decode back");
    free(enc);
    free(dec);

    uint32_t whole = crc32c_update(0, data, size);
    size_t k = size ? data[0] % (size + 1) : 0;
    uint32_t a = crc32c_update(0, data, k), b = crc32c_update(0, data + k, size - k);
    fuzz_assert(crc32c_combine(a, b, (int64_t)(size - k)) == whole, "combine at %zu of %zu", k, size);
    free(s);
    return 0;
}
