/* URIs (runtime/uri.c): every function on the input; uri_redact must hide the userinfo of a URI
 * that starts with a scheme (up to the authority's last '@') and everything after '?'. */
#include "../../runtime/uri.h"
#include "fuzz.h"

static void check_redacted(const char *uri)
{
    char out[512];
    uri_redact(uri, out, sizeof out);
    fuzz_assert(strlen(out) < sizeof out, "overflow");
    const char *sep = uri;
    if ((*sep >= 'a' && *sep <= 'z') || (*sep >= 'A' && *sep <= 'Z'))
        while (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.", *sep) && *sep)
            sep++;
    if (sep > uri && strncmp(sep, "://", 3) == 0) {
        const char *auth = sep + 3;
        size_t auth_len = strcspn(auth, "/");
        const char *at = memchr(auth, '@', auth_len);
        if (at && (size_t)(sep + 3 - uri) + 4 < sizeof out) {
            const char *o = out + (sep + 3 - uri);
            fuzz_assert(strncmp(o, "***@", 4) == 0, "userinfo kept: %s -> %s", uri, out);
            fuzz_assert(!memchr(o + 4, '@', strcspn(o + 4, "/")), "part of the userinfo kept: %s -> %s", uri, out);
        }
    }
    const char *q = strchr(out, '?');
    if (q && strlen(out) + 1 < sizeof out)
        fuzz_assert(strcmp(q, "?...") == 0, "query kept: %s -> %s", uri, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    char scheme[16];
    if (uri_scheme(s, scheme, sizeof scheme) == 0)
        fuzz_assert(strlen(scheme) < sizeof scheme, "scheme overflow");
    check_redacted(s);
    char *u = uri_from_arg(s);
    check_redacted(u);
    char *path = NULL;
    struct err e = { 0 };
    if (uri_file_path(u, &path, &e) == 0)
        fuzz_assert(path, "no path");
    free(path);
    free(u);
    char *enc = uri_encode(s, "/");
    char *dec = NULL;
    fuzz_assert(uri_decode(enc, &dec) == 0 && strcmp(dec, s) == 0, "encode/decode round trip: %s", s);
    free(dec);
    free(enc);
    dec = NULL;
    if (uri_decode(s, &dec) == 0)
        fuzz_assert(dec && strlen(dec) <= strlen(s), "decoded longer");
    free(dec);
    char *j = uri_join(s, s);
    free(j);
    char *b = uri_basename(s);
    fuzz_assert(!strchr(b, '/'), "basename with '/': %s", b);
    free(b);
    free(s);
    return 0;
}
