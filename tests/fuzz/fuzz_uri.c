/* URIs (runtime/uri.c): every function on the input; uri_redact must hide the userinfo of a URI
 * that starts with a scheme (up to the authority's last '@') and everything after '?', and
 * uri_redact_secrets the same userinfo and the value of a "sig" parameter. */
#include "../../runtime/uri.h"
#include "fuzz.h"

/* Where the authority starts (after "scheme://"), or NULL when uri does not start with a scheme. */
static const char *authority(const char *uri)
{
    const char *sep = uri;
    if ((*sep >= 'a' && *sep <= 'z') || (*sep >= 'A' && *sep <= 'Z'))
        while (*sep && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.", *sep))
            sep++;
    return sep > uri && strncmp(sep, "://", 3) == 0 ? sep + 3 : NULL;
}

/* out (a redaction of uri) shows no userinfo: "***@" where uri's authority (ending at the first
 * of auth_end) has an '@', and no '@' in what follows up to the same end. */
static void check_userinfo(const char *uri, const char *out, size_t out_len, const char *auth_end)
{
    const char *auth = authority(uri);
    if (!auth || !memchr(auth, '@', strcspn(auth, auth_end)) || (size_t)(auth - uri) + 4 >= out_len)
        return;
    const char *o = out + (auth - uri);
    fuzz_assert(strncmp(o, "***@", 4) == 0, "userinfo kept: %s -> %s", uri, out);
    fuzz_assert(!memchr(o + 4, '@', strcspn(o + 4, auth_end)), "part of the userinfo kept: %s -> %s", uri, out);
}

static void check_redacted(const char *uri)
{
    char out[512];
    uri_redact(uri, out, sizeof out);
    fuzz_assert(strlen(out) < sizeof out, "overflow");
    check_userinfo(uri, out, sizeof out, "/");
    const char *q = strchr(out, '?');
    if (q && strlen(out) + 1 < sizeof out)
        fuzz_assert(strcmp(q, "?...") == 0, "query kept: %s -> %s", uri, out);
    char *stored = uri_redact_secrets(uri);
    check_userinfo(uri, stored, strlen(stored) + 1, "/?#");
    /* A signature's value never survives ("sig" is one of the names), in the simple case of a
     * query that is that one parameter. */
    const char *sig = strchr(uri, '?');
    if (sig && !strncmp(sig, "?sig=", 5) && sig[5] && !strpbrk(uri, "#@") && !strchr(sig + 5, '&') &&
        strncmp("REDACTED", sig + 5, strlen(sig + 5)) != 0)
        fuzz_assert(!strstr(stored, sig), "signature kept: %s -> %s", uri, stored);
    free(stored);
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
