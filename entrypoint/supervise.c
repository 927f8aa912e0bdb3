#include "supervise.h"

#include "oom.h"

#include "../runtime/fsutil.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
static int wake_pipe[2] = { -1, -1 };
static volatile sig_atomic_t pending[65];
static volatile sig_atomic_t term_requested, cancel_flag;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig > 0 && sig < 65)
        pending[sig] = 1;
    if (sig == SIGTERM || sig == SIGINT)
        term_requested = cancel_flag = 1;
    (void)!write(wake_pipe[1], "", 1);
    errno = saved;
}

int supervise_init(struct err *e)
{
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return err_set(e, ERR_INTERNAL, "pipe: %s", strerror(errno));
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    /* A closed stdout must not kill the supervisor; the step gets SIGPIPE back (see the child). */
    signal(SIGPIPE, SIG_IGN);
    /* As PID 1 orphans come to us anyway; otherwise ask for them, so none stays a zombie. */
    if (getpid() != 1)
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    return 0;
}

int supervise_term_requested(void)
{
    return term_requested;
}

volatile sig_atomic_t *supervise_cancel_flag(void)
{
    return &cancel_flag;
}

/* Only async-signal-safe calls between fork and exec. */
static void child_exec(const struct supervise_options *o, int out_fd, int err_fd, int status_fd, int fd_limit)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &dfl, NULL);
    sigaction(SIGCHLD, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (isatty(0)) {
        /* Keep the terminal usable: the step's group becomes its foreground group. */
        signal(SIGTTOU, SIG_IGN);
        tcsetpgrp(0, getpid());
        signal(SIGTTOU, SIG_DFL);
    }
    if (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0))
        goto fail;
    /* Whatever a library opened without O_CLOEXEC (libcurl's sockets to the store) must not
     * reach the step; status_fd stays open until exec, to report a failed exec. */
    fs_cloexec_above_stdio(fd_limit);
    if (o->workdir && chdir(o->workdir) < 0)
        goto fail;
    if (o->envp)
        environ = o->envp;
    execvp(o->argv[0], o->argv);
fail:;
    int err = errno;
    (void)!write(status_fd, &err, sizeof err);
    _exit(err == ENOENT ? 127 : 126);
}

static void group_kill(int pgid, int sig)
{
    if (kill(-pgid, sig) < 0 && errno == ESRCH)
        return;
}

static int group_alive(int pgid)
{
    return kill(-pgid, 0) == 0 || errno == EPERM;
}

static int pump(int *fd, int which, const struct supervise_options *o, char *buf, size_t len)
{
    ssize_t n = read(*fd, buf, len);
    if (n > 0) {
        o->on_output(o->ctx, which, buf, (size_t)n);
        return 1;
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
    }
    return 0;
}

int supervise_run(const struct supervise_options *o, struct supervise_result *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    int out[2] = { -1, -1 }, errp[2] = { -1, -1 }, status[2];
    if (o->capture && (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0))
        return err_set(e, ERR_INTERNAL, "pipe: %s", strerror(errno));
    if (pipe2(status, O_CLOEXEC) < 0)
        return err_set(e, ERR_INTERNAL, "pipe: %s", strerror(errno));
    int64_t oom_before = oom_kill_count();
    int64_t start = time_mono_ms();
    int fd_limit = fs_fd_limit();
    pid_t pid = fork();
    if (pid < 0)
        return err_set(e, ERR_INTERNAL, "fork: %s", strerror(errno));
    if (pid == 0)
        child_exec(o, out[1], errp[1], status[1], fd_limit);
    setpgid(pid, pid);
    close(status[1]);
    if (o->capture) {
        close(out[1]);
        close(errp[1]);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(errp[0], F_SETFL, O_NONBLOCK);
    }
    int child_errno = 0;
    ssize_t got;
    while ((got = read(status[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
        ;
    close(status[0]);
    if (got == (ssize_t)sizeof child_errno)
        r->exec_errno = child_errno;
    if (o->on_started && !r->exec_errno)
        o->on_started(o->ctx, pid);

    char *buf = xmalloc(65536);
    int main_done = 0, wstatus = 0;
    int64_t kill_at = 0, deadline = o->timeout_ms > 0 ? start + o->timeout_ms : 0;
    int64_t leftovers_kill_at = 0, stop_reading_at = 0;
    for (;;) {
        struct pollfd fds[3] = { { wake_pipe[0], POLLIN, 0 }, { out[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
        int64_t now = time_mono_ms(), wait = 1000;
        if (deadline && !r->timed_out && deadline - now < wait)
            wait = deadline - now;
        if (kill_at && !main_done && kill_at - now < wait)
            wait = kill_at - now;
        if (main_done)
            wait = 50;
        poll(fds, 3, (int)(wait > 0 ? wait : 0));
        char drain[64];
        while (read(wake_pipe[0], drain, sizeof drain) > 0)
            ;
        now = time_mono_ms();
        for (int sig = 1; sig < 65; sig++) {
            if (!pending[sig])
                continue;
            pending[sig] = 0;
            if (sig == SIGCHLD)
                continue;
            if (main_done)
                continue;
            log_debug("forwarding signal %d to the step", sig);
            group_kill(pid, sig);
            if (sig == SIGTERM) {
                r->terminated = 1;
                if (!kill_at)
                    kill_at = now + o->grace_ms;
            }
        }
        /* Reap everything: the step, and any orphan that was re-parented to us. */
        for (;;) {
            int st;
            pid_t w = waitpid(-1, &st, WNOHANG);
            if (w <= 0)
                break;
            if (w == pid) {
                main_done = 1;
                wstatus = st;
                r->elapsed_ms = now - start;
            }
        }
        if (o->capture) {
            int busy = 1;
            for (int rounds = 0; busy && rounds < 16; rounds++) {
                busy = 0;
                if (out[0] >= 0)
                    busy |= pump(&out[0], 1, o, buf, 65536);
                if (errp[0] >= 0)
                    busy |= pump(&errp[0], 2, o, buf, 65536);
            }
        }
        if (!main_done) {
            if (deadline && !r->timed_out && now >= deadline) {
                r->timed_out = 1;
                log_warn("the step ran past its timeout of %llds; sending SIGTERM", (long long)(o->timeout_ms / 1000));
                group_kill(pid, SIGTERM);
                if (!kill_at)
                    kill_at = now + o->grace_ms;
            }
            if (kill_at && now >= kill_at && !r->killed_after_grace) {
                log_warn("the step is still running after the %llds grace period; sending SIGKILL",
                         (long long)(o->grace_ms / 1000));
                r->killed_after_grace = 1;
                group_kill(pid, SIGKILL);
            }
            continue;
        }
        /* The step's main process is gone; what is left of its group goes too. */
        if (!leftovers_kill_at) {
            leftovers_kill_at = now + 2000;
            stop_reading_at = now + 4000;
            if (group_alive(pid))
                group_kill(pid, SIGTERM);
        } else if (now >= leftovers_kill_at && group_alive(pid)) {
            group_kill(pid, SIGKILL);
        }
        int pipes_open = o->capture && (out[0] >= 0 || errp[0] >= 0);
        if (!pipes_open || now >= stop_reading_at)
            break;
    }
    /* Members of the step's group killed just now may have been re-parented to us after the
     * last reap: collect them (they die at once) rather than leave zombies to whatever init
     * runs above us. Bounded: an orphan that left the group may live on. */
    for (int64_t until = time_mono_ms() + 1000; time_mono_ms() < until;) {
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w > 0)
            continue;
        if (w < 0 || !group_alive(pid))
            break;
        poll(NULL, 0, 10);
    }
    if (out[0] >= 0)
        close(out[0]);
    if (errp[0] >= 0)
        close(errp[0]);
    free(buf);

    if (WIFEXITED(wstatus)) {
        r->exit_code = WEXITSTATUS(wstatus);
    } else if (WIFSIGNALED(wstatus)) {
        r->signal = WTERMSIG(wstatus);
        r->exit_code = 128 + r->signal;
    }
    int64_t oom_after = oom_kill_count();
    /* 137: a shell running the step reports its child's SIGKILL as an exit code. */
    if ((r->signal == SIGKILL || r->exit_code == 128 + SIGKILL) && !r->killed_after_grace && oom_before >= 0 &&
        oom_after > oom_before)
        r->oom_killed = 1;
    return 0;
}
