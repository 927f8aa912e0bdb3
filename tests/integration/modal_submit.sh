#!/usr/bin/env bash
# stepop submit with the modal flavor end to end against tests/servers/modal_fake.js (Modal's gRPC
# API, every request decoded by the npm modal SDK's own codecs, the sandbox run in Podman): the real
# `stepop run` in the sandbox writes to the S3 store (s3rver behind the signature-checking proxy)
# with keys given through pass_env. DESIGN.md §8's conformance list, numbered as there: success,
# exit codes (1); logs while the step runs and to its last line (2); a file and an unpacked
# tar.zst input, outputs fetched back, outputs.json (3); Ctrl-C (4); a timeout and an OOM
# (Modal's MEMORY_MANAGER_EVICTION, scripted) (5); an image without stepop, INIT_FAILURE,
# capacity (the pending deadline) (6); an unknown setting and unsupported resources refused
# before anything is created (7); --dry-run (8); --detach then status, logs and cancel (9); a
# forged handle refused (10); the fake stopped for 10 s while following (11); no credential
# anywhere (12). Also: UNAVAILABLE retried with one idempotency key, and Modal's JS SDK as a second
# client (Sandbox.fromId on stepop's sandbox; a terminate from the SDK seen by stepop's follow loop).
. "$(dirname "$0")/../lib.sh"
type start_modal_fake >/dev/null 2>&1 || skip_all "tests/lib.sh has no start_modal_fake (the Modal fake)"
modal_fake_available || skip_all "npm modal or @grpc/grpc-js is not installed (make deps)"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
start_podman || { not_ok "podman starts"; done_testing; }
podman_images || { not_ok "test images build"; done_testing; }
start_s3 || { not_ok "the S3 store starts"; done_testing; }
export HOME=$T/home XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd"
start_modal_fake --stop-grace 5 --start-delay 0.2 --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" \
    --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms ||
    { not_ok "the Modal fake starts"; diag <"$T/modal_fake.log"; done_testing; }
cd "$T/cwd" || exit 1
cat >stepop.json <<JSON
{"store": "s3://test/md", "default_operator": "md",
 "operators": {"md": {"flavor": "modal", "settings": {"pass_env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]}}}}
JSON
# wait_max PID SECS: kills PID when it still runs after SECS (a hung case must not hang the test)
wait_max() { ( for _ in $(seq "$2"); do kill -0 "$1" 2>/dev/null || exit 0; sleep 1; done; kill "$1" 2>/dev/null ) & }
run_of() { sed -n 's/^stepop: \[\([0-9A-Z]\{26\}\)\].*/\1/p' "${1:-$T/err}" | head -1; }
creates() { modal_count "e['method'] == 'SandboxCreate'"; }
# sb_of RUN PYEXPR: EXPR over s, the fake's sandbox named stepop-RUN
sb_of() {
    modal_sandboxes | python3 -c "import json,sys; s=[s for s in json.load(sys.stdin) if s['name']=='stepop-'+sys.argv[1]][-1]; print(($2))" "$1" 2>&1
}
# wait_sb RUN PYEXPR: until EXPR holds (30 s at most)
wait_sb() {
    local i
    for i in $(seq 150); do [ "$(sb_of "$1" "$2")" = True ] && return 0; sleep 0.2; done
    return 1
}

# --- 1: success, the sandbox runs stepop run, which writes to the S3 store ---
expect_rc 0 "a step runs in a Modal sandbox" "$STEPOP" submit --image "$STEP_IMAGE" -- \
    sh -c 'echo "hello from a sandbox, attempt $STEPOP_ATTEMPT"'
out_has "hello from a sandbox, attempt 1" "its output streams back from the store"
err_has "succeeded" "the summary says succeeded"
r=$(run_of)
check "the fake's sandbox ended SUCCESS" wait_sb "$r" "(s['result'] or {}).get('status') == 'SUCCESS'"
is_eq "... tagged with the run id" "$(sb_of "$r" "{t['tagName']: t['tagValue'] for t in s['tags']}.get('stepop-run-id')")" "$r"
modal_log >"$T/log1.json"
is_eq "every call decoded by Modal's codecs with nothing skipped, none refused" \
    "$(jq_py "$T/log1.json" "sorted(set((e['code'], bool(e.get('unknown_fields'))) for e in d))")" "[('OK', False)]"
is_eq "the sequence: auth, app, environment, secret, image, sandbox" \
    "$(jq_py "$T/log1.json" "[m for i, m in enumerate(e['method'] for e in d) if m in ('AuthTokenGet', 'AppGetOrCreate', 'EnvironmentGetOrCreate', 'SecretGetOrCreate', 'ImageGetOrCreate', 'SandboxCreate') and m not in [x['method'] for x in d[:i]]]")" \
    "['AuthTokenGet', 'AppGetOrCreate', 'EnvironmentGetOrCreate', 'SecretGetOrCreate', 'ImageGetOrCreate', 'SandboxCreate']"
is_eq "the secret carries the manifest and pass_env's keys (values stay out of the log)" \
    "$(modal_sandboxes | python3 -c "import json,sys; s=json.load(sys.stdin)[-1]; print(all(k in s['env_keys'] for k in ('STEPOP_MANIFEST', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY')))")" True

# --- 1: a step's exit code ---
expect_rc 7 "a failing step's exit code is submit's" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo failing; exit 7'
out_has "failing" "its output arrives"

# --- 2, 3: logs while the step runs and to its last line; inputs and outputs ---
mkdir -p "$T/tree/sub" && printf 'packed\n' >"$T/tree/sub/p.txt"
"$STEPOP" artifact put "$T/tree" s3://test/data/tree.tar.zst >/dev/null 2>&1
printf 'the input\n' >"$T/in.txt"
"$STEPOP" artifact put "$T/in.txt" s3://test/data/in.txt >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --input data=s3://test/data/in.txt --input tree=s3://test/data/tree.tar.zst \
    --output result=out@tar.zst --output one=one.txt@file -- \
    sh -c 'echo early-line; cat data tree/sub/p.txt; mkdir out; cat data > out/copy.txt; echo single > one.txt
           sleep 6; printf "last line"' >"$T/out23" 2>"$T/err23" &
sub=$!
wait_max "$sub" 120
for i in $(seq 600); do grep -q early-line "$T/out23" 2>/dev/null && break; sleep 0.1; done
check "a line arrives on the submitter's stdout while the step runs" kill -0 "$sub"
wait "$sub"
is_eq "the step with inputs and outputs succeeds" "$?" 0
check "the line printed just before exit arrived" grep -q "last line" "$T/out23"
check "a file input and an unpacked tar.zst input were fetched" grep -q packed "$T/out23"
r=$(run_of "$T/err23")
"$STEPOP" artifact get "s3://test/md/runs/$r/outputs/result.tar.zst" "$T/result.tar.zst" >/dev/null 2>&1
is_eq "a tar.zst output fetched back is identical" "$(zstd -dc "$T/result.tar.zst" 2>/dev/null | tar -xO copy.txt 2>/dev/null)" "the input"
"$STEPOP" artifact get "s3://test/md/runs/$r/outputs/one" "$T/one" >/dev/null 2>&1
is_eq "a file output" "$(cat "$T/one" 2>/dev/null)" single
"$STEPOP" artifact get "s3://test/md/runs/$r/outputs.json" "$T/outputs.json" >/dev/null 2>&1
is_eq "outputs.json names both outputs" "$(jq_py "$T/outputs.json" "' '.join(sorted(o['name'] for o in d['outputs']))" 2>/dev/null)" "one result"
check "outputs.json was stored after the outputs" bash -c "! [ '$(s3_object_file test "md/runs/$r/outputs/result.tar.zst")' -nt \
    '$(s3_object_file test "md/runs/$r/outputs.json")' ]"

# --- 5: the step's timeout; Modal's MEMORY_MANAGER_EVICTION ---
expect_rc 143 "--timeout ends the step (SIGTERM: 143)" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 2s --grace 1s -- sleep 30
err_has "timeout" "the reason is timeout"
modal_script '{"sandbox": "*", "result": "MEMORY_MANAGER_EVICTION", "after": 2}'
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo filling; sleep 30' >"$T/out" 2>"$T/err"
rc=$?
check "a sandbox evicted by Modal's memory manager fails (exit $rc)" test "$rc" -ne 0
err_has "oom_killed" "the summary says oom_killed"
r=$(run_of)
"$STEPOP" status "$r" --json >"$T/oom.json" 2>/dev/null
is_eq "status.json: reason oom_killed" "$(jq_py "$T/oom.json" "d['reason']")" "oom_killed"

# --- 4: Ctrl-C at the submitter: the step gets SIGTERM, its trap runs ---
cat >"$T/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
"$STEPOP" artifact put "$T/trap.sh" s3://test/data/trap.sh >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --grace 4s --input s=s3://test/data/trap.sh -- sh s >"$T/int.out" 2>"$T/int.err" &
sub=$!
wait_max "$sub" 120
for i in $(seq 300); do grep -q "step started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$sub"
wait "$sub"
is_eq "SIGINT to submit terminates the sandbox; the step's exit code comes back" "$?" 9
check "the logs are complete" grep -q "step cleaned up" "$T/int.out"
check "the run is terminated" grep -q "terminated" "$T/int.err"
r=$(run_of "$T/int.err")
check "the fake saw SandboxTerminate: TERMINATED" wait_sb "$r" "(s['result'] or {}).get('status') == 'TERMINATED'"

# --- 6: an image without stepop; INIT_FAILURE; no capacity within the pending deadline ---
expect_rc 72 "an image without stepop: no final status and no step exit code (72)" "$STEPOP" submit --image "$BARE_IMAGE" -- true
err_has "the image has no stepop on its PATH" "... the message says the image lacks stepop"
err_has 'stepop": executable file not found' "... the message quotes the sandbox's output naming the missing entrypoint"
modal_script '{"sandbox": "*", "result": "INIT_FAILURE", "exception": "Mount failed: volume not found"}'
expect_rc 71 "INIT_FAILURE: the sandbox cannot start (71)" "$STEPOP" submit --image "$STEP_IMAGE" -- true
err_has "Mount failed: volume not found" "... with Modal's exception"
modal_script '{"sandbox": "*", "capacity": true}'
start=$SECONDS
expect_rc 73 "no capacity: the pending deadline passes (73)" "$STEPOP" submit --pending-timeout 4s --image "$STEP_IMAGE" -- true
r=$(run_of)
check "... the sandbox got no task" test "$(sb_of "$r" "s['task_id']")" = None
check "... and is terminated when submit gives up" wait_sb "$r" "(s['result'] or {}).get('status') == 'TERMINATED'"

# --- UNAVAILABLE twice on SandboxCreate: retried with one idempotency key ---
modal_script '{"method": "SandboxCreate", "code": "UNAVAILABLE", "times": 2}'
expect_rc 0 "SandboxCreate answering UNAVAILABLE twice" "$STEPOP" submit --image "$STEP_IMAGE" -- true
modal_log >"$T/log.json"
is_eq "... three attempts, one idempotency key, attempts counted" \
    "$(jq_py "$T/log.json" "(lambda c: (len(set(e['idempotency_key'] for e in c)), [e['retry_attempt'] for e in c], [e['code'] for e in c]))([e for e in d if e['method'] == 'SandboxCreate'][-3:])")" \
    "(1, [0, 1, 2], ['UNAVAILABLE', 'UNAVAILABLE', 'OK'])"

# --- 7: an unknown setting and unsupported resources refused before anything is created ---
before=$(creates)
printf '{"image": "%s", "command": ["true"], "settings": {"bogus": 1}}\n' "$STEP_IMAGE" >"$T/bogus.json"
expect_rc 2 "an unknown setting is refused" "$STEPOP" submit "$T/bogus.json"
err_has "settings.bogus" "naming it"
expect_rc 2 "--gpus without gpu_type is refused" "$STEPOP" submit --image "$STEP_IMAGE" --gpus 1 -- true
err_has "gpu" "naming it"
is_eq "no SandboxCreate was sent" "$(creates)" "$before"

# --- 8: --dry-run creates nothing ---
before=$(modal_count "True")
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" -- true
cp "$T/out" "$T/dry.out"
out_has "SandboxCreate" "... shows the requests"
is_eq "... and makes no call" "$(modal_count "True")" "$before"

# --- 9: --detach, status, logs, cancel; the JS SDK sees the sandbox ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sh -c 'echo detached-line; sleep 600'
r=$(tail -1 "$T/out")
check "the sandbox runs" wait_sb "$r" "s['state'] == 'running'"
id=$(sb_of "$r" "s['id']")
expect_rc 0 "Sandbox.fromId (the JS SDK) on stepop's sandbox" modal_client fromid "$id"
is_eq "... sees it running, with the run id's tag" "$(jq_py "$T/out" "(d['returnCode'], d['tags'].get('stepop-run-id'))")" "(None, '$r')"
for i in $(seq 100); do "$STEPOP" logs "$r" >"$T/logs.out" 2>/dev/null; grep -q detached-line "$T/logs.out" && break; sleep 0.3; done
check "stepop logs from another process" grep -q detached-line "$T/logs.out"
expect_rc 0 "stepop cancel --wait" "$STEPOP" cancel --wait "$r"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
check "the run was terminated" grep -q '"terminated"' "$T/out"
cp "$T/out" "$T/status.out"
check "the sandbox ended TERMINATED" wait_sb "$r" "(s['result'] or {}).get('status') == 'TERMINATED'"

# --- the JS SDK terminates a running sandbox: stepop's follow loop sees it ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo stop-me; sleep 600' >"$T/outstop" 2>"$T/errstop" &
sub=$!
for i in $(seq 600); do grep -q stop-me "$T/outstop" 2>/dev/null && [ -n "$(run_of "$T/errstop")" ] && break; sleep 0.1; done
r=$(run_of "$T/errstop")
id=$(sb_of "$r" "s['id']")
wait_max "$sub" 120
expect_rc 0 "the JS SDK terminates stepop's sandbox" modal_client terminate "$id"
wait "$sub"
rc=$?
check "submit ends with the step's SIGTERM exit (143, got $rc)" test "$rc" = 143
check "the run is terminated" grep -q terminated "$T/errstop"

# --- 10: a handle whose sandbox lacks the run's tags is refused by cancel ---
expect_rc 0 "the JS SDK creates a sandbox without stepop's tags" modal_client create "{\"image\": \"$STEP_IMAGE\", \"app\": \"stepop\", \"command\": [\"sleep\", \"600\"]}"
other=$(jq_py "$T/out" "d['sandboxId']")
forged=01KF0RGED00000000000000000
printf '{"flavor": "modal", "handle": {"sandbox_id": "%s", "run_id": "%s", "run_uri": "s3://test/md/runs/%s"}, "settings": {}}\n' \
    "$other" "$forged" "$forged" >"$T/forged.json"
"$STEPOP" artifact put "$T/forged.json" "s3://test/md/runs/$forged/submission.json" >/dev/null 2>&1
"$STEPOP" cancel "$forged" >"$T/out" 2>"$T/err"
check "stepop cancel refuses a handle whose sandbox lacks the run's tags" test $? -ne 0
err_has "refusing to act on it" "... saying why"
is_eq "... the sandbox still runs" "$(modal_sandboxes | python3 -c "import json,sys; print([s['state'] for s in json.load(sys.stdin) if s['id'] == '$other'][0])")" running
modal_client terminate "$other" >/dev/null 2>&1

# --- 11: the Modal API unreachable for 10 s while following (the fake stopped) ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo before; sleep 14; echo after-the-outage' >"$T/out11" 2>"$T/err11" &
sub=$!
wait_max "$sub" 120
for i in $(seq 600); do grep -q before "$T/out11" 2>/dev/null && break; sleep 0.1; done
kill -STOP "$MODAL_FAKE_PID"
sleep 10
kill -CONT "$MODAL_FAKE_PID"
wait "$sub"
is_eq "the follow loop rode out 10 s without the Modal API" "$?" 0
check "... with the logs complete" grep -q after-the-outage "$T/out11"

# --- 12: no credential in any output, dry-run, status or stored object ---
secrets=("$S3_SECRET" "$MODAL_TOKEN_SECRET")
leaks=$(for s in "${secrets[@]}"; do grep -rlF -- "$s" "$T"/*.out "$T"/*.err "$T"/out* "$T"/err* "$T"/*.json "$S3_ROOT" 2>/dev/null; done | sort -u)
is_eq "no credential in any output, dry-run, status, the fake's log or stored object" "$leaks" ""
done_testing
