/* The kubernetes flavor's own parts, shared by its files: settings.c (parsing and checking the
 * settings and the job), body.c (the batch/v1 Job) and lifecycle.c (the flavor's operations,
 * flavor_kubernetes_ops: submit, poll with the pod's state, cancel, cleanup). The API client is
 * cloud/kube/client.h. Settings and behaviour: docs/flavors.md#kubernetes. */
#ifndef STEPOP_FLAVOR_KUBERNETES_H
#define STEPOP_FLAVOR_KUBERNETES_H

#include "../flavor.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* Labels and annotations every Job and its pods carry; cancel and cleanup check them. */
#define KUBE_LABEL_RUN_ID "stepop.io/run-id"
#define KUBE_ANNOTATION_RUN_URI "stepop.io/run-uri"
#define KUBE_ANNOTATION_RUN_ID "stepop.io/run-id"
/* Where an injected binary appears inside the step's container. */
#define KUBE_INJECT_DIR "/opt/stepop/bin"
#define KUBE_INJECT_PATH KUBE_INJECT_DIR "/stepop"
/* The step's container in the pod. */
#define KUBE_CONTAINER "step"
/* The init container that copies the binary to inject, and the pod's own volumes (names starting
 * with "stepop-" are refused in settings.pod_settings.volumes). */
#define KUBE_INIT_CONTAINER "stepop-install"
#define KUBE_VOLUME_BIN "stepop-bin"
#define KUBE_VOLUME_SHM "stepop-shm"
/* Added to the grace period for terminationGracePeriodSeconds (the entrypoint forwards SIGTERM,
 * waits the grace period, then writes the final status), and to the timeout plus the grace
 * period for activeDeadlineSeconds (the entrypoint's own timeout, with its status, comes first;
 * the Job's deadline also counts scheduling and the image pull). */
#define KUBE_GRACE_MARGIN_S 30
#define KUBE_DEADLINE_MARGIN_S 120

/* The settings, checked and with their defaults. Strings and objects point into the settings. */
struct kube_cfg {
    const char *context, *namespace;  /* NULL: the kubeconfig's choice */
    const char *gpu_resource;         /* default nvidia.com/gpu */
    int retries;                      /* backoffLimit, default 0 */
    int64_t ttl_seconds;              /* ttlSecondsAfterFinished; -1: not set */
    int keep;                         /* cleanup leaves the Job */
    int inject;
    const char *inject_image;         /* inject: an image with the static binary and glibc >= 2.34 */
    const char *inject_binary;        /* the binary's path in inject_image, default /stepop */
    const char *image_pull_policy;    /* NULL: the cluster's default */
    int64_t shm_size;                 /* bytes of the /dev/shm emptyDir; 0: none */
    int host_network;                 /* the pod uses the node's network (a loopback store) */
    const char *service_account_name, *priority_class_name, *runtime_class_name; /* NULL: none */
    const cJSON *pod;                 /* the pod settings (node selector, tolerations ...), checked;
                                         NULL when none */
};

/* ---- settings.c ---- */

/* Parses and checks the settings; unknown ones are refused, naming them. */
int kube_parse_settings(const cJSON *s, struct kube_cfg *c, struct err *e);
/* Refuses what the step asks that the settings cannot give (a file store no volume mounts, a
 * loopback store without host_network, ...). */
int kube_check_job(const struct job *j, const struct kube_cfg *c, struct err *e);
/* Kubernetes' name rules: a DNS-1123 label (lower case, digits, '-', at most max characters), a
 * DNS-1123 subdomain, a qualified name ([prefix/]name: label and annotation keys, resource
 * names) and a label value. */
int kube_is_dns_label(const char *s, size_t max);
int kube_is_dns_subdomain(const char *s);
int kube_is_qualified_name(const char *s);
int kube_is_label_value(const char *s);

/* ---- body.c ---- */

/* The Job's name: stepop-<run id in lower case>, or a digest of it when that is no DNS-1123
 * label; caller frees. */
char *kube_job_name(const struct manifest *m);
/* The value of the KUBE_LABEL_RUN_ID label for a run id (of a manifest, or of a handle when poll,
 * cancel and cleanup check a Job): the run id when it is a valid label value (at most 63
 * characters, starting and ending with a letter or digit, as stepop's own are), else "sha256-"
 * and the first 16 hex digits of its SHA-256; the annotation KUBE_ANNOTATION_RUN_ID always holds
 * the run id itself. Caller frees. */
char *kube_run_label(const char *run_id);
/* The batch/v1 Job for POST /apis/batch/v1/namespaces/<namespace>/jobs. */
cJSON *kube_job_body(const struct job *j, const struct kube_cfg *c, const char *namespace);

/* ---- pod.c ---- */

struct kube_client;
/* obj.k1.k2... (NULL-terminated keys), or NULL; a string item's value, or NULL. */
const cJSON *kube_get(const cJSON *obj, ...);
const char *kube_str(const cJSON *v);
/* The condition of type type whose status is "True", or NULL. */
const cJSON *kube_condition(const cJSON *obj, const char *type);
/* The status of container name among the pod's containers (or init containers, init != 0). */
const cJSON *kube_container(const cJSON *pod, const char *name, int init);
void kube_msg(struct remote_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The container ended: exit code, OOMKilled and the kubelet's words into st. 1 when it did. */
int kube_terminated(const cJSON *pod, const char *container, const char *pod_name, struct remote_state *st);
/* The pod as a phase, for its container named container. 0: st->phase says it all (pending,
 * unschedulable, running, cannot start); 1: the pod ended or is being taken away: st has the exit
 * code (-1 when unknown), oom_killed, REASON_PREEMPTED and the words, *over whether its phase is
 * final (Succeeded, Failed, Unknown). */
int kube_pod_verdict(const cJSON *pod, const char *container, int *over, struct remote_state *st);
/* Appends the last log lines of the pod's container to st's message, on one line. */
void kube_quote_pod_log(struct kube_client *c, const char *ns, const char *pod, const char *container,
                        struct remote_state *st);

#endif
