/* cloud/modal/pb.c, the protobuf wire codec of the modal flavor: varints at their edges, zigzag,
 * every wire type written and read back, unknown fields skipped, malformed input refused; and
 * cloud/modal/modal_api.c's messages against bytes worked out by hand from the field numbers of
 * npm modal 0.11.1. */
#include "../../cloud/modal/modal_api.h"
#include "../../cloud/modal/pb.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static char hexbuf[4096];

static const char *hex(const struct buf *b)
{
    for (size_t i = 0; i < b->len && i * 2 + 2 < sizeof hexbuf; i++)
        snprintf(hexbuf + i * 2, 3, "%02x", (unsigned char)b->data[i]);
    if (!b->len)
        hexbuf[0] = 0;
    return hexbuf;
}

static void test_varints(void)
{
    static const struct {
        uint64_t v;
        const char *hex;
    } cases[] = {
        { 0, "00" }, { 1, "01" }, { 127, "7f" }, { 128, "8001" }, { 300, "ac02" }, { 16383, "ff7f" },
        { 16384, "808001" }, { 0xffffffffULL, "ffffffff0f" },
        { 0xffffffffffffffffULL, "ffffffffffffffffff01" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = { 0 };
        pb_put_varint(&b, cases[i].v);
        is_str(hex(&b), cases[i].hex, "varint %llu encodes", (unsigned long long)cases[i].v);
        struct pb_reader r;
        uint64_t got = 0;
        pb_reader_init(&r, b.data, b.len);
        ok(pb_get_varint(&r, &got) == 0 && got == cases[i].v && r.p == r.end, "varint %llu reads back",
           (unsigned long long)cases[i].v);
        buf_free(&b);
    }
    /* Eleven bytes, a tenth byte over 1, a truncated one. */
    static const uint8_t too_long[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
    static const uint8_t overflow[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
    static const uint8_t cut[] = { 0x80, 0x80 };
    struct pb_reader r;
    uint64_t v;
    pb_reader_init(&r, too_long, sizeof too_long);
    ok(pb_get_varint(&r, &v) < 0, "an 11-byte varint is refused");
    pb_reader_init(&r, overflow, sizeof overflow);
    ok(pb_get_varint(&r, &v) < 0, "a varint over 64 bits is refused");
    pb_reader_init(&r, cut, sizeof cut);
    ok(pb_get_varint(&r, &v) < 0, "a truncated varint is refused");

    is_int(pb_zigzag(0), 0, "zigzag 0");
    is_int(pb_zigzag(-1), 1, "zigzag -1");
    is_int(pb_zigzag(1), 2, "zigzag 1");
    is_int(pb_zigzag(-2), 3, "zigzag -2");
    ok(pb_zigzag(INT64_MIN) == UINT64_MAX, "zigzag INT64_MIN");
    ok(pb_unzigzag(pb_zigzag(INT64_MIN)) == INT64_MIN && pb_unzigzag(pb_zigzag(123456789)) == 123456789 &&
           pb_unzigzag(pb_zigzag(-987654321)) == -987654321, "zigzag round trips");
}

static void test_fields(void)
{
    struct buf b = { 0 };
    pb_put_uint(&b, 1, 150);
    pb_put_str(&b, 2, "testing");
    pb_put_float(&b, 3, 55.0f);
    pb_put_double(&b, 4, 1.5);
    pb_put_bool(&b, 5, 1);
    pb_put_int32(&b, 6, -1);
    pb_put_str_nz(&b, 7, "");
    pb_put_uint_nz(&b, 8, 0);
    pb_put_uint(&b, 536870911, 1); /* the largest field number */
    /* The protobuf guide's own examples: 150 in field 1 is 08 96 01; "testing" in field 2 is 12 07 ... */
    ok(!memcmp(b.data, "\x08\x96\x01\x12\x07testing", 12), "field 1 = 150 and field 2 = \"testing\" as in the "
                                                            "encoding guide");
    struct pb_reader r;
    struct pb_field f;
    pb_reader_init(&r, b.data, b.len);
    ok(pb_next(&r, &f) == 1 && f.field == 1 && f.wire == PB_VARINT && f.u == 150, "varint field reads back");
    ok(pb_next(&r, &f) == 1 && f.field == 2 && f.wire == PB_LEN && f.len == 7 && !memcmp(f.data, "testing", 7),
       "string field reads back");
    char *s = pb_field_str(&f);
    is_str(s, "testing", "pb_field_str");
    free(s);
    ok(pb_next(&r, &f) == 1 && f.field == 3 && f.wire == PB_I32 && pb_field_float(&f) == 55.0f, "float reads back");
    ok(pb_next(&r, &f) == 1 && f.field == 4 && f.wire == PB_I64 && pb_field_double(&f) == 1.5, "double reads back");
    ok(pb_next(&r, &f) == 1 && f.field == 5 && f.u == 1, "bool reads back");
    ok(pb_next(&r, &f) == 1 && f.field == 6 && (int32_t)f.u == -1 && f.u == UINT64_MAX,
       "a negative int32 is a 10-byte varint, as protobuf writes it");
    ok(pb_next(&r, &f) == 1 && f.field == 536870911, "fields 7 and 8 (defaults) were not written; the largest "
                                                     "field number reads back");
    is_int(pb_next(&r, &f), 0, "the end");
    buf_free(&b);

    /* Malformed: field number 0, a group, wire type 7, a length past the end, a short fixed32. */
    static const struct {
        const char *bytes;
        size_t n;
        const char *what;
    } bad[] = {
        { "\x00\x01", 2, "field number 0" },      { "\x0b\x0c", 2, "a group (wire type 3)" },
        { "\x0f\x00", 2, "wire type 7" },         { "\x12\x05" "abc", 5, "a length past the end" },
        { "\x1d\x01\x02", 3, "a short fixed32" }, { "\x19\x01\x02\x03", 4, "a short fixed64" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pb_reader_init(&r, bad[i].bytes, bad[i].n);
        is_int(pb_next(&r, &f), -1, "malformed input refused: %s", bad[i].what);
    }
    struct pb_field nul = { .field = 1, .wire = PB_LEN, .data = (const uint8_t *)"a\0b", .len = 3 };
    ok(pb_field_str(&nul) == NULL, "a string holding a NUL is refused");
}

static void test_messages(void)
{
    struct err e = { 0 };
    struct buf b = { 0 };
    modal_enc_app_get_or_create(&b, "stepop", "main");
    /* app_name = 1, environment_name = 2, object_creation_type = 3 (CREATE_IF_MISSING = 1). */
    is_str(hex(&b), "0a0673746570" "6f70" "12046d61696e" "1801", "AppGetOrCreateRequest bytes");
    buf_free(&b);

    modal_enc_sandbox_id(&b, "sb-1", 0);
    is_str(hex(&b), "0a0473622d31" "1500000000", "SandboxWaitRequest: sandbox_id = 1, timeout = 2 (float 0)");
    buf_free(&b);

    const char *names[] = { "A" }, *values[] = { "1" };
    modal_enc_secret_ephemeral(&b, "", names, values, 1);
    /* object_creation_type = 4 (EPHEMERAL = 5), env_dict = 5 { key = 1, value = 2 }. */
    is_str(hex(&b), "2005" "2a06" "0a0141" "120131", "SecretGetOrCreateRequest (ephemeral) bytes");
    buf_free(&b);

    modal_enc_image_get_or_create(&b, "ap-1", "busybox", "st-2", "2024.10");
    /* image = 2 { dockerfile_commands = 6, image_registry_config = 17 { auth type 4, secret 2 } },
     * app_id = 4, builder_version = 9. */
    is_str(hex(&b),
           "1219" "320c46524f4d2062757379626f78" "8a0108" "0804" "120473742d32"
           "220461702d31" "4a07323032342e3130",
           "ImageGetOrCreateRequest bytes");
    buf_free(&b);

    const char *argv[] = { "stepop", "run" }, *sec[] = { "st-1" }, *tn[] = { "k" }, *tv[] = { "v" };
    const char *regions[] = { "us-east" };
    struct modal_sandbox s = {
        .app_id = "ap", .image_id = "im", .name = "n", .argv = argv, .argc = 2, .secret_ids = sec,
        .secret_count = 1, .milli_cpu = 4000, .memory_mb = 1024, .gpu_type = "H100", .gpu_count = 2,
        .timeout_secs = 600, .workdir = "/w", .cloud = "aws", .regions = regions, .region_count = 1,
        .nonpreemptible = 1, .tag_names = tn, .tag_values = tv, .tag_count = 1,
    };
    modal_enc_sandbox_create(&b, &s);
    /* Walk it as Modal's decoder would: app_id = 1, definition = 2, tags = 4. */
    struct pb_reader r, d;
    struct pb_field f;
    pb_reader_init(&r, b.data, b.len);
    ok(pb_next(&r, &f) == 1 && f.field == 1 && f.len == 2 && !memcmp(f.data, "ap", 2), "SandboxCreateRequest.app_id");
    ok(pb_next(&r, &f) == 1 && f.field == 2 && f.wire == PB_LEN, "SandboxCreateRequest.definition");
    pb_reader_init(&d, f.data, f.len);
    int seen[64] = { 0 }, args = 0;
    struct pb_field g;
    uint64_t timeout = 0;
    char res_hex[64] = "";
    while (pb_next(&d, &g) == 1) {
        if (g.field < 64)
            seen[g.field]++;
        if (g.field == 1)
            args++;
        if (g.field == 7)
            timeout = g.u;
        if (g.field == 5) {
            struct buf rb = { (char *)g.data, g.len, 0 };
            snprintf(res_hex, sizeof res_hex, "%s", hex(&rb));
        }
    }
    ok(args == 2 && seen[3] && seen[4] == 1 && seen[5] && seen[8] && seen[17] && seen[26] && seen[30],
       "Sandbox: entrypoint_args 1, image_id 3, secret_ids 4, resources 5, workdir 8, scheduler_placement 17, "
       "cloud_provider_str 26, name 30");
    is_int(timeout, 600, "Sandbox.timeout_secs = 7");
    /* memory_mb = 2, milli_cpu = 3, gpu_config = 4 { count = 2, gpu_type = 4 }. */
    is_str(res_hex, "108008" "18a01f" "2208" "1002" "220448313030", "Resources bytes");
    ok(pb_next(&r, &f) == 1 && f.field == 4 && f.len == 6, "SandboxCreateRequest.tags");
    buf_free(&b);

    /* Answers: unknown fields (a varint 99, a fixed64 98, a nested message 97) are skipped. */
    struct buf ans = { 0 };
    pb_put_uint(&ans, 99, 7);
    pb_put_double(&ans, 98, 2.0);
    struct buf res = { 0 }, nested = { 0 };
    pb_put_uint(&res, 1, MODAL_ST_FAILURE);
    pb_put_str(&res, 2, "boom");
    pb_put_uint(&res, 3, 3);
    pb_put_str(&nested, 1, "x");
    pb_put_msg(&ans, 97, &nested);
    pb_put_msg(&ans, 1, &res);
    struct modal_result mr;
    ok(modal_dec_result_at(&ans, 1, &mr, &e) == 0 && mr.present && mr.status == MODAL_ST_FAILURE && mr.exitcode == 3 &&
           mr.exception && !strcmp(mr.exception, "boom"),
       "SandboxWaitResponse.result decoded past unknown fields");
    modal_result_free(&mr);
    struct buf empty = { 0 };
    ok(modal_dec_result_at(&empty, 1, &mr, &e) == 0 && !mr.present, "an empty answer has no result");
    struct buf trunc = { ans.data, ans.len - 1, 0 };
    ok(modal_dec_result_at(&trunc, 1, &mr, &e) < 0, "a truncated answer is refused");
    buf_free(&ans);
    buf_free(&res);
    buf_free(&nested);

    /* TaskLogsBatch: items = 2 { data = 1 }, entry_id = 5, eof = 14. */
    struct buf batch = { 0 }, item = { 0 };
    pb_put_str(&item, 1, "hello\n");
    pb_put_uint(&item, 8, MODAL_FD_STDERR);
    pb_put_msg(&batch, 2, &item);
    pb_put_msg(&batch, 2, &item);
    pb_put_str(&batch, 5, "1700-0");
    pb_put_bool(&batch, 14, 1);
    struct modal_logs l;
    memset(&l, 0, sizeof l);
    ok(modal_dec_logs_batch(&batch, &l, &e) == 0 && l.eof && l.entry_id && !strcmp(l.entry_id, "1700-0") &&
           l.text.len == 12 && !memcmp(l.text.data, "hello\nhello\n", 12),
       "TaskLogsBatch: items, entry id, eof");
    modal_logs_free(&l);
    buf_free(&batch);
    buf_free(&item);

    /* EnvironmentGetOrCreateResponse: environment_id = 1, metadata = 2 { settings = 2 {
     * image_builder_version = 1 } }. */
    struct buf env = { 0 }, md = { 0 }, st = { 0 };
    pb_put_str(&st, 1, "2025.06");
    pb_put_str(&md, 1, "main");
    pb_put_msg(&md, 2, &st);
    pb_put_str(&env, 1, "en-1");
    pb_put_msg(&env, 2, &md);
    char *id = NULL, *ver = NULL;
    ok(modal_dec_environment(&env, &id, &ver, &e) == 0 && id && !strcmp(id, "en-1") && ver && !strcmp(ver, "2025.06"),
       "EnvironmentGetOrCreateResponse: id and image builder version");
    free(id);
    free(ver);
    buf_free(&env);
    buf_free(&md);
    buf_free(&st);

    /* SandboxTagsGetResponse.tags = 1 { tag_name = 1, tag_value = 2 }. */
    struct buf tags = { 0 }, t1 = { 0 }, t2 = { 0 };
    pb_put_str(&t1, 1, "other");
    pb_put_str(&t1, 2, "x");
    pb_put_str(&t2, 1, "stepop-run-id");
    pb_put_str(&t2, 2, "R1");
    pb_put_msg(&tags, 1, &t1);
    pb_put_msg(&tags, 1, &t2);
    char *v = NULL;
    ok(modal_dec_tag(&tags, "stepop-run-id", &v, &e) == 0 && v && !strcmp(v, "R1"), "a tag's value");
    free(v);
    ok(modal_dec_tag(&tags, "absent", &v, &e) == 0 && !v, "an absent tag");
    buf_free(&tags);
    buf_free(&t1);
    buf_free(&t2);
}

int main(void)
{
    test_varints();
    test_fields();
    test_messages();
    return tap_done();
}
