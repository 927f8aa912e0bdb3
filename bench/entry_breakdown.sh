#!/usr/bin/env bash
# Where the entrypoint's time goes (docs/benchmarks.md, "Entrypoint: where the time goes"): runs
# bench case 1 on the file store (one 100 kB input, one tar.gz output, the step `sh -c 'true;
# mkdir -p out; echo done > out/result.txt'`) under strace, tracing only the syscalls that mark
# the phases (seccomp-bpf: the others run untraced), and prints the median of each phase.
#   bench/entry_breakdown.sh [-n RUNS] [BINARY...]    (default: 15 runs of build/stepop-static)
# Several binaries (e.g. build/stepop-static-before build/stepop-static) run interleaved, A B A B.
# Data, store and traces go to build/bench/entry, or to BENCH_ENTRY_DIR (a store on another file
# system: fsync costs are the file system's and its disk's).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=15
if [ "${1:-}" = "-n" ]; then
    N=$2
    shift 2
fi
[ $# -gt 0 ] || set -- "$ROOT/build/stepop-static"
command -v strace >/dev/null || { echo "entry_breakdown: needs strace" >&2; exit 1; }
D=${BENCH_ENTRY_DIR:-$ROOT/build/bench/entry}
rm -rf "$D"
mkdir -p "$D/in" "$D/traces"
head -c 100000 /dev/urandom >"$D/in/input.bin"
B=file://$D/store/c1
"$1" artifact put "$D/in/input.bin" "$B-in/input.bin" >/dev/null 2>&1
printf '{"api_version":"stepop/v1","run_id":"run","run_uri":"%s/run/","command":["sh","-c","true; mkdir -p out; echo done > out/result.txt"],"workdir":"%s/work","inputs":[{"name":"input","uri":"%s-in/input.bin"}],"outputs":[{"name":"out","path":"out","format":"tar.gz"}]}\n' \
    "$B" "$D" "$B" >"$D/m.json"
for ((r = 0; r < N; r++)); do
    k=0
    for bin in "$@"; do
        k=$((k + 1))
        STEPOP_LOG_INTERVAL=10s strace -f -ttt -T --seccomp-bpf -o "$D/traces/$k-$r.txt" \
            -e trace=execve,clone,clone3,fsync,fdatasync,rename,exit_group,wait4 \
            "$bin" run --manifest "$D/m.json" >/dev/null 2>&1 || { echo "entry_breakdown: $bin run failed" >&2; exit 1; }
    done
done
k=0
for bin in "$@"; do
    k=$((k + 1))
    echo "$bin ($N runs, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    python3 "$ROOT/bench/entry_breakdown.py" "$D"/traces/$k-*.txt
    echo
done
