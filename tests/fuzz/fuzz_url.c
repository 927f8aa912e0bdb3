/* URLs (runtime/url.c): url_parse, the loopback rule and url_endpoint on the input. A parsed URL
 * rebuilt from its scheme and hostport parses again to the same host, port and loopback verdict;
 * a URL called loopback has a host called loopback; an accepted endpoint has no user info, path,
 * query or fragment. */
#include "../../runtime/url.h"
#include "../../runtime/util.h"
#include "fuzz.h"

#include <ctype.h>

static void check_lower(const char *s, const char *what, const char *input)
{
    for (const char *p = s; *p; p++)
        fuzz_assert(!isupper((unsigned char)*p), "%s not lower-case: %s <- %s", what, s, input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    struct url u;
    int loop = url_is_loopback(s);
    (void)url_host_is_loopback(s);
    if (url_parse(s, &u, NULL) == 0) {
        fuzz_assert(*u.scheme && *u.host && u.path[0] == '/', "empty part: %s", s);
        check_lower(u.scheme, "scheme", s);
        check_lower(u.host, "host", s);
        fuzz_assert(u.port_or_default == u.port || u.port == 0, "port %ld, or default %ld: %s", u.port,
                    u.port_or_default, s);
        int host_loop = url_host_is_loopback(u.host);
        int web = strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0;
        fuzz_assert(loop == (web && host_loop), "url_is_loopback %d, host %s loopback %d: %s", loop, u.host,
                    host_loop, s);
        char *again = xasprintf("%s://%s/", u.scheme, u.hostport);
        struct url v;
        fuzz_assert(url_parse(again, &v, NULL) == 0, "rebuilt URL %s does not parse: %s", again, s);
        fuzz_assert(strcmp(u.host, v.host) == 0 && u.port_or_default == v.port_or_default && u.ipv6 == v.ipv6,
                    "rebuilt URL %s differs: %s", again, s);
        fuzz_assert(url_host_is_loopback(v.host) == host_loop, "loopback verdict changed: %s", s);
        url_free(&v);
        free(again);
        url_free(&u);
    } else {
        fuzz_assert(!loop, "an unparsable URL is loopback: %s", s);
    }
    static const char *const web[] = { "http", "https", NULL };
    struct err e;
    if (url_endpoint("X", s, web, &u, &e) == 0) {
        fuzz_assert(!u.has_userinfo && !u.query && !u.has_fragment && strspn(u.path, "/") == strlen(u.path),
                    "endpoint with more than a host: %s", s);
        url_free(&u);
    } else {
        fuzz_assert(strncmp(e.msg, "X \"", 3) == 0, "message does not name the setting: %s", e.msg);
    }
    free(s);
    return 0;
}
