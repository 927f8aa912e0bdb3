#include "engine.h"

#include "../api.h"

#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/uri.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* API versions: the newest this code was written against, and the oldest with DeviceRequests. */
#define DOCKER_API_MAX_MINOR 44
#define DOCKER_API_MIN_MINOR 40

const char *docker_engine_name(enum docker_engine k)
{
    return k == DOCKER_ENGINE_PODMAN ? "podman" : "docker";
}

/* ---- the connection ---- */

void docker_conn_free(struct docker_conn *k)
{
    free(k->host);
    free(k->sock);
    free(k->base);
    http_client_free(k->http);
    memset(k, 0, sizeof *k);
}

int docker_conn_open(const char *host_setting, struct docker_conn *k, struct err *e)
{
    memset(k, 0, sizeof *k);
    const char *h = host_setting ? host_setting : getenv("DOCKER_HOST");
    char *fallback = NULL;
    if (!h || !*h) {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        char *user_sock = xdg && *xdg ? xasprintf("%s/podman/podman.sock", xdg) : NULL;
        const char *cands[] = { DOCKER_DEFAULT_SOCKET, "/run/podman/podman.sock", user_sock };
        for (size_t i = 0; i < sizeof cands / sizeof *cands && !fallback; i++)
            if (cands[i] && access(cands[i], F_OK) == 0)
                fallback = xasprintf("unix://%s", cands[i]);
        free(user_sock);
        if (!fallback)
            fallback = xstrdup("unix://" DOCKER_DEFAULT_SOCKET);
        h = fallback;
    }
    if (str_has_prefix(h, "unix://")) {
        k->sock = xstrdup(h + 7);
        k->base = xstrdup("http://docker");
        if (k->sock[0] != '/') {
            err_set(e, ERR_INVALID, "DOCKER_HOST %s: a unix socket needs an absolute path (unix:///path)", h);
            free(fallback);
            docker_conn_free(k);
            return -1;
        }
    } else if (str_has_prefix(h, "tcp://")) {
        if (getenv("DOCKER_TLS_VERIFY") && *getenv("DOCKER_TLS_VERIFY")) {
            err_set(e, ERR_UNSUPPORTED,
                    "DOCKER_TLS_VERIFY is set, but stepop speaks plain HTTP to tcp:// engines (no client certificates): "
                    "use a unix socket or an SSH tunnel to one");
            free(fallback);
            return -1;
        }
        /* A path after the host is ignored, as it always was. */
        struct url u;
        if (url_parse(h, &u, e) < 0 || u.has_userinfo) {
            if (u.has_userinfo)
                err_set(e, ERR_INVALID, "user info is not supported");
            err_prefix(e, "DOCKER_HOST %s: ", h);
            url_free(&u);
            free(fallback);
            return -1;
        }
        k->base = xasprintf("http://%s", u.hostport);
        url_free(&u);
    } else {
        err_set(e, ERR_UNSUPPORTED, "DOCKER_HOST %s: only unix:// and tcp:// are supported", h);
        free(fallback);
        return -1;
    }
    k->host = xstrdup(h);
    free(fallback);
    k->http = http_client_new();
    return 0;
}

struct docker_call {
    const char *method;
    const char *path;       /* after the version prefix, e.g. "/containers/create?name=x" */
    int unversioned;        /* path is used as is */
    const cJSON *body;
    int json_answer;        /* parse the answer into resp->json */
    int attempts;           /* 0: the HTTP default (GETs); 1 for requests that change state */
    int64_t timeout_ms;
    int uncancellable;
    http_data_fn on_data;
    void *data_ctx;
};

/* Performs one call; resp (the caller frees it) gets the status, headers and the answer. An
 * engine that does not answer is named, with what to check. */
static int docker_do(struct docker_conn *k, const struct docker_call *call, struct api_response *resp, struct err *e)
{
    char *url = call->unversioned ? xasprintf("%s%s", k->base, call->path)
                                  : xasprintf("%s/%s%s", k->base, k->api, call->path);
    struct api_call ac = {
        .http = {
            .method = call->method,
            .url = url,
            .unix_socket = k->sock,
            .max_attempts = call->attempts,
            .timeout_ms = call->timeout_ms,
            .uncancellable = call->uncancellable,
            .on_data = call->on_data,
            .data_ctx = call->data_ctx,
            .connect_timeout_ms = 5000,
        },
        .body = call->body,
        .json_answer = call->json_answer,
        .label = call->path,
        .error = api_error_docker,
    };
    int rc = api_perform(k->http, &ac, resp, e);
    if (rc < 0 && resp->status == 0 && e->kind != ERR_CANCELLED && !call->on_data) {
        err_set(e, ERR_NETWORK, "cannot reach the container engine at %s (%s); is Docker running, or `podman system "
                                "service`? Set DOCKER_HOST or settings.host",
                k->host, e->msg);
        e->transient = 1;
    }
    free(url);
    return rc;
}

/* The same, for callers that want only the outcome and the status. */
static int docker_do_status(struct docker_conn *k, const struct docker_call *call, long *status, struct err *e)
{
    struct api_response resp;
    int rc = docker_do(k, call, &resp, e);
    if (status)
        *status = resp.status;
    api_response_free(&resp);
    return rc;
}

/* "1.41" -> 41 (the major version is 1 for every Docker API so far); -1 when malformed. */
static int docker_api_minor(const char *v)
{
    if (!v || strncmp(v, "1.", 2) != 0 || !isdigit((unsigned char)v[2]))
        return -1;
    return atoi(v + 2);
}

/* Speaks the engine's own API version, capped at the newest this code knows, and never below the
 * engine's minimum (min < 0: unknown). */
static int docker_conn_set_api(struct docker_conn *k, int api, int min, struct err *e)
{
    if (api < 0)
        return err_set(e, ERR_INVALID, "the container engine at %s gave no API version", k->host);
    if (api < DOCKER_API_MIN_MINOR)
        return err_set(e, ERR_UNSUPPORTED, "the container engine at %s speaks API 1.%d; stepop needs 1.%d or later (Docker 19.03+)",
                       k->host, api, DOCKER_API_MIN_MINOR);
    if (api > DOCKER_API_MAX_MINOR)
        api = DOCKER_API_MAX_MINOR;
    if (min > api)
        api = min;
    snprintf(k->api, sizeof k->api, "v1.%d", api);
    return 0;
}

/* GET /_ping first: Podman names itself there (Libpod-Api-Version) and answers at once, where its
 * GET /version asks conmon and the OCI runtime for their versions (about 0.3 s). Docker's GET
 * /version is quick and gives the minimum API version, which /_ping does not. */
int docker_conn_probe(struct docker_conn *k, enum docker_engine want, int attempts, struct err *e)
{
    struct api_response ping;
    struct docker_call pc = { .method = "GET", .path = "/_ping", .unversioned = 1, .attempts = attempts,
                              .timeout_ms = 15000 };
    if (docker_do(k, &pc, &ping, e) < 0) {
        api_response_free(&ping);
        return -1;
    }
    const char *libpod = http_header(&ping.http, "libpod-api-version");
    if (libpod && isdigit((unsigned char)libpod[0]) && strlen(libpod) < sizeof k->libpod_api - 1) {
        snprintf(k->libpod_api, sizeof k->libpod_api, "v%s", libpod);
        str_copy(k->engine_version, sizeof k->engine_version, libpod);
        k->engine = want == DOCKER_ENGINE_AUTO ? DOCKER_ENGINE_PODMAN : want;
        int api = docker_api_minor(http_header(&ping.http, "api-version"));
        api_response_free(&ping);
        return docker_conn_set_api(k, api, -1, e);
    }
    api_response_free(&ping);

    struct api_response vr;
    struct docker_call call = { .method = "GET", .path = "/version", .unversioned = 1, .json_answer = 1,
                                .attempts = attempts, .timeout_ms = 15000 };
    if (docker_do(k, &call, &vr, e) < 0) {
        api_response_free(&vr);
        return -1;
    }
    const cJSON *v = vr.json;
    int detected = DOCKER_ENGINE_DOCKER;
    const cJSON *comps = cJSON_GetObjectItemCaseSensitive(v, "Components"), *it;
    cJSON_ArrayForEach(it, comps)
    {
        const char *name = json_str(it, "Name");
        if (name && strstr(name, "Podman")) {
            detected = DOCKER_ENGINE_PODMAN;
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "Details");
            const char *lv = json_str(d, "APIVersion");
            if (lv && isdigit((unsigned char)lv[0]) && strlen(lv) < sizeof k->libpod_api - 1)
                snprintf(k->libpod_api, sizeof k->libpod_api, "v%s", lv);
        }
    }
    const char *ver = json_str(v, "Version");
    str_copy(k->engine_version, sizeof k->engine_version, ver ? ver : "unknown");
    k->engine = want == DOCKER_ENGINE_AUTO ? (enum docker_engine)detected : want;
    if (!k->libpod_api[0])
        str_copy(k->libpod_api, sizeof k->libpod_api, "v4.0.0");
    int api = docker_api_minor(json_str(v, "ApiVersion"));
    int min = docker_api_minor(json_str(v, "MinAPIVersion"));
    api_response_free(&vr);
    return docker_conn_set_api(k, api, min, e);
}

void docker_conn_assume(struct docker_conn *k, enum docker_engine want)
{
    k->engine = want == DOCKER_ENGINE_AUTO ? DOCKER_ENGINE_DOCKER : want;
    snprintf(k->api, sizeof k->api, "v1.%d", DOCKER_API_MAX_MINOR);
    str_copy(k->libpod_api, sizeof k->libpod_api, "v4.0.0");
}

/* ---- images ---- */

/* Splits an image reference into the name and the tag or digest to pull (Docker pulls every
 * tag of a name given without one, so "latest" is explicit). */
static void docker_split_ref(const char *ref, char **name, char **tag)
{
    const char *at = strchr(ref, '@');
    if (at) {
        *name = xstrndup(ref, (size_t)(at - ref));
        *tag = xstrdup(at + 1);
        return;
    }
    const char *slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');
    if (colon && (!slash || colon > slash)) {
        *name = xstrndup(ref, (size_t)(colon - ref));
        *tag = xstrdup(colon + 1);
        return;
    }
    *name = xstrdup(ref);
    *tag = xstrdup("latest");
}

char *docker_pull_path(const char *image)
{
    char *name, *tag;
    docker_split_ref(image, &name, &tag);
    char *en = uri_encode(name, "/"), *et = uri_encode(tag, ":");
    char *p = xasprintf("/images/create?fromImage=%s&tag=%s", en, et);
    free(en);
    free(et);
    free(name);
    free(tag);
    return p;
}

int docker_image_inspect(struct docker_conn *k, const char *image, long *status, struct err *e)
{
    char *enc = uri_encode(image, "/:@");
    char *path = xasprintf("/images/%s/json", enc);
    free(enc);
    struct docker_call call = { .method = "GET", .path = path, .timeout_ms = 30000 };
    int rc = docker_do_status(k, &call, status, e);
    free(path);
    return rc;
}

/* The pull answer is a stream of JSON lines; an "error" member in any of them is the failure
 * (the HTTP status is 200 once the stream started). */
struct docker_pull_stream {
    struct buf line;
    char error[600];
};

static void docker_pull_line(struct docker_pull_stream *ps)
{
    cJSON *j = ps->line.len ? cJSON_ParseWithLength(ps->line.data, ps->line.len) : NULL;
    const char *err = json_str(j, "error");
    if (!err)
        err = json_str(cJSON_GetObjectItemCaseSensitive(j, "errorDetail"), "message");
    if (err && !ps->error[0])
        str_copy(ps->error, sizeof ps->error, err);
    cJSON_Delete(j);
    buf_free(&ps->line);
}

static int docker_pull_data(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)e;
    struct docker_pull_stream *ps = ctx;
    const char *p = data;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n')
            docker_pull_line(ps);
        else if (ps->line.len < 64 * 1024)
            buf_append(&ps->line, p + i, 1);
    }
    return 0;
}

int docker_image_pull(struct docker_conn *k, const char *image, struct err *e)
{
    char *path = docker_pull_path(image);
    struct docker_pull_stream ps = { 0 };
    struct docker_call call = { .method = "POST", .path = path, .attempts = 1, .on_data = docker_pull_data, .data_ctx = &ps };
    log_info("pulling image %s", image);
    int rc = docker_do_status(k, &call, NULL, e);
    if (ps.line.len)
        docker_pull_line(&ps);
    buf_free(&ps.line);
    free(path);
    if (rc < 0)
        return err_prefix(e, "pulling image %s failed: ", image);
    if (ps.error[0]) {
        char *safe = api_redact(ps.error, NULL);
        err_set(e, ERR_NOT_FOUND, "pulling image %s failed: %s", image, safe);
        free(safe);
        return -1;
    }
    return 0;
}

/* ---- containers ---- */

int docker_container_create(struct docker_conn *k, const char *name, int libpod, const cJSON *body, char **id,
                            long *status, struct err *e)
{
    char *path;
    *id = NULL;
    if (libpod) {
        path = xasprintf("/%s/libpod/containers/create", k->libpod_api);
    } else {
        char *en = uri_encode(name, NULL);
        path = xasprintf("/containers/create?name=%s", en);
        free(en);
    }
    struct docker_call create = { .method = "POST", .path = path, .unversioned = libpod, .body = body,
                                  .json_answer = 1, .attempts = 1, .timeout_ms = 120000 };
    struct api_response resp;
    int rc = docker_do(k, &create, &resp, e);
    *status = resp.status;
    if (rc == 0) {
        const char *cid = json_str(resp.json, "Id");
        if (cid && *cid)
            *id = xstrdup(cid);
        else
            rc = err_set(e, ERR_INVALID, "the engine answered without an Id");
    }
    api_response_free(&resp);
    free(path);
    return rc;
}

int docker_container_start(struct docker_conn *k, const char *id, struct err *e)
{
    char *path = xasprintf("/containers/%s/start", id);
    struct docker_call start = { .method = "POST", .path = path, .attempts = 1, .timeout_ms = 120000 };
    int rc = docker_do_status(k, &start, NULL, e);
    free(path);
    return rc;
}

int docker_container_inspect(struct docker_conn *k, const char *id, cJSON **out, long *status, struct err *e)
{
    char *path = xasprintf("/containers/%s/json", id);
    struct docker_call call = { .method = "GET", .path = path, .json_answer = 1, .timeout_ms = 30000 };
    struct api_response resp;
    int rc = docker_do(k, &call, &resp, e);
    *status = resp.status;
    *out = NULL;
    if (rc == 0) {
        *out = resp.json;
        resp.json = NULL;
    }
    api_response_free(&resp);
    free(path);
    return rc;
}

int docker_container_stop(struct docker_conn *k, const char *id, int64_t t, long *status, struct err *e)
{
    char *path = xasprintf("/containers/%s/stop?t=%lld", id, (long long)t);
    struct docker_call call = { .method = "POST", .path = path, .attempts = 1, .timeout_ms = 3000, .uncancellable = 1 };
    int rc = docker_do_status(k, &call, status, e);
    free(path);
    return rc;
}

int docker_container_remove(struct docker_conn *k, const char *id, int64_t timeout_ms, long *status, struct err *e)
{
    char *path = xasprintf("/containers/%s?force=1&v=1", id);
    struct docker_call call = { .method = "DELETE", .path = path, .attempts = 2, .timeout_ms = timeout_ms,
                                .uncancellable = 1 };
    int rc = docker_do_status(k, &call, status, e);
    free(path);
    return rc;
}
