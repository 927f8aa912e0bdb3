#!/usr/bin/env bash
# The threaded paths under ThreadSanitizer (build/tsan/stepop, `make tsan`): S3 multipart upload
# and parallel ranged GETs (through the signature-checking proxy), both also failing part way,
# tar.gz packing on pgzip's threads, tar.zst on libzstd's workers, and a `stepop run` with its run prefix on S3 (log
# shipping beside the step, outputs uploaded); gs:// parallel uploads and downloads; http(s):// parallel
# ranged GETs from nginx, also failing part way (faulty.js). Any ThreadSanitizer report
# fails the test.
. "$(dirname "$0")/../lib.sh"
STEPOP=${STEPOP_TSAN:-$ROOT/build/tsan/stepop}
[ -x "$STEPOP" ] || skip_all "build/tsan/stepop is not built (make tsan)"
start_s3 || skip_all "the S3 test server is not available (make deps)"
# Reports go to files (one per process, the step's forks included) and stop the process at the
# first one with exit status 66 (TSAN_HALT=0: go on, to see every report of a run).
export TSAN_OPTIONS="halt_on_error=${TSAN_HALT:-1} exitcode=66 second_deadlock_stack=1 log_path=$T/tsan-report"
export STEPOP_S3_MULTIPART_THRESHOLD=5MiB STEPOP_S3_PART_SIZE=5MiB STEPOP_S3_CONCURRENCY=4

make_tree "$T/src" 12
head -c $((16 * 1048576)) /dev/urandom >"$T/raw.bin"
expect_rc 0 "multipart upload of a 16 MiB file (parts in parallel)" "$STEPOP" artifact put "$T/raw.bin" s3://test/raw.bin
check "it was a multipart upload" test "$(s3_count "'uploadId' in e.get('query', '') and e.get('method') == 'PUT'")" -ge 3
expect_rc 0 "parallel ranged GETs of it" "$STEPOP" artifact get s3://test/raw.bin "$T/raw.back"
check "the bytes came back" cmp "$T/raw.bin" "$T/raw.back"
check "in ranges" test "$(s3_count "e.get('method') == 'GET' and e.get('range')")" -ge 3
expect_rc 0 "a tree as tar.gz (pgzip threads), multipart" "$STEPOP" artifact put "$T/src" s3://test/t.tar.gz
expect_rc 0 "and back, unpacked" "$STEPOP" artifact get s3://test/t.tar.gz "$T/gz" --unpack
check "the same tree" same_tree "$T/src" "$T/gz"
expect_rc 0 "a tree as tar.zst (libzstd workers), multipart" "$STEPOP" artifact put "$T/src" s3://test/t.tar.zst
expect_rc 0 "and back, unpacked through ranged GETs" "$STEPOP" artifact get s3://test/t.tar.zst "$T/zst" --unpack
check "the same tree" same_tree "$T/src" "$T/zst"

# Failures while parts are in flight: the workers are told to stop (a part that keeps failing
# with 500 fails the whole transfer, the others are abandoned).
s3_faults '[{"method": "PUT", "query": "partNumber=2&", "action": "status", "status": 500, "code": "InternalError", "count": 50}]'
expect_rc 1 "a multipart upload whose part 2 keeps failing fails" env STEPOP_HTTP_ATTEMPTS=2 \
    "$STEPOP" artifact put "$T/raw.bin" s3://test/failing.bin
s3_reset
s3_faults '[{"method": "GET", "path": "/test/raw.bin", "header_range": "bytes=5242880-", "action": "status", "status": 500, "code": "InternalError", "count": 50}]'
expect_rc 1 "a ranged download whose second range keeps failing fails" env STEPOP_HTTP_ATTEMPTS=2 \
    "$STEPOP" artifact get s3://test/raw.bin "$T/raw.failed"
s3_reset

# A run whose prefix is on S3: logs shipped every 100 ms while the step writes, an input unpacked,
# an output packed and uploaded.
run=s3://test/runs/tsan
cat >"$T/step.sh" <<'SH'
for i in $(seq 30); do echo "line $i"; echo "err $i" >&2; sleep 0.05; done
mkdir -p "$STEPOP_OUTPUT_MODEL"
head -c 7000000 /dev/urandom >"$STEPOP_OUTPUT_MODEL/weights.bin"
SH
manifest "$T/m.json" "$run" "\"command\":[\"sh\",\"$T/step.sh\"],\"workdir\":\"$T/w\",
  \"inputs\":[{\"name\":\"data\",\"uri\":\"s3://test/t.tar.zst\",\"unpack\":true}],
  \"outputs\":[{\"name\":\"model\",\"path\":\"out/model\",\"format\":\"tar.gz\"}]"
"$STEPOP" artifact put "$T/m.json" "$run/manifest.json" >/dev/null 2>&1
expect_rc 0 "stepop run with its prefix on S3" env STEPOP_LOG_INTERVAL=100ms STEPOP_MANIFEST="$run/manifest.json" "$STEPOP" run
check "the logs were shipped, to the last line" sh -c "cat '$S3_ROOT'/test/runs/tsan/logs/1/*.log._S3rver_object | grep -q 'line 30'"
check "in several chunks (shipped while the step ran)" test "$(ls "$S3_ROOT"/test/runs/tsan/logs/1/*.log._S3rver_object | wc -l)" -ge 3
"$STEPOP" artifact get "$run/status.json" "$T/status.json" >/dev/null 2>&1
is_eq "status.json says succeeded" "$(jq_py "$T/status.json" "d['phase']")" succeeded

# gs://: the parallel uploads (compose, XML multipart) and ranged GETs, against the GCS protocol
# fake with tokens from the Google auth fake (the token cache shared by the workers).
if /usr/bin/python3 -c 'import crcmod.predefined, google.auth.jwt' 2>/dev/null && start_google_auth_fake >/dev/null 2>&1 &&
    google_sa_key "$T/sa.json" tsan@fake-project.iam.gserviceaccount.com; then
    /usr/bin/python3 "$ROOT/tests/servers/gcs_fake.py" --port-file "$T/gcs.port" \
        --tokeninfo "$GOOGLE_AUTH_FAKE_URL/tokeninfo" >"$T/gcs_fake.log" 2>&1 &
    on_exit "kill $!"
    for _ in $(seq 100); do [ -s "$T/gcs.port" ] && break; sleep 0.05; done
    for mode in compose xml; do
        expect_rc 0 "gs:// parallel upload ($mode) of 16 MiB" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" \
            STEPOP_GCS_ENDPOINT="http://127.0.0.1:$(cat "$T/gcs.port")" STEPOP_GCS_PARALLEL_UPLOAD=$mode \
            STEPOP_GCS_UPLOAD_THRESHOLD=1MiB STEPOP_GCS_UPLOAD_PART_SIZE=5MiB STEPOP_GCS_CONCURRENCY=4 \
            "$STEPOP" artifact put "$T/raw.bin" "gs://bkt/$mode.bin"
        expect_rc 0 "and back in parallel ranges" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" \
            STEPOP_GCS_ENDPOINT="http://127.0.0.1:$(cat "$T/gcs.port")" STEPOP_GCS_PART_SIZE=1MiB STEPOP_GCS_CONCURRENCY=4 \
            "$STEPOP" artifact get "gs://bkt/$mode.bin" "$T/gs-$mode.back" --sha256 "$(sha256sum "$T/raw.bin" | cut -d' ' -f1)"
    done
else
    ok "# SKIP gs://: python3-crcmod or python3-google-auth is missing"
fi

# http(s)://: parallel ranged GETs (ranged_get.c) from nginx, and from faulty.js with a part that
# fails (the other workers stop) and a part whose object changed.
if command -v nginx >/dev/null && command -v node >/dev/null && start_nginx && start_faulty; then
    cp "$T/raw.bin" "$NGINX_ROOT/raw.bin"
    cp "$T/raw.bin" "$FAULTY_ROOT/raw.bin"
    expect_rc 0 "http:// parallel ranged GETs (1 MiB parts, 4 workers)" env STEPOP_HTTP_PART_SIZE=1MiB \
        STEPOP_HTTP_CONCURRENCY=4 "$STEPOP" artifact get "$NGINX_URL/raw.bin" "$T/http.back"
    check "the bytes came back" cmp "$T/raw.bin" "$T/http.back"
    # nginx logs a request after its answer is sent: give the last lines up to 5 s to appear.
    for _ in $(seq 1 50); do
        [ "$(grep -c '"GET /raw.bin HTTP/1.1" 206 ' "$T/nginx/logs/access.log")" -ge 16 ] && break
        sleep 0.1
    done
    check "in ranges" test "$(grep -c '"GET /raw.bin HTTP/1.1" 206 ' "$T/nginx/logs/access.log")" -ge 16
    expect_rc 1 "a part that keeps failing fails the download" env STEPOP_HTTP_PART_SIZE=1MiB STEPOP_HTTP_CONCURRENCY=4 \
        STEPOP_HTTP_ATTEMPTS=2 "$STEPOP" artifact get "$FAULTY_URL/_f/s500a3x50/raw.bin" "$T/http.failed"
    expect_rc 4 "an object changed after the first GET is refused" env STEPOP_HTTP_PART_SIZE=1MiB \
        STEPOP_HTTP_CONCURRENCY=4 "$STEPOP" artifact get "$FAULTY_URL/_f/etaga1x99/raw.bin" "$T/http.changed"
else
    ok "# SKIP http://: nginx or node is missing"
fi

reports=$(ls "$T"/tsan-report* 2>/dev/null)
if [ -z "$reports" ]; then
    ok "no ThreadSanitizer report"
else
    not_ok "ThreadSanitizer reports: $(echo "$reports" | wc -l)"
    for r in $reports; do head -60 "$r" | diag; done
    # Kept for the record: the first lines of each report (which race, which lines).
    mkdir -p "$ROOT/build/test-logs"
    cat $reports >"$ROOT/build/test-logs/tsan-reports.txt"
fi
done_testing
