/* Google credential files (cloud/google/auth.c, external.c, jwt.c): the input is written to a file
 * and read as GOOGLE_APPLICATION_CREDENTIALS would be, without any exchange. An accepted file has
 * what its type needs; a refusal has a message. */
#include "../../cloud/google/creds.h"
#include "fuzz.h"

#include <unistd.h>

static char path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/creds.json", fuzz_tempdir("google"));
    }
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct google_source *s = NULL;
    struct err e = { 0 };
    if (google_source_from_file(path, &s, &e) == 0) {
        fuzz_assert(s && s->doc, "a source with its document");
        if (s->type == GOOGLE_SERVICE_ACCOUNT)
            fuzz_assert(s->key && s->email && *s->email && s->token_uri, "a key, an email and a token_uri");
        if (s->type == GOOGLE_AUTHORIZED_USER)
            fuzz_assert(s->token_uri, "a token_uri");
        if (s->type == GOOGLE_IMPERSONATED)
            fuzz_assert(s->inner && s->inner->type != GOOGLE_IMPERSONATED, "one level of source");
        google_source_free(s);
    } else {
        fuzz_assert(!s && e.msg[0], "a refusal says why");
    }
    return 0;
}
