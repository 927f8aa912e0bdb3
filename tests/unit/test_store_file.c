/* The file store's durability order (artifacts/store_file.c): each object's part file is fsynced
 * before its rename; the directory of a rename is fsynced before the same store's next rename,
 * or at store_close. fsync is replaced here to record what it was asked to sync, and whether the
 * next object was already in place at that moment. */
#include "../../artifacts/store.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SYNCS 16

static char synced[MAX_SYNCS][PATH_MAX];
static int second_in_place[MAX_SYNCS]; /* b/two.txt existed when synced[i] was fsynced */
static int nsynced;
static char second_path[PATH_MAX];

int fsync(int fd)
{
    if (nsynced < MAX_SYNCS) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, synced[nsynced], PATH_MAX - 1);
        synced[nsynced][n > 0 ? n : 0] = '\0';
        second_in_place[nsynced] = second_path[0] && access(second_path, F_OK) == 0;
        nsynced++;
    }
    return (int)syscall(SYS_fsync, fd);
}

static int put(struct store *s, const char *uri, const char *text)
{
    struct err e = { 0 };
    int rc = store_put_small(s, uri, text, strlen(text), &e);
    if (rc < 0)
        printf("# %s: %s\n", uri, e.msg);
    return rc;
}

static int holds(const char *path, const char *want)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, want) == 0;
}

int main(void)
{
    char root[] = "/tmp/stepop-store-file-XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char *base = xasprintf("file://%s/", root);
    char *one = xasprintf("file://%s/a/one.txt", root), *two = xasprintf("file://%s/b/two.txt", root);
    char *dir_a = xasprintf("%s/a", root), *dir_b = xasprintf("%s/b", root);
    snprintf(second_path, sizeof second_path, "%s/b/two.txt", root);

    struct store *s;
    struct err e = { 0 };
    ok(store_open(base, &s, &e) == 0, "open the store");
    ok(put(s, one, "1") == 0, "put a/one.txt");
    is_int(nsynced, 1, "one fsync: the part file; the directory waits");
    ok(strstr(synced[0], "/a/..stepop-part-one.txt.") != NULL, "it was one.txt's part file (%s)", synced[0]);

    ok(put(s, two, "2") == 0, "put b/two.txt");
    is_int(nsynced, 3, "two more: two.txt's part file, then a/");
    ok(strstr(synced[1], "/b/..stepop-part-two.txt.") != NULL, "two.txt's part file first (%s)", synced[1]);
    is_str(synced[2], dir_a, "then one.txt's directory");
    ok(!second_in_place[2], "a/ was fsynced before two.txt was renamed into place");

    ok(put(s, one, "3") == 0, "put a/one.txt again");
    is_int(nsynced, 5, "its part file, then b/");
    is_str(synced[4], dir_b, "b/ synced before the next rename");

    store_close(s);
    is_int(nsynced, 6, "store_close syncs the last directory");
    is_str(synced[5], dir_a, "which is a/");

    char *p1 = xasprintf("%s/a/one.txt", root);
    ok(holds(p1, "3"), "a/one.txt holds the last put");
    ok(holds(second_path, "2"), "b/two.txt holds its put");
    char *cmd = xasprintf("ls -A '%s/a' '%s/b' | grep -c stepop-part", root, root);
    FILE *ls = popen(cmd, "r");
    int parts = -1;
    if (ls) {
        if (fscanf(ls, "%d", &parts) != 1)
            parts = -1;
        pclose(ls);
    }
    is_int(parts, 0, "no part file is left");

    ok(store_open(base, &s, &e) == 0, "a store that stores nothing");
    int before = nsynced;
    store_close(s);
    is_int(nsynced, before, "syncs nothing at close");

    char *rm = xasprintf("rm -rf '%s'", root);
    if (system(rm) != 0)
        printf("# could not remove %s\n", root);
    free(rm);
    free(cmd);
    free(p1);
    free(base);
    free(one);
    free(two);
    free(dir_a);
    free(dir_b);
    return tap_done();
}
