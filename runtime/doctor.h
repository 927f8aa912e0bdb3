/* `stepop doctor`'s checklist: each check is one line, passed (✔), failed (✘) or not applicable
 * (–), with a one-line detail that, on failure, says what to do. Stores and flavors add their
 * own checks through the optional doctor hooks of their vtables (artifacts/store.h,
 * flavors/flavor.h); the command itself is flavors/doctor_cmd.c. A detail never holds a secret:
 * callers pass names, sources and identities only. */
#ifndef STEPOP_DOCTOR_H
#define STEPOP_DOCTOR_H

#include <cjson/cJSON.h>

enum doctor_mark { DOCTOR_OK = 0, DOCTOR_FAIL, DOCTOR_SKIP };

struct doctor {
    cJSON *checks; /* array of {"check", "status", "detail"}, in the order added */
    int failed;    /* checks marked DOCTOR_FAIL */
};

void doctor_init(struct doctor *d);
void doctor_free(struct doctor *d);
/* Adds a check: name is short ("store writable"), detail one line (newlines become spaces). */
void doctor_add(struct doctor *d, enum doctor_mark mark, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prints the checklist: "✔ name: detail" lines, or with json the object
 * {"ok": bool, "checks": [{"check", "status": "ok"|"fail"|"skip", "detail"}]}. */
void doctor_print(const struct doctor *d, int json);

#endif
