# shellcheck shell=bash disable=SC2034
# The sagemaker flavor's conformance bed: tests/servers/sagemaker_fake.py (training containers in
# Podman; start_podman is called by the runner), the S3 store (s3rver behind the signature-checking
# proxy), the role's container credentials from awsfake, as tests/integration/sagemaker_submit.sh.
BED_FLAVOR=sagemaker
BED_MISSING_RC=72
bed_setup() {
    type start_sagemaker_fake >/dev/null 2>&1 || { echo "# tests/lib.sh has no start_sagemaker_fake"; return 1; }
    botocore_python >/dev/null || { echo "# python3-botocore is not installed"; return 1; }
    [ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || { echo "# s3rver is not installed"; return 1; }
    podman_images && start_s3 && start_awsfake --ecs-token ecs-secret-token &&
        start_sagemaker_fake --stop-grace 3 --start-delay 0.2 --container-credentials-url "$AWSFAKE_URL/ecs/creds" \
            --container-credentials-token ecs-secret-token --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" \
            --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms \
            --instance-memory ml.c5.xlarge=100663296
}
bed_config() {
    local role=arn:aws:iam::123456789012:role/stepop-test
    cat >stepop.json <<JSON
{"store": "s3://test/sm", "default_operator": "sm",
 "operators": {"sm": {"flavor": "sagemaker", "settings": {"role_arn": "$role", "instance_type": "ml.m5.large",
   "region": "us-east-1", "entrypoint": ["/usr/local/bin/stepop", "run"]}},
  "small": {"flavor": "sagemaker", "settings": {"role_arn": "$role", "instance_type": "ml.c5.xlarge",
   "region": "us-east-1", "entrypoint": ["/usr/local/bin/stepop", "run"]}}}}
JSON
    CF_DATA=s3://test/data/
    CF_RUNS=s3://test/sm/runs/
    CF_STORE_DIR=$S3_ROOT
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
# ml.c5.xlarge has 96 MiB on this fake (--instance-memory).
bed_can_oom() { echo "--operator small"; }
# An image without stepop: the job fails without a status, SageMaker's reason and log lines quoted.
bed_missing_image_args() { echo "--image $BARE_IMAGE"; }
bed_unsupported_args() { echo "--cpu 1"; }
bed_jobs() { sagemaker_jobs | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
bed_object_file() { local p=${1#s3://}; s3_object_file "${p%%/*}" "${p#*/}"; }
bed_secrets() {
    python3 -c "
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    for k in ('secret', 'token'):
        if d.get(k): print(d[k])" "$S3_KEYS"
    echo ecs-secret-token
}
bed_api_down() { kill -STOP "$SAGEMAKER_FAKE_PID"; }
bed_api_up() { kill -CONT "$SAGEMAKER_FAKE_PID"; }
# The handle names another run's finished job (tagged with that run, not this one).
bed_forge_handle() {
    local uri=${CF_RUNS}$1/submission.json
    BED_VICTIM=$(sagemaker_jobs | python3 -c "import json,sys; print([j['name'] for j in json.load(sys.stdin) if j['status'] == 'Completed'][0])") || return 1
    BED_VICTIM_STATUS=Completed
    "$STEPOP" artifact get "$uri" "$T/submission.orig" >/dev/null 2>&1 || return 1
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['handle']['job']=sys.argv[3]; json.dump(d, open(sys.argv[2], 'w'))" \
        "$T/submission.orig" "$T/submission.forged" "$BED_VICTIM"
    "$STEPOP" artifact put "$T/submission.forged" "$uri" >/dev/null 2>&1
}
bed_forged_intact() {
    [ "$(sagemaker_jobs | python3 -c "import json,sys; print([j['status'] for j in json.load(sys.stdin) if j['name'] == sys.argv[1]][0])" "$BED_VICTIM")" = "$BED_VICTIM_STATUS" ]
}
bed_unforge_handle() { "$STEPOP" artifact put "$T/submission.orig" "${CF_RUNS}$1/submission.json" >/dev/null 2>&1; }
