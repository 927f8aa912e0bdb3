#!/usr/bin/env bash
# stepop submit with the azureml flavor end to end against tests/servers/azureml_fake.py (ARM
# bodies walked with npm @azure/arm-machinelearning's mappers, bearer tokens from the Entra fake
# azure_auth_fake.py for a client secret, the command job's container run in Podman): the real
# `stepop run` in the job writes to an az:// store on Azurite (its connection string handed to the
# container the way Azure would give the job an identity). DESIGN.md §8's conformance list,
# numbered as there: success, exit codes (1); logs while the step runs and to its last line (2); a
# file and an unpacked tar.zst input, outputs fetched back, outputs.json (3); Ctrl-C (4); a timeout
# and an OOM (5); an image without stepop and an image that is not there (6); an unknown setting
# and unsupported resources refused before anything is created (7); --dry-run (8); --detach, then
# status, logs -f, cancel, and the npm AzureMachineLearningWorkspaces client reading and canceling
# a job stepop created (9); a forged handle refused (10); the fake stopped for 10 s while following
# (11); a job kept Queued past the pending deadline; no credential anywhere (12).
. "$(dirname "$0")/../lib.sh"
type start_azureml_fake >/dev/null 2>&1 || skip_all "tests/lib.sh has no start_azureml_fake (the Azure ML fake)"
command -v node >/dev/null || skip_all "node is missing"
azure_fake_python >/dev/null || skip_all "python3-jwt or python3-cryptography is missing (the Entra fake; make deps)"
azurite_available || skip_all "Azurite or @azure/storage-blob is not installed (make deps)"
start_podman || { not_ok "podman starts"; done_testing; }
podman_images || { not_ok "test images build"; done_testing; }
# Azurite's debug log records the requests in order (outputs.json after the outputs, below). It
# comes first: it clears the Azure environment that start_azureml_fake then sets.
start_azurite --skipApiVersionCheck --debug "$T/azurite-debug.log" || { not_ok "Azurite starts"; done_testing; }
azblob mkcontainer test >"$T/mkcontainer.out" 2>&1 ||
    { not_ok "the official client creates the store's container"; diag <"$T/mkcontainer.out"; done_testing; }
# The job reaches the store with the connection string in its environment (Azure would give it an
# identity); neither the manifest nor a setting holds it.
start_azureml_fake --stop-grace 5 --start-delay 0.2 --computes cpu-cluster --computes small-cluster \
    --compute-memory small-cluster=100663296 --container-env "AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS" \
    --container-env STEPOP_LOG_INTERVAL=200ms ||
    { not_ok "the Azure ML fake starts"; diag <"$T/azureml.log"; done_testing; }

export HOME=$T/home XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
settings() { # COMPUTE
    printf '{"subscription_id": "%s", "resource_group": "%s", "workspace": "%s", "compute": "%s", "api_version": "2022-10-01", "arm_endpoint": "%s"}' \
        "$AZUREML_SUB" "$AZUREML_RG" "$AZUREML_WS" "$1" "$AZUREML_FAKE_URL"
}
cat >stepop.json <<JSON
{"store": "az://test/aml", "default_operator": "aml",
 "operators": {"aml": {"flavor": "azureml", "settings": $(settings cpu-cluster)},
  "small": {"flavor": "azureml", "settings": $(settings small-cluster)}}}
JSON
client() { node "$ROOT/tests/servers/azureml_client.js" "$@"; }
puts() { azureml_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e['method'] == 'PUT' and '/jobs/' in e['path']))"; }
step_file() { printf '{"image": "%s", "command": ["true"], %s}\n' "$STEP_IMAGE" "$2" >"$1"; }
jobs_count() { azureml_jobs | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
job_field() { azureml_jobs | python3 -c "import json,sys; print([j for j in json.load(sys.stdin) if j['name']==sys.argv[1]][0][sys.argv[2]])" "$1" "$2"; }
run_of() { sed -n 's/.*run \([0-9A-Z]\{26\}\).*/\1/p' "$T/err" | head -1; }
lower() { tr '[:upper:]' '[:lower:]'; }
# wait_job NAME STATUS: until the fake's job has STATUS (30 s at most); prints the last one seen.
wait_job() {
    local i st=""
    for i in $(seq 150); do
        st=$(job_field "$1" status 2>/dev/null)
        [ "$st" = "$2" ] && break
        sleep 0.2
    done
    echo "$st"
}

# --- 1: success; the job runs stepop run, which writes to the az:// store on Azurite ---
expect_rc 0 "a step runs as a command job" "$STEPOP" submit --image "$STEP_IMAGE" -- \
    sh -c 'echo "hello from a command job, attempt $STEPOP_ATTEMPT"'
out_has "hello from a command job, attempt 1" "its output streams back from the store"
err_has "succeeded" "the summary says succeeded"
r=$(run_of)
job=stepop-$(echo "$r" | lower)
is_eq "the fake's job completed" "$(wait_job "$job" Completed)" Completed
is_eq "its statuses" "$(job_field "$job" history)" "['NotStarted', 'Queued', 'Starting', 'Running', 'Finalizing', 'Completed']"
is_eq "the environment version and the job were accepted by the mappers' walker" \
    "$(azureml_log | python3 -c "import json,sys; print(sorted(set(e.get('validation') for e in json.load(sys.stdin) if e['method'] == 'PUT')))")" "['ok']"
is_eq "every ARM call had a token from the identity chain" \
    "$(azureml_log | python3 -c "import json,sys; print(sorted(set(e.get('auth') for e in json.load(sys.stdin))))")" "['ok']"
# A token of the chain for another audience (Azure Storage) is refused by ARM.
if [ -x "$ROOT/build/tests/tools/azure_token" ]; then
    "$ROOT/build/tests/tools/azure_token" https://storage.azure.com/.default \
        "$AZUREML_FAKE_URL/subscriptions/$AZUREML_SUB/resourceGroups/$AZUREML_RG/providers/Microsoft.MachineLearningServices/workspaces/$AZUREML_WS/jobs/$job?api-version=2022-10-01" \
        >"$T/storage-token.out" 2>&1
    check "a storage token is refused by the fake's ARM (401, wrong audience)" \
        sh -c "grep -q 'HTTP 401' '$T/storage-token.out' && grep -q InvalidAuthenticationTokenAudience '$T/storage-token.out'"
else
    ok "a storage token is refused # SKIP build/tests/tools/azure_token is not built (make integration-test builds it)"
fi
expect_rc 7 "a failing step's exit code is submit's" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo failing; exit 7'
out_has "failing" "its output arrives"
expect_rc 137 "a step killed by SIGKILL: 137" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'kill -9 $$'
is_eq "one environment version for the image, reused" \
    "$(azureml_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e['method'] == 'PUT' and '/environments/' in e['path']))")" 1

# --- 2, 3: logs while the step runs and to its last line; inputs and outputs ---
mkdir -p "$T/tree/sub" && printf 'packed\n' >"$T/tree/sub/p.txt"
"$STEPOP" artifact put "$T/tree" az://test/data/tree.tar.zst >/dev/null 2>&1
printf 'the input\n' >"$T/in.txt"
"$STEPOP" artifact put "$T/in.txt" az://test/data/in.txt >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --input data=az://test/data/in.txt --input tree=az://test/data/tree.tar.zst \
    --output result=out@tar.zst --output one=one.txt@file -- \
    sh -c 'echo early-line; cat data tree/sub/p.txt; mkdir out; cat data > out/copy.txt; echo single > one.txt
           sleep 6; printf "last line"' >"$T/out23" 2>"$T/err23" &
sub=$!
for i in $(seq 600); do grep -q early-line "$T/out23" 2>/dev/null && break; sleep 0.1; done
check "a line arrives on the submitter's stdout while the step runs" kill -0 "$sub"
wait "$sub"
is_eq "the step with inputs and outputs succeeds" "$?" 0
check "the line printed just before exit arrived" grep -q "last line" "$T/out23"
check "a file input and an unpacked tar.zst input were fetched" grep -q packed "$T/out23"
r=$(sed -n 's/.*run \([0-9A-Z]\{26\}\).*/\1/p' "$T/err23" | head -1)
"$STEPOP" artifact get "az://test/aml/runs/$r/outputs/result.tar.zst" "$T/result.tar.zst" >/dev/null 2>&1
is_eq "a tar.zst output fetched back is identical" "$(zstd -dc "$T/result.tar.zst" 2>/dev/null | tar -xO copy.txt 2>/dev/null)" "the input"
"$STEPOP" artifact get "az://test/aml/runs/$r/outputs/one" "$T/one" >/dev/null 2>&1
is_eq "a file output" "$(cat "$T/one" 2>/dev/null)" single
"$STEPOP" artifact get "az://test/aml/runs/$r/outputs.json" "$T/outputs.json" >/dev/null 2>&1
is_eq "outputs.json names both outputs" "$(jq_py "$T/outputs.json" "' '.join(sorted(o['name'] for o in d['outputs']))" 2>/dev/null)" "one result"
# Azurite's debug log has the requests in the order they came: the first PUT of outputs.json comes
# after the output's last PUT.
is_eq "outputs.json was stored after the outputs" "$(grep 'RequestMethod=PUT RequestURL=' "$T/azurite-debug.log" |
    awk -v o="/aml/runs/$r/outputs.json" -v t="/aml/runs/$r/outputs/result.tar.zst" \
    'index($0, t) { last = NR } index($0, o) && !first { first = NR } END { print (last > 0 && first > last) }')" 1

# --- 5: the step's timeout (stepop run ends it, SIGTERM first); an OOM on a 96 MiB compute ---
expect_rc 143 "--timeout ends the step (SIGTERM: 143)" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 2s --grace 1s -- sleep 600
err_has "timeout" "the reason is timeout"
expect_rc 137 "a step over the compute's memory (137)" "$STEPOP" submit --operator small --image "$STEP_IMAGE" -- \
    sh -c 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1'
err_has "oom_killed" "the summary says oom_killed"

# --- 4: Ctrl-C at the submitter: the step gets SIGTERM, its trap runs ---
cat >"$T/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
"$STEPOP" artifact put "$T/trap.sh" az://test/data/trap.sh >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --grace 4s --input s=az://test/data/trap.sh -- sh s >"$T/int.out" 2>"$T/int.err" &
sub=$!
for i in $(seq 600); do grep -q "step started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$sub"
wait "$sub"
is_eq "SIGINT to submit cancels the job; the step's exit code comes back" "$?" 9
check "the logs are complete" grep -q "step cleaned up" "$T/int.out"
check "the run is terminated" grep -q "terminated" "$T/int.err"
is_eq "the cancel went through Azure's long-running operation" \
    "$(azureml_log | python3 -c "import json,sys; l=json.load(sys.stdin); print(any(e['path'].endswith('/cancel') for e in l) and any(e['path'].startswith('/_ops/') for e in l))")" True

# --- 6: an image without stepop (the command exits 127); an image that is not there ---
expect_rc 72 "an image without stepop fails without a status (exit 72)" "$STEPOP" submit --image "$BARE_IMAGE" -- true
err_has "no stepop on its PATH" "saying the image lacks stepop"
err_has "exit code 127" "in the job's words too"
expect_rc 72 "an image that is not there (exit 72)" "$STEPOP" submit --image localhost/stepop-test/absent:1 -- true
err_has "image not found" "in the platform's words"

# --- 7: refused before anything is created ---
before=$(puts)
step_file "$T/bogus.json" '"settings": {"bogus": 1}'
expect_rc 2 "an unknown setting is refused" "$STEPOP" submit "$T/bogus.json"
err_has "settings.bogus" "naming it"
expect_rc 2 "--cpu is refused" "$STEPOP" submit --image "$STEP_IMAGE" --cpu 1 -- true
err_has "resources.cpu" "naming it"
expect_rc 2 "--memory is refused" "$STEPOP" submit --image "$STEP_IMAGE" --memory 1GiB -- true
err_has "resources.memory" "naming it"
expect_rc 2 "--gpus is refused" "$STEPOP" submit --image "$STEP_IMAGE" --gpus 1 -- true
err_has "resources.gpus" "naming it"
is_eq "no job was put" "$(puts)" "$before"

# --- 8: --dry-run creates nothing ---
before=$(jobs_count)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" -- true
cp "$T/out" "$T/dry.out"
is_eq "--dry-run creates no job" "$(jobs_count)" "$before"

# --- 9: --detach, status, logs -f, the npm client, cancel ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sh -c 'echo detached-line; sleep 600'
r=$(tail -1 "$T/out")
job=stepop-$(echo "$r" | lower)
for i in $(seq 150); do [ "$(job_field "$job" status 2>/dev/null)" = Running ] && break; sleep 0.2; done
timeout 60 "$STEPOP" logs -f "$r" >"$T/logsf.out" 2>&1 &
logs=$!
client get "$job" >"$T/client.json" 2>"$T/client.err"
is_eq "the npm client reads the job stepop created" "$(jq_py "$T/client.json" "d['jobType'], d['tags'].get('stepop-run-id'), d['status']" 2>/dev/null || cat "$T/client.err")" "Command $r Running"
expect_rc 0 "stepop cancel --wait stops the run" "$STEPOP" cancel --wait "$r"
wait "$logs"
check "stepop logs -f saw the step's line" grep -q detached-line "$T/logsf.out"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
check "the run was terminated" grep -q '"terminated"' "$T/out"
cp "$T/out" "$T/status.out"
is_eq "the job is Canceled" "$(wait_job "$job" Canceled)" Canceled

"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'trap "echo got-term; exit 5" TERM; echo cancel-me; while :; do sleep 0.1; done' >"$T/outc" 2>"$T/errc" &
sub=$!
for i in $(seq 600); do grep -q cancel-me "$T/outc" 2>/dev/null && break; sleep 0.1; done
job=$(azureml_jobs | python3 -c "import json,sys; print(([j['name'] for j in json.load(sys.stdin) if j['status'] == 'Running'] or [''])[-1])")
if client cancel "$job" >"$T/cancel.out" 2>&1; then
    ok "the npm client cancels a job stepop created (beginCancelAndWait)"
else
    not_ok "the npm client cancels a job stepop created (beginCancelAndWait)"
    diag <"$T/cancel.out"
    kill -INT "$sub"; sleep 1; kill -INT "$sub" # a second Ctrl-C detaches: the test goes on
fi
wait "$sub"
rc=$?
is_eq "submit ends with the step's exit from its TERM trap" "$rc" 5
check "the step's trap ran" grep -q got-term "$T/outc"
check "the run is terminated" grep -q terminated "$T/errc"

# --- 10: a handle whose job lacks the run's tags is refused (cleanup: test_azureml_ops) ---
forged=01KF0RGED00000000000000000
fjob=stepop-$(echo "$forged" | lower)
envid=/subscriptions/$AZUREML_SUB/resourceGroups/$AZUREML_RG/providers/Microsoft.MachineLearningServices/workspaces/$AZUREML_WS/environments/$(
    "$STEPOP" submit --dry-run --image "$STEP_IMAGE" -- true 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['requests']['requests'][2]['body']['properties']['environmentId'].split('/environments/')[1])")
check "the npm client creates a job without tags" client create "$fjob" "$envid" \
    "/subscriptions/$AZUREML_SUB/resourceGroups/$AZUREML_RG/providers/Microsoft.MachineLearningServices/workspaces/$AZUREML_WS/computes/cpu-cluster" "sleep 600"
printf '{"flavor": "azureml", "handle": {"job": "%s"}, "settings": %s}\n' "$fjob" "$(settings cpu-cluster)" >"$T/forged.json"
"$STEPOP" artifact put "$T/forged.json" "az://test/aml/runs/$forged/submission.json" >/dev/null 2>&1
"$STEPOP" cancel "$forged" >"$T/out" 2>"$T/err"
check "stepop cancel refuses a handle whose job lacks the run's tags" test $? -ne 0
err_has "refusing to act on it" "... saying why"
is_eq "the untagged job runs on" "$(wait_job "$fjob" Running)" Running
client cancel "$fjob" >/dev/null 2>&1

# --- 11: the ARM API unreachable for 10 s while following (the fake stopped) ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo before; sleep 14; echo after-the-outage' >"$T/out11" 2>"$T/err11" &
sub=$!
for i in $(seq 600); do grep -q before "$T/out11" 2>/dev/null && break; sleep 0.1; done
kill -STOP "$AZUREML_FAKE_PID"
sleep 10
kill -CONT "$AZUREML_FAKE_PID"
wait "$sub"
is_eq "the follow loop rode out 10 s without the ARM API" "$?" 0
check "... with the logs complete" grep -q after-the-outage "$T/out11"

# --- a job Azure ML keeps queued: the pending deadline (the rule holds for every later job) ---
azureml_script '{"job": "*", "stay_queued": true}'
expect_rc 73 "a job that stays Queued past --pending-timeout (exit 73)" "$STEPOP" submit --pending-timeout 3s \
    --image "$STEP_IMAGE" -- true
err_has "Queued" "the message has Azure ML's status"
r=$(run_of)
is_eq "the queued job was canceled" "$(wait_job "stepop-$(echo "$r" | lower)" Canceled)" Canceled

# --- 12: no credential in any output, dry-run, status or stored object ---
is_eq "the Entra fake issued ARM tokens for the client secret" \
    "$(azure_auth_count "e.get('how') == 'secret' and e.get('status') == 200 and 'management.azure.com' in str(e.get('resource'))" | awk '{print ($1 > 0)}')" 1
# Issued tokens are JWTs: base64url of '{"alg"' or '{"typ"' starts every one.
leaks=$(grep -rlF -e "$AZURE_FAKE_SECRET" -e "eyJhbGci" -e "eyJ0eXAi" -e "$AZURITE_KEY" "$T"/*.out "$T"/*.err "$T"/out* \
    "$T"/err* "$T"/*.json "$T/azurite" 2>/dev/null | sort -u)
is_eq "no client secret, token or key in any output, dry-run, status or stored object" "$leaks" ""
done_testing
