# Helpers for bench/run.sh: timing, peak RSS, results. Sourced after tests/lib.sh (servers).
RESULTS=${RESULTS:-$ROOT/build/bench/results.jsonl}
mkdir -p "$(dirname "$RESULTS")"

now_ns() { date +%s%N; }

# run_timed OUT-VAR CMD...: wall time in ms of CMD (output discarded); fails when CMD fails.
run_timed() {
    local var=$1 s e
    shift
    s=$(now_ns)
    "$@" >/dev/null 2>>"$BENCH_LOG" || { echo "bench: command failed: $*" >&2; return 1; }
    e=$(now_ns)
    printf -v "$var" '%d' $(((e - s) / 1000000))
}

# record CASE TOOL BYTES MS...: one line of results (every repeat's time; the report takes medians).
record() {
    local case=$1 tool=$2 bytes=$3
    shift 3
    printf '{"case":"%s","tool":"%s","bytes":%s,"ms":[%s]}\n' "$case" "$tool" "$bytes" "$(IFS=,; echo "$*")" >>"$RESULTS"
}

# compare CASE BYTES REPEATS PREPARE -- TOOL1 CMD1 -- TOOL2 CMD2 ...: runs the tools round-robin
# (A B C, A B C, ...) so that noise hits all of them alike; PREPARE runs before every command
# (e.g. emptying a destination) and is not timed. Commands are strings run by bash -c.
compare() {
    local case=$1 bytes=$2 repeats=$3 prepare=$4
    shift 4
    local -a tools=() cmds=()
    while [ $# -gt 0 ]; do
        [ "$1" = "--" ] && shift
        tools+=("$1")
        cmds+=("$2")
        shift 2
    done
    local -A times=()
    local r i k t n=${#tools[@]}
    for ((r = 0; r < repeats; r++)); do
        # Each round starts with the next tool: the first run after a change of state (another
        # case's data in the page cache, memory to reclaim) is slower, and no tool should always
        # be the one that pays for it.
        for ((k = 0; k < n; k++)); do
            i=$(((k + r) % n))
            bash -c "$prepare" >/dev/null 2>>"$BENCH_LOG"
            run_timed t bash -c "${cmds[$i]}" || t=-1
            times[$i]="${times[$i]:-}${times[$i]:+ }$t"
        done
    done
    for i in "${!tools[@]}"; do
        # shellcheck disable=SC2086
        record "$case" "${tools[$i]}" "$bytes" ${times[$i]}
        echo "  $case / ${tools[$i]}: ${times[$i]} ms" >&2
    done
}

# peak_rss CASE TOOL CMD...: the peak resident set of CMD (and its children) in KiB, via GNU time.
peak_rss() {
    local case=$1 tool=$2 kib
    shift 2
    /usr/bin/time -f '%M' -o "$BENCH_TMP/rss" "$@" >/dev/null 2>>"$BENCH_LOG" || { echo "bench: failed: $*" >&2; return 1; }
    kib=$(tail -1 "$BENCH_TMP/rss")
    printf '{"case":"%s","tool":"%s","peak_rss_kib":%s}\n' "$case" "$tool" "$kib" >>"$RESULTS"
    echo "  $case / $tool: peak RSS $((kib / 1024)) MiB" >&2
}

# start_shaper PORT: the shaping proxy (bench/shaper.c) in front of 127.0.0.1:PORT, each
# connection capped at $LINK_RATE bytes a second each way with $LINK_RTT ms of round trip;
# sets SHAPER_PORT and SHAPER_PID; stopped at exit (its totals and CPU time go to its log).
start_shaper() {
    local i log=$BENCH_TMP/shaper-$1
    "$ROOT/build/bench/shaper" --to "$1" --rate "$LINK_RATE" --rtt "$LINK_RTT" >"$log.port" 2>"$log.log" &
    SHAPER_PID=$!
    on_exit "kill $SHAPER_PID"
    for i in $(seq 100); do [ -s "$log.port" ] && break; sleep 0.05; done
    SHAPER_PORT=$(cat "$log.port")
    [ -n "$SHAPER_PORT" ] || { echo "bench: the shaping proxy did not start" >&2; cat "$log.log" >&2; return 1; }
}

# shaper_cpu_ms: the CPU time (user + system, all threads) the shaping proxy has used so far.
shaper_cpu_ms() {
    local f
    read -ra f <"/proc/$SHAPER_PID/stat"
    echo $(((f[13] + f[14]) * 1000 / $(getconf CLK_TCK)))
}

# shaper_compare CASE BYTES REPEATS PREPARE -- TOOL CMD ...: compare, then one more line of
# results: the proxy's CPU time over the whole comparison against the bytes that went through it
# (every tool moved BYTES once a round), so the figures can be trusted not to be the proxy's.
shaper_compare() {
    local case=$1 bytes=$2 repeats=$3 c0 c1 s0 ntools=0 a
    for a in "$@"; do [ "$a" = "--" ] && ntools=$((ntools + 1)); done
    c0=$(shaper_cpu_ms)
    s0=$(now_ns)
    compare "$@"
    c1=$(shaper_cpu_ms)
    printf '{"case":"%s","tool":"shaping proxy (CPU)","cpu_ms":%s,"wall_ms":%s,"bytes_moved":%s}\n' "$case" \
        $((c1 - c0)) $((($(now_ns) - s0) / 1000000)) $((bytes * repeats * ntools)) >>"$RESULTS"
    echo "  $case / shaping proxy: $((c1 - c0)) ms CPU for $((bytes * repeats * ntools / 1000000)) MB moved" >&2
}
