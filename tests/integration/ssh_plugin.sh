#!/usr/bin/env bash
# examples/flavors/stepop-flavor-ssh against a real OpenSSH sshd on loopback (start_sshd): the
# plugin's operations driven with protocol requests on stdin, `stepop run` on the "remote" host
# with the file store (the same machine), success with input and output, exit codes, logs,
# cancel reaching the step's trap, dry run, re-attach from another process, forged handles
# refused, sshd unreachable.
. "$(dirname "$0")/../lib.sh"
sshd_available || skip_all "openssh-server/openssh-client are not installed"
command -v jq >/dev/null || skip_all "jq is not installed"
PLUGIN=$ROOT/examples/flavors/stepop-flavor-ssh
start_sshd || { not_ok "sshd starts"; done_testing; }
# A run left behind by a failing check: its whole session (setsid made the wrapper's pid its id).
on_exit 'for f in "$T"/remote/*.pid; do [ -s "$f" ] && pkill -KILL -s "$(cat "$f")"; done'
export STEPOP_LOG_INTERVAL=200ms
store=$T/store
settings=$(jq -nc --arg port "$SSHD_PORT" --arg user "$SSHD_USER" --arg key "$SSHD_KEY" --arg stepop "$STEPOP" \
    --arg kh "$T/sshd/known_hosts" --arg wd "$T/remote" \
    '{host: "127.0.0.1", port: ($port | tonumber), user: $user, identity_file: $key, remote_stepop: $stepop,
      workdir: $wd, ssh_options: ["UserKnownHostsFile=\($kh)", "GlobalKnownHostsFile=/dev/null",
      "StrictHostKeyChecking=yes", "IdentitiesOnly=yes"]}')

# req OP RUN [HANDLE-JSON] [SETTINGS-JSON]: a protocol request for run RUN's manifest.
req() {
    local m=$T/$2.json
    jq -nc --arg op "$1" --slurpfile m "$m" --arg uri "file://$m" --argjson h "${3:-null}" \
        --argjson s "${4:-$settings}" --arg stepop "$STEPOP" \
        '{protocol_version: 1, operation: $op, plugin: "ssh", run_id: $m[0].run_id, run_uri: $m[0].run_uri,
          settings: $s, stepop: $stepop, grace_period_ms: 5000}
         + if $h then {handle: ($h + {run_id: $m[0].run_id, run_uri: $m[0].run_uri, grace_period_ms: 5000})}
           else {manifest: $m[0], manifest_uri: $uri, attempt: 1} end'
}
# plugin OP RUN [HANDLE] [SETTINGS]: runs the plugin; its answer in $T/out, its stderr in $T/err.
plugin() { req "$@" | "$PLUGIN" >"$T/out" 2>"$T/err"; }
# wait_exited RUN HANDLE: polls until the phase is not running (60 s at most); prints the state.
wait_exited() {
    local i
    for i in $(seq 600); do
        plugin poll "$1" "$2" || break
        [ "$(jq -r .state.phase "$T/out")" = running ] || break
        sleep 0.1
    done
    jq -c .state "$T/out"
}

# Success with an input and an output on the file store.
printf 'dataset\n' >"$T/data.txt"
sum=$(sha256sum "$T/data.txt" | cut -d' ' -f1)
manifest "$T/s1.json" "file://$store/runs/s1" "\"command\":[\"sh\",\"-c\",\"cat \\\"\$STEPOP_INPUT_DATA\\\"; echo from-remote >\\\"\$STEPOP_OUTPUT_RESULT\\\"; echo last line\"],
  \"workdir\":\"$T/w1\",
  \"inputs\":[{\"name\":\"data\",\"uri\":\"file://$T/data.txt\",\"sha256\":\"$sum\"}],
  \"outputs\":[{\"name\":\"result\",\"path\":\"out/r.txt\",\"format\":\"file\"}]"
expect_rc 0 "validate accepts the settings" plugin validate s1
expect_rc 0 "submit starts the run over ssh" plugin submit s1
h1=$(jq -c .handle "$T/out")
is_eq "the handle names the host, the run, a pid, its group and start time" \
    "$(jq -r '[.host, .run_id, (.pid | type), (.pgid == .pid), (.start | test("^[0-9]+$"))] | join(" ")' <<<"$h1")" \
    "127.0.0.1 s1 number true true"
is_eq "it exits 0" "$(wait_exited s1 "$h1")" '{"phase":"exited","exit_code":0,"oom_killed":false}'
is_eq "status succeeded" "$(jq_py "$store/runs/s1/status.json" "d['phase'], d['exit_code']")" "succeeded 0"
check "the output was stored" grep -q from-remote "$store/runs/s1/outputs/result"
cat "$store"/runs/s1/logs/1/*.log >"$T/shipped" 2>/dev/null
check "the shipped log has the input and the last line" sh -c "grep -q dataset '$T/shipped' && grep -q 'last line' '$T/shipped'"
check "the wrapper (with the environment) is gone from the remote workdir" test ! -e "$T/remote/stepop-ssh-s1.sh"
check "the remote workdir is private" sh -c "[ \$(stat -c %a '$T/remote') = 700 ]"
expect_rc 0 "cleanup" plugin cleanup s1 "$h1"
check "cleanup removed the exit file" test ! -e "$T/remote/stepop-ssh-s1.exit"

# Exit code 3.
manifest "$T/s3.json" "file://$store/runs/s3" "\"command\":[\"sh\",\"-c\",\"echo failing; exit 3\"],\"workdir\":\"$T/w3\""
expect_rc 0 "submit (exit 3)" plugin submit s3
h3=$(jq -c .handle "$T/out")
is_eq "exit code 3 comes back" "$(wait_exited s3 "$h3" | jq -r .exit_code)" 3
is_eq "status failed 3" "$(jq_py "$store/runs/s3/status.json" "d['phase'], d['exit_code']")" "failed 3"

# Cancel: SIGTERM reaches the step's trap; the exit code is stepop's for SIGTERM.
manifest "$T/c1.json" "file://$store/runs/c1" "\"command\":[\"sh\",\"-c\",\"trap 'echo got-term >$T/c1.trap; exit 0' TERM; echo ready >$T/c1.ready; while :; do sleep 0.1; done\"],\"workdir\":\"$T/wc\",\"grace_period\":\"10s\""
expect_rc 0 "submit (to cancel)" plugin submit c1
hc=$(jq -c .handle "$T/out")
for i in $(seq 300); do [ -e "$T/c1.ready" ] && break; sleep 0.1; done
check "the step is running" test -e "$T/c1.ready"
is_eq "poll says running" "$(plugin poll c1 "$hc"; jq -r .state.phase "$T/out")" running
# c1's live process under run s3's name (the handle's run_id is overwritten with the run asked for).
req cancel s3 "$hc" >"$T/other.req"
expect_rc 1 "a handle of another run is refused (the process is c1's, the run is s3)" sh -c '"$1" <"$2"' _ "$PLUGIN" "$T/other.req"
out_has '"kind":"refused"' "as refused"
check "c1 still runs" test ! -e "$T/c1.trap"
# From another process: only the handle and the settings, as a re-attach would have them.
req cancel c1 "$hc" >"$T/cancel.req"
expect_rc 0 "cancel from another process" sh -c '"$1" <"$2"' _ "$PLUGIN" "$T/cancel.req"
is_eq "cancel answers ok" "$(jq -c . "$T/out")" '{"ok":true}'
err_has "terminated" "the process group ended on SIGTERM (no SIGKILL needed)"
check "the step's TERM trap ran" grep -q got-term "$T/c1.trap"
is_eq "poll after cancel: exited" "$(wait_exited c1 "$hc" | jq -r .phase)" exited
is_eq "status terminated" "$(jq_py "$store/runs/c1/status.json" "d['phase']")" terminated

# A forged handle: the pid of an unrelated process (this test's sshd), and a wrong start time.
forged=$(jq -c --argjson p "$SSHD_PID" '.pid = $p | .pgid = $p' <<<"$h3")
expect_rc 1 "cancel refuses a handle naming an unrelated process" plugin cancel s3 "$forged"
out_has "refusing to signal" "it says why"
out_has '"kind":"refused"' "the error's kind is refused"
check "sshd was not signalled" kill -0 "$SSHD_PID"
is_eq "poll does not take the unrelated process for the run" "$(plugin poll s3 "$forged"; jq -r .state.phase "$T/out")" exited
sleeper_pid=$(sh -c 'sleep 60 >/dev/null 2>&1 & echo $!'); on_exit "kill $sleeper_pid"
expect_rc 1 "a handle with a non-numeric pid is refused" plugin cancel s3 "$(jq -c '.pid = "1; reboot"' <<<"$h3")"
expect_rc 1 "a handle for another host is refused" plugin poll s3 "$(jq -c '.host = "10.0.0.1"' <<<"$h3")"
check "the unrelated sleeper survived" kill -0 "$sleeper_pid"

# --dry-run: render shows the ssh argv and the wrapper, runs nothing, carries no pass_env value.
manifest "$T/d1.json" "file://$store/runs/d1" "\"command\":[\"true\"]"
export STEPOP_TEST_SECRET=s3cr3t-$RANDOM
expect_rc 0 "render" plugin render d1 "" "$(jq -c '.pass_env = ["STEPOP_TEST_SECRET"]' <<<"$settings")"
is_eq "render gives the ssh argv" "$(jq -r '.requests[0].argv | [.[0], .[-3], .[-2], .[-1]] | join(" ")' "$T/out")" "ssh 127.0.0.1 sh -s"
check "render shows the run's wrapper" grep -q 'STEPOP_MANIFEST=' "$T/out"
check "render does not show the secret" sh -c "! grep -q '$STEPOP_TEST_SECRET' '$T/out' '$T/err'"
check "render created nothing" test ! -e "$T/remote/stepop-ssh-d1.pid" -a ! -e "$store/runs/d1"

# pass_env: the value reaches the step over ssh's stdin, never an argv.
manifest "$T/e1.json" "file://$store/runs/e1" "\"command\":[\"sh\",\"-c\",\"test \\\"\$STEPOP_TEST_SECRET\\\" = '$STEPOP_TEST_SECRET'\"],\"workdir\":\"$T/we\""
expect_rc 0 "submit with pass_env" plugin submit e1 "" "$(jq -c '.pass_env = ["STEPOP_TEST_SECRET"]' <<<"$settings")"
is_eq "the passed variable reached the step" "$(wait_exited e1 "$(jq -c .handle "$T/out")" | jq -r .exit_code)" 0
check "the secret is nowhere in the sshd log" sh -c "! grep -q '$STEPOP_TEST_SECRET' '$T/sshd/sshd.log'"

# Settings refused, and a protocol version this plugin does not speak.
expect_rc 1 "protocol version 2 is refused" sh -c "jq -c '.protocol_version = 2' | '$PLUGIN'" <<<"$(req validate d1)"
out_has '"kind":"unsupported"' "as unsupported"
expect_rc 1 "an unknown setting is refused" plugin validate d1 "" "$(jq -c '.hots = "x"' <<<"$settings")"
out_has 'unknown setting \"hots\"' "it names the setting"
expect_rc 1 "no host is refused" plugin validate d1 "" "$(jq -c 'del(.host)' <<<"$settings")"
expect_rc 1 "a host that looks like an option is refused" plugin validate d1 "" "$(jq -c '.host = "-oProxyCommand=x"' <<<"$settings")"
expect_rc 1 "a bad port is refused" plugin validate d1 "" "$(jq -c '.port = 70000' <<<"$settings")"
expect_rc 1 "a file store with a remote host is refused" plugin validate d1 "" "$(jq -c '.host = "build.example"' <<<"$settings")"
out_has "cannot reach" "it says the store is not reachable from there"

manifest "$T/i1.json" "file://$store/runs/i1" "\"image\":\"alpine:3\""
expect_rc 1 "a manifest with an image is refused" plugin validate i1
out_has "cannot use an image" "it says why"

# sshd unreachable: a clear error.
dead=$(free_port)
expect_rc 1 "submit to a port with no sshd fails" plugin submit d1 "" "$(jq -c --argjson p "$dead" '.port = $p' <<<"$settings")"
out_has "cannot reach 127.0.0.1 over ssh (port $dead)" "the error names the host and port"
out_has '"kind":"unavailable"' "the error's kind is unavailable"
check "no run was started" test ! -e "$store/runs/d1"
# End to end: stepop submit --flavor ssh finds the plugin on PATH (docs/plugins.md).
if [ -x "$STEPOP" ] && "$STEPOP" flavor list 2>/dev/null | grep -q custom; then
    export XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
    export PATH=$ROOT/examples/flavors:$PATH
    runs=$XDG_DATA_HOME/stepop/runs
    mkdir -p "$T/cwd" && cd "$T/cwd" || exit 1
    last_run() { ls -t "$runs" | head -1; }
    printf '{"flavor": "ssh", "command": ["true"], "settings": %s}\n' "$settings" >"$T/step.json"
    expect_rc 0 "stepop flavor list shows the ssh plugin" "$STEPOP" flavor list
    check "as a plugin" grep -Eq "^ssh +plugin .*examples/flavors/stepop-flavor-ssh$" "$T/out"
    expect_rc 3 "stepop submit over ssh: the exit code comes back" "$STEPOP" submit "$T/step.json" -- sh -c 'echo e2e-out; exit 3'
    out_has "e2e-out" "the step's log streams back"
    r=$(last_run)
    is_eq "status.json: failed 3; submission.json holds the ssh handle" \
        "$(jq_py "$runs/$r/status.json" "d['phase'], d['exit_code']") $(jq_py "$runs/$r/submission.json" "d['flavor'], d['handle']['host'], d['handle']['run_id'] == '$r'")" \
        "failed 3 ssh 127.0.0.1 True"
    check "cleanup removed the remote files" sh -c "! ls '$T/remote' | grep -q 'stepop-ssh-$r'"
    before=$(ls "$runs" | wc -l)
    expect_rc 0 "submit --dry-run" "$STEPOP" submit --dry-run "$T/step.json"
    is_eq "prints the ssh argv, creates no run" "$(jq_py "$T/out" "d['requests'][0]['argv'][0], d['requests'][0]['argv'][-1]") $(ls "$runs" | wc -l)" "ssh -s $before"
    printf '#!/bin/sh\ntrap "echo e2e-term >%s/e2e.trap; exit 5" TERM\necho started >%s/e2e.ready\nwhile :; do sleep 0.1; done\n' "$T" "$T" >"$T/long.sh"
    expect_rc 0 "submit --detach" "$STEPOP" submit --detach --grace 5s "$T/step.json" -- sh "$T/long.sh"
    r=$(tr -d '\n' <"$T/out")
    for i in $(seq 300); do [ -e "$T/e2e.ready" ] && break; sleep 0.1; done
    expect_rc 0 "stepop status from another process" "$STEPOP" status "$r" --json
    is_eq "shows the ssh flavor, running" "$(jq_py "$T/out" "d['flavor'], d['phase']")" "ssh running"
    expect_rc 0 "stepop cancel --wait from another process" "$STEPOP" cancel --wait "$r"
    check "SIGTERM reached the step's trap" grep -q e2e-term "$T/e2e.trap"
    is_eq "the run ends terminated" "$(jq_py "$runs/$r/status.json" "d['phase']")" terminated
    cd "$ROOT" || exit 1
else
    echo "# stepop here has no plugin support yet: end-to-end part skipped"
fi
done_testing
