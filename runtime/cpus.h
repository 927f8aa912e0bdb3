/* How many CPUs this process may really use, for sizing worker pools: a container's 2 CPUs on a
 * 192-CPU node must not start 192 threads. */
#ifndef STEPOP_CPUS_H
#define STEPOP_CPUS_H

/* The CPUs in this process's affinity mask (any mask size), lowered to the cgroup CPU quota of
 * its own cgroup and each ancestor (cgroup v2 cpu.max; v1 cpu.cfs_quota_us / cpu.cfs_period_us
 * under the cpu controller's mount), a fraction rounded up; at least 1. */
int cpus_usable(void);

/* The quota part, reading /proc/self/cgroup, /proc/self/mountinfo and the cgroup files under
 * root ("" for the real system; tests pass a directory holding fake ones): the tightest quota in
 * CPUs rounded up, 0 when none applies or nothing can be read. */
int cpus_quota_at(const char *root);

#endif
