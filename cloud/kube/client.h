/* A Kubernetes API client on cloud/api.c: the server, TLS (CA file or data, client certificate
 * from files, data or an exec plugin, insecure-skip-tls-verify, tls-server-name), proxy-url and
 * the credential of each request (cloud/kube/auth.c) from the kubeconfig; an answer of 401 gets
 * the credential fetched again and the request sent once more. Errors quote the API server's
 * Status message (a 403 names the verb, resource and namespace the role lacks). Shared by the
 * kubernetes and spark flavors. */
#ifndef STEPOP_KUBE_CLIENT_H
#define STEPOP_KUBE_CLIENT_H

#include "kubeconfig.h"

#include "../../runtime/err.h"

#include <cjson/cJSON.h>
#include <stddef.h>

struct kube_client;

/* Loads the kubeconfig (context, namespace: the settings, or NULL for kubectl's choice) and
 * prepares a client; no request is sent. */
int kube_client_open(const char *context, const char *namespace, struct kube_client **out, struct err *e);
void kube_client_free(struct kube_client *c);
/* The namespace chosen (setting, context, "default"), the server URL, the configuration. */
const char *kube_client_namespace(const struct kube_client *c);
const char *kube_client_server(const struct kube_client *c);
const struct kube_config *kube_client_config(const struct kube_client *c);

/* One call: method, path with its query ("/apis/batch/v1/namespaces/ns/jobs?dryRun=All"), a JSON
 * body or NULL. *out (may be NULL when the answer is not wanted) gets the answer parsed; caller
 * frees. Fails with the API server's words: ERR_NOT_FOUND (404), ERR_REFUSED (409), ERR_AUTH
 * (401, 403), ERR_HTTP otherwise, or the transport's error (e->transient when a retry may help). */
int kube_request(struct kube_client *c, const char *method, const char *path, const cJSON *body, cJSON **out,
                 struct err *e);
/* A GET whose answer is text (a pod's log): at most max bytes are kept, *out NUL-terminated. */
int kube_request_text(struct kube_client *c, const char *path, size_t max, char **out, size_t *len, struct err *e);

#endif
