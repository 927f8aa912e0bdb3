#!/usr/bin/env bash
# Runs the unit tests (plain and under ASan/UBSan), the integration tests (integration/tsan runs
# build/tsan/stepop, skipped when it is not built) and, when they are built (make fuzz-build), the
# fuzz targets, one result each; ends with "N passed, N failed, N skipped".
# Usage: tests/run.sh [all|unit|integration|fuzz] [NAME-FILTER]
# Each test prints TAP. A result "ok ... # SKIP why" counts as skipped, not passed, and so does a
# whole test that says "1..0 # SKIP why". A test fails when it prints "not ok", exits non-zero,
# prints no plan ("1..N") or fewer or more results than its plan (it died part way).
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
filter=${2:-}
logs=build/test-logs
mkdir -p "$logs"
passed=0
failed=0
skipped=0
failures=()

run_one() { # NAME CMD...
    local name=$1 log rc p f
    shift
    log="$logs/$(echo "$name" | tr '/ ' '__').log"
    local start=$SECONDS
    timeout "${TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1
    rc=$?
    local results s plans plan skip_all=""
    # Results are numbered ("ok 3 - ..."), as tests/lib.sh and tests/unit/tap.h print them.
    results=$(grep -cE '^(not )?ok [0-9]+( |$)' "$log")
    s=$(grep -ciE '^ok [0-9]+( -)? *[^#]*# *skip' "$log")
    f=$(grep -cE '^not ok [0-9]+( |$)' "$log")
    p=$((results - s - f))
    plans=$(grep -cE '^1\.\.[0-9]+' "$log")
    plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$log" | tail -1)
    if grep -qiE '^1\.\.0 *# *skip' "$log"; then
        skip_all=$(sed -nE 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *//p' "$log")
        s=$((s + 1))
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=$((f + 1)) # crashed or timed out without saying what failed
        echo "not ok - $name exited with status $rc" >>"$log"
    fi
    # A test that exited non-zero has failed already; a wrong plan is news only after exit 0.
    if [ "$rc" -ne 0 ]; then
        :
    elif [ "$plans" -ne 1 ]; then
        f=$((f + 1))
        echo "not ok - $name printed $plans plans (1..N), want one: it died early or its output is garbled" >>"$log"
    elif [ "$plan" -ne "$results" ]; then
        f=$((f + 1))
        echo "not ok - $name planned $plan results and printed $results" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    printf '%-44s %4d passed %3d failed %3d skipped %4ds%s\n' "$name" "$p" "$f" "$s" $((SECONDS - start)) \
        "${skip_all:+ (skipped: $skip_all)}"
    # Skipped results are shown, so that what did not run is seen.
    grep -iE '^ok [0-9]+( -)? *[^#]*# *skip' "$log" | sed 's/^/    /' | head -20
    if [ "$f" -gt 0 ]; then
        failures+=("$name")
        grep -A12 '^not ok' "$log" | sed 's/^/    /' | head -60
    fi
}

# With STEPOP_TESTBED_BUILD=1 (CI) the Kubernetes test bed may still be building in the
# background (.ci/run): wait for it once, before the first kube_* test, outside the per-test
# timeout (build.sh waits on the build's lock, or builds the bed itself).
kbed_waited=0
kbed_wait() {
    [ "${STEPOP_TESTBED_BUILD:-0}" = 1 ] && [ "$kbed_waited" = 0 ] || return 0
    kbed_waited=1
    local start=$SECONDS
    if tests/testbeds/kubernetes/build.sh >"$logs/kbed-build.log" 2>&1; then
        echo "(the Kubernetes test bed was ready after $((SECONDS - start)) s of waiting)"
    else
        echo "(the Kubernetes test bed did not build: $logs/kbed-build.log; its tests will say so)"
    fi
}
# The container tests (those that start Podman or the Kubernetes bed: start_podman, start_kbed)
# spend most of their time waiting on containers, so they run in the background, TEST_JOBS at a
# time (default 3; 0 runs them in order with the others) at nice 10, while the rest runs in the
# foreground. Their results are printed and counted at the end; each may take TEST_TIMEOUT_POOL
# seconds (default 1800), since they share the machine.
pool_dir=$logs/pool
pool_pid=""
pool_tests=()
if { [ "$what" = all ] || [ "$what" = integration ]; } && [ "${TEST_JOBS:-3}" -gt 0 ]; then
    # The longest first, so that it does not end alone at the end.
    for t in tests/integration/dockerfile_cuda.sh tests/integration/*.sh; do
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        grep -qE '^[^#]*(start_podman|start_kbed)' "$t" || continue
        case " ${pool_tests[*]} " in *" $t "*) continue ;; esac
        pool_tests+=("$t")
    done
fi
pool_run() { # TESTS...: TEST_JOBS at a time; NAME.out holds the result line, NAME.counts the sums
    local t name
    for t in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "${TEST_JOBS:-3}" ]; do wait -n; done
        name=$(basename "$t" .sh)
        (
            passed=0 failed=0 skipped=0 failures=()
            case "$t" in */kube_* | */conformance_kubernetes.sh | */conformance_spark.sh) kbed_wait >/dev/null ;; esac
            TEST_TIMEOUT=${TEST_TIMEOUT_POOL:-1800} run_one "integration/$name" bash "$t" >"$pool_dir/$name.out"
            echo "$passed $failed $skipped ${failures[*]}" >"$pool_dir/$name.counts"
        ) &
    done
    wait
}
pool_start() {
    [ ${#pool_tests[@]} -gt 0 ] || return 0
    rm -rf "$pool_dir"
    mkdir -p "$pool_dir"
    # The images they share are built once, before they start side by side.
    if ! tests/tools/podman_prepare.sh >"$logs/podman-prepare.log" 2>&1; then
        echo "(building the shared test images failed: $logs/podman-prepare.log; the container tests will say why)"
    fi
    ( renice -n 10 -p "$BASHPID" >/dev/null; pool_run "${pool_tests[@]}" ) &
    pool_pid=$!
}
pool_collect() {
    [ -n "$pool_pid" ] || return 0
    wait "$pool_pid"
    local t name p f s rest
    for t in "${pool_tests[@]}"; do
        name=$(basename "$t" .sh)
        cat "$pool_dir/$name.out" 2>/dev/null
        if read -r p f s rest <"$pool_dir/$name.counts" 2>/dev/null; then
            passed=$((passed + p))
            failed=$((failed + f))
            skipped=$((skipped + s))
            [ -z "$rest" ] || failures+=("$rest")
        else
            failed=$((failed + 1))
            failures+=("integration/$name")
            echo "not ok - integration/$name left no result (the background run died)"
        fi
    done
}
pool_start

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in build/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        run_one "unit/$(basename "$t")" "$t"
    done
    for t in build/asan/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            run_one "asan/$(basename "$t")" "$t"
    done
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
    for t in tests/integration/*.sh; do
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        case " ${pool_tests[*]} " in *" $t "*) continue ;; esac
        case "$t" in */kube_* | */conformance_kubernetes.sh | */conformance_spark.sh) kbed_wait ;; esac
        run_one "integration/$(basename "$t" .sh)" bash "$t"
    done
    # Real-GPU checks; they skip where there is no GPU.
    for t in tests/gpu/*.sh; do
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        run_one "gpu/$(basename "$t" .sh)" bash "$t"
    done
fi
# The same binary built with ASan/UBSan, through the tests that exercise the most code.
if { [ "$what" = all ] || [ "$what" = integration ]; } && [ -x build/asan/stepop ]; then
    for t in ${ASAN_INTEGRATION:-artifact_http artifact_direct evil_archives http_faults http_ranged run_lifecycle run_logs gpu_check s3 gcs_resumable submit_local}; do
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        STEPOP=$PWD/build/asan/stepop ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            run_one "asan-integration/$t" bash "tests/integration/$t.sh"
    done
fi
# The static binary (make static), when it is built, through the tests that use its libraries most.
if { [ "$what" = all ] || [ "$what" = integration ]; } && [ -x build/stepop-static ]; then
    for t in ${STATIC_INTEGRATION:-artifact_http evil_archives http_faults interop tls run_lifecycle run_supervise run_logs gpu_check}; do
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        STEPOP=$PWD/build/stepop-static run_one "static-integration/$t" bash "tests/integration/$t.sh"
    done
fi
# Fuzz targets (make fuzz-build), FUZZ_SECONDS each (default 10 here; make fuzz runs 60).
if [ "$what" = all ] || [ "$what" = fuzz ]; then
    for t in build/fuzz/fuzz_*; do
        [ -x "$t" ] || continue
        case "$t" in *"$filter"*) ;; *) continue ;; esac
        FUZZ_SECONDS=${FUZZ_SECONDS:-10} run_one "fuzz/$(basename "$t" | sed 's/^fuzz_//')" tests/fuzz/tap.sh "$t"
    done
fi
pool_collect
if [ ${#failures[@]} -gt 0 ]; then
    echo "failing: ${failures[*]} (logs in $logs/)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
