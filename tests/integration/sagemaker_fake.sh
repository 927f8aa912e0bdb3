#!/usr/bin/env bash
# The SageMaker fake (tests/servers/sagemaker_fake.py) checked with Debian's AWS CLI as the
# client, before the sagemaker flavor relies on it: jobs run in Podman with a busybox image and
# end Completed, Failed (the exit code in FailureReason; OOM), Stopped by StopTrainingJob and by
# MaxRuntimeInSeconds; a bad signature, an unknown key and invalid bodies are refused in the
# service's words; the scripted capacity error, spot interruption and throttling; the role's
# credentials reach the container; CloudWatch Logs holds the container's output; and the real
# `stepop run` executes as a job, its status and logs in S3.
. "$(dirname "$0")/../lib.sh"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
# Debian's own awscli (v2), not another one earlier on PATH.
AWS=/usr/bin/aws
[ -x "$AWS" ] || AWS=$(command -v aws) || skip_all "awscli is not installed (make deps)"
start_podman || { not_ok "podman starts"; done_testing; }
start_s3 || { not_ok "the keys' S3 proxy starts"; done_testing; }
start_awsfake --ecs-token ecs-secret-token || { not_ok "awsfake starts"; done_testing; }
start_sagemaker_fake --stop-grace 3 --instance-memory ml.c5.xlarge=50331648 --start-delay 0.2 --container-credentials-url "$AWSFAKE_URL/ecs/creds" \
    --container-credentials-token ecs-secret-token --container-env TEST_ONLY=1 --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" ||
    { not_ok "the SageMaker fake starts"; diag <"$T/sagemaker.log"; done_testing; }
ok "the SageMaker fake listens at $SAGEMAKER_FAKE_URL"

BUSYBOX=localhost/stepop-test/busybox:$(sha256sum /bin/busybox | cut -c1-16)
if ! podman_cli image exists "$BUSYBOX"; then
    podman_rootfs "$T/rootfs"
    tar -C "$T/rootfs" -c . | podman_cli import --change 'CMD ["/bin/sh", "-c", "echo the image CMD ran; exit 99"]' \
        - "$BUSYBOX" >"$T/import.log" 2>&1 || { not_ok "busybox image builds"; diag <"$T/import.log"; done_testing; }
fi

export AWS_PAGER="" AWS_MAX_ATTEMPTS=1 HOME=$T/home
mkdir -p "$HOME"
aws_() { "$AWS" --endpoint-url "$SAGEMAKER_FAKE_URL" --no-cli-pager --output json "$@"; }
ROLE=arn:aws:iam::123456789012:role/stepop-test
# job NAME SCRIPT [EXTRA-JSON]: a CreateTrainingJob body in $T/NAME.json running SCRIPT with sh.
job() {
    python3 - "$@" >"$T/$1.json" <<'PY'
import json, sys
name, script = sys.argv[1], sys.argv[2]
d = {"TrainingJobName": name,
     "AlgorithmSpecification": {"TrainingImage": sys.argv[4], "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["/bin/sh", "-c", script]},
     "RoleArn": sys.argv[5], "OutputDataConfig": {"S3OutputPath": "s3://test/out"},
     "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
     "StoppingCondition": {"MaxRuntimeInSeconds": 600},
     "Environment": {"GREETING": "hello from"},
     "Tags": [{"Key": "stepop:run-id", "Value": name}]}
d.update(json.loads(sys.argv[3]))
print(json.dumps(d))
PY
}
create() { aws_ sagemaker create-training-job --cli-input-json "file://$T/$1.json"; }
# raw TARGET JSON-BODY: the call signed by botocore's SigV4Auth with the current keys, bodies
# unchecked (the CLI validates its own, and starts slowly): "STATUS ERROR-TYPE" then the body.
raw() {
    "$(botocore_python)" - "$SAGEMAKER_FAKE_URL" "$1" "$2" <<'PY'
import sys, os, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, target, body = sys.argv[1:]
req = AWSRequest(method='POST', url=url + '/', data=body.encode(),
                 headers={'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target})
SigV4Auth(Credentials(os.environ['AWS_ACCESS_KEY_ID'], os.environ['AWS_SECRET_ACCESS_KEY']),
          'logs' if target.startswith('Logs') else 'sagemaker', 'us-east-1').add_auth(req)
try:
    r = urllib.request.urlopen(urllib.request.Request(url + '/', data=req.body, headers=dict(req.headers.items())))
    print(r.status, r.headers.get('X-Amzn-ErrorType'))
    print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get('X-Amzn-ErrorType'))
    print(e.read().decode())
PY
}
sm() { raw "SageMaker.$1" "$2"; }
# wait_jobs STATUS-REGEX NAME...: until each job's status (TrainingJobStatus, or SecondaryStatus
# with "secondary") matches, from /_/jobs (60 s at most); prints the ones that did not.
wait_jobs() {
    local key=status
    [ "$1" = secondary ] && { key=secondary; shift; }
    local want=$1
    shift
    for _ in $(seq 200); do
        sagemaker_jobs | python3 -c "import json,re,sys; s={j['name']: j['$key'] for j in json.load(sys.stdin)}; \
            bad=[n for n in sys.argv[2:] if not re.fullmatch(sys.argv[1], s.get(n) or '')]; print(*bad); sys.exit(bool(bad))" \
            "$want" "$@" && return 0
        sleep 0.3
    done
    return 1
}
# describe NAME [cli]: DescribeTrainingJob's answer in $T/NAME.desc (by the CLI with "cli")
describe() {
    if [ "${2:-}" = cli ]; then
        aws_ sagemaker describe-training-job --training-job-name "$1" >"$T/$1.desc" 2>"$T/$1.err"
    else
        sm DescribeTrainingJob "{\"TrainingJobName\": \"$1\"}" | tail -n +2 >"$T/$1.desc"
    fi
}
field() { jq_py "$T/$1.desc" "$2"; }

job ok-job 'echo "$GREETING $TRAINING_JOB_NAME in $AWS_REGION test=$TEST_ONLY"; wget -qO- --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_CONTAINER_CREDENTIALS_FULL_URI" | grep -o "\"AccessKeyId\": \"ASIA" && echo creds-ok; exit 0' '{}' "$BUSYBOX" "$ROLE"
job fail-job 'echo about to fail; echo "the model diverged" >/opt/ml/output/failure; exit 3' '{}' "$BUSYBOX" "$ROLE"
job stop-job 'trap "echo got SIGTERM; exit 143" TERM; echo waiting; while :; do sleep 1; done' '{}' "$BUSYBOX" "$ROLE"
job slow-job 'trap "exit 143" TERM; while :; do sleep 1; done' '{"StoppingCondition": {"MaxRuntimeInSeconds": 2}}' "$BUSYBOX" "$ROLE"
job oom-job 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1' \
    '{"ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5}}' "$BUSYBOX" "$ROLE"
job cap-job 'echo must not run' '{}' "$BUSYBOX" "$ROLE"
job spot-job 'trap "echo spot TERM; exit 143" TERM; echo "start $SPOT_MARK"; for i in 1 2 3 4 5 6; do sleep 1; done; echo done' \
    '{"EnableManagedSpotTraining": true, "StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 900},
      "CheckpointConfig": {"S3Uri": "s3://test/ckpt", "LocalPath": "/opt/ml/checkpoints"}, "Environment": {"SPOT_MARK": "m1"}}' "$BUSYBOX" "$ROLE"

sagemaker_script '[{"job": "cap-job", "capacity_error": true}, {"job": "spot-job", "spot_interrupt_after": 2}]'
start=$SECONDS
# The CLI creates three, botocore's signer the others (the CLI takes seconds to start).
# (wait with PIDs: the test's servers are children too)
pids=()
for j in ok-job fail-job stop-job; do create "$j" >"$T/$j.create" 2>&1 & pids+=($!); done
for j in slow-job cap-job spot-job oom-job; do sm CreateTrainingJob "$(cat "$T/$j.json")" >"$T/$j.create" 2>&1; done
wait "${pids[@]}"
for j in ok-job fail-job stop-job; do
    is_eq "create-training-job $j (awscli)" "$(jq_py "$T/$j.create" "d['TrainingJobArn']" 2>&1)" \
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/$j"
done
for j in slow-job cap-job spot-job oom-job; do
    is_eq "CreateTrainingJob $j (botocore)" "$(head -1 "$T/$j.create")" "200 None"
done
sm CreateTrainingJob "$(cat "$T/ok-job.json")" >"$T/out"
out_has "400 ResourceInUse" "a second job of the same name is ResourceInUse"
out_has "a training job with this name already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/ok-job)" \
    "... in SageMaker's words"

# Stopped by StopTrainingJob: SIGTERM reaches the container.
check "stop-job reaches Training" wait_jobs secondary Training stop-job
expect_rc 0 "stop-training-job stop-job (awscli)" aws_ sagemaker stop-training-job --training-job-name stop-job

check "the seven jobs end" wait_jobs 'Completed|Failed|Stopped' ok-job fail-job stop-job slow-job cap-job spot-job oom-job
echo "# jobs ended $((SECONDS - start)) s after the first CreateTrainingJob"

pids=()
for j in ok-job fail-job stop-job; do describe "$j" cli & pids+=($!); done
wait "${pids[@]}"
is_eq "ok-job: Completed (awscli)" "$(field ok-job "(d['TrainingJobStatus'], d['SecondaryStatus'])")" "('Completed', 'Completed')"
is_eq "ok-job: SageMaker's secondary statuses" "$(field ok-job "[t['Status'] for t in d['SecondaryStatusTransitions']]")" \
    "['Starting', 'Downloading', 'Training', 'Uploading', 'Completed']"
is_eq "ok-job: the request echoed" "$(field ok-job "(d['RoleArn'], d['ResourceConfig']['InstanceType'], d['AlgorithmSpecification']['ContainerEntrypoint'][0])")" \
    "('$ROLE', 'ml.m5.large', '/bin/sh')"
is_eq "ok-job: times in order" "$(field ok-job "d['TrainingEndTime'] >= d['TrainingStartTime'] >= d['CreationTime']")" True

is_eq "fail-job: Failed (awscli)" "$(field fail-job "(d['TrainingJobStatus'], d['SecondaryStatus'])")" "('Failed', 'Failed')"
is_eq "fail-job: FailureReason with the failure file and the exit code" "$(field fail-job "d['FailureReason']")" \
    "AlgorithmError: the model diverged, exit code: 3"

is_eq "stop-job: Stopping, then Stopped (awscli)" \
    "$(field stop-job "(d['TrainingJobStatus'], [t['Status'] for t in d['SecondaryStatusTransitions']][-3:], d.get('FailureReason'))")" \
    "('Stopped', ['Training', 'Stopping', 'Stopped'], None)"
sm StopTrainingJob '{"TrainingJobName": "stop-job"}' >"$T/out"
out_has "400 ValidationException" "stopping a stopped job is refused"
out_has "the training job is in status Stopped" "... with the status"

describe slow-job
is_eq "slow-job: MaxRuntimeInSeconds passed is Stopped/MaxRuntimeExceeded" "$(field slow-job "(d['TrainingJobStatus'], d['SecondaryStatus'])")" \
    "('Stopped', 'MaxRuntimeExceeded')"

describe cap-job
is_eq "cap-job: the scripted capacity error" "$(field cap-job "(d['TrainingJobStatus'], d['FailureReason'][:64])")" \
    "('Failed', 'CapacityError: Unable to provision requested ML compute capacity')"

describe oom-job
is_eq "oom-job: over --instance-memory's 48 MiB is Failed with SageMaker's memory reason" \
    "$(field oom-job "(d['TrainingJobStatus'], d['FailureReason'].startswith('OutOfMemoryError: Please use an instance type with more memory'))")" "('Failed', True)"

describe spot-job
is_eq "spot-job: Completed after the interruption" "$(field spot-job "d['TrainingJobStatus']")" "Completed"
is_eq "spot-job: Interrupted then Restarting" "$(field spot-job "[t['Status'] for t in d['SecondaryStatusTransitions']]")" \
    "['Starting', 'Downloading', 'Training', 'Interrupted', 'Restarting', 'Downloading', 'Training', 'Uploading', 'Completed']"
sagemaker_jobs >"$T/jobs.json"
is_eq "containers, streams and environments as expected" \
    "$(jq_py "$T/jobs.json" "sorted((j['name'], len(j['containers']), len(j['streams']), j['env'].get('SPOT_MARK')) for j in d)")" \
    "[('cap-job', 0, 0, None), ('fail-job', 1, 1, None), ('ok-job', 1, 1, None), ('oom-job', 1, 1, None), ('slow-job', 1, 1, None), ('spot-job', 2, 2, 'm1'), ('stop-job', 1, 1, None)]"
check "spot-job: the checkpoint directory is bind-mounted" test -d "$T/sagemaker-jobs/spot-job/checkpoints"

# Tags by ARN.
expect_rc 0 "list-tags by the job's ARN (awscli)" aws_ sagemaker list-tags --resource-arn arn:aws:sagemaker:us-east-1:123456789012:training-job/ok-job
out_has '"Value": "ok-job"' "... the tag given at creation"

# CloudWatch Logs: the container's output.
expect_rc 0 "describe-log-streams (awscli)" aws_ logs describe-log-streams --log-group-name /aws/sagemaker/TrainingJobs --log-stream-name-prefix ok-job/
stream=$(jq_py "$T/out" "d['logStreams'][0]['logStreamName']" 2>/dev/null)
check "the stream is named <job>/algo-1-<epoch>" sh -c "echo '$stream' | grep -qE '^ok-job/algo-1-[0-9]{10}$'"
expect_rc 0 "get-log-events (awscli)" aws_ logs get-log-events --log-group-name /aws/sagemaker/TrainingJobs --log-stream-name "$stream" --start-from-head
out_has "hello from ok-job in us-east-1 test=1" "... the container's output, with SageMaker's environment"
out_has "creds-ok" "... the role's credentials reached the container (awsfake's /ecs/creds, with its token)"
is_eq "awsfake saw the token" "$(awsfake_count "e['path'] == '/ecs/creds' and e.get('authorization') == 'match'")" 1
n=0
for s in $(jq_py "$T/jobs.json" "' '.join(s for j in d if j['name'] == 'spot-job' for s in j['streams'])"); do
    raw Logs_20140328.GetLogEvents "{\"logGroupName\": \"/aws/sagemaker/TrainingJobs\", \"logStreamName\": \"$s\", \"startFromHead\": true}" >"$T/ev.$n"
    n=$((n + 1))
done
check "spot-job: the first stream saw SIGTERM, the second ran to the end" \
    sh -c "grep -q 'spot TERM' '$T/ev.0' && grep -q '\"done\"' '$T/ev.1' && grep -q 'start m1' '$T/ev.1'"
raw Logs_20140328.GetLogEvents '{"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "nope/algo-1-1"}' >"$T/out"
out_has "400 ResourceNotFoundException" "a missing stream is ResourceNotFoundException"

# Refusals, in the service's words.
sm DescribeTrainingJob '{"TrainingJobName": "no-such-job"}' >"$T/out"
out_has '400 ValidationException' "a missing job is ValidationException"
out_has "Requested resource not found." "... 'Requested resource not found.' as SageMaker says"
job bad_name 'exit 0' '{}' "$BUSYBOX" "$ROLE"
expect_rc 254 "a name with '_' is refused (awscli)" create bad_name
err_has "ValidationException" "... as ValidationException"
err_has "Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular expression pattern" \
    "... with the model's pattern"
job long-env 'exit 0' '{"Environment": {"K": "'"$(head -c 600 /dev/zero | tr '\0' x)"'"}}' "$BUSYBOX" "$ROLE"
sm CreateTrainingJob "$(cat "$T/long-env.json")" >"$T/out"
out_has "Member must have length less than or equal to 512" "an Environment value over the model's 512 is refused"
job bad-type 'exit 0' '{"ResourceConfig": {"InstanceType": "ml.nope.large", "InstanceCount": 1, "VolumeSizeInGB": 5}}' "$BUSYBOX" "$ROLE"
sm CreateTrainingJob "$(cat "$T/bad-type.json")" >"$T/out"
out_has "Member must satisfy enum value set" "an instance type outside the enum is refused"
job spot-no-wait 'exit 0' '{"EnableManagedSpotTraining": true}' "$BUSYBOX" "$ROLE"
sm CreateTrainingJob "$(cat "$T/spot-no-wait.json")" >"$T/out"
out_has "It must be present and be greater than or equal to MaxRuntimeInSeconds" "managed spot without MaxWaitTimeInSeconds is refused"
python3 -c "import json; d=json.load(open('$T/ok-job.json')); d['TrainingJobName']='no-role'; del d['RoleArn']; print(json.dumps(d))" >"$T/no-role.json"
sm CreateTrainingJob "$(cat "$T/no-role.json")" >"$T/out"
out_has "400 ValidationException" "a missing RoleArn: 400 ValidationException in X-Amzn-ErrorType"
out_has "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" "... in the service's words"
sm DescribeTrainingJob '{"TrainingJobName": "ok-job", "Extra": 1}' >"$T/out"
out_has 'Unknown parameter in input: \"Extra\"' "an unknown member is refused (ParamValidator's words)"
sm ListEndpoints '{}' >"$T/out"
out_has "400 UnknownOperationException" "an operation the fake lacks is UnknownOperationException"

AWS_SECRET_ACCESS_KEY=wrong expect_rc 254 "a wrong secret is refused (awscli)" aws_ sagemaker describe-training-job --training-job-name ok-job
err_has "InvalidSignatureException" "... as InvalidSignatureException"
AWS_ACCESS_KEY_ID=AKIDUNKNOWN000000000 sm DescribeTrainingJob '{"TrainingJobName": "ok-job"}' >"$T/out"
out_has "403 UnrecognizedClientException" "an unknown key is 403 UnrecognizedClientException"

sagemaker_script '{"throttle": 1, "op": "DescribeTrainingJob"}'
sm DescribeTrainingJob '{"TrainingJobName": "ok-job"}' >"$T/out"
out_has "400 ThrottlingException" "a scripted throttle is 400 ThrottlingException"
sm DescribeTrainingJob '{"TrainingJobName": "ok-job"}' >"$T/out"
out_has "200 None" "... once"
sagemaker_script '{"internal_error": 1}'
sm DescribeTrainingJob '{"TrainingJobName": "ok-job"}' >"$T/out"
out_has "500 InternalFailure" "a scripted internal error is 500 InternalFailure"

# The real `stepop run` inside a job: manifest, status and logs in S3 through the verifying proxy,
# with the role's credentials from the container endpoint.
if [ -x "$STEPOP" ] && podman_images >"$T/images.log" 2>&1; then
    run=s3://test/runs/r1
    manifest "$T/m.json" "$run" '"command":["sh","-c","echo step in $TRAINING_JOB_NAME"]'
    "$STEPOP" artifact put "$T/m.json" "$run/manifest.json" >/dev/null 2>&1
    job step-job '' '{"Environment": {"STEPOP_MANIFEST": "'"$run/manifest.json"'", "STEPOP_ATTEMPT": "1"}}' "$STEP_IMAGE" "$ROLE"
    set_entrypoint() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['AlgorithmSpecification']['ContainerEntrypoint']=['/usr/local/bin/stepop','run']; json.dump(d, open(sys.argv[1],'w'))" "$1"; }
    set_entrypoint "$T/step-job.json"
    creds_before=$(awsfake_count "e['path'] == '/ecs/creds'")
    sm CreateTrainingJob "$(cat "$T/step-job.json")" >"$T/out"
    out_has "200 None" "a job running stepop run in $STEP_IMAGE"
    check "... ends" wait_jobs Completed step-job
    "$STEPOP" artifact get "$run/status.json" "$T/status.json" >/dev/null 2>&1
    is_eq "... status.json in S3 says succeeded on host algo-1" "$(jq_py "$T/status.json" "(d['phase'], d['host'])")" "('succeeded', 'algo-1')"
    check "... the step's log is in S3" sh -c "'$STEPOP' logs '$run' 2>/dev/null | grep -q 'step in step-job'"
    check "... stepop signed in with the role's credentials" test "$(awsfake_count "e['path'] == '/ecs/creds'")" -gt "$creds_before"
else
    ok "# SKIP no stepop binary or test image (make; see $T/images.log)"
fi

sagemaker_log >"$T/log.json"
is_eq "every call was signed correctly but the two refused" \
    "$(jq_py "$T/log.json" "sorted(set(e.get('error') for e in d if not e.get('verified')), key=str)")" \
    "['InvalidSignatureException', 'UnrecognizedClientException']"
check "the fake printed no invalid answer" sh -c "! grep -q 'invalid .* answer' '$T/sagemaker.log'"

# SIGTERM: the fake removes its containers.
kill "$SAGEMAKER_FAKE_PID"
wait "$SAGEMAKER_FAKE_PID" 2>/dev/null
is_eq "on SIGTERM the fake removed its containers" "$(podman_cli ps -aq --filter label=stepop-test.owner="$PODMAN_OWNER" | wc -l)" 0
done_testing
