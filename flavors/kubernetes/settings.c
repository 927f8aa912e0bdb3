/* The kubernetes flavor's settings (parsed, checked, with their defaults) and the checks of a job
 * against them: what a pod cannot honour is refused here, before anything reaches the cluster. */
#include "kubernetes.h"

#include "../../runtime/units.h"
#include "../../runtime/uri.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kube_known_settings[] = {
    "context", "namespace", "gpu_resource", "retries", "ttl_seconds_after_finished", "keep", "inject", "inject_image",
    "inject_binary", "image_pull_policy", "shm_size", "host_network", "service_account_name", "priority_class_name",
    "runtime_class_name", "pod_settings", NULL,
};

/* The names of ZenML's KubernetesPodSettings (plus security_context). */
static const char *const kube_known_pod_settings[] = {
    "node_selectors", "affinity", "tolerations", "resources", "annotations", "labels", "volumes", "volume_mounts",
    "host_ipc", "scheduler_name", "image_pull_secrets", "env", "env_from", "security_context", NULL,
};

/* ZenML's step operator configuration names, which users carry over. */
static const char *const kube_zenml_names[][2] = {
    { "kubernetes_context", "context" },
    { "kubernetes_namespace", "namespace" },
    { "pod_settings.node_selector", "pod_settings.node_selectors" },
};

/* ---- Kubernetes' name rules ---- */

static int kube_alnum_lower(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

int kube_is_dns_label(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max || !kube_alnum_lower(s[0]) || !kube_alnum_lower(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!kube_alnum_lower(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

int kube_is_dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 253)
        return 0;
    /* Dot-separated labels, each starting and ending with a letter or digit. */
    for (const char *p = s; *p;) {
        size_t l = strcspn(p, ".");
        if (!l || !kube_alnum_lower(p[0]) || !kube_alnum_lower(p[l - 1]))
            return 0;
        for (size_t i = 0; i < l; i++)
            if (!kube_alnum_lower(p[i]) && p[i] != '-')
                return 0;
        p += l;
        if (*p == '.' && !*++p)
            return 0;
    }
    return 1;
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])? of n characters. */
static int kube_name_part(const char *s, size_t n)
{
    if (!n || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

int kube_is_qualified_name(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return kube_name_part(s, strlen(s));
    char *prefix = xstrndup(s, (size_t)(slash - s));
    int ok = kube_is_dns_subdomain(prefix) && kube_name_part(slash + 1, strlen(slash + 1));
    free(prefix);
    return ok;
}

int kube_is_label_value(const char *s)
{
    return !*s || kube_name_part(s, strlen(s));
}

/* ---- settings of one type ---- */

/* A whole number in [0, max], or fallback when absent. */
static int kube_setting_int(const cJSON *s, const char *key, int64_t fallback, int64_t max, int64_t *out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    if (!v || cJSON_IsNull(v)) {
        *out = fallback;
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < 0 || d > (double)max)
        return err_set(e, ERR_INVALID, "settings.%s: expected a whole number from 0 to %lld", key, (long long)max);
    *out = (int64_t)d;
    return 0;
}

/* A name by one of Kubernetes' rules, or NULL when absent. */
static int kube_setting_name(const cJSON *s, const char *key, int (*valid)(const char *), const char *rule,
                             const char **out, struct err *e)
{
    if (flavor_setting_str(s, key, NULL, out, e) < 0)
        return -1;
    if (*out && !valid(*out))
        return err_set(e, ERR_INVALID, "settings.%s: \"%s\" is not %s", key, *out, rule);
    return 0;
}

static int kube_is_namespace(const char *s)
{
    return kube_is_dns_label(s, 63);
}

#define KUBE_RULE_SUBDOMAIN "a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253)"

/* ---- pod_settings ---- */

/* An object of strings whose keys are qualified names (node_selectors, labels, annotations). */
static int kube_pod_string_map(const cJSON *pod, const char *key, int values_are_labels, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pod, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return err_set(e, ERR_INVALID, "settings.pod_settings.%s: expected an object of strings", key);
    for (const cJSON *it = v->child; it; it = it->next) {
        if (!kube_is_qualified_name(it->string))
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.%s: \"%s\" is not a Kubernetes key ([prefix/]name: letters, digits, "
                           "'-', '_' and '.', the name at most 63)",
                           key, it->string);
        if (!cJSON_IsString(it))
            return err_set(e, ERR_INVALID, "settings.pod_settings.%s.%s: expected a string", key, it->string);
        if (values_are_labels && !kube_is_label_value(it->valuestring))
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.%s.%s: \"%s\" is not a label value (at most 63 letters, digits, "
                           "'-', '_' or '.', starting and ending with a letter or digit)",
                           key, it->string, it->valuestring);
    }
    return 0;
}

/* Labels and annotations that stepop or the Job controller set themselves. */
static int kube_key_reserved(const char *k, int label)
{
    if (str_has_prefix(k, "stepop.io/"))
        return 1;
    return label && (strcmp(k, "controller-uid") == 0 || strcmp(k, "job-name") == 0 ||
                     str_has_prefix(k, "batch.kubernetes.io/"));
}

static int kube_pod_meta(const cJSON *pod, const char *key, int label, struct err *e)
{
    if (kube_pod_string_map(pod, key, label, e) < 0)
        return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pod, key);
    for (const cJSON *it = v ? v->child : NULL; it; it = it->next)
        if (kube_key_reserved(it->string, label))
            return err_set(e, ERR_INVALID, "settings.pod_settings.%s.%s: %s", key, it->string,
                           str_has_prefix(it->string, "stepop.io/")
                               ? "the stepop.io/ keys are stepop's own (cancel and cleanup check them)"
                               : "the Job controller sets this label itself");
    return 0;
}

/* A list whose items are all objects; *out is the list or NULL when absent. */
static int kube_pod_object_list(const cJSON *pod, const char *key, const cJSON **out, struct err *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pod, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v))
        return err_set(e, ERR_INVALID, "settings.pod_settings.%s: expected a list of objects", key);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++)
        if (!cJSON_IsObject(it))
            return err_set(e, ERR_INVALID, "settings.pod_settings.%s[%d]: expected an object", key, i);
    *out = v;
    return 0;
}

/* Fields of an object that must be strings when present. */
static int kube_string_fields(const cJSON *o, const char *where, const char *const *fields, struct err *e)
{
    for (const char *const *f = fields; *f; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *f);
        if (v && !cJSON_IsString(v))
            return err_set(e, ERR_INVALID, "%s.%s: expected a string", where, *f);
    }
    return 0;
}

static int kube_pod_tolerations(const cJSON *pod, struct err *e)
{
    const cJSON *l;
    if (kube_pod_object_list(pod, "tolerations", &l, e) < 0)
        return -1;
    static const char *const fields[] = { "key", "operator", "value", "effect", NULL };
    int i = 0;
    for (const cJSON *t = l ? l->child : NULL; t; t = t->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "settings.pod_settings.tolerations[%d]", i);
        if (kube_string_fields(t, where, fields, e) < 0)
            return -1;
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(t, "operator");
        const cJSON *eff = cJSON_GetObjectItemCaseSensitive(t, "effect");
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(t, "tolerationSeconds");
        if (op && strcmp(op->valuestring, "Equal") != 0 && strcmp(op->valuestring, "Exists") != 0)
            return err_set(e, ERR_INVALID, "%s.operator: expected Equal or Exists, got \"%s\"", where, op->valuestring);
        if (eff && eff->valuestring[0] && strcmp(eff->valuestring, "NoSchedule") != 0 &&
            strcmp(eff->valuestring, "PreferNoSchedule") != 0 && strcmp(eff->valuestring, "NoExecute") != 0)
            return err_set(e, ERR_INVALID, "%s.effect: expected NoSchedule, PreferNoSchedule or NoExecute, got \"%s\"",
                           where, eff->valuestring);
        if (secs && (!cJSON_IsNumber(secs) || secs->valuedouble != floor(secs->valuedouble)))
            return err_set(e, ERR_INVALID, "%s.tolerationSeconds: expected a whole number", where);
    }
    return 0;
}

static int kube_pod_volumes(const cJSON *pod, const struct kube_cfg *c, struct err *e)
{
    const cJSON *vols, *mounts;
    if (kube_pod_object_list(pod, "volumes", &vols, e) < 0 || kube_pod_object_list(pod, "volume_mounts", &mounts, e) < 0)
        return -1;
    int i = 0;
    for (const cJSON *v = vols ? vols->child : NULL; v; v = v->next, i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");
        if (!cJSON_IsString(n) || !kube_is_dns_label(n->valuestring, 63))
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.volumes[%d].name: expected a DNS-1123 label (lower-case letters, digits "
                           "and '-', at most 63)",
                           i);
        if (str_has_prefix(n->valuestring, "stepop-"))
            return err_set(e, ERR_INVALID, "settings.pod_settings.volumes[%d].name: the stepop- volumes are stepop's own",
                           i);
        for (const cJSON *w = vols->child; w != v; w = w->next)
            if (strcmp(cJSON_GetObjectItemCaseSensitive(w, "name")->valuestring, n->valuestring) == 0)
                return err_set(e, ERR_INVALID, "settings.pod_settings.volumes[%d].name: \"%s\" is given twice", i,
                               n->valuestring);
    }
    i = 0;
    static const char *const fields[] = { "subPath", "mountPropagation", "subPathExpr", NULL };
    for (const cJSON *m = mounts ? mounts->child : NULL; m; m = m->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "settings.pod_settings.volume_mounts[%d]", i);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "mountPath");
        const cJSON *ro = cJSON_GetObjectItemCaseSensitive(m, "readOnly");
        if (!cJSON_IsString(n))
            return err_set(e, ERR_INVALID, "%s.name: expected the name of one of settings.pod_settings.volumes", where);
        int found = 0;
        for (const cJSON *v = vols ? vols->child : NULL; v && !found; v = v->next)
            found = strcmp(cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring, n->valuestring) == 0;
        if (!found)
            return err_set(e, ERR_INVALID, "%s.name: no volume \"%s\" in settings.pod_settings.volumes", where,
                           n->valuestring);
        if (!cJSON_IsString(p) || p->valuestring[0] != '/')
            return err_set(e, ERR_INVALID, "%s.mountPath: expected an absolute path", where);
        if (ro && !cJSON_IsBool(ro))
            return err_set(e, ERR_INVALID, "%s.readOnly: expected true or false", where);
        if (kube_string_fields(m, where, fields, e) < 0)
            return -1;
        const char *mp = p->valuestring;
        size_t dl = strlen(KUBE_INJECT_DIR);
        if (c->shm_size > 0 && (strcmp(mp, "/dev/shm") == 0 || strcmp(mp, "/dev/shm/") == 0))
            return err_set(e, ERR_INVALID, "%s.mountPath: settings.shm_size already mounts /dev/shm", where);
        if (c->inject && strncmp(mp, KUBE_INJECT_DIR, dl) == 0 && (mp[dl] == '\0' || mp[dl] == '/'))
            return err_set(e, ERR_INVALID, "%s.mountPath: %s holds the injected stepop (settings.inject)", where,
                           KUBE_INJECT_DIR);
        for (const cJSON *o = mounts->child; o != m; o = o->next)
            if (strcmp(cJSON_GetObjectItemCaseSensitive(o, "mountPath")->valuestring, mp) == 0)
                return err_set(e, ERR_INVALID, "%s.mountPath: %s is mounted twice", where, mp);
    }
    return 0;
}

/* A variable name as Kubernetes takes it, and none that the flavor sets itself. */
static int kube_env_name(const char *name, const char *where, struct err *e)
{
    int ok = name[0] && !isdigit((unsigned char)name[0]);
    for (const char *p = name; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.';
    if (!ok)
        return err_set(e, ERR_INVALID, "%s: \"%s\" is not a variable name", where, name);
    if (str_has_prefix(name, "STEPOP_MANIFEST") || str_has_prefix(name, "STEPOP_ATTEMPT"))
        return err_set(e, ERR_INVALID, "%s: %s is set by the flavor itself", where, name);
    return 0;
}

/* env: Kubernetes' list of {name, value | valueFrom}, or an object of names and string values. */
static int kube_pod_env(const cJSON *pod, struct err *e)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(pod, "env");
    int i = 0;
    if (cJSON_IsObject(l)) {
        for (const cJSON *v = l->child; v; v = v->next) {
            char where[300];
            snprintf(where, sizeof where, "settings.pod_settings.env.%s", v->string);
            if (kube_env_name(v->string, "settings.pod_settings.env", e) < 0)
                return -1;
            if (!cJSON_IsString(v))
                return err_set(e, ERR_INVALID, "%s: expected a string", where);
        }
        l = NULL;
    } else if (l && !cJSON_IsNull(l) && !cJSON_IsArray(l)) {
        return err_set(e, ERR_INVALID,
                       "settings.pod_settings.env: expected a list of {\"name\", \"value\" or \"valueFrom\"} objects, "
                       "or an object of names and strings");
    } else if (kube_pod_object_list(pod, "env", &l, e) < 0) {
        return -1;
    }
    for (const cJSON *v = l ? l->child : NULL; v; v = v->next, i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(v, "value");
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(v, "valueFrom");
        char where[64];
        snprintf(where, sizeof where, "settings.pod_settings.env[%d]", i);
        if (!cJSON_IsString(n))
            return err_set(e, ERR_INVALID, "%s.name: expected a variable name", where);
        if (kube_env_name(n->valuestring, where, e) < 0)
            return -1;
        if ((val && !cJSON_IsString(val)) || (from && !cJSON_IsObject(from)) || (val && from))
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.env[%d] (%s): expected a string \"value\" or a \"valueFrom\" object", i,
                           n->valuestring);
        for (const cJSON *k = v->child; k; k = k->next)
            if (strcmp(k->string, "name") != 0 && strcmp(k->string, "value") != 0 && strcmp(k->string, "valueFrom") != 0)
                return err_set(e, ERR_INVALID, "settings.pod_settings.env[%d].%s: not a field of an environment variable",
                               i, k->string);
    }
    if (kube_pod_object_list(pod, "env_from", &l, e) < 0)
        return -1;
    i = 0;
    for (const cJSON *v = l ? l->child : NULL; v; v = v->next, i++) {
        const cJSON *cm = cJSON_GetObjectItemCaseSensitive(v, "configMapRef");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(v, "secretRef");
        const cJSON *pre = cJSON_GetObjectItemCaseSensitive(v, "prefix");
        if (!!cJSON_IsObject(cm) + !!cJSON_IsObject(sec) != 1 || (pre && !cJSON_IsString(pre)))
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.env_from[%d]: expected one \"configMapRef\" or \"secretRef\" object "
                           "(and an optional \"prefix\")",
                           i);
    }
    return 0;
}

static int kube_pod_resources(const cJSON *pod, const struct kube_cfg *c, struct err *e)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(pod, "resources");
    if (!r || cJSON_IsNull(r))
        return 0;
    if (!cJSON_IsObject(r))
        return err_set(e, ERR_INVALID, "settings.pod_settings.resources: expected an object with requests and limits");
    for (const cJSON *k = r->child; k; k = k->next) {
        if (strcmp(k->string, "requests") != 0 && strcmp(k->string, "limits") != 0)
            return err_set(e, ERR_INVALID, "settings.pod_settings.resources.%s: expected requests or limits", k->string);
        if (!cJSON_IsObject(k))
            return err_set(e, ERR_INVALID, "settings.pod_settings.resources.%s: expected an object of quantities",
                           k->string);
        for (const cJSON *q = k->child; q; q = q->next) {
            if (strcmp(q->string, "cpu") == 0 || strcmp(q->string, "memory") == 0 ||
                strcmp(q->string, c->gpu_resource) == 0)
                return err_set(e, ERR_INVALID,
                               "settings.pod_settings.resources.%s.%s: the step's own resources give it (--cpu, "
                               "--memory, --gpus or the manifest's resources)",
                               k->string, q->string);
            if (!kube_is_qualified_name(q->string))
                return err_set(e, ERR_INVALID, "settings.pod_settings.resources.%s: \"%s\" is not a resource name",
                               k->string, q->string);
            if (!cJSON_IsString(q) && !cJSON_IsNumber(q))
                return err_set(e, ERR_INVALID, "settings.pod_settings.resources.%s.%s: expected a quantity (\"10Gi\", 2)",
                               k->string, q->string);
        }
    }
    return 0;
}

static int kube_parse_pod(const cJSON *pod, const struct kube_cfg *c, struct err *e)
{
    for (const cJSON *it = pod->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = kube_known_pod_settings; *k; k++)
            ok |= strcmp(*k, it->string) == 0;
        char dotted[128];
        snprintf(dotted, sizeof dotted, "pod_settings.%s", it->string);
        for (size_t i = 0; !ok && i < sizeof kube_zenml_names / sizeof *kube_zenml_names; i++)
            if (strcmp(dotted, kube_zenml_names[i][0]) == 0)
                return err_set(e, ERR_INVALID, "settings.%s: not a pod setting; did you mean settings.%s?", dotted,
                               kube_zenml_names[i][1]);
        if (!ok)
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.%s: not a pod setting (node_selectors, affinity, tolerations, resources, "
                           "annotations, labels, volumes, volume_mounts, host_ipc, scheduler_name, image_pull_secrets, "
                           "env, env_from, security_context)",
                           it->string);
    }
    if (kube_pod_string_map(pod, "node_selectors", 1, e) < 0 || kube_pod_meta(pod, "labels", 1, e) < 0 ||
        kube_pod_meta(pod, "annotations", 0, e) < 0 || kube_pod_tolerations(pod, e) < 0 ||
        kube_pod_volumes(pod, c, e) < 0 || kube_pod_env(pod, e) < 0 || kube_pod_resources(pod, c, e) < 0)
        return -1;
    static const char *const objects[] = { "affinity", "security_context" };
    for (size_t i = 0; i < sizeof objects / sizeof *objects; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pod, objects[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsObject(v))
            return err_set(e, ERR_INVALID, "settings.pod_settings.%s: expected an object", objects[i]);
    }
    const cJSON *aff = cJSON_GetObjectItemCaseSensitive(pod, "affinity");
    for (const cJSON *k = cJSON_IsObject(aff) ? aff->child : NULL; k; k = k->next)
        if (strcmp(k->string, "nodeAffinity") != 0 && strcmp(k->string, "podAffinity") != 0 &&
            strcmp(k->string, "podAntiAffinity") != 0)
            return err_set(e, ERR_INVALID,
                           "settings.pod_settings.affinity.%s: expected nodeAffinity, podAffinity or podAntiAffinity",
                           k->string);
    const cJSON *ipc = cJSON_GetObjectItemCaseSensitive(pod, "host_ipc");
    if (ipc && !cJSON_IsNull(ipc) && !cJSON_IsBool(ipc))
        return err_set(e, ERR_INVALID, "settings.pod_settings.host_ipc: expected true or false");
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(pod, "scheduler_name");
    if (sched && !cJSON_IsNull(sched) && (!cJSON_IsString(sched) || !kube_is_dns_subdomain(sched->valuestring)))
        return err_set(e, ERR_INVALID, "settings.pod_settings.scheduler_name: expected " KUBE_RULE_SUBDOMAIN);
    const cJSON *ips = cJSON_GetObjectItemCaseSensitive(pod, "image_pull_secrets");
    if (ips && !cJSON_IsNull(ips)) {
        if (!cJSON_IsArray(ips))
            return err_set(e, ERR_INVALID, "settings.pod_settings.image_pull_secrets: expected a list of secret names");
        for (const cJSON *it = ips->child; it; it = it->next)
            if (!cJSON_IsString(it) || !kube_is_dns_subdomain(it->valuestring))
                return err_set(e, ERR_INVALID,
                               "settings.pod_settings.image_pull_secrets: expected a list of secret names ("
                               KUBE_RULE_SUBDOMAIN ")");
    }
    return 0;
}

/* ---- the settings ---- */

/* A size as units_parse_size takes it ("1Gi", "512MiB"), or as Docker's --shm-size writes it: a
 * number and one of k, m, g, t in lower case, binary units ("2g" is 2 GiB). */
static int kube_parse_shm(const char *s, int64_t *out, struct err *e)
{
    size_t n = strlen(s);
    if (n >= 2 && strchr("kmgt", s[n - 1]) && (isdigit((unsigned char)s[n - 2]) || s[n - 2] == '.')) {
        char *bin = xasprintf("%.*s%ci", (int)(n - 1), s, toupper((unsigned char)s[n - 1]));
        int r = units_parse_size(bin, out, e);
        free(bin);
        return r;
    }
    return units_parse_size(s, out, e);
}

int kube_parse_settings(const cJSON *s, struct kube_cfg *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    for (const cJSON *it = s ? s->child : NULL; it; it = it->next)
        for (size_t i = 0; i < sizeof kube_zenml_names / sizeof *kube_zenml_names; i++)
            if (strcmp(it->string, kube_zenml_names[i][0]) == 0)
                return err_set(e, ERR_INVALID,
                               "settings.%s: not a setting of the kubernetes flavor; did you mean settings.%s?", it->string,
                               kube_zenml_names[i][1]);
    if (flavor_check_settings(s, "kubernetes", kube_known_settings, e) < 0)
        return -1;
    const char *shm;
    int64_t retries, ttl;
    if (flavor_setting_str(s, "context", NULL, &c->context, e) < 0 ||
        kube_setting_name(s, "namespace", kube_is_namespace,
                          "a namespace name (lower-case letters, digits and '-', at most 63)", &c->namespace, e) < 0 ||
        flavor_setting_str(s, "gpu_resource", "nvidia.com/gpu", &c->gpu_resource, e) < 0 ||
        kube_setting_int(s, "retries", 0, 1000, &retries, e) < 0 ||
        kube_setting_int(s, "ttl_seconds_after_finished", -1, INT32_MAX, &ttl, e) < 0 ||
        flavor_setting_bool(s, "keep", 0, &c->keep, e) < 0 || flavor_setting_bool(s, "inject", 0, &c->inject, e) < 0 ||
        flavor_setting_str(s, "inject_image", NULL, &c->inject_image, e) < 0 ||
        flavor_setting_str(s, "inject_binary", NULL, &c->inject_binary, e) < 0 ||
        flavor_setting_str(s, "image_pull_policy", NULL, &c->image_pull_policy, e) < 0 ||
        flavor_setting_str(s, "shm_size", NULL, &shm, e) < 0 ||
        flavor_setting_bool(s, "host_network", 0, &c->host_network, e) < 0 ||
        kube_setting_name(s, "service_account_name", kube_is_dns_subdomain, KUBE_RULE_SUBDOMAIN, &c->service_account_name,
                          e) < 0 ||
        kube_setting_name(s, "priority_class_name", kube_is_dns_subdomain, KUBE_RULE_SUBDOMAIN, &c->priority_class_name,
                          e) < 0 ||
        kube_setting_name(s, "runtime_class_name", kube_is_dns_subdomain, KUBE_RULE_SUBDOMAIN, &c->runtime_class_name,
                          e) < 0)
        return -1;
    c->retries = (int)retries;
    c->ttl_seconds = ttl;
    if (c->context && !c->context[0])
        return err_set(e, ERR_INVALID, "settings.context: expected the name of a kubeconfig context");
    /* An extended resource is domain-qualified, outside kubernetes.io (which Kubernetes keeps for
     * its own resources). */
    const char *slash = strchr(c->gpu_resource, '/');
    if (!slash || !kube_is_qualified_name(c->gpu_resource) || str_has_prefix(c->gpu_resource, "kubernetes.io/") ||
        strstr(c->gpu_resource, ".kubernetes.io/"))
        return err_set(e, ERR_INVALID,
                       "settings.gpu_resource: \"%s\" is not an extended resource name (a domain, '/', a name: "
                       "nvidia.com/gpu, amd.com/gpu, gpu.intel.com/i915)",
                       c->gpu_resource);
    if (c->image_pull_policy && strcmp(c->image_pull_policy, "Always") != 0 &&
        strcmp(c->image_pull_policy, "IfNotPresent") != 0 && strcmp(c->image_pull_policy, "Never") != 0)
        return err_set(e, ERR_INVALID, "settings.image_pull_policy: expected Always, IfNotPresent or Never, got \"%s\"",
                       c->image_pull_policy);
    if (shm) {
        if (kube_parse_shm(shm, &c->shm_size, e) < 0)
            return err_prefix(e, "settings.shm_size: ");
        if (c->shm_size <= 0)
            return err_set(e, ERR_INVALID, "settings.shm_size: expected a size above 0 (\"1Gi\")");
    }
    if (c->inject && (!c->inject_image || !c->inject_image[0]))
        return err_set(e, ERR_INVALID,
                       "settings.inject: needs settings.inject_image, an image with the static stepop and glibc 2.34 or "
                       "later (docs/flavors.md#inject-mode)");
    if (!c->inject && c->inject_image)
        return err_set(e, ERR_INVALID, "settings.inject_image: only used with inject: true");
    if (!c->inject && c->inject_binary)
        return err_set(e, ERR_INVALID, "settings.inject_binary: only used with inject: true");
    if (c->inject_binary && c->inject_binary[0] != '/')
        return err_set(e, ERR_INVALID, "settings.inject_binary: expected the absolute path of stepop in inject_image");
    if (c->inject && !c->inject_binary)
        c->inject_binary = "/stepop";
    for (const char *p = c->inject_image; p && *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return err_set(e, ERR_INVALID, "settings.inject_image: \"%s\": a reference has no white space", c->inject_image);
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(s, "pod_settings");
    if (pod && !cJSON_IsNull(pod)) {
        if (!cJSON_IsObject(pod))
            return err_set(e, ERR_INVALID, "settings.pod_settings: expected an object");
        if (kube_parse_pod(pod, c, e) < 0)
            return -1;
        c->pod = pod;
    }
    return 0;
}

/* ---- the job against the settings ---- */

/* Whether path lies under one of the pod's volume mounts. */
static int kube_path_mounted(const struct kube_cfg *c, const char *path)
{
    const cJSON *mounts = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "volume_mounts") : NULL;
    for (const cJSON *m = cJSON_IsArray(mounts) ? mounts->child : NULL; m; m = m->next) {
        const char *mp = cJSON_GetObjectItemCaseSensitive(m, "mountPath")->valuestring;
        size_t n = strlen(mp);
        while (n > 1 && mp[n - 1] == '/')
            n--;
        if (strncmp(path, mp, n) == 0 && (path[n] == '/' || path[n] == '\0' || n == 1))
            return 1;
    }
    return 0;
}

/* A file:// URI names a path on the submitting machine: a pod sees it only through a volume
 * mounted at that path. */
static int kube_check_file_uri(const struct kube_cfg *c, const char *what, const char *uri, struct err *e)
{
    char scheme[16];
    if (uri_scheme(uri, scheme, sizeof scheme) < 0 || strcmp(scheme, "file") != 0)
        return 0;
    char *path;
    if (uri_file_path(uri, &path, e) < 0)
        return err_prefix(e, "%s: ", what);
    int ok = kube_path_mounted(c, path);
    if (!ok)
        err_set(e, ERR_INVALID,
                "%s: %s is a path on this machine, which a pod cannot reach: use an s3:// or http(s):// store, or mount "
                "it in the pod at the same path (settings.pod_settings.volumes and volume_mounts)",
                what, path);
    free(path);
    return ok ? 0 : -1;
}

int kube_check_job(const struct job *j, const struct kube_cfg *c, struct err *e)
{
    const struct manifest *m = j->m;
    if (flavor_check_image(m, "kubernetes", e) < 0)
        return -1;
    if (m->cpu < 0 || m->cpu > 1e6)
        return err_set(e, ERR_INVALID, "resources.cpu: %g is out of range", m->cpu);
    if (m->cpu > 0 && llround(m->cpu * 1000) < 1)
        return err_set(e, ERR_INVALID, "resources.cpu: %g is below Kubernetes' smallest unit, 1m (0.001)", m->cpu);

    char what[160];
    if (kube_check_file_uri(c, "run_uri", m->run_uri, e) < 0)
        return -1;
    for (int i = 0; i < m->input_count; i++) {
        snprintf(what, sizeof what, "inputs[%d] (%s)", i, m->inputs[i].name);
        if (kube_check_file_uri(c, what, m->inputs[i].uri, e) < 0)
            return -1;
    }
    for (int i = 0; i < m->output_count; i++) {
        snprintf(what, sizeof what, "outputs[%d] (%s)", i, m->outputs[i].name);
        if (m->outputs[i].uri && kube_check_file_uri(c, what, m->outputs[i].uri, e) < 0)
            return -1;
    }

    /* A store on this machine's loopback is out of a pod's reach unless the pod shares the node's
     * network, and then only when the node is this machine. */
    if (!c->host_network) {
        const char *bad = NULL;
        if (url_is_loopback(m->run_uri))
            bad = "the run's store";
        for (int i = 0; !bad && i < m->input_count; i++)
            if (url_is_loopback(m->inputs[i].uri))
                bad = m->inputs[i].name;
        for (int i = 0; !bad && i < m->output_count; i++)
            if (m->outputs[i].uri && url_is_loopback(m->outputs[i].uri))
                bad = m->outputs[i].name;
        const cJSON *env = c->pod ? cJSON_GetObjectItemCaseSensitive(c->pod, "env") : NULL;
        int map = cJSON_IsObject(env);
        for (const cJSON *v = map || cJSON_IsArray(env) ? env->child : NULL; !bad && v; v = v->next) {
            const char *name = map ? v->string : cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring;
            const cJSON *val = map ? v : cJSON_GetObjectItemCaseSensitive(v, "value");
            if (str_has_prefix(name, "AWS_ENDPOINT_URL") && cJSON_IsString(val) && url_is_loopback(val->valuestring))
                bad = name;
        }
        if (bad)
            return err_set(e, ERR_INVALID,
                           "%s is on this machine's loopback address, which a pod cannot reach: use an address the "
                           "cluster can reach, or set settings.host_network to true when the pod runs on this machine",
                           bad);
    }
    return 0;
}
