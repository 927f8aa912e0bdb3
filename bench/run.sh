#!/usr/bin/env bash
# make bench: stepop against the tools users would pick instead, on the same work, in one run.
# Generates its own data, starts its own servers on loopback, runs every case round-robin after
# the data is warm, and prints medians and ratios (bench/report.py). Never part of `make test`.
# BENCH_SIZE_MIB (default 2048), BENCH_REPEATS (3), BENCH_CASES (all: 1 2 3 4 5 6 7 8 10 11 12 13 14 15 16).
# Only when named: cases 17 to 19, through the shaping proxy (a capped link moves 2 GiB in half a
# minute a stream: about 12 minutes for 17 and 18, more for the sweep, 19), and case 9, the 20 GiB
# streamed S3 upload: it needs about 65 GB of free disk — the source tree, s3rver's parts and the
# object it assembles from them — and 15 minutes or more.
set -u
. "$(dirname "$0")/../tests/lib.sh"
. "$ROOT/bench/lib.sh"
export STEPOP_NO_PROGRESS=1
SIZE=${BENCH_SIZE_MIB:-2048}
REPEATS=${BENCH_REPEATS:-3}
CASES=${BENCH_CASES:-1 2 3 4 5 6 7 8 10 11 12 13 14 15 16}
BENCH_TMP=$T
BENCH_LOG=$ROOT/build/bench/bench.log
: >"$RESULTS"
: >"$BENCH_LOG"
DATA=${BENCH_DATA:-$ROOT/build/bench/data}
# The entrypoint in images is the static build (docs/static.md): it starts in about 1 ms, where
# the dynamic build first loads some 45 shared libraries.
STEPOP_STATIC=${STEPOP_STATIC:-$ROOT/build/stepop-static}
[ -x "$STEPOP_STATIC" ] || STEPOP_STATIC=$STEPOP
want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
# BENCH_BASELINE=/path/to/another/stepop runs it beside this build in the entrypoint case (1, as
# the static build's peer) and the http and S3 cases (2-5, 17, 18): before and after a change,
# measured in one run. baseline TOOL CMD sets $extra to its peer
# arguments for compare (CMD uses $BASELINE), or to nothing.
BASELINE=${BENCH_BASELINE:-}
baseline() { if [ -n "$BASELINE" ]; then extra=(-- "$1 (baseline)" "$2"); else extra=(); fi; }
started=$(now_ns)

# The data: a checkpoint-like tree (float32 weights and text), cached between runs; only the
# cases that move it (2 to 6, 17 to 19) need it.
TREE=$DATA/tree-$SIZE
BYTES=0
if want 2 || want 3 || want 4 || want 5 || want 6 || want 17 || want 18 || want 19; then
    if [ ! -f "$TREE/.done" ]; then
        echo "generating $SIZE MiB of checkpoint-like data" >&2
        rm -rf "$TREE"
        mkdir -p "$DATA"
        "$ROOT/build/bench/gen_data" "$TREE" "$SIZE" && touch "$TREE/.done" ||
            { echo "bench: no data in $TREE (build/bench/gen_data: make bench builds it)" >&2; exit 1; }
    fi
    BYTES=$(du -sb --exclude=.done "$TREE" | cut -f1)
fi
start_nginx || { echo "bench: nginx did not start" >&2; exit 1; }
W=$NGINX_ROOT
U=$NGINX_URL
[ "$BYTES" = 0 ] || cat "$TREE"/checkpoint/*.bin "$TREE"/text/*.txt >"$W/blob.bin"
# Before each timed download: remove the last one's output and flush it (sync, untimed), so no
# tool pays for the writeback of the tool before it.
drop_dir() { echo "rm -rf '$T/x' && mkdir -p '$T/x'"; }

if want 1; then
    echo "case 1: entrypoint overhead (one small input, one small output, command true)" >&2
    mkdir -p "$T/c1/in" "$T/store"
    head -c 100000 /dev/urandom >"$T/c1/in/input.bin"
    cp "$T/c1/in/input.bin" "$W/input.bin"
    cat >"$T/c1/entry.sh" <<'SH'
#!/bin/sh
# What a shell entrypoint does for the same step: fetch, run, pack, upload, report.
set -e
cd "$WORK"
curl -sf "$IN" -o input.bin
true
mkdir -p out && echo done >out/result.txt
tar -czf out.tar.gz out
curl -sf -T out.tar.gz "$OUT"
printf '{"phase":"succeeded","exit_code":0}' | curl -sf -T - "$STATUS"
SH
    chmod +x "$T/c1/entry.sh"
    for store in file http; do
        if [ $store = file ]; then base=file://$T/store/c1; else base=$U/c1; fi
        manifest "$T/c1/m-$store.json" "$base/run" "\"command\":[\"sh\",\"-c\",\"true; mkdir -p out; echo done > out/result.txt\"],
          \"workdir\":\"$T/c1/work-$store\",\"inputs\":[{\"name\":\"input\",\"uri\":\"$base-in/input.bin\"}],
          \"outputs\":[{\"name\":\"out\",\"path\":\"out\",\"format\":\"tar.gz\"}]"
        "$STEPOP" artifact put "$T/c1/in/input.bin" "$base-in/input.bin" >/dev/null 2>&1
        in_url=$base-in/input.bin
        [ $store = file ] && mkdir -p "$T/store/c1/sh" # curl -T file:// does not create folders
        mkdir -p "$T/c1/alone"
        baseline "stepop run (static build, as in images)" "STEPOP_LOG_INTERVAL=10s '$BASELINE' run --manifest '$T/c1/m-$store.json'"
        # The overhead is stepop's time less the step's own: the manifest's command run by itself.
        compare "entrypoint-$store" 100000 $((REPEATS * 7)) "true" \
            -- "step alone (the manifest's sh -c: true, mkdir, echo)" "cd '$T/c1/alone' && sh -c 'true; mkdir -p out; echo done > out/result.txt'" \
            -- "step alone (true)" "true" \
            -- "stepop run (static build, as in images)" "STEPOP_LOG_INTERVAL=10s '$STEPOP_STATIC' run --manifest '$T/c1/m-$store.json'" "${extra[@]}" \
            -- "stepop run (dynamic build)" "STEPOP_LOG_INTERVAL=10s '$STEPOP' run --manifest '$T/c1/m-$store.json'" \
            -- "sh+curl+tar entrypoint" "WORK='$T/c1/sh-$store' IN='$in_url' OUT='$base/sh/out.tar.gz' STATUS='$base/sh/status.json' sh -c 'mkdir -p \$WORK && $T/c1/entry.sh'" \
            -- "python3 -c 'import boto3' (floor)" "python3 -c 'import boto3'"
    done
    if start_s3 2>>"$BENCH_LOG"; then
        "$STEPOP" artifact put "$T/c1/in/input.bin" s3://test/c1-in/input.bin >/dev/null 2>&1
        manifest "$T/c1/m-s3.json" "s3://test/c1/run" "\"command\":[\"sh\",\"-c\",\"true; mkdir -p out; echo done > out/result.txt\"],
          \"workdir\":\"$T/c1/work-s3\",\"inputs\":[{\"name\":\"input\",\"uri\":\"s3://test/c1-in/input.bin\"}],
          \"outputs\":[{\"name\":\"out\",\"path\":\"out\",\"format\":\"tar.gz\"}]"
        baseline "stepop run (static build, as in images)" "STEPOP_LOG_INTERVAL=10s '$BASELINE' run --manifest '$T/c1/m-s3.json'"
        compare "entrypoint-s3" 100000 $((REPEATS * 3)) "true" \
            -- "step alone (the manifest's sh -c: true, mkdir, echo)" "cd '$T/c1/alone' && sh -c 'true; mkdir -p out; echo done > out/result.txt'" \
            -- "step alone (true)" "true" \
            -- "stepop run (static build, as in images)" "STEPOP_LOG_INTERVAL=10s '$STEPOP_STATIC' run --manifest '$T/c1/m-s3.json'" "${extra[@]}" \
            -- "stepop run (dynamic build)" "STEPOP_LOG_INTERVAL=10s '$STEPOP' run --manifest '$T/c1/m-s3.json'" \
            -- "python3 -c 'import boto3' (floor)" "python3 -c 'import boto3'"
    fi
fi

if want 3; then
    echo "case 3: pack and upload a $SIZE MiB directory to nginx" >&2
    baseline "stepop artifact put" "'$BASELINE' artifact put '$TREE' '$U/up0.tar.zst'"
    compare "pack-upload-tar.zst" "$BYTES" "$REPEATS" "rm -f '$W'/up*" "${extra[@]}" \
        -- "stepop artifact put" "'$STEPOP' artifact put '$TREE' '$U/up1.tar.zst'" \
        -- "tar | zstd -T0 | curl -T" "tar -C '$TREE' -cf - . | zstd -T0 -3 -q | curl -sf -T - '$U/up2.tar.zst'"
    baseline "stepop artifact put" "'$BASELINE' artifact put '$TREE' '$U/up0.tar.gz'"
    compare "pack-upload-tar.gz" "$BYTES" "$REPEATS" "rm -f '$W'/up*" "${extra[@]}" \
        -- "stepop artifact put" "'$STEPOP' artifact put '$TREE' '$U/up1.tar.gz'" \
        -- "tar | pigz | curl -T" "tar -C '$TREE' -cf - . | pigz -6 | curl -sf -T - '$U/up2.tar.gz'"
fi

if want 2; then
    echo "case 2: fetch and unpack $SIZE MiB from nginx" >&2
    # Case 3 (run first) leaves stepop's archives of the tree behind: they are the ones fetched.
    for fmt in tar.zst tar.gz; do
        [ -f "$W/up1.$fmt" ] && mv "$W/up1.$fmt" "$W/tree.$fmt" && continue
        "$STEPOP" artifact put "$TREE" "$U/tree.$fmt" >/dev/null 2>>"$BENCH_LOG"
    done
    for fmt in tar.zst tar.gz; do
        [ $fmt = tar.zst ] && dec="zstd -dc" || dec="gzip -dc"
        baseline "stepop artifact get --unpack" "'$BASELINE' artifact get '$U/tree.$fmt' '$T/x'  --unpack"
        compare "fetch-unpack-$fmt" "$(stat -c %s "$W/tree.$fmt")" "$REPEATS" "$(drop_dir) && sync" "${extra[@]}" \
            -- "stepop artifact get --unpack" "'$STEPOP' artifact get '$U/tree.$fmt' '$T/x'  --unpack" \
            -- "curl | $dec | tar -x" "curl -sf '$U/tree.$fmt' | $dec | tar -x -C '$T/x'" \
            -- "curl -o, then tar -x" "curl -sf '$U/tree.$fmt' -o '$T/dl.$fmt' && tar -x -C '$T/x' -f '$T/dl.$fmt' && rm -f '$T/dl.$fmt'"
    done
fi

if want 4; then
    echo "case 4: raw transfer of a $SIZE MiB object from nginx" >&2
    baseline "stepop artifact get" "'$BASELINE' artifact get '$U/blob.bin' '$T/blob0'"
    compare "raw-get" "$(stat -c %s "$W/blob.bin")" "$REPEATS" "rm -f '$T/blob'* && sync" "${extra[@]}" \
        -- "stepop artifact get" "'$STEPOP' artifact get '$U/blob.bin' '$T/blob1'" \
        -- "stepop artifact get, buffered writes (STEPOP_DIRECT_WRITE=off)" "STEPOP_DIRECT_WRITE=off '$STEPOP' artifact get '$U/blob.bin' '$T/blob4'" \
        -- "curl -o" "curl -sf '$U/blob.bin' -o '$T/blob2'" \
        -- "curl -o, then sha256sum (verified, as stepop)" "curl -sf '$U/blob.bin' -o '$T/blob3' && sha256sum '$T/blob3' >/dev/null"
    baseline "stepop artifact put" "'$BASELINE' artifact put '$W/blob.bin' '$U/blobup0.bin'"
    compare "raw-put" "$(stat -c %s "$W/blob.bin")" "$REPEATS" "rm -f '$W'/blobup*" "${extra[@]}" \
        -- "stepop artifact put" "'$STEPOP' artifact put '$W/blob.bin' '$U/blobup1.bin'" \
        -- "curl -T" "curl -sf -T '$W/blob.bin' '$U/blobup2.bin'"
fi

if want 5; then
    echo "case 5: S3 through s3rver, 1 GiB up and down" >&2
    if [ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ]; then
        S3D=$T/s3bench
        mkdir -p "$S3D"
        start_s3rver "$S3D" bench "$T/s3bench.log" || exit 1
        p=$S3RVER_PORT
        head -c $((1024 << 20)) "$W/blob.bin" >"$T/gib.bin"
        AWSBIN=$(command -v /usr/bin/aws || command -v aws)
        export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
        export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$p AWS_CONFIG_FILE=$T/none AWS_SHARED_CREDENTIALS_FILE=$T/none
        cat >"$T/rclone.conf" <<CONF
[s3]
type = s3
provider = Other
access_key_id = S3RVER
secret_access_key = S3RVER
endpoint = http://127.0.0.1:$p
region = us-east-1
CONF
        aws_cmd="env -u AWS_ENDPOINT_URL_S3 '$AWSBIN' --endpoint-url http://127.0.0.1:$p s3"
        baseline "stepop artifact put" "'$BASELINE' artifact put '$T/gib.bin' s3://bench/a0.bin"
        compare "s3-put-1GiB" $((1024 << 20)) "$REPEATS" "true" "${extra[@]}" \
            -- "stepop artifact put" "'$STEPOP' artifact put '$T/gib.bin' s3://bench/a.bin" \
            -- "aws s3 cp" "$aws_cmd cp --only-show-errors '$T/gib.bin' s3://bench/b.bin" \
            -- "rclone copyto" "env -u AWS_CA_BUNDLE rclone --config '$T/rclone.conf' copyto --ignore-times '$T/gib.bin' s3:bench/c.bin"
        baseline "stepop artifact get" "'$BASELINE' artifact get s3://bench/a.bin '$T/g0.bin'"
        compare "s3-get-1GiB" $((1024 << 20)) "$REPEATS" "rm -f '$T'/g?.bin && sync" "${extra[@]}" \
            -- "stepop artifact get" "'$STEPOP' artifact get s3://bench/a.bin '$T/g1.bin'" \
            -- "aws s3 cp" "$aws_cmd cp --only-show-errors s3://bench/a.bin '$T/g2.bin'" \
            -- "rclone copyto" "env -u AWS_CA_BUNDLE rclone --config '$T/rclone.conf' copyto s3:bench/a.bin '$T/g3.bin'"
        if [ "${BENCH_S3_SINK:-0}" = 1 ]; then
            # The clients' own ceiling: the same transfers against bench/s3sink.js, which discards
            # uploads and serves every GET from the file, so s3rver's work is out of the figure.
            node "$ROOT/bench/s3sink.js" "$T/gib.bin" >"$T/s3sink.log" 2>&1 &
            on_exit "kill $!"
            for _ in $(seq 200); do
                q=$(sed -n 's/^s3sink listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$T/s3sink.log")
                [ -n "$q" ] && break
                sleep 0.05
            done
            [ -n "$q" ] || { echo "bench: s3sink did not start" >&2; exit 1; }
            sink_aws="env -u AWS_ENDPOINT_URL_S3 '$AWSBIN' --endpoint-url http://127.0.0.1:$q s3"
            sink_env="env AWS_ENDPOINT_URL_S3=http://127.0.0.1:$q"
            baseline "stepop artifact put" "$sink_env '$BASELINE' artifact put '$T/gib.bin' s3://bench/a0.bin"
            compare "s3sink-put-1GiB" $((1024 << 20)) "$REPEATS" "true" "${extra[@]}" \
                -- "stepop artifact put" "$sink_env '$STEPOP' artifact put '$T/gib.bin' s3://bench/a.bin" \
                -- "aws s3 cp" "$sink_aws cp --only-show-errors '$T/gib.bin' s3://bench/b.bin"
            baseline "stepop artifact get" "$sink_env '$BASELINE' artifact get s3://bench/a.bin '$T/g0.bin'"
            compare "s3sink-get-1GiB" $((1024 << 20)) "$REPEATS" "rm -f '$T'/g?.bin && sync" "${extra[@]}" \
                -- "stepop artifact get" "$sink_env '$STEPOP' artifact get s3://bench/a.bin '$T/g1.bin'" \
                -- "aws s3 cp" "$sink_aws cp --only-show-errors s3://bench/a.bin '$T/g2.bin'"
        fi
        rm -f "$T"/g?.bin
        unset AWS_ENDPOINT_URL_S3
    else
        echo "  skipped: s3rver is not installed (make deps)" >&2
    fi
fi

if want 6; then
    echo "case 6: peak memory of put, get, pack and unpack of 4 GiB" >&2
    if [ ! -f "$DATA/tree-4096/.done" ]; then
        rm -rf "$DATA/tree-4096"
        "$ROOT/build/bench/gen_data" "$DATA/tree-4096" 4096 && touch "$DATA/tree-4096/.done"
    fi
    cat "$DATA"/tree-4096/checkpoint/*.bin "$DATA"/tree-4096/text/*.txt >"$T/big4.bin"
    peak_rss "rss-4GiB" "put (file, http)" "$STEPOP" artifact put "$T/big4.bin" "$U/big4.bin"
    rm -f "$T/big4.bin"
    peak_rss "rss-4GiB" "get (file, http)" "$STEPOP" artifact get "$U/big4.bin" "$T/big4back.bin"
    rm -f "$T/big4back.bin" "$W/big4.bin"
    peak_rss "rss-4GiB" "pack + put (tar.zst, http)" "$STEPOP" artifact put "$DATA/tree-4096" "$U/big4.tar.zst"
    peak_rss "rss-4GiB" "get + unpack (tar.zst, http)" "$STEPOP" artifact get "$U/big4.tar.zst" "$T/big4x" --unpack
    rm -rf "$T/big4x" "$W/big4.tar.zst"
    # tar.gz packing of 4 GiB takes over a minute here: its memory (a 1 MiB block per CPU in
    # flight) is measured by BENCH_CASES=6 BENCH_GZIP_RSS=1, outside the 15-minute run.
    if [ -n "${BENCH_GZIP_RSS:-}" ]; then
        peak_rss "rss-4GiB" "pack + put (tar.gz, http)" "$STEPOP" artifact put "$DATA/tree-4096" "$U/big4.tar.gz"
        peak_rss "rss-4GiB" "get + unpack (tar.gz, http)" "$STEPOP" artifact get "$U/big4.tar.gz" "$T/big4x" --unpack
        rm -rf "$T/big4x" "$W/big4.tar.gz"
    fi
fi

if want 7; then
    echo "case 7: submit overhead with the docker flavor on Podman" >&2
    if command -v podman >/dev/null && command -v runc >/dev/null && start_podman 2>>"$BENCH_LOG" && podman_images 2>>"$BENCH_LOG"; then
        PODMAN_UP=1
        export XDG_DATA_HOME=$T/xdg XDG_CONFIG_HOME=$T/xdgc
        pod="podman --root '$PODMAN_DIR/root' --runroot '$PODMAN_DIR/run' --tmpdir '$PODMAN_DIR/tmp'"
        compare "submit-docker" 0 "$REPEATS" "true" \
            -- "podman run --rm IMAGE true" "$pod run --rm '$STEP_IMAGE' true" \
            -- "stepop submit --flavor docker -- true" "'$STEPOP' submit --flavor docker --image '$STEP_IMAGE' -- true"
    else
        echo "  skipped: Podman did not start (make deps; see $BENCH_LOG)" >&2
    fi
fi

if want 8; then
    echo "case 8: log latency, step print to submitter print; log objects of a chatty step" >&2
    export XDG_DATA_HOME=$T/xdg8 XDG_CONFIG_HOME=$T/xdgc8
    unset STEPOP_LOG_INTERVAL
    # 30 lines 370 ms apart: out of step with the follower's 400 ms look, so the lines fall on
    # every point of its cycle.
    lat_step='i=0; while [ $i -lt 30 ]; do echo "LAT $(cut -d" " -f1 /proc/uptime)"; sleep 0.37; i=$((i+1)); done'
    python3 "$ROOT/bench/log_latency.py" log-latency "local flavor, file store" "$RESULTS" \
        -- "$STEPOP" submit -- sh -c "$lat_step"
    python3 "$ROOT/bench/log_latency.py" log-latency "local flavor, http store" "$RESULTS" \
        -- "$STEPOP" submit --store "$U/runs8" -- sh -c "$lat_step"
    if command -v podman >/dev/null && command -v runc >/dev/null && { [ -n "${PODMAN_UP:-}" ] ||
        { start_podman 2>>"$BENCH_LOG" && podman_images 2>>"$BENCH_LOG"; }; }; then
        python3 "$ROOT/bench/log_latency.py" log-latency "docker flavor on Podman, file store" "$RESULTS" \
            -- "$STEPOP" submit --flavor docker --image "$STEP_IMAGE" -- sh -c "$lat_step"
        # The container reaches nginx on loopback through the host's network.
        mkdir -p "$XDG_CONFIG_HOME/stepop"
        echo '{"operators": {"podhost": {"flavor": "docker", "settings": {"network": "host"}}}}' \
            >"$XDG_CONFIG_HOME/stepop/config.json"
        python3 "$ROOT/bench/log_latency.py" log-latency "docker flavor on Podman, http store" "$RESULTS" \
            -- "$STEPOP" submit --operator podhost --store "$U/runs8d" --image "$STEP_IMAGE" -- sh -c "$lat_step"
    else
        echo "  docker flavor skipped: Podman did not start (see $BENCH_LOG)" >&2
    fi
    # A line every 10 ms for 60 s: how many log objects a minute of chatter costs.
    "$STEPOP" submit -- sh -c 'end=$(($(cut -d. -f1 /proc/uptime) + 60)); n=0
        while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do echo "chatter $n"; n=$((n+1)); sleep 0.01; done' \
        >"$T/chatty.out" 2>>"$BENCH_LOG"
    chatty=$(ls -t "$XDG_DATA_HOME/stepop/runs" | head -1)
    objects=$(ls "$XDG_DATA_HOME/stepop/runs/$chatty/logs/1" | wc -l)
    lines=$(grep -c '^chatter ' "$T/chatty.out")
    printf '{"case":"log-objects","tool":"chatty step, 60 s","objects_per_min":%s,"lines":%s}\n' "$objects" "$lines" >>"$RESULTS"
    echo "  log-objects / chatty step: $objects objects for $lines lines in 60 s" >&2
fi

if want 9; then
    gib=${BENCH_STREAM_GIB:-20}
    echo "case 9: peak RSS of a $gib GiB streamed upload to S3 (tar of unknown size, parts that grow)" >&2
    # Sparse files of 1 GiB: read as zeros, they give the packer a stream of that size without
    # taking the disk that s3rver needs for the parts and the assembled object (2 x the stream).
    # The contents do not matter here: the tar is not compressed, and memory is what is measured.
    if [ ! -f "$DATA/tree-stream-$gib/.sparse" ]; then
        rm -rf "$DATA/tree-stream-$gib"
        mkdir -p "$DATA/tree-stream-$gib"
        for i in $(seq -w 1 "$gib"); do truncate -s 1G "$DATA/tree-stream-$gib/part-$i.bin"; done
        touch "$DATA/tree-stream-$gib/.sparse"
    fi
    if start_s3 2>>"$BENCH_LOG"; then
        # The stream's size is unknown, so parts start at 8 MiB and double every 1,000 parts; the
        # part buffers in flight stay within STEPOP_S3_MEMORY (docs/artifacts.md).
        for budget in 256MiB 64MiB; do
            STEPOP_S3_MEMORY=$budget peak_rss "rss-stream-${gib}GiB" "pack + put (tar, s3, STEPOP_S3_MEMORY=$budget)" \
                "$STEPOP" artifact put "$DATA/tree-stream-$gib" "s3://test/stream-$budget.tar"
            "$STEPOP" artifact rm "s3://test/stream-$budget.tar" >/dev/null 2>&1
        done
    else
        echo "  skipped: the S3 test server did not start (see $BENCH_LOG)" >&2
    fi
fi

if want 10; then
    echo "case 10: stepop submit --detach to a Job created, against kubectl create -f, on the Kubernetes test bed" >&2
    kbin=$(kbed_bin 2>>"$BENCH_LOG")
    if [ -z "$kbin" ]; then
        echo "  skipped: the Kubernetes test bed is not built (tests/testbeds/kubernetes/build.sh)" >&2
    elif KBED_BIN=$kbin "$ROOT/tests/testbeds/kubernetes/start.sh" "$T/kbed" >>"$BENCH_LOG" 2>&1; then
        on_exit "'$ROOT/tests/testbeds/kubernetes/stop.sh' '$T/kbed'"
        (
            # shellcheck disable=SC1091
            . "$T/kbed/env"
            export XDG_DATA_HOME=$T/xdg10 XDG_CONFIG_HOME=$T/xdgc10
            mkdir -p "$XDG_CONFIG_HOME/stepop" "$T/store10"
            # A node selector no node matches: the pods stay unscheduled, so only the API work is
            # timed and no container starts in the background of the next round.
            cat >"$XDG_CONFIG_HOME/stepop/config.json" <<JSON
{"store": "file://$T/store10", "default_operator": "k",
 "operators": {"k": {"flavor": "kubernetes", "settings": {"pod_settings": {
   "node_selectors": {"stepop-bench": "nowhere"},
   "volumes": [{"name": "store", "hostPath": {"path": "$T/store10"}}],
   "volume_mounts": [{"name": "store", "mountPath": "$T/store10"}]}}}}}
JSON
            "$STEPOP" submit --dry-run --image busybox:1 -- true 2>>"$BENCH_LOG" |
                python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["requests"]["requests"][0]["body"]))' >"$T/job10.json"
            # Each kubectl run creates the same Job under a new name.
            echo 0 >"$T/n10"
            next='n=$(($(cat '"$T/n10"') + 1)); echo $n >'"$T/n10"'; sed "s/\"name\": *\"stepop-[a-z0-9-]*\"/\"name\": \"kubectl-$n\"/" '"$T/job10.json"' >'"$T/job10-n.json"
            compare "submit-kubernetes" 0 "$REPEATS" "$next" \
                -- "kubectl create -f job.json" "'$KBED_KUBECTL' create -f '$T/job10-n.json'" \
                -- "stepop submit --detach (kubernetes)" "'$STEPOP' submit --detach --image busybox:1 -- true"
        )
    else
        echo "  skipped: the Kubernetes test bed did not start (see $BENCH_LOG)" >&2
    fi
fi

if want 11; then
    echo "case 11: stepop submit --detach to a training job accepted, against aws sagemaker create-training-job, on the SageMaker fake" >&2
    awsbin=$(command -v /usr/bin/aws || command -v aws)
    if ! botocore_python >/dev/null || [ -z "$awsbin" ]; then
        echo "  skipped: python3-botocore or the AWS CLI is missing" >&2
    elif start_s3 2>>"$BENCH_LOG"; then
        (
            # --start-delay 3600: every job stays Starting for the whole run, so only the API work
            # is timed and no container ever starts (nor needs Podman).
            PODMAN_OWNER=${PODMAN_OWNER:-bench11}
            start_sagemaker_fake --start-delay 3600 2>>"$BENCH_LOG" || { echo "  skipped: the SageMaker fake did not start" >&2; exit 0; }
            export XDG_CONFIG_HOME=$T/xdgc11
            mkdir -p "$XDG_CONFIG_HOME/stepop"
            cat >"$XDG_CONFIG_HOME/stepop/config.json" <<JSON
{"store": "s3://test/bench11", "default_operator": "sm",
 "operators": {"sm": {"flavor": "sagemaker", "settings": {"role_arn": "arn:aws:iam::123456789012:role/stepop-bench",
   "instance_type": "ml.m5.large", "region": "us-east-1", "entrypoint": ["/usr/local/bin/stepop", "run"]}}}}
JSON
            # The AWS CLI sends the very request stepop would (its --dry-run), under a new name each time.
            "$STEPOP" submit --dry-run --image busybox:1 -- true 2>>"$BENCH_LOG" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["requests"]["requests"]:
    if "TrainingJobName" in r["body"]:
        print(json.dumps(r["body"]))' >"$T/job11.json"
            echo 0 >"$T/n11"
            next='n=$(($(cat '"$T/n11"') + 1)); echo $n >'"$T/n11"'; sed "s/\"TrainingJobName\": *\"[^\"]*\"/\"TrainingJobName\": \"awscli-$n\"/" '"$T/job11.json"' >'"$T/job11-n.json"
            compare "submit-sagemaker" 0 "$REPEATS" "$next" \
                -- "aws sagemaker create-training-job" "AWS_PAGER= '$awsbin' --endpoint-url '$SAGEMAKER_FAKE_URL' sagemaker create-training-job --cli-input-json 'file://$T/job11-n.json'" \
                -- "stepop submit --detach (sagemaker)" "'$STEPOP' submit --detach --image busybox:1 -- true"
        )
    else
        echo "  skipped: the S3 test server did not start (see $BENCH_LOG)" >&2
    fi
fi

if want 12; then
    echo "case 12: Azure Blob through Azurite, 1 GiB up and down, against @azure/storage-blob" >&2
    if azurite_available && start_azurite --skipApiVersionCheck && azblob mkcontainer bench; then
        head -c $((1024 << 20)) /dev/urandom >"$T/az-gib.bin"
        # The official client with the same parallelism and block size as stepop's defaults.
        compare "azure-put-1GiB" $((1024 << 20)) "$REPEATS" "true" \
            -- "stepop artifact put" "'$STEPOP' artifact put '$T/az-gib.bin' az://bench/a.bin" \
            -- "@azure/storage-blob uploadFile" "node '$ROOT/tests/servers/azure_blob_client.js' put bench b.bin '$T/az-gib.bin'"
        compare "azure-get-1GiB" $((1024 << 20)) "$REPEATS" "rm -f '$T'/azg?.bin && sync" \
            -- "stepop artifact get" "'$STEPOP' artifact get az://bench/a.bin '$T/azg1.bin'" \
            -- "@azure/storage-blob downloadToFile" "node '$ROOT/tests/servers/azure_blob_client.js' get bench a.bin '$T/azg2.bin'" \
            -- "downloadToFile, then sha256sum (verified, as stepop)" "node '$ROOT/tests/servers/azure_blob_client.js' get bench a.bin '$T/azg3.bin' && sha256sum '$T/azg3.bin' >/dev/null"
    else
        echo "  skipped: Azurite did not start or is not installed (see $BENCH_LOG)" >&2
    fi
fi

if want 13; then
    # 100 MiB, not 1 GiB: the emulator reads each request body into memory, at most 130 MB, and
    # neither client can split an upload into chunks it accepts (it finishes a
    # resumable session at its first PUT). It reads the whole object from disk for every ranged
    # GET, which stepop's parallel ranges pay for: hence the one-range run beside them.
    echo "case 13: GCS through firebase-tools' storage emulator, 100 MiB up and down" >&2
    if [ -f "$ROOT/tests/servers/node_modules/firebase-tools/lib/emulator/storage/index.js" ] &&
        [ -d "$ROOT/tests/servers/node_modules/@google-cloud/storage" ] && start_gcs_emulator 2>>"$BENCH_LOG"; then
        head -c $((100 << 20)) /dev/urandom >"$T/gcs100.bin"
        node_gcs="node '$ROOT/tests/servers/gcs_client.js'"
        export STEPOP_GCS_CHUNK_SIZE=128MiB
        compare "gcs-put-100MiB" $((100 << 20)) "$REPEATS" "true" \
            -- "stepop artifact put" "'$STEPOP' artifact put '$T/gcs100.bin' gs://bench/a.bin" \
            -- "@google-cloud/storage upload" "$node_gcs upload bench b.bin '$T/gcs100.bin' resumable"
        compare "gcs-get-100MiB" $((100 << 20)) "$REPEATS" "rm -f '$T'/gcsg?.bin && sync" \
            -- "stepop artifact get" "'$STEPOP' artifact get gs://bench/a.bin '$T/gcsg1.bin'" \
            -- "stepop artifact get, one range" "STEPOP_GCS_PART_SIZE=128MiB '$STEPOP' artifact get gs://bench/a.bin '$T/gcsg3.bin'" \
            -- "@google-cloud/storage download" "$node_gcs download bench a.bin '$T/gcsg2.bin'"
        unset STEPOP_GCS_CHUNK_SIZE STORAGE_EMULATOR_HOST
    else
        echo "  skipped: firebase-tools or @google-cloud/storage is missing, or the emulator did not start" >&2
    fi
fi

if want 14; then
    echo "case 14: stepop submit --detach to a command job accepted, against the npm AzureMachineLearningWorkspaces client's jobs.createOrUpdate, on the Azure ML fake" >&2
    if ! command -v node >/dev/null; then
        echo "  skipped: node is missing" >&2
    elif start_s3 2>>"$BENCH_LOG"; then
        (
            # --start-delay 3600: every job stays NotStarted for the whole run, so only the API
            # work is timed and no container ever starts (nor needs Podman).
            PODMAN_OWNER=${PODMAN_OWNER:-bench14}
            start_azureml_fake --start-delay 3600 2>>"$BENCH_LOG" || { echo "  skipped: the Azure ML fake did not start" >&2; exit 0; }
            export XDG_CONFIG_HOME=$T/xdgc14
            mkdir -p "$XDG_CONFIG_HOME/stepop"
            cat >"$XDG_CONFIG_HOME/stepop/config.json" <<JSON
{"store": "s3://test/bench14", "default_operator": "aml",
 "operators": {"aml": {"flavor": "azureml", "settings": {"subscription_id": "$AZUREML_SUB", "resource_group": "$AZUREML_RG",
   "workspace": "$AZUREML_WS", "compute": "cpu", "api_version": "2022-10-01", "arm_endpoint": "$AZUREML_FAKE_URL"}}}}
JSON
            # The first submit makes the image's environment version, which both then use.
            "$STEPOP" submit --detach --image busybox:1 -- true >/dev/null 2>>"$BENCH_LOG"
            env_id=$("$STEPOP" submit --dry-run --image busybox:1 -- true 2>>"$BENCH_LOG" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"]["requests"][2]["body"]["properties"]["environmentId"])')
            echo 0 >"$T/n14"
            next='n=$(($(cat '"$T/n14"') + 1)); echo $n >'"$T/n14"
            compare "submit-azureml" 0 "$REPEATS" "$next" \
                -- "npm client jobs.createOrUpdate" "node '$ROOT/tests/servers/azureml_client.js' create npm-\$(cat '$T/n14') '$env_id' '${env_id%%/environments/*}/computes/cpu' 'stepop run'" \
                -- "stepop submit --detach (azureml)" "'$STEPOP' submit --detach --image busybox:1 -- true"
        )
    else
        echo "  skipped: the S3 test server did not start (see $BENCH_LOG)" >&2
    fi
fi

if want 15; then
    echo "case 15: stepop submit --detach to a custom job accepted, against one node process doing the npm JobServiceClient's createCustomJob, on the Vertex fake" >&2
    if ! protobuf_python >/dev/null || ! command -v protoc >/dev/null || ! command -v node >/dev/null ||
        [ ! -f "$ROOT/tests/servers/node_modules/@google-cloud/aiplatform/package.json" ]; then
        echo "  skipped: python3-protobuf, protoc, node or npm @google-cloud/aiplatform is missing" >&2
    elif start_s3 2>>"$BENCH_LOG"; then
        (
            # --start-delay 3600: every job stays QUEUED for the whole run, so only the API work is
            # timed and no container ever starts (nor needs Podman). Both sides take their bearer
            # token from the auth fake's metadata server.
            PODMAN_OWNER=${PODMAN_OWNER:-bench15}
            start_google_auth_fake --tokens "$T/gtokens15" --project bench-project 2>>"$BENCH_LOG" &&
                start_vertex_fake --tokens "$T/gtokens15" --start-delay 3600 2>>"$BENCH_LOG" ||
                { echo "  skipped: the Google auth fake or the Vertex fake did not start" >&2; exit 0; }
            export XDG_CONFIG_HOME=$T/xdgc15
            mkdir -p "$XDG_CONFIG_HOME/stepop"
            cat >"$XDG_CONFIG_HOME/stepop/config.json" <<JSON
{"store": "s3://test/bench15", "default_operator": "vx",
 "operators": {"vx": {"flavor": "vertex", "settings": {"api_endpoint": "$VERTEX_FAKE_URL",
   "logging_endpoint": "$VERTEX_FAKE_URL", "entrypoint": ["/usr/local/bin/stepop", "run"]}}}}
JSON
            # Google's client sends the very CustomJob stepop would (its --dry-run).
            "$STEPOP" submit --dry-run --image busybox:1 -- true 2>>"$BENCH_LOG" |
                python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["requests"]["requests"][0]["body"]))' >"$T/job15.json"
            VERTEX_TOKEN=$(curl -s -H 'Metadata-Flavor: Google' \
                "$GOOGLE_AUTH_FAKE_URL/computeMetadata/v1/instance/service-accounts/default/token" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
            export VERTEX_TOKEN
            compare "submit-vertex" 0 "$REPEATS" "true" \
                -- "node: JobServiceClient.createCustomJob" "node '$ROOT/tests/servers/vertex_client.js' '$VERTEX_FAKE_HOST' create projects/bench-project/locations/us-central1 '$T/job15.json'" \
                -- "stepop submit --detach (vertex)" "'$STEPOP' submit --detach --image busybox:1 -- true"
        )
    else
        echo "  skipped: the S3 test server did not start (see $BENCH_LOG)" >&2
    fi
fi

if want 16; then
    echo "case 16: a created Modal sandbox, stepop submit --detach against the npm modal SDK, on the Modal fake" >&2
    if modal_fake_available && start_s3 2>>"$BENCH_LOG"; then
        (
            # --start-delay 3600 and --images-unchecked: no sandbox ever gets a task or a
            # container (nor needs Podman), so only the API work is timed: each tool stops at
            # SandboxCreate's answer (the SDK's create() would go on to wait for a task).
            PODMAN_OWNER=${PODMAN_OWNER:-bench16}
            start_modal_fake --start-delay 3600 --images-unchecked 2>>"$BENCH_LOG" || { echo "  skipped: the Modal fake did not start" >&2; exit 0; }
            export XDG_CONFIG_HOME=$T/xdgc16 HOME=$T/home16
            mkdir -p "$XDG_CONFIG_HOME/stepop" "$HOME"
            cat >"$XDG_CONFIG_HOME/stepop/config.json" <<JSON
{"store": "s3://test/bench16", "default_operator": "md",
 "operators": {"md": {"flavor": "modal", "settings": {"pass_env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]}}}}
JSON
            compare "submit-modal" 0 "$REPEATS" "true" \
                -- "npm modal: apps.fromName, images.fromRegistry, sandboxes.create (one node process)" \
                "node '$ROOT/tests/servers/modal_client.js' create '{\"image\": \"busybox:1\", \"app\": \"stepop\", \"command\": [\"true\"], \"env\": {\"K\": \"v\"}, \"exitOnCreate\": true}' >/dev/null" \
                -- "stepop submit --detach (modal)" "'$STEPOP' submit --detach --image busybox:1 -- true"
        )
    else
        echo "  skipped: npm modal or the S3 test server is missing (see $BENCH_LOG)" >&2
    fi
fi

# Real links (cases 17 to 19): the shaping proxy (bench/shaper.c) in front of the server caps every
# connection at BENCH_LINK_RATE bytes a second each way (80M: an object store's usual stream) and
# delays data by half of BENCH_LINK_RTT each way (20 ms) and a new connection by one RTT; one
# stream then moves at most the cap, and parallel connections are what a client has to go faster.
LINK_RATE=${BENCH_LINK_RATE:-80M}
LINK_RTT=${BENCH_LINK_RTT:-20}
link_note="$LINK_RATE B/s a connection, $LINK_RTT ms round trip"

if want 17; then
    echo "case 17: $SIZE MiB up and down the http store (nginx) through the shaping proxy ($link_note)" >&2
    start_shaper "$NGINX_PORT" || exit 1
    L=http://127.0.0.1:$SHAPER_PORT
    baseline "stepop artifact get" "'$BASELINE' artifact get '$L/blob.bin' '$T/lk0'"
    shaper_compare "link-http-get" "$(stat -c %s "$W/blob.bin")" "$REPEATS" "rm -f '$T/lk'* && sync" "${extra[@]}" \
        -- "stepop artifact get" "'$STEPOP' artifact get '$L/blob.bin' '$T/lk1'" \
        -- "curl -o (one stream)" "curl -sf '$L/blob.bin' -o '$T/lk2'"
    # WebDAV has no standard parallel upload: stepop's http PUT is one stream, like curl's.
    shaper_compare "link-http-put" "$(stat -c %s "$W/blob.bin")" "$REPEATS" "rm -f '$W'/lkup*" \
        -- "stepop artifact put (one PUT)" "'$STEPOP' artifact put '$W/blob.bin' '$L/lkup1.bin'" \
        -- "curl -T (one stream)" "curl -sf -T '$W/blob.bin' '$L/lkup2.bin'"
    rm -f "$W"/lkup*
fi

# link_s3: s3rver (bucket "link") behind the shaping proxy, with the AWS CLI's, rclone's and
# stepop's endpoint set to the proxy; $link_aws and $link_rclone are the peers' commands.
link_s3() {
    S3L=$T/s3link
    mkdir -p "$S3L"
    start_s3rver "$S3L" link "$T/s3link.log" || return 1
    start_shaper "$S3RVER_PORT" || return 1
    local awsbin
    awsbin=$(command -v /usr/bin/aws || command -v aws)
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$SHAPER_PORT AWS_CONFIG_FILE=$T/none AWS_SHARED_CREDENTIALS_FILE=$T/none
    cat >"$T/rclone-link.conf" <<CONF
[s3]
type = s3
provider = Other
access_key_id = S3RVER
secret_access_key = S3RVER
endpoint = http://127.0.0.1:$SHAPER_PORT
region = us-east-1
CONF
    link_aws="env -u AWS_ENDPOINT_URL_S3 '$awsbin' --endpoint-url http://127.0.0.1:$SHAPER_PORT s3 cp --only-show-errors"
    link_rclone="env -u AWS_CA_BUNDLE rclone --config '$T/rclone-link.conf' copyto"
}

if want 18; then
    echo "case 18: $SIZE MiB up and down S3 (s3rver) through the shaping proxy ($link_note)" >&2
    if [ ! -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ]; then
        echo "  skipped: s3rver is not installed (make deps)" >&2
    elif link_s3; then
        LB=$(stat -c %s "$W/blob.bin")
        # curl's one stream, signed as any S3 client would hand it out: presigned URLs (1 h).
        put_url=$("$STEPOP" artifact presign s3://link/d.bin --method PUT)
        baseline "stepop artifact put" "'$BASELINE' artifact put '$W/blob.bin' s3://link/a0.bin"
        shaper_compare "link-s3-put" "$LB" "$REPEATS" "true" "${extra[@]}" \
            -- "stepop artifact put" "'$STEPOP' artifact put '$W/blob.bin' s3://link/a.bin" \
            -- "aws s3 cp" "$link_aws '$W/blob.bin' s3://link/b.bin" \
            -- "rclone copyto" "$link_rclone --ignore-times '$W/blob.bin' s3:link/c.bin" \
            -- "curl -T (one stream, presigned)" "curl -sf -T '$W/blob.bin' '$put_url'"
        get_url=$("$STEPOP" artifact presign s3://link/a.bin)
        baseline "stepop artifact get" "'$BASELINE' artifact get s3://link/a.bin '$T/lg0.bin'"
        shaper_compare "link-s3-get" "$LB" "$REPEATS" "rm -f '$T'/lg?.bin && sync" "${extra[@]}" \
            -- "stepop artifact get" "'$STEPOP' artifact get s3://link/a.bin '$T/lg1.bin'" \
            -- "aws s3 cp" "$link_aws s3://link/a.bin '$T/lg2.bin'" \
            -- "rclone copyto" "$link_rclone s3:link/a.bin '$T/lg3.bin'" \
            -- "curl -o (one stream, presigned)" "curl -sf '$get_url' -o '$T/lg4.bin'"
        rm -f "$T"/lg?.bin
        unset AWS_ENDPOINT_URL_S3
    else
        echo "  skipped: s3rver or the shaping proxy did not start (see $BENCH_LOG)" >&2
    fi
fi

if want 19; then
    # Not in the default run (its 12 settings x 2 directions x BENCH_REPEATS transfers take
    # 10 minutes or more): which STEPOP_S3_CONCURRENCY and STEPOP_S3_PART_SIZE a real link wants.
    # BENCH_SWEEP lists the settings (CONCURRENCYxPART_MIB, the default first: the report's
    # ratios are against the first), BENCH_SWEEP_DIRS the directions ("put get"; "http-get" adds
    # the http store's ranged GETs through the proxy, below). Each upload may
    # hold concurrency x part size (STEPOP_S3_MEMORY raised to match), as each download does.
    sweep_mib=${BENCH_SWEEP_MIB:-1024}
    echo "case 19: STEPOP_S3_CONCURRENCY x STEPOP_S3_PART_SIZE, $sweep_mib MiB through the shaping proxy ($link_note)" >&2
    if [ ! -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ]; then
        echo "  skipped: s3rver is not installed (make deps)" >&2
    elif link_s3; then
        head -c $((sweep_mib << 20)) "$W/blob.bin" >"$T/sweep.bin"
        [ "$(stat -c %s "$T/sweep.bin")" = $((sweep_mib << 20)) ] || echo "  the data is smaller than $sweep_mib MiB: the sweep moves $(stat -c %s "$T/sweep.bin") bytes" >&2
        case " ${BENCH_SWEEP_DIRS:-put get} " in *" get "*) "$STEPOP" artifact put "$T/sweep.bin" s3://link/sweep.bin >/dev/null 2>>"$BENCH_LOG" ;; esac
        puts=() gets=()
        # The default first: the report's ratios are against it.
        for cp in ${BENCH_SWEEP:-8x8 4x8 16x8 32x8 4x16 8x16 16x16 32x16 4x32 8x32 16x32 32x32}; do
            c=${cp%x*} p=${cp#*x}
            env="STEPOP_S3_CONCURRENCY=$c STEPOP_S3_PART_SIZE=${p}MiB STEPOP_S3_MEMORY=$((c * p))MiB"
            puts+=(-- "stepop $c x $p MiB ($((c * p)) MiB)" "$env '$STEPOP' artifact put '$T/sweep.bin' s3://link/sw$cp.bin")
            gets+=(-- "stepop $c x $p MiB ($((c * p)) MiB)" "$env '$STEPOP' artifact get s3://link/sweep.bin '$T/sg.bin'")
        done
        case " ${BENCH_SWEEP_DIRS:-put get} " in *" put "*) ;; *) puts=() ;; esac
        case " ${BENCH_SWEEP_DIRS:-put get} " in *" get "*) ;; *) gets=() ;; esac
        [ ${#puts[@]} = 0 ] || shaper_compare "link-s3-sweep-put" "$(stat -c %s "$T/sweep.bin")" "$REPEATS" "true" "${puts[@]}"
        [ ${#gets[@]} = 0 ] || shaper_compare "link-s3-sweep-get" "$(stat -c %s "$T/sweep.bin")" "$REPEATS" "rm -f '$T/sg.bin' && sync" "${gets[@]}"
        # http-get: the same settings as STEPOP_HTTP_CONCURRENCY and STEPOP_HTTP_PART_SIZE, on
        # nginx, which (unlike s3rver) keeps up with the link; the http store's ranged GETs
        # share their engine with S3's downloads (artifacts/ranged_get.c).
        if case " ${BENCH_SWEEP_DIRS:-put get} " in *" http-get "*) true ;; *) false ;; esac && start_shaper "$NGINX_PORT"; then
            cp "$T/sweep.bin" "$W/sweep.bin"
            hgets=()
            for cp in ${BENCH_SWEEP:-8x8 4x8 16x8 32x8 4x16 8x16 16x16 32x16 4x32 8x32 16x32 32x32}; do
                c=${cp%x*} p=${cp#*x}
                hgets+=(-- "stepop $c x $p MiB ($((c * p)) MiB)" "STEPOP_HTTP_CONCURRENCY=$c STEPOP_HTTP_PART_SIZE=${p}MiB '$STEPOP' artifact get http://127.0.0.1:$SHAPER_PORT/sweep.bin '$T/sg.bin'")
            done
            shaper_compare "link-http-sweep-get" "$(stat -c %s "$T/sweep.bin")" "$REPEATS" "rm -f '$T/sg.bin' && sync" "${hgets[@]}"
            rm -f "$W/sweep.bin"
        fi
        rm -f "$T/sweep.bin" "$T/sg.bin"
        unset AWS_ENDPOINT_URL_S3
    else
        echo "  skipped: s3rver or the shaping proxy did not start (see $BENCH_LOG)" >&2
    fi
fi

echo "total $(( ($(now_ns) - started) / 1000000000 )) s" >&2
python3 "$ROOT/bench/report.py" "$RESULTS" "$ROOT/build/bench/results.json"
