#!/usr/bin/env bash
# start.sh DIR: a one-node Slurm (munged, slurmctld, slurmd) for tests, all state under DIR.
# Prints the lines `export SLURM_CONF=...` to source. Needs root (SlurmUser=root, slurmd).
set -eu
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
for b in munged mungekey slurmctld slurmd sinfo; do
    command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
    command -v "$b" >/dev/null 2>&1 || { echo "slurm bed: $b not found" >&2; exit 77; }
done
free_port() {
    while :; do
        p=$(( $(od -An -N2 -tu2 /dev/urandom) % 20000 + 10000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log"
chmod 700 "$DIR/munge"
mungekey --create --keyfile="$DIR/munge/munge.key" --force 2>/dev/null ||
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$DIR/munge/munge.key"
SOCK=$DIR/munge/munge.socket
# --force: munged refuses a key directory or socket it deems insecure, such as under /tmp.
munged --force --socket="$SOCK" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munge.seed" 2>>"$DIR/log/munged.err"

HOST=$(hostname -s)
# More CPUs than the machine has (config_overrides lets slurmd accept that), so a test's jobs
# run side by side; nothing here enforces CPU counts under task/none.
CPUS=$(nproc)
[ "$CPUS" -ge 8 ] || CPUS=8
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
while [ "$SLURMD_PORT" = "$CTLD_PORT" ]; do SLURMD_PORT=$(free_port); done
cat >"$DIR/gres.conf" <<G
# A fake GPU: /dev/null as its device file (no cgroup confines devices under task/none), so a
# job may ask for --gres=gpu:1 and --gres=gpu:2 is refused.
NodeName=$HOST Name=gpu File=/dev/null
G
cat >"$DIR/slurm.conf" <<C
ClusterName=stepoptest
SlurmctldHost=$HOST(localhost)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=debug
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
# Memory is enforced by polling (no cgroups here): a job over its --mem is killed within ~1 s.
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
MpiDefault=none
SlurmdParameters=config_overrides
SwitchType=switch/none
LaunchParameters=use_interactive_step
ReturnToService=2
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MessageTimeout=20
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
C
export SLURM_CONF="$DIR/slurm.conf"
echo "export SLURM_CONF=$DIR/slurm.conf" >"$DIR/env"
slurmctld -D -i -f "$SLURM_CONF" >"$DIR/log/slurmctld.out" 2>&1 &
echo $! >"$DIR/slurmctld.bgpid"
slurmd -D -f "$SLURM_CONF" >"$DIR/log/slurmd.out" 2>&1 &
echo $! >"$DIR/slurmd.bgpid"
i=0
while [ $i -lt 300 ]; do
    st=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1)
    case $st in idle | idle*) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
    sleep 0.1
    i=$((i + 1))
done
echo "slurm bed: node not idle after 30 s (state: ${st:-none}); logs in $DIR/log" >&2
tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 2>/dev/null || true
exit 1
