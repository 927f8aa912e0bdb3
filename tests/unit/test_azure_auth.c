/* The Azure identity pieces (cloud/azure/): base64url, the certificate loader (PEM with its key,
 * encrypted PEM, PFX, and the errors of each), the client assertion (header x5t#S256, claims, a
 * PS256 signature that verifies with the certificate's key and not as PKCS#1 v1.5), the answer
 * parsers, and, against a scripted server, the token request's body, the sign hook and the cache,
 * and messages that never hold the secret. */
#include "tap.h"
#include "http_server.h"

#include "../../cloud/azure/auth.h"
#include "../../cloud/azure/creds.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/test_azure_auth.XXXXXX";

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    return x;
}

static char *path_of(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

/* Writes the certificate and/or the key (encrypted with pass when given) as PEM. */
static char *write_pem(const char *name, X509 *x, EVP_PKEY *key, const char *pass)
{
    char *p = path_of(name);
    FILE *f = fopen(p, "w");
    if (x)
        PEM_write_X509(f, x);
    if (key)
        PEM_write_PrivateKey(f, key, pass ? EVP_aes_256_cbc() : NULL, (unsigned char *)pass, pass ? (int)strlen(pass) : 0,
                             NULL, NULL);
    fclose(f);
    return p;
}

static char *write_pfx(const char *name, X509 *x, EVP_PKEY *key, const char *pass)
{
    char *p = path_of(name);
    PKCS12 *p12 = PKCS12_create(pass, "stepop", key, x, NULL, 0, 0, 0, 0, 0);
    FILE *f = fopen(p, "wb");
    i2d_PKCS12_fp(f, p12);
    fclose(f);
    PKCS12_free(p12);
    return p;
}

static unsigned char *b64url_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    char *std = xmalloc(len + 4);
    for (size_t i = 0; i < len; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t pad = (4 - len % 4) % 4;
    memset(std + len, '=', pad);
    std[len + pad] = '\0';
    unsigned char *out = xmalloc(len + 4);
    int r = EVP_DecodeBlock(out, (unsigned char *)std, (int)(len + pad));
    free(std);
    *n = r < 0 ? 0 : (size_t)r - pad;
    return out;
}

static cJSON *b64url_json(const char *s, size_t n)
{
    char *part = xstrndup(s, n);
    size_t len;
    unsigned char *raw = b64url_decode(part, &len);
    cJSON *j = cJSON_ParseWithLength((const char *)raw, len);
    free(part);
    free(raw);
    return j;
}

/* The signature of a JWT checks out with key, PSS (salt = digest length) or PKCS#1 v1.5. */
static int jwt_verifies(const char *jwt, EVP_PKEY *key, int pss)
{
    const char *dot2 = strrchr(jwt, '.');
    size_t siglen;
    unsigned char *sig = b64url_decode(dot2 + 1, &siglen);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok_ = EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1;
    if (ok_ && pss)
        ok_ = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
    ok_ = ok_ && EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    free(sig);
    ERR_clear_error();
    return ok_;
}

static void test_b64url(void)
{
    char *a = azure_b64url("", 0), *b = azure_b64url("f", 1), *c = azure_b64url("\xfb\xff\xbf", 3),
         *d = azure_b64url("fo", 2);
    is_str(a, "", "base64url of nothing");
    is_str(b, "Zg", "base64url drops the padding");
    is_str(c, "-_-_", "base64url uses - and _");
    is_str(d, "Zm8", "base64url of two bytes");
    free(a), free(b), free(c), free(d);
}

static void test_cert_and_assertion(EVP_PKEY *key, X509 *x)
{
    struct err e = { 0 };
    char *pem = write_pem("client.pem", x, key, NULL);
    struct azure_cert c;
    ok(azure_cert_load(pem, NULL, &c, &e) == 0, "a PEM file with the certificate and its key loads: %s", e.msg);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    unsigned char md[32];
    SHA256(der, (size_t)n, md);
    OPENSSL_free(der);
    char *want = azure_b64url(md, 32);
    is_str(c.thumb_s256, want, "x5t#S256 is the base64url SHA-256 of the certificate's DER");
    is_int(strlen(c.thumb_s256), 43, "43 characters, no padding");

    const char *aud = "https://login.example/tenant/oauth2/v2.0/token", *client = "0a1b2c3d-client";
    time_t now = 1790000000;
    char *jwt = NULL, *jwt2 = NULL, *rs = NULL;
    ok(azure_assertion_sign(&c, "PS256", aud, client, now, &jwt, &e) == 0, "a PS256 assertion is made");
    ok(azure_assertion_sign(&c, "PS256", aud, client, now, &jwt2, &e) == 0, "and another");
    const char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
    ok(dot1 && dot2 && dot1 < dot2 && !strchr(jwt, '=') && !strchr(jwt, '+') && !strchr(jwt, '/'),
       "three base64url parts");
    cJSON *h = b64url_json(jwt, (size_t)(dot1 - jwt)), *p = b64url_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    is_str(json_str(h, "alg"), "PS256", "header alg PS256");
    is_str(json_str(h, "typ"), "JWT", "header typ JWT");
    is_str(json_str(h, "x5t#S256"), want, "header x5t#S256 is the thumbprint");
    ok(!cJSON_GetObjectItem(h, "x5t"), "no SHA-1 x5t");
    is_str(json_str(p, "aud"), aud, "aud is the token endpoint");
    is_str(json_str(p, "iss"), client, "iss is the client id");
    is_str(json_str(p, "sub"), client, "sub is the client id");
    const char *jti = json_str(p, "jti");
    ok(jti && strlen(jti) == 36 && jti[14] == '4', "jti is a version 4 UUID");
    is_int(cJSON_GetObjectItem(p, "nbf")->valuedouble, now, "nbf is now");
    is_int(cJSON_GetObjectItem(p, "iat")->valuedouble, now, "iat is now");
    is_int(cJSON_GetObjectItem(p, "exp")->valuedouble, now + 600, "exp is ten minutes later");
    cJSON *p2 = b64url_json(strchr(jwt2, '.') + 1, (size_t)(strrchr(jwt2, '.') - strchr(jwt2, '.') - 1));
    ok(strcmp(json_str(p2, "jti"), jti) != 0, "each assertion has its own jti");
    ok(jwt_verifies(jwt, key, 1), "the signature verifies as RSASSA-PSS (SHA-256, salt 32) with the certificate's key");
    ok(!jwt_verifies(jwt, key, 0), "and not as PKCS#1 v1.5");
    ok(azure_assertion_sign(&c, "RS256", aud, client, now, &rs, &e) == 0 && jwt_verifies(rs, key, 0),
       "RS256 on request: PKCS#1 v1.5");
    cJSON_Delete(h), cJSON_Delete(p), cJSON_Delete(p2);
    free(jwt), free(jwt2), free(rs), free(want), free(pem);
    azure_cert_free(&c);
}

static void test_cert_errors(EVP_PKEY *key, X509 *x)
{
    struct err e = { 0 };
    struct azure_cert c;
    const char *pw = "pfx-Passw0rd!";
    char *pfx = write_pfx("client.pfx", x, key, pw);
    ok(azure_cert_load(pfx, pw, &c, &e) == 0, "a PFX opens with its password: %s", e.msg);
    ok(c.cert && c.key, "and gives the certificate and key");
    azure_cert_free(&c);
    ok(azure_cert_load(pfx, "wrong-guess", &c, &e) < 0 && e.kind == ERR_AUTH, "a wrong PFX password is refused");
    ok(strstr(e.msg, "password is not AZURE_CLIENT_CERTIFICATE_PASSWORD") != NULL, "saying so: %s", e.msg);
    ok(!strstr(e.msg, "wrong-guess"), "without the password");
    ok(azure_cert_load(pfx, NULL, &c, &e) < 0 && strstr(e.msg, "(which is not set)"), "no password: %s", e.msg);
    char *nopw = write_pfx("nopw.pfx", x, key, NULL);
    ok(azure_cert_load(nopw, NULL, &c, &e) == 0, "a PFX without a password opens without one: %s", e.msg);
    azure_cert_free(&c);

    char *enc = write_pem("enc.pem", x, key, pw);
    ok(azure_cert_load(enc, pw, &c, &e) == 0, "an encrypted PEM key opens with the password: %s", e.msg);
    azure_cert_free(&c);
    ok(azure_cert_load(enc, NULL, &c, &e) < 0 && strstr(e.msg, "holds no private key"),
       "without it, an error (no prompt): %s", e.msg);
    ok(azure_cert_load(enc, "nope-guess", &c, &e) < 0 && strstr(e.msg, "with AZURE_CLIENT_CERTIFICATE_PASSWORD") &&
           !strstr(e.msg, "nope-guess"),
       "a wrong one, without the password: %s", e.msg);

    char *certonly = write_pem("certonly.pem", x, NULL, NULL);
    ok(azure_cert_load(certonly, NULL, &c, &e) < 0 && strstr(e.msg, "holds no private key"),
       "a certificate without its key: %s", e.msg);
    char *keyonly = write_pem("keyonly.pem", NULL, key, NULL);
    ok(azure_cert_load(keyonly, NULL, &c, &e) < 0 && strstr(e.msg, "holds no PEM certificate"),
       "a key without its certificate: %s", e.msg);
    EVP_PKEY *other = EVP_RSA_gen(2048);
    char *mismatch = write_pem("mismatch.pem", x, other, NULL);
    ok(azure_cert_load(mismatch, NULL, &c, &e) < 0 && strstr(e.msg, "does not belong"),
       "a key of another certificate: %s", e.msg);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    X509 *ecx = self_signed(ec, "ec");
    char *ecpem = write_pem("ec.pem", ecx, ec, NULL);
    ok(azure_cert_load(ecpem, NULL, &c, &e) < 0 && e.kind == ERR_UNSUPPORTED && strstr(e.msg, "not RSA"),
       "an EC certificate: %s", e.msg);
    char *junk = path_of("junk.bin");
    FILE *f = fopen(junk, "w");
    fputs("not a certificate at all", f);
    fclose(f);
    ok(azure_cert_load(junk, NULL, &c, &e) < 0 && strstr(e.msg, "neither PEM nor a PFX"), "junk: %s", e.msg);
    char *none = path_of("none.pem");
    ok(azure_cert_load(none, NULL, &c, &e) < 0 && e.kind == ERR_NOT_FOUND, "a missing file: %s", e.msg);
    EVP_PKEY_free(other), EVP_PKEY_free(ec), X509_free(ecx);
    free(pfx), free(nopw), free(enc), free(certonly), free(keyonly), free(mismatch), free(ecpem), free(junk), free(none);
}

static void test_parsers(void)
{
    struct err e = { 0 };
    struct azure_tok t = { 0 };
    time_t now = time(NULL);
    const char *good = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"tok-1\"}";
    ok(azure_parse_token_answer(good, strlen(good), 200, "endpoint", &t, &e) == 0, "a v2 token answer");
    is_str(t.token, "tok-1", "its token");
    ok(t.expires >= now + 3599 && t.expires <= now + 3601, "expires_in counts from now");
    azure_tok_clear(&t);
    const char *str = "{\"expires_in\":\"120\",\"access_token\":\"tok-2\"}";
    ok(azure_parse_token_answer(str, strlen(str), 200, "endpoint", &t, &e) == 0 && t.expires >= now + 119,
       "expires_in as a string");
    azure_tok_clear(&t);
    const char *bad = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret "
                      "provided.\\r\\nTrace ID: abc\\r\\nCorrelation ID: def\"}";
    ok(azure_parse_token_answer(bad, strlen(bad), 401, "the token endpoint", &t, &e) < 0 && e.kind == ERR_AUTH,
       "an error answer");
    is_str(e.msg, "the token endpoint refused: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided.",
           "gives the error and the description's first line");
    const char *none = "{\"expires_in\":10}";
    ok(azure_parse_token_answer(none, strlen(none), 200, "x", &t, &e) < 0 && strstr(e.msg, "without access_token"),
       "no access_token: %s", e.msg);
    ok(azure_parse_token_answer("<html>", 6, 502, "x", &t, &e) < 0 && strstr(e.msg, "HTTP 502"), "not JSON: %s",
       e.msg);

    const char *msi = "{\"access_token\":\"m\",\"expires_on\":\"1790000000\",\"resource\":\"r\"}";
    ok(azure_parse_msi_answer(msi, strlen(msi), "IMDS", &t, &e) == 0 && t.expires == 1790000000,
       "managed identity: expires_on as a string of seconds");
    azure_tok_clear(&t);
    const char *msi2 = "{\"access_token\":\"m\",\"expires_on\":\"09/14/2017 00:00:00 PM +00:00\",\"expires_in\":60}";
    ok(azure_parse_msi_answer(msi2, strlen(msi2), "IMDS", &t, &e) == 0 && t.expires >= now + 59,
       "a date expires_on falls back to expires_in");
    azure_tok_clear(&t);

    const char *cli = "{\"accessToken\":\"c\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":1893456000}";
    ok(azure_parse_cli_answer(cli, strlen(cli), &t, &e) == 0 && t.expires == 1893456000, "az: expires_on");
    azure_tok_clear(&t);
    const char *old = "{\"accessToken\":\"c\",\"expiresOn\":\"2030-01-01 00:00:00.000000\"}";
    struct tm tm = { .tm_year = 130, .tm_mon = 0, .tm_mday = 1, .tm_isdst = -1 };
    ok(azure_parse_cli_answer(old, strlen(old), &t, &e) == 0 && t.expires == mktime(&tm),
       "an older az: expiresOn in local time");
    azure_tok_clear(&t);
    ok(azure_parse_cli_answer("{}", 2, &t, &e) < 0 && strstr(e.msg, "no accessToken"), "az without a token");

    char *r1 = azure_scope_resource(AZURE_SCOPE_ARM), *r2 = azure_scope_resource("api://x");
    is_str(r1, "https://management.azure.com", "the resource of a scope");
    is_str(r2, "api://x", "a scope without /.default is its own resource");
    free(r1), free(r2);
}

static const char *chain_vars[] = { "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                                    "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                                    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
                                    "IDENTITY_HEADER", "IMDS_ENDPOINT", NULL };

static void test_chain(void)
{
    for (int i = 0; chain_vars[i]; i++)
        unsetenv(chain_vars[i]);
    /* IMDS on a closed loopback port, no az anywhere on PATH. */
    setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1", 1);
    char *path = xstrdup(env_or("PATH", "/usr/bin:/bin"));
    setenv("PATH", dir, 1);
    struct err e = { 0 };
    char *tok = NULL;
    azure_auth_reset();
    ok(azure_auth_token(AZURE_SCOPE_ARM, &tok, NULL, 0, &e) < 0 && e.kind == ERR_AUTH, "no source: an error");
    ok(strstr(e.msg, "environment: AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are not set") &&
           strstr(e.msg, "workload identity: AZURE_FEDERATED_TOKEN_FILE is not set") &&
           strstr(e.msg, "managed identity: IMDS") && strstr(e.msg, "Azure CLI: az is not on PATH"),
       "naming each source and why: %s", e.msg);
    ok(azure_auth_provider() == NULL, "no provider yet");
    setenv("PATH", path, 1);
    free(path);

    int fd, port;
    fd = loopback_listener(4, 10000, &port);
    char *authority = xasprintf("http://127.0.0.1:%d/", port);
    const char *secret = "se/cr+et&=x";
    setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com", 1);
    setenv("AZURE_CLIENT_ID", "cid-1", 1);
    setenv("AZURE_CLIENT_SECRET", secret, 1);
    setenv("AZURE_AUTHORITY_HOST", authority, 1);
    struct server s = { .n = 2 };
    s.answers[0] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 66\r\nConnection: close\r\n\r\n"
                   "{\"token_type\":\"Bearer\",\"expires_in\":3600,\"access_token\":\"tok-AAA\"}";
    s.answers[1] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    pthread_t th = server_start(&s, fd);
    char *url = xasprintf("http://127.0.0.1:%d/api", port);
    struct http_request req = { .method = "GET", .url = url, .sign = azure_auth_sign, .hook_ctx = AZURE_SCOPE_STORAGE };
    struct http_client *c = http_client_new();
    struct http_response r;
    err_clear(&e);
    ok(http_perform(c, &req, &r, &e) == 0, "a request signed by azure_auth_sign: %s", e.msg);
    http_response_free(&r);
    pthread_join(th, NULL);
    ok(strstr(s.heads[0], "POST /contoso.onmicrosoft.com/oauth2/v2.0/token HTTP/1.1") != NULL,
       "the token request goes to the tenant's v2 endpoint (trailing slash of the authority dropped)");
    ok(strstr(s.heads[0], "Content-Type: application/x-www-form-urlencoded") != NULL, "as a form");
    is_str(s.bodies[0],
           "client_id=cid-1&scope=https%3A%2F%2Fstorage.azure.com%2F.default&grant_type=client_credentials"
           "&client_secret=se%2Fcr%2Bet%26%3Dx",
           "the form: client id, scope, grant, the secret encoded");
    ok(strstr(s.heads[1], "\r\nAuthorization: Bearer tok-AAA") != NULL, "the request carries the token");
    is_str(azure_auth_provider(), "environment (client secret)", "the provider");
    char *again = NULL;
    time_t exp = 0;
    ok(azure_auth_token(AZURE_SCOPE_STORAGE, &again, &exp, 0, &e) == 0, "asked again (the server is gone)");
    is_str(again, "tok-AAA", "the cached token");
    ok(exp > time(NULL) + 3500, "with its expiry");
    free(again);
    close(fd);

    /* A token that came with less than the refresh window left is asked for again; when that
     * fails while it is still valid, it is kept (with a warning); a forced refresh fails. */
    fd = loopback_listener(4, 10000, &port);
    free(authority);
    authority = xasprintf("http://127.0.0.1:%d", port);
    setenv("AZURE_AUTHORITY_HOST", authority, 1);
    struct server s3 = { .n = 1 };
    s3.answers[0] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 38\r\n"
                    "Connection: close\r\n\r\n{\"expires_in\":30,\"access_token\":\"BBB\"}";
    th = server_start(&s3, fd);
    azure_auth_reset();
    ok(azure_auth_token(AZURE_SCOPE_ARM, &again, &exp, 0, &e) == 0, "a short-lived token: %s", e.msg);
    pthread_join(th, NULL);
    close(fd);
    is_str(again, "BBB", "its value");
    free(again);
    again = NULL;
    ok(azure_auth_token(AZURE_SCOPE_ARM, &again, NULL, 0, &e) == 0, "the refresh fails, the valid token is kept");
    is_str(again, "BBB", "the same token");
    ok(strstr(e.msg, "from environment (client secret)") != NULL, "the failure was the refresh's: %s", e.msg);
    free(again);
    again = NULL;
    ok(azure_auth_token(AZURE_SCOPE_ARM, &again, NULL, 1, &e) < 0 && again == NULL, "a forced refresh fails");

    /* A refusal names Entra's reason, never the secret. */
    fd = loopback_listener(4, 10000, &port);
    free(authority);
    authority = xasprintf("http://127.0.0.1:%d", port);
    setenv("AZURE_AUTHORITY_HOST", authority, 1);
    struct server s2 = { .n = 1 };
    s2.answers[0] = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 79\r\n"
                    "Connection: close\r\n\r\n"
                    "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid secret.\"}";
    th = server_start(&s2, fd);
    azure_auth_reset();
    ok(azure_auth_token(AZURE_SCOPE_ARM, &tok, NULL, 0, &e) < 0, "a refused secret");
    pthread_join(th, NULL);
    close(fd);
    ok(strstr(e.msg, "invalid_client: AADSTS7000215: Invalid secret.") != NULL, "Entra's words: %s", e.msg);
    ok(!strstr(e.msg, "se/cr") && !strstr(e.msg, "se%2Fcr"), "and never the secret");
    ok(!strstr(e.msg, "managed identity"), "a configured source that fails ends the chain");

    /* A certificate that cannot be loaded is a configured source: the chain ends there too. */
    unsetenv("AZURE_CLIENT_SECRET");
    setenv("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/cert.pem", 1);
    azure_auth_reset();
    ok(azure_auth_token(AZURE_SCOPE_ARM, &tok, NULL, 0, &e) < 0 &&
           strstr(e.msg, "environment: AZURE_CLIENT_CERTIFICATE_PATH: cannot read /nonexistent/cert.pem") &&
           !strstr(e.msg, "workload identity"),
       "a missing certificate file: %s", e.msg);
    unsetenv("AZURE_CLIENT_CERTIFICATE_PATH");
    setenv("AZURE_CLIENT_SECRET", secret, 1);
    setenv("AZURE_AUTHORITY_HOST", "http://login.example.invalid", 1);
    azure_auth_reset();
    ok(azure_auth_token(AZURE_SCOPE_ARM, &tok, NULL, 0, &e) < 0 && strstr(e.msg, "must use https"),
       "plain http to another machine is refused: %s", e.msg);
    char *host;
    setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us///", 1);
    host = azure_authority_host();
    is_str(host, "https://login.microsoftonline.us", "AZURE_AUTHORITY_HOST without trailing slashes");
    free(host);
    unsetenv("AZURE_AUTHORITY_HOST");
    host = azure_authority_host();
    is_str(host, "https://login.microsoftonline.com", "the default authority");
    free(host);
    azure_auth_reset();
    http_client_free(c);
    free(url), free(authority);
}

int main(void)
{
    struct err e = { 0 };
    /* Unbuffered: the chain's warnings on stderr stay between whole TAP lines. */
    setvbuf(stdout, NULL, _IONBF, 0);
    setenv("STEPOP_HTTP_RETRY_BASE", "1ms", 1);
    if (http_global_init(&e) < 0 || !mkdtemp(dir))
        return 1;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = self_signed(key, "stepop-unit");
    test_b64url();
    test_cert_and_assertion(key, x);
    test_cert_errors(key, x);
    test_parsers();
    test_chain();
    X509_free(x);
    EVP_PKEY_free(key);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    free(cmd);
    return tap_done();
}
