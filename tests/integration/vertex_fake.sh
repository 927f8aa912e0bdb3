#!/usr/bin/env bash
# The Vertex AI fake (tests/servers/vertex_fake.py) checked before the vertex flavor relies on it,
# with Google's own npm JobServiceClient (@google-cloud/aiplatform v1, REST mode, over loopback
# http: tests/servers/vertex_client.js) and curl as clients: the descriptor set is compiled once
# and cached; jobs run in Podman with a busybox image and end SUCCEEDED, FAILED (the exit code in
# error.message; an OOM; a command the image lacks; a missing image, never started), CANCELLED by
# :cancel (SIGTERM reaches the container) and FAILED by scheduling.timeout; the scripted stockout
# (EXPIRED or FAILED, never started) and preemption (a second container with
# restartJobOnWorkerRestart); bodies Google's protos refuse (unknown field, bad enum, bad duration,
# REQUIRED missing, OUTPUT_ONLY set) and calls without a valid bearer token are refused;
# Cloud Logging's entries:list holds the container's output; the real `stepop run` executes as
# a job, its status and logs in the S3 store; and --tokeninfo checks tokens at the Google auth
# fake's tokeninfo route.
. "$(dirname "$0")/../lib.sh"
protobuf_python >/dev/null || skip_all "python3-protobuf is not installed (make deps)"
command -v protoc >/dev/null || skip_all "protoc is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/@google-cloud/aiplatform/package.json" ] || skip_all "npm @google-cloud/aiplatform is not installed (make deps)"
PY=$(protobuf_python)

# The descriptor set: built by protoc when missing, reused while the .proto files are unchanged.
start=$SECONDS
"$PY" "$ROOT/tests/servers/vertex_fake.py" --compile-only --port-file "$T/x" --podman-dir "$T" --jobs-dir "$T/j" \
    --proto-cache "$T/protos" >"$T/compile.log" 2>&1
check "protoc compiles the aiplatform and google-gax protos into a descriptor set" test -s "$T/protos/vertex.pb"
check "... which holds JobService and google.rpc.Status" sh -c "grep -qa JobService '$T/protos/vertex.pb' && grep -qa google/rpc/status.proto '$T/protos/vertex.pb'"
m1=$(stat -c %Y.%s "$T/protos/vertex.pb")
sleep 1
"$PY" "$ROOT/tests/servers/vertex_fake.py" --compile-only --port-file "$T/x" --podman-dir "$T" --jobs-dir "$T/j" --proto-cache "$T/protos"
is_eq "an unchanged set is not rebuilt" "$(stat -c %Y.%s "$T/protos/vertex.pb")" "$m1"
sed -i 's/"hash": "[0-9a-f]*"/"hash": "0"/' "$T/protos/vertex.pb.stamp"
"$PY" "$ROOT/tests/servers/vertex_fake.py" --compile-only --port-file "$T/x" --podman-dir "$T" --jobs-dir "$T/j" --proto-cache "$T/protos"
check "an outdated set is rebuilt" test "$(stat -c %Y.%s "$T/protos/vertex.pb")" != "$m1"
echo "# descriptor set checks: $((SECONDS - start)) s"

start_podman || { not_ok "podman starts"; done_testing; }
start_s3 || { not_ok "the S3 store starts"; done_testing; }
TOKEN=ya29.vertex-test-token-$RANDOM
printf '%s\n{"token": "ya29.expired", "expires": 1}\n' "$TOKEN" >"$T/tokens"
start_vertex_fake --tokens "$T/tokens" --stop-grace 3 --start-delay 0.2 --machine-memory e2-small=50331648 \
    --container-env TEST_ONLY=1 --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" \
    --container-env "AWS_ACCESS_KEY_ID=$S3_AKID" --container-env "AWS_SECRET_ACCESS_KEY=$S3_SECRET" \
    --container-env AWS_REGION=us-east-1 --container-env AWS_EC2_METADATA_DISABLED=true ||
    { not_ok "the Vertex fake starts"; done_testing; }
ok "the Vertex fake listens at $VERTEX_FAKE_URL"

BUSYBOX=localhost/stepop-test/busybox:$(sha256sum /bin/busybox | cut -c1-16)
if ! podman_cli image exists "$BUSYBOX"; then
    podman_rootfs "$T/rootfs"
    tar -C "$T/rootfs" -c . | podman_cli import --change 'CMD ["/bin/sh", "-c", "echo the image CMD ran; exit 99"]' \
        - "$BUSYBOX" >"$T/import.log" 2>&1 || { not_ok "busybox image builds"; diag <"$T/import.log"; done_testing; }
fi

P=projects/test-project/locations/us-central1
export VERTEX_TOKEN=$TOKEN
client() { node "$ROOT/tests/servers/vertex_client.js" "$VERTEX_FAKE_HOST" "$@"; }
# api METHOD PATH [BODY]: curl with the token; "STATUS" then the body, in $T/out.
api() {
    local code
    code=$(curl -s -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${TOKEN_OVERRIDE-$TOKEN}" \
        -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$VERTEX_FAKE_URL$2")
    { echo "$code"; cat "$T/body"; } >"$T/out"
}
# vjob NAME SCRIPT [EXTRA-JSON [IMAGE]]: a CustomJob (REST JSON) in $T/NAME.json running SCRIPT with sh;
# EXTRA-JSON is merged into it, "scheduling" into jobSpec.scheduling.
vjob() {
    python3 - "$1" "$2" "${3:-{\}}" "${4:-$BUSYBOX}" >"$T/$1.json" <<'PY'
import json, sys
name, script, extra, image = sys.argv[1:]
d = {"displayName": name, "labels": {"stepop-run-id": name},
     "jobSpec": {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                                      "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100},
                                      "containerSpec": {"imageUri": image, "command": ["/bin/sh", "-c", script],
                                                        "env": [{"name": "GREETING", "value": "hello from"}]}}],
                 "scheduling": {"timeout": "600s"}}}
extra = json.loads(extra)
d["jobSpec"]["scheduling"].update(extra.pop("scheduling", {}))
if "machineType" in extra:
    d["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["machineType"] = extra.pop("machineType")
if "env" in extra:
    d["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"] += extra.pop("env")
if "command" in extra:
    d["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["command"] = extra.pop("command")
d.update(extra)
print(json.dumps(d))
PY
}
create() { api POST "/v1/$P/customJobs" "$(cat "$T/$1.json")"; }
# wait_vjobs STATE-REGEX NAME...: until each job (by displayName) is in a matching state (90 s at most).
wait_vjobs() {
    local want=$1
    shift
    for _ in $(seq 300); do
        vertex_jobs | python3 -c "import json,re,sys; s={j['display_name']: j['state'] for j in json.load(sys.stdin)}; \
            bad=[n + '=' + str(s.get(n)) for n in sys.argv[2:] if not re.fullmatch(sys.argv[1], s.get(n) or '')]; print(*bad); sys.exit(bool(bad))" \
            "$want" "$@" && return 0
        sleep 0.3
    done
    return 1
}
jobname() { vertex_jobs | python3 -c "import json,sys; print([j['name'] for j in json.load(sys.stdin) if j['display_name'] == sys.argv[1]][0])" "$1"; }
jfield() { vertex_jobs | python3 -c "import json,sys; j=[j for j in json.load(sys.stdin) if j['display_name'] == sys.argv[1]][0]; print($2)" "$1"; }
# get NAME: GetCustomJob's answer (curl) in $T/NAME.get
get() { api GET "/v1/$(jobname "$1")"; tail -n +2 "$T/out" >"$T/$1.get"; }
field() { jq_py "$T/$1.get" "$2"; }

vjob ok-job 'echo "$GREETING job $CLOUD_ML_JOB_ID in $CLOUD_ML_REGION test=$TEST_ONLY"; echo to-stderr >&2; exit 0'
vjob fail-job 'echo about to fail; exit 3'
vjob cancel-job 'trap "echo got SIGTERM; exit 143" TERM; echo waiting; while :; do sleep 1; done'
vjob slow-job 'trap "exit 143" TERM; while :; do sleep 1; done' '{"scheduling": {"timeout": "2s"}}'
vjob oom-job 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1' '{"machineType": "e2-small"}'
vjob noexec-job 'true' '{"command": ["/no/such/entrypoint"]}'
vjob noimage-job 'true' '{}' localhost/stepop-test/no-such-image:1
vjob flex-job 'echo must not run' '{"scheduling": {"strategy": "FLEX_START", "maxWaitDuration": "1800s"}}'
vjob stock-job 'echo must not run' '{"scheduling": {"strategy": "SPOT"}}'
vjob spot-job 'trap "echo preempted TERM; exit 143" TERM; echo "start $MARK"; for i in 1 2 3 4 5 6; do sleep 1; done; echo done' \
    '{"scheduling": {"strategy": "SPOT", "restartJobOnWorkerRestart": true}, "env": [{"name": "MARK", "value": "m1"}]}'
vjob lost-job 'trap "exit 143" TERM; while :; do sleep 1; done' '{"scheduling": {"strategy": "SPOT"}}'
vertex_script '[{"job": "flex-job", "stockout": true, "after": 1}, {"job": "stock-job", "stockout": true, "after": 1},
                {"job": "spot-job", "preempt_after": 2}, {"job": "lost-job", "preempt_after": 2}]'

start=$SECONDS
# Google's client creates three (it takes seconds to load), curl the others.
pids=()
for j in ok-job fail-job cancel-job; do client create "$P" "$T/$j.json" >"$T/$j.create" 2>&1 & pids+=($!); done
for j in slow-job oom-job noexec-job noimage-job flex-job stock-job spot-job lost-job; do
    create "$j"
    cp "$T/out" "$T/$j.create"
done
wait "${pids[@]}"
for j in ok-job fail-job cancel-job; do
    is_eq "createCustomJob $j (npm JobServiceClient)" "$(jq_py "$T/$j.create" "(d['displayName'], d['state'], d['name'].startswith('$P/customJobs/'))" 2>&1)" \
        "('$j', 'JOB_STATE_QUEUED', True)"
done
bad=""
for j in slow-job oom-job noexec-job noimage-job flex-job stock-job spot-job lost-job; do
    [ "$(head -1 "$T/$j.create")" = 200 ] || bad="$bad $j"
done
is_eq "CreateCustomJob by curl: 200 for the eight others" "$bad" ""

# Cancelled by Google's client: SIGTERM reaches the container.
check "cancel-job reaches RUNNING" wait_vjobs JOB_STATE_RUNNING cancel-job
check "cancelCustomJob (npm JobServiceClient)" client cancel "$(jobname cancel-job)"
check "the jobs end" wait_vjobs 'JOB_STATE_(SUCCEEDED|FAILED|CANCELLED|EXPIRED)' ok-job fail-job cancel-job slow-job oom-job \
    noexec-job noimage-job flex-job stock-job spot-job lost-job
echo "# jobs ended $((SECONDS - start)) s after the first CreateCustomJob"

client get "$(jobname ok-job)" >"$T/ok-job.client" 2>&1
is_eq "ok-job: SUCCEEDED (getCustomJob, npm JobServiceClient)" "$(jq_py "$T/ok-job.client" "d['state']")" JOB_STATE_SUCCEEDED
is_eq "... the request echoed as the client reads it" \
    "$(jq_py "$T/ok-job.client" "(d['jobSpec']['workerPoolSpecs'][0]['machineSpec']['machineType'], d['jobSpec']['scheduling']['timeout']['seconds'], d['labels']['stepop-run-id'])")" \
    "('n1-standard-4', '600', 'ok-job')"
get ok-job
is_eq "... times in order (GetCustomJob by curl)" "$(field ok-job "d['endTime'] >= d['startTime'] >= d['createTime']")" True

get fail-job
is_eq "fail-job: FAILED with the exit code in error.message" "$(field fail-job "(d['state'], d['error']['code'], d['error']['message'][:60])")" \
    "('JOB_STATE_FAILED', 3, 'The replica workerpool0-0 exited with a non-zero status of 3')"
get cancel-job
is_eq "cancel-job: CANCELLED, error code 1" "$(field cancel-job "(d['state'], d['error']['code'])")" "('JOB_STATE_CANCELLED', 1)"
api POST "/v1/$(jobname cancel-job):cancel" '{}'
out_has '"status": "FAILED_PRECONDITION"' "cancelling a cancelled job is FAILED_PRECONDITION"
get slow-job
is_eq "slow-job: scheduling.timeout passed is FAILED, code 4" "$(field slow-job "(d['state'], d['error']['code'])")" "('JOB_STATE_FAILED', 4)"
get oom-job
is_eq "oom-job: over --machine-memory's 48 MiB, FAILED: out of memory" \
    "$(field oom-job "(d['state'], 'ran out of memory' in d['error']['message'])")" "('JOB_STATE_FAILED', True)"
get noexec-job
is_eq "noexec-job: a command the image lacks is FAILED without an exit code, after it started" \
    "$(field noexec-job "(d['state'], \"could not run the container's command\" in d['error']['message'], 'startTime' in d)")" \
    "('JOB_STATE_FAILED', True, True)"
get noimage-job
is_eq "noimage-job: a missing image is FAILED and never started (no startTime)" \
    "$(field noimage-job "(d['state'], d['error']['message'][:34], 'startTime' in d)")" "('JOB_STATE_FAILED', 'Unable to pull the container image', False)"
get flex-job
is_eq "flex-job: a FLEX_START stockout is EXPIRED, code 8, never started" \
    "$(field flex-job "(d['state'], d['error']['code'], d['error']['message'][:32], 'startTime' in d)")" \
    "('JOB_STATE_EXPIRED', 8, 'Resources are insufficient in re', False)"
get stock-job
is_eq "stock-job: a SPOT stockout is FAILED, never started" "$(field stock-job "(d['state'], 'startTime' in d)")" "('JOB_STATE_FAILED', False)"
get spot-job
is_eq "spot-job: preempted, restarted (restartJobOnWorkerRestart), SUCCEEDED" "$(field spot-job "d['state']")" JOB_STATE_SUCCEEDED
is_eq "... in two containers with the same environment" "$(jfield spot-job "(len(j['containers']), j['env'].get('MARK'))")" "(2, 'm1')"
get lost-job
is_eq "lost-job: preempted without restartJobOnWorkerRestart is FAILED, code 14" "$(field lost-job "(d['state'], d['error']['code'])")" \
    "('JOB_STATE_FAILED', 14)"

# ListCustomJobs: Google's client pages through them; a label filter.
check "listCustomJobs (npm JobServiceClient)" sh -c "node '$ROOT/tests/servers/vertex_client.js' '$VERTEX_FAKE_HOST' list '$P' >'$T/list.json'"
is_eq "... lists the eleven jobs" "$(jq_py "$T/list.json" "len(d)")" 11
api GET "/v1/$P/customJobs?filter=labels.stepop-run-id%3D%22fail-job%22&pageSize=5"
is_eq "a labels filter finds one job (curl)" "$(tail -n +2 "$T/out" | python3 -c "import json,sys; print([j['displayName'] for j in json.load(sys.stdin)['customJobs']])")" "['fail-job']"

# Cloud Logging: the container's output as ml_job entries.
logs() { # JOB [ORDER [SIZE]]
    api POST /v2/entries:list "{\"resourceNames\": [\"projects/test-project\"], \"orderBy\": \"timestamp ${2:-asc}\", \"pageSize\": ${3:-50},
        \"filter\": \"resource.type=\\\"ml_job\\\" AND resource.labels.job_id=\\\"$(jfield "$1" "j['id']")\\\"\"}"
}
logs ok-job
out_has "hello from job $(jfield ok-job "j['id']") in us-central1 test=1" "entries:list: the container's output, with Vertex's environment"
out_has '"severity": "ERROR", "insertId"' "... stderr as ERROR"
out_has '"resource": {"type": "ml_job", "labels": {"job_id"' "... as ml_job entries"
logs cancel-job desc 1
is_eq "... newest first, one per page: the SIGTERM trap's line" \
    "$(tail -n +2 "$T/out" | python3 -c "import json,sys; d=json.load(sys.stdin); print(len(d['entries']), d['entries'][0]['textPayload'], 'nextPageToken' in d)")" \
    "1 got SIGTERM True"
logs noexec-job
out_has "/no/such/entrypoint" "a command the image lacks: the runtime's error is the job's log"
logs spot-job
check "spot-job: the first container saw SIGTERM, the second ran to the end" \
    sh -c "grep -q 'preempted TERM' '$T/out' && grep -q 'was preempted' '$T/out' && grep -q '\"done\"' '$T/out'"
api POST /v2/entries:list '{"resourceNames": ["projects/test-project"], "pageSizes": 1}'
out_has 'Unknown name \"pageSizes\"' "entries:list refuses an unknown field"

# Refusals by Google's protos: strict JSON parsing, then google.api.field_behavior.
vjob bad1 'true' '{"bogus": 1}'
create bad1
out_has '400' "an unknown field: 400"
out_has 'has no field named \"bogus\"' "... naming it (json_format.Parse)"
out_has '"status": "INVALID_ARGUMENT"' "... INVALID_ARGUMENT in a google.rpc.Status"
vjob bad2 'true' '{"scheduling": {"strategy": "CHEAPEST"}}'
create bad2
out_has 'Invalid enum value CHEAPEST for enum type google.cloud.aiplatform.v1.Scheduling.Strategy' "a bad enum is refused"
vjob bad3 'true' '{"scheduling": {"timeout": "10m"}}'
create bad3
out_has 'Failed to parse timeout field' "a bad duration (10m) is refused"
vjob bad4 'true' '{"state": "JOB_STATE_RUNNING", "displayName": ""}'
create bad4
out_has "1.Field: custom_job.display_name; Message: Required field is not set." "a REQUIRED field missing is refused (field_behavior)"
out_has "2.Field: custom_job.state; Message: Output only field must not be set." "an OUTPUT_ONLY field set is refused"
out_has '"fieldViolations": [{"field": "custom_job.display_name"' "... with a google.rpc.BadRequest detail"
vjob bad5 'true' '{"env": [{"name": "NO_VALUE"}]}'
create bad5
out_has "custom_job.job_spec.worker_pool_specs[0].container_spec.env[1].value; Message: Required field is not set." \
    "... also deep inside (EnvVar.value)"
vjob bad6 'true' '{"displayName": ""}'
client create "$P" "$T/bad6.json" >"$T/out" 2>"$T/err"
err_has "error 3: List of found errors:" "Google's client reads the refusal as INVALID_ARGUMENT (3)"
api POST "/v1/$P/customJobs?validateOnly=true" "$(cat "$T/ok-job.json")"
out_has 'Unknown name \"validateOnly\"' "an unknown query parameter is refused"
api GET "/v1/$P/customJobs/1:nope"
out_has '"status": "NOT_FOUND"' "a route JobService does not have is NOT_FOUND"
api GET "/v1/$P/customJobs/1234"
out_has "404" "a job that does not exist is 404"
TOKEN_OVERRIDE=ya29.wrong api GET "/v1/$P/customJobs"
out_has '"status": "UNAUTHENTICATED"' "an unknown token is UNAUTHENTICATED"
TOKEN_OVERRIDE=ya29.expired api GET "/v1/$P/customJobs"
out_has '401' "an expired token is 401"
curl -s "$VERTEX_FAKE_URL/v1/$P/customJobs" >"$T/out"
out_has 'Request is missing required authentication credential' "no token is 401 in Google's words"
VERTEX_TOKEN=ya29.wrong client get "$(jobname ok-job)" >"$T/out" 2>"$T/err"
err_has "error 16:" "Google's client reads a refused token as UNAUTHENTICATED (16)"

# Scripted call faults.
vertex_script '{"throttle": 1, "op": "GetCustomJob"}'
api GET "/v1/$(jobname ok-job)"
out_has '"status": "RESOURCE_EXHAUSTED"' "a scripted throttle is 429 RESOURCE_EXHAUSTED"
api GET "/v1/$(jobname ok-job)"
out_has '"state": "JOB_STATE_SUCCEEDED"' "... once"
vertex_script '{"unavailable": 1}'
api GET "/v1/$(jobname ok-job)"
out_has '503' "a scripted outage is 503 UNAVAILABLE"

# DeleteCustomJob: an operation, done; the job is gone.
check "deleteCustomJob (npm JobServiceClient)" sh -c "node '$ROOT/tests/servers/vertex_client.js' '$VERTEX_FAKE_HOST' delete '$(jobname fail-job)' | grep -q '\"done\":true'"
is_eq "... the job is gone" "$(vertex_jobs | python3 -c "import json,sys; print(sum(j['display_name'] == 'fail-job' for j in json.load(sys.stdin)))")" 0

# The real `stepop run` inside a job: manifest, status and logs in S3 through the verifying proxy.
if [ -x "$STEPOP" ] && podman_images >"$T/images.log" 2>&1; then
    run=s3://test/runs/v1
    manifest "$T/m.json" "$run" '"command":["sh","-c","echo step in job $CLOUD_ML_JOB_ID"]'
    "$STEPOP" artifact put "$T/m.json" "$run/manifest.json" >/dev/null 2>&1
    vjob step-job '' "{\"command\": [\"/usr/local/bin/stepop\", \"run\"], \"env\": [{\"name\": \"STEPOP_MANIFEST\", \"value\": \"$run/manifest.json\"}]}" "$STEP_IMAGE"
    create step-job
    out_has "200" "a job running stepop run in $STEP_IMAGE"
    check "... ends SUCCEEDED" wait_vjobs JOB_STATE_SUCCEEDED step-job
    "$STEPOP" artifact get "$run/status.json" "$T/status.json" >/dev/null 2>&1
    is_eq "... status.json in S3 says succeeded on host workerpool0-0" "$(jq_py "$T/status.json" "(d['phase'], d['host'])")" "('succeeded', 'workerpool0-0')"
    check "... the step's log is in S3" sh -c "'$STEPOP' logs '$run' 2>/dev/null | grep -q 'step in job $(jfield step-job "j['id']")'"
else
    ok "# SKIP no stepop binary or test image (make; see $T/images.log)"
fi

vertex_log >"$T/log.json"
is_eq "every call was checked against the token file" "$(jq_py "$T/log.json" "sorted(set(e.get('token', 'refused') for e in d))")" "['file', 'refused']"
check "the fake printed no error" sh -c "! grep -q 'vertex_fake:' '$T/vertex.log'"

# SIGTERM: the fake removes its containers.
kill "$VERTEX_FAKE_PID"
wait "$VERTEX_FAKE_PID" 2>/dev/null
is_eq "on SIGTERM the fake removed its containers" "$(podman_cli ps -aq --filter label=stepop-test.owner="$PODMAN_OWNER" | wc -l)" 0

# --tokeninfo: tokens checked at the Google auth fake's tokeninfo route instead of a file.
if type start_google_auth_fake >/dev/null 2>&1 && start_google_auth_fake; then
    start_vertex_fake --tokeninfo "$GOOGLE_AUTH_FAKE_URL/tokeninfo" || { not_ok "a second Vertex fake starts"; done_testing; }
    TOKEN=$(curl -s -H 'Metadata-Flavor: Google' "$GOOGLE_AUTH_FAKE_URL/computeMetadata/v1/instance/service-accounts/default/token" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
    api GET "/v1/$P/customJobs"
    out_has "200" "--tokeninfo: a token the auth fake issued is taken"
    TOKEN_OVERRIDE=ya29.not-issued api GET "/v1/$P/customJobs"
    out_has '"status": "UNAUTHENTICATED"' "--tokeninfo: one it did not issue is refused"
else
    ok "# SKIP no Google auth fake (tests/lib.sh start_google_auth_fake)"
fi
done_testing
