/* A small walk over an XML document (expat) for the AWS APIs' answers: the callback sees each
 * element's path of local names ("ListBucketResult/Contents/Key") and its text when it ends. */
#ifndef STEPOP_XMLWALK_H
#define STEPOP_XMLWALK_H

#include "err.h"

#include <stddef.h>

/* Returns 0 to go on, -1 (with e set) to stop the walk. */
typedef int (*xml_walk_fn)(void *ctx, const char *path, const char *text, struct err *e);

/* Walks data; -1 with e set on malformed XML or when fn stops it. The root element's own path
 * is its name. */
int xml_walk(const char *data, size_t len, xml_walk_fn fn, void *ctx, struct err *e);

/* The text of the first element whose path ends in suffix ("/Code" matches "Error/Code"), or
 * NULL; caller frees. For small answers, where walking once per field costs nothing. */
char *xml_find(const char *data, size_t len, const char *suffix);

#endif
