#include "exitcodes.h"

int exit_code_for(const struct err *e)
{
    switch (e->kind) {
    case ERR_USAGE:
        return EXIT_USAGE;
    case ERR_NOT_FOUND:
        return EXIT_NOT_FOUND;
    case ERR_REFUSED:
    case ERR_INTEGRITY:
        return EXIT_REFUSED;
    default:
        return EXIT_FAILED;
    }
}
