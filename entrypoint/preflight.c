#include "preflight.h"

#include <stdio.h>

int preflight_gpu(const struct manifest *m, cJSON **summary, char *classification, size_t class_len, struct err *e)
{
    *summary = NULL;
    if (!m->gpu_required && m->gpu_smoke == MANIFEST_SMOKE_NONE)
        return 0;
    /* This build has no GPU backend yet: a step that needs a GPU cannot be served. */
    snprintf(classification, class_len, "no_driver");
    return err_set(e, ERR_UNSUPPORTED, "this stepop build has no GPU support; the step requires a GPU");
}
