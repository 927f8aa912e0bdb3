/* The XML walker (runtime/xmlwalk.c) on S3's answers: a ListObjectsV2 page walked element by
 * element as the S3 store lists, and the lookups it makes in error and multipart answers. */
#include "../../runtime/xmlwalk.h"
#include "fuzz.h"

struct walk {
    int elements;
    int stop_at;
};

static int on_element(void *ctx, const char *path, const char *text, struct err *e)
{
    struct walk *w = ctx;
    fuzz_assert(path && text, "NULL path or text");
    (void)strlen(path);
    (void)strlen(text);
    if (++w->elements == w->stop_at)
        return err_set(e, ERR_INVALID, "stopped at %s", path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct walk w = { 0, size ? data[0] % 8 : 0 };
    struct err e = { 0 };
    if (xml_walk((const char *)data, size, on_element, &w, &e) < 0)
        fuzz_assert(e.msg[0], "failed without a message");
    static const char *const finds[] = { "Error/Code", "Error/Message", "CompleteMultipartUploadResult/ETag",
                                         "InitiateMultipartUploadResult/UploadId", "/Code" };
    for (size_t i = 0; i < sizeof finds / sizeof *finds; i++)
        free(xml_find((const char *)data, size, finds[i]));
    return 0;
}
