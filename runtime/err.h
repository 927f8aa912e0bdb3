/* Error reporting: every fallible function returns 0 or -1 and fills a struct err. */
#ifndef STEPOP_ERR_H
#define STEPOP_ERR_H

enum err_kind {
    ERR_NONE = 0,
    ERR_USAGE,       /* bad command line */
    ERR_INVALID,     /* bad input data (manifest, archive, option value) */
    ERR_NOT_FOUND,   /* object or file does not exist */
    ERR_IO,          /* local file system */
    ERR_NETWORK,     /* connection, DNS, TLS, stall */
    ERR_HTTP,        /* server answered with an error status */
    ERR_AUTH,        /* credentials missing or refused */
    ERR_REFUSED,     /* unsafe archive entry, limit exceeded */
    ERR_INTEGRITY,   /* digest or length mismatch, object changed */
    ERR_UNSUPPORTED, /* scheme, format or operation not available */
    ERR_CANCELLED,   /* interrupted by a signal */
    ERR_INTERNAL
};

struct err {
    enum err_kind kind;
    int transient;     /* the same request may succeed later (5xx, reset) */
    long http_status;  /* last HTTP status seen, 0 when none */
    char msg[1024];
};

/* Fills e (when not NULL) and returns -1, so callers can `return err_set(...)`. */
int err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends context ("inputs[2].uri: ") to an error already set; returns -1. */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);
const char *err_kind_name(enum err_kind kind);

#endif
