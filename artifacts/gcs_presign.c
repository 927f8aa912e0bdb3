/* gs:// presigned URLs: V4 signing with GOOG4-RSA-SHA256 from the service-account key of the
 * credentials, path-style on the endpoint, only "host" signed, UNSIGNED-PAYLOAD; the URL is the
 * one @google-cloud/storage's file.getSignedUrl({version: 'v4'}) makes for the same key and
 * clock (tests/integration/gcs_resumable.sh compares them byte for byte). */
#include "gcs_internal.h"

#include "../cloud/google/auth.h"
#include "../runtime/log.h"
#include "../runtime/uri.h"
#include "../runtime/url.h"
#include "../runtime/util.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    hex_encode(md, n, out);
}

int gcs_presign_url(struct gcs *g, const char *uri, const char *method, int64_t expires_s, char **url,
                    struct err *e)
{
    if (expires_s < 1 || expires_s > 604800)
        return err_set(e, ERR_INVALID, "a signed URL lasts from 1 second to 7 days (V4 signing's limit)");
    struct gcs_path p;
    if (gcs_parse_uri(uri, &p, e) < 0)
        return -1;
    int rc = -1;
    struct url base;
    memset(&base, 0, sizeof base);
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *email = NULL, *email_enc = NULL, *path = NULL, *query = NULL, *canon = NULL, *blob = NULL;
    if (!*p.object || str_has_suffix(p.object, "/")) {
        rc = err_set(e, ERR_INVALID, "presign needs an object name");
        goto out;
    }
    if (url_parse(g->cfg.base, &base, e) < 0)
        goto out;
    /* The signing call also names the key's account, which the credential scope holds. */
    if (google_auth_sign_bytes("", 0, &sig, &sig_len, &email, e) < 0)
        goto out;
    free(sig);
    sig = NULL;
    time_t now = g->cfg.fixed_now ? g->cfg.fixed_now : time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[9], stamp[17];
    strftime(date, sizeof date, "%Y%m%d", &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char *obj = uri_encode(p.object, "/");
    path = xasprintf("/%s/%s", p.bucket, obj);
    free(obj);
    char *cred = xasprintf("%s/%s/auto/storage/goog4_request", email, date);
    email_enc = uri_encode(cred, "");
    free(cred);
    query = xasprintf("X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=%s&X-Goog-Date=%s&X-Goog-Expires=%lld"
                      "&X-Goog-SignedHeaders=host",
                      email_enc, stamp, (long long)expires_s);
    canon = xasprintf("%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", method, path, query, base.host);
    char hash[65];
    sha256_hex(canon, hash);
    blob = xasprintf("GOOG4-RSA-SHA256\n%s\n%s/auto/storage/goog4_request\n%s", stamp, date, hash);
    if (google_auth_sign_bytes(blob, strlen(blob), &sig, &sig_len, NULL, e) < 0)
        goto out;
    char *hex = xmalloc(sig_len * 2 + 1);
    hex_encode(sig, sig_len, hex);
    *url = xasprintf("%s%s?%s&X-Goog-Signature=%s", g->cfg.base, path, query, hex);
    free(hex);
    rc = 0;
out:
    if (rc < 0 && e->kind != ERR_INVALID)
        err_prefix(e, "presign %s: ", uri);
    free(sig);
    free(email);
    free(email_enc);
    free(path);
    free(query);
    free(canon);
    free(blob);
    url_free(&base);
    gcs_path_free(&p);
    return rc;
}
