/* The Google credentials layer's pieces: base64url, the RS256 JWT assertion (claims, header,
 * signature verified with the key), credential files (what is required, what is refused, that no
 * message quotes a secret), the token endpoint exchange and the metadata server's header, both
 * against the scripted server. */
#include "../../cloud/google/auth.h"
#include "../../cloud/google/creds.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "http_server.h"
#include "tap.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>

/* base64url back to bytes, for checking (padding restored). */
static char *unb64url(const char *s, size_t n, size_t *out_len)
{
    char *t = xmalloc(n + 4);
    size_t i;
    for (i = 0; i < n; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (i % 4)
        t[i++] = '=';
    t[i] = 0;
    unsigned char *out = xmalloc(i + 1);
    int len = EVP_DecodeBlock(out, (unsigned char *)t, (int)i);
    free(t);
    len -= (n % 4 == 2) ? 2 : (n % 4 == 3) ? 1 : 0;
    out[len < 0 ? 0 : len] = 0;
    *out_len = len < 0 ? 0 : (size_t)len;
    return (char *)out;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *pem = xstrndup(data, (size_t)n);
    BIO_free(b);
    return pem;
}

static void test_b64url(void)
{
    struct {
        const char *in;
        size_t len;
        const char *want;
    } v[] = { { "", 0, "" }, { "f", 1, "Zg" }, { "fo", 2, "Zm8" }, { "foo", 3, "Zm9v" }, { "foob", 4, "Zm9vYg" },
              { "\xfb\xff", 2, "-_8" }, { "\xff\xfe\xfd", 3, "__79" } };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *got = google_b64url(v[i].in, v[i].len);
        is_str(got, v[i].want, "base64url of %zu bytes (#%zu): no padding, - and _", v[i].len, i);
        free(got);
    }
}

static void test_jwt(EVP_PKEY *key)
{
    struct err e = { 0 };
    char *jwt = NULL;
    ok(google_jwt_assertion(key, "kid-1", "sa@p.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token",
                            GOOGLE_SCOPE_CLOUD_PLATFORM, 1700000000, &jwt, &e) == 0,
       "an assertion is made");
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    ok(d1 && d2 && !strchr(d2 + 1, '.'), "of three parts");
    size_t hl, cl, sl;
    char *h = unb64url(jwt, (size_t)(d1 - jwt), &hl), *c = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
    char *sig = unb64url(d2 + 1, strlen(d2 + 1), &sl);
    cJSON *hj = cJSON_Parse(h), *cj = cJSON_Parse(c);
    is_str(json_str(hj, "alg"), "RS256", "header alg");
    is_str(json_str(hj, "typ"), "JWT", "header typ");
    is_str(json_str(hj, "kid"), "kid-1", "header kid is private_key_id");
    is_str(json_str(cj, "iss"), "sa@p.iam.gserviceaccount.com", "iss is client_email");
    is_str(json_str(cj, "aud"), "https://oauth2.googleapis.com/token", "aud is token_uri");
    is_str(json_str(cj, "scope"), GOOGLE_SCOPE_CLOUD_PLATFORM, "scope");
    is_int(cJSON_GetObjectItem(cj, "iat")->valuedouble, 1700000000, "iat is now");
    is_int(cJSON_GetObjectItem(cj, "exp")->valuedouble, 1700003600, "exp is an hour later");
    ok(strstr(c, "\"iat\":1700000000") && strstr(c, "\"exp\":1700003600"), "times are written as integers");
    is_int(sl, 256, "a 2048-bit signature");
    EVP_MD_CTX *v = EVP_MD_CTX_new();
    int verified = EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, key) == 1 &&
                   EVP_DigestVerify(v, (unsigned char *)sig, sl, (unsigned char *)jwt, (size_t)(d2 - jwt)) == 1;
    EVP_MD_CTX_free(v);
    ok(verified, "the signature verifies over header.claims (RSASSA-PKCS1-v1_5 SHA-256)");
    cJSON_Delete(hj);
    cJSON_Delete(cj);
    free(h), free(c), free(sig);
    google_secret_free(jwt);

    jwt = NULL;
    ok(google_jwt_assertion(key, NULL, "a@b", "u", "s", 5, &jwt, &e) == 0 && jwt, "without a key id ...");
    h = unb64url(jwt, (size_t)(strchr(jwt, '.') - jwt), &hl);
    ok(!strstr(h, "kid"), "... the header has no kid");
    free(h);
    google_secret_free(jwt);
}

/* A doc from text (parsed with cJSON; the source takes it). */
static int source_from(const char *text, struct google_source **s, struct err *e)
{
    cJSON *doc = cJSON_Parse(text);
    return google_source_from_doc(doc, "creds.json", s, e);
}

static void refused(const char *text, const char *want, enum err_kind kind, const char *secret, const char *what)
{
    struct err e = { 0 };
    struct google_source *s = NULL;
    int rc = source_from(text, &s, &e);
    ok(rc == -1 && !s, "%s is refused", what);
    ok(strstr(e.msg, want) != NULL, "%s: the message says \"%s\"", what, want);
    if (!strstr(e.msg, want))
        printf("#   got: %s\n", e.msg);
    is_str(err_kind_name(e.kind), err_kind_name(kind), "%s: error kind", what);
    ok(!secret || !strstr(e.msg, secret), "%s: the message holds no secret", what);
    google_source_free(s);
}

static void test_files(const char *pem)
{
    char *esc = xmalloc(strlen(pem) * 2 + 1), *o = esc;
    for (const char *p = pem; *p; p++) {
        if (*p == '\n')
            *o++ = '\\', *o++ = 'n';
        else
            *o++ = *p;
    }
    *o = 0;
    char *good = xasprintf("{\"type\": \"service_account\", \"private_key\": \"%s\", \"client_email\": \"sa@x\", "
                           "\"private_key_id\": \"k1\", \"project_id\": \"p1\"}", esc);
    struct err e = { 0 };
    struct google_source *s = NULL;
    ok(source_from(good, &s, &e) == 0 && s, "a service_account file loads");
    if (s) {
        is_int(s->type, GOOGLE_SERVICE_ACCOUNT, "as a service account");
        is_str(s->token_uri, GOOGLE_TOKEN_URI_DEFAULT, "token_uri defaults to Google's");
        is_str(s->key_id, "k1", "with its key id");
    }
    google_source_free(s);

    refused("{\"type\": \"service_account\", \"client_email\": \"sa@x\"}", "needs a \"private_key\" string", ERR_INVALID,
            NULL, "a key without private_key");
    refused("{\"type\": \"service_account\", \"client_email\": \"sa@x\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIsecret\\n-----END PRIVATE KEY-----\\n\"}",
            "private_key is not a PEM private key", ERR_INVALID, "MIIsecret", "a broken private_key");
    refused("{\"type\": \"authorized_user\", \"client_id\": \"c\", \"client_secret\": \"cs-SECRET\"}",
            "needs a \"refresh_token\" string", ERR_INVALID, "cs-SECRET", "an authorized_user without refresh_token");
    refused("{\"type\": \"external_account\", \"audience\": \"a\", \"subject_token_type\": \"t\", "
            "\"credential_source\": {\"environment_id\": \"aws1\"}}",
            "sourced from AWS", ERR_UNSUPPORTED, NULL, "an AWS-sourced external_account");
    refused("{\"type\": \"external_account\", \"audience\": \"a\", \"subject_token_type\": \"t\", "
            "\"credential_source\": {\"environment_id\": \"azure1\"}}",
            "sourced from a cloud environment", ERR_UNSUPPORTED, NULL, "another environment_id");
    refused("{\"type\": \"external_account\", \"audience\": \"a\", \"subject_token_type\": \"t\", "
            "\"credential_source\": {\"file\": \"/f\", \"url\": \"http://u\"}}",
            "exactly one of \"file\", \"url\" or \"executable\"", ERR_INVALID, NULL, "two subject sources");
    refused("{\"type\": \"external_account\", \"audience\": \"a\", \"subject_token_type\": \"t\", "
            "\"credential_source\": {\"file\": \"/f\", \"format\": {\"type\": \"json\"}}}",
            "needs \"subject_token_field_name\"", ERR_INVALID, NULL, "a json format without its field");
    refused("{\"type\": \"external_account\", \"subject_token_type\": \"t\", \"credential_source\": {\"file\": \"/f\"}}",
            "needs an \"audience\" string", ERR_INVALID, NULL, "an external_account without audience");
    refused("{\"type\": \"external_account_authorized_user\", \"refresh_token\": \"r-SECRET\"}",
            "\"external_account_authorized_user\" are not supported", ERR_UNSUPPORTED, "r-SECRET",
            "external_account_authorized_user");
    refused("{\"type\": \"impersonated_service_account\", \"service_account_impersonation_url\": \"http://x\", "
            "\"source_credentials\": {\"type\": \"impersonated_service_account\"}}",
            "a chain of impersonations", ERR_UNSUPPORTED, NULL, "nested impersonation");
    refused("{\"type\": \"impersonated_service_account\", \"service_account_impersonation_url\": \"http://x\"}",
            "needs a \"source_credentials\" object", ERR_INVALID, NULL, "impersonation without a source");
    refused("{\"type\": \"nonsense\"}", "unknown credentials type \"nonsense\"", ERR_INVALID, NULL, "an unknown type");
    refused("[1]", "not a JSON object", ERR_INVALID, NULL, "an array");

    /* A file whose JSON is broken: the message gives the place, not the text. */
    char path[] = "/tmp/test_google_auth.XXXXXX";
    int fd = mkstemp(path);
    const char *broken = "{\"type\": \"authorized_user\", \"refresh_token\": \"r-SECRET\" \"x\": 1}";
    ok(fd >= 0 && write(fd, broken, strlen(broken)) == (ssize_t)strlen(broken), "a broken file is written");
    close(fd);
    err_clear(&e);
    ok(google_source_from_file(path, &s, &e) == -1 && strstr(e.msg, "invalid JSON near line 1") &&
           !strstr(e.msg, "r-SECRET") && e.kind == ERR_INVALID,
       "broken JSON: its place, no secret, a configuration error (%s)", e.msg);
    unlink(path);
    free(good);
    free(esc);
}

static void test_exchange(const char *pem)
{
    int port;
    int fd = loopback_listener(4, 10000, &port);
    struct server srv = {
        .answers = { "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\nConnection: close\r\n\r\n"
                     "{\"access_token\":\"tok-SECRET-1\",\"expires_in\":3599,\"x\":\"........\"}",
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 70\r\n"
                     "Connection: close\r\n\r\n{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}" },
        .n = 2,
    };
    pthread_t t = server_start(&srv, fd);
    char *esc = xmalloc(strlen(pem) * 2 + 1), *o = esc;
    for (const char *p = pem; *p; p++) {
        if (*p == '\n')
            *o++ = '\\', *o++ = 'n';
        else
            *o++ = *p;
    }
    *o = 0;
    char *text = xasprintf("{\"type\": \"service_account\", \"private_key\": \"%s\", \"client_email\": \"sa@x\", "
                           "\"token_uri\": \"http://127.0.0.1:%d/token\"}", esc, port);
    struct google_source *s = NULL;
    struct err e = { 0 };
    ok(source_from(text, &s, &e) == 0, "a key whose token_uri is the scripted server");
    struct google_token tok = { 0 };
    time_t before = time(NULL);
    ok(google_source_token(s, GOOGLE_SCOPE_CLOUD_PLATFORM, &tok, &e) == 0, "the exchange succeeds (%s)", e.msg);
    is_str(tok.token, "tok-SECRET-1", "the access token is taken");
    ok(tok.expires >= before + 3599 && tok.expires <= time(NULL) + 3599, "expires_in sets the expiry");
    ok(strstr(srv.heads[0], "POST /token HTTP/1.1") != NULL, "POSTed to the token_uri's path");
    ok(strcasestr(srv.heads[0], "Content-Type: application/x-www-form-urlencoded") != NULL, "as a form");
    ok(str_has_prefix(srv.bodies[0], "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"),
       "the jwt-bearer grant with the assertion");
    google_token_clear(&tok);
    err_clear(&e);
    ok(google_source_token(s, GOOGLE_SCOPE_CLOUD_PLATFORM, &tok, &e) == -1, "a refused assertion fails");
    ok(strstr(e.msg, "HTTP 400: invalid_grant (Invalid JWT Signature.)") != NULL, "with the endpoint's reason (%s)",
       e.msg);
    ok(!strstr(e.msg, "ey") && !strstr(e.msg, "MII"), "the message holds neither assertion nor key");
    is_int(e.kind, ERR_AUTH, "an auth error");
    pthread_join(t, NULL);
    close(fd);
    google_source_free(s);
    free(text);
    free(esc);
}

static void test_metadata(void)
{
    int port;
    int fd = loopback_listener(4, 10000, &port);
    struct server srv = {
        .answers = { "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Type: application/json\r\n"
                     "Content-Length: 56\r\nConnection: close\r\n\r\n"
                     "{\"access_token\":\"meta-SECRET\",\"expires_in\":\"1800\",\"x\":1}",
                     "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nproject-x",
                     "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
                     "project-y\n" },
        .n = 3,
    };
    pthread_t t = server_start(&srv, fd);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    setenv("GCE_METADATA_HOST", host, 1);
    setenv("CLOUDSDK_CONFIG", "/nonexistent-stepop-test", 1);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("GOOGLE_CLOUD_PROJECT");
    unsetenv("GCLOUD_PROJECT");
    google_auth_reset();
    struct err e = { 0 };
    char *tok = NULL;
    time_t exp = 0, before = time(NULL);
    ok(google_auth_token(&tok, &exp, 0, &e) == 0, "a token from the metadata server (%s)", e.msg);
    is_str(tok, "meta-SECRET", "is taken");
    ok(exp >= before + 1800 && exp <= time(NULL) + 1800, "expires_in given as a string is understood");
    is_str(google_auth_provider(), "metadata server", "the provider is named");
    ok(strcasestr(srv.heads[0], "\r\nMetadata-Flavor: Google") != NULL, "the request carries Metadata-Flavor: Google");
    ok(strstr(srv.heads[0], "GET /computeMetadata/v1/instance/service-accounts/default/token?scopes=") != NULL,
       "at the default account's token path");
    google_secret_free(tok);
    char *p = google_auth_project(&e);
    ok(!p && strstr(e.msg, "without Metadata-Flavor: Google"), "an answer without the header is not the metadata "
       "server's (%s)", e.msg);
    free(p);
    p = google_auth_project(&e);
    is_str(p, "project-y", "the project from the metadata server, trimmed");
    free(p);
    pthread_join(t, NULL);
    close(fd);
    google_auth_reset();
}

int main(void)
{
    struct err e = { 0 };
    http_global_init(&e);
    test_b64url();
    EVP_PKEY *key = EVP_RSA_gen(2048);
    char *pem = key_pem(key);
    EVP_PKEY *loaded = NULL;
    ok(google_key_load(pem, &loaded, &e) == 0, "a PKCS#8 PEM key loads");
    EVP_PKEY_free(loaded);
    test_jwt(key);
    test_files(pem);
    test_exchange(pem);
    test_metadata();
    google_secret_free(pem);
    EVP_PKEY_free(key);
    return tap_done();
}
