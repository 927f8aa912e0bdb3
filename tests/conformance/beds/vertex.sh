# shellcheck shell=bash disable=SC2034
# The vertex flavor's conformance bed: tests/servers/vertex_fake.py (Vertex AI's gRPC/REST API,
# the job's container in Podman; start_podman is called by the runner), the Google auth fake for
# the tokens, the S3 store (s3rver behind the signature-checking proxy), as
# tests/integration/vertex_submit.sh.
BED_FLAVOR=vertex
BED_MISSING_RC=71
bed_setup() {
    type start_vertex_fake >/dev/null 2>&1 || { echo "# tests/lib.sh has no start_vertex_fake"; return 1; }
    type start_google_auth_fake >/dev/null 2>&1 || { echo "# tests/lib.sh has no start_google_auth_fake"; return 1; }
    protobuf_python >/dev/null || { echo "# python3-protobuf is not installed"; return 1; }
    command -v protoc >/dev/null || { echo "# protoc is not installed"; return 1; }
    [ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || { echo "# s3rver is not installed"; return 1; }
    podman_images && start_s3 && start_google_auth_fake --tokens "$T/gtokens" --project vx-project &&
        start_vertex_fake --tokens "$T/gtokens" --stop-grace 10 --start-delay 0.2 --machine-memory e2-small=100663296 \
            --container-env "AWS_ENDPOINT_URL_S3=$S3_URL" --container-env "AWS_ACCESS_KEY_ID=$S3_AKID" \
            --container-env "AWS_SECRET_ACCESS_KEY=$S3_SECRET" --container-env AWS_REGION=us-east-1 \
            --container-env AWS_EC2_METADATA_DISABLED=true --container-env STEPOP_LOG_INTERVAL=200ms
}
bed_config() {
    local common="\"api_endpoint\": \"$VERTEX_FAKE_URL\", \"logging_endpoint\": \"$VERTEX_FAKE_URL\", \"entrypoint\": [\"/usr/local/bin/stepop\", \"run\"]"
    cat >stepop.json <<JSON
{"store": "s3://test/vx", "default_operator": "vx",
 "operators": {"vx": {"flavor": "vertex", "settings": {$common}},
  "small": {"flavor": "vertex", "settings": {$common, "machine_type": "e2-small"}}}}
JSON
    CF_DATA=s3://test/data/
    CF_RUNS=s3://test/vx/runs/
    CF_STORE_DIR=$S3_ROOT
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
# e2-small has 96 MiB on this fake (--machine-memory).
bed_can_oom() { echo "--operator small"; }
bed_missing_image_args() { echo "--image localhost/stepop-test/no-such-image:1"; }
bed_unsupported_args() { echo "--cpu 1"; }
bed_jobs() { vertex_jobs | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
bed_object_file() { local p=${1#s3://}; s3_object_file "${p%%/*}" "${p#*/}"; }
bed_secrets() {
    python3 -c "
import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)['token'])" "$T/gtokens"
    printf '%s\n' "$S3_SECRET"
}
bed_api_down() { kill -STOP "$VERTEX_FAKE_PID"; }
bed_api_up() { kill -CONT "$VERTEX_FAKE_PID"; }
# The handle names another run's finished job (labelled with that run, not this one).
bed_forge_handle() {
    local uri=${CF_RUNS}$1/submission.json
    BED_VICTIM=$(vertex_jobs | python3 -c "import json,sys; print([j['name'] for j in json.load(sys.stdin) if j['state'] == 'JOB_STATE_SUCCEEDED'][0])") || return 1
    BED_VICTIM_STATE=$(bed_victim_state)
    "$STEPOP" artifact get "$uri" "$T/submission.orig" >/dev/null 2>&1 || return 1
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['handle']['name']=sys.argv[3]; json.dump(d, open(sys.argv[2], 'w'))" \
        "$T/submission.orig" "$T/submission.forged" "$BED_VICTIM"
    "$STEPOP" artifact put "$T/submission.forged" "$uri" >/dev/null 2>&1
}
bed_victim_state() { vertex_jobs | python3 -c "import json,sys; print([j['state'] for j in json.load(sys.stdin) if j['name'] == sys.argv[1]][0])" "$BED_VICTIM"; }
bed_forged_intact() { [ "$(bed_victim_state)" = "$BED_VICTIM_STATE" ]; }
bed_unforge_handle() { "$STEPOP" artifact put "$T/submission.orig" "${CF_RUNS}$1/submission.json" >/dev/null 2>&1; }
