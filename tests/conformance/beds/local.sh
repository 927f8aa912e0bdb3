# shellcheck shell=bash disable=SC2034
# The local flavor's conformance bed: `stepop run` as a child process, a file store in $T.
BED_FLAVOR=local
BED_NO_API="the local flavor has no platform API (it signals its own process)"
bed_setup() { mkdir -p "$T/store/data"; }
bed_config() {
    printf '{"store": "file://%s", "default_operator": "here", "operators": {"here": {"flavor": "local"}}}\n' \
        "$T/store" >stepop.json
    CF_DATA=file://$T/store/data/
    CF_RUNS=file://$T/store/runs/
    CF_STORE_DIR=$T/store
}
bed_step_args() { :; }
bed_can_oom() { echo "the local flavor sets no memory limit (it refuses --memory)"; return 1; }
bed_missing_image_args() { echo "the local flavor runs no image"; return 1; }
bed_unsupported_args() { echo "--memory 1GiB"; }
bed_jobs() { find "$T/store/runs" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
bed_object_file() { echo "${1#file://}"; }
bed_secrets() { :; }
# The handle names an unrelated process (pid and start time) that must not be signalled.
bed_forge_handle() {
    local sub=$T/store/runs/$1/submission.json
    sleep 300 >/dev/null 2>&1 &
    BED_VICTIM=$!
    on_exit "kill $BED_VICTIM"
    cp "$sub" "$T/submission.orig"
    python3 - "$sub" "$BED_VICTIM" <<'PY'
import json, sys
p, pid = sys.argv[1], int(sys.argv[2])
d = json.load(open(p))
d['handle']['pid'] = pid
d['handle']['start_time'] = int(open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[19])
json.dump(d, open(p, 'w'))
PY
}
bed_forged_intact() { kill -0 "$BED_VICTIM"; }
bed_unforge_handle() { cp "$T/submission.orig" "$T/store/runs/$1/submission.json"; }
