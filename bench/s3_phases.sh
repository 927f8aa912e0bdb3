#!/usr/bin/env bash
# bench/s3_phases.sh [ROUNDS]: where an S3 upload's time goes on s3rver (case 5). Uploads 1 GiB
# with stepop and with the AWS CLI in turn, s3rver's request log on, and prints for each the wall
# time, the CPU s3rver spent, and how long s3rver took over CompleteMultipartUpload (it reads
# every part back, hashes and writes the object again: the same for every client).
# Data and s3rver's files stay under build/prof-s3 and are removed at the end.
set -u
. "$(dirname "$0")/../tests/lib.sh"
D=$ROOT/build/prof-s3
mkdir -p "$D/s3"
on_exit "rm -rf '$D'"
head -c $((1024 << 20)) /dev/urandom >"$D/gib.bin"
node "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" -d "$D/s3" -a 127.0.0.1 -p 0 --configure-bucket bench \
    >"$D/s3.log" 2>&1 &
SP=$!
on_exit "kill $SP"
for _ in $(seq 200); do
    p=$(sed -n 's/.*S3rver listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$D/s3.log" | head -1)
    [ -n "$p" ] && break
    sleep 0.05
done
[ -n "$p" ] || { echo "s3rver did not start" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null STEPOP_NO_PROGRESS=1
AWSBIN=$(command -v /usr/bin/aws || command -v aws)
now_ms() { date +%s%3N; }
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$SP/stat"; }
one() { # LABEL CMD...
    local label=$1 n a s e b took
    shift
    n=$(wc -l <"$D/s3.log")
    a=$(cpu_ms)
    s=$(now_ms)
    "$@" >/dev/null || { echo "$label: failed" >&2; return 1; }
    e=$(now_ms)
    b=$(cpu_ms)
    # s3rver logs each answer as "PATH?QUERY STATUS TIME SIZE"; the completion is the one with
    # an uploadId and no partNumber.
    took=$(tail -n +$((n + 1)) "$D/s3.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -a 'uploadId=[0-9a-f]* 200 ' |
        grep -v partNumber | grep -o ' [0-9,.]*m\?s ' | head -1)
    printf '%-7s wall %6d ms   s3rver CPU %6d ms   CompleteMultipartUpload in s3rver:%s\n' "$label" $((e - s)) $((b - a)) "$took"
}
for _ in $(seq "${1:-3}"); do
    AWS_ENDPOINT_URL_S3=http://127.0.0.1:$p one stepop "$STEPOP" artifact put "$D/gib.bin" s3://bench/s.bin
    one aws "$AWSBIN" --endpoint-url "http://127.0.0.1:$p" s3 cp --only-show-errors "$D/gib.bin" s3://bench/a.bin
done
