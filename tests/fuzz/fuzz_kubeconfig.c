/* Kubeconfig loading (cloud/kube/kubeconfig.c over runtime/yamljson.c): the input is written to a
 * file that KUBECONFIG names, then loaded for the current context and for a context named "x". */
#include "../../cloud/kube/kubeconfig.h"
#include "fuzz.h"

#include <unistd.h>

static char path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/config", fuzz_tempdir("kubeconfig"));
        setenv("KUBECONFIG", path, 1);
        unsetenv("KUBERNETES_SERVICE_HOST");
    }
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    const char *contexts[] = { NULL, "x" };
    for (int i = 0; i < 2; i++) {
        struct kube_config c;
        struct err e = { 0 };
        if (kube_config_load(contexts[i], NULL, &c, &e) == 0) {
            fuzz_assert(c.server && (strncmp(c.server, "https://", 8) == 0 || strncmp(c.server, "http://", 7) == 0),
                        "server %s", c.server ? c.server : "(null)");
            fuzz_assert(c.namespace && c.context, "namespace and context set");
            kube_config_free(&c);
        }
    }
    return 0;
}
