/* Linked into build/stepop-static only (docs/static.md). Debian 12's libexpat.a (and libarchive,
 * built on the same system) call arc4random_buf, which glibc has had only since 2.36; taking
 * glibc's would raise the binary's glibc floor from 2.34 to 2.36 and shut out Ubuntu 22.04 and
 * RHEL 9 images. This definition, on getrandom (glibc 2.25), satisfies those references inside
 * the executable instead. Both libraries use it for seeds (hash salts, temporary names). */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#if __GLIBC_PREREQ(2, 36)
/* Hidden: the executable does not export it, so glibc's own arc4random_buf is left alone. */
__attribute__((visibility("hidden"))) void arc4random_buf(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* as glibc's own does: no entropy source is not something to go on without */
        }
        p += got;
        n -= (size_t)got;
    }
}
#endif
