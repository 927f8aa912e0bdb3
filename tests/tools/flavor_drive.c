/* A test driver for one flavor's operations, without the submit command's follow loop:
 *
 *   flavor_drive FLAVOR validate|render|submit MANIFEST.json [SETTINGS.json]
 *   flavor_drive FLAVOR poll|cleanup HANDLE.json [SETTINGS.json]
 *   flavor_drive FLAVOR cancel HANDLE.json [SETTINGS.json] [GRACE]
 *
 * The manifest's URI is <run_uri>manifest.json (the caller writes it there). submit prints the
 * handle, render the requests, poll the remote state, all as JSON on stdout. Exit status: 0, or 1
 * with the error on stderr. */
#include "../../flavors/flavor.h"
#include "../../flavors/plugin.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/units.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[] = { "pending", "running", "exited", "gone", "cannot_start" };

static int fail(const struct err *e)
{
    fprintf(stderr, "flavor_drive: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    struct err e = { 0 };
    if (argc < 4) {
        fprintf(stderr, "usage: flavor_drive FLAVOR OP FILE [SETTINGS.json] [GRACE]\n");
        return 2;
    }
    if (http_global_init(&e) < 0)
        return fail(&e);
    const char *op = argv[2];
    cJSON *doc = NULL, *settings = NULL;
    if (json_read_file(argv[3], &doc, &e) < 0)
        return fail(&e);
    if (argc > 4 && strcmp(argv[4], "-") != 0) {
        if (json_read_file(argv[4], &settings, &e) < 0) {
            cJSON_Delete(doc);
            return fail(&e);
        }
    } else {
        settings = cJSON_CreateObject();
    }
    /* A name that is not built in is a plugin (docs/plugins.md), resolved into the settings. */
    const struct flavor_ops *ops = plugin_flavor_find(argv[1], settings, NULL, NULL, 0, &e);
    if (!ops) {
        cJSON_Delete(doc);
        cJSON_Delete(settings);
        return fail(&e);
    }
    int rc = 0;
    if (strcmp(op, "validate") == 0 || strcmp(op, "render") == 0 || strcmp(op, "submit") == 0) {
        struct manifest m;
        if (manifest_from_json(doc, 1, &m, &e) < 0) {
            rc = fail(&e);
        } else {
            char *muri = xasprintf("%smanifest.json", m.run_uri);
            struct job j = { .m = &m, .manifest_uri = muri, .settings = settings, .stepop_path = getenv("FLAVOR_DRIVE_SELF"),
                             .attempt = 1 };
            cJSON *out = NULL;
            int r = strcmp(op, "validate") == 0 ? ops->validate(&j, &e)
                    : strcmp(op, "render") == 0 ? ops->render(&j, &out, &e)
                                                : ops->submit(&j, &out, &e);
            if (r < 0) {
                rc = fail(&e);
            } else if (out) {
                char *s = json_print(out, 1);
                printf("%s\n", s);
                free(s);
            }
            cJSON_Delete(out);
            free(muri);
            manifest_free(&m);
        }
    } else if (strcmp(op, "poll") == 0) {
        struct remote_state st;
        if (ops->poll(doc, settings, &st, &e) < 0) {
            rc = fail(&e);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "phase", phase_names[st.phase]);
            cJSON_AddNumberToObject(o, "exit_code", st.exit_code);
            cJSON_AddBoolToObject(o, "oom_killed", st.oom_killed);
            if (st.reason != REASON_NONE)
                cJSON_AddStringToObject(o, "reason", status_reason_name(st.reason));
            cJSON_AddStringToObject(o, "message", st.message);
            char *s = json_print(o, 0);
            printf("%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
    } else if (strcmp(op, "cancel") == 0) {
        int64_t grace = 30000;
        if (argc > 5 && units_parse_duration(argv[5], &grace, &e) < 0)
            rc = fail(&e);
        else if (ops->cancel(doc, settings, grace, &e) < 0)
            rc = fail(&e);
    } else if (strcmp(op, "cleanup") == 0) {
        if (ops->cleanup(doc, settings, &e) < 0)
            rc = fail(&e);
    } else {
        fprintf(stderr, "flavor_drive: unknown operation %s\n", op);
        rc = 2;
    }
    cJSON_Delete(doc);
    cJSON_Delete(settings);
    curl_global_cleanup();
    return rc;
}
