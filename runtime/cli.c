#include "cli.h"

#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cli_init(struct cli *c, const char *command, const struct cli_option *options, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->command = command;
    c->options = options;
    c->argc = argc;
    c->argv = argv;
    c->pos = xcalloc((size_t)argc + 1, sizeof *c->pos);
}

void cli_free(struct cli *c)
{
    free(c->pos);
    c->pos = NULL;
}

int cli_next(struct cli *c, const char **value, struct err *e)
{
    *value = NULL;
    while (c->next < c->argc) {
        char *arg = c->argv[c->next++];
        if (strcmp(arg, "--") == 0) {
            c->saw_dashdash = 1;
            c->rest = c->argv + c->next;
            c->rest_count = c->argc - c->next;
            c->next = c->argc;
            return 0;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            c->pos[c->pos_count++] = arg;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return CLI_HELP;
        const struct cli_option *found = NULL;
        const char *inline_value = NULL;
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            for (const struct cli_option *o = c->options; o && o->name; o++)
                if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
                    found = o;
            if (found && eq)
                inline_value = eq + 1;
        } else if (arg[2] == '\0') {
            for (const struct cli_option *o = c->options; o && o->name; o++)
                if (o->short_name && o->short_name == arg[1])
                    found = o;
        }
        if (!found)
            return err_set(e, ERR_USAGE, "%s: unknown option %s (see 'stepop %s --help')", c->command, arg,
                           c->command);
        if (!found->takes_value) {
            if (inline_value)
                return err_set(e, ERR_USAGE, "%s: option --%s takes no value", c->command, found->name);
            return found->id;
        }
        if (inline_value) {
            *value = inline_value;
        } else {
            if (c->next >= c->argc)
                return err_set(e, ERR_USAGE, "%s: option --%s needs a value", c->command, found->name);
            *value = c->argv[c->next++];
        }
        return found->id;
    }
    return 0;
}

int cli_int(const char *opt, const char *value, long min, long max, long *out, struct err *e)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max)
        return err_set(e, ERR_USAGE, "--%s: expected a whole number from %ld to %ld, got \"%s\"", opt, min, max,
                       value);
    *out = v;
    return 0;
}
