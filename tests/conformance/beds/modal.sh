# shellcheck shell=bash disable=SC2034
# The modal flavor's conformance bed: tests/servers/modal_fake.js (Modal's gRPC API, sandboxes in
# Podman; start_podman is called by the runner), the S3 store (s3rver behind the signature-checking
# proxy) with keys through pass_env, as tests/integration/modal_submit.sh.
BED_FLAVOR=modal
BED_MISSING_RC=72
BED_OOM_RC=any
BED_UNSUPPORTED_WORD=gpu
bed_setup() {
    type start_modal_fake >/dev/null 2>&1 || { echo "# tests/lib.sh has no start_modal_fake"; return 1; }
    modal_fake_available || { echo "# npm modal or @grpc/grpc-js is not installed"; return 1; }
    botocore_python >/dev/null || { echo "# python3-botocore is not installed"; return 1; }
    [ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || { echo "# s3rver is not installed"; return 1; }
    podman_images && start_s3 &&
        start_modal_fake --stop-grace 5 --start-delay 0.2 --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" \
            --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms
}
bed_config() {
    cat >stepop.json <<JSON
{"store": "s3://test/md", "default_operator": "md",
 "operators": {"md": {"flavor": "modal", "settings": {"pass_env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]}}}}
JSON
    CF_DATA=s3://test/data/
    CF_RUNS=s3://test/md/runs/
    CF_STORE_DIR=$S3_ROOT
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
# Modal's memory manager evicts the sandbox (scripted on the fake, for the next sandbox only).
bed_can_oom() { echo ""; }
bed_before_oom() { modal_script '{"sandbox": "*", "result": "MEMORY_MANAGER_EVICTION", "after": 2, "times": 1}'; }
bed_missing_image_args() { echo "--image $BARE_IMAGE"; }
bed_unsupported_args() { echo "--gpus 1"; }
bed_jobs() { modal_sandboxes | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
bed_object_file() { local p=${1#s3://}; s3_object_file "${p%%/*}" "${p#*/}"; }
bed_secrets() { printf '%s\n' "$S3_SECRET" "$MODAL_TOKEN_SECRET"; }
bed_api_down() { kill -STOP "$MODAL_FAKE_PID"; }
bed_api_up() { kill -CONT "$MODAL_FAKE_PID"; }
# The handle names another run's finished sandbox (tagged with that run, not this one).
bed_forge_handle() {
    local uri=${CF_RUNS}$1/submission.json
    BED_VICTIM=$(modal_sandboxes | python3 -c "import json,sys; print([s['id'] for s in json.load(sys.stdin) if (s['result'] or {}).get('status') == 'SUCCESS'][0])") || return 1
    BED_VICTIM_STATE=$(bed_victim_state)
    "$STEPOP" artifact get "$uri" "$T/submission.orig" >/dev/null 2>&1 || return 1
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['handle']['sandbox_id']=sys.argv[3]; json.dump(d, open(sys.argv[2], 'w'))" \
        "$T/submission.orig" "$T/submission.forged" "$BED_VICTIM"
    "$STEPOP" artifact put "$T/submission.forged" "$uri" >/dev/null 2>&1
}
bed_victim_state() { modal_sandboxes | python3 -c "import json,sys; print([(s['state'], s['result']) for s in json.load(sys.stdin) if s['id'] == sys.argv[1]][0])" "$BED_VICTIM"; }
bed_forged_intact() { [ "$(bed_victim_state)" = "$BED_VICTIM_STATE" ]; }
bed_unforge_handle() { "$STEPOP" artifact put "$T/submission.orig" "${CF_RUNS}$1/submission.json" >/dev/null 2>&1; }
