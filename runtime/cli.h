/* Command-line parsing shared by every command: long options (--name value, --name=value),
 * one-letter aliases, positionals, and "--" ending the options. */
#ifndef STEPOP_CLI_H
#define STEPOP_CLI_H

#include "err.h"

#define CLI_HELP (-2)

struct cli_option {
    const char *name;  /* "format" for --format */
    char short_name;   /* 'f' for -f, or 0 */
    int takes_value;
    int id;            /* returned by cli_next; must be > 0 */
};

struct cli {
    const char *command; /* "artifact put", for messages */
    const struct cli_option *options;
    int argc;
    char **argv;
    int next;
    int pos_count;
    char **pos;          /* positionals, in order (points into argv) */
    int rest_count;      /* arguments after "--" */
    char **rest;
    int saw_dashdash;
};

void cli_init(struct cli *c, const char *command, const struct cli_option *options, int argc, char **argv);
/* Returns the next option's id (value in *value), 0 at the end, CLI_HELP for -h/--help,
 * or -1 with e set (unknown option, missing value). */
int cli_next(struct cli *c, const char **value, struct err *e);
void cli_free(struct cli *c);

/* Parses an integer option value in [min, max]. */
int cli_int(const char *opt, const char *value, long min, long max, long *out, struct err *e);

#endif
