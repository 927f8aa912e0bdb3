#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&table_once, table_init);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
        n--;
    }
    /* Eight bytes a step, read byte by byte so the result does not depend on endianness. */
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return ~c;
}

/* a * b modulo the polynomial, in the reflected bit order of the CRC. */
static uint32_t gf2_multiply(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
    }
    return p;
}

/* x^(8n) modulo the polynomial: shifting a CRC past n zero bytes is multiplying by it. */
static uint32_t x8n(int64_t n)
{
    uint32_t result = 1u << 31, power = 1u << 23; /* x^0, x^8 */
    while (n) {
        if (n & 1)
            result = gf2_multiply(power, result);
        power = gf2_multiply(power, power);
        n >>= 1;
    }
    return result;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, int64_t len_b)
{
    if (len_b <= 0)
        return crc_a;
    return gf2_multiply(x8n(len_b), crc_a) ^ crc_b;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void crc32c_base64(uint32_t crc, char out[9])
{
    unsigned char v[4] = { crc >> 24, (crc >> 16) & 0xff, (crc >> 8) & 0xff, crc & 0xff };
    out[0] = b64[v[0] >> 2];
    out[1] = b64[((v[0] & 3) << 4) | (v[1] >> 4)];
    out[2] = b64[((v[1] & 15) << 2) | (v[2] >> 6)];
    out[3] = b64[v[2] & 63];
    out[4] = b64[v[3] >> 2];
    out[5] = b64[(v[3] & 3) << 4];
    out[6] = '=';
    out[7] = '=';
    out[8] = 0;
}

int crc32c_from_base64(const char *s, uint32_t *crc)
{
    if (strlen(s) != 8 || strcmp(s + 6, "==") != 0)
        return -1;
    uint32_t bits = 0;
    for (int i = 0; i < 6; i++) {
        const char *q = s[i] ? strchr(b64, s[i]) : NULL;
        if (!q)
            return -1;
        bits = i < 5 ? bits << 6 | (uint32_t)(q - b64) : bits << 2 | (uint32_t)(q - b64) >> 4;
        if (i == 5 && ((q - b64) & 15))
            return -1;
    }
    *crc = bits;
    return 0;
}
