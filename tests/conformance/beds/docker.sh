# shellcheck shell=bash disable=SC2034
# The docker flavor's conformance bed: Podman's Docker-compatible API service (start_podman, called
# by the runner so tests/run.sh pools it), the test images (podman_images), a file store in $T
# bind-mounted into the containers, as tests/integration/docker_submit.sh sets it up.
BED_FLAVOR=docker
BED_MISSING_RC=71
bed_setup() { podman_images && mkdir -p "$T/store/data"; }
bed_config() {
    cat >stepop.json <<JSON
{"store": "file://$T/store", "default_operator": "podman",
 "operators": {"podman": {"flavor": "docker",
   "settings": {"labels": {"stepop-test.owner": "$PODMAN_OWNER"}, "pass_env": ["STEPOP_LOG_INTERVAL"]}}}}
JSON
    CF_DATA=file://$T/store/data/
    CF_RUNS=file://$T/store/runs/
    CF_STORE_DIR=$T/store
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
bed_can_oom() { echo "--memory 48MiB"; }
bed_missing_image_args() { echo "--image localhost/stepop-test/no-such:1"; }
bed_unsupported_args() { echo "the docker flavor gives every resource (CPUs, memory, GPUs through CDI)"; return 1; }
bed_jobs() { podman_cli ps -aq --filter "label=stepop-test.owner=$PODMAN_OWNER" | wc -l; }
bed_object_file() { echo "${1#file://}"; }
bed_secrets() { :; }
# The engine's API service stopped (SIGSTOP): its socket accepts and never answers.
bed_api_down() { kill -STOP "$PODMAN_PID"; }
bed_api_up() { kill -CONT "$PODMAN_PID"; }
# The handle names a running container without the run's label.
bed_forge_handle() {
    local sub=$T/store/runs/$1/submission.json
    BED_VICTIM=$(podman_cli run -d --label "stepop-test.owner=$PODMAN_OWNER" --entrypoint /bin/sleep "$STEP_IMAGE" 300) || return 1
    cp "$sub" "$T/submission.orig"
    python3 -c "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['handle']['id']=sys.argv[2]; json.dump(d, open(p, 'w'))" \
        "$sub" "$BED_VICTIM"
}
bed_forged_intact() { [ "$(podman_cli inspect -f '{{.State.Running}}' "$BED_VICTIM")" = true ]; }
bed_unforge_handle() { cp "$T/submission.orig" "$T/store/runs/$1/submission.json"; }
