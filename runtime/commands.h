/* The top-level commands; each lives in the room of its concern. argv[0] is the command name. */
#ifndef STEPOP_COMMANDS_H
#define STEPOP_COMMANDS_H

int cmd_artifact(int argc, char **argv);
int cmd_gpu(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_flavor(int argc, char **argv);
int cmd_operator(int argc, char **argv);

/* stepop doctor (flavors/doctor_cmd.c) */
int cmd_doctor(int argc, char **argv);

#endif
