#include "sigv4.h"

#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *sigv4_encode(const char *s, int encode_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b = { 0 };
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || (*p == '/' && !encode_slash)) {
            buf_append(&b, p, 1);
        } else {
            char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            buf_append(&b, esc, 3);
        }
    }
    if (!b.data)
        buf_append(&b, "", 0);
    return b.data;
}

struct qparam {
    char *name, *value; /* encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes then re-encodes one component, so that whatever escaping the caller used, the
 * canonical form is AWS's. */
static int recode(const char *s, size_t n, char **out)
{
    char *raw = xstrndup(s, n), *dec;
    int rc = uri_decode(raw, &dec);
    free(raw);
    if (rc < 0)
        return -1;
    *out = sigv4_encode(dec, 1);
    free(dec);
    return 0;
}

char *sigv4_canonical_query(const char *query)
{
    if (!query || !*query)
        return xstrdup("");
    size_t cap = 1;
    for (const char *p = query; *p; p++)
        cap += *p == '&';
    struct qparam *ps = xcalloc(cap, sizeof *ps);
    size_t n = 0;
    int bad = 0;
    for (const char *p = query; *p && !bad;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nl = eq ? (size_t)(eq - p) : len;
            if (recode(p, nl, &ps[n].name) < 0 || recode(eq ? eq + 1 : "", eq ? len - nl - 1 : 0, &ps[n].value) < 0)
                bad = 1;
            n++;
        }
        p += len + (amp ? 1 : 0);
    }
    struct buf b = { 0 };
    if (!bad) {
        qsort(ps, n, sizeof *ps, qparam_cmp);
        for (size_t i = 0; i < n; i++)
            buf_appendf(&b, "%s%s=%s", i ? "&" : "", ps[i].name, ps[i].value);
        if (!b.data)
            buf_append(&b, "", 0);
    }
    for (size_t i = 0; i < n; i++) {
        free(ps[i].name);
        free(ps[i].value);
    }
    free(ps);
    return b.data;
}

void sigv4_amz_date(time_t when, char out[17])
{
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void sigv4_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    hex_encode(md, 32, out);
}

void sigv4_sha256_base64(const void *data, size_t n, char out[45])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, 32);
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len);
}

/* The signing key chain: HMAC("AWS4" + secret, date) -> region -> service -> "aws4_request". */
static void signature(const char *secret, const char *date, const char *region, const char *service,
                      const char *string_to_sign, char out[65])
{
    unsigned char k[32];
    char *first = xasprintf("AWS4%s", secret);
    hmac(first, strlen(first), date, k);
    OPENSSL_cleanse(first, strlen(first));
    free(first);
    hmac(k, 32, region, k);
    hmac(k, 32, service, k);
    hmac(k, 32, "aws4_request", k);
    unsigned char sig[32];
    hmac(k, 32, string_to_sign, sig);
    OPENSSL_cleanse(k, sizeof k);
    hex_encode(sig, 32, out);
}

struct chdr {
    char *name;
    const char *value;
};

/* Trimall: no leading or trailing spaces, inner runs of spaces squeezed to one. */
static void append_trimmed(struct buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int pending_space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = 1;
            continue;
        }
        if (pending_space)
            buf_append(b, " ", 1);
        pending_space = 0;
        buf_append(b, v, 1);
    }
}

static char *string_to_sign(const char *amz_date, const char *scope, const char *canonical_request)
{
    char hash[65];
    sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
    return xasprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, hash);
}

int sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out)
{
    memset(out, 0, sizeof *out);
    char *query = sigv4_canonical_query(in->query);
    if (!query)
        return -1;
    sigv4_amz_date(in->when, out->amz_date);

    struct chdr *h = xcalloc(in->n_headers ? in->n_headers : 1, sizeof *h);
    for (size_t i = 0; i < in->n_headers; i++) {
        h[i].name = xstrdup(in->headers[i].name);
        for (char *c = h[i].name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        h[i].value = in->headers[i].value;
    }
    /* An insertion sort, because it is stable: a repeated header's values are joined in the
     * order they were given. */
    for (size_t i = 1; i < in->n_headers; i++)
        for (size_t j = i; j > 0 && strcmp(h[j - 1].name, h[j].name) > 0; j--) {
            struct chdr t = h[j - 1];
            h[j - 1] = h[j];
            h[j] = t;
        }
    struct buf canon = { 0 }, names = { 0 };
    buf_appendf(&canon, "%s\n%s\n%s\n", in->method, in->path, query);
    for (size_t i = 0; i < in->n_headers; i++) {
        if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
            /* A repeated header: values joined with commas on one line. */
            canon.len--; /* drop the '\n' */
            buf_append(&canon, ",", 1);
        } else {
            buf_appendf(&canon, "%s:", h[i].name);
            buf_appendf(&names, "%s%s", names.len ? ";" : "", h[i].name);
        }
        append_trimmed(&canon, h[i].value);
        buf_append(&canon, "\n", 1);
    }
    if (!names.data)
        buf_append(&names, "", 0);
    buf_appendf(&canon, "\n%s\n%s", names.data, in->payload_hash);

    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    char *scope = xasprintf("%s/%s/%s/aws4_request", date, in->region, in->service);
    out->canonical_request = canon.data;
    out->string_to_sign = string_to_sign(out->amz_date, scope, canon.data);
    signature(in->secret_key, date, in->region, in->service, out->string_to_sign, out->signature);
    out->signed_headers = names.data;
    out->authorization = xasprintf("AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s", in->access_key,
                                   scope, names.data, out->signature);
    free(scope);
    for (size_t i = 0; i < in->n_headers; i++)
        free(h[i].name);
    free(h);
    free(query);
    return 0;
}

void sigv4_output_free(struct sigv4_output *out)
{
    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->signed_headers);
    free(out->authorization);
    memset(out, 0, sizeof *out);
}

char *sigv4_presign(const char *base, const char *host, const char *method, const char *path, const char *query,
                    const char *access_key, const char *secret_key, const char *session_token, const char *region,
                    const char *service, time_t when, long expires_s)
{
    char amz_date[17], date[9];
    sigv4_amz_date(when, amz_date);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    char *credential = xasprintf("%s/%s/%s/%s/aws4_request", access_key, date, region, service);
    char *cred_enc = sigv4_encode(credential, 1);
    struct buf q = { 0 };
    if (query && *query)
        buf_appendf(&q, "%s&", query);
    buf_appendf(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s&X-Amz-Expires=%ld", cred_enc,
                amz_date, expires_s);
    if (session_token && *session_token) {
        char *tok = sigv4_encode(session_token, 1);
        buf_appendf(&q, "&X-Amz-Security-Token=%s", tok);
        free(tok);
    }
    buf_append(&q, "&X-Amz-SignedHeaders=host", 25);
    char *canon_query = sigv4_canonical_query(q.data);
    buf_free(&q);
    char *url = NULL;
    if (canon_query) {
        char *canon = xasprintf("%s\n%s\n%s\nhost:%s\n\nhost\n%s", method, path, canon_query, host,
                                SIGV4_UNSIGNED_PAYLOAD);
        char *scope = xasprintf("%s/%s/%s/aws4_request", date, region, service);
        char *sts = string_to_sign(amz_date, scope, canon);
        char sig[65];
        signature(secret_key, date, region, service, sts, sig);
        url = xasprintf("%s%s?%s&X-Amz-Signature=%s", base, path, canon_query, sig);
        free(sts);
        free(scope);
        free(canon);
        free(canon_query);
    }
    free(cred_enc);
    free(credential);
    return url;
}
