/* The memory cgroup's OOM-kill counter: cgroup v2 memory.events "oom_kill", cgroup v1
 * memory.oom_control "oom_kill" (kernel 4.13+). */
#ifndef STEPOP_OOM_H
#define STEPOP_OOM_H

#include <stdint.h>

/* The counter of the cgroup this process is in, or -1 when it cannot be read. */
int64_t oom_kill_count(void);

#endif
