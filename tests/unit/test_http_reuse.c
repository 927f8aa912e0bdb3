/* A request body must survive libcurl's own resend: when a kept-alive connection turns out dead
 * (the server read the request and closed without answering), libcurl sends the request again on a
 * new connection and has to rewind the body. Our retries are turned off here so that only that
 * resend can make the second request succeed. */
#include "../../runtime/http.h"
#include "http_server.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct reuse_server {
    int listener;
    char bodies[3][64]; /* the body of each request seen, in order */
    int seen;
};

static void answer(int fd)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (write(fd, ok, sizeof ok - 1) < 0)
        return;
}

static void *serve(void *arg)
{
    struct reuse_server *s = arg;
    struct timeval limit = { .tv_sec = 10 };
    int a = accept(s->listener, NULL, NULL);
    if (a < 0)
        return NULL;
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (read_request(a, NULL, 0, s->bodies[s->seen], sizeof s->bodies[0]))
        s->seen++, answer(a);
    if (read_request(a, NULL, 0, s->bodies[s->seen], sizeof s->bodies[0]))
        s->seen++; /* read whole, never answered: the connection just closes */
    close(a);
    int b = accept(s->listener, NULL, NULL);
    if (b < 0)
        return NULL;
    setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (read_request(b, NULL, 0, s->bodies[s->seen], sizeof s->bodies[0]))
        s->seen++, answer(b);
    close(b);
    return NULL;
}

static int put(struct http_client *c, const char *url, const char *body)
{
    struct http_request req = { .method = "PUT", .url = url, .body = body, .body_len = strlen(body),
                                .max_attempts = 1 };
    struct http_response resp = { 0 };
    struct err e = { 0 };
    int rc = http_perform(c, &req, &resp, &e);
    if (rc < 0)
        printf("# PUT failed: %s\n", e.msg);
    http_response_free(&resp);
    return rc;
}

int main(void)
{
    struct err e = { 0 };
    if (http_global_init(&e) < 0) {
        printf("Bail out! http_global_init: %s\n", e.msg);
        return 1;
    }
    /* accept and read give up after 10 s: a client that never comes back fails the test, not hangs it */
    int port;
    struct reuse_server s = { .listener = loopback_listener(4, 10000, &port) };
    if (s.listener < 0) {
        printf("Bail out! loopback listener: %s\n", strerror(errno));
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/obj", port);
    struct http_client *c = http_client_new();
    is_int(put(c, url, "first body"), 0, "the first PUT succeeds");
    is_int(put(c, url, "second body, resent"), 0,
           "a PUT whose kept-alive connection dies unanswered is resent with its body rewound");
    http_client_free(c);
    pthread_join(t, NULL);
    close(s.listener);

    is_int(s.seen, 3, "the server saw three requests");
    is_str(s.bodies[1], "second body, resent", "the lost request carried the whole body");
    is_str(s.bodies[2], "second body, resent", "the resent request carried the whole body again");
    return tap_done();
}
