/* A pod's state as the kubernetes and spark flavors read it (the kubernetes flavor's Job pods, the
 * spark flavor's driver pod): waiting reasons that mean it will not start, unschedulable,
 * running, terminated with an exit code or OOMKilled, taken away (evicted, preempted, node lost),
 * and its last log lines. */
#include "kubernetes.h"

#include "../../cloud/kube/client.h"
#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pod's log quoted in a message: the last lines, at most this many bytes of them. */
#define KUBE_LOG_QUOTE 200

/* obj.k1.k2... (NULL-terminated keys), or NULL. */
const cJSON *kube_get(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    for (const char *k; obj && (k = va_arg(ap, const char *));)
        obj = cJSON_GetObjectItemCaseSensitive(obj, k);
    va_end(ap);
    return obj;
}

const char *kube_str(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The condition of type type whose status is "True", or NULL. */
const cJSON *kube_condition(const cJSON *obj, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, kube_get(obj, "status", "conditions", NULL))
    {
        const char *t = kube_str(kube_get(c, "type", NULL)), *s = kube_str(kube_get(c, "status", NULL));
        if (t && s && strcmp(t, type) == 0 && strcmp(s, "True") == 0)
            return c;
    }
    return NULL;
}

/* The status of container name among the pod's containers (or init containers, init != 0). */
const cJSON *kube_container(const cJSON *pod, const char *name, int init)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, kube_get(pod, "status", init ? "initContainerStatuses" : "containerStatuses", NULL))
    {
        const char *n = kube_str(kube_get(c, "name", NULL));
        if (n && strcmp(n, name) == 0)
            return c;
    }
    return NULL;
}

static int kube_cannot_start_reason(const char *reason)
{
    static const char *const reasons[] = { "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                           "CreateContainerConfigError", "CreateContainerError", NULL };
    for (const char *const *r = reasons; reason && *r; r++)
        if (strcmp(*r, reason) == 0)
            return 1;
    return 0;
}

/* Pod reasons that mean the platform took the pod away: eviction (node pressure, API-initiated),
 * preemption, a node shutting down or lost. */
static int kube_preempted_reason(const char *reason)
{
    static const char *const reasons[] = { "Evicted", "Preempting", "NodeLost", "NodeShutdown", "Shutdown",
                                           "Terminated", NULL };
    for (const char *const *r = reasons; reason && *r; r++)
        if (strcmp(*r, reason) == 0)
            return 1;
    return 0;
}

void kube_msg(struct remote_state *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
}

/* Appends the last log lines of the pod's container to the message, on one line. */
void kube_quote_pod_log(struct kube_client *c, const char *ns, const char *pod, const char *container,
                        struct remote_state *st)
{
    char *path = xasprintf("/api/v1/namespaces/%s/pods/%s/log?container=%s&tailLines=20", ns, pod, container);
    char *log = NULL;
    size_t len = 0;
    struct err le = { 0 };
    if (kube_request_text(c, path, 64 * 1024, &log, &len, &le) < 0) {
        log_debug("reading the log of pod %s: %s", pod, le.msg);
        free(path);
        return;
    }
    free(path);
    while (len && (log[len - 1] == '\n' || log[len - 1] == '\r' || log[len - 1] == ' '))
        log[--len] = '\0';
    if (len) {
        const char *from = len > KUBE_LOG_QUOTE ? log + len - KUBE_LOG_QUOTE : log;
        /* Start on a line's beginning when one is near. */
        const char *nl = from > log ? strchr(from, '\n') : NULL;
        if (nl && nl[1])
            from = nl + 1;
        struct buf b = { 0 };
        for (const char *p = from; *p; p++) {
            if (*p == '\n')
                buf_append(&b, " | ", 3);
            else if ((unsigned char)*p >= 0x20 || *p == '\t')
                buf_append(&b, p, 1);
        }
        size_t used = strlen(st->message);
        snprintf(st->message + used, sizeof st->message - used, "; last log lines: %s%s", from > log ? "... " : "",
                 b.data ? b.data : "");
        buf_free(&b);
    }
    free(log);
}

/* The container ended: its exit code, OOM and the kubelet's words. Returns 1 when it did. */
int kube_terminated(const cJSON *pod, const char *container, const char *pod_name, struct remote_state *st)
{
    const cJSON *cs = kube_container(pod, container, 0);
    const cJSON *term = kube_get(cs, "state", "terminated", NULL);
    if (!term)
        term = kube_get(cs, "lastState", "terminated", NULL);
    if (!term)
        return 0;
    const cJSON *code = kube_get(term, "exitCode", NULL);
    const char *reason = kube_str(kube_get(term, "reason", NULL)), *message = kube_str(kube_get(term, "message", NULL));
    st->exit_code = cJSON_IsNumber(code) ? code->valueint : -1;
    st->oom_killed = reason && strcmp(reason, "OOMKilled") == 0;
    if (st->oom_killed)
        kube_msg(st, "pod %s: container %s was OOMKilled (exit code %d)", pod_name, container, st->exit_code);
    else
        kube_msg(st, "pod %s: container %s terminated with exit code %d%s%s%s%s", pod_name, container,
                 st->exit_code, reason ? " (" : "", reason ? reason : "", reason ? ")" : "",
                 message && *message ? ": " : "");
    if (message && *message && !st->oom_killed) {
        size_t used = strlen(st->message);
        snprintf(st->message + used, sizeof st->message - used, "%.200s", message);
    }
    return 1;
}

/* A waiting container that will not start (the image, the configuration): 1 and st filled. */
static int kube_waiting(const cJSON *pod, const char *pod_name, struct remote_state *st)
{
    const cJSON *c, *lists[2] = { kube_get(pod, "status", "initContainerStatuses", NULL),
                                  kube_get(pod, "status", "containerStatuses", NULL) };
    for (int i = 0; i < 2; i++) {
        cJSON_ArrayForEach(c, lists[i])
        {
            const cJSON *w = kube_get(c, "state", "waiting", NULL);
            const char *reason = kube_str(kube_get(w, "reason", NULL)), *message = kube_str(kube_get(w, "message", NULL));
            if (!kube_cannot_start_reason(reason))
                continue;
            const char *container = kube_str(kube_get(c, "name", NULL));
            st->phase = REMOTE_CANNOT_START;
            kube_msg(st, "pod %s: container %s: %s%s%s", pod_name, container ? container : "?", reason,
                     message ? ": " : "", message ? message : "");
            return 1;
        }
    }
    return 0;
}


/* The pod as a phase, for the pod's container named container. 0: st->phase says it all (pending,
 * unschedulable, running, cannot start); 1: the pod ended or is being taken away: st has the exit
 * code (-1 when unknown), oom_killed, REASON_PREEMPTED and the words, *over whether its phase is
 * final (Succeeded, Failed, Unknown). */
int kube_pod_verdict(const cJSON *pod, const char *container, int *over, struct remote_state *st)
{
    const char *name = kube_str(kube_get(pod, "metadata", "name", NULL));
    const char *phase = kube_str(kube_get(pod, "status", "phase", NULL));
    const char *reason = kube_str(kube_get(pod, "status", "reason", NULL));
    const char *message = kube_str(kube_get(pod, "status", "message", NULL));
    const char *node = kube_str(kube_get(pod, "spec", "nodeName", NULL));
    name = name ? name : "?";
    phase = phase ? phase : "Pending";
    if (kube_waiting(pod, name, st))
        return 0;
    const cJSON *disruption = kube_condition(pod, "DisruptionTarget");
    int preempted = disruption || kube_preempted_reason(reason) || strcmp(phase, "Unknown") == 0;
    if (strcmp(phase, "Pending") == 0 && !preempted) {
        const cJSON *sched;
        cJSON_ArrayForEach(sched, kube_get(pod, "status", "conditions", NULL))
        {
            const char *type = kube_str(kube_get(sched, "type", NULL)), *s = kube_str(kube_get(sched, "status", NULL));
            const char *r = kube_str(kube_get(sched, "reason", NULL)), *m = kube_str(kube_get(sched, "message", NULL));
            if (type && s && r && strcmp(type, "PodScheduled") == 0 && strcmp(s, "False") == 0 &&
                strcmp(r, "Unschedulable") == 0) {
                kube_msg(st, "pod %s is unschedulable: %s", name, m ? m : r);
                return 0;
            }
        }
        const cJSON *w = kube_get(kube_container(pod, container, 0), "state", "waiting", NULL);
        const char *wr = kube_str(kube_get(w, "reason", NULL));
        kube_msg(st, "pod %s is pending%s%s%s%s", name, node ? " on node " : "", node ? node : "", wr ? ": " : "",
                 wr ? wr : "");
        return 0;
    }
    if (strcmp(phase, "Running") == 0 && !preempted) {
        st->phase = REMOTE_RUNNING;
        kube_msg(st, "pod %s is running%s%s", name, node ? " on node " : "", node ? node : "");
        return 0;
    }
    /* Succeeded, Failed, or taken away. */
    int ended = kube_terminated(pod, container, name, st);
    if (!ended)
        st->exit_code = strcmp(phase, "Succeeded") == 0 ? 0 : -1;
    if (preempted) {
        st->reason = REASON_PREEMPTED;
        const char *why = disruption ? kube_str(kube_get(disruption, "message", NULL)) : message;
        const char *r = disruption ? kube_str(kube_get(disruption, "reason", NULL)) : reason;
        if (!r && strcmp(phase, "Unknown") == 0)
            r = "the node was lost";
        kube_msg(st, "pod %s was taken away%s%s%s%s%s%s", name, r ? " (" : "", r ? r : "", r ? ")" : "",
                 node ? " from node " : "", node ? node : "", why ? ": " : "");
        if (why) {
            size_t used = strlen(st->message);
            snprintf(st->message + used, sizeof st->message - used, "%.300s", why);
        }
    } else if (!ended) {
        kube_msg(st, "pod %s is %s%s%s", name, phase, message ? ": " : "", message ? message : "");
    }
    *over = strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0 || strcmp(phase, "Unknown") == 0;
    return 1;
}
