#include "../../artifacts/pgzip.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdlib.h>
#include <zlib.h>

static int collect(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)e;
    buf_append(ctx, data, n);
    return 0;
}

static int fail_after(void *ctx, const void *data, size_t n, struct err *e)
{
    (void)data, (void)n;
    int *calls = ctx;
    if (++*calls > 2)
        return err_set(e, ERR_NETWORK, "sink gone");
    return 0;
}

/* Inflates every concatenated gzip member, as gunzip does; returns members or -1. */
static int gunzip_all(const struct buf *gz, struct buf *out)
{
    size_t off = 0;
    int members = 0;
    unsigned char chunk[65536];
    while (off < gz->len) {
        z_stream zs = { 0 };
        if (inflateInit2(&zs, 31) != Z_OK)
            return -1;
        zs.next_in = (unsigned char *)gz->data + off;
        zs.avail_in = (uInt)(gz->len - off);
        int r;
        do {
            zs.next_out = chunk;
            zs.avail_out = sizeof chunk;
            r = inflate(&zs, Z_NO_FLUSH);
            if (r != Z_OK && r != Z_STREAM_END) {
                inflateEnd(&zs);
                return -1;
            }
            buf_append(out, chunk, sizeof chunk - zs.avail_out);
        } while (r != Z_STREAM_END);
        off = gz->len - zs.avail_in;
        inflateEnd(&zs);
        members++;
    }
    return members;
}

static void roundtrip(const char *what, const unsigned char *data, size_t n, int threads, struct buf *gz)
{
    struct err e = { 0 };
    struct pgzip *z = pgzip_new(6, threads, collect, gz);
    int rc = 0;
    /* Odd write sizes straddle the block boundaries. */
    for (size_t off = 0; off < n && rc == 0; off += 77777)
        rc = pgzip_write(z, data + off, n - off < 77777 ? n - off : 77777, &e);
    if (rc == 0)
        rc = pgzip_finish(z, &e);
    pgzip_free(z);
    struct buf back = { 0 };
    int members = rc == 0 ? gunzip_all(gz, &back) : -1;
    ok(rc == 0 && members >= 1 && back.len == n && (n == 0 || memcmp(back.data, data, n) == 0),
       "%s with %d threads: %d members inflate back to the same %zu bytes", what, threads, members, n);
    buf_free(&back);
}

int main(void)
{
    size_t n = (5u << 20) + 12345;
    unsigned char *data = xmalloc(n);
    unsigned x = 7;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = i < n / 2 ? (unsigned char)(x >> 16) : (unsigned char)"abcdefgh"[i % 8];
    }
    struct buf one = { 0 }, three = { 0 }, empty = { 0 };
    roundtrip("5 MiB of mixed data", data, n, 1, &one);
    roundtrip("5 MiB of mixed data", data, n, 3, &three);
    ok(one.len == three.len && memcmp(one.data, three.data, one.len) == 0,
       "the output does not depend on the number of threads (reproducible archives)");
    ok(three.len < n, "it compresses (%zu -> %zu)", n, three.len);
    roundtrip("empty input", data, 0, 2, &empty);
    ok(empty.len > 0, "empty input still gives a valid gzip file");

    int calls = 0;
    struct err e = { 0 };
    struct pgzip *z = pgzip_new(1, 2, fail_after, &calls);
    int rc = 0;
    for (int i = 0; i < 40 && rc == 0; i++)
        rc = pgzip_write(z, data, 1u << 20, &e);
    if (rc == 0)
        rc = pgzip_finish(z, &e);
    pgzip_free(z);
    ok(rc < 0 && e.kind == ERR_NETWORK, "a failing sink stops the compressor with its error");
    buf_free(&one);
    buf_free(&three);
    buf_free(&empty);
    free(data);
    return tap_done();
}
