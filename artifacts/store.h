/* Artifact stores behind one interface, one backend per file (store_file.c, store_http.c, ...),
 * chosen by URI scheme from the registry in store.c. Every transfer streams: objects are never
 * held whole in memory. A store instance is used by one thread at a time. */
#ifndef STEPOP_STORE_H
#define STEPOP_STORE_H

#include "../runtime/err.h"

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct store_stat {
    int64_t size;          /* -1 when unknown */
    char etag[160];        /* "" when none */
    time_t mtime;          /* 0 when unknown */
    int is_dir;            /* a prefix, not an object */
};

struct store_entry {
    const char *name;      /* relative to the listed prefix; prefixes end in '/' */
    int64_t size;
    time_t mtime;
};

/* Receives object bytes in order; -1 (with e set) aborts the transfer. */
typedef int (*store_sink_fn)(void *ctx, const void *data, size_t n, struct err *e);
typedef int (*store_list_fn)(void *ctx, const struct store_entry *entry, struct err *e);

/* A body for put: pulled in order; rewind (optional) restarts it for a retry. */
struct store_source {
    ssize_t (*read)(void *ctx, void *buf, size_t n, struct err *e); /* 0 at the end */
    int (*rewind)(void *ctx, struct err *e);                        /* NULL: not rewindable */
    void *ctx;
    int64_t size;                                                   /* -1 when unknown */
};

struct store;
struct doctor;

struct store_ops {
    const char *scheme;
    const char *summary;
    int (*open)(struct store *s, const char *uri, struct err *e);
    void (*close)(struct store *s);
    /* Streams the object (from offset, length bytes or -1 to the end) to sink; info, when not
     * NULL, receives size and etag before the first byte is delivered. */
    int (*get)(struct store *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
               struct store_stat *info, struct err *e);
    /* Writes the object; it becomes visible only once complete (no partial object is ever
     * readable under the final name). */
    int (*put)(struct store *s, const char *uri, struct store_source *src, struct err *e);
    int (*stat)(struct store *s, const char *uri, struct store_stat *st, struct err *e);
    int (*list)(struct store *s, const char *uri, store_list_fn fn, void *ctx, struct err *e);
    int (*remove)(struct store *s, const char *uri, struct err *e);
    /* A URL that grants method on the object for expires_s seconds; NULL when unsupported. */
    int (*presign)(struct store *s, const char *uri, const char *method, int64_t expires_s, char **url,
                   struct err *e);
    /* `stepop doctor`: adds the store's own checks for root (where its credentials came from,
     * whose they are), with calls that change nothing. NULL: no checks of its own. */
    void (*doctor)(struct store *s, const char *root, struct doctor *d);
};

struct store {
    const struct store_ops *ops;
    void *state; /* the backend's */
};

/* The backend for uri's scheme, or NULL. */
const struct store_ops *store_backend(const char *uri);
/* Registered schemes, comma separated, for messages. */
const char *store_schemes(void);
/* Checks the scheme is served by a backend (message names the scheme otherwise). */
int store_check_uri(const char *uri, struct err *e);

/* The store this process works for (the configured store, the run prefix): the http store
 * sends STEPOP_HTTP_BEARER_TOKEN only to its host and port, unless STEPOP_HTTP_BEARER_HOST
 * names another; a non-http store means no host. Call before threads start. */
void store_http_set_bearer_scope(const char *store_uri);

/* Opens a store for uri (state such as HTTP connections or credentials lives in it). */
int store_open(const char *uri, struct store **out, struct err *e);
void store_close(struct store *s);

/* Convenience wrappers dispatching on s->ops; unsupported operations give ERR_UNSUPPORTED. */
int store_get(struct store *s, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
              struct store_stat *info, struct err *e);
int store_put(struct store *s, const char *uri, struct store_source *src, struct err *e);
int store_stat(struct store *s, const char *uri, struct store_stat *st, struct err *e);
int store_list(struct store *s, const char *uri, store_list_fn fn, void *ctx, struct err *e);
int store_remove(struct store *s, const char *uri, struct err *e);
int store_presign(struct store *s, const char *uri, const char *method, int64_t expires_s, char **url,
                  struct err *e);

/* Small objects (status, manifests): the whole body in memory, capped at max bytes. */
int store_get_small(struct store *s, const char *uri, size_t max, char **data, size_t *len, struct err *e);
int store_put_small(struct store *s, const char *uri, const void *data, size_t len, struct err *e);

/* What servers say about sizes, parsed strictly (decimal digits only, no sign, no overflow of
 * int64_t), since a download's part arithmetic and its completeness check rest on them.
 * A Content-Length value: 0, or -1 when malformed. */
int store_parse_length(const char *v, int64_t *out);
/* A Content-Range value "bytes FIRST-LAST/TOTAL" with FIRST <= LAST < TOTAL; TOTAL "*" (unknown)
 * gives -1. 0, or -1 when malformed. */
int store_parse_content_range(const char *v, int64_t *first, int64_t *last, int64_t *total);

struct http_response;
/* The answer to a ranged GET of bytes want..last (ranged_get.c, for every store): a 206 whose
 * Content-Range starts at want, ends at last or at the object's end, and agrees with its
 * Content-Length. *total gets the object's size. 0, or -1 with an ERR_INTEGRITY error. */
int store_check_range(const struct http_response *r, int64_t want, int64_t last, int64_t *total, struct err *e);

#endif
