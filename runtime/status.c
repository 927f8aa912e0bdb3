#include "status.h"

#include "jsonutil.h"
#include "timeutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[PHASE_COUNT] = {
    "pending", "starting", "checking_gpu", "fetching", "running",
    "uploading", "succeeded", "failed", "terminated", "preempted",
};

static const char *const reason_names[REASON_COUNT] = {
    NULL, "user_error", "oom_killed", "timeout", "input_error", "gpu_unavailable",
    "upload_error", "terminated", "preempted", "manifest_error", "internal",
};

const char *status_phase_name(enum run_phase p)
{
    return (unsigned)p < PHASE_COUNT ? phase_names[p] : "unknown";
}

const char *status_reason_name(enum run_reason r)
{
    return (unsigned)r < REASON_COUNT ? reason_names[r] : NULL;
}

int status_phase_parse(const char *s, enum run_phase *out)
{
    for (int i = 0; i < PHASE_COUNT; i++)
        if (strcmp(s, phase_names[i]) == 0) {
            *out = (enum run_phase)i;
            return 0;
        }
    return -1;
}

int status_reason_parse(const char *s, enum run_reason *out)
{
    for (int i = 1; i < REASON_COUNT; i++)
        if (strcmp(s, reason_names[i]) == 0) {
            *out = (enum run_reason)i;
            return 0;
        }
    return -1;
}

int status_phase_is_final(enum run_phase p)
{
    return p == PHASE_SUCCEEDED || p == PHASE_FAILED || p == PHASE_TERMINATED || p == PHASE_PREEMPTED;
}

void status_init(struct run_status *s, const char *run_id, int attempt)
{
    memset(s, 0, sizeof *s);
    snprintf(s->run_id, sizeof s->run_id, "%s", run_id);
    s->attempt = attempt;
    s->exit_code = -1;
    s->updated_ms = time_wall_ms();
}

void status_enter(struct run_status *s, enum run_phase p)
{
    int64_t now = time_wall_ms();
    if (s->started_ms[s->phase] && !s->ended_ms[s->phase])
        s->ended_ms[s->phase] = now;
    s->phase = p;
    if (!status_phase_is_final(p)) {
        s->started_ms[p] = now;
        s->ended_ms[p] = 0;
    }
    s->updated_ms = now;
}

static void add_time(cJSON *o, const char *key, int64_t ms)
{
    if (!ms) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char buf[40];
    time_format_rfc3339_ms(ms, buf, sizeof buf);
    cJSON_AddStringToObject(o, key, buf);
}

cJSON *status_to_json(const struct run_status *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run_id", s->run_id);
    cJSON_AddNumberToObject(o, "attempt", s->attempt);
    cJSON_AddStringToObject(o, "phase", status_phase_name(s->phase));
    json_add_str(o, "reason", status_reason_name(s->reason));
    json_add_str(o, "reason_kind", s->reason == REASON_NONE ? NULL : s->system_kind ? "system" : "user");
    json_add_str(o, "message", s->message[0] ? s->message : NULL);
    if (s->exit_code >= 0)
        cJSON_AddNumberToObject(o, "exit_code", s->exit_code);
    else
        cJSON_AddNullToObject(o, "exit_code");
    if (s->signal)
        cJSON_AddNumberToObject(o, "signal", s->signal);
    else
        cJSON_AddNullToObject(o, "signal");
    json_add_str(o, "host", s->host[0] ? s->host : NULL);
    add_time(o, "updated_at", s->updated_ms);
    add_time(o, "heartbeat_at", s->heartbeat_ms);
    cJSON *phases = cJSON_AddObjectToObject(o, "phases");
    for (int i = 0; i < PHASE_COUNT; i++) {
        if (!s->started_ms[i])
            continue;
        cJSON *p = cJSON_AddObjectToObject(phases, phase_names[i]);
        add_time(p, "started_at", s->started_ms[i]);
        add_time(p, "ended_at", s->ended_ms[i]);
    }
    if (s->gpu)
        cJSON_AddItemToObject(o, "gpu", cJSON_Duplicate(s->gpu, 1));
    return o;
}

static int64_t parse_ms(const cJSON *o, const char *key)
{
    const char *v = json_str(o, key);
    time_t t;
    if (!v || time_parse(v, &t) < 0)
        return 0;
    int64_t ms = (int64_t)t * 1000;
    const char *dot = strchr(v, '.');
    if (dot) {
        int frac = 0, digits = 0;
        for (const char *p = dot + 1; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
            frac = frac * 10 + (*p - '0');
        while (digits++ < 3)
            frac *= 10;
        ms += frac;
    }
    return ms;
}

/* A whole number from min to max, else an error: casting 1e300 or 2.5 to int would be undefined
 * or wrong. Absent or null leaves *out as it is. */
static int get_int(const cJSON *j, const char *key, int min, int max, int *out, struct err *e)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!n || cJSON_IsNull(n))
        return 0;
    if (!cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble) || n->valuedouble < min || n->valuedouble > max)
        return err_set(e, ERR_INVALID, "status.json: %s: expected a whole number from %d to %d", key, min, max);
    *out = (int)n->valuedouble;
    return 0;
}

int status_from_json(const cJSON *j, struct run_status *s, struct err *e)
{
    memset(s, 0, sizeof *s);
    s->exit_code = -1;
    s->attempt = 1;
    const char *phase = json_str(j, "phase");
    if (!cJSON_IsObject(j) || !phase || status_phase_parse(phase, &s->phase) < 0)
        return err_set(e, ERR_INVALID, "status.json: missing or unknown phase");
    if (json_check_unique_keys(j, e) < 0)
        return err_prefix(e, "status.json: ");
    /* Exit codes are 0-255 and 128 + signal must be one too. */
    if (get_int(j, "attempt", 1, INT_MAX, &s->attempt, e) < 0 || get_int(j, "exit_code", 0, 255, &s->exit_code, e) < 0 ||
        get_int(j, "signal", 0, 127, &s->signal, e) < 0)
        return -1;
    const char *v;
    if ((v = json_str(j, "run_id")))
        snprintf(s->run_id, sizeof s->run_id, "%s", v);
    if ((v = json_str(j, "reason")) && status_reason_parse(v, &s->reason) < 0)
        return err_set(e, ERR_INVALID, "status.json: unknown reason \"%s\"", v);
    s->system_kind = (v = json_str(j, "reason_kind")) && strcmp(v, "system") == 0;
    if ((v = json_str(j, "message")))
        snprintf(s->message, sizeof s->message, "%s", v);
    if ((v = json_str(j, "host")))
        snprintf(s->host, sizeof s->host, "%s", v);
    s->updated_ms = parse_ms(j, "updated_at");
    s->heartbeat_ms = parse_ms(j, "heartbeat_at");
    const cJSON *phases = cJSON_GetObjectItemCaseSensitive(j, "phases");
    for (const cJSON *p = cJSON_IsObject(phases) ? phases->child : NULL; p; p = p->next) {
        enum run_phase ph;
        if (status_phase_parse(p->string, &ph) == 0) {
            s->started_ms[ph] = parse_ms(p, "started_at");
            s->ended_ms[ph] = parse_ms(p, "ended_at");
        }
    }
    const cJSON *gpu = cJSON_GetObjectItemCaseSensitive(j, "gpu");
    if (gpu && !cJSON_IsNull(gpu))
        s->gpu = cJSON_Duplicate(gpu, 1);
    return 0;
}

void status_free(struct run_status *s)
{
    cJSON_Delete(s->gpu);
    s->gpu = NULL;
}
