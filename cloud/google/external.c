/* external_account credentials (workload identity federation): a subject token from a file, a URL
 * or (when allowed) an executable, exchanged at STS for a Google token, then, when the file asks
 * for it, for a service account's token (generateAccessToken). */
#include "creds.h"

#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/subproc.h"
#include "../../runtime/uri.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT_MAX (64 * 1024)

static const cJSON *source_of(const cJSON *doc)
{
    return cJSON_GetObjectItemCaseSensitive(doc, "credential_source");
}

int google_external_check(const cJSON *doc, struct err *e)
{
    const cJSON *cs = source_of(doc);
    const char *aud = json_str(doc, "audience"), *stt = json_str(doc, "subject_token_type");
    if (!aud || !*aud)
        return err_set(e, ERR_INVALID, "an external_account file needs an \"audience\" string");
    if (!stt || !*stt)
        return err_set(e, ERR_INVALID, "an external_account file needs a \"subject_token_type\" string");
    if (!cJSON_IsObject(cs))
        return err_set(e, ERR_INVALID, "an external_account file needs a \"credential_source\" object");
    const char *env_id = json_str(cs, "environment_id");
    if (env_id)
        return err_set(e, ERR_UNSUPPORTED, "external_account credentials sourced from %s (environment_id \"%.16s\") "
                       "are not supported; use a file, URL or executable credential_source",
                       strncmp(env_id, "aws", 3) == 0 ? "AWS" : "a cloud environment", env_id);
    if (cJSON_GetObjectItemCaseSensitive(cs, "certificate"))
        return err_set(e, ERR_UNSUPPORTED, "external_account credentials sourced from an X.509 certificate are not "
                       "supported; use a file, URL or executable credential_source");
    int kinds = !!cJSON_GetObjectItemCaseSensitive(cs, "file") + !!cJSON_GetObjectItemCaseSensitive(cs, "url") +
                !!cJSON_GetObjectItemCaseSensitive(cs, "executable");
    if (kinds != 1)
        return err_set(e, ERR_INVALID, "credential_source needs exactly one of \"file\", \"url\" or \"executable\"");
    if (cJSON_GetObjectItemCaseSensitive(cs, "file") && !json_str(cs, "file"))
        return err_set(e, ERR_INVALID, "credential_source.file must be a string");
    if (cJSON_GetObjectItemCaseSensitive(cs, "url") && !json_str(cs, "url"))
        return err_set(e, ERR_INVALID, "credential_source.url must be a string");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(cs, "executable");
    if (ex && (!cJSON_IsObject(ex) || !json_str(ex, "command") || !*json_str(ex, "command")))
        return err_set(e, ERR_INVALID, "credential_source.executable needs a \"command\" string");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(cs, "format");
    if (fmt) {
        const char *t = json_str(fmt, "type");
        if (!t || (strcmp(t, "text") != 0 && strcmp(t, "json") != 0))
            return err_set(e, ERR_INVALID, "credential_source.format.type must be \"text\" or \"json\"");
        if (strcmp(t, "json") == 0 && !json_str(fmt, "subject_token_field_name"))
            return err_set(e, ERR_INVALID, "credential_source.format of type json needs \"subject_token_field_name\"");
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(doc, "service_account_impersonation_url");
    if (u && !cJSON_IsString(u))
        return err_set(e, ERR_INVALID, "service_account_impersonation_url must be a string");
    return 0;
}

/* The subject token out of what the file or URL gave, per credential_source.format. */
static int subject_from(const char *data, size_t len, const cJSON *cs, const char *what, char **out, struct err *e)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(cs, "format");
    const char *type = fmt ? json_str(fmt, "type") : "text";
    if (strcmp(type, "json") == 0) {
        const char *field = json_str(fmt, "subject_token_field_name");
        cJSON *j = NULL;
        struct err je;
        if (json_parse(data, len, what, &j, &je) < 0)
            return err_set(e, ERR_AUTH, "%s is not JSON (credential_source.format is json)", what);
        const char *v = json_str(j, field);
        int rc = 0;
        if (!v || !*v)
            rc = err_set(e, ERR_AUTH, "%s has no \"%s\" string", what, field);
        else
            *out = xstrdup(v);
        json_delete_wiped(j);
        return rc;
    }
    size_t b = 0, n = len;
    while (b < n && (data[b] == ' ' || data[b] == '\n' || data[b] == '\r' || data[b] == '\t'))
        b++;
    while (n > b && (data[n - 1] == ' ' || data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == '\t'))
        n--;
    if (n == b)
        return err_set(e, ERR_AUTH, "%s is empty", what);
    *out = xstrndup(data + b, n - b);
    return 0;
}

static int subject_file(const cJSON *cs, char **out, struct err *e)
{
    const char *path = json_str(cs, "file");
    char *text;
    size_t len;
    /* Read at every refresh: the platform rotates the file. */
    if (read_small_file(path, SUBJECT_MAX, &text, &len) < 0)
        return err_set(e, ERR_AUTH, "cannot read the subject token file %s: %s", path, strerror(errno));
    char what[600];
    snprintf(what, sizeof what, "the subject token file %s", path);
    int rc = subject_from(text, len, cs, what, out, e);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

static int subject_url(const cJSON *cs, char **out, struct err *e)
{
    const char *url = json_str(cs, "url");
    char red[512];
    uri_redact(url, red, sizeof red);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(cs, "headers");
    size_t n = 0;
    char *lines[33] = { 0 };
    const cJSON *h;
    cJSON_ArrayForEach(h, hs)
    {
        if (n < 32 && cJSON_IsString(h) && h->string)
            lines[n++] = xasprintf("%s: %s", h->string, h->valuestring);
    }
    struct http_request req = { .method = "GET", .url = url, .headers = (const char *const *)lines,
                                .max_body = SUBJECT_MAX, .timeout_ms = 30000 };
    struct http_client *client = http_client_new();
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0) {
        err_prefix(e, "subject token URL %s: ", red);
    } else {
        char what[600];
        snprintf(what, sizeof what, "the subject token from %s", red);
        rc = subject_from(resp.body.data ? resp.body.data : "", resp.body.len, cs, what, out, e);
    }
    if (resp.body.data)
        OPENSSL_cleanse(resp.body.data, resp.body.len);
    http_response_free(&resp);
    http_client_free(client);
    for (size_t i = 0; i < n; i++)
        google_secret_free(lines[i]);
    return rc;
}

/* The executable's answer (Google's executable-sourced credentials format): version 1,
 * success, token_type, id_token or saml_response, expiration_time (an answer past it is refused,
 * which is how a cached output file goes stale). */
static int executable_answer(const char *data, size_t len, const char *what, char **out, struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (json_parse(data, len, what, &j, &je) < 0)
        return err_set(e, ERR_AUTH, "%s is not JSON", what);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "success");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expiration_time");
    const char *tt = json_str(j, "token_type");
    int rc = 0;
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        rc = err_set(e, ERR_AUTH, "%s: \"version\" must be 1", what);
    } else if (!cJSON_IsBool(ok)) {
        rc = err_set(e, ERR_AUTH, "%s has no \"success\" boolean", what);
    } else if (cJSON_IsFalse(ok)) {
        const char *code = json_str(j, "code"), *msg = json_str(j, "message");
        rc = err_set(e, ERR_AUTH, "%s reported failure: %.64s: %.256s", what, code ? code : "(no code)",
                     msg ? msg : "(no message)");
    } else if (!tt) {
        rc = err_set(e, ERR_AUTH, "%s has no \"token_type\"", what);
    } else if (exp && (!cJSON_IsNumber(exp) || exp->valuedouble <= (double)time(NULL))) {
        rc = err_set(e, ERR_AUTH, "%s has expired", what);
    } else {
        const char *tok = strcmp(tt, "urn:ietf:params:oauth:token-type:saml2") == 0 ? json_str(j, "saml_response")
                                                                                  : json_str(j, "id_token");
        if (!tok || !*tok)
            rc = err_set(e, ERR_AUTH, "%s has no %s", what,
                         strcmp(tt, "urn:ietf:params:oauth:token-type:saml2") == 0 ? "saml_response" : "id_token");
        else
            *out = xstrdup(tok);
    }
    json_delete_wiped(j);
    return rc;
}

static int subject_executable(const cJSON *doc, const cJSON *cs, char **out, struct err *e)
{
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(cs, "executable");
    const char *cmd = json_str(ex, "command");
    if (!env_flag("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES"))
        return err_set(e, ERR_AUTH, "credential_source.executable runs a program, which needs "
                       "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 (as in Google's libraries)");
    const char *output_file = json_str(ex, "output_file");
    if (output_file) {
        char *text;
        size_t len;
        /* A cached answer that is still valid saves running the program. */
        if (read_small_file(output_file, SUBJECT_MAX, &text, &len) == 0) {
            struct err ce = { 0 };
            int rc = executable_answer(text, len, "the executable's output file", out, &ce);
            OPENSSL_cleanse(text, len);
            free(text);
            if (rc == 0)
                return 0;
        }
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(ex, "timeout_millis");
    long timeout = cJSON_IsNumber(tm) ? (long)tm->valuedouble : 30000;
    if (timeout < 5000 || timeout > 120000)
        return err_set(e, ERR_INVALID, "credential_source.executable.timeout_millis must be within 5000 and 120000");
    /* The command line is split on spaces, as Google's libraries do (no shell). */
    char *copy = xstrdup(cmd);
    const char *argv[64];
    size_t argc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    const char *imp = json_str(doc, "service_account_impersonation_url");
    char *email = NULL;
    if (imp) {
        const char *at = strstr(imp, "serviceAccounts/"), *colon = at ? strstr(at, ":generateAccessToken") : NULL;
        if (at && colon)
            email = xstrndup(at + 16, (size_t)(colon - at - 16));
    }
    char *env[6];
    size_t en = 0;
    env[en++] = xasprintf("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=%s", json_str(doc, "audience"));
    env[en++] = xasprintf("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=%s", json_str(doc, "subject_token_type"));
    env[en++] = xstrdup("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0");
    if (email)
        env[en++] = xasprintf("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL=%s", email);
    if (output_file)
        env[en++] = xasprintf("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=%s", output_file);
    env[en] = NULL;
    struct subproc_opts o = { .argv = argv, .env_extra = (const char *const *)env, .max_output = SUBJECT_MAX,
                              .timeout_ms = timeout, .what = "the credential_source executable" };
    struct subproc_result r = { 0 };
    int rc = subproc_run(&o, &r, e);
    if (rc < 0)
        err_prefix(e, "credential_source.executable: ");
    else if (r.signal || r.exit_code != 0)
        rc = err_set(e, ERR_AUTH, "the credential_source executable %s %d",
                     r.signal ? "was killed by signal" : "exited", r.signal ? r.signal : r.exit_code);
    else
        rc = executable_answer(r.out.data ? r.out.data : "", r.out.len, "the credential_source executable's answer",
                               out, e);
    if (r.out.data)
        OPENSSL_cleanse(r.out.data, r.out.len);
    subproc_result_free(&r);
    for (size_t i = 0; i < en; i++)
        free(env[i]);
    free(email);
    free(copy);
    return rc;
}

int google_external_token(const cJSON *doc, const char *scope, struct google_token *t, struct err *e)
{
    const cJSON *cs = source_of(doc);
    char *subject = NULL;
    int rc = json_str(cs, "file") ? subject_file(cs, &subject, e)
             : json_str(cs, "url") ? subject_url(cs, &subject, e)
                                   : subject_executable(doc, cs, &subject, e);
    if (rc < 0)
        return -1;
    const char *imp = json_str(doc, "service_account_impersonation_url");
    const char *token_url = json_str(doc, "token_url");
    if (!token_url || !*token_url)
        token_url = GOOGLE_STS_URI_DEFAULT;
    struct buf form = { 0 };
    google_form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
    google_form_add(&form, "audience", json_str(doc, "audience"));
    /* Impersonation needs cloud-platform on the federated token; the final scope is asked then. */
    google_form_add(&form, "scope", imp ? "https://www.googleapis.com/auth/cloud-platform" : scope);
    google_form_add(&form, "requested_token_type", "urn:ietf:params:oauth:token-type:access_token");
    google_form_add(&form, "subject_token_type", json_str(doc, "subject_token_type"));
    google_form_add(&form, "subject_token", subject);
    google_secret_free(subject);
    const char *wpup = json_str(doc, "workforce_pool_user_project");
    const char *cid = json_str(doc, "client_id"), *csec = json_str(doc, "client_secret");
    if (wpup && *wpup && !cid) {
        cJSON *opt = cJSON_CreateObject();
        cJSON_AddStringToObject(opt, "userProject", wpup);
        char *o = json_print(opt, 0);
        cJSON_Delete(opt);
        google_form_add(&form, "options", o);
        free(o);
    }
    char *basic = cid ? xasprintf("%s:%s", cid, csec ? csec : "") : NULL;
    struct google_token sts = { 0 };
    rc = google_token_request(token_url, "application/x-www-form-urlencoded", form.data, basic,
                              "the STS token exchange", imp ? &sts : t, e);
    google_secret_free(basic);
    OPENSSL_cleanse(form.data, form.len);
    buf_free(&form);
    if (rc < 0 || !imp)
        return rc;
    const cJSON *sai = cJSON_GetObjectItemCaseSensitive(doc, "service_account_impersonation");
    const cJSON *life = sai ? cJSON_GetObjectItemCaseSensitive(sai, "token_lifetime_seconds") : NULL;
    rc = google_impersonate(imp, sts.token, scope, NULL, cJSON_IsNumber(life) ? (long)life->valuedouble : 3600, t, e);
    google_token_clear(&sts);
    return rc;
}
