/* The status.json reader (runtime/status.c), as the submitter reads a run's status: JSON text ->
 * status_from_json, then written back with status_to_json. */
#include "../../runtime/jsonutil.h"
#include "../../runtime/status.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = NULL;
    struct err e = { 0 };
    if (json_parse((const char *)data, size, "status.json", &j, &e) < 0)
        return 0;
    struct run_status s;
    if (status_from_json(j, &s, &e) == 0) {
        fuzz_assert(s.phase >= 0 && s.phase < PHASE_COUNT, "phase %d", (int)s.phase);
        fuzz_assert(s.reason >= 0 && s.reason < REASON_COUNT, "reason %d", (int)s.reason);
        cJSON *out = status_to_json(&s);
        char *text = json_print(out, 0);
        free(text);
        cJSON_Delete(out);
    }
    status_free(&s);
    cJSON_Delete(j);
    return 0;
}
