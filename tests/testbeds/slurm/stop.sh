#!/bin/sh
# stop.sh DIR: stops the daemons start.sh DIR started (by their recorded process ids).
DIR=$1
for f in slurmd.bgpid slurmctld.bgpid; do
    [ -s "$DIR/$f" ] && kill "$(cat "$DIR/$f")" 2>/dev/null
done
for f in slurmd.bgpid slurmctld.bgpid; do
    [ -s "$DIR/$f" ] || continue
    p=$(cat "$DIR/$f")
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$p" 2>/dev/null
    rm -f "$DIR/$f"
done
[ -s "$DIR/munge/munged.pid" ] && kill "$(cat "$DIR/munge/munged.pid")" 2>/dev/null
exit 0
