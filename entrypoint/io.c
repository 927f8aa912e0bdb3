#include "io.h"

#include "../artifacts/transfer.h"
#include "../runtime/fsutil.h"
#include "../runtime/http.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *io_resolve(const char *workdir, const char *path)
{
    if (path[0] == '/')
        return xstrdup(path);
    return xasprintf("%s/%s", strcmp(workdir, "/") == 0 ? "" : workdir, path);
}

int io_prepare_outputs(const struct manifest *m, const char *workdir, unsigned char **created, struct err *e)
{
    *created = xcalloc((size_t)m->output_count + 1, 1);
    for (int i = 0; i < m->output_count; i++) {
        const struct manifest_output *out = &m->outputs[i];
        char *path = io_resolve(workdir, out->path);
        struct stat st;
        int existed = lstat(path, &st) == 0;
        int rc = out->format == PACK_FILE ? fs_mkdir_parents(path, e) : fs_mkdir_p(path, e);
        (*created)[i] = rc == 0 && !existed && out->format != PACK_FILE;
        free(path);
        if (rc < 0)
            return err_prefix(e, "outputs[%d] (%s): ", i, out->name);
    }
    return 0;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* A phase's deadline: the HTTP layer's cancel deadline while the phase runs, which transfers
 * also check between chunks (so the file store stops too); also, the SIGTERM flag while fetching. */
struct deadline {
    int64_t at;
};

static void deadline_start(struct deadline *d, int64_t timeout_ms, volatile sig_atomic_t *also)
{
    d->at = time_mono_ms() + timeout_ms;
    http_set_cancel_flag(also);
    http_set_cancel_deadline(d->at);
}

static int deadline_expired(const struct deadline *d)
{
    return time_mono_ms() >= d->at;
}

static void deadline_stop(struct deadline *d)
{
    (void)d;
    http_set_cancel_flag(NULL);
    http_set_cancel_deadline(0);
}

/* The deadline's own message, replacing the cancellation it caused. ERR_NETWORK: a store too slow
 * here may be faster from elsewhere (reason_kind system for inputs). */
static int fetch_deadline_error(struct err *e, const char *input, int64_t ms)
{
    char dur[32];
    units_format_duration(ms, dur, sizeof dur);
    return err_set(e, ERR_NETWORK, "input %s: stopped at the deadline: fetching inputs took longer than fetch_timeout %s",
                   input, dur);
}

static int upload_deadline_error(struct err *e, const char *output, int64_t ms)
{
    char dur[32];
    units_format_duration(ms, dur, sizeof dur);
    return err_set(e, ERR_NETWORK,
                   "output %s: stopped at the deadline: uploading outputs took longer than upload_timeout %s", output, dur);
}

int io_fetch_inputs(const struct manifest *m, const char *workdir, volatile sig_atomic_t *cancel, struct err *e)
{
    struct unpack_limits limits;
    if (unpack_limits_from_env(&limits, e) < 0)
        return -1;
    struct deadline dl;
    deadline_start(&dl, m->fetch_timeout_ms, cancel);
    for (int i = 0; i < m->input_count; i++) {
        const struct manifest_input *in = &m->inputs[i];
        if (deadline_expired(&dl)) {
            deadline_stop(&dl);
            return fetch_deadline_error(e, in->name, m->fetch_timeout_ms);
        }
        char red[512];
        uri_redact(in->uri, red, sizeof red);
        char *dest = io_resolve(workdir, in->path);
        log_info("fetching input %s from %s%s", in->name, red, in->unpack ? " (unpacking)" : "");
        struct store *s = NULL;
        struct transfer_options o = { .unpack = in->unpack, .expect_sha256 = in->sha256, .limits = limits };
        struct transfer_result r;
        int rc = store_open(in->uri, &s, e);
        if (rc == 0)
            rc = transfer_get(s, in->uri, dest, &o, &r, e);
        store_close(s);
        if (rc < 0) {
            free(dest);
            deadline_stop(&dl);
            if (deadline_expired(&dl))
                return fetch_deadline_error(e, in->name, m->fetch_timeout_ms);
            return err_prefix(e, "input %s: ", in->name);
        }
        char size[32];
        units_format_size(r.size, size, sizeof size);
        log_info("input %s: %s, sha256 %s -> %s", in->name, size, r.sha256, dest);
        free(dest);
    }
    deadline_stop(&dl);
    return 0;
}

int io_upload_outputs(const struct manifest *m, const char *workdir, const unsigned char *created,
                      struct store *run_store, cJSON **index, struct err *e)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "run_id", m->run_id);
    cJSON *list = cJSON_AddArrayToObject(doc, "outputs");
    int failed = 0;
    struct deadline dl;
    deadline_start(&dl, m->upload_timeout_ms, NULL);
    for (int i = 0; i < m->output_count; i++) {
        const struct manifest_output *out = &m->outputs[i];
        if (deadline_expired(&dl)) {
            struct err de;
            upload_deadline_error(&de, out->name, m->upload_timeout_ms);
            log_error("%s", de.msg);
            if (!failed) {
                failed = 1;
                *e = de;
            }
            continue;
        }
        char *path = io_resolve(workdir, out->path);
        struct stat st;
        int exists = stat(path, &st) == 0 && !(created && created[i] && S_ISDIR(st.st_mode) && dir_is_empty(path));
        if (!exists || (out->format == PACK_FILE && !S_ISREG(st.st_mode))) {
            if (!out->optional && !failed) {
                failed = 1;
                err_set(e, ERR_NOT_FOUND, "output %s: %s %s", out->name, path,
                        exists ? "is not a regular file (format file)" : "does not exist");
            }
            if (out->optional)
                log_info("optional output %s: %s does not exist; skipped", out->name, path);
            free(path);
            continue;
        }
        char red[512];
        uri_redact(out->uri, red, sizeof red);
        log_info("uploading output %s (%s) to %s", out->name, pack_format_name(out->format), red);
        int under_run = run_store && str_has_prefix(out->uri, m->run_uri);
        struct store *s = under_run ? run_store : NULL;
        struct transfer_options o = { .format = out->format };
        struct transfer_result r;
        struct err oe = { 0 };
        int rc = under_run ? 0 : store_open(out->uri, &s, &oe);
        if (rc == 0)
            rc = transfer_put(s, path, out->uri, &o, &r, &oe);
        if (!under_run)
            store_close(s);
        free(path);
        if (rc < 0) {
            if (deadline_expired(&dl))
                upload_deadline_error(&oe, out->name, m->upload_timeout_ms);
            else
                err_prefix(&oe, "output %s: ", out->name);
            log_error("%s", oe.msg);
            if (!failed) {
                failed = 1;
                *e = oe;
            }
            continue;
        }
        char size[32];
        units_format_size(r.size, size, sizeof size);
        log_info("output %s: %s, sha256 %s", out->name, size, r.sha256);
        cJSON *o2 = cJSON_CreateObject();
        cJSON_AddStringToObject(o2, "name", out->name);
        /* The store keeps no credential: a presigned or user:password@ URI is recorded redacted. */
        char *stored = uri_redact_secrets(out->uri);
        cJSON_AddStringToObject(o2, "uri", stored);
        free(stored);
        cJSON_AddStringToObject(o2, "format", pack_format_name(out->format));
        cJSON_AddNumberToObject(o2, "size", (double)r.size);
        cJSON_AddStringToObject(o2, "sha256", r.sha256);
        cJSON_AddNumberToObject(o2, "entries", (double)r.entries);
        cJSON_AddItemToArray(list, o2);
    }
    deadline_stop(&dl);
    *index = doc;
    return failed ? -1 : 0;
}
