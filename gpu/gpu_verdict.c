/* The pure half of the GPU verdict: failure classes and their exit codes, requirements and
 * thresholds against a report, hints, and the small formats the backends share. */
#include "gpu_backend.h"

#include "../runtime/jsonutil.h"
#include "../runtime/units.h"
#include "../runtime/util.h"

#include <stddef.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int exit_code;
} classes[GPU_CLASS_COUNT] = {
    [GPU_READY] = { NULL, 0 },
    [GPU_NO_DRIVER] = { "no_driver", GPU_EXIT_UNAVAILABLE },
    [GPU_DRIVER_TOO_OLD] = { "driver_too_old", GPU_EXIT_UNAVAILABLE },
    [GPU_STUB_LIBRARY] = { "stub_library", GPU_EXIT_UNAVAILABLE },
    [GPU_NO_DEVICE] = { "no_device", GPU_EXIT_UNAVAILABLE },
    [GPU_INIT_FAILED] = { "init_failed", GPU_EXIT_FAULT },
    [GPU_FABRIC_MANAGER] = { "fabric_manager", GPU_EXIT_UNAVAILABLE },
    [GPU_BUSY_OR_PROHIBITED] = { "busy_or_prohibited", GPU_EXIT_UNAVAILABLE },
    [GPU_ECC_ERROR] = { "ecc_error", GPU_EXIT_FAULT },
    [GPU_COMPAT_MISMATCH] = { "compat_mismatch", GPU_EXIT_UNAVAILABLE },
    [GPU_TIMEOUT] = { "timeout", GPU_EXIT_FAULT },
    [GPU_UNKNOWN] = { "unknown", GPU_EXIT_FAULT },
    [GPU_KERNEL_FAULT] = { "kernel_fault", GPU_EXIT_FAULT },
    [GPU_REQUIREMENT_NOT_MET] = { "requirement_not_met", GPU_EXIT_UNMET },
    [GPU_BELOW_THRESHOLD] = { "below_threshold", GPU_EXIT_UNMET },
    [GPU_WRONG_RESULT] = { "wrong_result", GPU_EXIT_WRONG_RESULT },
    [GPU_CUDA_NOT_BUILT] = { "cuda_not_built", GPU_EXIT_UNAVAILABLE },
};

const char *gpu_class_name(enum gpu_class c)
{
    return (unsigned)c < GPU_CLASS_COUNT ? classes[c].name : "unknown";
}

enum gpu_class gpu_class_from_name(const char *name)
{
    for (int i = 1; name && i < GPU_CLASS_COUNT; i++)
        if (strcmp(classes[i].name, name) == 0)
            return (enum gpu_class)i;
    return GPU_UNKNOWN;
}

int gpu_class_exit_code(enum gpu_class c)
{
    return (unsigned)c < GPU_CLASS_COUNT ? classes[c].exit_code : GPU_EXIT_FAULT;
}

enum gpu_class gpu_report_class(const cJSON *report)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(report, "classification");
    return cJSON_IsString(c) ? gpu_class_from_name(c->valuestring) : GPU_READY;
}

void gpu_result_fail(cJSON *result, enum gpu_class c, const char *cuda_error, const char *fmt, ...)
{
    if (gpu_report_class(result) != GPU_READY)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_DeleteItemFromObjectCaseSensitive(result, "classification");
    cJSON_DeleteItemFromObjectCaseSensitive(result, "cuda_error");
    cJSON_DeleteItemFromObjectCaseSensitive(result, "message");
    cJSON_AddStringToObject(result, "classification", gpu_class_name(c));
    json_add_str(result, "cuda_error", cuda_error);
    cJSON_AddStringToObject(result, "message", msg);
}

void gpu_format_uuid(const unsigned char b[16], int mig, char out[41])
{
    snprintf(out, 41, "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", mig ? "MIG" : "GPU",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

const char *gpu_format_version(int v, char *out, size_t len)
{
    if (v <= 0)
        return NULL;
    snprintf(out, len, "%d.%d", v / 1000, v % 1000 / 10);
    return out;
}

int gpu_parse_cc(const char *s, int *major, int *minor)
{
    int ma = 0, n = 0;
    if (!s || s[0] < '0' || s[0] > '9')
        return -1;
    while (s[n] >= '0' && s[n] <= '9' && n < 3)
        ma = ma * 10 + (s[n++] - '0');
    if (n > 2 || ma < 1 || s[n] != '.' || s[n + 1] < '0' || s[n + 1] > '9' || s[n + 2] != '\0')
        return -1;
    *major = ma;
    *minor = s[n + 1] - '0';
    return 0;
}

void gpu_lcg_jump(uint32_t a, uint32_t c, uint64_t n, uint32_t *mul, uint32_t *add)
{
    /* Square-and-multiply on affine maps: (a1,c1) after (a2,c2) is (a1*a2, a1*c2 + c1). Powers of
     * one map commute, so the order of composition does not matter. */
    uint32_t rm = 1, ra = 0;
    while (n) {
        if (n & 1) {
            ra = a * ra + c;
            rm = a * rm;
        }
        c = a * c + c;
        a = a * a;
        n >>= 1;
    }
    *mul = rm;
    *add = ra;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double gpu_median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void set_bool(cJSON *o, const char *key, int value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddBoolToObject(o, key, value);
}

static double num(const cJSON *o, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

int gpu_eval_requirements(cJSON *report, const struct gpu_requirements *req, char *msg, size_t len)
{
    int want = req->min_devices > 0 ? req->min_devices : 1, meeting = 0, total = 0;
    char first[300] = "";
    cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(report, "devices")) {
        char why[300] = "", have[32], need[32];
        int index = (int)num(d, "index", total), major = 0, minor = 0;
        const char *name = json_str(d, "name"), *cc = json_str(d, "compute_capability");
        double mem = num(d, "memory_total", 0);
        total++;
        if (json_str(d, "error"))
            snprintf(why, sizeof why, "device %d failed: %s", index, json_str(d, "error"));
        else if (req->min_cc_major &&
                 (gpu_parse_cc(cc, &major, &minor) < 0 || major < req->min_cc_major ||
                  (major == req->min_cc_major && minor < req->min_cc_minor)))
            snprintf(why, sizeof why, "device %d (%s) has compute capability %s, below %d.%d", index,
                     name ? name : "?", cc ? cc : "?", req->min_cc_major, req->min_cc_minor);
        else if (req->min_memory > 0 && mem < (double)req->min_memory) {
            units_format_size((int64_t)mem, have, sizeof have);
            units_format_size(req->min_memory, need, sizeof need);
            snprintf(why, sizeof why, "device %d (%s) has %s of memory, below %s", index, name ? name : "?", have,
                     need);
        }
        set_bool(d, "meets_requirements", !why[0]);
        if (!why[0])
            meeting++;
        else if (!first[0])
            snprintf(first, sizeof first, "%s", why);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(report, "requirements");
    cJSON *r = cJSON_AddObjectToObject(report, "requirements");
    cJSON_AddNumberToObject(r, "min_devices", want);
    if (req->min_cc_major) {
        char cc[16];
        snprintf(cc, sizeof cc, "%d.%d", req->min_cc_major, req->min_cc_minor);
        cJSON_AddStringToObject(r, "min_compute_capability", cc);
    } else {
        cJSON_AddNullToObject(r, "min_compute_capability");
    }
    if (req->min_memory > 0)
        cJSON_AddNumberToObject(r, "min_memory", (double)req->min_memory);
    else
        cJSON_AddNullToObject(r, "min_memory");
    cJSON_AddNumberToObject(r, "devices_meeting", meeting);
    cJSON_AddBoolToObject(r, "ok", meeting >= want);
    if (meeting >= want)
        return 0;
    snprintf(msg, len, "%d of %d device%s meet%s the requirements, %d needed%s%s", meeting, total,
             total == 1 ? "" : "s", meeting == 1 ? "s" : "", want, first[0] ? ": " : "", first);
    return -1;
}

int gpu_eval_thresholds(cJSON *report, const struct gpu_thresholds *t, char *msg, size_t len)
{
    static const struct {
        const char *key, *label;
        size_t offset;
    } figures[] = {
        { "h2d", "min_h2d_gbps", offsetof(struct gpu_thresholds, min_h2d_gbps) },
        { "d2h", "min_d2h_gbps", offsetof(struct gpu_thresholds, min_d2h_gbps) },
        { "dtod", "min_dtod_gbps", offsetof(struct gpu_thresholds, min_dtod_gbps) },
    };
    int ok = 1;
    cJSON_DeleteItemFromObjectCaseSensitive(report, "thresholds");
    cJSON *out = cJSON_AddObjectToObject(report, "thresholds");
    for (size_t f = 0; f < sizeof figures / sizeof figures[0]; f++) {
        double want = *(const double *)((const char *)t + figures[f].offset);
        if (want > 0)
            cJSON_AddNumberToObject(out, figures[f].label, want);
        else
            cJSON_AddNullToObject(out, figures[f].label);
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(report, "devices")) {
            cJSON *bw = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "smoke"), "bandwidth");
            double have = num(cJSON_GetObjectItemCaseSensitive(bw, figures[f].key), "median_gbps", -1);
            if (want <= 0 || have < 0 || have >= want)
                continue;
            if (ok)
                snprintf(msg, len, "device %d: %s bandwidth %.1f GB/s is below the threshold %.1f GB/s",
                         (int)num(d, "index", 0), figures[f].key, have, want);
            ok = 0;
        }
    }
    cJSON_AddBoolToObject(out, "ok", ok);
    return ok ? 0 : -1;
}

/* The environment as the report recorded it (gpu.c fills it from the real one). */
static const char *env_of(const cJSON *report, const char *name)
{
    return json_str(cJSON_GetObjectItemCaseSensitive(report, "environment"), name);
}

/* Any /dev/nvidia* node, or with gpu_only one of /dev/nvidia0, /dev/nvidia1, ... (the GPUs, not
 * nvidiactl or nvidia-uvm). */
static int has_dev_node(const cJSON *report, int gpu_only)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "environment"),
                                                           "dev_nodes")) {
        if (!cJSON_IsString(n))
            continue;
        const char *s = n->valuestring;
        if (!gpu_only || (str_has_prefix(s, "/dev/nvidia") && s[11] >= '0' && s[11] <= '9'))
            return 1;
    }
    return 0;
}

static int lacks_compute(const char *caps)
{
    if (!caps)
        return 0;
    char *copy = xstrdup(caps), *save = NULL;
    int found = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (strcmp(t, "compute") == 0 || strcmp(t, "all") == 0)
            found = 1;
    }
    free(copy);
    return !found;
}

void gpu_hint(enum gpu_class c, const cJSON *report, char *out, size_t len)
{
    const char *caps = env_of(report, "NVIDIA_DRIVER_CAPABILITIES");
    const char *nvd = env_of(report, "NVIDIA_VISIBLE_DEVICES");
    const char *cvd = env_of(report, "CUDA_VISIBLE_DEVICES");
    const char *lib = json_str(report, "driver_library");
    const char *drv = json_str(report, "driver_version"), *rt = json_str(report, "runtime_version");
    switch (c) {
    case GPU_READY:
        out[0] = '\0';
        return;
    case GPU_NO_DRIVER:
        if (lacks_compute(caps))
            snprintf(out, len, "NVIDIA_DRIVER_CAPABILITIES=%s lacks compute, so the NVIDIA container runtime did not "
                     "mount libcuda.so.1: set it to compute,utility (or all)", caps);
        else if (!has_dev_node(report, 0))
            snprintf(out, len, "no /dev/nvidia* device nodes and no libcuda.so.1: run the container with GPUs "
                     "(docker run --gpus all, the nvidia runtime, or a nvidia.com/gpu resource request in Kubernetes)");
        else
            snprintf(out, len, "GPU device nodes exist but libcuda.so.1 is not on the loader path: mount the driver "
                     "libraries (NVIDIA container toolkit) or add their directory to LD_LIBRARY_PATH");
        return;
    case GPU_DRIVER_TOO_OLD:
        snprintf(out, len, "the driver supports CUDA %s but stepop's runtime is CUDA %s: upgrade the NVIDIA driver, "
                 "or on datacenter GPUs put cuda-compat %s's libcuda.so.1 on the loader path", drv ? drv : "?",
                 rt ? rt : "?", rt ? rt : "");
        return;
    case GPU_STUB_LIBRARY:
        snprintf(out, len, "the libcuda.so.1 that was loaded (%s) is the CUDA toolkit's link-time stub: remove its "
                 "directory from LD_LIBRARY_PATH or ld.so.conf so the driver's own libcuda.so.1 is found",
                 lib ? lib : "see LD_LIBRARY_PATH");
        return;
    case GPU_NO_DEVICE:
        if (cvd && (!cvd[0] || strcmp(cvd, "-1") == 0 || strcmp(cvd, "NoDevFiles") == 0))
            snprintf(out, len, "CUDA_VISIBLE_DEVICES=\"%s\" hides every device: unset it or list the devices to use",
                     cvd);
        else if (cvd)
            snprintf(out, len, "CUDA_VISIBLE_DEVICES=%s names a device that does not exist here: unset it, or use "
                     "indexes or UUIDs that 'nvidia-smi -L' lists", cvd);
        else if (nvd && (!nvd[0] || strcmp(nvd, "void") == 0 || strcmp(nvd, "none") == 0))
            snprintf(out, len, "NVIDIA_VISIBLE_DEVICES=\"%s\" gives this container no GPU: request GPUs from the "
                     "platform (--gpus, nvidia.com/gpu)", nvd);
        else if (!has_dev_node(report, 1))
            snprintf(out, len, "the driver is here but no /dev/nvidiaN device node is: the container was given no GPU "
                     "(--gpus, nvidia.com/gpu)");
        else
            snprintf(out, len, "the driver sees no usable GPU: run nvidia-smi on the host and look for Xid or "
                     "probe errors in dmesg");
        return;
    case GPU_INIT_FAILED:
        snprintf(out, len, "the driver failed to initialise: check that /dev/nvidiactl and /dev/nvidia-uvm exist and "
                 "are readable (nvidia-modprobe -u -c=0 on the host), that the MPS daemon is healthy if used, and "
                 "dmesg for Xid errors");
        return;
    case GPU_FABRIC_MANAGER:
        snprintf(out, len, "the system is not ready: on NVSwitch systems (HGX, DGX) nvidia-fabricmanager must run, "
                 "with the driver's exact version (systemctl status nvidia-fabricmanager)");
        return;
    case GPU_BUSY_OR_PROHIBITED:
        snprintf(out, len, "the GPU is in compute mode Prohibited, or Exclusive_Process and used by another "
                 "process: see nvidia-smi -q -d COMPUTE,PIDS; set nvidia-smi -c DEFAULT or wait");
        return;
    case GPU_ECC_ERROR:
        snprintf(out, len, "uncorrectable ECC error: drain the node, check nvidia-smi -q -d ECC,ROW_REMAPPER; the GPU "
                 "needs a reset or replacement");
        return;
    case GPU_COMPAT_MISMATCH:
        snprintf(out, len, "libcuda.so.1 (%s) does not match the kernel module%s%s, or cuda-compat is used on a GPU "
                 "that does not support it: use the libcuda.so.1 of the running driver",
                 lib ? lib : "?", env_of(report, "kernel_module") ? " " : "",
                 env_of(report, "kernel_module") ? env_of(report, "kernel_module") : "");
        return;
    case GPU_TIMEOUT:
        snprintf(out, len, "the CUDA probe did not finish in time: the driver or a GPU may be hung; look for Xid "
                 "errors in dmesg and nvidia-smi on the host, and drain the node");
        return;
    case GPU_KERNEL_FAULT:
        snprintf(out, len, "a smoke kernel faulted on the GPU: look for Xid errors in dmesg, drain the node and run "
                 "DCGM diagnostics (dcgmi diag -r 3)");
        return;
    case GPU_REQUIREMENT_NOT_MET:
        snprintf(out, len, "schedule the step on a node with the GPUs it asks for, or lower the requirement "
                 "(the manifest's gpu block, or --min-* options)");
        return;
    case GPU_BELOW_THRESHOLD:
        snprintf(out, len, "check the PCIe link (nvidia-smi -q -d PCIE: generation and width), the CPU and NUMA node "
                 "the test ran on, and other work on the GPU");
        return;
    case GPU_WRONG_RESULT:
        snprintf(out, len, "the GPU computed or stored a wrong value: drain the node and run DCGM diagnostics "
                 "(dcgmi diag -r 3); the GPU may be faulty");
        return;
    case GPU_CUDA_NOT_BUILT:
        snprintf(out, len, "this stepop was built without CUDA (make CUDA=0, or no toolkit at CUDA_HOME): use a "
                 "build made with the CUDA toolkit");
        return;
    case GPU_UNKNOWN:
    default:
        snprintf(out, len, "unexpected CUDA failure: see the message, dmesg for Xid errors and nvidia-smi on the host");
        return;
    }
}
