#include "jsonutil.h"

#include "util.h"

#include <errno.h>
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
    return r;
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
