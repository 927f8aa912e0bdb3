/* CPUs a process may use: cgroup quotas read from fake trees (v2, v1, nested, hybrid, host views),
 * the affinity mask, and the compression pools sized from them. */
#include "../../artifacts/pgzip.h"
#include "../../artifacts/zstdw.h"
#include "../../runtime/cpus.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/stepop-test-cpus.XXXXXX";
static int tree_n;

/* Creates parent directories as needed. */
static void put(const char *root, const char *rel, const char *text)
{
    char *path = xasprintf("%s%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(path);
}

/* A fresh fake root with /proc/self/cgroup and /proc/self/mountinfo. */
static char *tree(const char *cgroup, const char *mountinfo)
{
    char *root = xasprintf("%s/t%d", base, ++tree_n);
    mkdir(root, 0755);
    put(root, "/proc/self/cgroup", cgroup);
    put(root, "/proc/self/mountinfo", mountinfo);
    return root;
}

#define V2_MOUNT "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
#define ROOT_MOUNT "24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"

static void v2(void)
{
    char *r = tree("0::/\n", ROOT_MOUNT V2_MOUNT);
    put(r, "/sys/fs/cgroup/cpu.max", "150000 100000\n");
    is_int(cpus_quota_at(r), 2, "v2, own namespace: 1.5 CPUs round up to 2");
    free(r);

    r = tree("0::/\n", V2_MOUNT);
    put(r, "/sys/fs/cgroup/cpu.max", "max 100000\n");
    is_int(cpus_quota_at(r), 0, "v2 cpu.max 'max': no quota");
    free(r);

    r = tree("0::/\n", V2_MOUNT);
    put(r, "/sys/fs/cgroup/cpu.max", "50000 100000\n");
    is_int(cpus_quota_at(r), 1, "v2 half a CPU counts as 1");
    free(r);

    /* A pod's limit on the parent binds the container below it, which has none of its own. */
    r = tree("0::/kubepods/pod1/c1\n", ROOT_MOUNT V2_MOUNT);
    put(r, "/sys/fs/cgroup/cpu.max", "max 100000\n");
    put(r, "/sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n");
    put(r, "/sys/fs/cgroup/kubepods/pod1/cpu.max", "300000 100000\n");
    put(r, "/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "max 100000\n");
    is_int(cpus_quota_at(r), 3, "v2 nested: the tightest ancestor's quota (3 of 8, 3, none)");
    free(r);

    r = tree("0::/a/b\n", V2_MOUNT);
    put(r, "/sys/fs/cgroup/a/cpu.max", "400000 100000\n");
    put(r, "/sys/fs/cgroup/a/b/cpu.max", "100000 50000\n");
    is_int(cpus_quota_at(r), 2, "v2 nested: a child's tighter quota with another period wins");
    free(r);

    /* Without a cgroup namespace the mount's root is our cgroup, as /proc/self/cgroup names it. */
    r = tree("0::/system.slice/docker-abc.scope\n",
             "35 24 0:30 /system.slice/docker-abc.scope /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/cgroup/cpu.max", "200000 100000\n");
    is_int(cpus_quota_at(r), 2, "v2, the mount's root is our cgroup");
    free(r);

    r = tree("0::/elsewhere\n", "35 24 0:30 /system.slice/other /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/cgroup/cpu.max", "100000 100000\n");
    is_int(cpus_quota_at(r), 0, "a mount showing another part of the tree is not ours");
    free(r);

    r = tree("0::/../other\n", V2_MOUNT);
    put(r, "/sys/fs/other/cpu.max", "100000 100000\n");
    put(r, "/sys/fs/cgroup/cpu.max", "200000 100000\n");
    is_int(cpus_quota_at(r), 0, "a cgroup outside our namespace's root (/..) is not looked for");
    free(r);

    r = tree("0::/\n", "35 24 0:30 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/my cgroup/cpu.max", "300000 100000\n");
    is_int(cpus_quota_at(r), 3, "a mount point with a space (\\040 in mountinfo)");
    free(r);

    r = tree("0::/\n", "35 24 0:30 / /sys/fs/cgroup rw shared:9 master:2 - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/cgroup/cpu.max", "700000 100000\n");
    is_int(cpus_quota_at(r), 7, "several optional fields before the separator");
    free(r);
}

static void v1(void)
{
    const char *mounts = ROOT_MOUNT
        "30 24 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
    char *r = tree("12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n", mounts);
    put(r, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    put(r, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put(r, "/sys/fs/cgroup/memory/cpu.cfs_quota_us", "100000\n");
    put(r, "/sys/fs/cgroup/memory/cpu.cfs_period_us", "100000\n");
    is_int(cpus_quota_at(r), 3, "v1: 2.5 CPUs under the cpu controller's mount round up to 3 (not the memory one's)");
    free(r);

    r = tree("3:cpu,cpuacct:/docker/abc\n", mounts);
    put(r, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put(r, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    is_int(cpus_quota_at(r), 0, "v1 quota -1: none");
    free(r);

    /* cpuacct alone is not the cpu controller; name=cpu is no controller at all */
    r = tree("2:cpuacct:/\n1:name=cpu:/\n",
             "31 30 0:28 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n"
             "32 30 0:29 / /sys/fs/cgroup/named rw - cgroup cgroup rw,name=cpu\n");
    put(r, "/sys/fs/cgroup/cpuacct/cpu.cfs_quota_us", "100000\n");
    put(r, "/sys/fs/cgroup/cpuacct/cpu.cfs_period_us", "100000\n");
    put(r, "/sys/fs/cgroup/named/cpu.cfs_quota_us", "100000\n");
    put(r, "/sys/fs/cgroup/named/cpu.cfs_period_us", "100000\n");
    is_int(cpus_quota_at(r), 0, "only the cpu controller's hierarchy counts");
    free(r);

    r = tree("3:cpu:/batch/job\n", "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
    put(r, "/sys/fs/cgroup/cpu/batch/cpu.cfs_quota_us", "400000\n");
    put(r, "/sys/fs/cgroup/cpu/batch/cpu.cfs_period_us", "100000\n");
    put(r, "/sys/fs/cgroup/cpu/batch/job/cpu.cfs_quota_us", "-1\n");
    put(r, "/sys/fs/cgroup/cpu/batch/job/cpu.cfs_period_us", "100000\n");
    is_int(cpus_quota_at(r), 4, "v1 nested: the parent's quota binds");
    free(r);

    /* Hybrid: v1 controllers and an empty v2 hierarchy, as systemd mounts them. */
    r = tree("3:cpu,cpuacct:/\n0::/\n",
             "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
             "33 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "600000\n");
    put(r, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put(r, "/sys/fs/cgroup/unified/cgroup.procs", "1\n");
    is_int(cpus_quota_at(r), 6, "hybrid: v1's quota, v2 without cpu.max adds nothing");
    free(r);
}

static void missing(void)
{
    char *r = xasprintf("%s/empty", base);
    mkdir(r, 0755);
    is_int(cpus_quota_at(r), 0, "no /proc files: no quota");
    free(r);
    r = tree("0::/\n", ROOT_MOUNT);
    is_int(cpus_quota_at(r), 0, "no cgroup mounted: no quota");
    free(r);
    r = tree("0::/\n", V2_MOUNT);
    put(r, "/sys/fs/cgroup/cpu.max", "garbage\n");
    is_int(cpus_quota_at(r), 0, "an unreadable cpu.max: no quota");
    free(r);
}

static int threads_now(void)
{
    char *text = NULL;
    size_t len;
    int n = -1;
    if (read_small_file("/proc/self/status", 1 << 16, &text, &len) == 0) {
        const char *t = strstr(text, "\nThreads:");
        if (t)
            n = atoi(t + 9);
    }
    free(text);
    return n;
}

static int sink(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)ctx, (void)data, (void)n, (void)e;
    return 0;
}

static void affinity(void)
{
    int q = cpus_quota_at("");
    int usable = cpus_usable();
    cpu_set_t set;
    ok(sched_getaffinity(0, sizeof set, &set) == 0, "sched_getaffinity");
    int mask = CPU_COUNT(&set);
    ok(usable >= 1 && usable <= mask && (q == 0 || usable <= q), "cpus_usable() = %d: within the mask (%d) and quota (%d)",
       usable, mask, q);

    /* One CPU allowed: one compression worker, whatever the machine has online. */
    CPU_ZERO(&set);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) {
        ok(1, "# SKIP cannot narrow the affinity mask: %s", strerror(errno));
        return;
    }
    is_int(cpus_usable(), 1, "an affinity mask of one CPU gives 1");
    int before = threads_now();
    struct pgzip *z = pgzip_new(1, 0, sink, NULL);
    is_int(threads_now() - before, 1, "pgzip with threads 0 starts one worker under that mask");
    struct err e = { 0 };
    pgzip_finish(z, &e);
    pgzip_free(z);

    struct zstdw *w = zstdw_new(1, 0, sink, NULL, &e);
    unsigned char *data = xcalloc(1, 4 << 20);
    ok(w && zstdw_write(w, data, 4 << 20, &e) == 0, "zstd compresses under that mask");
    int extra = threads_now() - before;
    ok(extra <= 1, "zstd with threads 0 runs at most one worker thread (%d)", extra);
    if (w) {
        zstdw_finish(w, &e);
        zstdw_free(w);
    }
    free(data);
}

int main(void)
{
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    v2();
    v1();
    missing();
    affinity();
    char *cmd = xasprintf("rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    free(cmd);
    return tap_done();
}
