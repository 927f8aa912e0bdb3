/* What the files of the gs:// store share (store_gcs.c: configuration, open, list, stat, delete;
 * gcs_get.c: downloads; gcs_put.c: uploads; gcs_presign.c: V4 signed URLs). Private to them,
 * except the pure helpers at the end, which tests/unit/test_gcs.c checks. */
#ifndef STEPOP_GCS_INTERNAL_H
#define STEPOP_GCS_INTERNAL_H

#include "parallel.h"
#include "store.h"

#include "../runtime/http.h"

#include <stdint.h>
#include <time.h>

#define GCS_KIB 1024LL
#define GCS_MIB (1024LL * 1024)
#define GCS_CHUNK_UNIT (256 * GCS_KIB)      /* resumable chunks are multiples of this, but the last */
#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"

enum gcs_parallel { GCS_PARALLEL_OFF, GCS_PARALLEL_COMPOSE, GCS_PARALLEL_XML };
/* Measured against the resumable session in docs/artifacts.md#gcs-store. */
#define GCS_PARALLEL_DEFAULT GCS_PARALLEL_OFF
#define GCS_COMPOSE_MAX_SOURCES 32
#define GCS_COMPOSE_MAX_COMPONENTS 1024 /* a composite object's limit */
#define GCS_XML_MIN_PART (5 * GCS_MIB)
#define GCS_XML_MAX_PARTS 10000

struct gcs_config {
    char *base;          /* "https://storage.googleapis.com", an emulator's "http://127.0.0.1:9199" */
    int anonymous;       /* STORAGE_EMULATOR_HOST: no credentials, as Google's libraries do */
    int64_t threshold;   /* up to this, one multipart/related request */
    int64_t chunk_size;  /* resumable upload chunks */
    int64_t part_size;   /* download ranges */
    int concurrency;
    enum gcs_parallel parallel; /* STEPOP_GCS_PARALLEL_UPLOAD */
    int64_t upload_part;        /* parallel upload parts */
    int64_t mem_budget;         /* their buffers in all, but always room for one */
    time_t fixed_now;    /* STEPOP_NOW, or 0 */
};

struct gcs {
    struct gcs_config cfg;
    struct http_client *client;
};

struct gcs_path {
    char *bucket;
    char *object; /* "" for the bucket itself */
};

void gcs_path_free(struct gcs_path *p);
int gcs_parse_uri(const char *uri, struct gcs_path *p, struct err *e);

/* URLs of the JSON API. query (already encoded) may be NULL. Caller frees. */
char *gcs_object_url(const struct gcs *g, const struct gcs_path *p, const char *query);
char *gcs_bucket_url(const struct gcs *g, const char *bucket, const char *what, const char *query);

/* Per-request state of the signing and retry hooks: a 401 forces one token refresh. */
struct gcs_hook {
    int refreshed;
};

void gcs_request_init(struct http_request *req, const struct gcs *g, const char *method, const char *url,
                      struct gcs_hook *hook);
/* A request whose answer is small JSON (or nothing). */
int gcs_simple_request(struct gcs *g, struct http_client *client, const char *method, const char *url,
                       const char *const *headers, const char *body, size_t body_len, struct http_response *resp,
                       struct err *e);
/* Rewrites the HTTP layer's message with the JSON API's error message, naming the gs:// URI. */
void gcs_explain(struct err *e, const struct http_response *r, const char *what, const char *uri);

/* An object's resource as the JSON API gives it. */
struct gcs_object {
    int64_t size;
    int64_t generation;
    int has_crc32c, has_md5;
    uint32_t crc32c;
    unsigned char md5[16];
    char etag[160];
    time_t updated;
};

/* Fills o from the JSON resource; -1 with e set when size or generation is missing. */
int gcs_object_from_json(const char *json, size_t len, struct gcs_object *o, struct err *e);
/* objects.list under prefix (delimiter '/'), every page: names relative to prefix. */
int gcs_list_under(struct gcs *g, const char *uri, const char *bucket, const char *prefix, store_list_fn fn,
                   void *ctx, struct err *e);
int gcs_get_object_meta(struct gcs *g, const char *uri, const struct gcs_path *p, struct gcs_object *o,
                        struct err *e);

/* ---- transfers (gcs_get.c, gcs_put.c, gcs_presign.c) ---------------------------------- */

int gcs_get_object(struct gcs *g, const char *uri, int64_t offset, int64_t length, store_sink_fn sink, void *ctx,
                   struct store_stat *info, struct err *e);
int gcs_put_object(struct gcs *g, const char *uri, struct store_source *src, struct err *e);
/* One multipart/related upload of name with the worker's client; the metadata's crc32c makes
 * GCS refuse bytes that do not match, and the answer's size and crc32c are checked. */
int gcs_upload_multipart(struct gcs *g, struct http_client *client, const char *uri, const char *bucket,
                         const char *name, const char *body, size_t len, const int *stop, uint32_t *crc_out,
                         struct err *e);
/* The object resource in an upload's answer must have size bytes with this crc32c. */
int gcs_check_result(const struct http_response *resp, int64_t size, uint32_t crc, const char *uri, struct err *e);
/* Large objects in parallel parts (gcs_parallel.c): composed (mode compose) or an XML API
 * multipart upload (mode xml). rd holds what was read ahead; size -1 when unknown. */
int gcs_put_parallel(struct gcs *g, const char *uri, const struct gcs_path *p, struct par_reader *rd, int64_t size,
                     struct err *e);
int gcs_presign_url(struct gcs *g, const char *uri, const char *method, int64_t expires_s, char **url,
                    struct err *e);

/* ---- pure helpers (unit-tested) ------------------------------------------------------ */

/* An object name as one path segment of the JSON API: every byte but A-Z a-z 0-9 - . _ ~
 * percent-encoded, '/' too. Caller frees. */
char *gcs_encode_name(const char *name);
/* One x-goog-hash value ("crc32c=n7qt8Q==,md5=XrY7u+Ae7tCTyyK7j1rNww=="; GCS sends the two as
 * one header or two): fills what it names. -1 when a named hash is malformed. */
int gcs_parse_hash(const char *value, uint32_t *crc32c, int *has_crc32c, unsigned char md5[16], int *has_md5);
/* The byte after what a resumable session holds, from a 308's Range ("bytes=0-N" gives N+1;
 * none gives 0). -1 when malformed. */
int64_t gcs_persisted_from_range(const char *range);
/* The part size of a parallel upload of size bytes (-1: unknown, the configured one): the
 * configured one, or larger (whole MiB) when the object would need more than max_parts. */
int64_t gcs_part_size(int64_t size, int64_t configured, int max_parts);
/* How many compose requests n parts need, 32 sources at most each, composing the results again
 * until one object is left. */
int gcs_compose_requests(int n);

#endif
