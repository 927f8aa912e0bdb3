/* Moving artifacts between the local disk and a store: pack -> upload and download -> unpack
 * run concurrently through a bounded pipe (no temporary archive on disk), and the sha256 of the
 * stored object is computed on the fly. */
#ifndef STEPOP_TRANSFER_H
#define STEPOP_TRANSFER_H

#include "pack.h"
#include "store.h"
#include "unpack.h"

struct transfer_options {
    enum pack_format format;     /* put */
    int level, threads;          /* put: compression */
    int unpack;                  /* get: extract an archive into dest */
    const char *expect_sha256;   /* get: refuse an object with another digest */
    struct unpack_limits limits; /* get with unpack */
    const char *progress_label;  /* show progress on a terminal; NULL for none */
};

struct transfer_result {
    int64_t size;           /* bytes of the stored object */
    char sha256[65];        /* of the stored object */
    int64_t entries;        /* archive entries packed or extracted */
    int64_t content_bytes;  /* file bytes packed or extracted */
};

/* Uploads src (file or directory) as uri in o->format. A stream that cannot be rewound is
 * re-packed from the start when the store fails transiently (bounded by STEPOP_HTTP_ATTEMPTS). */
int transfer_put(struct store *s, const char *src, const char *uri, const struct transfer_options *o,
                 struct transfer_result *r, struct err *e);
/* Downloads uri to dest. Without unpack, dest is a file (or an existing directory to hold it);
 * with unpack, dest is a directory the archive is merged into. Either way the result appears
 * only after the whole object arrived and its digest matched: it is written beside dest first. */
int transfer_get(struct store *s, const char *uri, const char *dest, const struct transfer_options *o,
                 struct transfer_result *r, struct err *e);

#endif
