/* The client configuration (flavors/config.c): the input is $XDG_CONFIG_HOME/stepop/config.json
 * in a directory of its own, read by config_load as `stepop submit` reads it; then the default
 * operator is looked up and a run prefix made. */
#include "../../flavors/config.h"
#include "fuzz.h"

#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char file[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (access("stepop.json", F_OK) == 0) {
        fprintf(stderr, "./stepop.json would be read instead of the input: run elsewhere\n");
        abort();
    }
    const char *dir = fuzz_tempdir("config");
    snprintf(file, sizeof file, "%s/stepop", dir);
    if (mkdir(file, 0700) < 0)
        abort();
    snprintf(file, sizeof file, "%s/stepop/config.json", dir);
    /* The default store lives under $XDG_DATA_HOME: nothing of the user's is read. */
    setenv("XDG_DATA_HOME", dir, 1);
    setenv("XDG_CONFIG_HOME", dir, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct config c;
    struct err e = { 0 };
    if (config_load(&c, &e) < 0) {
        fuzz_assert(e.msg[0], "refused without a message");
        return 0;
    }
    fuzz_assert(c.store && c.store[0] && c.store[strlen(c.store) - 1] == '/', "store \"%s\"", c.store);
    fuzz_assert(c.operators, "no operators object");
    if (c.default_operator)
        fuzz_assert(config_operator(&c, c.default_operator, &e), "default operator missing: %s", e.msg);
    char *run = config_run_uri(&c, "01J0000000000000000000000");
    free(run);
    config_free(&c);
    return 0;
}
