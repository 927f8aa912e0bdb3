#!/usr/bin/env bash
# The vertex flavor's requests against the Vertex fake's decoder (tests/servers/vertex_fake.py
# --check: the route from JobService's google.api.http annotation, the body parsed strictly by
# python3-protobuf's json_format, google.api.field_behavior), beside vertex_body.sh's check of the
# body alone: the URL of a minimal and of a full dry run is a JobService route; each row of
# stepop's machine table (flavors/vertex/settings.c, read here) gives a request the protos accept
# with the row's accelerator and count; every NVIDIA accelerator name stepop takes is a value of
# the proto's AcceleratorType enum. No Vertex AI (and no fake server) is needed.
. "$(dirname "$0")/../lib.sh"
PY=$(protobuf_python) || skip_all "python3-protobuf is not installed (make deps)"
command -v protoc >/dev/null || skip_all "protoc is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/@google-cloud/aiplatform/package.json" ] || skip_all "npm @google-cloud/aiplatform is not installed (make deps)"
"$STEPOP" flavor list 2>/dev/null | grep -qw vertex || skip_all "this stepop has no vertex flavor"

# A metadata server nobody answers at: the dry run must not need credentials.
export HOME=$T/home GCE_METADATA_HOST=127.0.0.1:9 CLOUDSDK_CONFIG=$T/gcloud VX_PASSED='a value from the submitter'
unset GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_PROJECT GCLOUD_PROJECT
mkdir -p "$HOME" "$T/cwd" "$CLOUDSDK_CONFIG"
cd "$T/cwd" || exit 1
IMAGE=europe-docker.pkg.dev/ml-proj/steps/train:2024.1
# oracle FILE: the dry run's requests through the fake's decoder ("ok RPC URL" per request).
oracle() { "$PY" "$ROOT/tests/servers/vertex_fake.py" --check "$1" --port-file "$T/x" --podman-dir "$T" --jobs-dir "$T/j" --proto-cache "$ROOT/build/protos"; }

cat >stepop.json <<JSON
{"store": "s3://ml-bucket/pipelines/p1", "default_operator": "min",
 "operators": {
  "min": {"flavor": "vertex", "settings": {"project": "ml-proj"}},
  "full": {"flavor": "vertex", "settings": {"project": "ml-proj", "location": "europe-west4",
    "machine_type": "a2-highgpu-2g", "accelerator_type": "NVIDIA_TESLA_A100", "accelerator_count": 2,
    "boot_disk_type": "pd-balanced", "boot_disk_size_gb": 500, "strategy": "FLEX_START", "max_wait": "2h",
    "restart_job_on_worker_restart": true, "service_account": "steps@ml-proj.iam.gserviceaccount.com",
    "network": "projects/123456789012/global/networks/ml-vpc", "reserved_ip_ranges": ["vertex-range"],
    "persistent_resource_id": "pool-a", "enable_web_access": true, "base_output_dir": "gs://ml-out/runs/",
    "kms_key_name": "projects/ml-proj/locations/europe-west4/keyRings/ml/cryptoKeys/jobs",
    "entrypoint": ["/usr/local/bin/stepop", "run"], "pass_env": ["VX_PASSED", "VX_ABSENT"],
    "labels": {"team": "ml-platform", "cost-center": "4711"}}},
  "spot": {"flavor": "vertex", "settings": {"project": "ml-proj", "machine_type": "n1-standard-8",
    "accelerator_type": "NVIDIA_TESLA_T4", "strategy": "SPOT"}}}}
JSON

# --- the minimal job ---
expect_rc 0 "--dry-run, the minimal settings" "$STEPOP" submit --dry-run --image "$IMAGE" -- python train.py
cp "$T/out" "$T/min.json"
check "Google's protos accept the minimal CreateCustomJob (route, strict JSON, field_behavior)" oracle "$T/min.json"
is_eq "the regional endpoint" "$(jq_py "$T/min.json" "d['requests']['requests'][0]['url']")" \
    "https://us-central1-aiplatform.googleapis.com/v1/projects/ml-proj/locations/us-central1/customJobs"

# --- every setting, GPUs, a timeout ---
expect_rc 0 "--dry-run, every setting" "$STEPOP" submit --dry-run --operator full --image "$IMAGE" --gpus 2 \
    --timeout 2h --grace 90s -- python train.py
cp "$T/out" "$T/full.json"
oracle "$T/full.json" >"$T/oracle.out" 2>&1
check "Google's protos accept the full CreateCustomJob" grep -q '^ok CreateCustomJob https://europe-west4-aiplatform' "$T/oracle.out"
expect_rc 0 "--dry-run, SPOT with a T4" "$STEPOP" submit --dry-run --operator spot --image "$IMAGE" --gpus 1 -- true
cp "$T/out" "$T/spot.json"
check "Google's protos accept it" oracle "$T/spot.json"

# --- stepop's machine table against the proto's AcceleratorType enum ---
"$PY" - "$ROOT/build/protos/vertex.pb" "$ROOT/flavors/vertex/settings.c" >"$T/enum.out" <<'PY'
import re, sys
from google.protobuf import descriptor_pb2
fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read())
enum = next(e for f in fds.file if f.name.endswith('accelerator_type.proto') for e in f.enum_type if e.name == 'AcceleratorType')
names = {v.name for v in enum.value}
ours = set(re.findall(r'"(NVIDIA_[A-Z0-9_]+)"', open(sys.argv[2]).read()))
print('missing:', ' '.join(sorted(ours - names)))
print('not in stepop:', ' '.join(sorted(n for n in names - ours if n.startswith('NVIDIA_'))))
PY
is_eq "every NVIDIA accelerator stepop names is in the proto's AcceleratorType enum" "$(sed -n 's/^missing: *//p' "$T/enum.out")" ""
echo "# the proto's NVIDIA accelerators stepop does not take: $(sed -n 's/^not in stepop: *//p' "$T/enum.out")"
# Each row of the table (flavors/vertex/settings.c): the dry run with all its GPUs is accepted.
rows=$(grep -oE '\{ "[a-z0-9-]+", "NVIDIA_[A-Z0-9_]+", [0-9]+ \}' "$ROOT/flavors/vertex/settings.c" | tr -d '{},"' )
n=0
bad=""
while read -r mt acc count; do
    [ -n "$mt" ] || continue
    n=$((n + 1))
    printf '{"image": "%s", "command": ["true"], "operator": "min", "settings": {"machine_type": "%s", "accelerator_type": "%s"}, "resources": {"gpus": %s}}\n' \
        "$IMAGE" "$mt" "$acc" "$count" >"$T/row.json"
    if "$STEPOP" submit --dry-run "$T/row.json" >"$T/row.out" 2>"$T/row.err" && oracle "$T/row.out" >/dev/null 2>&1 &&
        [ "$(jq_py "$T/row.out" "(lambda m: (m['acceleratorType'], m['acceleratorCount']))(d['requests']['requests'][0]['body']['jobSpec']['workerPoolSpecs'][0]['machineSpec'])")" = "('$acc', $count)" ]; then
        :
    else
        bad="$bad $mt"
        diag <"$T/row.err"
    fi
done <<<"$rows"
check "the machine table has its rows ($n)" test "$n" -ge 20
is_eq "each row's dry run ($n) is accepted by the protos with its accelerator and count" "$bad" ""

# --- the oracle itself refuses what Google's protos refuse ---
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
b = d['requests']['requests'][0]['body']
b['jobSpec']['scheduling']['strategy'] = 'CHEAPEST'
json.dump(d, open(sys.argv[2], 'w'))" "$T/min.json" "$T/bad.json"
expect_rc 1 "the oracle refuses a strategy outside the enum" oracle "$T/bad.json"
out_has "Invalid enum value CHEAPEST" "... in json_format's words"

done_testing
