/* The RS256 JWT a service account signs to get a token (RFC 7523 bearer assertion), with
 * OpenSSL's libcrypto. */
#include "creds.h"

#include "../../runtime/util.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>

char *google_b64url(const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = xmalloc(len / 3 * 4 + 5), *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63], *o++ = tab[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

int google_key_load(const char *pem, EVP_PKEY **key, struct err *e)
{
    *key = NULL;
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b)
        abort();
    /* The empty passphrase callback: a key file never asks for one, and a prompt must not appear. */
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    ERR_clear_error(); /* OpenSSL's queue may name the PEM line; it is not reported */
    if (!k)
        return err_set(e, ERR_INVALID, "private_key is not a PEM private key");
    if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return err_set(e, ERR_INVALID, "private_key is not an RSA key (RS256 needs one)");
    }
    *key = k;
    return 0;
}

int google_rs256(EVP_PKEY *key, const void *data, size_t len, unsigned char **sig, size_t *sig_len, struct err *e)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = 0;
    unsigned char *s = NULL;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, NULL, &n, data, len) == 1;
    if (ok) {
        s = xmalloc(n);
        ok = EVP_DigestSign(ctx, s, &n, data, len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
        free(s);
        return err_set(e, ERR_INTERNAL, "RS256 signing with the service-account key failed");
    }
    *sig = s;
    *sig_len = n;
    return 0;
}

int google_jwt_assertion(EVP_PKEY *key, const char *key_id, const char *email, const char *token_uri,
                         const char *scope, time_t now, char **out, struct err *e)
{
    cJSON *h = cJSON_CreateObject(), *c = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "alg", "RS256");
    cJSON_AddStringToObject(h, "typ", "JWT");
    if (key_id && *key_id)
        cJSON_AddStringToObject(h, "kid", key_id);
    cJSON_AddStringToObject(c, "iss", email);
    cJSON_AddStringToObject(c, "scope", scope);
    cJSON_AddStringToObject(c, "aud", token_uri);
    /* The longest lifetime Google accepts: one hour. */
    cJSON_AddNumberToObject(c, "iat", (double)now);
    cJSON_AddNumberToObject(c, "exp", (double)(now + 3600));
    char *hj = cJSON_PrintUnformatted(h), *cj = cJSON_PrintUnformatted(c);
    cJSON_Delete(h);
    cJSON_Delete(c);
    if (!hj || !cj)
        abort();
    char *h64 = google_b64url(hj, strlen(hj)), *c64 = google_b64url(cj, strlen(cj));
    cJSON_free(hj);
    cJSON_free(cj);
    char *input = xasprintf("%s.%s", h64, c64);
    free(h64);
    free(c64);
    unsigned char *sig;
    size_t sig_len;
    if (google_rs256(key, input, strlen(input), &sig, &sig_len, e) < 0) {
        free(input);
        return -1;
    }
    char *s64 = google_b64url(sig, sig_len);
    *out = xasprintf("%s.%s", input, s64);
    free(input);
    free(sig);
    free(s64);
    return 0;
}
