/* The client certificate and the signed client assertion sent in its place (RFC 7523), made as
 * current MSAL makes it: PS256 with the certificate's SHA-256 thumbprint in x5t#S256. */
#include "creds.h"

#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An assertion is good for 10 minutes, as MSAL makes them. */
#define ASSERTION_LIFETIME_S 600

char *azure_b64url(const void *data, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* OpenSSL's reason for the last failure, for messages (never key material), and a clean queue. */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long code = ERR_peek_last_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    snprintf(buf, cap, "%s", r ? r : "unknown reason");
    ERR_clear_error();
    return buf;
}

/* The PEM pass phrase: the password given, and never a prompt on the terminal. */
static int pem_password(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pw = u;
    if (!pw)
        return 0;
    int n = (int)strlen(pw);
    if (n > size)
        return 0;
    memcpy(buf, pw, (size_t)n);
    return n;
}

static int load_pem(const char *path, const char *text, size_t len, const char *password, struct azure_cert *c,
                    struct err *e)
{
    char why[256];
    BIO *b = BIO_new_mem_buf(text, (int)len);
    c->cert = PEM_read_bio_X509(b, NULL, pem_password, NULL);
    BIO_free(b);
    if (!c->cert)
        return err_set(e, ERR_INVALID, "%s holds no PEM certificate (%s)", path, ssl_reason(why, sizeof why));
    b = BIO_new_mem_buf(text, (int)len);
    c->key = PEM_read_bio_PrivateKey(b, NULL, pem_password, (void *)password);
    BIO_free(b);
    if (!c->key)
        return err_set(e, ERR_INVALID, "%s holds no private key that could be read%s (%s)", path,
                       password ? " with AZURE_CLIENT_CERTIFICATE_PASSWORD" : "", ssl_reason(why, sizeof why));
    return 0;
}

static int load_pfx(const char *path, const char *data, size_t len, const char *password, struct azure_cert *c,
                    struct err *e)
{
    char why[256];
    const unsigned char *p = (const unsigned char *)data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12)
        return err_set(e, ERR_INVALID, "%s is neither PEM nor a PFX (PKCS#12) file", path);
    int rc = 0;
    /* No password: the empty one, or none at all (two different MACs in PKCS#12). */
    const char *pw = password ? password : "";
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pw, -1)) {
        if (!password && PKCS12_verify_mac(p12, NULL, 0))
            pw = NULL;
        else
            rc = err_set(e, ERR_AUTH, "%s: the PFX file's password is not AZURE_CLIENT_CERTIFICATE_PASSWORD%s", path,
                         password ? "" : " (which is not set)");
        ERR_clear_error();
    }
    if (rc == 0) {
        STACK_OF(X509) *ca = NULL;
        if (!PKCS12_parse(p12, pw, &c->key, &c->cert, &ca))
            rc = err_set(e, ERR_INVALID, "%s: cannot open the PFX file (%s; OpenSSL 3 reads a legacy RC2-encrypted "
                         "one only with its legacy provider: export it again with AES)",
                         path, ssl_reason(why, sizeof why));
        else if (!c->cert || !c->key)
            rc = err_set(e, ERR_INVALID, "%s: the PFX file lacks %s", path, c->cert ? "a private key" : "a certificate");
        sk_X509_pop_free(ca, X509_free);
    }
    PKCS12_free(p12);
    return rc;
}

int azure_cert_load(const char *path, const char *password, struct azure_cert *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    if (read_small_file(path, 1u << 20, &data, &len) < 0)
        return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot read %s: %s", path, strerror(errno));
    int rc = memmem(data, len, "-----BEGIN", 10) ? load_pem(path, data, len, password, out, e)
                                                  : load_pfx(path, data, len, password, out, e);
    OPENSSL_cleanse(data, len);
    free(data);
    if (rc == 0 && EVP_PKEY_get_base_id(out->key) != EVP_PKEY_RSA)
        rc = err_set(e, ERR_UNSUPPORTED, "%s: the key is not RSA (Microsoft Entra takes RSA certificates only)", path);
    if (rc == 0 && X509_check_private_key(out->cert, out->key) != 1) {
        ERR_clear_error();
        rc = err_set(e, ERR_INVALID, "%s: the private key does not belong to the (first) certificate", path);
    }
    if (rc == 0) {
        unsigned char md[32];
        unsigned int n = 0;
        X509_digest(out->cert, EVP_sha256(), md, &n);
        char *t = azure_b64url(md, n);
        str_copy(out->thumb_s256, sizeof out->thumb_s256, t);
        free(t);
    }
    if (rc < 0)
        azure_cert_free(out);
    return rc;
}

void azure_cert_free(struct azure_cert *c)
{
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    memset(c, 0, sizeof *c);
}

static char *json_b64url(cJSON *j)
{
    char *text = json_print(j, 0);
    char *out = azure_b64url(text, strlen(text));
    free(text);
    return out;
}

int azure_assertion_sign(const struct azure_cert *c, const char *alg, const char *aud, const char *client_id,
                         time_t now, char **jwt, struct err *e)
{
    int pss = strcmp(alg, "PS256") == 0;
    if (!pss && strcmp(alg, "RS256") != 0)
        return err_set(e, ERR_INTERNAL, "unknown assertion algorithm %s", alg);
    unsigned char id[16];
    if (RAND_bytes(id, sizeof id) != 1)
        return err_set(e, ERR_INTERNAL, "no random bytes for the assertion's jti");
    id[6] = (id[6] & 0x0f) | 0x40; /* a version 4 UUID, as MSAL's */
    id[8] = (id[8] & 0x3f) | 0x80;
    char jti[37];
    snprintf(jti, sizeof jti, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
             id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]);

    cJSON *h = cJSON_CreateObject(), *p = cJSON_CreateObject();
    json_add_str(h, "alg", alg);
    json_add_str(h, "typ", "JWT");
    json_add_str(h, "x5t#S256", c->thumb_s256);
    json_add_str(p, "aud", aud);
    json_add_str(p, "iss", client_id);
    json_add_str(p, "sub", client_id);
    json_add_str(p, "jti", jti);
    cJSON_AddNumberToObject(p, "nbf", (double)now);
    cJSON_AddNumberToObject(p, "iat", (double)now);
    cJSON_AddNumberToObject(p, "exp", (double)(now + ASSERTION_LIFETIME_S));
    char *hb = json_b64url(h), *pb = json_b64url(p);
    cJSON_Delete(h);
    cJSON_Delete(p);
    char *input = xasprintf("%s.%s", hb, pb);
    free(hb), free(pb);

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t siglen = 0;
    unsigned char *sig = NULL;
    int ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, c->key) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
    ok = ok && EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) == 1;
    if (ok) {
        sig = xmalloc(siglen);
        ok = EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) == 1;
    }
    EVP_MD_CTX_free(md);
    int rc = 0;
    if (!ok) {
        char why[256];
        rc = err_set(e, ERR_INTERNAL, "signing the client assertion failed (%s)", ssl_reason(why, sizeof why));
    } else {
        char *sb = azure_b64url(sig, siglen);
        *jwt = xasprintf("%s.%s", input, sb);
        free(sb);
    }
    free(sig);
    free(input);
    return rc;
}
