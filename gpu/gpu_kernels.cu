// The smoke kernels. Grid-stride loops let one launch shape cover any size; the stress kernel's
// multiplier and increment are arguments so the compiler cannot fold its recurrence.
#include "gpu_kernels.h"

namespace {

const unsigned kThreads = 256;
const size_t kMaxBlocks = 65535;

unsigned blocks_for(size_t n)
{
    size_t b = (n + kThreads - 1) / kThreads;
    if (b > kMaxBlocks)
        b = kMaxBlocks;
    return b ? (unsigned)b : 1;
}

__global__ void vector_add(const float *a, const float *b, float *c, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        c[i] = a[i] + b[i];
}

__device__ uint64_t expected_word(const uint64_t *p, size_t i, uint64_t pattern, int by_address)
{
    return by_address ? (uint64_t)(uintptr_t)(p + i) : pattern;
}

__global__ void fill(uint64_t *p, size_t words, uint64_t pattern, int by_address)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < words; i += (size_t)gridDim.x * blockDim.x)
        p[i] = expected_word(p, i, pattern, by_address);
}

__global__ void verify(const uint64_t *p, size_t words, uint64_t pattern, int by_address, unsigned long long *bad,
                       unsigned long long *first_bad)
{
    unsigned long long mine = 0, first = ~0ull;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < words; i += (size_t)gridDim.x * blockDim.x) {
        if (p[i] != expected_word(p, i, pattern, by_address)) {
            if (!mine)
                first = i;
            mine++;
        }
    }
    if (mine) {
        atomicAdd(bad, mine);
        atomicMin(first_bad, first);
    }
}

__global__ void stress(uint32_t *state, uint32_t iterations, uint32_t a, uint32_t c)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    uint32_t x[GPU_STRESS_CHAINS];
#pragma unroll
    for (int k = 0; k < GPU_STRESS_CHAINS; k++)
        x[k] = state[t + k * stride];
    for (uint32_t i = 0; i < iterations; i++) {
#pragma unroll
        for (int k = 0; k < GPU_STRESS_CHAINS; k++)
            x[k] = a * x[k] + c;
    }
#pragma unroll
    for (int k = 0; k < GPU_STRESS_CHAINS; k++)
        state[t + k * stride] = x[k];
}

} // namespace

extern "C" cudaError_t gpu_kernel_vector_add(const float *a, const float *b, float *c, size_t n, cudaStream_t s)
{
    vector_add<<<blocks_for(n), kThreads, 0, s>>>(a, b, c, n);
    return cudaGetLastError();
}

extern "C" cudaError_t gpu_kernel_fill(uint64_t *p, size_t words, uint64_t pattern, int by_address, cudaStream_t s)
{
    fill<<<blocks_for(words), kThreads, 0, s>>>(p, words, pattern, by_address);
    return cudaGetLastError();
}

extern "C" cudaError_t gpu_kernel_verify(const uint64_t *p, size_t words, uint64_t pattern, int by_address,
                                         unsigned long long *bad, unsigned long long *first_bad, cudaStream_t s)
{
    verify<<<blocks_for(words), kThreads, 0, s>>>(p, words, pattern, by_address, bad, first_bad);
    return cudaGetLastError();
}

extern "C" cudaError_t gpu_kernel_stress(uint32_t *state, unsigned blocks, unsigned threads_per_block,
                                         uint32_t iterations, uint32_t a, uint32_t c, cudaStream_t s)
{
    stress<<<blocks, threads_per_block, 0, s>>>(state, iterations, a, c);
    return cudaGetLastError();
}
