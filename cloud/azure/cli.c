/* The Azure CLI's signed-in account: `az account get-access-token --scope S --output json`, as
 * AzureCliCredential runs it. The CLI's own complaints ("Please run 'az login'") reach our
 * stderr; its stdout, which holds the token, is only parsed. */
#include "creds.h"

#include "../../runtime/jsonutil.h"
#include "../../runtime/subproc.h"
#include "../../runtime/util.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int azure_parse_cli_answer(const char *body, size_t len, struct azure_tok *t, struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (json_parse(body ? body : "", len, "az", &j, &je) < 0)
        return err_set(e, ERR_AUTH, "az account get-access-token printed something that is not JSON");
    const char *token = json_str(j, "accessToken"), *local = json_str(j, "expiresOn");
    long long on = 0;
    struct tm tm = { 0 };
    int rc = 0;
    if (!token || !*token) {
        rc = err_set(e, ERR_AUTH, "az account get-access-token printed no accessToken");
    } else if (azure_json_seconds(j, "expires_on", &on) && on > 0) {
        t->expires = (time_t)on;
    } else if (local && strptime(local, "%Y-%m-%d %H:%M:%S", &tm)) {
        /* Older CLIs give only the local time. */
        tm.tm_isdst = -1;
        t->expires = mktime(&tm);
    } else {
        rc = err_set(e, ERR_AUTH, "az account get-access-token printed no usable expires_on or expiresOn");
    }
    if (rc == 0 && t->expires <= 0)
        rc = err_set(e, ERR_AUTH, "az account get-access-token printed an unusable expiry");
    if (rc == 0)
        t->token = xstrdup(token);
    json_delete_wiped(j);
    return rc;
}

int azure_cli_credential(const char *scope, struct azure_tok *t, int *configured, struct err *e)
{
    if (scope[0] == '-')
        return err_set(e, ERR_INVALID, "scope \"%s\" cannot be passed to az", scope);
    const char *argv[] = { "az", "account", "get-access-token", "--scope", scope, "--output", "json", NULL };
    struct subproc_opts o = { .argv = argv, .max_output = 256 * 1024, .timeout_ms = 30000,
                              .what = "Azure CLI" };
    struct subproc_result r = { 0 };
    struct err se = { 0 };
    int rc;
    if (subproc_run(&o, &r, &se) < 0) {
        rc = se.kind == ERR_NOT_FOUND ? err_set(e, ERR_AUTH, "az is not on PATH") : err_set(e, se.kind, "%s", se.msg);
    } else if (r.signal) {
        rc = err_set(e, ERR_AUTH, "az was killed by signal %d", r.signal);
    } else if (r.exit_code != 0) {
        rc = err_set(e, ERR_AUTH, "az account get-access-token exited with status %d (signed in with 'az login'?)",
                     r.exit_code);
    } else {
        *configured = 1;
        rc = azure_parse_cli_answer(r.out.data, r.out.len, t, e);
    }
    if (r.out.data)
        OPENSSL_cleanse(r.out.data, r.out.len);
    subproc_result_free(&r);
    return rc;
}
