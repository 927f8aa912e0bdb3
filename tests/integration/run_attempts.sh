#!/usr/bin/env bash
# STEPOP_ATTEMPT_FROM_STATUS: a platform that starts the step again by itself (the kubernetes
# flavor's backoffLimit) gives every start the same environment; `stepop run` counts on from the
# run's status.json, so each start is the next attempt with its own logs/<attempt>/.
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms
store=$T/store
run=file://$store/runs/r1
mkdir -p "$store/runs/r1"
manifest "$store/runs/r1/manifest.json" "$run" "\"command\":[\"sh\",\"-c\",\"echo attempt=\$STEPOP_ATTEMPT; exit 3\"]"
s=$store/runs/r1/status.json
printf '{"run_id":"r1","attempt":1,"phase":"pending"}\n' >"$s"
export STEPOP_MANIFEST=$run/manifest.json
start() { expect_rc 3 "$1" env STEPOP_ATTEMPT="$2" ${3:+STEPOP_ATTEMPT_FROM_STATUS=$3} "$STEPOP" run; }

start "the first start, after the submitter's pending status" 1 1
out_has "attempt=1" "is attempt 1"
is_eq "its status says attempt 1" "$(jq_py "$s" "d['attempt']")" 1
check "its logs are under logs/1/" test -s "$store/runs/r1/logs/1/00000000.log"
start "the platform starts the step again" 1 1
out_has "attempt=2" "the same environment makes attempt 2"
err_has "attempt 2: the run's status shows attempt 1 (failed), so the platform started the step again" "and says why"
is_eq "its status says attempt 2" "$(jq_py "$s" "d['attempt']")" 2
check "attempt 1's logs stay" grep -q "attempt=1" "$store/runs/r1/logs/1/00000000.log"
check "attempt 2's logs are beside them" grep -q "attempt=2" "$store/runs/r1/logs/2/00000000.log"
start "a later submission's own attempt" 5 1
out_has "attempt=5" "stands when the status shows an earlier one"
start "without STEPOP_ATTEMPT_FROM_STATUS" 1
out_has "attempt=1" "STEPOP_ATTEMPT is taken as it is"
printf '{"run_id":"other","attempt":7,"phase":"failed"}\n' >"$s"
start "a status of another run" 1 1
out_has "attempt=1" "is not counted from"
rm -f "$s"
start "no status at all" 2 1
out_has "attempt=2" "leaves the given attempt"
done_testing
