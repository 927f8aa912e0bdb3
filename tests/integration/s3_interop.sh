#!/usr/bin/env bash
# Interoperability through the verifying proxy: what stepop uploads, Debian's awscli and rclone
# download with the same sha256, and the other way round (single PUTs and multipart uploads,
# awkward keys); a presigned URL works with plain curl (also in s3.sh).
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
# Debian's own awscli, not another one earlier on PATH.
AWS=/usr/bin/aws
[ -x "$AWS" ] || AWS=$(command -v aws) || skip_all "awscli is not installed (make deps)"
command -v rclone >/dev/null || skip_all "rclone is not installed (make deps)"
start_s3 || { not_ok "s3rver and the verifying proxy start"; done_testing; }
export STEPOP_S3_MULTIPART_THRESHOLD=6MiB STEPOP_S3_PART_SIZE=5MiB
export AWS_PAGER="" AWS_MAX_ATTEMPTS=1
aws_() { "$AWS" --endpoint-url "$S3_URL" --no-cli-pager "$@"; }
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT=$S3_URL \
    RCLONE_CONFIG_S3_ACCESS_KEY_ID=$S3_AKID RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$S3_SECRET \
    RCLONE_CONFIG_S3_REGION=us-east-1 RCLONE_CONFIG_S3_FORCE_PATH_STYLE=true RCLONE_CONFIG=$T/rclone.conf
touch "$T/rclone.conf"
# rclone's AWS SDK fails on an AWS_CA_BUNDLE with its own HTTP transport; nothing here is TLS.
rclone_() { env -u AWS_CA_BUNDLE rclone --retries 1 --low-level-retries 1 -q "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

head -c 1500 /dev/urandom >"$T/small"
head -c $((17 * 1048576 + 3)) /dev/urandom >"$T/multi"
for f in small multi; do
    key="from-stepop/$f é+x y.bin"
    expect_rc 0 "stepop puts $f" "$STEPOP" artifact put "$T/$f" "s3://test/$key" --json
    check "$f: stepop reports the file's sha256" grep -q "\"sha256\":\"$(sha "$T/$f")\"" "$T/out"
    rm -f "$T/by-aws" "$T/by-rclone"
    check "$f: awscli downloads it" aws_ s3 cp --only-show-errors "s3://test/$key" "$T/by-aws"
    check "$f: with the same sha256 (awscli)" test "$(sha "$T/by-aws")" = "$(sha "$T/$f")"
    check "$f: rclone downloads it" rclone_ copyto "s3:test/$key" "$T/by-rclone"
    check "$f: with the same sha256 (rclone)" test "$(sha "$T/by-rclone")" = "$(sha "$T/$f")"
done
check "awscli lists what stepop wrote" sh -c "$AWS --endpoint-url $S3_URL s3 ls s3://test/from-stepop/ | grep -q 'multi é+x y.bin'"

# The other way: awscli and rclone upload (multipart above their thresholds), stepop downloads.
check "awscli uploads a small file" aws_ s3 cp --only-show-errors "$T/small" "s3://test/from-aws/small é.bin"
check "awscli uploads with multipart" aws_ s3 cp --only-show-errors --expected-size $((17 * 1048576 + 3)) "$T/multi" "s3://test/from-aws/multi.bin"
check "rclone uploads a small file" rclone_ copyto "$T/small" "s3:test/from-rclone/small é.bin"
check "rclone uploads with multipart" rclone_ --s3-upload-cutoff 5M --s3-chunk-size 5M copyto "$T/multi" "s3:test/from-rclone/multi.bin"
for src in aws rclone; do
    check "$src's big upload was a multipart upload" \
        test "$(s3_count "e['method']=='POST' and e['query'] in ('uploads', 'uploads=') and e['path']=='/test/from-$src/multi.bin'")" = 1
    for f in "small é.bin" multi.bin; do
        want=$(sha "$T/small")
        [ "$f" = multi.bin ] && want=$(sha "$T/multi")
        rm -f "$T/back"
        expect_rc 0 "stepop downloads $src's $f" "$STEPOP" artifact get "s3://test/from-$src/$f" "$T/back" --sha256 "$want"
    done
done
expect_rc 0 "stepop lists what the others wrote" "$STEPOP" artifact ls s3://test/from-rclone/
out_has "small é.bin" "including the unicode key"
check "the proxy refused no request from any client" test "$(s3_count "e.get('error')")" = 0
check "the proxy saw awscli, rclone and stepop sign with the same key" test "$(s3_count "e.get('verified')")" -ge 20
check "no multipart upload is left open" test "$(s3_uploads)" = "[]"

# A presigned URL from stepop, used by curl; and one from awscli, checked by the same proxy.
expect_rc 0 "stepop presigns" "$STEPOP" artifact presign "s3://test/from-aws/small é.bin"
check "curl fetches it" sh -c "curl -sSf -o '$T/curl' \"\$(cat '$T/out')\" && cmp '$T/small' '$T/curl'"
check "awscli's presigned URL passes the same check" sh -c "curl -sSf -o '$T/curl2' \"\$($AWS --endpoint-url $S3_URL s3 presign 's3://test/from-stepop/small é+x y.bin')\" && cmp '$T/small' '$T/curl2'"
done_testing
