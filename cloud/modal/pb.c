/* The protobuf wire format (protobuf.dev/programming-guides/encoding), the parts modal_api.c uses. */
#include "pb.h"

#include <string.h>

void pb_put_varint(struct buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    buf_append(b, tmp, n);
}

void pb_put_tag(struct buf *b, uint32_t field, enum pb_wire wire)
{
    pb_put_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void pb_put_uint(struct buf *b, uint32_t field, uint64_t v)
{
    pb_put_tag(b, field, PB_VARINT);
    pb_put_varint(b, v);
}

void pb_put_int32(struct buf *b, uint32_t field, int32_t v)
{
    /* Sign-extended to 64 bits, as every protobuf implementation writes an int32. */
    pb_put_uint(b, field, (uint64_t)(int64_t)v);
}

void pb_put_bool(struct buf *b, uint32_t field, int v)
{
    pb_put_uint(b, field, v ? 1 : 0);
}

void pb_put_bytes(struct buf *b, uint32_t field, const void *p, size_t n)
{
    pb_put_tag(b, field, PB_LEN);
    pb_put_varint(b, n);
    buf_append(b, p, n);
}

void pb_put_str(struct buf *b, uint32_t field, const char *s)
{
    pb_put_bytes(b, field, s, strlen(s));
}

void pb_put_float(struct buf *b, uint32_t field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t le[4] = { (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
    pb_put_tag(b, field, PB_I32);
    buf_append(b, le, 4);
}

void pb_put_double(struct buf *b, uint32_t field, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(u >> (8 * i));
    pb_put_tag(b, field, PB_I64);
    buf_append(b, le, 8);
}

void pb_put_msg(struct buf *b, uint32_t field, const struct buf *sub)
{
    pb_put_bytes(b, field, sub->data ? sub->data : "", sub->len);
}

void pb_put_uint_nz(struct buf *b, uint32_t field, uint64_t v)
{
    if (v)
        pb_put_uint(b, field, v);
}

void pb_put_str_nz(struct buf *b, uint32_t field, const char *s)
{
    if (s && s[0])
        pb_put_str(b, field, s);
}

uint64_t pb_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

int64_t pb_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

void pb_reader_init(struct pb_reader *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
}

int pb_get_varint(struct pb_reader *r, uint64_t *v)
{
    uint64_t out = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return -1;
        uint8_t byte = *r->p++;
        /* The tenth byte holds bit 63 only. */
        if (i == 9 && byte > 1)
            return -1;
        out |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *v = out;
            return 0;
        }
    }
    return -1;
}

int pb_next(struct pb_reader *r, struct pb_field *f)
{
    memset(f, 0, sizeof *f);
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (pb_get_varint(r, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    f->field = (uint32_t)(key >> 3);
    f->wire = (enum pb_wire)(key & 7);
    size_t left;
    switch (key & 7) {
    case PB_VARINT:
        return pb_get_varint(r, &f->u) < 0 ? -1 : 1;
    case PB_I64:
    case PB_I32: {
        size_t n = (key & 7) == PB_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return -1;
        for (size_t i = 0; i < n; i++)
            f->u |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case PB_LEN:
        if (pb_get_varint(r, &f->u) < 0)
            return -1;
        left = (size_t)(r->end - r->p);
        if (f->u > left)
            return -1;
        f->data = r->p;
        f->len = (size_t)f->u;
        r->p += f->len;
        return 1;
    default:
        /* Groups (3, 4) are proto2's, and Modal's messages are proto3: refused as malformed. */
        return -1;
    }
}

char *pb_field_str(const struct pb_field *f)
{
    if (f->wire != PB_LEN || (f->len && memchr(f->data, 0, f->len)))
        return NULL;
    return xstrndup((const char *)f->data, f->len);
}

float pb_field_float(const struct pb_field *f)
{
    uint32_t u = (uint32_t)f->u;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

double pb_field_double(const struct pb_field *f)
{
    double v;
    memcpy(&v, &f->u, 8);
    return v;
}
