#!/usr/bin/env bash
# Runs the unit tests (plain and under ASan/UBSan) and the integration tests, and ends with
# "N passed, N failed". Usage: tests/run.sh [all|unit|integration] [NAME-FILTER]
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
filter=${2:-}
logs=build/test-logs
mkdir -p "$logs"
passed=0
failed=0
failures=()

run_one() { # NAME CMD...
    local name=$1 log rc p f
    shift
    log="$logs/$(echo "$name" | tr '/ ' '__').log"
    local start=$SECONDS
    timeout "${TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed or timed out without saying what failed
        echo "not ok - $name exited with status $rc" >>"$log"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    local skip=""
    grep -q '^1\.\.0 # SKIP' "$log" && skip=" ($(sed -n 's/^1\.\.0 # SKIP //p' "$log"))"
    printf '%-44s %4d passed %3d failed %4ds%s\n' "$name" "$p" "$f" $((SECONDS - start)) "$skip"
    if [ "$f" -gt 0 ]; then
        failures+=("$name")
        grep -A12 '^not ok' "$log" | sed 's/^/    /' | head -60
    fi
}

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
    for t in ${ASAN_INTEGRATION:-artifact_http evil_archives http_faults run_lifecycle run_logs gpu_check s3 submit_local}; do
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
if [ ${#failures[@]} -gt 0 ]; then
    echo "failing: ${failures[*]} (logs in $logs/)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
