#!/usr/bin/env bash
# Runs each libFuzzer target given for FUZZ_SECONDS (default 60) from its seed corpus
# tests/fuzz/corpus/<target>/, which stays as written: inputs the fuzzer finds go to
# build/fuzz/corpus/<target>/, crashes to build/fuzz/crashes/<target>/. Prints one line per
# target (executions, executions/s) and fails if any target crashed.
# Usage: tests/fuzz/run.sh build/fuzz/fuzz_NAME...
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
status=0
for bin in "$@"; do
    name=$(basename "$bin" | sed 's/^fuzz_//')
    corpus=build/fuzz/corpus/$name
    crashes=build/fuzz/crashes/$name
    log=build/fuzz/$name.log
    mkdir -p "$corpus" "$crashes"
    "$bin" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 -timeout=20 -rss_limit_mb=2048 \
        -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    if [ "$rc" -eq 0 ]; then
        printf '%-10s %12s executions %8s/s in %ss\n' "$name" "${execs:-?}" "${rate:-?}" "$secs"
    else
        printf '%-10s FAILED (exit %d) after %s executions; log %s, input in %s\n' "$name" "$rc" "${execs:-?}" "$log" "$crashes"
        grep -aE '^(==[0-9]+==ERROR|SUMMARY|fuzz_assert|.*runtime error)' "$log" | head -5 | sed 's/^/    /'
        status=1
    fi
done
exit $status
