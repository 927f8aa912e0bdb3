/* The pure half of the GPU verdict (classes, formats, requirements, thresholds, hints, the stress
 * kernel's exact answer) and the preflight's contract, whatever this machine has. */
#include "../../gpu/gpu_backend.h"
#include "../../runtime/jsonutil.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static cJSON *device(int index, const char *name, const char *cc, double mem)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "index", index);
    cJSON_AddStringToObject(d, "name", name);
    cJSON_AddStringToObject(d, "compute_capability", cc);
    cJSON_AddNumberToObject(d, "memory_total", mem);
    cJSON_AddNullToObject(d, "error");
    return d;
}

static cJSON *report_with(const char *env_json)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *devs = cJSON_AddArrayToObject(r, "devices");
    cJSON_AddItemToArray(devs, device(0, "NVIDIA A10G", "8.6", 24.0 * (1 << 30)));
    cJSON_AddItemToArray(devs, device(1, "NVIDIA H100 80GB HBM3", "9.0", 80.0 * (1 << 30)));
    cJSON *env = cJSON_Parse(env_json);
    cJSON_AddItemToObject(r, "environment", env ? env : cJSON_CreateObject());
    return r;
}

static void hint_has(enum gpu_class c, const char *env_json, const char *extra_key, const char *extra_value,
                     const char *needle)
{
    cJSON *r = report_with(env_json);
    if (extra_key)
        cJSON_AddStringToObject(r, extra_key, extra_value);
    char hint[1024];
    gpu_hint(c, r, hint, sizeof hint);
    ok(strstr(hint, needle) != NULL, "%s hint with %s mentions \"%s\" (%s)", gpu_class_name(c), env_json, needle, hint);
    cJSON_Delete(r);
}

static void requirements(void)
{
    char msg[512] = "";
    struct gpu_requirements req = { .min_devices = 1 };
    cJSON *r = report_with("{}");
    is_int(gpu_eval_requirements(r, &req, msg, sizeof msg), 0, "one device wanted, two present");
    cJSON *rq = cJSON_GetObjectItem(r, "requirements");
    ok(cJSON_IsTrue(cJSON_GetObjectItem(rq, "ok")) && cJSON_GetObjectItem(rq, "devices_meeting")->valueint == 2,
       "requirements record two devices meeting them");

    req = (struct gpu_requirements){ .min_devices = 1, .min_cc_major = 9, .min_cc_minor = 0 };
    is_int(gpu_eval_requirements(r, &req, msg, sizeof msg), 0, "--min-cc 9.0: the H100 meets it");
    cJSON *a10g = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "devices"), 0);
    ok(cJSON_IsFalse(cJSON_GetObjectItem(a10g, "meets_requirements")), "the A10G is marked as not meeting it");
    req.min_devices = 2;
    is_int(gpu_eval_requirements(r, &req, msg, sizeof msg), -1, "two devices of cc 9.0 wanted");
    ok(strstr(msg, "1 of 2 devices meets") && strstr(msg, "compute capability 8.6, below 9.0"),
       "the message says which device falls short and why: %s", msg);
    is_str(json_str(cJSON_GetObjectItem(r, "requirements"), "min_compute_capability"), "9.0",
           "the requirement is recorded");

    req = (struct gpu_requirements){ .min_devices = 2, .min_memory = 40LL << 30 };
    is_int(gpu_eval_requirements(r, &req, msg, sizeof msg), -1, "40 GiB on two devices");
    ok(strstr(msg, "24.0 GiB of memory, below 40.0 GiB") != NULL, "memory shortfall named: %s", msg);

    cJSON *d1 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "devices"), 1);
    cJSON_ReplaceItemInObject(d1, "error", cJSON_CreateString("creating a context: busy"));
    req = (struct gpu_requirements){ .min_devices = 2 };
    is_int(gpu_eval_requirements(r, &req, msg, sizeof msg), -1, "a device that failed does not count");
    ok(strstr(msg, "device 1 failed: creating a context") != NULL, "and is named: %s", msg);
    cJSON_Delete(r);

    r = cJSON_CreateObject();
    cJSON_AddArrayToObject(r, "devices");
    req = (struct gpu_requirements){ 0 };
    is_int(gpu_eval_requirements(r, &req, msg, sizeof msg), -1, "no devices never meets the (default 1) minimum");
    cJSON_Delete(r);
}

static void thresholds(void)
{
    char msg[512] = "";
    cJSON *r = report_with("{}");
    cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "devices"), 1);
    cJSON *bw = cJSON_AddObjectToObject(cJSON_AddObjectToObject(d, "smoke"), "bandwidth");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(bw, "h2d"), "median_gbps", 25.5);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(bw, "d2h"), "median_gbps", 26.0);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(bw, "dtod"), "median_gbps", 1500);
    struct gpu_thresholds t = { .min_h2d_gbps = 20, .min_dtod_gbps = 1000 };
    is_int(gpu_eval_thresholds(r, &t, msg, sizeof msg), 0, "figures above their thresholds pass");
    ok(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "thresholds"), "min_d2h_gbps")),
       "an unset threshold is null");
    t.min_d2h_gbps = 40;
    is_int(gpu_eval_thresholds(r, &t, msg, sizeof msg), -1, "d2h below 40 GB/s fails");
    ok(strstr(msg, "device 1: d2h bandwidth 26.0 GB/s is below the threshold 40.0 GB/s") != NULL, "%s", msg);
    cJSON_Delete(r);
}

static void hints(void)
{
    hint_has(GPU_NO_DRIVER, "{\"NVIDIA_DRIVER_CAPABILITIES\":\"utility\",\"dev_nodes\":[\"/dev/nvidia0\"]}", NULL, NULL,
             "lacks compute");
    hint_has(GPU_NO_DRIVER, "{\"NVIDIA_DRIVER_CAPABILITIES\":\"all\",\"dev_nodes\":[]}", NULL, NULL,
             "no /dev/nvidia* device nodes");
    hint_has(GPU_NO_DRIVER, "{\"NVIDIA_DRIVER_CAPABILITIES\":\"compute,utility\",\"dev_nodes\":[\"/dev/nvidiactl\"]}",
             NULL, NULL, "not on the loader path");
    hint_has(GPU_NO_DEVICE, "{\"CUDA_VISIBLE_DEVICES\":\"7\",\"dev_nodes\":[\"/dev/nvidia0\"]}", NULL, NULL,
             "CUDA_VISIBLE_DEVICES=7 names a device that does not exist");
    hint_has(GPU_NO_DEVICE, "{\"CUDA_VISIBLE_DEVICES\":\"\"}", NULL, NULL, "hides every device");
    hint_has(GPU_NO_DEVICE, "{\"NVIDIA_VISIBLE_DEVICES\":\"void\"}", NULL, NULL, "gives this container no GPU");
    hint_has(GPU_NO_DEVICE, "{\"dev_nodes\":[\"/dev/nvidiactl\",\"/dev/nvidia-uvm\"]}", NULL, NULL,
             "no /dev/nvidiaN device node");
    hint_has(GPU_NO_DEVICE, "{\"dev_nodes\":[\"/dev/nvidiactl\",\"/dev/nvidia0\"]}", NULL, NULL, "dmesg");
    hint_has(GPU_STUB_LIBRARY, "{}", "driver_library", "/opt/cuda/lib64/stubs/libcuda.so.1",
             "(/opt/cuda/lib64/stubs/libcuda.so.1) is the CUDA toolkit's link-time stub");
    hint_has(GPU_DRIVER_TOO_OLD, "{}", "driver_version", "12.2", "supports CUDA 12.2");
    hint_has(GPU_COMPAT_MISMATCH, "{\"kernel_module\":\"550.54.15\"}", NULL, NULL, "kernel module 550.54.15");
    hint_has(GPU_FABRIC_MANAGER, "{}", NULL, NULL, "nvidia-fabricmanager");
    hint_has(GPU_BUSY_OR_PROHIBITED, "{}", NULL, NULL, "nvidia-smi -c DEFAULT");
    for (int c = 1; c < GPU_CLASS_COUNT; c++) {
        cJSON *r = report_with("{}");
        char hint[1024];
        gpu_hint((enum gpu_class)c, r, hint, sizeof hint);
        ok(strlen(hint) > 20, "%s has a hint", gpu_class_name((enum gpu_class)c));
        cJSON_Delete(r);
    }
}

static void classes(void)
{
    for (int c = 1; c < GPU_CLASS_COUNT; c++)
        is_int(gpu_class_from_name(gpu_class_name((enum gpu_class)c)), c, "class %s round-trips",
               gpu_class_name((enum gpu_class)c));
    ok(gpu_class_name(GPU_READY) == NULL, "ready has no class name");
    is_int(gpu_class_from_name("frobnicated"), GPU_UNKNOWN, "an unknown name is unknown");
    is_int(gpu_class_exit_code(GPU_READY), 0, "ready exits 0");
    is_int(gpu_class_exit_code(GPU_NO_DRIVER), GPU_EXIT_UNAVAILABLE, "no_driver exits 10");
    is_int(gpu_class_exit_code(GPU_STUB_LIBRARY), 10, "stub_library exits 10");
    is_int(gpu_class_exit_code(GPU_REQUIREMENT_NOT_MET), 11, "requirement_not_met exits 11");
    is_int(gpu_class_exit_code(GPU_BELOW_THRESHOLD), 11, "below_threshold exits 11");
    is_int(gpu_class_exit_code(GPU_TIMEOUT), 12, "timeout exits 12");
    is_int(gpu_class_exit_code(GPU_ECC_ERROR), 12, "ecc_error exits 12");
    is_int(gpu_class_exit_code(GPU_WRONG_RESULT), 13, "wrong_result exits 13");

    cJSON *r = cJSON_CreateObject();
    is_int(gpu_report_class(r), GPU_READY, "a report without a classification is ready");
    gpu_result_fail(r, GPU_NO_DEVICE, "cudaErrorNoDevice", "no %s", "device");
    gpu_result_fail(r, GPU_UNKNOWN, NULL, "later");
    is_str(json_str(r, "classification"), "no_device", "the first failure is kept");
    is_str(json_str(r, "message"), "no device", "with its message");
    is_str(json_str(r, "cuda_error"), "cudaErrorNoDevice", "and its CUDA error");
    cJSON_Delete(r);
}

static void formats(void)
{
    const unsigned char b[16] = { 0x4a, 0x8b, 0x01, 0xff, 0x00, 0x10, 0xab, 0xcd,
                                  0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0x9a, 0xbc };
    char uuid[41], v[16];
    gpu_format_uuid(b, 0, uuid);
    is_str(uuid, "GPU-4a8b01ff-0010-abcd-ef01-234567899abc", "GPU UUID as nvidia-smi prints it");
    gpu_format_uuid(b, 1, uuid);
    is_str(uuid, "MIG-4a8b01ff-0010-abcd-ef01-234567899abc", "MIG UUID");
    is_str(gpu_format_version(12040, v, sizeof v), "12.4", "driver version 12040 is 12.4");
    is_str(gpu_format_version(13000, v, sizeof v), "13.0", "13000 is 13.0");
    ok(gpu_format_version(0, v, sizeof v) == NULL, "0 is no driver");
    int ma = 0, mi = 0;
    ok(gpu_parse_cc("8.6", &ma, &mi) == 0 && ma == 8 && mi == 6, "cc 8.6");
    ok(gpu_parse_cc("12.0", &ma, &mi) == 0 && ma == 12 && mi == 0, "cc 12.0");
    const char *bad[] = { "", "8", "8.", ".6", "8.66", "x.y", "123.0", "0.5", "8.6 ", NULL };
    for (int i = 0; bad[i]; i++)
        ok(gpu_parse_cc(bad[i], &ma, &mi) < 0, "cc \"%s\" refused", bad[i]);
}

static void lcg(void)
{
    const uint64_t ns[] = { 0, 1, 2, 3, 7, 1000, 65537, 1000003 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        uint32_t x = 12345, seed = 12345, mul, add;
        for (uint64_t k = 0; k < ns[i]; k++)
            x = GPU_LCG_A * x + GPU_LCG_C;
        gpu_lcg_jump(GPU_LCG_A, GPU_LCG_C, ns[i], &mul, &add);
        ok(mul * seed + add == x, "the jump over %llu steps matches stepping", (unsigned long long)ns[i]);
    }
    /* 2^32 steps of a full-period LCG come back to the start */
    uint32_t mul, add;
    gpu_lcg_jump(GPU_LCG_A, GPU_LCG_C, 1ULL << 32, &mul, &add);
    ok(mul == 1 && add == 0, "2^32 steps are the identity (full period)");
    double v[] = { 5, 1, 4, 2, 3 };
    ok(gpu_median(v, 5) == 3, "median of 5");
    double w[] = { 4, 1, 3, 2 };
    ok(gpu_median(w, 4) == 2.5, "median of 4");
}

static void preflight(void)
{
    struct gpu_requirements req = { .min_devices = 1, .timeout_ms = 20000 };
    cJSON *summary = NULL;
    char cls[64] = "x";
    struct err e = { 0 };
    int rc = gpu_preflight(&req, &summary, cls, sizeof cls, &e);
    ok(summary && cJSON_GetObjectItem(summary, "devices") && cJSON_GetObjectItem(summary, "driver_version") &&
           cJSON_GetObjectItem(summary, "runtime_version"),
       "the preflight always gives a summary with devices and versions");
    if (rc == 0) {
        is_str(cls, "", "ready: no classification");
    } else {
        ok(cls[0] && gpu_class_from_name(cls) != GPU_UNKNOWN, "not ready here: classification %s", cls);
        ok(strstr(e.msg, "hint: ") != NULL, "the message carries the hint: %s", e.msg);
        ok(e.transient, "a GPU failure may pass on another node");
    }
    cJSON_Delete(summary);
}

int main(int argc, char **argv)
{
    /* gpu_run re-executes this program as its child. */
    if (argc > 2 && strcmp(argv[1], "gpu") == 0 && strcmp(argv[2], GPU_CHILD_COMMAND) == 0)
        return gpu_child_main(argc - 2, argv + 2);
    classes();
    formats();
    lcg();
    requirements();
    thresholds();
    hints();
    preflight();
    return tap_done();
}
