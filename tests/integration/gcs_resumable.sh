#!/usr/bin/env bash
# The gs:// store against tests/servers/gcs_fake.py, a protocol fake written from Google's
# documented resumable-upload, compose and XML multipart protocols (the emulator of
# gcs_store.sh implements neither chunked sessions nor authentication), with credentials from a
# service-account key exchanged at tests/servers/google_auth_fake.py: every request must carry a
# live bearer token. Faults: a chunk cut off half-way, 503s, a session that is gone, a corrupted
# download; pagination; rm's precondition; V4 signed URLs compared with @google-cloud/storage's.
. "$(dirname "$0")/../lib.sh"
/usr/bin/python3 -c 'import crcmod.predefined' 2>/dev/null || skip_all "python3-crcmod is not installed (make deps)"
start_google_auth_fake || { not_ok "the Google auth fake starts"; done_testing; }
SA=stepop-test@fake-project.iam.gserviceaccount.com
google_sa_key "$T/sa.json" "$SA" || { not_ok "a service-account key is made and registered"; done_testing; }
export GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json
/usr/bin/python3 "$ROOT/tests/servers/gcs_fake.py" --port-file "$T/gcs.port" --page-size 2 \
    --tokeninfo "$GOOGLE_AUTH_FAKE_URL/tokeninfo" >"$T/gcs_fake.log" 2>&1 &
on_exit "kill $!"
for _ in $(seq 100); do [ -s "$T/gcs.port" ] && break; sleep 0.05; done
GCS=http://127.0.0.1:$(cat "$T/gcs.port")
wait_http "$GCS/_/log" || { not_ok "the GCS fake starts"; done_testing; }
unset STORAGE_EMULATOR_HOST STEPOP_GCS_PARALLEL_UPLOAD
export STEPOP_GCS_ENDPOINT=$GCS STEPOP_GCS_UPLOAD_THRESHOLD=1MiB STEPOP_GCS_CHUNK_SIZE=1MiB STEPOP_GCS_PART_SIZE=1MiB
faults() { curl -s -X POST --data-binary "$1" "$GCS/_/faults" >/dev/null; }
reset() { curl -s -X POST "$GCS/_/reset" >/dev/null; }
# count PYEXPR: logged requests e for which PYEXPR holds
count() { curl -s "$GCS/_/log" | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
head -c $((6 * 1048576 + 12345)) /dev/urandom >"$T/big"
head -c 3000 /dev/urandom >"$T/small"
BIG=$(sha "$T/big")

expect_rc 0 "a resumable upload in 1 MiB chunks" "$STEPOP" artifact put "$T/big" gs://bkt/r/clean.bin
check "it took seven chunks" test "$(count "e.get('op') == 'chunk'")" = 7
check "every request carried a live bearer token" test "$(count "not e.get('auth')")" = 0
check "the token came from the key's token endpoint" test "$(google_auth_count "e.get('path') == '/token' and e.get('status') == 200")" -ge 1
expect_rc 0 "it downloads in parallel ranges" "$STEPOP" artifact get gs://bkt/r/clean.bin "$T/back" --sha256 "$BIG"
check "the ranges were pinned to the generation" test "$(count "e.get('op') == 'media' and 'generation=' in e['query']")" -ge 5

reset
faults '[{"match": {"op": "chunk"}, "skip": 2, "action": "drop"}]'
expect_rc 0 "a chunk cut off half-way: the upload goes on" "$STEPOP" artifact put "$T/big" gs://bkt/r/drop.bin
check "the session's status was asked" test "$(count "e.get('op') == 'status'")" -ge 1
check "the next chunk started where the session stood (half of 1 MiB after 2 MiB)" \
    test "$(count "e.get('op') == 'chunk' and (e.get('content_range') or '').startswith('bytes 2621440-')")" -ge 1
check "one session was enough" test "$(count "e.get('op') == 'start'")" = 1
expect_rc 0 "the object is whole" "$STEPOP" artifact get gs://bkt/r/drop.bin "$T/back" --sha256 "$BIG"

reset
faults '[{"match": {"op": "chunk"}, "skip": 1, "times": 3, "action": {"status": 503}}]'
expect_rc 0 "three 503s on a chunk: the upload goes on" "$STEPOP" artifact put "$T/big" gs://bkt/r/503.bin
check "each 503 was followed by a status query" test "$(count "e.get('op') == 'status'")" -ge 3
expect_rc 0 "the object is whole" "$STEPOP" artifact get gs://bkt/r/503.bin "$T/back" --sha256 "$BIG"

reset
faults '[{"match": {"op": "chunk"}, "skip": 3, "action": "gone"}]'
expect_rc 0 "a session that is gone: the upload starts again" "$STEPOP" artifact put "$T/big" gs://bkt/r/gone.bin
check "a second session was opened" test "$(count "e.get('op') == 'start'")" = 2
expect_rc 0 "the object is whole" "$STEPOP" artifact get gs://bkt/r/gone.bin "$T/back" --sha256 "$BIG"

reset
faults '[{"match": {"op": "chunk"}, "times": 100, "action": {"status": 503}}]'
expect_rc 1 "a session that keeps failing gives up" env STEPOP_HTTP_ATTEMPTS=3 "$STEPOP" artifact put "$T/big" gs://bkt/r/never.bin
expect_rc 3 "and leaves no object" "$STEPOP" artifact stat gs://bkt/r/never.bin
faults '[]'

reset
faults '[{"match": {"op": "multipart"}, "times": 2, "action": {"status": 503}}]'
expect_rc 0 "a small upload survives two 503s" "$STEPOP" artifact put "$T/small" gs://bkt/r/small.bin
check "it was one multipart request, sent three times" test "$(count "e.get('op') == 'multipart'")" = 3

reset
faults '[{"match": {"op": "media"}, "action": "corrupt"}]'
expect_rc 4 "bytes that do not match x-goog-hash fail the download" "$STEPOP" artifact get gs://bkt/r/small.bin "$T/bad"
err_has "crc32c mismatch" "the message says which hash"
check "no file is left" test ! -e "$T/bad"

# A stream of unknown length (a directory packed as tar on the fly): chunks with "/*" until
# its end; a session lost half-way makes stepop pack it again from the start.
make_tree "$T/tree" 3
reset
expect_rc 0 "a tar stream goes up in a resumable session" "$STEPOP" artifact put "$T/tree" gs://bkt/s/tree.tar
check "its chunks named no total until the last" test "$(count "(e.get('content_range') or '').endswith('/*')")" -ge 2
expect_rc 0 "it unpacks" "$STEPOP" artifact get gs://bkt/s/tree.tar "$T/tree.back" --unpack
check "the tree came back" same_tree "$T/tree" "$T/tree.back"
reset
faults '[{"match": {"op": "chunk"}, "skip": 2, "action": "gone"}]'
expect_rc 0 "a stream whose session is gone is packed and sent again" "$STEPOP" artifact put "$T/tree" gs://bkt/s/tree2.tar
check "in a second session" test "$(count "e.get('op') == 'start'")" = 2
rm -rf "$T/tree.back"
expect_rc 0 "it unpacks" "$STEPOP" artifact get gs://bkt/s/tree2.tar "$T/tree.back" --unpack
check "the tree came back" same_tree "$T/tree" "$T/tree.back"
reset
expect_rc 0 "a tar stream through compose" env STEPOP_GCS_PARALLEL_UPLOAD=compose STEPOP_GCS_UPLOAD_PART_SIZE=512KiB \
    "$STEPOP" artifact put "$T/tree" gs://bkt/s/tree3.tar
rm -rf "$T/tree.back"
expect_rc 0 "it unpacks" "$STEPOP" artifact get gs://bkt/s/tree3.tar "$T/tree.back" --unpack
check "the tree came back" same_tree "$T/tree" "$T/tree.back"
faults '[]'

# Parallel uploads. compose: 40 part objects of 256 KiB, composed in two rounds (32 + 8, then
# the two), one part refused once; xml: two parts, one refused once.
head -c $((10 * 1048576 + 99)) /dev/urandom >"$T/mid"
MID=$(sha "$T/mid")
reset
faults '[{"match": {"op": "multipart"}, "skip": 5, "action": {"status": 503}}]'
expect_rc 0 "compose: 41 parts in parallel" env STEPOP_GCS_PARALLEL_UPLOAD=compose STEPOP_GCS_UPLOAD_PART_SIZE=256KiB \
    "$STEPOP" artifact put "$T/mid" gs://bkt/p/composed.bin
n=$(count "e.get('op') == 'compose'"); is_eq "three compose requests (two groups, then the final one)" "$n" 3
check "no part object is left" sh -c "! curl -s '$GCS/_/objects' | grep -q stepop-parts"
expect_rc 0 "the composed object reads back" "$STEPOP" artifact get gs://bkt/p/composed.bin "$T/back" --sha256 "$MID"
reset
faults '[{"match": {"op": "multipart"}, "skip": 3, "times": 100, "action": {"status": 503}}]'
expect_rc 1 "compose: a part that keeps failing fails the upload" env STEPOP_HTTP_ATTEMPTS=2 STEPOP_GCS_PARALLEL_UPLOAD=compose \
    STEPOP_GCS_UPLOAD_PART_SIZE=256KiB "$STEPOP" artifact put "$T/mid" gs://bkt/p/failed.bin
check "the part objects already made were deleted" sh -c "! curl -s '$GCS/_/objects' | grep -q stepop-parts"
expect_rc 3 "and there is no object" "$STEPOP" artifact stat gs://bkt/p/failed.bin
reset
faults '[{"match": {"op": "part"}, "action": {"status": 503}}]'
expect_rc 0 "xml: an XML API multipart upload" env STEPOP_GCS_PARALLEL_UPLOAD=xml STEPOP_GCS_UPLOAD_PART_SIZE=5MiB \
    "$STEPOP" artifact put "$T/mid" gs://bkt/p/xml.bin
check "three parts, one sent twice" test "$(count "e.get('op') == 'part'")" = 4
check "no multipart upload is left open" sh -c "curl -s '$GCS/_/sessions' | grep -q '\"xml\": 0'"
expect_rc 0 "the object reads back" "$STEPOP" artifact get gs://bkt/p/xml.bin "$T/back" --sha256 "$MID"
reset
faults '[{"match": {"op": "xml-complete"}, "times": 100, "action": {"status": 400}}]'
expect_rc 1 "xml: a refused completion fails the upload" env STEPOP_GCS_PARALLEL_UPLOAD=xml STEPOP_GCS_UPLOAD_PART_SIZE=5MiB \
    "$STEPOP" artifact put "$T/mid" gs://bkt/p/xml-failed.bin
check "the multipart upload was aborted" sh -c "curl -s '$GCS/_/sessions' | grep -q '\"xml\": 0'"
faults '[]'

# Pagination: the fake answers two entries a page.
for n in 1 2 3 4; do "$STEPOP" artifact put "$T/small" "gs://bkt/list/o$n" >/dev/null 2>&1; done
"$STEPOP" artifact put "$T/small" gs://bkt/list/sub/deep >/dev/null 2>&1
expect_rc 0 "ls over three pages" "$STEPOP" artifact ls gs://bkt/list/
check "it lists four objects and one prefix" test "$(wc -l <"$T/out")" = 5
out_has "sub/" "the prefix is there"

reset
expect_rc 0 "rm" "$STEPOP" artifact rm gs://bkt/list/o1
check "the DELETE was conditional on the generation" test "$(count "e['method'] == 'DELETE' and 'ifGenerationMatch=' in e['query']")" = 1
expect_rc 3 "it is gone" "$STEPOP" artifact stat gs://bkt/list/o1

# A 401 (a token revoked or expired early): one fresh token from the token endpoint, one more try.
reset
tokens_before=$(google_auth_count "e.get('path') == '/token' and e.get('status') == 200")
faults '[{"match": {"op": "multipart"}, "action": {"status": 401}}]'
expect_rc 0 "an upload answered 401 once succeeds with a fresh token" "$STEPOP" artifact put "$T/small" gs://bkt/r/401.bin
check "a second token was fetched" test "$(google_auth_count "e.get('path') == '/token' and e.get('status') == 200")" -gt "$tokens_before"
reset
faults '[{"match": {"op": "multipart"}, "times": 100, "action": {"status": 401}}]'
expect_rc 1 "a 401 that stays is an error" "$STEPOP" artifact put "$T/small" gs://bkt/r/401b.bin
check "after a single refresh and one more try" test "$(count "e.get('op') == 'multipart'")" = 2
faults '[]'

# A revoked or unknown token is refused: a request without our credentials gets 401.
check "the fake refuses a request without a token" sh -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' '$GCS/storage/v1/b/bkt/o')\" = 401"

# V4 signed URLs: byte for byte what @google-cloud/storage makes for the same key and clock (a
# clock in the future: the npm client refuses an expiry before its own real time).
if [ -d "$ROOT/tests/servers/node_modules/@google-cloud/storage" ] && command -v node >/dev/null; then
    unset STEPOP_GCS_ENDPOINT
    for case in "GET 3600 dir/file.bin" "PUT 600 a b/é+x~(1).tar.gz" "GET 604800 plain"; do
        # shellcheck disable=SC2086 # the case's words are the arguments
        set -- $case
        method=$1 secs=$2
        shift 2
        name="$*"
        expect_rc 0 "presign $method $name" env STEPOP_NOW=2099-01-02T03:04:05Z "$STEPOP" artifact presign "gs://bkt/$name" \
            --method "$method" --expires "${secs}s"
        mine=$(cat "$T/out")
        theirs=$(node "$ROOT/tests/servers/gcs_client.js" sign "$T/sa.json" bkt "$name" 2099-01-02T03:04:05Z "$secs" "$method" 2>"$T/node.err")
        is_eq "the same URL as @google-cloud/storage ($method $name)" "$mine" "$theirs"
    done
else
    ok "# SKIP node or @google-cloud/storage is missing"
fi
printf '{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}' >"$T/user.json"
expect_rc 2 "presign with user credentials is refused" env GOOGLE_APPLICATION_CREDENTIALS="$T/user.json" \
    "$STEPOP" artifact presign gs://bkt/plain
err_has "service_account" "the message says a service-account key is needed"
done_testing
