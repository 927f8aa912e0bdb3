#!/usr/bin/env bash
# stepop submit with the sagemaker flavor end to end against tests/servers/sagemaker_fake.py
# (SageMaker and CloudWatch Logs on botocore's models, every signature and body checked, the
# training container run in Podman): the real `stepop run` in the job writes to the S3 store
# (s3rver behind the signature-checking proxy) with the role's container credentials. Success,
# a step's exit code, an input and an output, a timeout, Ctrl-C, an image without stepop, --dry-run creating nothing, --detach then cancel
# with the AWS CLI seeing the job stepop created, a spot interruption (a new attempt), a capacity
# error. The fake's job rules apply to every later job, so the spot and capacity cases come last.
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
    --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms ||
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
   "region": "us-east-1", "spot": true, "entrypoint": ["/usr/local/bin/stepop", "run"]}}}}
JSON
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

# --- an input from the store, an output to it (conformance 3) ---
printf 'the input\n' >"$T/in.txt"
"$STEPOP" artifact put "$T/in.txt" s3://test/data/in.txt >/dev/null 2>&1
expect_rc 0 "an input and an output through S3" "$STEPOP" submit --image "$STEP_IMAGE" \
    --input data=s3://test/data/in.txt --output result=out@tar.gz -- sh -c 'mkdir out; cat data > out/copy.txt'
r=$(run_of)
"$STEPOP" artifact get "s3://test/sm/runs/$r/outputs/result.tar.gz" "$T/result.tar.gz" >/dev/null 2>&1
is_eq "the output is in the store, made from the input" "$(tar -xzOf "$T/result.tar.gz" copy.txt 2>/dev/null)" "the input"

# --- the step's timeout (conformance 5): stepop run ends it, SIGTERM first ---
expect_rc 143 "--timeout ends the step (SIGTERM: 143)" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 2s --grace 1s -- sleep 30
err_has "timeout" "the reason is timeout"

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

# --- --dry-run creates nothing ---
before=$(jobs_count)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" -- true
is_eq "--dry-run creates no job" "$(jobs_count)" "$before"

# --- --detach, the AWS CLI sees the job, cancel ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sleep 60
r=$(tail -1 "$T/out")
AWS=/usr/bin/aws
[ -x "$AWS" ] || AWS=$(command -v aws)
if [ -n "$AWS" ]; then
    check "the AWS CLI describes the job stepop created" sh -c "AWS_PAGER= '$AWS' --endpoint-url '$SAGEMAKER_FAKE_URL' \
        sagemaker describe-training-job --training-job-name stepop-$r --output json | grep -q '\"RoleArn\": \"$ROLE\"'"
fi
sleep 2
expect_rc 0 "stepop cancel stops the run" "$STEPOP" cancel --wait "$r"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
check "the run was terminated" grep -q '"terminated"' "$T/out"
st=$(wait_job "stepop-$r" Stopped)
case $st in Stopped | Failed) ok "the job ended ($st)" ;; *) not_ok "the job ended (it is $st)" ;; esac

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
done_testing
