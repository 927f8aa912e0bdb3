/* gRPC over HTTP/2 with libcurl (github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), as the
 * Modal client needs it: unary calls and server streaming, messages framed with a 5-byte prefix,
 * the status read from the trailers (libcurl hands HTTP/2 trailers to the header callback) or from
 * the headers of a trailers-only answer. http:// URLs speak cleartext HTTP/2 with prior knowledge
 * (the tests' fake), https:// negotiates HTTP/2 over TLS. Unary calls are retried on UNAVAILABLE,
 * DEADLINE_EXCEEDED, INTERNAL and UNKNOWN (and on a connection that failed) with the same
 * idempotency key, backing off as runtime/http.h does. */
#ifndef STEPOP_MODAL_GRPC_H
#define STEPOP_MODAL_GRPC_H

#include "../../runtime/err.h"
#include "../../runtime/util.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes used here (grpc/include/grpc/impl/codegen/status.h). */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* Largest message accepted (the JS SDK's grpc.max_receive_message_length). */
#define GRPC_MAX_MESSAGE (100u * 1024 * 1024)

/* One message received: 0 to go on, 1 to end the call there (it succeeds), -1 (with e set) to
 * abort it. */
typedef int (*grpc_msg_fn)(void *ctx, const uint8_t *msg, size_t n, struct err *e);
/* Adds the call's headers ("Name: value") before each attempt (credentials); -1 aborts. */
typedef int (*grpc_headers_fn)(void *ctx, const char *method, struct curl_slist **headers, struct err *e);

struct grpc_channel {
    char *base;           /* scheme://host:port, no trailing '/' */
    int cleartext;        /* http://: HTTP/2 with prior knowledge */
    CURLSH *share;        /* the DNS cache kept between calls (one thread); connections are not
                             kept (grpc.c says why) */
    grpc_headers_fn headers;
    void *headers_ctx;
    /* Called once per call on UNAUTHENTICATED: 1 when fresh credentials may help (a short-lived
     * token was dropped), and the call is sent again. NULL: never. */
    int (*reauth)(void *headers_ctx);
    int max_attempts;     /* unary calls; 0: runtime/http.h's configuration */
};

/* server_url: http[s]://host[:port] (a path is refused). */
int grpc_channel_init(struct grpc_channel *ch, const char *server_url, grpc_headers_fn headers, void *ctx,
                      struct err *e);
void grpc_channel_free(struct grpc_channel *ch);

/* A unary call of /modal.client.ModalClient/METHOD: the request message in, the answer's message
 * in *resp (caller frees). A status other than OK fails with e naming the method, the code and
 * grpc-message; e->http_status holds the gRPC code (negative: none, the transport failed). */
int grpc_unary(struct grpc_channel *ch, const char *method, const struct buf *req, struct buf *resp,
               int64_t timeout_ms, struct err *e);
/* A server-streaming call: each message as it arrives to on_msg; not retried (the caller resumes
 * from the last entry id). */
int grpc_stream(struct grpc_channel *ch, const char *method, const struct buf *req, grpc_msg_fn on_msg, void *ctx,
                int64_t timeout_ms, struct err *e);

/* ---- the framing and trailer parsing, exposed for unit tests ---- */

/* Appends the 5-byte prefix (uncompressed, big-endian length) and the message. */
void grpc_frame(struct buf *out, const void *msg, size_t n);

struct grpc_deframer {
    struct buf pending;    /* bytes of an incomplete frame */
    grpc_msg_fn on_msg;
    void *ctx;
};
/* Feeds received bytes; calls on_msg for each complete message. 1 when on_msg asked to stop. A
 * compressed frame (nothing asked for compression) or one over GRPC_MAX_MESSAGE fails. */
int grpc_deframe(struct grpc_deframer *d, const void *data, size_t n, struct err *e);
/* At the end of the body: bytes of an incomplete frame left over fail. */
int grpc_deframe_end(struct grpc_deframer *d, struct err *e);
void grpc_deframer_free(struct grpc_deframer *d);

struct grpc_result {
    long http_status;
    int have_status;      /* grpc-status seen */
    int code;
    char message[512];    /* grpc-message, percent-decoded */
    char content_type[64];
};
/* One header or trailer line as libcurl gives it ("grpc-status: 5\r\n", "HTTP/2 200"). */
void grpc_header_line(struct grpc_result *r, const char *line, size_t n);
/* Decodes grpc-message's percent-encoding in place (invalid escapes are left as they are). */
void grpc_percent_decode(char *s);
/* Whether a unary call may be sent again with the same idempotency key. */
int grpc_retryable(int code);
const char *grpc_code_name(int code);

#endif
