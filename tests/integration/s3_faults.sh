#!/usr/bin/env bash
# The s3 store when S3 misbehaves (faults injected by tests/servers/s3proxy.py in front of
# s3rver): 500 InternalError, 503 SlowDown, 400 RequestTimeout, connections reset before an
# answer or in the middle of a body, stalls, a 200 with an <Error> on CompleteMultipartUpload,
# a wrong Content-Range, an object that changes. Every transfer completes with the right sha256
# or fails clearly after bounded retries, and no failed upload leaves an object or an open
# multipart upload behind.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
start_s3 || { not_ok "s3rver and the verifying proxy start"; done_testing; }
export STEPOP_S3_MULTIPART_THRESHOLD=6MiB STEPOP_S3_PART_SIZE=5MiB
head -c $((16 * 1048576)) /dev/urandom >"$T/obj" # four parts: 5, 5, 5 and 1 MiB
sum=$(sha256sum "$T/obj" | cut -d' ' -f1)
P2='partNumber=2&'
nothing_left() { # KEY DESC
    check "$2: no multipart upload is left open" test "$(s3_uploads)" = "[]"
    check "$2: no object was created" test ! -e "$(s3_object_file test "$1")"
}
put_ok() { # KEY FAULTS DESC
    s3_reset
    s3_faults "$2"
    expect_rc 0 "$3" "$STEPOP" artifact put "$T/obj" "s3://test/$1" --json
    check "$3: the stored object is intact" cmp "$T/obj" "$(s3_object_file test "$1")"
    check "$3: the reported sha256 is right" grep -q "\"sha256\":\"$sum\"" "$T/out"
    check "$3: no multipart upload is left open" test "$(s3_uploads)" = "[]"
}

put_ok up/500 '[{"method": "PUT", "query": "partNumber=2&", "action": "status", "status": 500, "code": "InternalError", "count": 2}]' \
    "a part answered 500 InternalError twice"
check "part 2 was sent three times" test "$(s3_count "e['method']=='PUT' and e['query'].startswith('$P2')")" = 3
put_ok up/slowdown '[{"method": "PUT", "query": "partNumber=3&", "action": "status", "status": 503, "code": "SlowDown", "count": 2}]' \
    "503 SlowDown on a part"
put_ok up/timeout '[{"method": "PUT", "query": "partNumber=1&", "action": "status", "status": 400, "code": "RequestTimeout", "count": 1}]' \
    "400 RequestTimeout (S3's idle-connection error) is retried"
put_ok up/reset '[{"method": "PUT", "query": "partNumber=4&", "action": "reset_request", "count": 2}]' \
    "the connection reset before the answer to a part"
put_ok up/reset-mid '[{"method": "PUT", "query": "partNumber=1&", "action": "reset_upload", "after": 1000000, "count": 2}]' \
    "the connection reset in the middle of a part's body"
STEPOP_HTTP_STALL_TIMEOUT=2s put_ok up/stall '[{"method": "PUT", "query": "partNumber=2&", "action": "stall", "after": 0, "seconds": 6, "count": 1}]' \
    "an answer to a part that stalls"
put_ok up/complete-200-error '[{"method": "POST", "query": "uploadId=", "action": "complete_error", "code": "InternalError", "count": 1}]' \
    "CompleteMultipartUpload answering 200 with <Error>InternalError is retried"
check "complete was sent twice" test "$(s3_count "e['method']=='POST' and e['query'].startswith('uploadId=')")" = 2
put_ok up/create-500 '[{"method": "POST", "query": "uploads", "action": "status", "status": 500, "code": "InternalError", "count": 1}]' \
    "CreateMultipartUpload answering 500"
head -c 1048576 /dev/urandom >"$T/one-mib"
s3_reset
s3_faults '[{"method": "PUT", "path": "/test/up/single", "action": "status", "status": 503, "code": "SlowDown", "count": 2}]'
expect_rc 0 "a single PUT answered 503 SlowDown twice" "$STEPOP" artifact put "$T/one-mib" "s3://test/up/single"
check "the object is intact" cmp "$T/one-mib" "$(s3_object_file test up/single)"

# Failures that do not pass: a clear error, nothing left behind.
s3_reset
s3_faults '[{"method": "POST", "query": "uploadId=", "action": "complete_error", "code": "InvalidPart", "count": 5}]'
expect_rc 1 "CompleteMultipartUpload answering 200 with <Error>InvalidPart fails" "$STEPOP" artifact put "$T/obj" s3://test/fail/complete
err_has "InvalidPart" "and names S3's code"
nothing_left fail/complete "200 with <Error>"
check "the upload was aborted" test "$(s3_count "e['method']=='DELETE' and e['query'].startswith('uploadId=')")" = 1
s3_reset
s3_faults '[{"method": "PUT", "query": "partNumber=2&", "action": "status", "status": 500, "code": "InternalError", "count": 50}]'
expect_rc 1 "a part failing every time gives up" env STEPOP_HTTP_ATTEMPTS=3 "$STEPOP" artifact put "$T/obj" s3://test/fail/part
err_has "InternalError" "and says why"
err_has "part 2" "and which part"
check "after exactly three attempts" test "$(s3_count "e['method']=='PUT' and e['query'].startswith('$P2')")" = 3
nothing_left fail/part "a failing part"
make_tree "$T/src" 14
s3_reset
s3_faults '[{"method": "PUT", "query": "partNumber=2&", "action": "status", "status": 503, "code": "SlowDown", "count": 50}]'
expect_rc 1 "a packed stream whose part 2 always fails gives up" env STEPOP_HTTP_ATTEMPTS=2 \
    "$STEPOP" artifact put "$T/src" s3://test/fail/tree.tar.zst
check "it was packed and sent twice" test "$(s3_count "e['method']=='POST' and e['query']=='uploads'")" = 2
nothing_left fail/tree.tar.zst "a failing stream"
s3_reset
s3_faults '[{"method": "PUT", "query": "partNumber=3&", "action": "reset_request", "count": 1}]'
expect_rc 0 "a packed stream with a part reset once completes" "$STEPOP" artifact put "$T/src" s3://test/tree.tar.zst --json
tsha=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' "$T/out")
check "the stored stream has the reported sha256" test "$tsha" = "$(sha256sum "$(s3_object_file test tree.tar.zst)" | cut -d' ' -f1)"
check "no multipart upload is left open" test "$(s3_uploads)" = "[]"

s3_reset
s3_faults '[{"method": "PUT", "query": "partNumber=", "action": "delay", "seconds": 3, "count": 8}]'
"$STEPOP" artifact put "$T/obj" s3://test/fail/interrupted >"$T/out" 2>"$T/err" &
pid=$!
for i in $(seq 100); do [ "$(s3_count "'partNumber=' in e['query']")" -ge 1 ] && break; sleep 0.05; done
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C during a multipart upload stops it (exit $rc)" test $rc -ne 0
err_has "cancelled" "and says it was cancelled"
nothing_left fail/interrupted "an interrupted upload"
check "the upload was aborted despite the signal" test "$(s3_count "e['method']=='DELETE' and e['query'].startswith('uploadId=')")" = 1

# Downloads.
"$STEPOP" artifact put "$T/obj" s3://test/obj >/dev/null 2>&1
get_ok() { # FAULTS DESC [env...]
    s3_reset
    s3_faults "$1"
    rm -f "$T/got"
    expect_rc 0 "$2" "$STEPOP" artifact get s3://test/obj "$T/got" --sha256 "$sum"
}
get_ok '[{"method": "GET", "action": "status", "status": 500, "code": "InternalError", "count": 2}]' "a download answered 500 twice"
get_ok '[{"method": "GET", "action": "status", "status": 503, "code": "SlowDown", "count": 3}]' "a download answered 503 SlowDown"
R2=$((5 * 1048576))
# resumed FIRST LAST CUT: a request pinned to the ETag for the rest of bytes FIRST-LAST after at
# most CUT bytes arrived (a reset may lose what was in flight, so the exact point varies)
resumed() {
    s3_count "e['range'] and e['if_match'] and e['range'].endswith('-$2') and $1 < int(e['range'][6:].split('-')[0]) <= $1 + $3"
}
get_ok '[{"method": "GET", "path": "/test/obj", "action": "reset", "after": 100000, "count": 1}]' \
    "the first range reset mid-body resumes"
check "the resume asked for the rest of the range, pinned to the ETag" test "$(resumed 0 $((R2 - 1)) 100000)" = 1
get_ok "[{\"method\": \"GET\", \"path\": \"/test/obj\", \"header_range\": \"bytes=$R2-\", \"action\": \"reset\", \"after\": 300000, \"count\": 1}]" \
    "a parallel part reset mid-body resumes"
check "from where it stopped, pinned to the ETag" test "$(resumed $R2 $((2 * R2 - 1)) 300000)" = 1
STEPOP_HTTP_STALL_TIMEOUT=2s get_ok \
    "[{\"method\": \"GET\", \"path\": \"/test/obj\", \"header_range\": \"bytes=$((2 * R2))-\", \"action\": \"stall\", \"after\": 200000, \"seconds\": 8, \"count\": 1}]" \
    "a stalled part is abandoned and resumed"
check "the resume starts where the stall began" test "$(s3_count "e['range']=='bytes=$((2 * R2 + 200000))-$((3 * R2 - 1))'")" = 1
s3_reset
s3_faults "[{\"method\": \"GET\", \"header_range\": \"bytes=$R2-\", \"action\": \"bad_range\", \"count\": 1}]"
expect_rc 4 "a part answered with the wrong Content-Range is refused" "$STEPOP" artifact get s3://test/obj "$T/bad"
err_has "Content-Range" "and the message says why"
check "no file is left" test ! -e "$T/bad"
# A server lying about the object's size: the parts are counted from the first answer's total,
# every answer must repeat it, and exactly that many bytes must arrive.
no_part_left() { check "$1: no part file is left" sh -c "! ls -a '$T' | grep -q stepop-part"; }
s3_reset
s3_faults '[{"method": "GET", "action": "total", "total": 9223372036854775807, "count": 100}]'
expect_rc 4 "a Content-Range total of 2^63-1 is refused" "$STEPOP" artifact get s3://test/obj "$T/bad"
check "no file is left" test ! -e "$T/bad"
no_part_left "a total of 2^63-1"
expect_rc 4 "and with --unpack" "$STEPOP" artifact get s3://test/tree.tar.zst "$T/bad-dir" --unpack
check "the destination it would have created does not exist" test ! -e "$T/bad-dir"
mkdir "$T/kept-dir"
touch "$T/kept-dir/mine"
expect_rc 4 "and with --unpack into an existing directory" "$STEPOP" artifact get s3://test/tree.tar.zst "$T/kept-dir" --unpack
check "which keeps what it held, and only that" test "$(ls -A "$T/kept-dir")" = mine
s3_reset
s3_faults "[{\"method\": \"GET\", \"header_range\": \"bytes=$R2-\", \"action\": \"total\", \"total\": $((16 * 1048576 + 1)), \"count\": 1}]"
expect_rc 4 "a total that changes between the first answer and a part is refused" "$STEPOP" artifact get s3://test/obj "$T/bad"
err_has "size changed from 16777216 to 16777217" "and the message gives both sizes"
check "no file is left" test ! -e "$T/bad"
no_part_left "a total changing between parts"
s3_reset
s3_faults '[{"method": "GET", "path": "/test/obj", "header_range": "bytes=0-", "action": "reset", "after": 100000, "count": 1},
            {"method": "GET", "path": "/test/obj", "action": "total", "total": 20000000, "count": 1}]'
expect_rc 4 "a total that changes when the first range resumes is refused" "$STEPOP" artifact get s3://test/obj "$T/bad"
err_has "size changed from 16777216 to 20000000" "and the message gives both sizes"
check "no file is left" test ! -e "$T/bad"
no_part_left "a total changing on a resume"
s3_reset
s3_faults "[{\"method\": \"GET\", \"header_range\": \"bytes=$R2-\", \"action\": \"status\", \"status\": 412, \"code\": \"PreconditionFailed\", \"count\": 1}]"
expect_rc 4 "an object that changes during the download is refused (412 on If-Match)" \
    "$STEPOP" artifact get s3://test/obj "$T/bad"
err_has "changed during the download" "and the message says so"
s3_reset
s3_faults '[{"method": "GET", "action": "status", "status": 500, "code": "InternalError", "count": 50}]'
expect_rc 1 "downloads give up after bounded retries" env STEPOP_HTTP_ATTEMPTS=3 "$STEPOP" artifact get s3://test/obj "$T/bad"
check "after exactly three attempts" test "$(s3_count "e['method']=='GET'")" = 3
err_has "HTTP 500 InternalError" "with S3's code in the message"
s3_reset
s3_faults "[{\"method\": \"GET\", \"header_range\": \"bytes=$R2-\", \"action\": \"reset\", \"after\": 1000, \"count\": 2}]"
expect_rc 0 "get --unpack with a part reset twice" "$STEPOP" artifact get s3://test/tree.tar.zst "$T/tree" --unpack
check "the tree arrives intact" same_tree "$T/src" "$T/tree"
done_testing
