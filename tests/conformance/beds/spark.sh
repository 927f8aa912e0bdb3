# shellcheck shell=bash disable=SC2034
# The spark flavor's conformance bed: cluster mode on the Kubernetes test bed (start_kbed, called by
# the runner so tests/run.sh pools it), as tests/integration/kube_spark.sh. What it stands in for:
# - spark-submit: tests/servers/spark_submit_standin.py, which makes the driver pod from the
#   flavor's pod template and confs through the real API server and returns, as Spark's Kubernetes
#   submission client does (waitAppCompletion=false);
# - Spark's image entrypoint (settings.spark_entrypoint): a shell script taking the driver's args
#   (driver --properties-file F APP ARGS) and running APP with sh, in place of the entrypoint's
#   spark-submit in client mode and PythonRunner (the test image has no JVM and no Python);
# - the application: the suite's steps are commands, a spark step's command is an application and
#   its arguments, so every step is `local://.../step.py CMD...` (bed_app), an application whose
#   only work is to exec its arguments. The pod's command is the flavor's own
#   `stepop run --exec -- ENTRYPOINT`: the real stepop run fetches the inputs, runs the suite's
#   command (entrypoint and application exec into it: it is stepop run's child, as Spark's driver
#   would be), follows its signals and exit code and stores outputs, logs and status.
# The store is a file store in $T given to the driver pod as a hostPath driver volume (Spark confs).
BED_FLAVOR=spark
BED_MISSING_RC=71
bed_kc() { "$KBED_KUBECTL" "$@"; }
bed_setup() {
    podman_images || return 1
    unset SPARK_HOME
    mkdir -p "$T/store/data" "$T/store/app"
    cat >"$T/store/app/entrypoint.sh" <<'SH'
#!/bin/sh
[ "$1" = driver ] || { echo "entrypoint stand-in: only the driver role" >&2; exit 64; }
shift
while [ $# -gt 0 ]; do case "$1" in --properties-file|--class) shift 2 ;; *) break ;; esac; done
app=${1#local://}
shift
exec sh "$app" "$@"
SH
    chmod +x "$T/store/app/entrypoint.sh"
    printf 'exec "$@"\n' >"$T/store/app/step.py"
}
bed_config() {
    local server
    server=$(/usr/bin/python3 -c "import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))['clusters'][0]['cluster']['server'])" "$KUBECONFIG")
    cat >stepop.json <<JSON
{"store": "file://$T/store", "default_operator": "spark",
 "operators": {"spark": {"flavor": "spark", "settings": {
   "master": "k8s://$server", "spark_submit": "$ROOT/tests/servers/spark_submit_standin.py",
   "stepop_path": "/usr/local/bin/stepop", "spark_entrypoint": "$T/store/app/entrypoint.sh",
   "conf": {"spark.kubernetes.driver.volumes.hostPath.store.mount.path": "$T/store",
            "spark.kubernetes.driver.volumes.hostPath.store.options.path": "$T/store",
            "spark.kubernetes.driverEnv.STEPOP_LOG_INTERVAL": "200ms"}}}}}
JSON
    CF_DATA=file://$T/store/data/
    CF_RUNS=file://$T/store/runs/
    CF_STORE_DIR=$T/store
}
bed_step_args() { printf '%s\n' --image "$STEP_IMAGE"; }
bed_app() { echo "local://$T/store/app/step.py"; }
bed_can_oom() { echo "--memory 48MiB"; }
bed_missing_image_args() { echo "--image localhost/stepop-test/no-such:1"; }
# Spark's driver cores are whole cores (spark.driver.cores).
bed_unsupported_args() { echo "--cpu 0.5"; }
# Driver pods, those being deleted left out (cleanup's deletions finish in the background).
bed_jobs() {
    bed_kc get pods -A -l spark-role=driver -o json 2>/dev/null |
        python3 -c "import json, sys; print(sum(1 for p in json.load(sys.stdin)['items'] if not p['metadata'].get('deletionTimestamp')))"
}
bed_object_file() { echo "${1#file://}"; }
# The bed's static tokens and a line of the admin's private key (its kubeconfig's client key).
bed_secrets() {
    cut -d, -f1 "$KBED_DIR/pki/tokens.csv"
    sed -n 2p "$KBED_DIR/pki/admin.key"
}
bed_api_down() { kill -STOP "$(awk '$1 == "kube-apiserver" {print $2}' "$KBED_DIR/pids")"; }
bed_api_up() { kill -CONT "$(awk '$1 == "kube-apiserver" {print $2}' "$KBED_DIR/pids")"; }
# The spark flavor's handle names no pod: cancel and cleanup take the run id from their command line
# (never the store's handle), find the newest pod labelled stepop.io/run-id=RUN and
# spark-role=driver, and act on it only when its annotations name RUN. What a forged handle would
# do is done here on the platform: an impostor pod with RUN's labels, newer than the driver, whose
# annotations name another run (submission.json is left as it is).
bed_forge_handle() {
    cat >"$T/impostor.json" <<JSON
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "zz-cf-impostor", "labels": {"stepop.io/run-id": "$1", "spark-role": "driver"},
              "annotations": {"stepop.io/run-id": "someone-else", "stepop.io/run-uri": "file:///elsewhere/"}},
 "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "$KBED_BUSYBOX", "command": ["sleep", "300"]}]}}
JSON
    bed_kc create -f "$T/impostor.json" >/dev/null
}
bed_forged_intact() { [ "$(bed_kc get pod zz-cf-impostor -o jsonpath='{.metadata.name}{.metadata.deletionTimestamp}')" = zz-cf-impostor ]; }
# Gone, not only being deleted: a pod being deleted is still listed, and still the newest.
bed_unforge_handle() { bed_kc delete pod zz-cf-impostor --grace-period 1 --wait=true --timeout 120s >/dev/null 2>&1; }
