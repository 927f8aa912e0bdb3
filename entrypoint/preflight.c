#include "preflight.h"

#include "../gpu/gpu.h"
#include "../runtime/log.h"

#include <stdio.h>

int preflight_gpu(const struct manifest *m, cJSON **summary, char *classification, size_t class_len, struct err *e)
{
    *summary = NULL;
    int required = m->gpu_required || m->gpu_smoke == MANIFEST_SMOKE_QUICK;
    /* Probe only when GPUs matter to this step: the probe creates a CUDA context on every device. */
    if (!required && m->gpus == 0)
        return 0;
    struct gpu_requirements req = {
        .min_devices = m->gpu_required ? m->gpu_min_devices : 0,
        .min_cc_major = m->gpu_min_cc_major,
        .min_cc_minor = m->gpu_min_cc_minor,
        .min_memory = m->gpu_min_memory,
        .smoke_quick = m->gpu_smoke == MANIFEST_SMOKE_QUICK,
    };
    if (gpu_preflight(&req, summary, classification, class_len, e) == 0)
        return 0;
    if (!required) {
        log_warn("GPU check (resources.gpus = %d, gpu.required is false): %s", m->gpus, e->msg);
        return 0;
    }
    return -1;
}
