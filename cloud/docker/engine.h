/* A client of the Docker Engine API (Docker, or Podman's Docker-compatible service) on a unix
 * socket or plain tcp: where the engine is (DOCKER_HOST), which engine answers and which API
 * version to speak, and the calls the docker flavor makes. Calls that change state are sent once
 * (a retried create or start could act twice); reads use the HTTP layer's retries. A failure's
 * message is the engine's own, after "METHOD PATH: HTTP STATUS: ". */
#ifndef STEPOP_DOCKER_ENGINE_H
#define STEPOP_DOCKER_ENGINE_H

#include "../../runtime/err.h"
#include "../../runtime/http.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"

enum docker_engine { DOCKER_ENGINE_AUTO = 0, DOCKER_ENGINE_DOCKER, DOCKER_ENGINE_PODMAN };

/* A connection to the engine. */
struct docker_conn {
    char *host;    /* as configured, for messages and the handle */
    char *sock;    /* unix socket path, or NULL for tcp */
    char *base;    /* http://docker or http://host:port */
    char api[16];  /* "v1.41" */
    char libpod_api[24];
    enum docker_engine engine;
    char engine_version[64];
    struct http_client *http;
};

const char *docker_engine_name(enum docker_engine k);

/* DOCKER_HOST as given by host_setting (settings.host), else the variable, else the first socket
 * that exists of Docker's and Podman's usual places. Asks nothing yet. */
int docker_conn_open(const char *host_setting, struct docker_conn *k, struct err *e);
void docker_conn_free(struct docker_conn *k);
/* Which engine answers (want forces it unless DOCKER_ENGINE_AUTO) and which API version to
 * speak: fills engine, engine_version, api and libpod_api. attempts: 0 for the HTTP default. */
int docker_conn_probe(struct docker_conn *k, enum docker_engine want, int attempts, struct err *e);
/* What probe would have found from an engine that does not answer (for --dry-run): want, else
 * Docker, at the newest API version this client knows. */
void docker_conn_assume(struct docker_conn *k, enum docker_engine want);

/* The path of POST /images/create for an image reference (after the API version prefix). Caller
 * frees. */
char *docker_pull_path(const char *image);
/* GET /images/{name}/json: 0 when the image is there; *status gets the HTTP status (404: not). */
int docker_image_inspect(struct docker_conn *k, const char *image, long *status, struct err *e);
/* POST /images/create, following the engine's progress stream (its "error" lines are failures). */
int docker_image_pull(struct docker_conn *k, const char *image, struct err *e);

/* POST /containers/create?name=NAME with Docker's body, or Podman's own POST
 * /libpod/containers/create (libpod: the body names the container). *id gets the container's id
 * (caller frees); *status the HTTP status (409: the name is taken, 404: no such image). */
int docker_container_create(struct docker_conn *k, const char *name, int libpod, const cJSON *body, char **id,
                            long *status, struct err *e);
/* POST /containers/{id}/start. */
int docker_container_start(struct docker_conn *k, const char *id, struct err *e);
/* GET /containers/{id}/json: *out gets the answer (caller frees); *status the HTTP status. */
int docker_container_inspect(struct docker_conn *k, const char *id, cJSON **out, long *status, struct err *e);
/* POST /containers/{id}/stop?t=T, waiting 3 s at most for the answer (the engine carries on with
 * the stop when the client stops waiting); goes out even after a signal. */
int docker_container_stop(struct docker_conn *k, const char *id, int64_t t, long *status, struct err *e);
/* DELETE /containers/{id}?force=1&v=1 (tried twice); goes out even after a signal. */
int docker_container_remove(struct docker_conn *k, const char *id, int64_t timeout_ms, long *status, struct err *e);

#endif
