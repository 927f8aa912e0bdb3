/* Client configuration, like ZenML's registered step operators: a default store and named
 * operators (a flavor plus its settings). Read from ./stepop.json, else
 * $XDG_CONFIG_HOME/stepop/config.json (default ~/.config/stepop/config.json); a file not owned
 * by the user, or writable by group or others, is ignored with a warning. */
#ifndef STEPOP_CONFIG_H
#define STEPOP_CONFIG_H

#include "../runtime/err.h"

#include <cjson/cJSON.h>
#include <stddef.h>

struct config {
    char *path;          /* the file read, or NULL when there is none */
    char *store;         /* the store root URI, ending in '/' (default: the embedded file store) */
    char *default_operator; /* or NULL */
    cJSON *operators;    /* object: name -> {"flavor", "settings"}; never NULL */
};

int config_load(struct config *c, struct err *e);
/* The configuration file in use (an absolute path), or words saying there is none: for the
 * submit banner and --dry-run. */
const char *config_source(const struct config *c);
/* The files config_load looks for, in order: ./stepop.json (absolute), then the XDG one; caller
 * frees both. */
void config_candidates(char *paths[2]);
/* 0 when path may be used; 1 with why filled when it is absent or ignored (someone else's, or
 * writable by group or others). */
int config_file_distrust(const char *path, char *why, size_t n);
void config_free(struct config *c);
/* The operator called name, or NULL with e set. */
const cJSON *config_operator(const struct config *c, const char *name, struct err *e);
/* file://$XDG_DATA_HOME/stepop/ (default ~/.local/share/stepop/); caller frees. */
char *config_default_store(void);
/* The run prefix for RUN: a URI is taken as is (a '/' added), a run id is <store>runs/<id>/. */
char *config_run_uri(const struct config *c, const char *run);

#endif
