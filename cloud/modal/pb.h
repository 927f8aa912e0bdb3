/* A small protobuf wire codec: what the Modal client (cloud/modal/modal_api.c) needs of the
 * binary format, writing and reading varints, length-delimited fields and fixed 32/64-bit values,
 * and skipping fields it does not know. Ours rather than protobuf-c: Debian's protoc-c refuses
 * Modal's full .proto (proto3 optional fields and its imports), and stepop sends a dozen messages,
 * whose field numbers are written out in modal_api.c. docs/flavors.md#modal. */
#ifndef STEPOP_MODAL_PB_H
#define STEPOP_MODAL_PB_H

#include "../../runtime/util.h"

#include <stddef.h>
#include <stdint.h>

enum pb_wire { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

/* ---- writing, into a growing buffer (struct buf, runtime/util.h) ---- */

void pb_put_varint(struct buf *b, uint64_t v);
void pb_put_tag(struct buf *b, uint32_t field, enum pb_wire wire);
/* A field, always written (proto3 leaves defaults out: the *_nz helpers do so). */
void pb_put_uint(struct buf *b, uint32_t field, uint64_t v);
void pb_put_bool(struct buf *b, uint32_t field, int v);
void pb_put_bytes(struct buf *b, uint32_t field, const void *p, size_t n);
void pb_put_str(struct buf *b, uint32_t field, const char *s);
void pb_put_float(struct buf *b, uint32_t field, float v);
void pb_put_double(struct buf *b, uint32_t field, double v);
/* A nested message already encoded in sub. */
void pb_put_msg(struct buf *b, uint32_t field, const struct buf *sub);
/* Only when not the default (0, false, NULL or ""). */
void pb_put_uint_nz(struct buf *b, uint32_t field, uint64_t v);
void pb_put_str_nz(struct buf *b, uint32_t field, const char *s);
/* A negative int32 goes out as a 10-byte varint, as protobuf writes it. */
void pb_put_int32(struct buf *b, uint32_t field, int32_t v);
uint64_t pb_zigzag(int64_t v);
int64_t pb_unzigzag(uint64_t v);

/* ---- reading ---- */

struct pb_reader {
    const uint8_t *p, *end;
};

/* One field as read: its number and wire type, and its value (varint and fixed values in u,
 * length-delimited in data/len, pointing into the input). */
struct pb_field {
    uint32_t field;
    enum pb_wire wire;
    uint64_t u;
    const uint8_t *data;
    size_t len;
};

void pb_reader_init(struct pb_reader *r, const void *p, size_t n);
/* The next field: 1, 0 at the end, -1 on malformed input (a truncated varint or value, a field
 * number 0, a varint over 10 bytes, a group or unknown wire type). */
int pb_next(struct pb_reader *r, struct pb_field *f);
int pb_get_varint(struct pb_reader *r, uint64_t *v);
/* A length-delimited field's text, NUL-terminated (caller frees); NULL when it holds a NUL. */
char *pb_field_str(const struct pb_field *f);
float pb_field_float(const struct pb_field *f);
double pb_field_double(const struct pb_field *f);

#endif
