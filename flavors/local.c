/* local: the step runs as a `stepop run` child process on this machine, in its own session and
 * work directory. The embedded default: it needs no configuration at all. */
#include "flavor.h"

#include "../runtime/fsutil.h"
#include "../runtime/jsonutil.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const known_settings[] = { "keep", "state_dir", NULL };

/* Where the child's work directory and its own output go: beside the run for a file store,
 * else under the data directory. */
static char *state_dir_for(const char *run_id, const char *run_uri, const cJSON *settings, struct err *e)
{
    const char *dir;
    if (flavor_setting_str(settings, "state_dir", NULL, &dir, e) < 0)
        return NULL;
    if (dir)
        return xasprintf("%s/%s", dir, run_id);
    char *path;
    if (strncmp(run_uri, "file://", 7) == 0 && uri_file_path(run_uri, &path, e) == 0) {
        char *r = xasprintf("%slocal", path);
        free(path);
        return r;
    }
    const char *data = getenv("XDG_DATA_HOME");
    return data && *data ? xasprintf("%s/stepop/local/%s", data, run_id)
                         : xasprintf("%s/.local/share/stepop/local/%s", env_or("HOME", "/tmp"), run_id);
}

static char *state_dir(const struct job *j, struct err *e)
{
    return state_dir_for(j->m->run_id, j->m->run_uri, j->settings, e);
}

static int local_validate(const struct job *j, struct err *e)
{
    if (flavor_check_settings(j->settings, "local", known_settings, e) < 0)
        return -1;
    int keep;
    const char *dir;
    if (flavor_setting_bool(j->settings, "keep", 0, &keep, e) < 0 ||
        flavor_setting_str(j->settings, "state_dir", NULL, &dir, e) < 0)
        return -1;
    /* Never ignore a setting silently: these need a container or a cluster. */
    if (j->m->image)
        return err_set(e, ERR_INVALID, "image: the local flavor runs on this machine and cannot use an image "
                       "(drop \"image\", or use the docker flavor)");
    if (j->m->cpu > 0)
        return err_set(e, ERR_INVALID, "resources.cpu: the local flavor cannot enforce a CPU limit (use the docker flavor)");
    if (j->m->memory > 0)
        return err_set(e, ERR_INVALID,
                       "resources.memory: the local flavor cannot enforce a memory limit (use the docker flavor)");
    return 0;
}

static int local_render(const struct job *j, cJSON **requests, struct err *e)
{
    char *dir = state_dir(j, e);
    if (!dir)
        return -1;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "flavor", "local");
    cJSON *argv = cJSON_AddArrayToObject(r, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(j->stepop_path));
    cJSON_AddItemToArray(argv, cJSON_CreateString("run"));
    cJSON *env = cJSON_AddObjectToObject(r, "env");
    cJSON_AddStringToObject(env, "STEPOP_MANIFEST", j->manifest_uri);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", j->attempt);
    cJSON_AddStringToObject(env, "STEPOP_ATTEMPT", attempt);
    char *work = xasprintf("%s/work", dir);
    char *log = xasprintf("%s/entrypoint.log", dir);
    cJSON_AddStringToObject(r, "cwd", work);
    cJSON_AddStringToObject(r, "output", log);
    free(work);
    free(log);
    free(dir);
    *requests = r;
    return 0;
}

/* The process's start time (clock ticks since boot), to tell it from a later one with its pid. */
static long long proc_start_time(pid_t pid, char *state)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p)
        return -1;
    if (state)
        *state = p[2];
    long long v = -1;
    p += 2;
    for (int field = 3; field <= 22 && p; field++) {
        if (field == 22)
            v = strtoll(p, NULL, 10);
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return v;
}

int flavor_local_spawn(const struct job *j, const char *const *exec_argv, cJSON **handle, struct err *e)
{
    char *dir = state_dir(j, e);
    if (!dir)
        return -1;
    char *work = xasprintf("%s/work", dir);
    char *log = xasprintf("%s/entrypoint.log", dir);
    int rc = fs_mkdir_p(work, e);
    int fd = rc == 0 ? open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    if (rc == 0 && fd < 0)
        rc = err_set(e, ERR_IO, "%s: %s", log, strerror(errno));
    /* The child's environment is built before fork: only async-signal-safe calls after it. */
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = xcalloc(n + 3, sizeof *envp);
    size_t extra = 0;
    while (exec_argv && exec_argv[extra])
        extra++;
    char **argv = xcalloc(extra + 5, sizeof *argv);
    argv[0] = (char *)"stepop";
    argv[1] = (char *)"run";
    if (exec_argv) {
        argv[2] = (char *)"--exec";
        argv[3] = (char *)"--";
        for (size_t i = 0; i < extra; i++)
            argv[4 + i] = (char *)exec_argv[i];
    }
    size_t k = 0;
    /* The submitter's own STEPOP_ATTEMPT (it may run inside a step) is not the new run's. */
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "STEPOP_MANIFEST=", 16) != 0 && strncmp(environ[i], "STEPOP_ATTEMPT=", 15) != 0)
            envp[k++] = environ[i];
    char *manifest_env = xasprintf("STEPOP_MANIFEST=%s", j->manifest_uri);
    char *attempt_env = xasprintf("STEPOP_ATTEMPT=%d", j->attempt);
    envp[k++] = manifest_env;
    envp[k] = attempt_env;
    pid_t pid = -1;
    int fd_limit = fs_fd_limit();
    if (rc == 0) {
        pid = fork();
        if (pid < 0)
            rc = err_set(e, ERR_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* Its own session: a Ctrl-C at the terminal reaches the submitter, which cancels. */
        setsid();
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        fs_cloexec_above_stdio(fd_limit);
        if (chdir(work) < 0)
            _exit(70);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execve(j->stepop_path, argv, envp);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "pid", pid);
        cJSON_AddNumberToObject(h, "start_time", (double)proc_start_time(pid, NULL));
        cJSON_AddStringToObject(h, "host", host);
        cJSON_AddStringToObject(h, "state_dir", dir);
        cJSON_AddStringToObject(h, "run_id", j->m->run_id);
        cJSON_AddStringToObject(h, "run_uri", j->m->run_uri);
        *handle = h;
    }
    free(manifest_env);
    free(attempt_env);
    free(envp);
    free(argv);
    free(work);
    free(log);
    free(dir);
    return rc;
}

static int local_submit(const struct job *j, cJSON **handle, struct err *e)
{
    return flavor_local_spawn(j, NULL, handle, e);
}

/* Reads /proc/PID/NAME (NUL-separated argv or environment) whole; NULL when unreadable. */
static char *proc_read(pid_t pid, const char *name, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    char *data;
    if (read_small_file(path, 1u << 20, &data, len) < 0)
        return NULL;
    return data;
}

/* The run id of a `stepop run` process: the run prefix's last segment in its STEPOP_MANIFEST
 * (<store>runs/<id>/manifest.json). NULL when pid is not `stepop run` with a manifest. */
static char *proc_stepop_run_id(pid_t pid)
{
    size_t n;
    char *argv = proc_read(pid, "cmdline", &n);
    int is_run = argv && n > strlen(argv) + 1 && strcmp(argv + strlen(argv) + 1, "run") == 0;
    const char *base = argv ? strrchr(argv, '/') : NULL;
    is_run = is_run && strncmp(base ? base + 1 : argv, "stepop", 6) == 0;
    free(argv);
    if (!is_run)
        return NULL;
    char *env = proc_read(pid, "environ", &n);
    char *id = NULL;
    for (size_t i = 0; env && i < n; i += strlen(env + i) + 1) {
        const char *v = env + i;
        if (strncmp(v, "STEPOP_MANIFEST=", 16) != 0)
            continue;
        v += 16;
        const char *end = strstr(v, "/manifest.json");
        const char *start = end;
        while (start && start > v && start[-1] != '/')
            start--;
        if (end && end > start)
            id = xstrndup(start, (size_t)(end - start));
    }
    free(env);
    return id;
}

static int handle_pid(const cJSON *handle, pid_t *pid, long long *start, struct err *e)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(handle, "pid");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(handle, "start_time");
    const char *host = json_str(handle, "host");
    char me[256] = "";
    gethostname(me, sizeof me - 1);
    if (!cJSON_IsNumber(p) || !cJSON_IsNumber(s))
        return err_set(e, ERR_INVALID, "local handle: missing pid");
    if (host && strcmp(host, me) != 0)
        return err_set(e, ERR_UNSUPPORTED, "the local job runs on %s, not on this machine (%s)", host, me);
    *pid = (pid_t)p->valuedouble;
    *start = (long long)s->valuedouble;
    if (*pid <= 1 || (double)*pid != p->valuedouble)
        return err_set(e, ERR_INVALID, "local handle: %g is no process id of a run", p->valuedouble);
    return 0;
}

/* submission.json comes from the store, which others may write: a handle is acted on only when
 * its pid is, right now, the `stepop run` of the handle's run (started at the recorded time,
 * with that run's manifest). 1: it is; 0: that process is gone; -1 (e set): the pid belongs to
 * something else, which is never signalled. */
static int local_verify(const cJSON *handle, pid_t pid, long long start, struct err *e)
{
    const char *run_id = json_str(handle, "run_id");
    if (!run_id || !*run_id)
        return err_set(e, ERR_INVALID, "local handle: no run_id to check pid %d against", (int)pid);
    char state = 0;
    if (proc_start_time(pid, &state) != start || state == 'Z')
        return 0;
    char *id = proc_stepop_run_id(pid);
    int same = id && strcmp(id, run_id) == 0;
    if (!same)
        err_set(e, ERR_REFUSED, "pid %d is not the stepop run of run %s (%s%s); refusing to act on it", (int)pid,
                run_id, id ? "it runs " : "not a stepop run", id ? id : "");
    free(id);
    return same ? 1 : -1;
}

static int local_poll(const cJSON *handle, const cJSON *settings, struct remote_state *st, struct err *e)
{
    (void)settings;
    memset(st, 0, sizeof *st);
    pid_t pid;
    long long start;
    if (handle_pid(handle, &pid, &start, e) < 0)
        return -1;
    int ws;
    pid_t w = waitpid(pid, &ws, WNOHANG);
    if (w == pid) {
        /* Our own child: its exit status is known exactly. */
        st->phase = REMOTE_EXITED;
        st->exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        snprintf(st->message, sizeof st->message, "stepop run (pid %d) %s %d", (int)pid,
                 WIFEXITED(ws) ? "exited with code" : "was killed by signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
        return 0;
    }
    if (w == 0) {
        st->phase = REMOTE_RUNNING;
        return 0;
    }
    int v = local_verify(handle, pid, start, e);
    if (v < 0)
        return -1;
    if (v > 0) {
        st->phase = REMOTE_RUNNING;
        return 0;
    }
    /* Not our child (re-attached from another process): gone, exit status unknown. */
    st->phase = REMOTE_EXITED;
    st->exit_code = -1;
    snprintf(st->message, sizeof st->message, "stepop run (pid %d) is no longer running", (int)pid);
    return 0;
}

static int local_cancel(const cJSON *handle, const cJSON *settings, int64_t grace_ms, struct err *e)
{
    (void)settings;
    pid_t pid;
    long long start;
    if (handle_pid(handle, &pid, &start, e) < 0)
        return -1;
    int v = local_verify(handle, pid, start, e);
    if (v <= 0)
        return v; /* already gone, or not this run's */
    /* stepop run forwards SIGTERM to the step and SIGKILLs it after the grace period itself. */
    if (kill(pid, grace_ms > 0 ? SIGTERM : SIGKILL) < 0 && errno != ESRCH)
        return err_set(e, ERR_INTERNAL, "kill %d: %s", (int)pid, strerror(errno));
    return 0;
}

static int local_cleanup(const cJSON *handle, const cJSON *settings, struct err *e)
{
    int keep;
    if (flavor_setting_bool(settings, "keep", 0, &keep, e) < 0)
        return -1;
    const char *dir = json_str(handle, "state_dir");
    if (keep || !dir)
        return 0;
    /* Only the directory this flavor would have made for the handle's run is removed. */
    const char *run_id = json_str(handle, "run_id"), *run_uri = json_str(handle, "run_uri");
    char *want = run_id && run_uri ? state_dir_for(run_id, run_uri, settings, e) : NULL;
    int mine = want && strcmp(want, dir) == 0;
    free(want);
    if (!mine)
        return err_set(e, ERR_REFUSED, "local handle: state_dir %s is not the run's own work place; not removed", dir);
    char *work = xasprintf("%s/work", dir);
    int rc = fs_remove_tree(work, e);
    free(work);
    return rc;
}

const struct flavor_ops flavor_local_ops = {
    .name = "local",
    .validate = local_validate,
    .render = local_render,
    .submit = local_submit,
    .poll = local_poll,
    .cancel = local_cancel,
    .cleanup = local_cleanup,
};
