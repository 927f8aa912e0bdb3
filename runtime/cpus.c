#include "cpus.h"

#include "util.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Nodes with thousands of mounts (Kubernetes) have mountinfo files of a few hundred KiB. */
#define MOUNTINFO_MAX (8u << 20)
#define SMALL_MAX (64u << 10)

static int list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && memcmp(p, item, n) == 0)
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* The path of our cgroup in the v2 hierarchy (controller NULL) or in the v1 hierarchy holding
 * controller, from /proc/self/cgroup ("ID:controllers:path" lines); NULL when absent. */
static char *own_cgroup(const char *text, const char *controller)
{
    char *copy = xstrdup(text), *save = NULL, *found = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        int v2 = strncmp(line, "0:", 2) == 0 && c1[1] == '\0';
        if (controller ? !v2 && list_has(c1 + 1, controller) : v2)
            found = xstrdup(c2 + 1);
    }
    free(copy);
    return found;
}

/* mountinfo writes space, tab, newline and backslash in paths as \ooo. */
static void unescape(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

/* The quota in CPUs (rounded up) set in one cgroup directory, 0 when unlimited or unreadable. */
static long dir_quota(const char *dir, int v2)
{
    char *path = xasprintf("%s/%s", dir, v2 ? "cpu.max" : "cpu.cfs_quota_us");
    char *text = NULL;
    size_t len;
    long long quota = -1, period = 0;
    if (read_small_file(path, SMALL_MAX, &text, &len) == 0) {
        if (v2) {
            if (sscanf(text, "%lld %lld", &quota, &period) != 2)
                quota = -1; /* "max 100000" */
        } else if (sscanf(text, "%lld", &quota) == 1 && quota > 0) {
            free(text);
            free(path);
            text = NULL;
            path = xasprintf("%s/cpu.cfs_period_us", dir);
            if (read_small_file(path, SMALL_MAX, &text, &len) < 0 || sscanf(text, "%lld", &period) != 1)
                period = 0;
        }
    }
    free(text);
    free(path);
    if (quota <= 0 || period <= 0)
        return 0;
    long long cpus = (quota + period - 1) / period;
    return cpus > 65536 ? 65536 : (long)cpus;
}

/* The tightest quota from our cgroup up to the top of what this mount shows: a limit on a parent
 * (a Kubernetes pod's, a systemd slice's) binds us too. */
static long mount_quota(const char *root, const char *mountpoint, const char *mount_root, const char *cgroup, int v2)
{
    size_t mr = strlen(mount_root);
    const char *rel;
    /* A cgroup outside our cgroup namespace's root shows as "/.."; it is not under this mount. */
    if (strstr(cgroup, "/..") || cgroup[0] != '/')
        return 0;
    if (strcmp(mount_root, "/") == 0)
        rel = cgroup;
    else if (strncmp(cgroup, mount_root, mr) == 0 && (cgroup[mr] == '/' || cgroup[mr] == '\0'))
        rel = cgroup + mr;
    else
        return 0; /* this mount shows another part of the tree, not our cgroup */
    char *dir = xasprintf("%s%s%s", root, strcmp(mountpoint, "/") == 0 ? "" : mountpoint, rel);
    size_t top = strlen(root) + (strcmp(mountpoint, "/") == 0 ? 0 : strlen(mountpoint));
    long best = 0;
    for (;;) {
        size_t n = strlen(dir);
        while (n > top && dir[n - 1] == '/')
            dir[--n] = '\0';
        long q = dir_quota(dir, v2);
        if (q > 0 && (best == 0 || q < best))
            best = q;
        char *slash = strrchr(dir, '/');
        if (n <= top || !slash || (size_t)(slash - dir) < top)
            break;
        *slash = '\0';
    }
    free(dir);
    return best;
}

int cpus_quota_at(const char *root)
{
    char *path = xasprintf("%s/proc/self/cgroup", root);
    char *cgroups = NULL, *mounts = NULL;
    size_t len;
    int have = read_small_file(path, SMALL_MAX, &cgroups, &len) == 0;
    free(path);
    path = xasprintf("%s/proc/self/mountinfo", root);
    have = have && read_small_file(path, MOUNTINFO_MAX, &mounts, &len) == 0;
    free(path);
    long best = 0;
    char *v2_path = have ? own_cgroup(cgroups, NULL) : NULL;
    char *v1_path = have ? own_cgroup(cgroups, "cpu") : NULL;
    char *save = NULL;
    for (char *line = have ? strtok_r(mounts, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
        char *field[6] = { 0 }, *fsave = NULL, *tok;
        int n = 0;
        for (tok = strtok_r(line, " ", &fsave); tok && n < 6; tok = strtok_r(NULL, " ", &fsave))
            field[n++] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " ", &fsave);
        char *fstype = tok ? strtok_r(NULL, " ", &fsave) : NULL;
        char *source = fstype ? strtok_r(NULL, " ", &fsave) : NULL;
        char *super = source ? strtok_r(NULL, " ", &fsave) : NULL;
        if (n < 6 || !super)
            continue;
        unescape(field[3]);
        unescape(field[4]);
        long q = 0;
        if (strcmp(fstype, "cgroup2") == 0 && v2_path)
            q = mount_quota(root, field[4], field[3], v2_path, 1);
        else if (strcmp(fstype, "cgroup") == 0 && v1_path && list_has(super, "cpu"))
            q = mount_quota(root, field[4], field[3], v1_path, 0);
        if (q > 0 && (best == 0 || q < best))
            best = q;
    }
    free(v2_path);
    free(v1_path);
    free(cgroups);
    free(mounts);
    return (int)best;
}

/* The affinity mask's CPUs; the mask may be larger than cpu_set_t's 1024 bits on big machines. */
static int affinity_cpus(void)
{
    for (int bits = 1024; bits <= (1 << 20); bits *= 2) {
        cpu_set_t *set = CPU_ALLOC(bits);
        if (!set)
            break;
        size_t size = CPU_ALLOC_SIZE(bits);
        if (sched_getaffinity(0, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cpus_usable(void)
{
    int n = affinity_cpus();
    int quota = cpus_quota_at("");
    if (quota > 0 && quota < n)
        n = quota;
    return n > 0 ? n : 1;
}
