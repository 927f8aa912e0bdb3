/* The sagemaker flavor: one SageMaker training job per step, with `stepop run` as its container
 * entrypoint, through the JSON 1.1 API (cloud/aws/json_rpc.h) with the AWS credential chain.
 * This file holds its operations (flavor_sagemaker_ops): validate, render, submit, poll, cancel,
 * cleanup. Settings and behaviour: docs/flavors.md#sagemaker. */
#include "sagemaker.h"

#include "../../cloud/aws/creds.h"
#include "../../cloud/aws/json_rpc.h"
#include "../../cloud/aws/sts.h"
#include "../../runtime/doctor.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- validate, render, submit ---- */

static int sm_prepare(const struct job *j, struct sm_cfg *c, cJSON **body, int redact, struct err *e)
{
    if (sm_parse_settings(j->settings, c, e) < 0 || sm_check_job(j, c, e) < 0)
        return -1;
    *body = sm_create_body(j, c, redact, e);
    return *body ? 0 : -1;
}

static int sm_validate(const struct job *j, struct err *e)
{
    struct sm_cfg c;
    cJSON *body = NULL;
    int rc = sm_prepare(j, &c, &body, 1, e);
    cJSON_Delete(body);
    return rc;
}

static int sm_render(const struct job *j, cJSON **requests, struct err *e)
{
    struct sm_cfg c;
    cJSON *body = NULL;
    struct aws_json_client k;
    *requests = NULL;
    if (sm_prepare(j, &c, &body, 1, e) < 0 || aws_json_open(&k, &aws_json_sagemaker, c.region, e) < 0) {
        cJSON_Delete(body);
        return -1;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "endpoint", k.url);
    cJSON_AddStringToObject(out, "region", k.ep.region);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", "POST");
    cJSON_AddStringToObject(r, "url", k.url);
    cJSON *h = cJSON_AddObjectToObject(r, "headers");
    cJSON_AddStringToObject(h, "X-Amz-Target", "SageMaker.CreateTrainingJob");
    cJSON_AddStringToObject(h, "Content-Type", "application/x-amz-json-1.1");
    cJSON_AddStringToObject(h, "Authorization", "AWS4-HMAC-SHA256 (signed at send time)");
    cJSON_AddItemToObject(r, "body", body);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(out, "requests"), r);
    aws_json_close(&k);
    *requests = out;
    return 0;
}

static int sm_submit(const struct job *j, cJSON **handle, struct err *e)
{
    struct sm_cfg c;
    cJSON *body = NULL, *ans = NULL;
    struct aws_json_client k;
    *handle = NULL;
    if (sm_prepare(j, &c, &body, 0, e) < 0 || aws_json_open(&k, &aws_json_sagemaker, c.region, e) < 0) {
        cJSON_Delete(body);
        return -1;
    }
    const char *name = json_str(body, "TrainingJobName");
    char *code = NULL;
    int rc = aws_json_call(&k, "CreateTrainingJob", body, &ans, &code, e);
    if (rc < 0) {
        if (code && !strcmp(code, "ResourceInUse"))
            err_prefix(e, "a training job named %s exists already (an earlier submit of run %s?): ", name, j->m->run_id);
        err_prefix(e, "creating training job %s: ", name);
    } else {
        const char *arn = json_str(ans, "TrainingJobArn");
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "region", k.ep.region);
        cJSON_AddStringToObject(h, "job", name);
        cJSON_AddStringToObject(h, "arn", arn ? arn : "");
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
        log_info("created training job %s in %s (%s)", name, k.ep.region, c.instance_type);
    }
    free(code);
    cJSON_Delete(ans);
    cJSON_Delete(body);
    aws_json_close(&k);
    return rc;
}

/* ---- poll, cancel, cleanup: from the handle, also in another process ---- */

/* The job the handle names, only if it is the name this flavor gives the handle's run; the
 * region comes from the settings, never from the handle. */
static int sm_handle(const cJSON *handle, const cJSON *settings, struct aws_json_client *k, char **job, struct err *e)
{
    const char *run_id = json_str(handle, "run_id"), *name = json_str(handle, "job");
    *job = NULL;
    if (!run_id || !name || !json_str(handle, "run_uri"))
        return err_set(e, ERR_INVALID, "the sagemaker flavor's handle lacks job, run_id or run_uri");
    char *want = sm_job_name(run_id);
    if (strcmp(want, name) != 0) {
        err_set(e, ERR_REFUSED, "the handle names training job \"%.80s\", and run %s's is %s; refusing to act on it", name,
                run_id, want);
        free(want);
        return -1;
    }
    const char *region;
    if (flavor_setting_str(settings, "region", NULL, &region, e) < 0 || aws_json_open(k, &aws_json_sagemaker, region, e) < 0) {
        free(want);
        return -1;
    }
    *job = want;
    return 0;
}

/* DescribeTrainingJob; *gone when SageMaker does not know the job. */
static int sm_describe(struct aws_json_client *k, const char *job, cJSON **out, int *gone, struct err *e)
{
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "TrainingJobName", job);
    char *code = NULL;
    int rc = aws_json_call(k, "DescribeTrainingJob", in, out, &code, e);
    *gone = rc < 0 && code && (!strcmp(code, "ResourceNotFound") ||
                               (!strcmp(code, "ValidationException") && strstr(e->msg, "not found")));
    free(code);
    cJSON_Delete(in);
    return rc;
}

static int sm_contains(const char *text, const char *const *words)
{
    for (; text && *words; words++)
        if (strcasestr(text, *words))
            return 1;
    return 0;
}

/* The job's last CloudWatch log lines, newest last, into out (a short tail). */
static void sm_log_tail(const char *region, const char *job, char *out, size_t len)
{
    struct aws_json_client k;
    struct err e = { 0 };
    out[0] = 0;
    if (aws_json_open(&k, &aws_json_logs, region, &e) < 0)
        return;
    cJSON *in = cJSON_CreateObject(), *ans = NULL;
    char *prefix = xasprintf("%s/", job);
    cJSON_AddStringToObject(in, "logGroupName", SM_LOG_GROUP);
    cJSON_AddStringToObject(in, "logStreamNamePrefix", prefix);
    const char *stream = NULL;
    if (aws_json_call(&k, "DescribeLogStreams", in, &ans, NULL, &e) == 0) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(ans, "logStreams"), *it;
        cJSON_ArrayForEach(it, s) stream = json_str(it, "logStreamName") ? json_str(it, "logStreamName") : stream;
    }
    cJSON *events = NULL;
    if (stream) {
        cJSON *gin = cJSON_CreateObject();
        cJSON_AddStringToObject(gin, "logGroupName", SM_LOG_GROUP);
        cJSON_AddStringToObject(gin, "logStreamName", stream);
        cJSON_AddNumberToObject(gin, "limit", 20);
        cJSON_AddBoolToObject(gin, "startFromHead", 0);
        if (aws_json_call(&k, "GetLogEvents", gin, &events, NULL, &e) < 0)
            log_debug("the job's log lines: %s", e.msg);
        cJSON_Delete(gin);
    } else if (e.msg[0]) {
        log_debug("the job's log streams: %s", e.msg);
    }
    /* Keep the newest lines that fit, in their order. */
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(events, "events");
    int n = cJSON_GetArraySize(ev), from = n;
    size_t used = 0;
    while (from > 0) {
        const char *msg = json_str(cJSON_GetArrayItem(ev, from - 1), "message");
        size_t l = msg ? strlen(msg) + 3 : 0;
        if (used + l >= len)
            break;
        used += l;
        from--;
    }
    for (int i = from; i < n; i++) {
        const char *msg = json_str(cJSON_GetArrayItem(ev, i), "message");
        size_t l = msg ? strcspn(msg, "\n") : 0;
        size_t at = strlen(out);
        if (msg)
            snprintf(out + at, len - at, "%s%.*s", at ? " | " : "", (int)l, msg);
    }
    cJSON_Delete(events);
    cJSON_Delete(ans);
    cJSON_Delete(in);
    free(prefix);
    aws_json_close(&k);
}

/* Whether the job was interrupted (spot) at some point: SecondaryStatusTransitions. */
static int sm_was_interrupted(const cJSON *d)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "SecondaryStatusTransitions"))
    {
        const char *s = json_str(it, "Status");
        if (s && (!strcmp(s, "Interrupted") || !strcmp(s, "Restarting")))
            return 1;
    }
    return 0;
}

/* The last transition's StatusMessage: SageMaker's words for where the job is. */
static const char *sm_status_message(const cJSON *d)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "SecondaryStatusTransitions");
    int n = cJSON_GetArraySize(t);
    return n ? json_str(cJSON_GetArrayItem(t, n - 1), "StatusMessage") : NULL;
}

static const char *const sm_capacity_words[] = { "CapacityError", "InsufficientCapacity", "insufficient capacity",
                                                 "InsufficientInstanceCapacity", NULL };
static const char *const sm_memory_words[] = { "out of memory", "OutOfMemory", "memory exhausted",
                                               "ran out of memory", NULL };

void sm_remote_state(const cJSON *d, const char *job, const char *region, struct remote_state *st)
{
    const char *status = json_str(d, "TrainingJobStatus"), *sec = json_str(d, "SecondaryStatus");
    const char *why = json_str(d, "FailureReason"), *said = sm_status_message(d);
    if (!status)
        status = "";
    if (!sec)
        sec = "";
    if (!strcmp(status, "InProgress") || !strcmp(status, "Stopping")) {
        if (!strcmp(sec, "Training") || !strcmp(sec, "Uploading") || !strcmp(status, "Stopping")) {
            st->phase = REMOTE_RUNNING;
        } else if (!strcmp(sec, "Interrupted") || !strcmp(sec, "Restarting")) {
            /* A spot interruption: SageMaker starts the job again, the entrypoint counts a new attempt. */
            st->phase = REMOTE_RUNNING;
        } else {
            st->phase = REMOTE_PENDING;
        }
        snprintf(st->message, sizeof st->message, "training job %s: %s/%s%s%s", job, status, sec, said ? ": " : "",
                 said ? said : "");
        return;
    }
    st->phase = REMOTE_EXITED;
    st->exit_code = -1;
    if (!strcmp(status, "Completed")) {
        st->exit_code = 0;
        snprintf(st->message, sizeof st->message, "training job %s completed", job);
        return;
    }
    if (!strcmp(sec, "MaxWaitTimeExceeded")) {
        st->phase = REMOTE_CANNOT_START;
        snprintf(st->message, sizeof st->message, "training job %s did not start: no spot capacity within max_wait "
                 "(MaxWaitTimeExceeded)%s%s", job, why ? ": " : "", why ? why : "");
        return;
    }
    if (!strcmp(sec, "MaxRuntimeExceeded")) {
        st->reason = REASON_TIMEOUT;
        snprintf(st->message, sizeof st->message, "training job %s ran past MaxRuntimeInSeconds and SageMaker stopped it%s%s",
                 job, why ? ": " : "", why ? why : "");
        return;
    }
    if (!strcmp(status, "Stopped")) {
        if (sm_was_interrupted(d))
            st->reason = REASON_PREEMPTED;
        snprintf(st->message, sizeof st->message, "training job %s stopped%s%s%s", job,
                 st->reason == REASON_PREEMPTED ? " after a spot interruption" : "", why ? ": " : "", why ? why : "");
        return;
    }
    /* Failed */
    if (sm_contains(why, sm_capacity_words)) {
        st->phase = REMOTE_CANNOT_START;
        snprintf(st->message, sizeof st->message, "training job %s could not get capacity: %s", job, why);
        return;
    }
    st->exit_code = sm_failure_exit_code(why);
    st->oom_killed = sm_contains(why, sm_memory_words);
    if (st->oom_killed && st->exit_code < 0)
        st->exit_code = 137;
    if (st->exit_code < 0) {
        char tail[256];
        sm_log_tail(region, job, tail, sizeof tail);
        snprintf(st->message, sizeof st->message, "training job %.63s failed: %.140s%s%s", job, why ? why : "(no reason given)",
                 tail[0] ? "; its last log lines: " : "", tail);
    } else {
        snprintf(st->message, sizeof st->message, "training job %s failed: %s", job, why ? why : "(no reason given)");
    }
}

static int sm_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    struct aws_json_client k;
    char *job;
    memset(st, 0, sizeof *st);
    if (sm_handle(handle, settings, &k, &job, e) < 0)
        return -1;
    cJSON *d = NULL;
    int gone, rc = sm_describe(&k, job, &d, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
        st->phase = REMOTE_GONE;
        snprintf(st->message, sizeof st->message, "training job %s is not known to SageMaker in %s", job, k.ep.region);
    } else if (rc == 0) {
        sm_remote_state(d, job, k.ep.region, st);
    }
    cJSON_Delete(d);
    free(job);
    aws_json_close(&k);
    return rc;
}

/* The job's tags must name the handle's run (flavor.h: handles are untrusted). */
static int sm_verify_tags(struct aws_json_client *k, const cJSON *handle, const char *job, const char *arn, struct err *e)
{
    cJSON *in = cJSON_CreateObject(), *ans = NULL;
    cJSON_AddStringToObject(in, "ResourceArn", arn);
    cJSON_AddNumberToObject(in, "MaxResults", 100);
    int rc = aws_json_call(k, "ListTags", in, &ans, NULL, e);
    cJSON_Delete(in);
    if (rc < 0) {
        cJSON_Delete(ans);
        return err_prefix(e, "reading the tags of training job %s: ", job);
    }
    const char *id = NULL, *uri = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ans, "Tags"))
    {
        const char *key = json_str(it, "Key");
        if (key && !strcmp(key, SM_TAG_RUN_ID))
            id = json_str(it, "Value");
        else if (key && !strcmp(key, SM_TAG_RUN_URI))
            uri = json_str(it, "Value");
    }
    char *want_id = sm_tag_value(json_str(handle, "run_id")), *want_uri = sm_tag_value(json_str(handle, "run_uri"));
    if (!id || strcmp(id, want_id) != 0 || !uri || strcmp(uri, want_uri) != 0)
        rc = err_set(e, ERR_REFUSED, "training job %s is not run %s's (its tag " SM_TAG_RUN_ID " is %s%.80s%s, "
                     SM_TAG_RUN_URI " %s%.120s%s); refusing to act on it", job, json_str(handle, "run_id"),
                     id ? "\"" : "", id ? id : "missing", id ? "\"" : "", uri ? "\"" : "", uri ? uri : "missing",
                     uri ? "\"" : "");
    free(want_id);
    free(want_uri);
    cJSON_Delete(ans);
    return rc;
}

/* StopTrainingJob: SageMaker sends SIGTERM and, 120 s later, SIGKILL (validate refused a longer
 * grace period), so grace_ms is not the platform's to set. */
static int sm_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    (void)grace_ms;
    struct aws_json_client k;
    char *job;
    if (sm_handle(handle, settings, &k, &job, e) < 0)
        return -1;
    cJSON *d = NULL;
    int gone, rc = sm_describe(&k, job, &d, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        const char *arn = json_str(d, "TrainingJobArn"), *status = json_str(d, "TrainingJobStatus");
        if (!arn)
            rc = err_set(e, ERR_INVALID, "describing training job %s: no TrainingJobArn in the answer", job);
        else
            rc = sm_verify_tags(&k, handle, job, arn, e);
        if (rc == 0 && status && (!strcmp(status, "InProgress"))) {
            cJSON *in = cJSON_CreateObject();
            cJSON_AddStringToObject(in, "TrainingJobName", job);
            char *code = NULL;
            rc = aws_json_call(&k, "StopTrainingJob", in, NULL, &code, e);
            /* Ended meanwhile: SageMaker refuses to stop a job that is no longer in progress. */
            if (rc < 0 && code && !strcmp(code, "ValidationException") && strstr(e->msg, "status")) {
                err_clear(e);
                rc = 0;
            }
            if (rc < 0)
                err_prefix(e, "stopping training job %s: ", job);
            free(code);
            cJSON_Delete(in);
        }
    }
    cJSON_Delete(d);
    free(job);
    aws_json_close(&k);
    return rc;
}

/* A training job leaves nothing to delete (SageMaker keeps its record, its logs stay in
 * CloudWatch, a warm pool ends by itself after keep_alive_period). The handle is still verified
 * as cancel verifies it, so that a forged one is refused by both (DESIGN.md §8). */
static int sm_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    struct aws_json_client k;
    char *job;
    if (sm_handle(handle, settings, &k, &job, e) < 0)
        return -1;
    cJSON *d = NULL;
    int gone, rc = sm_describe(&k, job, &d, &gone, e);
    if (rc < 0 && gone) {
        err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        const char *arn = json_str(d, "TrainingJobArn");
        rc = arn ? sm_verify_tags(&k, handle, job, arn, e)
                 : err_set(e, ERR_INVALID, "describing training job %s: no TrainingJobArn in the answer", job);
    }
    cJSON_Delete(d);
    free(job);
    aws_json_close(&k);
    return rc;
}

/* SageMaker starts the job again itself after a spot interruption (spot) and after a failure
 * under RetryStrategy (max_retry_attempts): the follow loop asks poll before it takes a failed
 * attempt's status as the run's last. */
static int sm_may_restart(const cJSON *settings)
{
    int spot = 0;
    struct err e = { 0 };
    const cJSON *retries = cJSON_GetObjectItemCaseSensitive(settings, "max_retry_attempts");
    if (flavor_setting_bool(settings, "spot", 0, &spot, &e) < 0)
        spot = 0;
    return spot || (cJSON_IsNumber(retries) && retries->valuedouble >= 1);
}

/* `stepop doctor`: the credentials and whose they are (STS), then ListTrainingJobs with
 * MaxResults 1, a read that needs the sagemaker:ListTrainingJobs permission and costs nothing. */
static void sm_doctor(const cJSON *settings, struct doctor *d)
{
    const char *region;
    struct aws_json_client k;
    struct err e = { 0 };
    if (flavor_setting_str(settings, "region", NULL, &region, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "flavor sagemaker", "%s", e.msg);
        return;
    }
    if (aws_doctor_lines(d, "sagemaker") < 0)
        return;
    if (aws_json_open(&k, &aws_json_sagemaker, region, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, "flavor sagemaker", "%s", e.msg);
        return;
    }
    cJSON *in = cJSON_CreateObject(), *out = NULL;
    cJSON_AddNumberToObject(in, "MaxResults", 1);
    if (aws_json_call(&k, "ListTrainingJobs", in, &out, NULL, &e) < 0)
        doctor_add(d, DOCTOR_FAIL, "flavor sagemaker", "%s: %s (hint: the role needs sagemaker:ListTrainingJobs)",
                   k.url, e.msg);
    else
        doctor_add(d, DOCTOR_OK, "flavor sagemaker", "%s (region %s): ListTrainingJobs answered", k.url,
                   k.ep.region);
    cJSON_Delete(in);
    cJSON_Delete(out);
    aws_json_close(&k);
}

const struct flavor_ops flavor_sagemaker_ops = {
    .name = "sagemaker",
    .validate = sm_validate,
    .render = sm_render,
    .submit = sm_submit,
    .poll = sm_poll,
    .cancel = sm_cancel,
    .cleanup = sm_cleanup,
    .may_restart = sm_may_restart,
    .doctor = sm_doctor,
};
