#!/usr/bin/env bash
# stepop run from manifest to final status on the file store: phases, status fields, the step's
# environment, pass-through and shipped logs, inputs (sha256, retries), outputs and outputs.json,
# heartbeats, the status callback, manifest errors.
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms
store=$T/store
run=file://$store/runs/r1
mkdir -p "$T/in/tree/sub"
printf 'dataset\n' >"$T/in/data.txt"
printf 'deep\n' >"$T/in/tree/sub/f.txt"
"$STEPOP" artifact put "$T/in/tree" "file://$T/in/tree.tar.gz" >/dev/null 2>&1
sum=$(sha256sum "$T/in/data.txt" | cut -d' ' -f1)

cat >"$T/step.sh" <<'SH'
echo "to stdout"
echo "to stderr" >&2
cat "$STEPOP_INPUT_DATA"
cat "$STEPOP_INPUT_TREE/sub/f.txt"
echo "workdir=$(pwd) extra=$EXTRA id=$STEPOP_RUN_ID attempt=$STEPOP_ATTEMPT"
echo weights >"$STEPOP_OUTPUT_MODEL/weights.bin"
echo '{"acc": 0.9}' >"$STEPOP_OUTPUT_METRICS"
SH
manifest "$T/m.json" "$run" "\"step\":\"train\",\"command\":[\"sh\",\"$T/step.sh\"],\"workdir\":\"$T/work\",
  \"env\":{\"EXTRA\":\"x y\"},
  \"inputs\":[{\"name\":\"data\",\"uri\":\"file://$T/in/data.txt\",\"sha256\":\"$sum\"},
              {\"name\":\"tree\",\"uri\":\"file://$T/in/tree.tar.gz\",\"unpack\":true,\"path\":\"inputs/tree\"}],
  \"outputs\":[{\"name\":\"model\",\"path\":\"out/model\"},{\"name\":\"metrics\",\"path\":\"out/m.json\",\"format\":\"file\"},
               {\"name\":\"extra\",\"path\":\"out/none\",\"optional\":true}]"
expect_rc 0 "a step with inputs and outputs succeeds" "$STEPOP" run --manifest "$T/m.json"
out_has "to stdout" "the step's stdout passes through to stdout"
err_has "to stderr" "the step's stderr passes through to stderr"
check "stderr output does not leak into stdout" sh -c "! grep -q 'to stderr' '$T/out'"
out_has "workdir=$T/work extra=x y id=r1 attempt=1" "workdir, env and STEPOP_ variables reach the step"
out_has "dataset" "STEPOP_INPUT_DATA points at the fetched file"
out_has "deep" "an unpacked input is a directory"
s=$store/runs/r1/status.json
is_eq "final phase succeeded" "$(jq_py "$s" "d['phase']")" succeeded
is_eq "exit code 0 recorded" "$(jq_py "$s" "d['exit_code']")" 0
is_eq "no reason on success" "$(jq_py "$s" "d['reason']")" None
is_eq "run_id and attempt" "$(jq_py "$s" "d['run_id'], d['attempt']")" "r1 1"
is_eq "every phase has start and end times" "$(jq_py "$s" "sorted(k for k,v in d['phases'].items() if v['started_at'] and v['ended_at'])")" \
    "['checking_gpu', 'fetching', 'running', 'starting', 'uploading']"
check "timestamps are RFC 3339 UTC" python3 -c "
import json,re; d=json.load(open('$s'))
assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', d['updated_at'])"
is_eq "host recorded" "$(jq_py "$s" "d['host']")" "$(python3 -c 'import socket; print(socket.gethostname())')"
o=$store/runs/r1/outputs.json
check "outputs.json written" test -f "$o"
is_eq "outputs.json lists the stored outputs" "$(jq_py "$o" "[x['name'] for x in d['outputs']]")" "['model', 'metrics']"
check "outputs.json sha256 matches the stored objects" python3 -c "
import json,hashlib; d=json.load(open('$o'))
for x in d['outputs']:
    p = x['uri'][len('file://'):]
    assert hashlib.sha256(open(p,'rb').read()).hexdigest() == x['sha256'], x
    assert x['size'] == len(open(p,'rb').read())"
check "the metrics file was stored as is" grep -q acc "$store/runs/r1/outputs/metrics"
# outputs.json is the run's commit record: written after every output (file times tick coarsely,
# so "not older" is what can be checked).
check "outputs.json was written after the outputs" python3 -c "
import os; o = os.stat('$o').st_mtime_ns
for f in ('model.tar.zst', 'metrics'):
    assert os.stat('$store/runs/r1/outputs/' + f).st_mtime_ns <= o, f"
check "the model directory was packed" sh -c "tar --zstd -tf '$store/runs/r1/outputs/model.tar.zst' | grep -q weights.bin"
cat "$store"/runs/r1/logs/1/*.log >"$T/shipped"
check "shipped logs hold stdout and stderr" sh -c "grep -q 'to stdout' '$T/shipped' && grep -q 'to stderr' '$T/shipped'"
check "shipped logs hold stepop's own lines" grep -q "stepop: the step exited with code 0" "$T/shipped"

# Exit code and failure status.
manifest "$T/fail.json" "file://$store/runs/fail" "\"command\":[\"sh\",\"-c\",\"echo partial > \$STEPOP_OUTPUT_CKPT; exit 42\"],\"workdir\":\"$T/w2\",
  \"outputs\":[{\"name\":\"ckpt\",\"path\":\"ckpt.txt\",\"format\":\"file\"}]"
expect_rc 42 "a failing step's code comes through" "$STEPOP" run --manifest "$T/fail.json"
s=$store/runs/fail/status.json
is_eq "phase failed, reason user_error" "$(jq_py "$s" "d['phase'], d['reason'], d['exit_code']")" "failed user_error 42"
check "the failed step's output is still stored (checkpoints survive)" grep -q partial "$store/runs/fail/outputs/ckpt"
check "but no outputs.json marks it complete" test ! -e "$store/runs/fail/outputs.json"

manifest "$T/missing-out.json" "file://$store/runs/mo" "\"command\":[\"true\"],\"workdir\":\"$T/w3\",
  \"outputs\":[{\"name\":\"a\",\"path\":\"a.txt\",\"format\":\"file\"},{\"name\":\"model\",\"path\":\"model\"}]"
rmdir "$T/w3/model" 2>/dev/null
cat >"$T/rm-model.sh" <<'SH'
rm -rf "$STEPOP_OUTPUT_MODEL"; echo a >"$STEPOP_OUTPUT_A"
SH
manifest "$T/missing-out.json" "file://$store/runs/mo" "\"command\":[\"sh\",\"$T/rm-model.sh\"],\"workdir\":\"$T/w3\",
  \"outputs\":[{\"name\":\"a\",\"path\":\"a.txt\",\"format\":\"file\"},{\"name\":\"model\",\"path\":\"model\"}]"
expect_rc 74 "a missing output fails a step that exited 0 (exit 74)" "$STEPOP" run --manifest "$T/missing-out.json"
s=$store/runs/mo/status.json
is_eq "reason upload_error" "$(jq_py "$s" "d['phase'], d['reason']")" "failed upload_error"
check "the message names the output" sh -c "grep -q 'output model' '$s'"
check "outputs.json never appears when an output failed" test ! -e "$store/runs/mo/outputs.json"

# Inputs.
manifest "$T/badsum.json" "file://$store/runs/bs" "\"command\":[\"touch\",\"$T/step-ran\"],
  \"inputs\":[{\"name\":\"data\",\"uri\":\"file://$T/in/data.txt\",\"sha256\":\"$(printf '%064d' 0)\"}]"
expect_rc 66 "a wrong input sha256 stops the run (exit 66)" "$STEPOP" run --manifest "$T/badsum.json"
check "the step never started" test ! -e "$T/step-ran"
is_eq "reason input_error (user kind)" "$(jq_py "$store/runs/bs/status.json" "d['phase'], d['reason'], d['reason_kind']")" \
    "failed input_error user"
check "no running phase was entered" test "$(jq_py "$store/runs/bs/status.json" "'running' in d['phases']")" = False
manifest "$T/noinput.json" "file://$store/runs/ni" "\"command\":[\"true\"],\"inputs\":[{\"name\":\"x\",\"uri\":\"file://$T/in/nope\"}]"
expect_rc 66 "a missing input stops the run" "$STEPOP" run --manifest "$T/noinput.json"
err_has "input x" "the message names the input"

if command -v node >/dev/null && start_faulty; then
    cp "$T/in/data.txt" "$FAULTY_ROOT/data.txt"
    manifest "$T/flaky.json" "file://$store/runs/fl" "\"command\":[\"cat\",\"data\"],\"workdir\":\"$T/w4\",
      \"inputs\":[{\"name\":\"data\",\"uri\":\"$FAULTY_URL/_f/s500x3/data.txt\"}]"
    expect_rc 0 "an input from a server that fails three times with 500 still arrives" "$STEPOP" run --manifest "$T/flaky.json"
    out_has dataset "and the step reads it"
    manifest "$T/down.json" "file://$store/runs/dn" "\"command\":[\"true\"],
      \"inputs\":[{\"name\":\"data\",\"uri\":\"$FAULTY_URL/_f/s503x50/data.txt\"}]"
    expect_rc 66 "an input behind a persistent 503 fails after bounded retries" env STEPOP_HTTP_ATTEMPTS=2 "$STEPOP" run --manifest "$T/down.json"
    is_eq "a 5xx input error is a system-kind reason" "$(jq_py "$store/runs/dn/status.json" "d['reason'], d['reason_kind']")" \
        "input_error system"
    faulty_reset
    manifest "$T/cb.json" "file://$store/runs/cb" "\"command\":[\"sleep\",\"0.3\"]"
    expect_rc 0 "a run with STEPOP_CALLBACK_URL" env STEPOP_CALLBACK_URL="$FAULTY_URL/hook" "$STEPOP" run --manifest "$T/cb.json"
    sleep 0.2
    check "status changes were POSTed to the callback, ending with the final one" python3 -c "
import json,urllib.request
log = json.load(urllib.request.urlopen('$FAULTY_URL/_log'))
bodies = [json.loads(e['body']) for e in log if e['method'] == 'POST']
assert bodies and bodies[-1]['phase'] == 'succeeded', [b['phase'] for b in bodies]
assert 'running' in [b['phase'] for b in bodies]"
    expect_rc 0 "a dead callback receiver does not hold up the step" env STEPOP_CALLBACK_URL=http://127.0.0.1:1/hook \
        "$STEPOP" run --manifest "$T/cb.json"
fi

# Heartbeats.
# The step outlives the look by seconds: a loaded machine may start python slowly.
manifest "$T/hb.json" "file://$store/runs/hb" "\"command\":[\"sleep\",\"4\"],\"heartbeat\":\"1s\""
"$STEPOP" run --manifest "$T/hb.json" >/dev/null 2>&1 &
hb_pid=$!
sleep 1.8
cp "$store/runs/hb/status.json" "$T/hb-status.json" 2>/dev/null
hb1=$(jq_py "$T/hb-status.json" "d['heartbeat_at']" 2>/dev/null)
ph=$(jq_py "$T/hb-status.json" "d['phase']" 2>/dev/null)
wait "$hb_pid"
is_eq "status.json says running while the step runs" "$ph" running
check "heartbeat_at is set while running" test -n "$hb1" -a "$hb1" != None

# Logs: order, binary safety, chunking.
manifest "$T/bin.json" "file://$store/runs/bin" "\"command\":[\"sh\",\"-c\",\"head -c 3000000 $T/random\"]"
head -c 3000000 /dev/urandom >"$T/random"
expect_rc 0 "a step writing 3 MB of binary output" env STEPOP_LOG_INTERVAL=10s "$STEPOP" run --manifest "$T/bin.json"
check "stdout passes the bytes through unchanged" cmp "$T/out" "$T/random"
python3 - "$store/runs/bin/logs/1" "$T/random" >"$T/chunks" <<'PY'
import os, sys
d, ref = sys.argv[1], open(sys.argv[2], "rb").read()
names = sorted(os.listdir(d))
data = b"".join(open(os.path.join(d, n), "rb").read() for n in names)
print(len(names), max(os.path.getsize(os.path.join(d, n)) for n in names), ref in data,
      names == ["%08d.log" % i for i in range(len(names))])
PY
read -r nchunks biggest contained contiguous <"$T/chunks"
check "output over 1 MiB is shipped in several chunks" test "$nchunks" -ge 3
check "no chunk is over 1 MiB" test "$biggest" -le 1048576
is_eq "the shipped log holds the binary output byte for byte" "$contained" True
is_eq "chunks are numbered 00000000.log, 00000001.log, ... with no gap" "$contiguous" True
manifest "$T/order.json" "file://$store/runs/order" "\"command\":[\"sh\",\"-c\",\"i=0; while [ \$i -lt 3000 ]; do echo line \$i; i=\$((i+1)); done\"]"
expect_rc 0 "a step printing 3000 lines" "$STEPOP" run --manifest "$T/order.json"
check "shipped lines are complete and in order" sh -c "cat '$store'/runs/order/logs/1/*.log | grep '^line ' | awk '{ if (\$2 != NR-1) exit 1 } END { if (NR != 3000) exit 1 }'"

# The whole run prefix on the HTTP store (nginx WebDAV), manifest included.
if command -v nginx >/dev/null && start_nginx; then
    mkdir -p "$NGINX_ROOT/data" && cp "$T/in/data.txt" "$NGINX_ROOT/data/"
    manifest "$T/http.json" "$NGINX_URL/runs/h1" "\"command\":[\"sh\",\"-c\",\"cat data; echo out > result.txt\"],\"workdir\":\"$T/wh\",
      \"inputs\":[{\"name\":\"data\",\"uri\":\"$NGINX_URL/data/data.txt\"}],
      \"outputs\":[{\"name\":\"result\",\"path\":\"result.txt\",\"format\":\"file\"}]"
    "$STEPOP" artifact put "$T/http.json" "$NGINX_URL/runs/h1/manifest.json" >/dev/null 2>&1
    expect_rc 0 "a run whose manifest, inputs, outputs, status and logs live on HTTP" \
        env STEPOP_MANIFEST="$NGINX_URL/runs/h1/manifest.json" "$STEPOP" run
    is_eq "status.json on the server says succeeded" "$(jq_py "$NGINX_ROOT/runs/h1/status.json" "d['phase']")" succeeded
    check "outputs.json and the output are on the server" test -f "$NGINX_ROOT/runs/h1/outputs.json" -a -f "$NGINX_ROOT/runs/h1/outputs/result"
    # In any chunk: on a loaded machine the first one can go out before the step has printed.
    check "logs are on the server" sh -c "cat '$NGINX_ROOT'/runs/h1/logs/1/*.log | grep -q dataset"
fi

# Manifest errors.
expect_rc 65 "a missing manifest exits 65" "$STEPOP" run --manifest "$T/nope.json"
printf '{"api_version":"stepop/v1","run_id":"bad","run_uri":"file://%s/runs/bad/","command":["true"],"timeout":"soon"}' "$store" >"$T/bad.json"
expect_rc 65 "an invalid manifest exits 65" "$STEPOP" run --manifest "$T/bad.json"
err_has "timeout: invalid duration" "the error names the field"
is_eq "and its status says manifest_error" "$(jq_py "$store/runs/bad/status.json" "d['phase'], d['reason']")" "failed manifest_error"
printf '{"api_version":"stepop/v1","run_id":"dup","run_id":"other","run_uri":"file://%s/runs/dup/","command":["true"]}' "$store" >"$T/dup.json"
expect_rc 65 "a manifest with a key given twice exits 65" "$STEPOP" run --manifest "$T/dup.json"
err_has "run_id: duplicate field" "the error names the key"
mkdir -p "$T/wdots/work"
printf '{"api_version":"stepop/v1","run_id":"dots","run_uri":"file://%s/runs/dots/","command":["true"],"workdir":"%s",
  "inputs":[{"name":"..","uri":"file://%s"}]}' "$store" "$T/wdots/work" "$T/in/data.txt" >"$T/dots.json"
expect_rc 65 "an input named .. exits 65" "$STEPOP" run --manifest "$T/dots.json"
err_has "inputs[0].name: \"..\" must be" "the error names the field"
check "nothing was written beside the work directory" test -z "$(ls -A "$T/wdots" | grep -v '^work$')"
printf '{"api_version":"stepop/v1","run_id":"nc","run_uri":"file://%s/runs/nc/"}' "$store" >"$T/nocmd.json"
expect_rc 65 "no command anywhere exits 65" "$STEPOP" run --manifest "$T/nocmd.json"
expect_rc 7 "the image's CMD after -- is the step when the manifest has none" env STEPOP_MANIFEST="$T/nocmd.json" \
    "$STEPOP" run -- sh -c 'exit 7'
expect_rc 127 "a command that does not exist exits 127" "$STEPOP" run -- /no/such/program
err_has "No such file" "with the reason"
expect_rc 2 "no manifest and no command is a usage error" env -u STEPOP_MANIFEST "$STEPOP" run
expect_rc 2 "an unknown option is a usage error" "$STEPOP" run --frob
done_testing
