/* The safe-path rules (artifacts/safepath.c): an entry name and a link target (the input split
 * at its first NUL). What safepath_entry accepts is relative, has no "." or ".." component and
 * no empty one; an accepted symlink's target, resolved lexically from the entry's directory,
 * never climbs above the tree. */
#include "../../artifacts/safepath.h"
#include "fuzz.h"

/* Depth of the target resolved from entry's directory; -1 when it climbs out. */
static int resolved_depth(const char *entry, const char *target)
{
    int depth = 0;
    for (const char *p = entry; *p; p++)
        depth += *p == '/';
    const char *p = target;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return -1;
        } else if (n && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    return depth;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    size_t first = strlen(s);
    const char *target = first < size ? s + first + 1 : "";
    char out[256];
    struct err e = { 0 };
    int rc = safepath_entry(s, out, sizeof out, &e);
    if (rc == 0) {
        fuzz_assert(out[0] && out[0] != '/', "entry \"%s\" -> \"%s\"", s, out);
        for (const char *p = out; *p;) {
            size_t n = strcspn(p, "/");
            fuzz_assert(n > 0 && !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.'),
                        "entry \"%s\" -> \"%s\"", s, out);
            p += n;
            if (*p)
                p++;
        }
        if (safepath_symlink(out, target, &e) == 0)
            fuzz_assert(target[0] != '/' && resolved_depth(out, target) >= 0, "link %s -> %s accepted", out, target);
    } else if (rc < 0) {
        fuzz_assert(e.msg[0], "refused without a message");
    }
    free(s);
    return 0;
}
