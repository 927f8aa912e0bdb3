#!/usr/bin/env bash
# The sagemaker flavor's CreateTrainingJob request, checked with botocore's SageMaker service
# model as the oracle: `stepop submit --dry-run` prints the request, and botocore's ParamValidator
# plus the model's max, pattern and enum constraints (which ParamValidator leaves out) accept its
# body, for a minimal job and for one with every setting. Also: what is refused before anything is
# sent, and no credential in the dry run. No SageMaker (and no fake) is needed.
. "$(dirname "$0")/../lib.sh"

py=$(botocore_python) || skip_all "python3-botocore is missing (make deps)"
"$py" -c 'import botocore.session; botocore.session.get_session().get_service_model("sagemaker")' >/dev/null 2>&1 ||
    skip_all "botocore has no SageMaker model"

export HOME=$T/home AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=AKIDSMBODYTEST000001 AWS_SECRET_ACCESS_KEY='sm/Body+Secret=Key0000000000000000000'
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=$T/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$T/no-aws-credentials
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SAGEMAKER AWS_PROFILE AWS_SESSION_TOKEN
export SM_PASSED='a value from the submitter'
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
ROLE=arn:aws:iam::123456789012:role/service-role/SageMakerExecution
IMAGE=123456789012.dkr.ecr.eu-west-1.amazonaws.com/steps/train:2024.1

cat >stepop.json <<JSON
{"store": "s3://ml-bucket/pipelines/p1", "default_operator": "min",
 "operators": {
  "min": {"flavor": "sagemaker", "settings": {"role_arn": "$ROLE", "instance_type": "ml.m5.xlarge"}},
  "full": {"flavor": "sagemaker", "settings": {"role_arn": "$ROLE", "instance_type": "ml.p4d.24xlarge",
    "region": "us-west-2", "volume_size_gb": 200, "keep_alive_period": "30m", "spot": true, "max_wait": "12h",
    "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "security_group_ids": ["sg-0123456789abcdef0"],
    "volume_kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "output_kms_key_id": "alias/ml-out", "max_retry_attempts": 3, "pass_env": ["SM_PASSED", "SM_ABSENT"],
    "entrypoint": ["/usr/local/bin/stepop", "run"], "tags": {"team": "ml platform", "cost-center": "4711"}}},
  "local": {"flavor": "sagemaker", "settings": {"role_arn": "$ROLE", "instance_type": "ml.g5.xlarge",
    "output_s3_uri": "s3://ml-bucket/out/"}}}}
JSON

# validate.py FILE: the dry run's CreateTrainingJob body against the model.
cat >"$T/validate.py" <<'PY'
import json, re, sys
import botocore.session
from botocore.validate import ParamValidator

model = botocore.session.get_session().get_service_model("sagemaker")
shape = model.operation_model("CreateTrainingJob").input_shape
d = json.load(open(sys.argv[1]))
req = d["requests"]["requests"][0]
body = req["body"]
problems = []
report = ParamValidator().validate(body, shape)
if report.has_errors():
    problems.append(report.generate_report())

def pattern_of(p):
    # Java-style classes as ASCII (what stepop writes is ASCII).
    return p.replace(r"\p{L}", "a-zA-Z").replace(r"\p{Z}", " ").replace(r"\p{N}", "0-9")

def walk(v, s, path):
    m = s.metadata
    if s.type_name == "string":
        if "max" in m and len(v) > m["max"]:
            problems.append("%s: %d characters, the model's max is %d" % (path, len(v), m["max"]))
        if "pattern" in m and not re.fullmatch(pattern_of(m["pattern"]), v):
            problems.append("%s: %r does not match %s" % (path, v, m["pattern"]))
        if "enum" in m and v not in m["enum"]:
            problems.append("%s: %r is not one of the model's values" % (path, v))
    elif s.type_name in ("integer", "long"):
        if "max" in m and v > m["max"]:
            problems.append("%s: %d over the model's max %d" % (path, v, m["max"]))
        if "min" in m and v < m["min"]:
            problems.append("%s: %d under the model's min %d" % (path, v, m["min"]))
    elif s.type_name == "structure":
        for k, x in v.items():
            if k in s.members:
                walk(x, s.members[k], path + "." + k)
    elif s.type_name == "list":
        if "max" in m and len(v) > m["max"]:
            problems.append("%s: %d items, the model's max is %d" % (path, len(v), m["max"]))
        for i, x in enumerate(v):
            walk(x, s.member, "%s[%d]" % (path, i))
    elif s.type_name == "map":
        if "max" in m and len(v) > m["max"]:
            problems.append("%s: %d entries, the model's max is %d" % (path, len(v), m["max"]))
        for k, x in v.items():
            walk(k, s.key, path + " key " + k)
            walk(x, s.value, path + "." + k)

walk(body, shape, "CreateTrainingJob")
if req["headers"].get("X-Amz-Target") != model.metadata["targetPrefix"] + ".CreateTrainingJob":
    problems.append("X-Amz-Target: %r" % req["headers"].get("X-Amz-Target"))
if req["headers"].get("Content-Type") != "application/x-amz-json-%s" % model.metadata["jsonVersion"]:
    problems.append("Content-Type: %r" % req["headers"].get("Content-Type"))
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY

# --- the minimal job ---
expect_rc 0 "--dry-run, the minimal settings" "$STEPOP" submit --dry-run --image "$IMAGE" -- python train.py
cp "$T/out" "$T/min.json"
check "botocore's model accepts the minimal CreateTrainingJob" "$py" "$T/validate.py" "$T/min.json"
is_eq "SageMaker's regional endpoint" "$(jq_py "$T/min.json" "d['requests']['requests'][0]['url']")" \
    "https://api.sagemaker.eu-west-1.amazonaws.com/"
is_eq "no timeout: SageMaker's default run time" \
    "$(jq_py "$T/min.json" "d['requests']['requests'][0]['body']['StoppingCondition']['MaxRuntimeInSeconds']")" 86400

# --- every setting, spot, GPUs, a timeout ---
expect_rc 0 "--dry-run, every setting" "$STEPOP" submit --dry-run --operator full --image "$IMAGE" --gpus 8 \
    --timeout 2h --grace 90s -- python train.py
cp "$T/out" "$T/full.json"
check "botocore's model accepts the full CreateTrainingJob" "$py" "$T/validate.py" "$T/full.json"
is_eq "the region from the settings" "$(jq_py "$T/full.json" "d['requests']['region']")" us-west-2
is_eq "spot: MaxRuntime, MaxWait, checkpoints under the run prefix" \
    "$(jq_py "$T/full.json" "(lambda b: (b['StoppingCondition']['MaxRuntimeInSeconds'], b['StoppingCondition']['MaxWaitTimeInSeconds'], b['CheckpointConfig']['S3Uri'].endswith('/checkpoints/'), b['EnableManagedSpotTraining']))(d['requests']['requests'][0]['body'])")" \
    "(7290, 43200, True, True)"
is_eq "the passed variable is hidden, an unset one left out" \
    "$(jq_py "$T/full.json" "(lambda e: (e['SM_PASSED'].startswith('<hidden'), 'SM_ABSENT' in e))(d['requests']['requests'][0]['body']['Environment'])")" \
    "(True, False)"
check "no credential in the dry run" sh -c "! grep -F -e '$AWS_SECRET_ACCESS_KEY' -e '$SM_PASSED' '$T/full.json' '$T/min.json'"

# --- a run URI longer than a tag value may be: its digest ---
long=s3://ml-bucket/$(printf 'p%.0s' $(seq 250))
expect_rc 0 "--dry-run with a run URI over 256 characters" "$STEPOP" submit --dry-run --store "$long" --image "$IMAGE" -- true
cp "$T/out" "$T/long.json"
check "botocore's model accepts it (the run URI's tag is a digest)" "$py" "$T/validate.py" "$T/long.json"

# --- refused before anything is sent ---
expect_rc 2 "--cpu is refused" "$STEPOP" submit --dry-run --image "$IMAGE" --cpu 4 -- true
err_has "the instance type decides" "with the hint"
expect_rc 2 "--gpus beyond the instance type's" "$STEPOP" submit --dry-run --operator local --image "$IMAGE" --gpus 2 -- true
err_has "2 GPUs asked, and ml.g5.xlarge has 1" "names the type's GPUs"
expect_rc 2 "a grace period over 120 s" "$STEPOP" submit --dry-run --image "$IMAGE" --grace 5m -- true
err_has "SageMaker sends SIGKILL 120 s after SIGTERM" "says why"
expect_rc 2 "a file:// store" "$STEPOP" submit --dry-run --store "file://$T/store" --operator local --image "$IMAGE" -- true
err_has "a training job cannot see" "says why"
done_testing
