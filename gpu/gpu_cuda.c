/* The CUDA backend: device probe and smoke tests on the CUDA runtime (cudart_static, which finds
 * the driver's libcuda.so.1 at run time). It runs only in the child stepop that gpu.c starts. */
#include "gpu_backend.h"
#include "gpu_kernels.h"

#include "../runtime/jsonutil.h"
#include "../runtime/util.h"

#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VECTOR_ELEMENTS (1u << 24)
#define BANDWIDTH_BYTES ((size_t)256 << 20)
#define BANDWIDTH_REPEATS 9
#define MEMTEST_MIN_BYTES ((size_t)64 << 20)
#define MEMTEST_ALIGN ((size_t)2 << 20)
#define STRESS_LAUNCH_MS 100.0
#define STRESS_THREADS_PER_BLOCK 256u

struct run {
    cJSON *result;
    int driver_version;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum gpu_class classify(cudaError_t err, int driver_version)
{
    switch (err) {
    case cudaErrorInsufficientDriver:
        /* The runtime reports both "no libcuda.so.1 at all" and "too old" this way; the driver
         * version (0 when none could be loaded) tells them apart. */
        return driver_version == 0 ? GPU_NO_DRIVER : GPU_DRIVER_TOO_OLD;
    case cudaErrorCallRequiresNewerDriver:
        return GPU_DRIVER_TOO_OLD;
    case cudaErrorStubLibrary:
        return GPU_STUB_LIBRARY;
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice:
        return GPU_NO_DEVICE;
    case cudaErrorInitializationError:
    case cudaErrorNotPermitted:
    case cudaErrorMpsConnectionFailed:
    case cudaErrorMpsRpcFailure:
    case cudaErrorMpsServerNotReady:
        return GPU_INIT_FAILED;
    case cudaErrorSystemNotReady:
        return GPU_FABRIC_MANAGER;
    case cudaErrorDevicesUnavailable:
    case cudaErrorMpsMaxClientsReached:
    case cudaErrorMpsMaxConnectionsReached:
        return GPU_BUSY_OR_PROHIBITED;
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
        return GPU_ECC_ERROR;
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorInvalidPtx:
    case cudaErrorInvalidKernelImage:
        return GPU_COMPAT_MISMATCH;
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
        return GPU_KERNEL_FAULT;
    default:
        return GPU_UNKNOWN;
    }
}

/* Records a failed CUDA call against the result (and device entry d, when given); returns -1. */
static int cuda_fail(struct run *run, cJSON *d, int dev, cudaError_t err, const char *what)
{
    enum gpu_class c = classify(err, run->driver_version);
    char where[32] = "";
    if (dev >= 0)
        snprintf(where, sizeof where, "device %d: ", dev);
    if (c == GPU_NO_DRIVER) {
        gpu_result_fail(run->result, c, cudaGetErrorName(err),
                        "no NVIDIA driver: libcuda.so.1 could not be loaded (%s: %s, driver version 0)", what,
                        cudaGetErrorName(err));
    } else if (c == GPU_DRIVER_TOO_OLD) {
        char drv[16] = "?", rt[16] = "?";
        gpu_format_version(run->driver_version, drv, sizeof drv);
        gpu_format_version(CUDART_VERSION, rt, sizeof rt);
        gpu_result_fail(run->result, c, cudaGetErrorName(err),
                        "the driver supports CUDA %s, older than this runtime's CUDA %s (%s: %s)", drv, rt, what,
                        cudaGetErrorName(err));
    } else {
        gpu_result_fail(run->result, c, cudaGetErrorName(err), "%s%s: %s (%s)", where, what, cudaGetErrorString(err),
                        cudaGetErrorName(err));
    }
    if (d && !json_str(d, "error")) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "error");
        char *text = xasprintf("%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
        cJSON_AddStringToObject(d, "error", text);
        free(text);
    }
    cudaGetLastError(); /* clears a non-sticky error so later calls report their own */
    return -1;
}

/* Calls that fail record themselves: `if (ck(run, d, dev, call, "what") < 0) goto out;` */
static int ck(struct run *run, cJSON *d, int dev, cudaError_t err, const char *what)
{
    return err == cudaSuccess ? 0 : cuda_fail(run, d, dev, err, what);
}

/* Which libcuda.so.1 the runtime loaded, to name a stub or a mismatched library in the hint. The
 * runtime unloads one it rejected, so ask the loader again: this process is thrown away anyway. */
static void add_driver_library(cJSON *r)
{
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    struct link_map *lm = NULL;
    if (h && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && lm->l_name[0]) {
        char *real = realpath(lm->l_name, NULL);
        cJSON_AddStringToObject(r, "driver_library", real ? real : lm->l_name);
        free(real);
    } else {
        cJSON_AddNullToObject(r, "driver_library");
    }
    if (h)
        dlclose(h);
}

/* A MIG compute instance reports its own UUID through the current cuDeviceGetUuid while the
 * pre-11.4 entry point still gives the parent GPU's; recent drivers also name it "... MIG 1g.10gb". */
static int is_mig(int dev, const struct cudaDeviceProp *p)
{
    if (strstr(p->name, " MIG "))
        return 1;
    void *get_fn = NULL, *uuid_fn = NULL;
    enum cudaDriverEntryPointQueryResult st1 = cudaDriverEntryPointSymbolNotFound, st2 = st1;
    if (cudaGetDriverEntryPointByVersion("cuDeviceGet", &get_fn, 2000, cudaEnableDefault, &st1) != cudaSuccess ||
        cudaGetDriverEntryPointByVersion("cuDeviceGetUuid", &uuid_fn, 9020, cudaEnableDefault, &st2) != cudaSuccess ||
        st1 != cudaDriverEntryPointSuccess || st2 != cudaDriverEntryPointSuccess || !get_fn || !uuid_fn) {
        cudaGetLastError();
        return 0;
    }
    PFN_cuDeviceGet_v2000 get = (PFN_cuDeviceGet_v2000)get_fn;
    PFN_cuDeviceGetUuid_v9020 uuid_v1 = (PFN_cuDeviceGetUuid_v9020)uuid_fn;
    CUdevice cu;
    CUuuid u;
    if (get(&cu, dev) != CUDA_SUCCESS || uuid_v1(&u, cu) != CUDA_SUCCESS)
        return 0;
    return memcmp(u.bytes, p->uuid.bytes, sizeof u.bytes) != 0;
}

static const char *compute_mode_name(int mode)
{
    switch (mode) {
    case cudaComputeModeDefault: return "default";
    case cudaComputeModeExclusive: return "exclusive_thread";
    case cudaComputeModeProhibited: return "prohibited";
    case cudaComputeModeExclusiveProcess: return "exclusive_process";
    default: return "unknown";
    }
}

/* Properties, then the primary context (timed), then free memory. */
static int probe_device(struct run *run, cJSON *d, int dev)
{
    struct cudaDeviceProp p;
    cJSON_AddNumberToObject(d, "index", dev);
    if (ck(run, d, dev, cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties") < 0)
        return -1;
    char uuid[41], cc[16], pci[32];
    gpu_format_uuid((const unsigned char *)p.uuid.bytes, is_mig(dev, &p), uuid);
    snprintf(cc, sizeof cc, "%d.%d", p.major, p.minor);
    /* nvidia-smi's pci.bus_id form: 8-digit domain, upper-case hex */
    snprintf(pci, sizeof pci, "%08X:%02X:%02X.0", (unsigned)p.pciDomainID, (unsigned)p.pciBusID,
             (unsigned)p.pciDeviceID);
    int mode = -1;
    /* CUDA 13 dropped computeMode from cudaDeviceProp; the attribute remains. */
    if (cudaDeviceGetAttribute(&mode, cudaDevAttrComputeMode, dev) != cudaSuccess)
        cudaGetLastError();
    cJSON_AddStringToObject(d, "name", p.name);
    cJSON_AddStringToObject(d, "uuid", uuid);
    cJSON_AddBoolToObject(d, "mig", uuid[0] == 'M');
    cJSON_AddStringToObject(d, "compute_capability", cc);
    cJSON_AddNumberToObject(d, "memory_total", (double)p.totalGlobalMem);
    cJSON_AddNumberToObject(d, "multiprocessors", p.multiProcessorCount);
    cJSON_AddStringToObject(d, "pci_bus_id", pci);
    cJSON_AddBoolToObject(d, "ecc_enabled", p.ECCEnabled != 0);
    cJSON_AddStringToObject(d, "compute_mode", compute_mode_name(mode));

    double t0 = now_ms();
    cudaError_t err = cudaSetDevice(dev);
    if (err == cudaSuccess)
        err = cudaFree(NULL); /* makes sure the primary context exists */
    cJSON_AddNumberToObject(d, "context_ms", now_ms() - t0);
    if (ck(run, d, dev, err, "creating a context") < 0)
        return -1;
    size_t free_b = 0, total_b = 0;
    if (ck(run, d, dev, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo") < 0)
        return -1;
    cJSON_AddNumberToObject(d, "memory_free", (double)free_b);
    cJSON_AddNullToObject(d, "error");
    return 0;
}

/* Versions, device count and every device; the result holds a classification when anything failed. */
static cJSON *probe_all(struct run *run, int *count)
{
    char v[16];
    run->result = cJSON_CreateObject();
    run->driver_version = 0;
    *count = 0;
    int rt = 0;
    if (cudaDriverGetVersion(&run->driver_version) != cudaSuccess)
        run->driver_version = 0;
    if (cudaRuntimeGetVersion(&rt) != cudaSuccess)
        rt = 0;
    json_add_str(run->result, "driver_version", gpu_format_version(run->driver_version, v, sizeof v));
    json_add_str(run->result, "runtime_version", gpu_format_version(rt, v, sizeof v));
    cJSON *devices = cJSON_AddArrayToObject(run->result, "devices");
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    add_driver_library(run->result);
    if (err != cudaSuccess) {
        cuda_fail(run, NULL, -1, err, "cudaGetDeviceCount");
        return run->result;
    }
    if (n <= 0) {
        gpu_result_fail(run->result, GPU_NO_DEVICE, NULL, "the driver reports no CUDA device");
        return run->result;
    }
    for (int i = 0; i < n; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToArray(devices, d);
        probe_device(run, d, i);
    }
    *count = n;
    return run->result;
}

static cJSON *cuda_probe(void)
{
    struct run run;
    int n;
    return probe_all(&run, &n);
}

static double elapsed(cudaEvent_t a, cudaEvent_t b)
{
    float ms = 0;
    if (cudaEventElapsedTime(&ms, a, b) != cudaSuccess)
        cudaGetLastError();
    return ms > 0 ? ms : 1e-3;
}

static int smoke_vector_add(struct run *run, cJSON *d, cJSON *s, int dev)
{
    const size_t n = VECTOR_ELEMENTS, bytes = n * sizeof(float);
    float *a = xmalloc(bytes), *b = xmalloc(bytes), *c = xmalloc(bytes);
    void *da = NULL, *db = NULL, *dc = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    int rc = -1;
    /* Values exact in float; each sum is one correctly rounded IEEE addition on either side. */
    for (size_t i = 0; i < n; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(n - i) * 0.25f;
    }
    if (ck(run, d, dev, cudaMalloc(&da, bytes), "cudaMalloc") < 0 ||
        ck(run, d, dev, cudaMalloc(&db, bytes), "cudaMalloc") < 0 ||
        ck(run, d, dev, cudaMalloc(&dc, bytes), "cudaMalloc") < 0 ||
        ck(run, d, dev, cudaMemcpy(da, a, bytes, cudaMemcpyHostToDevice), "cudaMemcpy") < 0 ||
        ck(run, d, dev, cudaMemcpy(db, b, bytes, cudaMemcpyHostToDevice), "cudaMemcpy") < 0 ||
        ck(run, d, dev, cudaMemset(dc, 0xff, bytes), "cudaMemset") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e0), "cudaEventCreate") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e1), "cudaEventCreate") < 0 ||
        ck(run, d, dev, cudaEventRecord(e0, NULL), "cudaEventRecord") < 0 ||
        ck(run, d, dev, gpu_kernel_vector_add(da, db, dc, n, NULL), "launching vectorAdd") < 0 ||
        ck(run, d, dev, cudaEventRecord(e1, NULL), "cudaEventRecord") < 0 ||
        ck(run, d, dev, cudaEventSynchronize(e1), "running vectorAdd") < 0 ||
        ck(run, d, dev, cudaMemcpy(c, dc, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy") < 0)
        goto out;
    size_t wrong = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        float want = a[i] + b[i];
        if (memcmp(&want, &c[i], sizeof want) != 0 && !wrong++)
            first = i;
    }
    cJSON *va = cJSON_AddObjectToObject(s, "vector_add");
    cJSON_AddBoolToObject(va, "ok", wrong == 0);
    cJSON_AddNumberToObject(va, "elements", (double)n);
    cJSON_AddNumberToObject(va, "mismatches", (double)wrong);
    cJSON_AddNumberToObject(va, "kernel_ms", elapsed(e0, e1));
    if (wrong) {
        gpu_result_fail(run->result, GPU_WRONG_RESULT, NULL,
                        "device %d: vectorAdd: %zu of %zu sums wrong (first at %zu: got %.9g, want %.9g)", dev,
                        wrong, n, first, (double)c[first], (double)(a[first] + b[first]));
        goto out;
    }
    rc = 0;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    free(a);
    free(b);
    free(c);
    return rc;
}

/* Pinned host<->device and on-device copies, each the median of BANDWIDTH_REPEATS timed copies
 * of BANDWIDTH_BYTES (GB/s = 1e9 bytes copied per second, as nvbandwidth counts them). */
static int smoke_bandwidth(struct run *run, cJSON *d, cJSON *s, int dev)
{
    void *host = NULL, *d1 = NULL, *d2 = NULL;
    cudaStream_t st = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    int rc = -1;
    if (ck(run, d, dev, cudaMallocHost(&host, BANDWIDTH_BYTES), "cudaMallocHost") < 0 ||
        ck(run, d, dev, cudaMalloc(&d1, BANDWIDTH_BYTES), "cudaMalloc") < 0 ||
        ck(run, d, dev, cudaMalloc(&d2, BANDWIDTH_BYTES), "cudaMalloc") < 0 ||
        ck(run, d, dev, cudaMemset(d1, 0x5a, BANDWIDTH_BYTES), "cudaMemset") < 0 ||
        ck(run, d, dev, cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e0), "cudaEventCreate") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e1), "cudaEventCreate") < 0)
        goto out;
    memset(host, 0xa5, BANDWIDTH_BYTES);
    const struct {
        const char *key;
        void *dst;
        const void *src;
        enum cudaMemcpyKind kind;
    } dirs[] = {
        { "h2d", d1, host, cudaMemcpyHostToDevice },
        { "d2h", host, d1, cudaMemcpyDeviceToHost },
        { "dtod", d2, d1, cudaMemcpyDeviceToDevice },
    };
    cJSON *bw = cJSON_AddObjectToObject(s, "bandwidth");
    cJSON_AddNumberToObject(bw, "buffer_bytes", (double)BANDWIDTH_BYTES);
    cJSON_AddNumberToObject(bw, "repeats", BANDWIDTH_REPEATS);
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        double g[BANDWIDTH_REPEATS], lo = 0, hi = 0;
        /* one untimed copy first: the first touch of a mapping costs extra */
        if (ck(run, d, dev, cudaMemcpyAsync(dirs[k].dst, dirs[k].src, BANDWIDTH_BYTES, dirs[k].kind, st),
               "cudaMemcpyAsync") < 0 ||
            ck(run, d, dev, cudaStreamSynchronize(st), "copying") < 0)
            goto out;
        for (int r = 0; r < BANDWIDTH_REPEATS; r++) {
            if (ck(run, d, dev, cudaEventRecord(e0, st), "cudaEventRecord") < 0 ||
                ck(run, d, dev, cudaMemcpyAsync(dirs[k].dst, dirs[k].src, BANDWIDTH_BYTES, dirs[k].kind, st),
                   "cudaMemcpyAsync") < 0 ||
                ck(run, d, dev, cudaEventRecord(e1, st), "cudaEventRecord") < 0 ||
                ck(run, d, dev, cudaEventSynchronize(e1), "copying") < 0)
                goto out;
            g[r] = (double)BANDWIDTH_BYTES / (elapsed(e0, e1) / 1e3) / 1e9;
            lo = r == 0 || g[r] < lo ? g[r] : lo;
            hi = r == 0 || g[r] > hi ? g[r] : hi;
        }
        cJSON *o = cJSON_AddObjectToObject(bw, dirs[k].key);
        cJSON_AddNumberToObject(o, "median_gbps", gpu_median(g, BANDWIDTH_REPEATS));
        cJSON_AddNumberToObject(o, "min_gbps", lo);
        cJSON_AddNumberToObject(o, "max_gbps", hi);
    }
    rc = 0;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    if (st)
        cudaStreamDestroy(st);
    cudaFree(d1);
    cudaFree(d2);
    if (host)
        cudaFreeHost(host);
    return rc;
}

static const struct {
    const char *name;
    uint64_t pattern;
    int by_address;
} patterns[] = {
    { "0x00", 0, 0 },
    { "0xFF", ~(uint64_t)0, 0 },
    { "0xAA", 0xAAAAAAAAAAAAAAAAull, 0 },
    { "0x55", 0x5555555555555555ull, 0 },
    { "address", 0, 1 },
};

/* The largest block, up to share of free memory, that can be had (free memory moves while
 * other processes work, so ask again smaller). */
static int memtest_alloc(struct run *run, cJSON *d, int dev, double share, void **p, size_t *bytes)
{
    size_t free_b = 0, total_b = 0;
    if (ck(run, d, dev, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo") < 0)
        return -1;
    size_t want = (size_t)((double)free_b * share) / MEMTEST_ALIGN * MEMTEST_ALIGN;
    while (want >= MEMTEST_MIN_BYTES) {
        cudaError_t err = cudaMalloc(p, want);
        if (err == cudaSuccess) {
            *bytes = want;
            return 0;
        }
        if (err != cudaErrorMemoryAllocation)
            return cuda_fail(run, d, dev, err, "cudaMalloc");
        cudaGetLastError();
        want = want / 10 * 9 / MEMTEST_ALIGN * MEMTEST_ALIGN;
    }
    gpu_result_fail(run->result, GPU_BUSY_OR_PROHIBITED, "cudaErrorMemoryAllocation",
                    "device %d: could not allocate even %zu MiB for the memory test (free: %zu MiB)", dev,
                    MEMTEST_MIN_BYTES >> 20, free_b >> 20);
    return -1;
}

static int smoke_memory(struct run *run, cJSON *d, cJSON *s, int dev, double share)
{
    void *mem = NULL, *counters = NULL;
    size_t bytes = 0;
    cudaEvent_t e0 = NULL, e1 = NULL, e2 = NULL;
    int rc = -1;
    if (memtest_alloc(run, d, dev, share, &mem, &bytes) < 0)
        return -1;
    if (ck(run, d, dev, cudaMalloc(&counters, 2 * sizeof(unsigned long long)), "cudaMalloc") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e0), "cudaEventCreate") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e1), "cudaEventCreate") < 0 ||
        ck(run, d, dev, cudaEventCreate(&e2), "cudaEventCreate") < 0)
        goto out;
    uint64_t *words = mem;
    unsigned long long *cnt = counters;
    size_t n = bytes / sizeof(uint64_t);
    cJSON *mt = cJSON_AddObjectToObject(s, "memory_test");
    cJSON_AddNumberToObject(mt, "bytes", (double)bytes);
    cJSON_AddNumberToObject(mt, "share", share);
    cJSON *list = cJSON_AddArrayToObject(mt, "patterns");
    unsigned long long total_bad = 0;
    char first[256] = "";
    for (size_t k = 0; k < sizeof patterns / sizeof patterns[0]; k++) {
        unsigned long long h[2] = { 0, ~0ull };
        if (ck(run, d, dev, cudaMemcpy(cnt, h, sizeof h, cudaMemcpyHostToDevice), "cudaMemcpy") < 0 ||
            ck(run, d, dev, cudaEventRecord(e0, NULL), "cudaEventRecord") < 0 ||
            ck(run, d, dev, gpu_kernel_fill(words, n, patterns[k].pattern, patterns[k].by_address, NULL),
               "launching the fill kernel") < 0 ||
            ck(run, d, dev, cudaEventRecord(e1, NULL), "cudaEventRecord") < 0 ||
            ck(run, d, dev,
               gpu_kernel_verify(words, n, patterns[k].pattern, patterns[k].by_address, &cnt[0], &cnt[1], NULL),
               "launching the verify kernel") < 0 ||
            ck(run, d, dev, cudaEventRecord(e2, NULL), "cudaEventRecord") < 0 ||
            ck(run, d, dev, cudaEventSynchronize(e2), "running the memory test") < 0 ||
            ck(run, d, dev, cudaMemcpy(h, cnt, sizeof h, cudaMemcpyDeviceToHost), "cudaMemcpy") < 0)
            goto out;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(list, o);
        cJSON_AddStringToObject(o, "pattern", patterns[k].name);
        cJSON_AddNumberToObject(o, "errors", (double)h[0]);
        cJSON_AddNumberToObject(o, "write_gbps", (double)bytes / (elapsed(e0, e1) / 1e3) / 1e9);
        cJSON_AddNumberToObject(o, "verify_gbps", (double)bytes / (elapsed(e1, e2) / 1e3) / 1e9);
        if (h[0] && h[1] < n && !first[0]) {
            uint64_t got = 0, want = patterns[k].by_address ? (uint64_t)(uintptr_t)(words + h[1]) : patterns[k].pattern;
            if (cudaMemcpy(&got, words + h[1], sizeof got, cudaMemcpyDeviceToHost) != cudaSuccess)
                cudaGetLastError();
            snprintf(first, sizeof first, "pattern %s at byte offset %llu: got 0x%016llx, want 0x%016llx",
                     patterns[k].name, h[1] * 8ull, (unsigned long long)got, (unsigned long long)want);
        }
        total_bad += h[0];
    }
    cJSON_AddNumberToObject(mt, "errors", (double)total_bad);
    json_add_str(mt, "first_error", first[0] ? first : NULL);
    if (total_bad) {
        gpu_result_fail(run->result, GPU_WRONG_RESULT, NULL, "device %d: memory test: %llu words wrong (first: %s)",
                        dev, total_bad, first);
        goto out;
    }
    rc = 0;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    if (e2)
        cudaEventDestroy(e2);
    cudaFree(counters);
    cudaFree(mem);
    return rc;
}

struct stress_dev {
    cJSON *d;
    void *state;
    uint32_t *host;
    size_t states;
    unsigned blocks;
    cudaStream_t stream;
    cudaEvent_t e0, e1;
    uint32_t per_launch;
    uint64_t total;
    long launches;
};

static uint32_t stress_seed(size_t k, int dev)
{
    return (uint32_t)k * 2654435761u + (uint32_t)dev;
}

static int stress_launch(struct run *run, struct stress_dev *sd, int dev, uint32_t iterations)
{
    if (ck(run, sd->d, dev, cudaSetDevice(dev), "cudaSetDevice") < 0 ||
        ck(run, sd->d, dev,
           gpu_kernel_stress(sd->state, sd->blocks, STRESS_THREADS_PER_BLOCK, iterations, GPU_LCG_A, GPU_LCG_C,
                             sd->stream),
           "launching the stress kernel") < 0)
        return -1;
    sd->total += iterations;
    sd->launches++;
    return 0;
}

/* Sizes a launch to about STRESS_LAUNCH_MS from a timed short one, twice (the first is mostly
 * launch overhead). */
static int stress_calibrate(struct run *run, struct stress_dev *sd, int dev)
{
    uint32_t iters = 1024;
    for (int round = 0; round < 2; round++) {
        if (ck(run, sd->d, dev, cudaEventRecord(sd->e0, sd->stream), "cudaEventRecord") < 0 ||
            stress_launch(run, sd, dev, iters) < 0 ||
            ck(run, sd->d, dev, cudaEventRecord(sd->e1, sd->stream), "cudaEventRecord") < 0 ||
            ck(run, sd->d, dev, cudaEventSynchronize(sd->e1), "running the stress kernel") < 0)
            return -1;
        double want = (round ? STRESS_LAUNCH_MS : STRESS_LAUNCH_MS / 5) / elapsed(sd->e0, sd->e1) * iters;
        iters = want < 1024 ? 1024 : want > (double)(1u << 28) ? 1u << 28 : (uint32_t)want;
    }
    sd->per_launch = iters;
    return 0;
}

static int stress_setup(struct run *run, struct stress_dev *sd, int dev)
{
    int sms = 1, per_sm = 2048;
    if (ck(run, sd->d, dev, cudaSetDevice(dev), "cudaSetDevice") < 0 ||
        ck(run, sd->d, dev, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
           "cudaDeviceGetAttribute") < 0 ||
        ck(run, sd->d, dev, cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, dev),
           "cudaDeviceGetAttribute") < 0)
        return -1;
    /* enough resident threads to fill every SM */
    int per_sm_blocks = per_sm / (int)STRESS_THREADS_PER_BLOCK;
    sd->blocks = (unsigned)sms * (unsigned)(per_sm_blocks > 0 ? per_sm_blocks : 1);
    sd->states = (size_t)sd->blocks * STRESS_THREADS_PER_BLOCK * GPU_STRESS_CHAINS;
    sd->host = xmalloc(sd->states * sizeof(uint32_t));
    for (size_t k = 0; k < sd->states; k++)
        sd->host[k] = stress_seed(k, dev);
    if (ck(run, sd->d, dev, cudaMalloc(&sd->state, sd->states * sizeof(uint32_t)), "cudaMalloc") < 0 ||
        ck(run, sd->d, dev, cudaMemcpy(sd->state, sd->host, sd->states * sizeof(uint32_t), cudaMemcpyHostToDevice),
           "cudaMemcpy") < 0 ||
        ck(run, sd->d, dev, cudaStreamCreateWithFlags(&sd->stream, cudaStreamNonBlocking), "cudaStreamCreate") < 0 ||
        ck(run, sd->d, dev, cudaEventCreate(&sd->e0), "cudaEventCreate") < 0 ||
        ck(run, sd->d, dev, cudaEventCreate(&sd->e1), "cudaEventCreate") < 0)
        return -1;
    return stress_calibrate(run, sd, dev);
}

static void stress_check(struct run *run, struct stress_dev *sd, int dev, double seconds)
{
    if (ck(run, sd->d, dev, cudaSetDevice(dev), "cudaSetDevice") < 0 ||
        ck(run, sd->d, dev, cudaMemcpy(sd->host, sd->state, sd->states * sizeof(uint32_t), cudaMemcpyDeviceToHost),
           "cudaMemcpy") < 0)
        return;
    uint32_t mul, add;
    gpu_lcg_jump(GPU_LCG_A, GPU_LCG_C, sd->total, &mul, &add);
    size_t wrong = 0, first = 0;
    for (size_t k = 0; k < sd->states; k++)
        if (sd->host[k] != mul * stress_seed(k, dev) + add && !wrong++)
            first = k;
    cJSON *o = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(sd->d, "smoke"), "stress");
    cJSON_AddNumberToObject(o, "seconds", seconds);
    cJSON_AddNumberToObject(o, "launches", (double)sd->launches);
    cJSON_AddNumberToObject(o, "iterations", (double)sd->total);
    cJSON_AddNumberToObject(o, "states", (double)sd->states);
    cJSON_AddNumberToObject(o, "mismatches", (double)wrong);
    cJSON_AddNumberToObject(o, "gupdates_per_s", (double)sd->states * (double)sd->total / seconds / 1e9);
    if (wrong)
        gpu_result_fail(run->result, GPU_WRONG_RESULT, NULL,
                        "device %d: stress: %zu of %zu states wrong after %llu steps (first at %zu: got 0x%08x, want "
                        "0x%08x)",
                        dev, wrong, sd->states, (unsigned long long)sd->total, first, sd->host[first],
                        mul * stress_seed(first, dev) + add);
}

/* Every device at once for `seconds`, in rounds of one ~100 ms launch per device. */
static void smoke_stress(struct run *run, cJSON *devices, int n, int seconds)
{
    struct stress_dev *sd = xcalloc((size_t)n, sizeof *sd);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        sd[i].d = cJSON_GetArrayItem(devices, i);
        ok = stress_setup(run, &sd[i], i) == 0;
    }
    double start = now_ms();
    while (ok && now_ms() - start < seconds * 1e3) {
        for (int i = 0; i < n && ok; i++)
            ok = stress_launch(run, &sd[i], i, sd[i].per_launch) == 0;
        for (int i = 0; i < n && ok; i++)
            ok = ck(run, sd[i].d, i, cudaStreamSynchronize(sd[i].stream), "running the stress kernel") == 0;
    }
    double secs = (now_ms() - start) / 1e3;
    for (int i = 0; i < n && ok; i++)
        stress_check(run, &sd[i], i, secs > 0 ? secs : 1e-3);
    for (int i = 0; i < n; i++) {
        if (sd[i].e0)
            cudaEventDestroy(sd[i].e0);
        if (sd[i].e1)
            cudaEventDestroy(sd[i].e1);
        if (sd[i].stream)
            cudaStreamDestroy(sd[i].stream);
        cudaFree(sd[i].state);
        free(sd[i].host);
    }
    free(sd);
}

static cJSON *cuda_smoke(const struct gpu_smoke_opts *o)
{
    struct run run;
    int n;
    probe_all(&run, &n);
    cJSON *devices = cJSON_GetObjectItemCaseSensitive(run.result, "devices");
    for (int i = 0; i < n && gpu_report_class(run.result) == GPU_READY; i++) {
        cJSON *d = cJSON_GetArrayItem(devices, i);
        cJSON *s = cJSON_AddObjectToObject(d, "smoke");
        if (ck(&run, d, i, cudaSetDevice(i), "cudaSetDevice") < 0 || smoke_vector_add(&run, d, s, i) < 0)
            break;
        if (o->level >= 2 && (smoke_bandwidth(&run, d, s, i) < 0 || smoke_memory(&run, d, s, i, o->memory_share) < 0))
            break;
    }
    if (o->level >= 3 && gpu_report_class(run.result) == GPU_READY)
        smoke_stress(&run, devices, n, o->seconds);
    return run.result;
}

const struct gpu_backend gpu_backend = {
    .name = "cuda",
    .runtime_version = CUDART_VERSION,
    .probe = cuda_probe,
    .smoke = cuda_smoke,
};
