/* Per-request TLS (struct http_tls) against real TLS servers: `openssl s_server` on 127.0.0.1 with
 * a CA, a server and a client certificate made here. The CA from a file and from memory, a wrong
 * CA, a client certificate from a file and from memory (and none), a TLS server name other than
 * the URL's host (SNI, the name verified, and Host: still the URL's). */
#include "../../runtime/http.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/stepop-tls-XXXXXX";

struct server {
    pid_t pid;
    int port;
    int in, out;       /* its stdin (what it sends in plain mode) and its stdout */
    struct buf seen;   /* its stdout so far */
};

static const char *at(const char *name)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static char *slurp(const char *name)
{
    char *text = NULL;
    if (read_small_file(at(name), 1 << 20, &text, NULL) < 0)
        return NULL;
    return text;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the server's stdout until it holds want, for up to ms. */
static int wait_for(struct server *s, const char *want, int ms)
{
    for (int64_t end = now_ms() + ms; !(s->seen.data && strstr(s->seen.data, want));) {
        int left = (int)(end - now_ms());
        struct pollfd p = { .fd = s->out, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return 0;
        char chunk[4096];
        ssize_t n = read(s->out, chunk, sizeof chunk);
        if (n <= 0)
            return 0;
        buf_append(&s->seen, chunk, (size_t)n);
    }
    return 1;
}

/* s_server on 127.0.0.1 and a port the kernel picks, which it prints once it listens. */
static int server_start(struct server *s, const char *args)
{
    memset(s, 0, sizeof *s);
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        return -1;
    char *cmd = xasprintf("exec openssl s_server -accept 127.0.0.1:0 %s 2>/dev/null", args);
    s->pid = fork();
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        if (chdir(dir) == 0)
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    free(cmd);
    close(in[0]), close(out[1]);
    s->in = in[1];
    s->out = out[0];
    if (s->pid < 0 || !wait_for(s, "ACCEPT 127.0.0.1:", 5000))
        return -1;
    const char *p = strstr(s->seen.data, "ACCEPT 127.0.0.1:") + 17;
    if (!wait_for(s, "\n", 1000))
        return -1;
    s->port = atoi(p);
    return s->port > 0 ? 0 : -1;
}

static void server_stop(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    close(s->in), close(s->out);
    buf_free(&s->seen);
}

/* One GET, no retries; returns the status (0 when none) and fills e on failure. */
static long get(const char *url, const struct http_tls *tls, struct buf *body, struct err *e)
{
    struct http_client *c = http_client_new();
    struct http_request req = { .method = "GET", .url = url, .tls = tls, .max_attempts = 1, .timeout_ms = 5000 };
    struct http_response r;
    err_clear(e);
    int rc = http_perform(c, &req, &r, e);
    long status = rc == 0 ? r.status : 0;
    if (body && rc == 0)
        buf_append(body, r.body.data ? r.body.data : "", r.body.len);
    http_response_free(&r);
    http_client_free(c);
    return status;
}

static int make_pki(void)
{
    /* EC keys: made in milliseconds, where RSA takes a noticeable part of a second. */
    char *cmd = xasprintf(
        "cd %s && exec >/dev/null 2>&1 && K='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
        "openssl req -x509 $K -days 2 -subj /CN=stepop-test-ca -keyout ca.key -out ca.pem && "
        "openssl req -x509 $K -days 2 -subj /CN=stepop-other-ca -keyout other.key -out other.pem && "
        "openssl req $K -subj /CN=server -addext subjectAltName=DNS:kube.internal,IP:127.0.0.1 "
        "  -keyout srv.key -out srv.csr && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -copy_extensions copy "
        "  -out srv.pem && "
        "openssl req $K -subj /CN=client -addext extendedKeyUsage=clientAuth -keyout cli.key -out cli.csr && "
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -copy_extensions copy "
        "  -out cli.pem && "
        "openssl req $K -subj /CN=stranger -addext extendedKeyUsage=clientAuth -keyout str.key -out str.csr && "
        "openssl x509 -req -in str.csr -CA other.pem -CAkey other.key -CAcreateserial -days 2 -copy_extensions copy "
        "  -out str.pem && "
        "cat cli.pem cli.key > cli-both.pem",
        dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static void cleanup(void)
{
    static const char *const files[] = { "ca.key", "ca.pem", "ca.srl", "other.key", "other.pem", "other.srl",
                                         "srv.key", "srv.csr", "srv.pem", "cli.key", "cli.csr", "cli.pem",
                                         "str.key", "str.csr", "str.pem", "cli-both.pem" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(at(files[i]));
    rmdir(dir);
}

int main(void)
{
    alarm(60); /* whatever hangs, the test ends (its servers die with it) */
    signal(SIGPIPE, SIG_IGN);
    if (system("openssl version >/dev/null 2>&1") != 0) {
        printf("1..0 # SKIP openssl is not installed\n");
        return 0;
    }
    if (!mkdtemp(dir))
        return 1;
    atexit(cleanup);
    ok(make_pki() == 0, "CA, server and client certificates made");
    /* The process-wide settings must not be what makes these pass. */
    unsetenv("STEPOP_CA_BUNDLE"), unsetenv("SSL_CERT_FILE"), unsetenv("SSL_CERT_DIR"), unsetenv("STEPOP_TLS_INSECURE");
    struct err e = { 0 };
    if (http_global_init(&e) < 0)
        return 1;
    char *ca_pem = slurp("ca.pem"), *other_pem = slurp("other.pem");
    char *cli_pem = slurp("cli.pem"), *cli_key = slurp("cli.key");
    ok(ca_pem && other_pem && cli_pem && cli_key, "PEM files read");
    if (!ca_pem || !other_pem || !cli_pem || !cli_key)
        return tap_done();

    struct server s;
    ok(server_start(&s, "-cert srv.pem -key srv.key -www") == 0, "s_server up on port %d", s.port);
    char *url = xasprintf("https://127.0.0.1:%d/", s.port);
    char *url_localhost = xasprintf("https://localhost:%d/", s.port);
    struct http_tls tls = { 0 };

    is_int(get(url, NULL, NULL, &e), 0, "no per-request CA: the process-wide CAs do not know the test CA");
    ok(strstr(e.msg, "set STEPOP_CA_BUNDLE") != NULL, "and the message says what to set: %s", e.msg);
    tls = (struct http_tls){ .ca_file = at("ca.pem") };
    is_int(get(url, &tls, NULL, &e), 200, "CA from a file%s%s", e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem };
    is_int(get(url, &tls, NULL, &e), 200, "CA from memory%s%s", e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .ca_file = at("other.pem") };
    is_int(get(url, &tls, NULL, &e), 0, "a wrong CA from a file fails");
    ok(e.kind == ERR_NETWORK && strstr(e.msg, "TLS verification failed: ") && !strstr(e.msg, "STEPOP_CA_BUNDLE"),
       "with a verification error that does not point at STEPOP_CA_BUNDLE: %s", e.msg);
    tls = (struct http_tls){ .ca_pem = other_pem };
    is_int(get(url, &tls, NULL, &e), 0, "a wrong CA from memory fails");
    ok(strstr(e.msg, "TLS verification failed") != NULL, "with a verification error: %s", e.msg);
    tls = (struct http_tls){ .insecure = 1 };
    is_int(get(url, &tls, NULL, &e), 200, "insecure for this request only%s%s", e.msg[0] ? ": " : "", e.msg);
    is_int(get(url, NULL, NULL, &e), 0, "the next request without it verifies again");

    /* The certificate holds kube.internal and 127.0.0.1, not localhost. */
    tls = (struct http_tls){ .ca_pem = ca_pem };
    is_int(get(url_localhost, &tls, NULL, &e), 0, "a host the certificate does not name fails");
    ok(strstr(e.msg, "TLS verification failed") != NULL, "with a verification error: %s", e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem, .server_name = "kube.internal" };
    is_int(get(url_localhost, &tls, NULL, &e), 200, "the same host with the server name the certificate holds%s%s",
           e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem, .server_name = "other.internal" };
    is_int(get(url, &tls, NULL, &e), 0, "a server name the certificate does not hold fails");
    ok(strstr(e.msg, "TLS verification failed") && strstr(e.msg, "127.0.0.1") && !strstr(e.msg, "other.internal"),
       "with a verification error naming the URL's host: %s", e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem, .server_name = "bad name" };
    is_int(get(url, &tls, NULL, &e), 0, "a server name that is no host name is refused");
    ok(e.kind == ERR_INVALID && strstr(e.msg, "not a host name"), "as invalid: %s", e.msg);
    server_stop(&s);

    /* SNI: this server refuses a handshake for any name but kube.internal. */
    ok(server_start(&s, "-cert srv.pem -key srv.key -cert2 srv.pem -key2 srv.key -servername kube.internal "
                        "-servername_fatal -www") == 0,
       "s_server that wants SNI kube.internal up");
    free(url), free(url_localhost);
    url = xasprintf("https://127.0.0.1:%d/", s.port);
    url_localhost = xasprintf("https://localhost:%d/", s.port);
    tls = (struct http_tls){ .ca_pem = ca_pem, .server_name = "kube.internal" };
    is_int(get(url_localhost, &tls, NULL, &e), 200, "SNI is the server name%s%s", e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .insecure = 1 };
    is_int(get(url_localhost, &tls, NULL, &e), 0, "SNI localhost is refused by that server (the check is real)");
    server_stop(&s);

    /* Host: is the URL's. In plain mode s_server prints what it receives and sends its stdin. */
    ok(server_start(&s, "-cert srv.pem -key srv.key") == 0, "s_server in plain mode up");
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    ok(write(s.in, answer, sizeof answer - 1) == (ssize_t)(sizeof answer - 1), "its answer queued");
    free(url);
    url = xasprintf("https://localhost:%d/a/b?c=d", s.port);
    struct buf body = { 0 };
    tls = (struct http_tls){ .ca_file = at("ca.pem"), .server_name = "kube.internal" };
    is_int(get(url, &tls, &body, &e), 200, "a request through the server name%s%s", e.msg[0] ? ": " : "", e.msg);
    is_str(body.data, "ok", "its answer");
    char *host_line = xasprintf("Host: localhost:%d\r\n", s.port);
    ok(wait_for(&s, "\r\n\r\n", 3000), "the server saw the request");
    ok(s.seen.data && strstr(s.seen.data, "GET /a/b?c=d HTTP/1.1\r\n"), "path and query as in the URL");
    ok(s.seen.data && strstr(s.seen.data, host_line), "Host: is the URL's host and port");
    ok(s.seen.data && !strstr(s.seen.data, "kube.internal"), "the server name is not in the request");
    free(host_line);
    buf_free(&body);
    server_stop(&s);

    /* A server that wants a client certificate from the test CA. */
    ok(server_start(&s, "-cert srv.pem -key srv.key -CAfile ca.pem -Verify 1 -verify_return_error -www") == 0,
       "s_server wanting a client certificate up");
    free(url);
    url = xasprintf("https://127.0.0.1:%d/", s.port);
    tls = (struct http_tls){ .ca_pem = ca_pem };
    is_int(get(url, &tls, NULL, &e), 0, "no client certificate: refused");
    tls = (struct http_tls){ .ca_pem = ca_pem, .cert_file = at("cli.pem"), .key_file = at("cli.key") };
    is_int(get(url, &tls, NULL, &e), 200, "certificate and key from files%s%s", e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem, .cert_pem = cli_pem, .key_pem = cli_key };
    is_int(get(url, &tls, NULL, &e), 200, "certificate and key from memory%s%s", e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .ca_file = at("ca.pem"), .cert_file = at("cli.pem"), .key_pem = cli_key };
    is_int(get(url, &tls, NULL, &e), 200, "certificate from a file, key from memory%s%s", e.msg[0] ? ": " : "",
           e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem, .cert_file = at("cli-both.pem") };
    is_int(get(url, &tls, NULL, &e), 200, "one file holding certificate and key%s%s", e.msg[0] ? ": " : "", e.msg);
    tls = (struct http_tls){ .ca_pem = ca_pem, .cert_file = at("str.pem"), .key_file = at("str.key") };
    is_int(get(url, &tls, NULL, &e), 0, "a client certificate from another CA: refused");
    tls = (struct http_tls){ .ca_pem = ca_pem, .cert_pem = cli_pem, .key_pem = "-----BEGIN PRIVATE KEY-----\n"
                                                                              "U0VDUkVUS0VZTUFURVJJQUw=\n"
                                                                              "-----END PRIVATE KEY-----\n" };
    is_int(get(url, &tls, NULL, &e), 0, "a broken key fails");
    ok(e.msg[0] && !strstr(e.msg, "U0VDUkVU"), "and the message holds no key material: %s", e.msg);
    server_stop(&s);

    free(url), free(url_localhost);
    free(ca_pem), free(other_pem), free(cli_pem), free(cli_key);
    return tap_done();
}
