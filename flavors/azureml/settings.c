/* The azureml flavor's settings (parsed, checked, with their defaults) and the checks of a job
 * against them. */
#include "azureml.h"

#include "../../cloud/azure/auth.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const aml_known_settings[] = {
    "subscription_id", "resource_group", "workspace", "compute", "instance_type", "instance_count", "job_tier",
    "api_version", "arm_endpoint", "authority_host", "experiment_name", "command", NULL,
};

static int aml_chars_ok(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
            return 0;
    return 1;
}

/* api-version: YYYY-MM-DD, optionally -preview. */
static int aml_api_version_ok(const char *v)
{
    if (strlen(v) < 10)
        return 0;
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? v[i] != '-' : !isdigit((unsigned char)v[i]))
            return 0;
    return !v[10] || !strcmp(v + 10, "-preview");
}

int aml_parse_settings(const cJSON *s, struct aml_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    if (flavor_check_settings(s, "azureml", aml_known_settings, e) < 0)
        return -1;
    if (flavor_setting_str(s, "subscription_id", NULL, &c->subscription_id, e) < 0 ||
        flavor_setting_str(s, "resource_group", NULL, &c->resource_group, e) < 0 ||
        flavor_setting_str(s, "workspace", NULL, &c->workspace, e) < 0 ||
        flavor_setting_str(s, "compute", NULL, &c->compute, e) < 0 ||
        flavor_setting_str(s, "instance_type", NULL, &c->instance_type, e) < 0 ||
        flavor_setting_str(s, "job_tier", NULL, &c->job_tier, e) < 0 ||
        flavor_setting_str(s, "api_version", AML_DEFAULT_API_VERSION, &c->api_version, e) < 0 ||
        flavor_setting_str(s, "arm_endpoint", AML_DEFAULT_ARM, &c->arm_endpoint, e) < 0 ||
        flavor_setting_str(s, "authority_host", NULL, &c->authority_host, e) < 0 ||
        flavor_setting_str(s, "experiment_name", "stepop", &c->experiment_name, e) < 0 ||
        flavor_setting_str(s, "command", "stepop run", &c->command, e) < 0)
        return -1;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "instance_count");
    c->instance_count = 1;
    if (n && !cJSON_IsNull(n)) {
        if (!cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble))
            return err_set(e, ERR_INVALID, "settings.instance_count: expected a whole number");
        c->instance_count = (int64_t)n->valuedouble;
        if (c->instance_count != 1)
            return err_set(e, ERR_INVALID, "settings.instance_count: only 1 (a step runs on one node)");
    }
    /* Azure's own rules: a subscription is a GUID-like id, a resource group 1 to 90 of
     * [-\w._()] not ending in '.', a workspace ^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$. */
    if (!c->subscription_id || !c->subscription_id[0])
        return err_set(e, ERR_INVALID, "settings.subscription_id: required: the subscription of the workspace");
    if (!aml_chars_ok(c->subscription_id, "-") || strlen(c->subscription_id) > 64)
        return err_set(e, ERR_INVALID, "settings.subscription_id: \"%.80s\" is not a subscription id", c->subscription_id);
    if (!c->resource_group || !c->resource_group[0])
        return err_set(e, ERR_INVALID, "settings.resource_group: required: the workspace's resource group");
    size_t rg = strlen(c->resource_group);
    if (rg > 90 || !aml_chars_ok(c->resource_group, "-_.()") || c->resource_group[rg - 1] == '.')
        return err_set(e, ERR_INVALID, "settings.resource_group: \"%.100s\" is not a resource group name (1 to 90 "
                                       "letters, digits, -_.(), not ending in '.')", c->resource_group);
    if (!c->workspace || !c->workspace[0])
        return err_set(e, ERR_INVALID, "settings.workspace: required: the Azure Machine Learning workspace");
    size_t ws = strlen(c->workspace);
    if (ws < 3 || ws > 33 || !isalnum((unsigned char)c->workspace[0]) || !aml_chars_ok(c->workspace, "-_"))
        return err_set(e, ERR_INVALID, "settings.workspace: \"%.80s\" is not a workspace name "
                                       "([a-zA-Z0-9][a-zA-Z0-9_-]{2,32})", c->workspace);
    if (!c->compute == !c->instance_type)
        return err_set(e, ERR_INVALID, c->compute ? "settings.compute, settings.instance_type: one or the other: a compute "
                                                    "cluster, or serverless compute of an instance type"
                                                  : "settings.compute: required: a compute cluster's name (or "
                                                    "settings.instance_type for serverless compute)");
    if (c->compute && (!c->compute[0] || strlen(c->compute) > 255 || !aml_chars_ok(c->compute, "-_")))
        return err_set(e, ERR_INVALID, "settings.compute: \"%.80s\" is not a compute name (letters, digits, - and _)",
                       c->compute);
    if (c->instance_type && (!c->instance_type[0] || strlen(c->instance_type) > 128 ||
                             !aml_chars_ok(c->instance_type, "-_")))
        return err_set(e, ERR_INVALID, "settings.instance_type: \"%.80s\" is not a VM size (Standard_NC6s_v3, ...)",
                       c->instance_type);
    if (!aml_api_version_ok(c->api_version))
        return err_set(e, ERR_INVALID, "settings.api_version: \"%.40s\" is not an api-version (YYYY-MM-DD or "
                                       "YYYY-MM-DD-preview)", c->api_version);
    if (c->job_tier) {
        static const char *const tiers[] = { "Spot", "Basic", "Standard", "Premium", NULL };
        int ok = 0;
        for (const char *const *t = tiers; *t; t++)
            ok |= !strcmp(*t, c->job_tier);
        if (!ok)
            return err_set(e, ERR_INVALID, "settings.job_tier: \"%.40s\": one of Spot, Basic, Standard, Premium",
                           c->job_tier);
        if (!c->instance_type)
            return err_set(e, ERR_INVALID, "settings.job_tier: only with serverless compute (settings.instance_type); a "
                                           "cluster's priority (low priority, dedicated) is the cluster's own setting");
        if (strncmp(c->api_version, AML_QUEUE_SETTINGS_SINCE, 10) < 0)
            return err_set(e, ERR_INVALID, "settings.job_tier: queueSettings needs api_version %s or later (it is %s)",
                           AML_QUEUE_SETTINGS_SINCE, c->api_version);
    }
    if (!c->experiment_name[0] || strlen(c->experiment_name) > 255 || !aml_chars_ok(c->experiment_name, "-_."))
        return err_set(e, ERR_INVALID, "settings.experiment_name: \"%.80s\": 1 to 255 letters, digits, -_.",
                       c->experiment_name);
    if (!c->command[0] || strchr(c->command, '\n'))
        return err_set(e, ERR_INVALID, "settings.command: expected one command line that runs `stepop run`");
    static const char *const schemes[] = { "https", "http", NULL };
    struct url u;
    if (url_endpoint("settings.arm_endpoint", c->arm_endpoint, schemes, &u, e) < 0)
        return -1;
    int plain = !strcmp(u.scheme, "http"), local = url_host_is_loopback(u.host);
    url_free(&u);
    if (plain && !local)
        return err_set(e, ERR_INVALID, "settings.arm_endpoint: \"%s\": http:// only on loopback (a token is sent)",
                       c->arm_endpoint);
    if (c->authority_host && url_endpoint("settings.authority_host", c->authority_host, schemes, &u, e) < 0)
        return -1;
    if (c->authority_host)
        url_free(&u);
    return 0;
}

const char *aml_scope(const struct aml_cfg *c)
{
    /* Sovereign clouds' ARM audiences (their ARM endpoints' metadata, "audiences"). */
    static const struct {
        const char *endpoint, *scope;
    } clouds[] = {
        { "https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net/.default" },
        { "https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/.default" },
    };
    for (size_t i = 0; i < sizeof clouds / sizeof *clouds; i++)
        if (!strncmp(c->arm_endpoint, clouds[i].endpoint, strlen(clouds[i].endpoint)))
            return clouds[i].scope;
    return AZURE_SCOPE_ARM;
}

int aml_check_job(const struct job *j, const struct aml_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (flavor_check_image(m, "azureml", e) < 0)
        return -1;
    if (strlen(m->image) > 1024)
        return err_set(e, ERR_INVALID, "image: at most 1024 characters");
    const char *what = c->compute ? "the compute cluster" : "settings.instance_type";
    if (m->cpu > 0)
        return err_set(e, ERR_INVALID, "resources.cpu: a command job cannot ask for CPUs: %s decides; drop --cpu", what);
    if (m->memory > 0)
        return err_set(e, ERR_INVALID, "resources.memory: a command job cannot ask for memory: %s decides; drop --memory",
                       what);
    if (m->gpus > 0)
        return err_set(e, ERR_INVALID, "resources.gpus: a command job cannot ask for GPUs: %s decides (pick a GPU VM "
                                       "size, e.g. Standard_NC6s_v3); drop --gpus", what);
    if (strncmp(m->run_uri, "file:", 5) == 0)
        return err_set(e, ERR_INVALID, "the run's store %s is on this machine, which a command job cannot see: use an "
                                       "s3:// or az:// store", m->run_uri);
    /* A loopback store is out of a job's reach, unless Azure ML itself is on this machine (a fake). */
    if (!url_is_loopback(c->arm_endpoint)) {
        const char *bad = url_is_loopback(m->run_uri) ? "the run's store" : NULL;
        for (int i = 0; !bad && i < m->input_count; i++)
            if (url_is_loopback(m->inputs[i].uri) || strncmp(m->inputs[i].uri, "file:", 5) == 0)
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && (url_is_loopback(m->outputs[i].uri) || strncmp(m->outputs[i].uri, "file:", 5) == 0))
                bad = m->outputs[i].name;
        if (bad)
            return err_set(e, ERR_INVALID, "%s is on this machine, which a command job in Azure cannot reach", bad);
    }
    return 0;
}
