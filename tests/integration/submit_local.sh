#!/usr/bin/env bash
# stepop submit with the embedded default (no configuration: local flavor, file store under
# $XDG_DATA_HOME/stepop), the follow loop, Ctrl-C, re-attaching, configuration and operators.
. "$(dirname "$0")/../lib.sh"
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
runs=$XDG_DATA_HOME/stepop/runs
last_run() { ls -t "$runs" | head -1; }
printf 'hello input\n' >"$T/in.txt"

expect_rc 0 "with no configuration at all, a step runs with the local flavor" \
    "$STEPOP" submit --input data="$T/in.txt" --output result=result.txt@file -- \
    sh -c 'cat data; echo "to stderr" >&2; echo 42 > result.txt'
out_has "hello input" "the step's output streams to stdout"
out_has "to stderr" "both of its streams are in the shipped log"
err_has "succeeded" "the phases and the summary go to stderr"
err_has "output result" "the summary lists the outputs"
r=$(last_run)
check "the run lives in the embedded file store" test -f "$runs/$r/status.json" -a -f "$runs/$r/manifest.json"
is_eq "its status says succeeded" "$(jq_py "$runs/$r/status.json" "d['phase']")" succeeded
is_eq "submission.json records the flavor and handle" "$(jq_py "$runs/$r/submission.json" "d['flavor'], 'pid' in d['handle']")" "local True"
check "the output was stored" grep -qx 42 "$runs/$r/outputs/result"
check "the local work directory was cleaned up" test ! -e "$runs/$r/local/work"

STEPOP_ATTEMPT=7 expect_rc 0 "a submitter that is itself attempt 7 of a step submits a new run" \
    "$STEPOP" submit -- sh -c 'echo "attempt=$STEPOP_ATTEMPT"'
out_has "attempt=1" "the new run is its own attempt 1, not the submitter's (STEPOP_ATTEMPT from the job)"
is_eq "its status says attempt 1" "$(jq_py "$runs/$(last_run)/status.json" "d['attempt']")" 1

expect_rc 5 "the step's exit code is submit's exit code" "$STEPOP" submit -- sh -c 'exit 5'
ln -s "$STEPOP" "$T/stepop-submit"
expect_rc 0 "stepop-submit is stepop submit" "$T/stepop-submit" -- true
expect_rc 0 "--json gives a JSON summary on stdout" "$STEPOP" submit --json --output o=o.txt@file -- sh -c 'echo log-line; echo x > o.txt'
check "the summary is JSON with phase, exit code, durations and outputs" python3 -c "
import json; d = json.load(open('$T/out'))
assert d['phase'] == 'succeeded' and d['exit_code'] == 0 and d['stepop_exit_code'] == 0
assert 'running' in d['durations_ms'] and d['outputs'][0]['name'] == 'o' and len(d['outputs'][0]['sha256']) == 64"
err_has "log-line" "with --json the logs go to stderr"

expect_rc 143 "--timeout ends the step (SIGTERM: 143)" "$STEPOP" submit --timeout 1s --grace 1s -- sleep 30
r=$(last_run)
is_eq "reason timeout" "$(jq_py "$runs/$r/status.json" "d['reason']")" timeout

# STEP.json, options winning over it.
cat >"$T/step.json" <<'JSON'
{"step": "demo", "command": ["sh", "-c", "echo $GREETING; exit 3"], "env": {"GREETING": "from step.json"},
 "settings": {"keep": true}}
JSON
expect_rc 3 "a STEP.json file" "$STEPOP" submit "$T/step.json"
out_has "from step.json" "its env reaches the step"
r=$(last_run)
check "its settings reach the flavor (keep: the work directory stays)" test -d "$runs/$r/local/work"
expect_rc 0 "options win over STEP.json" "$STEPOP" submit "$T/step.json" --env GREETING=from-option -- sh -c 'echo $GREETING'
out_has "from-option" "--env and -- CMD replaced STEP.json's"

# --dry-run changes nothing.
before=$(ls "$runs" | wc -l)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --input d="$T/in.txt" -- echo hi
check "it prints the manifest and the flavor's request" python3 -c "
import json; d = json.load(open('$T/out'))
assert d['flavor'] == 'local' and d['manifest']['command'] == ['echo', 'hi'] and d['requests']['argv'][1] == 'run'
assert d['manifest']['inputs'][0]['uri'].startswith('file://')"
is_eq "and starts nothing" "$(ls "$runs" | wc -l)" "$before"

# Refusals.
expect_rc 2 "an unknown flavor is a usage error" "$STEPOP" submit --flavor nope -- true
expect_rc 2 "the custom flavor without a plugin is a usage error" "$STEPOP" submit --flavor custom -- true
err_has "needs the plugin setting" "the message says what it needs"
expect_rc 2 "the local flavor refuses a memory limit it cannot enforce" "$STEPOP" submit --memory 1GiB -- true
err_has "resources.memory" "naming the field"
printf '{"command":["true"],"settings":{"kep":true}}' >"$T/badset.json"
expect_rc 2 "a misspelt setting is refused" "$STEPOP" submit "$T/badset.json"
err_has "settings.kep" "naming the setting"
printf '{"command":["true"],"timout":"1m"}' >"$T/badfield.json"
expect_rc 2 "an unknown STEP.json field is refused" "$STEPOP" submit "$T/badfield.json"
err_has "did you mean \"timeout\"" "with a hint"
printf '{"command":["true"],"flavor":"local","flavor":"docker"}' >"$T/dupfield.json"
expect_rc 2 "a STEP.json key given twice is refused" "$STEPOP" submit "$T/dupfield.json"
err_has "dupfield.json: flavor: duplicate field" "naming the file and the key"
expect_rc 2 "no command is a usage error" "$STEPOP" submit
expect_rc 2 "a bad --input is a usage error" "$STEPOP" submit --input nope -- true

# Ctrl-C: cancel, with complete logs; the second one detaches.
cat >"$T/trap.sh" <<'SH'
trap 'echo "step got TERM"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
"$STEPOP" submit -- sh "$T/trap.sh" >"$T/int.out" 2>"$T/int.err" &
sub=$!
for i in $(seq 100); do grep -q "step started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$sub"
wait "$sub"
is_eq "SIGINT to submit cancels the run; the step's exit code comes back" "$?" 9
r=$(last_run)
is_eq "the status ends terminated" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "terminated terminated"
check "the logs are complete" grep -q "step got TERM" "$T/int.out"

"$STEPOP" submit --grace 3s -- sh -c 'trap "" TERM; echo begin; while :; do sleep 0.1; done' >"$T/det.out" 2>"$T/det.err" &
sub=$!
for i in $(seq 100); do grep -q "begin" "$T/det.out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$sub"
sleep 0.3
kill -INT "$sub"
wait "$sub"
is_eq "a second Ctrl-C detaches (exit 130)" "$?" 130
r=$(last_run)
expect_rc 0 "stepop logs -f re-attaches by run id and follows to the end" "$STEPOP" logs -f "$r"
out_has "begin" "the logs from the start"
is_eq "the run went on after the detach" "$(jq_py "$runs/$r/status.json" "d['phase']")" terminated

expect_rc 0 "--detach prints the run id" "$STEPOP" submit --detach -- sh -c 'echo detached-run; sleep 1; exit 4'
r=$(tr -d '\n' <"$T/out")
check "it is a run id" test -d "$runs/$r"
expect_rc 0 "stepop logs -f RUN follows a detached run" "$STEPOP" logs -f "$r"
out_has "detached-run" "and prints its output"
expect_rc 0 "stepop status RUN" "$STEPOP" status "$r"
out_has "phase:     failed" "shows the phase"
out_has "exit code: 4" "and the exit code"
expect_rc 0 "stepop status RUN --json" "$STEPOP" status "$r" --json
is_eq "gives status.json" "$(jq_py "$T/out" "d['exit_code'], d['flavor']")" "4 local"
expect_rc 0 "stepop status by run URI" "$STEPOP" status "file://$runs/$r"
expect_rc 3 "stepop status of an unknown run exits 3" "$STEPOP" status 01NOSUCHRUN0000000000000000
expect_rc 0 "stepop logs RUN without -f" "$STEPOP" logs "$r"
out_has "detached-run" "prints what was shipped"

expect_rc 0 "stepop cancel a detached run" sh -c "r=\$('$STEPOP' submit --detach -- sleep 60) && sleep 1 && '$STEPOP' cancel --wait \$r && echo \$r"
r=$(tail -1 "$T/out")
is_eq "it ends terminated" "$(jq_py "$runs/$r/status.json" "d['phase']")" terminated
expect_rc 0 "cancelling a finished run is harmless" "$STEPOP" cancel "$r"

# submission.json comes from the store: cancel acts only on the named run's own stepop run.
# set_handle RUN PYTHON-EXPRESSIONS: edits the handle (h) in RUN's submission.json.
set_handle() {
    python3 -c "import json,sys; p=sys.argv[1]; d=json.load(open(p)); h=d['handle']; $2; json.dump(d, open(p, 'w'))" \
        "$runs/$1/submission.json"
}
start_of() { python3 -c "import sys; print(open('/proc/%s/stat' % sys.argv[1]).read().rsplit(')', 1)[1].split()[19])" "$1"; }
sleep 300 &
victim=$!
on_exit "kill $victim 2>/dev/null"
mkdir -p "$T/victim/work" && touch "$T/victim/work/precious"
expect_rc 0 "a detached run to cancel" "$STEPOP" submit --detach --grace 1s -- sleep 60
ra=$(tr -d '\n' <"$T/out")
expect_rc 0 "and another" "$STEPOP" submit --detach --grace 1s -- sleep 60
rb=$(tr -d '\n' <"$T/out")
sleep 0.5
cp "$runs/$ra/submission.json" "$T/sub-a.json"
set_handle "$ra" "h['pid'] = $victim; h['start_time'] = $(start_of $victim); h['state_dir'] = '$T/victim'"
expect_rc 4 "cancel --wait with a handle naming an unrelated process is refused" "$STEPOP" cancel --wait "$ra"
err_has "pid $victim is not the stepop run of run $ra (not a stepop run); refusing to act on it" "saying why"
check "the process was not signalled" kill -0 "$victim"
check "and nothing was removed" test -e "$T/victim/work/precious"
pb=$(jq_py "$runs/$rb/submission.json" "d['handle']['pid']")
set_handle "$ra" "h['pid'] = $pb; h['start_time'] = $(start_of "$pb")"
expect_rc 4 "a handle naming another run's stepop run is refused" "$STEPOP" cancel "$ra"
err_has "is not the stepop run of run $ra (it runs $rb)" "naming the run it belongs to"
check "that run goes on" kill -0 "$pb"
cp "$runs/$rb/submission.json" "$T/sub-b.json"
cp "$T/sub-a.json" "$runs/$rb/submission.json"
expect_rc 4 "another run's submission.json copied into a run is refused (the run named on the command line counts)" \
    "$STEPOP" cancel "$rb"
err_has "is not the stepop run of run $rb (it runs $ra)" "naming both"
check "neither run was signalled" sh -c "kill -0 $pb && kill -0 $(jq_py "$T/sub-a.json" "d['handle']['pid']")"
cp "$T/sub-b.json" "$runs/$rb/submission.json"
cp "$T/sub-a.json" "$runs/$ra/submission.json"
set_handle "$ra" "h['state_dir'] = '$T/victim'"
expect_rc 0 "cancel --wait of the real process with a forged state_dir" "$STEPOP" cancel --wait "$ra"
is_eq "the run is cancelled" "$(jq_py "$runs/$ra/status.json" "d['phase']")" terminated
err_has "state_dir $T/victim is not the run's own work place; not removed" "but the forged directory is not removed"
check "it is still there" test -e "$T/victim/work/precious"
expect_rc 0 "the untouched run cancels as before" "$STEPOP" cancel --wait "$rb"
is_eq "it ends terminated" "$(jq_py "$runs/$rb/status.json" "d['phase']")" terminated
check "and its work directory is cleaned up" test ! -e "$runs/$rb/local/work"

# A job that dies without a final status: the flavor's report fills it in.
"$STEPOP" submit -- sh -c 'echo alive; sleep 60' >"$T/lost.out" 2>"$T/lost.err" &
sub=$!
for i in $(seq 100); do grep -q alive "$T/lost.out" 2>/dev/null && break; sleep 0.1; done
r=$(last_run)
pkill -KILL -f "stepop run" -s "$(jq_py "$runs/$r/submission.json" "d['handle']['pid']")"
wait "$sub"
is_eq "the entrypoint killed outright: submit exits with its code" "$?" 137
is_eq "status.json is filled in from the flavor" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason'], d['exit_code']")" \
    "failed internal 137"
check "the message says no final status came" grep -q "without a final status" "$runs/$r/status.json"

# Configuration: operators like ZenML's registered step operators.
cat >"$T/cwd/stepop.json" <<JSON
{"store": "file://$T/otherstore", "default_operator": "here",
 "operators": {"here": {"flavor": "local", "settings": {"keep": true}}, "box": {"flavor": "docker", "settings": {}}}}
JSON
expect_rc 0 "operator list" "$STEPOP" operator list
out_has "here" "lists the operators"
out_has "(default)" "marks the default"
expect_rc 0 "operator describe" "$STEPOP" operator describe here
is_eq "describes its flavor and settings" "$(jq_py "$T/out" "d['flavor'], d['settings']['keep'], d['state']")" "local True available"
expect_rc 2 "describing an unknown operator" "$STEPOP" operator describe nope
expect_rc 0 "a step with the default operator and the configured store" "$STEPOP" submit -- echo configured
check "the run went to the configured store" sh -c "ls '$T/otherstore/runs' | grep -q ."
err_has "configuration $T/cwd/stepop.json" "the submit banner names the configuration file"
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run -- true
is_eq "names it too" "$(jq_py "$T/out" "d['config']")" "$T/cwd/stepop.json"
chmod g+w stepop.json
expect_rc 0 "a group-writable ./stepop.json" "$STEPOP" operator list
err_has "ignoring configuration $T/cwd/stepop.json: it is group-writable (mode 0664)" "is ignored with a warning saying why"
out_has "config: (none" "and not used"
chmod 606 stepop.json
expect_rc 0 "a world-writable one" "$STEPOP" submit --dry-run -- true
err_has "it is world-writable" "is ignored too"
is_eq "--dry-run says no configuration was used" "$(jq_py "$T/out" "d['config']")" "none (the embedded default)"
chmod 644 stepop.json
if [ "$(id -u)" = 0 ]; then
    chown 65534 stepop.json
    expect_rc 0 "a ./stepop.json owned by someone else" "$STEPOP" operator list
    err_has "ignoring configuration $T/cwd/stepop.json: it belongs to uid 65534, not to you (uid 0)" "is ignored with a warning"
    out_has "config: (none" "and not used"
    chown 0 stepop.json
fi
mkdir -p "$XDG_CONFIG_HOME/stepop"
printf '{"default_operator": "u", "operators": {"u": {"flavor": "local"}}}' >"$XDG_CONFIG_HOME/stepop/config.json"
chmod 664 "$XDG_CONFIG_HOME/stepop/config.json" stepop.json
expect_rc 0 "the user's own configuration file follows the same rule" "$STEPOP" operator list
err_has "ignoring configuration $XDG_CONFIG_HOME/stepop/config.json: it is group-writable" "and is named when ignored"
chmod 644 "$XDG_CONFIG_HOME/stepop/config.json"
expect_rc 0 "a safe one is used when ./stepop.json is not" "$STEPOP" operator list
out_has "config: $XDG_CONFIG_HOME/stepop/config.json" "it is the one in use"
rm "$XDG_CONFIG_HOME/stepop/config.json"
chmod 644 stepop.json
expect_rc 0 "flavor list" "$STEPOP" flavor list
for f in local docker kubernetes sagemaker vertex azureml spark modal custom; do
    out_has "$f " "flavor list names $f"
done
check "local, sagemaker, vertex, azureml, spark and modal and custom (plugins) are available" sh -c "grep -q '^local *available' '$T/out' && grep -q '^sagemaker *available' '$T/out' && grep -q '^vertex *available' '$T/out' && grep -q '^azureml *available' '$T/out' && grep -q '^spark *available' '$T/out' && grep -q '^modal *available' '$T/out' && grep -q '^custom *available' '$T/out'"
printf '{"store": 5}' >"$T/cwd/stepop.json"
expect_rc 2 "a broken configuration is a usage error" "$STEPOP" submit -- true
done_testing
