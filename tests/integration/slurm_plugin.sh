#!/usr/bin/env bash
# examples/flavors/stepop-flavor-slurm against a real one-node Slurm (tests/testbeds/slurm): the
# plugin is driven with protocol-v1 requests (docs/plugins.md) as stepop sends them; the step
# runs as `stepop run` on the node, the file store shared. Skipped without slurm-wlm and munge.
. "$(dirname "$0")/../lib.sh"
PLUGIN=$ROOT/examples/flavors/stepop-flavor-slurm
start_slurm
export STORE=$T/store STEPOP
mkdir -p "$STORE" "$T/work"
cd "$T" || exit 1

# req OP RUN [SETTINGS] [JOB_ID] [GRACE_MS]: a request as stepop builds it.
req() {
    python3 - "$@" <<'PY'
import json, os, sys
op, run = sys.argv[1:3]
settings = json.loads(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else {}
jid = sys.argv[4] if len(sys.argv) > 4 else ""
grace = int(sys.argv[5]) if len(sys.argv) > 5 else 30000
store = os.environ["STORE"]
r = {"protocol_version": 1, "operation": op, "plugin": "slurm", "run_id": run,
     "run_uri": f"file://{store}/{run}/", "settings": settings, "stepop": os.environ["STEPOP"],
     "grace_period_ms": grace}
if op in ("validate", "render", "submit"):
    r["manifest"] = json.load(open(f"{store}/{run}/manifest.json"))
    r["manifest_uri"] = f"file://{store}/{run}/manifest.json"
    r["attempt"] = 1
else:
    r["handle"] = {"job_id": jid, "run_id": run, "run_uri": r["run_uri"]}
print(json.dumps(r))
PY
}
# call OP RUN ...: the plugin's answer in $T/ans, its exit status in $rc.
call() { req "$@" | "$PLUGIN" >"$T/ans" 2>"$T/ans.err"; rc=$?; }
ans() { jq_py "$T/ans" "$1"; }
mk() { # RUN FIELDS: the run's manifest in the store
    mkdir -p "$STORE/$1"
    manifest "$STORE/$1/manifest.json" "file://$STORE/$1" "$2"
}
OUTSET="{\"output\":\"$T/slurm-%j.out\"}"
submit() { # RUN [SETTINGS]: the job id in $jid
    call submit "$1" "${2:-$OUTSET}"
    jid=$(ans "d['handle']['job_id']" 2>/dev/null)
}
# final RUN JOB: polls until the job has ended (at most 150 s); the last state in $T/ans.
final() {
    local i
    for i in $(seq 300); do
        call poll "$1" "" "$2"
        [ "$rc" = 0 ] || { cat "$T/ans" "$T/ans.err" >&2; return 1; }
        case $(ans "d['state']['phase']") in pending | running) sleep 0.5 ;; *) return 0 ;; esac
    done
    return 1
}
logs() { cat "$STORE/$1"/logs/1/*.log 2>/dev/null; }

# Slurm's time limit counts in minutes and is checked about every 30 s: submitted first, looked
# at last.
mk slow "\"command\":[\"sleep\",\"300\"],\"workdir\":\"$T/work\""
submit slow "{\"output\":\"$T/slurm-%j.out\",\"time\":\"1\"}"
slow_job=$jid
is_eq "submit answers a job id" "$rc:$(echo "$slow_job" | grep -cE '^[0-9]+$')" "0:1"

# dry run: the argv, nothing submitted
mk ok "\"command\":[\"sh\",\"-c\",\"echo gpu=\$CUDA_VISIBLE_DEVICES; cat \$STEPOP_INPUT_DATA; tr a-z A-Z < \$STEPOP_INPUT_DATA > result.txt\"],
\"workdir\":\"$T/work/ok\",\"inputs\":[{\"name\":\"data\",\"uri\":\"file://$T/in.txt\"}],
\"outputs\":[{\"name\":\"result\",\"path\":\"result.txt\",\"format\":\"file\"}],
\"resources\":{\"cpu\":\"500m\",\"memory\":\"300MiB\",\"gpus\":1},\"timeout\":\"2m\",\"grace_period\":\"10s\""
echo "hello slurm" >"$T/in.txt"
before=$(squeue -h -o %i | wc -l)
call render ok "{\"partition\":\"debug\",\"extra_args\":[\"--comment=x\"]}"
argv=$(ans "' '.join(d['requests'][0]['argv'])")
is_eq "render: the sbatch argv" "$argv" \
    "sbatch --parsable --job-name=stepop-ok --output=stepop-ok-%j.out --export=ALL --partition=debug --cpus-per-task=1 --mem=300M --gres=gpu:1 --time=4 --comment=x"
is_eq "render: the batch script runs stepop run on the manifest" "$(ans "d['requests'][0]['stdin'].splitlines()[-1]")" \
    "exec $STEPOP run --manifest file://$STORE/ok/manifest.json"
is_eq "render submits nothing" "$(squeue -h -o %i | wc -l)" "$before"

# validate
call validate ok "{\"partition\":\"debug\"}"
is_eq "validate: known settings pass" "$rc $(cat "$T/ans")" '0 {"ok": true}'
call validate ok "{\"partition\":\"debug\",\"gres_type\":\"a100\"}"
is_eq "validate: a GPU type no node has is refused by sbatch --test-only" \
    "$rc $(ans "'node configuration is not available' in d['error']['message']")" "1 True"
call validate ok '{"nodes":"4"}'
is_eq "validate: an unknown setting is refused" "$rc $(ans "d['error']['kind']")" "1 invalid"
call validate ok '{"extra_args":"--exclusive"}'
is_eq "validate: extra_args must be a list" "$rc $(ans "'list of strings' in d['error']['message']")" "1 True"
call validate ok '{"partition":"nope"}'
is_eq "validate: an unknown partition, in Slurm's words" "$rc $(ans "'nope' in d['error']['message'] and 'not found' in d['error']['message']")" "1 True"
mk img "\"image\":\"alpine\",\"command\":[\"true\"]"
call validate img '{}'
is_eq "validate: an image is refused (no containers here)" "$rc $(ans "'image' in d['error']['message']")" "1 True"

# success with an input, an output, a GPU, logs
submit ok
ok_job=$jid
mk three "\"command\":[\"sh\",\"-c\",\"echo about to fail; exit 3\"],\"workdir\":\"$T/work/three\""
submit three
three_job=$jid
mk term "\"command\":[\"sh\",\"-c\",\"trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.2; done\"],
\"workdir\":\"$T/work/term\",\"grace_period\":\"60s\""
submit term
term_job=$jid
mk oom "\"command\":[\"python3\",\"-c\",\"import time; a = bytearray(600 << 20); a[::4096] = b'x' * len(a[::4096]); time.sleep(30)\"],
\"workdir\":\"$T/work/oom\",\"resources\":{\"memory\":\"200MiB\"}"
submit oom
oom_job=$jid
mk held "\"command\":[\"true\"],\"workdir\":\"$T/work/held\""
submit held "{\"output\":\"$T/slurm-%j.out\",\"extra_args\":[\"--hold\"]}"
held_job=$jid

final ok "$ok_job"
is_eq "success: exited 0" "$(ans "d['state']['phase'], d['state']['exit_code']")" "exited 0"
is_eq "success: stepop run's status" "$(jq_py "$STORE/ok/status.json" "d['phase'], d['exit_code']" 2>&1)" "succeeded 0"
is_eq "success: the output" "$(cat "$STORE/ok/outputs/result" 2>&1)" "HELLO SLURM"
check "success: the logs hold the step's output and the GPU Slurm gave it" \
    sh -c "cat $STORE/ok/logs/1/*.log | grep -q 'hello slurm' && cat $STORE/ok/logs/1/*.log | grep -q '^gpu=0'"
check "success: the job asked for the GPU and the run id names it" \
    sh -c "scontrol show job -o $ok_job | grep -q 'JobName=stepop-ok ' && scontrol show job -o $ok_job | grep -q 'TresPerNode=gres:gpu:1'"

final three "$three_job"
is_eq "exit 3: exited 3" "$(ans "d['state']['phase'], d['state']['exit_code']")" "exited 3"
check "exit 3: logs" sh -c "cat $STORE/three/logs/1/*.log | grep -q 'about to fail'"

# cancel: TERM reaches the step's trap through stepop run
for i in $(seq 120); do logs term | grep -q ready && break; sleep 0.5; done
t0=$SECONDS
call cancel term "" "$term_job" 60000
is_eq "cancel answers ok" "$rc $(cat "$T/ans")" '0 {"ok": true}'
took=$((SECONDS - t0))
is_eq "cancel: the job ended on TERM, well within the 60 s grace period (took ${took} s)" "$((took < 30))" 1
final term "$term_job"
check "cancel: the step's trap ran" sh -c "cat $STORE/term/logs/1/*.log | grep -q 'got TERM'"
is_eq "cancel: stepop run recorded the end" "$(jq_py "$STORE/term/status.json" "d['phase']" 2>&1)" "terminated"

# a job that cannot start
call submit held "{\"output\":\"$T/slurm-%j.out\",\"partition\":\"nope\"}"
is_eq "submit to a missing partition: refused with Slurm's words" "$rc $(ans "'invalid partition' in d['error']['message'].lower()")" "1 True"
mk big "\"command\":[\"true\"],\"resources\":{\"gpus\":2}"
call submit big "$OUTSET"
is_eq "two GPUs on a one-GPU node: sbatch refuses" "$rc $(ans "'node configuration is not available' in d['error']['message']")" "1 True"
call poll held "" "$held_job"
is_eq "a held job is pending, Slurm's reason quoted" "$(ans "d['state']['phase'], 'JobHeldUser' in d['state']['message']")" "pending True"
call cancel held "" "$held_job" 0
final held "$held_job"
is_eq "a pending job cancelled at once: terminated" "$(ans "d['state']['phase'], 'CANCELLED' in d['state']['message']")" "terminated True"

# handles are verified
call poll three "" "$ok_job"
is_eq "a handle for another run's job is refused" "$rc $(ans "d['error']['kind']")" "1 refused"
call cancel three "" "$ok_job" 0
is_eq "cancel with another run's handle is refused" "$rc $(ans "d['error']['kind']")" "1 refused"
call poll three "" "12; scancel"
is_eq "a job id that is not digits is refused" "$rc $(ans "d['error']['kind']")" "1 refused"
call poll three "" "999999"
is_eq "a job Slurm never knew is gone" "$(ans "d['state']['phase']")" "gone"

# OOM: linuxproc and OverMemoryKill kill a job over --mem; Slurm says FAILED, signal 9
final oom "$oom_job"
is_eq "oom: terminated, oom_killed" "$(ans "d['state']['phase'], d['state']['oom_killed'], d['state'].get('exit_code')")" "terminated True 137"

# End to end: stepop finds stepop-flavor-slurm on PATH and drives it (docs/plugins.md).
export PATH=$ROOT/examples/flavors:$PATH XDG_CONFIG_HOME=$T/cfg XDG_DATA_HOME=$T/data
E2E=file://$T/e2e
check "stepop flavor list shows the slurm plugin" sh -c "'$STEPOP' flavor list | grep -E '^slurm +plugin'"
expect_rc 3 "stepop submit --flavor slurm: the step's exit code 3" \
    "$STEPOP" submit --flavor slurm --store "$E2E" --input data="$T/in.txt" --output res=res.txt@file \
    -- sh -c 'cat "$STEPOP_INPUT_DATA" > res.txt; echo e2e-log-line; exit 3'
out_has "e2e-log-line" "stepop submit: the step's logs streamed"
e2e_run=$(ls "$T/e2e/runs" | head -n1)
is_eq "stepop submit: the output stored" "$(cat "$T/e2e/runs/$e2e_run/outputs/res" 2>&1)" "hello slurm"
check "stepop submit: the handle in submission.json names the Slurm job" \
    sh -c "grep -q '\"job_id\"' $T/e2e/runs/$e2e_run/submission.json"
before=$(squeue -h -o %i | wc -l)
expect_rc 0 "stepop submit --dry-run" "$STEPOP" submit --flavor slurm --store "$E2E" --dry-run -- true
out_has '"sbatch", "--parsable"' "dry-run prints the sbatch argv"
is_eq "dry-run submits nothing" "$(squeue -h -o %i | wc -l)" "$before"
printf '{"flavor":"slurm","settings":{"partition":"nope"},"command":["true"]}\n' >"$T/STEP.json"
expect_rc 2 "a setting Slurm refuses exits 2 before anything is written" "$STEPOP" submit "$T/STEP.json" --store "$E2E"
err_has 'Partition nope not found' "the refusal quotes Slurm"
# --detach, then status and cancel from other processes; TERM reaches the step's trap
id=$("$STEPOP" submit --flavor slurm --store "$E2E" --detach \
    -- sh -c "trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.2; done" 2>"$T/detach.err")
uri=$E2E/runs/$id/
for _ in $(seq 120); do "$STEPOP" logs "$uri" 2>/dev/null | grep -q ready && break; sleep 0.5; done
expect_rc 0 "status from another process" "$STEPOP" status "$uri"
out_has "phase:     running" "status: running"
expect_rc 0 "cancel --wait from another process" "$STEPOP" cancel --wait "$uri"
expect_rc 0 "logs from another process" "$STEPOP" logs "$uri"
out_has "got TERM" "the cancel's TERM reached the step's trap"
is_eq "the run ended terminated" "$(jq_py "$T/e2e/runs/$id/status.json" "d['phase']" 2>&1)" "terminated"
# a job Slurm holds: the pending deadline cancels it, exit 73
printf '{"flavor":"slurm","settings":{"extra_args":["--hold"]},"command":["true"]}\n' >"$T/held.json"
expect_rc 73 "a held job past --pending-timeout exits 73" \
    "$STEPOP" submit "$T/held.json" --store "$E2E" --pending-timeout 3s
held_id=$(grep -o '[0-9A-Z]\{26\}' "$T/err" | head -n1)
held_e2e=$(jq_py "$T/e2e/runs/$held_id/submission.json" "d['handle']['job_id']" 2>/dev/null)
is_eq "the held job was cancelled" "$(scontrol show job -o "$held_e2e" 2>&1 | grep -o 'JobState=[A-Z]*')" "JobState=CANCELLED"
det_job=$(jq_py "$T/e2e/runs/$id/submission.json" "d['handle']['job_id']")
is_eq "the cancelled job left the queue" "$(squeue -h -t pending,running -j "$det_job" -o %i 2>/dev/null | wc -l)" "0"

final slow "$slow_job"
is_eq "Slurm's time limit: terminated, reason timeout" "$(ans "d['state']['phase'], d['state']['reason']")" "terminated timeout"
check "the time limit's TERM reached stepop run (status terminated)" \
    sh -c "grep -q '\"terminated\"' $STORE/slow/status.json"
call cleanup slow "" "$slow_job"
is_eq "cleanup answers ok" "$rc $(cat "$T/ans")" '0 {"ok": true}'
done_testing
