/* The spark flavor's own parts: settings.c (the settings and what is refused), argv.c (the
 * spark-submit argv, its --conf properties and the driver pod template) and lifecycle.c
 * (flavor_spark_ops). On Kubernetes in cluster mode the driver pod runs `stepop run --exec --
 * <Spark's entrypoint and arguments>` through a generated pod template, and the follow loop reads
 * the driver pod through cloud/kube/ with the kubernetes flavor's pod-state code; with any other
 * master the driver runs in client mode under a local `stepop run --exec -- spark-submit ...`
 * (flavor_local_spawn). Settings and behaviour: docs/flavors.md#spark. */
#ifndef STEPOP_FLAVOR_SPARK_H
#define STEPOP_FLAVOR_SPARK_H

#include "../flavor.h"

#include <cjson/cJSON.h>

/* The driver's container in the pod template (spark.kubernetes.driver.podTemplateContainerName):
 * Spark's own default name for it. */
#define SPARK_DRIVER_CONTAINER "spark-kubernetes-driver"
/* Defaults: Spark's image entrypoint (resource-managers/kubernetes/docker/.../entrypoint.sh), the
 * GPU discovery script Spark ships in its images, and stepop inside the image. */
#define SPARK_DEFAULT_ENTRYPOINT "/opt/entrypoint.sh"
#define SPARK_DEFAULT_GPU_SCRIPT "/opt/spark/examples/src/main/scripts/getGpusResources.sh"
#define SPARK_DEFAULT_STEPOP "stepop"

enum spark_master { SPARK_K8S, SPARK_STANDALONE, SPARK_YARN, SPARK_LOCAL };
enum spark_app { SPARK_APP_PYTHON, SPARK_APP_JAR, SPARK_APP_R };

/* The settings, checked, with defaults. Strings and objects point into the settings. */
struct spark_cfg {
    const char *master;
    enum spark_master kind;
    int cluster;                       /* deploy mode cluster (the default on Kubernetes) */
    const char *spark_submit;          /* the setting, else $SPARK_HOME/bin/spark-submit, else
                                          "spark-submit" (looked up on PATH) */
    const char *main_class;            /* --class, for a jar */
    const char *context, *namespace;   /* Kubernetes; NULL: the kubeconfig's choice */
    const char *service_account;       /* spark.kubernetes.authenticate.driver.serviceAccountName */
    const char *executor_memory;       /* Spark's size format ("4g") */
    int executor_cores, executor_instances, executor_gpus; /* 0: not set */
    const char *gpu_discovery_script;
    const char *stepop_path;           /* stepop inside the image */
    const char *spark_entrypoint;      /* the image's own entrypoint, run under stepop */
    const char *image_pull_policy;     /* NULL: Spark's default */
    int host_network;                  /* the driver pod uses the node's network (a loopback store) */
    int keep;                          /* cleanup leaves the driver pod */
    const cJSON *conf;                 /* property -> string, passed through as --conf */
    const cJSON *secret_env;           /* NAME -> "secret:key", Kubernetes secrets for driver and executors */
    char spark_home_submit[1024];      /* storage for spark_submit from $SPARK_HOME */
};

/* ---- settings.c ---- */

/* Parses and checks the settings; unknown ones are refused, naming them. */
int spark_parse_settings(const cJSON *s, struct spark_cfg *c, struct err *e);
/* Refuses what the job asks that this master and deploy mode cannot give, with Spark's own reason
 * where Spark has one; *app gets the application's kind. */
int spark_check_job(const struct job *j, const struct spark_cfg *c, enum spark_app *app, struct err *e);
/* A --conf property (or an environment value) that looks like a credential: -1 with e set. */
int spark_check_conf(const char *what, const char *key, const char *value, struct err *e);

/* ---- argv.c ---- */

/* The driver pod's name: <kubernetes flavor's Job name>-driver; caller frees. */
char *spark_driver_pod_name(const struct manifest *m);
/* spark-submit's argv, NULL-terminated (caller frees with spark_argv_free). namespace: the one
 * resolved (cluster mode on Kubernetes, else NULL); template_path: where the pod template is
 * written (cluster mode on Kubernetes). */
char **spark_argv(const struct job *j, const struct spark_cfg *c, enum spark_app app, const char *namespace,
                  const char *template_path);
void spark_argv_free(char **argv);
/* The driver pod template (cluster mode on Kubernetes). */
cJSON *spark_pod_template(const struct job *j, const struct spark_cfg *c);
/* The driver's environment as --dry-run shows it: names to values, secrets as "<secret NAME key
 * KEY>". */
cJSON *spark_driver_env(const struct job *j, const struct spark_cfg *c);

#endif
