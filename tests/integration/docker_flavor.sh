#!/usr/bin/env bash
# The docker flavor's operations (validate, render, submit, poll, cancel, cleanup) against a real
# engine: Podman's Docker-compatible API service, driven by build/tests/tools/flavor_drive
# without the submit command, with runs on a file store bind-mounted into the containers.
. "$(dirname "$0")/../lib.sh"

DRIVE=$ROOT/build/tests/tools/flavor_drive
[ -x "$DRIVE" ] || skip_all "build/tests/tools/flavor_drive is not built (make test builds it)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
start_podman || { not_ok "podman starts"; done_testing; }
ok "podman's API service answers on $DOCKER_HOST"
podman_images || { not_ok "test images build"; done_testing; }
ok "test images $STEP_IMAGE and $BARE_IMAGE"

STORE=$T/store
mkdir -p "$STORE/runs"
n=0
# new_run FIELDS: a run prefix with its manifest; sets RUN_ID, RUN_DIR, RUN_URI.
new_run() {
    n=$((n + 1))
    RUN_ID=drive$$x$n
    RUN_DIR=$STORE/runs/$RUN_ID
    RUN_URI=file://$RUN_DIR
    mkdir -p "$RUN_DIR"
    manifest "$RUN_DIR/manifest.json" "$RUN_URI" "$1"
}
# settings JSON-FIELDS: the settings file (with the label that lets the test remove its containers)
settings() {
    printf '{"labels": {"stepop-test.owner": "%s"}%s}\n' "$PODMAN_OWNER" "${1:+, $1}" >"$T/settings.json"
}
drive() { "$DRIVE" docker "$@"; }
# wait_exit SECONDS: polls $T/handle.json until the container exited; $T/poll.json is the last answer
wait_exit() {
    local i
    for i in $(seq $(($1 * 5))); do
        drive poll "$T/handle.json" "$T/settings.json" >"$T/poll.json" 2>"$T/poll.err" || return 1
        [ "$(jq_py "$T/poll.json" 'd["phase"]')" = exited ] && return 0
        sleep 0.2
    done
    return 1
}
status_field() { jq_py "$RUN_DIR/status.json" "d.get('$1')"; }
logs() { cat "$RUN_DIR"/logs/1/*.log 2>/dev/null; }

# --- validate and render ---
settings
new_run '"command":["true"]'
expect_rc 1 "validate refuses a step without an image" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "needs an image" "... and says so"
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"true\"]"
settings '"netwrk": "host"'
expect_rc 1 "validate refuses an unknown setting" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "settings.netwrk: not a setting of the docker flavor" "... naming it"
settings '"pull": "sometimes"'
expect_rc 1 "validate refuses a bad pull policy" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "settings.pull" "... naming it"
settings '"inject": true, "stepop_binary": "/nonexistent/stepop"'
expect_rc 1 "validate refuses inject without its binary" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "make static" "... and says how to build it"
n=$((n + 1))
mkdir -p "$STORE/runs/loop$n"
printf '{"api_version":"stepop/v1","run_id":"loop%s","run_uri":"http://127.0.0.1:9/runs/loop%s/","image":"%s","command":["true"]}\n' \
    "$n" "$n" "$STEP_IMAGE" >"$T/loop.json"
settings
expect_rc 1 "validate refuses a loopback store the container cannot reach" drive validate "$T/loop.json" "$T/settings.json"
err_has 'set settings.network to "host"' "... with the fix"
settings '"network": "host"'
expect_rc 0 "... and accepts it with network host" drive validate "$T/loop.json" "$T/settings.json"

# file:// URIs become bind mounts: never of /, /etc, /proc, /sys, /dev or the engine's socket.
settings
refuse_mount() { # DESC FIELDS WORDS
    new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"true\"],$2"
    expect_rc 1 "validate refuses $1" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
    err_has "$3" "... saying what it would show"
}
refuse_mount "an input of the host's root" '"inputs":[{"name":"all","uri":"file:///"}]' "inputs[0] (all): the docker flavor would mount /, which shows the host's root"
refuse_mount "an input under /etc" '"inputs":[{"name":"pw","uri":"file:///etc/passwd"}]' "would mount /etc/passwd, which shows /etc"
ln -s /proc "$T/innocent"
refuse_mount "a symbolic link to /proc" "\"inputs\":[{\"name\":\"p\",\"uri\":\"file://$T/innocent/self\"}]" "(/proc/"
refuse_mount "'..' segments" "\"inputs\":[{\"name\":\"up\",\"uri\":\"file://$STORE/../../etc\"}]" "has '.' or '..' segments"
refuse_mount "an output under /dev" '"outputs":[{"name":"o","path":"o","uri":"file:///dev/shm/o.tar.zst"}]' "outputs[0] (o): the docker flavor would mount /dev/shm"
refuse_mount "an input holding the engine's socket" "\"inputs\":[{\"name\":\"s\",\"uri\":\"file://$(dirname "${DOCKER_HOST#unix://}")\"}]" "which shows the container engine's socket"
refuse_mount "the socket itself" "\"inputs\":[{\"name\":\"s\",\"uri\":\"file://${DOCKER_HOST#unix://}\"}]" "which shows the container engine's socket"
mkdir -p "$T/etcstore"
printf '{"api_version":"stepop/v1","run_id":"e1","run_uri":"file:///etc/stepop-test/runs/e1/","image":"%s","command":["true"]}\n' \
    "$STEP_IMAGE" >"$T/etcstore/manifest.json"
expect_rc 1 "validate refuses a run prefix under /etc" drive validate "$T/etcstore/manifest.json" "$T/settings.json"
err_has "run_uri: the docker flavor would mount /etc/stepop-test/runs/e1" "... naming it"
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"true\"]"
settings "\"mounts\": [\"$(dirname "${DOCKER_HOST#unix://}"):/engine\"]"
expect_rc 1 "settings.mounts may not show the engine's socket either" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "would show the container engine's socket" "... saying so"
settings '"mounts": ["/:/host:ro"]'
expect_rc 1 "nor the host's root" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
settings

settings '"pass_env": ["STEPOP_TEST_SECRET", "STEPOP_TPASS_*"], "shm_size": "256MiB", "mounts": ["/etc/hostname:/etc/host-name:ro"]'
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"true\"],\"resources\":{\"cpu\":1.5,\"memory\":\"64MiB\"},\"grace_period\":\"5s\""
STEPOP_TEST_SECRET=hunter2-do-not-print STEPOP_TPASS_A=1 expect_rc 0 "render prints the requests" \
    drive render "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/render.json"
is_eq "render names the engine" "$(jq_py "$T/render.json" 'd["engine"]')" podman
is_eq "render: pull when missing, create, start" \
    "$(jq_py "$T/render.json" '" ".join(r["method"] + " " + r["path"].split("?")[0] for r in d["requests"])')" \
    "POST /v1.41/images/create POST /v1.41/containers/create POST /v1.41/containers/stepop-$RUN_ID/start"
body() { jq_py "$T/render.json" "[r for r in d['requests'] if '/containers/create' in r['path']][0]['body']$1"; }
is_eq "create: entrypoint stepop run, no CMD" "$(body '["Entrypoint"]') $(body '["Cmd"]')" "['stepop', 'run'] []"
is_eq "create: STEPOP_MANIFEST and STEPOP_ATTEMPT" "$(body '["Env"][:2]')" \
    "['STEPOP_MANIFEST=$RUN_URI/manifest.json', 'STEPOP_ATTEMPT=1']"
is_eq "create: passed-through variables are named, their values hidden" \
    "$(body '["Env"][2:]' | sed 's/<hidden[^>]*>/HIDDEN/g' | tr -d "[]'" | tr ',' '\n' | sed 's/^ //' | sort | tr '\n' ' ')" "STEPOP_TEST_SECRET=HIDDEN STEPOP_TPASS_A=HIDDEN "
if grep -q hunter2 "$T/render.json"; then not_ok "render never prints a passed-through value"; else ok "render never prints a passed-through value"; fi
is_eq "create: the run's label" "$(body '["Labels"]["io.stepop.run-id"]')" "$RUN_ID"
is_eq "create: CPU and memory limits, no swap" \
    "$(body '["HostConfig"]["NanoCpus"]') $(body '["HostConfig"]["Memory"]') $(body '["HostConfig"]["MemorySwap"]')" \
    "1500000000 67108864 67108864"
is_eq "create: stop timeout is the grace period plus the margin" "$(body '["StopTimeout"]')" 35
is_eq "create: the run prefix is mounted read-write at its own path" \
    "$(body '["HostConfig"]["Mounts"][0]')" "{'Type': 'bind', 'Source': '$RUN_DIR', 'Target': '$RUN_DIR', 'ReadOnly': False}"
is_eq "create: settings.mounts and shm_size" \
    "$(body '["HostConfig"]["Mounts"][1]["Target"]') $(body '["HostConfig"]["ShmSize"]')" "/etc/host-name 268435456"
# Only this run's containers: other tests may be running containers on the same storage.
is_eq "render started nothing" "$(podman_cli ps -aq --filter "label=io.stepop.run-id=$RUN_ID" | wc -l)" 0

settings '"engine": "docker"'
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"true\"],\"resources\":{\"gpus\":2}"
expect_rc 0 "render for Docker with GPUs" drive render "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/render.json"
is_eq "Docker: GPUs as a DeviceRequest for the nvidia driver" "$(body '["HostConfig"]["DeviceRequests"]')" \
    "[{'Driver': 'nvidia', 'Count': 2, 'Capabilities': [['gpu']]}]"
settings '"engine": "docker", "gpu_driver": "cdi", "gpu_ids": ["GPU-1", "GPU-2"]'
expect_rc 0 "render for Docker with CDI and picked GPUs" drive render "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/render.json"
is_eq "Docker CDI: the devices by name" "$(body '["HostConfig"]["DeviceRequests"]')" \
    "[{'Driver': 'cdi', 'DeviceIDs': ['nvidia.com/gpu=GPU-1', 'nvidia.com/gpu=GPU-2']}]"
settings '"engine": "docker", "gpu_ids": ["all"]'
expect_rc 0 "render for Docker with every GPU" drive render "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/render.json"
is_eq "Docker: all GPUs is Count -1" "$(body '["HostConfig"]["DeviceRequests"][0]["Count"]')" -1
settings '"engine": "docker", "gpu_ids": ["0"]'
expect_rc 1 "gpu_ids must match resources.gpus" drive render "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "1 ids for resources.gpus 2" "... saying so"
settings
expect_rc 0 "render for Podman with GPUs" drive render "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/render.json"
is_eq "Podman: GPUs go through its own API, as CDI devices" \
    "$(jq_py "$T/render.json" '[(r["path"], r["body"]["devices"]) for r in d["requests"] if "libpod" in r["path"]]')" \
    "[('/v4.3.1/libpod/containers/create', [{'path': 'nvidia.com/gpu=0'}, {'path': 'nvidia.com/gpu=1'}])]"

# --- a step that succeeds, with an input and an output on the store ---
settings
mkdir -p "$STORE/data"
printf 'forty-two\n' >"$STORE/data/in.txt"
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"sh\",\"-c\",\"echo hello from \$(hostname); cat \$STEPOP_INPUT_DATA; mkdir -p out; echo result >out/r.txt\"],
  \"inputs\":[{\"name\":\"data\",\"uri\":\"file://$STORE/data/in.txt\"}],
  \"outputs\":[{\"name\":\"result\",\"path\":\"out\"}],\"workdir\":\"/work\""
t0=$SECONDS
expect_rc 0 "submit starts the container" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/handle.json"
is_eq "the handle names engine, container and API" \
    "$(jq_py "$T/handle.json" 'd["engine"], d["name"], len(d["id"]), d["api"]')" "podman stepop-$RUN_ID 64 v1.41"
check "the container exits" wait_exit 60
is_eq "poll: exit code 0" "$(jq_py "$T/poll.json" 'd["exit_code"], d["oom_killed"]')" "0 False"
is_eq "status.json: succeeded" "$(status_field phase)" succeeded
check "the step read its input" grep -q forty-two <(logs)
check "the image's CMD never ran" bash -c "! grep -q 'image CMD' <<<\"\$(cat $RUN_DIR/logs/1/*.log)\""
check "the output was stored" test -s "$RUN_DIR/outputs/result.tar.zst" -a -s "$RUN_DIR/outputs.json"
# File times tick coarsely: "not older" is what can be checked.
check "outputs.json was written after the output" bash -c "! [ '$RUN_DIR/outputs/result.tar.zst' -nt '$RUN_DIR/outputs.json' ]"
echo "# a step took $((SECONDS - t0)) s from submit to exit"
expect_rc 0 "cleanup removes the container" drive cleanup "$T/handle.json" "$T/settings.json"
expect_rc 0 "poll after cleanup" drive poll "$T/handle.json" "$T/settings.json"
out_has '"phase":"gone"' "... says gone"
expect_rc 0 "cleanup of a removed container is fine" drive cleanup "$T/handle.json" "$T/settings.json"

# --- a failing step ---
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"sh\",\"-c\",\"echo failing >&2; exit 3\"]"
expect_rc 0 "submit a failing step" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/handle.json"
check "it exits" wait_exit 60
is_eq "poll: the step's exit code" "$(jq_py "$T/poll.json" 'd["exit_code"]')" 3
is_eq "status.json: failed, user_error, 3" "$(status_field phase) $(status_field reason) $(status_field exit_code)" "failed user_error 3"
settings '"keep": true'
expect_rc 0 "cleanup with keep: true leaves the container" drive cleanup "$T/handle.json" "$T/settings.json"
is_eq "... which is still there" "$(podman_cli ps -a --filter "name=stepop-$RUN_ID" --format '{{.Status}}' | cut -c1-6)" "Exited"
settings
drive cleanup "$T/handle.json" "$T/settings.json"

# --- cancel: SIGTERM, the grace period, logs and final status still written ---
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"sh\",\"-c\",\"trap 'echo got TERM; sleep 1; echo cleaned up; exit 143' TERM; echo started; while :; do sleep 0.1; done\"],\"grace_period\":\"10s\""
expect_rc 0 "submit a long step" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/handle.json"
for i in $(seq 100); do [ "$(status_field phase 2>/dev/null)" = running ] && break; sleep 0.1; done
sleep 0.5
t0=$SECONDS
expect_rc 0 "cancel returns once asked" drive cancel "$T/handle.json" "$T/settings.json" 10s
check "the container stops" wait_exit 30
# The step's TERM handler takes 1 s; SIGKILL would only come after the 10 s grace period.
check "it stopped before the grace period ran out ($((SECONDS - t0)) s after the cancel)" test $((SECONDS - t0)) -lt 10
is_eq "status.json: terminated" "$(status_field phase) $(status_field reason)" "terminated terminated"
check "the logs are complete" grep -q "cleaned up" <(logs)
expect_rc 0 "cancel of a stopped container is fine" drive cancel "$T/handle.json" "$T/settings.json" 10s

# A handle comes from submission.json, which the store's writers can forge: the flavor acts only
# on a container labelled with the handle's run.
victim=$(podman_cli create --label "stepop-test.owner=$PODMAN_OWNER" "$STEP_IMAGE" sleep 60)
podman_cli start "$victim" >/dev/null
forge() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1; json.dump(d, open(sys.argv[2], 'w'))" "$T/handle.json" "$T/forged.json"; }
forge "d['id'] = '$victim'"
expect_rc 1 "cancel refuses a handle naming another container" drive cancel "$T/forged.json" "$T/settings.json" 0s
err_has "is not run $RUN_ID's (its label io.stepop.run-id is missing); refusing to act on it" "... saying why"
expect_rc 1 "cleanup refuses it too" drive cleanup "$T/forged.json" "$T/settings.json"
is_eq "that container still runs" "$(podman_cli inspect --format '{{.State.Status}}' "$victim")" running
forge "d['run_id'] = 'someone-else'"
expect_rc 1 "a container of another run is refused" drive cleanup "$T/forged.json" "$T/settings.json"
err_has "is not run someone-else's (its label io.stepop.run-id is \"$RUN_ID\")" "... naming its label"
is_eq "... and stays" "$(podman_cli ps -aq --filter "name=stepop-$RUN_ID" | wc -l)" 1
forge "d['id'] = '../../containers/$victim'"
expect_rc 1 "an id that is no container id is refused" drive cleanup "$T/forged.json" "$T/settings.json"
err_has "is not a container id" "... before any request"
forge "del d['run_id']"
expect_rc 1 "a handle without its run is refused" drive poll "$T/forged.json" "$T/settings.json"
podman_cli rm -f -t 0 "$victim" >/dev/null
drive cleanup "$T/handle.json" "$T/settings.json"
is_eq "the real handle still cleans up" "$(podman_cli ps -aq --filter "name=stepop-$RUN_ID" | wc -l)" 0

# --- memory limit ---
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"sh\",\"-c\",\"echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1\"],\"resources\":{\"memory\":\"48MiB\"}"
expect_rc 0 "submit a step over its memory limit" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/handle.json"
check "it exits" wait_exit 60
is_eq "status.json: failed, oom_killed" "$(status_field phase) $(status_field reason)" "failed oom_killed"
check "the message names the limit" grep -q "48" <(status_field message)
drive cleanup "$T/handle.json" "$T/settings.json"

# --- images ---
new_run '"image":"localhost/stepop-test/no-such-image:1","command":["true"]'
t0=$SECONDS
expect_rc 1 "a missing image fails the submit" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "pulling image localhost/stepop-test/no-such-image:1 failed" "... saying the pull failed"
is_eq "... fast (under 20 s)" "$((SECONDS - t0 < 20))" 1
settings '"pull": "never"'
expect_rc 1 "pull: never with a missing image" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "is not on the engine" "... says it is not there"
settings
new_run "\"image\":\"$BARE_IMAGE\",\"command\":[\"true\"]"
expect_rc 1 "an image without stepop fails to start" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "has no stepop on its PATH" "... saying what is missing"
err_has "inject" "... and how to do without"
is_eq "... and leaves no container" "$(podman_cli ps -aq --filter "name=stepop-$RUN_ID" | wc -l)" 0

# --- inject: the host's static binary in an image without stepop ---
if [ -x "$ROOT/build/stepop-static" ]; then
    settings "\"inject\": true, \"stepop_binary\": \"$ROOT/build/stepop-static\""
    new_run "\"image\":\"$BARE_IMAGE\",\"command\":[\"sh\",\"-c\",\"echo injected; ls -l /opt/stepop/bin/stepop; touch /opt/stepop/bin/stepop 2>&1 || true\"]"
    expect_rc 0 "submit with inject: true" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
    cp "$T/out" "$T/handle.json"
    check "it exits" wait_exit 60
    is_eq "status.json: succeeded" "$(status_field phase)" succeeded
    check "the step ran" grep -q injected <(logs)
    check "the binary is mounted read-only" grep -q "Read-only file system" <(logs)
    drive cleanup "$T/handle.json" "$T/settings.json"
else
    ok "# SKIP inject: build/stepop-static is not built"
fi

# --- tcp:// hosts: the same engine on a loopback port, named by settings.host ---
port=$(free_port)
podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/run" --tmpdir "$PODMAN_DIR/tmp" \
    system service --time=0 "tcp://127.0.0.1:$port" >"$T/podman-tcp.log" 2>&1 &
tcp_pid=$!
on_exit "kill $tcp_pid; wait $tcp_pid"
for i in $(seq 100); do [ "$(curl -s --max-time 1 "http://127.0.0.1:$port/_ping")" = OK ] && break; sleep 0.05; done
settings "\"host\": \"tcp://127.0.0.1:$port\""
new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"sh\",\"-c\",\"echo over tcp\"]"
expect_rc 0 "submit through a tcp:// host" env -u DOCKER_HOST "$DRIVE" docker submit "$RUN_DIR/manifest.json" "$T/settings.json"
cp "$T/out" "$T/handle.json"
is_eq "the handle records the host" "$(jq_py "$T/handle.json" 'd["host"]')" "tcp://127.0.0.1:$port"
DOCKER_HOST=unix:///nonexistent check "poll uses the handle's host, not DOCKER_HOST" wait_exit 60
check "the step ran" grep -q "over tcp" <(logs)
expect_rc 0 "cleanup through tcp://" drive cleanup "$T/handle.json" "$T/settings.json"
settings
DOCKER_HOST=unix://$T/no-engine.sock expect_rc 1 "no engine at DOCKER_HOST" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "cannot reach the container engine at unix://$T/no-engine.sock" "... says where it looked"
DOCKER_HOST=ssh://user@host expect_rc 1 "an ssh:// DOCKER_HOST is refused" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "only unix:// and tcp://" "... saying what is supported"

# --- GPUs through CDI on Podman: a fake CDI spec (an environment variable, no device) ---
if [ "$(id -u)" = 0 ] && mkdir -p /var/run/cdi 2>/dev/null; then
    spec=/var/run/cdi/stepop-test-$PODMAN_OWNER.yaml
    cat >"$spec" <<SPEC
cdiVersion: "0.5.0"
kind: "stepop-test.invalid/gpu"
devices:
  - name: "0"
    containerEdits:
      env: ["STEPOP_TEST_CDI_DEVICE=zero"]
SPEC
    on_exit "rm -f $spec"
    settings '"cdi_kind": "stepop-test.invalid/gpu", "network": "podman"'
    new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"sh\",\"-c\",\"echo device=\$STEPOP_TEST_CDI_DEVICE; echo limits \$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max 2>/dev/null)\"],\"resources\":{\"gpus\":1,\"cpu\":0.5,\"memory\":\"64MiB\"}"
    expect_rc 0 "submit a step asking for a GPU (CDI)" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
    cp "$T/out" "$T/handle.json"
    check "it exits" wait_exit 60
    check "the CDI device's edits reached the container" grep -q "device=zero" <(logs)
    check "Podman's own API applied the CPU and memory limits" grep -qE "limits (67108864 50000|67108864 max 50000 100000)" <(logs)
    is_eq "... on the named network" "$(podman_cli inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(jq_py "$T/handle.json" 'd["id"]')")" podman
    drive cleanup "$T/handle.json" "$T/settings.json"
    rm -f "$spec"
    new_run "\"image\":\"$STEP_IMAGE\",\"command\":[\"true\"],\"resources\":{\"gpus\":1}"
    expect_rc 1 "a GPU whose CDI spec is missing" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
    err_has "nvidia-ctk cdi generate" "... says how to make one"
else
    ok "# SKIP CDI: needs root to write /var/run/cdi"
fi

done_testing
