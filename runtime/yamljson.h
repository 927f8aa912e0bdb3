/* YAML (libyaml) read into a cJSON tree, the shape the rest of stepop already walks: mappings
 * become objects, sequences arrays, plain true/false booleans, plain null/~/empty null, and every
 * other scalar a string (numbers too: the callers parse what they expect). Kubeconfig files are
 * read this way. */
#ifndef STEPOP_YAMLJSON_H
#define STEPOP_YAMLJSON_H

#include "err.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* The first document of text. Refuses (ERR_INVALID, with line and column) malformed YAML,
 * duplicate keys, keys that are not scalars, nesting deeper than 64 and documents whose aliases
 * expand past 100,000 nodes. *out is the caller's (cJSON_Delete); an empty text gives null. */
int yamljson_parse(const char *text, size_t len, cJSON **out, struct err *e);

#endif
