#include "safepath.h"

#include <string.h>

int safepath_entry(const char *name, char *out, size_t len, struct err *e)
{
    if (!name || !*name)
        return err_set(e, ERR_REFUSED, "entry with an empty name");
    if (name[0] == '/')
        return err_set(e, ERR_REFUSED, "entry \"%s\": absolute path", name);
    size_t w = 0;
    const char *p = name;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            p += n;
            continue;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return err_set(e, ERR_REFUSED, "entry \"%s\": \"..\" component", name);
        if (w + n + 2 > len)
            return err_set(e, ERR_REFUSED, "entry \"%s\": name too long", name);
        if (w)
            out[w++] = '/';
        memcpy(out + w, p, n);
        w += n;
        p += n;
    }
    out[w] = '\0';
    return w == 0 ? 1 : 0;
}

int safepath_symlink(const char *entry, const char *target, struct err *e)
{
    if (!target || !*target)
        return err_set(e, ERR_REFUSED, "symlink \"%s\": empty target", entry);
    if (target[0] == '/')
        return err_set(e, ERR_REFUSED, "symlink \"%s\" -> \"%s\": absolute target leaves the destination", entry,
                       target);
    int depth = 0; /* directories between the destination and the link */
    for (const char *p = entry; *p; p++)
        if (*p == '/')
            depth++;
    int ups = 0, named = 0;
    const char *p = target;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (named)
                return err_set(e, ERR_REFUSED,
                               "symlink \"%s\" -> \"%s\": \"..\" after a named component may leave the destination",
                               entry, target);
            if (++ups > depth)
                return err_set(e, ERR_REFUSED, "symlink \"%s\" -> \"%s\": target leaves the destination", entry,
                               target);
        } else if (!(n == 1 && p[0] == '.')) {
            named = 1;
        }
        p += n;
    }
    return 0;
}
