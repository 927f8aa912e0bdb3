/* The azureml flavor: one Azure Machine Learning command job per step, running `stepop run` in an
 * environment version that holds the step's image, through the ARM REST API with a bearer token
 * from the Azure identity chain (cloud/azure/auth.h). This file holds the ARM calls and the
 * flavor's operations (flavor_azureml_ops). Settings and behaviour: docs/flavors.md#azureml. */
#include "azureml.h"

#include "../../cloud/api.h"
#include "../../cloud/azure/auth.h"
#include "../../runtime/doctor.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long cancel follows Azure's long-running cancel operation before it leaves it running. */
#define AML_CANCEL_WAIT_MS 120000LL
#define AML_CALL_TIMEOUT_MS 60000LL

struct aml_client {
    struct aml_cfg cfg;
    struct http_client *http;
    const char *scope;
};

static int aml_open(struct aml_client *k, const cJSON *settings, struct err *e)
{
    memset(k, 0, sizeof *k);
    if (aml_parse_settings(settings, &k->cfg, e) < 0)
        return -1;
    /* The identity's authority for a sovereign cloud: the credential chain reads it from the
     * environment, as Azure's SDKs do; a changed authority forgets the tokens of the old one.
     * The environment changes at most once, on the first call (submit, or the first poll of
     * `stepop status|cancel`), before the follow loop starts threads that read it. */
    if (k->cfg.authority_host) {
        const char *now = getenv("AZURE_AUTHORITY_HOST");
        if (!now || strcmp(now, k->cfg.authority_host) != 0) {
            setenv("AZURE_AUTHORITY_HOST", k->cfg.authority_host, 1);
            azure_auth_reset();
        }
    }
    k->scope = aml_scope(&k->cfg);
    k->http = http_client_new();
    return 0;
}

static void aml_close(struct aml_client *k)
{
    http_client_free(k->http);
    k->http = NULL;
}

/* One ARM call, sent again once with a fresh token after a 401. out: the JSON answer (may be
 * NULL); resp_out: the response's headers, when the caller needs them (caller frees). */
static int aml_call(struct aml_client *k, const char *method, const char *url, const cJSON *body, cJSON **out,
                    struct api_response *resp_out, struct err *e)
{
    if (out)
        *out = NULL;
    const char *const headers[] = { "Accept: application/json", NULL };
    /* Messages name the path, without the endpoint and the api-version. */
    char label[512];
    const char *path = str_has_prefix(url, k->cfg.arm_endpoint) ? url + strlen(k->cfg.arm_endpoint) : url;
    snprintf(label, sizeof label, "%.*s", (int)strcspn(path, "?"), path);
    struct api_call call = {
        .http = { .method = method, .url = url, .headers = headers, .sign = azure_auth_sign,
                  .hook_ctx = (void *)k->scope, .timeout_ms = AML_CALL_TIMEOUT_MS },
        .body = body,
        .json_answer = 1,
        .label = label,
        .error = api_error_azure,
    };
    struct api_response resp;
    int rc = -1;
    for (int again = 0; again < 2; again++) {
        memset(&resp, 0, sizeof resp);
        rc = api_perform(k->http, &call, &resp, e);
        if (rc == 0 || resp.status != 401 || again)
            break;
        char *tok = NULL;
        time_t exp;
        struct err e2 = { 0 };
        int got = azure_auth_token(k->scope, &tok, &exp, 1, &e2);
        if (tok) {
            explicit_bzero(tok, strlen(tok));
            free(tok);
        }
        if (got < 0)
            break;
        api_response_free(&resp);
    }
    if (rc == 0) {
        err_clear(e);
        if (out) {
            *out = resp.json;
            resp.json = NULL;
        }
    }
    if (resp_out)
        *resp_out = resp;
    else
        api_response_free(&resp);
    return rc;
}

/* ---- validate, render, submit ---- */

static int aml_prepare(const struct job *j, struct aml_cfg *c, cJSON **env, cJSON **body, struct err *e)
{
    *env = *body = NULL;
    if (aml_parse_settings(j->settings, c, e) < 0 || aml_check_job(j, c, e) < 0)
        return -1;
    *body = aml_job_body(j, c, e);
    if (!*body)
        return -1;
    *env = aml_env_body(j);
    return 0;
}

static int aml_validate(const struct job *j, struct err *e)
{
    struct aml_cfg c;
    cJSON *env, *body;
    int rc = aml_prepare(j, &c, &env, &body, e);
    cJSON_Delete(env);
    cJSON_Delete(body);
    return rc;
}

static void aml_add_request(cJSON *list, const char *method, const char *url, cJSON *body)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", method);
    cJSON_AddStringToObject(r, "url", url);
    cJSON *h = cJSON_AddObjectToObject(r, "headers");
    cJSON_AddStringToObject(h, "Authorization", "Bearer (a token from the Azure identity chain, at send time)");
    if (body) {
        cJSON_AddStringToObject(h, "Content-Type", "application/json");
        cJSON_AddItemToObject(r, "body", body);
    }
    cJSON_AddItemToArray(list, r);
}

static int aml_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct aml_cfg c;
    cJSON *env, *body;
    *requests = NULL;
    if (aml_prepare(j, &c, &env, &body, e) < 0) {
        cJSON_Delete(env);
        cJSON_Delete(body);
        return -1;
    }
    char *env_url = aml_env_url(&c, j->m->image), *name = aml_job_name(j->m->run_id);
    char *job_url = aml_job_url(&c, name, NULL);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "endpoint", c.arm_endpoint);
    cJSON_AddStringToObject(out, "api_version", c.api_version);
    cJSON_AddStringToObject(out, "scope", aml_scope(&c));
    cJSON *list = cJSON_AddArrayToObject(out, "requests");
    aml_add_request(list, "GET", env_url, NULL);
    aml_add_request(list, "PUT", env_url, env);
    aml_add_request(list, "PUT", job_url, body);
    free(env_url);
    free(job_url);
    free(name);
    *requests = out;
    return 0;
}

/* The environment version for the image: reused when it exists with the same image, else made. */
static int aml_ensure_env(struct aml_client *k, const struct job *j, struct err *e)
{
    char *url = aml_env_url(&k->cfg, j->m->image), *name = aml_env_name(j->m->image);
    cJSON *have = NULL;
    int rc = aml_call(k, "GET", url, NULL, &have, NULL, e);
    if (rc == 0) {
        const char *image = json_str(cJSON_GetObjectItemCaseSensitive(have, "properties"), "image");
        if (!image || strcmp(image, j->m->image) != 0)
            rc = err_set(e, ERR_REFUSED, "environment %s version %s holds image %.200s, not %.200s; remove it or use "
                                         "another workspace", name, AML_ENV_VERSION, image ? image : "(none)", j->m->image);
    } else if (e->kind == ERR_NOT_FOUND) {
        err_clear(e);
        cJSON *body = aml_env_body(j);
        rc = aml_call(k, "PUT", url, body, NULL, NULL, e);
        cJSON_Delete(body);
        if (rc == 0)
            log_info("created environment %s version %s for image %s", name, AML_ENV_VERSION, j->m->image);
    }
    if (rc < 0)
        err_prefix(e, "the environment for image %.200s: ", j->m->image);
    cJSON_Delete(have);
    free(url);
    free(name);
    return rc;
}

/* The job's tags name the handle's run (flavor.h: handles are untrusted). */
static int aml_tags_match(const cJSON *job, const char *run_id, const char *run_uri, const char *name, struct err *e)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(job, "properties"), "tags");
    const char *id = json_str(tags, AML_TAG_RUN_ID), *uri = json_str(tags, AML_TAG_RUN_URI);
    if (id && !strcmp(id, run_id) && uri && !strcmp(uri, run_uri))
        return 0;
    return err_set(e, ERR_REFUSED, "command job %s is not run %s's (its tag " AML_TAG_RUN_ID " is %s%.80s%s, "
                   AML_TAG_RUN_URI " %s%.120s%s); refusing to act on it", name, run_id, id ? "\"" : "",
                   id ? id : "missing", id ? "\"" : "", uri ? "\"" : "", uri ? uri : "missing", uri ? "\"" : "");
}

static int aml_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct aml_cfg c;
    cJSON *env, *body;
    *handle = NULL;
    if (aml_prepare(j, &c, &env, &body, e) < 0) {
        cJSON_Delete(env);
        cJSON_Delete(body);
        return -1;
    }
    cJSON_Delete(env);
    struct aml_client k;
    if (aml_open(&k, j->settings, e) < 0) {
        cJSON_Delete(body);
        return -1;
    }
    char *name = aml_job_name(j->m->run_id), *url = aml_job_url(&k.cfg, name, NULL);
    int rc = aml_ensure_env(&k, j, e);
    if (rc == 0) {
        rc = aml_call(&k, "PUT", url, body, NULL, NULL, e);
        /* A job of that name exists: an earlier submit of this run whose answer was lost is this
         * one; anything else is refused. */
        if (rc < 0 && e->http_status == 409) {
            struct err first = *e;
            cJSON *have = NULL;
            err_clear(e);
            rc = aml_call(&k, "GET", url, NULL, &have, NULL, e);
            if (rc == 0 && aml_tags_match(have, j->m->run_id, j->m->run_uri, name, e) < 0) {
                err_prefix(e, "%s; ", first.msg);
                rc = -1;
            }
            cJSON_Delete(have);
        }
        if (rc < 0)
            err_prefix(e, "creating command job %s: ", name);
    }
    if (rc == 0) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "job", name);
        char *ws = aml_workspace_path(&k.cfg);
        cJSON_AddStringToObject(h, "workspace", ws);
        free(ws);
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
        log_info("created command job %s in workspace %s (%s %s)", name, k.cfg.workspace,
                 k.cfg.compute ? "compute" : "serverless", k.cfg.compute ? k.cfg.compute : k.cfg.instance_type);
    }
    free(url);
    free(name);
    cJSON_Delete(body);
    aml_close(&k);
    return rc;
}

/* ---- poll, cancel, cleanup: from the handle, also in another process ---- */

/* The job the handle names, only if it is the name this flavor gives the handle's run; the
 * workspace comes from the settings, never from the handle. */
static int aml_handle(const cJSON *handle, const cJSON *settings, struct aml_client *k, char **job, struct err *e)
{
    const char *run_id = json_str(handle, "run_id"), *name = json_str(handle, "job");
    *job = NULL;
    if (!run_id || !name || !json_str(handle, "run_uri"))
        return err_set(e, ERR_INVALID, "the azureml flavor's handle lacks job, run_id or run_uri");
    char *want = aml_job_name(run_id);
    if (strcmp(want, name) != 0) {
        err_set(e, ERR_REFUSED, "the handle names command job \"%.80s\", and run %s's is %s; refusing to act on it", name,
                run_id, want);
        free(want);
        return -1;
    }
    if (aml_open(k, settings, e) < 0) {
        free(want);
        return -1;
    }
    *job = want;
    return 0;
}

/* GET the job; *gone when Azure ML does not know it. */
static int aml_get(struct aml_client *k, const char *job, cJSON **out, int *gone, struct err *e)
{
    char *url = aml_job_url(&k->cfg, job, NULL);
    int rc = aml_call(k, "GET", url, NULL, out, NULL, e);
    *gone = rc < 0 && e->kind == ERR_NOT_FOUND;
    free(url);
    return rc;
}

static int aml_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    struct aml_client k;
    char *job;
    memset(st, 0, sizeof *st);
    if (aml_handle(handle, settings, &k, &job, e) < 0)
        return -1;
    cJSON *d = NULL;
    int gone, rc = aml_get(&k, job, &d, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
        st->phase = REMOTE_GONE;
        snprintf(st->message, sizeof st->message, "command job %s is not known to workspace %s", job, k.cfg.workspace);
    } else if (rc == 0) {
        aml_remote_state(d, job, st);
    }
    cJSON_Delete(d);
    free(job);
    aml_close(&k);
    return rc;
}

/* A URL Azure gave to follow an operation, only on the ARM endpoint's own scheme, host and port:
 * the token goes to no other place. */
static int aml_same_origin(const char *a, const char *b)
{
    struct url ua, ub;
    struct err e = { 0 };
    if (url_parse(a, &ua, &e) < 0)
        return 0;
    if (url_parse(b, &ub, &e) < 0) {
        url_free(&ua);
        return 0;
    }
    int same = !strcmp(ua.scheme, ub.scheme) && !strcmp(ua.host, ub.host) && ua.port_or_default == ub.port_or_default;
    url_free(&ua);
    url_free(&ub);
    return same;
}

/* Follows the cancel's long-running operation (Azure-AsyncOperation, else Location) until it is
 * done, or AML_CANCEL_WAIT_MS. */
static int aml_follow_operation(struct aml_client *k, const struct api_response *first, const char *job, struct err *e)
{
    const char *async = http_header(&first->http, "azure-asyncoperation");
    const char *loc = http_header(&first->http, "location");
    const char *follow = async ? async : loc;
    if (first->status != 202 || !follow)
        return 0;
    if (!aml_same_origin(follow, k->cfg.arm_endpoint))
        return err_set(e, ERR_REFUSED, "canceling command job %s: the operation to follow is at another host than "
                                       "settings.arm_endpoint; not sending the token there", job);
    char *url = xstrdup(follow);
    int64_t waited = 0, pause_ms = first->http.retry_after_ms > 0 ? first->http.retry_after_ms : 1000;
    int rc = 0;
    for (;;) {
        if (pause_ms > 10000)
            pause_ms = 10000;
        if (waited >= AML_CANCEL_WAIT_MS) {
            log_warn("canceling command job %s: the operation is still running after %llds; not waiting longer", job,
                     (long long)(waited / 1000));
            break;
        }
        usleep((useconds_t)(pause_ms * 1000));
        waited += pause_ms;
        cJSON *op = NULL;
        struct api_response r;
        rc = aml_call(k, "GET", url, NULL, &op, &r, e);
        if (rc < 0) {
            api_response_free(&r);
            cJSON_Delete(op);
            err_prefix(e, "following the cancel of command job %s: ", job);
            break;
        }
        pause_ms = r.http.retry_after_ms > 0 ? r.http.retry_after_ms : 1000;
        const char *status = json_str(op, "status");
        int done;
        if (async) {
            done = status && strcmp(status, "InProgress") && strcmp(status, "Running") && strcmp(status, "Accepted");
            if (done && strcmp(status, "Succeeded") != 0) {
                const cJSON *oe = cJSON_GetObjectItemCaseSensitive(op, "error");
                rc = err_set(e, ERR_HTTP, "canceling command job %s: the operation ended %s%s%.300s", job, status,
                             json_str(oe, "message") ? ": " : "", json_str(oe, "message") ? json_str(oe, "message") : "");
            }
        } else {
            done = r.status != 202;
        }
        api_response_free(&r);
        cJSON_Delete(op);
        if (done || rc < 0)
            break;
    }
    free(url);
    return rc;
}

/* POST .../cancel: Azure ML asks the job's container to stop (SIGTERM, then SIGKILL); how long
 * it waits in between is Azure ML's, not grace_ms. */
static int aml_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    (void)grace_ms;
    struct aml_client k;
    char *job;
    if (aml_handle(handle, settings, &k, &job, e) < 0)
        return -1;
    cJSON *d = NULL;
    int gone, rc = aml_get(&k, job, &d, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        rc = aml_tags_match(d, json_str(handle, "run_id"), json_str(handle, "run_uri"), job, e);
        struct remote_state st = { 0 };
        aml_remote_state(d, job, &st);
        if (rc == 0 && (st.phase == REMOTE_PENDING || st.phase == REMOTE_RUNNING)) {
            char *url = aml_job_url(&k.cfg, job, "/cancel");
            struct api_response r;
            rc = aml_call(&k, "POST", url, NULL, NULL, &r, e);
            if (rc < 0)
                err_prefix(e, "canceling command job %s: ", job);
            else
                rc = aml_follow_operation(&k, &r, job, e);
            api_response_free(&r);
            free(url);
        }
    }
    cJSON_Delete(d);
    free(job);
    aml_close(&k);
    return rc;
}

/* A command job leaves nothing to delete that stepop made for it alone (Azure ML keeps the job's
 * record and logs; the environment version is shared by every step of the image). The handle is
 * still verified as cancel verifies it, so that a forged one is refused by both (DESIGN.md §8). */
static int aml_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    struct aml_client k;
    char *job;
    if (aml_handle(handle, settings, &k, &job, e) < 0)
        return -1;
    cJSON *d = NULL;
    int gone, rc = aml_get(&k, job, &d, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        rc = aml_tags_match(d, json_str(handle, "run_id"), json_str(handle, "run_uri"), job, e);
    }
    cJSON_Delete(d);
    free(job);
    aml_close(&k);
    return rc;
}

/* A Spot job that Azure ML preempts is queued again: the follow loop asks poll before it takes a
 * failed attempt's status as the run's last. */
static int aml_may_restart(const cJSON *settings)
{
    const char *tier = json_str(settings, "job_tier");
    return tier && !strcmp(tier, "Spot");
}

/* `stepop doctor`: the identity (azure_doctor_lines), then the workspace's jobs list (Jobs -
 * List, which has no page size: the first page only), a read that needs
 * Microsoft.MachineLearningServices/workspaces/jobs/read. */
static void aml_doctor(const cJSON *settings, struct doctor *d)
{
    struct aml_client k;
    struct err e = { 0 };
    if (aml_open(&k, settings, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "flavor azureml", "%s", e.msg);
        return;
    }
    if (azure_doctor_lines(d, "azureml", k.scope) == 0) {
        char *ws = aml_workspace_path(&k.cfg);
        char *url = xasprintf("%s%s/jobs?api-version=%s", k.cfg.arm_endpoint, ws, k.cfg.api_version);
        if (aml_call(&k, "GET", url, NULL, NULL, NULL, &e) < 0)
            doctor_add(d, DOCTOR_FAIL, "flavor azureml", "%s (hint: the identity needs a role on workspace %s)", e.msg,
                       k.cfg.workspace);
        else
            doctor_add(d, DOCTOR_OK, "flavor azureml", "workspace %s: the jobs list answered", k.cfg.workspace);
        free(url);
        free(ws);
    }
    aml_close(&k);
}

const struct flavor_ops flavor_azureml_ops = {
    .name = "azureml",
    .validate = aml_validate,
    .render = aml_render,
    .submit = aml_submit,
    .poll = aml_poll,
    .cancel = aml_cancel,
    .cleanup = aml_cleanup,
    .may_restart = aml_may_restart,
    .doctor = aml_doctor,
};
