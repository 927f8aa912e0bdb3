/* The GPU backend of a build without the CUDA toolkit: every check says so plainly. */
#include "gpu_backend.h"

static cJSON *not_built(void)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddArrayToObject(r, "devices");
    gpu_result_fail(r, GPU_CUDA_NOT_BUILT, NULL, "this stepop was built without CUDA, so it cannot use GPUs");
    return r;
}

static cJSON *none_smoke(const struct gpu_smoke_opts *o)
{
    (void)o;
    return not_built();
}

const struct gpu_backend gpu_backend = {
    .name = "none",
    .runtime_version = 0,
    .probe = not_built,
    .smoke = none_smoke,
};
