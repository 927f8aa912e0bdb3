#!/usr/bin/env bash
# The azureml flavor's requests, checked with npm @azure/arm-machinelearning's serializer mappers
# as the oracle (tests/servers/azureml_fake.py's walker: unknown and read-only properties,
# discriminators, required properties, types, constraints): `stepop submit --dry-run` prints the
# environment version and command job requests, for a cluster and for serverless compute, and
# the walker accepts their bodies. Also: the walker refuses broken bodies (it can fail), what is
# refused before anything is sent, and no credential in the dry run. No fake server is needed.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is missing"
MAPPERS=$(azureml_mappers 2>"$T/mappers.err") || skip_all "the mappers could not be exported: $(head -c 200 "$T/mappers.err")"

export HOME=$T/home AZURE_TENANT_ID=t AZURE_CLIENT_ID=c AZURE_CLIENT_SECRET='aml-body~Secret.0000000000'
unset AZURE_AUTHORITY_HOST AZURE_FEDERATED_TOKEN_FILE AZURE_CLIENT_CERTIFICATE_PATH
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
SUB=00000000-1111-2222-3333-444444444444
IMAGE=myregistry.azurecr.io/steps/train:2024.1
cat >stepop.json <<JSON
{"store": "s3://ml-bucket/pipelines/p1", "default_operator": "cluster",
 "operators": {
  "cluster": {"flavor": "azureml", "settings": {"subscription_id": "$SUB", "resource_group": "rg-ml",
    "workspace": "ws-main", "compute": "gpu-cluster", "api_version": "2022-10-01"}},
  "serverless": {"flavor": "azureml", "settings": {"subscription_id": "$SUB", "resource_group": "rg-ml",
    "workspace": "ws-main", "instance_type": "Standard_NC6s_v3", "api_version": "2022-10-01",
    "experiment_name": "nightly", "command": "/opt/stepop/bin/stepop run"}},
  "spot": {"flavor": "azureml", "settings": {"subscription_id": "$SUB", "resource_group": "rg-ml",
    "workspace": "ws-main", "instance_type": "Standard_NC6s_v3", "job_tier": "Spot", "api_version": "2022-10-01"}},
  "default": {"flavor": "azureml", "settings": {"subscription_id": "$SUB", "resource_group": "rg-ml",
    "workspace": "ws-main", "compute": "c1"}},
  "default-spot": {"flavor": "azureml", "settings": {"subscription_id": "$SUB", "resource_group": "rg-ml",
    "workspace": "ws-main", "instance_type": "Standard_NC6s_v3", "job_tier": "Spot"}}}}
JSON

# check.py MAPPERS DRY-RUN [CLASS-OF-REQUEST-2 ...]: the walker over the dry run's bodies.
cat >"$T/check.py" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import azureml_fake as f
f.M = json.load(open(sys.argv[2]))
d = json.load(open(sys.argv[3]))
reqs = d['requests']['requests']
problems = []
for r, cls in ((reqs[1], 'EnvironmentVersion'), (reqs[2], 'JobBase')):
    problems += ['%s %s: %s' % (r['method'], cls, e) for e in f.validate(r['body'], cls)]
print('\n'.join(problems))
sys.exit(1 if problems else 0)
PY
walk() { python3 -B "$T/check.py" "$ROOT/tests/servers" "$MAPPERS" "$1"; }
is_eq "the mappers are the 2022-10-01 model of @azure/arm-machinelearning" "$(jq_py "$MAPPERS" "d['api_version']")" 2022-10-01

expect_rc 0 "--dry-run on a compute cluster" "$STEPOP" submit --dry-run --image "$IMAGE" --timeout 2h --grace 60s -- python train.py
cp "$T/out" "$T/cluster.json"
check "the mappers accept the environment version and the command job (cluster)" walk "$T/cluster.json"
is_eq "three requests: GET and PUT the environment version, PUT the job" \
    "$(jq_py "$T/cluster.json" "' '.join(r['method'] for r in d['requests']['requests'])")" "GET PUT PUT"
is_eq "the job's URL" "$(jq_py "$T/cluster.json" "d['requests']['requests'][2]['url'].split('/jobs/')[0]")" \
    "https://management.azure.com/subscriptions/$SUB/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-main"
is_eq "limits.timeout: timeout plus grace, ISO 8601" \
    "$(jq_py "$T/cluster.json" "d['requests']['requests'][2]['body']['properties']['limits']['timeout']")" PT7260S

expect_rc 0 "--dry-run on serverless compute" "$STEPOP" submit --dry-run --operator serverless --image "$IMAGE" -- true
cp "$T/out" "$T/serverless.json"
check "the mappers accept the serverless job" walk "$T/serverless.json"
is_eq "resources.instanceType" \
    "$(jq_py "$T/serverless.json" "d['requests']['requests'][2]['body']['properties']['resources']['instanceType']")" Standard_NC6s_v3

expect_rc 0 "--dry-run with the default api-version" "$STEPOP" submit --dry-run --operator default --image "$IMAGE" -- true
is_eq "the default api-version is the one docs/flavors.md records" \
    "$(jq_py "$T/out" "d['requests']['api_version']")" "$(sed -n 's/^#define AML_DEFAULT_API_VERSION "\(.*\)"/\1/p' "$ROOT/flavors/azureml/azureml.h")"
# The mappers are the 2022-10-01 model: what stepop sends for the default api-version must be
# within it, except queueSettings (2023-04-01 and later; docs/flavors.md#azureml says how that
# was checked), which is the only property the walker may refuse in a spot job's body.
cp "$T/out" "$T/default.json"
check "the mappers accept the default api-version's bodies (cluster, timeout)" walk "$T/default.json"
expect_rc 0 "--dry-run with the default api-version, serverless, job_tier Spot" "$STEPOP" submit --dry-run \
    --operator default-spot --image "$IMAGE" --timeout 1h -- true
cp "$T/out" "$T/default-spot.json"
is_eq "queueSettings.jobTier is sent" \
    "$(jq_py "$T/default-spot.json" "d['requests']['requests'][2]['body']['properties']['queueSettings']['jobTier']")" Spot
walk "$T/default-spot.json" >"$T/default-spot.walk" 2>&1
is_eq "the walker's only objection to the default api-version's spot job is queueSettings (newer than its model)" \
    "$(cat "$T/default-spot.walk")" "PUT JobBase: properties.queueSettings: not a property of CommandJob"

# The walker can fail: a read-only property, an unknown one, a wrong discriminator, a bad timeout.
python3 - "$T/cluster.json" "$T" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for name, change in (('readonly', lambda p: p.__setitem__('status', 'Running')),
                     ('unknown', lambda p: p.__setitem__('queueSettings', {'jobTier': 'Spot'})),
                     ('discriminator', lambda p: p.__setitem__('jobType', 'Commandline')),
                     ('timeout', lambda p: p['limits'].__setitem__('timeout', '3600')),
                     ('required', lambda p: p.pop('environmentId'))):
    x = json.loads(json.dumps(d))
    change(x['requests']['requests'][2]['body']['properties'])
    json.dump(x, open('%s/broken-%s.json' % (sys.argv[2], name), 'w'))
PY
for b in readonly unknown discriminator timeout required; do
    if walk "$T/broken-$b.json" >"$T/walk.out" 2>&1; then not_ok "the walker refuses a body with a $b fault"
    else ok "the walker refuses a body with a $b fault ($(head -c 120 "$T/walk.out"))"; fi
done

# --- refused before anything is sent ---
expect_rc 2 "job_tier on 2022-10-01 (no queueSettings there)" "$STEPOP" submit --dry-run --operator spot --image "$IMAGE" -- true
err_has "queueSettings needs api_version 2023-04-01" "says why"
expect_rc 2 "--gpus is refused" "$STEPOP" submit --dry-run --image "$IMAGE" --gpus 1 -- true
err_has "the compute cluster decides" "with the hint"
expect_rc 2 "a file:// store" "$STEPOP" submit --dry-run --store "file://$T/store" --image "$IMAGE" -- true
err_has "cannot see" "says why"
check "no credential in the dry runs" sh -c "! grep -rF -e '$AZURE_CLIENT_SECRET' '$T/cluster.json' '$T/serverless.json'"
done_testing
