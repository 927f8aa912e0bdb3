/* Inside the gpu room: the backend interface (one backend per build, chosen by the Makefile:
 * gpu_cuda.c or gpu_none.c), the failure classes, and the pure logic shared by the command, the
 * preflight and the backends (exposed for unit tests). */
#ifndef STEPOP_GPU_BACKEND_H
#define STEPOP_GPU_BACKEND_H

#include "gpu.h"

#include <stdint.h>

enum gpu_class {
    GPU_READY = 0,
    GPU_NO_DRIVER,
    GPU_DRIVER_TOO_OLD,
    GPU_STUB_LIBRARY,
    GPU_NO_DEVICE,
    GPU_INIT_FAILED,
    GPU_FABRIC_MANAGER,
    GPU_BUSY_OR_PROHIBITED,
    GPU_ECC_ERROR,
    GPU_COMPAT_MISMATCH,
    GPU_TIMEOUT,
    GPU_UNKNOWN,
    GPU_KERNEL_FAULT,
    GPU_REQUIREMENT_NOT_MET,
    GPU_BELOW_THRESHOLD,
    GPU_WRONG_RESULT,
    GPU_CUDA_NOT_BUILT,
    GPU_CLASS_COUNT
};

/* "no_driver", ...; NULL for GPU_READY. */
const char *gpu_class_name(enum gpu_class c);
/* GPU_UNKNOWN for a name that is not a class. */
enum gpu_class gpu_class_from_name(const char *name);
int gpu_class_exit_code(enum gpu_class c);

struct gpu_smoke_opts {
    int level;            /* 1: vectorAdd; 2: + bandwidth and memory test; 3: + stress */
    int seconds;          /* stress duration */
    double memory_share;  /* of free memory, for the pattern test */
};

/* A backend's work runs in the child (a re-executed stepop, gpu_child_main) and returns its findings as JSON (docs/gpu.md):
 * driver_version, runtime_version, driver_library, devices[], and on failure classification,
 * cuda_error and message. The parent adds the environment, requirements, thresholds and hint. */
struct gpu_backend {
    const char *name;
    int runtime_version;  /* CUDART_VERSION compiled in (13000), 0 without CUDA */
    cJSON *(*probe)(void);
    cJSON *(*smoke)(const struct gpu_smoke_opts *o);
};
extern const struct gpu_backend gpu_backend;

/* Records the first failure in a backend's result (later ones only add to device entries). */
void gpu_result_fail(cJSON *result, enum gpu_class c, const char *cuda_error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (or "MIG-..."), as nvidia-smi prints it. */
void gpu_format_uuid(const unsigned char bytes[16], int mig, char out[41]);
/* "12.4" from 12040; NULL for 0 (no driver). Returns out. */
const char *gpu_format_version(int v, char *out, size_t len);
/* "X.Y" (X 1-99, Y 0-9) as a compute capability. */
int gpu_parse_cc(const char *s, int *major, int *minor);

/* The stress kernel's generator: x -> a*x + c (mod 2^32). gpu_lcg_jump gives the map after n
 * steps as x -> *mul*x + *add, so the GPU's result is checked exactly in O(log n). */
#define GPU_LCG_A 1664525u
#define GPU_LCG_C 1013904223u
void gpu_lcg_jump(uint32_t a, uint32_t c, uint64_t n, uint32_t *mul, uint32_t *add);

/* The median of n values (sorts v in place). */
double gpu_median(double *v, int n);

/* Pure parts of the verdict, for unit tests: every requirement against the devices in report
 * (adds report.requirements and each device's meets_requirements); returns 0 when met, else -1
 * with msg set. */
int gpu_eval_requirements(cJSON *report, const struct gpu_requirements *req, char *msg, size_t len);
struct gpu_thresholds {
    double min_h2d_gbps, min_d2h_gbps, min_dtod_gbps; /* 0: none */
};
int gpu_eval_thresholds(cJSON *report, const struct gpu_thresholds *t, char *msg, size_t len);
/* One line a person can act on, from the class and what report says about the environment. */
void gpu_hint(enum gpu_class c, const cJSON *report, char *out, size_t len);

/* What `stepop gpu` and the preflight ask for. */
struct gpu_opts {
    struct gpu_requirements req;
    struct gpu_thresholds thresholds;
    struct gpu_smoke_opts smoke;    /* smoke.level 0: check only */
    int64_t timeout_ms;
};
/* The child's hidden subcommand (`stepop gpu __child ...`) and the descriptor its result goes to.
 * gpu_child_main takes argv from "__child" on and does not return when started by gpu_run; a
 * program that links gpu.c and calls gpu_run must pass this subcommand to it (stepop's cmd_gpu and
 * the unit test do). */
#define GPU_CHILD_COMMAND "__child"
#define GPU_CHILD_FD 3
int gpu_child_main(int argc, char **argv);

/* Runs the backend in a re-executed child under the timeout and returns the full report: ok,
 * classification, message, hint, backend, versions, devices, requirements, (thresholds, level),
 * elapsed_ms, environment. Never NULL. */
cJSON *gpu_run(const struct gpu_opts *o);
enum gpu_class gpu_report_class(const cJSON *report);

#endif
