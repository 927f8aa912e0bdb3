#include "creds.h"

#include "endpoint.h"

#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/log.h"
#include "../../runtime/timeutil.h"
#include "../../runtime/uri.h"
#include "../../runtime/url.h"
#include "../../runtime/util.h"
#include "../../runtime/xmlwalk.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Refresh windows, as the SDKs use them: ask again 5 minutes before expiry; credentials that
 * arrived with less than that left are used until the last minute instead of being fetched
 * again on every request. */
#define ADVISORY_S 300
#define MANDATORY_S 60

/* ---- shared files -------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int aws_ini_get(const char *path, const char *section, const char *key, char **value)
{
    char *text;
    if (read_small_file(path, 1u << 20, &text, NULL) < 0)
        return errno == ENOENT ? 0 : -1;
    int found = 0, in_section = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        /* An indented line belongs to a nested block ("s3 =\n  addressing_style = path"). */
        int indented = *line == ' ' || *line == '\t';
        char *l = trim(line);
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (!end)
                continue;
            *end = '\0';
            char *name = trim(l + 1);
            /* "[profile  dev]" and "[profile dev]" are the same section. */
            if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7]) &&
                strncmp(section, "profile ", 8) == 0)
                in_section = strcmp(trim(name + 8), section + 8) == 0;
            else
                in_section = strcmp(name, section) == 0;
            continue;
        }
        if (!in_section || indented)
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (strcmp(trim(l), key) == 0) {
            char *v = trim(eq + 1);
            /* An inline comment needs whitespace before its '#' or ';'. */
            for (char *c = v; *c; c++)
                if ((*c == '#' || *c == ';') && c > v && isspace((unsigned char)c[-1])) {
                    *c = '\0';
                    v = trim(v);
                    break;
                }
            *value = xstrdup(v);
            found = 1;
        }
    }
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return found;
}

const char *aws_profile(void)
{
    return env_or("AWS_PROFILE", env_or("AWS_DEFAULT_PROFILE", "default"));
}

/* A path from the environment or the default under ~/.aws; "~/" expands as the SDKs do. */
static char *shared_file(const char *var, const char *name)
{
    const char *v = getenv(var);
    const char *home = env_or("HOME", "");
    if (v && *v) {
        if (v[0] == '~' && v[1] == '/')
            return xasprintf("%s%s", home, v + 1);
        return xstrdup(v);
    }
    return xasprintf("%s/.aws/%s", home, name);
}

static char *config_section(const char *profile)
{
    return strcmp(profile, "default") == 0 ? xstrdup("default") : xasprintf("profile %s", profile);
}

/* A profile setting from the config file ("[profile x]", or "[default]"). */
static int config_get(const char *key, char **value)
{
    char *path = shared_file("AWS_CONFIG_FILE", "config");
    char *section = config_section(aws_profile());
    int rc = aws_ini_get(path, section, key, value);
    if (rc == 0 && strcmp(section, "default") == 0)
        rc = aws_ini_get(path, "profile default", key, value);
    free(section);
    free(path);
    return rc;
}

char *aws_region(void)
{
    const char *r = env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", NULL));
    if (r)
        return xstrdup(r);
    char *v = NULL;
    if (config_get("region", &v) == 1 && *v)
        return v;
    free(v);
    return xstrdup("us-east-1");
}

/* ---- providers ----------------------------------------------------------------------- */

/* A provider fills c and returns 0; or returns -1 with why in e. It sets *configured when its
 * settings are present: a configured provider that fails ends the chain, as in the SDKs, rather
 * than quietly falling through to other credentials. */
typedef int (*provider_fn)(struct aws_credentials *c, int *configured, struct err *e);

static void creds_clear(struct aws_credentials *c)
{
    if (c->secret_key)
        OPENSSL_cleanse(c->secret_key, strlen(c->secret_key));
    if (c->session_token)
        OPENSSL_cleanse(c->session_token, strlen(c->session_token));
    free(c->access_key);
    free(c->secret_key);
    free(c->session_token);
    memset(c, 0, sizeof *c);
}

void aws_credentials_free(struct aws_credentials *c)
{
    creds_clear(c);
}

static int from_env(struct aws_credentials *c, int *configured, struct err *e)
{
    const char *id = env_or("AWS_ACCESS_KEY_ID", NULL), *secret = env_or("AWS_SECRET_ACCESS_KEY", NULL);
    if (!id && !secret)
        return err_set(e, ERR_AUTH, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
    *configured = 1;
    if (!id || !secret)
        return err_set(e, ERR_AUTH, "%s is set but %s is not", id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                       id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    c->access_key = xstrdup(id);
    c->secret_key = xstrdup(secret);
    const char *token = env_or("AWS_SESSION_TOKEN", NULL);
    c->session_token = token ? xstrdup(token) : NULL;
    return 0;
}

/* ISO 8601 expiry ("2026-11-25T22:00:00Z") of temporary credentials. */
static int parse_expiry(const char *s, time_t *out, struct err *e)
{
    if (!s || time_parse(s, out) < 0)
        return err_set(e, ERR_INVALID, "the answer's Expiration \"%s\" is not a valid time", s ? s : "(none)");
    return 0;
}

/* An endpoint URL without trailing slashes. */
static char *endpoint_from(const char *v)
{
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    return xstrndup(v, n);
}

struct sts_answer {
    char *akid, *secret, *token, *expiration;
};

static int sts_cb(void *ctx, const char *path, const char *text, struct err *e)
{
    (void)e;
    struct sts_answer *a = ctx;
    char **slot = NULL;
    if (str_has_suffix(path, "/Credentials/AccessKeyId"))
        slot = &a->akid;
    else if (str_has_suffix(path, "/Credentials/SecretAccessKey"))
        slot = &a->secret;
    else if (str_has_suffix(path, "/Credentials/SessionToken"))
        slot = &a->token;
    else if (str_has_suffix(path, "/Credentials/Expiration"))
        slot = &a->expiration;
    if (slot && !*slot)
        *slot = xstrdup(text);
    return 0;
}

static int from_web_identity(struct aws_credentials *c, int *configured, struct err *e)
{
    const char *token_file = env_or("AWS_WEB_IDENTITY_TOKEN_FILE", NULL), *role = env_or("AWS_ROLE_ARN", NULL);
    if (!token_file && !role)
        return err_set(e, ERR_AUTH, "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set");
    *configured = 1;
    if (!token_file || !role)
        return err_set(e, ERR_AUTH, "%s is set but %s is not", token_file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
                       token_file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
    /* Read at every refresh: Kubernetes rotates the projected token file. */
    char *token;
    if (read_small_file(token_file, 64 * 1024, &token, NULL) < 0)
        return err_set(e, ERR_AUTH, "cannot read AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", token_file, strerror(errno));
    char *session = env_or("AWS_ROLE_SESSION_NAME", NULL) ? xstrdup(getenv("AWS_ROLE_SESSION_NAME"))
                                                           : xasprintf("stepop-%lld", (long long)time(NULL));
    char *region = aws_region();
    /* The regional endpoint, as the SDKs use by default now (China's regions under .com.cn). */
    char *dflt = xasprintf("https://sts.%s.%s", region, aws_dns_suffix(region));
    /* The SDKs' service-specific endpoint settings, taken as given (a path is kept). */
    const char *override = aws_endpoint_override("STS");
    char *endpoint = endpoint_from(override ? override : dflt);
    char *role_enc = uri_encode(role, NULL), *session_enc = uri_encode(session, NULL);
    char *token_enc = uri_encode(trim(token), NULL);
    char *body = xasprintf("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s"
                           "&WebIdentityToken=%s",
                           role_enc, session_enc, token_enc);
    char *url = xasprintf("%s/", endpoint);
    const char *hdr[] = { "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: text/xml", NULL };
    struct http_request req = { .method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body),
                                .max_body = 1u << 20 };
    struct http_client *client = http_client_new();
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0) {
        char *code = xml_find(resp.body.data, resp.body.len, "/Error/Code");
        char *msg = xml_find(resp.body.data, resp.body.len, "/Error/Message");
        if (code)
            err_set(e, ERR_AUTH, "STS AssumeRoleWithWebIdentity at %s failed: HTTP %ld %s%s%s", endpoint, resp.status,
                    code, msg ? ": " : "", msg ? msg : "");
        else
            err_prefix(e, "STS AssumeRoleWithWebIdentity: ");
        free(code);
        free(msg);
    } else {
        struct sts_answer a = { 0 };
        if (xml_walk(resp.body.data, resp.body.len, sts_cb, &a, e) < 0) {
            rc = err_prefix(e, "STS AssumeRoleWithWebIdentity answer: ");
        } else if (!a.akid || !a.secret || !a.token) {
            rc = err_set(e, ERR_AUTH, "STS AssumeRoleWithWebIdentity answered without credentials");
        } else if (parse_expiry(a.expiration, &c->expires, e) < 0) {
            rc = err_prefix(e, "STS AssumeRoleWithWebIdentity: ");
        } else {
            c->access_key = a.akid, c->secret_key = a.secret, c->session_token = a.token;
            a.akid = a.secret = a.token = NULL;
        }
        struct aws_credentials drop = { .access_key = a.akid, .secret_key = a.secret, .session_token = a.token };
        creds_clear(&drop);
        free(a.expiration);
    }
    http_response_free(&resp);
    http_client_free(client);
    OPENSSL_cleanse(body, strlen(body));
    OPENSSL_cleanse(token, strlen(token));
    free(body), free(url), free(token_enc), free(role_enc), free(session_enc), free(endpoint), free(dflt);
    free(region), free(session), free(token);
    return rc;
}

static int from_shared_files(struct aws_credentials *c, int *configured, struct err *e)
{
    const char *profile = aws_profile();
    char *cred_path = shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    char *conf_path = shared_file("AWS_CONFIG_FILE", "config");
    char *section = config_section(profile);
    char *id = NULL, *secret = NULL, *token = NULL, *role = NULL;
    int rc = -1;
    /* The credentials file first, then the config file's profile, as the SDKs read them. */
    int r1 = aws_ini_get(cred_path, profile, "aws_access_key_id", &id);
    if (r1 == 1) {
        aws_ini_get(cred_path, profile, "aws_secret_access_key", &secret);
        aws_ini_get(cred_path, profile, "aws_session_token", &token);
    } else if (aws_ini_get(conf_path, section, "aws_access_key_id", &id) == 1) {
        aws_ini_get(conf_path, section, "aws_secret_access_key", &secret);
        aws_ini_get(conf_path, section, "aws_session_token", &token);
    }
    if (r1 < 0) {
        *configured = 1;
        err_set(e, ERR_AUTH, "cannot read %s: %s", cred_path, strerror(errno));
    } else if (id) {
        *configured = 1;
        if (!secret || !*secret) {
            err_set(e, ERR_AUTH, "profile \"%s\" has aws_access_key_id but no aws_secret_access_key", profile);
        } else {
            c->access_key = id, c->secret_key = secret;
            c->session_token = token && *token ? token : NULL;
            if (!c->session_token)
                free(token);
            id = secret = token = NULL;
            rc = 0;
        }
    } else if (aws_ini_get(conf_path, section, "role_arn", &role) == 1 ||
               aws_ini_get(conf_path, section, "credential_process", &role) == 1 ||
               aws_ini_get(conf_path, section, "sso_session", &role) == 1) {
        *configured = 1;
        err_set(e, ERR_UNSUPPORTED, "profile \"%s\" in %s uses role_arn, credential_process or SSO, which stepop does "
                "not support; use keys, web identity, the container endpoint or instance metadata",
                profile, conf_path);
    } else {
        /* A profile asked for by name must exist; the default one may be absent. */
        *configured = getenv("AWS_PROFILE") || getenv("AWS_DEFAULT_PROFILE");
        err_set(e, ERR_AUTH, "no keys for profile \"%s\" in %s or %s", profile, cred_path, conf_path);
    }
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    if (token)
        OPENSSL_cleanse(token, strlen(token));
    free(id), free(secret), free(token), free(role), free(section), free(conf_path), free(cred_path);
    return rc;
}

/* The JSON answer of the container endpoint and of instance metadata. */
static int parse_json_creds(const struct buf *body, const char *what, struct aws_credentials *c, struct err *e)
{
    cJSON *j = NULL;
    struct err je;
    if (json_parse(body->data ? body->data : "", body->len, what, &j, &je) < 0)
        return err_set(e, ERR_AUTH, "%s answered with something that is not JSON", what);
    const char *id = json_str(j, "AccessKeyId"), *secret = json_str(j, "SecretAccessKey");
    const char *token = json_str(j, "Token"), *exp = json_str(j, "Expiration"), *code = json_str(j, "Code");
    int rc = 0;
    if (code && strcmp(code, "Success") != 0)
        rc = err_set(e, ERR_AUTH, "%s answered Code \"%s\"", what, code);
    else if (!id || !secret)
        rc = err_set(e, ERR_AUTH, "%s answered without AccessKeyId and SecretAccessKey", what);
    else if (exp && parse_expiry(exp, &c->expires, e) < 0)
        rc = err_prefix(e, "%s: ", what);
    if (rc == 0) {
        c->access_key = xstrdup(id);
        c->secret_key = xstrdup(secret);
        c->session_token = token && *token ? xstrdup(token) : NULL;
    }
    /* The document held secrets: wipe it before it goes back to the allocator. */
    char *printed = cJSON_PrintUnformatted(j);
    if (printed) {
        OPENSSL_cleanse(printed, strlen(printed));
        cJSON_free(printed);
    }
    cJSON_Delete(j);
    return rc;
}

/* Only the endpoints the SDKs allow for a plain-HTTP full URI: loopback (url_host_is_loopback),
 * the ECS task metadata address and the EKS Pod Identity addresses. (Other host names are refused;
 * the SDKs resolve them.) */
static int container_host_allowed(const char *url)
{
    if (str_has_prefix(url, "https://"))
        return 1;
    struct url u;
    if (url_parse(url, &u, NULL) < 0)
        return 0;
    static const unsigned char eks[16] = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23 };
    struct in_addr a4;
    struct in6_addr a6;
    int ecs_eks = u.ipv6 ? inet_pton(AF_INET6, u.host, &a6) == 1 && memcmp(&a6, eks, 16) == 0
                         : inet_pton(AF_INET, u.host, &a4) == 1 &&
                               (ntohl(a4.s_addr) == 0xA9FEAA02 /* 169.254.170.2 */ ||
                                ntohl(a4.s_addr) == 0xA9FEAA17 /* 169.254.170.23 */);
    int allowed = strcmp(u.scheme, "http") == 0 && (ecs_eks || url_host_is_loopback(u.host));
    url_free(&u);
    return allowed;
}

static int from_container(struct aws_credentials *c, int *configured, struct err *e)
{
    const char *rel = env_or("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", NULL);
    const char *full = env_or("AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
    if (!rel && !full)
        return err_set(e, ERR_AUTH, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set");
    *configured = 1;
    char *url = rel ? xasprintf("http://169.254.170.2%s%s", rel[0] == '/' ? "" : "/", rel) : xstrdup(full);
    char red[512];
    uri_redact(url, red, sizeof red);
    if (!rel && !container_host_allowed(url)) {
        int rc = err_set(e, ERR_AUTH, "AWS_CONTAINER_CREDENTIALS_FULL_URI %s must use https, or http to a loopback, "
                         "ECS (169.254.170.2) or EKS (169.254.170.23, fd00:ec2::23) address", red);
        free(url);
        return rc;
    }
    char *token = NULL;
    const char *token_file = env_or("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);
    if (token_file) {
        if (read_small_file(token_file, 16 * 1024, &token, NULL) < 0) {
            int rc = err_set(e, ERR_AUTH, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", token_file,
                             strerror(errno));
            free(url);
            return rc;
        }
    } else if (env_or("AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL)) {
        token = xstrdup(getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    char *auth = token ? xasprintf("Authorization: %s", trim(token)) : NULL;
    const char *hdr[] = { "Accept: application/json", auth, NULL };
    struct http_request req = { .method = "GET", .url = url, .headers = hdr, .max_body = 64 * 1024,
                                .connect_timeout_ms = 2000, .max_attempts = 3 };
    struct http_client *client = http_client_new();
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0)
        err_prefix(e, "container credentials endpoint: ");
    else
        rc = parse_json_creds(&resp.body, "the container credentials endpoint", c, e);
    if (resp.body.data)
        OPENSSL_cleanse(resp.body.data, resp.body.len);
    http_response_free(&resp);
    http_client_free(client);
    if (auth)
        OPENSSL_cleanse(auth, strlen(auth));
    if (token)
        OPENSSL_cleanse(token, strlen(token));
    free(auth), free(token), free(url);
    return rc;
}

static int imds_request(struct http_client *client, const char *method, const char *url, const char *header,
                        struct buf *out, struct err *e)
{
    const char *hdr[] = { header, NULL };
    /* Off EC2 nothing answers at the link-local address: give up quickly, as the SDKs do. */
    struct http_request req = { .method = method, .url = url, .headers = hdr, .max_body = 64 * 1024,
                                .connect_timeout_ms = 1000, .max_attempts = 2 };
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc == 0) {
        *out = resp.body;
        resp.body = (struct buf){ 0 };
        if (!out->data)
            buf_append(out, "", 0);
    }
    http_response_free(&resp);
    return rc;
}

static int from_imds(struct aws_credentials *c, int *configured, struct err *e)
{
    if (env_flag("AWS_EC2_METADATA_DISABLED"))
        return err_set(e, ERR_AUTH, "AWS_EC2_METADATA_DISABLED is set");
    char *base = endpoint_from(env_or("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254"));
    struct http_client *client = http_client_new();
    struct buf token = { 0 }, role = { 0 }, doc = { 0 };
    char *url = xasprintf("%s/latest/api/token", base), *hdr = NULL;
    int rc = imds_request(client, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", &token, e);
    if (rc < 0) {
        err_prefix(e, "IMDSv2 session token: ");
        goto out;
    }
    *configured = 1; /* something answered: this is an instance, its failures count */
    hdr = xasprintf("X-aws-ec2-metadata-token: %s", trim(token.data));
    free(url);
    url = xasprintf("%s/latest/meta-data/iam/security-credentials/", base);
    rc = imds_request(client, "GET", url, hdr, &role, e);
    if (rc < 0) {
        err_prefix(e, e->http_status == 404 ? "no IAM role is attached to this instance: " : "IMDS role name: ");
        goto out;
    }
    char *name = trim(role.data);
    name[strcspn(name, "\r\n")] = '\0';
    if (!*name) {
        rc = err_set(e, ERR_AUTH, "no IAM role is attached to this instance");
        goto out;
    }
    char *name_enc = uri_encode(name, NULL);
    free(url);
    url = xasprintf("%s/latest/meta-data/iam/security-credentials/%s", base, name_enc);
    free(name_enc);
    rc = imds_request(client, "GET", url, hdr, &doc, e);
    if (rc < 0)
        err_prefix(e, "IMDS role credentials: ");
    else
        rc = parse_json_creds(&doc, "instance metadata", c, e);
out:
    if (doc.data)
        OPENSSL_cleanse(doc.data, doc.len);
    if (hdr)
        OPENSSL_cleanse(hdr, strlen(hdr));
    buf_free(&token), buf_free(&role), buf_free(&doc);
    free(hdr), free(url), free(base);
    http_client_free(client);
    return rc;
}

static const struct {
    const char *name;
    provider_fn fn;
} chain[] = {
    { "environment", from_env },
    { "web identity", from_web_identity },
    { "shared files", from_shared_files },
    { "container endpoint", from_container },
    { "EC2 instance metadata", from_imds },
};

/* ---- the process-wide cache ---------------------------------------------------------- */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct aws_credentials cached;
static int cached_provider = -1;
static time_t cached_at;

static int run_chain(struct aws_credentials *c, int *which, struct err *e)
{
    struct buf why = { 0 };
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        struct err pe = { 0 };
        int configured = 0;
        memset(c, 0, sizeof *c);
        if (chain[i].fn(c, &configured, &pe) == 0) {
            c->provider = chain[i].name;
            *which = (int)i;
            log_debug("AWS credentials from the %s provider", chain[i].name);
            buf_free(&why);
            return 0;
        }
        creds_clear(c);
        buf_appendf(&why, "%s%s: %s", why.len ? "; " : "", chain[i].name, pe.msg);
        if (configured) {
            err_set(e, ERR_AUTH, "no AWS credentials (tried %s)", why.data);
            e->transient = pe.transient;
            buf_free(&why);
            return -1;
        }
    }
    err_set(e, ERR_AUTH, "no AWS credentials (tried %s)", why.data);
    buf_free(&why);
    return -1;
}

static int provider_again(int which, struct aws_credentials *c, struct err *e)
{
    int configured = 0;
    memset(c, 0, sizeof *c);
    if (chain[which].fn(c, &configured, e) < 0) {
        creds_clear(c);
        return err_prefix(e, "refreshing AWS credentials from the %s provider: ", chain[which].name);
    }
    c->provider = chain[which].name;
    return 0;
}

static void copy_creds(struct aws_credentials *dst, const struct aws_credentials *src)
{
    dst->access_key = xstrdup(src->access_key);
    dst->secret_key = xstrdup(src->secret_key);
    dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
    dst->expires = src->expires;
    dst->provider = src->provider;
}

static int needs_refresh(time_t now)
{
    if (!cached.expires)
        return 0;
    time_t left = cached.expires - now;
    int window = cached.expires - cached_at > ADVISORY_S ? ADVISORY_S : MANDATORY_S;
    return left < window;
}

int aws_credentials_get(struct aws_credentials *out, int force_refresh, struct err *e)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&cache_lock);
    time_t now = time(NULL);
    int rc = 0;
    if (cached_provider < 0) {
        rc = run_chain(&cached, &cached_provider, e);
        cached_at = now;
    } else if (force_refresh || needs_refresh(now)) {
        struct aws_credentials fresh;
        if (provider_again(cached_provider, &fresh, e) == 0) {
            log_debug("AWS credentials refreshed from the %s provider", fresh.provider);
            creds_clear(&cached);
            cached = fresh;
            cached_at = now;
        } else if (!force_refresh && cached.expires > now) {
            /* Still valid for a while: keep going and try again on the next request. */
            log_warn("%s (the current credentials are valid for %llds more)", e->msg,
                     (long long)(cached.expires - now));
        } else {
            rc = -1;
        }
    }
    if (rc == 0)
        copy_creds(out, &cached);
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

void aws_credentials_reset(void)
{
    pthread_mutex_lock(&cache_lock);
    creds_clear(&cached);
    cached_provider = -1;
    pthread_mutex_unlock(&cache_lock);
}
