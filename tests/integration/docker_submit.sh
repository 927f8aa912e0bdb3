#!/usr/bin/env bash
# stepop submit with the docker flavor, end to end in real containers: Podman's Docker-compatible
# API service, step images built here (tests/lib.sh podman_images), a file store bind-mounted
# into the containers. Success with an input and an output, exit codes, Ctrl-C, OOM, a missing
# image, inject, --dry-run, a container killed from outside, and re-attaching.
. "$(dirname "$0")/../lib.sh"

start_podman || { not_ok "podman starts"; done_testing; }
podman_images || { not_ok "test images build"; done_testing; }
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd" "$T/store/data"
cd "$T/cwd" || exit 1
STORE=$T/store
runs=$STORE/runs
cat >stepop.json <<JSON
{"store": "file://$STORE", "default_operator": "podman",
 "operators": {"podman": {"flavor": "docker",
   "settings": {"labels": {"stepop-test.owner": "$PODMAN_OWNER"}, "pass_env": ["STEPOP_LOG_INTERVAL"]}}}}
JSON
last_run() { ls -t "$runs" | head -1; }
containers() { podman_cli ps -aq --filter "label=stepop-test.owner=$PODMAN_OWNER" | wc -l; }
printf 'the input\n' >"$STORE/data/in.txt"

# --- success, with an input from the store and an output to it ---
t0=$SECONDS
expect_rc 0 "a step runs in a container" "$STEPOP" submit --image "$STEP_IMAGE" --cpu 1 --memory 256MiB \
    --input data="file://$STORE/data/in.txt" --output result=out@tar.gz -- \
    sh -c 'echo "in a container: $(cat /proc/1/comm) is PID 1"; cat data; mkdir out; cat data > out/copy.txt; echo to-stderr >&2'
echo "# submit to exit in $((SECONDS - t0)) s"
out_has "in a container: stepop is PID 1" "the step's output streams back"
out_has "the input" "the step read its input"
out_has "to-stderr" "both streams are in the log"
err_has "succeeded" "the summary says succeeded"
r=$(last_run)
is_eq "submission.json: the docker flavor on Podman" \
    "$(jq_py "$runs/$r/submission.json" "d['flavor'], d['handle']['engine'], d['handle']['name']")" "docker podman stepop-$r"
is_eq "the output is in the store" "$(tar -xzOf "$runs/$r/outputs/result.tar.gz" copy.txt)" "the input"
is_eq "the container was removed afterwards" "$(containers)" 0

# --- exit codes ---
expect_rc 7 "a failing step's exit code is submit's" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo failing; exit 7'
r=$(last_run)
is_eq "status: failed, user_error" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "failed user_error"

# --- Ctrl-C stops the container; logs complete, status terminated ---
cat >"$STORE/data/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
"$STEPOP" submit --image "$STEP_IMAGE" --grace 10s --input s="file://$STORE/data/trap.sh" -- sh s \
    >"$T/int.out" 2>"$T/int.err" &
sub=$!
for i in $(seq 300); do grep -q "step started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
t0=$SECONDS
kill -INT "$sub"
wait "$sub"
is_eq "SIGINT to submit stops the container; the step's exit code comes back" "$?" 9
# The step's TERM handler takes 1 s; SIGKILL would only come after the 10 s grace period.
check "it stopped before the grace period ran out ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 10
r=$(last_run)
is_eq "the status ends terminated" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "terminated terminated"
check "the logs are complete" grep -q "step cleaned up" "$T/int.out"
is_eq "the container is gone" "$(containers)" 0

# --- memory limit ---
expect_rc 137 "a step over its memory limit" "$STEPOP" submit --image "$STEP_IMAGE" --memory 48MiB -- \
    sh -c 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1'
r=$(last_run)
is_eq "reason oom_killed" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "failed oom_killed"
err_has "oom_killed" "the summary says so"

# --- a missing image fails fast ---
t0=$SECONDS
expect_rc 71 "a missing image: the flavor cannot launch (exit 71)" "$STEPOP" submit --image localhost/stepop-test/no-such:1 -- true
err_has "pulling image localhost/stepop-test/no-such:1 failed" "with a clear error"
is_eq "fast (under 20 s)" "$((SECONDS - t0 < 20))" 1

# --- inject: an image without stepop ---
if [ -x "$ROOT/build/stepop-static" ]; then
    printf '{"image": "%s", "command": ["sh", "-c", "echo injected into a bare image"], "settings": {"inject": true, "stepop_binary": "%s"}}\n' \
        "$BARE_IMAGE" "$ROOT/build/stepop-static" >"$T/inject.json"
    expect_rc 0 "inject: true runs a step in an image without stepop" "$STEPOP" submit "$T/inject.json"
    out_has "injected into a bare image" "its output came back"
else
    ok "# SKIP inject: build/stepop-static is not built"
fi
expect_rc 71 "without inject the same image fails to start" "$STEPOP" submit --image "$BARE_IMAGE" -- true
err_has "no stepop on its PATH" "saying why"

# --- --dry-run ---
before=$(ls "$runs" | wc -l)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" --memory 1GiB --gpus 1 -- echo hi
check "it prints the create request" python3 -c "
import json; d = json.load(open('$T/out'))
assert d['flavor'] == 'docker'
reqs = d['requests']['requests']
c = [r for r in reqs if 'containers/create' in r['path']][0]
assert c['body']['devices'] == [{'path': 'nvidia.com/gpu=0'}], c
assert c['body']['resource_limits']['memory']['limit'] == 1 << 30
assert c['body']['env']['STEPOP_MANIFEST'] == d['run_uri'] + 'manifest.json'"
is_eq "and starts nothing" "$(ls "$runs" | wc -l) $(containers)" "$before 0"

# --- the whole container killed from outside: the flavor's report fills the status in ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo alive; sleep 60' >"$T/lost.out" 2>"$T/lost.err" &
sub=$!
for i in $(seq 300); do grep -q alive "$T/lost.out" 2>/dev/null && break; sleep 0.1; done
r=$(last_run)
podman_cli kill -s KILL "stepop-$r" >/dev/null
wait "$sub"
is_eq "submit exits with the container's code" "$?" 137
is_eq "status.json is filled in from the engine's report" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "failed internal"

# --- re-attach: --detach, then stepop logs -f and stepop status ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sh -c 'echo detached-start; sleep 2; echo detached-end; exit 4'
r=$(tr -d '\n' <"$T/out")
check "prints the run id" test -d "$runs/$r"
expect_rc 0 "stepop logs -f follows it to the end" "$STEPOP" logs -f "$r"
out_has "detached-start" "from the start"
out_has "detached-end" "to the end"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
is_eq "shows the final status and the flavor" "$(jq_py "$T/out" "d['phase'], d['exit_code'], d['flavor']")" "failed 4 docker"
expect_rc 0 "stepop cancel a detached run" sh -c "r=\$('$STEPOP' submit --detach --image '$STEP_IMAGE' -- sleep 60) && sleep 2 && '$STEPOP' cancel --wait \$r && echo \$r"
r=$(tail -1 "$T/out")
is_eq "it ends terminated" "$(jq_py "$runs/$r/status.json" "d['phase']")" terminated

# --- the docker flavor's paths under valgrind: render, submit with its follow loop, cancel ---
if command -v valgrind >/dev/null; then
    vg() { valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$STEPOP" "$@"; }
    expect_rc 0 "--dry-run under valgrind" vg submit --dry-run --image "$STEP_IMAGE" --gpus 1 -- true
    expect_rc 3 "submit, follow and cleanup under valgrind" vg submit --image "$STEP_IMAGE" --memory 64MiB -- sh -c 'echo vg; exit 3'
    out_has "vg" "... with the step's output"
    expect_rc 0 "a detached submit under valgrind" vg submit --detach --image "$STEP_IMAGE" -- sleep 60
    r=$(tr -d '\n' <"$T/out")
    sleep 1
    expect_rc 0 "cancel --wait under valgrind" vg cancel --wait "$r"
    expect_rc 71 "a missing image under valgrind" vg submit --image localhost/stepop-test/no-such:1 -- true
else
    ok "# SKIP valgrind is not installed"
fi
podman_cli rm -f -t 0 $(podman_cli ps -aq --filter "label=stepop-test.owner=$PODMAN_OWNER") >/dev/null 2>&1

done_testing
