#!/usr/bin/env bash
# stepop submit with the kubernetes flavor against a real control plane (tests/testbeds/kubernetes:
# kube-apiserver, the Job controller and the scheduler built from Debian's source, the test
# kubelet running pods in Podman), so the real `stepop run` executes in each pod. The conformance
# list of DESIGN.md §8, every way of signing in, an RBAC-limited user given exactly the rules
# docs/flavors.md lists, pod failures, the API server stopped while following, and kubectl as the
# cross-check client.
. "$(dirname "$0")/../lib.sh"

start_kbed 1
podman_images || { not_ok "test images build"; done_testing; }
ok "test images $STEP_IMAGE and $BARE_IMAGE"
kc() { "$KBED_KUBECTL" "$@"; }
export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
mkdir -p "$HOME" "$T/cwd" "$T/store/data"
cd "$T/cwd" || exit 1
# A file store the pods see at the same path (a hostPath volume), as a PVC would give them.
STORE=$T/store
runs=$STORE/runs
pod_settings='"pod_settings": {"volumes": [{"name": "store", "hostPath": {"path": "'$STORE'"}}],
   "volume_mounts": [{"name": "store", "mountPath": "'$STORE'"}],
   "env": {"STEPOP_LOG_INTERVAL": "200ms"}}'
config() { # EXTRA-SETTINGS: stepop.json with the operator "kube"
    cat >stepop.json <<JSON
{"store": "file://$STORE", "default_operator": "kube",
 "operators": {"kube": {"flavor": "kubernetes", "settings": {$pod_settings${1:+, $1}}}}}
JSON
}
config
last_run() { ls -t "$runs" | head -1; }
# step_file FILE FIELDS: a STEP.json running `true` in the step image, with more fields.
step_file() { printf '{"image": "%s", "command": ["true"], %s}\n' "$STEP_IMAGE" "$2" >"$1"; }
status_of() { jq_py "$runs/$1/status.json" "$2"; }
jobs_of() { kc get jobs -l "stepop.io/run-id=$1" -o name 2>/dev/null; }
printf 'the input\n' >"$STORE/data/in.txt"
mkdir -p "$T/tree/sub" && printf 'packed\n' >"$T/tree/sub/p.txt"
tar -C "$T/tree" -c . | zstd -q >"$STORE/data/tree.tar.zst"

# --- 1-3: a step with inputs and outputs; exit codes; logs to the last line ---
t0=$SECONDS
expect_rc 0 "a step runs as a Job" "$STEPOP" submit --image "$STEP_IMAGE" --cpu 0.5 --memory 256MiB \
    --input data="file://$STORE/data/in.txt" --input tree="file://$STORE/data/tree.tar.zst" \
    --output result=out@tar.zst --output one=one.txt@file -- \
    sh -c 'echo "in a pod: $(cat /proc/1/comm) is PID 1, attempt $STEPOP_ATTEMPT"; cat data tree/sub/p.txt;
           mkdir out; cat data > out/copy.txt; echo single > one.txt; printf "last line"'
echo "# submit to exit in $((SECONDS - t0)) s"
out_has "in a pod: stepop is PID 1, attempt 1" "the step ran under stepop run, attempt 1"
out_has "packed" "a file input and an unpacked tar.zst input were fetched"
out_has "last line" "the line printed just before exit arrived"
r=$(last_run)
is_eq "status succeeded" "$(status_of "$r" "d['phase'], d['exit_code']")" "succeeded 0"
is_eq "an output fetched back is identical" "$(zstd -dc "$runs/$r/outputs/result.tar.zst" | tar -xO copy.txt)" "the input"
is_eq "a file output" "$(cat "$runs/$r/outputs/one")" single
check "outputs.json was written" test -f "$runs/$r/outputs.json"
is_eq "submission.json names the Job" "$(jq_py "$runs/$r/submission.json" "d['flavor'], d['handle']['job'], d['handle']['namespace']")" \
    "kubernetes stepop-$(echo "$r" | tr A-Z a-z) default"
is_eq "cleanup deleted the Job" "$(jobs_of "$r")" ""

expect_rc 3 "exit code 3 comes back" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo failing; exit 3'
is_eq "status failed, user_error" "$(status_of "$(last_run)" "d['phase'], d['reason']")" "failed user_error"
expect_rc 137 "a step killed by SIGKILL: 137" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'kill -9 $$'

# --- 5: timeout and OOM ---
expect_rc 143 "the manifest's timeout ends the step" "$STEPOP" submit --image "$STEP_IMAGE" --timeout 2s --grace 2s -- sleep 60
is_eq "reason timeout" "$(status_of "$(last_run)" "d['reason']")" timeout
expect_rc 137 "a step over its memory limit" "$STEPOP" submit --image "$STEP_IMAGE" --memory 48MiB -- \
    sh -c 'echo filling; exec dd if=/dev/zero of=/dev/null bs=200M count=1'
is_eq "reason oom_killed" "$(status_of "$(last_run)" "d['phase'], d['reason']")" "failed oom_killed"

# --- 6: a job that cannot start fails fast with the platform's words ---
t0=$SECONDS
expect_rc 71 "a missing image: exit 71" "$STEPOP" submit --image localhost/stepop-test/no-such:1 -- true
err_has "ErrImagePull" "with the kubelet's reason"
is_eq "fast (under 30 s)" "$((SECONDS - t0 < 30))" 1
step_file "$T/nosecret.json" '"settings": {'"$(echo "$pod_settings" | sed 's/"env": {/"env_from": [{"secretRef": {"name": "no-such-secret"}}], "env": {/')"'}'
expect_rc 71 "a missing Secret in env_from: exit 71" "$STEPOP" submit "$T/nosecret.json" -- true
err_has "CreateContainerConfigError" "with the kubelet's reason"
expect_rc 73 "more GPUs than any node has: pending, then not started (73)" \
    "$STEPOP" submit --image "$STEP_IMAGE" --gpus 2 --pending-timeout 8s -- true
err_has "Insufficient nvidia.com/gpu" "quoting the scheduler"

# --- 7: refused before anything is created ---
before=$(kc get jobs -o name | wc -l)
step_file "$T/bogus.json" '"settings": {"bogus": 1}'
expect_rc 2 "an unknown setting is refused" "$STEPOP" submit "$T/bogus.json"
err_has "settings.bogus" "naming it"
step_file "$T/bogus2.json" '"settings": {"pod_settings": {"nodeSelector": {"a": "b"}}}'
expect_rc 2 "an unknown pod setting is refused" "$STEPOP" submit "$T/bogus2.json"
err_has "nodeSelector" "naming it"
step_file "$T/unmounted.json" '"inputs": [{"name": "x", "uri": "file:///srv/elsewhere/x"}]'
expect_rc 2 "a file store no volume mounts is refused" "$STEPOP" submit "$T/unmounted.json"
err_has "/srv/elsewhere/x" "naming the path"
is_eq "nothing was created" "$(kc get jobs -o name | wc -l)" "$before"

# --- 8: --dry-run creates nothing; the API server accepts the Job it shows ---
before=$(ls "$runs" | wc -l)
expect_rc 0 "--dry-run" "$STEPOP" submit --dry-run --image "$STEP_IMAGE" --memory 1GiB --gpus 1 -- echo hi
python3 -c "
import json; d = json.load(open('$T/out'))
req = d['requests']['requests'][0]
assert req['method'] == 'POST' and req['url'].endswith('/apis/batch/v1/namespaces/default/jobs'), req
json.dump(req['body'], open('$T/dry-job.json', 'w'))" && ok "it prints the POST of the Job" || not_ok "it prints the POST of the Job"
check "the Job asks for the GPU as a limit" python3 -c "
import json; j = json.load(open('$T/dry-job.json'))
c = j['spec']['template']['spec']['containers'][0]
assert c['resources']['limits']['nvidia.com/gpu'] in (1, '1'), c"
is_eq "nothing was created" "$(ls "$runs" | wc -l) $(kc get jobs -o name | wc -l)" "$before $(kc get jobs -o name | wc -l)"
check "the API server accepts the Job (dryRun=All)" kc create --dry-run=server -f "$T/dry-job.json"

# --- 9: --detach, then status, logs -f and cancel from other processes; kubectl sees the Job ---
expect_rc 0 "--detach" "$STEPOP" submit --detach --image "$STEP_IMAGE" -- sh -c 'echo detached-start; sleep 3; echo detached-end; exit 4'
r=$(tr -d '\n' <"$T/out")
is_eq "kubectl get job -l stepop.io/run-id= sees it" "$(jobs_of "$r")" "job.batch/stepop-$(echo "$r" | tr A-Z a-z)"
expect_rc 0 "stepop logs -f follows it to the end" "$STEPOP" logs -f "$r"
out_has "detached-start" "from the start"
out_has "detached-end" "to the end"
expect_rc 0 "stepop status" "$STEPOP" status "$r" --json
is_eq "the final status and the flavor" "$(jq_py "$T/out" "d['phase'], d['exit_code'], d['flavor']")" "failed 4 kubernetes"
expect_rc 0 "stepop cancel --wait a detached run" sh -c "r=\$('$STEPOP' submit --detach --image '$STEP_IMAGE' -- sleep 120) && sleep 3 && '$STEPOP' cancel --wait \$r && echo \$r"
r=$(tail -1 "$T/out")
is_eq "it ends terminated" "$(status_of "$r" "d['phase']")" terminated

# --- 4: Ctrl-C: the step gets SIGTERM, its trap runs, logs complete ---
cat >"$STORE/data/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
"$STEPOP" submit --image "$STEP_IMAGE" --grace 20s --input s="file://$STORE/data/trap.sh" -- sh s >"$T/int.out" 2>"$T/int.err" &
sub=$!
for i in $(seq 600); do grep -q "step started" "$T/int.out" 2>/dev/null && break; sleep 0.1; done
t0=$SECONDS
kill -INT "$sub"
wait "$sub"
is_eq "Ctrl-C: the step's trap's exit code comes back" "$?" 9
check "before the grace period ran out ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 20
r=$(last_run)
is_eq "status terminated" "$(status_of "$r" "d['phase'], d['reason']")" "terminated terminated"
check "the logs are complete" grep -q "step cleaned up" "$T/int.out"

# --- kubectl delete job: the follow loop sees the step terminated ---
"$STEPOP" submit --image "$STEP_IMAGE" --grace 5s -- sh -c 'echo deleting-me; sleep 120' >"$T/del.out" 2>"$T/del.err" &
sub=$!
for i in $(seq 600); do grep -q "deleting-me" "$T/del.out" 2>/dev/null && break; sleep 0.1; done
r=$(last_run)
kc delete job "stepop-$(echo "$r" | tr A-Z a-z)" --cascade=foreground --wait=false >/dev/null
wait "$sub"
is_eq "kubectl delete job: submit ends with SIGTERM's code" "$?" 143
is_eq "... status terminated" "$(status_of "$r" "d['phase']")" terminated

# --- 10: a handle whose Job lacks the run's label is refused ---
DRIVE=$ROOT/build/tests/tools/flavor_drive
kc create job unlabelled --image="$KBED_BUSYBOX" -- sleep 60 >/dev/null
printf '{}' >"$T/settings.json"
printf '{"namespace": "default", "job": "unlabelled", "run_id": "forged", "run_uri": "file:///nowhere/"}' >"$T/handle.json"
expect_rc 1 "cancel refuses a Job without the run's label" "$DRIVE" kubernetes cancel "$T/handle.json" "$T/settings.json"
err_has "stepop.io/run-id" "naming the label"
expect_rc 1 "cleanup refuses it too" "$DRIVE" kubernetes cleanup "$T/handle.json" "$T/settings.json"
check "the Job is still there" kc get job unlabelled
kc delete job unlabelled --wait=false >/dev/null

# --- 11: the API server stopped for 10 s while following ---
"$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo before; sleep 14; echo after-the-outage' >"$T/out11" 2>"$T/err11" &
sub=$!
for i in $(seq 600); do grep -q before "$T/out11" 2>/dev/null && break; sleep 0.1; done
api=$(awk '$1 == "kube-apiserver" {print $2}' "$KBED_DIR/pids")
kill -STOP "$api"
sleep 10
kill -CONT "$api"
wait "$sub"
is_eq "the follow loop rode out 10 s without the API server" "$?" 0
check "... with the logs complete" grep -q after-the-outage "$T/out11"

# --- every way of signing in (in parallel) ---
cat >"$T/exec-plugin.sh" <<SH
#!/bin/sh
# An exec credential plugin (client.authentication.k8s.io/v1) handing out the admin token.
echo "run \$KUBERNETES_EXEC_INFO" >>"$T/exec-plugin.runs"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}' "\$(cat '$KBED_ADMIN_TOKEN_FILE')"
SH
chmod +x "$T/exec-plugin.sh"
cat >"$T/exec-kubeconfig" <<JSON
{"apiVersion": "v1", "kind": "Config", "current-context": "exec",
 "clusters": [{"name": "bed", "cluster": {"server": "$KBED_SERVER", "certificate-authority": "$KBED_CA"}}],
 "users": [{"name": "plugin", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
   "command": "$T/exec-plugin.sh", "interactiveMode": "Never"}}}],
 "contexts": [{"name": "exec", "context": {"cluster": "bed", "user": "plugin"}}]}
JSON
sa=$T/serviceaccount
mkdir -p "$sa"
cp "$KBED_ADMIN_TOKEN_FILE" "$sa/token"
cp "$KBED_CA" "$sa/ca.crt"
printf 'default' >"$sa/namespace"
signin() { # NAME CONTEXT ENV...: a short step signed in that way, in the background
    local name=$1 ctx=$2
    shift 2
    mkdir -p "$T/cwd-$name"
    (cd "$T/cwd-$name" && config "${ctx:+\"context\": \"$ctx\"}" &&
        env "$@" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c "echo signed-in-$name" \
            >"$T/signin-$name.out" 2>"$T/signin-$name.err") &
    pids+=($!)
}
pids=()
signin cert-data kbed-admin-data
signin token kbed-token
signin token-file kbed-token-file
signin exec-plugin "" KUBECONFIG="$T/exec-kubeconfig"
signin in-cluster "" -u KUBECONFIG KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$KBED_APISERVER_PORT" \
    STEPOP_KUBE_SERVICEACCOUNT_DIR="$sa"
for p in "${pids[@]}"; do wait "$p"; done
for way in cert-data token token-file exec-plugin in-cluster; do
    if grep -q "signed-in-$way" "$T/signin-$way.out"; then ok "signs in with $way"; else
        not_ok "signs in with $way"; diag <"$T/signin-$way.err"; fi
done
check "the exec plugin ran, told it may not prompt and given no cluster (provideClusterInfo unset)" python3 -c "
import json; d = json.loads(open('$T/exec-plugin.runs').readline()[4:])
assert d['spec']['interactive'] is False and 'cluster' not in d['spec'], d"

# --- an RBAC-limited user: refused with RBAC's words, then allowed by the rules docs/flavors.md lists ---
mkdir -p "$T/cwd-limited" && cd "$T/cwd-limited" && config '"context": "kbed-limited"'
expect_rc 71 "the limited user cannot create Jobs" "$STEPOP" submit --image "$STEP_IMAGE" -- true
err_has 'cannot create resource "jobs" in API group "batch" in the namespace "default"' "... in the API server's words"
python3 - "$ROOT/docs/flavors.md" >"$T/role.json" <<'PY'
import json, re, sys
# The Role is the JSON block after "kubernetes-rbac" in the docs: what users are told to grant.
text = open(sys.argv[1]).read()
m = re.search(r"<!-- kubernetes-rbac -->\s*```json\n(.*?)```", text, re.S)
print(m.group(1) if m else "{}")
PY
check "the docs' Role is accepted" kc apply -f "$T/role.json"
role=$(jq_py "$T/role.json" "d['metadata']['name']")
check "... and bound to the limited user" kc create rolebinding stepop-limited --role="$role" --user="$KBED_LIMITED_USER"
expect_rc 0 "with exactly those rules the limited user runs a step" "$STEPOP" submit --image "$STEP_IMAGE" -- sh -c 'echo limited-ok'
out_has "limited-ok" "... to the end"
cd "$T/cwd" || exit 1

# --- 12: no credential anywhere ---
secrets=("$KBED_ADMIN_TOKEN" "$KBED_LIMITED_TOKEN")
leaks=$(for s in "${secrets[@]}"; do grep -rlF -- "$s" "$T"/*.out "$T"/*.err "$T"/out* "$T"/err* "$STORE" 2>/dev/null; done | sort -u)
is_eq "no token in any output, status, log or stored object" "$leaks" ""

done_testing
