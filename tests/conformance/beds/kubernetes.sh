# shellcheck shell=bash disable=SC2034
# The kubernetes flavor's conformance bed: the Kubernetes test bed (start_kbed, called by the
# runner so tests/run.sh pools it: kube-apiserver, the Job controller, the scheduler and a kubelet
# with pods in Podman), a file store in $T mounted into the pods by hostPath, as
# tests/integration/kube_submit.sh.
BED_FLAVOR=kubernetes
BED_MISSING_RC=71
bed_setup() { podman_images && mkdir -p "$T/store/data"; }
bed_config() {
    cat >stepop.json <<JSON
{"store": "file://$T/store", "default_operator": "kube",
 "operators": {"kube": {"flavor": "kubernetes", "settings": {"pod_settings": {
   "volumes": [{"name": "store", "hostPath": {"path": "$T/store"}}],
   "volume_mounts": [{"name": "store", "mountPath": "$T/store"}], "env": {"STEPOP_LOG_INTERVAL": "200ms"}}}}}}
JSON
    CF_DATA=file://$T/store/data/
    CF_RUNS=file://$T/store/runs/
    CF_STORE_DIR=$T/store
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
bed_can_oom() { echo "--memory 48MiB"; }
bed_missing_image_args() { echo "--image localhost/stepop-test/no-such:1"; }
bed_unsupported_args() { echo "the kubernetes flavor asks the cluster for every resource (CPUs, memory, GPUs)"; return 1; }
bed_jobs() { "$KBED_KUBECTL" get jobs -A -o name 2>/dev/null | wc -l; }
bed_object_file() { echo "${1#file://}"; }
# The bed's static tokens and a line of the admin's private key (its kubeconfig's client key).
bed_secrets() {
    cut -d, -f1 "$KBED_DIR/pki/tokens.csv"
    sed -n 2p "$KBED_DIR/pki/admin.key"
}
bed_api_down() { kill -STOP "$(awk '$1 == "kube-apiserver" {print $2}' "$KBED_DIR/pids")"; }
bed_api_up() { kill -CONT "$(awk '$1 == "kube-apiserver" {print $2}' "$KBED_DIR/pids")"; }
# The handle names a Job created without the run's label.
bed_forge_handle() {
    local sub=$T/store/runs/$1/submission.json
    "$KBED_KUBECTL" create job cf-unlabelled --image="$KBED_BUSYBOX" -- sleep 300 >/dev/null || return 1
    cp "$sub" "$T/submission.orig"
    python3 -c "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['handle']['job']='cf-unlabelled'; json.dump(d, open(p, 'w'))" "$sub"
}
bed_forged_intact() { "$KBED_KUBECTL" get job cf-unlabelled >/dev/null; }
bed_unforge_handle() {
    cp "$T/submission.orig" "$T/store/runs/$1/submission.json"
    "$KBED_KUBECTL" delete job cf-unlabelled --wait=false >/dev/null 2>&1
}
