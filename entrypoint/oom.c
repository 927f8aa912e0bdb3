#include "oom.h"

#include "../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t read_counter(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    int64_t v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "oom_kill ", 9) == 0)
            v = strtoll(line + 9, NULL, 10);
    fclose(f);
    return v;
}

int64_t oom_kill_count(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[4096], v1[4096] = "", v2[4096] = "";
    int have_v1 = 0, have_v2 = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = '\0';
        const char *controllers = c1 + 1, *path = c2 + 1;
        if (strcmp(line, "0") == 0 && !*controllers) {
            snprintf(v2, sizeof v2, "%s", path);
            have_v2 = 1;
        }
        for (char *tok = strtok((char *)controllers, ","); tok; tok = strtok(NULL, ","))
            if (strcmp(tok, "memory") == 0) {
                snprintf(v1, sizeof v1, "%s", path);
                have_v1 = 1;
            }
    }
    fclose(f);
    /* A v1 memory controller wins: on hybrid hosts the v2 tree has no memory accounting. In a
     * container without a cgroup namespace, /proc/self/cgroup names the host's path while the
     * container's own cgroup is mounted at the top of /sys/fs/cgroup: then the top is read. */
    if (have_v1) {
        char *p = xasprintf("/sys/fs/cgroup/memory%s/memory.oom_control", v1);
        int64_t v = read_counter(p);
        free(p);
        if (v < 0 && strcmp(v1, "/") != 0)
            v = read_counter("/sys/fs/cgroup/memory/memory.oom_control");
        if (v >= 0)
            return v;
    }
    if (have_v2) {
        char *p = xasprintf("/sys/fs/cgroup%s/memory.events", strcmp(v2, "/") == 0 ? "" : v2);
        int64_t v = read_counter(p);
        free(p);
        if (v < 0 && strcmp(v2, "/") != 0)
            v = read_counter("/sys/fs/cgroup/memory.events");
        return v;
    }
    return -1;
}
