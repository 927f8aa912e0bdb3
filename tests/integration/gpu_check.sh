#!/usr/bin/env bash
# `stepop gpu check|smoke` where there is no usable GPU: the real no-driver path, the toolkit's stub
# libcuda as the driver, a libcuda that never answers (timeout), JSON shape, exit codes, usage.
. "$(dirname "$0")/../lib.sh"

json() { # PY-EXPR: true on $T/out parsed as d
    python3 -c "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if ($1) else 1)"
}
check_json() { check "$1" json "$2"; }

backend=$("$STEPOP" version --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["libraries"]["cuda_runtime"])')
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
stub=$(ls "$CUDA_HOME"/lib64/stubs/libcuda.so "$CUDA_HOME"/targets/*/lib/stubs/libcuda.so 2>/dev/null | head -1)

# usage first: the same on every machine
expect_rc 2 "gpu without a subcommand is a usage error" "$STEPOP" gpu
expect_rc 2 "an unknown subcommand exits 2" "$STEPOP" gpu frob
err_has 'unknown subcommand "frob"' "and names it"
expect_rc 2 "smoke options do not apply to check" "$STEPOP" gpu check --level 2
err_has "--level belongs to gpu smoke" "and says where it belongs"
expect_rc 2 "--min-cc needs X.Y" "$STEPOP" gpu check --min-cc 8
expect_rc 2 "--min-memory needs a size" "$STEPOP" gpu check --min-memory lots
err_has "--min-memory" "naming the option"
expect_rc 2 "--min-devices 0 is refused" "$STEPOP" gpu check --min-devices 0
expect_rc 2 "--timeout needs a unit" "$STEPOP" gpu check --timeout 5
expect_rc 2 "--timeout 0s is refused" "$STEPOP" gpu check --timeout 0s
expect_rc 2 "check takes no arguments" "$STEPOP" gpu check extra
expect_rc 2 "--level 4 is refused" "$STEPOP" gpu smoke --level 4
expect_rc 2 "--seconds needs level 3" "$STEPOP" gpu smoke --seconds 5
expect_rc 2 "thresholds need level 2 or 3" "$STEPOP" gpu smoke --level 1 --min-h2d-gbps 10
expect_rc 2 "--memory-share above 0.95 is refused" "$STEPOP" gpu smoke --memory-share 1.5
expect_rc 2 "a threshold must be a number" "$STEPOP" gpu smoke --min-dtod-gbps fast
expect_rc 0 "gpu --help" "$STEPOP" gpu --help
out_has "Exit codes: 0 ready" "help lists the exit codes"
expect_rc 0 "gpu check --help" "$STEPOP" gpu check --help
expect_rc 0 "help gpu" "$STEPOP" help gpu
expect_rc 0 "stepop help lists gpu" "$STEPOP" help
out_has "gpu" "the command list has gpu"
expect_rc 0 "version" "$STEPOP" version
out_has "cuda_runtime" "version reports the CUDA runtime compiled in"

# The probe runs in a fresh stepop (/proc/self/exe), never in a plain fork of a process that may
# already run threads (the entrypoint's reporter), where a lock copied mid-use could hang it.
expect_rc 2 "the child's internal subcommand refuses to run by hand" "$STEPOP" gpu __child
err_has "internal command" "and says it is internal"
if strace -f -qq -e trace=execve -o "$T/trace" true 2>/dev/null; then
    # LeakSanitizer cannot run under ptrace (the ASan build's leak check is off here only).
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=execve -o "$T/trace" \
        "$STEPOP" gpu check --json >"$T/out" 2>"$T/err"
    check "the probe runs in a re-executed stepop (execve /proc/self/fd/N gpu __child)" \
        grep -q 'execve("/proc/self/fd/[0-9]*", \[[^]]*"gpu", "__child"' "$T/trace"
    check_json "and its answer makes the verdict" "d['classification'] not in ('unknown', 'timeout')"
else
    ok "# SKIP strace cannot trace here"
fi

if [ "$backend" = none ]; then
    expect_rc 10 "a build without CUDA: check exits 10" "$STEPOP" gpu check --json
    check_json "classification cuda_not_built, backend none" "d['classification']=='cuda_not_built' and d['backend']=='none'"
    expect_rc 10 "and so does smoke" "$STEPOP" gpu smoke
    err_has "built without CUDA" "saying so plainly"
    done_testing
fi

if [ -e /dev/nvidiactl ] || ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
    ok "# SKIP a driver is installed here: the no-driver path is for machines without one"
else
    expect_rc 10 "no driver: check exits 10" "$STEPOP" gpu check
    err_has "no_driver" "classified no_driver"
    err_has "hint: " "with a hint"
    expect_rc 10 "no driver: check --json exits 10" env -u CUDA_VISIBLE_DEVICES "$STEPOP" gpu check --json
    check_json "one JSON object with the documented fields" \
        "all(k in d for k in ['ok','classification','message','hint','driver_version','runtime_version','devices','requirements','elapsed_ms','environment','backend','cuda_error','driver_library'])"
    check_json "ok false, no_driver, cudaErrorInsufficientDriver" \
        "d['ok'] is False and d['classification']=='no_driver' and d['cuda_error']=='cudaErrorInsufficientDriver'"
    check_json "no driver version, the runtime's version, no devices" \
        "d['driver_version'] is None and d['runtime_version']=='$backend' and d['devices']==[]"
    check_json "elapsed_ms is a number" "isinstance(d['elapsed_ms'],(int,float)) and d['elapsed_ms']>=0"
    check_json "the environment is reported" \
        "set(['NVIDIA_VISIBLE_DEVICES','NVIDIA_DRIVER_CAPABILITIES','CUDA_VISIBLE_DEVICES','dev_nodes','kernel_module'])<=set(d['environment'])"
    check_json "without /dev/nvidia* the hint says the container has no GPUs" "'no /dev/nvidia*' in d['hint']"
    expect_rc 10 "NVIDIA_DRIVER_CAPABILITIES without compute" env NVIDIA_DRIVER_CAPABILITIES=utility "$STEPOP" gpu check --json
    check_json "the hint names the missing capability" "'lacks compute' in d['hint'] and d['environment']['NVIDIA_DRIVER_CAPABILITIES']=='utility'"
    expect_rc 10 "requirements are recorded even when failing" env CUDA_VISIBLE_DEVICES=3 "$STEPOP" gpu check --json \
        --min-devices 2 --min-cc 8.0 --min-memory 40GiB
    check_json "min_devices, min_compute_capability, min_memory" \
        "d['requirements']=={'min_devices':2,'min_compute_capability':'8.0','min_memory':42949672960,'devices_meeting':0,'ok':False}"
    check_json "CUDA_VISIBLE_DEVICES is recorded" "d['environment']['CUDA_VISIBLE_DEVICES']=='3'"
    expect_rc 10 "smoke without a driver exits 10" "$STEPOP" gpu smoke --json --level 2 --min-h2d-gbps 5
    check_json "smoke JSON: level 2, thresholds recorded, no_driver" \
        "d['level']==2 and d['thresholds']['min_h2d_gbps']==5 and d['classification']=='no_driver'"
fi

if [ -n "$stub" ]; then
    mkdir -p "$T/stub"
    cp "$stub" "$T/stub/libcuda.so.1"
    expect_rc 10 "the toolkit's stub as libcuda.so.1: exit 10" env LD_LIBRARY_PATH="$T/stub" "$STEPOP" gpu check --json
    check_json "classified stub_library (cudaErrorStubLibrary)" \
        "d['classification']=='stub_library' and d['cuda_error']=='cudaErrorStubLibrary'"
    check_json "the report and the hint name the stub that was loaded" \
        "d['driver_library']=='$T/stub/libcuda.so.1' and '$T/stub/libcuda.so.1' in d['hint']"
    expect_rc 10 "smoke on the stub: exit 10" env LD_LIBRARY_PATH="$T/stub" "$STEPOP" gpu smoke --level 1
    err_has "stub_library" "classified stub_library"
else
    ok "# SKIP no stub libcuda.so in $CUDA_HOME"
fi

# A libcuda.so.1 whose first entry point never returns, like a driver stuck on a hung GPU.
mkdir -p "$T/hang"
if ${CC:-cc} -shared -fPIC -o "$T/hang/libcuda.so.1" "$ROOT/tests/gpu_fakes/hang_libcuda.c"; then
    ln -s "$STEPOP" "$T/stepop-hang"
    start=$(date +%s%N)
    expect_rc 12 "a hung driver: check exits 12 after --timeout" env LD_LIBRARY_PATH="$T/hang" "$T/stepop-hang" gpu check \
        --json --timeout 1s
    took=$((($(date +%s%N) - start) / 1000000))
    check_json "classified timeout, with a hint" "d['classification']=='timeout' and 'hung' in d['hint'] and d['ok'] is False"
    check_json "the runtime version is still known" "d['runtime_version']=='$backend'"
    check "the verdict came within 5 s (took ${took} ms)" test "$took" -lt 5000
    check "the hung probe process is gone" sh -c "! pgrep -f '$T/[s]tepop-hang' >/dev/null"
    expect_rc 12 "smoke on a hung driver exits 12 too" env LD_LIBRARY_PATH="$T/hang" "$T/stepop-hang" gpu smoke --level 1 \
        --timeout 500ms
    err_has "timeout" "classified timeout"
    check "no probe process left behind" sh -c "! pgrep -f '$T/[s]tepop-hang' >/dev/null"
    env LD_LIBRARY_PATH="$T/hang" "$T/stepop-hang" gpu check --timeout 3s >/dev/null 2>&1 &
    parent=$!
    child=
    for _ in $(seq 100); do
        child=$(pgrep -P "$parent" | head -1)
        [ -n "$child" ] && break
        sleep 0.02
    done
    check "the hung probe is a re-executed stepop gpu __child" \
        sh -c "[ -n '$child' ] && tr '\\0' ' ' </proc/$child/cmdline | grep -q ' gpu __child '"
    wait "$parent"
else
    not_ok "could not build the hanging libcuda fake"
fi
done_testing
