/* The scripted HTTP servers of the unit tests (test_api, test_aws_json, test_kube_client,
 * test_sagemaker_ops, test_http_reuse): a loopback listener, a request reader, and a server that
 * gives whole answers in turn, one per connection, keeping what each request carried. */
#ifndef STEPOP_TEST_HTTP_SERVER_H
#define STEPOP_TEST_HTTP_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A socket listening on 127.0.0.1 at a free port (*port), whose accept gives up after
 * timeout_ms; -1 when none could be had. */
static inline int loopback_listener(int backlog, int timeout_ms, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval limit = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads one request (head, then Content-Length bytes); 0 when it did not come whole. */
static inline int read_request(int fd, char *head, size_t head_cap, char *body, size_t cap) /* head may be NULL */
{
    char buf[4096];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            return 0;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (head)
        snprintf(head, head_cap, "%.*s", (int)(end - buf), buf);
    const char *cl = strcasestr(buf, "content-length:");
    size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t have = len - (size_t)(end + 4 - buf);
    if (want >= cap)
        return 0;
    memcpy(body, end + 4, have);
    while (have < want) {
        ssize_t r = read(fd, body + have, want - have);
        if (r <= 0)
            return 0;
        have += (size_t)r;
    }
    body[want] = 0;
    return 1;
}

/* Gives answers[i] (whole responses) to the i-th connection, up to n, keeping each request's
 * head and body; a request that does not come whole ends it. */
struct server {
    int listener;
    const char *answers[4];
    int n;
    char heads[4][4096];
    char bodies[4][1024];
    int seen;
};

static inline void *server_run(void *arg)
{
    struct server *s = arg;
    struct timeval limit = { .tv_sec = 10 };
    for (int i = 0; i < s->n; i++) {
        int a = accept(s->listener, NULL, NULL);
        if (a < 0)
            return NULL;
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        if (read_request(a, s->heads[s->seen], sizeof s->heads[0], s->bodies[s->seen], sizeof s->bodies[0])) {
            s->seen++;
            if (write(a, s->answers[i], strlen(s->answers[i])) < 0)
                i = s->n;
        }
        close(a);
    }
    return NULL;
}

/* Starts s on the listener fd in a thread; join it after the call. */
static inline pthread_t server_start(struct server *s, int fd)
{
    pthread_t t;
    s->listener = fd;
    s->seen = 0;
    pthread_create(&t, NULL, server_run, s);
    return t;
}

#endif
