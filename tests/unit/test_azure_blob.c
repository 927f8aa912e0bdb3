/* The az:// store's signing pieces (artifacts/azure_sign.c, azure_request.c): the Shared Key
 * string-to-sign against the examples of Microsoft's "Authorize with Shared Key", HMAC-SHA256
 * against RFC 4231, service and user delegation SAS signatures against what npm
 * @azure/storage-blob 12.34's generateBlobSASQueryParameters gives for the same inputs,
 * connection strings, block ids, URIs and the https:// routing. */
#include "../../artifacts/azure_internal.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define DEV_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
/* 2030-01-02T05:04:05Z */
#define EXPIRY ((time_t)1893560645)

static struct curl_slist *hdrs(const char *const *lines)
{
    struct curl_slist *l = NULL;
    for (; *lines; lines++)
        l = curl_slist_append(l, *lines);
    return l;
}

static void test_string_to_sign(void)
{
    /* "Authorize with Shared Key": Get Container Metadata with a timeout. */
    const char *h1[] = { "x-ms-version: 2009-09-19", "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT", NULL };
    struct curl_slist *l = hdrs(h1);
    char *s = az_string_to_sign("GET", l, "myaccount", "/mycontainer", "restype=container&comp=metadata&timeout=20");
    is_str(s, "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n"
              "/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20",
           "the documented Get Container Metadata string-to-sign");
    free(s);
    curl_slist_free_all(l);

    /* The documented List Blobs resource: a parameter's values sorted and joined. */
    const char *h2[] = { "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT", NULL };
    l = hdrs(h2);
    s = az_string_to_sign("GET", l, "myaccount", "/mycontainer",
                          "restype=container&comp=list&include=snapshots&include=metadata&include=uncommittedblobs");
    ok(s && strstr(s, "\n/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\n"
                      "restype:container") != NULL,
       "the documented List Blobs resource (include values sorted, comma-joined)");
    free(s);
    curl_slist_free_all(l);

    /* Emulator paths hold the account twice; standard headers in their places; Content-Length
     * 0 signed as empty; x-ms-* names lower-cased, sorted, values trimmed and folded; query
     * names lower-cased and values decoded. */
    const char *h3[] = { "Content-Type: application/octet-stream", "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==",
                         "Range: bytes=0-99", "If-Match: \"0x8D\"", "X-MS-Version: 2021-12-02",
                         "x-ms-blob-type:   BlockBlob  ", "x-ms-meta-a: one   two", "Content-Length: 0",
                         "x-ms-date: Mon, 02 Jan 2030 03:04:05 GMT", NULL };
    l = hdrs(h3);
    s = az_string_to_sign("PUT", l, "devstoreaccount1", "/devstoreaccount1/test/a%20b", "BlockId=YQ%3D%3D&comp=block");
    is_str(s, "PUT\n\n\n\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/octet-stream\n\n\n\"0x8D\"\n\n\nbytes=0-99\n"
              "x-ms-blob-type:BlockBlob\nx-ms-date:Mon, 02 Jan 2030 03:04:05 GMT\nx-ms-meta-a:one two\n"
              "x-ms-version:2021-12-02\n/devstoreaccount1/devstoreaccount1/test/a%20b\nblockid:YQ==\ncomp:block",
           "headers, an emulator path and a decoded query");
    free(s);
    curl_slist_free_all(l);

    const char *h4[] = { "Content-Length: 12", "x-ms-date: d", NULL };
    l = hdrs(h4);
    s = az_string_to_sign("PUT", l, "a", "/c/b", NULL);
    is_str(s, "PUT\n\n\n12\n\n\n\n\n\n\n\n\nx-ms-date:d\n/a/c/b", "a non-zero Content-Length is signed");
    free(s);
    curl_slist_free_all(l);
}

static void test_crypto(void)
{
    /* RFC 4231 test case 2. */
    char *mac = az_hmac_base64((const unsigned char *)"Jefe", 4, "what do ya want for nothing?");
    is_str(mac, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=", "HMAC-SHA256 (RFC 4231 case 2), base64");
    free(mac);
    char md5[25];
    az_md5_base64("", 0, md5);
    is_str(md5, "1B2M2Y8AsgTpgAmY7PhCfg==", "MD5 of nothing, base64");
    unsigned char *raw;
    size_t n;
    ok(az_base64_decode(DEV_KEY, &raw, &n) == 0 && n == 64, "the emulator's key decodes to 64 bytes");
    free(raw);
    ok(az_base64_decode("YQ==", &raw, &n) == 0 && n == 1 && raw[0] == 'a', "padding is not counted");
    free(raw);
    ok(az_base64_decode("not base64!", &raw, &n) < 0, "malformed base64 is refused");
    ok(az_base64_decode("YQ=a", &raw, &n) < 0, "padding in the middle is refused");
}

static void test_sas(void)
{
    unsigned char *key;
    size_t kn;
    az_base64_decode(DEV_KEY, &key, &kn);
    char *sts;
    char *q = az_service_sas("devstoreaccount1", key, kn, "test", "a b/c.txt", "r", EXPIRY, &sts);
    is_str(sts, "r\n\n2030-01-02T05:04:05Z\n/blob/devstoreaccount1/test/a b/c.txt\n\n\n\n2021-12-02\nb\n\n\n\n\n\n\n",
           "the service SAS string-to-sign (version 2020-12-06 and later)");
    is_str(q, "sv=2021-12-02&se=2030-01-02T05%3A04%3A05Z&sr=b&sp=r&sig=axD1rFr4Aoeq2ho4xkFHbNl1iYhiXCSv2eexlniWcG8%3D",
           "read SAS: generateBlobSASQueryParameters's query");
    free(q);
    free(sts);
    q = az_service_sas("devstoreaccount1", key, kn, "test", "x/\xc3\xa9.bin", "cw", EXPIRY, NULL);
    ok(q && strstr(q, "&sp=cw&sig=5fWxqy6n85vnhtjhJ5C%2Fi0ocYCJp%2FmJTCnFmph8ncl0%3D"),
       "create+write SAS of a non-ASCII name: generateBlobSASQueryParameters's signature (%s)", q ? q : "-");
    free(q);
    free(key);

    struct az_udk k = { .oid = "11111111-2222-3333-4444-555555555555", .tid = "7a3c0d2e-5b1f-4c8e-9d6a-0f1e2d3c4b5a",
                        .start = "2030-01-02T03:00:00Z", .expiry = "2030-01-03T03:00:00Z", .service = "b",
                        .version = "2021-12-02", .value = "c2VjcmV0LWtleS1vZi10aGUtdWRrLTAxMjM0NTY3ODk=" };
    q = az_user_delegation_sas("devstoreaccount1", &k, "test", "a b/c.txt", "r", EXPIRY, NULL);
    is_str(q, "sv=2021-12-02&se=2030-01-02T05%3A04%3A05Z&sr=b&sp=r&skoid=11111111-2222-3333-4444-555555555555"
              "&sktid=7a3c0d2e-5b1f-4c8e-9d6a-0f1e2d3c4b5a&skt=2030-01-02T03%3A00%3A00Z&ske=2030-01-03T03%3A00%3A00Z"
              "&sks=b&skv=2021-12-02&sig=hxdi1OcR%2BXXv2w1wb%2BzZ9YHXbvwc64Cu%2BbVylmQePp8%3D",
           "user delegation SAS: generateBlobSASQueryParameters's signature");
    free(q);
    k.value = "%%%";
    ok(az_user_delegation_sas("a", &k, "c", "b", "r", EXPIRY, NULL) == NULL, "a key value that is not base64 gives none");
}

static void test_conn(void)
{
    struct az_conn c;
    struct err e = { 0 };
    ok(az_conn_parse("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" DEV_KEY
                     ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
                     &c, &e) == 0,
       "Azurite's documented connection string parses");
    is_str(c.protocol, "http", "DefaultEndpointsProtocol");
    is_str(c.account, "devstoreaccount1", "AccountName");
    is_str(c.key, DEV_KEY, "AccountKey, with its '=' padding");
    is_str(c.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1", "BlobEndpoint");
    ok(!c.sas && !c.suffix && !c.dev, "nothing else");
    az_conn_free(&c);
    ok(az_conn_parse(" accountname=a ; SharedAccessSignature=sv=2021-12-02&sig=x%3D;endpointsuffix=core.chinacloudapi.cn;"
                     "QueueEndpoint=http://q",
                     &c, &e) == 0,
       "names in any case, spaces, unknown names ignored");
    is_str(c.account, "a ", "a value keeps what is before ';'");
    is_str(c.sas, "sv=2021-12-02&sig=x%3D", "a SAS keeps its '='");
    is_str(c.suffix, "core.chinacloudapi.cn", "EndpointSuffix");
    az_conn_free(&c);
    ok(az_conn_parse("UseDevelopmentStorage=true", &c, &e) == 0 && c.dev, "UseDevelopmentStorage=true");
    az_conn_free(&c);
    ok(az_conn_parse("AccountName=a;garbage", &c, &e) < 0 && e.kind == ERR_INVALID, "a part without '=' is refused");
    ok(strstr(e.msg, "garbage") == NULL, "without quoting the value (it may be a key)");
}

static void test_block_ids(void)
{
    char a[41], b[41], c[41];
    az_block_id(1, a);
    az_block_id(50000, b);
    az_block_id(7, c);
    is_str(a, "c3RlcG9wLWJsb2NrLTAwMDAwMDAwMDE=", "block 1: base64 of stepop-block-0000000001");
    ok(strlen(a) == strlen(b), "every id of a blob has the same length (%zu, %zu)", strlen(a), strlen(b));
    ok(strcmp(a, c) && strcmp(b, c), "and they differ");
    unsigned char *raw;
    size_t n;
    ok(az_base64_decode(b, &raw, &n) == 0 && n == 23 && !memcmp(raw, "stepop-block-0000050000", 23),
       "block 50000 decodes back");
    free(raw);
}

static void test_uris(void)
{
    struct az_path p;
    struct err e = { 0 };
    char *acct;
    ok(az_parse_uri("az://data/a/b c.txt", &p, &acct, &e) == 0 && !strcmp(p.container, "data") &&
           !strcmp(p.blob, "a/b c.txt") && !acct,
       "az://container/blob");
    az_path_free(&p);
    ok(az_parse_uri("az://data", &p, NULL, &e) == 0 && !strcmp(p.blob, ""), "az://container alone");
    az_path_free(&p);
    ok(az_parse_uri("https://MyAcct.blob.core.windows.net/data/x/y", &p, &acct, &e) == 0 && acct &&
           !strcmp(acct, "myacct") && !strcmp(p.container, "data") && !strcmp(p.blob, "x/y"),
       "https://ACCOUNT.blob.core.windows.net/container/blob");
    free(acct);
    az_path_free(&p);
    const char *bad[] = { "az://Data/x", "az://ab/x", "az://a--b/x", "az://-ab/x", "az:///x",
                          "https://a.b.blob.core.windows.net/c/x", "https://example.com/c/x", NULL };
    for (const char *const *b = bad; *b; b++) {
        e = (struct err){ 0 };
        ok(az_parse_uri(*b, &p, &acct, &e) < 0 && e.kind == ERR_INVALID, "refused: %s", *b);
    }
    ok(az_parse_uri("az://$root/x", &p, NULL, &e) == 0, "$root is a container");
    az_path_free(&p);

    struct az_config c = { .endpoint = "http://127.0.0.1:10000/devstoreaccount1", .auth = AZ_AUTH_KEY };
    struct az_target t;
    az_make_target(&c, "test", "a b/ü+", "comp=list", &t);
    is_str(t.url, "http://127.0.0.1:10000/devstoreaccount1/test/a%20b/%C3%BC%2B?comp=list", "an emulator URL");
    is_str(t.path, "/devstoreaccount1/test/a%20b/%C3%BC%2B", "and the path signed");
    az_target_free(&t);
    c.endpoint = "https://acct.blob.core.windows.net";
    c.auth = AZ_AUTH_SAS;
    c.sas = "sv=x&sig=y";
    az_make_target(&c, "test", NULL, "restype=container", &t);
    is_str(t.url, "https://acct.blob.core.windows.net/test?restype=container&sv=x&sig=y", "a SAS follows the query");
    is_str(t.query, "restype=container", "and is not part of what is signed");
    az_target_free(&t);

    extern const struct store_ops store_azure_ops;
    ok(store_backend("az://c/x") == &store_azure_ops, "az:// is the Azure store");
    ok(store_backend("https://acct.blob.core.windows.net/c/x") == &store_azure_ops,
       "so is https://ACCOUNT.blob.core.windows.net/...");
    ok(store_backend("https://acct.blob.core.windows.net/c/x?sv=1&sig=2") != &store_azure_ops,
       "but a SAS URL stays a plain https:// download");
    ok(store_backend("https://example.com/c/x") != &store_azure_ops, "other https:// URLs too");
}

int main(void)
{
    test_string_to_sign();
    test_crypto();
    test_sas();
    test_conn();
    test_block_ids();
    test_uris();
    return tap_done();
}
