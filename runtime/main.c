/* CLI dispatch: `stepop <command> ...`; called as `stepop-submit`, it is `stepop submit`. */
#include "commands.h"
#include "completion.h"
#include "exitcodes.h"
#include "log.h"
#include "util.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static int cmd_completion(int argc, char **argv);

static const char help_summary[] = "this text; 'stepop <command> --help' for a command's options";

static const struct command commands[] = {
    { "submit", "launch a step through a flavor and follow it (also: stepop-submit)", cmd_submit },
    { "status", "a run's status (by run id or run URI)", cmd_status },
    { "logs", "a run's shipped output; -f follows it", cmd_logs },
    { "cancel", "stop a submitted run", cmd_cancel },
    { "flavor", "list the flavors (where steps can run)", cmd_flavor },
    { "operator", "list or describe the configured operators", cmd_operator },
    { "run", "the step entrypoint: manifest to final status, as PID 1", cmd_run },
    { "install", "copy this binary to a path (an init container's way into an image)", cmd_install },
    { "artifact", "move artifacts: put, get, stat, ls, rm, presign", cmd_artifact },
    { "gpu", "check GPUs and the CUDA driver: check, smoke", cmd_gpu },
    { "version", "print version, commit and library versions", cmd_version },
    { "doctor", "check the configuration, store, flavor and GPU before a submit", cmd_doctor },
    { "completion", "print a bash, zsh or fish completion script", cmd_completion },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: stepop <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "help", help_summary);
    fprintf(out, "\nDocumentation: README.md and docs/ in the source tree.\n");
}

/* The completion scripts and man pages are generated from this table, help included. */
static int cmd_completion(int argc, char **argv)
{
    enum { N = sizeof commands / sizeof commands[0] };
    struct completion_command cmds[N + 1];
    for (size_t i = 0; i < N; i++)
        cmds[i] = (struct completion_command){ commands[i].name, commands[i].summary };
    cmds[N] = (struct completion_command){ "help", help_summary };
    return completion_main(argc, argv, cmds, N + 1);
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    log_init();
    /* File names are treated as UTF-8 (archives record them so), whatever the image's locale. */
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "");
    const char *self = strrchr(argv[0], '/');
    self = self ? self + 1 : argv[0];
    if (strcmp(self, "stepop-submit") == 0) {
        const struct command *c = find("submit");
        if (!c) {
            log_error("this build has no submit command");
            return EXIT_USAGE;
        }
        argv[0] = (char *)"submit";
        return c->run(argc, argv);
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc > 2 && find(argv[2])) {
            char *help_argv[] = { argv[2], (char *)"--help", NULL };
            return find(argv[2])->run(2, help_argv);
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    const struct command *c = find(argv[1]);
    if (!c) {
        log_error("unknown command \"%s\" (see 'stepop help')", argv[1]);
        return EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
