/* Running the step as a well-behaved PID 1 would: its own process group, signals forwarded to
 * the group, every zombie reaped (also orphans, as a child subreaper when not PID 1), SIGTERM and
 * the timeout followed by SIGKILL after the grace period, output passed through and captured. */
#ifndef STEPOP_SUPERVISE_H
#define STEPOP_SUPERVISE_H

#include "../runtime/err.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Installs the signal handlers; call once, first thing, before any thread starts. */
int supervise_init(struct err *e);
/* Non-zero once SIGTERM (or SIGINT) arrived; used to stop work before the step starts. */
int supervise_term_requested(void);
/* The flag the HTTP layer watches, so transfers stop on SIGTERM while inputs are fetched. */
volatile sig_atomic_t *supervise_cancel_flag(void);

struct supervise_options {
    char **argv;
    char **envp;
    const char *workdir;       /* NULL: the current directory */
    int capture;               /* pipe stdout/stderr through on_output (else inherit them) */
    void (*on_output)(void *ctx, int fd, const void *data, size_t n);
    void *ctx;
    int64_t timeout_ms;        /* 0: none */
    int64_t grace_ms;          /* between SIGTERM and SIGKILL */
    void (*on_started)(void *ctx, int pid);
};

struct supervise_result {
    int exec_errno;            /* exec failed with this errno; exit_code is then 126 or 127 */
    int exit_code;             /* 0-255, or 128+signal */
    int signal;                /* the signal that killed the step, 0 if it exited */
    int terminated;            /* SIGTERM came from outside and was forwarded */
    int timed_out;
    int killed_after_grace;    /* SIGKILL was needed */
    int oom_killed;            /* SIGKILLed while the cgroup's OOM-kill counter rose */
    int64_t elapsed_ms;
};

int supervise_run(const struct supervise_options *o, struct supervise_result *r, struct err *e);

#endif
