/* A stand-in for the driver's libcuda.so.1 that never answers, for the timeout test. The CUDA
 * runtime (cudart_static 13) dlopens libcuda.so.1 and first calls cuGetProcAddress_v2 to find the
 * other entry points; every entry point it might start with blocks forever here, as a driver
 * stuck on a hung GPU does. */
#include <unistd.h>

static int hang(void)
{
    for (;;)
        pause();
    return 0;
}

int cuGetProcAddress_v2(void)
{
    return hang();
}

int cuGetProcAddress(void)
{
    return hang();
}

int cuInit(void)
{
    return hang();
}

int cuDriverGetVersion(void)
{
    return hang();
}

int cuGetExportTable(void)
{
    return hang();
}
