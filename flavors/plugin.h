/* Flavor plugins: executables speaking the JSON protocol of docs/plugins.md, one invocation per
 * operation, behind struct flavor_ops like a built-in flavor. The plugin to run travels in the
 * settings: plugin_flavor_find resolves it and replaces settings.plugin with
 * {"name", "path", "setting"}, which is what the ops read (and what submission.json records). */
#ifndef STEPOP_PLUGIN_H
#define STEPOP_PLUGIN_H

#include "config.h"
#include "flavor.h"

#include "../runtime/subproc.h"

enum plugin_op { PLUGIN_VALIDATE, PLUGIN_RENDER, PLUGIN_SUBMIT, PLUGIN_POLL, PLUGIN_CANCEL, PLUGIN_CLEANUP,
                 PLUGIN_OP_COUNT };

extern const struct flavor_ops flavor_plugin_ops;

const char *plugin_op_name(enum plugin_op op);

/* The flavor called name for a run: a built-in one, else a plugin (`custom` with the plugin
 * setting, or stepop-flavor-NAME on PATH), its resolution written into settings.plugin.
 * reattach: settings come from a submission.json; a plugin setting is then honoured only when
 * operator_name is configured in cfg with that same setting (the store does not pick programs). */
const struct flavor_ops *plugin_flavor_find(const char *name, cJSON *settings, const struct config *cfg,
                                            const char *operator_name, int reattach, struct err *e);

/* stepop-flavor-NAME on PATH (the first executable regular file), or NULL; caller frees. */
char *plugin_lookup(const char *name);
/* Calls fn for each stepop-flavor-NAME on PATH, first one per name, names of built-ins skipped. */
void plugin_each(void (*fn)(const char *name, const char *path, void *arg), void *arg);

/* The operation's timeout from settings.plugin_timeout (seconds, or an object by operation). */
int plugin_timeout_ms(const cJSON *settings, enum plugin_op op, int64_t *ms, struct err *e);
/* The request for op (docs/plugins.md#requests); j for validate/render/submit, handle for the
 * others. Caller frees. */
cJSON *plugin_request(enum plugin_op op, const char *name, const cJSON *settings, const struct job *j,
                      const cJSON *handle, int64_t grace_ms, const char *stepop);
/* Judges what the plugin printed and how it exited: *answer (caller frees) is a JSON object
 * that is not an error answer and follows op's schema; else -1 with e naming who (e.g.
 * "plugin slurm (/usr/bin/stepop-flavor-slurm), operation poll"). */
int plugin_parse_answer(const char *who, enum plugin_op op, const struct subproc_result *r, cJSON **answer,
                        struct err *e);
/* A poll answer's state. */
int plugin_parse_state(const char *who, const cJSON *answer, struct remote_state *st, struct err *e);

#endif
