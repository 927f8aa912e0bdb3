/* `stepop install DEST`: copies this binary to DEST. An inject image (glibc and the static
 * stepop, distroless: no shell, no cp) runs it as the kubernetes flavor's init container, to put
 * stepop into a volume the step's container shares. The copy is written beside DEST and renamed
 * over it, so a reader never sees half a binary. */
#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/exitcodes.h"
#include "../runtime/fsutil.h"
#include "../runtime/log.h"
#include "../runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int install_copy(int in, int out, struct err *e)
{
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_set(e, ERR_IO, "reading /proc/self/exe: %s", strerror(errno));
        if (n == 0)
            return 0;
        if (fs_write_all(out, buf, (size_t)n) < 0)
            return err_set(e, ERR_IO, "writing: %s", strerror(errno));
    }
}

static int install_to(const char *dest, struct err *e)
{
    struct stat st;
    if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode))
        return err_set(e, ERR_USAGE, "%s is a directory; give the path of the file to write", dest);
    if (fs_mkdir_parents(dest, e) < 0)
        return -1;
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return err_set(e, ERR_IO, "/proc/self/exe: %s (is /proc mounted?)", strerror(errno));
    char *tmp = xasprintf("%s.tmp.XXXXXX", dest);
    int out = mkstemp(tmp);
    if (out < 0) {
        err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
        close(in);
        free(tmp);
        return -1;
    }
    int r = install_copy(in, out, e);
    close(in);
    if (r == 0 && fchmod(out, 0755) < 0)
        r = err_set(e, ERR_IO, "chmod %s: %s", tmp, strerror(errno));
    if (r == 0 && fsync(out) < 0)
        r = err_set(e, ERR_IO, "fsync %s: %s", tmp, strerror(errno));
    if (close(out) < 0 && r == 0)
        r = err_set(e, ERR_IO, "close %s: %s", tmp, strerror(errno));
    if (r == 0 && rename(tmp, dest) < 0)
        r = err_set(e, ERR_IO, "rename %s to %s: %s", tmp, dest, strerror(errno));
    if (r < 0)
        unlink(tmp);
    else
        fs_fsync_parent(dest);
    free(tmp);
    return r;
}

static const struct cli_option install_opts[] = { { 0 } };
const struct cli_option *const install_cli_options = install_opts;

int cmd_install(int argc, char **argv)
{
    struct cli c;
    struct err e = { 0 };
    const char *v;
    cli_init(&c, "install", install_opts, argc - 1, argv + 1);
    int id = cli_next(&c, &v, &e);
    if (id == CLI_HELP) {
        cli_free(&c);
        printf("usage: stepop install DEST\n\n"
               "Copies this stepop binary to DEST (mode 0755, parent directories created, replaced atomically).\n");
        return EXIT_OK;
    }
    if (id < 0 || c.pos_count != 1 || !c.pos[0][0]) {
        log_error("%s", id < 0 ? e.msg : "install: expected one argument, DEST (the path of the copy)");
        cli_free(&c);
        return EXIT_USAGE;
    }
    char *dest = xstrdup(c.pos[0]);
    cli_free(&c);
    int r = install_to(dest, &e);
    if (r < 0)
        log_error("install %s: %s", dest, e.msg);
    free(dest);
    return r < 0 ? exit_code_for(&e) : EXIT_OK;
}
