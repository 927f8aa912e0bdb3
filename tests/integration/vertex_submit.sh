#!/usr/bin/env bash
# stepop submit with the vertex flavor end to end against tests/servers/vertex_fake.py (Vertex
# AI's JobService and Cloud Logging's entries:list; every body checked against the .proto files of
# npm @google-cloud/aiplatform; every call's bearer token one that tests/servers/google_auth_fake.py
# issued; the job's container run in Podman): stepop gets its token from the auth fake's metadata
# server, and the real `stepop run` in the job writes to the S3 store (s3rver behind the
# signature-checking proxy). DESIGN.md §8's conformance list, numbered as there: success, exit
# codes (1); logs while the step runs and to its last line (2); a file and an unpacked tar.zst
# input, outputs fetched back, outputs.json (3); Ctrl-C (4); a timeout and an OOM (5); a missing
# image and a stockout (never started, exit 71), an image without stepop (exit 72, its Cloud
# Logging lines quoted) (6); an unknown setting and unsupported resources refused before anything
# is created (7); --dry-run (8); --detach then status, logs -f and cancel, Google's npm
# JobServiceClient reading the job stepop created (9); the npm client cancelling a running job;
# a forged handle refused (10); the fake stopped for 10 s while following (11); no credential
# anywhere (12); a preemption followed as attempt 2; a gs:// store on firebase-tools' storage
# emulator. Cancel cases sleep 600 s, so that a loaded machine cannot end the step before the
# cancel. (Needs start_vertex_fake and start_google_auth_fake from tests/lib.sh.)
. "$(dirname "$0")/../lib.sh"
type start_vertex_fake >/dev/null 2>&1 || skip_all "tests/lib.sh has no start_vertex_fake (the Vertex fake)"
type start_google_auth_fake >/dev/null 2>&1 || skip_all "tests/lib.sh has no start_google_auth_fake"
protobuf_python >/dev/null || skip_all "python3-protobuf is not installed (make deps)"
command -v protoc >/dev/null || skip_all "protoc is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/@google-cloud/aiplatform/package.json" ] || skip_all "npm @google-cloud/aiplatform is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
"$STEPOP" flavor list 2>/dev/null | grep -qw vertex || skip_all "this stepop has no vertex flavor"
start_podman || { not_ok "podman starts"; done_testing; }
podman_images || { not_ok "test images build"; done_testing; }
start_s3 || { not_ok "the S3 store starts"; done_testing; }
start_google_auth_fake --tokens "$T/gtokens" --project vx-project || { not_ok "the Google auth fake starts"; done_testing; }
start_vertex_fake --tokens "$T/gtokens" --stop-grace 10 --start-delay 0.2 --machine-memory e2-small=100663296 \
    --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" --container-env "AWS_ACCESS_KEY_ID=$S3_AKID" \
    --container-env "AWS_SECRET_ACCESS_KEY=$S3_SECRET" --container-env AWS_REGION=us-east-1 \
    --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms ||
    { not_ok "the Vertex fake starts"; done_testing; }

export HOME=$T/home XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
P=projects/vx-project/locations/us-central1
common="\"api_endpoint\": \"$VERTEX_FAKE_URL\", \"logging_endpoint\": \"$VERTEX_FAKE_URL\", \"entrypoint\": [\"/usr/local/bin/stepop\", \"run\"]"
cat >stepop.json <<JSON
{"store": "s3://test/vx", "default_operator": "vx",
 "operators": {"vx": {"flavor": "vertex", "settings": {$common}},
  "spot": {"flavor": "vertex", "settings": {$common, "strategy": "SPOT", "restart_job_on_worker_restart": true}},
  "flex": {"flavor": "vertex", "settings": {$common, "strategy": "FLEX_START", "max_wait": "1h"}},
  "small": {"flavor": "vertex", "settings": {$common, "machine_type": "e2-small"}},
  "gcs": {"flavor": "vertex", "settings": {$common, "pass_env": ["STORAGE_EMULATOR_HOST"]}}}}
JSON
creates() { vertex_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e.get('rpc') == 'CreateCustomJob'))"; }
step_file() { printf '{"image": "%s", "command": ["true"], %s}\n' "$STEP_IMAGE" "$2" >"$1"; }
jobs_count() { vertex_jobs | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
# job_field RUN FIELD: a field of the fake's job for stepop's run (displayName stepop-<run id>).
job_field() { vertex_jobs | python3 -c "import json,sys; print([j for j in json.load(sys.stdin) if j['display_name']=='stepop-'+sys.argv[1]][0][sys.argv[2]])" "$1" "$2"; }
# run_of [FILE]: the run id in submit's stderr (its first line: "stepop: [RUN] submitting ...").
run_of() { sed -n 's/^stepop: \[\([0-9A-Z]\{26\}\)\].*/\1/p' "${1:-$T/err}" | head -1; }
# wait_job RUN STATE: until the fake's job has STATE (60 s at most); prints the last one seen.
wait_job() {
    local st=""
    for _ in $(seq 300); do
        st=$(job_field "$1" state 2>/dev/null)
        [ "$st" = "$2" ] && break
        sleep 0.2
    done
    echo "$st"
}
# wait_out FILE TEXT: until FILE holds TEXT (120 s at most).
wait_out() { for _ in $(seq 1200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# A token for Google's npm client, from the auth fake's metadata server (as stepop gets its own).
VERTEX_TOKEN=$(curl -s -H 'Metadata-Flavor: Google' "$GOOGLE_AUTH_FAKE_URL/computeMetadata/v1/instance/service-accounts/default/token" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
export VERTEX_TOKEN
client() { node "$ROOT/tests/servers/vertex_client.js" "$VERTEX_FAKE_HOST" "$@"; }

# --- success: the job runs stepop run, which writes to the S3 store ---
expect_rc 0 "a step runs as a custom job" "$STEPOP" submit --image "$STEP_IMAGE" -- \
    sh -c 'echo "hello from custom job $CLOUD_ML_JOB_ID, attempt $STEPOP_ATTEMPT"'
out_has "hello from custom job " "its output streams back from the store, with Vertex's environment"
err_has "succeeded" "the summary says succeeded"
r=$(run_of)
is_eq "the fake's job succeeded" "$(wait_job "$r" JOB_STATE_SUCCEEDED)" JOB_STATE_SUCCEEDED
is_eq "one CreateCustomJob, accepted by the protos' checks" \
    "$(vertex_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e.get('rpc') == 'CreateCustomJob' and e['status'] == 200 and e.get('validation') == 'ok'))")" 1
is_eq "stepop's bearer token was one the auth fake issued (its metadata server)" \
    "$(vertex_log | python3 -c "import json,sys; print(sorted(set(e.get('token') for e in json.load(sys.stdin))))")" "['file']"

# --- a step's exit code ---
expect_rc 7 "a failing step's exit code is submit's" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo failing; exit 7'
out_has "failing" "its output arrives"

# --- 2, 3: logs while the step runs and to its last line; a file and an unpacked tar.zst input,
# outputs fetched back identical, outputs.json ---
mkdir -p "$T/tree/sub" && printf 'packed\n' >"$T/tree/sub/p.txt"
"$STEPOP" artifact put "$T/tree" s3://test/data/tree.tar.zst >/dev/null 2>&1
printf 'the input\n' >"$T/in.txt"
"$STEPOP" artifact put "$T/in.txt" s3://test/data/in.txt >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --input data=s3://test/data/in.txt --input tree=s3://test/data/tree.tar.zst \
    --output result=out@tar.zst --output one=one.txt@file -- \
    sh -c 'echo early-line; cat data tree/sub/p.txt; mkdir out; cat data > out/copy.txt; echo single > one.txt
           sleep 6; printf "last line"' >"$T/out23" 2>"$T/err23" &
sub=$!
wait_out "$T/out23" early-line
check "a line arrives on the submitter's stdout while the step runs" kill -0 "$sub"
wait "$sub"
is_eq "the step with inputs and outputs succeeds" "$?" 0
check "the line printed just before exit arrived" grep -q "last line" "$T/out23"
check "a file input and an unpacked tar.zst input were fetched" grep -q packed "$T/out23"
r=$(run_of "$T/err23")
"$STEPOP" artifact get "s3://test/vx/runs/$r/outputs/result.tar.zst" "$T/result.tar.zst" >/dev/null 2>&1
is_eq "a tar.zst output fetched back is identical" "$(zstd -dc "$T/result.tar.zst" 2>/dev/null | tar -xO copy.txt 2>/dev/null)" "the input"
"$STEPOP" artifact get "s3://test/vx/runs/$r/outputs/one" "$T/one" >/dev/null 2>&1
is_eq "a file output" "$(cat "$T/one" 2>/dev/null)" single
"$STEPOP" artifact get "s3://test/vx/runs/$r/outputs.json" "$T/outputs.json" >/dev/null 2>&1
is_eq "outputs.json names both outputs" "$(jq_py "$T/outputs.json" "' '.join(sorted(o['name'] for o in d['outputs']))" 2>/dev/null)" "one result"
check "outputs.json was stored after the outputs" bash -c "! [ '$(s3_object_file test "vx/runs/$r/outputs/result.tar.zst")' -nt \
    '$(s3_object_file test "vx/runs/$r/outputs.json")' ]"

# --- the step's timeout (conformance 5): stepop run ends it, SIGTERM first ---
expect_rc 143 "--timeout ends the step (SIGTERM: 143)" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 2s --grace 1s -- sleep 600
err_has "timeout" "the reason is timeout"

# --- an OOM (conformance 5): e2-small has 96 MiB on this fake (--machine-memory) ---
expect_rc 137 "a step over the machine's memory (137)" "$STEPOP" submit --operator small --image "$STEP_IMAGE" -- \
    sh -c 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1'
err_has "oom_killed" "the summary says oom_killed"

# --- Ctrl-C at the submitter (conformance 4): the step gets SIGTERM, its trap runs ---
cat >"$T/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
sleep 600 &
wait $!
SH
"$STEPOP" artifact put "$T/trap.sh" s3://test/data/trap.sh >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --grace 10s --input s=s3://test/data/trap.sh -- sh s >"$T/int.out" 2>"$T/int.err" &
sub=$!
wait_out "$T/int.out" "step started"
kill -INT "$sub"
wait "$sub"
is_eq "SIGINT to submit cancels the job; the step's exit code comes back" "$?" 9
check "the logs are complete" grep -q "step cleaned up" "$T/int.out"
check "the run is terminated" grep -q "terminated" "$T/int.err"
r=$(run_of "$T/int.err")
is_eq "the fake's job was cancelled" "$(wait_job "$r" JOB_STATE_CANCELLED)" JOB_STATE_CANCELLED

# --- 6: an image without stepop: the entrypoint never runs, Cloud Logging's lines are quoted ---
expect_rc 72 "an image without stepop fails without a status (exit 72)" "$STEPOP" submit --image "$BARE_IMAGE" -- true
err_has "could not run the container's command" "with Vertex's error.message"
err_has "/usr/local/bin/stepop" "... and the job's last log entries, which name the missing entrypoint"
is_eq "the flavor read them with entries:list" "$(vertex_log | python3 -c "import json,sys; print(any(e.get('rpc') == 'ListLogEntries' and e['status'] == 200 for e in json.load(sys.stdin)))")" True

# --- 6: a missing image: never started ---
expect_rc 71 "a missing image: the job cannot start (exit 71)" "$STEPOP" submit --image localhost/stepop-test/no-such-image:1 -- true
err_has "Unable to pull the container image" "in the platform's words"

# --- 7: an unknown setting and unsupported resources are refused before anything is created ---
before=$(creates)
step_file "$T/bogus.json" '"settings": {"bogus": 1}'
expect_rc 2 "an unknown setting is refused" "$STEPOP" submit "$T/bogus.json"
err_has "settings.bogus" "naming it"
expect_rc 2 "--cpu is refused" "$STEPOP" submit --image "$STEP_IMAGE" --cpu 1 -- true
err_has "resources.cpu" "naming it"
expect_rc 2 "--memory is refused" "$STEPOP" submit --image "$STEP_IMAGE" --memory 1GiB -- true
err_has "resources.memory" "naming it"
expect_rc 2 "--gpus 1 without an accelerator is refused" "$STEPOP" submit --image "$STEP_IMAGE" --gpus 1 -- true
err_has "resources.gpus" "naming it"
is_eq "no CreateCustomJob was sent" "$(creates)" "$before"

# --- 8: --dry-run creates nothing ---
before=$(jobs_count)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" -- true
cp "$T/out" "$T/dry.out"
is_eq "--dry-run creates no job" "$(jobs_count)" "$before"

# --- 9: --detach; Google's client reads the job; status, logs -f and cancel from other processes ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sh -c 'echo detached-running; sleep 600'
r=$(tail -1 "$T/out")
name=$(job_field "$r" name)
check "the npm JobServiceClient reads the job stepop created" sh -c "node '$ROOT/tests/servers/vertex_client.js' '$VERTEX_FAKE_HOST' get '$name' >'$T/client.get'"
is_eq "... its labels and command" "$(jq_py "$T/client.get" "(d['labels']['stepop-run-id'] == '$r'.lower(), d['jobSpec']['workerPoolSpecs'][0]['containerSpec']['command'])")" \
    "(True, ['/usr/local/bin/stepop', 'run'])"
"$STEPOP" logs -f "$r" >"$T/logsf.out" 2>"$T/logsf.err" &
logsf=$!
check "stepop logs -f shows the detached step's output" wait_out "$T/logsf.out" detached-running
expect_rc 0 "stepop cancel --wait stops the run" "$STEPOP" cancel --wait "$r"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
check "the run was terminated" grep -q '"terminated"' "$T/out"
cp "$T/out" "$T/status.out"
is_eq "the fake's job was cancelled" "$(wait_job "$r" JOB_STATE_CANCELLED)" JOB_STATE_CANCELLED
for _ in $(seq 300); do kill -0 "$logsf" 2>/dev/null || break; sleep 0.1; done
check "stepop logs -f ended with the run" sh -c "! kill -0 $logsf 2>/dev/null"
kill "$logsf" 2>/dev/null

# --- Google's client cancels a running job: the follow loop sees it terminated ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'trap "echo step got TERM; exit 143" TERM; echo cancel-me; sleep 600 & wait $!' \
    >"$T/outstop" 2>"$T/errstop" &
sub=$!
wait_out "$T/outstop" cancel-me
r=$(run_of "$T/errstop")
[ -n "$r" ] || r=none
if client cancel "$(job_field "$r" name)" >"$T/out" 2>"$T/err"; then
    ok "cancelCustomJob (npm JobServiceClient) on the job stepop created"
else
    not_ok "cancelCustomJob (npm JobServiceClient) on the job stepop created"
    diag <"$T/err"
    kill -INT "$sub" # not left to sleep 600 s
fi
wait "$sub"
rc=$?
check "submit ends with the step's SIGTERM exit (143, got $rc)" test "$rc" = 143
check "the run is terminated" grep -q terminated "$T/errstop"
check "the step's trap ran" grep -q "step got TERM" "$T/outstop"

# --- 10: a handle whose job lacks the run's labels is refused by cancel ---
forged=01KF0RGED00000000000000000
vertex_script "{\"job\": \"stepop-$forged\", \"stockout\": true, \"after\": 30, \"count\": 1}"
cat >"$T/unlabelled.json" <<JSON
{"displayName": "stepop-$forged", "jobSpec": {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"},
 "replicaCount": "1", "containerSpec": {"imageUri": "$STEP_IMAGE"}}]}}
JSON
check "the npm client creates a job without labels" sh -c "node '$ROOT/tests/servers/vertex_client.js' '$VERTEX_FAKE_HOST' create '$P' '$T/unlabelled.json' >'$T/unlabelled.out'"
fname=$(jq_py "$T/unlabelled.out" "d['name']" 2>/dev/null)
printf '{"flavor": "vertex", "handle": {"name": "%s", "location": "us-central1", "run_id": "%s", "run_uri": "s3://test/vx/runs/%s/"}, "settings": {%s}}\n' \
    "$fname" "$forged" "$forged" "$common" >"$T/forged.json"
"$STEPOP" artifact put "$T/forged.json" "s3://test/vx/runs/$forged/submission.json" >/dev/null 2>&1
"$STEPOP" cancel "$forged" >"$T/out" 2>"$T/err"
check "stepop cancel refuses a handle whose job lacks the run's labels" test $? -ne 0
err_has "refusing to act on it" "... saying why"
is_eq "... and sent no :cancel" "$(vertex_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e.get('rpc') == 'CancelCustomJob' and e['path'].endswith('$(basename "$fname"):cancel')))")" 0

# --- 11: the Vertex API unreachable for 10 s while following (the fake stopped) ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo before; sleep 14; echo after-the-outage' >"$T/out11" 2>"$T/err11" &
sub=$!
wait_out "$T/out11" before
kill -STOP "$VERTEX_FAKE_PID"
sleep 10
kill -CONT "$VERTEX_FAKE_PID"
wait "$sub"
is_eq "the follow loop rode out 10 s without the Vertex API" "$?" 0
check "... with the logs complete" grep -q after-the-outage "$T/out11"

# --- a preemption: Vertex AI restarts the worker (restartJobOnWorkerRestart), attempt 2 ---
vertex_script '{"job": "*", "preempt_after": 8, "preemptions": 1, "count": 1}'
"$STEPOP" submit --operator spot --image "$STEP_IMAGE" -- \
    sh -c 'echo "attempt $STEPOP_ATTEMPT"; if [ "$STEPOP_ATTEMPT" = 1 ]; then sleep 600; fi; echo finished' >"$T/out" 2>"$T/err"
spot_rc=$?
r=$(run_of)
is_eq "the submitter follows the restart to the end (exit 0)" "$spot_rc" 0
is_eq "the job succeeded in two containers" \
    "$(wait_job "$r" JOB_STATE_SUCCEEDED) $(job_field "$r" containers | python3 -c "import ast,sys; print(len(ast.literal_eval(sys.stdin.read())))")" "JOB_STATE_SUCCEEDED 2"
out_has "attempt 1" "attempt 1's output"
out_has "attempt 2" "the restart is attempt 2 (STEPOP_ATTEMPT_FROM_STATUS)"
out_has "finished" "... and its output streams after attempt 1's"
"$STEPOP" status "$r" --json >"$T/st.json" 2>"$T/st.err"
is_eq "status.json: succeeded, attempt 2" "$(jq_py "$T/st.json" "d['phase'], d['attempt']")" "succeeded 2"

# --- a stockout: never started; FLEX_START's maxWaitDuration passed: EXPIRED ---
vertex_script '{"job": "*", "stockout": true, "after": 1, "count": 1}'
expect_rc 71 "a stockout: the job cannot start (exit 71)" "$STEPOP" submit --image "$STEP_IMAGE" -- true
err_has "Resources are insufficient" "in the platform's words"
vertex_script '{"job": "*", "stockout": true, "after": 1, "count": 1}'
expect_rc 71 "FLEX_START without capacity: EXPIRED, never started (exit 71)" "$STEPOP" submit --operator flex --image "$STEP_IMAGE" -- true
r=$(run_of)
is_eq "the fake's job expired" "$(job_field "$r" state)" JOB_STATE_EXPIRED

# --- a gs:// store: firebase-tools' storage emulator (anonymous, as Google's clients are with
# STORAGE_EMULATOR_HOST, which pass_env hands to the job); Vertex's AIP_* directories under the
# default base_output_dir ---
if start_gcs_emulator 2>"$T/gcs-start.err"; then
    expect_rc 0 "a step on a gs:// store" "$STEPOP" submit --operator gcs --store gs://vx-bucket/pipe --image "$STEP_IMAGE" \
        --output model=out@tar.gz -- sh -c 'echo "model dir $AIP_MODEL_DIR"; mkdir out; echo weights >out/w.txt'
    r=$(run_of)
    out_has "model dir gs://vx-bucket/pipe/runs/$r/vertex-output/model/" "the job's AIP_MODEL_DIR is under the run's vertex-output/"
    "$STEPOP" artifact get "gs://vx-bucket/pipe/runs/$r/outputs/model.tar.gz" "$T/model.tar.gz" >/dev/null 2>&1
    is_eq "the output is in the bucket" "$(tar -xzOf "$T/model.tar.gz" w.txt 2>/dev/null)" weights
    unset STORAGE_EMULATOR_HOST
else
    ok "# SKIP the storage emulator did not start (firebase-tools; see $T/gcs-start.err)"
fi

# --- 12: no credential in any output, dry-run, status or stored object ---
mapfile -t secrets < <(python3 -c "
import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)['token'])" "$T/gtokens")
secrets+=("$S3_SECRET")
is_eq "the secrets to look for: the Google tokens issued and the S3 secret" "$(( ${#secrets[@]} > 1 ))" 1
leaks=$(for s in "${secrets[@]}"; do grep -rlF -- "$s" "$T"/*.out "$T"/*.err "$T"/out* "$T"/err* "$T"/*.json "$S3_ROOT" 2>/dev/null; done | sort -u)
is_eq "no credential in any output, dry-run, status or stored object" "$leaks" ""
check "the fake printed no error" sh -c "! grep -q 'vertex_fake:' '$T/vertex.log'"
done_testing
