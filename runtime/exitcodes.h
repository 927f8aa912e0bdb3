/* Exit codes of stepop itself (README "Exit codes"). When a step ran, `stepop run` and
 * `stepop submit` exit with the step's own code instead. */
#ifndef STEPOP_EXITCODES_H
#define STEPOP_EXITCODES_H

#include "err.h"

enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,      /* the operation failed (store, network, I/O) */
    EXIT_USAGE = 2,       /* bad command line or option value */
    EXIT_NOT_FOUND = 3,   /* the object or run does not exist */
    EXIT_REFUSED = 4,     /* unsafe archive, limit exceeded, digest mismatch */

    /* `stepop run` when the step did not run, or ran and exited 0 but its outputs failed
     * (the numbers follow sysexits.h where one fits). */
    EXIT_RUN_MANIFEST = 65,   /* manifest_error: unreadable or invalid manifest */
    EXIT_RUN_INPUT = 66,      /* input_error: an input could not be fetched or verified */
    EXIT_RUN_GPU = 69,        /* gpu_unavailable: the GPU preflight failed */
    EXIT_RUN_INTERNAL = 70,   /* internal: stepop itself failed */
    EXIT_RUN_UPLOAD = 74,     /* upload_error: the step succeeded, an output could not be stored */
    EXIT_RUN_TERMINATED = 143, /* SIGTERM arrived before the step started (128 + 15) */

    /* `stepop submit` when the run's own status gives no code. */
    EXIT_SUBMIT_LAUNCH = 71,      /* the flavor could not launch the job (missing image, API error) */
    EXIT_SUBMIT_LOST = 72,        /* the job ended without a final status and without an exit code */
    EXIT_SUBMIT_NOT_STARTED = 73, /* the job did not start within the pending deadline */
    EXIT_SUBMIT_DETACHED = 130    /* a second Ctrl-C detached from a run that goes on */
};

/* The exit code of a tool command (artifact, status, ...) that failed with e. */
int exit_code_for(const struct err *e);

#endif
