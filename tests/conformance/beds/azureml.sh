# shellcheck shell=bash disable=SC2034
# The azureml flavor's conformance bed: tests/servers/azureml_fake.py (Azure ML's ARM API, the
# Entra fake for its tokens, the job's container in Podman; start_podman is called by the runner),
# the az:// store in Azurite, as tests/integration/azureml_submit.sh.
BED_FLAVOR=azureml
BED_MISSING_RC=72
bed_setup() {
    type start_azureml_fake >/dev/null 2>&1 || { echo "# tests/lib.sh has no start_azureml_fake"; return 1; }
    command -v node >/dev/null || { echo "# node is missing"; return 1; }
    azure_fake_python >/dev/null || { echo "# python3-jwt or python3-cryptography is missing"; return 1; }
    azurite_available || { echo "# Azurite or @azure/storage-blob is not installed"; return 1; }
    podman_images && start_azurite --skipApiVersionCheck && azblob mkcontainer test >"$T/mkcontainer.out" 2>&1 &&
        start_azureml_fake --stop-grace 5 --start-delay 0.2 --computes cpu-cluster --computes small-cluster \
            --compute-memory small-cluster=100663296 --container-env "AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS" \
            --container-env STEPOP_LOG_INTERVAL=200ms
}
bed_settings() {
    printf '{"subscription_id": "%s", "resource_group": "%s", "workspace": "%s", "compute": "%s", "api_version": "2022-10-01", "arm_endpoint": "%s"}' \
        "$AZUREML_SUB" "$AZUREML_RG" "$AZUREML_WS" "$1" "$AZUREML_FAKE_URL"
}
bed_config() {
    cat >stepop.json <<JSON
{"store": "az://test/aml", "default_operator": "aml",
 "operators": {"aml": {"flavor": "azureml", "settings": $(bed_settings cpu-cluster)},
  "small": {"flavor": "azureml", "settings": $(bed_settings small-cluster)}}}
JSON
    CF_DATA=az://test/data/
    CF_RUNS=az://test/aml/runs/
    CF_STORE_DIR=$T/azurite
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
# small-cluster has 96 MiB on this fake (--compute-memory).
bed_can_oom() { echo "--operator small"; }
bed_missing_image_args() { echo "--image localhost/stepop-test/absent:1"; }
bed_unsupported_args() { echo "--cpu 1"; }
bed_jobs() { azureml_jobs | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
# Issued tokens are JWTs: base64url of '{"alg"' or '{"typ"' starts every one.
bed_secrets() { printf '%s\n' "$AZURE_FAKE_SECRET" "$AZURITE_KEY" eyJhbGci eyJ0eXAi; }
bed_api_down() { kill -STOP "$AZUREML_FAKE_PID"; }
bed_api_up() { kill -CONT "$AZUREML_FAKE_PID"; }
# The handle names another run's finished job (tagged with that run, not this one).
bed_forge_handle() {
    local uri=${CF_RUNS}$1/submission.json
    BED_VICTIM=$(azureml_jobs | python3 -c "import json,sys; print([j['name'] for j in json.load(sys.stdin) if j['status'] == 'Completed'][0])") || return 1
    BED_VICTIM_STATE=$(bed_victim_state)
    "$STEPOP" artifact get "$uri" "$T/submission.orig" >/dev/null 2>&1 || return 1
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['handle']['job']=sys.argv[3]; json.dump(d, open(sys.argv[2], 'w'))" \
        "$T/submission.orig" "$T/submission.forged" "$BED_VICTIM"
    "$STEPOP" artifact put "$T/submission.forged" "$uri" >/dev/null 2>&1
}
bed_victim_state() { azureml_jobs | python3 -c "import json,sys; print([j['status'] for j in json.load(sys.stdin) if j['name'] == sys.argv[1]][0])" "$BED_VICTIM"; }
bed_forged_intact() { [ "$(bed_victim_state)" = "$BED_VICTIM_STATE" ]; }
bed_unforge_handle() { "$STEPOP" artifact put "$T/submission.orig" "${CF_RUNS}$1/submission.json" >/dev/null 2>&1; }
