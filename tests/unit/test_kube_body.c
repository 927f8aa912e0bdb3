/* The kubernetes flavor's settings (flavors/kubernetes/settings.c: what is refused, in which
 * words) and its batch/v1 Job (flavors/kubernetes/body.c: names, labels, resources, GPUs, shm,
 * inject, deadlines, attempts, pod settings). */
#include "../../flavors/kubernetes/kubernetes.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The item at a path of keys ("#N" for the Nth array item), NULL-terminated; NULL when absent. */
static const cJSON *jp(const cJSON *root, ...)
{
    va_list ap;
    va_start(ap, root);
    const char *k;
    while (root && (k = va_arg(ap, const char *)))
        root = k[0] == '#' ? cJSON_GetArrayItem(root, atoi(k + 1)) : cJSON_GetObjectItemCaseSensitive(root, k);
    va_end(ap);
    return root;
}

static const char *js(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jn(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v->valuedouble : -999;
}

/* The error of parsing settings (JSON text), or "" when they parse. */
static const char *parse_err(const char *json)
{
    static struct err e;
    struct kube_cfg c;
    memset(&e, 0, sizeof e);
    cJSON *s = cJSON_Parse(json);
    if (!s) {
        printf("Bail out! bad JSON in the test: %s\n", json);
        exit(1);
    }
    int r = kube_parse_settings(s, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

static struct manifest base_manifest(void)
{
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)"01J9ZQK8V3N4M5P6Q7R8S9T0AB";
    m.run_uri = (char *)"s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/";
    m.image = (char *)"registry.example.com/train:1";
    m.step = (char *)"train";
    m.grace_ms = 30000;
    return m;
}

/* The error of kube_check_job for m under settings, or "". */
static const char *check_err(const struct manifest *m, const char *settings)
{
    static struct err e;
    memset(&e, 0, sizeof e);
    cJSON *s = cJSON_Parse(settings);
    struct kube_cfg c;
    struct job j = { .m = m, .manifest_uri = "x", .settings = s, .attempt = 1 };
    int r = kube_parse_settings(s, &c, &e);
    if (r == 0)
        r = kube_check_job(&j, &c, &e);
    cJSON_Delete(s);
    return r < 0 ? e.msg : "";
}

/* The Job for m under settings (JSON text); *keep holds the settings, freed by the caller. */
static cJSON *job_for(const struct manifest *m, const char *settings, int attempt, cJSON **keep)
{
    struct err e = { 0 };
    struct kube_cfg c;
    *keep = cJSON_Parse(settings);
    if (kube_parse_settings(*keep, &c, &e) < 0) {
        printf("Bail out! settings %s: %s\n", settings, e.msg);
        exit(1);
    }
    char *mu = xasprintf("%smanifest.json", m->run_uri);
    struct job j = { .m = m, .manifest_uri = mu, .settings = *keep, .attempt = attempt };
    cJSON *b = kube_job_body(&j, &c, c.namespace ? c.namespace : "default");
    free(mu);
    return b;
}

/* The value of env variable name in the step's container, or NULL. */
static const char *env_of(const cJSON *job, const char *name)
{
    const cJSON *env = jp(job, "spec", "template", "spec", "containers", "#0", "env", NULL), *it;
    cJSON_ArrayForEach(it, env) if (strcmp(js(jp(it, "name", NULL)), name) == 0) return js(jp(it, "value", NULL));
    return NULL;
}

static void test_names(void)
{
    ok(kube_is_dns_label("stepop-01abc", 63), "a DNS-1123 label");
    ok(!kube_is_dns_label("Stepop", 63), "upper case is no DNS-1123 label");
    ok(!kube_is_dns_label("-a", 63) && !kube_is_dns_label("a-", 63) && !kube_is_dns_label("", 63), "nor a leading/trailing '-' or nothing");
    ok(kube_is_dns_subdomain("nvidia.com") && !kube_is_dns_subdomain("a..b") && !kube_is_dns_subdomain("a."), "subdomains");
    ok(kube_is_qualified_name("amd.com/gpu") && kube_is_qualified_name("app") && kube_is_qualified_name("A_b.c"), "qualified names");
    ok(!kube_is_qualified_name("a/b/c") && !kube_is_qualified_name("/gpu") && !kube_is_qualified_name("x.com/"), "bad qualified names");
    ok(kube_is_label_value("") && kube_is_label_value("v1.2_a") && !kube_is_label_value("a b"), "label values");

    struct manifest m = base_manifest();
    char *n = kube_job_name(&m);
    is_str(n, "stepop-01j9zqk8v3n4m5p6q7r8s9t0ab", "the Job is stepop-<run id in lower case>");
    free(n);
    char *l = kube_run_label(m.run_id);
    is_str(l, "01J9ZQK8V3N4M5P6Q7R8S9T0AB", "the run-id label is the run id itself");
    free(l);

    m.run_id = (char *)"my_run.1"; /* '_' and '.' are no DNS-1123 label */
    n = kube_job_name(&m);
    ok(strncmp(n, "stepop-", 7) == 0 && strlen(n) == 7 + 16 && kube_is_dns_label(n, 63), "a run id with '_' gets a digest name: %s", n);
    char *n2 = kube_job_name(&m);
    is_str(n2, n, "the digest name is stable");
    free(n2);
    /* sha256("my_run.1") begins with these 16 hex digits (printf my_run.1 | sha256sum). */
    is_str(n, "stepop-460380112a3dffe4", "and is the first 16 hex digits of its SHA-256");
    free(n);
    l = kube_run_label(m.run_id);
    is_str(l, "my_run.1", "such a run id is still a label value");
    free(l);

    char long_id[129];
    memset(long_id, 'a', 128);
    long_id[128] = '\0';
    m.run_id = long_id;
    n = kube_job_name(&m);
    is_int(strlen(n), 23, "a run id too long for a label gets a digest name");
    free(n);
    l = kube_run_label(m.run_id);
    ok(strncmp(l, "sha256-", 7) == 0 && kube_is_label_value(l), "and a digest label value: %s", l);
    free(l);
    memset(long_id, 'a', 56);
    long_id[56] = '\0';
    n = kube_job_name(&m);
    is_int(strlen(n), 63, "a 56-character run id makes a 63-character name, the longest label");
    free(n);
    long_id[56] = 'a';
    long_id[57] = '\0';
    n = kube_job_name(&m);
    is_int(strlen(n), 23, "one more character and it is a digest");
    free(n);
}

static void test_settings(void)
{
    is_str(parse_err("{}"), "", "no settings are fine");
    is_str(parse_err("{\"frob\": 1}"), "settings.frob: not a setting of the kubernetes flavor", "an unknown setting is refused");
    is_str(parse_err("{\"kubernetes_namespace\": \"ml\"}"),
           "settings.kubernetes_namespace: not a setting of the kubernetes flavor; did you mean settings.namespace?",
           "ZenML's kubernetes_namespace points to namespace");
    is_str(parse_err("{\"namespace\": \"ML\"}"),
           "settings.namespace: \"ML\" is not a namespace name (lower-case letters, digits and '-', at most 63)",
           "a bad namespace");
    is_str(parse_err("{\"namespace\": 3}"), "settings.namespace: expected a string", "a namespace of the wrong type");
    is_str(parse_err("{\"retries\": -1}"), "settings.retries: expected a whole number from 0 to 1000", "negative retries");
    is_str(parse_err("{\"retries\": 1.5}"), "settings.retries: expected a whole number from 0 to 1000", "fractional retries");
    is_str(parse_err("{\"retries\": \"2\"}"), "settings.retries: expected a whole number from 0 to 1000", "retries as a string");
    is_str(parse_err("{\"ttl_seconds_after_finished\": -5}"),
           "settings.ttl_seconds_after_finished: expected a whole number from 0 to 2147483647", "a negative TTL");
    is_str(parse_err("{\"keep\": \"yes\"}"), "settings.keep: expected true or false", "keep must be a bool");
    is_str(parse_err("{\"host_network\": 1}"), "settings.host_network: expected true or false", "host_network must be a bool");
    is_str(parse_err("{\"gpu_resource\": \"gpu\"}"),
           "settings.gpu_resource: \"gpu\" is not an extended resource name (a domain, '/', a name: nvidia.com/gpu, "
           "amd.com/gpu, gpu.intel.com/i915)",
           "a GPU resource without a domain");
    ok(strstr(parse_err("{\"gpu_resource\": \"kubernetes.io/gpu\"}"), "not an extended resource name") != NULL,
       "kubernetes.io is Kubernetes' own domain");
    is_str(parse_err("{\"gpu_resource\": \"amd.com/gpu\"}"), "", "amd.com/gpu is fine");
    is_str(parse_err("{\"image_pull_policy\": \"always\"}"),
           "settings.image_pull_policy: expected Always, IfNotPresent or Never, got \"always\"", "a pull policy is spelled as Kubernetes does");
    ok(strncmp(parse_err("{\"shm_size\": \"lots\"}"), "settings.shm_size: ", 19) == 0, "a bad shm size names the setting");
    is_str(parse_err("{\"shm_size\": \"0\"}"), "settings.shm_size: expected a size above 0 (\"1Gi\")", "a zero shm size");
    is_str(parse_err("{\"inject\": true}"),
           "settings.inject: needs settings.inject_image, an image with the static stepop and glibc 2.34 or later "
           "(docs/flavors.md#inject-mode)",
           "inject needs inject_image");
    is_str(parse_err("{\"inject_image\": \"x\"}"), "settings.inject_image: only used with inject: true", "inject_image alone");
    is_str(parse_err("{\"inject_binary\": \"/usr/local/bin/stepop\"}"), "settings.inject_binary: only used with inject: true",
           "inject_binary alone");
    is_str(parse_err("{\"inject\": true, \"inject_image\": \"x\", \"inject_binary\": \"stepop\"}"),
           "settings.inject_binary: expected the absolute path of stepop in inject_image", "inject_binary is absolute");
    is_str(parse_err("{\"service_account_name\": \"Bad_Name\"}"),
           "settings.service_account_name: \"Bad_Name\" is not a Kubernetes object name (lower-case letters, digits, '-' "
           "and '.', at most 253)",
           "a bad service account name");
    is_str(parse_err("{\"context\": \"\"}"), "settings.context: expected the name of a kubeconfig context", "an empty context");
    is_str(parse_err("{\"pod_settings\": []}"), "settings.pod_settings: expected an object", "pod_settings must be an object");
    ok(strncmp(parse_err("{\"pod_settings\": {\"nodeSelector\": {}}}"),
               "settings.pod_settings.nodeSelector: not a pod setting (node_selectors, ", 70) == 0,
       "an unknown pod setting is refused, listing the known ones");
    is_str(parse_err("{\"pod_settings\": {\"node_selector\": {}}}"),
           "settings.pod_settings.node_selector: not a pod setting; did you mean settings.pod_settings.node_selectors?",
           "node_selector points to node_selectors");
    is_str(parse_err("{\"pod_settings\": {\"node_selectors\": {\"gpu\": 1}}}"),
           "settings.pod_settings.node_selectors.gpu: expected a string", "node selector values are strings");
    is_str(parse_err("{\"pod_settings\": {\"node_selectors\": []}}"),
           "settings.pod_settings.node_selectors: expected an object of strings", "node selectors are a map");
    is_str(parse_err("{\"pod_settings\": {\"tolerations\": {}}}"), "settings.pod_settings.tolerations: expected a list of objects",
           "tolerations are a list");
    is_str(parse_err("{\"pod_settings\": {\"tolerations\": [\"gpu\"]}}"), "settings.pod_settings.tolerations[0]: expected an object",
           "of objects");
    is_str(parse_err("{\"pod_settings\": {\"tolerations\": [{\"operator\": \"In\"}]}}"),
           "settings.pod_settings.tolerations[0].operator: expected Equal or Exists, got \"In\"", "a toleration's operator");
    is_str(parse_err("{\"pod_settings\": {\"image_pull_secrets\": [{\"name\": \"r\"}]}}"),
           "settings.pod_settings.image_pull_secrets: expected a list of secret names (a Kubernetes object name (lower-case "
           "letters, digits, '-' and '.', at most 253))",
           "image pull secrets are names");
    is_str(parse_err("{\"pod_settings\": {\"labels\": {\"stepop.io/run-id\": \"x\"}}}"),
           "settings.pod_settings.labels.stepop.io/run-id: the stepop.io/ keys are stepop's own (cancel and cleanup check them)",
           "stepop's own label cannot be overridden");
    is_str(parse_err("{\"pod_settings\": {\"annotations\": {\"stepop.io/run-uri\": \"x\"}}}"),
           "settings.pod_settings.annotations.stepop.io/run-uri: the stepop.io/ keys are stepop's own (cancel and cleanup "
           "check them)",
           "nor its annotation");
    is_str(parse_err("{\"pod_settings\": {\"labels\": {\"job-name\": \"x\"}}}"),
           "settings.pod_settings.labels.job-name: the Job controller sets this label itself", "nor the Job controller's");
    is_str(parse_err("{\"pod_settings\": {\"labels\": {\"team\": \"a b\"}}}"),
           "settings.pod_settings.labels.team: \"a b\" is not a label value (at most 63 letters, digits, '-', '_' or '.', "
           "starting and ending with a letter or digit)",
           "a bad label value");
    is_str(parse_err("{\"pod_settings\": {\"annotations\": {\"note\": \"any text at all\"}}}"), "", "annotation values are free text");
    is_str(parse_err("{\"pod_settings\": {\"labels\": {\"bad key!\": \"x\"}}}"),
           "settings.pod_settings.labels: \"bad key!\" is not a Kubernetes key ([prefix/]name: letters, digits, '-', '_' and "
           "'.', the name at most 63)",
           "a bad label key");
    is_str(parse_err("{\"pod_settings\": {\"volume_mounts\": [{\"name\": \"data\", \"mountPath\": \"/data\"}]}}"),
           "settings.pod_settings.volume_mounts[0].name: no volume \"data\" in settings.pod_settings.volumes",
           "a mount names a volume");
    is_str(parse_err("{\"pod_settings\": {\"volumes\": [{\"name\": \"d\"}], \"volume_mounts\": [{\"name\": \"d\", \"mountPath\": \"data\"}]}}"),
           "settings.pod_settings.volume_mounts[0].mountPath: expected an absolute path", "a mount path is absolute");
    is_str(parse_err("{\"pod_settings\": {\"volumes\": [{\"name\": \"stepop-shm\"}]}}"),
           "settings.pod_settings.volumes[0].name: the stepop- volumes are stepop's own", "stepop's volume names are kept");
    is_str(parse_err("{\"pod_settings\": {\"volumes\": [{\"name\": \"d\"}, {\"name\": \"d\"}]}}"),
           "settings.pod_settings.volumes[1].name: \"d\" is given twice", "a volume name twice");
    is_str(parse_err("{\"shm_size\": \"1Gi\", \"pod_settings\": {\"volumes\": [{\"name\": \"d\"}], \"volume_mounts\": "
                     "[{\"name\": \"d\", \"mountPath\": \"/dev/shm\"}]}}"),
           "settings.pod_settings.volume_mounts[0].mountPath: settings.shm_size already mounts /dev/shm", "shm is mounted once");
    is_str(parse_err("{\"inject\": true, \"inject_image\": \"s\", \"pod_settings\": {\"volumes\": [{\"name\": \"d\"}], "
                     "\"volume_mounts\": [{\"name\": \"d\", \"mountPath\": \"/opt/stepop/bin\"}]}}"),
           "settings.pod_settings.volume_mounts[0].mountPath: /opt/stepop/bin holds the injected stepop (settings.inject)",
           "the injected binary's directory is kept");
    is_str(parse_err("{\"pod_settings\": {\"env\": [{\"name\": \"STEPOP_ATTEMPT\", \"value\": \"3\"}]}}"),
           "settings.pod_settings.env[0]: STEPOP_ATTEMPT is set by the flavor itself", "STEPOP_ATTEMPT is the flavor's");
    is_str(parse_err("{\"pod_settings\": {\"env\": {\"STEPOP_ATTEMPT_FROM_STATUS\": \"1\"}}}"),
           "settings.pod_settings.env: STEPOP_ATTEMPT_FROM_STATUS is set by the flavor itself", "also in env as an object");
    is_str(parse_err("{\"pod_settings\": {\"env\": {\"A\": 1}}}"), "settings.pod_settings.env.A: expected a string",
           "env as an object has string values");
    is_str(parse_err("{\"pod_settings\": {\"env\": {\"1A\": \"x\"}}}"), "settings.pod_settings.env: \"1A\" is not a variable name",
           "and variable names");
    is_str(parse_err("{\"pod_settings\": {\"env\": \"A=1\"}}"),
           "settings.pod_settings.env: expected a list of {\"name\", \"value\" or \"valueFrom\"} objects, or an object of "
           "names and strings",
           "env is a list or an object");
    is_str(parse_err("{\"pod_settings\": {\"env\": [{\"name\": \"A\", \"value\": 3}]}}"),
           "settings.pod_settings.env[0] (A): expected a string \"value\" or a \"valueFrom\" object", "env values are strings");
    is_str(parse_err("{\"pod_settings\": {\"env_from\": [{\"secretRef\": {\"name\": \"s\"}, \"configMapRef\": {\"name\": \"c\"}}]}}"),
           "settings.pod_settings.env_from[0]: expected one \"configMapRef\" or \"secretRef\" object (and an optional "
           "\"prefix\")",
           "env_from takes one source per item");
    is_str(parse_err("{\"pod_settings\": {\"resources\": {\"limits\": {\"memory\": \"1Gi\"}}}}"),
           "settings.pod_settings.resources.limits.memory: the step's own resources give it (--cpu, --memory, --gpus or "
           "the manifest's resources)",
           "memory comes from the step");
    is_str(parse_err("{\"gpu_resource\": \"amd.com/gpu\", \"pod_settings\": {\"resources\": {\"limits\": {\"amd.com/gpu\": 1}}}}"),
           "settings.pod_settings.resources.limits.amd.com/gpu: the step's own resources give it (--cpu, --memory, --gpus "
           "or the manifest's resources)",
           "and so do GPUs");
    is_str(parse_err("{\"pod_settings\": {\"affinity\": {\"nodeAffinty\": {}}}}"),
           "settings.pod_settings.affinity.nodeAffinty: expected nodeAffinity, podAffinity or podAntiAffinity",
           "a misspelt affinity");
    is_str(parse_err("{\"pod_settings\": {\"host_ipc\": \"yes\"}}"), "settings.pod_settings.host_ipc: expected true or false",
           "host_ipc is a bool");
    is_str(parse_err("{\"context\": \"prod\", \"namespace\": \"ml\", \"gpu_resource\": \"amd.com/gpu\", \"retries\": 2, "
                     "\"ttl_seconds_after_finished\": 600, \"keep\": true, \"inject\": true, \"inject_image\": \"r/stepop:1\", "
                     "\"image_pull_policy\": \"IfNotPresent\", \"shm_size\": \"1Gi\", \"host_network\": false, "
                     "\"service_account_name\": \"trainer\", \"priority_class_name\": \"high\", \"runtime_class_name\": "
                     "\"nvidia\", \"pod_settings\": {\"node_selectors\": {\"gpu\": \"mi300\"}, \"affinity\": {\"nodeAffinity\": "
                     "{}}, \"tolerations\": [{\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"}], "
                     "\"annotations\": {\"a\": \"b\"}, \"labels\": {\"team\": \"ml\"}, \"volumes\": [{\"name\": \"data\", "
                     "\"persistentVolumeClaim\": {\"claimName\": \"data\"}}], \"volume_mounts\": [{\"name\": \"data\", "
                     "\"mountPath\": \"/data\", \"readOnly\": true}], \"host_ipc\": true, \"scheduler_name\": \"volcano\", "
                     "\"image_pull_secrets\": [\"regcred\"], \"env\": [{\"name\": \"A\", \"value\": \"1\"}], \"env_from\": "
                     "[{\"secretRef\": {\"name\": \"s3\"}}], \"security_context\": {\"runAsUser\": 1000}, \"resources\": "
                     "{\"limits\": {\"ephemeral-storage\": \"10Gi\"}}}}"),
           "", "every setting at once is accepted");
}

static void test_check(void)
{
    struct manifest m = base_manifest();
    is_str(check_err(&m, "{}"), "", "an s3 store is fine");
    m.image = NULL;
    is_str(check_err(&m, "{}"), "the kubernetes flavor needs an image (manifest \"image\", or --image)", "an image is needed");
    m = base_manifest();
    m.run_uri = (char *)"file:///srv/store/runs/x/";
    is_str(check_err(&m, "{}"),
           "run_uri: /srv/store/runs/x/ is a path on this machine, which a pod cannot reach: use an s3:// or http(s):// "
           "store, or mount it in the pod at the same path (settings.pod_settings.volumes and volume_mounts)",
           "a file store is refused");
    const char *mounted = "{\"pod_settings\": {\"volumes\": [{\"name\": \"s\", \"nfs\": {\"server\": \"n\", \"path\": \"/\"}}], "
                          "\"volume_mounts\": [{\"name\": \"s\", \"mountPath\": \"/srv/store/\"}]}}";
    is_str(check_err(&m, mounted), "", "unless a volume is mounted there");
    const char *elsewhere = "{\"pod_settings\": {\"volumes\": [{\"name\": \"s\", \"nfs\": {\"server\": \"n\", \"path\": \"/\"}}], "
                            "\"volume_mounts\": [{\"name\": \"s\", \"mountPath\": \"/srv/sto\"}]}}";
    ok(strstr(check_err(&m, elsewhere), "is a path on this machine") != NULL, "a mount of a name prefix is not the directory");
    m = base_manifest();
    struct manifest_input in = { .name = (char *)"data", .uri = (char *)"file:///home/me/data.csv" };
    m.inputs = &in;
    m.input_count = 1;
    ok(strncmp(check_err(&m, "{}"), "inputs[0] (data): /home/me/data.csv is a path on this machine", 61) == 0,
       "a file input is refused, naming it");
    m = base_manifest();
    struct manifest_output out = { .name = (char *)"model", .uri = (char *)"file:///out/model.tar.zst" };
    m.outputs = &out;
    m.output_count = 1;
    ok(strncmp(check_err(&m, "{}"), "outputs[0] (model): /out/model.tar.zst is a path on this machine", 63) == 0,
       "a file output is refused, naming it");
    m = base_manifest();
    m.run_uri = (char *)"http://127.0.0.1:8080/runs/x/";
    is_str(check_err(&m, "{}"),
           "the run's store is on this machine's loopback address, which a pod cannot reach: use an address the cluster "
           "can reach, or set settings.host_network to true when the pod runs on this machine",
           "a loopback store is refused");
    is_str(check_err(&m, "{\"host_network\": true}"), "", "unless the pod is on the node's network");
    m.run_uri = (char *)"http://localhost/runs/x/";
    ok(strstr(check_err(&m, "{}"), "loopback") != NULL, "localhost too");
    m.run_uri = (char *)"http://[::1]/runs/x/";
    ok(strstr(check_err(&m, "{}"), "loopback") != NULL, "and ::1");
    m = base_manifest();
    ok(strncmp(check_err(&m, "{\"pod_settings\": {\"env\": [{\"name\": \"AWS_ENDPOINT_URL_S3\", \"value\": "
                             "\"http://127.0.0.1:9000\"}]}}"),
               "AWS_ENDPOINT_URL_S3 is on this machine's loopback address", 56) == 0,
       "an S3 endpoint on loopback in the pod's env is refused");
    ok(strncmp(check_err(&m, "{\"pod_settings\": {\"env\": {\"AWS_ENDPOINT_URL\": \"http://localhost:9000\"}}}"),
               "AWS_ENDPOINT_URL is on this machine's loopback address", 53) == 0,
       "also in env as an object");
    m.gpus = 2;
    m.cpu = 4;
    m.memory = (int64_t)16 << 30;
    is_str(check_err(&m, "{}"), "", "GPUs with the default resource name, CPUs and memory are fine");
    m.cpu = 0.0001;
    is_str(check_err(&m, "{}"), "resources.cpu: 0.0001 is below Kubernetes' smallest unit, 1m (0.001)", "too small a CPU share");
}

static void test_body(void)
{
    struct manifest m = base_manifest();
    cJSON *s, *b = job_for(&m, "{}", 1, &s);
    is_str(js(jp(b, "apiVersion", NULL)), "batch/v1", "apiVersion batch/v1");
    is_str(js(jp(b, "kind", NULL)), "Job", "kind Job");
    is_str(js(jp(b, "metadata", "name", NULL)), "stepop-01j9zqk8v3n4m5p6q7r8s9t0ab", "named from the run id");
    is_str(js(jp(b, "metadata", "namespace", NULL)), "default", "in the namespace given");
    is_str(js(jp(b, "metadata", "labels", "stepop.io/run-id", NULL)), m.run_id, "labelled with the run id");
    is_str(js(jp(b, "metadata", "annotations", "stepop.io/run-uri", NULL)), m.run_uri, "annotated with the run URI");
    is_str(js(jp(b, "metadata", "annotations", "stepop.io/run-id", NULL)), m.run_id, "and the run id");
    is_str(js(jp(b, "spec", "template", "metadata", "labels", "stepop.io/run-id", NULL)), m.run_id, "the pod has the label too");
    is_int(jn(jp(b, "spec", "backoffLimit", NULL)), 0, "backoffLimit 0 by default");
    ok(!jp(b, "spec", "activeDeadlineSeconds", NULL), "no deadline without a timeout");
    ok(!jp(b, "spec", "ttlSecondsAfterFinished", NULL), "no TTL unless set");
    const cJSON *ps = jp(b, "spec", "template", "spec", NULL), *k = jp(ps, "containers", "#0", NULL);
    is_str(js(jp(ps, "restartPolicy", NULL)), "Never", "restartPolicy Never");
    is_int(jn(jp(ps, "terminationGracePeriodSeconds", NULL)), 30 + KUBE_GRACE_MARGIN_S, "termination grace: grace + margin");
    is_int(cJSON_GetArraySize(jp(ps, "containers", NULL)), 1, "one container");
    is_str(js(jp(k, "name", NULL)), "step", "called step");
    is_str(js(jp(k, "image", NULL)), m.image, "the step's image");
    is_str(js(jp(k, "command", "#0", NULL)), "stepop", "runs stepop");
    is_str(js(jp(k, "command", "#1", NULL)), "run", "run");
    ok(!jp(k, "args", NULL) && !jp(k, "imagePullPolicy", NULL) && !jp(ps, "initContainers", NULL), "no args, pull policy or init container");
    is_str(env_of(b, "STEPOP_MANIFEST"), "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB/manifest.json", "STEPOP_MANIFEST");
    is_str(env_of(b, "STEPOP_ATTEMPT"), "1", "STEPOP_ATTEMPT");
    ok(!env_of(b, "STEPOP_ATTEMPT_FROM_STATUS"), "no retries, no counting from the status");
    ok(!jp(k, "resources", "requests", NULL) && !jp(k, "resources", "limits", NULL), "no resources asked, none given");
    ok(!jp(ps, "volumes", NULL) && !jp(k, "volumeMounts", NULL), "no volumes");
    ok(!jp(ps, "hostNetwork", NULL) && !jp(ps, "nodeSelector", NULL) && !jp(ps, "serviceAccountName", NULL), "nothing unasked");
    cJSON_Delete(b);
    cJSON_Delete(s);

    m.cpu = 0.5;
    m.memory = (int64_t)4 << 30;
    m.gpus = 2;
    m.timeout_ms = 3600 * 1000;
    m.grace_ms = 45500;
    b = job_for(&m, "{\"gpu_resource\": \"amd.com/gpu\", \"retries\": 3, \"ttl_seconds_after_finished\": 0, "
                    "\"image_pull_policy\": \"Always\", \"shm_size\": \"2g\", \"pod_settings\": {\"env\": {\"B\": \"2\"}}}",
                4, &s);
    ps = jp(b, "spec", "template", "spec", NULL);
    k = jp(ps, "containers", "#0", NULL);
    is_str(js(jp(k, "resources", "requests", "cpu", NULL)), "500m", "half a CPU is 500m");
    is_str(js(jp(k, "resources", "limits", "cpu", NULL)), "500m", "requested and limited");
    is_str(js(jp(k, "resources", "limits", "memory", NULL)), "4294967296", "memory in bytes");
    is_str(js(jp(k, "resources", "requests", "memory", NULL)), "4294967296", "requested and limited");
    is_str(js(jp(k, "resources", "limits", "amd.com/gpu", NULL)), "2", "GPUs as a limit on amd.com/gpu");
    ok(!jp(k, "resources", "limits", "nvidia.com/gpu", NULL) && !jp(k, "resources", "requests", "amd.com/gpu", NULL),
       "and nothing else for GPUs");
    is_int(jn(jp(b, "spec", "backoffLimit", NULL)), 3, "retries become backoffLimit");
    is_int(jn(jp(b, "spec", "ttlSecondsAfterFinished", NULL)), 0, "a TTL of 0 is kept");
    is_int(jn(jp(b, "spec", "activeDeadlineSeconds", NULL)), 3600 + 46 + KUBE_DEADLINE_MARGIN_S,
           "deadline: timeout + grace (rounded up) + margin");
    is_int(jn(jp(ps, "terminationGracePeriodSeconds", NULL)), 46 + KUBE_GRACE_MARGIN_S, "grace rounded up + margin");
    is_str(js(jp(k, "imagePullPolicy", NULL)), "Always", "the pull policy");
    is_str(env_of(b, "STEPOP_ATTEMPT"), "4", "the job's attempt");
    is_str(env_of(b, "B"), "2", "env as an object becomes name and value");
    is_str(env_of(b, "STEPOP_ATTEMPT_FROM_STATUS"), "1", "with retries a restarted pod counts on from the run's status");
    const cJSON *shm = jp(ps, "volumes", "#0", NULL);
    is_str(js(jp(shm, "name", NULL)), KUBE_VOLUME_SHM, "a shm volume");
    is_str(js(jp(shm, "emptyDir", "medium", NULL)), "Memory", "in memory");
    is_str(js(jp(shm, "emptyDir", "sizeLimit", NULL)), "2147483648", "of the size set (Docker's 2g is 2 GiB)");
    is_str(js(jp(k, "volumeMounts", "#0", "mountPath", NULL)), "/dev/shm", "mounted at /dev/shm");
    cJSON_Delete(b);
    cJSON_Delete(s);

    m = base_manifest();
    m.cpu = 2;
    m.gpus = 1;
    b = job_for(&m, "{\"inject\": true, \"inject_image\": \"ghcr.io/x/stepop:1\"}", 1, &s);
    ps = jp(b, "spec", "template", "spec", NULL);
    k = jp(ps, "containers", "#0", NULL);
    is_str(js(jp(k, "resources", "limits", "cpu", NULL)), "2", "whole CPUs without a unit");
    is_str(js(jp(k, "resources", "limits", "nvidia.com/gpu", NULL)), "1", "GPUs on nvidia.com/gpu by default");
    is_str(js(jp(k, "command", "#0", NULL)), KUBE_INJECT_PATH, "inject: the step runs the injected binary");
    const cJSON *init = jp(ps, "initContainers", "#0", NULL);
    is_str(js(jp(init, "image", NULL)), "ghcr.io/x/stepop:1", "from an init container of the stepop image");
    is_str(js(jp(init, "command", "#0", NULL)), "/stepop", "which runs /stepop by default");
    is_str(js(jp(init, "command", "#1", NULL)), "install", "install");
    is_str(js(jp(init, "command", "#2", NULL)), KUBE_INJECT_PATH, "to the shared path");
    is_str(js(jp(init, "volumeMounts", "#0", "name", NULL)), KUBE_VOLUME_BIN, "through a shared volume");
    is_str(js(jp(init, "resources", "limits", "cpu", NULL)), "2", "with the step's CPUs (the pod asks no more)");
    is_str(js(jp(init, "resources", "requests", "cpu", NULL)), "2", "requested and limited (the QoS class stays)");
    ok(!jp(init, "resources", "limits", "nvidia.com/gpu", NULL) && !jp(init, "resources", "limits", "memory", NULL),
       "and no GPUs, nor memory the step did not ask for");
    is_str(js(jp(ps, "volumes", "#0", "name", NULL)), KUBE_VOLUME_BIN, "the volume");
    ok(cJSON_IsObject(jp(ps, "volumes", "#0", "emptyDir", NULL)), "is an emptyDir");
    ok(cJSON_IsTrue(jp(k, "volumeMounts", "#0", "readOnly", NULL)), "read-only in the step's container");
    is_str(js(jp(k, "volumeMounts", "#0", "mountPath", NULL)), KUBE_INJECT_DIR, "at " KUBE_INJECT_DIR);
    cJSON_Delete(b);
    cJSON_Delete(s);

    m = base_manifest();
    b = job_for(&m, "{\"inject\": true, \"inject_image\": \"stepop:cuda\", \"inject_binary\": \"/usr/local/bin/stepop\"}", 1, &s);
    is_str(js(jp(b, "spec", "template", "spec", "initContainers", "#0", "command", "#0", NULL)), "/usr/local/bin/stepop",
           "or settings.inject_binary");
    cJSON_Delete(b);
    cJSON_Delete(s);

    m = base_manifest();
    b = job_for(&m, "{\"namespace\": \"ml\", \"host_network\": true, \"service_account_name\": \"trainer\", "
                    "\"priority_class_name\": \"high\", \"runtime_class_name\": \"nvidia\", \"pod_settings\": "
                    "{\"node_selectors\": {\"gpu\": \"h100\"}, \"affinity\": {\"nodeAffinity\": {\"x\": 1}}, "
                    "\"tolerations\": [{\"key\": \"gpu\", \"operator\": \"Exists\"}], \"labels\": {\"team\": \"ml\"}, "
                    "\"annotations\": {\"note\": \"hi\"}, \"volumes\": [{\"name\": \"data\", \"persistentVolumeClaim\": "
                    "{\"claimName\": \"data\"}}], \"volume_mounts\": [{\"name\": \"data\", \"mountPath\": \"/data\"}], "
                    "\"host_ipc\": true, \"scheduler_name\": \"volcano\", \"image_pull_secrets\": [\"regcred\"], "
                    "\"env\": [{\"name\": \"A\", \"value\": \"1\"}, {\"name\": \"TOKEN\", \"valueFrom\": {\"secretKeyRef\": "
                    "{\"name\": \"t\", \"key\": \"k\"}}}], \"env_from\": [{\"configMapRef\": {\"name\": \"cm\"}}], "
                    "\"security_context\": {\"runAsUser\": 1000}, \"resources\": {\"limits\": {\"ephemeral-storage\": "
                    "\"10Gi\"}}}}",
                1, &s);
    ps = jp(b, "spec", "template", "spec", NULL);
    k = jp(ps, "containers", "#0", NULL);
    is_str(js(jp(b, "metadata", "namespace", NULL)), "ml", "the namespace set");
    ok(cJSON_IsTrue(jp(ps, "hostNetwork", NULL)), "hostNetwork");
    is_str(js(jp(ps, "dnsPolicy", NULL)), "ClusterFirstWithHostNet", "with the cluster's DNS");
    is_str(js(jp(ps, "serviceAccountName", NULL)), "trainer", "serviceAccountName");
    is_str(js(jp(ps, "priorityClassName", NULL)), "high", "priorityClassName");
    is_str(js(jp(ps, "runtimeClassName", NULL)), "nvidia", "runtimeClassName");
    is_str(js(jp(ps, "nodeSelector", "gpu", NULL)), "h100", "nodeSelector from node_selectors");
    is_int(jn(jp(ps, "affinity", "nodeAffinity", "x", NULL)), 1, "affinity as given");
    is_str(js(jp(ps, "tolerations", "#0", "key", NULL)), "gpu", "tolerations");
    ok(cJSON_IsTrue(jp(ps, "hostIPC", NULL)), "hostIPC from host_ipc");
    is_str(js(jp(ps, "schedulerName", NULL)), "volcano", "schedulerName");
    is_str(js(jp(ps, "imagePullSecrets", "#0", "name", NULL)), "regcred", "imagePullSecrets as references");
    is_int(jn(jp(ps, "securityContext", "runAsUser", NULL)), 1000, "securityContext");
    is_str(js(jp(ps, "volumes", "#0", "persistentVolumeClaim", "claimName", NULL)), "data", "the user's volume");
    is_str(js(jp(k, "volumeMounts", "#0", "mountPath", NULL)), "/data", "and its mount");
    is_str(js(jp(k, "envFrom", "#0", "configMapRef", "name", NULL)), "cm", "envFrom");
    is_str(env_of(b, "A"), "1", "the user's env");
    ok(jp(k, "env", "#1", "valueFrom", "secretKeyRef", NULL) != NULL, "valueFrom kept");
    is_str(env_of(b, "STEPOP_MANIFEST") ? "set" : NULL, "set", "and the flavor's after it");
    is_str(js(jp(k, "resources", "limits", "ephemeral-storage", NULL)), "10Gi", "extra resources from pod_settings");
    is_str(js(jp(b, "metadata", "labels", "team", NULL)), "ml", "the user's labels on the Job");
    is_str(js(jp(b, "spec", "template", "metadata", "labels", "team", NULL)), "ml", "and on the pod");
    is_str(js(jp(b, "metadata", "labels", "stepop.io/run-id", NULL)), m.run_id, "beside stepop's own");
    is_str(js(jp(b, "spec", "template", "metadata", "annotations", "note", NULL)), "hi", "the user's annotations");
    is_str(js(jp(b, "spec", "template", "metadata", "annotations", "stepop.io/run-uri", NULL)), m.run_uri, "beside stepop's");
    cJSON_Delete(b);
    cJSON_Delete(s);

    m = base_manifest();
    b = job_for(&m, "{\"namespace\": null, \"retries\": null, \"pod_settings\": {\"node_selectors\": null, \"affinity\": "
                    "null, \"tolerations\": null, \"labels\": null, \"volumes\": null, \"volume_mounts\": null, "
                    "\"host_ipc\": null, \"image_pull_secrets\": null, \"env\": null, \"env_from\": null, "
                    "\"resources\": null, \"security_context\": null, \"scheduler_name\": null}}",
                1, &s);
    ps = jp(b, "spec", "template", "spec", NULL);
    k = jp(ps, "containers", "#0", NULL);
    ok(!jp(ps, "nodeSelector", NULL) && !jp(ps, "affinity", NULL) && !jp(ps, "hostIPC", NULL) && !jp(ps, "volumes", NULL) &&
           !jp(ps, "imagePullSecrets", NULL) && !jp(k, "envFrom", NULL) && !jp(ps, "schedulerName", NULL),
       "settings that are null are as if absent");
    is_int(cJSON_GetArraySize(jp(k, "env", NULL)), 2, "only stepop's variables");
    is_int(jn(jp(b, "spec", "backoffLimit", NULL)), 0, "and the default retries");
    cJSON_Delete(b);
    cJSON_Delete(s);
}

int main(void)
{
    test_names();
    test_settings();
    test_check();
    test_body();
    return tap_done();
}
