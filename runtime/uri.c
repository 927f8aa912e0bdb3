#include "uri.h"

#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int uri_scheme(const char *uri, char *out, size_t len)
{
    size_t i = 0;
    if (!isalpha((unsigned char)uri[0]))
        return -1;
    while (uri[i] && (isalnum((unsigned char)uri[i]) || uri[i] == '+' || uri[i] == '-' || uri[i] == '.'))
        i++;
    if (uri[i] != ':' || uri[i + 1] != '/' || uri[i + 2] != '/' || i + 1 > len)
        return -1;
    for (size_t j = 0; j < i; j++)
        out[j] = (char)tolower((unsigned char)uri[j]);
    out[i] = '\0';
    return 0;
}

char *uri_encode(const char *s, const char *keep)
{
    struct buf b = { 0 };
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep && strchr(keep, *p)))
            buf_append(&b, p, 1);
        else
            buf_appendf(&b, "%%%02X", *p);
    }
    if (!b.data)
        buf_append(&b, "", 0);
    return b.data;
}

int uri_decode(const char *s, char **out)
{
    size_t n = strlen(s);
    char *r = xmalloc(n + 1), *w = r;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *w++ = s[i];
            continue;
        }
        if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) {
            free(r);
            return -1;
        }
        char hex[3] = { s[i + 1], s[i + 2], 0 };
        char c = (char)strtol(hex, NULL, 16);
        if (!c) {
            free(r);
            return -1;
        }
        *w++ = c;
        i += 2;
    }
    *w = '\0';
    *out = r;
    return 0;
}

char *uri_from_arg(const char *arg)
{
    char scheme[16];
    if (uri_scheme(arg, scheme, sizeof scheme) == 0)
        return xstrdup(arg);
    char *abs;
    if (arg[0] == '/') {
        abs = xstrdup(arg);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return xasprintf("file://%s", arg);
        abs = xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, arg);
    }
    char *enc = uri_encode(abs, "/");
    char *r = xasprintf("file://%s", enc);
    free(abs);
    free(enc);
    return r;
}

int uri_file_path(const char *uri, char **path, struct err *e)
{
    if (strncasecmp(uri, "file://", 7) != 0)
        return err_set(e, ERR_INVALID, "not a file:// URI: %s", uri);
    const char *p = uri + 7;
    /* file://localhost/path is the same as file:///path; other hosts are not local. */
    if (strncasecmp(p, "localhost/", 10) == 0)
        p += 9;
    if (*p != '/')
        return err_set(e, ERR_INVALID, "file URI must have an absolute path (file:///...): %s", uri);
    if (strchr(p, '?') || strchr(p, '#'))
        return err_set(e, ERR_INVALID, "file URI must not have a query or fragment (encode ? as %%3F): %s", uri);
    if (uri_decode(p, path) < 0)
        return err_set(e, ERR_INVALID, "malformed percent-encoding in %s", uri);
    return 0;
}

char *uri_join(const char *prefix, const char *name)
{
    size_t n = strlen(prefix);
    while (*name == '/')
        name++;
    if (n && prefix[n - 1] == '/')
        return xasprintf("%s%s", prefix, name);
    return xasprintf("%s/%s", prefix, name);
}

/* Appends uri's scheme and "://" to b, with its userinfo as "***@", and returns where the rest
 * starts (uri itself when it does not start with a scheme: a "://" later on, in a path or a
 * query, must not carry what precedes it past the redaction). The authority ends at the first of
 * auth_end; the userinfo at its last '@', so a password holding a raw '@' is hidden whole,
 * whichever '@' a client takes for the end of the userinfo. */
static const char *redact_userinfo(struct buf *b, const char *uri, const char *auth_end)
{
    const char *sep = uri;
    if (isalpha((unsigned char)*sep))
        while (isalnum((unsigned char)*sep) || *sep == '+' || *sep == '-' || *sep == '.')
            sep++;
    if (sep == uri || strncmp(sep, "://", 3) != 0)
        return uri;
    buf_append(b, uri, (size_t)(sep + 3 - uri));
    const char *rest = sep + 3, *at = NULL;
    size_t auth_len = strcspn(rest, auth_end);
    for (const char *p = rest; p < rest + auth_len; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return rest;
    buf_append(b, "***@", 4);
    return at + 1;
}

void uri_redact(const char *uri, char *out, size_t len)
{
    if (!len)
        return;
    struct buf b = { 0 };
    const char *rest = redact_userinfo(&b, uri, "/");
    const char *q = strpbrk(rest, "?#");
    if (q) {
        buf_append(&b, rest, (size_t)(q - rest));
        if (*q == '?')
            buf_append(&b, "?...", 4);
    } else {
        buf_append(&b, rest, strlen(rest));
    }
    snprintf(out, len, "%s", b.data ? b.data : "");
    buf_free(&b);
}

/* Query parameters that authorize the request by themselves: presigned S3 (SigV4 and V2) and
 * GCS URLs, Azure SAS, OAuth tokens in the query. */
static int uri_secret_param(const char *name, size_t n)
{
    static const char *const secret[] = { "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential",
                                          "X-Goog-Signature", "X-Goog-Credential", "Signature", "sig",
                                          "access_token", NULL };
    for (int i = 0; secret[i]; i++)
        if (strlen(secret[i]) == n && strncasecmp(name, secret[i], n) == 0)
            return 1;
    return 0;
}

char *uri_redact_secrets(const char *uri)
{
    struct buf b = { 0 };
    const char *rest = redact_userinfo(&b, uri, "/?#");
    const char *q = strchr(rest, '?');
    const char *frag = strchr(rest, '#');
    if (frag && q && frag < q)
        q = NULL;
    if (!q) {
        buf_append(&b, rest, strlen(rest));
        buf_append(&b, "", 0);
        return b.data;
    }
    buf_append(&b, rest, (size_t)(q + 1 - rest));
    const char *end = frag ? frag : q + strlen(q);
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t name_len = (size_t)((eq ? eq : stop) - p);
        if (uri_secret_param(p, name_len)) {
            buf_append(&b, p, name_len);
            buf_append(&b, "=REDACTED", 9);
        } else {
            buf_append(&b, p, (size_t)(stop - p));
        }
        if (amp)
            buf_append(&b, "&", 1);
        p = amp ? amp + 1 : end;
    }
    buf_append(&b, end, strlen(end));
    return b.data;
}

char *uri_basename(const char *uri)
{
    const char *end = strpbrk(uri, "?#");
    size_t n = end ? (size_t)(end - uri) : strlen(uri);
    while (n > 0 && uri[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && uri[start - 1] != '/')
        start--;
    return xstrndup(uri + start, n - start);
}
