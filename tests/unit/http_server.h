/* The request side of the scripted HTTP servers in the unit tests (test_api, test_http_reuse). */
#ifndef STEPOP_TEST_HTTP_SERVER_H
#define STEPOP_TEST_HTTP_SERVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads one request (head, then Content-Length bytes); 0 when it did not come whole. */
static int read_request(int fd, char *head, size_t head_cap, char *body, size_t cap) /* head may be NULL */
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

#endif
