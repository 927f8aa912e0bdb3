#!/usr/bin/env bash
# A step that exceeds its memory cgroup's limit is reported oom_killed (cgroup v1 or v2).
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms

# Find a memory cgroup directory we may create a child in.
cg=""
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    rel=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    base=/sys/fs/cgroup${rel%/}
    # v2 forbids processes in inner nodes: use a sibling-free child of the root when ours is busy.
    [ -w "$base" ] || base=/sys/fs/cgroup
    cg=$base/stepop-oom-$$
    if mkdir "$cg" 2>/dev/null; then
        echo "+memory" >"$base/cgroup.subtree_control" 2>/dev/null
        echo $((64 << 20)) >"$cg/memory.max" 2>/dev/null || { rmdir "$cg"; cg=""; }
        [ -n "$cg" ] && echo 0 >"$cg/memory.swap.max" 2>/dev/null
    else
        cg=""
    fi
elif [ -d /sys/fs/cgroup/memory ]; then
    rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
    cg=/sys/fs/cgroup/memory${rel%/}/stepop-oom-$$
    if mkdir "$cg" 2>/dev/null; then
        echo $((64 << 20)) >"$cg/memory.limit_in_bytes" || { rmdir "$cg"; cg=""; }
        [ -n "$cg" ] && [ -f "$cg/memory.memsw.limit_in_bytes" ] && echo $((64 << 20)) >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null
    else
        cg=""
    fi
fi
[ -n "$cg" ] || skip_all "no writable memory cgroup here (cgroups cannot be written)"
on_exit "rmdir '$cg'"

in_cgroup() { sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

manifest "$T/oom.json" "file://$T/store/runs/oom" '"command":["sh","-c","echo allocating; tail /dev/zero"],"resources":{"memory":"64MiB"}'
expect_rc 137 "a step over its memory limit is SIGKILLed (exit 137)" in_cgroup "$STEPOP" run --manifest "$T/oom.json"
s=$T/store/runs/oom/status.json
is_eq "status: failed, reason oom_killed" "$(jq_py "$s" "d['phase'], d['reason']")" "failed oom_killed"
check "the message hints at the memory limit" grep -q "64.0 MiB" "$s"
check "the logs are complete after the OOM kill" sh -c "cat '$T'/store/runs/oom/logs/1/*.log | grep -q allocating"
manifest "$T/kill.json" "file://$T/store/runs/kill" '"command":["sh","-c","kill -KILL $$"]'
expect_rc 137 "a plain SIGKILL in the same cgroup" in_cgroup "$STEPOP" run --manifest "$T/kill.json"
is_eq "is not mistaken for an OOM kill" "$(jq_py "$T/store/runs/kill/status.json" "d['reason']")" user_error
done_testing
