#include "subproc.h"

#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void subproc_result_free(struct subproc_result *r)
{
    buf_free(&r->out);
}

/* Our environment with env_extra over it (a name set there replaces ours). */
static char **build_env(const char *const *extra)
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = xcalloc(n + m + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < m && !replaced; j++)
            replaced = strncmp(extra[j], environ[i], name_len) == 0 && extra[j][name_len] == '=';
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)extra[j];
    return env;
}

/* group: signal its process group (it leads one) rather than the process alone. */
static void kill_and_reap(pid_t pid, int group, int *status)
{
    pid_t target = group ? -pid : pid;
    kill(target, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(target, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
}

int subproc_run(const struct subproc_opts *o, struct subproc_result *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    const char *what = o->what ? o->what : o->argv[0];
    size_t max_out = o->max_output ? o->max_output : 1u << 20;
    int out[2] = { -1, -1 }, in[2] = { -1, -1 };
    if (pipe2(out, O_CLOEXEC) < 0)
        return err_set(e, ERR_INTERNAL, "%s: pipe: %s", what, strerror(errno));
    /* stdin is a socket so that writing to a helper that stopped reading gives EPIPE, not SIGPIPE. */
    if (o->input && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0) {
        int rc = err_set(e, ERR_INTERNAL, "%s: socketpair: %s", what, strerror(errno));
        close(out[0]);
        close(out[1]);
        return rc;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    if (o->input)
        posix_spawn_file_actions_adddup2(&fa, in[1], 0);
    else if (!o->inherit_stdin)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    /* Spawned, not forked: the caller may run threads; the child starts with default signals. */
    sigset_t none, dfl;
    sigemptyset(&none);
    sigfillset(&dfl);
    posix_spawnattr_init(&attr);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o->own_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&attr, 0);
        /* Only stdin, stdout and stderr: no store socket or file of ours leaks into it. */
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    }
    posix_spawnattr_setflags(&attr, flags);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    char **env = build_env(o->env_extra);
    pid_t pid;
    int rc = posix_spawnp(&pid, o->argv[0], &fa, &attr, (char *const *)o->argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(out[1]);
    if (o->input)
        close(in[1]);
    if (rc != 0) {
        close(out[0]);
        if (o->input)
            close(in[0]);
        return err_set(e, rc == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL, "%s: cannot run %s: %s", what, o->argv[0],
                       rc == ENOENT ? "not found (not on PATH, or no such file)" : strerror(rc));
    }

    int wfd = o->input ? in[0] : -1;
    size_t written = 0;
    if (wfd >= 0)
        fcntl(wfd, F_SETFL, O_NONBLOCK);
    int64_t deadline = o->timeout_ms > 0 ? time_mono_ms() + o->timeout_ms : 0;
    int failed = 0, status = 0;
    while (out[0] >= 0) {
        if (wfd >= 0 && written == o->input_len) {
            close(wfd);
            wfd = -1;
        }
        struct pollfd p[2] = { { .fd = out[0], .events = POLLIN }, { .fd = wfd, .events = POLLOUT } };
        int wait_ms = -1;
        if (deadline) {
            int64_t left = deadline - time_mono_ms();
            if (left <= 0) {
                failed = err_set(e, ERR_NETWORK, "%s: gave no answer within %lld ms", what, (long long)o->timeout_ms);
                break;
            }
            wait_ms = left > 1000 ? 1000 : (int)left;
        }
        int n = poll(p, wfd >= 0 ? 2 : 1, wait_ms);
        if (n < 0 && errno != EINTR) {
            failed = err_set(e, ERR_INTERNAL, "%s: poll: %s", what, strerror(errno));
            break;
        }
        if (n <= 0)
            continue;
        if (wfd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(wfd, (const char *)o->input + written, o->input_len - written, MSG_NOSIGNAL);
            if (w > 0)
                written += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                written = o->input_len; /* it does not read its input: its answer will say why */
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char chunk[8192];
            ssize_t got = read(out[0], chunk, sizeof chunk);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                close(out[0]);
                out[0] = -1;
                break;
            }
            if (r->out.len + (size_t)got > max_out) {
                failed = err_set(e, ERR_INVALID, "%s: wrote more than %zu bytes to stdout", what, max_out);
                break;
            }
            buf_append(&r->out, chunk, (size_t)got);
        }
    }
    if (out[0] >= 0)
        close(out[0]);
    if (wfd >= 0)
        close(wfd);
    if (failed) {
        kill_and_reap(pid, o->own_group, &status);
        buf_free(&r->out);
        return -1;
    }
    /* stdout is closed; the program may still be on its way out. */
    for (;;) {
        pid_t w = waitpid(pid, &status, deadline ? WNOHANG : 0);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            buf_free(&r->out);
            return err_set(e, ERR_INTERNAL, "%s: waitpid: %s", what, strerror(errno));
        }
        if (w == 0) {
            if (time_mono_ms() >= deadline) {
                kill_and_reap(pid, o->own_group, &status);
                buf_free(&r->out);
                return err_set(e, ERR_NETWORK, "%s: did not exit within %lld ms", what, (long long)o->timeout_ms);
            }
            usleep(5000);
        }
    }
    if (WIFSIGNALED(status))
        r->signal = WTERMSIG(status);
    else
        r->exit_code = WEXITSTATUS(status);
    if (!r->out.data)
        buf_append(&r->out, "", 0);
    return 0;
}
