/* `stepop gpu check|smoke`: one verdict on a node's GPUs, as a short table or one JSON object. */
#include "gpu_backend.h"

#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/exitcodes.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/units.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: stepop gpu check [--json] [--min-devices N] [--min-cc X.Y] [--min-memory SIZE] [--timeout DUR]\n"
    "       stepop gpu smoke [--json] [--level 1|2|3] [--seconds N] [--memory-share F]\n"
    "                        [--min-h2d-gbps X] [--min-d2h-gbps X] [--min-dtod-gbps X]\n"
    "                        [--min-devices N] [--min-cc X.Y] [--min-memory SIZE] [--timeout DUR]\n"
    "\n"
    "check   driver, runtime and every device (name, UUID, compute capability, memory, context time)\n"
    "smoke   level 1: vectorAdd on every device against a CPU reference; level 2 (default): + pinned\n"
    "        host<->device and on-device copy bandwidth, memory pattern test over --memory-share of free\n"
    "        memory (default 0.8); level 3: + a --seconds (default 30) compute stress on all devices\n"
    "        at once, checked against the exact answer\n"
    "\n"
    "--min-memory is per device (total memory). CUDA runs in a child process killed after --timeout\n"
    "(check: 30s; smoke: 60s, 5m, or 5m + --seconds by level).\n"
    "Exit codes: 0 ready, 2 usage, 10 no usable GPU or driver, 11 a requirement or threshold not met,\n"
    "12 fault (driver or GPU misbehaved, hang), 13 wrong result. See docs/gpu.md.\n";

enum {
    OPT_JSON = 1,
    OPT_MIN_DEVICES,
    OPT_MIN_CC,
    OPT_MIN_MEMORY,
    OPT_TIMEOUT,
    OPT_LEVEL,
    OPT_SECONDS,
    OPT_MEMORY_SHARE,
    OPT_MIN_H2D,
    OPT_MIN_D2H,
    OPT_MIN_DTOD,
};

static const struct cli_option options[] = {
    { "json", 0, 0, OPT_JSON },
    { "min-devices", 0, 1, OPT_MIN_DEVICES },
    { "min-cc", 0, 1, OPT_MIN_CC },
    { "min-memory", 0, 1, OPT_MIN_MEMORY },
    { "timeout", 0, 1, OPT_TIMEOUT },
    { "level", 0, 1, OPT_LEVEL },
    { "seconds", 0, 1, OPT_SECONDS },
    { "memory-share", 0, 1, OPT_MEMORY_SHARE },
    { "min-h2d-gbps", 0, 1, OPT_MIN_H2D },
    { "min-d2h-gbps", 0, 1, OPT_MIN_D2H },
    { "min-dtod-gbps", 0, 1, OPT_MIN_DTOD },
    { 0 },
};
const struct cli_option *const gpu_cli_options = options;

static int parse_double(const char *opt, const char *value, double min, double max, double *out, struct err *e)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v) || v < min || v > max)
        return err_set(e, ERR_USAGE, "--%s: expected a number from %g to %g, got \"%s\"", opt, min, max, value);
    *out = v;
    return 0;
}

struct args {
    int json, smoke, seen_smoke_only, seen_seconds, seen_threshold;
    struct gpu_opts o;
};

static int parse_value(struct args *a, int id, const char *v, struct err *e)
{
    long n;
    switch (id) {
    case OPT_JSON:
        a->json = 1;
        return 0;
    case OPT_MIN_DEVICES:
        if (cli_int("min-devices", v, 1, 1024, &n, e) < 0)
            return -1;
        a->o.req.min_devices = (int)n;
        return 0;
    case OPT_MIN_CC:
        if (gpu_parse_cc(v, &a->o.req.min_cc_major, &a->o.req.min_cc_minor) < 0)
            return err_set(e, ERR_USAGE, "--min-cc: expected a compute capability like 8.0, got \"%s\"", v);
        return 0;
    case OPT_MIN_MEMORY:
        if (units_parse_size(v, &a->o.req.min_memory, e) < 0)
            return err_prefix(e, "--min-memory: ");
        return 0;
    case OPT_TIMEOUT:
        if (units_parse_duration(v, &a->o.timeout_ms, e) < 0)
            return err_prefix(e, "--timeout: ");
        if (a->o.timeout_ms <= 0)
            return err_set(e, ERR_USAGE, "--timeout: must be more than 0");
        return 0;
    }
    a->seen_smoke_only = id;
    switch (id) {
    case OPT_LEVEL:
        if (cli_int("level", v, 1, 3, &n, e) < 0)
            return -1;
        a->o.smoke.level = (int)n;
        return 0;
    case OPT_SECONDS:
        a->seen_seconds = 1;
        if (cli_int("seconds", v, 1, 7 * 86400, &n, e) < 0)
            return -1;
        a->o.smoke.seconds = (int)n;
        return 0;
    case OPT_MEMORY_SHARE:
        return parse_double("memory-share", v, 0.01, 0.95, &a->o.smoke.memory_share, e);
    case OPT_MIN_H2D:
        a->seen_threshold = 1;
        return parse_double("min-h2d-gbps", v, 0, 1e6, &a->o.thresholds.min_h2d_gbps, e);
    case OPT_MIN_D2H:
        a->seen_threshold = 1;
        return parse_double("min-d2h-gbps", v, 0, 1e6, &a->o.thresholds.min_d2h_gbps, e);
    default:
        a->seen_threshold = 1;
        return parse_double("min-dtod-gbps", v, 0, 1e6, &a->o.thresholds.min_dtod_gbps, e);
    }
}

/* Returns 0, 1 for --help, or -1 with e set. */
static int parse(int argc, char **argv, struct args *a, struct err *e)
{
    memset(a, 0, sizeof *a);
    if (argc < 2)
        return err_set(e, ERR_USAGE, "gpu: missing subcommand (check or smoke; see 'stepop gpu --help')");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return 1;
    if (strcmp(argv[1], "smoke") == 0)
        a->smoke = 1;
    else if (strcmp(argv[1], "check") != 0)
        return err_set(e, ERR_USAGE, "gpu: unknown subcommand \"%s\" (check or smoke)", argv[1]);
    a->o.smoke.level = a->smoke ? 2 : 0;
    a->o.smoke.seconds = 30;
    a->o.smoke.memory_share = 0.8;
    struct cli c;
    cli_init(&c, a->smoke ? "gpu smoke" : "gpu check", options, argc - 2, argv + 2);
    const char *v;
    int id, rc = 0;
    while ((id = cli_next(&c, &v, e)) != 0) {
        if (id == CLI_HELP) {
            rc = 1;
            break;
        }
        if (id < 0 || parse_value(a, id, v, e) < 0) {
            rc = -1;
            break;
        }
        if (a->seen_smoke_only && !a->smoke) {
            const char *name = "?";
            for (const struct cli_option *op = options; op->name; op++)
                if (op->id == a->seen_smoke_only)
                    name = op->name;
            rc = err_set(e, ERR_USAGE, "gpu check: option --%s belongs to gpu smoke", name);
            break;
        }
    }
    if (rc == 0 && (c.pos_count || c.rest_count))
        rc = err_set(e, ERR_USAGE, "%s: takes no arguments (\"%s\")", c.command,
                     c.pos_count ? c.pos[0] : c.rest[0]);
    cli_free(&c);
    if (rc != 0)
        return rc;
    if (a->seen_seconds && a->o.smoke.level < 3)
        return err_set(e, ERR_USAGE, "gpu smoke: --seconds applies to --level 3");
    if (a->seen_threshold && a->o.smoke.level < 2)
        return err_set(e, ERR_USAGE, "gpu smoke: bandwidth thresholds need --level 2 or 3");
    if (a->smoke && !a->o.timeout_ms) {
        static const int64_t by_level[] = { 0, 60000, 300000, 300000 };
        a->o.timeout_ms = by_level[a->o.smoke.level] + (a->o.smoke.level == 3 ? a->o.smoke.seconds * 1000LL : 0);
    }
    return 0;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *str_or(const cJSON *o, const char *key, const char *fallback)
{
    const char *s = json_str(o, key);
    return s ? s : fallback;
}

static void print_devices(const cJSON *report)
{
    const cJSON *devices = cJSON_GetObjectItemCaseSensitive(report, "devices");
    if (!cJSON_GetArraySize(devices))
        return;
    printf("%-2s %-28s %-40s %-4s %-10s %-10s %4s  %-16s %-3s %-17s %s\n", "#", "name", "uuid", "cc", "memory",
           "free", "SMs", "pci bus id", "ecc", "compute mode", "context");
    const cJSON *d;
    cJSON_ArrayForEach(d, devices) {
        char total[32] = "-", free_b[32] = "-", ctx[32] = "-";
        if (num(d, "memory_total") >= 0)
            units_format_size((int64_t)num(d, "memory_total"), total, sizeof total);
        if (num(d, "memory_free") >= 0)
            units_format_size((int64_t)num(d, "memory_free"), free_b, sizeof free_b);
        if (num(d, "context_ms") >= 0)
            snprintf(ctx, sizeof ctx, "%.0f ms", num(d, "context_ms"));
        const cJSON *ecc = cJSON_GetObjectItemCaseSensitive(d, "ecc_enabled");
        printf("%-2d %-28.28s %-40s %-4s %-10s %-10s %4.0f  %-16s %-3s %-17s %s\n", (int)num(d, "index"),
               str_or(d, "name", "?"), str_or(d, "uuid", "-"), str_or(d, "compute_capability", "-"), total, free_b,
               num(d, "multiprocessors") < 0 ? 0 : num(d, "multiprocessors"), str_or(d, "pci_bus_id", "-"),
               cJSON_IsTrue(ecc) ? "on" : cJSON_IsFalse(ecc) ? "off" : "-", str_or(d, "compute_mode", "-"), ctx);
        if (json_str(d, "error"))
            printf("   error: %s\n", json_str(d, "error"));
    }
}

static void print_smoke(const cJSON *report)
{
    const cJSON *d;
    int header = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(report, "devices")) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "smoke");
        if (!s)
            continue;
        if (!header++)
            printf("\n%-2s %-12s %9s %9s %10s  %-28s %s\n", "#", "vectorAdd", "h2d GB/s", "d2h GB/s", "dtod GB/s",
                   "memory test", "stress");
        const cJSON *va = cJSON_GetObjectItemCaseSensitive(s, "vector_add");
        const cJSON *bw = cJSON_GetObjectItemCaseSensitive(s, "bandwidth");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(s, "memory_test");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "stress");
        char h2d[16] = "-", d2h[16] = "-", dtod[16] = "-", mem[64] = "-", stress[64] = "-";
        if (bw) {
            snprintf(h2d, sizeof h2d, "%.1f", num(cJSON_GetObjectItemCaseSensitive(bw, "h2d"), "median_gbps"));
            snprintf(d2h, sizeof d2h, "%.1f", num(cJSON_GetObjectItemCaseSensitive(bw, "d2h"), "median_gbps"));
            snprintf(dtod, sizeof dtod, "%.1f", num(cJSON_GetObjectItemCaseSensitive(bw, "dtod"), "median_gbps"));
        }
        if (mt) {
            char size[32];
            units_format_size((int64_t)num(mt, "bytes"), size, sizeof size);
            snprintf(mem, sizeof mem, "%s, %.0f errors", size, num(mt, "errors"));
        }
        if (st)
            snprintf(stress, sizeof stress, "%.0f s, %.0f Gupdates/s, %.0f wrong", num(st, "seconds"),
                     num(st, "gupdates_per_s"), num(st, "mismatches"));
        printf("%-2d %-12s %9s %9s %10s  %-28s %s\n", (int)num(d, "index"),
               !va ? "-" : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(va, "ok")) ? "ok" : "WRONG", h2d, d2h, dtod,
               mem, stress);
    }
}

static void print_human(const cJSON *report, int smoke)
{
    const char *lib = json_str(report, "driver_library");
    printf("CUDA driver %s, runtime %s (backend %s%s%s)\n", str_or(report, "driver_version", "none"),
           str_or(report, "runtime_version", "none"), str_or(report, "backend", "?"), lib ? ", " : "", lib ? lib : "");
    print_devices(report);
    if (smoke)
        print_smoke(report);
    char took[32];
    units_format_duration((int64_t)num(report, "elapsed_ms"), took, sizeof took);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(report, "ok"))) {
        printf("ready: %s (%s)\n", str_or(report, "message", ""), took);
        return;
    }
    fflush(stdout);
    log_error("gpu %s: %s: %s (%s)", smoke ? "smoke" : "check", str_or(report, "classification", "unknown"),
              str_or(report, "message", ""), took);
    log_error("hint: %s", str_or(report, "hint", ""));
}

int cmd_gpu(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], GPU_CHILD_COMMAND) == 0)
        return gpu_child_main(argc - 1, argv + 1);
    struct args a;
    struct err e = { 0 };
    int rc = parse(argc, argv, &a, &e);
    if (rc == 1) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (rc < 0) {
        log_error("%s", e.msg);
        return EXIT_USAGE;
    }
    cJSON *report = gpu_run(&a.o);
    if (a.json) {
        char *s = json_print(report, 1);
        printf("%s\n", s);
        cJSON_free(s);
    } else {
        print_human(report, a.smoke);
    }
    int code = gpu_class_exit_code(gpu_report_class(report));
    cJSON_Delete(report);
    return code;
}
