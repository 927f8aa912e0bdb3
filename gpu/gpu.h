/* GPU checks: `stepop gpu check|smoke` and the entrypoint's preflight, on the CUDA runtime
 * (gpu_cuda.c) or on a build without CUDA (gpu_none.c), which says so. CUDA only ever runs in a
 * child stepop (re-executed, not just forked) under a timeout: a hung driver gives a verdict
 * instead of a hung caller, and the calling process never holds a CUDA context (which would not
 * survive its own later forks). */
#ifndef STEPOP_GPU_H
#define STEPOP_GPU_H

#include "../runtime/err.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes of `stepop gpu` beyond 0 (ready) and 2 (usage); README "Exit codes". */
enum {
    GPU_EXIT_UNAVAILABLE = 10,  /* no usable GPU or driver in this environment */
    GPU_EXIT_UNMET = 11,        /* GPUs present, but a requirement or threshold is not met */
    GPU_EXIT_FAULT = 12,        /* the driver or a GPU misbehaved: init failure, ECC, hang, fault */
    GPU_EXIT_WRONG_RESULT = 13, /* a kernel or the memory test gave a wrong answer */
};

struct gpu_requirements {
    int min_devices;            /* 0 counts as 1 */
    int min_cc_major, min_cc_minor;
    int64_t min_memory;         /* total memory per device, bytes; 0: any */
    int smoke_quick;            /* also run smoke level 1 on every device */
    int64_t timeout_ms;         /* 0: 30 s */
};

/* Runs the check (and a quick level-1 smoke when asked) hang-proof. Returns 0 when ready, -1
 * otherwise with classification (machine-readable, docs/gpu.md) and a message containing the
 * hint. *summary (always set, caller frees with cJSON_Delete) is the GPU summary for status.json:
 * names, UUIDs, memory, driver/runtime versions. Call it before CUDA is used in this process. */
int gpu_preflight(const struct gpu_requirements *req, cJSON **summary, char *classification, size_t class_len,
                  struct err *e);

/* "cuda" or "none". */
const char *gpu_backend_name(void);
/* The CUDA runtime version compiled in ("13.0"), or "none". */
const char *gpu_runtime_compiled(void);

#endif
