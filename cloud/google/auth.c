/* Google application default credentials (auth.h): the chain, the process-wide token cache, the
 * project and the signing hooks. The exchanges are in oauth.c, jwt.c and external.c. */
#include "auth.h"

#include "creds.h"

#include "../../runtime/doctor.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A token with less than this left is fetched again before use, as Google's libraries do. */
#define REFRESH_WINDOW_S 300

/* ---- sources ------------------------------------------------------------------------- */

void google_source_free(struct google_source *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    json_delete_wiped(s->doc);
    google_source_free(s->inner);
    free(s->path);
    free(s);
}

struct google_source *google_source_metadata(void)
{
    struct google_source *s = xcalloc(1, sizeof *s);
    s->type = GOOGLE_METADATA;
    return s;
}

/* A required non-empty string member; the message names the member, never its value. */
static const char *need(const cJSON *doc, const char *key, const char *type, struct err *e)
{
    const char *v = json_str(doc, key);
    if (!v || !*v)
        err_set(e, ERR_INVALID, "a %s file needs a \"%s\" string", type, key);
    return v && *v ? v : NULL;
}

static int load_service_account(struct google_source *s, struct err *e)
{
    const char *pem = need(s->doc, "private_key", "service_account", e);
    s->email = need(s->doc, "client_email", "service_account", e);
    if (!pem || !s->email)
        return -1;
    s->key_id = json_str(s->doc, "private_key_id");
    s->token_uri = json_str(s->doc, "token_uri");
    if (!s->token_uri || !*s->token_uri)
        s->token_uri = GOOGLE_TOKEN_URI_DEFAULT;
    return google_key_load(pem, &s->key, e);
}

static int load_authorized_user(struct google_source *s, struct err *e)
{
    if (!need(s->doc, "client_id", "authorized_user", e) || !need(s->doc, "client_secret", "authorized_user", e) ||
        !need(s->doc, "refresh_token", "authorized_user", e))
        return -1;
    s->token_uri = json_str(s->doc, "token_uri");
    if (!s->token_uri || !*s->token_uri)
        s->token_uri = GOOGLE_TOKEN_URI_DEFAULT;
    return 0;
}

static int load_impersonated(struct google_source *s, struct err *e)
{
    if (!need(s->doc, "service_account_impersonation_url", "impersonated_service_account", e))
        return -1;
    cJSON *inner = cJSON_DetachItemFromObjectCaseSensitive(s->doc, "source_credentials");
    if (!cJSON_IsObject(inner)) {
        json_delete_wiped(inner);
        return err_set(e, ERR_INVALID, "an impersonated_service_account file needs a \"source_credentials\" object");
    }
    const char *t = json_str(inner, "type");
    if (t && strcmp(t, "impersonated_service_account") == 0) {
        json_delete_wiped(inner);
        return err_set(e, ERR_UNSUPPORTED, "source_credentials of type impersonated_service_account (a chain of "
                       "impersonations) is not supported; list the intermediate accounts in \"delegates\"");
    }
    if (google_source_from_doc(inner, NULL, &s->inner, e) < 0)
        return err_prefix(e, "source_credentials: ");
    return 0;
}

int google_source_from_doc(cJSON *doc, const char *path, struct google_source **out, struct err *e)
{
    *out = NULL;
    struct google_source *s = xcalloc(1, sizeof *s);
    s->doc = doc;
    s->path = path ? xstrdup(path) : NULL;
    const char *type = json_str(doc, "type");
    int rc;
    if (!cJSON_IsObject(doc))
        rc = err_set(e, ERR_INVALID, "not a JSON object");
    else if (!type)
        rc = err_set(e, ERR_INVALID, "no \"type\" (service_account, authorized_user, external_account or "
                     "impersonated_service_account)");
    else if (strcmp(type, "service_account") == 0)
        s->type = GOOGLE_SERVICE_ACCOUNT, rc = load_service_account(s, e);
    else if (strcmp(type, "authorized_user") == 0)
        s->type = GOOGLE_AUTHORIZED_USER, rc = load_authorized_user(s, e);
    else if (strcmp(type, "external_account") == 0)
        s->type = GOOGLE_EXTERNAL_ACCOUNT, rc = google_external_check(doc, e);
    else if (strcmp(type, "impersonated_service_account") == 0)
        s->type = GOOGLE_IMPERSONATED, rc = load_impersonated(s, e);
    else if (strcmp(type, "external_account_authorized_user") == 0 || strcmp(type, "gdch_service_account") == 0)
        rc = err_set(e, ERR_UNSUPPORTED, "credentials of type \"%s\" are not supported; use a service_account "
                     "key, an authorized_user file (gcloud auth application-default login), workload identity "
                     "federation (external_account) or the metadata server", type);
    else
        rc = err_set(e, ERR_INVALID, "unknown credentials type \"%.64s\"", type);
    if (rc < 0) {
        if (path)
            err_prefix(e, "%s: ", path);
        google_source_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int google_source_from_file(const char *path, struct google_source **out, struct err *e)
{
    char *text;
    size_t len;
    *out = NULL;
    if (read_small_file(path, 1u << 20, &text, &len) < 0)
        return err_set(e, errno == ENOENT ? ERR_INVALID : ERR_IO, "%s: cannot read the credentials file: %s", path,
                       strerror(errno));
    cJSON *doc = NULL;
    struct err je;
    int rc = json_parse(text, len, path, &doc, &je);
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc < 0)
        return err_set(e, ERR_INVALID, "%s", je.msg); /* offsets only, never the text */
    if (json_check_unique_keys(doc, e) < 0) {
        json_delete_wiped(doc);
        return err_prefix(e, "%s: ", path);
    }
    return google_source_from_doc(doc, path, out, e);
}

static const char *type_name(enum google_source_type t)
{
    switch (t) {
    case GOOGLE_SERVICE_ACCOUNT:
        return "service account key";
    case GOOGLE_AUTHORIZED_USER:
        return "authorized user";
    case GOOGLE_EXTERNAL_ACCOUNT:
        return "external account";
    case GOOGLE_IMPERSONATED:
        return "impersonated service account";
    case GOOGLE_METADATA:
        return "metadata server";
    }
    return "?";
}

int google_source_token(struct google_source *s, const char *scope, struct google_token *t, struct err *e)
{
    memset(t, 0, sizeof *t);
    struct buf form = { 0 };
    int rc;
    switch (s->type) {
    case GOOGLE_SERVICE_ACCOUNT: {
        char *assertion;
        if (google_jwt_assertion(s->key, s->key_id, s->email, s->token_uri, scope, time(NULL), &assertion, e) < 0)
            return -1;
        google_form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        google_form_add(&form, "assertion", assertion);
        google_secret_free(assertion);
        rc = google_token_request(s->token_uri, "application/x-www-form-urlencoded", form.data, NULL,
                                  "the service account's token endpoint", t, e);
        break;
    }
    case GOOGLE_AUTHORIZED_USER:
        google_form_add(&form, "grant_type", "refresh_token");
        google_form_add(&form, "client_id", json_str(s->doc, "client_id"));
        google_form_add(&form, "client_secret", json_str(s->doc, "client_secret"));
        google_form_add(&form, "refresh_token", json_str(s->doc, "refresh_token"));
        rc = google_token_request(s->token_uri, "application/x-www-form-urlencoded", form.data, NULL,
                                  "the refresh_token grant", t, e);
        break;
    case GOOGLE_EXTERNAL_ACCOUNT:
        rc = google_external_token(s->doc, scope, t, e);
        break;
    case GOOGLE_IMPERSONATED: {
        struct google_token src;
        if (google_source_token(s->inner, GOOGLE_SCOPE_CLOUD_PLATFORM, &src, e) < 0)
            return err_prefix(e, "source_credentials: ");
        const cJSON *life = cJSON_GetObjectItemCaseSensitive(s->doc, "lifetime");
        rc = google_impersonate(json_str(s->doc, "service_account_impersonation_url"), src.token, scope,
                                cJSON_GetObjectItemCaseSensitive(s->doc, "delegates"),
                                cJSON_IsNumber(life) ? (long)life->valuedouble : 3600, t, e);
        google_token_clear(&src);
        break;
    }
    case GOOGLE_METADATA:
        rc = google_metadata_token(scope, t, e);
        break;
    default:
        rc = err_set(e, ERR_INTERNAL, "unknown credential source");
    }
    if (form.data)
        OPENSSL_cleanse(form.data, form.len);
    buf_free(&form);
    if (rc < 0)
        google_token_clear(t);
    return rc;
}

/* ---- the chain and the process-wide cache -------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct google_source *source;  /* found by the chain, NULL before */
static const char *provider;           /* auth.h's names */
static char *passed;                   /* why the sources before the metadata server gave nothing */
static struct google_token cached;
static char *project;

static char *gcloud_adc_path(void)
{
    const char *dir = env_or("CLOUDSDK_CONFIG", NULL);
    if (dir)
        return xasprintf("%s/application_default_credentials.json", dir);
    return xasprintf("%s/.config/gcloud/application_default_credentials.json", env_or("HOME", ""));
}

/* The source, found once: a file named or present ends the chain, failing or not, as in Google's
 * libraries; without one the metadata server is the source (and is asked only for a token). */
static int find_source(struct err *e)
{
    if (source)
        return 0;
    const char *gac = env_or("GOOGLE_APPLICATION_CREDENTIALS", NULL);
    if (gac) {
        if (google_source_from_file(gac, &source, e) < 0)
            return err_prefix(e, "GOOGLE_APPLICATION_CREDENTIALS: ");
        provider = type_name(source->type);
        return 0;
    }
    char *adc = gcloud_adc_path();
    struct stat st;
    if (stat(adc, &st) == 0) {
        int rc = google_source_from_file(adc, &source, e);
        if (rc < 0)
            err_prefix(e, "gcloud ADC file: ");
        else
            provider = "gcloud ADC";
        free(adc);
        return rc;
    }
    free(passed);
    passed = xasprintf("GOOGLE_APPLICATION_CREDENTIALS is not set; no gcloud ADC file at %s", adc);
    free(adc);
    source = google_source_metadata();
    provider = "metadata server";
    return 0;
}

static int fetch(struct google_token *t, struct err *e)
{
    if (google_source_token(source, GOOGLE_SCOPE_CLOUD_PLATFORM, t, e) == 0) {
        log_debug("Google access token from the %s", provider);
        return 0;
    }
    if (source->type == GOOGLE_METADATA && passed) {
        int transient = e->transient;
        char why[sizeof e->msg];
        str_copy(why, sizeof why, e->msg);
        err_set(e, ERR_AUTH, "no Google credentials (%s; %s)", passed, why);
        e->transient = transient;
        return -1;
    }
    return err_prefix(e, "Google credentials from the %s: ", provider);
}

int google_auth_token(char **token, time_t *expires, int force_refresh, struct err *e)
{
    *token = NULL;
    pthread_mutex_lock(&lock);
    time_t now = time(NULL);
    int rc = find_source(e);
    if (rc == 0 && (!cached.token || force_refresh || cached.expires - now < REFRESH_WINDOW_S)) {
        struct google_token fresh;
        if (fetch(&fresh, e) == 0) {
            google_token_clear(&cached);
            cached = fresh;
        } else if (cached.token && !force_refresh && cached.expires > now + 10) {
            /* Still valid for a while: keep going and try again on the next request. */
            log_warn("%s (the current token is valid for %llds more)", e->msg, (long long)(cached.expires - now));
        } else {
            rc = -1;
        }
    }
    if (rc == 0) {
        *token = xstrdup(cached.token);
        if (expires)
            *expires = cached.expires;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

/* The project billed for quota (x-goog-user-project), as Google's libraries send it:
 * GOOGLE_CLOUD_QUOTA_PROJECT, else the credentials file's quota_project_id; NULL for none. */
static const char *quota_project(void)
{
    const char *env = env_or("GOOGLE_CLOUD_QUOTA_PROJECT", NULL);
    if (env)
        return env;
    const char *q = source && source->doc ? json_str(source->doc, "quota_project_id") : NULL;
    return q && *q ? q : NULL;
}

static void add_header(struct curl_slist **headers, char *line)
{
    struct curl_slist *l = curl_slist_append(*headers, line);
    google_secret_free(line);
    if (!l)
        abort();
    *headers = l;
}

int google_auth_sign(void *ctx, const struct http_request *req, struct curl_slist **headers, struct err *e)
{
    (void)ctx, (void)req;
    char *token;
    if (google_auth_token(&token, NULL, 0, e) < 0)
        return -1;
    add_header(headers, xasprintf("Authorization: Bearer %s", token));
    google_secret_free(token);
    pthread_mutex_lock(&lock);
    const char *q = quota_project();
    char *line = q ? xasprintf("x-goog-user-project: %s", q) : NULL;
    pthread_mutex_unlock(&lock);
    if (line)
        add_header(headers, line);
    return 0;
}

static char *project_from_source(struct err *e)
{
    if (source->type == GOOGLE_METADATA) {
        struct buf b = { 0 };
        if (google_metadata_get("/computeMetadata/v1/project/project-id", &b, e) < 0) {
            buf_free(&b);
            err_prefix(e, "no Google Cloud project (GOOGLE_CLOUD_PROJECT is not set; %s): ", passed ? passed : "");
            return NULL;
        }
        char *p = xstrndup(b.data, strcspn(b.data, " \r\n"));
        buf_free(&b);
        if (*p)
            return p;
        free(p);
        err_set(e, ERR_AUTH, "the metadata server answered an empty project id");
        return NULL;
    }
    const cJSON *doc = source->doc;
    const char *p = json_str(doc, "project_id");
    if (!p || !*p)
        p = json_str(doc, "quota_project_id");
    /* impersonated_service_account: its source's key or file. */
    if ((!p || !*p) && source->inner)
        p = json_str(source->inner->doc, "project_id");
    if ((!p || !*p) && source->inner)
        p = json_str(source->inner->doc, "quota_project_id");
    if (p && *p)
        return xstrdup(p);
    err_set(e, ERR_INVALID, "no Google Cloud project: GOOGLE_CLOUD_PROJECT is not set and the %s%s%s names none",
            provider, source->path ? " file " : "", source->path ? source->path : "");
    return NULL;
}

char *google_auth_project(struct err *e)
{
    const char *env = env_or("GOOGLE_CLOUD_PROJECT", env_or("GCLOUD_PROJECT", NULL));
    if (env)
        return xstrdup(env);
    pthread_mutex_lock(&lock);
    if (!project && find_source(e) == 0)
        project = project_from_source(e);
    char *p = project ? xstrdup(project) : NULL;
    pthread_mutex_unlock(&lock);
    return p;
}

const char *google_auth_provider(void)
{
    pthread_mutex_lock(&lock);
    const char *p = provider;
    pthread_mutex_unlock(&lock);
    return p;
}

char *google_auth_account(void)
{
    char *who = NULL;
    pthread_mutex_lock(&lock);
    if (source && source->type == GOOGLE_SERVICE_ACCOUNT && source->email) {
        who = xstrdup(source->email);
    } else if (source && source->type == GOOGLE_IMPERSONATED) {
        /* .../serviceAccounts/EMAIL:generateAccessToken */
        const char *url = json_str(source->doc, "service_account_impersonation_url");
        const char *at = url ? strstr(url, "/serviceAccounts/") : NULL;
        const char *colon = at ? strchr(at, ':') : NULL;
        if (colon)
            who = xstrndup(at + 17, (size_t)(colon - at - 17));
    }
    pthread_mutex_unlock(&lock);
    return who;
}

int google_doctor_lines(struct doctor *d, const char *what)
{
    char name[64], *token = NULL;
    struct err e = { 0 };
    snprintf(name, sizeof name, "%s credentials", what);
    if (google_auth_token(&token, NULL, 0, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, name, "%s (hint: docs/artifacts.md lists the Google sources)", e.msg);
        return -1;
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    doctor_add(d, DOCTOR_OK, name, "Google %s", google_auth_provider());
    snprintf(name, sizeof name, "%s identity", what);
    char *who = google_auth_account();
    if (who)
        doctor_add(d, DOCTOR_OK, name, "service account %s", who);
    else
        doctor_add(d, DOCTOR_SKIP, name, "not said by the %s without a call", google_auth_provider());
    free(who);
    return 0;
}

int google_auth_sign_bytes(const void *data, size_t len, unsigned char **sig, size_t *sig_len, char **email,
                           struct err *e)
{
    *sig = NULL;
    if (email)
        *email = NULL;
    pthread_mutex_lock(&lock);
    int rc = find_source(e);
    if (rc == 0 && source->type != GOOGLE_SERVICE_ACCOUNT)
        rc = err_set(e, ERR_UNSUPPORTED, "signing needs a service_account key file, and the credentials come from "
                     "the %s (stepop does not call IAM signBlob)", provider);
    if (rc == 0)
        rc = google_rs256(source->key, data, len, sig, sig_len, e);
    if (rc == 0 && email)
        *email = xstrdup(source->email);
    pthread_mutex_unlock(&lock);
    return rc;
}

void google_auth_reset(void)
{
    pthread_mutex_lock(&lock);
    google_source_free(source);
    source = NULL;
    provider = NULL;
    free(passed);
    passed = NULL;
    free(project);
    project = NULL;
    google_token_clear(&cached);
    pthread_mutex_unlock(&lock);
}
