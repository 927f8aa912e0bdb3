/* Running a backend hang-proof in a re-executed stepop, assembling the report, and the
 * entrypoint's preflight. */
#include "gpu_backend.h"

#include "../runtime/exitcodes.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define GPU_DEFAULT_TIMEOUT_MS 30000
/* How long a killed child may take to go away before we stop waiting: one stuck in the driver
 * (uninterruptible sleep) never does, and must not hang us either. */
#define GPU_REAP_WAIT_MS 2000

const char *gpu_backend_name(void)
{
    return gpu_backend.name;
}

const char *gpu_runtime_compiled(void)
{
    static char v[16];
    return gpu_format_version(gpu_backend.runtime_version, v, sizeof v) ? v : "none";
}

static void reap(pid_t pid, int64_t wait_ms, int *status)
{
    int64_t deadline = time_mono_ms() + wait_ms;
    *status = -1;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        /* ECHILD: a reaper elsewhere in the process (PID 1 duties) collected it first. */
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        if (time_mono_ms() >= deadline) {
            log_warn("gpu: probe process %d did not exit; leaving it behind", (int)pid);
            return;
        }
        time_sleep_ms(10, NULL);
    }
}

static cJSON *failed_result(enum gpu_class c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cJSON *failed_result(enum gpu_class c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddArrayToObject(r, "devices");
    gpu_result_fail(r, c, NULL, "%s", msg);
    return r;
}

/* The re-executed stepop: `stepop gpu __child PARENT LEVEL SECONDS SHARE` (argv from spawn_child)
 * runs the backend, writes its JSON to GPU_CHILD_FD and leaves with _exit, so neither CUDA's
 * teardown nor atexit handlers run here. */
int gpu_child_main(int argc, char **argv)
{
    struct stat st;
    if (argc != 5 || fstat(GPU_CHILD_FD, &st) < 0 || !S_ISFIFO(st.st_mode)) {
        log_error("gpu %s: internal command, started by stepop itself with a pipe on fd %d", GPU_CHILD_COMMAND,
                  GPU_CHILD_FD);
        return EXIT_USAGE;
    }
    /* Started through a descriptor (spawn_child), the kernel named us after its number. */
    prctl(PR_SET_NAME, program_invocation_short_name);
    /* Dies with its parent; checked once more in case the parent went before prctl. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)strtol(argv[1], NULL, 10))
        _exit(1);
    struct gpu_smoke_opts o = {
        .level = (int)strtol(argv[2], NULL, 10),
        .seconds = (int)strtol(argv[3], NULL, 10),
        .memory_share = strtod(argv[4], NULL),
    };
    cJSON *r = o.level > 0 ? gpu_backend.smoke(&o) : gpu_backend.probe();
    char *text = json_print(r, 0);
    cJSON_Delete(r);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(GPU_CHILD_FD, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(1);
        off += (size_t)n;
    }
    cJSON_free(text);
    _exit(0);
}

/* Moves a descriptor the child needs off GPU_CHILD_FD: dup2 onto itself would keep close-on-exec,
 * and the dup2 of the pipe onto it would replace the executable. */
static int off_child_fd(int *fd)
{
    if (*fd != GPU_CHILD_FD)
        return 0;
    int moved = fcntl(*fd, F_DUPFD_CLOEXEC, GPU_CHILD_FD + 1);
    int saved = errno;
    close(*fd);
    errno = saved;
    *fd = moved;
    return moved < 0 ? -1 : 0;
}

/* Starts the backend in a fresh stepop: this very binary, through a descriptor of /proc/self/exe
 * (still right when the file was replaced since; valgrind hands out its client's there). The
 * caller may already run threads (the entrypoint's reporter): a plain fork would copy locks held
 * by them (malloc's, stdio's, the dynamic loader's) and the child could hang on one, a false
 * timeout. posix_spawn runs no atfork handlers and nothing but the exec in the copy; the new
 * process starts with one thread, the default handlers for SIGINT, SIGTERM and SIGPIPE and no
 * blocked signals. */
static int spawn_child(int fd, const struct gpu_opts *o, pid_t *pid)
{
    char parent[24], level[16], seconds[16], share[32];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    snprintf(level, sizeof level, "%d", o->smoke.level);
    snprintf(seconds, sizeof seconds, "%d", o->smoke.seconds);
    snprintf(share, sizeof share, "%.17g", o->smoke.memory_share);
    /* argv[0] as ours, so the child is found the way its parent is (ps, pgrep -f). */
    char *argv[] = { program_invocation_name, (char *)"gpu", (char *)GPU_CHILD_COMMAND, parent, level, seconds, share,
                     NULL };
    int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe < 0 || off_child_fd(&exe) < 0)
        return errno;
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", exe);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, GPU_CHILD_FD);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    int rc = posix_spawn(pid, path, &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(exe);
    return rc;
}

/* The backend's result from a re-executed child, or a timeout/unknown result of our own. */
static cJSON *run_isolated(const struct gpu_opts *o, int64_t timeout_ms)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return failed_result(GPU_UNKNOWN, "gpu: pipe: %s", strerror(errno));
    if (off_child_fd(&fds[1]) < 0) {
        int saved = errno;
        close(fds[0]);
        return failed_result(GPU_UNKNOWN, "gpu: pipe: %s", strerror(saved));
    }
    pid_t pid;
    int rc = spawn_child(fds[1], o, &pid);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return failed_result(GPU_UNKNOWN, "gpu: cannot start the probe (/proc/self/exe): %s", strerror(rc));
    }
    close(fds[1]);
    struct buf out = { 0 };
    int64_t deadline = time_mono_ms() + timeout_ms;
    int timed_out = 0;
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = { .fd = fds[0], .events = POLLIN };
        int n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        char chunk[8192];
        ssize_t got = read(fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        buf_append(&out, chunk, (size_t)got);
    }
    close(fds[0]);
    int status;
    if (timed_out)
        kill(pid, SIGKILL);
    reap(pid, GPU_REAP_WAIT_MS, &status);

    cJSON *r = NULL;
    struct err e = { 0 };
    /* A complete answer counts even when the child then hung on its way out. */
    if (out.len && json_parse(out.data, out.len, "gpu probe", &r, &e) == 0 && cJSON_IsObject(r)) {
        buf_free(&out);
        return r;
    }
    cJSON_Delete(r);
    buf_free(&out);
    char limit[32];
    units_format_duration(timeout_ms, limit, sizeof limit);
    if (timed_out)
        return failed_result(GPU_TIMEOUT, "the CUDA probe gave no answer within %s and was killed", limit);
    if (status != -1 && WIFSIGNALED(status))
        return failed_result(GPU_UNKNOWN, "the CUDA probe died with signal %d (%s)", WTERMSIG(status),
                             strsignal(WTERMSIG(status)));
    return failed_result(GPU_UNKNOWN, "the CUDA probe ended without an answer (exit status %d)",
                         status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static cJSON *environment(void)
{
    static const char *const vars[] = { "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "CUDA_VISIBLE_DEVICES",
                                        "LD_LIBRARY_PATH" };
    cJSON *env = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        json_add_str(env, vars[i], getenv(vars[i]));
    cJSON *nodes = cJSON_AddArrayToObject(env, "dev_nodes");
    glob_t g;
    if (glob("/dev/nvidia*", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            cJSON_AddItemToArray(nodes, cJSON_CreateString(g.gl_pathv[i]));
        globfree(&g);
    }
    /* The kernel module's version (e.g. 550.54.15), to compare with libcuda's. */
    char *ver = NULL;
    size_t len = 0;
    if (read_small_file("/sys/module/nvidia/version", 256, &ver, &len) == 0) {
        while (len && (ver[len - 1] == '\n' || ver[len - 1] == ' '))
            ver[--len] = '\0';
    }
    json_add_str(env, "kernel_module", ver && ver[0] ? ver : NULL);
    free(ver);
    return env;
}

static void put(cJSON *report, const char *key, cJSON *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(report, key);
    cJSON_AddItemToObject(report, key, value);
}

/* The verdict first, the details after, whatever order the child and the checks added them in. */
static cJSON *in_order(cJSON *r)
{
    static const char *const keys[] = { "ok", "classification", "message", "hint", "cuda_error", "backend",
                                        "driver_version", "runtime_version", "driver_library", "level", "devices",
                                        "requirements", "thresholds", "elapsed_ms", "environment" };
    cJSON *out = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(r, keys[i]);
        if (v)
            cJSON_AddItemToObject(out, keys[i], v);
    }
    while (r->child) {
        cJSON *v = cJSON_DetachItemViaPointer(r, r->child);
        cJSON_AddItemToObject(out, v->string, v);
    }
    cJSON_Delete(r);
    return out;
}

cJSON *gpu_run(const struct gpu_opts *o)
{
    int64_t start = time_mono_ms();
    int64_t timeout = o->timeout_ms > 0 ? o->timeout_ms : GPU_DEFAULT_TIMEOUT_MS;
    cJSON *r = run_isolated(o, timeout);
    put(r, "backend", cJSON_CreateString(gpu_backend.name));
    put(r, "environment", environment());
    if (!cJSON_GetObjectItemCaseSensitive(r, "devices"))
        put(r, "devices", cJSON_CreateArray());
    /* A child that never answered still ran the runtime linked in here. */
    if (!cJSON_GetObjectItemCaseSensitive(r, "runtime_version"))
        put(r, "runtime_version",
            gpu_backend.runtime_version ? cJSON_CreateString(gpu_runtime_compiled()) : cJSON_CreateNull());
    if (!cJSON_GetObjectItemCaseSensitive(r, "driver_version"))
        put(r, "driver_version", cJSON_CreateNull());
    if (!cJSON_GetObjectItemCaseSensitive(r, "driver_library"))
        put(r, "driver_library", cJSON_CreateNull());
    if (o->smoke.level > 0)
        put(r, "level", cJSON_CreateNumber(o->smoke.level));

    char msg[1024];
    enum gpu_class c = gpu_report_class(r);
    /* Requirements and thresholds are judged even after a failure, so the report says all it can;
     * a failure found by the backend outranks them. */
    if (gpu_eval_requirements(r, &o->req, msg, sizeof msg) < 0 && c == GPU_READY) {
        gpu_result_fail(r, GPU_REQUIREMENT_NOT_MET, NULL, "%s", msg);
        c = GPU_REQUIREMENT_NOT_MET;
    }
    if (o->smoke.level > 0 && gpu_eval_thresholds(r, &o->thresholds, msg, sizeof msg) < 0 && c == GPU_READY) {
        gpu_result_fail(r, GPU_BELOW_THRESHOLD, NULL, "%s", msg);
        c = GPU_BELOW_THRESHOLD;
    }
    if (c == GPU_READY) {
        int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "devices"));
        snprintf(msg, sizeof msg, "%d device%s ready%s", n, n == 1 ? "" : "s",
                 o->smoke.level > 0 ? ", smoke passed" : "");
        put(r, "classification", cJSON_CreateNull());
        put(r, "cuda_error", cJSON_CreateNull());
        put(r, "message", cJSON_CreateString(msg));
    }
    char hint[1024];
    gpu_hint(c, r, hint, sizeof hint);
    put(r, "hint", c == GPU_READY ? cJSON_CreateNull() : cJSON_CreateString(hint));
    put(r, "ok", cJSON_CreateBool(c == GPU_READY));
    put(r, "elapsed_ms", cJSON_CreateNumber((double)(time_mono_ms() - start)));
    return in_order(r);
}

/* The part of a report that status.json keeps. */
static cJSON *summary_of(const cJSON *report)
{
    static const char *const top[] = { "ok", "classification", "backend", "driver_version", "runtime_version",
                                       "elapsed_ms" };
    static const char *const dev[] = { "index", "name", "uuid", "compute_capability", "memory_total", "memory_free" };
    cJSON *s = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(report, top[i]);
        cJSON_AddItemToObject(s, top[i], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    cJSON *devices = cJSON_AddArrayToObject(s, "devices");
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(report, "devices")) {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, dev[i]);
            if (v)
                cJSON_AddItemToObject(o, dev[i], cJSON_Duplicate(v, 1));
        }
        cJSON_AddItemToArray(devices, o);
    }
    return s;
}

int gpu_preflight(const struct gpu_requirements *req, cJSON **summary, char *classification, size_t class_len,
                  struct err *e)
{
    struct gpu_opts o = { .req = *req, .timeout_ms = req->timeout_ms };
    if (req->smoke_quick)
        o.smoke.level = 1;
    cJSON *report = gpu_run(&o);
    *summary = summary_of(report);
    enum gpu_class c = gpu_report_class(report);
    if (c == GPU_READY) {
        if (class_len)
            classification[0] = '\0';
        cJSON_Delete(report);
        return 0;
    }
    snprintf(classification, class_len, "%s", gpu_class_name(c));
    err_set(e, ERR_UNSUPPORTED, "%s: %s (hint: %s)", gpu_class_name(c), json_str(report, "message"),
            json_str(report, "hint"));
    if (e)
        e->transient = 1; /* a GPU problem belongs to this node: the step may run elsewhere */
    cJSON_Delete(report);
    return -1;
}
