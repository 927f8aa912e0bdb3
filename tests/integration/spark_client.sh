#!/usr/bin/env bash
# The spark flavor in client mode (master local[*]) with tests/servers/spark_submit_standin.py as
# spark-submit: the exact argv, the driver under a local `stepop run --exec`, inputs and outputs,
# exit codes, Ctrl-C and stepop cancel (SIGTERM reaches the driver), --detach with status and logs,
# --dry-run, refusals before anything runs, and no credential in any output.
. "$(dirname "$0")/../lib.sh"
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd"
cd "$T/cwd" || exit 1
runs=$XDG_DATA_HOME/stepop/runs
last_run() { ls -t "$runs" | head -1; }
STANDIN=$ROOT/tests/servers/spark_submit_standin.py
export SPARK_STANDIN_ARGV=$T/argv.json
unset SPARK_HOME
printf 'hello input\n' >"$T/in.txt"
cat >"$T/job.py" <<'PY'
import os, signal, sys, time
mode = sys.argv[1]
if mode == "ok":
    print("driver read:", open(os.environ["STEPOP_INPUT_DATA"]).read().strip(), "mode", os.environ.get("MODE"))
    open(os.environ["STEPOP_OUTPUT_RESULT"], "w").write("answer 42\n")
    print("last line", flush=True)
elif mode == "fail":
    print("failing on purpose", flush=True)
    sys.exit(3)
elif mode == "trap":
    def term(*_):
        print("driver got TERM", flush=True)
        sys.exit(9)
    signal.signal(signal.SIGTERM, term)
    print("driver started", flush=True)
    while True:
        time.sleep(0.1)
elif mode == "slow":
    print("slow-start", flush=True)
    time.sleep(3)
    print("slow-end", flush=True)
    sys.exit(4)
PY
step() { # FILE MODE [EXTRA-SETTINGS]
    cat >"$1" <<JSON
{"flavor": "spark", "command": ["local://$T/job.py", "$2"], "env": {"MODE": "m1"},
 "settings": {"master": "local[*]", "spark_submit": "$STANDIN"${3:+, $3}}}
JSON
}

# --- 3, 1: success with an input and an output ---
step "$T/ok.json" ok
expect_rc 0 "a Python application runs in client mode under stepop run" \
    "$STEPOP" submit "$T/ok.json" --input data="$T/in.txt" --output result=result.txt@file
out_has "driver read: hello input mode m1" "the driver reads the fetched input and the step's env"
out_has "last line" "the last line is in the logs"
r=$(last_run)
is_eq "the argv spark-submit got, exactly" "$(python3 -c "import json; print(' '.join(json.load(open('$T/argv.json'))))")" \
    "--master local[*] --deploy-mode client --name $r --conf spark.executorEnv.MODE=m1 local://$T/job.py ok"
is_eq "status succeeded" "$(jq_py "$runs/$r/status.json" "d['phase'], d['exit_code']")" "succeeded 0"
check "the output was stored" grep -q "answer 42" "$runs/$r/outputs/result"
check "outputs.json written" test -f "$runs/$r/outputs.json"
check "the handle is a client-mode one" python3 -c "
import json; d = json.load(open('$runs/$r/submission.json')); h = d.get('handle', d)
assert h['mode'] == 'client' and h['pid'] > 1, d"

# --- 1: the exit code ---
step "$T/fail.json" fail
expect_rc 3 "the driver's exit code 3 comes back" "$STEPOP" submit "$T/fail.json"
r=$(last_run)
is_eq "status failed user_error 3" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason'], d['exit_code']")" "failed user_error 3"

# --- 5: timeout ---
step "$T/slow0.json" slow
expect_rc 143 "the manifest's timeout ends the driver" "$STEPOP" submit --timeout 1s --grace 2s "$T/slow0.json"
r=$(last_run)
is_eq "reason timeout" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "failed timeout"

# --- 4: Ctrl-C at the submitter: the driver gets SIGTERM ---
step "$T/trap.json" trap
"$STEPOP" submit "$T/trap.json" >"$T/int.out" 2>"$T/int.err" &
sub=$!
for _ in $(seq 600); do grep -q "driver started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$sub"
wait "$sub"
is_eq "Ctrl-C cancels; the driver's trap exit code comes back" "$?" 9
r=$(last_run)
is_eq "status terminated" "$(jq_py "$runs/$r/status.json" "d['phase'], d['reason']")" "terminated terminated"
check "the logs are complete" grep -q "driver got TERM" "$T/int.out"

# --- 9: --detach, status, logs -f, cancel ---
step "$T/slow.json" slow
expect_rc 0 "--detach" "$STEPOP" submit --detach "$T/slow.json"
r=$(tr -d '\n' <"$T/out")
expect_rc 0 "stepop logs -f follows it to the end" "$STEPOP" logs -f "$r"
out_has "slow-start" "from the start"
out_has "slow-end" "to the end"
for _ in $(seq 100); do [ "$(jq_py "$runs/$r/status.json" "d['phase']")" = failed ] && break; sleep 0.1; done
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
is_eq "the final status and the flavor" "$(jq_py "$T/out" "d['phase'], d['exit_code'], d['flavor']")" "failed 4 spark"
expect_rc 0 "stepop cancel --wait a detached run" \
    sh -c "r=\$('$STEPOP' submit --detach '$T/trap.json') && for i in \$(seq 100); do grep -q 'driver started' '$runs'/\$r/logs/1/*.log 2>/dev/null && break; sleep 0.1; done; '$STEPOP' cancel --wait \$r && echo \$r"
r=$(tail -1 "$T/out")
is_eq "the cancelled run is terminated, the driver's trap ran" \
    "$(jq_py "$runs/$r/status.json" "d['phase'], d['exit_code']")" "terminated 9"

# --- 8: --dry-run creates nothing and shows the argv ---
before=$(ls "$runs" | wc -l)
step "$T/dry.json" ok '"conf": {"spark.sql.shuffle.partitions": "8"}'
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run "$T/dry.json"
check "it shows stepop run --exec around spark-submit" python3 -c "
import json,sys; d = json.load(open('$T/out'))
r = d['requests']['requests']
a = r[0]['argv']
assert a[1:4] == ['run', '--exec', '--'] and a[4] == '$STANDIN', a
assert 'spark.sql.shuffle.partitions=8' in a, a"
is_eq "nothing was created" "$(ls "$runs" | wc -l)" "$before"

# --- 7, 12: refusals before anything runs ---
step "$T/bad1.json" ok '"nope": 1'
expect_rc 2 "an unknown setting is refused" "$STEPOP" submit "$T/bad1.json"
err_has "settings.nope: not a setting of the spark flavor" "naming it"
step "$T/bad2.json" ok '"deploy_mode": "cluster"'
expect_rc 2 "cluster mode on local is refused in Spark's words" "$STEPOP" submit "$T/bad2.json"
err_has "Cluster deploy mode is not compatible with master \"local\"" "Spark's own reason"
step "$T/bad3.json" ok
expect_rc 2 "resources.cpu in client mode is refused" "$STEPOP" submit --cpu 2 "$T/bad3.json"
err_has "resources.cpu" "naming the field"
step "$T/bad4.json" ok '"conf": {"spark.hadoop.fs.s3a.secret.key": "wJalrXUtnFEMI-not-a-real-key"}'
expect_rc 2 "a credential in conf is refused" "$STEPOP" submit "$T/bad4.json"
check "and the value is printed nowhere" sh -c "! grep -q wJalrXUtnFEMI '$T/out' '$T/err'"
is_eq "none of the refusals created a run" "$(ls "$runs" | wc -l)" "$before"
done_testing
