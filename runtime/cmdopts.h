/* Each command's option table, exported for `stepop completion` and the man page generator
 * (tools/man.sh) so that both read the tables the commands parse with. A command without an
 * entry in completion.c's registry still gets its name, summary and --help text. */
#ifndef STEPOP_CMDOPTS_H
#define STEPOP_CMDOPTS_H

#include "cli.h"

extern const struct cli_option *const submit_cli_options;
extern const struct cli_option *const status_cli_options;
extern const struct cli_option *const logs_cli_options;
extern const struct cli_option *const cancel_cli_options;
extern const struct cli_option *const run_cli_options;
extern const struct cli_option *const install_cli_options;
extern const struct cli_option *const artifact_cli_options;
extern const struct cli_option *const gpu_cli_options;
extern const struct cli_option *const version_cli_options;
extern const struct cli_option *const doctor_cli_options;

#endif
