/* runtime/url.c: URLs through curl_url(), the loopback rule, endpoints. */
#include "../../runtime/url.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdlib.h>

static void check_parse(const char *s, const char *scheme, const char *host, int ipv6, const char *hostport,
                        long port, long port_or_default, const char *path, const char *query, int userinfo)
{
    struct url u;
    struct err e = { 0 };
    int rc = url_parse(s, &u, &e);
    ok(rc == 0, "%s parses%s%s", s, rc ? ": " : "", rc ? e.msg : "");
    if (rc < 0)
        return;
    is_str(u.scheme, scheme, "%s: scheme", s);
    is_str(u.host, host, "%s: host", s);
    is_int(u.ipv6, ipv6, "%s: ipv6", s);
    is_str(u.hostport, hostport, "%s: hostport", s);
    is_int(u.port, port, "%s: port", s);
    is_int(u.port_or_default, port_or_default, "%s: port or default", s);
    is_str(u.path, path, "%s: path", s);
    is_str(u.query, query, "%s: query", s);
    is_int(u.has_userinfo, userinfo, "%s: user info", s);
    url_free(&u);
}

static void check_malformed(const char *s, const char *want)
{
    struct url u;
    struct err e = { 0 };
    int rc = url_parse(s, &u, &e);
    ok(rc < 0 && e.kind == ERR_INVALID && strstr(e.msg, want), "\"%s\" is refused (%s)", s, rc < 0 ? e.msg : "parsed");
    if (rc == 0)
        url_free(&u);
    ok(!u.scheme && !u.host && !u.hostport && !u.path, "\"%s\": nothing left allocated", s);
}

static void check_endpoint(const char *s, const char *want_err, const char *want_hostport)
{
    static const char *const web[] = { "http", "https", NULL };
    struct url u;
    struct err e = { 0 };
    int rc = url_endpoint("AWS_ENDPOINT_URL[_S3]", s, web, &u, &e);
    if (want_err) {
        ok(rc < 0 && e.kind == ERR_INVALID, "endpoint \"%s\" refused", s);
        is_str(e.msg, want_err, "endpoint \"%s\": message", s);
        ok(!u.host && !u.hostport, "endpoint \"%s\": nothing left allocated", s);
    } else {
        ok(rc == 0, "endpoint \"%s\" accepted%s%s", s, rc ? ": " : "", rc ? e.msg : "");
        if (rc == 0) {
            is_str(u.hostport, want_hostport, "endpoint \"%s\": host and port", s);
            url_free(&u);
        }
    }
}

int main(void)
{
    check_parse("http://example.com", "http", "example.com", 0, "example.com", 0, 80, "/", NULL, 0);
    check_parse("HTTPS://ExAmple.COM:8443/a/B?x=1&y", "https", "example.com", 0, "example.com:8443", 8443, 8443,
                "/a/B", "x=1&y", 0);
    check_parse("http://h:80/", "http", "h", 0, "h:80", 80, 80, "/", NULL, 0);
    check_parse("http://h:/", "http", "h", 0, "h", 0, 80, "/", NULL, 0);
    check_parse("http://[::1]:9000/p", "http", "::1", 1, "[::1]:9000", 9000, 9000, "/p", NULL, 0);
    check_parse("http://[0:0:0:0:0:0:0:1]/", "http", "::1", 1, "[::1]", 0, 80, "/", NULL, 0);
    check_parse("http://[FD00:EC2::23]/", "http", "fd00:ec2::23", 1, "[fd00:ec2::23]", 0, 80, "/", NULL, 0);
    check_parse("http://[fe80::1%25eth0]:8/", "http", "fe80::1", 1, "[fe80::1%25eth0]:8", 8, 8, "/", NULL, 0);
    check_parse("http://user:pw@h/k", "http", "h", 0, "h", 0, 80, "/k", NULL, 1);
    check_parse("http://@h/", "http", "h", 0, "h", 0, 80, "/", NULL, 1);
    check_parse("http://:pw@h/", "http", "h", 0, "h", 0, 80, "/", NULL, 1);
    check_parse("http://h/a/../b/./c%20d", "http", "h", 0, "h", 0, 80, "/a/../b/./c%20d", NULL, 0);
    check_parse("http://h?", "http", "h", 0, "h", 0, 80, "/", "", 0);
    check_parse("http://127.1/", "http", "127.0.0.1", 0, "127.0.0.1", 0, 80, "/", NULL, 0);
    check_parse("http://0x7f000001:1/", "http", "127.0.0.1", 0, "127.0.0.1:1", 1, 1, "/", NULL, 0);
    check_parse("tcp://docker.example:2375", "tcp", "docker.example", 0, "docker.example:2375", 2375, 2375, "/",
                NULL, 0);
    check_parse("s3://bucket/key/x", "s3", "bucket", 0, "bucket", 0, 0, "/key/x", NULL, 0);
    check_parse("http://h_x.y/", "http", "h_x.y", 0, "h_x.y", 0, 80, "/", NULL, 0);

    struct url u;
    struct err e = { 0 };
    ok(url_parse("http://h/#frag", &u, &e) == 0 && u.has_fragment, "a fragment is seen");
    url_free(&u);
    ok(url_parse("http://h/#", &u, &e) == 0 && u.has_fragment, "an empty fragment is seen");
    url_free(&u);
    ok(url_parse("http://h/", &u, &e) == 0 && !u.has_fragment, "no fragment");
    url_free(&u);

    check_malformed("", "not a URL");
    check_malformed("example.com", "not a URL");
    check_malformed("h:80", "not a URL");
    check_malformed("/tmp/x", "not a URL");
    check_malformed("http:/x", "not a URL");
    check_malformed("http://", "without a host");
    check_malformed("http:///x", "without a host");
    check_malformed("http://?q", "without a host");
    check_malformed("http://a b/", "malformed URL");
    check_malformed("http://h:99999/", "malformed URL");
    check_malformed("http://h:abc/", "malformed URL");
    check_malformed("http://h:-1/", "malformed URL");
    check_malformed("http://[::1/", "malformed URL");
    check_malformed("http://[::g]/", "malformed URL");
    check_malformed("http://a%25b/", "malformed URL");
    /* Percent-encoded host names: curl would decode them after normalising IPv4 numbers (fuzz_url). */
    check_malformed("http://%32130706433/", "malformed URL");
    check_malformed("D://%36050", "malformed URL");
    check_malformed("http://user@%6cocalhost:80/", "malformed URL");
    check_malformed("https://u@[::f%@[::0.1]:84/", "malformed URL");
    check_malformed("http://user:secret@[::1/", "malformed URL");
    ok(!strstr(e.msg, "secret"), "a password is not repeated in the message");

    /* The loopback table, as hosts and in URLs. */
    static const struct {
        const char *host;
        int loop;
    } hosts[] = {
        { "127.0.0.1", 1 }, { "127.1", 1 }, { "127.255.255.254", 1 }, { "0x7f000001", 1 }, { "2130706433", 1 },
        { "0177.0.0.1", 1 }, { "127.0.0.1.", 0 }, { "localhost", 1 }, { "localhost.", 1 }, { "LOCALHOST", 1 },
        { "LocalHost.", 1 }, { "foo.localhost", 1 }, { "[::1]", 1 }, { "::1", 1 }, { "[0:0:0:0:0:0:0:1]", 1 },
        { "[::ffff:127.0.0.1]", 1 }, { "[::FFFF:127.0.0.2]", 1 }, { "[::ffff:7f00:1]", 1 }, { "0.0.0.0", 1 },
        { "0", 1 }, { "[::]", 1 }, { "127.example.com", 0 }, { "localhost.example.com", 0 }, { "localhost..", 0 },
        { "notlocalhost", 0 }, { "10.0.0.1", 0 }, { "128.0.0.1", 0 }, { "126.255.255.255", 0 }, { "[::2]", 0 },
        { "[::ffff:10.0.0.1]", 0 }, { "[::127.0.0.1]", 0 }, { "[fe80::1]", 0 }, { "169.254.170.2", 0 },
        { "", 0 }, { "127.0.0.1/x", 0 }, { "127.0.0.1@evil.example", 0 }, { "evil.example/127.0.0.1", 0 },
        { "a b", 0 },
    };
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        is_int(url_host_is_loopback(hosts[i].host), hosts[i].loop, "host \"%s\" %s loopback", hosts[i].host,
               hosts[i].loop ? "is" : "is not");
        if (!hosts[i].host[0] || strpbrk(hosts[i].host, "/@ "))
            continue;
        int bare_v6 = hosts[i].host[0] != '[' && strchr(hosts[i].host, ':');
        char *url = xasprintf("http://%s%s%s:9000/bucket/k", bare_v6 ? "[" : "", hosts[i].host, bare_v6 ? "]" : "");
        is_int(url_is_loopback(url), hosts[i].loop, "%s %s loopback", url, hosts[i].loop ? "is" : "is not");
        free(url);
    }
    ok(url_host_is_loopback(NULL) == 0, "no host is no loopback");
    ok(url_is_loopback("https://user:pw@127.0.0.1/x?y#z"), "user info, query and fragment do not hide the host");
    ok(!url_is_loopback("http://evil.example/?u=http://127.0.0.1/"), "a loopback URL in the query is not the host");
    ok(!url_is_loopback("http://127.0.0.1@evil.example/"), "loopback as a user name is not the host");
    ok(!url_is_loopback("s3://localhost/key"), "s3://localhost names a bucket, not a machine");
    ok(!url_is_loopback("file:///tmp/x"), "a file URI is not loopback");
    ok(!url_is_loopback("127.0.0.1:9000"), "no scheme, no URL");
    ok(!url_is_loopback("http://[::1/"), "a malformed URL is not loopback");

    /* Endpoints: the texts store_s3.c's AWS_ENDPOINT_URL check has always printed. */
    check_endpoint("http://localhost:9000", NULL, "localhost:9000");
    check_endpoint("https://s3.example.com/", NULL, "s3.example.com");
    check_endpoint("http://[::1]:9000//", NULL, "[::1]:9000");
    check_endpoint("HTTP://Minio:9000", NULL, "minio:9000");
    check_endpoint("ftp://h", "AWS_ENDPOINT_URL[_S3] \"ftp://h\" must start with http:// or https://", NULL);
    check_endpoint("localhost:9000", "AWS_ENDPOINT_URL[_S3] \"localhost:9000\" must start with http:// or https://",
                   NULL);
    check_endpoint("httpx://h", "AWS_ENDPOINT_URL[_S3] \"httpx://h\" must start with http:// or https://", NULL);
    check_endpoint("http://h/bucket", "AWS_ENDPOINT_URL[_S3] \"http://h/bucket\" must not have a path", NULL);
    check_endpoint("http://h:9000?x=1", "AWS_ENDPOINT_URL[_S3] \"http://h:9000?x=1\" must not have a path", NULL);
    check_endpoint("http://h?", "AWS_ENDPOINT_URL[_S3] \"http://h?\" must not have a path", NULL);
    check_endpoint("http://h#", "AWS_ENDPOINT_URL[_S3] \"http://h#\" must not have a path", NULL);
    check_endpoint("http://h/./", "AWS_ENDPOINT_URL[_S3] \"http://h/./\" must not have a path", NULL);
    check_endpoint("http://", "AWS_ENDPOINT_URL[_S3] \"http://\" needs a host (and no user name)", NULL);
    check_endpoint("http:///bucket", "AWS_ENDPOINT_URL[_S3] \"http:///bucket\" needs a host (and no user name)", NULL);
    check_endpoint("http://key@h", "AWS_ENDPOINT_URL[_S3] \"http://key@h\" needs a host (and no user name)", NULL);
    check_endpoint("http://@h", "AWS_ENDPOINT_URL[_S3] \"http://@h\" needs a host (and no user name)", NULL);
    check_endpoint("http://h:70000",
                   "AWS_ENDPOINT_URL[_S3] \"http://h:70000\" is not a valid URL: Port number was not a decimal "
                   "number between 0 and 65535",
                   NULL);
    static const char *const tcp[] = { "tcp", NULL };
    ok(url_endpoint("DOCKER_HOST", "unix:///run/d.sock", tcp, &u, &e) < 0 &&
           strcmp(e.msg, "DOCKER_HOST \"unix:///run/d.sock\" must start with tcp://") == 0,
       "one scheme in the message: %s", e.msg);
    static const char *const three[] = { "a", "b", "c", NULL };
    ok(url_endpoint("X", "d://h", three, &u, &e) < 0 && strcmp(e.msg, "X \"d://h\" must start with a://, b:// or c://") == 0,
       "three schemes in the message: %s", e.msg);
    ok(url_endpoint("DOCKER_HOST", "tcp://10.0.0.5:2375", tcp, &u, &e) == 0 && strcmp(u.hostport, "10.0.0.5:2375") == 0,
       "a tcp:// endpoint");
    url_free(&u);
    return tap_done();
}
