/* Phase checking_gpu: the GPU preflight, before any input is downloaded. */
#ifndef STEPOP_PREFLIGHT_H
#define STEPOP_PREFLIGHT_H

#include "../runtime/err.h"
#include "../runtime/manifest.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Checks the manifest's gpu block. 0 when the step may start; -1 with classification and e set
 * otherwise. *summary, when set, is the GPU summary for status.json (caller owns it). */
int preflight_gpu(const struct manifest *m, cJSON **summary, char *classification, size_t class_len, struct err *e);

#endif
