#!/bin/bash
# stop.sh DIR: stops what start.sh DIR started (the processes named in DIR/pids, then the test
# kubelet's containers) and nothing else. DIR itself is left for its logs.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 2; }
dir=$(cd "$1" 2>/dev/null && pwd) || exit 0
[ -f "$dir/pids" ] || exit 0

# Only a pid whose process still is the one we started (its session leader is itself: setsid).
ours() { [ "$(ps -o sid= -p "$1" 2>/dev/null | tr -d ' ')" = "$1" ]; }
pids=()
# The kubelet first (it would otherwise keep reporting), etcd last.
for name in kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
    pid=$(awk -v n="$name" '$1 == n {print $2}' "$dir/pids")
    if [ -z "$pid" ] || ! ours "$pid"; then continue; fi
    # The whole process group: the kubelet's `podman wait` and `podman logs` children too.
    kill -TERM -- "-$pid" 2>/dev/null && pids+=("$pid")
done
for _ in $(seq 50); do
    left=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
done
for pid in "${left[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done

# The containers the kubelet ran, by the label it gave them.
instance=$(sed -n 's/^export KBED_INSTANCE=//p' "$dir/env" 2>/dev/null)
if [ -n "$instance" ] && command -v podman >/dev/null; then
    pd=${PODMAN_DIR:-$root/build/podman}
    [ -n "${CONTAINERS_CONF:-}" ] || [ ! -f "$dir/containers.conf" ] || export CONTAINERS_CONF=$dir/containers.conf
    p() { podman --root "$pd/root" --runroot "$pd/run" --tmpdir "$pd/tmp" "$@"; }
    ids=$(p ps -aq --filter "label=stepop-kbed=$instance" 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || p rm -f -t 0 $ids >/dev/null 2>&1
fi
rm -f "$dir/pids"
