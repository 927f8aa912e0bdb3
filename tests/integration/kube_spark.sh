#!/usr/bin/env bash
# The spark flavor in cluster mode against the real Kubernetes control plane of
# tests/testbeds/kubernetes, with tests/servers/spark_submit_standin.py as spark-submit: it makes
# the driver pod from the flavor's pod template and confs through the API server and returns, as
# Spark's Kubernetes submission client does; the test kubelet runs the driver in Podman, where the
# real `stepop run --exec` runs a stand-in of Spark's entrypoint. The conformance list of
# DESIGN.md §8 where it applies: success with an input and an output, exit codes, timeout, OOM,
# a missing image, unschedulable, --detach with status, logs and cancel, the API server stopped
# for 10 s, an impostor pod refused, --dry-run. Spark itself is not run (docs/flavors.md#spark).
. "$(dirname "$0")/../lib.sh"

start_kbed 1
podman_images || { not_ok "test images build"; done_testing; }
ok "test images $STEP_IMAGE"
kc() { "$KBED_KUBECTL" "$@"; }
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
unset SPARK_HOME
mkdir -p "$HOME" "$T/cwd" "$T/store/data" "$T/store/app"
cd "$T/cwd" || exit 1
# A file store the driver sees at the same path: a hostPath driver volume given as Spark confs.
STORE=$T/store
runs=$STORE/runs
# Spark's entrypoint.sh as far as the driver goes: driver --properties-file F [--class C] APP ARGS.
# The image has no Python, so the "Python" applications are shell scripts run with sh.
cat >"$STORE/app/entrypoint.sh" <<'SH'
#!/bin/sh
[ "$1" = driver ] || { echo "entrypoint stand-in: only the driver role" >&2; exit 64; }
shift
while [ $# -gt 0 ]; do case "$1" in --properties-file|--class) shift 2 ;; *) break ;; esac; done
app=${1#local://}
shift
echo "entrypoint: app $app"
exec sh "$app" "$@"
SH
chmod +x "$STORE/app/entrypoint.sh"
cat >"$STORE/app/job.py" <<'SH'
case "$1" in
ok) echo "driver read: $(cat "$STEPOP_INPUT_DATA") mode $MODE"; echo "answer 42" >"$STEPOP_OUTPUT_RESULT"; echo "last line" ;;
fail) echo "failing on purpose"; exit 3 ;;
oom) echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1 ;;
trap) trap 'echo "driver got TERM"; exit 9' TERM; echo "driver started"; while :; do sleep 0.2; done ;;
slow) echo slow-start; sleep 3; echo slow-end; exit 4 ;;
outage) echo before; sleep 14; echo after-the-outage ;;
esac
SH
printf 'the input\n' >"$STORE/data/in.txt"
cat >stepop.json <<JSON
{"store": "file://$STORE", "default_operator": "spark",
 "operators": {"spark": {"flavor": "spark", "settings": {
   "master": "k8s://$(/usr/bin/python3 -c "import yaml; c = yaml.safe_load(open('$KUBECONFIG')); print(c['clusters'][0]['cluster']['server'])")",
   "spark_submit": "$ROOT/tests/servers/spark_submit_standin.py",
   "stepop_path": "/usr/local/bin/stepop", "spark_entrypoint": "$STORE/app/entrypoint.sh",
   "conf": {"spark.kubernetes.driver.volumes.hostPath.store.mount.path": "$STORE",
            "spark.kubernetes.driver.volumes.hostPath.store.options.path": "$STORE"}}}}}
JSON
last_run() { ls -t "$runs" | head -1; }
status_of() { jq_py "$runs/$1/status.json" "$2"; }
pods_of() { kc get pods -l "stepop.io/run-id=$1,spark-role=driver" -o name 2>/dev/null; }
app() { echo "local://$STORE/app/job.py"; }

# --- 1-3: an input and an output; the driver pod as Spark makes it ---
t0=$SECONDS
printf '{"settings": {"keep": true}}\n' >"$T/keep.json"
expect_rc 0 "a Spark application's driver runs in a pod under stepop run" \
    "$STEPOP" submit "$T/keep.json" --image "$STEP_IMAGE" --env MODE=m1 --input data="file://$STORE/data/in.txt" \
    --output result=result.txt@file -- "$(app)" ok
out_has "driver read: the input mode m1" "the driver reads the fetched input and the step's env"
out_has "last line" "the logs are complete"
out_has "entrypoint: app $STORE/app/job.py" "Spark's entrypoint (stand-in) ran under stepop run"
r=$(last_run)
is_eq "status succeeded, exit 0" "$(status_of "$r" "d['phase'], d['exit_code']")" "succeeded 0"
check "the output was stored" grep -q "answer 42" "$runs/$r/outputs/result"
check "outputs.json written" test -f "$runs/$r/outputs.json"
kc get pods -l "stepop.io/run-id=$r" -o json >"$T/pods.json" 2>"$T/err"
check "the driver pod: labels, annotations, the template's command, Spark's args" python3 -c "
import json; items = json.load(open('$T/pods.json'))['items']; assert len(items) == 1, items
p = items[0]; md = p['metadata']
assert md['labels']['spark-role'] == 'driver' and md['labels']['spark-app-selector'].startswith('spark-'), md
assert md['annotations']['stepop.io/run-id'] == '$r', md
c = p['spec']['containers'][0]
assert c['name'] == 'spark-kubernetes-driver', c
assert c['command'] == ['/usr/local/bin/stepop', 'run', '--exec', '--', '$STORE/app/entrypoint.sh'], c
assert c['args'][0] == 'driver' and c['args'][-2:] == ['local://$STORE/app/job.py', 'ok'], c
env = {e['name']: e.get('value') for e in c['env']}
assert env['STEPOP_MANIFEST'].endswith('/runs/$r/manifest.json') and env['MODE'] == 'm1', env"
echo "# success took $((SECONDS - t0)) s"
check "settings.keep left the driver pod" kc delete pod "stepop-$(echo "$r" | tr A-Z a-z)-driver" --wait=false

expect_rc 3 "the driver's exit code 3 comes back" "$STEPOP" submit --image "$STEP_IMAGE" -- "$(app)" fail
is_eq "status failed user_error 3" "$(status_of "$(last_run)" "d['phase'], d['reason'], d['exit_code']")" "failed user_error 3"
r=$(last_run)
for _ in $(seq 120); do [ -z "$(pods_of "$r")" ] && break; sleep 0.5; done
is_eq "cleanup removed its driver pod" "$(pods_of "$r")" ""

# --- 5: timeout and OOM ---
expect_rc 143 "the manifest's timeout ends the driver" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 1s --grace 2s -- "$(app)" slow
is_eq "reason timeout" "$(status_of "$(last_run)" "d['phase'], d['reason']")" "failed timeout"
expect_rc 137 "a driver over its memory limit" "$STEPOP" submit --image "$STEP_IMAGE" --memory 48MiB -- "$(app)" oom
is_eq "reason oom_killed" "$(status_of "$(last_run)" "d['phase'], d['reason']")" "failed oom_killed"

# --- 6: a driver that cannot start ---
t0=$SECONDS
expect_rc 71 "a missing image: exit 71" "$STEPOP" submit --image localhost/stepop-test/no-such:1 -- "$(app)" ok
err_has "ErrImagePull" "with the kubelet's reason, read from the driver pod"
is_eq "fast (under 60 s)" "$((SECONDS - t0 < 60))" 1
expect_rc 73 "more GPUs than any node has: pending, then not started (73)" \
    "$STEPOP" submit --image "$STEP_IMAGE" --gpus 2 --pending-timeout 8s -- "$(app)" ok
err_has "Insufficient nvidia.com/gpu" "quoting the scheduler"

# --- 9: --detach, status, logs -f, cancel ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- "$(app)" slow
r=$(tr -d '\n' <"$T/out")
is_eq "kubectl sees its driver pod" "$(pods_of "$r")" "pod/stepop-$(echo "$r" | tr A-Z a-z)-driver"
expect_rc 0 "stepop logs -f follows it to the end" "$STEPOP" logs -f "$r"
out_has "slow-start" "from the start"
out_has "slow-end" "to the end"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
is_eq "the final status and the flavor" "$(jq_py "$T/out" "d['phase'], d['exit_code'], d['flavor']")" "failed 4 spark"
expect_rc 0 "stepop cancel --wait a detached run" sh -c "r=\$('$STEPOP' submit --detach --grace 5s --image '$STEP_IMAGE' -- '$(app)' trap) &&
    for i in \$(seq 240); do grep -qs 'driver started' '$runs'/\$r/logs/1/*.log && break; sleep 0.25; done; '$STEPOP' cancel --wait \$r && echo \$r"
r=$(tail -1 "$T/out")
is_eq "the cancelled driver ran its trap; status terminated" "$(status_of "$r" "d['phase'], d['exit_code']")" "terminated 9"

# --- 11: the API server stopped for 10 s while following ---
"$STEPOP" submit --image "$STEP_IMAGE" -- "$(app)" outage >"$T/out11" 2>"$T/err11" &
sub=$!
for _ in $(seq 600); do grep -q before "$T/out11" 2>/dev/null && break; sleep 0.1; done
api=$(awk '$1 == "kube-apiserver" {print $2}' "$KBED_DIR/pids")
kill -STOP "$api"
sleep 10
kill -CONT "$api"
wait "$sub"
is_eq "the follow loop rode out 10 s without the API server" "$?" 0
check "... with the logs complete" grep -q after-the-outage "$T/out11"

# --- 10: a pod that carries the run's labels but is not its driver is refused ---
expect_rc 0 "a run to impersonate" "$STEPOP" submit --detach --grace 5s --image "$STEP_IMAGE" -- "$(app)" trap
rb=$(tr -d '\n' <"$T/out")
for _ in $(seq 240); do grep -qs 'driver started' "$runs/$rb"/logs/1/*.log && break; sleep 0.25; done
cat >"$T/impostor.json" <<JSON
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "zz-impostor-$$", "labels": {"stepop.io/run-id": "$rb", "spark-role": "driver"},
              "annotations": {"stepop.io/run-id": "someone-else", "stepop.io/run-uri": "file:///elsewhere/"}},
 "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "$STEP_IMAGE", "command": ["sleep", "300"]}]}}
JSON
sleep 1 # a later creationTimestamp than the driver's: the newest pod with the labels
check "an impostor pod with the run's labels" kc create -f "$T/impostor.json"
expect_rc 4 "cancel refuses to act on a pod whose annotations are another run's" "$STEPOP" cancel "$rb"
err_has "refusing to act on it" "saying why"
is_eq "the impostor was not deleted" "$(kc get pod "zz-impostor-$$" -o name 2>/dev/null)" "pod/zz-impostor-$$"
kc delete pod "zz-impostor-$$" --grace-period 0 --wait=true >/dev/null 2>&1
expect_rc 0 "with the impostor gone, cancel stops the real driver" "$STEPOP" cancel --wait "$rb"
is_eq "terminated" "$(status_of "$rb" "d['phase']")" terminated

# --- 8, 12: --dry-run creates nothing; no credential anywhere ---
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" --memory 1GiB --gpus 1 -- "$(app)" ok
check "it shows the argv, the pod template and the driver's environment" python3 -c "
import json; d = json.load(open('$T/out'))['requests']
r = d['requests'][0]
assert 'spark.kubernetes.submission.waitAppCompletion=false' in r['argv'], r['argv']
assert r['pod_template']['spec']['containers'][0]['command'][1:4] == ['run', '--exec', '--'], r
assert 'STEPOP_MANIFEST' in r['driver_env'], r"
r=$(jq_py "$T/out" "d['run_id']")
is_eq "nothing was created: no pod, no run" "$(pods_of "$r")$(ls "$runs" | grep -c "$r")" "0"
check "no kubeconfig key or token in any run's files" sh -c "! grep -rqF \"\$(sed -n 2p '$T/bed/pki/admin.key' 2>/dev/null || echo none)\" '$runs'"
done_testing
