/* The top-level commands; each lives in the room of its concern. argv[0] is the command name. */
#ifndef STEPOP_COMMANDS_H
#define STEPOP_COMMANDS_H

int cmd_artifact(int argc, char **argv);
int cmd_gpu(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
