#!/usr/bin/env bash
# The log path (docs/protocol.md#logs): a slow or lossy store never keeps stepop run alive past
# its final-flush deadline, a blocked stdout never delays supervision, a retried chunk carries the
# same bytes, the spool releases what was shipped and stays bounded, and the follower prints every
# line before the verdict, soon after the step printed it, in a bounded number of objects.
. "$(dirname "$0")/../lib.sh"
export STEPOP_HTTP_RETRY_BASE=20ms STEPOP_HTTP_RETRY_MAX=100ms
start_faulty || exit 1
store=$T/store
mono_ms() { echo $(($(date +%s%N) / 1000000)); }

# 1. A final log upload slower than STEPOP_FINAL_FLUSH_TIMEOUT: gone within the deadline + 5 s,
#    with a final status that says what the log lacks.
manifest "$T/slow.json" "$FAULTY_URL/_f/delay4000~logx99/runs/slow" \
    "\"command\":[\"sh\",\"-c\",\"echo first; sleep 0.5; echo last line; exit 3\"]"
t0=$(mono_ms)
expect_rc 3 "a run whose log uploads take 4 s exits with the step's code" \
    timeout 25 env STEPOP_FINAL_FLUSH_TIMEOUT=1s "$STEPOP" run --manifest "$T/slow.json"
elapsed=$(($(mono_ms) - t0))
check "it is gone within the 1 s deadline + 5 s (took ${elapsed} ms)" test "$elapsed" -lt 6500
st=$FAULTY_ROOT/runs/slow/status.json
is_eq "the final status is written" "$(jq_py "$st" "d['phase'], d['exit_code']")" "failed 3"
check "its message says how many log bytes were not shipped" \
    grep -Eq '[0-9]+ bytes of log output were not shipped' "$st"
out_has "last line" "the pass-through still has every line"

# 2. The store keeps a chunk but its answer is lost: the retry sends exactly the same bytes.
faulty_reset
manifest "$T/lost.json" "$FAULTY_URL/_f/lose~logx1/runs/lost" \
    "\"command\":[\"sh\",\"-c\",\"echo one; sleep 0.6; echo two; sleep 1.5; echo three\"]"
expect_rc 0 "a run whose first log PUT answer is lost" \
    env STEPOP_HTTP_ATTEMPTS=1 STEPOP_LOG_INTERVAL=200ms "$STEPOP" run --manifest "$T/lost.json"
check "every PUT of a log chunk carried the same bytes" python3 -c "
import json, urllib.request, collections
log = json.load(urllib.request.urlopen('$FAULTY_URL/_log'))
puts = collections.defaultdict(set)
for e in log:
    if e['method'] == 'PUT' and e['url'].endswith('.log') and 'sha1' in e:
        puts[e['url']].add((e['received'], e['sha1']))
first = [u for u in puts if u.endswith('/00000000.log')]
assert first, puts
retried = [u for u in puts if sum(1 for e in log if e['method'] == 'PUT' and e['url'] == u) > 1]
assert retried, 'no chunk was retried: the fault did not fire'
bad = {u: v for u, v in puts.items() if len(v) != 1}
assert not bad, bad"
check "the chunks together are the whole output" sh -c \
    "cat '$FAULTY_ROOT'/runs/lost/logs/1/*.log | grep -v '^stepop:' | tr '\n' ' ' | grep -qx 'one two three '"

# 3. stepop's own stdout blocks (nobody reads it): the timeout still fires on time, the
#    pass-through drops (and says so), the shipped log keeps every byte.
manifest "$T/blk.json" "file://$store/runs/blk" "\"timeout\":\"2s\",\"grace_period\":\"1s\",
  \"command\":[\"sh\",\"-c\",\"date +%s%N >$T/blk.start; trap 'date +%s%N >$T/blk.term; exit 143' TERM; yes x | head -c 3000000; echo; while :; do sleep 0.1; done\"]"
mkfifo "$T/blk.fifo"
# blocked_run CMD...: runs CMD while a reader holds the fifo open and never reads it, for 9 s;
# then it goes away (EPIPE). Sets rc.
blocked_run() {
    local reader
    (exec 3<"$T/blk.fifo"; sleep 9) &
    reader=$!
    "$@"
    rc=$?
    wait "$reader"
}
# The step wrote its start and its SIGTERM's arrival (date +%s%N) to blk.start and blk.term.
check_term_on_time() {
    if [ -s "$T/blk.start" ] && [ -s "$T/blk.term" ]; then
        local late=$((($(cat "$T/blk.term") - $(cat "$T/blk.start")) / 1000000))
        check "SIGTERM reached the step on time (after ${late} ms; timeout 2 s)" test "$late" -lt 3500
    else
        not_ok "the step recorded its start and its SIGTERM"
    fi
}
blocked_run sh -c "exec '$STEPOP' run --manifest '$T/blk.json' >'$T/blk.fifo' 2>'$T/blk.err'"
is_eq "with stdout blocked, the step still ends by its timeout (exit 143)" "$rc" 143
check_term_on_time
is_eq "the reason is timeout" "$(jq_py "$store/runs/blk/status.json" "d['reason']")" timeout
check "the shipped log has every byte" sh -c "cat '$store'/runs/blk/logs/1/*.log | grep -c '^x\$' | grep -qx 1500000"
check "stepop says how much the pass-through dropped" grep -Eq "[0-9]+ bytes of output were not passed through" "$T/blk.err"

# 3b. stdout and stderr both blocked, and the store failing log uploads (so the reporter has
#     warnings to print): the timeout still fires on time.
faulty_reset
rm -f "$T/blk.start" "$T/blk.term"
manifest "$T/blk2.json" "$FAULTY_URL/_f/s500~logx99/runs/blk2" "\"timeout\":\"2s\",\"grace_period\":\"1s\",
  \"command\":[\"sh\",\"-c\",\"date +%s%N >$T/blk.start; trap 'date +%s%N >$T/blk.term; exit 143' TERM; yes e | head -c 3000000 >&2; while :; do sleep 0.1; done\"]"
blocked_run sh -c "STEPOP_HTTP_ATTEMPTS=1 STEPOP_FINAL_FLUSH_TIMEOUT=2s exec '$STEPOP' run --manifest '$T/blk2.json' >'$T/blk.fifo' 2>&1"
is_eq "with stdout and stderr blocked and log uploads failing, the step ends by its timeout" "$rc" 143
check_term_on_time
is_eq "the final status still says timeout" "$(jq_py "$FAULTY_ROOT/runs/blk2/status.json" "d['reason']")" timeout

# 3c. Output that never stops waiting (a chunk upload takes 300 ms, the step prints MiBs a second)
#     does not starve heartbeats.
faulty_reset
manifest "$T/hbs.json" "$FAULTY_URL/_f/delay300~logx9999/runs/hbs" "\"heartbeat\":\"1s\",
  \"command\":[\"sh\",\"-c\",\"i=0; while [ \$i -lt 10 ]; do yes h | head -c 2000000; sleep 0.4; i=\$((i+1)); done\"]"
"$STEPOP" run --manifest "$T/hbs.json" >/dev/null 2>&1 &
hbs=$!
sleep 2
cp "$FAULTY_ROOT/runs/hbs/status.json" "$T/hbs1.json" 2>/dev/null
sleep 2
cp "$FAULTY_ROOT/runs/hbs/status.json" "$T/hbs2.json" 2>/dev/null
wait "$hbs"
check "heartbeats go out while chunks queue up" python3 -c "
import json
a, b = (json.load(open(f)) for f in ('$T/hbs1.json', '$T/hbs2.json'))
assert a['phase'] == b['phase'] == 'running', (a['phase'], b['phase'])
assert a['heartbeat_at'] and b['heartbeat_at'] and b['heartbeat_at'] > a['heartbeat_at'], (a['heartbeat_at'], b['heartbeat_at'])"

# 4. The spool is bounded: with the store not taking logs, output past STEPOP_LOG_SPOOL_MAX is
#    dropped, and the log and the final status say how much.
faulty_reset
manifest "$T/full.json" "$FAULTY_URL/_f/delay2500~logx99/runs/full" \
    "\"command\":[\"sh\",\"-c\",\"echo begin; yes y | head -c 300000; echo; echo end\"]"
expect_rc 0 "a run that prints 300 kB while the store holds its log uploads" \
    env STEPOP_LOG_SPOOL_MAX=64KiB STEPOP_LOG_INTERVAL=200ms "$STEPOP" run --manifest "$T/full.json"
full=$FAULTY_ROOT/runs/full
check "the log says where output was dropped and how much" \
    sh -c "cat '$full'/logs/1/*.log | grep -Eq '^\[stepop: [0-9]+ bytes of output were dropped here: 64(\.0)? KiB of output was waiting'"
check "the final status says so too" grep -Eq '[0-9]+ bytes of log output were dropped' "$full/status.json"
check "what was kept is at most the bound (plus the note)" \
    sh -c "test \$(cat '$full'/logs/1/*.log | grep -v '^stepop' | tr -cd y | wc -c) -le 65536"

# 5. The spool releases what was shipped: 40 MB printed, then the spool's disk use is small.
manifest "$T/big.json" "file://$store/runs/big" "\"command\":[\"sh\",\"-c\",
  \"yes z | head -c 40000000; echo; sleep 2.5;
    for f in /proc/\$PPID/fd/*; do case \$(readlink \$f) in *stepop-spool*) echo spool-blocks=\$(stat -L -c %b \$f);; esac; done\"]"
expect_rc 0 "a step printing 40 MB" env STEPOP_SPOOL_DIR="$T" "$STEPOP" run --manifest "$T/big.json"
blocks=$(grep -ao 'spool-blocks=[0-9]*' "$T/out" | cut -d= -f2)
check "the spool holds under 2 MiB once shipped (${blocks:-?} blocks of 512 bytes)" test "${blocks:-999999}" -lt 4096
check "and the shipped log has all 40 MB" sh -c "cat '$store'/runs/big/logs/1/*.log | tr -cd z | wc -c | grep -qx 20000000"

# 6. The follower: every line before the verdict, and lines while the step runs.
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config
unset STEPOP_LOG_INTERVAL
mkdir -p "$HOME"
expect_rc 4 "submit a step that prints three lines a second apart and exits 4" \
    sh -c "'$STEPOP' submit -- sh -c 'for i in 1 2 3; do echo line \$i; sleep 1; done; exit 4' 2>&1"
check "the three lines come before the final phase" python3 -c "
t = open('$T/out').read().splitlines()
verdict = next(i for i, l in enumerate(t) if '] failed' in l)
lines = [i for i, l in enumerate(t) if l.startswith('line ')]
assert len(lines) == 3 and max(lines) < verdict, t"
runs=$XDG_DATA_HOME/stepop/runs
"$STEPOP" submit -- sh -c 'echo early-line; sleep 4; echo late-line' >"$T/live.out" 2>"$T/live.err" &
sub=$!
sleep 2.5
check "a line is on the submitter's stdout while the step still runs" grep -q early-line "$T/live.out"
check "and the later one is not (the step still runs)" sh -c "! grep -q late-line '$T/live.out'"
r=$(ls -t "$runs" | head -1)
"$STEPOP" logs -f "$r" >"$T/logsf.out" 2>&1 &
lf=$!
wait "$sub"
wait "$lf"
check "stepop logs -f gets every line too" sh -c "grep -q early-line '$T/logsf.out' && grep -q late-line '$T/logsf.out'"

# 7. A chatty step (a line every 10 ms for 4 s) is shipped in a bounded number of objects.
manifest "$T/chat.json" "file://$store/runs/chat" \
    "\"command\":[\"sh\",\"-c\",\"i=0; while [ \$i -lt 400 ]; do echo chat \$i; i=\$((i+1)); sleep 0.01; done\"]"
expect_rc 0 "a chatty step" "$STEPOP" run --manifest "$T/chat.json"
objects=$(ls "$store/runs/chat/logs/1" | wc -l)
secs=$(jq_py "$store/runs/chat/status.json" "__import__('re').search(r'after ([0-9.]+)s', d['message']).group(1)")
check "about one log object a second (${objects} objects in ${secs} s; a line every 10 ms)" \
    python3 -c "import sys; sys.exit(0 if $objects <= float('$secs') + 5 else 1)"
check "with every line" sh -c "cat '$store'/runs/chat/logs/1/*.log | grep -c '^chat ' | grep -qx 400"

done_testing
