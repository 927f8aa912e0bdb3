#!/usr/bin/env bash
# Flavor plugins (docs/plugins.md): discovery on PATH and by the plugin setting, flavor list,
# submit end to end on the file store with a local-as-plugin (tests/plugins/stepop-flavor-bg),
# dry-run, detach and re-attach from other processes, and a misbehaving plugin
# (tests/plugins/stepop-flavor-odd): garbage, errors, bad schemas, timeouts.
. "$(dirname "$0")/../lib.sh"
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms TMPDIR=$T
mkdir -p "$HOME" "$T/cwd" "$T/bin"
cd "$T/cwd" || exit 1
BASE_PATH=$PATH
export PATH=$ROOT/tests/plugins:$BASE_PATH
runs=$XDG_DATA_HOME/stepop/runs
last_run() { ls -t "$runs" | head -1; }
# step FILE FLAVOR SETTINGS-JSON: a STEP.json running `true` with those settings.
step() { printf '{"flavor": "%s", "command": ["true"], "settings": %s}\n' "$2" "$3" >"$1"; }

expect_rc 0 "stepop flavor list" "$STEPOP" flavor list
check "it shows the plugins found on PATH, marked as plugins" grep -Eq "^bg +plugin .*tests/plugins/stepop-flavor-bg$" "$T/out"
out_has "custom      available" "custom is available"
expect_rc 0 "stepop flavor list --json" "$STEPOP" flavor list --json
is_eq "plugins have plugin: true and their path" "$(jq_py "$T/out" "[(f['flavor'], f['path'].endswith('/stepop-flavor-odd')) for f in d if f.get('plugin')]")" \
    "[('bg', False), ('odd', True)]"
ln -s "$ROOT/tests/plugins/stepop-flavor-bg" "$T/bin/stepop-flavor-docker"
PATH=$T/bin:$PATH expect_rc 0 "a plugin named like a built-in flavor" "$STEPOP" flavor list --json
is_eq "is not listed (built-ins win)" "$(jq_py "$T/out" "sum(1 for f in d if f['flavor'] == 'docker')")" 1

# End to end with the local-as-plugin.
expect_rc 4 "submit --flavor bg runs stepop-flavor-bg from PATH; the exit code comes back" \
    "$STEPOP" submit --flavor bg -- sh -c 'echo out-line; echo err-line >&2; exit 4'
out_has "out-line" "the step's logs stream"
err_has "bg plugin: submit" "the plugin's stderr reaches the user"
r=$(last_run)
is_eq "status.json: failed, exit code 4" "$(jq_py "$runs/$r/status.json" "d['phase'], d['exit_code']")" "failed 4"
is_eq "submission.json records the flavor, the plugin and the handle" \
    "$(jq_py "$runs/$r/submission.json" "d['flavor'], d['settings']['plugin']['path'].endswith('/stepop-flavor-bg'), type(d['handle']['pid']).__name__, d['handle']['run_id'] == '$r'")" \
    "bg True int True"
check "cleanup ran (the plugin's work directory is gone)" test ! -e "$T/stepop-bg-plugin-$(id -u)/$r"
expect_rc 0 "a step that succeeds" "$STEPOP" submit --flavor bg --output o=o.txt@file -- sh -c 'echo 42 > o.txt'
check "its output was stored" grep -qx 42 "$runs/$(last_run)/outputs/o"

before=$(ls "$runs" | wc -l)
expect_rc 0 "--dry-run with a plugin" "$STEPOP" submit --dry-run --flavor bg -- echo hi
is_eq "prints the plugin's argv as the request" "$(jq_py "$T/out" "d['flavor'], d['requests'][0]['argv'][1:2]")" "bg ['run']"
is_eq "and creates no run" "$(ls "$runs" | wc -l)" "$before"
step "$T/bogus.json" bg '{"bogus": 1}'
expect_rc 2 "the plugin's validate refuses a setting it does not know" "$STEPOP" submit "$T/bogus.json"
err_has "flavor bg: plugin bg (" "the message names the plugin"
err_has "operation validate: settings.bogus: not a setting of the bg plugin" "the operation and the plugin's words"

# Detach, then status/logs/cancel from other processes.
expect_rc 0 "--detach" "$STEPOP" submit --detach --flavor bg -- sh -c 'echo detached-run; sleep 1; exit 3'
r=$(tr -d '\n' <"$T/out")
expect_rc 0 "stepop logs -f follows it" "$STEPOP" logs -f "$r"
out_has "detached-run" "with its output"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
is_eq "shows the plugin flavor and the exit code" "$(jq_py "$T/out" "d['flavor'], d['exit_code']")" "bg 3"
expect_rc 0 "a long detached run" "$STEPOP" submit --detach --grace 2s --flavor bg -- sleep 60
r=$(tr -d '\n' <"$T/out")
sleep 1
PATH=$BASE_PATH expect_rc 2 "cancel where the plugin is not on PATH fails" "$STEPOP" cancel "$r"
err_has "no stepop-flavor-bg on PATH" "naming the plugin it looked for"
expect_rc 0 "stepop cancel --wait asks the plugin" "$STEPOP" cancel --wait "$r"
is_eq "the run ends terminated" "$(jq_py "$runs/$r/status.json" "d['phase']")" terminated

# The plugin setting of an operator.
cp "$ROOT/tests/plugins/stepop-flavor-bg" "$T/bin/site-runner"
mkdir -p "$XDG_CONFIG_HOME/stepop"
cat >"$XDG_CONFIG_HOME/stepop/config.json" <<JSON
{"operators": {"hpc": {"flavor": "custom", "settings": {"plugin": "$T/bin/site-runner", "label": "x"}},
               "rel": {"flavor": "custom", "settings": {"plugin": "bin/site-runner"}}}}
JSON
chmod 600 "$XDG_CONFIG_HOME/stepop/config.json"
expect_rc 0 "an operator's plugin setting names the executable" "$STEPOP" submit --operator hpc -- echo via-setting
out_has "via-setting" "the step ran"
is_eq "settings other than plugin's own reach the plugin" "$(jq_py "$runs/$(last_run)/submission.json" "d['settings']['label'], d['settings']['plugin']['path']")" \
    "x $T/bin/site-runner"
expect_rc 2 "a relative plugin path is refused" "$STEPOP" submit --operator rel -- true
err_has "expected an absolute path or a name on PATH" "with why"
expect_rc 2 "the custom flavor without the plugin setting" "$STEPOP" submit --flavor custom -- true
err_has "the custom flavor needs the plugin setting" "says what it needs"
expect_rc 2 "an unknown flavor with no plugin" "$STEPOP" submit --flavor nope -- true
err_has 'unknown flavor "nope": no built-in flavor and no stepop-flavor-nope on PATH' "says where it looked"
expect_rc 0 "a detached run of the operator" "$STEPOP" submit --detach --grace 1s --operator hpc -- sleep 60
r=$(tr -d '\n' <"$T/out")
sleep 1
python3 - "$runs/$r/submission.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["settings"]["plugin"] = {"name": "custom", "path": "/bin/rm", "setting": "/bin/rm"}
json.dump(d, open(sys.argv[1] + ".forged", "w"))
PY
mv "$runs/$r/submission.json" "$runs/$r/submission.json.real"
cp "$runs/$r/submission.json.forged" "$runs/$r/submission.json"
expect_rc 4 "a submission.json naming a program no operator names is refused" "$STEPOP" cancel "$r"
err_has "submission.json names the plugin /bin/rm" "naming it"
mv "$runs/$r/submission.json.real" "$runs/$r/submission.json"
expect_rc 0 "the real one cancels through the operator's plugin" "$STEPOP" cancel --wait "$r"
is_eq "terminated" "$(jq_py "$runs/$r/status.json" "d['phase']")" terminated

# A misbehaving plugin.
odd() { # EXIT DESC MODE OP [EXTRA-SETTINGS-JSON [OPTION...]]
    local want=$1 desc=$2 mode=$3 op=$4 extra=${5:-}
    shift 4
    [ $# -gt 0 ] && shift
    step "$T/odd.json" odd "{\"mode\": \"$mode\", \"op\": \"$op\"${extra:+, $extra}}"
    expect_rc "$want" "$desc" "$STEPOP" submit "$T/odd.json" --pending-timeout 4s "$@"
}
odd 2 "garbage from validate" garbage validate
err_has "plugin odd ($ROOT/tests/plugins/stepop-flavor-odd), operation validate: the answer is not a JSON object" "names plugin, path, operation"
err_has 'it printed "Traceback (most recent call last):\x01 not json' "quotes the first bytes, escaped"
check "bounded" sh -c "! grep -q 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' '$T/err'"
odd 2 "an error answer from validate" error validate
err_has "operation validate: partition nope does not exist" "carries the plugin's message"
odd 2 "a plugin exiting 3 without an answer" exit3 validate
err_has 'operation validate: exited with status 3; it printed "half an answer"' "says how it exited and what it printed"
odd 71 "a submit answer without a handle object" badschema submit
err_has "operation submit: submit answer: handle: expected an object" "names what breaks the schema"
odd 2 "a render answer breaking the schema" badschema render "" --dry-run
err_has "render answer: requests: expected an array" "is an error"
odd 73 "poll answers breaking the schema are warnings; the pending timeout ends the run" badschema poll \
    "\"marker\": \"$T/cancelled\""
err_has "operation poll: poll answer: state.phase: expected one of pending, running, exited, terminated, gone, cannot_start" "naming the phase"
odd 71 "a job that cannot start" ok none
err_has "odd never starts anything" "the plugin's message"
is_eq "status.json says failed" "$(jq_py "$runs/$(last_run)/status.json" "d['phase']")" failed
odd 2 "a bad plugin_timeout" ok none '"plugin_timeout": {"sumbit": 3}'
err_has "settings.plugin_timeout.sumbit: not an operation" "names the key"
start=$(date +%s)
odd 2 "a plugin that hangs" hang validate "\"plugin_timeout\": 1, \"pidfile\": \"$T/hang.pid\""
err_has "operation validate: gave no answer within 1000 ms" "times out"
check "within a few seconds" test $(($(date +%s) - start)) -lt 15
sleep 0.5
# Gone, or a zombie its new parent has not reaped yet.
check "its process group was killed (the child holding stdout too)" \
    sh -c "p=\$(cat '$T/hang.pid') && ! { [ -e /proc/\$p/stat ] && [ \"\$(cut -d' ' -f3 /proc/\$p/stat)\" != Z ]; }"
done_testing
