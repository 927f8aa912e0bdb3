/* cJSON helpers shared by the manifest, status, config and API clients. */
#ifndef STEPOP_JSONUTIL_H
#define STEPOP_JSONUTIL_H

#include "err.h"

#include <cjson/cJSON.h>
#include <stddef.h>

char *json_log_line(const char *ts, const char *level, const char *msg);
/* Parses text; errors carry the byte offset of the syntax error. */
int json_parse(const char *text, size_t len, const char *what, cJSON **out, struct err *e);
/* Reads and parses a file, refusing duplicate keys (json_check_unique_keys). */
int json_read_file(const char *path, cJSON **out, struct err *e);
/* Refuses an object, at any depth, that holds the same key twice: cJSON keeps both and every
 * lookup sees only the first, so the second value would be ignored without a word. The error
 * names the key by its path: "inputs[1].name: duplicate field". */
int json_check_unique_keys(const cJSON *root, struct err *e);
/* The string member, or NULL when absent or not a string. */
const char *json_str(const cJSON *obj, const char *key);
/* Prints compact (pretty = 0) or indented; never NULL (aborts on allocation failure). */
char *json_print(const cJSON *item, int pretty);
/* Adds a string member, or null when value is NULL. */
void json_add_str(cJSON *obj, const char *key, const char *value);
/* cJSON_Delete after wiping every string and key in the tree (documents holding credentials). */
void json_delete_wiped(cJSON *item);

#endif
