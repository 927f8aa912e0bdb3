/* The docker flavor: one container per step through the Docker Engine API (Docker, or Podman's
 * Docker-compatible service) over DOCKER_HOST, with `stepop run` as its entrypoint. This file
 * holds its operations (flavor_docker_ops): validate, render, submit, poll, cancel, cleanup.
 * Settings and behaviour: docs/flavors.md#docker; adding stepop to an image: docs/containers.md. */
#include "docker.h"

#include "../../runtime/jsonutil.h"
#include "../../runtime/doctor.h"
#include "../../runtime/log.h"
#include "../../runtime/units.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- validate, render ---- */

static int docker_validate(const struct job *j, struct err *e)
{
    struct docker_cfg c;
    struct docker_mounts ms = { 0 };
    int rc = docker_parse_settings(j->settings, j->stepop_path, 1, &c, e);
    if (rc == 0)
        rc = docker_check_job(j, &c, e);
    if (rc == 0)
        rc = docker_collect_mounts(j, &c, 0, &ms, e);
    docker_mounts_free(&ms);
    docker_cfg_free(&c);
    return rc;
}

static cJSON *docker_request_json(const char *method, const char *path, cJSON *body, const char *when)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", method);
    cJSON_AddStringToObject(r, "path", path);
    if (when)
        cJSON_AddStringToObject(r, "when", when);
    if (body)
        cJSON_AddItemToObject(r, "body", body);
    return r;
}

static int docker_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct docker_cfg c;
    struct docker_conn k;
    struct docker_mounts ms = { 0 };
    *requests = NULL;
    if (docker_parse_settings(j->settings, j->stepop_path, 1, &c, e) < 0 || docker_check_job(j, &c, e) < 0 ||
        docker_collect_mounts(j, &c, 0, &ms, e) < 0) {
        docker_cfg_free(&c);
        docker_mounts_free(&ms);
        return -1;
    }
    cJSON *out = cJSON_CreateObject();
    /* Only GET /_ping (and GET /version on Docker) is asked, to name the engine and the API version as submit would. */
    if (docker_conn_open(c.host, &k, e) < 0) {
        docker_cfg_free(&c);
        docker_mounts_free(&ms);
        cJSON_Delete(out);
        return -1;
    }
    struct err pe = { 0 };
    if (docker_conn_probe(&k, c.engine, 1, &pe) < 0) {
        docker_conn_assume(&k, c.engine);
        cJSON_AddStringToObject(out, "note", "the engine did not answer GET /_ping; engine and API version are assumed");
    }
    cJSON_AddStringToObject(out, "host", k.host);
    cJSON_AddStringToObject(out, "engine", docker_engine_name(k.engine));
    cJSON *reqs = cJSON_AddArrayToObject(out, "requests");
    char *name = docker_container_name(j->m);
    char *pull = docker_pull_path(j->m->image);
    char *p;
    if (c.pull != DOCKER_PULL_NEVER) {
        p = xasprintf("/%s%s", k.api, pull);
        cJSON_AddItemToArray(reqs, docker_request_json("POST", p, NULL,
                                                       c.pull == DOCKER_PULL_ALWAYS ? "always (settings.pull)"
                                                                                    : "the image is not present (pull: missing)"));
        free(p);
    }
    if (docker_use_libpod(j, &c, k.engine)) {
        p = xasprintf("/%s/libpod/containers/create", k.libpod_api);
        cJSON_AddItemToArray(reqs, docker_request_json("POST", p, docker_libpod_body(j, &c, &ms, name, 1), NULL));
    } else {
        p = xasprintf("/%s/containers/create?name=%s", k.api, name);
        cJSON_AddItemToArray(reqs, docker_request_json("POST", p, docker_create_body(j, &c, k.engine, &ms, 1), NULL));
    }
    free(p);
    p = xasprintf("/%s/containers/%s/start", k.api, name);
    cJSON_AddItemToArray(reqs, docker_request_json("POST", p, NULL, NULL));
    free(p);
    free(pull);
    free(name);
    docker_conn_free(&k);
    docker_cfg_free(&c);
    docker_mounts_free(&ms);
    *requests = out;
    return 0;
}

/* ---- submit ---- */

/* Makes sure the image is there per settings.pull. */
static int docker_ensure_image(struct docker_conn *k, const struct docker_cfg *c, const char *image, struct err *e)
{
    if (c->pull == DOCKER_PULL_ALWAYS)
        return docker_image_pull(k, image, e);
    long st;
    if (docker_image_inspect(k, image, &st, e) == 0)
        return 0;
    if (st != 404)
        return err_prefix(e, "looking up image %s: ", image);
    if (c->pull == DOCKER_PULL_NEVER)
        return err_set(e, ERR_NOT_FOUND, "image %s is not on the engine at %s, and settings.pull is never", image, k->host);
    err_clear(e);
    return docker_image_pull(k, image, e);
}

static void docker_remove(struct docker_conn *k, const char *id)
{
    struct err e = { 0 };
    if (docker_container_remove(k, id, 30000, NULL, &e) < 0 && e.http_status != 404)
        log_warn("removing container %s: %s", id, e.msg);
}

/* What to do when the engine could not give the container its GPUs. */
static void docker_gpu_hint(struct err *e)
{
    if (strstr(e->msg, "CDI") || strstr(e->msg, "cdi"))
        err_prefix(e, "GPUs through CDI (is the CDI spec generated? nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml): ");
    else if (strstr(e->msg, "device driver"))
        err_prefix(e, "GPUs (is the NVIDIA Container Toolkit installed and configured for Docker?): ");
}

static int docker_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct docker_cfg c;
    struct docker_conn k = { 0 };
    struct docker_mounts ms = { 0 };
    cJSON *body = NULL;
    char *name = NULL, *id = NULL;
    int rc = -1;
    *handle = NULL;
    if (docker_parse_settings(j->settings, j->stepop_path, 1, &c, e) < 0)
        goto out;
    if (docker_check_job(j, &c, e) < 0 || docker_collect_mounts(j, &c, 1, &ms, e) < 0 ||
        docker_conn_open(c.host, &k, e) < 0 || docker_conn_probe(&k, c.engine, 0, e) < 0)
        goto out;
    if (j->m->gpus > 0 && k.engine == DOCKER_ENGINE_PODMAN && c.gpu == DOCKER_GPU_NVIDIA) {
        err_set(e, ERR_INVALID, "settings.gpu_driver: Podman takes GPUs through CDI only (gpu_driver auto or cdi)");
        goto out;
    }
    if (docker_ensure_image(&k, &c, j->m->image, e) < 0)
        goto out;

    name = docker_container_name(j->m);
    int libpod = docker_use_libpod(j, &c, k.engine);
    body = libpod ? docker_libpod_body(j, &c, &ms, name, 0) : docker_create_body(j, &c, k.engine, &ms, 0);
    long st;
    if (docker_container_create(&k, name, libpod, body, &id, &st, e) < 0) {
        if (st == 409)
            err_prefix(e, "a container named %s exists already (an earlier submit of run %s? remove it with "
                          "'docker rm -f %s'): ", name, j->m->run_id, name);
        else if (st == 404)
            err_set(e, ERR_NOT_FOUND, "image %s is not on the engine at %s: %s", j->m->image, k.host, e->msg);
        else
            docker_gpu_hint(e);
        err_prefix(e, "creating the container: ");
        goto out;
    }
    if (docker_container_start(&k, id, e) < 0) {
        if (strstr(e->msg, "executable file not found") || strstr(e->msg, "no such file or directory"))
            err_prefix(e, c.inject ? "the injected stepop could not start in image %s (it needs a glibc image): "
                                   : "image %s has no stepop on its PATH (add it, see docs/containers.md, or set "
                                     "settings.inject: true): ",
                       j->m->image);
        else
            docker_gpu_hint(e);
        err_prefix(e, "starting container %s: ", name);
        if (!c.keep)
            docker_remove(&k, id);
        goto out;
    }
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "engine", docker_engine_name(k.engine));
    cJSON_AddStringToObject(h, "engine_version", k.engine_version);
    cJSON_AddStringToObject(h, "host", k.host);
    cJSON_AddStringToObject(h, "api", k.api);
    cJSON_AddStringToObject(h, "id", id);
    cJSON_AddStringToObject(h, "name", name);
    cJSON_AddStringToObject(h, "run_id", j->m->run_id);
    cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
    cJSON_AddStringToObject(h, "image", j->m->image);
    cJSON_AddNumberToObject(h, "stop_timeout", (double)docker_stop_seconds(j->m->grace_ms, c.stop_margin_ms));
    cJSON_AddNumberToObject(h, "memory", (double)j->m->memory);
    *handle = h;
    log_info("started container %s (%.12s) on %s %s", name, id, docker_engine_name(k.engine), k.engine_version);
    rc = 0;
out:
    free(id);
    free(name);
    cJSON_Delete(body);
    docker_mounts_free(&ms);
    docker_conn_free(&k);
    docker_cfg_free(&c);
    return rc;
}

/* ---- poll, cancel, cleanup: from the handle, also in another process ---- */

static int docker_handle_conn(const cJSON *handle, struct docker_conn *k, const char **id, struct err *e)
{
    const char *host = json_str(handle, "host"), *api = json_str(handle, "api"), *run_id = json_str(handle, "run_id");
    *id = json_str(handle, "id");
    if (!host || !*id || !api || strlen(api) >= sizeof k->api || !run_id)
        return err_set(e, ERR_INVALID, "the docker flavor's handle lacks host, api, id or run_id");
    /* The id goes into API paths: an engine's container id, nothing that could name another path. */
    size_t n = strspn(*id, "0123456789abcdef");
    if (n == 0 || n > 64 || (*id)[n])
        return err_set(e, ERR_REFUSED, "the docker flavor's handle: \"%s\" is not a container id", *id);
    if (docker_conn_open(host, k, e) < 0)
        return -1;
    str_copy(k->api, sizeof k->api, api);
    return 0;
}

static int docker_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    (void)settings;
    struct docker_conn k;
    const char *id;
    memset(st, 0, sizeof *st);
    if (docker_handle_conn(handle, &k, &id, e) < 0)
        return -1;
    cJSON *j;
    long status;
    int rc = docker_container_inspect(&k, id, &j, &status, e);
    if (rc < 0) {
        docker_conn_free(&k);
        if (status == 404) {
            err_clear(e);
            st->phase = REMOTE_GONE;
            snprintf(st->message, sizeof st->message, "container %.12s no longer exists", id);
            return 0;
        }
        return -1;
    }
    /* The handle may be forged (flavor.h): act only on the container labelled with its run. */
    const char *label = json_str(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "Config"), "Labels"),
                                 DOCKER_LABEL_RUN);
    const char *run_id = json_str(handle, "run_id");
    if (!label || strcmp(label, run_id) != 0) {
        err_set(e, ERR_REFUSED, "container %.12s is not run %s's (its label " DOCKER_LABEL_RUN " is %s%s%s); refusing to "
                "act on it", id, run_id, label ? "\"" : "", label ? label : "missing", label ? "\"" : "");
        cJSON_Delete(j);
        docker_conn_free(&k);
        return -1;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "State");
    const char *status_s = json_str(s, "Status");
    const char *error = json_str(s, "Error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(s, "ExitCode");
    st->oom_killed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "OOMKilled"));
    if (!status_s) {
        rc = err_set(e, ERR_INVALID, "inspecting container %.12s: no State.Status in the answer", id);
    } else if (strcmp(status_s, "created") == 0 || strcmp(status_s, "configured") == 0 ||
               strcmp(status_s, "initialized") == 0) {
        st->phase = REMOTE_PENDING;
        snprintf(st->message, sizeof st->message, "container %.12s is %s", id, status_s);
    } else if (strcmp(status_s, "running") == 0 || strcmp(status_s, "paused") == 0 ||
               strcmp(status_s, "restarting") == 0 || strcmp(status_s, "stopping") == 0) {
        st->phase = REMOTE_RUNNING;
        snprintf(st->message, sizeof st->message, "container %.12s is %s", id, status_s);
    } else {
        /* exited, dead, removing, stopped */
        st->phase = REMOTE_EXITED;
        st->exit_code = cJSON_IsNumber(code) ? code->valueint : -1;
        const cJSON *mem = cJSON_GetObjectItemCaseSensitive(handle, "memory");
        char lim[32] = "";
        if (cJSON_IsNumber(mem) && mem->valuedouble > 0)
            units_format_size((int64_t)mem->valuedouble, lim, sizeof lim);
        if (st->oom_killed)
            snprintf(st->message, sizeof st->message,
                     "the container was killed for exceeding its memory limit%s%s (exit code %d)", lim[0] ? " of " : "",
                     lim, st->exit_code);
        else if (error && *error)
            snprintf(st->message, sizeof st->message, "container %.12s %s with exit code %d: %s", id, status_s,
                     st->exit_code, error);
        else
            snprintf(st->message, sizeof st->message, "container %.12s %s with exit code %d", id, status_s, st->exit_code);
    }
    cJSON_Delete(j);
    docker_conn_free(&k);
    return rc;
}

/* POST /containers/{id}/stop?t=T: the engine sends SIGTERM, and SIGKILL after T seconds, T being
 * the step's grace period plus settings.stop_margin, so that `stepop run` inside (which kills the
 * step after the grace period) still has time to ship logs, upload outputs and write the final
 * status. The engine answers only once the container stopped, and both Docker and Podman carry on
 * with a stop when the client stops waiting, so this waits a few seconds at most: cancel returns
 * once asked. The inspect first tells a reachable engine from a stop still under way. A grace of
 * 0 stops with t=0: SIGTERM and SIGKILL at once. */
static int docker_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    struct docker_cfg c;
    struct docker_conn k;
    const char *id;
    int rc = docker_parse_settings(settings, NULL, 0, &c, e);
    docker_cfg_free(&c);
    if (rc < 0)
        return -1;
    struct remote_state st;
    if (docker_poll(handle, settings, &st, e) < 0)
        return err_prefix(e, "stopping the container: ");
    if (st.phase == REMOTE_EXITED || st.phase == REMOTE_GONE)
        return 0;
    if (docker_handle_conn(handle, &k, &id, e) < 0)
        return -1;
    /* No grace (the submitter's last resort, or a job that never started): SIGKILL at once. */
    int64_t t = grace_ms > 0 ? docker_stop_seconds(grace_ms, c.stop_margin_ms) : 0;
    long status;
    rc = docker_container_stop(&k, id, t, &status, e);
    if (rc < 0 && (status == 304 || status == 404)) {
        rc = 0; /* stopped meanwhile, or gone */
        err_clear(e);
    } else if (rc < 0 && status == 0 && e->kind == ERR_NETWORK) {
        rc = 0; /* asked (the engine answered the inspect just now); it goes on with the stop */
        log_debug("stop of container %.12s asked (t=%llds); not waiting for it: %s", id, (long long)t, e->msg);
        err_clear(e);
    }
    if (rc < 0)
        err_prefix(e, "stopping container %.12s: ", id);
    docker_conn_free(&k);
    return rc;
}

static int docker_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    int keep = 0;
    if (flavor_setting_bool(settings, "keep", 0, &keep, e) < 0)
        return -1;
    if (keep)
        return 0;
    /* The inspect checks the container is the run's (flavor.h) before anything is removed. */
    struct remote_state st;
    if (docker_poll(handle, settings, &st, e) < 0)
        return err_prefix(e, "removing the container: ");
    if (st.phase == REMOTE_GONE)
        return 0;
    struct docker_conn k;
    const char *id;
    if (docker_handle_conn(handle, &k, &id, e) < 0)
        return -1;
    long status;
    int rc = docker_container_remove(&k, id, 60000, &status, e);
    if (rc < 0 && status == 404) {
        rc = 0;
        err_clear(e);
    }
    if (rc < 0)
        err_prefix(e, "removing container %.12s: ", id);
    docker_conn_free(&k);
    return rc;
}

/* `stepop doctor`: the engine answers GET /_ping and /version (nothing else is asked). */
static void docker_doctor(const cJSON *settings, struct doctor *d)
{
    struct docker_cfg c;
    struct docker_conn k;
    struct err e = { 0 };
    if (docker_parse_settings(settings, NULL, 0, &c, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "flavor docker", "%s", e.msg);
        docker_cfg_free(&c);
        return;
    }
    if (docker_conn_open(c.host, &k, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "flavor docker", "%s (hint: set DOCKER_HOST or settings.host)", e.msg);
    } else {
        if (docker_conn_probe(&k, c.engine, 1, &e) < 0)
            doctor_add(d, DOCTOR_FAIL, "flavor docker", "%s", e.msg); /* the message names the engine and the fix */
        else
            doctor_add(d, DOCTOR_OK, "flavor docker", "%s %s at %s (API %s)", docker_engine_name(k.engine),
                       k.engine_version, k.host, k.api);
        docker_conn_free(&k);
    }
    docker_cfg_free(&c);
}

const struct flavor_ops flavor_docker_ops = {
    .name = "docker",
    .validate = docker_validate,
    .render = docker_render,
    .submit = docker_submit,
    .poll = docker_poll,
    .cancel = docker_cancel,
    .cleanup = docker_cleanup,
    .doctor = docker_doctor,
};
