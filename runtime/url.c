#include "url.h"

#include "uri.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* One part as an owned string (NULL when absent); curl's allocation is handed back to curl. */
static char *part(CURLU *h, CURLUPart what, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(h, what, &v, flags) != CURLUE_OK)
        return NULL;
    char *r = xstrdup(v);
    curl_free(v);
    return r;
}

/* url_parse's work; returns libcurl's verdict so that url_endpoint can word its own messages. */
static CURLUcode parse(const char *s, struct url *out)
{
    memset(out, 0, sizeof *out);
    char scheme[32];
    if (uri_scheme(s, scheme, sizeof scheme) < 0)
        return CURLUE_BAD_SCHEME;
    /* curl reads "http:///h" as http://h/ (browsers' leniency); here that is a missing host. */
    const char *auth = strstr(s, "://") + 3;
    if (*auth == '/' || *auth == '\0')
        return CURLUE_NO_HOST;
    /* A host name never needs percent-encoding, and curl decodes it only after it has normalised
     * numeric IPv4 forms: "%32130706433" would come out as "2130706433", which resolvers read as
     * 127.0.0.1, while the loopback check saw a name. Only an IPv6 zone ("[fe80::1%25eth0]") has
     * a '%'. */
    size_t auth_len = strcspn(auth, "/?#");
    const char *host_start = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            host_start = auth + i + 1;
    if (*host_start != '[' && memchr(host_start, '%', auth_len - (size_t)(host_start - auth)))
        return CURLUE_BAD_HOSTNAME;
    CURLU *h = curl_url();
    if (!h)
        abort();
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
    char *host = rc == CURLUE_OK ? part(h, CURLUPART_HOST, 0) : NULL;
    if (rc == CURLUE_OK && (!host || !*host))
        rc = CURLUE_NO_HOST;
    /* curl decodes "%25" in a host name into a '%' that no host name holds, and that would not
     * survive being written into a URL again (hostport). */
    if (rc == CURLUE_OK && host[0] != '[' && strchr(host, '%'))
        rc = CURLUE_BAD_HOSTNAME;
    /* An IPv6 zone is an interface name or number; curl takes anything up to the ']' ("[::1%@x]"). */
    char *zone = rc == CURLUE_OK ? part(h, CURLUPART_ZONEID, 0) : NULL;
    if (zone && strspn(zone, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(zone))
        rc = CURLUE_BAD_IPV6;
    if (rc != CURLUE_OK) {
        free(zone);
        free(host);
        curl_url_cleanup(h);
        return rc;
    }
    out->scheme = part(h, CURLUPART_SCHEME, 0);
    lower(out->scheme);
    lower(host);
    size_t n = strlen(host);
    out->ipv6 = host[0] == '[' && host[n - 1] == ']';
    out->host = out->ipv6 ? xstrndup(host + 1, n - 2) : xstrdup(host);
    char *port = part(h, CURLUPART_PORT, 0);
    char *port_dflt = part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    out->port = port ? strtol(port, NULL, 10) : 0;
    out->port_or_default = port_dflt ? strtol(port_dflt, NULL, 10) : 0;
    /* A zone is part of the address (fe80::1 on eth0): a URL built again keeps it. */
    struct buf hp = { 0 };
    if (out->ipv6)
        buf_appendf(&hp, "[%s%s%s]", out->host, zone ? "%25" : "", zone ? zone : "");
    else
        buf_appendf(&hp, "%s", out->host);
    if (port)
        buf_appendf(&hp, ":%s", port);
    out->hostport = hp.data;
    out->path = part(h, CURLUPART_PATH, 0);
    if (!out->path)
        out->path = xstrdup("/");
    out->query = part(h, CURLUPART_QUERY, 0);
    /* curl reports no fragment for an empty one ("http://h#"); a raw '#' can only start one. */
    out->has_fragment = strchr(s, '#') != NULL;
    char *user = part(h, CURLUPART_USER, 0), *password = part(h, CURLUPART_PASSWORD, 0);
    out->has_userinfo = user || password;
    free(user), free(password), free(zone), free(port), free(port_dflt), free(host);
    curl_url_cleanup(h);
    return CURLUE_OK;
}

int url_parse(const char *s, struct url *out, struct err *e)
{
    CURLUcode rc = parse(s, out);
    if (rc == CURLUE_OK)
        return 0;
    if (rc == CURLUE_BAD_SCHEME)
        return err_set(e, ERR_INVALID, "not a URL (scheme://host...)");
    if (rc == CURLUE_NO_HOST)
        return err_set(e, ERR_INVALID, "URL without a host");
    return err_set(e, ERR_INVALID, "malformed URL: %s", curl_url_strerror(rc));
}

void url_free(struct url *u)
{
    free(u->scheme);
    free(u->host);
    free(u->hostport);
    free(u->path);
    free(u->query);
    memset(u, 0, sizeof *u);
}

static int ipv4_loopback(const unsigned char a[4])
{
    return a[0] == 127 || (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0);
}

/* u->host as curl normalised it. */
static int parsed_host_loopback(const struct url *u)
{
    unsigned char a[16];
    if (u->ipv6) {
        static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
        if (inet_pton(AF_INET6, u->host, a) != 1)
            return 0;
        int zero15 = 1;
        for (int i = 0; i < 15; i++)
            zero15 &= a[i] == 0;
        return (zero15 && a[15] <= 1) || (memcmp(a, mapped, 12) == 0 && ipv4_loopback(a + 12));
    }
    if (inet_pton(AF_INET, u->host, a) == 1)
        return ipv4_loopback(a);
    /* Names: one final dot is the same name, rooted. */
    size_t n = strlen(u->host);
    if (n && u->host[n - 1] == '.')
        n--;
    return (n == 9 && strncmp(u->host, "localhost", 9) == 0) ||
           (n > 10 && strncmp(u->host + n - 10, ".localhost", 10) == 0);
}

int url_host_is_loopback(const char *host)
{
    if (!host || !*host || strpbrk(host, "/?#@\\ \t\r\n"))
        return 0;
    /* Through curl's parser, so that every spelling it accepts is normalised the same way. */
    int bare_v6 = host[0] != '[' && strchr(host, ':');
    char *text = xasprintf("http://%s%s%s/", bare_v6 ? "[" : "", host, bare_v6 ? "]" : "");
    struct url u;
    int r = parse(text, &u) == CURLUE_OK && parsed_host_loopback(&u);
    url_free(&u);
    free(text);
    return r;
}

int url_is_loopback(const char *s)
{
    struct url u;
    if (parse(s, &u) != CURLUE_OK)
        return 0;
    int r = (strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0) && parsed_host_loopback(&u);
    url_free(&u);
    return r;
}

int url_endpoint(const char *what, const char *s, const char *const *schemes, struct url *out,
                 struct err *e)
{
    memset(out, 0, sizeof *out);
    int known = 0;
    struct buf list = { 0 };
    for (int i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        known |= strncasecmp(s, schemes[i], n) == 0 && strncmp(s + n, "://", 3) == 0;
        buf_appendf(&list, "%s%s://", i == 0 ? "" : schemes[i + 1] ? ", " : " or ", schemes[i]);
    }
    if (!known) {
        int rc = err_set(e, ERR_INVALID, "%s \"%s\" must start with %s", what, s, list.data ? list.data : "");
        buf_free(&list);
        return rc;
    }
    buf_free(&list);
    CURLUcode rc = parse(s, out);
    if (rc == CURLUE_NO_HOST || rc == CURLUE_USER_NOT_ALLOWED)
        return err_set(e, ERR_INVALID, "%s \"%s\" needs a host (and no user name)", what, s);
    if (rc != CURLUE_OK)
        return err_set(e, ERR_INVALID, "%s \"%s\" is not a valid URL: %s", what, s, curl_url_strerror(rc));
    const char *reason = NULL;
    if (strspn(out->path, "/") != strlen(out->path) || out->query || out->has_fragment)
        reason = "must not have a path";
    else if (out->has_userinfo)
        reason = "needs a host (and no user name)";
    if (reason) {
        url_free(out);
        return err_set(e, ERR_INVALID, "%s \"%s\" %s", what, s, reason);
    }
    return 0;
}
