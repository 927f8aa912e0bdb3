#!/usr/bin/env bash
# stepop submit with the sagemaker flavor end to end against tests/servers/sagemaker_fake.py
# (SageMaker and CloudWatch Logs on botocore's models, every signature and body checked, the
# training container run in Podman): the real `stepop run` in the job writes to the S3 store
# (s3rver behind the signature-checking proxy) with the role's container credentials. DESIGN.md
# §8's conformance list, numbered as there: success, exit codes (1); logs while the step runs and to
# its last line (2); a file and an unpacked tar.zst input, outputs fetched back, outputs.json (3);
# Ctrl-C (4); a timeout and an OOM (5); an image without stepop, its log lines quoted (6); an
# unknown setting and unsupported resources refused before anything is created (7); --dry-run (8);
# --detach then status and cancel, the AWS CLI seeing the job stepop created (9); the AWS CLI
# stopping a job; a forged handle refused (10); the fake stopped for 10 s while following (11);
# no credential anywhere (12); a spot interruption (a new attempt); a capacity error. The fake's
# job rules apply to every later job, so the spot and capacity cases come last.
# (It needs start_sagemaker_fake from tests/lib.sh.)
. "$(dirname "$0")/../lib.sh"
type start_sagemaker_fake >/dev/null 2>&1 || skip_all "tests/lib.sh has no start_sagemaker_fake (the SageMaker fake)"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
start_podman || { not_ok "podman starts"; done_testing; }
podman_images || { not_ok "test images build"; done_testing; }
start_s3 || { not_ok "the S3 store starts"; done_testing; }
start_awsfake --ecs-token ecs-secret-token || { not_ok "awsfake starts"; done_testing; }
start_sagemaker_fake --stop-grace 3 --start-delay 0.2 --container-credentials-url "$AWSFAKE_URL/ecs/creds" \
    --container-credentials-token ecs-secret-token --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" \
    --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms \
    --instance-memory ml.c5.xlarge=100663296 ||
    { not_ok "the SageMaker fake starts"; diag <"$T/sagemaker.log"; done_testing; }

export HOME=$T/home XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
ROLE=arn:aws:iam::123456789012:role/stepop-test
cat >stepop.json <<JSON
{"store": "s3://test/sm", "default_operator": "sm",
 "operators": {"sm": {"flavor": "sagemaker", "settings": {"role_arn": "$ROLE", "instance_type": "ml.m5.large",
   "region": "us-east-1", "entrypoint": ["/usr/local/bin/stepop", "run"]}},
  "spot": {"flavor": "sagemaker", "settings": {"role_arn": "$ROLE", "instance_type": "ml.m5.large",
   "region": "us-east-1", "spot": true, "entrypoint": ["/usr/local/bin/stepop", "run"]}},
  "small": {"flavor": "sagemaker", "settings": {"role_arn": "$ROLE", "instance_type": "ml.c5.xlarge",
   "region": "us-east-1", "entrypoint": ["/usr/local/bin/stepop", "run"]}}}}
JSON
AWS=/usr/bin/aws
[ -x "$AWS" ] || AWS=$(command -v aws)
awscli() { AWS_PAGER= "$AWS" --endpoint-url "$SAGEMAKER_FAKE_URL" "$@"; }
creates() { sagemaker_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e['op'] == 'CreateTrainingJob'))"; }
step_file() { printf '{"image": "%s", "command": ["true"], %s}\n' "$STEP_IMAGE" "$2" >"$1"; }
jobs_count() { sagemaker_jobs | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
job_field() { sagemaker_jobs | python3 -c "import json,sys; print([j for j in json.load(sys.stdin) if j['name']==sys.argv[1]][0][sys.argv[2]])" "$1" "$2"; }
run_of() { sed -n 's/.*run \([0-9A-Z]\{26\}\).*/\1/p' "$T/err" | head -1; }
# wait_job NAME STATUS: until the fake's job has STATUS (20 s at most); prints the last one seen.
wait_job() {
    local i st=""
    for i in $(seq 100); do
        st=$(job_field "$1" status)
        [ "$st" = "$2" ] && break
        sleep 0.2
    done
    echo "$st"
}

# --- success: the job runs stepop run, which writes to the S3 store ---
expect_rc 0 "a step runs as a training job" "$STEPOP" submit --image "$STEP_IMAGE" -- \
    sh -c 'echo "hello from a training job, attempt $STEPOP_ATTEMPT"'
out_has "hello from a training job, attempt 1" "its output streams back from the store"
err_has "succeeded" "the summary says succeeded"
r=$(run_of)
is_eq "the fake's job completed" "$(wait_job "stepop-$r" Completed)" Completed
is_eq "one CreateTrainingJob, accepted by the fake's checks" "$(sagemaker_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if e['op'] == 'CreateTrainingJob' and e['status'] == 200))")" 1

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
for i in $(seq 600); do grep -q early-line "$T/out23" 2>/dev/null && break; sleep 0.1; done
check "a line arrives on the submitter's stdout while the step runs" kill -0 "$sub"
wait "$sub"
is_eq "the step with inputs and outputs succeeds" "$?" 0
check "the line printed just before exit arrived" grep -q "last line" "$T/out23"
check "a file input and an unpacked tar.zst input were fetched" grep -q packed "$T/out23"
r=$(sed -n 's/.*run \([0-9A-Z]\{26\}\).*/\1/p' "$T/err23" | head -1)
"$STEPOP" artifact get "s3://test/sm/runs/$r/outputs/result.tar.zst" "$T/result.tar.zst" >/dev/null 2>&1
is_eq "a tar.zst output fetched back is identical" "$(zstd -dc "$T/result.tar.zst" 2>/dev/null | tar -xO copy.txt 2>/dev/null)" "the input"
"$STEPOP" artifact get "s3://test/sm/runs/$r/outputs/one" "$T/one" >/dev/null 2>&1
is_eq "a file output" "$(cat "$T/one" 2>/dev/null)" single
"$STEPOP" artifact get "s3://test/sm/runs/$r/outputs.json" "$T/outputs.json" >/dev/null 2>&1
is_eq "outputs.json names both outputs" "$(jq_py "$T/outputs.json" "' '.join(sorted(o['name'] for o in d['outputs']))" 2>/dev/null)" "one result"
check "outputs.json was stored after the outputs" bash -c "! [ '$(s3_object_file test "sm/runs/$r/outputs/result.tar.zst")' -nt \
    '$(s3_object_file test "sm/runs/$r/outputs.json")' ]"

# --- an input from the store, an output to it (conformance 3) ---
expect_rc 0 "an input and an output through S3" "$STEPOP" submit --image "$STEP_IMAGE" \
    --input data=s3://test/data/in.txt --output result=out@tar.gz -- sh -c 'mkdir out; cat data > out/copy.txt'
r=$(run_of)
"$STEPOP" artifact get "s3://test/sm/runs/$r/outputs/result.tar.gz" "$T/result.tar.gz" >/dev/null 2>&1
is_eq "the output is in the store, made from the input" "$(tar -xzOf "$T/result.tar.gz" copy.txt 2>/dev/null)" "the input"

# --- the step's timeout (conformance 5): stepop run ends it, SIGTERM first ---
expect_rc 143 "--timeout ends the step (SIGTERM: 143)" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 2s --grace 1s -- sleep 30
err_has "timeout" "the reason is timeout"

# --- an OOM (conformance 5): ml.c5.xlarge has 96 MiB on this fake (--instance-memory); the step
# is killed by the kernel, stepop run reads the cgroup's OOM count ---
expect_rc 137 "a step over the instance's memory (137)" "$STEPOP" submit --operator small --image "$STEP_IMAGE" -- \
    sh -c 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1'
err_has "oom_killed" "the summary says oom_killed"
r=$(run_of)
"$STEPOP" status "$r" --json >"$T/oom.json" 2>/dev/null
is_eq "status.json: failed, oom_killed" "$(jq_py "$T/oom.json" "d['phase'], d['reason']")" "failed oom_killed"

# --- Ctrl-C at the submitter (conformance 4): the step gets SIGTERM, its trap runs ---
cat >"$T/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
"$STEPOP" artifact put "$T/trap.sh" s3://test/data/trap.sh >/dev/null 2>&1
"$STEPOP" submit --image "$STEP_IMAGE" --grace 10s --input s=s3://test/data/trap.sh -- sh s >"$T/int.out" 2>"$T/int.err" &
sub=$!
for i in $(seq 300); do grep -q "step started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$sub"
wait "$sub"
is_eq "SIGINT to submit stops the job; the step's exit code comes back" "$?" 9
check "the logs are complete" grep -q "step cleaned up" "$T/int.out"
check "the run is terminated" grep -q "terminated" "$T/int.err"

# --- an image without stepop: the entrypoint never runs, SageMaker's word stands ---
expect_rc 72 "an image without stepop fails without a status (exit 72)" "$STEPOP" submit --image "$BARE_IMAGE" -- true
err_has "failed: " "with SageMaker's failure reason"
err_has "its last log lines: " "... and the job's last CloudWatch log lines"
err_has "/usr/local/bin/stepop" "... which name the missing entrypoint"

# --- 7: an unknown setting and unsupported resources are refused before anything is created ---
before=$(creates)
step_file "$T/bogus.json" '"settings": {"bogus": 1}'
expect_rc 2 "an unknown setting is refused" "$STEPOP" submit "$T/bogus.json"
err_has "settings.bogus" "naming it"
expect_rc 2 "--cpu is refused" "$STEPOP" submit --image "$STEP_IMAGE" --cpu 1 -- true
err_has "resources.cpu" "naming it"
expect_rc 2 "--memory is refused" "$STEPOP" submit --image "$STEP_IMAGE" --memory 1GiB -- true
err_has "resources.memory" "naming it"
expect_rc 2 "--gpus 1 on ml.m5.large is refused" "$STEPOP" submit --image "$STEP_IMAGE" --gpus 1 -- true
err_has "resources.gpus" "naming it"
is_eq "no CreateTrainingJob was sent" "$(creates)" "$before"

# --- --dry-run creates nothing ---
before=$(jobs_count)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" -- true
cp "$T/out" "$T/dry.out"
is_eq "--dry-run creates no job" "$(jobs_count)" "$before"

# --- --detach, the AWS CLI sees the job, cancel ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sleep 60
r=$(tail -1 "$T/out")
if [ -n "$AWS" ]; then
    check "the AWS CLI describes the job stepop created" sh -c "AWS_PAGER= '$AWS' --endpoint-url '$SAGEMAKER_FAKE_URL' \
        sagemaker describe-training-job --training-job-name stepop-$r --output json | grep -q '\"RoleArn\": \"$ROLE\"'"
fi
sleep 2
expect_rc 0 "stepop cancel stops the run" "$STEPOP" cancel --wait "$r"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
check "the run was terminated" grep -q '"terminated"' "$T/out"
cp "$T/out" "$T/status.out"
st=$(wait_job "stepop-$r" Stopped)
case $st in Stopped | Failed) ok "the job ended ($st)" ;; *) not_ok "the job ended (it is $st)" ;; esac

# --- the AWS CLI stops a running job: the follow loop sees it terminated ---
if [ -n "$AWS" ]; then
    "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo stop-me; sleep 60' >"$T/outstop" 2>"$T/errstop" &
    sub=$!
    for i in $(seq 600); do grep -q stop-me "$T/outstop" 2>/dev/null && break; sleep 0.1; done
    job=$(sagemaker_jobs | python3 -c "import json,sys; print([j['name'] for j in json.load(sys.stdin) if j['status'] == 'InProgress'][-1])")
    r=${job#stepop-}
    check "aws sagemaker stop-training-job" awscli sagemaker stop-training-job --training-job-name "$job"
    wait "$sub"
    rc=$?
    check "submit ends with the step's SIGTERM exit (143, got $rc)" test "$rc" = 143
    check "the run is terminated" grep -q terminated "$T/errstop"
    "$STEPOP" status "$r" --json >"$T/stop.json" 2>/dev/null
    is_eq "status.json: terminated" "$(jq_py "$T/stop.json" "d['phase']")" terminated
else
    ok "the AWS CLI cases # SKIP the AWS CLI is not installed"
fi

# --- 10: a handle whose job lacks the run's tags is refused by cancel (cleanup: test_sagemaker_ops) ---
forged=01KF0RGED00000000000000000
if [ -n "$AWS" ]; then
    sagemaker_script "{\"job\": \"stepop-$forged\", \"capacity_error\": true}"
    cat >"$T/untagged.json" <<JSON
{"TrainingJobName": "stepop-$forged", "RoleArn": "$ROLE",
 "AlgorithmSpecification": {"TrainingImage": "$STEP_IMAGE", "TrainingInputMode": "File"},
 "OutputDataConfig": {"S3OutputPath": "s3://test/sm/out"},
 "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
 "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
JSON
    check "the AWS CLI creates a job without tags" awscli sagemaker create-training-job --cli-input-json "file://$T/untagged.json"
    printf '{"flavor": "sagemaker", "handle": {"job": "stepop-%s"}, "settings": {"role_arn": "%s", "instance_type": "ml.m5.large", "region": "us-east-1"}}\n' \
        "$forged" "$ROLE" >"$T/forged.json"
    "$STEPOP" artifact put "$T/forged.json" "s3://test/sm/runs/$forged/submission.json" >/dev/null 2>&1
    "$STEPOP" cancel "$forged" >"$T/out" 2>"$T/err"
    check "stepop cancel refuses a handle whose job lacks the run's tags" test $? -ne 0
    err_has "refusing to act on it" "... saying why"
else
    ok "the AWS CLI cases # SKIP the AWS CLI is not installed"
fi

# --- 11: the SageMaker API unreachable for 10 s while following (the fake stopped) ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo before; sleep 14; echo after-the-outage' >"$T/out11" 2>"$T/err11" &
sub=$!
for i in $(seq 600); do grep -q before "$T/out11" 2>/dev/null && break; sleep 0.1; done
kill -STOP "$SAGEMAKER_FAKE_PID"
sleep 10
kill -CONT "$SAGEMAKER_FAKE_PID"
wait "$sub"
is_eq "the follow loop rode out 10 s without the SageMaker API" "$?" 0
check "... with the logs complete" grep -q after-the-outage "$T/out11"

# --- a spot interruption: SageMaker starts the job again with the same environment and the
# checkpoint directory kept ---
sagemaker_script '{"job": "*", "spot_interrupt_after": 3, "interruptions": 1}'
"$STEPOP" submit --operator spot --image "$STEP_IMAGE" -- \
    sh -c 'echo "attempt $STEPOP_ATTEMPT in $STEPOP_CHECKPOINT_DIR"
           if [ -e "$STEPOP_CHECKPOINT_DIR/step.ckpt" ]; then echo "resumed from $(cat "$STEPOP_CHECKPOINT_DIR/step.ckpt")"
           else echo epoch-3 >"$STEPOP_CHECKPOINT_DIR/step.ckpt"; sleep 30; fi' >"$T/out" 2>"$T/err"
spot_rc=$?
out_has "in /opt/ml/checkpoints" "a spot job's step gets the checkpoint directory"
r=$(run_of)
# Without the checkpoint the restart would sleep 30 s; it completes within wait_job's 20 s.
is_eq "SageMaker restarted the interrupted job, which resumed from its checkpoint and completed" \
    "$(wait_job "stepop-$r" Completed)" Completed
is_eq "in two containers" \
    "$(job_field "stepop-$r" containers | python3 -c "import ast,sys; print(len(ast.literal_eval(sys.stdin.read())))")" 2
is_eq "the submitter follows the restart to the end (exit 0)" "$spot_rc" 0
err_has "the platform runs the step again" "... saying that the platform runs the step again"
out_has "attempt 2 in /opt/ml/checkpoints" "the restart is attempt 2 (STEPOP_ATTEMPT_FROM_STATUS, docs/protocol.md)"
out_has "resumed from epoch-3" "... and its output streams after attempt 1's"
"$STEPOP" status "$r" --json >"$T/st.json" 2>"$T/st.err"
is_eq "status.json: succeeded, attempt 2" "$(jq_py "$T/st.json" "d['phase'], d['attempt']")" "succeeded 2"

# --- a capacity error: never started ---
sagemaker_script '{"job": "*", "capacity_error": true}'
expect_rc 71 "a capacity error: the job cannot start (exit 71)" "$STEPOP" submit --image "$STEP_IMAGE" -- true
err_has "could not get capacity" "in SageMaker's words"

# --- 12: no credential in any output, dry-run, status or stored object ---
mapfile -t secrets < <(python3 -c "
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    for k in ('secret', 'token'):
        if d.get(k): print(d[k])" "$S3_KEYS")
secrets+=(ecs-secret-token)
is_eq "the secrets to look for: the S3 keys, the role's and the ECS token" "$(( ${#secrets[@]} > 2 ))" 1
leaks=$(for s in "${secrets[@]}"; do grep -rlF -- "$s" "$T"/*.out "$T"/*.err "$T"/out* "$T"/err* "$T"/*.json "$S3_ROOT" 2>/dev/null; done | sort -u)
is_eq "no credential in any output, dry-run, status or stored object" "$leaks" ""
done_testing
