#include "../../artifacts/store.h"
#include "../../runtime/uri.h"
#include "../../runtime/util.h"
#include "tap.h"

#include <stdlib.h>

int main(void)
{
    char s[16];
    ok(uri_scheme("S3://bucket/key", s, sizeof s) == 0 && strcmp(s, "s3") == 0, "scheme is lower-cased");
    ok(uri_scheme("/abs/path", s, sizeof s) < 0, "a path has no scheme");
    ok(uri_scheme("c:\\x", s, sizeof s) < 0, "a drive letter is not a scheme");
    ok(uri_scheme("ftp://h/x", s, sizeof s) == 0 && strcmp(s, "ftp") == 0, "ftp scheme is read");

    char red[256];
    uri_redact("https://user:secret@host/a/b?X-Amz-Signature=abc", red, sizeof red);
    is_str(red, "https://***@host/a/b?...", "redaction drops userinfo and query");
    ok(!strstr(red, "secret") && !strstr(red, "abc"), "no secret survives redaction");
    uri_redact("file:///tmp/x", red, sizeof red);
    is_str(red, "file:///tmp/x", "plain URIs are unchanged");
    uri_redact("http://host/p@q", red, sizeof red);
    is_str(red, "http://host/p@q", "an @ in the path is not userinfo");
    /* Found by tests/fuzz/fuzz_uri.c: a "://" after a '?' was taken for the scheme's. */
    uri_redact("x/y?token=secret&next=s3://b/k", red, sizeof red);
    is_str(red, "x/y?...", "a \"://\" inside the query does not keep the query");
    /* Also found by the fuzzer: a raw '@' in the password left its end in the message. */
    uri_redact("https://user:p@ss@host/k", red, sizeof red);
    is_str(red, "https://***@host/k", "userinfo hidden up to the authority's last '@'");

    char *r = uri_redact_secrets("https://user:secret@host/a/b.bin?X-Amz-Date=20260101T000000Z&X-Amz-Signature=abc"
                                 "&x-amz-security-token=tok&versionId=7");
    is_str(r, "https://***@host/a/b.bin?X-Amz-Date=20260101T000000Z&X-Amz-Signature=REDACTED"
              "&x-amz-security-token=REDACTED&versionId=7",
           "stored URIs keep plain parameters and lose userinfo and signatures");
    ok(!strstr(r, "secret") && !strstr(r, "abc") && !strstr(r, "tok&"), "no credential survives");
    free(r);
    r = uri_redact_secrets("https://acct.blob.core.windows.net/c/x?sv=2022-11-02&sig=c2ln%3D#frag");
    is_str(r, "https://acct.blob.core.windows.net/c/x?sv=2022-11-02&sig=REDACTED#frag", "an Azure SAS sig is dropped");
    free(r);
    r = uri_redact_secrets("https://h/x?X-Goog-Signature&signature=1&sigx=2");
    is_str(r, "https://h/x?X-Goog-Signature=REDACTED&signature=REDACTED&sigx=2", "names match whole, any case");
    free(r);
    r = uri_redact_secrets("s3://bucket/runs/1/outputs/m.tar.zst");
    is_str(r, "s3://bucket/runs/1/outputs/m.tar.zst", "a plain URI is unchanged");
    free(r);
    r = uri_redact_secrets("http://host/p@q?a=1");
    is_str(r, "http://host/p@q?a=1", "an @ in the path is not userinfo");
    free(r);
    /* The same two cases as uri_redact's above, found by tests/fuzz/fuzz_uri.c there. */
    r = uri_redact_secrets("https://user:p@ss@host/k?sig=1");
    is_str(r, "https://***@host/k?sig=REDACTED", "stored: userinfo hidden up to the authority's last '@'");
    free(r);
    r = uri_redact_secrets("x/y?sig=secret&next=s3://b/k");
    is_str(r, "x/y?sig=REDACTED&next=s3://b/k", "stored: a \"://\" inside the query does not keep a signature");
    free(r);

    char *p;
    struct err e = { 0 };
    ok(uri_file_path("file:///tmp/a%20b", &p, &e) == 0 && strcmp(p, "/tmp/a b") == 0, "file URI is decoded");
    free(p);
    ok(uri_file_path("file://localhost/tmp/x", &p, &e) == 0 && strcmp(p, "/tmp/x") == 0, "file://localhost/ is local");
    free(p);
    ok(uri_file_path("file://otherhost/tmp/x", &p, &e) < 0, "file URI with a remote host refused");
    ok(uri_file_path("file:///tmp/%zz", &p, &e) < 0, "malformed escape refused");
    ok(uri_file_path("file:///tmp/%00x", &p, &e) < 0, "encoded NUL refused");

    char *u = uri_from_arg("/tmp/a b#c");
    is_str(u, "file:///tmp/a%20b%23c", "a path becomes an encoded file URI");
    ok(uri_file_path(u, &p, &e) == 0 && strcmp(p, "/tmp/a b#c") == 0, "and decodes back");
    free(p);
    free(u);
    u = uri_from_arg("http://h/x");
    is_str(u, "http://h/x", "a URI stays as it is");
    free(u);

    u = uri_join("s3://b/runs/1/", "logs/1/00000000.log");
    is_str(u, "s3://b/runs/1/logs/1/00000000.log", "join under a prefix");
    free(u);
    u = uri_join("file:///x", "/y");
    is_str(u, "file:///x/y", "join adds exactly one slash");
    free(u);
    u = uri_basename("http://h/a/model.tar.zst?sig=1");
    is_str(u, "model.tar.zst", "basename ignores the query");
    free(u);

    ok(store_check_uri("ftp://h/x", &e) < 0 && strstr(e.msg, "unsupported scheme \"ftp\""), "ftp refused: %s", e.msg);
    ok(store_check_uri("relative/path", &e) < 0 && strstr(e.msg, "not a URI"), "a path is not a URI: %s", e.msg);
    ok(store_check_uri("https://h/x", &e) == 0, "https accepted");
    ok(store_check_uri("file:///x", &e) == 0, "file accepted");
    return tap_done();
}
