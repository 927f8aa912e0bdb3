/* The kubernetes flavor's Job for a manifest, without the API client: settings parsed and the job
 * checked as validate does, then the body submit would send.
 *
 *   kube_job MANIFEST.json SETTINGS.json [ATTEMPT]
 *
 * The manifest's URI is <run_uri>manifest.json. Prints the Job as JSON; exit 1 with the
 * flavor's message on stderr when the settings or the job are refused. */
#include "../../flavors/kubernetes/kubernetes.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    struct err e = { 0 };
    if (argc < 3) {
        fprintf(stderr, "usage: kube_job MANIFEST.json SETTINGS.json [ATTEMPT]\n");
        return 2;
    }
    cJSON *doc = NULL, *settings = NULL;
    struct manifest m = { 0 };
    struct kube_cfg c;
    int rc = 1;
    if (json_read_file(argv[1], &doc, &e) < 0 || manifest_from_json(doc, 0, &m, &e) < 0 ||
        json_read_file(argv[2], &settings, &e) < 0) {
        fprintf(stderr, "kube_job: %s\n", e.msg);
        cJSON_Delete(doc);
        return 1;
    }
    char *mu = xasprintf("%smanifest.json", m.run_uri);
    struct job j = { .m = &m, .manifest_uri = mu, .settings = settings, .attempt = argc > 3 ? atoi(argv[3]) : 1 };
    if (kube_parse_settings(settings, &c, &e) < 0 || kube_check_job(&j, &c, &e) < 0) {
        fprintf(stderr, "kube_job: %s\n", e.msg);
    } else {
        cJSON *b = kube_job_body(&j, &c, c.namespace ? c.namespace : "default");
        char *text = cJSON_Print(b);
        puts(text);
        cJSON_free(text);
        cJSON_Delete(b);
        rc = 0;
    }
    free(mu);
    manifest_free(&m);
    cJSON_Delete(settings);
    cJSON_Delete(doc);
    return rc;
}
