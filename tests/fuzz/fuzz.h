/* Shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, docs/testing.md#fuzzing). */
#ifndef STEPOP_FUZZ_H
#define STEPOP_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string (cut at its first NUL, as a C caller would see it). */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

static char fuzz_tempdir_path[96];

/* nftw callback removing what it is given (FTW_DEPTH: children first). */
static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(path, 0700); /* an extracted directory may lack write or search permission */
    return remove(path) < 0 ? -1 : 0;
}

static inline void fuzz_tempdir_remove(void)
{
    nftw(fuzz_tempdir_path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private directory for targets whose code under test reads files, removed at exit. On tmpfs
 * (/dev/shm) where there is one: on ext4 a file truncated and rewritten is flushed at close, which
 * took half of each execution's time. */
static inline const char *fuzz_tempdir(const char *name)
{
    if (fuzz_tempdir_path[0])
        return fuzz_tempdir_path;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                                                           : "/tmp";
    snprintf(fuzz_tempdir_path, sizeof fuzz_tempdir_path, "%s/stepop-fuzz-%s.XXXXXX", base, name);
    if (!mkdtemp(fuzz_tempdir_path))
        abort();
    atexit(fuzz_tempdir_remove);
    return fuzz_tempdir_path;
}

/* A property the code under test promised and broke: libFuzzer records the input as a crash. */
#define fuzz_assert(cond, ...)                                                                               \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "fuzz_assert failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

#endif
