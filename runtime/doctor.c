/* The checklist of `stepop doctor` and its two renderings (runtime/doctor.h). */
#include "doctor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = { "ok", "fail", "skip" };
static const char *const marks[] = { "\u2714", "\u2718", "\u2013" };

void doctor_init(struct doctor *d)
{
    d->checks = cJSON_CreateArray();
    d->failed = 0;
}

void doctor_free(struct doctor *d)
{
    cJSON_Delete(d->checks);
    d->checks = NULL;
}

void doctor_add(struct doctor *d, enum doctor_mark mark, const char *name, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* One line per check, whatever a server put in its message. */
    for (char *p = detail; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "check", name);
    cJSON_AddStringToObject(c, "status", status_names[mark]);
    cJSON_AddStringToObject(c, "detail", detail);
    cJSON_AddItemToArray(d->checks, c);
    if (mark == DOCTOR_FAIL)
        d->failed++;
}

void doctor_print(const struct doctor *d, int json)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", d->failed == 0);
        cJSON_AddItemToObject(o, "checks", cJSON_Duplicate(d->checks, 1));
        char *s = cJSON_Print(o);
        if (s)
            printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
        return;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, d->checks)
    {
        const char *st = cJSON_GetObjectItemCaseSensitive(c, "status")->valuestring;
        int m = strcmp(st, "ok") == 0 ? 0 : strcmp(st, "fail") == 0 ? 1 : 2;
        printf("%s %s: %s\n", marks[m], cJSON_GetObjectItemCaseSensitive(c, "check")->valuestring,
               cJSON_GetObjectItemCaseSensitive(c, "detail")->valuestring);
    }
    fflush(stdout);
}
