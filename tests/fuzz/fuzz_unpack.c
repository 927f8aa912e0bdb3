/* Tar extraction (artifacts/unpack.c): the input is an archive (tar, or compressed: the filters
 * are detected from the bytes) extracted into a fresh directory inside a private root. Whatever
 * the archive, nothing appears in the root beside the destination, and no crash. */
#include "../../artifacts/unpack.h"
#include "fuzz.h"

#include <dirent.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char root[64], dest[96];

struct once {
    const uint8_t *data;
    size_t size;
    int given;
};

static ssize_t next(void *ctx, const void **data, struct err *e)
{
    (void)e;
    struct once *o = ctx;
    if (o->given)
        return 0;
    o->given = 1;
    *data = o->data;
    return (ssize_t)o->size;
}

static void chmod_dirs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        chmod(dir, 0700);
        d = opendir(dir);
        if (!d)
            return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0700);
            chmod_dirs(p);
        }
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(root, sizeof root, "%s", fuzz_tempdir("unpack"));
    snprintf(dest, sizeof dest, "%s/dest", root);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mkdir(dest, 0700) < 0)
        abort();
    struct once o = { data, size, 0 };
    struct unpack_limits lim = { .max_bytes = 1 << 20, .max_entries = 1000 };
    struct unpack_stats st;
    struct err e = { 0 };
    if (unpack_stream(next, &o, dest, &lim, &st, &e) < 0)
        fuzz_assert(e.msg[0], "failed without a message");
    DIR *d = opendir(root);
    fuzz_assert(d, "root gone");
    struct dirent *de;
    while ((de = readdir(d)))
        fuzz_assert(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "dest"),
                    "\"%s\" written outside the destination", de->d_name);
    closedir(d);
    chmod_dirs(dest);
    fuzz_assert(nftw(dest, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot clean %s", dest);
    return 0;
}
