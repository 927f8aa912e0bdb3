#include "client.h"

#include "auth.h"

#include "../../cloud/api.h"
#include "../../runtime/util.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* kubectl waits as long for a connection; a call that takes a minute is stuck, not slow. */
#define KUBE_CONNECT_TIMEOUT_MS 10000
#define KUBE_CALL_TIMEOUT_MS 60000

struct kube_client {
    struct kube_config cfg;
    struct kube_auth *auth;
    struct http_client *http;
    char *base; /* the server URL without a trailing '/' (a path prefix of a proxying server stays) */
};

int kube_client_open(const char *context, const char *namespace, struct kube_client **out, struct err *e)
{
    struct kube_client *c = xcalloc(1, sizeof *c);
    *out = NULL;
    if (kube_config_load(context, namespace, &c->cfg, e) < 0) {
        free(c);
        return -1;
    }
    size_t n = strlen(c->cfg.server);
    while (n > 0 && c->cfg.server[n - 1] == '/')
        n--;
    c->base = xstrndup(c->cfg.server, n);
    c->auth = kube_auth_new(&c->cfg);
    c->http = http_client_new();
    *out = c;
    return 0;
}

void kube_client_free(struct kube_client *c)
{
    if (!c)
        return;
    http_client_free(c->http);
    kube_auth_free(c->auth);
    kube_config_free(&c->cfg);
    free(c->base);
    free(c);
}

const char *kube_client_namespace(const struct kube_client *c)
{
    return c->cfg.namespace;
}

const char *kube_client_server(const struct kube_client *c)
{
    return c->cfg.server;
}

const struct kube_config *kube_client_config(const struct kube_client *c)
{
    return &c->cfg;
}

/* What one request needs that comes from the credential of the moment. */
struct kube_send {
    struct kube_credential cred;
    struct http_tls tls;
    char *auth_header;
    const char *headers[3];
    const char *secrets[2];
};

static void send_free(struct kube_send *s)
{
    kube_credential_free(&s->cred);
    if (s->auth_header) {
        OPENSSL_cleanse(s->auth_header, strlen(s->auth_header));
        free(s->auth_header);
    }
    memset(s, 0, sizeof *s);
}

static int send_prepare(struct kube_client *c, int refused, const char *accept, struct kube_send *s, struct err *e)
{
    const struct kube_config *k = &c->cfg;
    memset(s, 0, sizeof *s);
    if (kube_auth_get(c->auth, refused, &s->cred, e) < 0)
        return err_prefix(e, "signing in as kubeconfig user %s: ", k->user ? k->user : "(in-cluster)");
    s->tls = (struct http_tls){ .ca_file = k->ca_file, .ca_pem = k->ca_pem, .server_name = k->tls_server_name,
                                .insecure = k->insecure };
    /* An exec plugin's certificate replaces the kubeconfig's, as with kubectl. */
    if (s->cred.cert_pem && s->cred.key_pem) {
        s->tls.cert_pem = s->cred.cert_pem;
        s->tls.key_pem = s->cred.key_pem;
    } else {
        s->tls.cert_file = k->cert_file;
        s->tls.cert_pem = k->cert_pem;
        s->tls.key_file = k->key_file;
        s->tls.key_pem = k->key_pem;
    }
    int n = 0;
    s->headers[n++] = accept;
    if (s->cred.token) {
        s->auth_header = xasprintf("Authorization: Bearer %s", s->cred.token);
        s->headers[n++] = s->auth_header;
        s->secrets[0] = s->cred.token;
    }
    return 0;
}

/* Only a credential that can change is worth a second try after a 401. */
static int kube_refreshable(const struct kube_client *c)
{
    return !c->cfg.token && (c->cfg.token_file || c->cfg.exec);
}

/* The call, sent again once with a fresh credential after a 401. */
static int kube_perform(struct kube_client *c, struct api_call *call, const char *accept, struct api_response *resp,
                        struct err *e)
{
    char *url = xasprintf("%s%s", c->base, call->http.url);
    call->label = call->http.url;
    call->http.url = url;
    call->http.proxy = c->cfg.proxy_url;
    call->http.connect_timeout_ms = KUBE_CONNECT_TIMEOUT_MS;
    call->http.timeout_ms = KUBE_CALL_TIMEOUT_MS;
    call->error = api_error_kubernetes;
    memset(resp, 0, sizeof *resp); /* freed by the caller even when no request went out */
    int rc = -1;
    for (int refused = 0; refused < 2; refused++) {
        struct kube_send s;
        if (send_prepare(c, refused, accept, &s, e) < 0)
            break;
        call->http.tls = &s.tls;
        call->http.headers = s.headers;
        call->secrets = s.secrets;
        rc = api_perform(c->http, call, resp, e);
        send_free(&s);
        if (rc == 0 || resp->status != 401 || refused || !kube_refreshable(c))
            break;
        api_response_free(resp);
    }
    if (rc == 0)
        err_clear(e); /* a 401 answered by the second try is no error */
    free(url);
    return rc;
}

int kube_request(struct kube_client *c, const char *method, const char *path, const cJSON *body, cJSON **out,
                 struct err *e)
{
    struct api_call call = { .http = { .method = method, .url = path }, .body = body, .json_answer = out != NULL };
    struct api_response resp;
    if (out)
        *out = NULL;
    int rc = kube_perform(c, &call, "Accept: application/json", &resp, e);
    if (rc == 0 && out) {
        *out = resp.json;
        resp.json = NULL;
    }
    api_response_free(&resp);
    return rc;
}

struct text_sink {
    struct buf b;
    size_t max;
};

/* Keeps the first max bytes and lets the rest go by (a log may be long; the transfer must not fail). */
static int text_keep(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)e;
    struct text_sink *t = ctx;
    size_t room = t->max > t->b.len ? t->max - t->b.len : 0;
    if (room)
        buf_append(&t->b, data, n < room ? n : room);
    return 0;
}

int kube_request_text(struct kube_client *c, const char *path, size_t max, char **out, size_t *len, struct err *e)
{
    struct text_sink t = { .max = max };
    struct api_call call = { .http = { .method = "GET", .url = path, .on_data = text_keep, .data_ctx = &t } };
    struct api_response resp;
    *out = NULL;
    if (len)
        *len = 0;
    int rc = kube_perform(c, &call, "Accept: text/plain, */*", &resp, e);
    api_response_free(&resp);
    if (rc < 0) {
        buf_free(&t.b);
        return -1;
    }
    if (len)
        *len = t.b.len;
    *out = t.b.data ? t.b.data : xstrdup("");
    return 0;
}
