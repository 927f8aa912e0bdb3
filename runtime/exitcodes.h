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
};

/* The exit code of a tool command (artifact, status, ...) that failed with e. */
int exit_code_for(const struct err *e);

#endif
