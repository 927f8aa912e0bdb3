/* SigV4 against the worked examples of AWS's S3 API reference: "Signature Calculations for the
 * Authorization Header: Transferring Payload in a Single Chunk" (GET object with a range, PUT
 * object, GET bucket lifecycle, GET bucket list objects) and "Authenticating Requests: Using Query
 * Parameters" (the presigned GET). Same key, secret, bucket and time in every example. */
#include "../../cloud/aws/sigv4.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdlib.h>

#define AKID "AKIAIOSFODNN7EXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define WHEN ((time_t)1369353600) /* 20130524T000000Z */

static void sign(const char *method, const char *path, const char *query, const struct sigv4_header *h, size_t n,
                 const char *payload, struct sigv4_output *out)
{
    struct sigv4_input in = { .method = method, .path = path, .query = query, .headers = h, .n_headers = n,
                              .payload_hash = payload, .access_key = AKID, .secret_key = SECRET,
                              .region = "us-east-1", .service = "s3", .when = WHEN };
    if (sigv4_sign(&in, out) < 0)
        ok(0, "sigv4_sign failed");
}

static void hash_of(const char *s, char out[65])
{
    sigv4_sha256_hex(s, strlen(s), out);
}

int main(void)
{
    char hash[65], date[17];
    sigv4_amz_date(WHEN, date);
    is_str(date, "20130524T000000Z", "the examples' time");
    hash_of("", hash);
    is_str(hash, SIGV4_EMPTY_SHA256, "sha256 of the empty payload");

    /* Example: GET Object, Range bytes=0-9. */
    struct sigv4_output o;
    {
        struct sigv4_header h[] = { { "Host", HOST }, { "Range", "bytes=0-9" },
                                    { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
                                    { "x-amz-date", "20130524T000000Z" } };
        sign("GET", "/test.txt", NULL, h, 4, SIGV4_EMPTY_SHA256, &o);
        is_str(o.canonical_request,
               "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
               "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
               "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "GET object: canonical request");
        is_str(o.string_to_sign,
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
               "GET object: string to sign");
        is_str(o.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
               "GET object: signature");
        is_str(o.authorization,
               "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
               "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
               "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
               "GET object: Authorization header");
        sigv4_output_free(&o);
    }

    /* Example: PUT Object "test$file.text", body "Welcome to Amazon S3.". */
    {
        hash_of("Welcome to Amazon S3.", hash);
        is_str(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", "PUT object: payload hash");
        char *path = sigv4_encode("/test$file.text", 0);
        is_str(path, "/test%24file.text", "PUT object: '$' is encoded in the path");
        struct sigv4_header h[] = { { "Host", HOST }, { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
                                    { "x-amz-date", "20130524T000000Z" },
                                    { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
                                    { "x-amz-content-sha256", hash } };
        sign("PUT", path, NULL, h, 5, hash, &o);
        is_str(o.canonical_request,
               "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
               "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
               "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
               "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
               "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
               "PUT object: canonical request");
        is_str(o.string_to_sign,
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
               "PUT object: string to sign");
        is_str(o.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
               "PUT object: signature");
        sigv4_output_free(&o);
        free(path);
    }

    /* Example: GET Bucket Lifecycle, "?lifecycle" (a parameter without a value). */
    {
        struct sigv4_header h[] = { { "host", HOST }, { "x-amz-date", "20130524T000000Z" },
                                    { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 } };
        sign("GET", "/", "lifecycle", h, 3, SIGV4_EMPTY_SHA256, &o);
        is_str(o.canonical_request,
               "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
               "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
               "x-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n"
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "lifecycle: canonical request");
        is_str(o.string_to_sign,
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
               "lifecycle: string to sign");
        is_str(o.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
               "lifecycle: signature");
        sigv4_output_free(&o);
    }

    /* Example: GET Bucket (List Objects), "?max-keys=2&prefix=J", given out of order. */
    {
        struct sigv4_header h[] = { { "host", HOST }, { "x-amz-date", "20130524T000000Z" },
                                    { "x-amz-content-sha256", SIGV4_EMPTY_SHA256 } };
        sign("GET", "/", "prefix=J&max-keys=2", h, 3, SIGV4_EMPTY_SHA256, &o);
        ok(str_has_prefix(o.canonical_request, "GET\n/\nmax-keys=2&prefix=J\n"),
           "list objects: parameters sorted in the canonical request");
        is_str(o.string_to_sign,
               "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
               "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
               "list objects: string to sign");
        is_str(o.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
               "list objects: signature");
        sigv4_output_free(&o);
    }

    /* Example: a presigned GET of test.txt valid for 86400 s. */
    {
        char *url = sigv4_presign("https://" HOST, HOST, "GET", "/test.txt", NULL, AKID, SECRET, NULL, "us-east-1",
                                  "s3", WHEN, 86400);
        is_str(url,
               "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
               "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
               "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
               "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
               "presigned URL");
        free(url);
        url = sigv4_presign("https://" HOST, HOST, "GET", "/test.txt", NULL, AKID, SECRET, "tok/en+=", "us-east-1",
                            "s3", WHEN, 60);
        ok(url && strstr(url, "&X-Amz-Security-Token=tok%2Fen%2B%3D&"), "a session token goes into the signed query");
        free(url);
    }

    /* Encoding rules for keys (S3 encodes each segment once, keeps '/', no normalisation). */
    struct {
        const char *in;
        int slash;
        const char *want;
    } enc[] = {
        { "a b", 0, "a%20b" },
        { "a+b=c$d~e", 0, "a%2Bb%3Dc%24d~e" },
        { "dir/../x/./y//z", 0, "dir/../x/./y//z" },
        { "\xc3\xa9t\xc3\xa9/\xe6\x97\xa5", 0, "%C3%A9t%C3%A9/%E6%97%A5" },
        { "a/b", 1, "a%2Fb" },
        { "A-Z_a.z~09", 1, "A-Z_a.z~09" },
        { "!'()*%", 0, "%21%27%28%29%2A%25" },
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        char *got = sigv4_encode(enc[i].in, enc[i].slash);
        is_str(got, enc[i].want, "encode \"%s\"%s", enc[i].in, enc[i].slash ? " (slash too)" : "");
        free(got);
    }
    struct {
        const char *in, *want;
    } cq[] = {
        { "uploads", "uploads=" },
        { "uploadId=a%2Fb+c&partNumber=10", "partNumber=10&uploadId=a%2Fb%2Bc" },
        { "list-type=2&prefix=a b/&delimiter=%2F", "delimiter=%2F&list-type=2&prefix=a%20b%2F" },
        { "b=2&a=2&a=1", "a=1&a=2&b=2" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cq / sizeof cq[0]; i++) {
        char *got = sigv4_canonical_query(cq[i].in);
        is_str(got, cq[i].want, "canonical query of \"%s\"", cq[i].in);
        free(got);
    }
    ok(sigv4_canonical_query("a=%zz") == NULL, "a malformed escape in the query is refused");

    /* Header values: trimmed, runs of spaces squeezed, repeated names joined. */
    {
        struct sigv4_header h[] = { { "Host", "h" }, { "X-Amz-Meta-A", "  two   spaces  " }, { "x-amz-meta-a", "b" } };
        sign("GET", "/", NULL, h, 3, SIGV4_UNSIGNED_PAYLOAD, &o);
        ok(strstr(o.canonical_request, "\nx-amz-meta-a:two spaces,b\n") != NULL, "header values canonicalised");
        is_str(o.signed_headers, "host;x-amz-meta-a", "a repeated header is signed once");
        ok(str_has_suffix(o.canonical_request, "\nUNSIGNED-PAYLOAD"), "UNSIGNED-PAYLOAD goes last");
        sigv4_output_free(&o);
    }
    return tap_done();
}
