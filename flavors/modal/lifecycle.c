/* The modal flavor: one Modal sandbox per step, with `stepop run` as its entrypoint, through
 * Modal's gRPC API (cloud/modal/) with the credentials Modal's clients use. This file holds its
 * operations (flavor_modal_ops): validate, render, submit, poll, cancel, cleanup, and the sandbox
 * logs quoted when the entrypoint never wrote a status. docs/flavors.md#modal. */
#include "modal.h"

#include "../follow.h"

#include "../../cloud/modal/auth.h"
#include "../../cloud/modal/grpc.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/timeutil.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Unary calls' limit; streams ask the server to answer within MD_STREAM_S. */
#define MD_CALL_MS 60000
#define MD_STREAM_S 50.0f

struct md_conn {
    struct md_cfg cfg;
    struct modal_auth auth;
    struct grpc_channel ch;
};

static void md_conn_close(struct md_conn *k)
{
    grpc_channel_free(&k->ch);
    modal_auth_free(&k->auth);
}

/* Credentials, settings and a channel; need_creds: refuse when there are none. */
static int md_conn_open(const cJSON *settings, struct md_conn *k, int need_creds, struct err *e)
{
    memset(k, 0, sizeof *k);
    if (md_parse_settings(settings, &k->cfg, e) < 0 || modal_auth_load(&k->auth, k->cfg.server_url, e) < 0)
        return -1;
    if (k->cfg.environment) {
        free(k->auth.environment);
        k->auth.environment = xstrdup(k->cfg.environment);
    }
    if ((need_creds && modal_auth_require(&k->auth, e) < 0) ||
        grpc_channel_init(&k->ch, k->auth.server_url, modal_auth_headers, &k->auth, e) < 0) {
        modal_auth_free(&k->auth);
        return -1;
    }
    k->auth.ch = &k->ch;
    k->ch.reauth = modal_auth_reauth;
    return 0;
}

static int md_call(struct md_conn *k, const char *method, struct buf *req, struct buf *resp, struct err *e)
{
    int rc = grpc_unary(&k->ch, method, req, resp, MD_CALL_MS, e);
    buf_free(req);
    return rc;
}

/* ---- validate, render ---- */

static int md_prepare(const struct job *j, struct md_cfg *c, struct err *e)
{
    return md_parse_settings(j->settings, c, e) < 0 || md_check_job(j, c, e) < 0 ? -1 : 0;
}

static int md_validate(const struct job *j, struct err *e)
{
    struct md_cfg c;
    return md_prepare(j, &c, e);
}

static int md_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct md_conn k;
    *requests = NULL;
    /* The job is checked before the credentials are read, so that its errors come first; the
     * connection's settings are parsed afresh, and checked again to fill gpu_count. */
    if (md_prepare(j, &k.cfg, e) < 0 || md_conn_open(j->settings, &k, 0, e) < 0)
        return -1;
    if (md_check_job(j, &k.cfg, e) < 0) {
        md_conn_close(&k);
        return -1;
    }
    struct md_plan p;
    md_plan_build(j, &k.cfg, &p);
    *requests = md_plan_render(&p, &k.cfg, j, k.ch.base, k.auth.environment);
    md_plan_free(&p);
    md_conn_close(&k);
    return 0;
}

/* ---- submit ---- */

static int md_ephemeral_secret(struct md_conn *k, const char *const *names, const char *const *values, int n,
                               char **id, struct err *e)
{
    struct buf req = { 0 }, resp = { 0 };
    modal_enc_secret_ephemeral(&req, k->auth.environment, names, values, n);
    /* The request holds the values: wipe it once sent. */
    int rc = grpc_unary(&k->ch, "SecretGetOrCreate", &req, &resp, MD_CALL_MS, e);
    memset(req.data, 0, req.len);
    buf_free(&req);
    if (rc == 0 && (modal_dec_string(&resp, 1, id, e) < 0 || !*id))
        rc = *id ? -1 : err_set(e, ERR_INVALID, "SecretGetOrCreate: the answer names no secret");
    buf_free(&resp);
    return rc;
}

struct md_join {
    struct modal_logs logs;
    int done;
    struct err *e;
};

static int md_join_msg(void *ctx, const uint8_t *msg, size_t n, struct err *e)
{
    struct md_join *jn = ctx;
    struct buf b = { (char *)msg, n, 0 };
    struct modal_logs l;
    memset(&l, 0, sizeof l);
    if (modal_dec_image_join(&b, &l, e) < 0)
        return -1;
    /* Build logs go to stderr as they come, as Modal's clients show them. */
    if (l.text.len)
        fwrite(l.text.data, 1, l.text.len, stderr);
    if (l.entry_id) {
        free(jn->logs.entry_id);
        jn->logs.entry_id = l.entry_id;
        l.entry_id = NULL;
    }
    if (l.result.present && l.result.status != MODAL_ST_UNSPECIFIED) {
        modal_result_free(&jn->logs.result);
        jn->logs.result = l.result;
        memset(&l.result, 0, sizeof l.result);
        jn->done = 1;
    }
    modal_logs_free(&l);
    return jn->done ? 1 : 0;
}

/* ImageGetOrCreate, then ImageJoinStreaming (resumed from the last entry id) until the build has
 * a result. */
static int md_image(struct md_conn *k, const char *app_id, const char *image, const char *reg_secret,
                    const char *builder_version, char **image_id, struct err *e)
{
    struct buf req = { 0 }, resp = { 0 };
    struct modal_result r;
    memset(&r, 0, sizeof r);
    *image_id = NULL;
    modal_enc_image_get_or_create(&req, app_id, image, reg_secret, builder_version);
    int rc = md_call(k, "ImageGetOrCreate", &req, &resp, e);
    if (rc == 0 && modal_dec_image_get_or_create(&resp, image_id, &r, e) == 0 && !*image_id)
        rc = err_set(e, ERR_INVALID, "ImageGetOrCreate: the answer names no image");
    else if (rc == 0 && !*image_id)
        rc = -1;
    buf_free(&resp);
    struct md_join jn;
    memset(&jn, 0, sizeof jn);
    if (rc == 0 && (!r.present || r.status == MODAL_ST_UNSPECIFIED)) {
        log_info("building image %s for %s", *image_id, image);
        int64_t deadline = time_mono_ms() + k->cfg.image_build_timeout_s * 1000;
        while (rc == 0 && !jn.done) {
            if (time_mono_ms() > deadline) {
                rc = err_set(e, ERR_NETWORK, "image %s (%s) was not built within settings.image_build_timeout (%llds)",
                             *image_id, image, (long long)k->cfg.image_build_timeout_s);
                break;
            }
            modal_enc_image_join(&req, *image_id, MD_STREAM_S, jn.logs.entry_id);
            rc = grpc_stream(&k->ch, "ImageJoinStreaming", &req, md_join_msg, &jn, (int64_t)(MD_STREAM_S * 1000) + 10000,
                             e);
            buf_free(&req);
            /* A stream cut short is resumed, as the SDK does; anything else fails. */
            if (rc < 0 && (e->transient || e->http_status == GRPC_DEADLINE_EXCEEDED) && e->kind != ERR_CANCELLED) {
                log_debug("ImageJoinStreaming: %s; resuming", e->msg);
                err_clear(e);
                rc = 0;
            }
        }
        if (rc == 0) {
            modal_result_free(&r);
            r = jn.logs.result;
            memset(&jn.logs.result, 0, sizeof jn.logs.result);
        }
    }
    modal_logs_free(&jn.logs);
    if (rc == 0 && r.status != MODAL_ST_SUCCESS)
        rc = err_set(e, ERR_INVALID, "building image %s from %s: %s%s%.400s", *image_id, image,
                     modal_status_name(r.status), r.exception ? ": " : "", r.exception ? r.exception : "");
    modal_result_free(&r);
    if (rc < 0) {
        free(*image_id);
        *image_id = NULL;
    }
    return rc;
}

static int md_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct md_conn k;
    *handle = NULL;
    if (md_conn_open(j->settings, &k, 1, e) < 0)
        return -1;
    if (md_check_job(j, &k.cfg, e) < 0) {
        md_conn_close(&k);
        return -1;
    }
    struct md_plan p;
    md_plan_build(j, &k.cfg, &p);
    char *app_id = NULL, *env_id = NULL, *builder = NULL, *secret_id = NULL, *reg_id = NULL, *image_id = NULL,
         *sandbox_id = NULL;
    struct buf req = { 0 }, resp = { 0 };
    modal_enc_app_get_or_create(&req, k.cfg.app, k.auth.environment);
    int rc = md_call(&k, "AppGetOrCreate", &req, &resp, e);
    if (rc == 0 && (modal_dec_string(&resp, 1, &app_id, e) < 0 || !app_id))
        rc = app_id ? -1 : err_set(e, ERR_INVALID, "AppGetOrCreate: the answer names no app");
    buf_free(&resp);
    if (rc == 0) {
        modal_enc_environment_get_or_create(&req, k.auth.environment);
        rc = md_call(&k, "EnvironmentGetOrCreate", &req, &resp, e);
        if (rc == 0)
            rc = modal_dec_environment(&resp, &env_id, &builder, e);
        buf_free(&resp);
    }
    if (rc == 0)
        rc = md_ephemeral_secret(&k, (const char *const *)p.env_names, (const char *const *)p.env_values, p.env_count,
                                 &secret_id, e);
    if (rc == 0 && k.cfg.private_registry) {
        const char *names[] = { "REGISTRY_USERNAME", "REGISTRY_PASSWORD" };
        const char *values[] = { getenv("REGISTRY_USERNAME"), getenv("REGISTRY_PASSWORD") };
        rc = md_ephemeral_secret(&k, names, values, 2, &reg_id, e);
    }
    if (rc == 0)
        rc = md_image(&k, app_id, j->m->image, reg_id, builder, &image_id, e);
    if (rc == 0) {
        struct modal_sandbox s;
        md_plan_sandbox(&p, &k.cfg, &s);
        s.app_id = app_id;
        s.image_id = image_id;
        s.secret_ids = (const char *const *)&secret_id;
        s.secret_count = 1;
        modal_enc_sandbox_create(&req, &s);
        rc = md_call(&k, "SandboxCreate", &req, &resp, e);
        if (rc == 0 && (modal_dec_string(&resp, 1, &sandbox_id, e) < 0 || !sandbox_id))
            rc = sandbox_id ? -1 : err_set(e, ERR_INVALID, "SandboxCreate: the answer names no sandbox");
        buf_free(&resp);
    }
    if (rc < 0) {
        err_prefix(e, "creating Modal sandbox %s: ", p.name);
    } else {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "sandbox_id", sandbox_id);
        cJSON_AddStringToObject(h, "app_id", app_id);
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
        log_info("created Modal sandbox %s (app %s%s%s)", sandbox_id, k.cfg.app, p.gpu_type ? ", GPU " : "",
                 p.gpu_type ? p.gpu_type : "");
    }
    free(app_id);
    free(env_id);
    free(builder);
    free(secret_id);
    free(reg_id);
    free(image_id);
    free(sandbox_id);
    md_plan_free(&p);
    md_conn_close(&k);
    return rc;
}

/* ---- poll, cancel, cleanup: from the handle, also in another process ---- */

struct md_target {
    struct md_conn k;
    const char *id;
};

/* The sandbox the handle names, only when its id looks like one; whose it is, its tags say. */
static int md_target_open(const cJSON *handle, const cJSON *settings, struct md_target *t, struct err *e)
{
    memset(t, 0, sizeof *t);
    const char *id = json_str(handle, "sandbox_id");
    if (!id || !json_str(handle, "run_id") || !json_str(handle, "run_uri"))
        return err_set(e, ERR_INVALID, "the modal flavor's handle lacks sandbox_id, run_id or run_uri");
    static const char *const id_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    if (!id[0] || strlen(id) > 128 || strspn(id, id_chars) != strlen(id))
        return err_set(e, ERR_REFUSED, "the handle names \"%.160s\", which is not a Modal sandbox id; refusing to act on "
                       "it", id);
    if (md_conn_open(settings, &t->k, 1, e) < 0)
        return -1;
    t->id = id;
    return 0;
}

/* The sandbox's tags must name the handle's run (flavor.h: handles are untrusted); *gone when
 * Modal does not know the sandbox. */
static int md_verify_tags(struct md_target *t, const cJSON *handle, int *gone, struct err *e)
{
    /* Tags do not change under a sandbox: once verified for a run, the follow loop's polls need
     * not ask again. */
    static char verified[512];
    char *key = xasprintf("%s %s %s", t->id, json_str(handle, "run_id"), json_str(handle, "run_uri"));
    *gone = 0;
    if (!strcmp(verified, key)) {
        free(key);
        return 0;
    }
    struct buf req = { 0 }, resp = { 0 };
    char *id = NULL, *uri = NULL;
    modal_enc_sandbox_id(&req, t->id, -1);
    int rc = md_call(&t->k, "SandboxTagsGet", &req, &resp, e);
    if (rc < 0 && e->kind == ERR_NOT_FOUND) {
        *gone = 1;
        buf_free(&resp);
        free(key);
        return -1;
    }
    if (rc == 0 && (modal_dec_tag(&resp, MD_TAG_RUN_ID, &id, e) < 0 || modal_dec_tag(&resp, MD_TAG_RUN_URI, &uri, e) < 0))
        rc = -1;
    char *want_uri = md_uri_tag(json_str(handle, "run_uri"));
    if (rc == 0 && (!id || strcmp(id, json_str(handle, "run_id")) != 0 || !uri || strcmp(uri, want_uri) != 0))
        rc = err_set(e, ERR_REFUSED, "Modal sandbox %s is not run %s's (its tag " MD_TAG_RUN_ID " is %s%.70s%s, "
                     MD_TAG_RUN_URI " %s%.70s%s); refusing to act on it", t->id, json_str(handle, "run_id"),
                     id ? "\"" : "", id ? id : "missing", id ? "\"" : "", uri ? "\"" : "", uri ? uri : "missing",
                     uri ? "\"" : "");
    if (rc == 0)
        str_copy(verified, sizeof verified, key);
    free(key);
    free(want_uri);
    free(id);
    free(uri);
    buf_free(&resp);
    return rc;
}

/* SandboxWait with timeout 0: the result when the sandbox has ended (r->present and a status). */
static int md_wait0(struct md_target *t, struct modal_result *r, struct err *e)
{
    struct buf req = { 0 }, resp = { 0 };
    memset(r, 0, sizeof *r);
    modal_enc_sandbox_id(&req, t->id, 0);
    int rc = md_call(&t->k, "SandboxWait", &req, &resp, e);
    /* A wait that ran out is no failure: the sandbox is still running. */
    if (rc < 0 && e->http_status == GRPC_DEADLINE_EXCEEDED) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        rc = modal_dec_result_at(&resp, 1, r, e);
    }
    buf_free(&resp);
    return rc;
}

struct md_tail {
    struct modal_logs logs;
    struct buf text;
    int eof;
};

static int md_tail_msg(void *ctx, const uint8_t *msg, size_t n, struct err *e)
{
    struct md_tail *tl = ctx;
    struct buf b = { (char *)msg, n, 0 };
    struct modal_logs l;
    memset(&l, 0, sizeof l);
    if (modal_dec_logs_batch(&b, &l, e) < 0)
        return -1;
    if (l.text.len)
        buf_append(&tl->text, l.text.data, l.text.len);
    if (l.entry_id) {
        free(tl->logs.entry_id);
        tl->logs.entry_id = l.entry_id;
        l.entry_id = NULL;
    }
    tl->eof |= l.eof;
    modal_logs_free(&l);
    return tl->eof ? 1 : 0;
}

/* The sandbox's last output lines (stderr, then stdout when stderr is empty), on one line. */
static void md_log_tail(struct md_target *t, char *out, size_t len)
{
    out[0] = 0;
    static const int fds[] = { MODAL_FD_STDERR, MODAL_FD_STDOUT };
    for (size_t f = 0; f < 2 && !out[0]; f++) {
        struct md_tail tl;
        memset(&tl, 0, sizeof tl);
        /* Resumed from the last entry id when the stream ends before eof, a few times. */
        for (int tries = 0; tries < 4 && !tl.eof; tries++) {
            struct buf req = { 0 };
            struct err e = { 0 };
            modal_enc_sandbox_logs(&req, t->id, fds[f], 5.0f, tl.logs.entry_id);
            int rc = grpc_stream(&t->k.ch, "SandboxGetLogs", &req, md_tail_msg, &tl, 15000, &e);
            buf_free(&req);
            if (rc < 0) {
                log_debug("the sandbox's logs: %s", e.msg);
                break;
            }
        }
        /* The last lines that fit, newlines as " | ". */
        const char *s = tl.text.data ? tl.text.data : "";
        size_t n = tl.text.len;
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
            n--;
        size_t start = n > len - 1 ? n - (len - 1) : 0;
        size_t w = 0;
        for (size_t i = start; i < n && w + 4 < len; i++) {
            if (s[i] == '\n') {
                memcpy(out + w, " | ", 3);
                w += 3;
            } else if (s[i] != '\r') {
                out[w++] = s[i];
            }
        }
        out[w] = 0;
        modal_logs_free(&tl.logs);
        buf_free(&tl.text);
    }
}

static int md_have_final_status(const char *run_uri)
{
    struct store *s;
    struct err e = { 0 };
    if (store_open(run_uri, &s, &e) < 0)
        return 0;
    struct run_status st;
    memset(&st, 0, sizeof st);
    int have = follow_read_status(s, run_uri, &st, &e) == 0 && status_phase_is_final(st.phase);
    status_free(&st);
    store_close(s);
    return have;
}

void md_remote_state(const char *sandbox_id, const struct modal_result *r, const char *log_tail,
                     struct remote_state *st)
{
    const char *ex = r->exception && r->exception[0] ? r->exception : NULL;
    const char *tail = log_tail && log_tail[0] ? log_tail : NULL;
    char said[420];
    snprintf(said, sizeof said, "%s%.250s%s%.150s", ex ? ": " : "", ex ? ex : "", tail ? "; its last output: " : "",
             tail ? tail : "");
    st->phase = REMOTE_EXITED;
    st->exit_code = -1;
    switch (r->status) {
    case MODAL_ST_SUCCESS:
        st->exit_code = 0;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s succeeded", sandbox_id);
        return;
    case MODAL_ST_FAILURE:
        st->exit_code = r->exitcode > 0 && r->exitcode <= 255 ? r->exitcode : -1;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s failed with exit code %d%s", sandbox_id,
                 r->exitcode, said);
        return;
    case MODAL_ST_TERMINATED:
        st->exit_code = 137;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s was terminated%s", sandbox_id, said);
        return;
    case MODAL_ST_TIMEOUT:
    case MODAL_ST_IDLE_TIMEOUT:
        st->reason = REASON_TIMEOUT;
        st->exit_code = 124;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s ran past its timeout (%s)%s", sandbox_id,
                 modal_status_name(r->status), said);
        return;
    case MODAL_ST_MEMORY_MANAGER_EVICTION:
        st->oom_killed = 1;
        st->exit_code = 137;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s was killed for memory (MEMORY_MANAGER_EVICTION)%s",
                 sandbox_id, said);
        return;
    case MODAL_ST_INIT_FAILURE:
        st->phase = REMOTE_CANNOT_START;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s could not start (INIT_FAILURE)%s", sandbox_id,
                 said);
        return;
    default:
        if ((ex && strcasestr(ex, "preempt")) || (r->propagation_reason && strcasestr(r->propagation_reason, "preempt"))) {
            st->reason = REASON_PREEMPTED;
            snprintf(st->message, sizeof st->message, "Modal sandbox %s was preempted (%s)%s", sandbox_id,
                     modal_status_name(r->status), said);
            return;
        }
        snprintf(st->message, sizeof st->message, "Modal sandbox %s failed (%s)%s", sandbox_id,
                 modal_status_name(r->status), said);
    }
}

static int md_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    struct md_target t;
    memset(st, 0, sizeof *st);
    if (md_target_open(handle, settings, &t, e) < 0)
        return -1;
    int gone, rc = md_verify_tags(&t, handle, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        md_conn_close(&t.k);
        st->phase = REMOTE_GONE;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s is not known to Modal", t.id);
        return 0;
    }
    struct modal_result r;
    memset(&r, 0, sizeof r);
    if (rc == 0)
        rc = md_wait0(&t, &r, e);
    if (rc < 0 && e->kind == ERR_NOT_FOUND) {
        err_clear(e);
        md_conn_close(&t.k);
        st->phase = REMOTE_GONE;
        snprintf(st->message, sizeof st->message, "Modal sandbox %s is not known to Modal", t.id);
        return 0;
    }
    if (rc == 0 && r.present && r.status != MODAL_ST_UNSPECIFIED) {
        char tail[200] = "";
        /* The entrypoint never wrote its last word: the sandbox's own output says why. */
        if (r.status != MODAL_ST_SUCCESS && !md_have_final_status(json_str(handle, "run_uri")))
            md_log_tail(&t, tail, sizeof tail);
        md_remote_state(t.id, &r, tail, st);
    } else if (rc == 0) {
        struct buf req = { 0 }, resp = { 0 };
        char *task = NULL;
        modal_enc_sandbox_id(&req, t.id, 0);
        rc = md_call(&t.k, "SandboxGetTaskId", &req, &resp, e);
        if (rc < 0 && e->http_status == GRPC_DEADLINE_EXCEEDED) {
            err_clear(e);
            rc = 0;
        } else if (rc == 0) {
            modal_result_free(&r);
            rc = modal_dec_string(&resp, 1, &task, e) < 0 || modal_dec_result_at(&resp, 2, &r, e) < 0 ? -1 : 0;
        }
        if (rc == 0 && r.present && r.status != MODAL_ST_UNSPECIFIED && r.status != MODAL_ST_SUCCESS) {
            md_remote_state(t.id, &r, NULL, st);
            if (st->phase == REMOTE_EXITED && r.status == MODAL_ST_FAILURE && !task)
                st->phase = REMOTE_CANNOT_START;
        } else if (rc == 0) {
            st->phase = task && task[0] ? REMOTE_RUNNING : REMOTE_PENDING;
            st->exit_code = -1;
            snprintf(st->message, sizeof st->message, "Modal sandbox %s: %s", t.id,
                     task && task[0] ? "running" : "waiting for a worker (scheduling, image pull, capacity)");
        }
        free(task);
        buf_free(&resp);
    }
    modal_result_free(&r);
    md_conn_close(&t.k);
    return rc;
}

/* SandboxTerminate stops the sandbox; the grace period is not the API's to set. */
static int md_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    (void)grace_ms;
    struct md_target t;
    if (md_target_open(handle, settings, &t, e) < 0)
        return -1;
    int gone, rc = md_verify_tags(&t, handle, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        struct modal_result r;
        rc = md_wait0(&t, &r, e);
        if (rc == 0 && !(r.present && r.status != MODAL_ST_UNSPECIFIED)) {
            struct buf req = { 0 }, resp = { 0 };
            modal_enc_sandbox_id(&req, t.id, -1);
            rc = md_call(&t.k, "SandboxTerminate", &req, &resp, e);
            if (rc < 0)
                err_prefix(e, "terminating Modal sandbox %s: ", t.id);
            buf_free(&resp);
        }
        modal_result_free(&r);
    }
    md_conn_close(&t.k);
    return rc;
}

/* A sandbox leaves nothing to delete (its ephemeral secrets go with it). The handle is still
 * verified as cancel verifies it, so that a forged one is refused by both (DESIGN.md §8). */
static int md_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    struct md_target t;
    if (md_target_open(handle, settings, &t, e) < 0)
        return -1;
    int gone, rc = md_verify_tags(&t, handle, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    }
    md_conn_close(&t.k);
    return rc;
}

const struct flavor_ops flavor_modal_ops = {
    .name = "modal",
    .validate = md_validate,
    .render = md_render,
    .submit = md_submit,
    .poll = md_poll,
    .cancel = md_cancel,
    .cleanup = md_cleanup,
};
