#include "../runtime/completion.h"
#include "config.h"
#include "flavor.h"

#include "../artifacts/store.h"
#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/exitcodes.h"
#include "../runtime/log.h"
#include "../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a command's positional arguments are, for the scripts. */
enum arg_kind {
    ARG_FILES,    /* paths: the shell's own file completion */
    ARG_NONE,
    ARG_RUN,      /* a run id of the configured store */
    ARG_OPERATOR, /* after the subcommand: an operator name (operator describe) */
    ARG_COMMAND,  /* a command name (help) */
    ARG_SHELL,    /* bash, zsh or fish (completion) */
};

/* flavor and operator take only --json, which they match by hand. */
static const struct cli_option json_only[] = { { "json", 0, 0, 1 }, { 0 } };
static const struct cli_option *const json_only_options = json_only;

struct command_info {
    const char *name;
    const struct cli_option *const *options; /* NULL: none */
    const char *subcommands;                 /* space-separated, or NULL */
    enum arg_kind arg;
};

/* Commands missing here (a new one) still complete by name and get --help in their man page. */
static const struct command_info infos[] = {
    { "submit", &submit_cli_options, NULL, ARG_FILES },
    { "status", &status_cli_options, NULL, ARG_RUN },
    { "logs", &logs_cli_options, NULL, ARG_RUN },
    { "cancel", &cancel_cli_options, NULL, ARG_RUN },
    { "flavor", &json_only_options, "list", ARG_NONE },
    { "operator", &json_only_options, "list describe", ARG_OPERATOR },
    { "run", &run_cli_options, NULL, ARG_NONE },
    { "install", &install_cli_options, NULL, ARG_FILES },
    { "artifact", &artifact_cli_options, "put get stat ls rm presign", ARG_FILES },
    { "gpu", &gpu_cli_options, "check smoke", ARG_NONE },
    { "version", &version_cli_options, NULL, ARG_NONE },
    { "doctor", &doctor_cli_options, NULL, ARG_NONE },
    { "help", NULL, NULL, ARG_COMMAND },
    { "completion", NULL, NULL, ARG_SHELL },
};

static const char usage_text[] =
    "usage: stepop completion bash|zsh|fish\n"
    "\n"
    "Prints a completion script for the shell: commands, options, flavors, subcommands; operator\n"
    "names from the configuration and run ids from a file store, asked of stepop when completing.\n"
    "  bash   source <(stepop completion bash), or install as .../bash-completion/completions/stepop\n"
    "  zsh    stepop completion zsh > DIR/_stepop with DIR on $fpath (before compinit)\n"
    "  fish   stepop completion fish | source, or install as .../fish/vendor_completions.d/stepop.fish\n"
    "\n"
    "For the scripts and tools/man.sh: stepop completion --list WHAT prints, one per line, WHAT:\n"
    "commands (NAME<tab>SUMMARY), options CMD (--NAME, '=' when it takes a value, <tab>-X for a short\n"
    "form), subcommands CMD, flavors, operators (names only), runs (run ids of the configured store\n"
    "when it is a file:// store; other stores are not listed, to stay fast and offline).\n"
    "Exit codes: 0 ok, 2 usage.\n";

static const struct command_info *info_for(const char *name)
{
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++)
        if (strcmp(infos[i].name, name) == 0)
            return &infos[i];
    return NULL;
}

static const struct cli_option *options_for(const char *name)
{
    const struct command_info *ci = info_for(name);
    return ci && ci->options ? *ci->options : NULL;
}

/* Prints s in single quotes for sh/bash/zsh. */
static void put_sh_quoted(FILE *out, const char *s)
{
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", out);
        else
            fputc(*s, out);
    }
    fputc('\'', out);
}

/* Prints s in single quotes for fish, where \ and ' are escaped inside them. */
static void put_fish_quoted(FILE *out, const char *s)
{
    fputc('\'', out);
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('\'', out);
}

/* The long options of name, space-separated; takes_value 1: those taking a value, short forms
 * too, '|'-separated (a case pattern); -1: all. */
static void put_options(FILE *out, const char *name, int takes_value)
{
    const char *sep = "";
    for (const struct cli_option *o = options_for(name); o && o->name; o++) {
        if (takes_value >= 0 && !!o->takes_value != takes_value)
            continue;
        fprintf(out, "%s--%s", sep, o->name);
        sep = takes_value == 1 ? "|" : " ";
        /* A value after a short form is the shell's to complete too. */
        if (takes_value == 1 && o->short_name)
            fprintf(out, "|-%c", o->short_name);
    }
}

static void put_flavors(FILE *out)
{
    int n;
    const struct flavor_info *all = flavor_all(&n);
    const char *sep = "";
    for (int i = 0; i < n; i++) {
        if (!all[i].ops)
            continue;
        fprintf(out, "%s%s", sep, all[i].name);
        sep = " ";
    }
}

static void put_commands(FILE *out, const struct completion_command *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? " " : "", cmds[i].name);
}

static void bash_script(FILE *out, const struct completion_command *cmds, size_t n)
{
    fputs("# bash completion for stepop; generated by `stepop completion bash`.\n"
          "_stepop() {\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd at=1 w=\n"
          "    COMPREPLY=()\n"
          "    if [[ ${COMP_WORDS[0]##*/} == stepop-submit ]]; then\n"
          "        cmd=submit at=0\n"
          "    elif (( COMP_CWORD == 1 )); then\n"
          "        COMPREPLY=($(compgen -W '",
          out);
    put_commands(out, cmds, n);
    fputs("' -- \"$cur\"))\n"
          "        return\n"
          "    else\n"
          "        cmd=${COMP_WORDS[1]}\n"
          "    fi\n"
          "    case $prev in\n"
          "    --operator) COMPREPLY=($(compgen -W \"$(stepop completion --list operators 2>/dev/null)\" -- \"$cur\")); return ;;\n"
          "    --flavor) COMPREPLY=($(compgen -W '",
          out);
    put_flavors(out);
    fputs("' -- \"$cur\")); return ;;\n"
          "    esac\n"
          "    case $cmd in\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const struct command_info *ci = info_for(cmds[i].name);
        if (!ci)
            continue;
        fprintf(out, "    %s)\n", ci->name);
        const struct cli_option *o = options_for(ci->name);
        int has_value_opt = 0;
        for (; o && o->name; o++)
            has_value_opt |= o->takes_value;
        if (has_value_opt) {
            fputs("        case $prev in ", out);
            put_options(out, ci->name, 1);
            fputs(") return ;; esac\n", out);
        }
        if (ci->options) {
            fputs("        if [[ $cur == -* ]]; then w='", out);
            put_options(out, ci->name, -1);
            fputs("'\n", out);
        } else {
            fputs("        if false; then :\n", out);
        }
        if (ci->subcommands)
            fprintf(out, "        elif (( COMP_CWORD == at + 1 )); then w='%s'\n", ci->subcommands);
        switch (ci->arg) {
        case ARG_RUN:
            fputs("        else w=$(stepop completion --list runs 2>/dev/null)\n", out);
            break;
        case ARG_OPERATOR:
            fputs("        elif (( COMP_CWORD == at + 2 )) && [[ $prev == describe ]]; then\n"
                  "            w=$(stepop completion --list operators 2>/dev/null)\n",
                  out);
            break;
        case ARG_COMMAND:
            fputs("        else w='", out);
            put_commands(out, cmds, n);
            fputs("'\n", out);
            break;
        case ARG_SHELL:
            fputs("        else w='bash zsh fish'\n", out);
            break;
        case ARG_FILES:
        case ARG_NONE:
            break;
        }
        fputs("        fi ;;\n", out);
    }
    fputs("    esac\n"
          "    [[ -n $w ]] && COMPREPLY=($(compgen -W \"$w\" -- \"$cur\"))\n"
          "    return 0\n"
          "}\n"
          "complete -o default -F _stepop stepop stepop-submit\n",
          out);
}

static void zsh_script(FILE *out, const struct completion_command *cmds, size_t n)
{
    fputs("#compdef stepop stepop-submit\n"
          "# zsh completion for stepop; generated by `stepop completion zsh`.\n"
          "_stepop() {\n"
          "    local cmd at=2 prev=${words[CURRENT-1]}\n"
          "    local -a w\n"
          "    if [[ ${words[1]:t} == stepop-submit ]]; then\n"
          "        cmd=submit at=1\n"
          "    elif (( CURRENT == 2 )); then\n"
          "        w=(",
          out);
    for (size_t i = 0; i < n; i++) {
        char *item = xasprintf("%s:%s", cmds[i].name, cmds[i].summary);
        fputc(' ', out);
        put_sh_quoted(out, item);
        free(item);
    }
    fputs(" )\n"
          "        _describe command w\n"
          "        return\n"
          "    else\n"
          "        cmd=${words[2]}\n"
          "    fi\n"
          "    case $prev in\n"
          "    --operator) w=(${(f)\"$(stepop completion --list operators 2>/dev/null)\"}); compadd -a w; return ;;\n"
          "    --flavor) w=(",
          out);
    put_flavors(out);
    fputs("); compadd -a w; return ;;\n"
          "    esac\n"
          "    case $cmd in\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const struct command_info *ci = info_for(cmds[i].name);
        if (!ci)
            continue;
        fprintf(out, "    %s)\n", ci->name);
        const struct cli_option *o = options_for(ci->name);
        int has_value_opt = 0;
        for (; o && o->name; o++)
            has_value_opt |= o->takes_value;
        if (has_value_opt) {
            fputs("        case $prev in ", out);
            put_options(out, ci->name, 1);
            fputs(") _files; return ;; esac\n", out);
        }
        if (ci->options) {
            fputs("        if [[ $PREFIX == -* ]]; then w=(", out);
            put_options(out, ci->name, -1);
            fputs(")\n", out);
        } else {
            fputs("        if false; then :\n", out);
        }
        if (ci->subcommands)
            fprintf(out, "        elif (( CURRENT == at + 1 )); then w=(%s)\n", ci->subcommands);
        switch (ci->arg) {
        case ARG_RUN:
            fputs("        else w=(${(f)\"$(stepop completion --list runs 2>/dev/null)\"})\n", out);
            break;
        case ARG_OPERATOR:
            fputs("        elif (( CURRENT == at + 2 )) && [[ $prev == describe ]]; then\n"
                  "            w=(${(f)\"$(stepop completion --list operators 2>/dev/null)\"})\n",
                  out);
            break;
        case ARG_COMMAND:
            fputs("        else w=(", out);
            put_commands(out, cmds, n);
            fputs(")\n", out);
            break;
        case ARG_SHELL:
            fputs("        else w=(bash zsh fish)\n", out);
            break;
        case ARG_FILES:
            fputs("        else _files; return\n", out);
            break;
        case ARG_NONE:
            break;
        }
        fputs("        fi ;;\n", out);
    }
    fputs("    esac\n"
          "    (( ${#w} )) && compadd -a w\n"
          "}\n"
          "if [[ ${funcstack[1]} == _stepop ]]; then\n"
          "    _stepop \"$@\"\n"
          "else\n"
          "    compdef _stepop stepop stepop-submit\n"
          "fi\n",
          out);
}

static void fish_script(FILE *out, const struct completion_command *cmds, size_t n)
{
    fputs("# fish completion for stepop; generated by `stepop completion fish`.\n", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "complete -c stepop -f -n __fish_use_subcommand -a %s -d ", cmds[i].name);
        put_fish_quoted(out, cmds[i].summary);
        fputc('\n', out);
    }
    for (size_t i = 0; i < n; i++) {
        const struct command_info *ci = info_for(cmds[i].name);
        if (!ci)
            continue;
        char *cond = xasprintf("__fish_seen_subcommand_from %s", ci->name);
        for (const struct cli_option *o = options_for(ci->name); o && o->name; o++) {
            for (int c = 0; c < 2; c++) {
                /* stepop-submit is submit itself. */
                if (c == 1 && strcmp(ci->name, "submit") != 0)
                    break;
                if (c == 0)
                    fprintf(out, "complete -c stepop -n '%s' -l %s", cond, o->name);
                else
                    fprintf(out, "complete -c stepop-submit -l %s", o->name);
                if (o->short_name)
                    fprintf(out, " -s %c", o->short_name);
                if (strcmp(o->name, "operator") == 0)
                    fputs(" -x -a '(stepop completion --list operators 2>/dev/null)'", out);
                else if (strcmp(o->name, "flavor") == 0) {
                    fputs(" -x -a '", out);
                    put_flavors(out);
                    fputc('\'', out);
                } else if (o->takes_value)
                    fputs(" -r", out);
                fputc('\n', out);
            }
        }
        if (ci->subcommands)
            fprintf(out, "complete -c stepop -f -n '%s; and not __fish_seen_subcommand_from %s' -a '%s'\n", cond,
                    ci->subcommands, ci->subcommands);
        switch (ci->arg) {
        case ARG_RUN:
            fprintf(out, "complete -c stepop -f -n '%s' -a '(stepop completion --list runs 2>/dev/null)'\n", cond);
            break;
        case ARG_OPERATOR:
            fprintf(out,
                    "complete -c stepop -f -n '%s; and __fish_seen_subcommand_from describe' "
                    "-a '(stepop completion --list operators 2>/dev/null)'\n",
                    cond);
            break;
        case ARG_COMMAND:
            fprintf(out, "complete -c stepop -f -n '%s' -a '", cond);
            put_commands(out, cmds, n);
            fputs("'\n", out);
            break;
        case ARG_SHELL:
            fprintf(out, "complete -c stepop -f -n '%s' -a 'bash zsh fish'\n", cond);
            break;
        case ARG_FILES:
            fprintf(out, "complete -c stepop -F -n '%s'\n", cond);
            break;
        case ARG_NONE:
            break;
        }
        free(cond);
    }
    fputs("complete -c stepop-submit -F\n", out);
}

static int list_run(void *ctx, const struct store_entry *entry, struct err *e)
{
    (void)ctx;
    (void)e;
    size_t len = strlen(entry->name);
    if (len > 1 && entry->name[len - 1] == '/')
        printf("%.*s\n", (int)(len - 1), entry->name);
    return 0;
}

/* Completion must not hang on the network or prompt: only a file:// store is listed, and
 * nothing is reported (the scripts discard stderr anyway). */
static int list_runs(void)
{
    struct config cfg = { 0 };
    struct err e = { 0 };
    if (config_load(&cfg, &e) < 0)
        return EXIT_OK;
    if (strncmp(cfg.store, "file://", 7) == 0) {
        char *runs = xasprintf("%sruns/", cfg.store);
        struct store *s;
        if (store_open(runs, &s, &e) == 0) {
            store_list(s, runs, list_run, NULL, &e);
            store_close(s);
        }
        free(runs);
    }
    config_free(&cfg);
    return EXIT_OK;
}

static int list_operators(void)
{
    struct config cfg = { 0 };
    struct err e = { 0 };
    if (config_load(&cfg, &e) == 0)
        for (const cJSON *it = cfg.operators->child; it; it = it->next)
            printf("%s\n", it->string);
    config_free(&cfg);
    return EXIT_OK;
}

static int list(int argc, char **argv, const struct completion_command *cmds, size_t n)
{
    const char *what = argv[0];
    const char *cmd = argc > 1 ? argv[1] : NULL;
    int needs_cmd = strcmp(what, "options") == 0 || strcmp(what, "subcommands") == 0;
    if (argc != 1 + needs_cmd) {
        log_error("completion --list: %s", needs_cmd ? "expected a command after it" : "takes one word");
        return EXIT_USAGE;
    }
    if (strcmp(what, "commands") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\t%s\n", cmds[i].name, cmds[i].summary);
    } else if (needs_cmd) {
        size_t i = 0;
        while (i < n && strcmp(cmds[i].name, cmd) != 0)
            i++;
        if (i == n) {
            log_error("completion --list %s: unknown command \"%s\"", what, cmd);
            return EXIT_USAGE;
        }
        const struct command_info *ci = info_for(cmd);
        if (what[0] == 'o') {
            for (const struct cli_option *o = options_for(cmd); o && o->name; o++) {
                printf("--%s%s", o->name, o->takes_value ? "=" : "");
                if (o->short_name)
                    printf("\t-%c", o->short_name);
                putchar('\n');
            }
        } else if (ci && ci->subcommands) {
            for (const char *p = ci->subcommands; *p;) {
                size_t len = strcspn(p, " ");
                printf("%.*s\n", (int)len, p);
                p += len + (p[len] == ' ');
            }
        }
    } else if (strcmp(what, "flavors") == 0) {
        put_flavors(stdout);
        putchar('\n');
    } else if (strcmp(what, "operators") == 0) {
        return list_operators();
    } else if (strcmp(what, "runs") == 0) {
        return list_runs();
    } else {
        log_error("completion --list: unknown list \"%s\" (commands, options, subcommands, flavors, operators, runs)",
                  what);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int completion_main(int argc, char **argv, const struct completion_command *cmds, size_t n)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        if (argc < 3) {
            log_error("completion --list: expected what to list (see 'stepop completion --help')");
            return EXIT_USAGE;
        }
        return list(argc - 2, argv + 2, cmds, n);
    }
    if (argc != 2) {
        log_error("completion: expected one shell: bash, zsh or fish (see 'stepop completion --help')");
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "bash") == 0)
        bash_script(stdout, cmds, n);
    else if (strcmp(argv[1], "zsh") == 0)
        zsh_script(stdout, cmds, n);
    else if (strcmp(argv[1], "fish") == 0)
        fish_script(stdout, cmds, n);
    else {
        log_error("completion: unknown shell \"%s\" (bash, zsh or fish)", argv[1]);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}
