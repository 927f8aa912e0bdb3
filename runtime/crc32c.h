/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Google Cloud Storage keeps
 * for every object (x-goog-hash crc32c=, the object resource's crc32c: base64 of the big-endian
 * value). Slicing-by-8 in software; combine joins the CRCs of adjacent pieces computed apart
 * (parallel parts, compose). */
#ifndef STEPOP_CRC32C_H
#define STEPOP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over data. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);
/* The CRC of A followed by B, from crc(A), crc(B) and B's length. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, int64_t len_b);
/* Base64 of the big-endian value as GCS writes it ("AAAAAA=="); out holds 9 bytes. */
void crc32c_base64(uint32_t crc, char out[9]);
/* Parses GCS's base64 form; 0, or -1 when it is not 4 bytes of base64. */
int crc32c_from_base64(const char *s, uint32_t *crc);

#endif
