# shellcheck shell=bash disable=SC2034
# The Slurm example plugin's conformance bed (examples/flavors/stepop-flavor-slurm, found on PATH as
# `--flavor slurm`): a real one-node Slurm (tests/testbeds/slurm, start_slurm, which skips the
# runner without slurm-wlm/munge or root), the file store in $T shared with the node.
BED_FLAVOR=slurm
BED_SETTING_WORD="unknown setting \"bogus_setting\""
BED_REFUSED_WORD="the handle is not this run's"
BED_MISSING_RC=73
BED_UNSUPPORTED_WORD="node configuration is not available"
bed_setup() {
    start_slurm
    export PATH=$ROOT/examples/flavors:$PATH
    mkdir -p "$T/store/data" "$T/slurm-out"
}
bed_config() {
    printf '{"store": "file://%s", "default_operator": "hpc", "operators": {"hpc": {"flavor": "slurm", "settings": {"output": "%s/slurm-%%j.out"}}}}\n' \
        "$T/store" "$T/slurm-out" >stepop.json
    # A job Slurm holds never starts: the pending timeout ends it.
    printf '{"flavor": "slurm", "settings": {"output": "%s/slurm-%%j.out", "extra_args": ["--hold"]}, "command": ["true"]}\n' \
        "$T/slurm-out" >"$T/held.json"
    CF_DATA=file://$T/store/data/
    CF_RUNS=file://$T/store/runs/
    CF_STORE_DIR=$T/store
}
bed_step_args() { :; }
bed_can_oom() {
    echo "Slurm here enforces --mem by polling each second (OverMemoryKill, no cgroups): the suite's 200 MiB step ends before a poll (slurm_plugin.sh checks a step that stays over)"
    return 1
}
bed_missing_image_args() { echo "$T/held.json"; }
# The node has one (fake) GPU: sbatch refuses two.
bed_unsupported_args() { echo "--gpus 2"; }
bed_jobs() { squeue -h -t all -o %i 2>/dev/null | wc -l; }
bed_object_file() { echo "${1#file://}"; }
bed_secrets() { :; }
# slurmctld stopped (SIGSTOP): squeue and sacct wait and time out.
bed_api_down() { kill -STOP "$(cat "$T/slurm/slurmctld.bgpid")"; }
bed_api_up() { kill -CONT "$(cat "$T/slurm/slurmctld.bgpid")"; }
# The handle names another Slurm job, one not submitted for the run.
bed_forge_handle() {
    local sub=$T/store/runs/$1/submission.json
    BED_VICTIM=$(sbatch --parsable --job-name=victim --output=/dev/null --wrap 'sleep 300') || return 1
    cp "$sub" "$T/submission.orig"
    jq -c --arg j "$BED_VICTIM" '.handle.job_id = $j' "$T/submission.orig" >"$sub"
}
bed_forged_intact() { [ "$(squeue -h -j "$BED_VICTIM" -t pending,running -o %i | wc -l)" = 1 ]; }
bed_unforge_handle() { cp "$T/submission.orig" "$T/store/runs/$1/submission.json"; }
bed_teardown() { [ -z "${BED_VICTIM:-}" ] || scancel "$BED_VICTIM"; }
