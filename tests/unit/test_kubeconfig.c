/* Kubeconfig loading as kubectl does it (cloud/kube/kubeconfig.c) and the per-request credential
 * (cloud/kube/auth.c): merging, relative paths, data fields, in-cluster, exec plugins. */
#include "../../cloud/kube/auth.h"
#include "../../runtime/util.h"
#include "../../runtime/yamljson.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static void write_file(const char *name, const char *text, int mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static void use(const char *kubeconfig_list)
{
    char v[1024] = "";
    for (const char *p = kubeconfig_list; *p;) {
        size_t n = strcspn(p, ":");
        size_t l = strlen(v);
        if (n) /* an empty name stays empty */
            snprintf(v + l, sizeof v - l, "%s%s/%.*s", l || p > kubeconfig_list ? ":" : "", dir, (int)n, p);
        else
            snprintf(v + l, sizeof v - l, ":");
        p += n;
        if (*p)
            p++;
    }
    setenv("KUBECONFIG", v, 1);
}

static int load(const char *ctx, const char *ns, struct kube_config *c, struct err *e)
{
    memset(e, 0, sizeof *e);
    return kube_config_load(ctx, ns, c, e);
}

static int has(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

/* "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n" in base64 */
#define PEM_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBQQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="

static const char base_config[] = "apiVersion: v1\n"
                                  "kind: Config\n"
                                  "current-context: dev\n"
                                  "clusters:\n"
                                  "- name: c1\n"
                                  "  cluster:\n"
                                  "    server: https://10.1.2.3:6443\n"
                                  "    certificate-authority-data: " PEM_B64 "\n"
                                  "    tls-server-name: kubernetes.internal\n"
                                  "- name: c2\n"
                                  "  cluster:\n"
                                  "    server: https://c2.example:443\n"
                                  "    certificate-authority: certs/ca.crt\n"
                                  "    insecure-skip-tls-verify: true\n"
                                  "    proxy-url: http://proxy:3128\n"
                                  "users:\n"
                                  "- name: tok\n"
                                  "  user:\n"
                                  "    token: sekrit-token-1\n"
                                  "- name: certs\n"
                                  "  user:\n"
                                  "    client-certificate: certs/client.crt\n"
                                  "    client-key: /abs/client.key\n"
                                  "    tokenFile: tok.txt\n"
                                  "contexts:\n"
                                  "- name: dev\n"
                                  "  context: {cluster: c1, user: tok, namespace: team-a}\n"
                                  "- name: ops\n"
                                  "  context: {cluster: c2, user: certs}\n";

static void test_basic(void)
{
    struct kube_config c;
    struct err e;
    write_file("config", base_config, 0600);
    use("config");
    is_int(load(NULL, NULL, &c, &e), 0, "a kubeconfig loads (%s)", e.msg);
    is_str(c.context, "dev", "the current context is used");
    is_str(c.server, "https://10.1.2.3:6443", "its cluster's server");
    is_str(c.ca_pem, "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n",
           "certificate-authority-data is decoded from base64");
    is_str(c.tls_server_name, "kubernetes.internal", "tls-server-name");
    is_str(c.token, "sekrit-token-1", "the user's token");
    is_str(c.namespace, "team-a", "the context's namespace");
    kube_config_free(&c);

    is_int(load(NULL, "other", &c, &e), 0, "a namespace setting");
    is_str(c.namespace, "other", "wins over the context's");
    kube_config_free(&c);

    char want[512];
    is_int(load("ops", NULL, &c, &e), 0, "a context setting picks another context");
    is_str(c.server, "https://c2.example:443", "with its cluster");
    snprintf(want, sizeof want, "%s/certs/ca.crt", dir);
    is_str(c.ca_file, want, "a relative certificate-authority is relative to the kubeconfig's folder");
    snprintf(want, sizeof want, "%s/certs/client.crt", dir);
    is_str(c.cert_file, want, "so is a relative client-certificate");
    is_str(c.key_file, "/abs/client.key", "an absolute client-key stays as it is");
    snprintf(want, sizeof want, "%s/tok.txt", dir);
    is_str(c.token_file, want, "and tokenFile is resolved too");
    ok(c.insecure, "insecure-skip-tls-verify: true");
    is_str(c.proxy_url, "http://proxy:3128", "proxy-url");
    is_str(c.namespace, "default", "no namespace anywhere: default");
    kube_config_free(&c);

    is_int(load("nope", NULL, &c, &e), -1, "an unknown context is refused");
    ok(has(e.msg, "no context named \"nope\"") && e.kind == ERR_NOT_FOUND, "saying which (%s)", e.msg);
}

static void test_merge(void)
{
    struct kube_config c;
    struct err e;
    write_file("a.yaml", "clusters:\n- name: shared\n  cluster: {server: 'https://from-a:1'}\n"
                         "contexts:\n- name: x\n  context: {cluster: shared, user: u}\n", 0600);
    write_file("b.yaml", "current-context: x\n"
                         "clusters:\n- name: shared\n  cluster: {server: 'https://from-b:2'}\n"
                         "users:\n- name: u\n  user: {token: from-b}\n"
                         "contexts:\n- name: x\n  context: {cluster: other, user: u}\n", 0600);
    use("a.yaml:missing.yaml::b.yaml");
    is_int(load(NULL, NULL, &c, &e), 0, "KUBECONFIG with several files, one missing and one empty name (%s)", e.msg);
    is_str(c.context, "x", "current-context from the file that sets it");
    is_str(c.server, "https://from-a:1", "the first file that defines a name wins (cluster)");
    is_str(c.token, "from-b", "a user only the later file defines is found");
    kube_config_free(&c);

    write_file("json.conf", "{\"current-context\": \"j\", \"clusters\": [{\"name\": \"c\", \"cluster\": "
                            "{\"server\": \"https://json:443\"}}], \"contexts\": [{\"name\": \"j\", \"context\": "
                            "{\"cluster\": \"c\"}}]}\n", 0600);
    use("json.conf");
    is_int(load(NULL, NULL, &c, &e), 0, "a kubeconfig written as JSON (%s)", e.msg);
    is_str(c.server, "https://json:443", "is read too");
    ok(!c.token && !c.token_file && !c.exec, "a context without a user is anonymous");
    kube_config_free(&c);
}

static void expect_error(const char *yaml, const char *part, const char *what)
{
    struct kube_config c;
    struct err e;
    write_file("bad.yaml", yaml, 0600);
    use("bad.yaml");
    int rc = load(NULL, NULL, &c, &e);
    ok(rc == -1 && has(e.msg, part), "%s: %s", what, e.msg);
    if (rc == 0)
        kube_config_free(&c);
}

#define CTX "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
#define CLUSTER "clusters:\n- name: c\n  cluster: {server: 'https://k:6443'}\n"

static void test_errors(void)
{
    expect_error(CTX CLUSTER "users:\n- name: u\n  user:\n    token: a\n    token: b\n", "duplicate key \"token\"",
                 "a duplicate key is refused");
    expect_error(CTX CLUSTER "users:\n- name: u\n  user: {client-certificate-data: '!!notbase64!!', client-key-data: "
                 "" PEM_B64 "}\n", "client-certificate-data is not base64", "bad base64 is refused");
    expect_error(CTX CLUSTER "users:\n- name: u\n  user: {client-certificate: a.crt}\n", "without its key",
                 "a certificate without its key is refused");
    expect_error(CTX CLUSTER "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
                 "users[u].user.auth-provider", "the legacy auth-provider is refused, named");
    expect_error(CTX CLUSTER "users:\n- name: u\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, "
                 "command: x}\n", "interactiveMode must be set", "a v1 exec plugin needs interactiveMode");
    expect_error(CTX CLUSTER "users:\n- name: u\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, "
                 "command: x}\n", "v1alpha1\" is not supported", "v1alpha1 is refused");
    expect_error(CTX "users:\n- name: u\n  user: {}\n", "names cluster \"c\", which no file defines",
                 "a context naming a missing cluster");
    expect_error(CTX "clusters:\n- name: c\n  cluster: {server: 'k:6443'}\n", "must start with https://",
                 "a server without a scheme");
    expect_error(CTX CLUSTER "users: {u: 1}\n", "users must be a list", "users that are not a list");
    expect_error("clusters: [\n", "line", "malformed YAML says where");
    expect_error("- just\n- a list\n", "not a kubeconfig", "a YAML list is not a kubeconfig");
}

static void test_in_cluster(void)
{
    struct kube_config c;
    struct err e;
    char sa[300], home[300];
    snprintf(sa, sizeof sa, "%s/sa", dir);
    snprintf(home, sizeof home, "%s/home", dir);
    mkdir(sa, 0700);
    mkdir(home, 0700);
    write_file("sa/token", "sa-token-1\n", 0600);
    write_file("sa/ca.crt", "CA\n", 0600);
    write_file("sa/namespace", "pipelines\n", 0600);
    unsetenv("KUBECONFIG");
    setenv("HOME", home, 1);
    unsetenv("KUBERNETES_SERVICE_HOST");
    is_int(load(NULL, NULL, &c, &e), -1, "no kubeconfig and not in a pod");
    ok(e.kind == ERR_NOT_FOUND && has(e.msg, "KUBERNETES_SERVICE_HOST"), "says where it looked (%s)", e.msg);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("STEPOP_KUBE_SERVICEACCOUNT_DIR", sa, 1);
    is_int(load(NULL, NULL, &c, &e), 0, "in a pod: the service account (%s)", e.msg);
    ok(c.in_cluster, "marked in-cluster");
    is_str(c.server, "https://10.96.0.1:443", "the API from KUBERNETES_SERVICE_HOST and _PORT");
    is_str(c.namespace, "pipelines", "the pod's namespace");
    char want[400];
    snprintf(want, sizeof want, "%s/ca.crt", sa);
    is_str(c.ca_file, want, "its CA");
    struct kube_auth *a = kube_auth_new(&c);
    struct kube_credential cr;
    is_int(kube_auth_get(a, 0, &cr, &e), 0, "a credential");
    is_str(cr.token, "sa-token-1", "the token file, trimmed");
    kube_credential_free(&cr);
    write_file("sa/token", "sa-token-2\n", 0600);
    kube_auth_get(a, 0, &cr, &e);
    is_str(cr.token, "sa-token-1", "kept for a minute");
    kube_credential_free(&cr);
    kube_auth_get(a, 1, &cr, &e);
    is_str(cr.token, "sa-token-2", "read again at once after a 401 (a rotated token)");
    kube_credential_free(&cr);
    kube_auth_free(a);
    kube_config_free(&c);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    is_int(load(NULL, "mine", &c, &e), 0, "an IPv6 service host");
    is_str(c.server, "https://[fd00::1]:443", "is bracketed");
    is_str(c.namespace, "mine", "a namespace setting wins in a pod too");
    kube_config_free(&c);
    unsetenv("KUBERNETES_SERVICE_HOST");
}

/* An exec plugin that counts its runs, echoes what it got into files, and answers. */
static void write_plugin(const char *api, const char *expiry_shift)
{
    char script[2048];
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "echo run >> \"%s/runs\"\n"
             "printf '%%s\\n' \"$@\" > \"%s/args\"\n"
             "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > \"%s/info\"\n"
             "printf '%%s' \"$PLUGIN_VAR\" > \"%s/var\"\n"
             "exp=$(date -u -d '%s' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
             "printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
             "\"status\":{\"token\":\"tok-%%s\",\"expirationTimestamp\":\"%%s\"}}' \"$(wc -l < \"%s/runs\")\" \"$exp\"\n",
             dir, dir, dir, dir, expiry_shift, api, dir);
    write_file("bin/plugin", script, 0700);
    char runs[300];
    snprintf(runs, sizeof runs, "%s/runs", dir);
    unlink(runs);
}

static int runs(void)
{
    char path[300], *t;
    size_t len;
    snprintf(path, sizeof path, "%s/runs", dir);
    if (read_small_file(path, 4096, &t, &len) < 0)
        return 0;
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += t[i] == '\n';
    free(t);
    return n;
}

static char *slurp(const char *name)
{
    char path[300], *t;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_small_file(path, 1 << 16, &t, &len) < 0 ? xstrdup("") : t;
}

static void test_exec(void)
{
    struct kube_config c;
    struct kube_credential cr;
    struct err e;
    char bin[300];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    mkdir(bin, 0700);
    write_file("exec.yaml", CTX CLUSTER
               "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: ./bin/plugin\n      args: [eks, get-token, --cluster-name, 'my cluster']\n"
               "      env: [{name: PLUGIN_VAR, value: from-kubeconfig}]\n      interactiveMode: IfAvailable\n"
               "      provideClusterInfo: true\n", 0600);
    use("exec.yaml");
    write_plugin("client.authentication.k8s.io/v1", "+1 hour");
    is_int(load(NULL, NULL, &c, &e), 0, "an exec user loads (%s)", e.msg);
    char want[400];
    snprintf(want, sizeof want, "%s/./bin/plugin", dir);
    is_str(c.exec->command, want, "a relative command with a slash is relative to the kubeconfig");
    struct kube_auth *a = kube_auth_new(&c);
    is_int(kube_auth_get(a, 0, &cr, &e), 0, "the plugin gives a credential (%s)", e.msg);
    is_str(cr.token, "tok-1", "its token");
    kube_credential_free(&cr);
    char *args = slurp("args"), *info = slurp("info"), *var = slurp("var");
    is_str(args, "eks\nget-token\n--cluster-name\nmy cluster\n", "with its args");
    is_str(var, "from-kubeconfig", "and its env");
    ok(has(info, "\"apiVersion\":\"client.authentication.k8s.io/v1\"") && has(info, "\"interactive\":false") &&
           has(info, "\"server\":\"https://k:6443\""),
       "KUBERNETES_EXEC_INFO: its apiVersion, not interactive (stdin is no terminal), the cluster (%s)", info);
    free(args);
    free(info);
    free(var);
    kube_auth_get(a, 0, &cr, &e);
    is_str(cr.token, "tok-1", "a credential that expires in an hour is reused");
    kube_credential_free(&cr);
    is_int(runs(), 1, "the plugin ran once");
    kube_auth_get(a, 1, &cr, &e);
    is_str(cr.token, "tok-2", "after a 401 the plugin runs again");
    kube_credential_free(&cr);
    kube_auth_free(a);

    write_plugin("client.authentication.k8s.io/v1", "+10 seconds");
    a = kube_auth_new(&c);
    kube_auth_get(a, 0, &cr, &e);
    kube_credential_free(&cr);
    kube_auth_get(a, 0, &cr, &e);
    kube_credential_free(&cr);
    is_int(runs(), 2, "a credential about to expire is renewed before it is used");
    kube_auth_free(a);

    write_plugin("client.authentication.k8s.io/v1beta1", "+1 hour");
    a = kube_auth_new(&c);
    is_int(kube_auth_get(a, 0, &cr, &e), -1, "an answer in another apiVersion is refused");
    ok(has(e.msg, "apiVersion \"client.authentication.k8s.io/v1beta1\"") && !has(e.msg, "tok-"),
       "saying so, without the token (%s)", e.msg);
    kube_auth_free(a);

    write_file("bin/plugin", "#!/bin/sh\necho 'no credentials for you' >&2\nexit 3\n", 0700);
    a = kube_auth_new(&c);
    is_int(kube_auth_get(a, 0, &cr, &e), -1, "a plugin that fails");
    ok(e.kind == ERR_AUTH && has(e.msg, "exited with status 3"), "is an auth error with its status (%s)", e.msg);
    kube_auth_free(a);
    kube_config_free(&c);

    write_file("exec2.yaml", CTX CLUSTER
               "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
               "      command: stepop-no-such-plugin\n      installHint: 'install it with: apt-get install the-plugin'\n",
               0600);
    use("exec2.yaml");
    is_int(load(NULL, NULL, &c, &e), 0, "v1beta1 without interactiveMode (IfAvailable)");
    a = kube_auth_new(&c);
    is_int(kube_auth_get(a, 0, &cr, &e), -1, "a plugin not on PATH");
    ok(has(e.msg, "install it with: apt-get install the-plugin") && has(e.msg, "not found"),
       "shows the installHint (%s)", e.msg);
    kube_auth_free(a);
    kube_config_free(&c);

    write_file("exec3.yaml", CTX CLUSTER
               "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: /bin/true\n      interactiveMode: Always\n", 0600);
    use("exec3.yaml");
    load(NULL, NULL, &c, &e);
    a = kube_auth_new(&c);
    is_int(kube_auth_get(a, 0, &cr, &e), -1, "interactiveMode Always without a terminal");
    ok(has(e.msg, "needs an interactive terminal"), "says it needs one (%s)", e.msg);
    kube_auth_free(a);
    kube_config_free(&c);
}

static void test_yaml(void)
{
    cJSON *j;
    struct err e = { 0 };
    const char *y = "a: &x {k: v}\nb: *x\nc: [1, yes, true, ~, '', \"true\"]\n";
    is_int(yamljson_parse(y, strlen(y), &j, &e), 0, "YAML with an alias");
    char *s = cJSON_PrintUnformatted(j);
    is_str(s, "{\"a\":{\"k\":\"v\"},\"b\":{\"k\":\"v\"},\"c\":[\"1\",\"yes\",true,null,\"\",\"true\"]}",
           "aliases expand; plain true and ~ are typed; numbers, yes and quoted scalars stay strings");
    free(s);
    cJSON_Delete(j);
    /* Nine levels of aliases, each doubling: 2^9 * 10 nodes would pass the bound. */
    const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    is_int(yamljson_parse(bomb, strlen(bomb), &j, &e), -1, "an alias bomb is refused");
    ok(has(e.msg, "more than 100000 nodes"), "by the node bound (%s)", e.msg);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/stepop-kubeconfig.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    /* The exec tests need a stdin that is no terminal, whoever runs them. */
    if (!freopen("/dev/null", "r", stdin))
        return 1;
    test_basic();
    test_merge();
    test_errors();
    test_in_cluster();
    test_exec();
    test_yaml();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
