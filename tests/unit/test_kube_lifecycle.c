/* The kubernetes flavor's poll, cancel and cleanup (flavors/kubernetes/lifecycle.c) against a
 * loopback API server that answers from a script: each state of a Job and its newest pod mapped
 * to a phase and reason (also those the test bed cannot cause: eviction, a DisruptionTarget
 * condition, a lost node), the pod's last log lines quoted, handles checked against the Job's
 * labels and the settings' namespace, and the DELETE cancel and cleanup send. */
#include "../../flavors/kubernetes/kubernetes.h"
#include "../../runtime/http.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

extern const struct flavor_ops flavor_kubernetes_ops;
static const struct flavor_ops *ops = &flavor_kubernetes_ops;

static char dir[256];
static int fd;

static char *answer(const char *status, const char *body)
{
    return xasprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     status, strlen(body), body);
}

/* The Job as the API server gives it, with the run's labels (or others) and the conditions. */
static char *job(const char *run_label, const char *conditions)
{
    char *body = xasprintf("{\"kind\":\"Job\",\"metadata\":{\"name\":\"stepop-r1\",\"namespace\":\"ml\",\"uid\":\"uid-1\","
                           "\"labels\":{\"stepop.io/run-id\":\"%s\"},\"annotations\":{\"stepop.io/run-id\":\"r1\","
                           "\"stepop.io/run-uri\":\"file:///runs/r1/\"}},\"spec\":{\"backoffLimit\":%d},"
                           "\"status\":{\"conditions\":[%s]}}",
                           run_label, strstr(conditions, "RETRY") ? 1 : 0, strstr(conditions, "RETRY") ? "" : conditions);
    char *a = answer("200 OK", body);
    free(body);
    return a;
}

static char *pods(const char *items)
{
    char *body = xasprintf("{\"kind\":\"PodList\",\"items\":[%s]}", items);
    char *a = answer("200 OK", body);
    free(body);
    return a;
}

/* A pod: its creation time, phase, extra status fields, and the step container's state. */
static char *pod(const char *name, const char *created, const char *phase, const char *status_extra, const char *state)
{
    return xasprintf("{\"metadata\":{\"name\":\"%s\",\"creationTimestamp\":\"%s\"},\"spec\":{\"nodeName\":\"n1\"},"
                     "\"status\":{\"phase\":\"%s\"%s%s,\"containerStatuses\":[{\"name\":\"step\",\"state\":{%s}}]}}",
                     name, created, phase, status_extra[0] ? "," : "", status_extra, state);
}

static cJSON *handle(const char *ns)
{
    char *text = xasprintf("{\"namespace\":\"%s\",\"job\":\"stepop-r1\",\"uid\":\"uid-1\",\"run_id\":\"r1\","
                           "\"run_uri\":\"file:///runs/r1/\"}",
                           ns);
    cJSON *h = cJSON_Parse(text);
    free(text);
    return h;
}

/* poll with the answers given; st filled. */
static int poll_with(struct server *s, struct remote_state *st, struct err *e)
{
    pthread_t t = server_start(s, fd);
    cJSON *h = handle("ml"), *settings = cJSON_CreateObject();
    err_clear(e);
    int rc = ops->poll(h, settings, st, e);
    pthread_join(t, NULL);
    cJSON_Delete(h);
    cJSON_Delete(settings);
    return rc;
}

static int has(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

static void test_poll(void)
{
    struct server s;
    struct remote_state st;
    struct err e;
    char *j = job("r1", ""), *p, *l;

    /* No pod yet. */
    l = pods("");
    s = (struct server){ .answers = { j, l }, .n = 2 };
    is_int(poll_with(&s, &st, &e), 0, "poll (%s)", e.msg);
    is_int(st.phase, REMOTE_PENDING, "no pod yet: pending");
    ok(has(s.heads[1], "GET /api/v1/namespaces/ml/pods?labelSelector=job-name%3Dstepop-r1%2Ccontroller-uid%3Duid-1 "),
       "the Job's pods listed");
    ok(has(s.heads[0], "GET /apis/batch/v1/namespaces/ml/jobs/stepop-r1 "), "the Job fetched");
    free(l);

    /* Unschedulable: the scheduler's words. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Pending",
            "\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"False\",\"reason\":\"Unschedulable\","
            "\"message\":\"0/1 nodes are available: 1 Insufficient nvidia.com/gpu.\"}]",
            "");
    l = pods(p);
    s = (struct server){ .answers = { j, l }, .n = 2 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_PENDING, "unschedulable: pending");
    ok(has(st.message, "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."), "the scheduler's message: %s", st.message);
    free(p);
    free(l);

    /* An image that cannot be pulled: cannot start, with the kubelet's reason and message. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Pending", "",
            "\"waiting\":{\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image \\\"x:1\\\"\"}");
    l = pods(p);
    s = (struct server){ .answers = { j, l }, .n = 2 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_CANNOT_START, "ImagePullBackOff: cannot start");
    ok(has(st.message, "ImagePullBackOff: Back-off pulling image \"x:1\""), "reason and message: %s", st.message);
    free(p);
    free(l);

    /* Running. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Running", "", "\"running\":{\"startedAt\":\"2026-11-29T10:00:01Z\"}");
    l = pods(p);
    s = (struct server){ .answers = { j, l }, .n = 2 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_RUNNING, "running");
    ok(has(st.message, "running on node n1"), "the node named: %s", st.message);
    free(p);
    free(l);

    /* Failed with exit 3 (the Job controller not caught up yet, no retries): exited, the log quoted. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Failed", "",
            "\"terminated\":{\"exitCode\":3,\"reason\":\"Error\"}");
    l = pods(p);
    const char *log_body = "first line\nsecond line\n\n\n";
    char *logtext = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                              strlen(log_body), log_body);
    s = (struct server){ .answers = { j, l, logtext }, .n = 3 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "a failed pod: exited");
    is_int(st.exit_code, 3, "its exit code");
    ok(has(st.message, "exit code 3 (Error)"), "the kubelet's reason: %s", st.message);
    ok(has(st.message, "last log lines: first line | second line") && !has(st.message, "line | |"),
       "the last log lines on one line: %s", st.message);
    ok(has(s.heads[2], "GET /api/v1/namespaces/ml/pods/p1/log?container=step&tailLines=20 "), "the log asked for");
    free(p);
    free(l);

    /* Two pods (a retry): the newest counts; BackoffLimitExceeded: exited with its code. */
    char *older = pod("p0", "2026-11-29T09:59:00Z", "Failed", "", "\"terminated\":{\"exitCode\":1,\"reason\":\"Error\"}");
    char *newer = pod("p2", "2026-11-29T10:01:00Z", "Failed", "", "\"terminated\":{\"exitCode\":5,\"reason\":\"Error\"}");
    char *both = xasprintf("%s,%s", newer, older);
    l = pods(both);
    char *jf = job("r1", "{\"type\":\"Failed\",\"status\":\"True\",\"reason\":\"BackoffLimitExceeded\","
                         "\"message\":\"Job has reached the specified backoff limit\"}");
    s = (struct server){ .answers = { jf, l, logtext }, .n = 3 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "BackoffLimitExceeded: exited");
    is_int(st.exit_code, 5, "with the newest pod's exit code");
    ok(has(st.message, "BackoffLimitExceeded: Job has reached the specified backoff limit") && has(st.message, "pod p2"),
       "the Job's words and the newest pod: %s", st.message);
    free(l);
    free(jf);

    /* The same pods while the Job has retries left: it goes on. */
    char *jr = job("r1", "RETRY");
    l = pods(older);
    s = (struct server){ .answers = { jr, l }, .n = 2 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_RUNNING, "a failed pod with retries left: the Job goes on");
    ok(has(st.message, "the Job starts another pod"), "says so: %s", st.message);
    free(l);
    free(jr);
    free(both);
    free(older);
    free(newer);

    /* OOMKilled. */
    char *jf2 = job("r1", "{\"type\":\"Failed\",\"status\":\"True\",\"reason\":\"BackoffLimitExceeded\"}");
    p = pod("p1", "2026-11-29T10:00:00Z", "Failed", "", "\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\"}");
    l = pods(p);
    s = (struct server){ .answers = { jf2, l, logtext }, .n = 3 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "OOMKilled: exited");
    ok(st.oom_killed, "oom_killed");
    is_int(st.exit_code, 137, "exit 137");
    free(p);
    free(l);

    /* DeadlineExceeded: timeout; the pod already gone, so the exit code is unknown. */
    char *jd = job("r1", "{\"type\":\"Failed\",\"status\":\"True\",\"reason\":\"DeadlineExceeded\","
                         "\"message\":\"Job was active longer than specified deadline\"}");
    l = pods("");
    s = (struct server){ .answers = { jd, l }, .n = 2 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "DeadlineExceeded: exited");
    is_int(st.reason, REASON_TIMEOUT, "reason timeout");
    is_int(st.exit_code, -1, "exit code unknown");
    ok(has(st.message, "Job was active longer than specified deadline"), "the Job's words: %s", st.message);
    free(l);
    free(jd);

    /* Evicted. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Failed",
            "\"reason\":\"Evicted\",\"message\":\"The node was low on resource: memory.\"", "");
    l = pods(p);
    s = (struct server){ .answers = { jf2, l, logtext }, .n = 3 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "evicted: exited");
    is_int(st.reason, REASON_PREEMPTED, "reason preempted");
    ok(has(st.message, "(Evicted) from node n1: The node was low on resource: memory."), "the words: %s", st.message);
    free(p);
    free(l);

    /* A DisruptionTarget condition on a failed pod. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Failed",
            "\"conditions\":[{\"type\":\"DisruptionTarget\",\"status\":\"True\",\"reason\":\"PreemptionByScheduler\","
            "\"message\":\"preempted by a higher priority pod\"}]",
            "\"terminated\":{\"exitCode\":143,\"reason\":\"Error\"}");
    l = pods(p);
    s = (struct server){ .answers = { jf2, l, logtext }, .n = 3 };
    poll_with(&s, &st, &e);
    is_int(st.reason, REASON_PREEMPTED, "DisruptionTarget: preempted");
    is_int(st.exit_code, 143, "with the container's exit code");
    ok(has(st.message, "PreemptionByScheduler"), "the condition's reason: %s", st.message);
    free(p);
    free(l);

    /* The node lost: phase Unknown. */
    p = pod("p1", "2026-11-29T10:00:00Z", "Unknown", "", "\"running\":{}");
    l = pods(p);
    s = (struct server){ .answers = { j, l, logtext }, .n = 3 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "a lost node: exited");
    is_int(st.reason, REASON_PREEMPTED, "preempted");
    ok(has(st.message, "the node was lost"), "says so: %s", st.message);
    free(p);
    free(l);
    free(jf2);
    free(logtext);

    /* Complete. */
    char *jc = job("r1", "{\"type\":\"Complete\",\"status\":\"True\"}");
    p = pod("p1", "2026-11-29T10:00:00Z", "Succeeded", "", "\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}");
    l = pods(p);
    s = (struct server){ .answers = { jc, l }, .n = 2 };
    poll_with(&s, &st, &e);
    is_int(st.phase, REMOTE_EXITED, "Complete: exited");
    is_int(st.exit_code, 0, "exit 0");
    is_int(s.seen, 2, "no log asked for a success");
    free(p);
    free(l);
    free(jc);

    /* Gone. */
    char *nf = answer("404 Not Found", "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"jobs.batch "
                                       "\\\"stepop-r1\\\" not found\",\"reason\":\"NotFound\",\"code\":404}");
    s = (struct server){ .answers = { nf }, .n = 1 };
    is_int(poll_with(&s, &st, &e), 0, "a Job gone: poll succeeds");
    is_int(st.phase, REMOTE_GONE, "gone");
    free(nf);

    /* A Job of another run. */
    char *other = job("r2", "");
    s = (struct server){ .answers = { other }, .n = 1 };
    is_int(poll_with(&s, &st, &e), -1, "a Job with another run's label is refused");
    is_int(e.kind, ERR_REFUSED, "ERR_REFUSED");
    ok(has(e.msg, "label stepop.io/run-id is \"r2\""), "naming what it found: %s", e.msg);
    free(other);
    free(j);
}

static void test_cancel_cleanup(void)
{
    struct server s;
    struct err e = { 0 };
    char *j = job("r1", "");
    char *done = answer("200 OK", "{\"kind\":\"Status\",\"status\":\"Success\"}");
    cJSON *h = handle("ml"), *settings = cJSON_CreateObject();

    s = (struct server){ .answers = { j, done }, .n = 2 };
    pthread_t t = server_start(&s, fd);
    is_int(ops->cancel(h, settings, 20000, &e), 0, "cancel (%s)", e.msg);
    pthread_join(t, NULL);
    ok(has(s.heads[1], "DELETE /apis/batch/v1/namespaces/ml/jobs/stepop-r1 "), "DELETE the Job");
    cJSON *b = cJSON_Parse(s.bodies[1]);
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(b, "propagationPolicy");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(b, "gracePeriodSeconds");
    ok(cJSON_IsString(pp) && strcmp(pp->valuestring, "Foreground") == 0, "foreground propagation: %s", s.bodies[1]);
    ok(cJSON_IsNumber(g) && g->valueint == 20, "the grace period in seconds");
    ok(has(s.bodies[1], "\"preconditions\":{\"uid\":\"uid-1\"}"), "only the Job verified (uid precondition)");
    cJSON_Delete(b);

    s = (struct server){ .answers = { j, done }, .n = 2 };
    t = server_start(&s, fd);
    is_int(ops->cleanup(h, settings, &e), 0, "cleanup (%s)", e.msg);
    pthread_join(t, NULL);
    ok(has(s.bodies[1], "\"propagationPolicy\":\"Background\""), "cleanup deletes in the background");

    char *nf = answer("404 Not Found", "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}");
    s = (struct server){ .answers = { nf }, .n = 1 };
    t = server_start(&s, fd);
    is_int(ops->cancel(h, settings, 0, &e), 0, "cancel of a Job gone succeeds");
    pthread_join(t, NULL);
    is_int(s.seen, 1, "with no DELETE");

    char *other = job("r2", "");
    s = (struct server){ .answers = { other }, .n = 1 };
    t = server_start(&s, fd);
    is_int(ops->cleanup(h, settings, &e), -1, "cleanup refuses another run's Job");
    pthread_join(t, NULL);
    is_int(s.seen, 1, "and deletes nothing");

    /* The Job controller restarts the step only with retries. */
    cJSON *retries = cJSON_Parse("{\"retries\": 2}");
    ok(ops->may_restart && ops->may_restart(retries), "may_restart with retries");
    ok(!ops->may_restart(settings), "not without");
    cJSON_Delete(retries);

    /* keep: nothing is asked. */
    cJSON *keep = cJSON_Parse("{\"keep\": true}");
    is_int(ops->cleanup(h, keep, &e), 0, "cleanup with keep does nothing");
    cJSON_Delete(keep);

    /* A handle for another namespace than the settings': refused before any request. */
    cJSON *h2 = handle("kube-system");
    is_int(ops->cancel(h2, settings, 0, &e), -1, "a handle for another namespace is refused");
    ok(has(e.msg, "namespace \"kube-system\""), "naming it: %s", e.msg);
    cJSON_Delete(h2);
    cJSON *h3 = cJSON_Parse("{\"namespace\":\"ml\",\"job\":\"../../api/v1/x\",\"run_id\":\"r1\",\"run_uri\":\"file:///runs/r1/\"}");
    is_int(ops->poll(h3, settings, &(struct remote_state){ 0 }, &e), -1, "a Job name that is no name is refused");
    cJSON_Delete(h3);

    cJSON_Delete(h);
    cJSON_Delete(settings);
    free(other);
    free(nf);
    free(done);
    free(j);
}

int main(void)
{
    struct err e = { 0 };
    snprintf(dir, sizeof dir, "/tmp/test_kube_lifecycle.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    const char *proxies[] = { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy" };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    setenv("STEPOP_HTTP_ATTEMPTS", "1", 1);
    if (http_global_init(&e) < 0) {
        printf("Bail out! http_global_init: %s\n", e.msg);
        return 1;
    }
    int port;
    fd = loopback_listener(4, 10000, &port);
    if (fd < 0) {
        printf("Bail out! no loopback listener\n");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/config", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("Bail out! cannot write %s\n", path);
        return 1;
    }
    fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n"
               "    server: http://127.0.0.1:%d\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
               "    namespace: ml\nusers:\n- name: u\n  user:\n    token: t-0d1e\n",
            port);
    fclose(f);
    setenv("KUBECONFIG", path, 1);
    test_poll();
    test_cancel_cleanup();
    close(fd);
    unlink(path);
    rmdir(dir);
    return tap_done();
}
