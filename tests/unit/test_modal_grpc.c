/* cloud/modal/grpc.c's framing and status parsing (the wire itself is exercised against the Modal
 * fake, tests/servers/modal_fake.js, which is @grpc/grpc-js) and cloud/modal/auth.c's reading of
 * ~/.modal.toml and of a JWT's exp. */
#include "../../cloud/modal/auth.h"
#include "../../cloud/modal/grpc.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct got {
    int n;
    struct buf all;
    int stop_after;
};

static int collect(void *ctx, const uint8_t *msg, size_t n, struct err *e)
{
    struct got *g = ctx;
    (void)e;
    g->n++;
    buf_append(&g->all, msg, n);
    buf_append(&g->all, "|", 1);
    return g->stop_after && g->n >= g->stop_after ? 1 : 0;
}

static void test_framing(void)
{
    struct buf f = { 0 };
    grpc_frame(&f, "abc", 3);
    ok(f.len == 8 && !memcmp(f.data, "\0\0\0\0\3abc", 8), "a frame: flag 0, big-endian length, message");
    grpc_frame(&f, NULL, 0);
    struct buf big = { 0 };
    for (int i = 0; i < 300; i++)
        buf_append(&big, "x", 1);
    grpc_frame(&f, big.data, big.len);
    ok(!memcmp(f.data + 13, "\0\0\0\x01\x2c", 5), "a 300-byte message's prefix");

    /* Fed one byte at a time, then all at once: the same three messages. */
    for (int mode = 0; mode < 2; mode++) {
        struct got g = { 0 };
        struct grpc_deframer d = { .on_msg = collect, .ctx = &g };
        struct err e = { 0 };
        int rc = 0;
        if (mode == 0)
            for (size_t i = 0; i < f.len && rc == 0; i++)
                rc = grpc_deframe(&d, f.data + i, 1, &e);
        else
            rc = grpc_deframe(&d, f.data, f.len, &e);
        ok(rc == 0 && g.n == 3 && g.all.len == 3 + 1 + 0 + 1 + 300 + 1 && !memcmp(g.all.data, "abc||x", 6) &&
               grpc_deframe_end(&d, &e) == 0,
           "three messages, an empty one among them, %s", mode ? "in one piece" : "a byte at a time");
        grpc_deframer_free(&d);
        buf_free(&g.all);
    }
    {
        struct got g = { .stop_after = 1 };
        struct grpc_deframer d = { .on_msg = collect, .ctx = &g };
        struct err e = { 0 };
        is_int(grpc_deframe(&d, f.data, f.len, &e), 1, "the consumer stops after the first message");
        is_int(g.n, 1, "... and no other message is handed over");
        grpc_deframer_free(&d);
        buf_free(&g.all);
    }
    {
        struct grpc_deframer d = { 0 };
        struct err e = { 0 };
        ok(grpc_deframe(&d, f.data, 6, &e) == 0 && grpc_deframe_end(&d, &e) < 0 && strstr(e.msg, "ended inside"),
           "an answer cut inside a message is refused: %s", e.msg);
        grpc_deframer_free(&d);
    }
    {
        struct grpc_deframer d = { 0 };
        struct err e = { 0 };
        ok(grpc_deframe(&d, "\1\0\0\0\1x", 6, &e) < 0 && strstr(e.msg, "compressed"),
           "a compressed message is refused: %s", e.msg);
        grpc_deframer_free(&d);
    }
    {
        struct grpc_deframer d = { 0 };
        struct err e = { 0 };
        ok(grpc_deframe(&d, "\0\x7f\xff\xff\xff", 5, &e) < 0 && strstr(e.msg, "limit"),
           "a 2 GiB length is refused before anything is buffered: %s", e.msg);
        grpc_deframer_free(&d);
    }
    buf_free(&f);
    buf_free(&big);
}

static void test_status(void)
{
    struct grpc_result r;
    memset(&r, 0, sizeof r);
    grpc_header_line(&r, "HTTP/2 200 \r\n", 13);
    grpc_header_line(&r, "content-type: application/grpc\r\n", 32);
    is_int(r.http_status, 200, "the status line");
    is_str(r.content_type, "application/grpc", "content-type");
    ok(!r.have_status, "no grpc-status yet");
    const char *l1 = "grpc-status: 5\r\n", *l2 = "Grpc-Message: App%20%27x%27 not found %E2%9C%93 100%\r\n";
    grpc_header_line(&r, l1, strlen(l1));
    grpc_header_line(&r, l2, strlen(l2));
    ok(r.have_status && r.code == GRPC_NOT_FOUND, "grpc-status from a trailer");
    is_str(r.message, "App 'x' not found \xe2\x9c\x93 100%", "grpc-message percent-decoded (UTF-8; a lone %% kept)");
    memset(&r, 0, sizeof r);
    const char *l3 = "grpc-status: banana\r\n";
    grpc_header_line(&r, l3, strlen(l3));
    ok(r.have_status && r.code == GRPC_UNKNOWN, "a grpc-status that is not a number is UNKNOWN");
    ok(grpc_retryable(GRPC_UNAVAILABLE) && grpc_retryable(GRPC_DEADLINE_EXCEEDED) && grpc_retryable(GRPC_INTERNAL) &&
           grpc_retryable(GRPC_UNKNOWN),
       "UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN are retried");
    ok(!grpc_retryable(GRPC_NOT_FOUND) && !grpc_retryable(GRPC_INVALID_ARGUMENT) &&
           !grpc_retryable(GRPC_RESOURCE_EXHAUSTED) && !grpc_retryable(GRPC_UNAUTHENTICATED) && !grpc_retryable(GRPC_OK),
       "other codes are not");
    is_str(grpc_code_name(16), "UNAUTHENTICATED", "code names");
    struct grpc_channel ch;
    struct err e = { 0 };
    ok(grpc_channel_init(&ch, "ftp://x", NULL, NULL, &e) < 0, "ftp:// refused");
    ok(grpc_channel_init(&ch, "https://api.modal.com:443/v1", NULL, NULL, &e) < 0, "a URL with a path refused");
    ok(grpc_channel_init(&ch, "http://127.0.0.1:5000/", NULL, NULL, &e) == 0 && ch.cleartext &&
           !strcmp(ch.base, "http://127.0.0.1:5000"),
       "http:// is cleartext HTTP/2, trailing '/' dropped");
    grpc_channel_free(&ch);
}

static void test_toml(void)
{
    const char *text = "# modal token set wrote this\n"
                       "[default]\n"
                       "token_id = \"ak-default\"\n"
                       "token_secret = \"as-default\"\n"
                       "\n"
                       "[\"work\"]\n"
                       "token_id = 'ak-work'   # literal\n"
                       "token_secret = \"as-\\\"work\\\"\"\n"
                       "active = true\n"
                       "environment = \"dev\"\n"
                       "[other]\n"
                       "active = false\n";
    struct err e = { 0 };
    char *v = NULL;
    ok(modal_toml_active(text, &v, &e) == 0 && v && !strcmp(v, "work"), "the active profile (quoted table name)");
    free(v);
    ok(modal_toml_get(text, "work", "token_id", &v, &e) == 0 && v && !strcmp(v, "ak-work"), "a literal string");
    free(v);
    ok(modal_toml_get(text, "work", "token_secret", &v, &e) == 0 && v && !strcmp(v, "as-\"work\""),
       "a basic string with escapes");
    free(v);
    ok(modal_toml_get(text, "default", "token_id", &v, &e) == 0 && v && !strcmp(v, "ak-default"), "another table");
    free(v);
    ok(modal_toml_get(text, "default", "environment", &v, &e) == 0 && !v, "an absent key");
    ok(modal_toml_active("[a]\nx = \"1\"\n", &v, &e) == 0 && !v, "no active profile");
    ok(modal_toml_get("[a\nx = 1\n", "a", "x", &v, &e) < 0 && strstr(e.msg, "line 1"), "a broken table: %s", e.msg);
    ok(modal_toml_get("[a]\nx = \"open\n", "a", "x", &v, &e) < 0 && strstr(e.msg, "line 2"),
       "an unterminated string: %s", e.msg);
}

static void test_jwt(void)
{
    /* {"alg":"none"} . {"sub":"u","exp":1900000000} . sig, base64url without padding. */
    is_int(modal_jwt_exp("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1IiwiZXhwIjoxOTAwMDAwMDAwfQ.c2ln"), 1900000000,
           "the exp of a JWT");
    /* {"exp":1700000000,"n":"~~~"}: base64url's '-' and '_' (fn5- decodes to "~~~"). */
    is_int(modal_jwt_exp("e30.eyJleHAiOjE3MDAwMDAwMDAsIm4iOiJ-fn4ifQ.x"), 1700000000, "base64url characters");
    is_int(modal_jwt_exp("not-a-jwt"), 0, "not a JWT");
    is_int(modal_jwt_exp("a.b.c.d"), 0, "four parts");
    is_int(modal_jwt_exp("e30.e30.x"), 0, "no exp");
}

static void test_auth_env(void)
{
    char path[] = "/tmp/stepop-modal-tomlXXXXXX";
    int fd = mkstemp(path);
    const char *text = "[p1]\ntoken_id = \"ak-file\"\ntoken_secret = \"as-file\"\nserver_url = \"http://127.0.0.1:1\"\n"
                       "[p2]\nactive = true\ntoken_id = \"ak-2\"\ntoken_secret = \"as-2\"\n";
    ok(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "a config file");
    close(fd);
    setenv("MODAL_CONFIG_PATH", path, 1);
    unsetenv("MODAL_TOKEN_ID");
    unsetenv("MODAL_TOKEN_SECRET");
    unsetenv("MODAL_SERVER_URL");
    unsetenv("MODAL_ENVIRONMENT");
    unsetenv("MODAL_PROFILE");
    struct modal_auth a;
    struct err e = { 0 };
    ok(modal_auth_load(&a, NULL, &e) == 0 && a.profile && !strcmp(a.profile, "p2") && !strcmp(a.token_id, "ak-2") &&
           !strcmp(a.server_url, MODAL_DEFAULT_SERVER) && !strcmp(a.host, "api.modal.com"),
       "the active profile's token, the default server");
    modal_auth_free(&a);
    setenv("MODAL_PROFILE", "p1", 1);
    setenv("MODAL_TOKEN_SECRET", "as-env", 1);
    ok(modal_auth_load(&a, NULL, &e) == 0 && !strcmp(a.token_id, "ak-file") && !strcmp(a.token_secret, "as-env") &&
           !strcmp(a.server_url, "http://127.0.0.1:1") && !strcmp(a.host, "127.0.0.1"),
       "MODAL_PROFILE picks p1; MODAL_TOKEN_SECRET wins over the file");
    modal_auth_free(&a);
    ok(modal_auth_load(&a, "http://[::1]:9", &e) == 0 && !strcmp(a.server_url, "http://[::1]:9") &&
           !strcmp(a.host, "[::1]"),
       "the server_url setting wins");
    modal_auth_free(&a);
    /* An auth token outlives its struct modal_auth for the same server and token id, and is
     * dropped by modal_auth_reauth (the server refused it). */
    ok(modal_auth_load(&a, NULL, &e) == 0 && !a.auth_token, "no auth token yet");
    a.auth_token = xstrdup("e30.eyJleHAiOjE5MDAwMDAwMDB9.x");
    a.refresh_at = 1800000000;
    modal_auth_free(&a);
    ok(modal_auth_load(&a, NULL, &e) == 0 && a.auth_token && !strcmp(a.auth_token, "e30.eyJleHAiOjE5MDAwMDAwMDB9.x"),
       "the auth token is kept for the next load");
    is_int(modal_auth_reauth(&a), 1, "reauth drops it");
    ok(!a.auth_token, "... from the struct");
    is_int(modal_auth_reauth(&a), 0, "nothing left to drop");
    modal_auth_free(&a);
    ok(modal_auth_load(&a, NULL, &e) == 0 && !a.auth_token, "... and from the cache");
    modal_auth_free(&a);
    setenv("MODAL_TOKEN_SECRET", "as-other", 1);
    ok(modal_auth_load(&a, NULL, &e) == 0, "another load");
    a.auth_token = xstrdup("tok");
    a.refresh_at = 1800000000;
    modal_auth_free(&a);
    setenv("MODAL_TOKEN_ID", "ak-other", 1);
    ok(modal_auth_load(&a, NULL, &e) == 0 && !a.auth_token, "another token id does not get the cached token");
    modal_auth_free(&a);
    unsetenv("MODAL_TOKEN_ID");
    setenv("MODAL_CONFIG_PATH", "/nonexistent/modal.toml", 1);
    unsetenv("MODAL_TOKEN_SECRET");
    ok(modal_auth_load(&a, NULL, &e) == 0 && modal_auth_require(&a, &e) < 0 && e.kind == ERR_AUTH &&
           strstr(e.msg, "MODAL_TOKEN_ID"),
       "no credentials: refused when needed: %s", e.msg);
    modal_auth_free(&a);
    unlink(path);
    unsetenv("MODAL_CONFIG_PATH");
    unsetenv("MODAL_PROFILE");
}

int main(void)
{
    test_framing();
    test_status();
    test_toml();
    test_jwt();
    test_auth_env();
    return tap_done();
}
