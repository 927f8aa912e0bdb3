#!/usr/bin/env bash
# stepop under valgrind: no invalid access and no definite leak on the main paths.
. "$(dirname "$0")/../lib.sh"
command -v valgrind >/dev/null || skip_all "valgrind is not installed (make deps)"
vg() { valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$STEPOP" "$@"; }
make_tree "$T/src" 1
expect_rc 0 "put tar.zst under valgrind" vg artifact put "$T/src" "file://$T/s/t.tar.zst"
expect_rc 0 "get --unpack under valgrind" vg artifact get "file://$T/s/t.tar.zst" "$T/o" --unpack
expect_rc 0 "put tar.gz under valgrind" vg artifact put "$T/src" "file://$T/s/t.tar.gz" --json
expect_rc 0 "ls and stat under valgrind" vg artifact ls "file://$T/s/"
expect_rc 3 "a missing object under valgrind" vg artifact stat "file://$T/s/none"
python3 -c "
import tarfile, io
with tarfile.open('$T/evil.tar', 'w') as t:
    i = tarfile.TarInfo('../x'); i.size = 1; t.addfile(i, io.BytesIO(b'x'))"
expect_rc 4 "a refused archive under valgrind" vg artifact get "file://$T/evil.tar" "$T/e" --unpack
expect_rc 2 "a usage error under valgrind" vg artifact put "$T/src" "file://$T/s/d"
manifest "$T/m.json" "file://$T/runs/v1" "\"command\":[\"sh\",\"-c\",\"cat in; mkdir -p out; echo x > out/y\"],\"workdir\":\"$T/w\",
  \"inputs\":[{\"name\":\"in\",\"uri\":\"file://$T/src/hello.txt\"}],\"outputs\":[{\"name\":\"out\",\"path\":\"out\"}]"
expect_rc 0 "stepop run under valgrind" env STEPOP_LOG_INTERVAL=100ms valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --trace-children=no "$STEPOP" run --manifest "$T/m.json"
expect_rc 3 "plain init under valgrind" vg run -- sh -c 'exit 3'
expect_rc 4 "submit (local flavor) under valgrind" env XDG_DATA_HOME="$T/data" XDG_CONFIG_HOME="$T/cfg" STEPOP_LOG_INTERVAL=100ms \
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$STEPOP" submit --json -- sh -c 'echo hi; exit 4'
expect_rc 0 "status under valgrind" vg status "file://$T/data/stepop/runs/$(ls "$T/data/stepop/runs" | head -1)"
expect_rc 0 "flavor list under valgrind" vg flavor list
# The CUDA probe runs in a re-executed stepop, which valgrind follows when told to: its report
# lands in the same stderr.
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --trace-children=yes \
    "$STEPOP" gpu check --json >"$T/out" 2>"$T/err"
rc=$?
check "gpu check under valgrind gives a verdict (exit $rc)" sh -c "[ $rc = 0 ] || [ $rc = 10 ]"
check "the parent and the probe child are clean" sh -c "! grep -q '^==[0-9]*==' '$T/err'"
if command -v nginx >/dev/null && start_nginx; then
    expect_rc 0 "HTTP put under valgrind" vg artifact put "$T/src" "$NGINX_URL/t.tar.zst"
    expect_rc 0 "HTTP get --unpack under valgrind" vg artifact get "$NGINX_URL/t.tar.zst" "$T/h" --unpack
    expect_rc 0 "PROPFIND ls under valgrind" vg artifact ls "$NGINX_URL/"
fi
if command -v node >/dev/null && botocore_python >/dev/null &&
    [ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] && start_s3; then
    export STEPOP_S3_MULTIPART_THRESHOLD=5MiB STEPOP_S3_PART_SIZE=5MiB
    make_tree "$T/s3src" 6
    expect_rc 0 "S3 multipart put of a stream under valgrind" vg artifact put "$T/s3src" s3://test/t.tar.zst
    expect_rc 0 "S3 parallel get --unpack under valgrind" vg artifact get s3://test/t.tar.zst "$T/s3o" --unpack
    expect_rc 0 "S3 ls under valgrind" vg artifact ls s3://test/
    expect_rc 0 "S3 presign under valgrind" vg artifact presign s3://test/t.tar.zst
    vg_no_keys() { (unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; vg "$@"); }
    expect_rc 1 "S3 without credentials under valgrind" vg_no_keys artifact stat s3://test/t.tar.zst
fi
done_testing
