/* Benchmark data: a directory that looks like a model checkpoint and its training text.
 * Usage: gen_data DIR TOTAL_MIB
 * About 85% of the bytes are float32 "weights" (normally distributed, like trained weights:
 * random mantissas, clustered exponents, so they compress a little), the rest is text shards
 * (a word list in varying order, compressing well), in files of 64-256 MiB and 1-4 MiB. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static double uniform(void)
{
    return ((double)(next() >> 11) + 0.5) / 9007199254740992.0;
}

static int write_weights(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    float buf[65536];
    size_t left = bytes / sizeof(float);
    while (left) {
        size_t n = left < 65536 ? left : 65536;
        for (size_t i = 0; i < n; i += 2) {
            double u1 = uniform(), u2 = uniform(), r = sqrt(-2.0 * log(u1)) * 0.02;
            buf[i] = (float)(r * cos(6.283185307179586 * u2));
            if (i + 1 < n)
                buf[i + 1] = (float)(r * sin(6.283185307179586 * u2));
        }
        if (fwrite(buf, sizeof(float), n, f) != n)
            return fclose(f), -1;
        left -= n;
    }
    return fclose(f);
}

static int write_text(const char *path, size_t bytes)
{
    static const char *const words[] = { "the", "model", "gradient", "loss", "token", "layer", "attention",
                                         "batch", "epoch", "weights", "learning", "rate", "of", "and", "a",
                                         "training", "data", "step", "optimizer", "norm", "residual", "head" };
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t written = 0;
    while (written < bytes) {
        const char *w = words[next() % (sizeof words / sizeof words[0])];
        int n = fprintf(f, (next() % 13) ? "%s " : "%s\n", w);
        if (n < 0)
            return fclose(f), -1;
        written += (size_t)n;
    }
    return fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_data DIR TOTAL_MIB\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t total = (size_t)strtoull(argv[2], NULL, 10) << 20;
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint", dir);
    if ((mkdir(dir, 0755) < 0 && errno != EEXIST) || (mkdir(path, 0755) < 0 && errno != EEXIST))
        return perror(dir), 1;
    snprintf(path, sizeof path, "%s/text", dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return perror(path), 1;
    size_t weights = total / 100 * 85, done = 0;
    for (int i = 0; done < weights; i++) {
        size_t sz = ((size_t)64 + next() % 192) << 20;
        if (sz > weights - done)
            sz = weights - done;
        snprintf(path, sizeof path, "%s/checkpoint/shard-%05d.bin", dir, i);
        if (write_weights(path, sz) < 0)
            return perror(path), 1;
        done += sz;
    }
    for (int i = 0; done < total; i++) {
        size_t sz = ((size_t)1 + next() % 4) << 20;
        if (sz > total - done)
            sz = total - done;
        snprintf(path, sizeof path, "%s/text/part-%05d.txt", dir, i);
        if (write_text(path, sz) < 0)
            return perror(path), 1;
        done += sz;
    }
    return 0;
}
