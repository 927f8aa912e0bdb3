#include "../../artifacts/safepath.h"
#include "tap.h"

static void entry(const char *name, int want_rc, const char *want_norm)
{
    char out[256] = "?";
    struct err e = { 0 };
    int rc = safepath_entry(name, out, sizeof out, &e);
    if (want_rc < 0)
        ok(rc < 0 && e.kind == ERR_REFUSED && strstr(e.msg, name), "entry \"%s\" refused (%s)", name, e.msg);
    else
        ok(rc == want_rc && strcmp(out, want_norm) == 0, "entry \"%s\" -> \"%s\" (got \"%s\", rc %d)", name, want_norm,
           out, rc);
}

static void link_ok(const char *entry_name, const char *target, int want_ok)
{
    struct err e = { 0 };
    int rc = safepath_symlink(entry_name, target, &e);
    if (want_ok)
        ok(rc == 0, "symlink %s -> %s stays inside", entry_name, target);
    else
        ok(rc < 0 && e.kind == ERR_REFUSED, "symlink %s -> %s refused (%s)", entry_name, target, e.msg);
}

int main(void)
{
    entry("a/b/c", 0, "a/b/c");
    entry("./a//b/", 0, "a/b");
    entry("./", 1, "");
    entry(".", 1, "");
    entry("a/./b", 0, "a/b");
    entry("/etc/passwd", -1, NULL);
    entry("../x", -1, NULL);
    entry("a/../../x", -1, NULL);
    entry("a/..", -1, NULL);
    entry("..", -1, NULL);
    entry("a/b..c", 0, "a/b..c");
    entry("...", 0, "...");
    {
        struct err e = { 0 };
        char out[256];
        ok(safepath_entry("", out, sizeof out, &e) < 0, "empty entry name refused");
        char small[4];
        ok(safepath_entry("abcdef", small, sizeof small, &e) < 0, "over-long name refused, not truncated");
    }

    link_ok("a", "b", 1);
    link_ok("a", "./b/c", 1);
    link_ok("d/l", "../x", 1);
    link_ok("d/e/l", "../../x", 1);
    link_ok("d/e/l", "../../../x", 0);
    link_ok("l", "..", 0);
    link_ok("l", "../x", 0);
    link_ok("l", "/etc/passwd", 0);
    link_ok("l", "", 0);
    link_ok("a/l", "b/../..", 0);
    link_ok("a/l", "b/../c", 0); /* b may itself be a link: refused rather than guessed */
    link_ok("a/l", "../a/b", 1);
    link_ok("a/l", ".", 1);
    link_ok("a/l", "..", 1);
    return tap_done();
}
