/* The modal flavor's sandbox: its environment (an ephemeral secret), its tags (the run's id and
 * URI), its command and resources, as a plan that --dry-run shows and submit encodes. */
#include "modal.h"

#include "../../cloud/aws/sigv4.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *md_uri_tag(const char *run_uri)
{
    char hex[65];
    sigv4_sha256_hex(run_uri, strlen(run_uri), hex);
    return xasprintf("%.32s", hex);
}

static void md_env_add(struct md_plan *p, const char *name, const char *value)
{
    p->env_names = xrealloc(p->env_names, sizeof *p->env_names * (size_t)(p->env_count + 1));
    p->env_values = xrealloc(p->env_values, sizeof *p->env_values * (size_t)(p->env_count + 1));
    p->env_names[p->env_count] = xstrdup(name);
    p->env_values[p->env_count] = xstrdup(value);
    p->env_count++;
}

void md_plan_build(const struct job *j, const struct md_cfg *c, struct md_plan *p)
{
    const struct manifest *m = j->m;
    memset(p, 0, sizeof *p);
    p->name = xasprintf("stepop-%.50s", m->run_id);
    if (c->entrypoint) {
        for (const cJSON *it = c->entrypoint->child; it && p->argc < 8; it = it->next)
            p->argv_store[p->argc++] = xstrdup(it->valuestring);
    } else {
        p->argv_store[p->argc++] = xstrdup("stepop");
        p->argv_store[p->argc++] = xstrdup("run");
    }
    for (int i = 0; i < p->argc; i++)
        p->argv[i] = p->argv_store[i];
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    md_env_add(p, "STEPOP_MANIFEST", j->manifest_uri);
    md_env_add(p, "STEPOP_ATTEMPT", attempt);
    for (const cJSON *it = c->pass_env ? c->pass_env->child : NULL; it; it = it->next) {
        const char *v = getenv(it->valuestring);
        if (v)
            md_env_add(p, it->valuestring, v);
    }
    if (c->gpu_type) {
        const char *colon = strchr(c->gpu_type, ':');
        size_t n = colon ? (size_t)(colon - c->gpu_type) : strlen(c->gpu_type);
        p->gpu_type = xstrndup(c->gpu_type, n);
        for (char *q = p->gpu_type; *q; q++)
            if (*q >= 'a' && *q <= 'z')
                *q = (char)(*q - 'a' + 'A');
        p->gpu_count = c->gpu_count;
    }
    if (m->cpu > 0)
        p->milli_cpu = (uint32_t)(m->cpu * 1000);
    if (m->memory > 0)
        p->memory_mb = (uint32_t)((m->memory + (1 << 20) - 1) >> 20);
    /* The step's deadline plus its grace: stepop run inside ends the step by then itself. Without
     * one, Modal's limit, since the API's own default is 5 minutes. */
    p->timeout_secs = m->timeout_ms > 0 ? (uint32_t)((m->timeout_ms + 999) / 1000 + (m->grace_ms + 999) / 1000)
                                        : (uint32_t)MD_MAX_TIMEOUT_S;
    for (const cJSON *it = c->regions ? c->regions->child : NULL; it && p->region_count < MD_MAX_REGIONS; it = it->next)
        p->regions[p->region_count++] = it->valuestring;
    p->tag_names[0] = MD_TAG_RUN_ID;
    p->tag_values[0] = xstrdup(m->run_id);
    p->tag_names[1] = MD_TAG_RUN_URI;
    p->tag_values[1] = md_uri_tag(m->run_uri);
}

void md_plan_free(struct md_plan *p)
{
    free(p->name);
    for (int i = 0; i < p->argc; i++)
        free(p->argv_store[i]);
    for (int i = 0; i < p->env_count; i++) {
        free(p->env_names[i]);
        /* Passed variables may be secrets. */
        memset(p->env_values[i], 0, strlen(p->env_values[i]));
        free(p->env_values[i]);
    }
    free(p->env_names);
    free(p->env_values);
    free(p->gpu_type);
    free(p->tag_values[0]);
    free(p->tag_values[1]);
    memset(p, 0, sizeof *p);
}

void md_plan_sandbox(const struct md_plan *p, const struct md_cfg *c, struct modal_sandbox *s)
{
    memset(s, 0, sizeof *s);
    s->name = p->name;
    s->argv = p->argv;
    s->argc = p->argc;
    s->milli_cpu = p->milli_cpu;
    s->memory_mb = p->memory_mb;
    s->gpu_type = p->gpu_type;
    s->gpu_count = (uint32_t)p->gpu_count;
    s->timeout_secs = p->timeout_secs;
    s->workdir = c->workdir;
    s->cloud = c->cloud;
    s->nonpreemptible = c->nonpreemptible;
    s->regions = p->regions;
    s->region_count = p->region_count;
    s->tag_names = p->tag_names;
    s->tag_values = (const char *const *)p->tag_values;
    s->tag_count = 2;
}

static cJSON *md_request(cJSON *list, const char *server_url, const char *method)
{
    cJSON *r = cJSON_CreateObject();
    char *url = xasprintf("%s/modal.client.ModalClient/%s", server_url, method);
    cJSON_AddStringToObject(r, "method", "POST");
    cJSON_AddStringToObject(r, "url", url);
    free(url);
    cJSON *h = cJSON_AddObjectToObject(r, "headers");
    cJSON_AddStringToObject(h, "content-type", "application/grpc");
    cJSON_AddStringToObject(h, "x-modal-token-id", "<MODAL_TOKEN_ID>");
    cJSON_AddStringToObject(h, "x-modal-token-secret", "<MODAL_TOKEN_SECRET>");
    cJSON_AddStringToObject(h, "x-modal-auth-token", "<from AuthTokenGet, added at send time>");
    cJSON_AddItemToArray(list, r);
    return cJSON_AddObjectToObject(r, "body");
}

static cJSON *md_strings(const char *const *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

cJSON *md_plan_render(const struct md_plan *p, const struct md_cfg *c, const struct job *j, const char *server_url,
                      const char *environment)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "protocol", "gRPC (protobuf bodies shown as JSON, field names of npm modal 0.11.1)");
    cJSON *list = cJSON_AddArrayToObject(out, "requests");
    cJSON *b = md_request(list, server_url, "AppGetOrCreate");
    cJSON_AddStringToObject(b, "appName", c->app);
    cJSON_AddStringToObject(b, "environmentName", environment);
    cJSON_AddStringToObject(b, "objectCreationType", "OBJECT_CREATION_TYPE_CREATE_IF_MISSING");
    b = md_request(list, server_url, "EnvironmentGetOrCreate");
    cJSON_AddStringToObject(b, "deploymentName", environment);
    b = md_request(list, server_url, "SecretGetOrCreate");
    cJSON_AddStringToObject(b, "environmentName", environment);
    cJSON_AddStringToObject(b, "objectCreationType", "OBJECT_CREATION_TYPE_EPHEMERAL");
    cJSON *env = cJSON_AddObjectToObject(b, "envDict");
    for (int i = 0; i < p->env_count; i++)
        cJSON_AddStringToObject(env, p->env_names[i],
                                i < 2 ? p->env_values[i] : "<hidden: from the submitting environment>");
    if (c->private_registry) {
        b = md_request(list, server_url, "SecretGetOrCreate");
        cJSON_AddStringToObject(b, "environmentName", environment);
        cJSON_AddStringToObject(b, "objectCreationType", "OBJECT_CREATION_TYPE_EPHEMERAL");
        env = cJSON_AddObjectToObject(b, "envDict");
        cJSON_AddStringToObject(env, "REGISTRY_USERNAME", "<REGISTRY_USERNAME>");
        cJSON_AddStringToObject(env, "REGISTRY_PASSWORD", "<REGISTRY_PASSWORD>");
    }
    b = md_request(list, server_url, "ImageGetOrCreate");
    cJSON_AddStringToObject(b, "appId", "<from AppGetOrCreate>");
    cJSON *img = cJSON_AddObjectToObject(b, "image");
    char *from = xasprintf("FROM %s", j->m->image);
    cJSON_AddItemToObject(img, "dockerfileCommands", md_strings((const char *const *)&from, 1));
    free(from);
    if (c->private_registry) {
        cJSON *reg = cJSON_AddObjectToObject(img, "imageRegistryConfig");
        cJSON_AddStringToObject(reg, "registryAuthType", "REGISTRY_AUTH_TYPE_STATIC_CREDS");
        cJSON_AddStringToObject(reg, "secretId", "<from SecretGetOrCreate>");
    }
    cJSON_AddStringToObject(b, "builderVersion", "<from EnvironmentGetOrCreate>");
    b = md_request(list, server_url, "SandboxCreate");
    cJSON_AddStringToObject(b, "appId", "<from AppGetOrCreate>");
    cJSON *d = cJSON_AddObjectToObject(b, "definition");
    cJSON_AddItemToObject(d, "entrypointArgs", md_strings(p->argv, p->argc));
    cJSON_AddStringToObject(d, "imageId", "<from ImageGetOrCreate>");
    cJSON_AddItemToObject(d, "secretIds", md_strings((const char *const[]){ "<from SecretGetOrCreate>" }, 1));
    cJSON *res = cJSON_AddObjectToObject(d, "resources");
    if (p->memory_mb)
        cJSON_AddNumberToObject(res, "memoryMb", p->memory_mb);
    if (p->milli_cpu)
        cJSON_AddNumberToObject(res, "milliCpu", p->milli_cpu);
    cJSON *gpu = cJSON_AddObjectToObject(res, "gpuConfig");
    if (p->gpu_type) {
        cJSON_AddNumberToObject(gpu, "count", p->gpu_count);
        cJSON_AddStringToObject(gpu, "gpuType", p->gpu_type);
    }
    cJSON_AddNumberToObject(d, "timeoutSecs", p->timeout_secs);
    if (c->workdir)
        cJSON_AddStringToObject(d, "workdir", c->workdir);
    if (c->regions || c->nonpreemptible) {
        cJSON *pl = cJSON_AddObjectToObject(d, "schedulerPlacement");
        if (c->regions)
            cJSON_AddItemToObject(pl, "regions", cJSON_Duplicate(c->regions, 1));
        if (c->nonpreemptible)
            cJSON_AddBoolToObject(pl, "nonpreemptible", 1);
    }
    if (c->cloud)
        cJSON_AddStringToObject(d, "cloudProviderStr", c->cloud);
    cJSON_AddStringToObject(d, "name", p->name);
    cJSON *tags = cJSON_AddArrayToObject(b, "tags");
    for (int i = 0; i < 2; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "tagName", p->tag_names[i]);
        cJSON_AddStringToObject(t, "tagValue", p->tag_values[i]);
        cJSON_AddItemToArray(tags, t);
    }
    return out;
}
