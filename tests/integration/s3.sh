#!/usr/bin/env bash
# The s3 store against s3rver behind tests/servers/s3proxy.py, which recomputes every request's
# SigV4 signature with botocore and refuses any difference: awkward keys, sizes around the
# multipart threshold and a 300 MiB object, streams, ls with continuation, stat, rm, presigned
# URLs, checksums, unsigned payloads, virtual-hosted addressing, clock skew, session tokens.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
start_s3 || { not_ok "s3rver and the verifying proxy start"; done_testing; }
export STEPOP_S3_MULTIPART_THRESHOLD=6MiB STEPOP_S3_PART_SIZE=5MiB
sha() { sha256sum "$1" | cut -d' ' -f1; }
json_sha() { sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' "$T/out"; }
uploads_started() { s3_count "e['method']=='POST' and e['query']=='uploads'"; }

# round_trip FILE KEY DESC: put, compare with what s3rver stored, get back, compare digests.
# $WRAP, when set, runs before each stepop command.
WRAP=
round_trip() {
    local f=$1 key=$2 desc=$3
    expect_rc 0 "$desc: put" $WRAP "$STEPOP" artifact put "$f" "s3://test/$key" --json
    local reported
    reported=$(json_sha)
    check "$desc: the reported sha256 is the file's" test "$reported" = "$(sha "$f")"
    check "$desc: s3rver holds the same bytes" cmp "$f" "$(s3_object_file test "$key")"
    rm -f "$T/back"
    expect_rc 0 "$desc: get" $WRAP "$STEPOP" artifact get "s3://test/$key" "$T/back" --sha256 "$reported"
    check "$desc: byte for byte" cmp "$f" "$T/back"
}

printf 'x' >"$T/one"
: >"$T/zero"
for key in "plain.txt" "with space/and  two.txt" "plus+equals=dollar\$tilde~.bin" "unicode/é ü 日本/ключ.txt" \
    "deep/a/b/c/d/e/f/g/h/i/j/k.bin" "odd/!'()*,;:@&[]#.txt" "percent%20literal.txt"; do
    round_trip "$T/one" "keys/$key" "key \"$key\""
done
check "no request was refused by the signature check" test "$(s3_count "e.get('error')")" = 0

s3_reset
round_trip "$T/zero" "sizes/zero" "0 bytes"
round_trip "$T/one" "sizes/one" "1 byte"
head -c $((6 * 1048576 - 1)) /dev/urandom >"$T/under"
head -c $((6 * 1048576 + 1)) /dev/urandom >"$T/over"
round_trip "$T/under" "sizes/under" "just under the threshold"
check "... went out as one PUT" test "$(uploads_started)" = 0
round_trip "$T/over" "sizes/over" "just over the threshold"
check "... went out as a multipart upload" test "$(uploads_started)" = 1
check "... of two parts" test "$(s3_count "e['method']=='PUT' and 'partNumber=' in e['query']")" = 2
check "ranged parts were pinned to the ETag" test "$(s3_count "e['method']=='GET' and e['if_match']")" -ge 1
check "no multipart upload is left open" test "$(s3_uploads)" = "[]"

s3_reset
head -c $((300 * 1048576)) /dev/urandom >"$T/big"
unset STEPOP_S3_MULTIPART_THRESHOLD STEPOP_S3_PART_SIZE
start=$SECONDS
# Peak memory (kB) of the last command, from GNU time; the bound is concurrency x part size
# (8 x 8 MiB) plus libraries and buffers, far below the object's size.
rss() { /usr/bin/time -f %M -o "$T/rss" "$@"; }
max_kb=$((160 * 1024))
# AddressSanitizer's quarantine holds freed memory back: bound the plain build only.
case "$STEPOP" in */asan/*) max_kb=$((1024 * 1024)) ;; esac
WRAP=rss round_trip "$T/big" "sizes/300MiB.bin" "300 MiB with the default part size"
check "... downloading it took under $((max_kb / 1024)) MiB of memory ($(cat "$T/rss") kB)" test "$(cat "$T/rss")" -lt $max_kb
echo "# 300 MiB round trip: $((SECONDS - start)) s"
check "... in 38 parts of 8 MiB" test "$(s3_count "e['method']=='PUT' and 'partNumber=' in e['query']")" = 38
check "... downloaded as parallel ranged GETs" test "$(s3_count "e['method']=='GET' and e['range']")" = 38
rss "$STEPOP" artifact put "$T/big" s3://test/sizes/300MiB-again.bin >/dev/null 2>&1
check "uploading it took under $((max_kb / 1024)) MiB ($(cat "$T/rss") kB)" test "$(cat "$T/rss")" -lt $max_kb
mkdir -p "$T/bigdir" && mv "$T/big" "$T/bigdir/"
expect_rc 0 "a 300 MiB tar stream (unknown length)" rss "$STEPOP" artifact put "$T/bigdir" s3://test/sizes/300MiB.tar
check "... took under $((max_kb / 1024)) MiB ($(cat "$T/rss") kB)" test "$(cat "$T/rss")" -lt $max_kb
expect_rc 0 "and unpacking it from parallel parts" rss "$STEPOP" artifact get s3://test/sizes/300MiB.tar "$T/bigback" --unpack
check "... took under $((max_kb / 1024)) MiB ($(cat "$T/rss") kB)" test "$(cat "$T/rss")" -lt $max_kb
check "... intact" cmp "$T/bigdir/big" "$T/bigback/big"
# STEPOP_S3_MEMORY bounds the upload's part buffers: 8 parts of 32 MiB in flight would hold
# 256 MiB; a budget of 64 MiB lets two at a time go, whether the size is known or not.
budget="env STEPOP_S3_PART_SIZE=32MiB STEPOP_S3_MEMORY=64MiB"
expect_rc 0 "a 300 MiB file in 32 MiB parts under STEPOP_S3_MEMORY=64MiB" rss $budget "$STEPOP" artifact put \
    "$T/bigdir/big" s3://test/sizes/budget.bin
check "... took under $((max_kb / 1024)) MiB ($(cat "$T/rss") kB)" test "$(cat "$T/rss")" -lt $max_kb
check "... intact" cmp "$T/bigdir/big" "$(s3_object_file test sizes/budget.bin)"
expect_rc 0 "the same as a tar stream (unknown length)" rss $budget "$STEPOP" artifact put "$T/bigdir" \
    s3://test/sizes/budget.tar
check "... took under $((max_kb / 1024)) MiB ($(cat "$T/rss") kB)" test "$(cat "$T/rss")" -lt $max_kb
expect_rc 0 "and it unpacks" "$STEPOP" artifact get s3://test/sizes/budget.tar "$T/budgetback" --unpack
check "... intact" cmp "$T/bigdir/big" "$T/budgetback/big"
check "no multipart upload is left open" test "$(s3_uploads)" = "[]"
rm -rf "$T/budgetback" "$S3_ROOT/test/sizes/budget"*
expect_rc 2 "STEPOP_S3_MEMORY below one 5 MiB part is refused" env STEPOP_S3_MEMORY=1MiB "$STEPOP" artifact put \
    "$T/one" s3://test/sizes/refused
err_has "STEPOP_S3_MEMORY: must be between 5.00 MiB" "naming the setting and its range"
rm -rf "$T/bigdir" "$T/bigback" "$T/back" "$S3_ROOT/test/sizes/300MiB"*
export STEPOP_S3_MULTIPART_THRESHOLD=6MiB STEPOP_S3_PART_SIZE=5MiB

# Packed streams: unknown length, so the threshold is found by reading ahead.
s3_reset
make_tree "$T/src" 12
expect_rc 0 "a 12 MiB tree as tar.zst (a stream of unknown length)" "$STEPOP" artifact put "$T/src" s3://test/tree.tar.zst --json
tsha=$(json_sha)
check "it went out as a multipart upload" test "$(uploads_started)" = 1
check "the reported sha256 is the stored object's" test "$tsha" = "$(sha "$(s3_object_file test tree.tar.zst)")"
expect_rc 0 "get --unpack through parallel ranged GETs" "$STEPOP" artifact get s3://test/tree.tar.zst "$T/tree" --unpack --sha256 "$tsha"
check "the tree arrives intact" same_tree "$T/src" "$T/tree"
make_tree "$T/small-src" 0
s3_reset
expect_rc 0 "a small tree as tar.gz" "$STEPOP" artifact put "$T/small-src" s3://test/small.tar.gz
check "went out as one PUT" test "$(uploads_started)" = 0
expect_rc 0 "and unpacks" "$STEPOP" artifact get s3://test/small.tar.gz "$T/small-back" --unpack
check "intact" same_tree "$T/small-src" "$T/small-back"

# ls, with the proxy cutting ListObjectsV2 pages to 2 keys.
curl -s -X POST "$S3_URL/_/page?size=2" >/dev/null
s3_reset
expect_rc 0 "ls a prefix over several pages" "$STEPOP" artifact ls s3://test/keys/ --json
for name in '"plain.txt"' '"with space/"' '"plus+equals=dollar$tilde~.bin"' '"unicode/"' '"deep/"' '"percent%20literal.txt"'; do
    out_has "\"name\":$name" "ls lists $name"
done
check "continuation tokens were followed" test "$(s3_count "'continuation-token=' in e['query']")" -ge 2
expect_rc 0 "ls without the trailing slash" "$STEPOP" artifact ls s3://test/keys/deep
out_has "a/" "lists the next level"
curl -s -X POST "$S3_URL/_/page?size=0" >/dev/null

expect_rc 0 "stat an object" "$STEPOP" artifact stat "s3://test/sizes/over" --json
out_has "\"size\":$((6 * 1048576 + 1))" "stat gives the size"
out_has '"etag":"' "and the ETag"
expect_rc 0 "stat a prefix" "$STEPOP" artifact stat s3://test/keys --json
out_has '"is_dir":true' "a prefix is a directory"
expect_rc 3 "stat of a missing object exits 3" "$STEPOP" artifact stat s3://test/nothing/here
expect_rc 3 "get of a missing object exits 3" "$STEPOP" artifact get s3://test/nothing "$T/nothing"
err_has "NoSuchKey" "and names S3's code"
check "no file is left behind" test ! -e "$T/nothing"
expect_rc 0 "rm an object" "$STEPOP" artifact rm "s3://test/keys/plain.txt"
expect_rc 3 "it is gone" "$STEPOP" artifact stat "s3://test/keys/plain.txt"
expect_rc 3 "rm of a missing object exits 3" "$STEPOP" artifact rm "s3://test/keys/plain.txt"
expect_rc 3 "a missing bucket exits 3" "$STEPOP" artifact get s3://no-such-bucket/x "$T/x"

# Presigned URLs work with plain curl.
expect_rc 0 "presign a GET" "$STEPOP" artifact presign "s3://test/sizes/under" --expires 10m
url=$(cat "$T/out")
check "curl downloads the object with it" curl -sSf -o "$T/presigned" "$url"
check "the same bytes" cmp "$T/under" "$T/presigned"
expect_rc 0 "presign a PUT" "$STEPOP" artifact presign "s3://test/presigned/up load.bin" --method PUT --json
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$T/out")
check "curl uploads with it" curl -sSf -T "$T/over" "$url"
check "the object arrived" cmp "$T/over" "$(s3_object_file test "presigned/up load.bin")"
expect_rc 0 "presign at a fixed time in the past (STEPOP_NOW)" env STEPOP_NOW=2020-01-01T00:00:00Z \
    "$STEPOP" artifact presign "s3://test/sizes/under" --expires 1h
check "an expired URL is refused" sh -c "! curl -sf -o /dev/null '$(cat "$T/out")'"
expect_rc 0 "STEPOP_NOW reproduces AWS's presigned URL example" env -u AWS_ENDPOINT_URL_S3 \
    AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
    STEPOP_NOW=20130524T000000Z "$STEPOP" artifact presign s3://examplebucket/test.txt --expires 24h
out_has "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404" "the documented signature"
out_has "https://examplebucket.s3.amazonaws.com/test.txt?" "on the documented virtual-hosted URL"
# Addressing, seen in presigned URLs (no request is made).
aws_url() { env -u AWS_ENDPOINT_URL_S3 "$@" "$STEPOP" artifact presign "$uri" | cut -d'?' -f1; }
for case in "us-east-1|s3://bkt/a b|https://bkt.s3.amazonaws.com/a%20b" \
    "eu-west-1|s3://bkt/k|https://bkt.s3.eu-west-1.amazonaws.com/k" \
    "eu-west-1|s3://my.dotted.bucket/k|https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k" \
    "us-east-1|s3://Upper_Case/k|https://s3.amazonaws.com/Upper_Case/k" \
    "cn-north-1|s3://bkt/k|https://bkt.s3.cn-north-1.amazonaws.com.cn/k"; do
    IFS='|' read -r region uri want <<<"$case"
    check "on AWS in $region, $uri is $want" test "$(aws_url AWS_REGION="$region")" = "$want"
done
uri=s3://bkt/k
check "STEPOP_S3_ADDRESSING=path on AWS" test "$(aws_url AWS_REGION=eu-west-1 STEPOP_S3_ADDRESSING=path)" = \
    https://s3.eu-west-1.amazonaws.com/bkt/k
check "a custom endpoint is path-style" \
    test "$("$STEPOP" artifact presign s3://bkt/k | cut -d'?' -f1)" = "$S3_URL/bkt/k"
check "AWS_ENDPOINT_URL is used without AWS_ENDPOINT_URL_S3" \
    test "$(env -u AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL=http://h:9/ "$STEPOP" artifact presign s3://bkt/k | cut -d'?' -f1)" = http://h:9/bkt/k
check "a custom endpoint made virtual-hosted" \
    test "$(env STEPOP_S3_ADDRESSING=virtual AWS_ENDPOINT_URL_S3=http://h:9 "$STEPOP" artifact presign s3://bkt/k | cut -d'?' -f1)" = http://bkt.h:9/k
expect_rc 2 "an endpoint with a path is refused" env AWS_ENDPOINT_URL_S3=http://h:9/sub "$STEPOP" artifact presign s3://bkt/k
expect_rc 2 "presign on a store without presigned URLs is a usage error" "$STEPOP" artifact presign "file://$T/one"
err_has "does not support presign" "that says so"
expect_rc 2 "presign of a prefix is a usage error" "$STEPOP" artifact presign s3://test/keys/
expect_rc 2 "--method other than GET or PUT is a usage error" "$STEPOP" artifact presign s3://test/x --method DELETE
expect_rc 2 "--expires longer than 7 days is a usage error" "$STEPOP" artifact presign s3://test/x --expires 8d

# Checksums and payload signing.
s3_reset
expect_rc 0 "x-amz-checksum-sha256 on a single PUT" env STEPOP_S3_CHECKSUM=on "$STEPOP" artifact put "$T/under" s3://test/ck/single
expect_rc 0 "and on every part of a multipart upload" env STEPOP_S3_CHECKSUM=on "$STEPOP" artifact put "$T/over" s3://test/ck/multi
check "the proxy checked a checksum on every body" test "$(s3_count "e['method']=='PUT' and not e['checksum']")" = 0
check "and a signed payload hash (one digest serves both)" \
    test "$(s3_count "e['method']=='PUT' and e['payload']=='UNSIGNED-PAYLOAD'")" = 0
s3_reset
expect_rc 0 "checksums with UNSIGNED-PAYLOAD" env STEPOP_S3_CHECKSUM=on STEPOP_S3_SIGN_PAYLOAD=off \
    "$STEPOP" artifact put "$T/over" s3://test/ck/unsigned
check "every part carried its checksum, none a payload hash" \
    test "$(s3_count "e['method']=='PUT' and (not e['checksum'] or e['payload']!='UNSIGNED-PAYLOAD')")" = 0
check "s3rver has that object" cmp "$T/over" "$(s3_object_file test ck/unsigned)"
s3_reset
expect_rc 0 "a put with the default settings" "$STEPOP" artifact put "$T/over" s3://test/ck/none
check "custom endpoints get no checksum by default" test "$(s3_count "e['checksum']")" = 0
s3_reset
expect_rc 0 "UNSIGNED-PAYLOAD when payload signing is off" env STEPOP_S3_SIGN_PAYLOAD=off "$STEPOP" artifact put "$T/over" s3://test/unsigned
check "every request said UNSIGNED-PAYLOAD" test "$(s3_count "e['payload']!='UNSIGNED-PAYLOAD'")" = 0
s3_reset
expect_rc 0 "payloads are hashed into the signature over plain HTTP" "$STEPOP" artifact put "$T/under" s3://test/signed
check "with the body's sha256" test "$(s3_count "e['payload']=='$(sha "$T/under")'")" = 1

# Virtual-hosted addressing: <bucket>.localhost resolves to loopback.
s3_reset
expect_rc 0 "virtual-hosted put" env STEPOP_S3_ADDRESSING=virtual AWS_ENDPOINT_URL_S3="${S3_URL/127.0.0.1/localhost}" \
    "$STEPOP" artifact put "$T/under" "s3://test/vhost/a b.bin"
check "the request path holds no bucket" test "$(s3_count "e['path']=='/vhost/a%20b.bin'")" = 1
check "s3rver has the object" cmp "$T/under" "$(s3_object_file test "vhost/a b.bin")"

# A wrong clock: the server's Date corrects it.
s3_reset
curl -s -X POST "$S3_URL/_/clock?offset=3600" >/dev/null
expect_rc 0 "a clock one hour slow is corrected from RequestTimeTooSkewed" "$STEPOP" artifact put "$T/over" s3://test/skewed
err_has "clock differs" "and says so"
check "one request was refused as skewed" test "$(s3_count "e.get('skewed')")" = 1
curl -s -X POST "$S3_URL/_/clock?offset=0" >/dev/null

# Session tokens, and refusals that must not print secrets.
printf '{"akid": "ASIASTEPOPSESSION001", "secret": "session/Secret+1", "token": "tok/en+with=odd chars", "expires": null}\n' >>"$S3_KEYS"
expect_rc 0 "a session token is sent and signed" env AWS_ACCESS_KEY_ID=ASIASTEPOPSESSION001 \
    AWS_SECRET_ACCESS_KEY=session/Secret+1 AWS_SESSION_TOKEN="tok/en+with=odd chars" "$STEPOP" artifact stat s3://test/signed
expect_rc 1 "a wrong session token is refused" env AWS_ACCESS_KEY_ID=ASIASTEPOPSESSION001 \
    AWS_SECRET_ACCESS_KEY=session/Secret+1 AWS_SESSION_TOKEN=wrong "$STEPOP" artifact get s3://test/signed "$T/x"
err_has "InvalidToken" "with S3's code"
expect_rc 1 "a wrong secret is refused by the verifying proxy" env AWS_SECRET_ACCESS_KEY=not-the-secret-at-all \
    "$STEPOP" artifact get s3://test/signed "$T/x"
err_has "SignatureDoesNotMatch" "as SignatureDoesNotMatch"
check "the message holds neither secret" sh -c "! grep -q -e not-the-secret -e Test+Secret '$T/err'"
check "a request signed for another key is refused (the proxy is not a rubber stamp)" \
    bash -c "url=\$('$STEPOP' artifact presign s3://test/signed) && ! curl -sf -o /dev/null \"\${url/signed?/unsigned?}\""
done_testing
