/* Runs a helper program and takes its answer from stdout: credential helpers (Kubernetes exec
 * plugins, and later the Azure CLI, Google executable-sourced credentials) and plugin flavors.
 * stderr goes to ours, so the user sees the helper's prompts and complaints. */
#ifndef STEPOP_SUBPROC_H
#define STEPOP_SUBPROC_H

#include "err.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>

struct subproc_opts {
    const char *const *argv;       /* argv[0] is looked up on PATH when it holds no '/' */
    const char *const *env_extra;  /* "NAME=value" lines over our environment, or NULL */
    const void *input;             /* written to its stdin, then closed ... */
    size_t input_len;
    int inherit_stdin;             /* ... or our stdin (an interactive helper); else /dev/null */
    size_t max_output;             /* a longer stdout is an error (default 1 MiB) */
    int64_t timeout_ms;            /* 0: none; at the limit SIGTERM, 2 s later SIGKILL */
    const char *what;              /* names the helper in messages ("exec plugin aws") */
    int own_group;                 /* its own process group, signalled whole at the timeout
                                      (a plugin's children die with it); fds above 2 closed */
};

struct subproc_result {
    int exit_code;                 /* valid when signal is 0 */
    int signal;                    /* the signal that ended it, or 0 */
    struct buf out;                /* its stdout */
};

/* Runs it to the end. -1 (e set) when it could not be started (ERR_NOT_FOUND for a missing
 * program), ran past the timeout, or wrote too much; a non-zero exit is not an error here:
 * the caller judges it from r. r->out is the caller's to free (subproc_result_free). */
int subproc_run(const struct subproc_opts *o, struct subproc_result *r, struct err *e);
void subproc_result_free(struct subproc_result *r);

#endif
