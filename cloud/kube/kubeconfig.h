/* Where a Kubernetes API is and how to sign in to it, found as kubectl finds it: KUBECONFIG (a
 * list of files merged as kubectl merges them) or ~/.kube/config, else the pod's service account
 * (in-cluster). The credentials themselves (token files re-read, exec plugins run and cached)
 * come from cloud/kube/auth.c. */
#ifndef STEPOP_KUBE_KUBECONFIG_H
#define STEPOP_KUBE_KUBECONFIG_H

#include "../../runtime/err.h"

#include <stddef.h>

enum kube_interactive { KUBE_INTERACTIVE_IF_AVAILABLE = 0, KUBE_INTERACTIVE_NEVER, KUBE_INTERACTIVE_ALWAYS };

/* users[].user.exec: a credential plugin (aws eks get-token, gke-gcloud-auth-plugin, kubelogin). */
struct kube_exec {
    char *api_version;          /* client.authentication.k8s.io/v1 or /v1beta1 */
    char *command;              /* a relative path holding '/' is resolved against its file's folder */
    char **argv;                /* command, then args; NULL-terminated */
    char **env;                 /* "NAME=value", NULL-terminated */
    char *install_hint;
    int provide_cluster_info;
    enum kube_interactive interactive;
};

struct kube_config {
    char *source;               /* where it came from, for messages: a file list or "in-cluster" */
    char *context;              /* the context used ("" in-cluster) */
    char *namespace;            /* the setting, else the context's, else "default" */
    /* cluster */
    char *server;               /* https://host:port */
    char *ca_file;              /* certificate-authority (absolute) ... */
    char *ca_pem;               /* ... or certificate-authority-data, decoded */
    int insecure;               /* insecure-skip-tls-verify */
    char *tls_server_name;
    char *proxy_url;
    /* user */
    char *cert_file, *cert_pem; /* client-certificate[-data] */
    char *key_file, *key_pem;   /* client-key[-data] */
    char *token;                /* token ... */
    char *token_file;           /* ... or tokenFile (re-read: it may rotate) */
    char *user;                 /* the user entry's name, for messages */
    struct kube_exec *exec;
    int in_cluster;
};

/* Loads the configuration. context: the setting, or NULL for the current context;
 * namespace: the setting, or NULL. Errors name the file and the field (ERR_INVALID), or say
 * where stepop looked (ERR_NOT_FOUND). */
int kube_config_load(const char *context, const char *namespace, struct kube_config *out, struct err *e);
void kube_config_free(struct kube_config *c);

/* The service account folder of a pod: /var/run/secrets/kubernetes.io/serviceaccount, or
 * STEPOP_KUBE_SERVICEACCOUNT_DIR (tests, or a token projected elsewhere). */
const char *kube_serviceaccount_dir(void);

#endif
