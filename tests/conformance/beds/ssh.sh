# shellcheck shell=bash disable=SC2034
# The ssh example plugin's conformance bed (examples/flavors/stepop-flavor-ssh, found on PATH as
# `--flavor ssh`): a real OpenSSH sshd on a loopback port (start_sshd), `stepop run` on the "remote"
# host, which is this machine, so the file store in $T is shared.
BED_FLAVOR=ssh
BED_SETTING_WORD="unknown setting \"bogus_setting\""
BED_REFUSED_WORD="refusing to signal"
bed_setup() {
    sshd_available || { echo "# openssh-server/openssh-client are not installed"; return 1; }
    command -v jq >/dev/null || { echo "# jq is not installed"; return 1; }
    start_sshd || return 1
    export PATH=$ROOT/examples/flavors:$PATH
    mkdir -p "$T/store/data"
    # A run left behind by a failing check: its whole session (setsid made the wrapper's pid its id).
    # shellcheck disable=SC2016 # expanded when the hook runs
    on_exit 'for f in "$T"/remote/*.pid; do [ -s "$f" ] && pkill -KILL -s "$(cat "$f")"; done'
}
bed_config() {
    jq -n --arg store "file://$T/store" --arg port "$SSHD_PORT" --arg user "$SSHD_USER" --arg key "$SSHD_KEY" \
        --arg stepop "$STEPOP" --arg kh "$T/sshd/known_hosts" --arg wd "$T/remote" \
        '{store: $store, default_operator: "box", operators: {box: {flavor: "ssh", settings: {
          host: "127.0.0.1", port: ($port | tonumber), user: $user, identity_file: $key,
          remote_stepop: $stepop, workdir: $wd, pass_env: ["STEPOP_LOG_INTERVAL"],
          ssh_options: ["UserKnownHostsFile=\($kh)", "GlobalKnownHostsFile=/dev/null",
                        "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "ConnectTimeout=10"]}}}}' >stepop.json
    CF_DATA=file://$T/store/data/
    CF_RUNS=file://$T/store/runs/
    CF_STORE_DIR=$T/store
}
bed_step_args() { :; }
bed_can_oom() { echo "the ssh plugin sets no memory limit on the host"; return 1; }
bed_missing_image_args() { echo "the ssh plugin runs no image (stepop run on the host itself)"; return 1; }
bed_unsupported_args() { echo "--memory 1GiB"; }
# The runs started on the host: the pid files the plugin leaves in the remote workdir, and runs.
bed_jobs() { find "$T/store/runs" "$T/remote" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
bed_object_file() { echo "${1#file://}"; }
# The client's private key: its base64 body must never be printed or stored.
bed_secrets() { sed -n 2p "$SSHD_KEY"; }
# sshd stopped (connections refused), then started again on the same port with the same keys.
bed_api_down() { kill "$SSHD_PID"; wait "$SSHD_PID" 2>/dev/null; }
bed_api_up() {
    /usr/sbin/sshd -D -e -f "$T/sshd/sshd_config" >>"$T/sshd/sshd.log" 2>&1 &
    SSHD_PID=$!
    on_exit "kill $SSHD_PID; wait $SSHD_PID"
}
# The handle names an unrelated process (its pid, group and start time stay the run's).
bed_forge_handle() {
    local sub=$T/store/runs/$1/submission.json
    sleep 300 >/dev/null 2>&1 &
    BED_VICTIM=$!
    on_exit "kill $BED_VICTIM"
    cp "$sub" "$T/submission.orig"
    jq -c --argjson p "$BED_VICTIM" '.handle.pid = $p | .handle.pgid = $p' "$T/submission.orig" >"$sub"
}
bed_forged_intact() { kill -0 "$BED_VICTIM"; }
bed_unforge_handle() { cp "$T/submission.orig" "$T/store/runs/$1/submission.json"; }
