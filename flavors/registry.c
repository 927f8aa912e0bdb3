#include "flavor.h"

#include <ctype.h>
#include <string.h>

extern const struct flavor_ops flavor_local_ops;
extern const struct flavor_ops flavor_docker_ops;
extern const struct flavor_ops flavor_kubernetes_ops;
extern const struct flavor_ops flavor_sagemaker_ops;
extern const struct flavor_ops flavor_vertex_ops;
extern const struct flavor_ops flavor_azureml_ops;
extern const struct flavor_ops flavor_modal_ops;
extern const struct flavor_ops flavor_spark_ops;
extern const struct flavor_ops flavor_plugin_ops;

/* The registry: adding a flavor touches only this table and its own file. */
static const struct flavor_info flavors[] = {
    { "local", "a `stepop run` child process on this machine",
      "the embedded default; work directory under the run; needs no configuration", &flavor_local_ops },
    { "docker", "Docker Engine API (Docker, Podman) over DOCKER_HOST",
      "container per step; GPUs via DeviceRequests (Docker) or CDI (Podman)", &flavor_docker_ops },
    { "kubernetes", "Kubernetes batch/v1 Jobs", "in-cluster or KUBECONFIG credentials", &flavor_kubernetes_ops },
    { "sagemaker", "Amazon SageMaker training jobs", "AWS credential chain; spot with checkpoints", &flavor_sagemaker_ops },
    { "vertex", "Google Vertex AI custom jobs", "Google application default credentials", &flavor_vertex_ops },
    { "azureml", "Azure Machine Learning command jobs", "Azure identity chain; compute clusters or serverless", &flavor_azureml_ops },
    { "spark", "spark-submit; Spark on Kubernetes with the driver pod from a template",
      "driver runs under stepop run (cluster mode on Kubernetes, client mode elsewhere)", &flavor_spark_ops },
    { "modal", "Modal sandboxes over Modal's gRPC API", "Modal token (MODAL_TOKEN_ID, ~/.modal.toml); GPU strings "
      "such as H100:2", &flavor_modal_ops },
    { "custom", "a plugin executable speaking the flavor protocol", "the plugin setting, or stepop-flavor-NAME on PATH (docs/plugins.md)", &flavor_plugin_ops },
};

const struct flavor_info *flavor_all(int *n)
{
    *n = (int)(sizeof flavors / sizeof flavors[0]);
    return flavors;
}

const struct flavor_ops *flavor_find(const char *name, struct err *e)
{
    for (size_t i = 0; i < sizeof flavors / sizeof flavors[0]; i++) {
        if (strcmp(flavors[i].name, name) != 0)
            continue;
        if (!flavors[i].ops) {
            err_set(e, ERR_UNSUPPORTED, "flavor \"%s\" is planned but not available in this build (see 'stepop flavor list')",
                    name);
            return NULL;
        }
        return flavors[i].ops;
    }
    err_set(e, ERR_USAGE, "unknown flavor \"%s\" (see 'stepop flavor list')", name);
    return NULL;
}

int flavor_setting_str(const cJSON *settings, const char *key, const char *fallback, const char **out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, key);
    if (!v || cJSON_IsNull(v)) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsString(v))
        return err_set(e, ERR_INVALID, "settings.%s: expected a string", key);
    *out = v->valuestring;
    return 0;
}

int flavor_setting_bool(const cJSON *settings, const char *key, int fallback, int *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, key);
    if (!v || cJSON_IsNull(v)) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return err_set(e, ERR_INVALID, "settings.%s: expected true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

int flavor_setting_str_list(const cJSON *settings, const char *key, const cJSON **out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v))
        return err_set(e, ERR_INVALID, "settings.%s: expected a list of strings", key);
    for (const cJSON *it = v->child; it; it = it->next)
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return err_set(e, ERR_INVALID, "settings.%s: expected a list of non-empty strings", key);
    *out = v;
    return 0;
}

int flavor_check_image(const struct manifest *m, const char *flavor, struct err *e)
{
    if (!m->image || !m->image[0])
        return err_set(e, ERR_INVALID, "the %s flavor needs an image (manifest \"image\", or --image)", flavor);
    for (const char *p = m->image; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return err_set(e, ERR_INVALID, "image \"%s\": a reference has no white space", m->image);
    return 0;
}

int flavor_check_settings(const cJSON *settings, const char *flavor, const char *const *known, struct err *e)
{
    for (const cJSON *it = settings ? settings->child : NULL; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            ok |= strcmp(*k, it->string) == 0;
        if (!ok)
            return err_set(e, ERR_INVALID, "settings.%s: not a setting of the %s flavor", it->string, flavor);
    }
    return 0;
}
