/* The spark flavor's settings and refusals (flavors/spark/settings.c, in their exact words where
 * Spark has its own), the spark-submit argv with its --conf properties and the driver pod template
 * (flavors/spark/argv.c), exactly. */
#include "../../flavors/spark/spark.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *settings(const char *json)
{
    cJSON *s = cJSON_Parse(json);
    if (!s) {
        printf("Bail out! bad JSON in the test: %s\n", json);
        exit(1);
    }
    return s;
}

/* The error of parsing the settings, or "" when they parse. */
static const char *parse_err(const char *json)
{
    static struct err e;
    struct spark_cfg c;
    memset(&e, 0, sizeof e);
    cJSON *s = settings(json);
    int r = spark_parse_settings(s, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static char *argv_py[] = { "local:///app/job.py", "--epochs", "3", NULL };
static char *env_names[] = { "MODE" };
static char *env_values[] = { "fast" };

static struct manifest base_manifest(void)
{
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)"01J9ZQK8V3N4M5P6Q7R8S9T0AB";
    m.run_uri = (char *)"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/";
    m.image = (char *)"registry.example.com/spark-job:1";
    m.argv = argv_py;
    m.grace_ms = 30000;
    return m;
}

/* The error of checking the job under the settings, or "" when it passes. */
static const char *check_err(const struct manifest *m, const char *json)
{
    static struct err e;
    memset(&e, 0, sizeof e);
    struct spark_cfg c;
    enum spark_app app;
    cJSON *s = settings(json);
    struct job j = { .m = m, .manifest_uri = "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json",
                     .settings = s, .stepop_path = "/usr/bin/stepop", .attempt = 1 };
    int r = spark_parse_settings(s, &c, &e);
    if (r == 0)
        r = spark_check_job(&j, &c, &app, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

/* The argv joined by newlines. */
static char *argv_of(const struct manifest *m, const char *json, const char *ns, const char *tpl)
{
    struct err e = { 0 };
    struct spark_cfg c;
    enum spark_app app;
    cJSON *s = settings(json);
    struct job j = { .m = m, .manifest_uri = "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json",
                     .settings = s, .stepop_path = "/usr/bin/stepop", .attempt = 2 };
    if (spark_parse_settings(s, &c, &e) < 0 || spark_check_job(&j, &c, &app, &e) < 0) {
        printf("# unexpected refusal: %s\n", e.msg);
        cJSON_Delete(s);
        return xstrdup("");
    }
    char **argv = spark_argv(&j, &c, app, ns, tpl);
    struct buf b = { 0 };
    for (char **p = argv; *p; p++)
        buf_appendf(&b, "%s\n", *p);
    spark_argv_free(argv);
    cJSON_Delete(s);
    return b.data;
}

static void test_settings(void)
{
    is_str(parse_err("{}"), "settings.master: the spark flavor needs a master (k8s://https://HOST:PORT, spark://HOST:PORT, "
                            "yarn or local[*])", "master is required");
    is_str(parse_err("{\"master\":\"mesos://h:5050\"}"),
           "settings.master: \"mesos://h:5050\" is no master spark-submit takes (k8s://https://HOST:PORT, "
           "spark://HOST:PORT, yarn, local, local[N] or local[*])", "an unknown master is refused");
    const char *ok_masters[] = { "k8s://https://10.0.0.1:6443", "spark://h:7077", "yarn", "local", "local[4]",
                                 "local[*]", "local[2,3]", "local[*,2]" };
    for (size_t i = 0; i < sizeof ok_masters / sizeof ok_masters[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"master\":\"%s\"}", ok_masters[i]);
        is_str(parse_err(json), "", "master %s is taken", ok_masters[i]);
    }
    is_str(parse_err("{\"master\":\"local[x]\"}")[0] ? "refused" : "", "refused", "local[x] is refused");
    is_str(parse_err("{\"master\":\"yarn\",\"nope\":1}"), "settings.nope: not a setting of the spark flavor",
           "an unknown setting is refused");
    is_str(parse_err("{\"master\":\"yarn\",\"deploy_mode\":\"both\"}"),
           "settings.deploy_mode: expected \"cluster\" or \"client\", got \"both\"", "a bad deploy mode");
    is_str(parse_err("{\"master\":\"yarn\",\"executor_memory\":\"4 GB\"}"),
           "settings.executor_memory: \"4 GB\" is not in Spark's size format (a number and k, m, g or t: \"4g\")",
           "executor memory in Spark's format");
    is_str(parse_err("{\"master\":\"yarn\",\"executor_instances\":0}"),
           "settings.executor_instances: expected a whole number from 1 to 100000", "executor instances range");
    is_str(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.hadoop.fs.s3a.secret.key\":\"x\"}}"),
           "settings.conf.spark.hadoop.fs.s3a.secret.key: looks like a credential, which the spark flavor never puts on "
           "spark-submit's command line (anyone on the machine can read it there); give it through a Kubernetes secret "
           "(settings.secret_env) or the pods' identity",
           "fs.s3a.secret.key is refused");
    ok(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.hadoop.fs.s3a.access.key\":\"x\"}}")[0],
       "fs.s3a.access.key is refused");
    ok(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.kubernetes.authenticate.submission.oauthToken\":\"x\"}}")[0],
       "an OAuth token is refused");
    ok(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.hadoop.fs.azure.sas.c.a.blob.core.windows.net\":\"x\"}}")[0],
       "an Azure SAS is refused");
    ok(strstr(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.hadoop.fs.s3a.endpoint.region\":"
                        "\"AKIAIOSFODNN7EXAMPLE\"}}"), "the value looks like a credential") != NULL,
       "an access key id as a value is refused whatever the key");
    ok(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.x\":\"https://u:p@h/\"}}")[0], "a URL with a password is refused");
    is_str(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.hadoop.fs.s3a.aws.credentials.provider\":"
                     "\"com.amazonaws.auth.WebIdentityTokenCredentialsProvider\",\"spark.kubernetes.authenticate.driver."
                     "oauthTokenFile\":\"/var/run/t\",\"spark.security.credentials.hive.enabled\":\"false\","
                     "\"spark.kubernetes.kerberos.tokenSecret.name\":\"krb\",\"spark.kubernetes.driver.secretKeyRef.K\":\"s:k\",\"spark.ui.port\":\"4050\"}}"),
           "", "a credentials provider, a token file and a secret's name are no credentials");
    is_str(parse_err("{\"master\":\"yarn\",\"conf\":{\"fs.s3a.endpoint\":\"x\"}}"),
           "settings.conf.fs.s3a.endpoint: not a Spark property (they start with \"spark.\"; Hadoop's go as spark.hadoop.*)",
           "a non-Spark property is refused");
    is_str(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.ui.port\":4050}}"),
           "settings.conf.spark.ui.port: expected a string (Spark properties are strings)", "conf values are strings");
    is_str(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.kubernetes.driver.podTemplateFile\":\"/x\"}}"),
           "settings.conf.spark.kubernetes.driver.podTemplateFile: the spark flavor sets it (from the flavor's driver "
           "pod template)", "a property the flavor sets is refused");
    is_str(parse_err("{\"master\":\"yarn\",\"conf\":{\"spark.kubernetes.submission.waitAppCompletion\":\"true\"}}"),
           "settings.conf.spark.kubernetes.submission.waitAppCompletion: the spark flavor sets it (from the follow loop, "
           "which needs false)", "waitAppCompletion cannot be overridden");
    is_str(parse_err("{\"master\":\"yarn\",\"secret_env\":{\"AWS_KEY\":\"nocolon\"}}"),
           "settings.secret_env.AWS_KEY: expected \"SECRET:KEY\", a Kubernetes secret's name and a key in it",
           "secret_env needs SECRET:KEY");

    struct spark_cfg c;
    struct err e = { 0 };
    unsetenv("SPARK_HOME");
    cJSON *s = settings("{\"master\":\"yarn\"}");
    spark_parse_settings(s, &c, &e);
    is_str(c.spark_submit, "spark-submit", "spark-submit from PATH without SPARK_HOME");
    ok(!c.cluster, "client mode by default off Kubernetes");
    setenv("SPARK_HOME", "/opt/spark", 1);
    spark_parse_settings(s, &c, &e);
    is_str(c.spark_submit, "/opt/spark/bin/spark-submit", "$SPARK_HOME/bin/spark-submit");
    cJSON_Delete(s);
    s = settings("{\"master\":\"k8s://https://k:6443\",\"spark_submit\":\"/x/spark-submit\"}");
    spark_parse_settings(s, &c, &e);
    is_str(c.spark_submit, "/x/spark-submit", "settings.spark_submit first");
    ok(c.cluster, "cluster mode by default on Kubernetes");
    cJSON_Delete(s);
    unsetenv("SPARK_HOME");
}

static void test_refusals(void)
{
    struct manifest m = base_manifest();
    const char *k8s = "{\"master\":\"k8s://https://k:6443\"}";
    is_str(check_err(&m, k8s), "", "a Python application on Kubernetes passes");
    m.image = NULL;
    is_str(check_err(&m, k8s), "the spark flavor needs an image (manifest \"image\", or --image)",
           "Kubernetes needs an image");
    is_str(check_err(&m, "{\"master\":\"local[*]\"}"), "", "local[*] needs none");
    m = base_manifest();
    is_str(check_err(&m, "{\"master\":\"local[*]\"}"),
           "image: with master local[*] the driver runs on this machine and the executors where the cluster puts them; "
           "an image is used only on Kubernetes (drop \"image\")", "an image off Kubernetes is refused");
    m.image = NULL;
    is_str(check_err(&m, "{\"master\":\"local[*]\",\"deploy_mode\":\"cluster\"}"),
           "settings.deploy_mode: Cluster deploy mode is not compatible with master \"local\" (Spark's words; use "
           "deploy_mode client)", "cluster mode on local, in Spark's words");
    is_str(check_err(&m, "{\"master\":\"spark://h:7077\",\"deploy_mode\":\"cluster\"}"),
           "settings.deploy_mode: Cluster deploy mode is currently not supported for python applications on standalone "
           "clusters. (Spark's words; use deploy_mode client)", "Python in cluster mode on standalone, in Spark's words");
    char *argv_jar[] = { "/jobs/app.jar", "x", NULL };
    m.argv = argv_jar;
    is_str(check_err(&m, "{\"master\":\"yarn\"}"),
           "command: /jobs/app.jar is a jar; settings.main_class names its main class (--class)", "a jar needs --class");
    is_str(check_err(&m, "{\"master\":\"yarn\",\"main_class\":\"a.B\",\"deploy_mode\":\"cluster\"}"),
           "settings.deploy_mode: cluster mode on yarn would start the driver where stepop cannot put it under `stepop "
           "run` (only Kubernetes takes a driver pod template); use deploy_mode client, which runs the driver on this "
           "machine under `stepop run`", "cluster mode off Kubernetes is refused");
    char *argv_sh[] = { "sh", "-c", "true", NULL };
    m.argv = argv_sh;
    is_str(check_err(&m, "{\"master\":\"yarn\"}"),
           "command: \"sh\" is no Spark application: the command's first word is the application, a .py, .jar or .R "
           "file (local:///app/job.py for one in the image)", "a command that is no application");
    m.argv = NULL;
    ok(strstr(check_err(&m, "{\"master\":\"yarn\"}"), "the manifest has none") != NULL, "no command");

    m = base_manifest();
    m.cpu = 1.5;
    is_str(check_err(&m, k8s), "resources.cpu: 1.5; Spark's driver cores (spark.driver.cores) are whole cores",
           "fractional driver cores are refused");
    m.cpu = 2;
    m.image = NULL;
    is_str(check_err(&m, "{\"master\":\"local[*]\"}"),
           "resources.cpu: spark.driver.cores applies in cluster mode only; in client mode the driver is a process on "
           "this machine", "driver cores in client mode are refused");
    m = base_manifest();
    m.run_uri = (char *)"file:///srv/runs/r/";
    is_str(check_err(&m, k8s),
           "the run's store: file:///srv/runs/r/ is a path on this machine, which the driver pod cannot reach: use an "
           "s3://, gs://, az:// or http(s):// store, mount it in the driver at the same path (settings.conf "
           "spark.kubernetes.driver.volumes.*), or use deploy_mode client", "a file store in cluster mode");
    is_str(check_err(&m, "{\"master\":\"k8s://https://k:6443\",\"conf\":{"
                         "\"spark.kubernetes.driver.volumes.hostPath.s.mount.path\":\"/srv/\","
                         "\"spark.kubernetes.driver.volumes.hostPath.s.options.path\":\"/srv\"}}"),
           "", "a file store mounted in the driver at the same path");
    is_str(check_err(&m, "{\"master\":\"k8s://https://k:6443\",\"conf\":{"
                         "\"spark.kubernetes.driver.volumes.hostPath.s.mount.path\":\"/sr\"}}")[0] ? "refused" : "",
           "refused", "a mount at a mere prefix of the name does not count");
    m.run_uri = (char *)"http://127.0.0.1:9000/runs/r/";
    ok(strstr(check_err(&m, k8s), "loopback") != NULL, "a loopback store without host_network");
    is_str(check_err(&m, "{\"master\":\"k8s://https://k:6443\",\"host_network\":true}"), "",
           "a loopback store with host_network");
    m = base_manifest();
    char *names[] = { "AWS_SECRET_ACCESS_KEY" }, *values[] = { "x" };
    m.env_count = 1;
    m.env_names = names;
    m.env_values = values;
    is_str(check_err(&m, k8s),
           "env.AWS_SECRET_ACCESS_KEY: looks like a credential, which the spark flavor never puts on spark-submit's "
           "command line (spark.executorEnv.*); give it through a Kubernetes secret (settings.secret_env) or the pods' "
           "identity", "a credential in the step's env is refused");
    m = base_manifest();
    m.image = NULL;
    ok(strstr(check_err(&m, "{\"master\":\"yarn\",\"namespace\":\"x\"}"), "are for a Kubernetes master") != NULL,
       "Kubernetes settings off Kubernetes are refused");
}

static void test_argv(void)
{
    struct manifest m = base_manifest();
    m.cpu = 2;
    m.memory = (int64_t)3 << 30;
    m.gpus = 1;
    m.env_count = 1;
    m.env_names = env_names;
    m.env_values = env_values;
    char *got = argv_of(&m,
                        "{\"master\":\"k8s://https://k:6443\",\"service_account\":\"spark\",\"executor_instances\":4,"
                        "\"executor_memory\":\"8g\",\"executor_cores\":2,\"executor_gpus\":1,\"context\":\"prod\","
                        "\"image_pull_policy\":\"IfNotPresent\","
                        "\"secret_env\":{\"AWS_SECRET_ACCESS_KEY\":\"s3-creds:secret\"},"
                        "\"conf\":{\"spark.sql.shuffle.partitions\":\"64\"},\"spark_submit\":\"/opt/spark/bin/spark-submit\"}",
                        "ml", "/tmp/t.json");
    is_str(got,
           "/opt/spark/bin/spark-submit\n--master\nk8s://https://k:6443\n--deploy-mode\ncluster\n--name\n"
           "01J9ZQK8V3N4M5P6Q7R8S9T0AB\n--driver-memory\n3072m\n--executor-memory\n8g\n--executor-cores\n2\n"
           "--conf\nspark.driver.cores=2\n--conf\nspark.executor.instances=4\n"
           "--conf\nspark.driver.resource.gpu.amount=1\n"
           "--conf\nspark.driver.resource.gpu.discoveryScript=/opt/spark/examples/src/main/scripts/getGpusResources.sh\n"
           "--conf\nspark.driver.resource.gpu.vendor=nvidia.com\n"
           "--conf\nspark.executor.resource.gpu.amount=1\n"
           "--conf\nspark.executor.resource.gpu.discoveryScript=/opt/spark/examples/src/main/scripts/getGpusResources.sh\n"
           "--conf\nspark.executor.resource.gpu.vendor=nvidia.com\n"
           "--conf\nspark.kubernetes.submission.waitAppCompletion=false\n"
           "--conf\nspark.kubernetes.container.image=registry.example.com/spark-job:1\n"
           "--conf\nspark.kubernetes.namespace=ml\n"
           "--conf\nspark.kubernetes.context=prod\n"
           "--conf\nspark.kubernetes.container.image.pullPolicy=IfNotPresent\n"
           "--conf\nspark.kubernetes.authenticate.driver.serviceAccountName=spark\n"
           "--conf\nspark.kubernetes.driver.label.stepop.io/run-id=01J9ZQK8V3N4M5P6Q7R8S9T0AB\n"
           "--conf\nspark.kubernetes.executor.label.stepop.io/run-id=01J9ZQK8V3N4M5P6Q7R8S9T0AB\n"
           "--conf\nspark.kubernetes.driver.pod.name=stepop-01j9zqk8v3n4m5p6q7r8s9t0ab-driver\n"
           "--conf\nspark.kubernetes.driver.podTemplateFile=/tmp/t.json\n"
           "--conf\nspark.kubernetes.driver.podTemplateContainerName=spark-kubernetes-driver\n"
           "--conf\nspark.kubernetes.driverEnv.STEPOP_MANIFEST=s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json\n"
           "--conf\nspark.kubernetes.driverEnv.STEPOP_ATTEMPT=2\n"
           "--conf\nspark.kubernetes.driverEnv.MODE=fast\n"
           "--conf\nspark.executorEnv.MODE=fast\n"
           "--conf\nspark.kubernetes.driver.secretKeyRef.AWS_SECRET_ACCESS_KEY=s3-creds:secret\n"
           "--conf\nspark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY=s3-creds:secret\n"
           "--conf\nspark.sql.shuffle.partitions=64\n"
           "local:///app/job.py\n--epochs\n3\n",
           "cluster mode on Kubernetes: the exact argv");
    free(got);

    m = base_manifest();
    char *argv_dollar[] = { "local:///app/$job.py", "kill $$", "$(HOME)", NULL };
    m.argv = argv_dollar;
    got = argv_of(&m, "{\"master\":\"k8s://https://k:6443\",\"spark_submit\":\"s\"}", "ml", "/tmp/t.json");
    const char *tail = strstr(got, "local:///");
    is_str(tail ? tail : got, "local:///app/$job.py\nkill $$$$\n$$(HOME)\n",
           "cluster mode on Kubernetes: every $ of the arguments doubled (container args), the application as given");
    free(got);
    m.image = NULL;
    got = argv_of(&m, "{\"master\":\"local[*]\",\"spark_submit\":\"s\"}", NULL, NULL);
    tail = strstr(got, "local:///");
    is_str(tail ? tail : got, "local:///app/$job.py\nkill $$\n$(HOME)\n", "client mode: the arguments as given");
    free(got);

    m = base_manifest();
    m.image = NULL;
    char *argv_jar[] = { "/jobs/app.jar", "in", NULL };
    m.argv = argv_jar;
    m.memory = (int64_t)1 << 29;
    got = argv_of(&m, "{\"master\":\"local[*]\",\"main_class\":\"org.example.Main\",\"spark_submit\":\"spark-submit\"}",
                  NULL, NULL);
    is_str(got,
           "spark-submit\n--master\nlocal[*]\n--deploy-mode\nclient\n--name\n01J9ZQK8V3N4M5P6Q7R8S9T0AB\n--class\n"
           "org.example.Main\n--driver-memory\n512m\n/jobs/app.jar\nin\n",
           "client mode on local[*] with a jar: the exact argv");
    free(got);
}

static void test_template(void)
{
    struct manifest m = base_manifest();
    m.timeout_ms = 3600000;
    m.grace_ms = 45000;
    struct spark_cfg c;
    struct err e = { 0 };
    cJSON *s = settings("{\"master\":\"k8s://https://k:6443\",\"host_network\":true,\"stepop_path\":\"/opt/stepop/stepop\"}");
    spark_parse_settings(s, &c, &e);
    struct job j = { .m = &m, .manifest_uri = "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json",
                     .settings = s, .attempt = 1 };
    cJSON *t = spark_pod_template(&j, &c);
    char *text = cJSON_PrintUnformatted(t);
    is_str(text,
           "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"stepop.io/run-id\":"
           "\"01J9ZQK8V3N4M5P6Q7R8S9T0AB\"},\"annotations\":{\"stepop.io/run-id\":\"01J9ZQK8V3N4M5P6Q7R8S9T0AB\","
           "\"stepop.io/run-uri\":\"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/\"}},\"spec\":{\"restartPolicy\":\"Never\","
           "\"terminationGracePeriodSeconds\":75,\"activeDeadlineSeconds\":3765,\"hostNetwork\":true,"
           "\"dnsPolicy\":\"ClusterFirstWithHostNet\",\"containers\":[{\"name\":\"spark-kubernetes-driver\","
           "\"command\":[\"/opt/stepop/stepop\",\"run\",\"--exec\",\"--\",\"/opt/entrypoint.sh\"]}]}}",
           "the driver pod template, exactly");
    cJSON_free(text);
    cJSON_Delete(t);
    cJSON_Delete(s);

    s = settings("{\"master\":\"k8s://https://k:6443\",\"secret_env\":{\"TOKEN_X\":\"creds:tok\"}}");
    spark_parse_settings(s, &c, &e);
    j.settings = s;
    cJSON *env = spark_driver_env(&j, &c);
    text = cJSON_PrintUnformatted(env);
    is_str(text,
           "{\"STEPOP_MANIFEST\":\"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json\",\"STEPOP_ATTEMPT\":\"1\","
           "\"TOKEN_X\":\"<secret creds key tok>\"}",
           "the driver's environment names secrets, never their values");
    cJSON_free(text);
    cJSON_Delete(env);
    cJSON_Delete(s);

    char *pod = spark_driver_pod_name(&m);
    is_str(pod, "stepop-01j9zqk8v3n4m5p6q7r8s9t0ab-driver", "the driver pod's name");
    free(pod);
}

int main(void)
{
    test_settings();
    test_refusals();
    test_argv();
    test_template();
    return tap_done();
}
