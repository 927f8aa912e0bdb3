/* Drives the Google credentials layer (cloud/google/auth.h) from the integration tests, never
 * printing a token:
 *
 *   google_token token [N]      N tokens (default 1), one line each: provider, token length,
 *                               seconds left
 *   google_token project        the project
 *   google_token get URL [N]    N GETs of URL signed by google_auth_sign; prints each body
 *   google_token sign TEXT      the RS256 signature of TEXT (base64url) and the key's email
 *   google_token threads N      N threads ask for a token at once; prints how many got one
 *
 * Exit 1 with "google_token: <message>" and "kind: <err kind>" on stderr when the layer fails. */
#include "../../cloud/google/auth.h"
#include "../../cloud/google/creds.h"
#include "../../runtime/http.h"
#include "../../runtime/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const struct err *e)
{
    fprintf(stderr, "google_token: %s\nkind: %s\n", e->msg, err_kind_name(e->kind));
    return 1;
}

static void *one_token(void *arg)
{
    struct err e = { 0 };
    char *token;
    if (google_auth_token(&token, NULL, 0, &e) < 0)
        return NULL;
    google_secret_free(token);
    return arg;
}

int main(int argc, char **argv)
{
    struct err e = { 0 };
    if (argc < 2) {
        fprintf(stderr, "usage: google_token token [N] | project | get URL [N] | sign TEXT\n");
        return 2;
    }
    log_init();
    if (http_global_init(&e) < 0)
        return fail(&e);
    int rc = 0;
    if (strcmp(argv[1], "token") == 0) {
        int n = argc > 2 ? atoi(argv[2]) : 1;
        for (int i = 0; i < n && rc == 0; i++) {
            char *token;
            time_t exp;
            if (google_auth_token(&token, &exp, 0, &e) < 0)
                return fail(&e);
            printf("provider=%s length=%zu left=%lld\n", google_auth_provider(), strlen(token),
                   (long long)(exp - time(NULL)));
            fflush(stdout);
            google_secret_free(token);
        }
    } else if (strcmp(argv[1], "project") == 0) {
        char *p = google_auth_project(&e);
        if (!p)
            return fail(&e);
        printf("%s\n", p);
        free(p);
    } else if (strcmp(argv[1], "get") == 0 && argc > 2) {
        int n = argc > 3 ? atoi(argv[3]) : 1;
        struct http_client *c = http_client_new();
        for (int i = 0; i < n && rc == 0; i++) {
            struct http_request req = { .method = "GET", .url = argv[2], .sign = google_auth_sign };
            struct http_response resp;
            if (http_perform(c, &req, &resp, &e) < 0)
                rc = fail(&e);
            else
                printf("%.*s\n", (int)resp.body.len, resp.body.data ? resp.body.data : "");
            fflush(stdout);
            http_response_free(&resp);
        }
        http_client_free(c);
    } else if (strcmp(argv[1], "sign") == 0 && argc > 2) {
        unsigned char *sig;
        size_t len;
        char *email;
        if (google_auth_sign_bytes(argv[2], strlen(argv[2]), &sig, &len, &email, &e) < 0)
            return fail(&e);
        char *b64 = google_b64url(sig, len);
        printf("%s %s\n", b64, email);
        free(b64);
        free(sig);
        free(email);
    } else if (strcmp(argv[1], "threads") == 0 && argc > 2) {
        int n = atoi(argv[2]), got = 0;
        pthread_t t[64];
        n = n < 1 ? 1 : n > 64 ? 64 : n;
        for (int i = 0; i < n; i++)
            pthread_create(&t[i], NULL, one_token, &got);
        for (int i = 0; i < n; i++) {
            void *r;
            pthread_join(t[i], &r);
            got += r != NULL;
        }
        printf("%d\n", got);
    } else {
        fprintf(stderr, "google_token: unknown command %s\n", argv[1]);
        rc = 2;
    }
    google_auth_reset();
    return rc;
}
