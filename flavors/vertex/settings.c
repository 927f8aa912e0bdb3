/* The vertex flavor's settings (parsed, checked, with their defaults), the table of machine types
 * and accelerators, and the checks of a job against them. */
#include "vertex.h"

#include "../../runtime/units.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const vx_known_settings[] = {
    "project", "location", "api_endpoint", "logging_endpoint", "machine_type", "accelerator_type",
    "accelerator_count", "boot_disk_type", "boot_disk_size_gb", "strategy", "max_wait",
    "restart_job_on_worker_restart", "service_account", "network", "reserved_ip_ranges", "persistent_resource_id",
    "enable_web_access", "base_output_dir", "kms_key_name", "entrypoint", "pass_env", "labels", NULL,
};

#define VX_LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"

/* A whole number within [min, max]; fallback when absent. */
static int vx_int(const cJSON *s, const char *key, int64_t fallback, int64_t min, int64_t max, int64_t *out,
                  struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    *out = fallback;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
        v->valuedouble > (double)max)
        return err_set(e, ERR_INVALID, "settings.%s: expected a whole number from %lld to %lld", key, (long long)min,
                       (long long)max);
    *out = (int64_t)v->valuedouble;
    return 0;
}

/* Seconds, as a whole number or a duration ("2h"); 0 when absent. */
static int vx_seconds(const cJSON *s, const char *key, int64_t max, int64_t *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    if (cJSON_IsString(v)) {
        int64_t ms;
        if (units_parse_duration(v->valuestring, &ms, e) < 0)
            return err_prefix(e, "settings.%s: ", key);
        if (ms % 1000 || ms <= 0 || ms / 1000 > max)
            return err_set(e, ERR_INVALID, "settings.%s: expected whole seconds from 1s to %llds", key, (long long)max);
        *out = ms / 1000;
        return 0;
    }
    return vx_int(s, key, 0, 1, max, out, e);
}

static int vx_only(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

/* An endpoint setting: a URL without a path, or a bare host (as Google's client options take it),
 * which means https. */
static int vx_endpoint(const char *key, const char *v, struct err *e)
{
    static const char *const schemes[] = { "http", "https", NULL };
    char *url = strstr(v, "://") ? xstrdup(v) : xasprintf("https://%s", v);
    char *what = xasprintf("settings.%s", key);
    struct url u;
    int rc = url_endpoint(what, url, schemes, &u, e);
    if (rc == 0)
        url_free(&u);
    free(what);
    free(url);
    return rc;
}

/* A label key as Vertex AI takes it: [a-z][a-z0-9_-]{0,62} (ASCII; international letters are
 * allowed by the API but not by stepop, which keeps its checks exact). */
static int vx_label_key_ok(const char *k)
{
    return k[0] >= 'a' && k[0] <= 'z' && strlen(k) <= VX_LABEL_MAX && vx_only(k, VX_LOWER_DIGITS "_-");
}

static int vx_label_value_ok(const char *v)
{
    return strlen(v) <= VX_LABEL_MAX && vx_only(v, VX_LOWER_DIGITS "_-");
}

/* The NVIDIA accelerators of Vertex AI's AcceleratorType enum (TPUs are not CUDA GPUs). */
static const char *const vx_gpu_types[] = {
    "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100",  "NVIDIA_TESLA_P4",       "NVIDIA_TESLA_T4",   "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",  "NVIDIA_L4",          "NVIDIA_H100_80GB",      "NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB",
    "NVIDIA_B200",       NULL,
};

static int vx_gpu_type_known(const char *t)
{
    for (const char *const *p = vx_gpu_types; *p; p++)
        if (!strcmp(*p, t))
            return 1;
    return 0;
}

int vx_parse_settings(const cJSON *s, struct vx_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    if (flavor_check_settings(s, "vertex", vx_known_settings, e) < 0)
        return -1;
    const char *strategy;
    int64_t count;
    if (flavor_setting_str(s, "project", NULL, &c->project, e) < 0 ||
        flavor_setting_str(s, "location", VX_DEFAULT_LOCATION, &c->location, e) < 0 ||
        flavor_setting_str(s, "api_endpoint", NULL, &c->api_endpoint, e) < 0 ||
        flavor_setting_str(s, "logging_endpoint", NULL, &c->logging_endpoint, e) < 0 ||
        flavor_setting_str(s, "machine_type", VX_DEFAULT_MACHINE, &c->machine_type, e) < 0 ||
        flavor_setting_str(s, "accelerator_type", NULL, &c->accelerator_type, e) < 0 ||
        flavor_setting_str(s, "boot_disk_type", "pd-ssd", &c->boot_disk_type, e) < 0 ||
        flavor_setting_str(s, "strategy", "STANDARD", &strategy, e) < 0 ||
        flavor_setting_str(s, "service_account", NULL, &c->service_account, e) < 0 ||
        flavor_setting_str(s, "network", NULL, &c->network, e) < 0 ||
        flavor_setting_str(s, "persistent_resource_id", NULL, &c->persistent_resource_id, e) < 0 ||
        flavor_setting_str(s, "base_output_dir", NULL, &c->base_output_dir, e) < 0 ||
        flavor_setting_str(s, "kms_key_name", NULL, &c->kms_key_name, e) < 0 ||
        flavor_setting_bool(s, "restart_job_on_worker_restart", 0, &c->restart_job_on_worker_restart, e) < 0 ||
        flavor_setting_bool(s, "enable_web_access", 0, &c->enable_web_access, e) < 0 ||
        vx_int(s, "accelerator_count", 0, 1, 16, &count, e) < 0 ||
        vx_int(s, "boot_disk_size_gb", 100, 100, 64000, &c->boot_disk_size_gb, e) < 0 ||
        vx_seconds(s, "max_wait", 7LL * 24 * 3600, &c->max_wait_s, e) < 0 ||
        flavor_setting_str_list(s, "reserved_ip_ranges", &c->reserved_ip_ranges, e) < 0 ||
        flavor_setting_str_list(s, "entrypoint", &c->entrypoint, e) < 0 ||
        flavor_setting_str_list(s, "pass_env", &c->pass_env, e) < 0)
        return -1;
    c->accelerator_count = (int)count;
    if (!strcmp(strategy, "STANDARD"))
        c->strategy = VX_STANDARD;
    else if (!strcmp(strategy, "SPOT"))
        c->strategy = VX_SPOT;
    else if (!strcmp(strategy, "FLEX_START"))
        c->strategy = VX_FLEX_START;
    else
        return err_set(e, ERR_INVALID, "settings.strategy: \"%s\": expected STANDARD, SPOT or FLEX_START", strategy);
    if (c->max_wait_s && c->strategy != VX_FLEX_START)
        return err_set(e, ERR_INVALID, "settings.max_wait: only with strategy FLEX_START (Vertex AI's maxWaitDuration "
                                       "bounds the wait for flex-start capacity)");
    if (c->project && (!c->project[0] || strlen(c->project) > 100 || !vx_only(c->project, VX_LOWER_DIGITS "-.:")))
        return err_set(e, ERR_INVALID, "settings.project: \"%s\" is not a Google Cloud project id", c->project);
    if (!c->location[0] || strlen(c->location) > 64 || !vx_only(c->location, VX_LOWER_DIGITS "-"))
        return err_set(e, ERR_INVALID, "settings.location: \"%s\" is not a Vertex AI region (us-central1, "
                                       "europe-west4, ...)", c->location);
    if (c->api_endpoint && vx_endpoint("api_endpoint", c->api_endpoint, e) < 0)
        return -1;
    if (c->logging_endpoint && vx_endpoint("logging_endpoint", c->logging_endpoint, e) < 0)
        return -1;
    if (!c->machine_type[0] || strlen(c->machine_type) > 64 || !vx_only(c->machine_type, VX_LOWER_DIGITS "-"))
        return err_set(e, ERR_INVALID, "settings.machine_type: \"%s\" is not a Compute Engine machine type "
                                       "(n1-standard-4, a2-highgpu-1g, ...)", c->machine_type);
    if (c->accelerator_type && !vx_gpu_type_known(c->accelerator_type)) {
        if (!strncmp(c->accelerator_type, "TPU_", 4))
            return err_set(e, ERR_INVALID, "settings.accelerator_type: %s: TPUs are not GPUs stepop can check or "
                                           "give to a step; only NVIDIA GPUs", c->accelerator_type);
        return err_set(e, ERR_INVALID, "settings.accelerator_type: \"%s\" is not one of Vertex AI's NVIDIA "
                                       "accelerator types (NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ...; "
                                       "docs/flavors.md#vertex)", c->accelerator_type);
    }
    if (c->accelerator_count && !c->accelerator_type)
        return err_set(e, ERR_INVALID, "settings.accelerator_count: needs settings.accelerator_type");
    static const char *const disks[] = { "pd-ssd", "pd-standard", "pd-balanced", "hyperdisk-balanced", NULL };
    int disk_ok = 0;
    for (const char *const *d = disks; *d; d++)
        disk_ok |= !strcmp(*d, c->boot_disk_type);
    if (!disk_ok)
        return err_set(e, ERR_INVALID, "settings.boot_disk_type: \"%s\": expected pd-ssd, pd-standard, pd-balanced or "
                                       "hyperdisk-balanced", c->boot_disk_type);
    if (c->service_account) {
        const char *at = strchr(c->service_account, '@');
        if (!at || at == c->service_account || !at[1] || strchr(c->service_account, ' ') ||
            strlen(c->service_account) > 320)
            return err_set(e, ERR_INVALID, "settings.service_account: \"%s\" is not a service account e-mail address "
                                           "(NAME@PROJECT.iam.gserviceaccount.com)", c->service_account);
    }
    if (c->network && (!str_has_prefix(c->network, "projects/") || !strstr(c->network, "/global/networks/") ||
                       strchr(c->network, ' ')))
        return err_set(e, ERR_INVALID, "settings.network: \"%s\": expected projects/PROJECT_NUMBER/global/networks/NAME",
                       c->network);
    if (c->reserved_ip_ranges && !c->network)
        return err_set(e, ERR_INVALID, "settings.reserved_ip_ranges: only with settings.network (ranges of the peered "
                                       "network)");
    if (c->persistent_resource_id &&
        (!c->persistent_resource_id[0] || strlen(c->persistent_resource_id) > 63 ||
         !vx_only(c->persistent_resource_id, VX_LOWER_DIGITS "-")))
        return err_set(e, ERR_INVALID, "settings.persistent_resource_id: \"%s\" is not a persistent resource id "
                                       "([a-z0-9-], at most 63)", c->persistent_resource_id);
    if (c->base_output_dir && (!str_has_prefix(c->base_output_dir, "gs://") || !c->base_output_dir[5] ||
                               c->base_output_dir[5] == '/'))
        return err_set(e, ERR_INVALID, "settings.base_output_dir: expected gs://BUCKET/PREFIX, got \"%s\"",
                       c->base_output_dir);
    if (c->kms_key_name && (!str_has_prefix(c->kms_key_name, "projects/") || !strstr(c->kms_key_name, "/keyRings/") ||
                            !strstr(c->kms_key_name, "/cryptoKeys/") || strchr(c->kms_key_name, ' ')))
        return err_set(e, ERR_INVALID, "settings.kms_key_name: expected projects/P/locations/L/keyRings/R/cryptoKeys/K, "
                                       "got \"%s\"", c->kms_key_name);
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *n = it->valuestring;
        if (!(isalpha((unsigned char)n[0]) || n[0] == '_') ||
            !vx_only(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))
            return err_set(e, ERR_INVALID, "settings.pass_env: \"%s\" is not a variable name ([a-zA-Z_][a-zA-Z0-9_]*)", n);
        if (str_has_prefix(n, "STEPOP_MANIFEST") || str_has_prefix(n, "STEPOP_ATTEMPT"))
            return err_set(e, ERR_INVALID, "settings.pass_env: %s is set by the flavor itself", n);
    }
    c->labels = cJSON_GetObjectItemCaseSensitive(s, "labels");
    if (c->labels && cJSON_IsNull(c->labels))
        c->labels = NULL;
    if (c->labels) {
        if (!cJSON_IsObject(c->labels))
            return err_set(e, ERR_INVALID, "settings.labels: expected an object of strings");
        for (const cJSON *it = c->labels->child; it; it = it->next) {
            if (!cJSON_IsString(it))
                return err_set(e, ERR_INVALID, "settings.labels.%s: expected a string", it->string);
            if (str_has_prefix(it->string, "stepop-"))
                return err_set(e, ERR_INVALID, "settings.labels.%s: the stepop- labels are stepop's own", it->string);
            if (!vx_label_key_ok(it->string) || !vx_label_value_ok(it->valuestring))
                return err_set(e, ERR_INVALID, "settings.labels.%s: Vertex AI takes label keys [a-z][a-z0-9_-]* and "
                                               "values [a-z0-9_-]*, at most 63 characters each", it->string);
        }
        if (cJSON_GetArraySize(c->labels) > VX_LABELS_MAX - 2)
            return err_set(e, ERR_INVALID, "settings.labels: Vertex AI takes at most %d labels, 2 of them stepop's",
                           VX_LABELS_MAX);
    }
    return 0;
}

/* Machine types whose GPUs come with them (Compute Engine's GPU machine types: the A2, A3, A4
 * and G2 series). */
static const struct {
    const char *machine, *accelerator;
    int count;
} vx_fixed[] = {
    { "a2-highgpu-1g", "NVIDIA_TESLA_A100", 1 },   { "a2-highgpu-2g", "NVIDIA_TESLA_A100", 2 },
    { "a2-highgpu-4g", "NVIDIA_TESLA_A100", 4 },   { "a2-highgpu-8g", "NVIDIA_TESLA_A100", 8 },
    { "a2-megagpu-16g", "NVIDIA_TESLA_A100", 16 }, { "a2-ultragpu-1g", "NVIDIA_A100_80GB", 1 },
    { "a2-ultragpu-2g", "NVIDIA_A100_80GB", 2 },   { "a2-ultragpu-4g", "NVIDIA_A100_80GB", 4 },
    { "a2-ultragpu-8g", "NVIDIA_A100_80GB", 8 },   { "a3-highgpu-8g", "NVIDIA_H100_80GB", 8 },
    { "a3-megagpu-8g", "NVIDIA_H100_MEGA_80GB", 8 }, { "a3-ultragpu-8g", "NVIDIA_H200_141GB", 8 },
    { "a4-highgpu-8g", "NVIDIA_B200", 8 },         { "g2-standard-4", "NVIDIA_L4", 1 },
    { "g2-standard-8", "NVIDIA_L4", 1 },           { "g2-standard-12", "NVIDIA_L4", 1 },
    { "g2-standard-16", "NVIDIA_L4", 1 },          { "g2-standard-24", "NVIDIA_L4", 2 },
    { "g2-standard-32", "NVIDIA_L4", 1 },          { "g2-standard-48", "NVIDIA_L4", 4 },
    { "g2-standard-96", "NVIDIA_L4", 8 },
};

int vx_machine_fixed(const char *machine_type, const char **type, int *count)
{
    for (size_t i = 0; i < sizeof vx_fixed / sizeof *vx_fixed; i++)
        if (!strcmp(vx_fixed[i].machine, machine_type)) {
            *type = vx_fixed[i].accelerator;
            *count = vx_fixed[i].count;
            return 1;
        }
    return 0;
}

/* The accelerators an N1 machine takes, in which counts (Compute Engine's N1 GPU table). */
static int vx_n1_count_ok(const char *type, int count)
{
    if (!strcmp(type, "NVIDIA_TESLA_V100"))
        return count == 1 || count == 2 || count == 4 || count == 8;
    if (!strcmp(type, "NVIDIA_TESLA_T4") || !strcmp(type, "NVIDIA_TESLA_P4") || !strcmp(type, "NVIDIA_TESLA_P100"))
        return count == 1 || count == 2 || count == 4;
    return -1;
}

/* The series of a GPU machine type that is not in the table: a typo or a size stepop does not
 * know (a3-highgpu-1g), refused rather than sent. */
static int vx_gpu_series(const char *machine_type)
{
    static const char *const series[] = { "a2-", "a3-", "a4-", "a4x-", "g2-", "g4-", NULL };
    for (const char *const *p = series; *p; p++)
        if (str_has_prefix(machine_type, *p))
            return 1;
    return 0;
}

int vx_check_job(const struct job *j, struct vx_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (flavor_check_image(m, "vertex", e) < 0)
        return -1;
    if (m->cpu > 0)
        return err_set(e, ERR_INVALID, "resources.cpu: a custom job cannot ask for CPUs: the machine type decides "
                                       "(settings.machine_type %s); drop --cpu", c->machine_type);
    if (m->memory > 0)
        return err_set(e, ERR_INVALID, "resources.memory: a custom job cannot ask for memory: the machine type decides "
                                       "(settings.machine_type %s); drop --memory", c->machine_type);
    const char *fixed_type;
    int fixed_count;
    if (vx_machine_fixed(c->machine_type, &fixed_type, &fixed_count)) {
        if (!c->accelerator_type)
            return err_set(e, ERR_INVALID, "settings.accelerator_type: %s comes with %d %s; set accelerator_type to %s",
                           c->machine_type, fixed_count, fixed_type, fixed_type);
        if (strcmp(c->accelerator_type, fixed_type) != 0)
            return err_set(e, ERR_INVALID, "settings.accelerator_type: %s comes with %s, not %s", c->machine_type,
                           fixed_type, c->accelerator_type);
        if (c->accelerator_count && c->accelerator_count != fixed_count)
            return err_set(e, ERR_INVALID, "settings.accelerator_count: %s comes with %d %s, not %d", c->machine_type,
                           fixed_count, fixed_type, c->accelerator_count);
        c->accelerator_count = fixed_count;
    } else if (vx_gpu_series(c->machine_type)) {
        return err_set(e, ERR_INVALID, "settings.machine_type: %s is not in stepop's table of GPU machine types "
                                       "(docs/flavors.md#vertex): check the name, and pick one from the table",
                       c->machine_type);
    } else if (c->accelerator_type) {
        if (!str_has_prefix(c->machine_type, "n1-"))
            return err_set(e, ERR_INVALID, "settings.accelerator_type: %s takes no accelerator: GPUs attach to n1-* "
                                           "machine types, or come with the a2, a3, a4 and g2 types "
                                           "(docs/flavors.md#vertex)", c->machine_type);
        if (!c->accelerator_count)
            c->accelerator_count = m->gpus > 0 ? m->gpus : 1;
        int okc = vx_n1_count_ok(c->accelerator_type, c->accelerator_count);
        if (okc < 0)
            return err_set(e, ERR_INVALID, "settings.accelerator_type: %s does not attach to n1-* machine types (only "
                                           "NVIDIA_TESLA_T4, P4, P100 and V100 do); pick a machine type from the table",
                           c->accelerator_type);
        if (!okc)
            return err_set(e, ERR_INVALID, "settings.accelerator_count: %d %s on %s: n1-* machines take %s of them",
                           c->accelerator_count, c->accelerator_type, c->machine_type,
                           strcmp(c->accelerator_type, "NVIDIA_TESLA_V100") ? "1, 2 or 4" : "1, 2, 4 or 8");
    }
    if (m->gpus > 0) {
        if (!c->accelerator_type)
            return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked and settings.accelerator_type is not set: "
                                           "name the accelerator (NVIDIA_TESLA_T4 on n1-*, or a GPU machine type "
                                           "from docs/flavors.md#vertex)", m->gpus);
        if (c->accelerator_count < m->gpus)
            return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked, and the job gets %d %s on %s", m->gpus,
                           c->accelerator_count, c->accelerator_type, c->machine_type);
    }
    /* The job runs in Google Cloud: a file:// store is on this machine only, a loopback one too,
     * unless Vertex AI itself is on this machine (a local fake at api_endpoint). */
    if (strncmp(m->run_uri, "file:", 5) == 0)
        return err_set(e, ERR_INVALID, "the run's store %s is on this machine, which a custom job cannot see: use a "
                                       "gs:// store", m->run_uri);
    char *base = vx_api_base(c);
    int local = url_is_loopback(base);
    free(base);
    if (!local) {
        const char *bad = url_is_loopback(m->run_uri) ? "the run's store" : NULL;
        for (int i = 0; !bad && i < m->input_count; i++)
            if (url_is_loopback(m->inputs[i].uri) || strncmp(m->inputs[i].uri, "file:", 5) == 0)
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && (url_is_loopback(m->outputs[i].uri) || strncmp(m->outputs[i].uri, "file:", 5) == 0))
                bad = m->outputs[i].name;
        if (bad)
            return err_set(e, ERR_INVALID, "%s is on this machine, which a custom job in Google Cloud cannot reach: "
                                           "use a gs:// location", bad);
    }
    return 0;
}

char *vx_api_base(const struct vx_cfg *c)
{
    if (!c->api_endpoint)
        return xasprintf("https://%s-aiplatform.googleapis.com", c->location);
    char *b = strstr(c->api_endpoint, "://") ? xstrdup(c->api_endpoint) : xasprintf("https://%s", c->api_endpoint);
    size_t n = strlen(b);
    while (n && b[n - 1] == '/')
        b[--n] = 0;
    return b;
}
