/* Network URLs taken apart by libcurl's own parser (curl_url), so that what stepop checks about a
 * URL (its host, port, whether it is on this machine's loopback) is what libcurl will connect to:
 * the host as curl normalises it (127.1, 0x7f000001 and 2130706433 are all 127.0.0.1). */
#ifndef STEPOP_URL_H
#define STEPOP_URL_H

#include "err.h"

struct url {
    char *scheme;     /* lower-case */
    char *host;       /* lower-case; an IPv6 literal without brackets or zone ("::1") */
    int ipv6;         /* host is an IPv6 literal */
    char *hostport;   /* host as written in a URL again ("[::1]"), with ":port" when one was given */
    long port;        /* as given, 0 when none */
    long port_or_default; /* port, else the scheme's (80, 443), else 0 */
    char *path;       /* as given, not decoded; "/" when empty */
    char *query;      /* without '?', NULL when none */
    int has_fragment;
    int has_userinfo; /* a user name or password, even empty ("http://@host/") */
};

/* Parses "scheme://authority[/path][?query][#fragment]"; any scheme, but an authority with a host
 * is required (curl's leniencies "http:/h" and "http:///h" are refused). Returns -1 with e set
 * (ERR_INVALID; the URL is not quoted, it may hold a password). out is zeroed first and owns its
 * strings: url_free. */
int url_parse(const char *s, struct url *out, struct err *e);
void url_free(struct url *u);

/* The host is this machine: localhost and *.localhost (libcurl resolves those to loopback itself),
 * with or without a final dot, any case; 127.0.0.0/8 and 0.0.0.0 in any spelling libcurl
 * normalises; ::1, :: and IPv4-mapped forms of those (::ffff:127.0.0.1), bracketed or not. */
int url_host_is_loopback(const char *host);
/* An http or https URL whose host is loopback. Other schemes answer 0: the "host" of s3://bucket
 * or gs://bucket is a bucket name, not a machine. */
int url_is_loopback(const char *url);

/* An endpoint: one of schemes (NULL-terminated, lower-case, e.g. "http", "https") followed by a
 * host and optional port, with no user info, nothing but slashes for a path, no query or
 * fragment. what names the setting in messages, which quote the value:
 *   WHAT "VALUE" must start with http:// or https://
 *   WHAT "VALUE" needs a host (and no user name)
 *   WHAT "VALUE" must not have a path
 *   WHAT "VALUE" is not a valid URL: <libcurl's reason>
 * Returns -1 with e set (ERR_INVALID). */
int url_endpoint(const char *what, const char *s, const char *const *schemes, struct url *out,
                 struct err *e);

#endif
