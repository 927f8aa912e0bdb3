/* The spark flavor's settings and what it refuses before anything runs. */
#include "spark.h"

#include "../../runtime/url.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const known_settings[] = {
    "master", "deploy_mode", "spark_submit", "main_class", "context", "namespace", "service_account",
    "executor_memory", "executor_cores", "executor_instances", "executor_gpus", "gpu_discovery_script",
    "stepop_path", "spark_entrypoint", "image_pull_policy", "host_network", "keep", "conf", "secret_env", NULL
};

static int setting_int(const cJSON *s, const char *key, int max, int *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > max)
        return err_set(e, ERR_INVALID, "settings.%s: expected a whole number from 1 to %d", key, max);
    *out = v->valueint;
    return 0;
}

/* Spark's size format for memory settings: a number and a unit of k, m, g or t (spark.executor.memory). */
static int spark_size_ok(const char *v)
{
    size_t n = strspn(v, "0123456789");
    if (n == 0 || n > 9)
        return 0;
    if (!v[n])
        return 1;
    return strchr("kKmMgGtT", v[n]) && (!v[n + 1] || ((v[n + 1] == 'b' || v[n + 1] == 'B') && !v[n + 2]));
}

/* A master spark-submit takes: k8s://http(s)://..., spark://..., yarn, local, local[N], local[*],
 * local[N,F], local[*,F]. */
static int spark_master_kind(const char *m, enum spark_master *kind)
{
    if (str_has_prefix(m, "k8s://https://") || str_has_prefix(m, "k8s://http://")) {
        *kind = SPARK_K8S;
        return m[strlen(m) - 1] != '/' || strlen(m) > 14;
    }
    if (str_has_prefix(m, "spark://")) {
        *kind = SPARK_STANDALONE;
        return m[8] != '\0';
    }
    if (strcmp(m, "yarn") == 0) {
        *kind = SPARK_YARN;
        return 1;
    }
    *kind = SPARK_LOCAL;
    if (strcmp(m, "local") == 0)
        return 1;
    if (!str_has_prefix(m, "local[") || m[strlen(m) - 1] != ']')
        return 0;
    const char *p = m + 6;
    size_t n = *p == '*' ? 1 : strspn(p, "0123456789");
    if (n == 0)
        return 0;
    p += n;
    if (*p == ',') {
        size_t f = strspn(p + 1, "0123456789");
        if (f == 0)
            return 0;
        p += 1 + f;
    }
    return strcmp(p, "]") == 0;
}

/* Properties the flavor sets itself, and from what; NULL for the others. */
static const char *conf_set_by_flavor(const char *key)
{
    static const char *const own[][2] = {
        { "spark.master", "settings.master" },
        { "spark.submit.deployMode", "settings.deploy_mode" },
        { "spark.app.name", "the run id" },
        { "spark.kubernetes.submission.waitAppCompletion", "the follow loop, which needs false" },
        { "spark.kubernetes.container.image", "the manifest's image" },
        { "spark.kubernetes.driver.container.image", "the manifest's image" },
        { "spark.kubernetes.namespace", "settings.namespace" },
        { "spark.kubernetes.context", "settings.context" },
        { "spark.kubernetes.driver.pod.name", "the run id" },
        { "spark.kubernetes.driver.podTemplateFile", "the flavor's driver pod template" },
        { "spark.kubernetes.driver.podTemplateContainerName", "the flavor's driver pod template" },
        { "spark.kubernetes.driverEnv.STEPOP_MANIFEST", "the run" },
        { "spark.kubernetes.driverEnv.STEPOP_ATTEMPT", "the run" },
        { "spark.driver.cores", "resources.cpu" },
        { "spark.driver.memory", "resources.memory" },
        { "spark.driver.resource.gpu.amount", "resources.gpus" },
        { "spark.executor.instances", "settings.executor_instances" },
        { "spark.executor.memory", "settings.executor_memory" },
        { "spark.executor.cores", "settings.executor_cores" },
        { "spark.executor.resource.gpu.amount", "settings.executor_gpus" },
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcmp(key, own[i][0]) == 0)
            return own[i][1];
    if (str_has_prefix(key, "spark.kubernetes.driver.label." "stepop.io/") ||
        str_has_prefix(key, "spark.kubernetes.executor.label." "stepop.io/"))
        return "the run id";
    return NULL;
}

int spark_parse_settings(const cJSON *s, struct spark_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    if (flavor_check_settings(s, "spark", known_settings, e) < 0)
        return -1;
    const char *mode;
    if (flavor_setting_str(s, "master", NULL, &c->master, e) < 0 ||
        flavor_setting_str(s, "deploy_mode", NULL, &mode, e) < 0 ||
        flavor_setting_str(s, "spark_submit", NULL, &c->spark_submit, e) < 0 ||
        flavor_setting_str(s, "main_class", NULL, &c->main_class, e) < 0 ||
        flavor_setting_str(s, "context", NULL, &c->context, e) < 0 ||
        flavor_setting_str(s, "namespace", NULL, &c->namespace, e) < 0 ||
        flavor_setting_str(s, "service_account", NULL, &c->service_account, e) < 0 ||
        flavor_setting_str(s, "executor_memory", NULL, &c->executor_memory, e) < 0 ||
        flavor_setting_str(s, "gpu_discovery_script", SPARK_DEFAULT_GPU_SCRIPT, &c->gpu_discovery_script, e) < 0 ||
        flavor_setting_str(s, "stepop_path", SPARK_DEFAULT_STEPOP, &c->stepop_path, e) < 0 ||
        flavor_setting_str(s, "spark_entrypoint", SPARK_DEFAULT_ENTRYPOINT, &c->spark_entrypoint, e) < 0 ||
        flavor_setting_str(s, "image_pull_policy", NULL, &c->image_pull_policy, e) < 0 ||
        flavor_setting_bool(s, "host_network", 0, &c->host_network, e) < 0 ||
        flavor_setting_bool(s, "keep", 0, &c->keep, e) < 0 ||
        setting_int(s, "executor_cores", 1024, &c->executor_cores, e) < 0 ||
        setting_int(s, "executor_instances", 100000, &c->executor_instances, e) < 0 ||
        setting_int(s, "executor_gpus", 64, &c->executor_gpus, e) < 0)
        return -1;
    if (!c->master || !*c->master)
        return err_set(e, ERR_INVALID, "settings.master: the spark flavor needs a master (k8s://https://HOST:PORT, "
                       "spark://HOST:PORT, yarn or local[*])");
    if (!spark_master_kind(c->master, &c->kind))
        return err_set(e, ERR_INVALID, "settings.master: \"%s\" is no master spark-submit takes (k8s://https://HOST:PORT, "
                       "spark://HOST:PORT, yarn, local, local[N] or local[*])", c->master);
    if (mode && strcmp(mode, "cluster") != 0 && strcmp(mode, "client") != 0)
        return err_set(e, ERR_INVALID, "settings.deploy_mode: expected \"cluster\" or \"client\", got \"%s\"", mode);
    c->cluster = mode ? strcmp(mode, "cluster") == 0 : c->kind == SPARK_K8S;
    if (c->executor_memory && !spark_size_ok(c->executor_memory))
        return err_set(e, ERR_INVALID, "settings.executor_memory: \"%s\" is not in Spark's size format (a number "
                       "and k, m, g or t: \"4g\")", c->executor_memory);
    if (c->image_pull_policy && strcmp(c->image_pull_policy, "Always") != 0 &&
        strcmp(c->image_pull_policy, "IfNotPresent") != 0 && strcmp(c->image_pull_policy, "Never") != 0)
        return err_set(e, ERR_INVALID, "settings.image_pull_policy: expected Always, IfNotPresent or Never");
    const char *const strings[] = { c->spark_submit, c->main_class, c->stepop_path, c->spark_entrypoint,
                                    c->gpu_discovery_script, c->service_account, c->namespace };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if (strings[i] && !*strings[i])
            return err_set(e, ERR_INVALID, "settings: an empty string is no value (leave the setting out)");

    c->conf = cJSON_GetObjectItemCaseSensitive(s, "conf");
    if (c->conf && cJSON_IsNull(c->conf))
        c->conf = NULL;
    if (c->conf && !cJSON_IsObject(c->conf))
        return err_set(e, ERR_INVALID, "settings.conf: expected an object of Spark properties and string values");
    for (const cJSON *it = c->conf ? c->conf->child : NULL; it; it = it->next) {
        if (!cJSON_IsString(it))
            return err_set(e, ERR_INVALID, "settings.conf.%s: expected a string (Spark properties are strings)",
                           it->string);
        if (!str_has_prefix(it->string, "spark.") || strchr(it->string, '='))
            return err_set(e, ERR_INVALID, "settings.conf.%s: not a Spark property (they start with \"spark.\"; Hadoop's "
                           "go as spark.hadoop.*)", it->string);
        if (spark_check_conf("settings.conf", it->string, it->valuestring, e) < 0)
            return -1;
        const char *own = conf_set_by_flavor(it->string);
        if (own)
            return err_set(e, ERR_INVALID, "settings.conf.%s: the spark flavor sets it (from %s)", it->string, own);
    }
    c->secret_env = cJSON_GetObjectItemCaseSensitive(s, "secret_env");
    if (c->secret_env && cJSON_IsNull(c->secret_env))
        c->secret_env = NULL;
    if (c->secret_env && !cJSON_IsObject(c->secret_env))
        return err_set(e, ERR_INVALID, "settings.secret_env: expected an object of NAME: \"SECRET:KEY\"");
    for (const cJSON *it = c->secret_env ? c->secret_env->child : NULL; it; it = it->next) {
        const char *colon = cJSON_IsString(it) ? strchr(it->valuestring, ':') : NULL;
        if (!colon || colon == it->valuestring || !colon[1] || strchr(it->valuestring, '='))
            return err_set(e, ERR_INVALID, "settings.secret_env.%s: expected \"SECRET:KEY\", a Kubernetes secret's name "
                           "and a key in it", it->string);
        if (!*it->string || strspn(it->string, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                                strlen(it->string))
            return err_set(e, ERR_INVALID, "settings.secret_env: \"%s\" is no environment variable name", it->string);
    }

    if (!c->spark_submit) {
        const char *home = getenv("SPARK_HOME");
        if (home && *home) {
            snprintf(c->spark_home_submit, sizeof c->spark_home_submit, "%s/bin/spark-submit", home);
            c->spark_submit = c->spark_home_submit;
        } else {
            c->spark_submit = "spark-submit";
        }
    }
    return 0;
}

/* Words in a property name that say its value is a credential, and the prefixes and suffixes that
 * say it only names one. */
static int key_is_credential(const char *key)
{
    static const char *const words[] = { "secret", "password", "passwd", "token", "credential", "access.key",
                                         "accesskey", "session.key", "sessionkey", "private.key", "privatekey",
                                         "apikey", "api.key", "account.key", "sas", NULL };
    static const char *const naming[] = { "spark.kubernetes.driver.secretKeyRef.", "spark.kubernetes.executor.secretKeyRef.",
                                          "spark.kubernetes.driver.secrets.", "spark.kubernetes.executor.secrets.", NULL };
    for (const char *const *n = naming; *n; n++)
        if (str_has_prefix(key, *n))
            return 0;
    /* A file holding it, a provider class, a switch, a secret's name or key
     * (spark.kubernetes.kerberos.tokenSecret.name, spark.security.credentials.hive.enabled). */
    static const char *const suffixes[] = { "file", "provider", ".enabled", ".name", ".itemkey", NULL };
    size_t len = strlen(key);
    for (const char *const *x = suffixes; *x; x++) {
        size_t n = strlen(*x);
        if (len > n && strcasecmp(key + len - n, *x) == 0)
            return 0;
    }
    char lower[512];
    size_t i;
    for (i = 0; i + 1 < sizeof lower && key[i]; i++)
        lower[i] = (char)tolower((unsigned char)key[i]);
    lower[i] = '\0';
    for (const char *const *w = words; *w; w++) {
        const char *p = strstr(lower, *w);
        /* "sas" only as a word of its own (fs.azure.sas.*), not inside another word. */
        if (p && (strcmp(*w, "sas") != 0 || ((p == lower || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[3]))))
            return 1;
    }
    return 0;
}

/* Values that are credentials whatever their name: AWS access key ids, PEM keys, URLs with a
 * password. */
static int value_is_credential(const char *v)
{
    for (const char *p = v; *p; p++) {
        if ((strncmp(p, "AKIA", 4) == 0 || strncmp(p, "ASIA", 4) == 0) && strspn(p + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") >= 16)
            return 1;
    }
    if (strstr(v, "-----BEGIN"))
        return 1;
    const char *scheme = strstr(v, "://");
    if (scheme) {
        const char *host = scheme + 3, *at = strchr(host, '@'), *slash = strchr(host, '/');
        const char *colon = strchr(host, ':');
        if (at && (!slash || at < slash) && colon && colon < at)
            return 1;
    }
    return 0;
}

int spark_check_conf(const char *what, const char *key, const char *value, struct err *e)
{
    if (key_is_credential(key))
        return err_set(e, ERR_INVALID, "%s.%s: looks like a credential, which the spark flavor never puts on "
                       "spark-submit's command line (anyone on the machine can read it there); give it through a "
                       "Kubernetes secret (settings.secret_env) or the pods' identity", what, key);
    if (value && value_is_credential(value))
        return err_set(e, ERR_INVALID, "%s.%s: the value looks like a credential (an access key id, a private key "
                       "or a URL with a password), which the spark flavor never puts on spark-submit's command line; "
                       "give it through a Kubernetes secret (settings.secret_env)", what, key);
    return 0;
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcasecmp(s + n - k, suffix) == 0;
}

/* Whether a driver volume of conf (spark.kubernetes.driver.volumes.TYPE.NAME.mount.path) is
 * mounted at path or above it. */
static int driver_mounts(const struct spark_cfg *c, const char *path)
{
    static const char prefix[] = "spark.kubernetes.driver.volumes.";
    for (const cJSON *it = c->conf ? c->conf->child : NULL; it; it = it->next) {
        if (!str_has_prefix(it->string, prefix) || !str_has_suffix(it->string, ".mount.path"))
            continue;
        const char *mp = it->valuestring;
        size_t n = strlen(mp);
        while (n > 1 && mp[n - 1] == '/')
            n--;
        if (n && strncmp(path, mp, n) == 0 && (path[n] == '/' || path[n] == '\0' || n == 1))
            return 1;
    }
    return 0;
}

/* Anything the driver pod must reach: a path on this machine only through a driver volume
 * mounted at that path, this machine's loopback only when the pod shares the node's network. */
static int check_reach(const struct spark_cfg *c, const char *what, const char *uri, struct err *e)
{
    if (str_has_prefix(uri, "file:")) {
        char *path;
        if (uri_file_path(uri, &path, e) < 0)
            return err_prefix(e, "%s: ", what);
        int ok = driver_mounts(c, path);
        free(path);
        if (!ok)
            return err_set(e, ERR_INVALID, "%s: %s is a path on this machine, which the driver pod cannot reach: use "
                           "an s3://, gs://, az:// or http(s):// store, mount it in the driver at the same path "
                           "(settings.conf spark.kubernetes.driver.volumes.*), or use deploy_mode client",
                           what, uri);
        return 0;
    }
    if (!c->host_network && url_is_loopback(uri))
        return err_set(e, ERR_INVALID, "%s is on this machine's loopback address, which the driver pod cannot reach: use "
                       "an address the cluster can reach, or set settings.host_network to true when the pod runs on "
                       "this machine", what);
    return 0;
}

int spark_check_job(const struct job *j, const struct spark_cfg *c, enum spark_app *app, struct err *e)
{
    const struct manifest *m = j->m;
    if (!m->argv || !m->argv[0])
        return err_set(e, ERR_INVALID, "command: the spark flavor runs the step's command as the Spark application "
                       "(local:///app/job.py ARGS, or a jar with settings.main_class); the manifest has none");
    const char *res = m->argv[0];
    if (ends_with_ci(res, ".py"))
        *app = SPARK_APP_PYTHON;
    else if (ends_with_ci(res, ".jar"))
        *app = SPARK_APP_JAR;
    else if (ends_with_ci(res, ".r"))
        *app = SPARK_APP_R;
    else
        return err_set(e, ERR_INVALID, "command: \"%s\" is no Spark application: the command's first word is the "
                       "application, a .py, .jar or .R file (local:///app/job.py for one in the image)", res);
    if (*app == SPARK_APP_JAR && !c->main_class)
        return err_set(e, ERR_INVALID, "command: %s is a jar; settings.main_class names its main class (--class)", res);
    if (*app != SPARK_APP_JAR && c->main_class)
        return err_set(e, ERR_INVALID, "settings.main_class: only for a jar application (the command runs %s)", res);

    /* Spark's own refusals (SparkSubmit.prepareSubmitEnvironment), in its words. */
    if (c->cluster && c->kind == SPARK_LOCAL)
        return err_set(e, ERR_INVALID, "settings.deploy_mode: Cluster deploy mode is not compatible with master \"local\" "
                       "(Spark's words; use deploy_mode client)");
    if (c->cluster && c->kind == SPARK_STANDALONE && *app == SPARK_APP_PYTHON)
        return err_set(e, ERR_INVALID, "settings.deploy_mode: Cluster deploy mode is currently not supported for python "
                       "applications on standalone clusters. (Spark's words; use deploy_mode client)");
    if (c->cluster && c->kind == SPARK_STANDALONE && *app == SPARK_APP_R)
        return err_set(e, ERR_INVALID, "settings.deploy_mode: Cluster deploy mode is currently not supported for R "
                       "applications on standalone clusters. (Spark's words; use deploy_mode client)");
    if (c->cluster && c->kind != SPARK_K8S)
        return err_set(e, ERR_INVALID, "settings.deploy_mode: cluster mode on %s would start the driver where stepop "
                       "cannot put it under `stepop run` (only Kubernetes takes a driver pod template); use deploy_mode "
                       "client, which runs the driver on this machine under `stepop run`", c->master);

    if (m->cpu < 0 || (m->cpu > 0 && (m->cpu != floor(m->cpu) || m->cpu > 1024)))
        return err_set(e, ERR_INVALID, "resources.cpu: %g; Spark's driver cores (spark.driver.cores) are whole cores",
                       m->cpu);
    if (m->cpu > 0 && !c->cluster)
        return err_set(e, ERR_INVALID, "resources.cpu: spark.driver.cores applies in cluster mode only; in client mode "
                       "the driver is a process on this machine");
    if (m->gpu_min_memory > 0 && c->cluster)
        return err_set(e, ERR_INVALID, "resources: gpu_min_memory cannot be asked of Spark's resource scheduling "
                       "(it counts GPUs only)");

    if (c->kind == SPARK_K8S) {
        if (flavor_check_image(m, "spark", e) < 0)
            return -1;
    } else if (m->image) {
        return err_set(e, ERR_INVALID, "image: with master %s the driver runs on this machine and the executors where "
                       "the cluster puts them; an image is used only on Kubernetes (drop \"image\")", c->master);
    }
    if ((c->context || c->namespace || c->service_account || c->image_pull_policy || c->host_network ||
         c->secret_env) && c->kind != SPARK_K8S)
        return err_set(e, ERR_INVALID, "settings: context, namespace, service_account, image_pull_policy, host_network "
                       "and secret_env are for a Kubernetes master (k8s://...), not %s", c->master);
    if (c->secret_env && !c->cluster)
        return err_set(e, ERR_INVALID, "settings.secret_env: Kubernetes secrets reach the driver in cluster mode only");

    /* The step's environment goes into spark.executorEnv.* and spark.kubernetes.driverEnv.*. */
    for (int i = 0; i < m->env_count; i++) {
        const char *n = m->env_names[i];
        size_t len = strlen(n);
        if (strstr(n, "SECRET") || strstr(n, "PASSWORD") || (len > 6 && strcmp(n + len - 6, "_TOKEN") == 0) ||
            value_is_credential(m->env_values[i]))
            return err_set(e, ERR_INVALID, "env.%s: looks like a credential, which the spark flavor never puts on "
                           "spark-submit's command line (spark.executorEnv.*); give it through a Kubernetes secret "
                           "(settings.secret_env) or the pods' identity", n);
    }
    for (int i = 1; m->argv[i]; i++)
        if (value_is_credential(m->argv[i]))
            return err_set(e, ERR_INVALID, "command: argument %d looks like a credential, which the spark flavor never "
                           "puts on spark-submit's command line", i);

    char red[1024];
    uri_redact(j->manifest_uri ? j->manifest_uri : m->run_uri, red, sizeof red);
    if (j->manifest_uri && strcmp(red, j->manifest_uri) != 0)
        return err_set(e, ERR_INVALID, "run_uri: the run's URI carries a credential (user info or a query), which "
                       "would go into spark-submit's --conf; use a store whose credentials come from the environment");
    if (c->cluster) {
        char what[160];
        if (check_reach(c, "the run's store", m->run_uri, e) < 0)
            return -1;
        for (int i = 0; i < m->input_count; i++) {
            snprintf(what, sizeof what, "inputs[%d] (%s)", i, m->inputs[i].name);
            if (check_reach(c, what, m->inputs[i].uri, e) < 0)
                return -1;
        }
        for (int i = 0; i < m->output_count; i++) {
            snprintf(what, sizeof what, "outputs[%d] (%s)", i, m->outputs[i].name);
            if (m->outputs[i].uri && check_reach(c, what, m->outputs[i].uri, e) < 0)
                return -1;
        }
    }
    return 0;
}
