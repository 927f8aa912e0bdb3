/* The modal flavor's settings (parsed, checked, with their defaults), the GPU string and the
 * checks of a job against them. */
#include "modal.h"

#include "../../runtime/units.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const md_known_settings[] = {
    "app", "environment", "server_url", "gpu_type", "regions", "cloud", "nonpreemptible", "workdir",
    "entrypoint", "pass_env", "private_registry", "image_build_timeout", NULL,
};

/* Modal's most GPUs in one container. */
#define MD_MAX_GPUS 8

static int md_only(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

#define MD_ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

int md_parse_gpu(const char *gpu, char *type, size_t type_len, int *count, struct err *e)
{
    const char *colon = strchr(gpu, ':');
    size_t n = colon ? (size_t)(colon - gpu) : strlen(gpu);
    *count = 0;
    if (!n || n >= type_len || n > 32)
        return err_set(e, ERR_INVALID, "settings.gpu_type: \"%s\": expected a Modal GPU type (T4, L4, A10G, A100-80GB, "
                                       "L40S, H100, H200, B200 ...), optionally with :COUNT", gpu);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)gpu[i];
        if (!isalnum(ch) && ch != '-' && ch != '!' && ch != '+')
            return err_set(e, ERR_INVALID, "settings.gpu_type: \"%s\": a GPU type is letters, digits, '-', '!' and "
                                           "'+' (H100, A100-80GB, H100!)", gpu);
        type[i] = (char)toupper(ch);
    }
    type[n] = 0;
    if (colon) {
        char *end;
        long c = strtol(colon + 1, &end, 10);
        if (!isdigit((unsigned char)colon[1]) || *end || c < 1 || c > MD_MAX_GPUS)
            return err_set(e, ERR_INVALID, "settings.gpu_type: \"%s\": the count after ':' is a whole number from 1 "
                                           "to %d (Modal's most GPUs per container)", gpu, MD_MAX_GPUS);
        *count = (int)c;
    }
    return 0;
}

int md_parse_settings(const cJSON *s, struct md_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    if (flavor_check_settings(s, "modal", md_known_settings, e) < 0)
        return -1;
    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(s, "image_build_timeout");
    if (flavor_setting_str(s, "app", MD_DEFAULT_APP, &c->app, e) < 0 ||
        flavor_setting_str(s, "environment", NULL, &c->environment, e) < 0 ||
        flavor_setting_str(s, "server_url", NULL, &c->server_url, e) < 0 ||
        flavor_setting_str(s, "gpu_type", NULL, &c->gpu_type, e) < 0 ||
        flavor_setting_str(s, "cloud", NULL, &c->cloud, e) < 0 ||
        flavor_setting_str(s, "workdir", NULL, &c->workdir, e) < 0 ||
        flavor_setting_bool(s, "nonpreemptible", 0, &c->nonpreemptible, e) < 0 ||
        flavor_setting_bool(s, "private_registry", 0, &c->private_registry, e) < 0 ||
        flavor_setting_str_list(s, "regions", &c->regions, e) < 0 ||
        flavor_setting_str_list(s, "entrypoint", &c->entrypoint, e) < 0 ||
        flavor_setting_str_list(s, "pass_env", &c->pass_env, e) < 0)
        return -1;
    /* Modal's object names: letters, digits, '-', '_' and '.', under 64 characters. */
    if (!c->app[0] || strlen(c->app) > 63 || !md_only(c->app, MD_ALNUM "-_."))
        return err_set(e, ERR_INVALID, "settings.app: \"%s\" is not a Modal app name (letters, digits, '-', '_', '.'; "
                                       "at most 63)", c->app);
    if (c->environment && (strlen(c->environment) > 63 || !md_only(c->environment, MD_ALNUM "-_.")))
        return err_set(e, ERR_INVALID, "settings.environment: \"%s\" is not a Modal environment name",
                       c->environment);
    if (c->server_url) {
        static const char *const schemes[] = { "http", "https", NULL };
        struct url u;
        if (url_endpoint("settings.server_url", c->server_url, schemes, &u, e) < 0)
            return -1;
        url_free(&u);
    }
    if (c->gpu_type) {
        char type[64];
        if (md_parse_gpu(c->gpu_type, type, sizeof type, &c->gpu_count, e) < 0)
            return -1;
    }
    if (c->cloud && strcmp(c->cloud, "aws") && strcmp(c->cloud, "gcp") && strcmp(c->cloud, "oci") &&
        strcmp(c->cloud, "auto"))
        return err_set(e, ERR_INVALID, "settings.cloud: \"%s\": expected aws, gcp, oci or auto", c->cloud);
    if (c->workdir && c->workdir[0] != '/')
        return err_set(e, ERR_INVALID, "settings.workdir: \"%s\": expected an absolute path", c->workdir);
    if (cJSON_GetArraySize(c->entrypoint) > 8)
        return err_set(e, ERR_INVALID, "settings.entrypoint: at most 8 words");
    if (cJSON_GetArraySize(c->regions) > MD_MAX_REGIONS)
        return err_set(e, ERR_INVALID, "settings.regions: at most %d", MD_MAX_REGIONS);
    for (const cJSON *it = c->regions ? c->regions->child : NULL; it; it = it->next)
        if (strlen(it->valuestring) > 64 || !md_only(it->valuestring, MD_ALNUM "-_"))
            return err_set(e, ERR_INVALID, "settings.regions: \"%s\" is not a region (us-east, eu, us-west-2, ...)",
                           it->valuestring);
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *n = it->valuestring;
        if (!(isalpha((unsigned char)n[0]) || n[0] == '_') || !md_only(n, MD_ALNUM "_"))
            return err_set(e, ERR_INVALID, "settings.pass_env: \"%s\" is not a variable name ([a-zA-Z_][a-zA-Z0-9_]*)", n);
        if (str_has_prefix(n, "STEPOP_MANIFEST") || str_has_prefix(n, "STEPOP_ATTEMPT"))
            return err_set(e, ERR_INVALID, "settings.pass_env: %s is set by the flavor itself", n);
        if (!strcmp(n, "MODAL_TOKEN_ID") || !strcmp(n, "MODAL_TOKEN_SECRET"))
            return err_set(e, ERR_INVALID, "settings.pass_env: %s is a Modal credential; the sandbox does not need it",
                           n);
    }
    c->image_build_timeout_s = 7200;
    if (cJSON_IsString(bt)) {
        int64_t ms;
        if (units_parse_duration(bt->valuestring, &ms, e) < 0)
            return err_prefix(e, "settings.image_build_timeout: ");
        if (ms < 1000 || ms > 24LL * 3600 * 1000)
            return err_set(e, ERR_INVALID, "settings.image_build_timeout: expected from 1s to 24h");
        c->image_build_timeout_s = ms / 1000;
    } else if (cJSON_IsNumber(bt)) {
        if (bt->valuedouble != floor(bt->valuedouble) || bt->valuedouble < 1 || bt->valuedouble > 86400)
            return err_set(e, ERR_INVALID, "settings.image_build_timeout: expected whole seconds from 1 to 86400");
        c->image_build_timeout_s = (int64_t)bt->valuedouble;
    } else if (bt && !cJSON_IsNull(bt)) {
        return err_set(e, ERR_INVALID, "settings.image_build_timeout: expected a duration (\"30m\") or seconds");
    }
    return 0;
}

static int64_t md_ceil_s(int64_t ms)
{
    return (ms + 999) / 1000;
}

int md_check_job(const struct job *j, struct md_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (flavor_check_image(m, "modal", e) < 0)
        return -1;
    if (m->gpus > MD_MAX_GPUS)
        return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked; a Modal container has at most %d", m->gpus,
                       MD_MAX_GPUS);
    if (m->gpus > 0 && !c->gpu_type)
        return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked and settings.gpu_type is not set: name the GPU "
                                       "type (T4, L4, A10G, A100-80GB, L40S, H100, H200, B200; docs/flavors.md#modal)",
                       m->gpus);
    if (c->gpu_type && c->gpu_count && m->gpus > 0 && m->gpus != c->gpu_count)
        return err_set(e, ERR_INVALID, "resources.gpus: %d GPUs asked, and settings.gpu_type %s gives %d", m->gpus,
                       c->gpu_type, c->gpu_count);
    if (c->gpu_type && !c->gpu_count)
        c->gpu_count = m->gpus > 0 ? m->gpus : 1;
    if (m->cpu > 0 && (m->cpu * 1000 < 1 || m->cpu > 64))
        return err_set(e, ERR_INVALID, "resources.cpu: %g: a Modal sandbox takes from 0.001 to 64 CPUs", m->cpu);
    if (m->memory > 0 && m->memory > 344LL * 1024 * 1024 * 1024)
        return err_set(e, ERR_INVALID, "resources.memory: a Modal sandbox takes at most 344 GiB");
    int64_t t = m->timeout_ms > 0 ? md_ceil_s(m->timeout_ms) + md_ceil_s(m->grace_ms) : 0;
    if (t > MD_MAX_TIMEOUT_S)
        return err_set(e, ERR_INVALID, "timeout: %llds with the %llds grace period is over Modal's 24 h limit on a "
                                       "sandbox (%llds)", (long long)md_ceil_s(m->timeout_ms),
                       (long long)md_ceil_s(m->grace_ms), MD_MAX_TIMEOUT_S);
    /* The sandbox runs in Modal's cloud: a file:// store is on this machine only, a loopback one
     * too, unless Modal itself is on this machine (a local fake at server_url). */
    if (strncmp(m->run_uri, "file:", 5) == 0)
        return err_set(e, ERR_INVALID, "the run's store %s is on this machine, which a Modal sandbox cannot see: use "
                                       "an s3://, gs:// or az:// store", m->run_uri);
    const char *server = c->server_url ? c->server_url : getenv("MODAL_SERVER_URL");
    if (!server || !server[0] || !url_is_loopback(server)) {
        const char *bad = url_is_loopback(m->run_uri) ? "the run's store" : NULL;
        for (int i = 0; !bad && i < m->input_count; i++)
            if (url_is_loopback(m->inputs[i].uri) || strncmp(m->inputs[i].uri, "file:", 5) == 0)
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && (url_is_loopback(m->outputs[i].uri) || strncmp(m->outputs[i].uri, "file:", 5) == 0))
                bad = m->outputs[i].name;
        if (bad)
            return err_set(e, ERR_INVALID, "%s is on this machine, which a Modal sandbox cannot reach: use a cloud "
                                           "store", bad);
    }
    if (c->private_registry && (!getenv("REGISTRY_USERNAME") || !getenv("REGISTRY_PASSWORD")))
        return err_set(e, ERR_AUTH, "settings.private_registry: REGISTRY_USERNAME and REGISTRY_PASSWORD must be set "
                                    "in the submitting environment (they become an ephemeral Modal secret)");
    return 0;
}
