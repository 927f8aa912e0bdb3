/* `stepop completion bash|zsh|fish`: a completion script generated from the command table
 * (main.c), the commands' option tables (cmdopts.h) and the flavor registry; and the helper
 * form `stepop completion --list WHAT` that the scripts and tools/man.sh call back. Declared
 * here for main.c, like commands.h; implemented in flavors/completion.c, which reads the config,
 * the store and the flavor registry. */
#ifndef STEPOP_COMPLETION_H
#define STEPOP_COMPLETION_H

#include <stddef.h>

struct completion_command {
    const char *name;
    const char *summary;
};

/* argv[0] is "completion"; cmds is main.c's command table, in its order. */
int completion_main(int argc, char **argv, const struct completion_command *cmds, size_t n);

#endif
