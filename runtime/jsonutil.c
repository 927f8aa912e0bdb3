#include "jsonutil.h"

#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *json_log_line(const char *ts, const char *level, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "source", "stepop");
    cJSON_AddStringToObject(o, "msg", msg);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int json_parse(const char *text, size_t len, const char *what, cJSON **out, struct err *e)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off && i < len; i++)
            if (text[i] == '\n')
                line++;
        return err_set(e, ERR_INVALID, "%s: invalid JSON near line %zu (byte %zu)", what, line, off);
    }
    *out = root;
    return 0;
}

int json_read_file(const char *path, cJSON **out, struct err *e)
{
    char *text;
    size_t len;
    if (read_small_file(path, 64u << 20, &text, &len) < 0) {
        if (errno == ENOENT)
            return err_set(e, ERR_NOT_FOUND, "%s: no such file", path);
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    }
    int r = json_parse(text, len, path, out, e);
    free(text);
    if (r == 0 && json_check_unique_keys(*out, e) < 0) {
        cJSON_Delete(*out);
        *out = NULL;
        return err_prefix(e, "%s: ", path);
    }
    return r;
}

static int by_key(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* path holds the node's own path (len characters, at most cap - 1). */
static int unique_keys(const cJSON *node, char *path, size_t len, size_t cap, struct err *e)
{
    int object = cJSON_IsObject(node);
    size_t n = 0;
    for (const cJSON *it = node->child; it; it = it->next)
        n++;
    if (object && n > 1) {
        /* Sorted, not compared pairwise: an object with a million keys must not take a million squared steps. */
        const cJSON **keys = xcalloc(n, sizeof *keys);
        size_t i = 0;
        for (const cJSON *it = node->child; it; it = it->next)
            keys[i++] = it;
        qsort(keys, n, sizeof *keys, by_key);
        const char *dup = NULL;
        for (i = 1; i < n && !dup; i++)
            if (by_key(&keys[i - 1], &keys[i]) == 0)
                dup = keys[i]->string ? keys[i]->string : "";
        free(keys);
        if (dup)
            return err_set(e, ERR_INVALID, "%s%s%s: duplicate field (given more than once)", path, len ? "." : "", dup);
    }
    size_t i = 0;
    for (const cJSON *it = node->child; it; it = it->next, i++) {
        if (!cJSON_IsObject(it) && !cJSON_IsArray(it))
            continue;
        int w = object ? snprintf(path + len, cap - len, "%s%s", len ? "." : "", it->string ? it->string : "")
                       : snprintf(path + len, cap - len, "[%zu]", i);
        size_t sub = w < 0 || (size_t)w >= cap - len ? cap - 1 : len + (size_t)w;
        int rc = unique_keys(it, path, sub, cap, e);
        path[len] = '\0';
        if (rc < 0)
            return -1;
    }
    return 0;
}

int json_check_unique_keys(const cJSON *root, struct err *e)
{
    char path[512] = "";
    return unique_keys(root, path, 0, sizeof path, e);
}

const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *json_print(const cJSON *item, int pretty)
{
    char *s = pretty ? cJSON_Print(item) : cJSON_PrintUnformatted(item);
    if (!s)
        abort();
    return s;
}

void json_add_str(cJSON *obj, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
}

static void wipe_tree(cJSON *item)
{
    for (; item; item = item->next) {
        if (item->valuestring)
            OPENSSL_cleanse(item->valuestring, strlen(item->valuestring));
        if (item->string)
            OPENSSL_cleanse(item->string, strlen(item->string));
        wipe_tree(item->child);
    }
}

void json_delete_wiped(cJSON *item)
{
    wipe_tree(item);
    cJSON_Delete(item);
}
