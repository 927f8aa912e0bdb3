#include "auth.h"

#include "../../runtime/subproc.h"
#include "../../runtime/timeutil.h"
#include "../../runtime/util.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A token file is read again after this long (as client-go does), or at once after a 401. */
#define TOKEN_FILE_REREAD_S 60
/* An exec credential is renewed this long before it expires, so no request leaves with a
 * credential that dies on the way. */
#define EXEC_RENEW_BEFORE_S 30
/* A plugin that cannot ask the user anything gets this long. */
#define EXEC_TIMEOUT_MS 120000

struct kube_auth {
    const struct kube_config *c;
    pthread_mutex_t lock;
    struct kube_credential cached;
    int have;
    int64_t read_at_ms;  /* token file: when it was read */
    time_t expires;      /* exec: 0 when the plugin gave no expiry */
};

static void secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void kube_credential_free(struct kube_credential *c)
{
    secret_free(c->token);
    secret_free(c->cert_pem);
    secret_free(c->key_pem);
    memset(c, 0, sizeof *c);
}

struct kube_auth *kube_auth_new(const struct kube_config *c)
{
    struct kube_auth *a = xcalloc(1, sizeof *a);
    a->c = c;
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

void kube_auth_free(struct kube_auth *a)
{
    if (!a)
        return;
    kube_credential_free(&a->cached);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void copy_credential(const struct kube_credential *from, struct kube_credential *to)
{
    to->token = dup_or_null(from->token);
    to->cert_pem = dup_or_null(from->cert_pem);
    to->key_pem = dup_or_null(from->key_pem);
}

static int read_token_file(struct kube_auth *a, struct err *e)
{
    char *t;
    size_t len;
    if (read_small_file(a->c->token_file, 64 * 1024, &t, &len) < 0)
        return err_set(e, ERR_AUTH, "user \"%s\": cannot read the token file %s", a->c->user, a->c->token_file);
    while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
        t[--len] = '\0';
    if (!len || strpbrk(t, "\r\n")) {
        secret_free(t);
        return err_set(e, ERR_AUTH, "user \"%s\": the token file %s is empty or holds more than one line", a->c->user,
                       a->c->token_file);
    }
    kube_credential_free(&a->cached);
    a->cached.token = t;
    a->have = 1;
    a->read_at_ms = time_mono_ms();
    return 0;
}

/* KUBERNETES_EXEC_INFO: what the plugin may know of the request (ExecCredential's spec). */
static char *exec_info(const struct kube_config *c, int interactive)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "ExecCredential");
    cJSON_AddStringToObject(j, "apiVersion", c->exec->api_version);
    cJSON *spec = cJSON_AddObjectToObject(j, "spec");
    cJSON_AddBoolToObject(spec, "interactive", interactive);
    if (c->exec->provide_cluster_info) {
        cJSON *cl = cJSON_AddObjectToObject(spec, "cluster");
        cJSON_AddStringToObject(cl, "server", c->server);
        if (c->tls_server_name)
            cJSON_AddStringToObject(cl, "tls-server-name", c->tls_server_name);
        if (c->insecure)
            cJSON_AddBoolToObject(cl, "insecure-skip-tls-verify", 1);
        char *pem = c->ca_pem ? xstrdup(c->ca_pem) : NULL;
        size_t len = pem ? strlen(pem) : 0;
        if (!pem && c->ca_file && read_small_file(c->ca_file, 1u << 20, &pem, &len) < 0)
            pem = NULL;
        if (pem) {
            char *b64 = xmalloc(4 * ((len + 2) / 3) + 1);
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pem, (int)len);
            cJSON_AddStringToObject(cl, "certificate-authority-data", b64);
            free(b64);
            free(pem);
        }
        if (c->proxy_url)
            cJSON_AddStringToObject(cl, "proxy-url", c->proxy_url);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int parse_exec_answer(struct kube_auth *a, const char *what, const char *text, struct err *e)
{
    const struct kube_exec *x = a->c->exec;
    cJSON *j = cJSON_Parse(text);
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(j, "apiVersion");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    int rc = 0;
    if (!cJSON_IsObject(j) || !cJSON_IsString(kind) || strcmp(kind->valuestring, "ExecCredential") != 0)
        rc = err_set(e, ERR_AUTH, "%s: its answer is not an ExecCredential (JSON with kind ExecCredential)", what);
    else if (!cJSON_IsString(api) || strcmp(api->valuestring, x->api_version) != 0)
        rc = err_set(e, ERR_AUTH, "%s: it answered with apiVersion \"%s\", but the kubeconfig asks for %s", what,
                     cJSON_IsString(api) ? api->valuestring : "", x->api_version);
    else if (!cJSON_IsObject(st))
        rc = err_set(e, ERR_AUTH, "%s: its ExecCredential has no status", what);
    const char *token = NULL, *cert = NULL, *key = NULL, *exp = NULL;
    if (rc == 0) {
        const cJSON *v;
        token = cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, "token")) && *v->valuestring ? v->valuestring : NULL;
        cert = cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, "clientCertificateData")) && *v->valuestring
                   ? v->valuestring : NULL;
        key = cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, "clientKeyData")) && *v->valuestring
                  ? v->valuestring : NULL;
        exp = cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(st, "expirationTimestamp")) ? v->valuestring : NULL;
        if (!!cert != !!key)
            rc = err_set(e, ERR_AUTH, "%s: its ExecCredential has clientCertificateData without clientKeyData, or the "
                         "reverse", what);
        else if (!token && !cert)
            rc = err_set(e, ERR_AUTH, "%s: its ExecCredential holds neither a token nor a client certificate", what);
        else if (token && strpbrk(token, "\r\n"))
            rc = err_set(e, ERR_AUTH, "%s: its token holds a line break", what);
    }
    time_t expires = 0;
    if (rc == 0 && exp && time_parse(exp, &expires) < 0)
        rc = err_set(e, ERR_AUTH, "%s: expirationTimestamp \"%.40s\" is not an RFC 3339 time", what, exp);
    if (rc == 0) {
        kube_credential_free(&a->cached);
        a->cached.token = dup_or_null(token);
        a->cached.cert_pem = dup_or_null(cert);
        a->cached.key_pem = dup_or_null(key);
        a->have = 1;
        a->expires = expires;
    }
    if (j) {
        cJSON *stc = cJSON_GetObjectItemCaseSensitive(j, "status");
        for (cJSON *f = stc ? stc->child : NULL; f; f = f->next)
            if (cJSON_IsString(f))
                OPENSSL_cleanse(f->valuestring, strlen(f->valuestring));
        cJSON_Delete(j);
    }
    return rc;
}

static int run_exec(struct kube_auth *a, struct err *e)
{
    const struct kube_exec *x = a->c->exec;
    char what[600];
    snprintf(what, sizeof what, "user \"%s\": exec plugin %s", a->c->user, x->command);
    int tty = isatty(STDIN_FILENO);
    if (x->interactive == KUBE_INTERACTIVE_ALWAYS && !tty)
        return err_set(e, ERR_AUTH, "%s needs an interactive terminal (interactiveMode Always), and stdin is not one",
                       what);
    int interactive = tty && x->interactive != KUBE_INTERACTIVE_NEVER;
    char *info = exec_info(a->c, interactive);
    size_t n = 0;
    while (x->env[n])
        n++;
    const char **env = xcalloc(n + 2, sizeof *env);
    for (size_t i = 0; i < n; i++)
        env[i] = x->env[i];
    char *info_env = xasprintf("KUBERNETES_EXEC_INFO=%s", info);
    env[n] = info_env;
    struct subproc_opts o = { .argv = (const char *const *)x->argv, .env_extra = env, .inherit_stdin = interactive,
                              .timeout_ms = interactive ? 0 : EXEC_TIMEOUT_MS, .what = what };
    struct subproc_result r;
    int rc = subproc_run(&o, &r, e);
    free(info_env);
    free(info);
    free(env);
    if (rc < 0) {
        if (e->kind == ERR_NOT_FOUND && x->install_hint)
            err_prefix(e, "%s\n", x->install_hint);
        e->kind = ERR_AUTH;
        return -1;
    }
    if (r.signal || r.exit_code)
        rc = r.signal ? err_set(e, ERR_AUTH, "%s was killed by signal %d", what, r.signal)
                      : err_set(e, ERR_AUTH, "%s exited with status %d (its messages are above)", what, r.exit_code);
    else
        rc = parse_exec_answer(a, what, r.out.data, e);
    if (r.out.data)
        OPENSSL_cleanse(r.out.data, r.out.len);
    subproc_result_free(&r);
    return rc;
}

int kube_auth_get(struct kube_auth *a, int refused, struct kube_credential *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const struct kube_config *c = a->c;
    if (c->token) {
        out->token = xstrdup(c->token);
        return 0;
    }
    if (!c->token_file && !c->exec)
        return 0; /* a client certificate, or anonymous */
    pthread_mutex_lock(&a->lock);
    int rc = 0;
    if (c->token_file) {
        if (refused || !a->have || time_mono_ms() - a->read_at_ms >= TOKEN_FILE_REREAD_S * 1000)
            rc = read_token_file(a, e);
    } else if (refused || !a->have || (a->expires && time(NULL) >= a->expires - EXEC_RENEW_BEFORE_S)) {
        rc = run_exec(a, e);
    }
    if (rc == 0)
        copy_credential(&a->cached, out);
    pthread_mutex_unlock(&a->lock);
    return rc;
}
