#include "http.h"

#include "log.h"
#include "timeutil.h"
#include "units.h"
#include "uri.h"
#include "url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static struct http_config config = {
    .max_attempts = 5,
    .retry_base_ms = 250,
    .retry_max_ms = 20000,
    .retry_after_max_ms = 300000,
    .connect_timeout_ms = 10000,
    .stall_timeout_ms = 30000,
};
static volatile sig_atomic_t *cancel_flag;
static _Atomic int64_t cancel_deadline_ms;
static _Thread_local const atomic_int *thread_stop;

struct http_client {
    CURL *curl;
};

static int env_duration(const char *name, int64_t *out, struct err *e)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    if (units_parse_duration(v, out, e) < 0)
        return err_prefix(e, "%s: ", name);
    return 0;
}

/* Where distributions keep their CA bundle. libcurl looks only where it was built to look
 * (Debian's path, in both our builds); the static binary runs in any glibc image, so when that
 * file is missing the first of these that exists is used instead (docs/static.md). */
static const char *const system_ca_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Arch, Gentoo */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* RHEL, CentOS, Rocky, Fedora, Amazon Linux */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* the same family, the file that links to */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE, SLES */
    "/etc/ssl/cert.pem",                                 /* Alpine, Void */
};

/* NULL when libcurl's built-in bundle exists (or no other does). */
static const char *system_ca_bundle(void)
{
    CURL *h = curl_easy_init();
    char *builtin = NULL;
    int usable = 0;
    if (h && curl_easy_getinfo(h, CURLINFO_CAINFO, &builtin) == CURLE_OK && builtin)
        usable = access(builtin, R_OK) == 0;
    if (!usable)
        log_debug("libcurl's built-in CA bundle %s is missing", builtin ? builtin : "(none)");
    curl_easy_cleanup(h);
    if (usable)
        return NULL;
    for (size_t i = 0; i < sizeof system_ca_bundles / sizeof *system_ca_bundles; i++)
        if (access(system_ca_bundles[i], R_OK) == 0) {
            log_debug("using the system CA bundle %s", system_ca_bundles[i]);
            return system_ca_bundles[i];
        }
    return NULL;
}

int http_global_init(struct err *e)
{
    static int done;
    if (done)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return err_set(e, ERR_INTERNAL, "libcurl initialisation failed");
    const char *attempts = getenv("STEPOP_HTTP_ATTEMPTS");
    if (attempts && *attempts) {
        char *end;
        long n = strtol(attempts, &end, 10);
        if (*end || n < 1 || n > 100)
            return err_set(e, ERR_INVALID, "STEPOP_HTTP_ATTEMPTS: expected 1 to 100, got \"%s\"", attempts);
        config.max_attempts = (int)n;
    }
    if (env_duration("STEPOP_HTTP_RETRY_BASE", &config.retry_base_ms, e) < 0 ||
        env_duration("STEPOP_HTTP_RETRY_MAX", &config.retry_max_ms, e) < 0 ||
        env_duration("STEPOP_HTTP_CONNECT_TIMEOUT", &config.connect_timeout_ms, e) < 0 ||
        env_duration("STEPOP_HTTP_STALL_TIMEOUT", &config.stall_timeout_ms, e) < 0)
        return -1;
    config.ca_bundle = env_or("STEPOP_CA_BUNDLE", getenv("SSL_CERT_FILE"));
    if (config.ca_bundle && !*config.ca_bundle)
        config.ca_bundle = NULL;
    if (!config.ca_bundle)
        config.ca_bundle = system_ca_bundle();
    config.ca_dir = env_or("SSL_CERT_DIR", NULL);
    config.insecure = env_flag("STEPOP_TLS_INSECURE");
    if (config.insecure)
        log_warn("STEPOP_TLS_INSECURE is set: TLS certificates and host names are NOT verified");
    done = 1;
    return 0;
}

const struct http_config *http_config(void)
{
    return &config;
}

void http_set_cancel_flag(volatile sig_atomic_t *flag)
{
    cancel_flag = flag;
}

void http_set_cancel_deadline(int64_t deadline_ms)
{
    atomic_store(&cancel_deadline_ms, deadline_ms);
}

int http_cancelled(void)
{
    int64_t deadline = atomic_load(&cancel_deadline_ms);
    return (cancel_flag && *cancel_flag) || (deadline && time_mono_ms() >= deadline);
}

void http_set_thread_stop(const atomic_int *flag)
{
    thread_stop = flag;
}

static int thread_stopped(void)
{
    return thread_stop && atomic_load(thread_stop);
}

/* A thread with its own stop flag answers to it alone: the process-wide cancel (SIGTERM while
 * fetching, a phase's deadline) must not cut the status and log writes that report it. */
static int process_cancel_applies(int uncancellable)
{
    return !uncancellable && !thread_stop && http_cancelled();
}

/* Sleeps ms, returning 1 early when the process-wide cancel (unless uncancellable) or the
 * thread's stop flag is raised. */
static int retry_pause(int64_t ms, int uncancellable)
{
    for (int64_t end = time_mono_ms() + ms;;) {
        if (thread_stopped())
            return 1;
        int64_t left = end - time_mono_ms();
        if (left <= 0)
            return 0;
        if (process_cancel_applies(uncancellable))
            return 1;
        time_sleep_ms(left > 50 ? 50 : left, NULL);
    }
}

struct http_client *http_client_new(void)
{
    struct http_client *c = xcalloc(1, sizeof *c);
    c->curl = curl_easy_init();
    if (!c->curl)
        abort();
    return c;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

void http_response_free(struct http_response *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    buf_free(&r->body);
}

const char *http_header(const struct http_response *r, const char *name)
{
    size_t n = strlen(name);
    for (const struct curl_slist *h = r->headers; h; h = h->next)
        if (strncmp(h->data, name, n) == 0 && h->data[n] == ':')
            return h->data + n + 1 + (h->data[n + 1] == ' ');
    return NULL;
}

int http_retryable_curl_code(int code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        return 1;
    default:
        return 0;
    }
}

int http_retryable_status(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505);
}

int64_t http_backoff_ms(int attempt, int64_t retry_after_ms, const struct http_config *cfg, unsigned rnd)
{
    /* Exponential growth capped at retry_max, then "equal jitter": half fixed, half random,
     * so retries from many clients spread out but never collapse to zero. */
    int64_t d = cfg->retry_base_ms;
    for (int i = 1; i < attempt && d < cfg->retry_max_ms; i++)
        d *= 2;
    if (d > cfg->retry_max_ms)
        d = cfg->retry_max_ms;
    int64_t half = d / 2;
    d = half + (half > 0 ? (int64_t)(rnd % (unsigned)(half + 1)) : 0);
    if (retry_after_ms > d)
        d = retry_after_ms;
    return d;
}

int64_t http_parse_retry_after(const char *value, time_t now)
{
    while (*value == ' ')
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long secs = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        if (*end || secs < 0)
            return -1;
        return secs * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when < 0)
        return -1;
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}

/* State of one http_perform call, shared by the libcurl callbacks. */
struct xfer {
    CURL *curl;
    const struct http_request *req;
    struct http_response *resp;
    struct err *e;
    int consumer_failed;     /* on_data or body_read set e */
    size_t mem_offset;       /* in-memory body */
    int64_t body_sent;       /* body bytes handed to curl this attempt */
    int64_t skip;            /* bytes to drop: a resumed GET answered 200 from the start */
    int64_t resume_from;     /* bytes delivered by earlier attempts */
    int resume_checked;
    size_t max_body;
    char *tls_url;           /* the URL with the TLS server name for its host (libcurl's) */
    struct curl_slist *connect_to; /* ... and where the connection really goes */
};

static void xfer_release(struct xfer *x)
{
    curl_free(x->tls_url);
    x->tls_url = NULL;
    curl_slist_free_all(x->connect_to);
    x->connect_to = NULL;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or 100 Continue): forget the earlier headers. */
        curl_slist_free_all(x->resp->headers);
        x->resp->headers = NULL;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    const char *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char *line = xmalloc(name_len + 2 + (size_t)(end - v) + 1);
    for (size_t i = 0; i < name_len; i++)
        line[i] = (char)tolower((unsigned char)data[i]);
    line[name_len] = ':';
    line[name_len + 1] = ' ';
    memcpy(line + name_len + 2, v, (size_t)(end - v));
    line[name_len + 2 + (end - v)] = '\0';
    struct curl_slist *l = curl_slist_append(x->resp->headers, line);
    free(line);
    if (!l)
        return 0;
    x->resp->headers = l;
    return len;
}

/* After a resumed GET: the answer must continue exactly where the last one stopped. */
static int check_resumed(struct xfer *x, struct err *e)
{
    int64_t expect = x->req->range_start + x->resume_from;
    if (x->resp->status == 200) {
        /* The server ignored Range; drop what was delivered already. */
        x->skip = expect;
        return 0;
    }
    if (x->resp->status != 206)
        return 0;
    const char *cr = http_header(x->resp, "content-range");
    long long first;
    if (!cr || sscanf(cr, "bytes %lld-", &first) != 1 || first != expect)
        return err_set(e, ERR_INTEGRITY, "resumed download got Content-Range \"%s\", expected bytes from %lld",
                       cr ? cr : "(none)", (long long)expect);
    return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (!x->resp->status)
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->resp->status);
    int ok2xx = x->resp->status >= 200 && x->resp->status < 300;
    if (!ok2xx || !x->req->on_data) {
        size_t cap = ok2xx ? x->max_body : 64 * 1024;
        if (x->resp->body.len + len > cap) {
            if (ok2xx) {
                err_set(x->e, ERR_INVALID, "response body larger than %zu bytes", cap);
                x->consumer_failed = 1;
                return 0;
            }
            size_t room = cap > x->resp->body.len ? cap - x->resp->body.len : 0;
            buf_append(&x->resp->body, data, room);
            return len;
        }
        buf_append(&x->resp->body, data, len);
        return len;
    }
    if (x->resume_from > 0 && !x->resume_checked) {
        x->resume_checked = 1;
        if (check_resumed(x, x->e) < 0) {
            x->consumer_failed = 1;
            return 0;
        }
    }
    size_t off = 0;
    if (x->skip > 0) {
        off = (size_t)x->skip < len ? (size_t)x->skip : len;
        x->skip -= (int64_t)off;
    }
    if (off < len) {
        if (x->req->on_data(x->req->data_ctx, data + off, len - off, x->e) < 0) {
            x->consumer_failed = 1;
            return 0;
        }
        x->resp->delivered += (int64_t)(len - off);
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (x->req->body) {
        size_t left = x->req->body_len - x->mem_offset;
        if (len > left)
            len = left;
        memcpy(buf, (const char *)x->req->body + x->mem_offset, len);
        x->mem_offset += len;
        x->body_sent += (int64_t)len;
        return len;
    }
    ssize_t r = x->req->body_read(x->req->body_ctx, buf, len, x->e);
    if (r < 0) {
        x->consumer_failed = 1;
        return CURL_READFUNC_ABORT;
    }
    x->body_sent += r;
    return (size_t)r;
}

/* libcurl rewinds the body itself when it resends a request on a reused connection that turned
 * out dead; without this it fails with "rewinding of the data stream failed". */
static int on_seek(void *userp, curl_off_t offset, int origin)
{
    struct xfer *x = userp;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (x->req->body) {
        if ((size_t)offset > x->req->body_len)
            return CURL_SEEKFUNC_FAIL;
        x->mem_offset = (size_t)offset;
        x->body_sent = offset;
        return CURL_SEEKFUNC_OK;
    }
    if (offset != 0 || !x->req->body_rewind)
        return CURL_SEEKFUNC_CANTSEEK;
    if (x->req->body_rewind(x->req->body_ctx, x->e) < 0) {
        x->consumer_failed = 1;
        return CURL_SEEKFUNC_FAIL;
    }
    x->body_sent = 0;
    return CURL_SEEKFUNC_OK;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct xfer *x = userp;
    int cancelled = process_cancel_applies(x->req->uncancellable);
    int stopped = x->req->stop && __atomic_load_n(x->req->stop, __ATOMIC_RELAXED);
    return cancelled || stopped || thread_stopped() ? 1 : 0;
}

/* The status's error kind and a short text for messages. */
static enum err_kind status_kind(long status)
{
    if (status == 404 || status == 410)
        return ERR_NOT_FOUND;
    if (status == 401 || status == 403)
        return ERR_AUTH;
    if (status == 412 || status == 416)
        return ERR_INTEGRITY;
    return ERR_HTTP;
}

static void copy_error_excerpt(const struct buf *body, char *out, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; body->data && i < body->len && j + 1 < len && i < 300; i++) {
        unsigned char c = (unsigned char)body->data[i];
        out[j++] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : (isprint(c) ? (char)c : '?');
    }
    out[j] = '\0';
}

/* PEM text for libcurl, which copies it (the caller's buffer need not outlive the request). */
static void set_pem(CURL *h, CURLoption opt, const char *pem)
{
    struct curl_blob b = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };
    curl_easy_setopt(h, opt, &b);
}

static int own_ca(const struct http_request *req)
{
    return req->tls && (req->tls->ca_file || req->tls->ca_pem);
}

/* libcurl takes SNI and the name it verifies from the URL's host, and CONNECT_TO sends the
 * connection elsewhere without changing either: so the URL gets the server name for its host,
 * CONNECT_TO the URL's real host and port, and *host_line the URL's Host: (unless the caller's
 * headers have one). */
static int setup_server_name(CURL *h, const struct http_request *req, struct xfer *x, char **host_line,
                             struct err *e)
{
    const char *name = req->tls->server_name;
    struct url u;
    if (url_parse(req->url, &u, e) < 0)
        return err_prefix(e, "TLS server name \"%s\": ", name);
    CURLU *cu = curl_url();
    if (!cu)
        abort();
    int ok = curl_url_set(cu, CURLUPART_URL, req->url, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS) == CURLUE_OK &&
             curl_url_set(cu, CURLUPART_HOST, name, 0) == CURLUE_OK &&
             curl_url_get(cu, CURLUPART_URL, &x->tls_url, 0) == CURLUE_OK;
    curl_url_cleanup(cu);
    if (!ok) {
        url_free(&u);
        return err_set(e, ERR_INVALID, "TLS server name \"%s\" is not a host name", name);
    }
    char *host = u.ipv6 ? xasprintf("[%s]", u.host) : xstrdup(u.host);
    char *line = xasprintf("%s:%ld:%s:%ld", name, u.port_or_default, host, u.port_or_default);
    x->connect_to = curl_slist_append(NULL, line);
    free(line);
    int has_host = 0;
    for (const char *const *p = req->headers; p && *p; p++)
        has_host |= strncasecmp(*p, "Host:", 5) == 0;
    if (!has_host)
        *host_line = u.port ? xasprintf("Host: %s:%ld", host, u.port) : xasprintf("Host: %s", host);
    free(host);
    url_free(&u);
    if (!x->connect_to)
        abort();
    curl_easy_setopt(h, CURLOPT_URL, x->tls_url);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, x->connect_to);
    return 0;
}

/* The request's own TLS settings over the process-wide ones. */
static int setup_tls(CURL *h, const struct http_request *req, struct xfer *x, char **host_line, struct err *e)
{
    const struct http_tls *t = req->tls;
    if (own_ca(req)) {
        if (t->ca_pem)
            set_pem(h, CURLOPT_CAINFO_BLOB, t->ca_pem);
        else
            curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
        /* These CAs only: not SSL_CERT_DIR, nor the directory libcurl was built with. */
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    } else {
        if (config.ca_bundle)
            curl_easy_setopt(h, CURLOPT_CAINFO, config.ca_bundle);
        if (config.ca_dir)
            curl_easy_setopt(h, CURLOPT_CAPATH, config.ca_dir);
    }
    if (config.insecure || (t && t->insecure)) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!t)
        return 0;
    if (t->cert_pem || t->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        if (t->cert_pem)
            set_pem(h, CURLOPT_SSLCERT_BLOB, t->cert_pem);
        else
            curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert_file);
    }
    if (t->key_pem || t->key_file) {
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        if (t->key_pem)
            set_pem(h, CURLOPT_SSLKEY_BLOB, t->key_pem);
        else
            curl_easy_setopt(h, CURLOPT_SSLKEY, t->key_file);
    }
    return t->server_name ? setup_server_name(h, req, x, host_line, e) : 0;
}

static int setup_attempt(struct http_client *c, const struct http_request *req, struct xfer *x,
                         struct curl_slist **hdrs, int64_t resume_from, const char *validator,
                         struct err *e)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    if (req->unix_socket)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
    if (req->proxy) {
        curl_easy_setopt(h, CURLOPT_PROXY, req->proxy);
        /* For every host, whatever no_proxy says (as kubectl does with proxy-url). */
        curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : config.connect_timeout_ms));
    if (req->path_as_is)
        curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((config.stall_timeout_ms + 999) / 1000));
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "stepop/" STEPOP_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (req->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->follow_redirects) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    }
    char *host_line = NULL;
    if (setup_tls(h, req, x, &host_line, e) < 0)
        return -1;
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);

    const char *method = req->method ? req->method : "GET";
    int has_body = req->body || req->body_read;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        curl_off_t size = req->body ? (curl_off_t)req->body_len : (curl_off_t)req->body_size;
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
        if (strcmp(method, "PUT") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
            /* An empty body still needs its Content-Length: 0. */
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
    }

    struct curl_slist *l = NULL;
    /* Never wait for 100 Continue: it stalls uploads on servers that do not answer it. */
    l = curl_slist_append(l, "Expect:");
    if (host_line)
        l = curl_slist_append(l, host_line);
    free(host_line);
    for (const char *const *p = req->headers; p && *p; p++)
        l = curl_slist_append(l, *p);
    int64_t start = req->range_start + resume_from;
    if (req->range_len != 0 || start > 0) {
        char range[96];
        if (req->range_len > 0)
            snprintf(range, sizeof range, "Range: bytes=%lld-%lld", (long long)start,
                     (long long)(req->range_start + req->range_len - 1));
        else
            snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)start);
        l = curl_slist_append(l, range);
    }
    if (validator)
        l = curl_slist_append(l, validator);
    if (req->sign && req->sign(req->hook_ctx, req, &l, e) < 0) {
        curl_slist_free_all(l);
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    *hdrs = l;
    return 0;
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp,
                 struct err *e)
{
    memset(resp, 0, sizeof *resp);
    resp->content_length = -1;
    resp->retry_after_ms = -1;
    int max_attempts = req->max_attempts > 0 ? req->max_attempts : config.max_attempts;
    char redacted[512];
    uri_redact(req->url, redacted, sizeof redacted);
    char validator[400] = "";
    int has_if_match = 0;
    for (const char *const *p = req->headers; p && *p; p++)
        has_if_match |= strncasecmp(*p, "If-Match:", 9) == 0;
    unsigned seed = (unsigned)time_mono_ms() ^ (unsigned)(uintptr_t)c;

    for (int attempt = 1;; attempt++) {
        if (thread_stopped())
            return err_set(e, ERR_CANCELLED, "%s %s: cancelled", req->method ? req->method : "GET", redacted);
        int64_t resume_from = req->resume ? resp->delivered : 0;
        struct xfer x = { .curl = c->curl, .req = req, .resp = resp, .e = e, .resume_from = resume_from,
                          .max_body = req->max_body ? req->max_body : 16u << 20 };
        if (!req->resume && resp->delivered > 0)
            return err_set(e, ERR_NETWORK, "%s %s: connection lost after %lld bytes were delivered",
                           req->method ? req->method : "GET", redacted, (long long)resp->delivered);
        buf_free(&resp->body);
        resp->status = 0;
        resp->attempts = attempt;
        struct curl_slist *hdrs = NULL;
        if (setup_attempt(c, req, &x, &hdrs, resume_from, resume_from > 0 && validator[0] ? validator : NULL, e) < 0) {
            xfer_release(&x);
            return -1;
        }
        CURLcode rc = curl_easy_perform(c->curl);
        curl_slist_free_all(hdrs);
        xfer_release(&x);
        long status = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        resp->status = status;
        curl_off_t cl = -1;
        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        resp->content_length = cl;
        const char *ra = http_header(resp, "retry-after");
        resp->retry_after_ms = ra ? http_parse_retry_after(ra, time(NULL)) : -1;

        if (req->resume && !validator[0] && !has_if_match) {
            const char *etag = http_header(resp, "etag");
            const char *lm = http_header(resp, "last-modified");
            if (etag && strncmp(etag, "W/", 2) != 0)
                snprintf(validator, sizeof validator, "If-Match: %s", etag);
            else if (lm)
                snprintf(validator, sizeof validator, "If-Unmodified-Since: %s", lm);
        }

        int retry = 0;
        if (x.consumer_failed)
            return -1; /* e was set by the consumer or the body reader */
        if (rc == CURLE_ABORTED_BY_CALLBACK)
            return err_set(e, ERR_CANCELLED, "%s %s: cancelled", req->method ? req->method : "GET", redacted);
        if (rc != CURLE_OK) {
            retry = http_retryable_curl_code(rc);
            err_set(e, ERR_NETWORK, "%s %s: %s", req->method ? req->method : "GET", redacted, curl_easy_strerror(rc));
            e->transient = retry;
            if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
                err_prefix(e, own_ca(req) ? "TLS verification failed: "
                                          : "TLS verification failed (set STEPOP_CA_BUNDLE to your CA file): ");
        } else if (status >= 200 && status < 300) {
            if (req->retry_hook) {
                int d = req->retry_hook(req->hook_ctx, resp);
                if (d == 1) {
                    err_set(e, ERR_HTTP, "%s %s: HTTP %ld with an error in the body", req->method ? req->method : "GET",
                            redacted, status);
                    e->transient = 1;
                    e->http_status = status;
                    retry = 1;
                    goto decide;
                }
            }
            return 0;
        } else if (status == 304) {
            return 0;
        } else {
            char excerpt[320];
            copy_error_excerpt(&resp->body, excerpt, sizeof excerpt);
            err_set(e, status_kind(status), "%s %s: HTTP %ld%s%s", req->method ? req->method : "GET", redacted, status,
                    excerpt[0] ? ": " : "", excerpt);
            e->http_status = status;
            retry = http_retryable_status(status);
            if (req->retry_hook) {
                int d = req->retry_hook(req->hook_ctx, resp);
                if (d >= 0)
                    retry = d;
            }
            e->transient = retry;
        }
    decide:
        if (!retry || attempt >= max_attempts)
            return -1;
        if (x.body_sent > 0 && !req->body && !req->body_rewind)
            return -1; /* a streamed body cannot be sent again */
        if (req->body_rewind && x.body_sent > 0 && req->body_rewind(req->body_ctx, e) < 0)
            return -1;
        if (resp->retry_after_ms > config.retry_after_max_ms)
            return err_prefix(e, "server asked to retry after %llds, longer than stepop waits: ",
                              (long long)(resp->retry_after_ms / 1000));
        seed = seed * 1103515245u + 12345u;
        int64_t delay = http_backoff_ms(attempt, resp->retry_after_ms, &config, seed >> 8);
        log_debug("%s %s: attempt %d failed (%s), retrying in %lld ms", req->method ? req->method : "GET", redacted,
                  attempt, e->msg, (long long)delay);
        if (retry_pause(delay, req->uncancellable))
            return err_set(e, ERR_CANCELLED, "%s %s: cancelled", req->method ? req->method : "GET", redacted);
    }
}
