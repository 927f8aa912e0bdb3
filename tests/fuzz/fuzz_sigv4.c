/* SigV4 canonicalisation (runtime/sigv4.c). The input is lines: method, path, query, then
 * "name:value" headers. The canonical query is a fixed point (canonicalising it again changes
 * nothing), signed header names come out lower-cased, sorted and unique, and presigning works on
 * the same parts. */
#include "../../cloud/aws/sigv4.h"
#include "fuzz.h"

#define MAX_HEADERS 16

static char *next_line(char **p)
{
    char *s = *p, *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        *p = nl + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size), *p = s;
    const char *method = next_line(&p), *path = next_line(&p), *query = next_line(&p);
    struct sigv4_header h[MAX_HEADERS];
    size_t n = 0;
    while (*p && n < MAX_HEADERS) {
        char *line = next_line(&p), *colon = strchr(line, ':');
        /* Callers sign fixed header names; a ';' in one would make SignedHeaders ambiguous. */
        if (!colon || colon == line || memchr(line, ';', (size_t)(colon - line)))
            continue;
        *colon = 0;
        h[n].name = line;
        h[n].value = colon + 1;
        n++;
    }
    char *canon = sigv4_canonical_query(query);
    if (canon) {
        char *again = sigv4_canonical_query(canon);
        fuzz_assert(again && strcmp(again, canon) == 0, "not a fixed point: \"%s\" -> \"%s\" -> \"%s\"", query, canon,
                    again ? again : "(refused)");
        free(again);
    }
    free(canon);
    free(sigv4_encode(path, 0));

    time_t when = 1369353600 + (time_t)(size * 86401);
    struct sigv4_input in = { .method = method, .path = path, .query = query, .headers = h, .n_headers = n,
                              .payload_hash = SIGV4_UNSIGNED_PAYLOAD, .access_key = "AKIDEXAMPLE",
                              .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", .region = "us-east-1",
                              .service = "s3", .when = when };
    struct sigv4_output out;
    if (sigv4_sign(&in, &out) == 0) {
        fuzz_assert(strlen(out.signature) == 64, "signature \"%s\"", out.signature);
        const char *prev = NULL;
        size_t prev_len = 0;
        for (const char *q = out.signed_headers; *q;) {
            size_t len = strcspn(q, ";");
            for (size_t i = 0; i < len; i++)
                fuzz_assert(q[i] < 'A' || q[i] > 'Z', "upper case in \"%s\"", out.signed_headers);
            if (prev) {
                size_t m = len < prev_len ? len : prev_len;
                int c = memcmp(prev, q, m);
                fuzz_assert(c < 0 || (c == 0 && prev_len < len), "not sorted and unique: \"%s\"", out.signed_headers);
            }
            prev = q;
            prev_len = len;
            q += len;
            if (*q)
                q++;
        }
        sigv4_output_free(&out);
    }
    char *url = sigv4_presign("https://bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com", method, path, query,
                              "AKIDEXAMPLE", "secret", n ? h[0].value : NULL, "us-east-1", "s3", when, 3600);
    free(url);
    free(s);
    return 0;
}
