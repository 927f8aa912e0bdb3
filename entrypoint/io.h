/* The entrypoint's inputs and outputs: fetch before the step, pack and upload after it. */
#ifndef STEPOP_ENTRYPOINT_IO_H
#define STEPOP_ENTRYPOINT_IO_H

#include "../runtime/err.h"
#include "../runtime/manifest.h"

#include <cjson/cJSON.h>
#include <signal.h>

struct store;

/* path made absolute under workdir (which is absolute); caller frees. */
char *io_resolve(const char *workdir, const char *path);
/* Creates what outputs need before the step starts: parent directories, and the directory itself
 * for archive formats. *created (caller frees) marks the directories stepop made: one the step
 * leaves empty counts as missing. */
int io_prepare_outputs(const struct manifest *m, const char *workdir, unsigned char **created, struct err *e);
/* Fetches every input (unpacking, verifying sha256) within the manifest's fetch_timeout. On
 * failure e names the input; ERR_CANCELLED when *cancel (may be NULL) became set. */
int io_fetch_inputs(const struct manifest *m, const char *workdir, volatile sig_atomic_t *cancel, struct err *e);
/* Packs and uploads every output that exists, within the manifest's upload_timeout (outputs not
 * started by then are skipped). Returns 0 when every non-optional output was
 * stored; *index gets the outputs.json document (name, uri, format, size, sha256 of each).
 * run_store (may be NULL), open on the run's URI, stores the outputs under that prefix: one
 * connection, and on the file store one directory sync fewer per object. */
int io_upload_outputs(const struct manifest *m, const char *workdir, const unsigned char *created,
                      struct store *run_store, cJSON **index, struct err *e);

#endif
