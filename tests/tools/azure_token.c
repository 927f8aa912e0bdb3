/* The Azure identity chain through the real code, for tests/integration/azure_auth.sh:
 *
 *   azure_token [--times N] [--between CMD] [--force] [--header LINE] [--threads N] SCOPE [URL]
 *
 * Asks azure_auth_token N times (default 1) for SCOPE, running CMD with system() between two
 * asks; prints "provider=... length=... expires_in=..." for each, never the token. With URL, then
 * GETs it (with the header LINE, "Name: value", when given) with azure_auth_sign as the request's
 * sign hook and prints "HTTP <status>" and the answer's body. With --threads N, N threads first
 * ask at once (the cache must make one fetch of it) and "threads=N ok=K" is printed. Exit 1
 * with the chain's message on stderr when no token came. */
#include "../../cloud/azure/auth.h"
#include "../../runtime/http.h"
#include "../../runtime/log.h"
#include "../../runtime/util.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int threads_ok;

static void *ask(void *scope)
{
    char *token;
    struct err e = { 0 };
    if (azure_auth_token(scope, &token, NULL, 0, &e) == 0) {
        atomic_fetch_add(&threads_ok, 1);
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    } else {
        fprintf(stderr, "azure_token: %s\n", e.msg);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int times = 1, force = 0, threads = 0, i = 1;
    const char *between = NULL, *header = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--times") == 0 && i + 1 < argc)
            times = atoi(argv[++i]);
        else if (strcmp(argv[i], "--between") == 0 && i + 1 < argc)
            between = argv[++i];
        else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc)
            header = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else
            break;
    }
    if (i >= argc || times < 1 || threads < 0 || threads > 64) {
        fprintf(stderr, "usage: azure_token [--times N] [--between CMD] [--force] [--header LINE] [--threads N] SCOPE [URL]\n");
        return 2;
    }
    const char *scope = argv[i], *url = i + 1 < argc ? argv[i + 1] : NULL;
    struct err e = { 0 };
    log_init();
    if (http_global_init(&e) < 0) {
        fprintf(stderr, "azure_token: %s\n", e.msg);
        return 1;
    }
    if (threads > 0) {
        pthread_t t[64];
        for (int n = 0; n < threads; n++)
            pthread_create(&t[n], NULL, ask, (void *)scope);
        for (int n = 0; n < threads; n++)
            pthread_join(t[n], NULL);
        printf("threads=%d ok=%d\n", threads, atomic_load(&threads_ok));
    }
    for (int n = 0; n < times; n++) {
        if (n > 0 && between && system(between) != 0) {
            fprintf(stderr, "azure_token: %s failed\n", between);
            return 1;
        }
        char *token;
        time_t expires;
        if (azure_auth_token(scope, &token, &expires, force && n > 0, &e) < 0) {
            fprintf(stderr, "azure_token: %s\n", e.msg);
            return 1;
        }
        printf("provider=%s length=%zu expires_in=%lld\n", azure_auth_provider(), strlen(token),
               (long long)(expires - time(NULL)));
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    int rc = 0;
    if (url) {
        const char *hdr[] = { header, NULL };
        struct http_request req = { .method = "GET", .url = url, .headers = hdr, .sign = azure_auth_sign,
                                    .hook_ctx = (void *)scope };
        struct http_client *c = http_client_new();
        struct http_response r;
        if (http_perform(c, &req, &r, &e) < 0) {
            fprintf(stderr, "azure_token: %s\n", e.msg);
            rc = 1;
        } else {
            printf("HTTP %ld\n%s\n", r.status, r.body.data ? r.body.data : "");
        }
        http_response_free(&r);
        http_client_free(c);
    }
    fflush(stdout);
    azure_auth_reset();
    return rc;
}
