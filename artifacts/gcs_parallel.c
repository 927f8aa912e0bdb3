/* gs:// parallel uploads (STEPOP_GCS_PARALLEL_UPLOAD), parts sent by the shared engine
 * (artifacts/parallel.c):
 * - compose: each part a temporary object "<name>.stepop-parts-<random>/<n>" (a multipart/related
 *   upload checked by its crc32c), then objects.compose, 32 sources a request, the results
 *   composed again until one is left, then the parts deleted; GCS keeps the crc32c of a composite
 *   object (no md5) and at most 1024 components.
 * - xml: the XML API's multipart upload (POST ?uploads, PUT ?partNumber&uploadId with the part's
 *   crc32c in x-goog-hash, POST the CompleteMultipartUpload list; DELETE ?uploadId on failure).
 * Either way the final object's size and crc32c (the parts' CRCs combined) are checked. */
#include "gcs_internal.h"

#include "../runtime/crc32c.h"
#include "../runtime/log.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"
#include "../runtime/xmlwalk.h"

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct upload {
    struct gcs *g;
    const char *uri;
    const struct gcs_path *p;
    char *parts_prefix;   /* compose: where the part objects go */
    char *xml_url;        /* xml: the object's XML API URL */
    char *upload_id_enc;  /* xml */
    pthread_mutex_t mu;   /* guards the two arrays below, filled by the workers */
    uint32_t *crcs;
    int64_t *lens;
    int cap;
};

static void record_part(struct upload *u, int n, uint32_t crc, size_t len)
{
    pthread_mutex_lock(&u->mu);
    if (n > u->cap) {
        int cap = u->cap ? u->cap * 2 : 64;
        while (cap < n)
            cap *= 2;
        u->crcs = xrealloc(u->crcs, (size_t)cap * sizeof *u->crcs);
        u->lens = xrealloc(u->lens, (size_t)cap * sizeof *u->lens);
        u->cap = cap;
    }
    u->crcs[n - 1] = crc;
    u->lens[n - 1] = (int64_t)len;
    pthread_mutex_unlock(&u->mu);
}

static uint32_t combined_crc(const struct upload *u, int nparts)
{
    uint32_t crc = 0;
    for (int i = 0; i < nparts; i++)
        crc = i ? crc32c_combine(crc, u->crcs[i], u->lens[i]) : u->crcs[i];
    return crc;
}

/* The final object, read back: size and crc32c as sent. */
static int check_final(struct upload *u, int nparts, int64_t total, struct err *e)
{
    struct gcs_object o;
    if (gcs_get_object_meta(u->g, u->uri, u->p, &o, e) < 0)
        return err_prefix(e, "after the parallel upload: ");
    uint32_t crc = combined_crc(u, nparts);
    if (o.size != total)
        return err_set(e, ERR_INTEGRITY, "parallel upload of %s: the object has %lld bytes, %lld were sent", u->uri,
                       (long long)o.size, (long long)total);
    if (!o.has_crc32c || o.crc32c != crc)
        return err_set(e, ERR_INTEGRITY, "parallel upload of %s: the object's crc32c does not match the parts sent",
                       u->uri);
    return 0;
}

/* ---- compose ------------------------------------------------------------------------- */

static char *part_name(const struct upload *u, int n)
{
    return xasprintf("%s%05d", u->parts_prefix, n);
}

static int compose_put_part(void *ctx, struct http_client *client, int n, const char *body, size_t len,
                            const int *stop, struct par_part *out, struct err *e)
{
    struct upload *u = ctx;
    char *name = part_name(u, n);
    uint32_t crc;
    int rc = gcs_upload_multipart(u->g, client, u->uri, u->p->bucket, name, body, len, stop, &crc, e);
    if (rc < 0) {
        err_prefix(e, "part %d: ", n);
        free(name);
        return -1;
    }
    record_part(u, n, crc, len);
    out->etag = name;
    return 0;
}

/* One objects.compose of names[0..n-1] into dest. */
static int compose_one(struct upload *u, char **names, int n, const char *dest, struct err *e)
{
    cJSON *req = cJSON_CreateObject(), *srcs = cJSON_AddArrayToObject(req, "sourceObjects");
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", names[i]);
        cJSON_AddItemToArray(srcs, s);
    }
    cJSON_AddStringToObject(cJSON_AddObjectToObject(req, "destination"), "contentType", "application/octet-stream");
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    struct gcs_path dp = { .bucket = u->p->bucket, .object = (char *)dest };
    char *url = gcs_object_url(u->g, &dp, NULL);
    char *full = xasprintf("%s/compose", url);
    const char *hdr[] = { "Content-Type: application/json", NULL };
    struct http_response resp;
    int rc = gcs_simple_request(u->g, u->g->client, "POST", full, hdr, body, strlen(body), &resp, e);
    if (rc < 0)
        gcs_explain(e, &resp, "compose", u->uri);
    http_response_free(&resp);
    free(full);
    free(url);
    free(body);
    return rc;
}

static void delete_object(struct upload *u, const char *name)
{
    struct gcs_path dp = { .bucket = u->p->bucket, .object = (char *)name };
    char *url = gcs_object_url(u->g, &dp, NULL);
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, u->g, "DELETE", url, &hook);
    req.uncancellable = 1;
    struct http_response resp;
    struct err e = { 0 };
    if (http_perform(u->g->client, &req, &resp, &e) < 0 && resp.status != 404)
        log_warn("parallel upload of %s: the part object %s was not deleted (%s); remove it by hand", u->uri, name,
                 e.msg);
    http_response_free(&resp);
    free(url);
}

static int compose_complete(void *ctx, const struct par_part *parts, int nparts, int64_t total, struct err *e)
{
    struct upload *u = ctx;
    if (nparts > GCS_COMPOSE_MAX_COMPONENTS)
        return err_set(e, ERR_INVALID, "a composed object has at most %d parts", GCS_COMPOSE_MAX_COMPONENTS);
    log_debug("parallel upload of %s: %d parts, %d compose requests", u->uri, nparts, gcs_compose_requests(nparts));
    int n = nparts, round = 0, rc = 0;
    char **names = xcalloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++)
        names[i] = xstrdup(parts[i].etag);
    /* Intermediate objects, themselves deleted once composed further. */
    char **made = NULL;
    int nmade = 0;
    while (rc == 0 && n > GCS_COMPOSE_MAX_SOURCES) {
        int groups = (n + GCS_COMPOSE_MAX_SOURCES - 1) / GCS_COMPOSE_MAX_SOURCES;
        char **next = xcalloc((size_t)groups, sizeof *next);
        round++;
        for (int gi = 0; gi < groups && rc == 0; gi++) {
            int first = gi * GCS_COMPOSE_MAX_SOURCES;
            int k = n - first < GCS_COMPOSE_MAX_SOURCES ? n - first : GCS_COMPOSE_MAX_SOURCES;
            next[gi] = xasprintf("%sc%d-%05d", u->parts_prefix, round, gi);
            made = xrealloc(made, (size_t)(nmade + 1) * sizeof *made);
            made[nmade++] = xstrdup(next[gi]);
            rc = compose_one(u, names + first, k, next[gi], e);
        }
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        names = next;
        n = groups;
    }
    if (rc == 0)
        rc = compose_one(u, names, n, u->p->object, e);
    if (rc == 0)
        rc = check_final(u, nparts, total, e);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    for (int i = 0; i < nparts; i++)
        delete_object(u, parts[i].etag);
    for (int i = 0; i < nmade; i++) {
        delete_object(u, made[i]);
        free(made[i]);
    }
    free(made);
    return rc;
}

/* After a failure: every part object under the upload's prefix goes, listed rather than
 * remembered, so parts whose answer was lost go too. */
static int collect_name(void *ctx, const struct store_entry *ent, struct err *e)
{
    (void)e;
    struct buf *b = ctx;
    if (!str_has_suffix(ent->name, "/"))
        buf_append(b, ent->name, strlen(ent->name) + 1);
    return 0;
}

static void compose_abort(void *ctx)
{
    struct upload *u = ctx;
    struct buf names = { 0 };
    struct err e = { 0 };
    if (gcs_list_under(u->g, u->uri, u->p->bucket, u->parts_prefix, collect_name, &names, &e) < 0)
        log_warn("parallel upload of %s: the part objects under %s could not be listed (%s); remove them by hand",
                 u->uri, u->parts_prefix, e.msg);
    for (size_t off = 0; off < names.len; off += strlen(names.data + off) + 1) {
        char *full = xasprintf("%s%s", u->parts_prefix, names.data + off);
        delete_object(u, full);
        free(full);
    }
    buf_free(&names);
}

/* ---- XML API multipart upload -------------------------------------------------------- */

static int xml_request(struct upload *u, struct http_client *client, const char *method, const char *query,
                       const char *const *headers, const char *body, size_t len, const int *stop,
                       struct http_response *resp, struct err *e)
{
    char *url = xasprintf("%s?%s", u->xml_url, query);
    struct gcs_hook hook;
    struct http_request req;
    gcs_request_init(&req, u->g, method, url, &hook);
    req.headers = headers;
    req.body = body ? body : "";
    req.body_len = len;
    req.stop = stop;
    req.max_body = 1u << 20;
    int rc = http_perform(client, &req, resp, e);
    free(url);
    return rc;
}

static void xml_explain(struct err *e, const struct http_response *r, const char *what, const char *uri)
{
    char *code = r->body.len ? xml_find(r->body.data, r->body.len, "Error/Code") : NULL;
    char *msg = code ? xml_find(r->body.data, r->body.len, "Error/Message") : NULL;
    if (code) {
        int transient = e->transient;
        long status = e->http_status;
        err_set(e, e->kind, "%s %s: HTTP %ld %s%s%s", what, uri, r->status, code, msg ? ": " : "", msg ? msg : "");
        e->transient = transient;
        e->http_status = status;
    } else {
        gcs_explain(e, r, what, uri);
    }
    free(code);
    free(msg);
}

static int xml_put_part(void *ctx, struct http_client *client, int n, const char *body, size_t len, const int *stop,
                        struct par_part *out, struct err *e)
{
    struct upload *u = ctx;
    uint32_t crc = crc32c_update(0, body, len);
    char b64[9], hash[40], q[300];
    crc32c_base64(crc, b64);
    snprintf(hash, sizeof hash, "x-goog-hash: crc32c=%s", b64);
    snprintf(q, sizeof q, "partNumber=%d&uploadId=%s", n, u->upload_id_enc);
    const char *hdr[] = { hash, NULL };
    struct http_response resp;
    int rc = xml_request(u, client, "PUT", q, hdr, body, len, stop, &resp, e);
    if (rc < 0) {
        xml_explain(e, &resp, "upload part", u->uri);
        err_prefix(e, "part %d: ", n);
    } else {
        const char *etag = http_header(&resp, "etag");
        if (!etag || !*etag || strpbrk(etag, "<>&"))
            rc = err_set(e, ERR_HTTP, "part %d: the answer has no usable ETag", n);
        else
            out->etag = xstrdup(etag);
    }
    if (rc == 0)
        record_part(u, n, crc, len);
    http_response_free(&resp);
    return rc;
}

static int xml_complete(void *ctx, const struct par_part *parts, int nparts, int64_t total, struct err *e)
{
    struct upload *u = ctx;
    struct buf x = { 0 };
    buf_appendf(&x, "<CompleteMultipartUpload>");
    for (int i = 0; i < nparts; i++)
        buf_appendf(&x, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1, parts[i].etag);
    buf_appendf(&x, "</CompleteMultipartUpload>");
    char q[260];
    snprintf(q, sizeof q, "uploadId=%s", u->upload_id_enc);
    const char *hdr[] = { "Content-Type: application/xml", NULL };
    struct http_response resp;
    int rc = xml_request(u, u->g->client, "POST", q, hdr, x.data, x.len, NULL, &resp, e);
    if (rc < 0 && resp.status == 404 && resp.attempts > 1)
        rc = 0; /* an earlier attempt completed it and its answer was lost: check_final tells */
    else if (rc < 0)
        xml_explain(e, &resp, "complete multipart upload", u->uri);
    http_response_free(&resp);
    buf_free(&x);
    if (rc == 0)
        rc = check_final(u, nparts, total, e);
    return rc;
}

static void xml_abort(void *ctx)
{
    struct upload *u = ctx;
    char q[260];
    snprintf(q, sizeof q, "uploadId=%s", u->upload_id_enc);
    struct http_response resp;
    struct err e = { 0 };
    if (xml_request(u, u->g->client, "DELETE", q, NULL, NULL, 0, NULL, &resp, &e) < 0 && resp.status != 404)
        log_warn("parallel upload of %s: the XML multipart upload was not aborted (%s); its parts stay until it is",
                 u->uri, e.msg);
    http_response_free(&resp);
}

static int xml_start(struct upload *u, struct err *e)
{
    char *obj = uri_encode(u->p->object, "/");
    u->xml_url = xasprintf("%s/%s/%s", u->g->cfg.base, u->p->bucket, obj);
    free(obj);
    const char *hdr[] = { "Content-Type: application/octet-stream", NULL };
    struct http_response resp;
    int rc = xml_request(u, u->g->client, "POST", "uploads", hdr, NULL, 0, NULL, &resp, e);
    char *id = NULL;
    if (rc < 0)
        xml_explain(e, &resp, "start multipart upload", u->uri);
    else if (!(id = xml_find(resp.body.data, resp.body.len, "InitiateMultipartUploadResult/UploadId")) || !*id)
        rc = err_set(e, ERR_HTTP, "start multipart upload %s: the answer has no UploadId", u->uri);
    if (rc == 0)
        u->upload_id_enc = uri_encode(id, "");
    free(id);
    http_response_free(&resp);
    return rc;
}

/* ---- both ---------------------------------------------------------------------------- */

int gcs_put_parallel(struct gcs *g, const char *uri, const struct gcs_path *p, struct par_reader *rd, int64_t size,
                     struct err *e)
{
    int xml = g->cfg.parallel == GCS_PARALLEL_XML;
    int max_parts = xml ? GCS_XML_MAX_PARTS : GCS_COMPOSE_MAX_COMPONENTS;
    struct upload u = { .g = g, .uri = uri, .p = p };
    pthread_mutex_init(&u.mu, NULL);
    struct par_put pp = { .rd = rd, .size = size, .part_size = gcs_part_size(size, g->cfg.upload_part, max_parts),
                          .grow_every = max_parts / 10, .max_part = 5120 * GCS_MIB, .max_parts = max_parts,
                          .too_many_hint = "raise STEPOP_GCS_UPLOAD_PART_SIZE", .mem_budget = g->cfg.mem_budget,
                          .workers = g->cfg.concurrency, .ctx = &u };
    if (size >= 0 && (size + pp.part_size - 1) / pp.part_size < pp.workers)
        pp.workers = (int)((size + pp.part_size - 1) / pp.part_size);
    if (pp.workers < 1)
        pp.workers = 1;
    int rc = 0;
    if (xml) {
        pp.put_part = xml_put_part;
        pp.complete = xml_complete;
        pp.abort = xml_abort;
        rc = xml_start(&u, e);
    } else {
        unsigned char rnd[8];
        char hex[17];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            rc = err_set(e, ERR_INTERNAL, "no random bytes for the part objects' names");
        hex_encode(rnd, sizeof rnd, hex);
        u.parts_prefix = xasprintf("%s.stepop-parts-%s/", p->object, hex);
        pp.put_part = compose_put_part;
        pp.complete = compose_complete;
        pp.abort = compose_abort;
    }
    if (rc == 0) {
        log_debug("parallel upload (%s) of %s: parts of %lld bytes, %d at a time", xml ? "xml" : "compose", uri,
                  (long long)pp.part_size, pp.workers);
        rc = par_put_run(&pp, e);
    }
    free(u.parts_prefix);
    free(u.xml_url);
    free(u.upload_id_enc);
    free(u.crcs);
    free(u.lens);
    pthread_mutex_destroy(&u.mu);
    return rc;
}
