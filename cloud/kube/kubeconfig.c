#include "kubeconfig.h"

#include "../../runtime/util.h"
#include "../../runtime/yamljson.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KUBECONFIG_MAX (4u << 20)

/* One named entry (cluster, user or context) of the merged configuration, with the folder of the
 * file it came from: relative paths in it are relative to that folder. */
struct entry {
    const cJSON *body;
    const char *dir;
    const char *file;
};

struct merged {
    cJSON *docs[32];
    char *dirs[32], *files[32];
    int n_docs;
    const char *current_context;
    const char *current_file;
};

static void merged_free(struct merged *m)
{
    for (int i = 0; i < m->n_docs; i++) {
        cJSON_Delete(m->docs[i]);
        free(m->dirs[i]);
        free(m->files[i]);
    }
}

void kube_config_free(struct kube_config *c)
{
    free(c->source);
    free(c->context);
    free(c->namespace);
    free(c->server);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->tls_server_name);
    free(c->proxy_url);
    free(c->cert_file);
    free(c->cert_pem);
    free(c->key_file);
    free(c->key_pem);
    free(c->token);
    free(c->token_file);
    free(c->user);
    if (c->exec) {
        free(c->exec->api_version);
        free(c->exec->command);
        free(c->exec->install_hint);
        for (char **p = c->exec->argv; p && *p; p++)
            free(*p);
        free(c->exec->argv);
        for (char **p = c->exec->env; p && *p; p++)
            free(*p);
        free(c->exec->env);
        free(c->exec);
    }
    memset(c, 0, sizeof *c);
}

const char *kube_serviceaccount_dir(void)
{
    return env_or("STEPOP_KUBE_SERVICEACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount");
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

static int load_file(struct merged *m, const char *path, struct err *e)
{
    char *text;
    size_t len;
    struct stat st;
    if (stat(path, &st) < 0)
        return 0; /* kubectl skips the files of KUBECONFIG that do not exist */
    if (m->n_docs == (int)(sizeof m->docs / sizeof m->docs[0]))
        return err_set(e, ERR_INVALID, "KUBECONFIG: more than %zu files", sizeof m->docs / sizeof m->docs[0]);
    if (read_small_file(path, KUBECONFIG_MAX, &text, &len) < 0)
        return err_set(e, ERR_IO, "%s: cannot read it (or it is larger than 4 MiB)", path);
    cJSON *doc;
    int rc = yamljson_parse(text, len, &doc, e);
    free(text);
    if (rc < 0)
        return err_prefix(e, "%s: ", path);
    if (cJSON_IsNull(doc)) {
        cJSON_Delete(doc);
        return 0; /* an empty file adds nothing */
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return err_set(e, ERR_INVALID, "%s: not a kubeconfig (a mapping with clusters, users and contexts)", path);
    }
    int i = m->n_docs++;
    m->docs[i] = doc;
    m->dirs[i] = dir_of(path);
    m->files[i] = xstrdup(path);
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(doc, "current-context");
    if (!m->current_context && cJSON_IsString(cur) && *cur->valuestring) {
        m->current_context = cur->valuestring;
        m->current_file = m->files[i];
    }
    return 0;
}

/* The first file that defines name in list ("clusters", "users", "contexts") wins, as kubectl
 * merges. inner is the entry's body key ("cluster", "user", "context"). */
static int find_entry(const struct merged *m, const char *list, const char *inner, const char *name, struct entry *out,
                      struct err *e)
{
    for (int i = 0; i < m->n_docs; i++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(m->docs[i], list);
        if (!arr || cJSON_IsNull(arr))
            continue;
        if (!cJSON_IsArray(arr))
            return err_set(e, ERR_INVALID, "%s: %s must be a list", m->files[i], list);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr)
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
            if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0)
                continue;
            const cJSON *body = cJSON_GetObjectItemCaseSensitive(it, inner);
            if (body && !cJSON_IsObject(body) && !cJSON_IsNull(body))
                return err_set(e, ERR_INVALID, "%s: %s[%s].%s must be a mapping", m->files[i], list, name, inner);
            *out = (struct entry){ body, m->dirs[i], m->files[i] };
            return 1;
        }
    }
    return 0;
}

/* A string field of an entry; absent or null gives NULL. */
static int field_str(const struct entry *en, const char *what, const char *key, const char **out, struct err *e)
{
    *out = NULL;
    const cJSON *v = en->body ? cJSON_GetObjectItemCaseSensitive(en->body, key) : NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return err_set(e, ERR_INVALID, "%s: %s.%s must be a string", en->file, what, key);
    *out = *v->valuestring ? v->valuestring : NULL;
    return 0;
}

static int field_bool(const struct entry *en, const char *what, const char *key, int *out, struct err *e)
{
    *out = 0;
    const cJSON *v = en->body ? cJSON_GetObjectItemCaseSensitive(en->body, key) : NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return err_set(e, ERR_INVALID, "%s: %s.%s must be true or false", en->file, what, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A path from a file, absolute: relative ones are relative to that file's folder. */
static char *resolve(const struct entry *en, const char *path)
{
    if (!path)
        return NULL;
    if (path[0] == '/')
        return xstrdup(path);
    return xasprintf("%s/%s", en->dir, path);
}

/* The *-data fields are base64 of PEM. */
static int field_data(const struct entry *en, const char *what, const char *key, char **out, struct err *e)
{
    const char *b64;
    *out = NULL;
    if (field_str(en, what, key, &b64, e) < 0)
        return -1;
    if (!b64)
        return 0;
    size_t n = strlen(b64);
    unsigned char *raw = xmalloc(n / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int len = 0, fin = 0;
    EVP_DecodeInit(ctx);
    int bad = EVP_DecodeUpdate(ctx, raw, &len, (const unsigned char *)b64, (int)n) < 0 ||
              EVP_DecodeFinal(ctx, raw + len, &fin) < 0;
    EVP_ENCODE_CTX_free(ctx);
    if (bad || len + fin == 0) {
        free(raw);
        return err_set(e, ERR_INVALID, "%s: %s.%s is not base64", en->file, what, key);
    }
    raw[len + fin] = '\0';
    if (memchr(raw, '\0', (size_t)(len + fin))) {
        free(raw);
        return err_set(e, ERR_INVALID, "%s: %s.%s is not PEM text", en->file, what, key);
    }
    *out = (char *)raw;
    return 0;
}

static int load_cluster(struct kube_config *c, const struct entry *en, const char *name, struct err *e)
{
    char what[300];
    snprintf(what, sizeof what, "clusters[%s].cluster", name);
    const char *server, *ca, *sni, *proxy;
    if (field_str(en, what, "server", &server, e) < 0 || field_str(en, what, "certificate-authority", &ca, e) < 0 ||
        field_str(en, what, "tls-server-name", &sni, e) < 0 || field_str(en, what, "proxy-url", &proxy, e) < 0 ||
        field_bool(en, what, "insecure-skip-tls-verify", &c->insecure, e) < 0 ||
        field_data(en, what, "certificate-authority-data", &c->ca_pem, e) < 0)
        return -1;
    if (!server)
        return err_set(e, ERR_INVALID, "%s: %s has no server", en->file, what);
    if (!str_has_prefix(server, "https://") && !str_has_prefix(server, "http://"))
        return err_set(e, ERR_INVALID, "%s: %s.server \"%s\" must start with https:// (or http://)", en->file, what,
                       server);
    c->server = xstrdup(server);
    c->ca_file = c->ca_pem ? NULL : resolve(en, ca);
    c->tls_server_name = sni ? xstrdup(sni) : NULL;
    c->proxy_url = proxy ? xstrdup(proxy) : NULL;
    return 0;
}

static char **string_list(const struct entry *en, const char *what, const cJSON *arr, const char *first, struct err *e)
{
    size_t n = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
    if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr)) {
        err_set(e, ERR_INVALID, "%s: %s.args must be a list of strings", en->file, what);
        return NULL;
    }
    char **out = xcalloc(n + 2, sizeof *out);
    size_t k = 0;
    if (first)
        out[k++] = xstrdup(first);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            for (size_t i = 0; i < k; i++)
                free(out[i]);
            free(out);
            err_set(e, ERR_INVALID, "%s: %s.args must be a list of strings", en->file, what);
            return NULL;
        }
        out[k++] = xstrdup(it->valuestring);
    }
    return out;
}

static int load_exec(struct kube_config *c, const struct entry *user, const char *name, struct err *e)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(user->body, "exec");
    if (!x || cJSON_IsNull(x))
        return 0;
    char what[300];
    snprintf(what, sizeof what, "users[%s].user.exec", name);
    if (!cJSON_IsObject(x))
        return err_set(e, ERR_INVALID, "%s: %s must be a mapping", user->file, what);
    struct entry en = { x, user->dir, user->file };
    const char *api, *cmd, *hint, *mode;
    struct kube_exec *k = c->exec = xcalloc(1, sizeof *k);
    if (field_str(&en, what, "apiVersion", &api, e) < 0 || field_str(&en, what, "command", &cmd, e) < 0 ||
        field_str(&en, what, "installHint", &hint, e) < 0 || field_str(&en, what, "interactiveMode", &mode, e) < 0 ||
        field_bool(&en, what, "provideClusterInfo", &k->provide_cluster_info, e) < 0)
        return -1;
    if (!cmd)
        return err_set(e, ERR_INVALID, "%s: %s has no command", user->file, what);
    if (!api)
        return err_set(e, ERR_INVALID, "%s: %s has no apiVersion", user->file, what);
    int v1 = strcmp(api, "client.authentication.k8s.io/v1") == 0;
    if (!v1 && strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)
        return err_set(e, ERR_UNSUPPORTED,
                       "%s: %s.apiVersion \"%s\" is not supported (client.authentication.k8s.io/v1 or v1beta1)",
                       user->file, what, api);
    k->api_version = xstrdup(api);
    if (!mode && v1)
        return err_set(e, ERR_INVALID, "%s: %s.interactiveMode must be set for %s (Never, IfAvailable or Always)",
                       user->file, what, api);
    if (!mode || strcmp(mode, "IfAvailable") == 0)
        k->interactive = KUBE_INTERACTIVE_IF_AVAILABLE;
    else if (strcmp(mode, "Never") == 0)
        k->interactive = KUBE_INTERACTIVE_NEVER;
    else if (strcmp(mode, "Always") == 0)
        k->interactive = KUBE_INTERACTIVE_ALWAYS;
    else
        return err_set(e, ERR_INVALID, "%s: %s.interactiveMode \"%s\": expected Never, IfAvailable or Always", user->file,
                       what, mode);
    /* As kubectl: a relative command with a '/' is relative to its file; a bare name is on PATH. */
    k->command = cmd[0] != '/' && strchr(cmd, '/') ? resolve(&en, cmd) : xstrdup(cmd);
    k->install_hint = hint ? xstrdup(hint) : NULL;
    if (!(k->argv = string_list(&en, what, cJSON_GetObjectItemCaseSensitive(x, "args"), k->command, e)))
        return -1;
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(x, "env");
    size_t n = cJSON_IsArray(env) ? (size_t)cJSON_GetArraySize(env) : 0;
    if (env && !cJSON_IsNull(env) && !cJSON_IsArray(env))
        return err_set(e, ERR_INVALID, "%s: %s.env must be a list of name and value", user->file, what);
    k->env = xcalloc(n + 1, sizeof *k->env);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, env)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(it, "value");
        if (!cJSON_IsString(nm) || !*nm->valuestring || strchr(nm->valuestring, '=') || !cJSON_IsString(val))
            return err_set(e, ERR_INVALID, "%s: %s.env[%zu] needs a name (without '=') and a string value", user->file,
                           what, i);
        k->env[i++] = xasprintf("%s=%s", nm->valuestring, val->valuestring);
    }
    return 0;
}

static int load_user(struct kube_config *c, const struct entry *en, const char *name, struct err *e)
{
    char what[300];
    snprintf(what, sizeof what, "users[%s].user", name);
    static const char *const refused[][2] = {
        { "auth-provider", "the legacy auth providers are gone from kubectl: use its exec plugin "
                           "(gke-gcloud-auth-plugin, kubelogin)" },
        { "username", "basic authentication was removed in Kubernetes 1.19" },
        { "password", "basic authentication was removed in Kubernetes 1.19" },
        { "as", "impersonation is not supported" },
        { "as-groups", "impersonation is not supported" },
        { "as-uid", "impersonation is not supported" },
        { "as-user-extra", "impersonation is not supported" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const cJSON *v = en->body ? cJSON_GetObjectItemCaseSensitive(en->body, refused[i][0]) : NULL;
        if (v && !cJSON_IsNull(v))
            return err_set(e, ERR_UNSUPPORTED, "%s: %s.%s: %s", en->file, what, refused[i][0], refused[i][1]);
    }
    const char *cert, *key, *token, *token_file;
    if (field_str(en, what, "client-certificate", &cert, e) < 0 || field_str(en, what, "client-key", &key, e) < 0 ||
        field_str(en, what, "token", &token, e) < 0 || field_str(en, what, "tokenFile", &token_file, e) < 0 ||
        field_data(en, what, "client-certificate-data", &c->cert_pem, e) < 0 ||
        field_data(en, what, "client-key-data", &c->key_pem, e) < 0)
        return -1;
    c->cert_file = c->cert_pem ? NULL : resolve(en, cert);
    c->key_file = c->key_pem ? NULL : resolve(en, key);
    if (!!(c->cert_file || c->cert_pem) != !!(c->key_file || c->key_pem))
        return err_set(e, ERR_INVALID, "%s: %s has a client certificate without its key, or a key without its certificate",
                       en->file, what);
    c->token = token ? xstrdup(token) : NULL;
    c->token_file = token ? NULL : resolve(en, token_file);
    return load_exec(c, en, name, e);
}

static int load_in_cluster(const char *namespace, struct kube_config *c, struct err *e)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = kube_serviceaccount_dir();
    c->in_cluster = 1;
    c->source = xstrdup("in-cluster (KUBERNETES_SERVICE_HOST and the service account)");
    c->context = xstrdup("");
    c->server = xasprintf(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    c->ca_file = xasprintf("%s/ca.crt", dir);
    c->token_file = xasprintf("%s/token", dir);
    c->user = xstrdup("the pod's service account");
    if (access(c->token_file, R_OK) < 0)
        return err_set(e, ERR_AUTH, "in-cluster: cannot read the service account token %s", c->token_file);
    if (namespace) {
        c->namespace = xstrdup(namespace);
        return 0;
    }
    char *path = xasprintf("%s/namespace", dir), *ns;
    size_t len;
    if (read_small_file(path, 1024, &ns, &len) == 0) {
        while (len && (ns[len - 1] == '\n' || ns[len - 1] == ' '))
            ns[--len] = '\0';
        c->namespace = len ? ns : (free(ns), xstrdup("default"));
    } else {
        c->namespace = xstrdup("default");
    }
    free(path);
    return 0;
}

/* KUBECONFIG's files, or ~/.kube/config; how they were found is kept for messages. */
static int load_files(struct merged *m, char **source, struct err *e)
{
    const char *list = getenv("KUBECONFIG");
    if (list && *list) {
        *source = xasprintf("KUBECONFIG=%s", list);
        char *copy = xstrdup(list), *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
            if (load_file(m, p, e) < 0) {
                free(copy);
                return -1;
            }
        }
        free(copy);
        return 0;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return 0;
    char *path = xasprintf("%s/.kube/config", home);
    *source = xstrdup(path);
    int rc = load_file(m, path, e);
    free(path);
    return rc;
}

int kube_config_load(const char *context, const char *namespace, struct kube_config *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct merged m = { 0 };
    char *source = NULL;
    int rc = load_files(&m, &source, e);
    if (rc == 0 && m.n_docs == 0 && !context) {
        free(source);
        merged_free(&m);
        if (getenv("KUBERNETES_SERVICE_HOST") && getenv("KUBERNETES_SERVICE_PORT"))
            return load_in_cluster(namespace, out, e) < 0 ? (kube_config_free(out), -1) : 0;
        return err_set(e, ERR_NOT_FOUND,
                       "no Kubernetes configuration: no KUBECONFIG file exists, nor ~/.kube/config, and this is not "
                       "a pod (KUBERNETES_SERVICE_HOST is not set)");
    }
    out->source = source ? source : xstrdup("no kubeconfig file (HOME is not set)");
    source = out->source;
    const char *ctx_name = context ? context : m.current_context;
    struct entry ctx, cluster = { 0 }, user = { 0 };
    if (rc == 0 && !ctx_name)
        rc = err_set(e, ERR_INVALID, "%s: no current-context; set the operator's context setting", source);
    int found = rc == 0 ? find_entry(&m, "contexts", "context", ctx_name, &ctx, e) : -1;
    if (found == 0)
        rc = err_set(e, ERR_NOT_FOUND, "%s: no context named \"%s\"", source, ctx_name);
    else if (found < 0)
        rc = -1;
    const char *cluster_name = NULL, *user_name = NULL, *ctx_ns = NULL;
    if (rc == 0) {
        char what[300];
        snprintf(what, sizeof what, "contexts[%s].context", ctx_name);
        if (field_str(&ctx, what, "cluster", &cluster_name, e) < 0 || field_str(&ctx, what, "user", &user_name, e) < 0 ||
            field_str(&ctx, what, "namespace", &ctx_ns, e) < 0)
            rc = -1;
        else if (!cluster_name)
            rc = err_set(e, ERR_INVALID, "%s: %s has no cluster", ctx.file, what);
    }
    if (rc == 0 && (found = find_entry(&m, "clusters", "cluster", cluster_name, &cluster, e)) <= 0)
        rc = found < 0 ? -1
                       : err_set(e, ERR_NOT_FOUND, "%s: context \"%s\" names cluster \"%s\", which no file defines",
                                 source, ctx_name, cluster_name);
    if (rc == 0)
        rc = load_cluster(out, &cluster, cluster_name, e);
    if (rc == 0 && user_name) {
        if ((found = find_entry(&m, "users", "user", user_name, &user, e)) <= 0)
            rc = found < 0 ? -1
                           : err_set(e, ERR_NOT_FOUND, "%s: context \"%s\" names user \"%s\", which no file defines",
                                     source, ctx_name, user_name);
        else
            rc = load_user(out, &user, user_name, e);
    }
    if (rc == 0) {
        out->context = xstrdup(ctx_name);
        out->user = xstrdup(user_name ? user_name : "");
        out->namespace = xstrdup(namespace ? namespace : ctx_ns ? ctx_ns : "default");
    }
    merged_free(&m);
    if (rc < 0)
        kube_config_free(out);
    return rc;
}
