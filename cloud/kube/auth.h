/* The credential of a Kubernetes user for each request: a static token, a token file (re-read,
 * since projected tokens rotate), or an exec credential plugin (client.authentication.k8s.io v1
 * and v1beta1: aws eks get-token, gke-gcloud-auth-plugin, kubelogin), whose answer is kept until
 * its expirationTimestamp and fetched again after a 401. Client certificates from files or
 * kubeconfig data are the TLS layer's business (struct kube_config). */
#ifndef STEPOP_KUBE_AUTH_H
#define STEPOP_KUBE_AUTH_H

#include "kubeconfig.h"

struct kube_credential {
    char *token;              /* "Authorization: Bearer" value, or NULL */
    char *cert_pem, *key_pem; /* a client certificate from an exec plugin, or NULL */
};
void kube_credential_free(struct kube_credential *c);

struct kube_auth; /* one per configuration; safe to share between threads */
/* c must outlive the returned object. */
struct kube_auth *kube_auth_new(const struct kube_config *c);
void kube_auth_free(struct kube_auth *a);

/* The credential for the next request; refused: the last one got a 401, so a token file is read
 * again and a plugin run again. Errors name the plugin or the file and never hold the secret. */
int kube_auth_get(struct kube_auth *a, int refused, struct kube_credential *out, struct err *e);

#endif
