/* Launchers of the smoke kernels (gpu_kernels.cu, built by nvcc). Each queues its kernel on stream
 * s and returns the launch's error; execution errors show at the next synchronisation. */
#ifndef STEPOP_GPU_KERNELS_H
#define STEPOP_GPU_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* c[i] = a[i] + b[i] */
cudaError_t gpu_kernel_vector_add(const float *a, const float *b, float *c, size_t n, cudaStream_t s);

/* Writes pattern to every 64-bit word, or with by_address each word's own device address. */
cudaError_t gpu_kernel_fill(uint64_t *p, size_t words, uint64_t pattern, int by_address, cudaStream_t s);

/* Adds the number of words that differ from what gpu_kernel_fill wrote to *bad, and lowers
 * *first_bad to the smallest such index (the caller presets it to ~0). */
cudaError_t gpu_kernel_verify(const uint64_t *p, size_t words, uint64_t pattern, int by_address,
                              unsigned long long *bad, unsigned long long *first_bad, cudaStream_t s);

/* Advances every state x -> a*x + c (mod 2^32), iterations times; threads*chains states, each
 * thread owning `chains` of them so independent multiply-adds keep the pipelines full. */
#define GPU_STRESS_CHAINS 4
cudaError_t gpu_kernel_stress(uint32_t *state, unsigned blocks, unsigned threads_per_block, uint32_t iterations,
                              uint32_t a, uint32_t c, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
