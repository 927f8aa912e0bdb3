#include "sign.h"

#include "creds.h"
#include "sigv4.h"

#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Seconds to add to our clock, learnt from a server that answered RequestTimeTooSkewed. Shared by
 * every thread, request and service. */
static atomic_long clock_skew;

static time_t base_now(time_t fixed_now)
{
    return fixed_now ? fixed_now : time(NULL);
}

time_t aws_sign_time(time_t fixed_now)
{
    return base_now(fixed_now) + (time_t)atomic_load(&clock_skew);
}

int aws_sign_skewed(const struct aws_sign *s, const struct http_response *r, const char *who)
{
    const char *date = http_header(r, "date");
    time_t server = date ? curl_getdate(date, NULL) : -1;
    if (server <= 0)
        return 0;
    long skew = (long)(server - base_now(s->fixed_now));
    atomic_store(&clock_skew, skew);
    log_warn("the clock differs from the %s server's by %lds; signing with the server's time", who, skew);
    return 1;
}

int aws_sign_expired(struct aws_sign *s)
{
    int again = !s->refreshed;
    s->refreshed = s->refresh_creds = 1;
    return again;
}

int aws_sign_hook(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e)
{
    struct aws_sign *k = ctx;
    struct aws_credentials cr;
    if (aws_credentials_get(&cr, k->refresh_creds, e) < 0)
        return -1;
    k->refresh_creds = 0;
    char amz_date[17];
    time_t when = aws_sign_time(k->fixed_now);
    sigv4_amz_date(when, amz_date);

    struct sigv4_header h[32];
    char *names[32];
    size_t n = 0, nn = 0;
    h[n++] = (struct sigv4_header){ "host", k->host };
    h[n++] = (struct sigv4_header){ "x-amz-date", amz_date };
    h[n++] = (struct sigv4_header){ "x-amz-content-sha256", k->payload_hash };
    if (cr.session_token)
        h[n++] = (struct sigv4_header){ "x-amz-security-token", cr.session_token };
    for (struct curl_slist *l = *headers; l && n < 32; l = l->next) {
        const char *colon = strchr(l->data, ':');
        if (!colon || colon[1] == '\0')
            continue; /* "Expect:" removes a header */
        size_t nl = (size_t)(colon - l->data);
        if (strncasecmp(l->data, "x-amz-", 6) == 0 || (nl == 12 && !strncasecmp(l->data, "content-type", 12)) ||
            (nl == 11 && !strncasecmp(l->data, "content-md5", 11))) {
            names[nn] = xstrndup(l->data, nl);
            h[n++] = (struct sigv4_header){ names[nn++], colon + 1 };
        }
    }
    struct sigv4_input in = { .method = req->method ? req->method : "GET", .path = k->path, .query = k->query,
                              .headers = h, .n_headers = n, .payload_hash = k->payload_hash,
                              .access_key = cr.access_key, .secret_key = cr.secret_key, .region = k->region,
                              .service = k->service, .when = when };
    struct sigv4_output out;
    int rc = sigv4_sign(&in, &out);
    if (rc < 0) {
        err_set(e, ERR_INTERNAL, "cannot sign a request with a malformed query");
    } else {
        char *lines[] = { xasprintf("Host: %s", k->host), xasprintf("x-amz-date: %s", amz_date),
                          xasprintf("x-amz-content-sha256: %s", k->payload_hash),
                          cr.session_token ? xasprintf("x-amz-security-token: %s", cr.session_token) : NULL,
                          xasprintf("Authorization: %s", out.authorization) };
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
            if (!lines[i])
                continue;
            struct curl_slist *l = curl_slist_append(*headers, lines[i]);
            free(lines[i]);
            if (!l)
                abort();
            *headers = l;
        }
        sigv4_output_free(&out);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    aws_credentials_free(&cr);
    return rc;
}
