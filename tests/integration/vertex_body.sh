#!/usr/bin/env bash
# The vertex flavor's CustomJob, checked with Google's own definition as the oracle: the
# aiplatform v1 .proto files that npm @google-cloud/aiplatform ships (and google-gax's common
# ones), compiled with Debian's protoc; `stepop submit --dry-run` prints the request, and Debian's
# python3-protobuf parses its body strictly (json_format.Parse: unknown fields, bad enums, bad
# durations and int64s refused), then every field marked google.api.field_behavior REQUIRED must be
# there and none marked OUTPUT_ONLY, for a minimal job and for one with every setting. Also: what is
# refused before anything is sent, and no credential in the dry run. No Vertex AI (and no fake) is
# needed: nothing is reachable, and nothing is sent.
. "$(dirname "$0")/../lib.sh"

PROTOS=$ROOT/tests/servers/node_modules/@google-cloud/aiplatform/build/protos
COMMON=$ROOT/tests/servers/node_modules/google-gax/build/protos
command -v protoc >/dev/null || skip_all "protoc is missing (Debian protobuf-compiler)"
[ -f "$PROTOS/google/cloud/aiplatform/v1/custom_job.proto" ] || skip_all "npm @google-cloud/aiplatform is missing"
[ -f "$COMMON/google/api/field_behavior.proto" ] || skip_all "npm google-gax is missing"
/usr/bin/python3 -c 'from google.protobuf import json_format' 2>/dev/null || skip_all "python3-protobuf is missing"

protoc -I"$PROTOS" -I"$COMMON" -I/usr/include --include_imports --descriptor_set_out="$T/custom_job.pb" \
    "$PROTOS/google/cloud/aiplatform/v1/custom_job.proto" 2>"$T/protoc.err" || {
    diag <"$T/protoc.err"
    skip_all "protoc cannot compile custom_job.proto here"
}

export HOME=$T/home CLOUDSDK_CONFIG=$T/gcloud GOOGLE_CLOUD_PROJECT=proj-from-env
# Nothing answers there: a dry run must not need the metadata server (nor reach anything).
export GCE_METADATA_HOST=127.0.0.1:9 GCE_METADATA_IP=127.0.0.1:9
unset GOOGLE_APPLICATION_CREDENTIALS GCLOUD_PROJECT
export VX_PASSED='a value from the submitter'
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
IMAGE=europe-docker.pkg.dev/proj-1/steps/train:2024.1

cat >stepop.json <<'JSON'
{"store": "s3://ml-bucket/pipelines/p1", "default_operator": "min",
 "operators": {
  "min": {"flavor": "vertex", "settings": {}},
  "full": {"flavor": "vertex", "settings": {"project": "proj-1", "location": "europe-west4",
    "machine_type": "a3-highgpu-8g", "accelerator_type": "NVIDIA_H100_80GB", "boot_disk_type": "pd-balanced",
    "boot_disk_size_gb": 500, "strategy": "FLEX_START", "max_wait": "6h", "restart_job_on_worker_restart": true,
    "service_account": "trainer@proj-1.iam.gserviceaccount.com", "network": "projects/123456/global/networks/ml",
    "reserved_ip_ranges": ["ml-range"], "persistent_resource_id": "pool-a", "enable_web_access": true,
    "base_output_dir": "gs://ml-out/vertex/", "kms_key_name": "projects/proj-1/locations/europe-west4/keyRings/ml/cryptoKeys/jobs",
    "entrypoint": ["/usr/local/bin/stepop", "run"], "pass_env": ["VX_PASSED", "VX_ABSENT"],
    "labels": {"team": "ml-platform", "cost_center": "4711"}}},
  "t4": {"flavor": "vertex", "settings": {"project": "proj-1", "accelerator_type": "NVIDIA_TESLA_T4", "strategy": "SPOT"}}}}
JSON

# validate.py FILE: the dry run's CustomJob against custom_job.proto.
cat >"$T/validate.py" <<'PY'
import json, sys
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(sys.argv[1], "rb").read())
pool = descriptor_pool.DescriptorPool()
behaviour = {}  # "pkg.Message.field" -> set of google.api.FieldBehavior numbers
for f in fds.file:
    pool.Add(f)
    def fields(prefix, msgs):
        for m in msgs:
            name = prefix + m.name
            for fd in m.field:
                raw = fd.options.SerializeToString()
                behaviour[name + "." + fd.name] = field_behavior(raw)
            fields(name + ".", m.nested_type)
    def field_behavior(raw):
        # google.api.field_behavior is extension 1052 of FieldOptions: repeated enum, packed or not.
        out, i = set(), 0
        def varint(i):
            v, s = 0, 0
            while True:
                b = raw[i]; i += 1
                v |= (b & 0x7F) << s; s += 7
                if b < 0x80:
                    return v, i
        while i < len(raw):
            key, i = varint(i)
            num, wt = key >> 3, key & 7
            if wt == 0:
                v, i = varint(i)
                if num == 1052:
                    out.add(v)
            elif wt == 2:
                n, i = varint(i)
                if num == 1052:
                    j = i
                    while j < i + n:
                        v, j = varint(j)
                        out.add(v)
                i += n
            elif wt == 1:
                i += 8
            elif wt == 5:
                i += 4
            else:
                raise SystemExit("unexpected wire type in FieldOptions")
        return out
    fields(f.package + "." if f.package else "", f.message_type)

REQUIRED, OUTPUT_ONLY = 2, 3
desc = pool.FindMessageTypeByName("google.cloud.aiplatform.v1.CustomJob")
cls = message_factory.MessageFactory(pool).GetPrototype(desc)
d = json.load(open(sys.argv[2]))
req = d["requests"]["requests"][0]
problems = []
msg = cls()
try:
    json_format.Parse(json.dumps(req["body"]), msg)
except json_format.ParseError as e:
    problems.append("json_format.Parse: %s" % e)

def walk(m, path):
    for fd in m.DESCRIPTOR.fields:
        b = behaviour.get(fd.full_name, set())
        if fd.label == fd.LABEL_REPEATED:
            present = len(getattr(m, fd.name)) > 0
        elif fd.message_type is not None:
            present = m.HasField(fd.name)
        else:
            present = getattr(m, fd.name) != fd.default_value
        if REQUIRED in b and not present:
            problems.append("%s.%s: REQUIRED and missing" % (path, fd.json_name))
        if OUTPUT_ONLY in b and present:
            problems.append("%s.%s: OUTPUT_ONLY and sent" % (path, fd.json_name))
        if fd.message_type is not None and present and not fd.message_type.GetOptions().map_entry:
            items = getattr(m, fd.name) if fd.label == fd.LABEL_REPEATED else [getattr(m, fd.name)]
            for k, x in enumerate(items):
                walk(x, "%s.%s[%d]" % (path, fd.json_name, k) if fd.label == fd.LABEL_REPEATED else path + "." + fd.json_name)

if not problems:
    walk(msg, "CustomJob")
if req["method"] != "POST":
    problems.append("method: %r" % req["method"])
if req["headers"].get("Content-Type") != "application/json":
    problems.append("Content-Type: %r" % req["headers"].get("Content-Type"))
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY

# --- the minimal job ---
expect_rc 0 "--dry-run, no settings" "$STEPOP" submit --dry-run --image "$IMAGE" -- python train.py
cp "$T/out" "$T/min.json"
check "custom_job.proto accepts the minimal CustomJob (strict parse, REQUIRED, OUTPUT_ONLY)" \
    /usr/bin/python3 "$T/validate.py" "$T/custom_job.pb" "$T/min.json"
is_eq "the regional endpoint; the project from GOOGLE_CLOUD_PROJECT; us-central1" \
    "$(jq_py "$T/min.json" "d['requests']['requests'][0]['url']")" \
    "https://us-central1-aiplatform.googleapis.com/v1/projects/proj-from-env/locations/us-central1/customJobs"
is_eq "no timeout: none sent (Vertex AI's default)" \
    "$(jq_py "$T/min.json" "'timeout' in d['requests']['requests'][0]['body']['jobSpec']['scheduling']")" False
is_eq "the run's labels" \
    "$(jq_py "$T/min.json" "(lambda l: (l['stepop-run-id'] == d['run_id'].lower(), len(l['stepop-run-uri'])))(d['requests']['requests'][0]['body']['labels'])")" \
    "(True, 32)"

# --- every setting, flex-start, GPUs, a timeout ---
expect_rc 0 "--dry-run, every setting" "$STEPOP" submit --dry-run --operator full --image "$IMAGE" --gpus 8 \
    --timeout 2h --grace 90s -- python train.py
cp "$T/out" "$T/full.json"
check "custom_job.proto accepts the full CustomJob" /usr/bin/python3 "$T/validate.py" "$T/custom_job.pb" "$T/full.json"
is_eq "the location's endpoint and the project of the settings" \
    "$(jq_py "$T/full.json" "d['requests']['requests'][0]['url']")" \
    "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj-1/locations/europe-west4/customJobs"
is_eq "scheduling: timeout + grace, flex-start, its wait, restarts" \
    "$(jq_py "$T/full.json" "d['requests']['requests'][0]['body']['jobSpec']['scheduling']")" \
    "{'timeout': '7290s', 'strategy': 'FLEX_START', 'maxWaitDuration': '21600s', 'restartJobOnWorkerRestart': True}"
is_eq "the machine: 8 H100 on a3-highgpu-8g" \
    "$(jq_py "$T/full.json" "d['requests']['requests'][0]['body']['jobSpec']['workerPoolSpecs'][0]['machineSpec']")" \
    "{'machineType': 'a3-highgpu-8g', 'acceleratorType': 'NVIDIA_H100_80GB', 'acceleratorCount': 8}"
is_eq "the passed variable is hidden, an unset one left out" \
    "$(jq_py "$T/full.json" "(lambda e: (e['VX_PASSED'].startswith('<hidden'), 'VX_ABSENT' in e, e['STEPOP_ATTEMPT_FROM_STATUS']))({v['name']: v['value'] for v in d['requests']['requests'][0]['body']['jobSpec']['workerPoolSpecs'][0]['containerSpec']['env']})")" \
    "(True, False, '1')"
check "no credential or passed value in the dry run; the token only named" \
    sh -c "! grep -F -e '$VX_PASSED' -e 'ya29.' '$T/full.json' '$T/min.json' && grep -qF 'added at send time' '$T/full.json'"

expect_rc 0 "--dry-run, a T4 on n1 with spot" "$STEPOP" submit --dry-run --operator t4 --image "$IMAGE" --gpus 2 -- true
cp "$T/out" "$T/t4.json"
check "custom_job.proto accepts it" /usr/bin/python3 "$T/validate.py" "$T/custom_job.pb" "$T/t4.json"
is_eq "two T4s, SPOT" \
    "$(jq_py "$T/t4.json" "(lambda s: (s['workerPoolSpecs'][0]['machineSpec']['acceleratorCount'], s['scheduling']['strategy']))(d['requests']['requests'][0]['body']['jobSpec'])")" \
    "(2, 'SPOT')"

# --- a run id longer than a label value may be ---
expect_rc 0 "--dry-run with a long store prefix" "$STEPOP" submit --dry-run --store "s3://ml-bucket/$(printf 'p%.0s' $(seq 200))" \
    --image "$IMAGE" -- true
cp "$T/out" "$T/long.json"
check "custom_job.proto accepts it" /usr/bin/python3 "$T/validate.py" "$T/custom_job.pb" "$T/long.json"

# --- refused before anything is sent ---
expect_rc 2 "--cpu is refused" "$STEPOP" submit --dry-run --image "$IMAGE" --cpu 4 -- true
err_has "the machine type decides" "with the hint"
expect_rc 2 "--gpus without an accelerator type" "$STEPOP" submit --dry-run --image "$IMAGE" --gpus 1 -- true
err_has "settings.accelerator_type is not set" "names the missing setting"
expect_rc 2 "three T4s on n1" "$STEPOP" submit --dry-run --operator t4 --image "$IMAGE" --gpus 3 -- true
err_has "n1-* machines take 1, 2 or 4 of them" "says which counts"
expect_rc 2 "a file:// store" "$STEPOP" submit --dry-run --store "file://$T/store" --image "$IMAGE" -- true
err_has "a custom job cannot see" "says why"
cat >step.json <<'JSON'
{"flavor": "vertex", "settings": {"accelerator_type": "TPU_V3"}}
JSON
expect_rc 2 "a TPU" "$STEPOP" submit step.json --dry-run --image "$IMAGE" -- true
err_has "TPUs are not GPUs" "says why"
cat >step.json <<'JSON'
{"flavor": "vertex", "settings": {"region": "europe-west4"}}
JSON
expect_rc 2 "an unknown setting" "$STEPOP" submit step.json --dry-run --image "$IMAGE" -- true
err_has "settings.region: not a setting of the vertex flavor" "names it"
done_testing
