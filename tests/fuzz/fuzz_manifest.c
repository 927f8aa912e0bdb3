/* The manifest parser (runtime/manifest.c): JSON text -> manifest_parse, with and without a
 * required command (the entrypoint's manifest and STEP.json's step fields), and the parsed
 * manifest printed with its defaults and parsed again: what it accepted once it must accept again. */
#include "../../runtime/jsonutil.h"
#include "../../runtime/manifest.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int require = 0; require < 2; require++) {
        struct manifest m;
        struct err e = { 0 };
        memset(&m, 0, sizeof m);
        if (manifest_parse((const char *)data, size, require, &m, &e) < 0) {
            fuzz_assert(e.msg[0], "refused without a message");
            manifest_free(&m);
            continue;
        }
        cJSON *j = manifest_to_json(&m);
        char *text = json_print(j, 0);
        struct manifest again;
        struct err e2 = { 0 };
        memset(&again, 0, sizeof again);
        fuzz_assert(manifest_parse(text, strlen(text), require, &again, &e2) == 0,
                    "its own output refused: %s\n%s", e2.msg, text);
        manifest_free(&again);
        free(text);
        cJSON_Delete(j);
        manifest_free(&m);
    }
    return 0;
}
