/* Modal API messages: see modal_api.h. Field numbers checked against npm modal 0.11.1. */
#include "modal_api.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    "UNSPECIFIED", "SUCCESS", "FAILURE", "TERMINATED", "TIMEOUT", "INIT_FAILURE", "INTERNAL_FAILURE",
    "IDLE_TIMEOUT", "MEMORY_MANAGER_EVICTION",
};

const char *modal_status_name(int status)
{
    return status >= 0 && status <= MODAL_ST_MEMORY_MANAGER_EVICTION ? status_names[status] : "UNKNOWN_STATUS";
}

void modal_result_free(struct modal_result *r)
{
    free(r->exception);
    free(r->traceback);
    free(r->propagation_reason);
    memset(r, 0, sizeof *r);
}

static int bad(struct err *e, const char *what)
{
    return err_set(e, ERR_INVALID, "Modal's answer is not a valid %s message", what);
}

/* A string field into *out (replacing what was there). */
static int take_str(const struct pb_field *f, char **out, struct err *e, const char *what)
{
    char *s = pb_field_str(f);
    if (!s)
        return bad(e, what);
    free(*out);
    *out = s;
    return 0;
}

int modal_dec_string(const struct buf *msg, uint32_t field, char **out, struct err *e)
{
    struct pb_reader r;
    struct pb_field f;
    int rc;
    *out = NULL;
    pb_reader_init(&r, msg->data, msg->len);
    while ((rc = pb_next(&r, &f)) > 0)
        if (f.field == field && take_str(&f, out, e, "answer") < 0)
            return -1;
    if (rc < 0) {
        free(*out);
        *out = NULL;
        return bad(e, "answer");
    }
    return 0;
}

int modal_decode_auth_token(const struct buf *msg, char **token, struct err *e)
{
    return modal_dec_string(msg, 1, token, e);
}

void modal_enc_app_get_or_create(struct buf *b, const char *app, const char *environment)
{
    pb_put_str_nz(b, 1, app);
    pb_put_str_nz(b, 2, environment);
    pb_put_uint(b, 3, MODAL_CREATE_IF_MISSING);
}

void modal_enc_environment_get_or_create(struct buf *b, const char *environment)
{
    pb_put_str_nz(b, 1, environment);
}

/* The first length-delimited field `field` of a message, as a sub-reader; 0 when absent. */
static int sub_msg(const uint8_t *p, size_t n, uint32_t field, struct pb_reader *out)
{
    struct pb_reader r;
    struct pb_field f;
    int rc, found = 0;
    pb_reader_init(&r, p, n);
    while ((rc = pb_next(&r, &f)) > 0)
        if (f.field == field && f.wire == PB_LEN) {
            pb_reader_init(out, f.data, f.len);
            found = 1;
        }
    return rc < 0 ? -1 : found;
}

int modal_dec_environment(const struct buf *msg, char **env_id, char **builder_version, struct err *e)
{
    *builder_version = NULL;
    if (modal_dec_string(msg, 1, env_id, e) < 0)
        return -1;
    struct pb_reader md, st;
    int rc = sub_msg((const uint8_t *)msg->data, msg->len, 2, &md);
    if (rc > 0)
        rc = sub_msg(md.p, (size_t)(md.end - md.p), 2, &st);
    if (rc > 0) {
        struct buf sb = { (char *)st.p, (size_t)(st.end - st.p), 0 };
        rc = modal_dec_string(&sb, 1, builder_version, e);
    }
    if (rc < 0) {
        free(*env_id);
        *env_id = NULL;
        return bad(e, "EnvironmentGetOrCreateResponse");
    }
    return 0;
}

void modal_enc_secret_ephemeral(struct buf *b, const char *environment, const char *const *names,
                                const char *const *values, int n)
{
    pb_put_str_nz(b, 3, environment);
    pb_put_uint(b, 4, MODAL_CREATE_EPHEMERAL);
    for (int i = 0; i < n; i++) {
        struct buf entry = { 0 };
        pb_put_str(&entry, 1, names[i]);
        pb_put_str(&entry, 2, values[i]);
        pb_put_msg(b, 5, &entry);
        buf_free(&entry);
    }
}

void modal_enc_image_get_or_create(struct buf *b, const char *app_id, const char *image,
                                   const char *registry_secret_id, const char *builder_version)
{
    struct buf img = { 0 }, reg = { 0 };
    char *from = xasprintf("FROM %s", image);
    /* Image: dockerfile_commands = 6, image_registry_config = 17 { registry_auth_type = 1,
     * secret_id = 2 }. */
    pb_put_str(&img, 6, from);
    if (registry_secret_id) {
        pb_put_uint(&reg, 1, MODAL_REGISTRY_STATIC_CREDS);
        pb_put_str(&reg, 2, registry_secret_id);
        pb_put_msg(&img, 17, &reg);
    }
    /* ImageGetOrCreateRequest: image = 2, app_id = 4, builder_version = 9. */
    pb_put_msg(b, 2, &img);
    pb_put_str_nz(b, 4, app_id);
    pb_put_str_nz(b, 9, builder_version);
    free(from);
    buf_free(&img);
    buf_free(&reg);
}

/* GenericResult: status = 1, exception = 2, exitcode = 3, traceback = 4, propagation_reason = 13. */
static int dec_result(const uint8_t *p, size_t n, struct modal_result *res, struct err *e)
{
    struct pb_reader r;
    struct pb_field f;
    int rc;
    modal_result_free(res);
    res->present = 1;
    pb_reader_init(&r, p, n);
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field == 1 && f.wire == PB_VARINT)
            res->status = (int)(int32_t)f.u;
        else if (f.field == 3 && f.wire == PB_VARINT)
            res->exitcode = (int)(int32_t)f.u;
        else if ((f.field == 2 && take_str(&f, &res->exception, e, "GenericResult") < 0) ||
                 (f.field == 4 && take_str(&f, &res->traceback, e, "GenericResult") < 0) ||
                 (f.field == 13 && take_str(&f, &res->propagation_reason, e, "GenericResult") < 0))
            return -1;
    }
    return rc < 0 ? bad(e, "GenericResult") : 0;
}

int modal_dec_result_at(const struct buf *msg, uint32_t field, struct modal_result *r, struct err *e)
{
    struct pb_reader sub;
    memset(r, 0, sizeof *r);
    int rc = sub_msg((const uint8_t *)msg->data, msg->len, field, &sub);
    if (rc < 0)
        return bad(e, "answer");
    return rc ? dec_result(sub.p, (size_t)(sub.end - sub.p), r, e) : 0;
}

int modal_dec_image_get_or_create(const struct buf *msg, char **image_id, struct modal_result *r, struct err *e)
{
    if (modal_dec_string(msg, 1, image_id, e) < 0)
        return -1;
    if (modal_dec_result_at(msg, 2, r, e) < 0) {
        free(*image_id);
        *image_id = NULL;
        return -1;
    }
    return 0;
}

void modal_enc_image_join(struct buf *b, const char *image_id, float timeout_s, const char *last_entry_id)
{
    pb_put_str(b, 1, image_id);
    pb_put_float(b, 2, timeout_s);
    pb_put_str_nz(b, 3, last_entry_id);
}

void modal_logs_free(struct modal_logs *l)
{
    buf_free(&l->text);
    free(l->entry_id);
    modal_result_free(&l->result);
    memset(l, 0, sizeof *l);
}

/* TaskLogs.data = 1, appended to text. */
static int dec_task_logs(const struct pb_field *item, struct buf *text, struct err *e)
{
    struct pb_reader r;
    struct pb_field f;
    int rc;
    pb_reader_init(&r, item->data, item->len);
    while ((rc = pb_next(&r, &f)) > 0)
        if (f.field == 1 && f.wire == PB_LEN)
            buf_append(text, f.data, f.len);
    return rc < 0 ? bad(e, "TaskLogs") : 0;
}

static int dec_logs(const struct buf *msg, struct modal_logs *l, uint32_t f_result, uint32_t f_items,
                    uint32_t f_entry, uint32_t f_eof, const char *what, struct err *e)
{
    struct pb_reader r;
    struct pb_field f;
    int rc;
    pb_reader_init(&r, msg->data, msg->len);
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f_result && f.field == f_result && f.wire == PB_LEN) {
            if (dec_result(f.data, f.len, &l->result, e) < 0)
                return -1;
        } else if (f.field == f_items && f.wire == PB_LEN) {
            if (dec_task_logs(&f, &l->text, e) < 0)
                return -1;
        } else if (f.field == f_entry) {
            if (take_str(&f, &l->entry_id, e, what) < 0)
                return -1;
        } else if (f.field == f_eof && f.wire == PB_VARINT) {
            l->eof = f.u != 0;
        }
    }
    return rc < 0 ? bad(e, what) : 0;
}

int modal_dec_image_join(const struct buf *msg, struct modal_logs *l, struct err *e)
{
    return dec_logs(msg, l, 1, 2, 3, 4, "ImageJoinStreamingResponse", e);
}

int modal_dec_logs_batch(const struct buf *msg, struct modal_logs *l, struct err *e)
{
    return dec_logs(msg, l, 0, 2, 5, 14, "TaskLogsBatch", e);
}

void modal_enc_sandbox_create(struct buf *b, const struct modal_sandbox *s)
{
    struct buf def = { 0 }, res = { 0 }, gpu = { 0 }, place = { 0 };
    /* Sandbox: entrypoint_args = 1, image_id = 3, secret_ids = 4, resources = 5, timeout_secs = 7,
     * workdir = 8, scheduler_placement = 17, cloud_provider_str = 26, name = 30. */
    for (int i = 0; i < s->argc; i++)
        pb_put_str(&def, 1, s->argv[i]);
    pb_put_str(&def, 3, s->image_id);
    for (int i = 0; i < s->secret_count; i++)
        pb_put_str(&def, 4, s->secret_ids[i]);
    /* Resources: memory_mb = 2, milli_cpu = 3, gpu_config = 4 { count = 2, gpu_type = 4 }; the SDK
     * sends an empty GPUConfig when there is no GPU. */
    pb_put_uint_nz(&res, 2, s->memory_mb);
    pb_put_uint_nz(&res, 3, s->milli_cpu);
    if (s->gpu_type) {
        pb_put_uint(&gpu, 2, s->gpu_count);
        pb_put_str(&gpu, 4, s->gpu_type);
    }
    pb_put_msg(&res, 4, &gpu);
    pb_put_msg(&def, 5, &res);
    pb_put_uint_nz(&def, 7, s->timeout_secs);
    pb_put_str_nz(&def, 8, s->workdir);
    /* SchedulerPlacement: regions = 4, nonpreemptible = 6. */
    for (int i = 0; i < s->region_count; i++)
        pb_put_str(&place, 4, s->regions[i]);
    if (s->nonpreemptible)
        pb_put_bool(&place, 6, 1);
    if (place.len)
        pb_put_msg(&def, 17, &place);
    pb_put_str_nz(&def, 26, s->cloud);
    pb_put_str_nz(&def, 30, s->name);
    pb_put_str(b, 1, s->app_id);
    pb_put_msg(b, 2, &def);
    /* SandboxTag: tag_name = 1, tag_value = 2. */
    for (int i = 0; i < s->tag_count; i++) {
        struct buf t = { 0 };
        pb_put_str(&t, 1, s->tag_names[i]);
        pb_put_str(&t, 2, s->tag_values[i]);
        pb_put_msg(b, 4, &t);
        buf_free(&t);
    }
    buf_free(&def);
    buf_free(&res);
    buf_free(&gpu);
    buf_free(&place);
}

void modal_enc_sandbox_id(struct buf *b, const char *sandbox_id, float timeout_s)
{
    pb_put_str(b, 1, sandbox_id);
    if (timeout_s >= 0)
        pb_put_float(b, 2, timeout_s);
}

void modal_enc_sandbox_logs(struct buf *b, const char *sandbox_id, int fd, float timeout_s, const char *last_entry_id)
{
    /* SandboxGetLogsRequest: sandbox_id = 1, file_descriptor = 2, timeout = 3, last_entry_id = 4. */
    pb_put_str(b, 1, sandbox_id);
    pb_put_int32(b, 2, fd);
    pb_put_float(b, 3, timeout_s);
    pb_put_str_nz(b, 4, last_entry_id);
}

int modal_dec_tag(const struct buf *msg, const char *name, char **value, struct err *e)
{
    struct pb_reader r;
    struct pb_field f;
    int rc;
    *value = NULL;
    pb_reader_init(&r, msg->data, msg->len);
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field != 1 || f.wire != PB_LEN)
            continue;
        struct buf t = { (char *)f.data, f.len, 0 };
        char *n = NULL, *v = NULL;
        if (modal_dec_string(&t, 1, &n, e) < 0 || modal_dec_string(&t, 2, &v, e) < 0) {
            free(n);
            free(*value);
            *value = NULL;
            return -1;
        }
        if (n && !strcmp(n, name)) {
            free(*value);
            *value = v ? v : xstrdup("");
            v = NULL;
        }
        free(n);
        free(v);
    }
    if (rc < 0) {
        free(*value);
        *value = NULL;
        return bad(e, "SandboxTagsGetResponse");
    }
    return 0;
}
