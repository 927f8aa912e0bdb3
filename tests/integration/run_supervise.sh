#!/usr/bin/env bash
# PID 1 duties of stepop run: reaping (as PID 1 in a PID namespace and as a subreaper), exit
# codes, signal forwarding to the whole group, the grace period, timeouts, logs after signals.
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms
store=$T/store

# Every exit code 0-255 comes through (plain init and manifest mode).
bad=""
for code in $(seq 0 255); do
    "$STEPOP" run -- sh -c "exit $code" </dev/null >/dev/null 2>&1
    rc=$?
    [ "$rc" = "$code" ] || bad="$bad $code->$rc"
done
is_eq "every exit code 0-255 comes through stepop run -- CMD" "$bad" ""
for code in 0 1 2 3 65 66 127 128 200 255; do
    manifest "$T/c$code.json" "file://$store/runs/c$code" "\"command\":[\"sh\",\"-c\",\"exit $code\"]"
    expect_rc "$code" "manifest mode passes exit code $code" "$STEPOP" run --manifest "$T/c$code.json"
done
for sig in TERM KILL SEGV INT HUP; do
    num=$(kill -l "$sig")
    expect_rc $((128 + num)) "a step dying of SIG$sig exits $((128 + num))" "$STEPOP" run -- sh -c "kill -$sig \$\$"
done
manifest "$T/segv.json" "file://$store/runs/segv" '"command":["sh","-c","kill -SEGV $$"]'
expect_rc 139 "SIGSEGV in manifest mode" "$STEPOP" run --manifest "$T/segv.json"
is_eq "status records the signal" "$(jq_py "$store/runs/segv/status.json" "d['signal'], d['exit_code'], d['reason']")" "11 139 user_error"

# Zombies: a step that leaves a short-lived grandchild behind sees no zombie.
zombie_step='(sleep 0.2 &) ; sleep 1; ps -eo stat=,ppid= | awk -v p=$PPID '"'"'$1 ~ /^Z/ && $2 == p'"'"' | wc -l'
expect_rc 0 "as a subreaper: an orphaned grandchild is reaped" "$STEPOP" run -- sh -c "$zombie_step"
is_eq "no zombie left under stepop" "$(tr -d ' \n' <"$T/out")" 0
if unshare --pid --fork --mount-proc true 2>/dev/null; then
    expect_rc 0 "as PID 1 in a PID namespace: orphans are reaped" unshare --pid --fork --mount-proc \
        "$STEPOP" run -- sh -c '(sleep 0.2 &) ; (sleep 0.3 &); sleep 1; echo pid1=$PPID; ps -eo stat= | awk "/^Z/ { n++ } END { print n+0 }"'
    out_has "pid1=1" "stepop is PID 1 there"
    is_eq "no zombie in the namespace" "$(tail -1 "$T/out")" 0
    expect_rc 143 "as PID 1, SIGTERM reaches the step" unshare --pid --fork --mount-proc \
        "$STEPOP" run -- sh -c 'kill -TERM 1; sleep 5'
    expect_rc 3 "as PID 1, exit codes come through" unshare --pid --fork --mount-proc "$STEPOP" run -- sh -c 'exit 3'
else
    ok "# SKIP unshare --pid is not permitted here"
fi

# Signals from outside.
run_bg() { # MANIFEST: starts stepop in the background; pid in $bg
    "$STEPOP" run --manifest "$1" >"$T/bg.out" 2>"$T/bg.err" &
    bg=$!
}
wait_for() { local i; for i in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }

cat >"$T/trap.sh" <<'SH'
trap 'echo "got TERM"; exit 7' TERM
echo started; touch "$READY"
sleep 30 & wait
SH
manifest "$T/trap.json" "file://$store/runs/trap" "\"command\":[\"sh\",\"$T/trap.sh\"],\"env\":{\"READY\":\"$T/trap.ready\"}"
run_bg "$T/trap.json"
wait_for "$T/trap.ready"
kill -TERM "$bg"
wait "$bg"
is_eq "SIGTERM reaches a step that traps it; its exit code comes through" "$?" 7
check "the step's handler ran" grep -q "got TERM" "$T/bg.out"
is_eq "status: terminated, reason terminated, exit 7" \
    "$(jq_py "$store/runs/trap/status.json" "d['phase'], d['reason'], d['exit_code']")" "terminated terminated 7"
check "the logs are complete after SIGTERM" sh -c "cat '$store'/runs/trap/logs/1/*.log | grep -q started && cat '$store'/runs/trap/logs/1/*.log | grep -q 'got TERM'"

cat >"$T/ignore.sh" <<'SH'
trap '' TERM
echo $$ >"$STEPPID"
sleep 300 &
echo $! >"$GRANDCHILD"
echo "before"; touch "$READY"
while :; do sleep 0.1; done
SH
manifest "$T/ignore.json" "file://$store/runs/ign" "\"command\":[\"sh\",\"$T/ignore.sh\"],\"grace_period\":\"1s\",
  \"env\":{\"READY\":\"$T/ign.ready\",\"GRANDCHILD\":\"$T/ign.gc\",\"STEPPID\":\"$T/ign.pid\"}"
run_bg "$T/ignore.json"
wait_for "$T/ign.ready"
steppid=$(cat "$T/ign.pid")
start=$(date +%s%N)
kill -TERM "$bg"
# The step's own end, not stepop's (which then still writes status and logs): polled every 10 ms.
while kill -0 "$steppid" 2>/dev/null && [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 10000 ]; do sleep 0.01; done
took=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$bg"
rc=$?
is_eq "a step that ignores SIGTERM is SIGKILLed after the grace period (exit 137)" "$rc" 137
check "SIGKILL came after the grace period (1 s), within 1 s more (took $took ms)" test "$took" -ge 1000 -a "$took" -le 2000
check "the grandchild was killed with the group" sh -c "! kill -0 \$(cat '$T/ign.gc') 2>/dev/null"
is_eq "status: terminated after SIGKILL" "$(jq_py "$store/runs/ign/status.json" "d['phase'], d['signal']")" "terminated 9"
check "logs are complete after the step was SIGKILLed" sh -c "cat '$store'/runs/ign/logs/1/*.log | grep -q before"

cat >"$T/group.sh" <<'SH'
sh -c 'trap "" TERM; sleep 300' &
echo $! >"$GRANDCHILD"
sleep 300 &
echo $! >>"$GRANDCHILD"
touch "$READY"
wait
SH
manifest "$T/group.json" "file://$store/runs/grp" "\"command\":[\"sh\",\"$T/group.sh\"],\"grace_period\":\"1s\",
  \"env\":{\"READY\":\"$T/grp.ready\",\"GRANDCHILD\":\"$T/grp.gc\"}"
run_bg "$T/group.json"
wait_for "$T/grp.ready"
kill -TERM "$bg"
wait "$bg"
check "SIGTERM goes to the whole group: grandchildren are gone too" sh -c "for p in \$(cat '$T/grp.gc'); do kill -0 \$p 2>/dev/null && exit 1; done; true"

cat >"$T/usr1.sh" <<'SH'
trap 'echo got USR1; exit 0' USR1
touch "$READY"
while :; do sleep 0.1; done
SH
manifest "$T/usr1.json" "file://$store/runs/usr1" "\"command\":[\"sh\",\"$T/usr1.sh\"],\"env\":{\"READY\":\"$T/usr1.ready\"}"
run_bg "$T/usr1.json"
wait_for "$T/usr1.ready"
kill -USR1 "$bg"
wait "$bg"
is_eq "SIGUSR1 is forwarded" "$?" 0
check "the step saw it" grep -q "got USR1" "$T/bg.out"

# Timeout.
manifest "$T/to.json" "file://$store/runs/to" '"command":["sh","-c","echo working; sleep 30"],"timeout":"1s","grace_period":"1s"'
expect_rc 143 "a step past its timeout gets SIGTERM (exit 143)" "$STEPOP" run --manifest "$T/to.json"
is_eq "status: failed, reason timeout" "$(jq_py "$store/runs/to/status.json" "d['phase'], d['reason']")" "failed timeout"
check "the logs are complete after the timeout" sh -c "cat '$store'/runs/to/logs/1/*.log | grep -q working"
manifest "$T/to2.json" "file://$store/runs/to2" '"command":["sh","-c","trap \"\" TERM; sleep 30"],"timeout":"1s","grace_period":"1s"'
expect_rc 137 "a step ignoring the timeout's SIGTERM is SIGKILLed" "$STEPOP" run --manifest "$T/to2.json"

# SIGTERM before the step starts.
head -c 20000000 /dev/urandom >"$T/big.bin"
if command -v node >/dev/null && start_faulty; then
    cp "$T/big.bin" "$FAULTY_ROOT/big.bin"
    manifest "$T/early.json" "file://$store/runs/early" "\"command\":[\"touch\",\"$T/early-ran\"],
      \"inputs\":[{\"name\":\"big\",\"uri\":\"$FAULTY_URL/_f/stall100000x1/big.bin\"}]"
    run_bg "$T/early.json"
    sleep 1
    kill -TERM "$bg"
    wait "$bg"
    is_eq "SIGTERM while fetching ends the run (exit 143)" "$?" 143
    check "the step never started" test ! -e "$T/early-ran"
    is_eq "status: terminated" "$(jq_py "$store/runs/early/status.json" "d['phase'], d['reason']")" "terminated terminated"
fi
done_testing
