#!/usr/bin/env bash
# stepop run --exec -- CMD: the step's command from argv, everything else from the manifest (inputs,
# outputs, status, logs, timeout, signals, exit codes) on the file store.
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms
store=$T/store
printf 'dataset\n' >"$T/data.txt"
sum=$(sha256sum "$T/data.txt" | cut -d' ' -f1)
cat >"$T/step.sh" <<'SH'
echo "argv: $*"
cat "$STEPOP_INPUT_DATA"
echo "extra=$EXTRA id=$STEPOP_RUN_ID"
echo "result $1" >"$STEPOP_OUTPUT_RESULT"
echo "last line"
SH
# The manifest's own command must not run: --exec replaces it.
manifest "$T/m.json" "file://$store/runs/x1" "\"command\":[\"sh\",\"-c\",\"echo MANIFEST-COMMAND; exit 9\"],\"workdir\":\"$T/w1\",
  \"env\":{\"EXTRA\":\"x y\"},
  \"inputs\":[{\"name\":\"data\",\"uri\":\"file://$T/data.txt\",\"sha256\":\"$sum\"}],
  \"outputs\":[{\"name\":\"result\",\"path\":\"out/r.txt\",\"format\":\"file\"}]"
expect_rc 0 "--exec runs the command from argv" "$STEPOP" run --exec --manifest "$T/m.json" -- sh "$T/step.sh" 'a b' c
out_has "argv: a b c" "its arguments come through intact"
check "the manifest's command did not run" sh -c "! grep -q MANIFEST-COMMAND '$T/out'"
out_has "dataset" "the manifest's inputs were fetched"
out_has "extra=x y id=x1" "the manifest's env and STEPOP_ variables reach the command"
s=$store/runs/x1/status.json
is_eq "status succeeded, exit 0" "$(jq_py "$s" "d['phase'], d['exit_code'], d['run_id']")" "succeeded 0 x1"
check "the output was stored" grep -q "result a b" "$store/runs/x1/outputs/result"
check "outputs.json written" test -f "$store/runs/x1/outputs.json"
cat "$store"/runs/x1/logs/1/*.log >"$T/shipped"
check "the shipped log is complete (the last line)" grep -q "last line" "$T/shipped"
check "the shipped log has stepop's own lines" grep -q "the step exited with code 0" "$T/shipped"

# STEPOP_MANIFEST, a manifest without a command, and the exit code.
manifest "$T/nocmd.json" "file://$store/runs/x2" "\"workdir\":\"$T/w2\""
STEPOP_MANIFEST=$T/nocmd.json expect_rc 3 "exit code 3 comes through (manifest from STEPOP_MANIFEST, no command in it)" \
    "$STEPOP" run --exec -- sh -c 'echo failing; exit 3'
is_eq "status failed user_error 3" "$(jq_py "$store/runs/x2/status.json" "d['phase'], d['reason'], d['exit_code']")" "failed user_error 3"
expect_rc 137 "a command killed by SIGKILL exits 137" "$STEPOP" run --exec --manifest "$T/nocmd.json" -- sh -c 'kill -KILL $$'
is_eq "status records signal 9" "$(jq_py "$store/runs/x2/status.json" "d['signal'], d['exit_code']")" "9 137"
expect_rc 127 "a command that cannot be run: 127" "$STEPOP" run --exec --manifest "$T/nocmd.json" -- /nonexistent/cmd
err_has "cannot run /nonexistent/cmd" "it says why"

# Usage errors: no command, no manifest.
expect_rc 2 "--exec without a command is a usage error" "$STEPOP" run --exec --manifest "$T/m.json"
err_has "after --" "it says where the command goes"
expect_rc 2 "--exec without a manifest is a usage error" env -u STEPOP_MANIFEST "$STEPOP" run --exec -- true
err_has "needs a manifest" "it says the manifest is required"
check "nothing was reported for the usage errors" test ! -e "$store/runs/none"

# A bad manifest: manifest_error, and a failed status where run_uri is known.
printf '{"api_version":"stepop/v1","run_id":"x3","run_uri":"file://%s/runs/x3/","inputs":[{"name":"bad"}]}\n' "$store" >"$T/bad.json"
expect_rc 65 "an invalid manifest: exit 65" "$STEPOP" run --exec --manifest "$T/bad.json" -- true
is_eq "status failed manifest_error" "$(jq_py "$store/runs/x3/status.json" "d['phase'], d['reason']")" "failed manifest_error"

# Timeout from the manifest.
manifest "$T/to.json" "file://$store/runs/x4" "\"workdir\":\"$T/w4\",\"timeout\":\"1s\",\"grace_period\":\"1s\""
expect_rc 143 "the manifest's timeout applies to the argv command" "$STEPOP" run --exec --manifest "$T/to.json" -- sleep 60
is_eq "reason timeout" "$(jq_py "$store/runs/x4/status.json" "d['phase'], d['reason']")" "failed timeout"

# SIGTERM from outside: forwarded, the trap runs, status terminated, logs complete.
cat >"$T/trap.sh" <<'SH'
trap 'echo "got TERM"; exit 7' TERM
echo started; touch "$READY"
sleep 60 & wait
SH
manifest "$T/trap.json" "file://$store/runs/x5" "\"workdir\":\"$T/w5\",\"env\":{\"READY\":\"$T/ready\"},\"grace_period\":\"20s\""
"$STEPOP" run --exec --manifest "$T/trap.json" -- sh "$T/trap.sh" >"$T/bg.out" 2>"$T/bg.err" &
bg=$!
for _ in $(seq 600); do [ -e "$T/ready" ] && break; sleep 0.05; done
kill -TERM "$bg"
wait "$bg"
is_eq "SIGTERM reaches the argv command; its exit code comes through" "$?" 7
check "its handler ran" grep -q "got TERM" "$T/bg.out"
is_eq "status terminated" "$(jq_py "$store/runs/x5/status.json" "d['phase'], d['reason'], d['exit_code']")" "terminated terminated 7"
check "the logs are complete after SIGTERM" sh -c "cat '$store'/runs/x5/logs/1/*.log | grep -q 'got TERM'"

# Without --exec the manifest's command still wins (unchanged behaviour).
expect_rc 9 "without --exec the manifest's command runs" "$STEPOP" run --manifest "$T/m.json" -- true
out_has "MANIFEST-COMMAND" "and its output shows"
done_testing
